"""The parts of a GLUE sequence-classification model a method sees: its pretrained body, its dense head,
the linear layers PEFT adapts, and the budget arithmetic that sizes every method to diff pruning's.

Budget arithmetic (all counts exclude the head). Diff pruning stores ``B = ceil(t * d)`` entries,
``d`` = parameters of the base model (all of them: embeddings, layers, pooler), ``t`` the target
sparsity (0.5%). PEFT adapters target every ``nn.Linear`` of the base model (``L`` layers of shape
``m x n``):

- LoRA and SHiRA store ``r * (m + n)`` values per layer (SHiRA picks that many random entries), so
  ``r = max(1, round(B / sum(m + n)))``. For all-MiniLM-L6-v2 (d = 22,713,216; B = 113,567 at 0.5%;
  sum(m + n) = 6 x (4 x 768 + 2 x 1920) + 768 = 42,240) this gives r = 3, i.e. 126,720 values (0.56%).
- SuperTuning keeps ``int(m * n * (1 - s))`` entries per layer, so ``1 - s = B / sum(m * n)``
  (MiniLM: sum(m * n) = 10,764,288; 1 - s = 1.055%), which matches B to within one entry per layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from deltamix.diffprune.projection import num_kept


@dataclass
class PreparedModel:
    """A model ready for the Trainer and what it will store.

    Attributes:
        model: the module to train (the input model, a PEFT model or a ``DiffPruningModel``).
        method: the ``--method``.
        stored_params: task-specific values stored besides the head (for diff pruning: the budget
            the projection will reach).
        base_params: parameters of the base model without head (``d``).
        head_params: parameters of the dense head.
        details: method settings derived here (rank, sparsity, target modules), for the record.
    """

    model: nn.Module
    method: str
    stored_params: int
    base_params: int
    head_params: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def stored_fraction(self) -> float:
        """``stored_params / base_params``: the paper's "new params per task" (head excluded)."""
        return self.stored_params / self.base_params


def base_prefix(model: nn.Module) -> str:
    """Name of the pretrained body inside a ``*ForSequenceClassification`` model (``bert``, ...)."""
    prefix = getattr(model, "base_model_prefix", "")
    if not prefix or not hasattr(model, prefix):
        raise ValueError(
            f"{type(model).__name__} has no pretrained body attribute (base_model_prefix={prefix!r}); "
            "expected a transformers *ForSequenceClassification model"
        )
    return prefix


def head_module_names(model: nn.Module) -> list[str]:
    """Top-level modules outside the pretrained body that hold parameters (e.g. ``["classifier"]``)."""
    prefix = base_prefix(model)
    return [
        name
        for name, child in model.named_children()
        if name != prefix and any(True for _ in child.parameters())
    ]


def split_parameters(model: nn.Module) -> tuple[dict[str, nn.Parameter], dict[str, nn.Parameter]]:
    """(body parameters, head parameters) by full name."""
    heads = tuple(f"{name}." for name in head_module_names(model))
    body, head = {}, {}
    for name, parameter in model.named_parameters():
        (head if name.startswith(heads) else body)[name] = parameter
    return body, head


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(parameters of the body ``d``, parameters of the head)."""
    body, head = split_parameters(model)
    return sum(p.numel() for p in body.values()), sum(p.numel() for p in head.values())


def diff_budget(model: nn.Module, target_sparsity: float) -> int:
    """``ceil(t * d)``: entries a diff at target sparsity ``t`` keeps over the ``d`` body parameters."""
    body, _ = split_parameters(model)
    return num_kept(target_sparsity, sum(p.numel() for p in body.values()))


def linear_targets(model: nn.Module) -> dict[str, nn.Linear]:
    """Every ``nn.Linear`` of the pretrained body, by full module name (the PEFT targets)."""
    prefix = base_prefix(model) + "."
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.startswith(prefix)
    }


def lora_rank_for_budget(model: nn.Module, budget: int) -> int:
    """The rank r >= 1 whose ``r * sum(m + n)`` over :func:`linear_targets` is nearest ``budget``."""
    per_rank = sum(m.in_features + m.out_features for m in linear_targets(model).values())
    return max(1, round(budget / per_rank))


def supertuning_sparsity_for_budget(model: nn.Module, budget: int) -> float:
    """SuperTuning's ``sparsity`` s with ``sum(m * n) * (1 - s) = budget`` over :func:`linear_targets`."""
    total = sum(m.weight.numel() for m in linear_targets(model).values())
    if budget >= total:
        raise ValueError(f"budget {budget} is not below the {total} linear weights SuperTuning can adapt")
    return 1.0 - budget / total


def tensor_stats(model: nn.Module, base: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    """Per body tensor ``[changed entries, numel]`` of ``model`` against the pretrained values ``base``."""
    params = dict(model.named_parameters())
    return {
        name: [int((params[name].detach().cpu() != value).sum()), value.numel()]
        for name, value in base.items()
        if name in params
    }
