"""Pure tensor functions for the SeqMix family: lambda sampling, soft and hard mixing, word dropout, SwitchOut.

Every function is vectorised over the batch (no per-token Python loops) and draws all its randomness from
the ``generator`` it is given (``None``: torch's global generator), so a seeded generator makes it
deterministic. Sequences are right-padded LongTensors [B, T] with ``pad_id``.
"""

from __future__ import annotations

import torch
from scipy.special import betaincinv
from torch import Tensor

from deltamix.core.mixed_tokens import MixedTokens


def _check_ids(name: str, ids: Tensor) -> None:
    if ids.dim() != 2:
        raise ValueError(f"{name} must be a [batch, length] tensor, got shape {tuple(ids.shape)}")
    if ids.dtype != torch.int64:
        raise ValueError(f"{name} must be a LongTensor of token ids, got dtype {ids.dtype}")


def uniform(
    shape: tuple[int, ...] | torch.Size,
    generator: torch.Generator | None,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """U[0, 1) samples of ``shape`` on ``device``, drawn on the generator's device (the data's device when
    ``generator`` is None) so that a CPU generator can drive augmentation of GPU batches."""
    source = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=source, dtype=dtype).to(device)


def pad_to_length(ids: Tensor, length: int, pad_id: int) -> Tensor:
    """Right-pad ``ids`` [B, T] with ``pad_id`` to [B, length] (``length >= T``)."""
    if length < ids.shape[1]:
        raise ValueError(f"cannot pad a length-{ids.shape[1]} batch to the shorter length {length}")
    if length == ids.shape[1]:
        return ids
    return torch.nn.functional.pad(ids, (0, length - ids.shape[1]), value=pad_id)


def pad_to_common(a: Tensor, b: Tensor, pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad two id batches [B, Ta] and [B, Tb] to their common length max(Ta, Tb)."""
    length = max(a.shape[1], b.shape[1])
    return pad_to_length(a, length, pad_id), pad_to_length(b, length, pad_id)


def sample_lambda(
    batch_size: int,
    alpha: float,
    use_max: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """One mixing weight per pair: lambda ~ Beta(alpha, alpha), optionally max(lambda, 1 - lambda).

    Sampled by inverse CDF from uniforms of ``generator`` (``torch.distributions.Beta`` takes no
    generator), in float64 so that lambda near 0 or 1 keeps its precision.

    Returns:
        FloatTensor [B] (float32) on ``device`` (default: the generator's device, else CPU).
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if device is None:
        device = generator.device if generator is not None else torch.device("cpu")
    u = uniform((batch_size,), generator, "cpu", torch.float64).numpy()
    if use_max:
        # lambda = max(l, 1 - l) = 1 - l_small with l_small ~ Beta restricted to [0, 1/2]: by symmetry of
        # Beta(a, a), min(u, 1 - u) maps to the lower half exactly.
        small = betaincinv(alpha, alpha, 0.5 * u)
        lam = 1.0 - small
    else:
        lam = betaincinv(alpha, alpha, u)
    return torch.from_numpy(lam).to(device=device, dtype=torch.float32)


def mixed_mask(ids: Tensor, partner_ids: Tensor, weight: Tensor, pad_id: int) -> Tensor:
    """Positions holding token mass: a token of ``ids`` with weight > 0 or of ``partner_ids`` with weight < 1.

    For 0 < weight < 1 this is the union of the two non-pad masks (the rule of `tokens.py`); a weight of
    exactly 1 (or 0) keeps only the chosen sequence's positions, so lambda = 1 reproduces the unmixed mask.

    Args:
        ids, partner_ids: LongTensor [B, T].
        weight: FloatTensor broadcastable to [B, T], the weight on ``ids``.

    Returns:
        BoolTensor [B, T].
    """
    return (ids.ne(pad_id) & (weight > 0)) | (partner_ids.ne(pad_id) & (weight < 1))


def soft_mix(ids: Tensor, partner_ids: Tensor, weight: Tensor, pad_id: int) -> MixedTokens:
    """Mix two id batches with per-pair (or per-token) weights: the model embeds
    ``weight * onehot(ids) + (1 - weight) * onehot(partner_ids)``.

    Args:
        ids: LongTensor [B, Ta]; partner_ids: LongTensor [B, Tb] (padded to the common length).
        weight: FloatTensor [B] (one lambda per pair) or [B, max(Ta, Tb)].

    Returns:
        MixedTokens with ids, partner_ids, weight [B, T] and mask (`mixed_mask`).
    """
    _check_ids("ids", ids)
    _check_ids("partner_ids", partner_ids)
    if ids.shape[0] != partner_ids.shape[0]:
        raise ValueError(f"batch sizes differ: {ids.shape[0]} vs {partner_ids.shape[0]}")
    ids, partner_ids = pad_to_common(ids, partner_ids, pad_id)
    if weight.dim() == 1:
        weight = weight.unsqueeze(1).expand_as(ids)  # B -> B x T
    if weight.shape != ids.shape:
        raise ValueError(f"weight must be [B] or [B, T] = {tuple(ids.shape)}, got {tuple(weight.shape)}")
    weight = weight.to(torch.float32)
    return MixedTokens(
        ids=ids, mask=mixed_mask(ids, partner_ids, weight, pad_id), partner_ids=partner_ids, weight=weight
    )


def hard_mix(ids: Tensor, partner_ids: Tensor, choose_ids: Tensor, pad_id: int) -> Tensor:
    """Choose per position between two id batches: ``where(choose_ids, ids, partner_ids)``.

    The result is a real token sequence (the one-hot mixture with weights in {0, 1}), so it needs no
    partner in `MixedTokens`. A pad chosen where the other sequence has a token leaves a padded (masked)
    position inside the sequence.

    Args:
        ids: LongTensor [B, Ta]; partner_ids: LongTensor [B, Tb].
        choose_ids: BoolTensor [B, max(Ta, Tb)], True where ``ids`` is taken.

    Returns:
        LongTensor [B, max(Ta, Tb)].
    """
    ids, partner_ids = pad_to_common(ids, partner_ids, pad_id)
    if choose_ids.shape != ids.shape:
        raise ValueError(f"choose_ids must have shape {tuple(ids.shape)}, got {tuple(choose_ids.shape)}")
    return torch.where(choose_ids, ids, partner_ids)


def bernoulli_mask(probs: Tensor, shape: tuple[int, int], generator: torch.Generator | None = None) -> Tensor:
    """BoolTensor ``shape`` [B, T] with entry (b, t) True with probability ``probs`` (scalar, [B] or [B, T])."""
    if probs.dim() == 1:
        probs = probs.unsqueeze(1)  # B -> B x 1
    u = uniform(shape, generator, probs.device)
    return u < probs


def shift_right(choice: Tensor, first: bool = True) -> Tensor:
    """Shift a per-label choice [B, T] one step right to align it with the teacher-forced decoder input.

    ``tgt_in[:, t + 1]`` holds the token that ``labels[:, t]`` predicts, so a token chosen (or replaced)
    in the labels must be chosen (or replaced) at the next decoder input position; position 0 (BOS)
    gets ``first``.
    """
    head = torch.full_like(choice[:, :1], first)
    return torch.cat([head, choice[:, :-1]], dim=1)


def replaceable_mask(ids: Tensor, protected_ids: Tensor) -> Tensor:
    """BoolTensor [B, T]: True where ``ids`` [B, T] is not one of ``protected_ids`` [K] (pad, BOS, EOS...)."""
    return ~torch.isin(ids, protected_ids)


def word_dropout(
    ids: Tensor,
    p: float,
    unk_id: int,
    protected_ids: Tensor,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Word dropout: each replaceable token becomes ``unk_id`` with probability ``p``.

    In the SeqMix view the partner is the all-<unk> sequence and the per-token weight on ``ids`` is
    1 - Bernoulli(p).

    Args:
        ids: LongTensor [B, T].
        protected_ids: LongTensor [K], ids never dropped (pad and specials such as BOS/EOS).

    Returns:
        (new_ids [B, T], dropped BoolTensor [B, T]).
    """
    _check_ids("ids", ids)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"word dropout probability must be in [0, 1], got {p}")
    dropped = bernoulli_mask(torch.tensor(p, device=ids.device), tuple(ids.shape), generator)
    dropped &= replaceable_mask(ids, protected_ids)
    return ids.masked_fill(dropped, unk_id), dropped


def switchout_counts(lengths: Tensor, tau: float, generator: torch.Generator | None = None) -> Tensor:
    """Number of tokens SwitchOut replaces per sequence: n in 0..L with p(n) proportional to exp(-n / tau).

    Args:
        lengths: LongTensor [B], L per sequence (replaceable tokens).
        tau: temperature >= 0 (0: n = 0 always).

    Returns:
        LongTensor [B].
    """
    if tau < 0:
        raise ValueError(f"SwitchOut tau must be >= 0, got {tau}")
    if tau == 0 or lengths.numel() == 0:
        return torch.zeros_like(lengths)
    # Inverse CDF of the truncated geometric p(n) ∝ q^n, q = exp(-1/tau), n = 0..L:
    # F(n) = (1 - q^(n+1)) / (1 - q^(L+1)), so n = floor(log(1 - u (1 - q^(L+1))) / log q) for u ~ U(0, 1).
    u = uniform(lengths.shape, generator, lengths.device, torch.float64)
    log_q = -1.0 / tau
    tail = -torch.expm1((lengths.double() + 1) * log_q)  # 1 - q^(L+1)
    n = torch.floor(torch.log1p(-u * tail) / log_q).long()
    return torch.minimum(n.clamp_min(0), lengths)


def choose_positions(candidates: Tensor, counts: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Choose ``counts[b]`` positions uniformly without replacement among ``candidates[b]``.

    Random keys are drawn for every position, non-candidates get a key above all others, and the
    ``counts[b]`` smallest keys win.

    Args:
        candidates: BoolTensor [B, T].
        counts: LongTensor [B], each at most ``candidates[b].sum()``.

    Returns:
        BoolTensor [B, T] with exactly ``counts[b]`` True entries in row b, all among candidates.
    """
    keys = uniform(candidates.shape, generator, candidates.device)
    keys = keys.masked_fill(~candidates, 2.0)
    order = keys.argsort(dim=1)
    ranks = torch.empty_like(order).scatter_(
        1, order, torch.arange(order.shape[1], device=order.device).expand_as(order)
    )
    return (ranks < counts.unsqueeze(1)) & candidates


def random_replacements(ids: Tensor, allowed_ids: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """For every position, a token drawn uniformly from ``allowed_ids`` other than ``ids`` itself.

    Args:
        ids: LongTensor [B, T].
        allowed_ids: LongTensor [K], K >= 2, sorted and unique (the vocabulary minus specials).

    Returns:
        LongTensor [B, T]; at positions whose id is not allowed (e.g. pad) any allowed id.
    """
    k = allowed_ids.numel()
    if k < 2:
        raise ValueError(f"SwitchOut needs at least 2 sampleable tokens, got {k}")
    pos = torch.searchsorted(allowed_ids, ids).clamp_max(k - 1)  # index of ids in allowed, if there
    is_allowed = allowed_ids.take(pos).eq(ids)
    u = uniform(ids.shape, generator, ids.device, torch.float64)
    # An allowed id skips itself: offset 1..K-1 from its own index; others draw any of the K.
    other = (pos + 1 + (u * (k - 1)).long().clamp_max(k - 2)) % k
    anything = (u * k).long().clamp_max(k - 1)
    return allowed_ids.take(torch.where(is_allowed, other, anything))


def switchout(
    ids: Tensor,
    tau: float,
    allowed_ids: Tensor,
    protected_ids: Tensor,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """SwitchOut (Wang et al., 2018) on a batch: per sequence, n ~ p(n) ∝ exp(-n / tau) over
    n = 0..L (L = replaceable tokens), n positions chosen uniformly, each replaced by a uniformly
    drawn different token of ``allowed_ids``.

    Args:
        ids: LongTensor [B, T].
        allowed_ids: LongTensor [K], the tokens replacements are drawn from (sorted, unique).
        protected_ids: LongTensor, ids never replaced (pad and specials).

    Returns:
        (new_ids [B, T], replaced BoolTensor [B, T]); row b has exactly n_b replaced positions.
    """
    _check_ids("ids", ids)
    candidates = replaceable_mask(ids, protected_ids)
    counts = switchout_counts(candidates.sum(dim=1), tau, generator)
    replaced = choose_positions(candidates, counts, generator)
    new_ids = torch.where(replaced, random_replacements(ids, allowed_ids, generator), ids)
    return new_ids, replaced
