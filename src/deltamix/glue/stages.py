"""The Trainer stages of a GLUE run: one stage on transformers' Trainer, and diff pruning's three.

Each stage runs in ``output_dir/<stage>/`` and is evaluated on dev after every epoch. A finished stage
leaves ``stage_done.json`` and ``final_state.safetensors``; running again loads that state, and an
unfinished stage resumes from its last checkpoint (``resume_from_checkpoint``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from deltamix.glue.methods import PreparedModel, diff_budget, head_module_names, split_parameters
from deltamix.io import atomic_path, atomic_write_json
from deltamix.metrics import glue_metrics, task_score

if TYPE_CHECKING:
    from deltamix.glue.run import GlueRunConfig

logger = logging.getLogger(__name__)

_DONE = "stage_done.json"
_FINAL = "final_state.safetensors"


def compute_metrics_fn(task: str):
    """A Trainer ``compute_metrics``: the task's official metrics plus ``score`` (their mean)."""

    def compute(eval_prediction) -> dict[str, float]:
        logits = eval_prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        metrics = glue_metrics(task, np.asarray(logits), np.asarray(eval_prediction.label_ids))
        metrics["score"] = task_score(metrics)
        return metrics

    return compute


def _training_args(config: GlueRunConfig, stage_dir: Path, lr: float, epochs: int, select_best: bool, evals):
    from transformers import TrainingArguments

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
    )


def run_stage(
    name: str, config: GlueRunConfig, model: nn.Module, data, lr: float, epochs: int, select_best: bool,
    trainer_cls=None,
) -> dict[str, Any]:  # fmt: skip
    """Train ``model`` for one stage in ``output_dir/name`` (skipped if already done); returns its log.

    A finished stage leaves ``stage_done.json`` and ``final_state.safetensors`` (the model's state
    dict at the end, after best-checkpoint loading); running again loads that state instead.
    """
    from safetensors.torch import load_model as load_state
    from safetensors.torch import save_model as save_state
    from transformers import DataCollatorWithPadding, Trainer
    from transformers.trainer_utils import get_last_checkpoint

    stage_dir = Path(config.output_dir) / name
    done = stage_dir / _DONE
    if done.is_file():
        load_state(model, str(stage_dir / _FINAL), strict=True)
        logger.info("stage %s already done: loaded %s", name, stage_dir / _FINAL)
        return json.loads(done.read_text())
    train, evals, tokenizer = data
    args = _training_args(config, stage_dir, lr, epochs, select_best, evals)
    trainer = (trainer_cls or Trainer)(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evals,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics_fn(config.task),
    )
    last = get_last_checkpoint(str(stage_dir)) if stage_dir.is_dir() else None
    if last is not None:
        logger.info("stage %s: resuming from %s", name, last)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - start
    log = {
        "stage": name,
        "seconds": seconds,
        "lr": lr,
        "epochs": epochs,
        "steps": trainer.state.global_step,
        "best_metric": trainer.state.best_metric,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "history": [e for e in trainer.state.log_history if any(k.endswith("_score") for k in e)],
    }
    if trainer.is_world_process_zero():
        with atomic_path(stage_dir / _FINAL) as tmp:
            save_state(model, str(tmp))  # handles tied (shared) tensors
        atomic_write_json(done, log)
    trainer.accelerator.wait_for_everyone()
    return log


def resumable_diff_trainer() -> type:
    """``DiffPruningTrainer`` whose checkpoints also hold the wrapper's full state (``model.safetensors``).

    ``DiffPruningTrainer`` saves only the exported diff, from which Trainer can neither resume (the
    L0 stage needs ``w`` and ``alpha``) nor load the best checkpoint; with the state dict beside it,
    both go through Trainer's own code.
    """
    import os

    from safetensors.torch import save_model as save_state

    from deltamix.diffprune.trainer import DiffPruningTrainer

    class ResumableDiffPruningTrainer(DiffPruningTrainer):
        def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
            super()._save(output_dir, state_dict)
            if self.args.should_save:
                path = os.path.join(output_dir or self.args.output_dir, "model.safetensors")
                save_state(self.diff_model, path, force_contiguous=True)

    return ResumableDiffPruningTrainer


def _diff_config(config: GlueRunConfig, model: nn.Module):
    from deltamix.diffprune import DiffPruningConfig

    return DiffPruningConfig(
        target_sparsity=config.target_sparsity,
        structured=config.method == "diffprune-structured",
        learn_gates=config.method != "diffprune-nonadaptive",
        l0_lambda=config.l0_lambda,
        dense_modules=head_module_names(model),
        learning_rate=config.resolved_lr(),
        alpha_learning_rate=config.alpha_lr,
        dense_learning_rate=config.head_lr,
        fixed_mask_learning_rate=config.mask_lr,
        weight_decay=config.weight_decay,
    )


def train_diffprune(config: GlueRunConfig, model: nn.Module, data, mask_epochs: int):
    """The three stages; returns (the DiffPruningModel after stage 3, stage logs, its prepared info)."""
    from deltamix.diffprune import DiffPruningModel

    trainer_cls = resumable_diff_trainer()
    body, head = split_parameters(model)
    dp_config = _diff_config(config, model)
    stage1_config = dp_config.to_dict()
    wrapped = DiffPruningModel(model, dp_config)
    first = "full-ft" if config.method == "diffprune-nonadaptive" else "l0"
    logs = [run_stage(first, config, wrapped, data, config.resolved_lr(), config.epochs, False, trainer_cls)]
    start = time.perf_counter()
    nonzero, budget = wrapped.nnz(), diff_budget(model, config.target_sparsity)
    if nonzero < budget:
        logger.warning(
            "only %d diff entries are non-zero after stage 1, fewer than the %d the projection keeps: the "
            "gates closed early (try a higher --lr or a lower --alpha-lr / --l0-lambda); the rest of the "
            "budget is filled with zero entries, which stay 0 unless their gradient moves them",
            nonzero,
            budget,
        )
    wrapped.project_(config.target_sparsity)
    logs.append(
        {
            "stage": "projection",
            "seconds": time.perf_counter() - start,
            "nonzero_before": nonzero,
            "kept": budget,
        }
    )
    # The fixed-mask stage fine-tunes the kept entries and the head together at the stage's rate.
    wrapped.diff_config.dense_learning_rate = config.head_lr or config.mask_lr
    logs.append(
        run_stage("fixed-mask", config, wrapped, data, config.mask_lr, mask_epochs, True, trainer_cls)
    )
    prepared = PreparedModel(
        model=wrapped,
        method=config.method,
        stored_params=diff_budget(model, config.target_sparsity),
        base_params=sum(p.numel() for p in body.values()),
        head_params=sum(p.numel() for p in head.values()),
        details={"diffprune_config": stage1_config, "fixed_mask_head_lr": config.head_lr or config.mask_lr},
    )
    return wrapped, logs, prepared
