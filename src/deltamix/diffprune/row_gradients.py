"""Row-restricted tensors: the flat entries of some rows of a 2-D tensor, and incoming gradients read there.

An input embedding is computed only at the rows a batch looks up (fused.py, dense_theta.py); its
incoming gradient is then dense, or sparse COO over rows (``nn.Embedding(sparse=True)``), and these
read it at the entries that have a diff without filling a vocabulary-sized gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor


def row_entries_of(row_ids: Tensor, width: int) -> Tensor:
    """The flat indices of rows ``row_ids`` (shape (m,)) of a 2-D tensor ``width`` wide, shape (m * width,)."""
    return (row_ids[:, None] * width + torch.arange(width, device=row_ids.device)).reshape(-1)


def gradient_at(grad: Tensor, flat: Tensor) -> Tensor:
    """``grad`` at the flat indices ``flat`` (shape (k,)), fp32, shape (k,).

    ``grad`` is dense, or sparse COO over the rows of a 2-D tensor (``nn.Embedding(sparse=True)``: no
    vocabulary-sized gradient is ever filled), or over its entries (a fixed-mask linear,
    kept_linear.py); an index it does not name gets 0.
    """
    if not grad.is_sparse:
        return grad.reshape(-1)[flat].float()
    grad = grad.coalesce()
    if grad.sparse_dim() == 2 and grad.dense_dim() == 0:  # sparse over entries (kept_linear.py)
        return _entry_gradient_at(grad, flat)
    present = grad.indices()[0]  # sorted, unique rows that got a gradient
    if present.numel() == 0:
        return torch.zeros(flat.numel(), dtype=torch.float32, device=grad.device)
    width = grad.shape[1]
    rows, columns = flat // width, flat % width
    position = torch.searchsorted(present, rows).clamp_(max=present.numel() - 1)
    found = present[position] == rows
    return torch.where(found, grad.values()[position, columns].float(), 0.0)


def _entry_gradient_at(grad: Tensor, flat: Tensor) -> Tensor:
    """A coalesced COO gradient over entries of a 2-D tensor at the flat indices ``flat`` (k,), fp32; 0 where absent."""
    present = grad.indices()[0] * grad.shape[1] + grad.indices()[1]  # sorted flat indices
    values = grad.values().float()
    if torch.equal(present, flat):  # the kept entries themselves (KeptLinear's gradient)
        return values
    if present.numel() == 0:
        return torch.zeros(flat.numel(), dtype=torch.float32, device=grad.device)
    position = torch.searchsorted(present, flat).clamp_(max=present.numel() - 1)
    return torch.where(present[position] == flat, values[position], 0.0)


def row_gradient(grad: Tensor, row_ids: Tensor, entries: Tensor) -> Tensor:
    """The incoming gradient of a row-restricted tensor at its rows ``row_ids`` (flat ``entries``,
    `row_entries_of`), fp32, shape (m * width,); see `gradient_at`.

    Raises:
        RuntimeError: a sparse ``grad`` names a row outside ``row_ids``: the model read its embedding at
            an id that is not in its input_ids, where theta was the base's.
    """
    if grad.is_sparse:
        grad = grad.coalesce()
        read = grad.indices()[0]
        position = torch.searchsorted(row_ids, read).clamp_(max=row_ids.numel() - 1)
        if not torch.equal(row_ids[position], read):
            raise RuntimeError(
                "the input embedding was read at ids that are not in input_ids, so its theta there was the "
                "base's; wrap this model with DiffPruningConfig(embedding_rows_only=False)"
            )
    return gradient_at(grad, entries)
