"""The Trainer stages of a GLUE run: one stage on transformers' Trainer, resumable, and a reused first stage.

Each stage runs in ``output_dir/<stage>/`` and is evaluated on its selection set (the first eval
split it is given: the held-out slice, or dev with ``select_on="dev"``) and checkpointed after every
epoch (and every ``save_steps`` optimizer steps, if set: stage_callbacks.py); a stage that selects
keeps its best epoch on that set. A finished stage
leaves ``stage_done.json`` and ``final_state.safetensors`` (for diff pruning only the trainable state,
see ``DiffPruningTrainer``); running again loads that state, and an unfinished stage resumes from its
last checkpoint (``resume_from_checkpoint``). A non-finite training loss stops the stage with
:class:`NonFiniteLossError`, keeping the last good checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import load_model as load_state
from safetensors.torch import save_model as save_state
from torch import nn
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from deltamix.core.errors import DeltamixError
from deltamix.core.io import atomic_path, atomic_write_json
from deltamix.core.run_folder import setting_differences
from deltamix.diffprune import DiffPruningModel
from deltamix.diffprune.trainer import load_trainable_state, save_trainable_state
from deltamix.experiments.glue.metrics import glue_metrics, task_score
from deltamix.experiments.glue.resume import FIRST_STAGE_SETTINGS, VALUES_WHEN_ABSENT
from deltamix.experiments.glue.stage_callbacks import SaveEveryStepsCallback, StageClock

logger = logging.getLogger(__name__)

_DONE = "stage_done.json"
_FINAL = "final_state.safetensors"


class StageSettings(Protocol):
    """The settings a stage reads; `deltamix.experiments.glue.settings.GlueRunConfig` has them all."""

    task: str
    output_dir: str | None
    seed: int
    batch_size: int
    eval_batch_size: int
    max_grad_norm: float
    weight_decay: float
    warmup_ratio: float
    max_steps: int | None
    logging_steps: int
    save_steps: int | None
    precision: str


def compute_metrics_fn(task: str):
    """A Trainer ``compute_metrics``: the task's official metrics plus ``score`` (their mean)."""

    def compute(eval_prediction) -> dict[str, float]:
        logits = eval_prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        metrics = glue_metrics(task, np.asarray(logits), np.asarray(eval_prediction.label_ids))
        metrics["score"] = task_score(metrics)
        return metrics

    return compute


def _training_args(
    config: StageSettings, stage_dir: Path, lr: float, epochs: int, select_best: bool, evals
) -> TrainingArguments:
    first = next(iter(evals))
    return TrainingArguments(
        output_dir=str(stage_dir),
        learning_rate=lr,
        num_train_epochs=epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        max_grad_norm=config.max_grad_norm,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a share of the steps
        eval_strategy="epoch" if config.max_steps is None else "steps",
        save_strategy="epoch" if config.max_steps is None else "steps",
        eval_steps=config.max_steps,
        save_steps=config.max_steps,
        save_total_limit=1,
        load_best_model_at_end=select_best,
        metric_for_best_model=f"{first}_score",
        greater_is_better=True,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,
        remove_unused_columns=False,
        label_names=["labels"],
        report_to="none",
        bf16=config.precision == "bf16",
        # Trainer refuses bf16 without a GPU unless told the run is on the CPU.
        use_cpu=config.precision == "bf16" and not torch.cuda.is_available(),
    )


def run_stage(
    name: str, config: StageSettings, model: nn.Module, data, lr: float, epochs: int, select_best: bool,
    trainer_cls=None,
) -> dict[str, Any]:  # fmt: skip
    """Train ``model`` for one stage in ``output_dir/name`` (skipped if already done); returns its log.

    A finished stage leaves ``stage_done.json`` and ``final_state.safetensors`` (the model's state
    dict at the end, after best-checkpoint loading); running again loads that state instead.
    """
    stage_dir = Path(config.output_dir) / name
    done = stage_dir / _DONE
    if done.is_file():
        _load_final(model, stage_dir / _FINAL)
        logger.info("stage %s already done: loaded %s", name, stage_dir / _FINAL)
        return json.loads(done.read_text())
    train, evals, tokenizer = data
    args = _training_args(config, stage_dir, lr, epochs, select_best, evals)
    trainer = guarded(trainer_cls or Trainer)(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evals,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics_fn(config.task),
    )
    last = last_complete_checkpoint(stage_dir, remove_partial=trainer.is_world_process_zero())
    trainer.accelerator.wait_for_everyone()
    if last is not None:
        logger.info("stage %s: resuming from %s", name, last)
    if config.save_steps is not None and config.max_steps is None:
        trainer.add_callback(SaveEveryStepsCallback(config.save_steps))
    clock = StageClock(last)
    trainer.add_callback(clock)
    trainer.train(resume_from_checkpoint=last)
    log = {
        "stage": name,
        **clock.summary(),
        "lr": lr,
        "epochs": epochs,
        "steps": trainer.state.global_step,
        "best_metric": trainer.state.best_metric,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "history": [e for e in trainer.state.log_history if any(k.endswith("_score") for k in e)],
    }
    gates = [  # the L0 stage's expected density (and multipliers) at each logging step
        {k: e[k] for k in ("step", "expected_density", "lambda_1", "lambda_2") if k in e}
        for e in trainer.state.log_history
        if "expected_density" in e
    ]
    if gates:
        log["gate_history"] = gates
    if trainer.is_world_process_zero():
        _save_final(model, stage_dir / _FINAL)
        atomic_write_json(done, log)
    trainer.accelerator.wait_for_everyone()
    return log


def adopt_first_stage(source: Path, out_dir: Path, settings: dict[str, Any], name: str) -> None:
    """Copy the finished first stage of run folder ``source`` into ``out_dir``, so `run_stage` loads it
    instead of training (a sparsity sweep trains the first stage once). Nothing to do if ``out_dir``
    already holds a finished first stage.

    Args:
        source: a run folder whose first stage was kept (``keep_first_stage``).
        out_dir: this run's folder.
        settings: this run's resolved settings (its ``config.json``).
        name: the first stage's folder (`deltamix.experiments.glue.methods.GlueMethod.first_stage`).

    Raises:
        DeltamixError: ``source`` holds no kept first stage, or its settings differ from ``settings``
            in one of `FIRST_STAGE_SETTINGS` (each named, with both values).
    """
    target = out_dir / name
    if (target / _DONE).is_file():
        return
    stage = source / name
    if not (stage / _DONE).is_file() or not (stage / _FINAL).is_file():
        raise DeltamixError(
            f"{source}: holds no finished, kept {name} stage ({name}/{_DONE} and {name}/{_FINAL}); "
            "run it with --keep-first-stage, then start other target sparsities from it"
        )
    try:
        theirs = json.loads((source / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DeltamixError(f"{source / 'config.json'}: unreadable ({error})") from error
    ours = {key: settings.get(key) for key in FIRST_STAGE_SETTINGS}
    differ = setting_differences(
        theirs, json.loads(json.dumps(ours, default=str)), values_when_absent=VALUES_WHEN_ABSENT
    )
    if differ:
        raise DeltamixError(
            f"{source}: its {name} stage was trained with other settings than this run's "
            f"({'; '.join(differ)}); only the target sparsity and the fixed-mask settings may differ"
        )
    log = {**json.loads((stage / _DONE).read_text(encoding="utf-8")), "reused_from": str(source)}
    with atomic_path(target / _FINAL) as tmp:
        shutil.copyfile(stage / _FINAL, tmp)
    atomic_write_json(target / _DONE, log)  # last: the marker says the stage is complete
    logger.info("took the %s stage of %s (trained once, reused here)", name, source)


def remove_checkpoints(stage_dir: Path) -> None:
    """Delete a finished stage's ``checkpoint-*`` folders, keeping its final state and marker."""
    for checkpoint in stage_dir.glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)


def last_complete_checkpoint(stage_dir: Path, remove_partial: bool = False) -> str | None:
    """The newest ``checkpoint-N`` folder that a kill did not interrupt, or None.

    Trainer writes ``trainer_state.json`` last, so a checkpoint without a readable one was cut
    short; with ``remove_partial`` (main process only) such folders are deleted so that Trainer's
    checkpoint rotation cannot mistake them for the newest.
    """
    if not stage_dir.is_dir():
        return None
    found = []
    for path in stage_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        suffix = path.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")
        if path.is_dir() and suffix.isdigit():
            found.append((int(suffix), path))
    last = None
    for _, path in sorted(found, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text())
            complete = True
        except (OSError, ValueError):
            complete = False
        if complete and last is None:
            last = path
        elif not complete and remove_partial:
            logger.warning("removing %s: a checkpoint cut short by an interruption", path)
            shutil.rmtree(path, ignore_errors=True)
    return str(last) if last is not None else None


def _save_final(model: nn.Module, path: Path) -> None:
    """A stage's final state: the trainable state of a DiffPruningModel (no frozen base), else the state dict."""
    if isinstance(model, DiffPruningModel):
        save_trainable_state(model, path)
        return
    with atomic_path(path) as tmp:
        save_state(model, str(tmp))  # handles tied (shared) tensors


def _load_final(model: nn.Module, path: Path) -> None:
    if isinstance(model, DiffPruningModel):
        load_trainable_state(model, path)
    else:
        load_state(model, str(path), strict=True)


class NonFiniteLossError(DeltamixError):
    """The training loss became NaN or Inf; the run stopped before applying that step's update."""


def guarded(trainer_cls: type) -> type:
    """``trainer_cls`` whose every training step stops the run if the loss is not finite.

    The check runs after the backward pass and before the optimizer step, so the parameters never
    take a non-finite update and no checkpoint is written from a diverged state: the last checkpoint
    on disk (if any) is the last good one, and rerunning the same command resumes from it (another
    --lr is another run: `check_same_run` refuses it in this folder). Costs one device sync per step.
    """
    if getattr(trainer_cls, "_deltamix_guarded", False):
        return trainer_cls

    class Guarded(trainer_cls):
        _deltamix_guarded = True

        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            if not torch.isfinite(loss.detach()).all():
                out = self.args.output_dir
                last = get_last_checkpoint(out) if os.path.isdir(out) else None
                raise NonFiniteLossError(
                    f"the training loss became {float(loss.detach())} at step {self.state.global_step + 1} "
                    f"(in {out}); stopped before the update. Last good checkpoint: {last or 'none yet'}. "
                    "The same command resumes from that checkpoint; a run is resumed with its own "
                    "settings only, so to lower the learning rate (--lr / --alpha-lr) start over in "
                    "another --output-dir."
                )
            return loss

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{trainer_cls.__name__}"
    return Guarded
