"""Span: where each gated parameter lives in a diff's flat vector; and which gated tensor is the input embedding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class Span:
    """Where one gated parameter lives in the flat diff vector: entries ``[offset, offset + numel)``."""

    name: str
    offset: int
    numel: int
    shape: tuple[int, ...]


def spans_of(named: Sequence[tuple[str, Tensor]]) -> list[Span]:
    """The spans of parameters laid end to end in the flat vector, in the order given."""
    spans, offset = [], 0
    for name, p in named:
        spans.append(Span(name, offset, p.numel(), tuple(p.shape)))
        offset += p.numel()
    return spans


def input_embedding(model: nn.Module, spans: list[Span]) -> tuple[nn.Embedding, int] | None:
    """(module, span index) of ``model``'s input word embeddings, if gated and looked up only at
    input_ids; None otherwise (no ``get_input_embeddings``, not a plain ``nn.Embedding``, tied or
    shared with another parameter such as an LM head, or an encoder-decoder, whose decoder reads
    other ids).
    """
    getter = getattr(model, "get_input_embeddings", None)
    try:
        embedding = getter() if callable(getter) else None
    except NotImplementedError:
        return None
    config = getattr(model, "config", None)
    if not isinstance(embedding, nn.Embedding) or getattr(config, "is_encoder_decoder", False):
        return None
    if embedding.max_norm is not None or embedding.scale_grad_by_freq:
        return None  # max_norm renormalises looked-up rows in place
    names = [name for name, p in model.named_parameters(remove_duplicate=False) if p is embedding.weight]
    if len(names) != 1:
        return None
    for index, span in enumerate(spans):
        if span.name == names[0]:
            return embedding, index
    return None
