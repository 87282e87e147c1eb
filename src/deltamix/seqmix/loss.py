"""The SeqMix loss: lambda * CE(p, Y) + (1 - lambda) * CE(p, Y'), label-smoothed, normalised per token.

Pure functions in the style of fairseq's ``label_smoothed_nll_loss``; the trainer owns logging.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from deltamix.core.mixed_tokens import MixedBatch

REDUCTIONS = ("mean", "sum")


def _check_smoothing(lprobs: Tensor, target: Tensor, epsilon: float) -> None:
    if lprobs.dim() != 3 or target.shape != lprobs.shape[:2]:
        raise ValueError(
            f"lprobs must be [B, T, V] and target [B, T]; got {tuple(lprobs.shape)} and {tuple(target.shape)}"
        )
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"label smoothing must be in [0, 1), got {epsilon}")


def smoothed_nll_terms(
    lprobs: Tensor, targets: Sequence[Tensor], epsilon: float, ignore_index: int
) -> list[tuple[Tensor, Tensor]]:
    """`label_smoothed_nll` of several targets of the same log-probs, reading [B, T, V] only twice.

    One gather takes every target's log-prob, and the cross-entropy to the uniform (``sum / V``, the
    same for every target) is formed once. Backward then builds one dense [B, T, V] gradient (the
    gather's) and adds the smoothing term's broadcast [B, T, 1] into it in place, instead of one
    gradient per target and per mean: with thousands of tokens and a large vocabulary these
    tensors, not the arithmetic, dominate the loss's time. Values are those of `label_smoothed_nll`.

    Args:
        lprobs: FloatTensor [B, T, V], log-probabilities.
        targets: LongTensors [B, T]; ``ignore_index`` positions get loss 0.
        epsilon: smoothing in [0, 1).

    Returns:
        (loss [B, T], nll [B, T]) for each target, zero at its ignored positions.
    """
    for target in targets:
        _check_smoothing(lprobs, target, epsilon)
    ignored = [target.eq(ignore_index) for target in targets]  # each B x T
    # The smoothing term first: its backward (a broadcast) then runs after the gather's dense one
    # and is added into it in place (autograd accumulates in place only into a dense gradient).
    smooth = None if epsilon == 0.0 else -(lprobs.sum(dim=-1) / lprobs.size(-1))  # B x T
    index = torch.stack([t.masked_fill(i, 0) for t, i in zip(targets, ignored, strict=True)], -1)
    gathered = -lprobs.gather(dim=-1, index=index)  # B x T x K
    terms = []
    for k, skip in enumerate(ignored):
        nll = gathered[..., k].masked_fill(skip, 0.0)  # B x T
        if smooth is None:
            terms.append((nll, nll))
        else:
            terms.append(((1.0 - epsilon) * nll + epsilon * smooth.masked_fill(skip, 0.0), nll))
    return terms


def label_smoothed_nll(
    lprobs: Tensor, target: Tensor, epsilon: float, ignore_index: int
) -> tuple[Tensor, Tensor]:
    """Per-token label-smoothed negative log-likelihood.

    The smoothed target puts 1 - epsilon on the gold token and epsilon / V on every token (the gold
    one included), i.e. ``torch.nn.functional.cross_entropy(..., label_smoothing=epsilon)`` per token.

    Args:
        lprobs: FloatTensor [B, T, V], log-probabilities.
        target: LongTensor [B, T]; ``ignore_index`` positions get loss 0.
        epsilon: smoothing in [0, 1).

    Returns:
        (loss [B, T], nll [B, T]), zero at ignored positions.
    """
    return smoothed_nll_terms(lprobs, [target], epsilon, ignore_index)[0]


def seqmix_loss(
    lprobs: Tensor,
    batch: MixedBatch,
    label_smoothing: float,
    pad_id: int,
    reduction: str = "mean",
) -> Tensor:
    """The SeqMix objective for one batch.

    With w = ``batch.label_weight`` (1 where None) and ``[.]`` the non-pad indicator::

        loss = sum_{b,t} w * CE(p_bt, Y_bt) + (1 - w) * CE(p_bt, Y'_bt)
               / sum_{b,t} w * [Y_bt != pad] + (1 - w) * [Y'_bt != pad]

    i.e. the soft-target cross-entropy to ``w * q(Y) + (1 - w) * q(Y')`` (q: the label-smoothed
    one-hot) averaged per (expected) target token. With w = 1 it is the usual per-token mean over
    the non-pad tokens of Y. A term with weight 0 is dropped, not multiplied, so infinite log-probs
    there cannot produce NaN.

    Args:
        lprobs: FloatTensor [B, T, V], the model's log-probabilities.
        batch: the `MixedBatch` (labels [B, T]; partner_labels and label_weight [B, T] or None).
        label_smoothing: epsilon in [0, 1).
        pad_id: the padding id of the labels (ignored).
        reduction: "mean" (per token, as above) or "sum" (the numerator, for accumulating over batches).

    Returns:
        A scalar tensor.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    labels, weight = batch.labels, batch.label_weight  # B x T each (weight may be None)
    if weight is not None and weight.shape != labels.shape:
        raise ValueError(
            f"label_weight must have the labels' shape {tuple(labels.shape)}, got {tuple(weight.shape)}"
        )
    partner_labels = batch.partner_labels if weight is not None else None
    targets = [labels] if partner_labels is None else [labels, partner_labels]
    terms = smoothed_nll_terms(lprobs, targets, label_smoothing, pad_id)  # B x T each
    main = terms[0][0]
    main_tokens = labels.ne(pad_id).to(lprobs.dtype)  # B x T
    if weight is None:
        numerator = main.sum()
        denominator = main_tokens.sum()
    else:
        weight = weight.to(lprobs.dtype)
        numerator = torch.where(weight > 0, weight * main, 0.0).sum()
        denominator = (weight * main_tokens).sum()
        if partner_labels is not None:
            partner, rest = terms[1][0], 1.0 - weight
            numerator = numerator + torch.where(rest > 0, rest * partner, 0.0).sum()
            denominator = denominator + (rest * partner_labels.ne(pad_id).to(lprobs.dtype)).sum()
    if reduction == "sum":
        return numerator
    return numerator / denominator.clamp_min(torch.finfo(lprobs.dtype).tiny)
