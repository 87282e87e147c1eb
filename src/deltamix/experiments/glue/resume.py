"""Which settings a GLUE run folder compares when the same command starts it again, and which may differ.

A run folder's ``config.json`` holds the resolved settings it was started with; a restart must
resolve to the same ones (`deltamix.core.run_folder.check_same_run`), except those below.
"""

from __future__ import annotations

from pathlib import Path

# Fields that may change between an interrupted run and its restart (resolved_mask_lr follows from
# mask_lr and model, which are compared).
MAY_DIFFER_ON_RESTART = (
    "keep_checkpoints", "keep_first_stage", "logging_steps", "results_dir", "eval_batch_size", "save_steps",
    "resolved_mask_lr", "threads",
)  # fmt: skip
# Settings added after runs were started, with the value those runs had (see check_same_run).
VALUES_WHEN_ABSENT = {
    "keep_first_stage": False, "first_stage_from": None, "clip_gates_apart": False, "l0_target_density": None,
    "multiplier_lr": 0.05, "precision": "fp32", "select_on": "dev", "holdout_size": None,
    "holdout_examples": None,
}  # fmt: skip

# The resolved settings a diff pruning run's first stage depends on: a run may take another run's first
# stage (`deltamix.experiments.glue.stages.adopt_first_stage`) only if these are equal. Not among them:
# the target sparsity and the fixed-mask stage's settings, which act after the first stage.
FIRST_STAGE_SETTINGS = (
    "task", "method", "model_path", "data_dir", "seed", "max_length", "batch_size", "epochs", "resolved_lr",
    "alpha_lr", "head_lr", "resolved_l0_lambda", "structured_penalty", "max_grad_norm", "clip_gates_apart",
    "l0_target_density", "multiplier_lr", "weight_decay",
    "warmup_ratio", "max_train_examples", "max_eval_examples", "max_steps", "train_examples",
    "select_on", "holdout_examples",
)  # fmt: skip

# The settings that act only after the first stage: the projection's and the fixed-mask stage's. A run
# interrupted before its fixed-mask stage began may be restarted with other values of these.
LATER_STAGE_SETTINGS = (
    "target_sparsity",
    "mask_lr",
    "resolved_mask_lr",
    "mask_epochs",
    "resolved_mask_epochs",
)

# The stage folder whose existence means the later-stage settings are in use.
FIXED_MASK_STAGE = "fixed-mask"


def fixed_mask_started(out_dir: Path) -> bool:
    """Whether the run in ``out_dir`` has begun its fixed-mask stage (its folder exists)."""
    return (out_dir / FIXED_MASK_STAGE).exists()
