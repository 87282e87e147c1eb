"""Early stopping on the validation loss (`TextRunConfig.patience`): when it stops, resuming, records."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deltamix.core.io import read_jsonl
from deltamix.experiments.text.run import TextRunConfig, run_text
from deltamix.training.loop import Seq2SeqTrainingLoop

PAIRS = [("walk twice", "WALK WALK"), ("jump", "JUMP"), ("walk", "WALK"), ("jump twice", "JUMP JUMP")] * 2


def _config(tmp_path: Path, name: str, **overrides) -> TextRunConfig:
    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS), encoding="utf-8")
    settings = {
        "kind": "train", "metric": "exact_match", "model": "transformer", "train_file": str(data),
        "valid_file": str(data), "test_file": str(data), "epochs": 8, "batch_size": 2, "patience": 2,
        "threads": 1, "precision": "fp32", "max_output_length": 4, "output_dir": tmp_path / name,
        "results_dir": tmp_path / "results",
    }  # fmt: skip
    return TextRunConfig(**{**settings, **overrides})


def _scripted_losses(monkeypatch, losses: list[float], fail_at: int | None = None) -> list[int]:
    """validation_loss returns ``losses`` in turn (raising KeyboardInterrupt at call ``fail_at``)."""
    calls: list[int] = []

    def fake(self, pairs) -> float:
        calls.append(len(calls))
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt
        return losses[len(calls) - 1]

    monkeypatch.setattr(Seq2SeqTrainingLoop, "validation_loss", fake)
    return calls


def test_the_run_stops_once_patience_epochs_pass_without_a_lower_loss(tmp_path: Path, monkeypatch) -> None:
    _scripted_losses(monkeypatch, [3.0, 2.0, 2.5, 2.6, 1.0, 1.0, 1.0, 1.0])
    result = run_text(_config(tmp_path, "run"))
    assert result.metrics["epochs"] == 4 and result.metrics["stopped_early"] == 1.0
    assert result.metrics["best_valid_loss"] == 2.0
    logged = [e["valid_loss"] for e in read_jsonl(tmp_path / "run" / "log.jsonl") if "valid_loss" in e]
    assert logged == [3.0, 2.0, 2.5, 2.6]
    (record,) = read_jsonl(tmp_path / "results" / "parsing.jsonl")
    assert record["config"]["run"]["patience"] == 2


def test_an_interrupted_run_stops_where_an_uninterrupted_one_does(tmp_path: Path, monkeypatch) -> None:
    losses = [3.0, 2.0, 2.5, 2.6, 1.0, 1.0, 1.0, 1.0]
    _scripted_losses(monkeypatch, losses)
    straight = run_text(_config(tmp_path, "straight"))
    calls = _scripted_losses(monkeypatch, losses, fail_at=3)  # killed while validating epoch 3
    with pytest.raises(KeyboardInterrupt):
        run_text(_config(tmp_path, "resumed"))
    calls.clear()
    _scripted_losses(monkeypatch, losses[2:])  # the resumed process validates epoch 3 again, then 4
    resumed = run_text(_config(tmp_path, "resumed"))
    assert resumed.metrics["epochs"] == straight.metrics["epochs"] == 4
    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model" / "model.safetensors"))
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_the_real_validation_loss_is_finite_and_falls_with_training(tmp_path: Path) -> None:
    result = run_text(_config(tmp_path, "real", epochs=3, patience=5))
    logged = [e["valid_loss"] for e in read_jsonl(tmp_path / "real" / "log.jsonl") if "valid_loss" in e]
    assert len(logged) == 3 and logged[-1] < logged[0]
    assert result.metrics["stopped_early"] == 0.0


def test_a_run_killed_as_it_stopped_early_finishes_with_its_trained_weights(
    tmp_path: Path, monkeypatch
) -> None:
    losses = [3.0, 2.0, 2.5, 2.6, 1.0, 1.0, 1.0, 1.0]
    _scripted_losses(monkeypatch, losses)
    straight = run_text(_config(tmp_path, "straight"))
    _scripted_losses(monkeypatch, losses)
    finish = Seq2SeqTrainingLoop.finish

    def killed(self, state):
        raise KeyboardInterrupt

    monkeypatch.setattr(Seq2SeqTrainingLoop, "finish", killed)
    with pytest.raises(KeyboardInterrupt):
        run_text(_config(tmp_path, "resumed"))
    monkeypatch.setattr(Seq2SeqTrainingLoop, "finish", finish)
    resumed = run_text(_config(tmp_path, "resumed"))  # every loss is logged: it finishes at once
    assert resumed.metrics["epochs"] == straight.metrics["epochs"] == 4
    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model" / "model.safetensors"))
    assert all(torch.equal(a[name], b[name]) for name in a)
