"""Partner choice for SeqMix: which example (X', Y') of the batch each example (X, Y) is mixed with.

Both functions return an index tensor ``partner`` [B] so that example b is mixed with example
``partner[b]`` of the same batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deltamix.seqmix.mixing import uniform

PARTNER_KINDS = ("shuffle", "length")


def shuffle_partners(
    batch_size: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> Tensor:
    """A uniformly random permutation of the batch (the authors' code, as in mixup).

    An example may be its own partner (a fixed point of the permutation), which leaves it unmixed.

    Returns:
        LongTensor [B].
    """
    source = generator.device if generator is not None else device
    return torch.randperm(batch_size, generator=generator, device=source).to(device)


def length_aware_partners(lengths: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Partners of similar length (the paper's appendix pairs translation examples by target length).

    The batch is sorted by length with random tie-breaking and neighbours are paired: ranks (0, 1),
    (2, 3), ...; with an odd batch the last three ranks form a cycle (r -> r + 1 -> r + 2 -> r). So each
    example's partner is at most two ranks away in length order, the pairing is mutual wherever possible,
    and examples of equal length are paired at random.

    Args:
        lengths: LongTensor [B], e.g. the number of non-pad target tokens.

    Returns:
        LongTensor [B] on the device of ``lengths``.
    """
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be a [batch] tensor, got shape {tuple(lengths.shape)}")
    batch = lengths.shape[0]
    noise = uniform((batch,), generator, lengths.device, torch.float64)
    order = (lengths.double() + noise).argsort()  # rank -> example
    ranks = torch.arange(batch, device=lengths.device)
    partner_rank = ranks ^ 1
    if batch % 2 == 1:
        if batch >= 3:
            partner_rank[batch - 3 :] = torch.tensor([batch - 2, batch - 1, batch - 3], device=lengths.device)
        else:
            partner_rank[batch - 1] = batch - 1
    return torch.empty_like(order).scatter_(0, order, order.index_select(0, partner_rank))


def sample_partners(kind: str, lengths: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Partners by ``kind`` ("shuffle" or "length"); ``lengths`` [B] gives the batch size and device.

    Returns:
        LongTensor [B].
    """
    if kind == "shuffle":
        return shuffle_partners(lengths.shape[0], generator, device=lengths.device)
    if kind == "length":
        return length_aware_partners(lengths, generator)
    raise ValueError(f"partner kind must be one of {PARTNER_KINDS}, got {kind!r}")
