"""deltamix: diff pruning and SeqMix (Guo, Kim and Rush) for Hugging Face and PyTorch models.

The public diff pruning names are importable from the top level; they are loaded on first use so
that ``import deltamix`` (and the command line) stays fast. The first use of
``deltamix.DiffPruningPeftConfig`` (or any import of ``deltamix.diffprune.peft``) registers diff
pruning with PEFT (docs/peft.md).

>>> from deltamix import DiffPruningConfig, DiffPruningModel  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from deltamix import _moved

__version__ = "0.1.0"

_moved.install()  # old module paths (deltamix.glue, deltamix.seqmix.trainer, ...) for one release

_LAZY = {
    "DiffPruningConfig": "deltamix.diffprune",
    "DiffPruningModel": "deltamix.diffprune",
    "SparseDiff": "deltamix.diffprune",
    "DiffBank": "deltamix.diffprune",
    "DiffPruningTrainer": "deltamix.diffprune.trainer",
    "DiffPruningTrainerMixin": "deltamix.diffprune.trainer",
    "DiffPruningPeftConfig": "deltamix.diffprune.peft",
    "DiffPruningPeftTrainer": "deltamix.diffprune.peft.trainer",
    "ProjectCallback": "deltamix.diffprune.peft.trainer",
    "SeqMixConfig": "deltamix.seqmix",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deltamix' has no attribute {name!r}")
