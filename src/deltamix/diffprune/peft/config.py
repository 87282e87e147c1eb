"""DiffPruningPeftConfig: diff pruning's settings as a PEFT config (saved as adapter_config.json)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from peft.config import PeftConfig

from deltamix.diffprune.config import DiffPruningConfig
from deltamix.diffprune.peft.peft_type import PEFT_TYPE


@dataclass
class DiffPruningPeftConfig(PeftConfig, DiffPruningConfig):
    """Diff pruning for ``peft.get_peft_model``: every field of :class:`DiffPruningConfig` (one
    declaration, one validation) plus PEFT's own.

    Which parameters get a diff: every parameter of the base model that ``include`` / ``exclude``
    select, except those of ``modules_to_save``. The task head is PEFT's ``modules_to_save`` (trained
    densely, one copy per adapter, saved densely; ``task_type="SEQ_CLS"`` adds ``classifier`` /
    ``score`` itself), so ``dense_modules``, DiffPruningModel's name for it, must stay empty here.

    >>> from peft import get_peft_model  # doctest: +SKIP
    >>> model = get_peft_model(bert, DiffPruningPeftConfig(task_type="SEQ_CLS", target_sparsity=0.005))  # doctest: +SKIP
    """

    modules_to_save: list[str] | None = field(
        default=None,
        metadata={
            "help": "modules trained and saved densely besides the diff (the task head), e.g. ['classifier']; "
            "PEFT adds 'classifier' and 'score' for task_type='SEQ_CLS'"
        },
    )
    base_fingerprint: dict[str, Any] | None = field(
        default=None,
        metadata={
            "help": "filled in when the adapter is created: names, shapes, dtypes and value hashes of the base "
            "parameters (fingerprint.py); loading the adapter onto another base raises an error"
        },
    )

    def __post_init__(self) -> None:
        PeftConfig.__post_init__(self)
        DiffPruningConfig.__post_init__(self)
        self.peft_type = PEFT_TYPE
        if self.dense_modules:
            raise ValueError(
                "DiffPruningPeftConfig: the task head is PEFT's modules_to_save; leave dense_modules empty "
                f"(got {self.dense_modules})"
            )
        if isinstance(self.modules_to_save, str):
            raise ValueError("modules_to_save must be a list of module names, not a string")
        if self.modules_to_save is not None:
            self.modules_to_save = list(self.modules_to_save)
