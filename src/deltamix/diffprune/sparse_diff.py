"""SparseDiff: a task's sparse diff (plus its dense head), saved and loaded as one file, applied and reverted exactly.

The file format (one safetensors file: varint-coded indices, values, the dense head, JSON metadata
with the base model's fingerprint and a SHA-256 of every tensor; nothing is ever unpickled) is
diff_file.py; its names used here are re-exported.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from deltamix.core.errors import BaseModelMismatchError, DiffFormatError
from deltamix.core.io import atomic_write_bytes
from deltamix.diffprune.diff_file import (
    FORMAT_NAME,
    FORMAT_VERSION,
    _dtype_name,
    check_entry,
    decode_entry,
    decode_file,
    encode_entry,
    encode_file,
    metadata_errors,
    read_metadata,
)
from deltamix.diffprune.fingerprint import describe_mismatch, fingerprint

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SparseDiff",
    "decode_entry",
    "encode_entry",
    "install_dense",
    "restore_dense",
]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def _cpu_single_thread(device: torch.device):
    """Run small per-tensor CPU ops on one thread.

    apply_/revert_ issue ~2 ops per tensor on ~1k entries each; with intra-op parallelism every op
    pays an OpenMP fork/join, which on a loaded machine costs milliseconds (measured on MiniLM,
    2 busy cores: index_copy_ over all tensors 20 ms with 2 threads, 0.7 ms with 1).
    """
    if device.type != "cpu" or torch.get_num_threads() == 1:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def install_dense(param: nn.Parameter, value: Tensor) -> Tensor:
    """Set ``param`` to ``value`` (cast to its dtype, on its device); return what it held before.

    Same shape: copied in place, and the previous values are returned as a copy. Another shape (a
    task head of another size): ``param.data`` is replaced, so the Parameter object (and every module
    or tied name that refers to it) stays the same, and the previous tensor itself is returned.
    Either way :func:`restore_dense` with the returned tensor restores ``param`` bit for bit.
    """
    if tuple(param.shape) == tuple(value.shape):
        previous = param.data.clone()
        param.data.copy_(value.to(device=param.device, dtype=param.dtype))
        return previous
    previous = param.data
    param.data = value.to(device=param.device, dtype=param.dtype).clone()
    return previous


@torch.no_grad()
def restore_dense(param: nn.Parameter, previous: Tensor) -> None:
    """Undo :func:`install_dense`: copy ``previous`` back, or reinstall it if the shapes differ."""
    if tuple(param.shape) == tuple(previous.shape):
        param.data.copy_(previous)
    else:
        param.data = previous


class SparseDiff:
    """A sparse diff over a base model's gated parameters plus dense values of its head.

    Args:
        gated: ``{param name: (indices, values)}``: int64 sorted flat indices into the parameter,
            shape (nnz,), and the diff values at them, shape (nnz,). Every gated tensor appears, with
            empty tensors where nothing was kept.
        shapes: ``{param name: shape}`` of every gated parameter.
        dtypes: ``{param name: dtype name}`` of every gated parameter in the base model.
        dense: ``{param name: tensor}``: the head's trained values (replacing the base's on apply).
        base_fingerprint: :func:`deltamix.diffprune.fingerprint.fingerprint` of the base model.
        config: the DiffPruningConfig dict it was trained with (informational).

    Raises:
        DiffFormatError: for unsorted, duplicated or out-of-range indices, or a length mismatch.

    >>> diff = SparseDiff.load("task.safetensors")  # doctest: +SKIP
    >>> diff.apply_(model); ...; diff.revert_(model)  # doctest: +SKIP
    """

    def __init__(
        self,
        gated: dict[str, tuple[Tensor, Tensor]],
        shapes: dict[str, tuple[int, ...]],
        dtypes: dict[str, str],
        dense: dict[str, Tensor],
        base_fingerprint: dict[str, Any],
        config: dict[str, Any] | None = None,
        quantization: dict[str, Any] | None = None,
    ) -> None:
        if set(gated) != set(shapes) or set(gated) != set(dtypes):
            raise DiffFormatError("gated, shapes and dtypes must name the same parameters")
        overlap = set(gated) & set(dense)
        if overlap:
            raise DiffFormatError(f"parameters both gated and dense: {sorted(overlap)}")
        self.shapes = {name: tuple(int(s) for s in shape) for name, shape in shapes.items()}
        self.dtypes = dict(dtypes)
        self.gated: dict[str, tuple[Tensor, Tensor]] = {}
        for name in sorted(gated):
            indices, values = gated[name]
            self.gated[name] = self._check_entry(name, indices, values, int(np.prod(self.shapes[name])))
        self.dense = {name: value.detach() for name, value in sorted(dense.items())}
        self.base_fingerprint = base_fingerprint
        self.config = config
        self.quantization = quantization
        self._applied: dict[int, tuple[weakref.ref, dict[str, Tensor]]] = {}
        self._device_cache: dict[torch.device, dict[str, tuple[Tensor, Tensor]]] = {}

    _check_entry = staticmethod(check_entry)

    # ----- statistics -------------------------------------------------------------------------

    @property
    def nnz(self) -> int:
        """Number of stored non-zeros over all gated parameters (the dense head not counted)."""
        return sum(indices.numel() for indices, _ in self.gated.values())

    @property
    def num_gated(self) -> int:
        """Number of gated parameters the diff was pruned over (d)."""
        return sum(int(np.prod(shape)) for shape in self.shapes.values())

    @property
    def num_dense(self) -> int:
        """Number of densely stored head parameters."""
        return sum(value.numel() for value in self.dense.values())

    @property
    def density(self) -> float:
        """nnz / num_gated."""
        return self.nnz / max(1, self.num_gated)

    def tensor_stats(self) -> list[dict[str, Any]]:
        """Per-tensor statistics: name, shape, numel, nnz, density, and kind ("gated" or "dense")."""
        rows = []
        for name, (indices, _) in self.gated.items():
            numel = int(np.prod(self.shapes[name]))
            rows.append(
                {
                    "name": name,
                    "kind": "gated",
                    "shape": list(self.shapes[name]),
                    "numel": numel,
                    "nnz": indices.numel(),
                    "density": indices.numel() / max(1, numel),
                }
            )
        for name, value in self.dense.items():
            rows.append(
                {
                    "name": name,
                    "kind": "dense",
                    "shape": list(value.shape),
                    "numel": value.numel(),
                    "nnz": value.numel(),
                    "density": 1.0,
                }
            )
        return rows

    # ----- file format ------------------------------------------------------------------------

    def to_bytes(self, value_dtype: torch.dtype | str | None = None) -> tuple[bytes, dict[str, Any]]:
        """Serialise to the safetensors bytes of the file format (diff_file.py).

        Args:
            value_dtype: store gated values in this dtype (e.g. ``torch.float16``); None keeps them
                lossless in their own dtype. The dense head is always stored in its own dtype.

        Returns:
            (file bytes, info) where info has ``bytes`` and, when values were cast,
            ``max_abs_error`` and ``rel_l2_error`` of the cast values.
        """
        return encode_file(
            self.gated,
            self.shapes,
            self.dtypes,
            self.dense,
            self.base_fingerprint,
            self.config,
            self.quantization,
            value_dtype,
        )

    def save(self, path: str | Path, value_dtype: torch.dtype | str | None = None) -> dict[str, Any]:
        """Write the diff to ``path`` atomically; see :meth:`to_bytes` for ``value_dtype`` and the info returned."""
        data, info = self.to_bytes(value_dtype)
        atomic_write_bytes(path, data)
        if "max_abs_error" in info:
            logger.info(
                "saved %s with %s values: max abs error %.3g, relative L2 error %.3g",
                path,
                info["value_dtype"],
                info["max_abs_error"],
                info["rel_l2_error"],
            )
        return info

    @classmethod
    def load(cls, path: str | Path) -> SparseDiff:
        """Read and fully validate a diff file.

        Raises:
            DiffFormatError: if the file is missing, not a diff file, truncated, corrupted (hash
                mismatch), of an unknown format version, or internally inconsistent.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise DiffFormatError(f"{path}: cannot read diff file ({error.strerror})") from None
        try:
            return cls.from_bytes(data)
        except DiffFormatError as error:
            raise DiffFormatError(f"{path}: {error}") from None

    @classmethod
    def read_metadata(cls, data: bytes) -> dict[str, Any]:
        """The JSON metadata of diff file bytes (checks the header and the format version only)."""
        return read_metadata(data)

    @classmethod
    def from_bytes(cls, data: bytes) -> SparseDiff:
        """Parse and validate diff file bytes (see :meth:`load`)."""
        decoded, meta = decode_file(data)
        with metadata_errors():
            diff = cls(*decoded)
        if diff.nnz != meta.get("nnz") or diff.num_gated != meta.get("num_gated"):
            raise DiffFormatError("inconsistent metadata (nnz or num_gated does not match the tensors)")
        return diff

    # ----- apply / revert ---------------------------------------------------------------------

    def _params(self, model: nn.Module) -> dict[str, nn.Parameter]:
        return dict(model.named_parameters(remove_duplicate=False))

    def check_compatible(self, model: nn.Module, full: bool = False) -> None:
        """Check that ``model`` is this diff's base model, without changing it.

        Args:
            model: the model to check.
            full: also compare the hash of every base value (reads the whole model once);
                otherwise names, shapes, dtypes and a sampled value hash are compared.

        Raises:
            BaseModelMismatchError: naming the first difference found.
        """
        params = self._params(model)
        for name in list(self.gated) + list(self.dense):
            if name not in params:
                raise BaseModelMismatchError(f"the model has no parameter {name!r} that the diff changes")
        for name in self.gated:
            param = params[name]
            if tuple(param.shape) != self.shapes[name] or _dtype_name(param.dtype) != self.dtypes[name]:
                raise BaseModelMismatchError(
                    f"parameter {name!r} is {list(param.shape)} {_dtype_name(param.dtype)} in the model but "
                    f"{list(self.shapes[name])} {self.dtypes[name]} in the diff"
                )
            if not param.is_contiguous():
                raise BaseModelMismatchError(f"parameter {name!r} is not contiguous; cannot apply in place")
        for name, value in self.dense.items():
            if params[name].dim() != value.dim():
                raise BaseModelMismatchError(
                    f"dense parameter {name!r} is {list(params[name].shape)} in the model but {list(value.shape)} "
                    "in the diff (a head of another size is installed, but it must have as many dimensions)"
                )
        names = [row[0] for row in self.base_fingerprint["params"]]
        try:
            actual = fingerprint(model, names, full=full and bool(self.base_fingerprint.get("values_sha256")))
        except KeyError as error:
            raise BaseModelMismatchError(
                f"the model has no parameter {error.args[0]!r} of the diff's base"
            ) from None
        problem = describe_mismatch(self.base_fingerprint, actual)
        if problem is not None:
            raise BaseModelMismatchError(f"this diff was not trained on this model: {problem}")

    def verify_base(self, model: nn.Module, full: bool = True) -> None:
        """Alias of :meth:`check_compatible` with the full value hash by default."""
        self.check_compatible(model, full=full)

    def is_applied(self, model: nn.Module) -> bool:
        """Whether this diff is currently applied to ``model`` (by :meth:`apply_`)."""
        entry = self._applied.get(id(model))
        return entry is not None and entry[0]() is model

    def _on_device(self, device: torch.device) -> dict[str, tuple[Tensor, Tensor]]:
        if device not in self._device_cache:
            self._device_cache[device] = {
                n: (i.to(device), v.to(device)) for n, (i, v) in self.gated.items() if i.numel()
            }
        return self._device_cache[device]

    @torch.no_grad()
    def apply_(self, model: nn.Module, check: bool = True) -> nn.Module:
        """Add the diff to ``model``'s parameters in place (and install its dense head); O(nnz).

        The original values of every touched entry are kept, so :meth:`revert_` restores the base
        bit for bit. All checks run before anything is changed.

        Heads of another size: a dense tensor whose shape differs from the model's parameter (an
        STS-B regression head with 1 output on a model whose head has 2, MNLI's 3, ...) is installed
        as that parameter's new data (see :func:`install_dense`); :meth:`revert_` puts the previous
        tensor back. Only the parameter changes: module attributes such as ``Linear.out_features`` or
        a Hugging Face ``config.num_labels`` keep their old values, so compute the loss from the
        logits rather than passing ``labels`` to such a model.

        Args:
            model: the base model (the same parameter names as when the diff was trained).
            check: compare names, shapes, dtypes and the sampled value hash first (cheap; DiffBank
                checks once when a diff is added and then skips it when switching).

        Returns:
            ``model``.

        Raises:
            BaseModelMismatchError: if ``model`` is not the diff's base (nothing is changed).
            ValueError: if this diff is already applied to ``model``.
        """
        if self.is_applied(model):
            raise ValueError("this diff is already applied to the model; revert_() it first")
        if check:
            self.check_compatible(model)
        params = self._params(model)
        originals: dict[str, Tensor] = {}
        device = next(iter(params.values())).device
        with _cpu_single_thread(device):
            for name, (indices, values) in self._on_device(device).items():
                flat = params[name].data.view(-1)
                if indices.device != flat.device:
                    indices, values = indices.to(flat.device), values.to(flat.device)
                originals[name] = flat.index_select(0, indices)
                flat.index_add_(0, indices, values.to(flat.dtype))
            for name, value in self.dense.items():
                originals[name] = install_dense(params[name], value)
        self._applied[id(model)] = (weakref.ref(model), originals)
        return model

    @torch.no_grad()
    def revert_(self, model: nn.Module) -> nn.Module:
        """Undo :meth:`apply_` on ``model`` exactly (restores the saved original values); O(nnz).

        Raises:
            ValueError: if this diff is not applied to ``model``.
        """
        if not self.is_applied(model):
            raise ValueError("this diff is not applied to the model (apply_() it first)")
        _, originals = self._applied.pop(id(model))
        params = self._params(model)
        device = next(iter(params.values())).device
        with _cpu_single_thread(device):
            for name, (indices, _) in self._on_device(device).items():
                flat = params[name].data.view(-1)
                flat.index_copy_(0, indices.to(flat.device), originals[name])
            for name in self.dense:
                restore_dense(params[name], originals[name])
        return model

    def __repr__(self) -> str:
        return (
            f"SparseDiff(nnz={self.nnz}, num_gated={self.num_gated}, density={self.density:.4%}, "
            f"tensors={len(self.gated)}, dense={len(self.dense)})"
        )
