"""`torchrun` or `accelerate launch` with 2 CPU processes (gloo) trains one diff pruning job
(DiffPruningTrainer) equal to a 1-process run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deltamix.diffprune import DiffPruningConfig, DiffPruningModel

from .conftest import child_env

JOB = Path(__file__).with_name("diffprune_ddp_job.py")
GLOBAL_BATCH = 16  # 64 rows: 4 global batches per epoch; 8 rows per process under torchrun
# Measured (2026-11-25): 2.6e-6 on w and 2.4e-6 on alpha (alpha up to 5.1, i.e. a few float32 ulps)
# after the 8-step L0 stage, 2.6e-7 on the kept values after 4 fixed-mask steps. The largest w
# differences sit on entries whose true gradient is 0 (attention key biases): Adam divides float
# rounding noise by its own magnitude there, so they move by ~lr * 1e-4 in one run or the other.
VALUE_ATOL = 1e-5
FILES = [
    "final/diff.safetensors",
    "final/diffprune_state.safetensors",
    "l0/diff.safetensors",
    "l0/diffprune_state.safetensors",
    "summary.json",
]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, env=child_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


LAUNCHERS = {
    "torchrun": ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"],
    # accelerate's --cpu multi-process path needs mpirun; --multi_gpu on a CPU-only machine gives gloo.
    "accelerate": [
        "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
    ],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_process_diff_pruning_equals_one_process_run(tmp_path: Path, launcher: str) -> None:
    single, double = tmp_path / "single", tmp_path / "double"
    one = _run([sys.executable, str(JOB), str(single), str(GLOBAL_BATCH)])
    two = _run([sys.executable, *LAUNCHERS[launcher], str(JOB), str(double), str(GLOBAL_BATCH)])

    # One job of two ranks; only the main process wrote files (the same files as the 1-process run).
    assert "rank 0 of 1 done" in one.stdout
    assert "rank 0 of 2 done" in two.stdout and "rank 1 of 2 done" in two.stdout
    assert _files(single) == _files(double) == FILES
    summary_one = json.loads((single / "summary.json").read_text())
    summary_two = json.loads((double / "summary.json").read_text())
    assert (summary_one["world_size"], summary_one["per_device_batch"]) == (1, GLOBAL_BATCH)
    assert (summary_two["world_size"], summary_two["per_device_batch"]) == (2, GLOBAL_BATCH // 2)

    # Same losses (task + L0 penalty, averaged over the global batch) at every logged step.
    for key in ("l0_losses", "fixed_mask_losses"):
        assert summary_two[key] == pytest.approx(summary_one[key], rel=1e-6), key

    for name in ("l0/diffprune_state", "l0/diff", "final/diffprune_state", "final/diff"):
        a = load_file(str(single / f"{name}.safetensors"))
        b = load_file(str(double / f"{name}.safetensors"))
        assert sorted(a) == sorted(b), name
        for key in a:
            if a[key].is_floating_point():  # w, alpha, kept values, dense head
                torch.testing.assert_close(b[key], a[key], rtol=0, atol=VALUE_ATOL, msg=f"{name}: {key}")
            else:  # the kept positions after project_() are the same entries
                assert torch.equal(b[key], a[key]), f"{name}: {key}"


def test_trainer_loss_kwargs_follow_the_base_models_loss() -> None:
    """A base model whose loss is a plain mean must not get the Trainer's ``x num_processes`` loss scaling."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from .diffprune_ddp_job import build_model

    # BertForSequenceClassification has **kwargs but ignores num_items_in_batch (CrossEntropyLoss mean).
    assert DiffPruningModel(build_model(), DiffPruningConfig()).accepts_loss_kwargs is False
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=16))
    assert DiffPruningModel(gpt2, DiffPruningConfig()).accepts_loss_kwargs is True  # self.loss_function
    gpt2.accepts_loss_kwargs = False  # an explicit attribute wins
    assert DiffPruningModel(gpt2, DiffPruningConfig()).accepts_loss_kwargs is False
