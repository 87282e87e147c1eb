"""SIGKILL a `deltamix seqmix scan` run at an arbitrary point and restart it: same weights, metrics and one record."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from deltamix.core.io import read_jsonl

from .conftest import (
    TINY_SCAN,
    assert_same_weights,
    kill_after_checkpoint,
    loss_log,
    run_to_end,
    without_timing,
)

STEPS, INTERVAL = 300, 40


def _argv(out: Path, results: Path, steps: int = STEPS) -> list[str]:
    return [*TINY_SCAN, "--max-steps", str(steps), "--checkpoint-interval", str(INTERVAL),
            "--output-dir", str(out), "--results-dir", str(results)]  # fmt: skip


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An uninterrupted run: (run folder, results folder)."""
    root = tmp_path_factory.mktemp("straight")
    run_to_end(_argv(root / "run", root / "results"))
    return root / "run", root / "results"


def _assert_same_run(run: Path, results: Path, reference: tuple[Path, Path]) -> None:
    ref_run, ref_results = reference
    assert_same_weights(run / "model" / "model.safetensors", ref_run / "model" / "model.safetensors")
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    ref_metrics = json.loads((ref_run / "metrics.json").read_text())["metrics"]
    assert without_timing(metrics) == without_timing(ref_metrics)
    assert (run / "predictions.txt").read_text() == (ref_run / "predictions.txt").read_text()
    assert loss_log(run) == loss_log(ref_run)  # no step logged twice, same window means
    records, ref_records = read_jsonl(results / "scan.jsonl"), read_jsonl(ref_results / "scan.jsonl")
    assert len(records) == 1, f"{len(records)} records for one run"
    assert without_timing(records[0]["metrics"]) == without_timing(ref_records[0]["metrics"])
    assert records[0]["config"] == ref_records[0]["config"] | {"run": records[0]["config"]["run"]}
    assert not (run / "checkpoint").exists() and not (run / "checkpoint.tmp").exists()


def test_sigkill_at_a_random_point_then_restart_equals_uninterrupted(straight, tmp_path: Path) -> None:
    delay = random.Random().uniform(0.0, 1.5)  # arbitrary point after the first checkpoint
    run, results = tmp_path / "run", tmp_path / "results"
    killed_at = kill_after_checkpoint(_argv(run, results), run, INTERVAL, delay)
    assert killed_at >= INTERVAL and not (run / "metrics.json").exists(), f"delay {delay:.3f} s"
    run_to_end(_argv(run, results))
    _assert_same_run(run, results, straight)

    # Started again after it finished: nothing is trained, written or recorded again.
    model_file = run / "model" / "model.safetensors"
    before = model_file.stat().st_mtime_ns
    again = run_to_end(_argv(run, results))
    assert "already finished" in again.stdout
    assert model_file.stat().st_mtime_ns == before
    assert len(read_jsonl(results / "scan.jsonl")) == 1
    assert "step" not in (run / "log.jsonl").read_text().splitlines()[-1] or loss_log(run) == loss_log(
        straight[0]
    )


@pytest.mark.slow
@pytest.mark.parametrize("delays", [(0.0,), (0.05, 0.4), (0.7, 0.0, 0.3)])
def test_repeated_sigkills_then_restart_equals_uninterrupted(straight, tmp_path: Path, delays) -> None:
    """Killed right after a checkpoint appears, a little later, and several times in one run."""
    run, results = tmp_path / "run", tmp_path / "results"
    seen = 0
    for delay in delays:
        seen = kill_after_checkpoint(_argv(run, results), run, seen + INTERVAL, delay)
    run_to_end(_argv(run, results))
    _assert_same_run(run, results, straight)


def _train_argv(data: Path, out: Path, results: Path) -> list[str]:
    return ["seqmix", "train", "--train", str(data / "train.tsv"), "--valid", str(data / "test.tsv"),
            "--test", str(data / "test.tsv"), "--metric", "exact_match", "--model", "lstm", "--epochs", "12",
            "--batch-size", "16", "--average-last", "2", "--threads", "1",
            "--output-dir", str(out), "--results-dir", str(results)]  # fmt: skip


@pytest.mark.slow
def test_sigkill_of_a_train_run_with_epoch_snapshots(tmp_path: Path) -> None:
    """`seqmix train` checkpoints at each epoch end and averages the last epochs' snapshots: a kill
    at any point loses no snapshot and the restarted run ends like an uninterrupted one."""
    from deltamix.data.scan import load_split

    train, test = load_split("simple")
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in train[:64]))
    (data / "test.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in test[:8]))
    ref, run = tmp_path / "ref", tmp_path / "run"
    run_to_end(_train_argv(data, ref / "out", ref / "results"))
    for delay in (0.0, random.Random().uniform(0.0, 1.0)):  # 4 steps per epoch: checkpoints at 4, 8, ...
        seen = kill_after_checkpoint(_train_argv(data, run / "out", run / "results"), run / "out", 8, delay)
        assert seen >= 8
    run_to_end(_train_argv(data, run / "out", run / "results"))
    for name in (
        "model/model.safetensors",
        "epochs/step-000000044.safetensors",
        "epochs/step-000000048.safetensors",
    ):
        assert_same_weights(run / "out" / name, ref / "out" / name)
    metrics = json.loads((run / "out" / "metrics.json").read_text())["metrics"]
    ref_metrics = json.loads((ref / "out" / "metrics.json").read_text())["metrics"]
    assert without_timing(metrics) == without_timing(ref_metrics)
    [results] = list((run / "results").glob("*.jsonl"))
    assert len(read_jsonl(results)) == 1
    assert (run / "out" / "predictions.test.txt").read_text() == (
        ref / "out" / "predictions.test.txt"
    ).read_text()
