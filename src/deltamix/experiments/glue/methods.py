"""How each ``--method`` prepares a sequence-classification model for GLUE training.

Methods (the head, e.g. ``classifier``, is always trained densely and stored densely):

- ``full``: every parameter trains; the stored file is the whole model.
- ``last-layer``: only the last transformer block (and the pooler, if any) trains.
- ``bitfit``: only the bias vectors train (Ben Zaken et al. 2022).
- ``diffprune`` / ``diffprune-structured``: the paper's three stages (L0 diff training, magnitude
  projection to the target sparsity, fixed-mask fine-tuning) via :mod:`deltamix.diffprune`.
- ``diffprune-nonadaptive``: the paper's pruning baseline: full fine-tuning, magnitude projection
  of ``theta_ft - theta_pretrained``, fixed-mask fine-tuning.
- ``lora``, ``shira``, ``supertuning``: PEFT 0.21's adapters, sized to diff pruning's budget.

Budget arithmetic (all counts exclude the head). Diff pruning stores ``B = ceil(t * d)`` entries,
``d`` = parameters of the base model (all of them: embeddings, layers, pooler), ``t`` the target
sparsity (0.5%). PEFT adapters target every ``nn.Linear`` of the base model (``L`` layers of shape
``m x n``):

- LoRA and SHiRA store ``r * (m + n)`` values per layer (SHiRA picks that many random entries), so
  ``r = max(1, round(B / sum(m + n)))``. For all-MiniLM-L6-v2 (d = 22,713,216; B = 113,567 at 0.5%;
  sum(m + n) = 6 x (4 x 768 + 2 x 1920) + 768 = 42,240) this gives r = 3, i.e. 126,720 values (0.56%).
- SuperTuning keeps ``int(m * n * (1 - s))`` entries per layer, so ``1 - s = B / sum(m * n)``
  (MiniLM: sum(m * n) = 10,764,288; 1 - s = 1.055%), which matches B to within one entry per layer.

The exact count of each run is recorded (``stored_params``, ``stored_fraction``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from deltamix.core.precision import resolve_precision

logger = logging.getLogger(__name__)

DENSE_METHODS = ("full", "last-layer", "bitfit")
DIFF_METHODS = ("diffprune", "diffprune-structured", "diffprune-nonadaptive")
L0_METHODS = ("diffprune", "diffprune-structured")  # the diff methods that learn gates with an L0 penalty
PEFT_METHODS = ("lora", "shira", "supertuning")
METHODS = (*DENSE_METHODS, *DIFF_METHODS, *PEFT_METHODS)
# Methods whose bf16 runs matched fp32 on GLUE dev (docs/glue.md, "Training precision"): --precision auto
# trains them in bf16 where the hardware has it; the others get fp32 from auto until their parity runs
# (experiments/precision_parity.sh, group glue) are recorded. --precision bf16 is open to every method:
# under autocast, diff pruning runs each gated linear's base and diff products apart
# (deltamix.diffprune.split_linear), so the diff is not rounded away with the frozen weight.
BF16_PARITY_METHODS: tuple[str, ...] = ()


def glue_precision(method: str, precision: str) -> str:
    """The precision (bf16 or fp32) a GLUE run of ``method`` trains in when ``precision`` is asked.

    ``auto`` gives bf16 only for the methods of ``BF16_PARITY_METHODS`` on hardware with native bf16.

    Raises:
        ValueError: an unknown precision.
    """
    if precision == "auto" and method not in BF16_PARITY_METHODS:
        return "fp32"
    return resolve_precision(precision)


# Learning rate of the (single-stage) baselines when --lr is not given. full: BERT's GLUE range
# (Devlin et al.); bitfit: BitFit's range 1e-4..1e-3; PEFT adapters: the usual LoRA value.
DEFAULT_LR = {
    "full": 2e-5,
    "last-layer": 1e-4,
    "bitfit": 1e-3,
    "lora": 5e-4,
    "shira": 5e-4,
    "supertuning": 5e-4,
}


# Diff pruning's first stage when --lr / --l0-lambda are not given. The paper's values (BERT-large):
# w learning rate 1e-5, L0 penalty weight 1.25e-7. For the embedded all-MiniLM-L6-v2 the searches of
# docs/glue.md (records in results/glue-search/glue.jsonl) set w lr 1e-4 (at the paper's 1e-5 the L0
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
# majority class (74.8 -> 85.0). docs/glue.md, "The fixed-mask rate search".
PAPER_MASK_LR, MINILM_MASK_LR = 5e-5, 1e-3


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


def check_method(method: str) -> str:
    """``method`` if known.

    Raises:
        ValueError: for an unknown method, listing the known ones.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    return method


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


def diff_budget(model: nn.Module, target_sparsity: float) -> int:
    """``ceil(t * d)``: entries a diff at target sparsity ``t`` keeps over the ``d`` body parameters."""
    from deltamix.diffprune.projection import num_kept  # the projection's own count

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


def _freeze_except(model: nn.Module, trainable: set[str]) -> None:
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in trainable)


def prepare_dense(model: nn.Module, method: str) -> PreparedModel:
    """``full``, ``last-layer`` or ``bitfit``: set ``requires_grad`` in place; the head always trains."""
    body, head = split_parameters(model)
    if method == "full":
        chosen = set(body)
    elif method == "bitfit":
        chosen = {name for name in body if name.endswith(".bias")}
    elif method == "last-layer":
        numbers = [int(m.group(1)) for name in body if (m := re.search(r"\.layers?\.(\d+)\.", name))]
        if not numbers:
            raise ValueError(f"{type(model).__name__}: no numbered transformer layers found for last-layer")
        last = f".{max(numbers)}."
        chosen = {
            name
            for name in body
            if (re.search(r"\.layers?\.(\d+)\.", name) and last in name) or ".pooler." in name
        }
    else:
        raise ValueError(f"{method!r} is not one of {DENSE_METHODS}")
    _freeze_except(model, chosen | set(head))
    return PreparedModel(
        model=model,
        method=method,
        stored_params=sum(body[name].numel() for name in chosen),
        base_params=sum(p.numel() for p in body.values()),
        head_params=sum(p.numel() for p in head.values()),
    )


def prepare_peft(model: nn.Module, method: str, target_sparsity: float, seed: int) -> PreparedModel:
    """``lora``, ``shira`` or ``supertuning`` through PEFT, sized to diff pruning's budget (module doc)."""
    import peft

    body, head = split_parameters(model)
    budget = diff_budget(model, target_sparsity)
    targets = sorted(linear_targets(model))
    heads = head_module_names(model)
    details: dict[str, Any] = {"budget": budget, "target_modules": len(targets)}
    if method in ("lora", "shira"):
        rank = lora_rank_for_budget(model, budget)
        details["r"] = rank
        if method == "lora":
            config = peft.LoraConfig(
                r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=targets, modules_to_save=heads
            )
        else:
            config = peft.ShiraConfig(r=rank, random_seed=seed, target_modules=targets, modules_to_save=heads)
    elif method == "supertuning":
        sparsity = supertuning_sparsity_for_budget(model, budget)
        details["sparsity"] = sparsity
        config = peft.SupertuningConfig(sparsity=sparsity, target_modules=targets, modules_to_save=heads)
    else:
        raise ValueError(f"{method!r} is not one of {PEFT_METHODS}")
    wrapped = peft.get_peft_model(model, config)
    stored = sum(
        p.numel()
        for name, p in wrapped.named_parameters()
        if p.requires_grad and not any(f".{h}." in f".{name}" for h in heads)
    )
    logger.info("%s: %s, %d stored values (budget %d)", method, details, stored, budget)
    return PreparedModel(
        model=wrapped,
        method=method,
        stored_params=stored,
        base_params=sum(p.numel() for p in body.values()),
        head_params=sum(p.numel() for p in head.values()),
        details=details,
    )
