"""A fingerprint of a base model's parameters (names, shapes, dtypes, value hashes) to match diffs to bases."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import torch
from torch import nn

_SAMPLE_PER_TENSOR = 64


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().reshape(-1).contiguous().cpu()
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def _sample_positions(numel: int) -> torch.Tensor:
    count = min(numel, _SAMPLE_PER_TENSOR)
    if count <= 1:
        return torch.zeros(count, dtype=torch.long)
    # Integer arithmetic: float32 linspace rounds past the end of tensors above 2**24 entries.
    return torch.arange(count, dtype=torch.long) * (numel - 1) // (count - 1)


def fingerprint(model: nn.Module, names: Iterable[str], full: bool = True) -> dict:
    """Fingerprint the parameters ``names`` of ``model``.

    Args:
        model: the base model.
        names: parameter names to cover (in any order; they are sorted).
        full: also hash every value (reads the whole model once; ~0.1 s per 100 MB on CPU).

    Returns:
        ``{"params": [[name, shape, dtype], ...], "sample_sha256": str, "values_sha256": str | None}``;
        the sample hash covers 64 evenly spaced entries per tensor, cheap enough to check on every
        apply, while the full hash is checked where a diff first meets a model (DiffBank.add, or
        ``SparseDiff.verify_base(model, full=True)``).
    """
    params = dict(model.named_parameters(remove_duplicate=False))
    rows = []
    sample_hash = hashlib.sha256()
    full_hash = hashlib.sha256() if full else None
    for name in sorted(names):
        if name not in params:
            raise KeyError(name)
        tensor = params[name]
        rows.append([name, list(tensor.shape), str(tensor.dtype).removeprefix("torch.")])
        sample_hash.update(name.encode())
        flat = tensor.detach().reshape(-1)
        sample_hash.update(_tensor_bytes(flat[_sample_positions(flat.numel()).to(flat.device)]))
        if full_hash is not None:
            full_hash.update(name.encode())
            full_hash.update(_tensor_bytes(tensor))
    return {
        "params": rows,
        "sample_sha256": sample_hash.hexdigest(),
        "values_sha256": full_hash.hexdigest() if full_hash is not None else None,
    }


def describe_mismatch(expected: dict, actual: dict) -> str | None:
    """A sentence naming the first difference between two fingerprints, or None if they agree.

    Full value hashes are compared only when both are present.
    """
    exp_rows = {row[0]: row for row in expected["params"]}
    act_rows = {row[0]: row for row in actual["params"]}
    missing = sorted(set(exp_rows) - set(act_rows))
    if missing:
        return f"the model has no parameter {missing[0]!r} ({len(missing)} missing)"
    for name, row in exp_rows.items():
        if act_rows[name] != row:
            return f"parameter {name!r} is {act_rows[name][1:]} in the model but {row[1:]} in the diff's base"
    if expected["sample_sha256"] != actual["sample_sha256"]:
        return "the model's parameter values differ from the diff's base model (sampled value hash)"
    exp_full, act_full = expected.get("values_sha256"), actual.get("values_sha256")
    if exp_full and act_full and exp_full != act_full:
        return "the model's parameter values differ from the diff's base model (full value hash)"
    return None
