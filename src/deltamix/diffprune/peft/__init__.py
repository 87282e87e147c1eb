"""Diff pruning as a PEFT method: ``peft.get_peft_model(model, DiffPruningPeftConfig(...))``.

Importing this package registers the method with PEFT (registration.py, run here), which is needed before
``PeftModel.from_pretrained`` can read a diff pruning adapter; ``from deltamix import
DiffPruningPeftConfig`` imports it too. See docs/peft.md.
"""

from __future__ import annotations

from deltamix.diffprune.peft.card import write_adapter_card
from deltamix.diffprune.peft.config import DiffPruningPeftConfig
from deltamix.diffprune.peft.model import DiffPruningTuner
from deltamix.diffprune.peft.peft_type import PEFT_TYPE
from deltamix.diffprune.peft.registration import register

register()

__all__ = ["PEFT_TYPE", "DiffPruningPeftConfig", "DiffPruningTuner", "write_adapter_card"]
