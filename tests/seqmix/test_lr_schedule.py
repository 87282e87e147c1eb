"""Learning-rate schedules: closed forms (fairseq's inverse_sqrt), bad settings, and the trainer's rates."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from deltamix.io import read_jsonl
from deltamix.seqmix.lr_schedule import lr_factor

from .test_trainer import _trainer, scan_slice  # noqa: F401 (a fixture)


def test_warm_up_then_constant() -> None:
    assert [lr_factor(t, 4, "constant") for t in (1, 2, 3, 4, 5, 100)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lr_factor(1, 0, "constant") == 1.0


def test_inverse_sqrt_is_fairseqs() -> None:
    """fairseq: lr = peak * t / warmup while t < warmup, then peak * sqrt(warmup) * t ** -0.5."""
    peak, warmup = 5e-4, 4000
    for t in (1, 1000, 3999, 4000, 4001, 16000, 100_000):
        fairseq = peak * t / warmup if t < warmup else peak * math.sqrt(warmup) * t**-0.5
        assert peak * lr_factor(t, warmup, "inverse-sqrt") == pytest.approx(fairseq, rel=1e-12)
    assert lr_factor(16000, 4000, "inverse-sqrt") == 0.5


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'cosine'"):
        lr_factor(1, 10, "cosine")
    with pytest.raises(ValueError, match=r"needs warmup_steps >= 1 \(--warmup-steps\), got 0"):
        lr_factor(1, 0, "inverse-sqrt")


def test_trainer_follows_the_schedule_across_a_resume(scan_slice, tmp_path: Path) -> None:  # noqa: F811
    """The logged rate after update s is the rate of update s + 1, also after resuming at step 4."""
    settings = {"learning_rate": 1e-2, "warmup_steps": 2, "lr_schedule": "inverse-sqrt", "log_interval": 1}
    first = _trainer(scan_slice, tmp_path / "run", **settings)
    assert not first.train(stop_after=4).finished
    assert _trainer(scan_slice, tmp_path / "run", **settings).train().step == 6
    logged = {row["step"]: row["lr"] for row in read_jsonl(tmp_path / "run" / "log.jsonl") if "lr" in row}
    assert sorted(logged) == [1, 2, 3, 4, 5, 6]
    for step, lr in logged.items():
        assert lr == pytest.approx(1e-2 * lr_factor(step + 1, 2, "inverse-sqrt"), rel=1e-12), step
