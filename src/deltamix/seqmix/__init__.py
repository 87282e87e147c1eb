"""SeqMix (Guo, Kim and Rush, EMNLP 2020) and its family as model-agnostic components.

`SeqMixAugmenter` turns a padded batch into a `MixedBatch`; any `Seq2SeqModel` consumes it and
`seqmix_loss` scores it. `HFSeq2SeqAdapter` (in `deltamix.seqmix.hf`, loaded on first use) wraps a
Hugging Face encoder-decoder as such a model; `SeqMixTrainerMixin` and `SeqMixSeq2SeqTrainer` (in
`deltamix.seqmix.hf_trainer`, loaded on first use) bring the family into transformers' Seq2SeqTrainer.
"""

from __future__ import annotations

import importlib
from typing import Any

from deltamix.core.mixed_tokens import MixedBatch, MixedTokens, embed_mixed, scatter_mixed
from deltamix.seqmix.augment import SeqMixAugmenter
from deltamix.seqmix.config import PARTNERS, VARIANTS, SeqMixConfig
from deltamix.seqmix.loss import label_smoothed_nll, seqmix_loss
from deltamix.seqmix.mixing import (
    hard_mix,
    pad_to_common,
    sample_lambda,
    soft_mix,
    switchout,
    switchout_counts,
    word_dropout,
)
from deltamix.seqmix.partners import length_aware_partners, sample_partners, shuffle_partners

__all__ = [
    "PARTNERS",
    "VARIANTS",
    "HFSeq2SeqAdapter",
    "MixedBatch",
    "MixedTokens",
    "SeqMixAugmenter",
    "SeqMixConfig",
    "SeqMixSeq2SeqTrainer",
    "SeqMixTrainerMixin",
    "embed_mixed",
    "hard_mix",
    "label_smoothed_nll",
    "length_aware_partners",
    "pad_to_common",
    "sample_lambda",
    "sample_partners",
    "scatter_mixed",
    "seqmix_loss",
    "shuffle_partners",
    "soft_mix",
    "switchout",
    "switchout_counts",
    "word_dropout",
]

_LAZY = {
    "HFSeq2SeqAdapter": "deltamix.seqmix.hf",
    "SeqMixSeq2SeqTrainer": "deltamix.seqmix.hf_trainer",
    "SeqMixTrainerMixin": "deltamix.seqmix.hf_trainer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deltamix.seqmix' has no attribute {name!r}")
