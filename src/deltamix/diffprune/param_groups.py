"""The AdamW parameter groups of a diff in each stage, with the config's learning rates."""

from __future__ import annotations

from typing import Any

from torch import nn

from deltamix.diffprune.config import DiffPruningConfig
from deltamix.diffprune.stage import Stage


def diff_param_groups(
    config: DiffPruningConfig,
    stage: Stage,
    diff: nn.Parameter,
    gates: list[nn.Parameter],
    multipliers: nn.Parameter | None,
) -> list[dict[str, Any]]:
    """The diff's parameter groups for ``torch.optim.AdamW``, each with a ``"name"``, empty ones left out.

    Args:
        config: the learning rates and weight decay.
        stage: the diff's stage; in ``FIXED_MASK`` only ``diff`` is trained.
        diff: ``w`` (d,), or ``kept_values`` (k,) in the fixed-mask stage.
        gates: ``alpha`` (d,) and, structured, ``group_alpha`` (num tensors,); empty without gates.
        multipliers: the Lagrange multipliers (2,) of a target density, or None.

    Returns:
        ``"diff"`` (``learning_rate``; ``fixed_mask_learning_rate`` in the fixed-mask stage),
        ``"gates"`` (``alpha_learning_rate``, ``"constant_lr": True`` so a scheduler keeps it fixed, no
        weight decay) and ``"multipliers"`` (``multiplier_learning_rate``: constant, no weight decay,
        ascent).
    """
    if stage is Stage.FIXED_MASK:
        return [
            {
                "name": "diff",
                "params": [diff],
                "lr": config.fixed_mask_learning_rate,
                "weight_decay": config.weight_decay,
            }
        ]
    groups: list[dict[str, Any]] = [
        {"name": "diff", "params": [diff], "lr": config.learning_rate, "weight_decay": config.weight_decay}
    ]
    if gates:
        groups.append(
            {
                "name": "gates",
                "params": gates,
                "lr": config.alpha_learning_rate,
                "weight_decay": 0.0,
                "constant_lr": True,
            }
        )
    if multipliers is not None:
        groups.append(
            {
                "name": "multipliers",
                "params": [multipliers],
                "lr": config.multiplier_learning_rate,
                "weight_decay": 0.0,
                "constant_lr": True,
            }
        )
    return groups


def dense_group(config: DiffPruningConfig, dense: list[nn.Parameter]) -> list[dict[str, Any]]:
    """The ``"dense"`` group of the head's parameters (``head_learning_rate``, the config's weight
    decay) as a one-element list, or an empty list when ``dense`` is empty."""
    if not dense:
        return []
    return [
        {
            "name": "dense",
            "params": dense,
            "lr": config.head_learning_rate,
            "weight_decay": config.weight_decay,
        }
    ]
