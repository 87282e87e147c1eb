"""--save-steps: a stage interrupted inside an epoch resumes from the mid-epoch checkpoint to the same result.

Each case trains a tiny BERT on 16 shared RTE examples in batches of 4 (4 steps per epoch), once straight
through and once stopped by an exception after a mid-epoch checkpoint, then run again: the stored
files must be equal bit for bit, and the stage log must count two segments.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deltamix.experiments.glue.run import GlueRunConfig, run_glue
from deltamix.experiments.glue.stage_callbacks import CLOCK_FILE

SMALL = {"max_train_examples": 16, "max_eval_examples": 16, "batch_size": 4, "logging_steps": 1, "lr": 1e-3}


class _Interrupted(RuntimeError):
    pass


def _config(tiny_model_dir: Path, glue_dir: Path, out: Path, **kwargs) -> GlueRunConfig:
    return GlueRunConfig(
        task="rte",
        model=str(tiny_model_dir),
        data_dir=str(glue_dir),
        output_dir=str(out / "run"),
        results_dir=str(out / "results"),
        **{**SMALL, **kwargs},
    )


def _stop_after(monkeypatch: pytest.MonkeyPatch, steps: int, seen: list[list[str]]) -> None:
    """Make the next training raise once `steps` optimizer steps are done, noting the checkpoints then."""
    from transformers import Trainer

    original = Trainer.training_step

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.state.global_step == steps:
            seen.append(sorted(p.name for p in Path(self.args.output_dir).glob("checkpoint-*")))
            raise _Interrupted(f"stopped after step {steps}")
        return original(self, model, inputs, num_items_in_batch)

    monkeypatch.setattr(Trainer, "training_step", training_step)


@pytest.mark.parametrize(
    ("method", "artifact", "settings", "save_steps", "stop_at", "checkpoint"),
    [
        # The L0 stage (4 steps per epoch) saved at step 2 and stopped before step 4: resumes mid-epoch 1.
        ("diffprune", "diff.safetensors", {"epochs": 1, "mask_epochs": 1}, 2, 3, "checkpoint-2"),
        # Full fine-tuning with best-epoch selection: epoch 1 ends at step 4 (scored), the extra
        # checkpoint at step 5 is mid-epoch 2; stopped before step 7, it resumes from step 5.
        ("full", "trained.safetensors", {"epochs": 2}, 5, 6, "checkpoint-5"),
    ],
)
def test_interrupted_inside_an_epoch_resumes_to_the_same_result(
    tiny_model_dir: Path,
    glue_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    artifact: str,
    settings: dict,
    save_steps: int,
    stop_at: int,
    checkpoint: str,
) -> None:
    torch.set_num_threads(1)
    straight = run_glue(_config(tiny_model_dir, glue_dir, tmp_path / "straight", method=method, **settings))

    config = _config(
        tiny_model_dir, glue_dir, tmp_path / "resumed", method=method, save_steps=save_steps, **settings
    )
    seen: list[list[str]] = []
    with monkeypatch.context() as patch:
        _stop_after(patch, stop_at, seen)
        with pytest.raises(_Interrupted):
            run_glue(config)
    assert checkpoint in seen[0]
    stage = "l0" if method == "diffprune" else "train"
    assert (Path(config.output_dir) / stage / checkpoint / CLOCK_FILE).is_file()
    resumed = run_glue(config)

    assert resumed["metrics"] == straight["metrics"]
    ours = load_file(Path(config.output_dir) / artifact)
    theirs = load_file(Path(straight["output_dir"]) / artifact)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name
    first = resumed["stages"][0]
    assert first["segments"] == 2 and first["seconds_complete"] is True
    assert first["seconds"] > 0
    assert straight["stages"][0]["segments"] == 1
    assert json.loads((Path(config.output_dir) / "config.json").read_text())["save_steps"] == save_steps


def test_save_steps_may_change_when_a_run_is_resumed(
    tiny_model_dir: Path, glue_dir: Path, tmp_path: Path
) -> None:
    """Checkpointing more often does not change the result, so a run started without it takes it on restart."""
    config = _config(tiny_model_dir, glue_dir, tmp_path, method="bitfit", epochs=1, max_steps=1)
    run_glue(config)
    again = _config(tiny_model_dir, glue_dir, tmp_path, method="bitfit", epochs=1, max_steps=1, save_steps=7)
    assert run_glue(again)["metrics"] == json.loads((Path(config.output_dir) / "metrics.json").read_text())


def test_save_steps_must_be_positive(tiny_model_dir: Path, glue_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="save_steps must be > 0"):
        _config(tiny_model_dir, glue_dir, tmp_path, method="full", save_steps=0)
