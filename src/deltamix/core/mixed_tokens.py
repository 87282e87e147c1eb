"""`MixedTokens`, `MixedBatch`: token sequences softly mixed with partners (what SeqMix feeds a model).

Every member of the SeqMix family (soft and hard SeqMix, word dropout, SwitchOut) produces, for the
encoder input and for the teacher-forced decoder input, two id tensors and a per-token weight: the
model then sees ``weight * onehot(ids) + (1 - weight) * onehot(partner_ids)``. Through an embedding
table that is ``weight * E[ids] + (1 - weight) * E[partner_ids]`` (`embed_mixed`), and a copy
mechanism scatters its attention with the same weights (`scatter_mixed`).

Padding rule: both sequences are padded to the same length T with the pad id, whose embedding the
models keep at zero (``nn.Embedding(padding_idx=pad)``). A position that is padding in one sequence
and a token in the other is therefore that token scaled by its weight; ``mask`` marks the positions
that are a token in at least one of the two (the union), so attention covers the longer sequence.
Where a weight is exactly 1 (or 0), only the chosen sequence counts there, so that a mix with
lambda = 1 gives exactly the unmixed mask (`deltamix.seqmix.mixing.mixed_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class MixedTokens:
    """A possibly mixed batch of token sequences.

    Attributes:
        ids: LongTensor [B, T], the main sequences (padded with the pad id).
        mask: BoolTensor [B, T], True where ``ids`` or ``partner_ids`` holds a token (the union).
        partner_ids: LongTensor [B, T] or None (no mixing).
        weight: FloatTensor [B, T] or None, the weight on ``ids``; ``1 - weight`` goes to ``partner_ids``.
    """

    ids: Tensor
    mask: Tensor
    partner_ids: Tensor | None = None
    weight: Tensor | None = None

    @classmethod
    def plain(cls, ids: Tensor, pad_id: int) -> MixedTokens:
        """Unmixed tokens: ``ids`` [B, T] with its non-pad mask."""
        return cls(ids=ids, mask=ids.ne(pad_id))

    @property
    def is_mixed(self) -> bool:
        return self.partner_ids is not None

    def to(self, device: torch.device | str) -> MixedTokens:
        """The same batch on ``device``."""
        return MixedTokens(
            ids=self.ids.to(device),
            mask=self.mask.to(device),
            partner_ids=None if self.partner_ids is None else self.partner_ids.to(device),
            weight=None if self.weight is None else self.weight.to(device),
        )


def embed_mixed(embedding: nn.Embedding, tokens: MixedTokens) -> Tensor:
    """Embed a (possibly mixed) batch: the embedding of the soft one-hot mixture.

    Args:
        embedding: the embedding table [V, D].
        tokens: ids [B, T] (and partner_ids [B, T], weight [B, T] when mixed).

    Returns:
        FloatTensor [B, T, D]: ``w * E[ids] + (1 - w) * E[partner_ids]``, or ``E[ids]`` when unmixed.
    """
    embedded = embedding(tokens.ids)
    if tokens.partner_ids is None:
        return embedded
    weight = tokens.weight.to(embedded.dtype).unsqueeze(-1)  # B x T x 1
    return weight * embedded + (1.0 - weight) * embedding(tokens.partner_ids)


def scatter_mixed(attention: Tensor, tokens: MixedTokens, vocab_size: int) -> Tensor:
    """Project attention over source positions onto the vocabulary (for a copy mechanism).

    Args:
        attention: FloatTensor [B, L, S], attention of L decoder steps over S source positions.
        tokens: the source tokens, ids [B, S] (mixed or not).
        vocab_size: V.

    Returns:
        FloatTensor [B, L, V]: for each step, the attention mass on each vocabulary item, split
        between ``ids`` and ``partner_ids`` by the per-token weight when mixed.
    """
    batch, steps, _ = attention.shape
    out = attention.new_zeros(batch, steps, vocab_size)
    if tokens.partner_ids is None:
        index = tokens.ids.unsqueeze(1).expand(-1, steps, -1)
        return out.scatter_add_(2, index, attention)
    weight = tokens.weight.to(attention.dtype).unsqueeze(1)  # B x 1 x S
    out.scatter_add_(2, tokens.ids.unsqueeze(1).expand(-1, steps, -1), attention * weight)
    out.scatter_add_(2, tokens.partner_ids.unsqueeze(1).expand(-1, steps, -1), attention * (1.0 - weight))
    return out


@dataclass
class MixedBatch:
    """One training batch after augmentation: what a seq2seq model and the SeqMix loss consume.

    Attributes:
        src: encoder input [B, S] (mixed or not).
        tgt_in: teacher-forced decoder input [B, T] (starts with BOS; mixed with the same weights scheme).
        labels: LongTensor [B, T], the main target sequence (decoder output, ends with EOS; pad = ignored).
        partner_labels: LongTensor [B, T] or None, the partner's target sequence.
        label_weight: FloatTensor [B, T] or None, weight of CE(labels) per position; ``1 - label_weight``
            goes to CE(partner_labels). None means weight 1 on ``labels`` alone.
    """

    src: MixedTokens
    tgt_in: MixedTokens
    labels: Tensor
    partner_labels: Tensor | None = None
    label_weight: Tensor | None = None

    def to(self, device: torch.device | str) -> MixedBatch:
        """The same batch on ``device``."""
        return MixedBatch(
            src=self.src.to(device),
            tgt_in=self.tgt_in.to(device),
            labels=self.labels.to(device),
            partner_labels=None if self.partner_labels is None else self.partner_labels.to(device),
            label_weight=None if self.label_weight is None else self.label_weight.to(device),
        )
