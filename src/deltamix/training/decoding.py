"""Batched decoding of encoded sources: `DecodingSettings`, length-sorted batches and `decode_batch`.

Shared by the training loop (evaluation during and after training) and `deltamix.training.predict`
(decoding with a saved model).

>>> settings = DecodingSettings(beam_size=4, length_penalty=0.6, max_length=100)
>>> length_sorted_batches([5, 1, 3], 2)
[[1, 2], [0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from deltamix.data.batching import Tokenizer, pad_batch


@dataclass(frozen=True)
class DecodingSettings:
    """How to decode: beam search (greedy at ``beam_size=1``) with a length penalty, in batches."""

    beam_size: int = 1
    length_penalty: float = 1.0
    max_length: int = 200  # most tokens generated per input
    batch_size: int = 64

    def __post_init__(self) -> None:
        for name in ("beam_size", "max_length", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.length_penalty >= 0:
            raise ValueError(f"length_penalty must be >= 0, got {self.length_penalty}")


def length_sorted_batches(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Indices of ``lengths`` sorted by length, cut into batches of ``size`` (less padding per batch).

    >>> length_sorted_batches([5, 1, 3], 2)
    [[1, 2], [0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + size] for i in range(0, len(order), size)]


@torch.no_grad()
def decode_batch(
    model: nn.Module,
    sources: Sequence[Sequence[int]],
    pad_id: int,
    target_tokenizer: Tokenizer,
    settings: DecodingSettings,
    device: torch.device | str = "cpu",
) -> list[str]:
    """Output texts of one batch of encoded sources (each ending in EOS), in order.

    Args:
        model: a `deltamix.models.base.Seq2SeqModel` in eval mode.
        sources: source ids per input (lengths may differ; padded here to [B, S]).
        pad_id: the source padding id.
        target_tokenizer: decodes output ids to text.
        settings: beam size, length penalty, output-length limit.
        device: where ``model`` is.
    """
    src_ids = pad_batch(sources, pad_id).to(device)
    ids = model.generate(src_ids, settings.max_length, settings.beam_size, settings.length_penalty)
    return [target_tokenizer.decode(row) for row in ids]
