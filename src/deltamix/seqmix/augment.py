"""`SeqMixAugmenter`: turns a padded (src, tgt_in, labels) batch into the `MixedBatch` of a SeqMix-family member.

A thin class over the pure functions of `mixing` and `partners`; the trainer calls it once per step.
Per-variant semantics (see docs/seqmix.md):

- ``none``: the plain batch.
- ``seqmix`` (soft): partner (X', Y') from the batch; one lambda per pair weights the encoder input,
  the decoder input and the loss: lambda * CE(Y) + (1 - lambda) * CE(Y').
- ``seqmix-hard``: the same lambda and partner, but every source token and every target token is
  chosen from the main sequence with probability lambda, else from the partner; the decoder input
  follows the choice made for the label it predicts, and the loss is CE on the chosen target tokens.
- ``word-dropout``: partner = <unk>; each non-special token is replaced with probability p on the source
  and the decoder input; the loss is on Y.
- ``switchout``: partner = uniform random tokens; n ~ p(n) ∝ exp(-n / tau) tokens replaced per sequence,
  on the source and on the target (decoder input and labels replaced together, as in SwitchOut, which
  trains on the sampled pair (x^, y^)).

A partner longer than its main example counts at every position of either (``partner_extent="union"``,
the default) or only at the main example's positions (``"main"``, the authors' fairseq code).

Hard members (seqmix-hard, word dropout, SwitchOut) have weights in {0, 1}, so their mixture is a real
token sequence: it is returned as plain `MixedTokens` (no partner) and plain labels, which every model
accepts and which costs one embedding lookup.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

import deltamix.seqmix.mixing as mixing
from deltamix.core.mixed_tokens import MixedBatch, MixedTokens
from deltamix.seqmix.config import SeqMixConfig
from deltamix.seqmix.partners import sample_partners


class SeqMixAugmenter:
    """Applies the configured SeqMix-family augmentation to a training batch.

    Args:
        config: the `SeqMixConfig`.
        pad_id: padding id (shared by source and target).
        unk_id: the unknown-token id (word dropout's partner).
        vocab_size: an int for a shared vocabulary, or ``(src_vocab_size, tgt_vocab_size)``.
        special_ids: ids that word dropout and SwitchOut never replace and SwitchOut never samples
            (BOS, EOS, ...); pad is always included and <unk> is never sampled.

    >>> aug = SeqMixAugmenter(SeqMixConfig(variant="seqmix"), pad_id=0, unk_id=3, vocab_size=20,
    ...                       special_ids=(1, 2))
    >>> src = torch.tensor([[4, 5, 2], [6, 2, 0]]); tgt_in = torch.tensor([[1, 7], [1, 8]])
    >>> labels = torch.tensor([[7, 2], [8, 2]])
    >>> batch = aug(src, tgt_in, labels, generator=torch.Generator().manual_seed(0))
    >>> batch.label_weight.shape
    torch.Size([2, 2])
    """

    def __init__(
        self,
        config: SeqMixConfig,
        pad_id: int,
        unk_id: int,
        vocab_size: int | tuple[int, int],
        special_ids: Iterable[int] = (),
    ) -> None:
        self.config = config
        self.pad_id = int(pad_id)
        self.unk_id = int(unk_id)
        if isinstance(vocab_size, int):
            src_size = tgt_size = vocab_size
        else:
            src_size, tgt_size = (int(v) for v in vocab_size)
        self.src_vocab_size, self.tgt_vocab_size = src_size, tgt_size
        self._protected = torch.tensor(
            sorted({self.pad_id, *(int(i) for i in special_ids)}), dtype=torch.long
        )
        excluded = {*self._protected.tolist(), self.unk_id}
        for name, size in (("source", src_size), ("target", tgt_size)):
            if size <= max(excluded):
                raise ValueError(f"{name} vocab_size {size} must exceed every special id {sorted(excluded)}")
        self._allowed_src = self._allowed(src_size, excluded)
        self._allowed_tgt = self._allowed(tgt_size, excluded)
        if config.variant == "switchout" and min(len(self._allowed_src), len(self._allowed_tgt)) < 2:
            raise ValueError("SwitchOut needs at least 2 non-special tokens in each vocabulary")

    @staticmethod
    def _allowed(size: int, excluded: set[int]) -> Tensor:
        keep = torch.ones(size, dtype=torch.bool)
        keep[sorted(excluded)] = False
        return keep.nonzero().squeeze(1)

    def __call__(
        self,
        src_ids: Tensor,
        tgt_in: Tensor,
        labels: Tensor,
        generator: torch.Generator | None = None,
    ) -> MixedBatch:
        """Augment one batch.

        Args:
            src_ids: LongTensor [B, S], encoder input padded with pad_id.
            tgt_in: LongTensor [B, T], teacher-forced decoder input (BOS y1 .. y_{n-1}), padded.
            labels: LongTensor [B, T], decoder output (y1 .. y_n EOS), padded; ``tgt_in`` shifted left.
            generator: source of randomness (None: torch's global generator).

        Returns:
            The `MixedBatch` (tensors on the inputs' device).
        """
        self._check(src_ids, tgt_in, labels)
        return _MEMBERS[self.config.variant](self, src_ids, tgt_in, labels, generator)

    def plain(self, src_ids: Tensor, tgt_in: Tensor, labels: Tensor) -> MixedBatch:
        """The unaugmented batch (also what evaluation uses)."""
        return MixedBatch(
            src=MixedTokens.plain(src_ids, self.pad_id),
            tgt_in=MixedTokens.plain(tgt_in, self.pad_id),
            labels=labels,
        )

    def _check(self, src_ids: Tensor, tgt_in: Tensor, labels: Tensor) -> None:
        for name, ids in (("src_ids", src_ids), ("tgt_in", tgt_in), ("labels", labels)):
            if ids.dim() != 2 or ids.dtype != torch.long:
                raise ValueError(
                    f"{name} must be a LongTensor [batch, length], got {ids.dtype} {tuple(ids.shape)}"
                )
        if not src_ids.shape[0] == tgt_in.shape[0] == labels.shape[0]:
            raise ValueError(
                f"batch sizes differ: src {src_ids.shape[0]}, tgt_in {tgt_in.shape[0]}, labels {labels.shape[0]}"
            )
        if tgt_in.shape != labels.shape:
            raise ValueError(
                f"tgt_in {tuple(tgt_in.shape)} and labels {tuple(labels.shape)} must have one shape"
            )

    def _partners_and_lambda(
        self, labels: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """partner [B] (index into the batch) and lambda [B]."""
        partner = sample_partners(self.config.partner, labels.ne(self.pad_id).sum(dim=1), generator)
        lam = mixing.sample_lambda(
            labels.shape[0], self.config.alpha, self.config.use_max_lambda, generator, device=labels.device
        )
        return partner, lam

    def _partner_of(self, ids: Tensor, partner: Tensor) -> Tensor:
        """The partners' rows of ``ids`` [B, T]; with ``partner_extent="main"`` cut to each main row's
        non-pad positions (pad elsewhere), so nothing of a longer partner lies beyond the main sequence."""
        # index_select, not ids[partner]: advanced indexing is ~100x slower on a busy multi-threaded CPU.
        rows = ids.index_select(0, partner)
        if self.config.partner_extent == "main":
            rows = rows.masked_fill(ids.eq(self.pad_id), self.pad_id)
        return rows

    def _soft(
        self, src_ids: Tensor, tgt_in: Tensor, labels: Tensor, generator: torch.Generator | None
    ) -> MixedBatch:
        partner, lam = self._partners_and_lambda(labels, generator)
        src = mixing.soft_mix(src_ids, self._partner_of(src_ids, partner), lam, self.pad_id)
        if self.config.mix_target_input:
            tgt = mixing.soft_mix(tgt_in, self._partner_of(tgt_in, partner), lam, self.pad_id)
        else:
            tgt = MixedTokens.plain(tgt_in, self.pad_id)
        return MixedBatch(
            src=src,
            tgt_in=tgt,
            labels=labels,
            partner_labels=self._partner_of(labels, partner),
            label_weight=lam.unsqueeze(1).expand_as(labels),  # B -> B x T
        )

    def _unaugmented(
        self, src_ids: Tensor, tgt_in: Tensor, labels: Tensor, generator: torch.Generator | None
    ) -> MixedBatch:
        return self.plain(src_ids, tgt_in, labels)

    def _hard(
        self, src_ids: Tensor, tgt_in: Tensor, labels: Tensor, generator: torch.Generator | None
    ) -> MixedBatch:
        partner, lam = self._partners_and_lambda(labels, generator)
        take_src = mixing.bernoulli_mask(lam, tuple(src_ids.shape), generator)  # B x S
        take_label = mixing.bernoulli_mask(lam, tuple(labels.shape), generator)  # B x T
        new_src = mixing.hard_mix(src_ids, self._partner_of(src_ids, partner), take_src, self.pad_id)
        new_labels = mixing.hard_mix(labels, self._partner_of(labels, partner), take_label, self.pad_id)
        if self.config.mix_target_input:
            new_tgt_in = mixing.hard_mix(
                tgt_in, self._partner_of(tgt_in, partner), mixing.shift_right(take_label), self.pad_id
            )
        else:
            new_tgt_in = tgt_in
        return self.plain(new_src, new_tgt_in, new_labels)

    def _word_dropout(
        self, src_ids: Tensor, tgt_in: Tensor, labels: Tensor, generator: torch.Generator | None
    ) -> MixedBatch:
        p, protected = self.config.word_dropout_p, self._protected.to(src_ids.device)
        new_src, _ = mixing.word_dropout(src_ids, p, self.unk_id, protected, generator)
        if self.config.mix_target_input:
            tgt_in, _ = mixing.word_dropout(tgt_in, p, self.unk_id, protected, generator)
        return self.plain(new_src, tgt_in, labels)

    def _switchout(
        self, src_ids: Tensor, tgt_in: Tensor, labels: Tensor, generator: torch.Generator | None
    ) -> MixedBatch:
        protected = self._protected.to(src_ids.device)
        new_src, _ = mixing.switchout(
            src_ids, self.config.switchout_tau, self._allowed_src.to(src_ids.device), protected, generator
        )
        if self.config.mix_target_input and self.config.target_tau > 0:
            # Replace in the labels (y1 .. yn EOS) and feed the same replaced tokens to the decoder.
            new_labels, replaced = mixing.switchout(
                labels, self.config.target_tau, self._allowed_tgt.to(labels.device), protected, generator
            )
            shifted = torch.cat([tgt_in[:, :1], new_labels[:, :-1]], dim=1)
            tgt_in = torch.where(mixing.shift_right(replaced, first=False), shifted, tgt_in)
            labels = new_labels
        return self.plain(new_src, tgt_in, labels)


# Each member of the family (SeqMixConfig.variant) -> the augmenter's method that draws its batch.
_MEMBERS = {
    "none": SeqMixAugmenter._unaugmented,
    "seqmix": SeqMixAugmenter._soft,
    "seqmix-hard": SeqMixAugmenter._hard,
    "word-dropout": SeqMixAugmenter._word_dropout,
    "switchout": SeqMixAugmenter._switchout,
}
