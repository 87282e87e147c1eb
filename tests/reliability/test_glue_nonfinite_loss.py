"""A GLUE run whose loss becomes NaN stops with a clear message and keeps its last good checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deltamix.cli.main import main
from deltamix.diffprune.trainer import STATE_FILE_NAME, DiffPruningTrainer

from .test_glue_sigkill_resume import _argv, tiny_bert  # noqa: F401 (a fixture)


def test_nan_loss_stops_the_run_keeping_the_last_good_checkpoint(
    tiny_bert: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    shared_data,
) -> None:
    glue = shared_data("glue", "RTE/train.tsv")
    original = DiffPruningTrainer.compute_loss
    seen: list[int] = []

    def diverging(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = original(self, model, inputs, return_outputs, num_items_in_batch)
        seen.append(self.state.global_step)
        if self.state.global_step < 3:  # the loss diverges at the 4th step, after the checkpoint at step 2
            return result
        loss = (result[0] if return_outputs else result) * float("nan")
        return (loss, result[1]) if return_outputs else loss

    monkeypatch.setattr(DiffPruningTrainer, "compute_loss", diverging)
    run = tmp_path / "run"
    code = main(_argv(tiny_bert, glue, run, tmp_path / "results"))
    error = capsys.readouterr().err
    assert code == 2
    assert "training loss became nan at step 4" in error and "l0/checkpoint-2" in error, error
    assert max(seen) == 3  # stopped at once, not trained on
    checkpoint = run / "l0" / "checkpoint-2"
    assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == 2
    from safetensors.torch import load_file

    state = load_file(str(checkpoint / STATE_FILE_NAME))
    assert all(torch.isfinite(v.float()).all() for v in state.values())
    assert not (run / "l0" / "checkpoint-4").exists() and not (run / "metrics.json").exists()
    assert not (tmp_path / "results" / "glue.jsonl").exists()
