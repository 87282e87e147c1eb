"""The batch one optimizer step trains on: plain, or augmented with a generator seeded by (seed, step).

>>> seed = augmentation_seed(0, 1)           # the same on every process and after a resume
>>> batch = plain_batch(src_ids, tgt_in, labels, pad_id)   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from deltamix.core.mixed_tokens import MixedBatch, MixedTokens

Augmenter = Callable[[Tensor, Tensor, Tensor, torch.Generator], MixedBatch]
"""``augmenter(src_ids [B, S], tgt_in [B, T], labels [B, T], generator) -> MixedBatch``, e.g. a
`deltamix.seqmix.augment.SeqMixAugmenter`."""


def augmentation_seed(seed: int, step: int) -> int:
    """The seed of the generator that draws the augmentation of optimizer step ``step`` (1-based).

    It depends on the run's seed and the step only, so every process draws the mixing of the whole
    global batch, a resumed run draws what an uninterrupted one would, and a replay (e.g.
    experiments/partner_overhang.py) can reproduce a run's draws.
    """
    return (seed * 1_000_003 + step) * 1009


def plain_batch(src_ids: Tensor, tgt_in: Tensor, labels: Tensor, pad_id: int) -> MixedBatch:
    """An unaugmented `MixedBatch` of padded ids ([B, S], [B, T], [B, T])."""
    return MixedBatch(
        src=MixedTokens.plain(src_ids, pad_id), tgt_in=MixedTokens.plain(tgt_in, pad_id), labels=labels
    )


def step_batch(
    batch: dict[str, Tensor],
    augmenter: Augmenter | None,
    seed: int,
    step: int,
    pad_id: int,
    device: torch.device,
) -> MixedBatch:
    """The collated ``batch`` (``src_ids``, ``tgt_in``, ``labels``) on ``device``, augmented with the
    generator of (``seed``, ``step``), or plain without an augmenter."""
    src_ids, tgt_in, labels = (batch[k].to(device) for k in ("src_ids", "tgt_in", "labels"))
    if augmenter is None:
        return plain_batch(src_ids, tgt_in, labels, pad_id)
    generator = torch.Generator(device=src_ids.device).manual_seed(augmentation_seed(seed, step))
    return augmenter(src_ids, tgt_in, labels, generator)
