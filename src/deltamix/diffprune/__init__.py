"""Diff pruning (Guo, Kim and Rush, ACL 2021): a learned sparse diff over a frozen pretrained model.

Public names: :class:`DiffPruningConfig`, :class:`DiffPruningModel`, :class:`SparseDiff`,
:class:`DiffBank`, :class:`Stage` (what ``DiffPruningModel.stage`` returns); :class:`DiffPruningTrainer` (transformers' Trainer) is in
``deltamix.diffprune.trainer`` so that importing this package does not import transformers.
"""

from __future__ import annotations

from deltamix.diffprune.bank import DiffBank
from deltamix.diffprune.config import DiffPruningConfig
from deltamix.diffprune.model import DiffPruningModel
from deltamix.diffprune.sparse_diff import FORMAT_VERSION, SparseDiff
from deltamix.diffprune.stage import Stage

__all__ = ["FORMAT_VERSION", "DiffBank", "DiffPruningConfig", "DiffPruningModel", "SparseDiff", "Stage"]
