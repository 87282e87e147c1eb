"""The files of a resumable run: `TrainerState`, checkpoint folders written atomically, and their checks.

A run folder holds ``trainer_state.json`` once finished, or ``checkpoint/`` (accelerate's
``save_state`` files plus ``trainer_state.json``) while training. A checkpoint is written as
``checkpoint.tmp`` and published by renames (`publish_checkpoint`); a save killed between two
renames leaves ``checkpoint.old``, which `recover_interrupted_save` sorts out. The functions touch
files only, on the main process; `RunCheckpoints` calls them in a job of any number of processes,
synchronising the processes around them.

>>> checkpoints = RunCheckpoints(accelerator, Path("runs/x"))   # doctest: +SKIP
>>> state = checkpoints.read_state()                            # None for a new run  # doctest: +SKIP
>>> checkpoints.save(state); checkpoints.load()                 # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import load as safe_load
from safetensors.torch import load_file
from torch import Tensor

from deltamix.core.errors import DataFormatError
from deltamix.core.io import atomic_write_json, atomic_write_text

STATE_FILE = "trainer_state.json"
CHECKPOINT_DIR = "checkpoint"


@dataclass
class TrainerState:
    """Progress of a run, saved with each checkpoint (JSON)."""

    step: int = 0
    total_steps: int = 0
    train_seconds: float = 0.0
    finished: bool = False
    last_loss: float | None = None
    resumed_from: int | None = None
    # Losses of the steps since the last log line, so that a resumed run logs the same means.
    pending_losses: list[float] = field(default_factory=list)


class RunCheckpoints:
    """The checkpoint of one run folder, saved and restored by every process of an accelerate job.

    Args:
        accelerator: the job's accelerator, whose prepared model, optimizer and scheduler (and the
            random states) ``save_state`` / ``load_state`` write and read.
        output_dir: the run folder.
    """

    def __init__(self, accelerator: Accelerator, output_dir: Path) -> None:
        self.accelerator = accelerator
        self.output_dir = output_dir
        self.directory = output_dir / CHECKPOINT_DIR
        accelerator.register_save_state_pre_hook(unshare_weights)
        accelerator.register_load_state_pre_hook(load_weights_strictly)

    def read_state(self) -> TrainerState | None:
        """The state of a finished run or of the last checkpoint (None for a new run)."""
        if self.accelerator.is_main_process:
            recover_interrupted_save(self.output_dir)
        self.accelerator.wait_for_everyone()
        return read_trainer_state(self.output_dir)

    def save(self, state: TrainerState) -> None:
        """Save a resumable checkpoint atomically: write ``checkpoint.tmp``, then rename it."""
        tmp = self.output_dir / f"{CHECKPOINT_DIR}.tmp"
        if self.accelerator.is_main_process and tmp.exists():
            shutil.rmtree(tmp)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp))
        if self.accelerator.is_main_process:
            publish_checkpoint(self.output_dir, state)
        self.accelerator.wait_for_everyone()

    def load(self) -> None:
        """Restore the checkpoint written by `save`, refusing anything but plain tensors and data.

        accelerate reads its pickled files (optimizer, scheduler, random states) with
        ``torch.load(weights_only=True)``, so a checkpoint cannot run code; but it silently skips random
        states it cannot read, which would make a resumed run differ from an uninterrupted one. So each
        file is checked first (same loader), and the random states are compared after loading.

        Raises:
            DataFormatError: if a file is missing, is not a plain-data pickle, or was not restored.
        """
        rank = self.accelerator.process_index
        states = read_checkpoint_files(self.directory, rank)
        self.accelerator.load_state(str(self.directory))
        check_random_states_restored(self.directory, states, rank)

    def last_step(self) -> int | None:
        """The step of the last published checkpoint (None without one)."""
        kept = self.directory / STATE_FILE
        return json.loads(kept.read_text())["step"] if kept.exists() else None


def recover_interrupted_save(output_dir: Path) -> None:
    """Leave exactly one ``checkpoint/`` after a save killed part-way (main process only)."""
    old = output_dir / f"{CHECKPOINT_DIR}.old"
    if not old.exists():
        return
    if (output_dir / CHECKPOINT_DIR).exists():
        shutil.rmtree(old)  # killed while removing the previous checkpoint after a save
    else:
        old.rename(output_dir / CHECKPOINT_DIR)  # killed between the two renames of a save


def read_trainer_state(output_dir: Path) -> TrainerState | None:
    """The state of a finished run (``output_dir/trainer_state.json``) or of its last checkpoint.

    Raises:
        DataFormatError: a state file that is not a `TrainerState` in JSON.
    """
    for path in (output_dir / STATE_FILE, output_dir / CHECKPOINT_DIR / STATE_FILE):
        if path.exists():
            try:
                return TrainerState(**json.loads(path.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, TypeError) as error:
                raise DataFormatError(path, f"unreadable trainer state ({error})") from error
    return None


def write_final_state(output_dir: Path, state: TrainerState) -> None:
    """Mark the run finished on disk: its state file, then no checkpoints (main process only)."""
    atomic_write_json(output_dir / STATE_FILE, asdict(state))
    remove_checkpoints(output_dir)


def remove_checkpoints(output_dir: Path) -> None:
    """Remove the checkpoint of a finished run and any left by a killed save."""
    for suffix in ("", ".tmp", ".old"):
        shutil.rmtree(output_dir / f"{CHECKPOINT_DIR}{suffix}", ignore_errors=True)


def publish_checkpoint(output_dir: Path, state: TrainerState) -> None:
    """Add ``state`` to the ``checkpoint.tmp`` that ``save_state`` wrote, flush it to disk and rename it
    to ``checkpoint`` in place of the previous one (main process only)."""
    final = output_dir / CHECKPOINT_DIR
    tmp = output_dir / f"{CHECKPOINT_DIR}.tmp"
    atomic_write_json(tmp / STATE_FILE, asdict(state))
    fsync_tree(tmp)  # the rename below must not publish files still in the page cache only
    old = output_dir / f"{CHECKPOINT_DIR}.old"
    if old.exists():  # left by a save killed while removing it
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def read_checkpoint_files(directory: Path, process_index: int) -> dict[str, Any]:
    """The pickled files of a checkpoint (optimizer, scheduler, random states), read as plain data only.

    accelerate reads them with ``torch.load(weights_only=True)`` too, but silently skips random states
    it cannot read; reading them first turns a missing or hostile file into an error.

    Returns:
        File name -> its contents, for every ``*.bin`` and ``*.pkl`` file of ``directory``.

    Raises:
        DataFormatError: a file is missing or is not a plain-data pickle.
    """
    rng_name = random_states_file(process_index)
    for name in ("model.safetensors", "optimizer.bin", "scheduler.bin", rng_name):
        if not (directory / name).is_file():
            raise DataFormatError(directory / name, "missing from the checkpoint")
    states = {}
    for path in sorted(directory.glob("*.bin")) + sorted(directory.glob("*.pkl")):
        try:
            states[path.name] = safe_load(path, map_location="cpu")
        except Exception as error:  # pickle and torch raise many types for a hostile file
            raise DataFormatError(
                path, f"not a plain tensor/data checkpoint file, refusing to load it ({error})"
            ) from error
    return states


def random_states_file(process_index: int) -> str:
    """The name of process ``process_index``'s random states in an accelerate checkpoint."""
    return f"random_states_{process_index}.pkl"


def check_random_states_restored(directory: Path, states: dict[str, Any], process_index: int) -> None:
    """Raise `DataFormatError` unless torch's random state is the one saved in the checkpoint."""
    name = random_states_file(process_index)
    saved = states[name]
    if not (isinstance(saved, dict) and torch.equal(saved.get("torch_manual_seed"), torch.get_rng_state())):
        raise DataFormatError(directory / name, "the random states were not restored")


def unshare_weights(models: list[torch.nn.Module], weights: list[dict[str, Tensor]], output_dir: str) -> None:
    """accelerate's save-state hook: give every tensor of the checkpoint its own memory.

    On CUDA, cuDNN packs an LSTM's weights into one buffer, so its state dict holds views that share
    storage with no single one covering it; safetensors would then keep one of those names and drop
    the rest (accelerate only warns "Removed shared tensor"), losing weights. Cloned, all are saved.
    """
    for state in weights:
        for name, value in state.items():
            state[name] = value.detach().clone()


def load_weights_strictly(models: list[torch.nn.Module], input_dir: str) -> None:
    """accelerate's load-state hook: load each model's checkpoint weights with ``load_state_dict``.

    safetensors' own loader refuses a model whose parameters share memory the way cuDNN's packed
    LSTM weights do (see `unshare_weights`); ``load_state_dict`` copies into them, strictly (every
    name present, none unexpected). The models are removed from ``models`` so accelerate skips them.
    """
    for index in reversed(range(len(models))):
        path = Path(input_dir) / ("model.safetensors" if index == 0 else f"model_{index}.safetensors")
        if not path.is_file():
            raise DataFormatError(path, "missing from the checkpoint")
        device = next(models[index].parameters()).device
        models[index].load_state_dict(load_file(str(path), device=str(device)))
        del models[index]


def fsync_tree(directory: Path) -> None:
    """Flush every file under ``directory`` and the folder itself to disk."""
    for path in directory.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def truncate_log(path: Path, step: int) -> None:
    """Drop the events after ``step`` from a run's log (they are trained and logged again on resume)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill mid-write (append_jsonl writes whole lines, so unlikely)
        if isinstance(event, dict) and int(event.get("step", 0)) <= step:
            kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))
