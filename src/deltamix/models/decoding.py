"""Batched greedy and beam-search decoding, shared by every model that can decode one step at a time.

A model takes part by implementing `IncrementalDecoder`: ``start_decoding(src_ids)`` returns a decoder
state (a dict of tensors whose first dimension is the batch) and ``decode_step(state, prev_tokens)``
returns the log-probabilities of the next token and the new state. Beam search flattens the batch and
the beams into one dimension (``B * K``) and reorders the state with ``index_select``, so one step
costs one model call for the whole batch.

Rules shared by both searches: PAD and BOS are never produced; a hypothesis ends at EOS (which is
counted in its length, as in fairseq) or after ``max_length`` tokens; outputs exclude BOS, EOS and PAD.
Beam search ranks finished hypotheses by ``score / length ** length_penalty``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

DecoderState = dict[str, Tensor]


class IncrementalDecoder(Protocol):
    """What decoding needs from a model (besides ``pad_id``, ``bos_id``, ``eos_id``)."""

    pad_id: int
    bos_id: int
    eos_id: int

    def start_decoding(self, src_ids: Tensor) -> DecoderState:
        """Encode ``src_ids`` [B, S]; the returned tensors all have batch size B in dimension 0."""
        ...

    def decode_step(self, state: DecoderState, prev_tokens: Tensor) -> tuple[Tensor, DecoderState]:
        """One decoder step from ``prev_tokens`` [N]: log-probs [N, V] and the next state."""
        ...


def reorder_state(state: DecoderState, index: Tensor) -> DecoderState:
    """The state with its batch dimension re-indexed by ``index`` [N'] (beam reordering/expansion)."""
    return {name: value.index_select(0, index) for name, value in state.items()}


def _forbid_specials(lprobs: Tensor, model: IncrementalDecoder) -> Tensor:
    lprobs = lprobs.clone()
    lprobs[:, model.pad_id] = float("-inf")
    lprobs[:, model.bos_id] = float("-inf")
    return lprobs


def _strip(rows: list[list[int]], eos_id: int, pad_id: int) -> list[list[int]]:
    out = []
    for row in rows:
        ids = []
        for token in row:
            if token == eos_id:
                break
            if token != pad_id:
                ids.append(token)
        out.append(ids)
    return out


def _check(src_ids: Tensor, max_length: int) -> None:
    if src_ids.dim() != 2:
        raise ValueError(f"src_ids must be [batch, length], got shape {tuple(src_ids.shape)}")
    if max_length <= 0:
        raise ValueError(f"max_length must be > 0, got {max_length}")


@torch.no_grad()
def greedy_decode(model: IncrementalDecoder, src_ids: Tensor, max_length: int) -> list[list[int]]:
    """Greedy decoding of a batch.

    Args:
        model: an `IncrementalDecoder`.
        src_ids: LongTensor [B, S], pad-padded sources.
        max_length: the most tokens generated per example (EOS included).

    Returns:
        For each example, the generated ids without BOS/EOS/PAD.
    """
    _check(src_ids, max_length)
    batch = src_ids.size(0)
    state = model.start_decoding(src_ids)
    tokens = src_ids.new_full((batch,), model.bos_id)
    active = torch.arange(batch, device=src_ids.device)  # rows of the batch still decoding
    out = src_ids.new_full((batch, max_length), model.pad_id)
    for t in range(max_length):
        lprobs, state = model.decode_step(state, tokens)
        tokens = _forbid_specials(lprobs, model).argmax(-1)  # N
        out[active, t] = tokens
        live = tokens.ne(model.eos_id)
        if not bool(live.all()):  # drop finished rows so later steps only compute what is needed
            keep = live.nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            active, tokens, state = active[keep], tokens[keep], reorder_state(state, keep)
    return _strip(out.tolist(), model.eos_id, model.pad_id)


@dataclass
class _Beams:
    """The live hypotheses of a beam search: K rows per input still decoding (N = B' * K rows).

    ``scores`` is [B', K]; ``tokens``, ``finished`` and ``lengths`` are [N]; ``history`` is [N, t]
    (the tokens so far); ``examples`` [B'] names the input each group of K rows decodes; ``state`` is
    the decoder state of the N rows.
    """

    examples: Tensor
    scores: Tensor
    tokens: Tensor
    finished: Tensor
    lengths: Tensor
    history: Tensor
    state: DecoderState


def _start_beams(model: IncrementalDecoder, src_ids: Tensor, k: int) -> _Beams:
    """K copies of each input's start state, of which only the first may be extended at step one."""
    batch, device = src_ids.size(0), src_ids.device
    state = reorder_state(
        model.start_decoding(src_ids), torch.arange(batch, device=device).repeat_interleave(k)
    )
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep one so the first top-k picks distinct tokens
    return _Beams(
        examples=torch.arange(batch, device=device),
        scores=scores,
        tokens=src_ids.new_full((batch * k,), model.bos_id),
        finished=torch.zeros(batch * k, dtype=torch.bool, device=device),
        lengths=torch.zeros(batch * k, device=device),
        history=src_ids.new_zeros((batch * k, 0)),
        state=state,
    )


def _extend(beams: _Beams, model: IncrementalDecoder, k: int) -> _Beams:
    """One decoding step: every row's continuations scored, the best K kept per input."""
    live = beams.examples.numel()
    lprobs, state = model.decode_step(beams.state, beams.tokens)
    lprobs = _forbid_specials(lprobs.float(), model)  # N x V
    vocab = lprobs.size(-1)
    # A finished hypothesis continues with PAD at no cost and nothing else.
    frozen = torch.full_like(lprobs, float("-inf"))
    frozen[:, model.pad_id] = 0.0
    lprobs = torch.where(beams.finished.unsqueeze(1), frozen, lprobs)
    candidates = (beams.scores.view(-1, 1) + lprobs).view(live, k * vocab)  # B' x KV
    scores, flat = candidates.topk(k, dim=1)  # B' x K
    origin = flat // vocab + torch.arange(live, device=flat.device).unsqueeze(1) * k  # B' x K
    origin = origin.view(-1)
    tokens = (flat % vocab).view(-1)
    was_finished = beams.finished.index_select(0, origin)
    return _Beams(
        examples=beams.examples,
        scores=scores,
        tokens=tokens,
        finished=was_finished | tokens.eq(model.eos_id),
        lengths=beams.lengths.index_select(0, origin) + (~was_finished).float(),
        history=torch.cat([beams.history.index_select(0, origin), tokens.unsqueeze(1)], 1),
        state=reorder_state(state, origin),
    )


def _settle(beams: _Beams, rows: Tensor, k: int, length_penalty: float, best: list[list[int]]) -> None:
    """Store in ``best`` the best hypothesis of the live inputs ``rows`` [R] (indices into ``scores``)."""
    normalised = beams.scores[rows] / beams.lengths.view(-1, k)[rows].clamp_min(1.0).pow(length_penalty)
    pick = normalised.argmax(1) + rows * k  # R
    for example, row in zip(
        beams.examples[rows].tolist(), beams.history.index_select(0, pick).tolist(), strict=True
    ):
        best[example] = row


def _keep(beams: _Beams, keep: Tensor, k: int) -> _Beams:
    """The beams of the live inputs ``keep`` [B''] (indices into ``scores``) only."""
    hyps = (keep.unsqueeze(1) * k + torch.arange(k, device=keep.device)).view(-1)
    return _Beams(
        examples=beams.examples[keep],
        scores=beams.scores[keep],
        tokens=beams.tokens[hyps],
        finished=beams.finished[hyps],
        lengths=beams.lengths[hyps],
        history=beams.history[hyps],
        state=reorder_state(beams.state, hyps),
    )


@torch.no_grad()
def beam_search(
    model: IncrementalDecoder,
    src_ids: Tensor,
    max_length: int,
    beam_size: int,
    length_penalty: float = 1.0,
) -> list[list[int]]:
    """Batched beam search.

    A hypothesis that emits EOS stays in its beam with a frozen score (it may only be followed by PAD
    at log-prob 0), competing with live hypotheses for the K slots; an input whose K hypotheses have
    all ended is settled and leaves the batch, and the search stops when none is left or after
    ``max_length`` steps. The best of the K final hypotheses by
    ``score / length ** length_penalty`` is returned.

    Args:
        model: an `IncrementalDecoder`.
        src_ids: LongTensor [B, S], pad-padded sources.
        max_length: the most tokens generated per hypothesis (EOS included).
        beam_size: K >= 1 (K = 1 gives exactly greedy decoding).
        length_penalty: exponent on the hypothesis length; 0 ranks by total log-prob.

    Returns:
        For each example, the best hypothesis' ids without BOS/EOS/PAD.
    """
    _check(src_ids, max_length)
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    k = beam_size
    beams = _start_beams(model, src_ids, k)
    best: list[list[int]] = [[] for _ in range(src_ids.size(0))]
    for _ in range(max_length):
        beams = _extend(beams, model, k)
        # An input whose K hypotheses all ended can no longer change: settle it and stop decoding it.
        done = beams.finished.view(-1, k).all(1)
        if bool(done.any()):
            _settle(beams, done.nonzero().squeeze(1), k, length_penalty, best)
            keep = (~done).nonzero().squeeze(1)
            if keep.numel() == 0:
                return _strip(best, model.eos_id, model.pad_id)
            beams = _keep(beams, keep, k)
    _settle(beams, torch.arange(beams.examples.numel(), device=src_ids.device), k, length_penalty, best)
    return _strip(best, model.eos_id, model.pad_id)


def generate(
    model: IncrementalDecoder,
    src_ids: Tensor,
    max_length: int,
    beam_size: int = 1,
    length_penalty: float = 1.0,
) -> list[list[int]]:
    """Greedy decoding for ``beam_size == 1``, beam search otherwise (see `beam_search`)."""
    if beam_size == 1:
        return greedy_decode(model, src_ids, max_length)
    return beam_search(model, src_ids, max_length, beam_size, length_penalty)
