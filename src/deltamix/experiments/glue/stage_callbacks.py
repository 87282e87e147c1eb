"""Trainer callbacks that make a long stage survive interruptions: checkpoints inside an epoch, and a clock.

A GLUE stage is checkpointed at the end of each epoch. One epoch of SST-2's L0 stage is about two
hours on one CPU core, so a machine that stops (a preempted GPU, a session that ends) loses up to that
much. :class:`SaveEveryStepsCallback` adds a resumable checkpoint every N optimizer steps; Trainer
resumes from it mid-epoch (it skips the batches already seen and restores the random state, so the
result is the one an uninterrupted run gives). The best-checkpoint selection is unaffected: only the
end-of-epoch checkpoints carry a score (held-out slice or dev), and Trainer's rotation keeps the best and the newest.

:class:`StageClock` sums a stage's training seconds over the processes that ran it, so a record's
``seconds`` is the whole stage's time, not only that of the last process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from deltamix.core.io import atomic_write_json

CLOCK_FILE = "stage_clock.json"


class SaveEveryStepsCallback(TrainerCallback):
    """Ask Trainer for a checkpoint after every ``every`` optimizer steps, on top of its own schedule."""

    def __init__(self, every: int) -> None:
        if every <= 0:
            raise ValueError(f"save_steps must be > 0, got {every}")
        self.every = every

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0:
            control.should_save = True
        return control


class StageClock(TrainerCallback):
    """A stage's training seconds, summed over the processes that ran it (each resume is a segment).

    Each checkpoint gets ``stage_clock.json`` (:meth:`summary` at that checkpoint). A
    process resuming from a checkpoint without it (written by a version before this clock, or killed
    between the checkpoint and this file) counts from zero and says so in ``seconds_complete``.
    """

    def __init__(self, resumed_from: str | None) -> None:
        self.prior_seconds, self.prior_segments, self.complete = 0.0, 0, True
        if resumed_from is not None:
            try:
                saved = json.loads((Path(resumed_from) / CLOCK_FILE).read_text(encoding="utf-8"))
                self.prior_seconds, self.prior_segments = float(saved["seconds"]), int(saved["segments"])
                self.complete = bool(saved.get("seconds_complete", True))
            except (OSError, ValueError, KeyError, TypeError):
                self.prior_segments, self.complete = 1, False
        self.start = time.perf_counter()

    def seconds(self) -> float:
        """Training seconds of the stage so far, this process included."""
        return self.prior_seconds + time.perf_counter() - self.start

    def summary(self) -> dict[str, float | int | bool]:
        """``seconds``, ``segments`` (processes that trained the stage) and ``seconds_complete``."""
        return {
            "seconds": self.seconds(),
            "segments": self.prior_segments + 1,
            "seconds_complete": self.complete,
        }

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            checkpoint = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if checkpoint.is_dir():
                atomic_write_json(checkpoint / CLOCK_FILE, self.summary())
        return control
