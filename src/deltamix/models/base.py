"""The seq2seq model protocol that the SeqMix trainer, decoding and every model (ours or wrapped HF) share."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from deltamix.core.mixed_tokens import MixedTokens


@runtime_checkable
class Seq2SeqModel(Protocol):
    """A sequence-to-sequence model that accepts SeqMix inputs.

    Attributes:
        pad_id, bos_id, eos_id: special token ids of the (shared or target) vocabulary.
    """

    pad_id: int
    bos_id: int
    eos_id: int

    def __call__(self, src: MixedTokens, tgt_in: MixedTokens) -> Tensor:
        """Teacher-forced log-probabilities, FloatTensor [B, T, V] (log of the final output
        distribution, including any copy mechanism)."""
        ...

    def generate(
        self, src_ids: Tensor, max_length: int, beam_size: int = 1, length_penalty: float = 1.0
    ) -> list[list[int]]:
        """Decode ``src_ids`` [B, S] (pad-padded) greedily (beam_size=1) or by beam search; returns
        for each example the output ids without BOS/EOS/pad."""
        ...
