"""The seq2seq model protocol that the SeqMix trainer, decoding and every model (ours or wrapped HF) share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

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


def check_model_config(config: Any, positive: Iterable[str]) -> None:
    """Refuse a model config whose sizes in ``positive`` are not > 0, whose ``dropout`` is outside
    [0, 1) or whose special ids (``pad_id``, ``bos_id``, ``eos_id``) lie outside ``vocab_size``.

    Raises:
        ValueError: naming the field and its value.
    """
    for name in positive:
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be > 0, got {getattr(config, name)}")
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")
    for name in ("pad_id", "bos_id", "eos_id"):
        if not 0 <= getattr(config, name) < config.vocab_size:
            raise ValueError(
                f"{name}={getattr(config, name)} is outside the vocabulary of {config.vocab_size}"
            )
