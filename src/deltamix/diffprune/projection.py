"""Magnitude projection onto the L0 ball: the exact top-k entries of a flat vector, ties broken by index."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def num_kept(target_sparsity: float, numel: int) -> int:
    """k = ceil(t * d), the number of non-zeros kept over ``numel`` gated parameters (at least 1)."""
    if not 0.0 < target_sparsity <= 1.0:
        raise ValueError(f"target_sparsity must be in (0, 1], got {target_sparsity}")
    if numel <= 0:
        raise ValueError(f"there are no gated parameters to project (numel = {numel})")
    # Round t * d before ceil so that e.g. 0.005 * 1000 = 5.000000000000001 keeps 5, not 6.
    return max(1, min(numel, math.ceil(round(target_sparsity * numel, 6))))


def topk_indices(values: Tensor, k: int) -> Tensor:
    """The sorted flat indices of the k largest |values|; among equal magnitudes, lower indices win.

    O(d) (one kthvalue selection and two comparisons), so the result is exactly k indices and does
    not depend on the sort implementation.

    Args:
        values: 1-D tensor of d entries.
        k: 1 <= k <= d.

    Returns:
        int64 tensor of shape (k,), strictly increasing.

    >>> topk_indices(torch.tensor([1.0, -3.0, 2.0, 3.0]), 2).tolist()
    [1, 3]
    """
    if values.dim() != 1:
        raise ValueError(f"values must be 1-D, got shape {tuple(values.shape)}")
    d = values.numel()
    if not 1 <= k <= d:
        raise ValueError(f"k must be in [1, {d}], got {k}")
    magnitude = values.detach().abs().float()
    if torch.isnan(magnitude).any():
        raise ValueError("cannot project a diff containing NaN")
    if k == d:
        return torch.arange(d, device=values.device)
    # The k-th largest magnitude is the (d - k + 1)-th smallest.
    threshold = torch.kthvalue(magnitude, d - k + 1).values
    above = torch.nonzero(magnitude > threshold).flatten()
    ties = torch.nonzero(magnitude == threshold).flatten()[: k - above.numel()]
    return torch.sort(torch.cat([above, ties])).values
