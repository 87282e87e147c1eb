"""Diff pruning's registration with PEFT: ``register()`` tells PEFT which config and tuner it has.

The method's ``PeftType`` member and key prefix are in peft_type.py (imported by the config, layer
and tuner); this module sits above them and is run by the package's ``__init__``.
"""

from __future__ import annotations

from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING
from peft.utils import register_peft_method

from deltamix.diffprune.peft.config import DiffPruningPeftConfig
from deltamix.diffprune.peft.model import DiffPruningTuner
from deltamix.diffprune.peft.peft_type import METHOD_NAME, PEFT_TYPE, PREFIX, add_peft_type

__all__ = ["METHOD_NAME", "PEFT_TYPE", "PREFIX", "add_peft_type", "register"]


def register() -> None:
    """Register diff pruning with PEFT (once; later calls do nothing), so that ``get_peft_model``,
    ``PeftModel.from_pretrained`` and ``load_adapter`` know ``DiffPruningPeftConfig`` adapters."""
    if PEFT_TYPE_TO_TUNER_MAPPING.get(PEFT_TYPE) is DiffPruningTuner:
        return
    register_peft_method(
        name=METHOD_NAME, config_cls=DiffPruningPeftConfig, model_cls=DiffPruningTuner, prefix=PREFIX
    )
