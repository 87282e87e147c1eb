"""Epoch snapshots of a training run, their average (fairseq's checkpoint averaging) and early
stopping on the validation loss.

`train_with_snapshots` drives a `Seq2SeqTrainingLoop` one epoch at a time, saving the weights at
each epoch end in ``<run>/epochs/`` (the last ``keep``); `average_checkpoints` averages such files.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from deltamix.core.io import atomic_path
from deltamix.data.seq2seq import Pair

logger = logging.getLogger(__name__)

EPOCH_DIR = "epochs"  # folder of a run that holds the epoch snapshots


def average_checkpoints(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the tensors in safetensors files ``paths`` (fairseq's
    ``average_checkpoints.py``): floating tensors are averaged in float64 and cast back, others are
    taken from the last file.

    Raises:
        ValueError: no paths, or files with different tensor names or shapes.
    """
    if not paths:
        raise ValueError("average_checkpoints needs at least one file")
    states = [load_file(str(p)) for p in paths]
    names = set(states[0])
    for path, state in zip(paths[1:], states[1:], strict=True):
        if set(state) != names:
            raise ValueError(f"{path} holds other tensors than {paths[0]}")
    averaged = {}
    for name in states[0]:
        tensors = [state[name] for state in states]
        if any(t.shape != tensors[0].shape for t in tensors):
            raise ValueError(f"tensor {name!r} has different shapes across checkpoints")
        if tensors[0].is_floating_point():
            total = torch.stack([t.double() for t in tensors]).mean(0)
            averaged[name] = total.to(tensors[0].dtype)
        else:
            averaged[name] = tensors[-1]
    return averaged


def _save_epoch_snapshot(model: torch.nn.Module, folder: Path, step: int, keep: int) -> None:
    """Save ``model``'s weights as ``folder/step-<step>.safetensors`` and keep only the last ``keep``."""
    path = folder / f"step-{step:09d}.safetensors"
    if not path.exists():
        # Cloned, so that tied weights (e.g. a Hugging Face model's shared embeddings) are stored as
        # separate tensors: safetensors refuses shared memory, and load_state_dict restores the tie.
        tensors = {
            name: value.detach().cpu().clone().contiguous() for name, value in model.state_dict().items()
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt"})
    for old in sorted(folder.glob("step-*.safetensors"))[:-keep]:
        old.unlink()


def train_with_snapshots(
    trainer: Any, keep: int, valid: list[Pair] | None = None, patience: int | None = None
) -> tuple[Any, list[float]]:
    """Train to the end of the budget, saving the weights at each epoch end (the last ``keep``).

    The trainer is called one epoch at a time (``stop_after`` up to the next epoch boundary, so a
    resumed run keeps its boundaries); with ``keep`` <= 1 and no ``patience`` it trains in one call.
    With ``patience``, the loss on ``valid`` is measured at each epoch end (logged as ``valid_loss``,
    so a resumed run knows the earlier epochs') and the run finishes once ``patience`` epochs have
    passed without a new lowest loss.

    Returns:
        The final trainer state and the validation loss of each epoch (empty without ``patience``).
    """
    if keep <= 1 and patience is None:
        return trainer.train(), []
    folder = trainer.output_dir / EPOCH_DIR
    model = trainer.accelerator.unwrap_model(trainer.model)
    per_epoch = trainer.steps_per_epoch

    def snapshot(state: Any) -> None:  # before the epoch-end checkpoint: a kill cannot lose it
        if trainer.is_main and state.step % per_epoch == 0 and keep > 1:
            _save_epoch_snapshot(model, folder, state.step, keep)

    trainer.before_checkpoint = snapshot
    losses = _logged_valid_losses(trainer.output_dir / "log.jsonl")
    weights_current = False  # whether the model in memory is the checkpoint's (after a train call)
    while True:
        previous = trainer.read_state()
        done_steps = 0 if previous is None else previous.step
        if previous is not None and previous.finished:
            return trainer.train(), [losses[k] for k in sorted(losses)]
        if patience is not None and done_steps and done_steps % per_epoch == 0:
            if not weights_current:  # a resumed process: evaluate the checkpoint, not the initial weights
                trainer.restore_checkpoint()
                weights_current = True
            if done_steps not in losses:  # killed between the epoch's checkpoint and its validation
                losses[done_steps] = trainer.validation_loss(valid)
                trainer.log_event({"step": done_steps, "valid_loss": losses[done_steps]})
            if _epochs_since_best(losses) >= patience:
                logger.info("validation loss has not improved for %d epochs: stopping early", patience)
                state = trainer.finish(previous)
                return state, [losses[k] for k in sorted(losses)]
        state = trainer.train(stop_after=per_epoch - done_steps % per_epoch)
        weights_current = True
        if trainer.is_main and state.finished and keep > 1:
            _save_epoch_snapshot(model, folder, state.step, keep)
        trainer.accelerator.wait_for_everyone()
        if state.finished:
            if patience is not None and state.step not in losses:
                losses[state.step] = trainer.validation_loss(valid)
                trainer.log_event({"step": state.step, "valid_loss": losses[state.step]})
            return state, [losses[k] for k in sorted(losses)]


def _logged_valid_losses(path: Path) -> dict[int, float]:
    """step -> validation loss of the ``valid_loss`` events of a run's log (empty if none)."""
    if not path.is_file():
        return {}
    losses = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and "valid_loss" in event:
            losses[int(event["step"])] = float(event["valid_loss"])
    return losses


def _epochs_since_best(losses: dict[int, float]) -> int:
    """How many epochs (entries, in step order) came after the one with the lowest loss."""
    ordered = [losses[k] for k in sorted(losses)]
    return len(ordered) - 1 - ordered.index(min(ordered))
