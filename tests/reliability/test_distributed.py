"""`accelerate launch` and `torchrun` with 2 CPU processes (gloo) train one SeqMix job equal to a 1-process run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deltamix.core.io import read_jsonl

from .conftest import DELTAMIX, TINY_SCAN, child_env, run_to_end, without_timing

BIN = Path(DELTAMIX[0]).parent
# Dropout 0: each process draws its own dropout masks, so with dropout the runs agree in distribution
# only. Batch 16 of 64 pairs: 4 full global batches per epoch, 8 rows per process.
# fp32: the 1e-6 tolerance is float32 summation order; bf16 rounds each process's rows differently.
ARGS = [*TINY_SCAN, "--dropout", "0", "--batch-size", "16", "--max-steps", "40", "--checkpoint-interval", "10",
        "--precision", "fp32", "--threads", "1"]  # fmt: skip
# Measured: 1.2e-7 (max |difference| of any weight after 40 Adam steps; weights up to 3.3).
WEIGHT_ATOL = 1e-5

LAUNCHERS = {
    "accelerate": [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"],
    "torchrun": [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", "29517"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_process_job_equals_one_process_run(launcher: str, tmp_path: Path) -> None:
    if shutil.which(LAUNCHERS[launcher][0]) is None:
        pytest.skip(f"{LAUNCHERS[launcher][0]} is not installed")
    single, double = tmp_path / "single", tmp_path / "double"
    run_to_end([*ARGS, "--output-dir", str(single / "run"), "--results-dir", str(single / "results")])
    argv = [*LAUNCHERS[launcher], str(BIN / "deltamix"), *ARGS]
    argv += ["--output-dir", str(double / "run"), "--results-dir", str(double / "results")]
    done = subprocess.run(argv, env=child_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    a = load_file(str(single / "run" / "model" / "model.safetensors"))
    b = load_file(str(double / "run" / "model" / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=WEIGHT_ATOL, msg=name)
    [one], [two] = (
        read_jsonl(single / "results" / "scan.jsonl"),
        read_jsonl(double / "results" / "scan.jsonl"),
    )
    loss_one, loss_two = one["metrics"].pop("final_train_loss"), two["metrics"].pop("final_train_loss")
    assert loss_two == pytest.approx(loss_one, rel=1e-6)
    assert without_timing(one["metrics"]) == without_timing(two["metrics"])

    # Only the main process wrote files and reported: same files, one record, one log line per log step.
    files = sorted(str(p.relative_to(single / "run")) for p in (single / "run").rglob("*"))
    assert sorted(str(p.relative_to(double / "run")) for p in (double / "run").rglob("*")) == files
    steps = [json.loads(line)["step"] for line in (double / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))
    assert done.stdout.count("exact-match accuracy") == 1
