"""The methods a GLUE run compares, one object per ``--method``: how it prepares the model, what it
trains, and what it stores.

Methods (the head, e.g. ``classifier``, is always trained densely and stored densely):

- ``full``: every parameter trains; the stored file is the whole model.
- ``last-layer``: only the last transformer block (and the pooler, if any) trains.
- ``bitfit``: only the bias vectors train (Ben Zaken et al. 2022).
- ``diffprune`` / ``diffprune-structured``: the paper's three stages (L0 diff training, magnitude
  projection to the target sparsity, fixed-mask fine-tuning) via :mod:`deltamix.diffprune`.
- ``diffprune-nonadaptive``: the paper's pruning baseline: full fine-tuning, magnitude projection
  of ``theta_ft - theta_pretrained``, fixed-mask fine-tuning.
- ``lora``, ``shira``, ``supertuning``: PEFT 0.21's adapters, sized to diff pruning's budget
  (:mod:`deltamix.experiments.glue.parts` has the arithmetic).

`GLUE_METHODS` maps each name (as on the command line and in records) to its `GlueMethod`; a run
asks the object, never the name. The exact count each run stores is recorded (``stored_params``,
``stored_fraction``).

>>> method = get_method("lora")
>>> method.first_stage, method.stored_file, method.stores_diff
('train', 'adapter', False)
"""

from __future__ import annotations

import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import peft
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from deltamix.core.io import atomic_path
from deltamix.core.precision import resolve_precision
from deltamix.diffprune import DiffPruningConfig, DiffPruningModel, SparseDiff
from deltamix.diffprune.trainer import DiffPruningTrainer
from deltamix.experiments.glue.parts import (
    PreparedModel,
    diff_budget,
    head_module_names,
    linear_targets,
    lora_rank_for_budget,
    parameter_counts,
    split_parameters,
    supertuning_sparsity_for_budget,
    tensor_stats,
)
from deltamix.experiments.glue.resume import FIXED_MASK_STAGE
from deltamix.experiments.glue.stages import StageSettings, guarded, run_stage

logger = logging.getLogger(__name__)

# Full fine-tuning's learning rate when --lr is not given: BERT's GLUE range (Devlin et al.). The other
# single-stage baselines carry theirs (``GlueMethod.lr``): bitfit BitFit's range 1e-4..1e-3, the PEFT
# adapters the usual LoRA value.
FULL_LR = 2e-5

# Diff pruning's first stage when --lr / --l0-lambda are not given. The paper's values (BERT-large):
# w learning rate 1e-5, L0 penalty weight 1.25e-7. For the embedded all-MiniLM-L6-v2 the searches of
# results/notes.md (records in results/glue-search/glue.jsonl) set w lr 1e-4 (at the paper's 1e-5 the L0
# stage barely learns) and lambda 2e-7: on MRPC with the recipe's 3 L0 epochs it leaves 650k entries
# (2.9%) and scores 81.3 after projection to 0.5%, while 1e-5 (chosen first, on STS-B with one
# epoch) closes almost every gate over 3 epochs and leaves the model at the majority class.
# Full fine-tuning of MiniLM scored 85.9 at lr 1e-4 against 81.1 at 2e-5 (STS-B), so the embedded
# MiniLM's full fine-tuning (and the non-adaptive baseline's first stage) default to 1e-4.
PAPER_DIFF_LR, PAPER_L0_LAMBDA = 1e-5, 1.25e-7
MINILM_DIFF_LR, MINILM_L0_LAMBDA, MINILM_FULL_LR = 1e-4, 2e-7, 1e-4

# The fixed-mask stage's rate when --mask-lr is not given: the paper's 5e-5 (BERT-large); 1e-3 for the
# embedded MiniLM. At 5e-5 its 0.5% of kept entries barely move: over MRPC and RTE, seeds 0-1, the
# three diff pruning methods scored 67.0 on average at 5e-5, 69.4 at 2e-4 and 70.8 at 1e-3 (1e-3 above
# 5e-5 in 11 of 12 runs; the non-adaptive baseline on MRPC 75.1 -> 84.0), and MRPC at 0.1% left the
# majority class (74.8 -> 85.0). results/notes.md, "The fixed-mask rate search".
PAPER_MASK_LR, MINILM_MASK_LR = 5e-5, 1e-3


class MethodSettings(StageSettings, Protocol):
    """The settings a method reads; `deltamix.experiments.glue.settings.GlueRunConfig` has them all."""

    method: str
    epochs: int
    target_sparsity: float
    alpha_lr: float
    head_lr: float | None
    structured_penalty: str
    clip_gates_apart: bool
    l0_target_density: float | None
    multiplier_lr: float

    def resolved_lr(self) -> float: ...
    def resolved_l0_lambda(self) -> float: ...
    def resolved_mask_lr(self) -> float: ...


# What the stages train on: (tokenized train set, {selection split: tokenized set}, tokenizer).
StageData = tuple[Any, dict[str, Any], Any]


class GlueMethod(ABC):
    """One ``--method``: how it prepares a sequence-classification model, what it trains, what it stores.

    Subclasses set the attributes and implement `prepare`, `save` and `apply`; `train` runs one
    Trainer stage (``train``, best epoch kept) unless a method overrides it.

    Attributes:
        name: the name on the command line and in records.
        stored_file: the file (or folder) in the run folder that holds what the task costs to store.
        stores_diff: whether that file is a `deltamix.diffprune.SparseDiff` (served from a DiffBank).
        learns_gates: whether the method learns L0 gates (``--l0-target-density`` applies).
        first_stage: the folder of its first (or only) Trainer stage.
        lr: its first stage's learning rate when ``--lr`` is not given (see `default_lr`).
        bf16_parity: whether its bf16 runs matched fp32 on GLUE dev (docs/training_speed.md,
            "GLUE"): ``--precision auto`` trains only those in bf16.
    """

    name: str
    stored_file: str
    stores_diff: bool = False
    learns_gates: bool = False
    first_stage: str = "train"
    bf16_parity: bool = False
    lr: float

    def default_lr(self, embedded: bool) -> float:
        """The first stage's learning rate without ``--lr`` (``embedded``: the embedded MiniLM)."""
        return self.lr

    @abstractmethod
    def prepare(self, model: nn.Module, config: MethodSettings) -> PreparedModel:
        """``model`` made ready to train (trainable parameters chosen, or wrapped)."""

    def train(
        self, config: MethodSettings, model: nn.Module, data: StageData, mask_epochs: int
    ) -> tuple[list[dict[str, Any]], PreparedModel]:
        """Prepare and train ``model``; returns (the stage logs, the trained model prepared to store)."""
        prepared = self.prepare(model, config)
        log = run_stage(
            self.first_stage, config, prepared.model, data, config.resolved_lr(), config.epochs, True
        )
        return [log], prepared

    @abstractmethod
    def save(self, prepared: PreparedModel, out_dir: Path, meta: dict[str, str]) -> Path:
        """Write what the task costs to store into ``out_dir``; returns its path."""

    @abstractmethod
    def apply(self, model: nn.Module, path: Path) -> nn.Module:
        """A fresh base ``model`` with the stored file at ``path`` applied (merged)."""

    def stored_counts(
        self, prepared: PreparedModel, path: Path, stored: nn.Module, base: dict[str, torch.Tensor]
    ) -> tuple[dict[str, list[int]], int]:
        """(per body tensor ``[changed entries, numel]``, values stored besides the head)."""
        return tensor_stats(stored, base), prepared.stored_params


def _freeze_except(model: nn.Module, trainable: set[str]) -> None:
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in trainable)


def _last_layer(body: dict[str, nn.Parameter], model: nn.Module) -> set[str]:
    """The last numbered transformer block's parameters and the pooler's."""
    numbers = [int(m.group(1)) for name in body if (m := re.search(r"\.layers?\.(\d+)\.", name))]
    if not numbers:
        raise ValueError(f"{type(model).__name__}: no numbered transformer layers found for last-layer")
    last = f".{max(numbers)}."
    return {
        name
        for name in body
        if (re.search(r"\.layers?\.(\d+)\.", name) and last in name) or ".pooler." in name
    }


class DenseMethod(GlueMethod):
    """A method that trains a chosen set of the body's parameters (and the head) in place.

    Args:
        name: the method's name.
        choose: (body parameters by name, model) -> the names that train.
        lr: the default learning rate.
        embedded_lr: the default learning rate for the embedded MiniLM, if not ``lr``.
    """

    stored_file = "trained.safetensors"

    def __init__(
        self,
        name: str,
        choose: Callable[[dict[str, nn.Parameter], nn.Module], set[str]],
        lr: float,
        embedded_lr: float | None = None,
    ) -> None:
        self.name, self.choose, self.lr, self.embedded_lr = name, choose, lr, embedded_lr

    def default_lr(self, embedded: bool) -> float:
        if embedded and self.embedded_lr is not None:
            return self.embedded_lr
        return self.lr

    def prepare(self, model: nn.Module, config: MethodSettings | None = None) -> PreparedModel:
        """Set ``requires_grad`` in place: the chosen body parameters and the head train."""
        body, head = split_parameters(model)
        chosen = self.choose(body, model)
        _freeze_except(model, chosen | set(head))
        base_params, head_params = parameter_counts(model)
        stored = sum(body[name].numel() for name in chosen)
        return PreparedModel(model, self.name, stored, base_params, head_params)

    def save(self, prepared: PreparedModel, out_dir: Path, meta: dict[str, str]) -> Path:
        path = out_dir / self.stored_file
        tensors = {
            name: p.detach().cpu().contiguous()
            for name, p in prepared.model.named_parameters()
            if p.requires_grad
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return path

    def apply(self, model: nn.Module, path: Path) -> nn.Module:
        unexpected = model.load_state_dict(load_file(str(path)), strict=False).unexpected_keys
        if unexpected:
            raise ValueError(f"{path}: tensors not in the model: {unexpected[:5]}")
        return model


class PeftMethod(GlueMethod):
    """A PEFT adapter on every linear layer of the body, sized to diff pruning's budget.

    Args:
        name: the method's name.
        make_config: (model, budget, target module names, head module names, seed) ->
            (the PEFT config, the settings derived for the record).
        lr: the default learning rate.
    """

    stored_file = "adapter"

    def __init__(
        self,
        name: str,
        make_config: Callable[[nn.Module, int, list[str], list[str], int], tuple[Any, dict]],
        lr: float = 5e-4,
    ) -> None:
        self.name, self.make_config, self.lr = name, make_config, lr

    def prepare(self, model: nn.Module, config: MethodSettings) -> PreparedModel:
        return self.prepare_sized(model, config.target_sparsity, config.seed)

    def prepare_sized(self, model: nn.Module, target_sparsity: float, seed: int) -> PreparedModel:
        """Wrap ``model`` with the adapter sized to the budget of ``target_sparsity``."""
        base_params, head_params = parameter_counts(model)
        budget = diff_budget(model, target_sparsity)
        targets, heads = sorted(linear_targets(model)), head_module_names(model)
        peft_config, derived = self.make_config(model, budget, targets, heads, seed)
        details = {"budget": budget, "target_modules": len(targets), **derived}
        wrapped = peft.get_peft_model(model, peft_config)
        stored = sum(
            p.numel()
            for name, p in wrapped.named_parameters()
            if p.requires_grad and not any(f".{h}." in f".{name}" for h in heads)
        )
        logger.info("%s: %s, %d stored values (budget %d)", self.name, details, stored, budget)
        return PreparedModel(wrapped, self.name, stored, base_params, head_params, details)

    def save(self, prepared: PreparedModel, out_dir: Path, meta: dict[str, str]) -> Path:
        path = out_dir / self.stored_file
        prepared.model.save_pretrained(str(path))
        return path

    def apply(self, model: nn.Module, path: Path) -> nn.Module:
        return peft.PeftModel.from_pretrained(model, str(path)).merge_and_unload()


def _lora_config(model, budget, targets, heads, seed):
    rank = lora_rank_for_budget(model, budget)
    config = peft.LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=targets, modules_to_save=heads
    )
    return config, {"r": rank}


def _shira_config(model, budget, targets, heads, seed):
    rank = lora_rank_for_budget(model, budget)
    return peft.ShiraConfig(r=rank, random_seed=seed, target_modules=targets, modules_to_save=heads), {
        "r": rank
    }


def _supertuning_config(model, budget, targets, heads, seed):
    sparsity = supertuning_sparsity_for_budget(model, budget)
    config = peft.SupertuningConfig(sparsity=sparsity, target_modules=targets, modules_to_save=heads)
    return config, {"sparsity": sparsity}


class DiffPruningMethod(GlueMethod):
    """Diff pruning's three stages: a first stage, magnitude projection, fixed-mask fine-tuning.

    Args:
        name: the method's name.
        structured: one extra gate per parameter tensor (``diffprune-structured``).
        learn_gates: L0 gates in the first stage; False is the non-adaptive baseline, whose first
            stage is full fine-tuning of a dense diff (folder ``full-ft``) at full fine-tuning's rate.
    """

    stored_file = "diff.safetensors"
    stores_diff = True

    def __init__(self, name: str, structured: bool = False, learn_gates: bool = True) -> None:
        self.name, self.structured, self.learns_gates = name, structured, learn_gates
        self.lr = PAPER_DIFF_LR if learn_gates else FULL_LR  # the paper's; full fine-tuning's
        self.first_stage = "l0" if learn_gates else "full-ft"

    def default_lr(self, embedded: bool) -> float:
        if embedded:  # the searches of results/notes.md; the non-adaptive first stage is full fine-tuning's
            return MINILM_DIFF_LR if self.learns_gates else MINILM_FULL_LR
        return self.lr

    def diff_config(self, config: MethodSettings, model: nn.Module) -> DiffPruningConfig:
        """The `DiffPruningConfig` of a run with settings ``config`` on ``model``."""
        return DiffPruningConfig(
            target_sparsity=config.target_sparsity,
            structured=self.structured,
            structured_penalty=config.structured_penalty,
            clip_gates_apart=config.clip_gates_apart,
            learn_gates=self.learns_gates,
            l0_lambda=config.resolved_l0_lambda(),
            target_density=config.l0_target_density,
            multiplier_learning_rate=config.multiplier_lr,
            dense_modules=head_module_names(model),
            learning_rate=config.resolved_lr(),
            alpha_learning_rate=config.alpha_lr,
            dense_learning_rate=config.head_lr,
            fixed_mask_learning_rate=config.resolved_mask_lr(),
            weight_decay=config.weight_decay,
        )

    def prepare(self, model: nn.Module, config: MethodSettings) -> PreparedModel:
        """``model`` wrapped in a `DiffPruningModel` (stored count: the projection's budget)."""
        dp_config = self.diff_config(config, model)
        details = {"diffprune_config": dp_config.to_dict()}
        base_params, head_params = parameter_counts(model)
        budget = diff_budget(model, config.target_sparsity)
        return PreparedModel(
            DiffPruningModel(model, dp_config), self.name, budget, base_params, head_params, details
        )

    def train(
        self, config: MethodSettings, model: nn.Module, data: StageData, mask_epochs: int
    ) -> tuple[list[dict[str, Any]], PreparedModel]:
        prepared = self.prepare(model, config)
        wrapped, trainer_cls = prepared.model, guarded(DiffPruningTrainer)
        logs = [
            run_stage(
                self.first_stage,
                config,
                wrapped,
                data,
                config.resolved_lr(),
                config.epochs,
                False,
                trainer_cls,
            )
        ]
        logs.append(self.project(wrapped, prepared.stored_params, config.target_sparsity))
        # The fixed-mask stage fine-tunes the kept entries and the head together at the stage's rate.
        mask_lr = config.resolved_mask_lr()
        wrapped.diff_config.dense_learning_rate = config.head_lr or mask_lr
        logs.append(
            run_stage(FIXED_MASK_STAGE, config, wrapped, data, mask_lr, mask_epochs, True, trainer_cls)
        )
        prepared.details["fixed_mask_head_lr"] = config.head_lr or mask_lr
        return logs, prepared

    @staticmethod
    def project(wrapped: DiffPruningModel, budget: int, target_sparsity: float) -> dict[str, Any]:
        """Project the diff to ``budget`` entries; returns the projection's stage log."""
        start = time.perf_counter()
        gates = {}
        if wrapped.alpha is not None:  # what the L0 stage ended with: E[L0] / d, and the multipliers if any
            with torch.no_grad():
                gates["expected_density"] = float(wrapped.l0_penalty()) / wrapped.num_gated
            if wrapped.lagrange_multipliers is not None:
                gates["lagrange_multipliers"] = wrapped.lagrange_multipliers.detach().cpu().tolist()
        nonzero = wrapped.nnz()
        # project_ warns when nonzero < budget (gates closed early) and fills the rest by |w|, then gate.
        wrapped.project_(target_sparsity)
        seconds = time.perf_counter() - start
        return {"stage": "projection", "seconds": seconds, "nonzero_before": nonzero, "kept": budget, **gates}

    def save(self, prepared: PreparedModel, out_dir: Path, meta: dict[str, str]) -> Path:
        path = out_dir / self.stored_file
        prepared.model.export_diff().save(path)
        return path

    def apply(self, model: nn.Module, path: Path) -> nn.Module:
        SparseDiff.load(path).apply_(model)
        return model

    def stored_counts(
        self, prepared: PreparedModel, path: Path, stored: nn.Module, base: dict[str, torch.Tensor]
    ) -> tuple[dict[str, list[int]], int]:
        diff = SparseDiff.load(path)
        stats = {
            row["name"]: [row["nnz"], row["numel"]] for row in diff.tensor_stats() if row["kind"] == "gated"
        }
        return stats, diff.nnz


GLUE_METHODS: dict[str, GlueMethod] = {
    method.name: method
    for method in (
        DenseMethod("full", lambda body, model: set(body), FULL_LR, embedded_lr=MINILM_FULL_LR),
        DenseMethod("last-layer", _last_layer, 1e-4),
        DenseMethod("bitfit", lambda body, model: {name for name in body if name.endswith(".bias")}, 1e-3),
        DiffPruningMethod("diffprune"),
        DiffPruningMethod("diffprune-structured", structured=True),
        DiffPruningMethod("diffprune-nonadaptive", learn_gates=False),
        PeftMethod("lora", _lora_config),
        PeftMethod("shira", _shira_config),
        PeftMethod("supertuning", _supertuning_config),
    )
}
METHODS = tuple(GLUE_METHODS)
# The single-stage methods' default learning rates (other than the embedded MiniLM's), for --help.
DEFAULT_LR = {name: m.lr for name, m in GLUE_METHODS.items() if not m.stores_diff}
# Groups of names, for the report's tables (a run asks its method object instead).
DENSE_METHODS = tuple(name for name, m in GLUE_METHODS.items() if isinstance(m, DenseMethod))
DIFF_METHODS = tuple(name for name, m in GLUE_METHODS.items() if m.stores_diff)
L0_METHODS = tuple(name for name, m in GLUE_METHODS.items() if m.learns_gates)
PEFT_METHODS = tuple(name for name, m in GLUE_METHODS.items() if isinstance(m, PeftMethod))
# --precision bf16 is open to every method: under autocast, diff pruning runs each gated linear's base
# and diff products apart (deltamix.diffprune.split_linear), so the diff is not rounded away with the
# frozen weight. The parity runs are experiments/precision_parity.sh, group glue.
BF16_PARITY_METHODS = tuple(name for name, m in GLUE_METHODS.items() if m.bf16_parity)


def get_method(name: str) -> GlueMethod:
    """The `GlueMethod` called ``name``.

    Raises:
        ValueError: for an unknown method, listing the known ones.
    """
    if name not in GLUE_METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
    return GLUE_METHODS[name]


def check_method(method: str) -> str:
    """``method`` if known (`get_method` raises otherwise)."""
    return get_method(method).name


def glue_precision(method: str, precision: str) -> str:
    """The precision (bf16 or fp32) a GLUE run of ``method`` trains in when ``precision`` is asked.

    ``auto`` gives bf16 only for the methods with ``bf16_parity`` on hardware with native bf16.

    Raises:
        ValueError: an unknown precision.
    """
    if precision == "auto" and not get_method(method).bf16_parity:
        return "fp32"
    return resolve_precision(precision)


def prepare_dense(model: nn.Module, method: str) -> PreparedModel:
    """``full``, ``last-layer`` or ``bitfit``: set ``requires_grad`` in place; the head always trains."""
    chosen = get_method(method)
    if not isinstance(chosen, DenseMethod):
        raise ValueError(f"{method!r} is not one of {DENSE_METHODS}")
    return chosen.prepare(model)


def prepare_peft(model: nn.Module, method: str, target_sparsity: float, seed: int) -> PreparedModel:
    """``lora``, ``shira`` or ``supertuning`` through PEFT, sized to diff pruning's budget."""
    chosen = get_method(method)
    if not isinstance(chosen, PeftMethod):
        raise ValueError(f"{method!r} is not one of {PEFT_METHODS}")
    return chosen.prepare_sized(model, target_sparsity, seed)
