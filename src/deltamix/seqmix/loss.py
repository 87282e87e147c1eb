"""The SeqMix loss: lambda * CE(p, Y) + (1 - lambda) * CE(p, Y'), label-smoothed, normalised per token.

Pure functions in the style of fairseq's ``label_smoothed_nll_loss``; the trainer owns logging.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deltamix.core.mixed_tokens import MixedBatch

REDUCTIONS = ("mean", "sum")


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
    if lprobs.dim() != 3 or target.shape != lprobs.shape[:2]:
        raise ValueError(
            f"lprobs must be [B, T, V] and target [B, T]; got {tuple(lprobs.shape)} and {tuple(target.shape)}"
        )
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"label smoothing must be in [0, 1), got {epsilon}")
    ignored = target.eq(ignore_index)  # B x T
    safe_target = target.masked_fill(ignored, 0).unsqueeze(-1)  # B x T x 1
    nll = -lprobs.gather(dim=-1, index=safe_target).squeeze(-1)  # B x T
    nll = nll.masked_fill(ignored, 0.0)
    if epsilon == 0.0:
        return nll, nll
    smooth = -lprobs.mean(dim=-1).masked_fill(ignored, 0.0)  # B x T: cross-entropy to the uniform
    return (1.0 - epsilon) * nll + epsilon * smooth, nll


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
    labels = batch.labels  # B x T
    main, _ = label_smoothed_nll(lprobs, labels, label_smoothing, pad_id)  # B x T
    main_tokens = labels.ne(pad_id).to(lprobs.dtype)  # B x T
    if batch.label_weight is None:
        numerator = main.sum()
        denominator = main_tokens.sum()
    else:
        weight = batch.label_weight.to(lprobs.dtype)  # B x T
        if weight.shape != labels.shape:
            raise ValueError(
                f"label_weight must have the labels' shape {tuple(labels.shape)}, got {tuple(weight.shape)}"
            )
        numerator = torch.where(weight > 0, weight * main, 0.0).sum()
        denominator = (weight * main_tokens).sum()
        if batch.partner_labels is not None:
            partner_labels = batch.partner_labels
            partner, _ = label_smoothed_nll(lprobs, partner_labels, label_smoothing, pad_id)
            rest = 1.0 - weight
            numerator = numerator + torch.where(rest > 0, rest * partner, 0.0).sum()
            denominator = denominator + (rest * partner_labels.ne(pad_id).to(lprobs.dtype)).sum()
    if reduction == "sum":
        return numerator
    return numerator / denominator.clamp_min(torch.finfo(lprobs.dtype).tiny)
