"""The SparseDiff file format: a diff's tensors and metadata as safetensors bytes, and their validated decoding.

One safetensors file. Tensors ``gated/<param>/indices`` (uint8, varint gaps of the sorted flat
indices, see index_codec.py), ``gated/<param>/values`` and ``dense/<param>`` (the head, stored
densely); its ``__metadata__`` holds one JSON document (key ``deltamix``) with the format version,
the config, per-tensor statistics, the base model's fingerprint and a SHA-256 of every tensor.
Nothing is ever unpickled. :class:`~deltamix.diffprune.sparse_diff.SparseDiff` reads and writes
files through :func:`encode_file` and :func:`decode_file`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

from deltamix.core.errors import DiffFormatError
from deltamix.diffprune.index_codec import decode_indices, encode_indices

FORMAT_NAME = "deltamix-sparse-diff"
FORMAT_VERSION = 1
_META_KEY = "deltamix"
_VALUE_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, str):
        if dtype not in _VALUE_DTYPES:
            raise ValueError(f"value dtype must be one of {sorted(_VALUE_DTYPES)}, got {dtype!r}")
        return _VALUE_DTYPES[dtype]
    if dtype not in _VALUE_DTYPES.values():
        raise ValueError(f"value dtype must be a floating dtype among {sorted(_VALUE_DTYPES)}, got {dtype}")
    return dtype


def _is_shape(value: Any) -> bool:
    return isinstance(value, list) and all(type(s) is int and 0 <= s < 2**53 for s in value)


def _check_meta_types(meta: dict[str, Any]) -> None:
    """Reject metadata whose fields have the wrong JSON types (hand-edited or forged files).

    The payload hash covers the tensors, not the metadata, so every field is checked here before
    it is used; values are then checked against the tensors by :meth:`SparseDiff.from_bytes`.

    Raises:
        DiffFormatError: naming the first bad field.
    """

    def bad(field: str, expected: str) -> DiffFormatError:
        return DiffFormatError(f"inconsistent metadata: {field} must be {expected}")

    for key in ("gated", "dense"):
        if not isinstance(meta.get(key), dict):
            raise bad(key, "an object")
    for name, info in meta["gated"].items():
        if not isinstance(info, dict) or not _is_shape(info.get("shape")):
            raise bad(f"gated[{name!r}].shape", "a list of non-negative integers")
        if type(info.get("nnz")) is not int or info["nnz"] < 0:
            raise bad(f"gated[{name!r}].nnz", "a non-negative integer")
        if not isinstance(info.get("dtype"), str) or info["dtype"] not in _VALUE_DTYPES:
            raise bad(f"gated[{name!r}].dtype", f"one of {sorted(_VALUE_DTYPES)}")
    for name, info in meta["dense"].items():
        if not isinstance(info, dict) or not _is_shape(info.get("shape")):
            raise bad(f"dense[{name!r}].shape", "a list of non-negative integers")
    for key in ("nnz", "num_gated"):
        if type(meta.get(key)) is not int or meta[key] < 0:
            raise bad(key, "a non-negative integer")
    fp = meta.get("base_fingerprint")
    if not isinstance(fp, dict) or not isinstance(fp.get("params"), list):
        raise bad("base_fingerprint", "an object with a params list")
    for row in fp["params"]:
        if not (
            isinstance(row, list)
            and len(row) == 3
            and isinstance(row[0], str)
            and _is_shape(row[1])
            and isinstance(row[2], str)
        ):
            raise bad("base_fingerprint.params", "a list of [name, shape, dtype] rows")
    if not isinstance(fp.get("sample_sha256"), str) or not isinstance(fp.get("values_sha256"), str | None):
        raise bad("base_fingerprint hashes", "strings")
    for key in ("config", "quantization"):
        if not isinstance(meta.get(key), dict | None):
            raise bad(key, "an object or null")


def encode_entry(indices: Tensor) -> Tensor:
    """The stored form of one tensor's sorted local indices, shape (n,) int64: uint8 varint gaps
    (index_codec.py), about 2 bytes per entry at 0.5% density; the file's ``.../indices`` tensor."""
    return torch.from_numpy(encode_indices(indices.detach().cpu().numpy()))


def decode_entry(name: str, codes: Tensor, values: Tensor, numel: int) -> tuple[Tensor, Tensor]:
    """Read back one tensor's entries: (int64 local indices (n,), values (n,)), fully checked.

    Args:
        name: the parameter's name (for error messages).
        codes: :func:`encode_entry` output (uint8, 1-D).
        values: the diff values at those indices, shape (n,).
        numel: the parameter's number of entries (indices must lie in [0, numel)).

    Raises:
        DiffFormatError: naming ``name``: a bad byte stream, a count mismatch, out-of-range, unsorted or
            duplicated indices, non-finite values.
    """
    if codes.dtype != torch.uint8 or codes.dim() != 1 or values.dim() != 1:
        raise DiffFormatError(f"{name}: indices must be 1-D uint8 codes and values 1-D")
    try:
        indices = torch.from_numpy(decode_indices(codes.numpy(), values.numel(), numel))
    except DiffFormatError as error:
        raise DiffFormatError(f"{name}: {error}") from None
    return check_entry(name, indices, values, numel)


def check_entry(name: str, indices: Tensor, values: Tensor, numel: int) -> tuple[Tensor, Tensor]:
    """Check one tensor's entries and return them detached on CPU: (int64 local indices (n,), values (n,)).

    Args:
        name: the parameter's name (for error messages).
        indices: sorted, unique local flat indices into the parameter, shape (n,), int64.
        values: floating-point diff values at them, shape (n,), finite.
        numel: the parameter's number of entries.

    Raises:
        DiffFormatError: naming ``name``: not 1-D, a length mismatch, a wrong dtype, an index out of
            range, duplicated or unsorted indices, non-finite values.
    """
    if indices.dim() != 1 or values.dim() != 1:
        raise DiffFormatError(f"{name}: indices and values must be 1-D")
    if indices.numel() != values.numel():
        raise DiffFormatError(f"{name}: {indices.numel()} indices but {values.numel()} values")
    if indices.dtype != torch.int64:
        raise DiffFormatError(f"{name}: indices must be int64, got {indices.dtype}")
    if not values.is_floating_point():
        raise DiffFormatError(f"{name}: values must be floating point, got {values.dtype}")
    if indices.numel():
        if int(indices.min()) < 0 or int(indices.max()) >= numel:
            raise DiffFormatError(f"{name}: an index is out of range [0, {numel})")
        steps = indices[1:] - indices[:-1]
        if bool((steps == 0).any()):
            raise DiffFormatError(f"{name}: duplicated indices")
        if bool((steps < 0).any()):
            raise DiffFormatError(f"{name}: indices are not sorted")
        if not bool(torch.isfinite(values).all()):
            raise DiffFormatError(f"{name}: values contain NaN or infinity")
    return indices.detach().cpu(), values.detach().cpu()


def read_metadata(data: bytes) -> dict[str, Any]:
    """The JSON metadata of diff file bytes (checks the header and the format version only)."""
    if len(data) < 8:
        raise DiffFormatError("not a diff file (shorter than a safetensors header)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise DiffFormatError("truncated file (its header is longer than the file)")
    try:
        header = json.loads(data[8 : 8 + header_len])
        meta = json.loads(header["__metadata__"][_META_KEY])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise DiffFormatError("not a deltamix diff file (no deltamix metadata in its header)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise DiffFormatError("not a deltamix diff file (unknown format name)")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise DiffFormatError(
            f"unknown diff format version {version!r} (this deltamix reads {FORMAT_VERSION})"
        )
    return meta


class DecodedDiff(NamedTuple):
    """What a diff file holds, checked against its metadata: the arguments of ``SparseDiff(...)``."""

    gated: dict[str, tuple[Tensor, Tensor]]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    dense: dict[str, Tensor]
    base_fingerprint: dict[str, Any]
    config: dict[str, Any] | None
    quantization: dict[str, Any] | None


@contextlib.contextmanager
def metadata_errors() -> Iterator[None]:
    """Raise the KeyError, TypeError, ValueError, AttributeError or OverflowError of malformed metadata
    fields, met while reading them, as a DiffFormatError (a DiffFormatError passes unchanged)."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        if isinstance(error, DiffFormatError):
            raise
        raise DiffFormatError(f"inconsistent metadata ({type(error).__name__}: {error})") from None


def payload_sha256(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over the file's tensors in name order: each name, then the tensor's raw bytes (CPU tensors)."""
    payload = hashlib.sha256()
    for key in sorted(tensors):
        payload.update(key.encode())
        payload.update(tensors[key].view(torch.uint8).numpy().tobytes() if tensors[key].numel() else b"")
    return payload.hexdigest()


def _gated_tensors(
    gated: dict[str, tuple[Tensor, Tensor]],
    shapes: dict[str, tuple[int, ...]],
    dtypes: dict[str, str],
    cast: torch.dtype | None,
) -> tuple[dict[str, Tensor], dict[str, Any], dict[str, Any] | None]:
    """The file tensors of the gated entries, their metadata rows, and the cast's errors.

    Returns:
        (``gated/<param>/{indices,values}`` tensors in ``gated``'s order, leaving out empty entries;
        ``{param: {shape, dtype, nnz}}``; with ``cast``, ``{value_dtype, max_abs_error,
        rel_l2_error}`` of the values cast to it, else None).
    """
    tensors: dict[str, Tensor] = {}
    stats: dict[str, Any] = {}
    max_abs, err_sq, ref_sq = 0.0, 0.0, 0.0
    for name, (indices, values) in gated.items():
        stats[name] = {"shape": list(shapes[name]), "dtype": dtypes[name], "nnz": indices.numel()}
        if not indices.numel():
            continue
        stored = values if cast is None else values.to(cast)
        if cast is not None and cast != values.dtype:
            error = (stored.double() - values.double()).abs()
            max_abs = max(max_abs, float(error.max()))
            err_sq += float((error**2).sum())
            ref_sq += float((values.double() ** 2).sum())
        tensors[f"gated/{name}/indices"] = encode_entry(indices)
        tensors[f"gated/{name}/values"] = stored.contiguous()
    if cast is None:
        return tensors, stats, None
    quantization = {
        "value_dtype": _dtype_name(cast),
        "max_abs_error": max_abs,
        "rel_l2_error": (err_sq / ref_sq) ** 0.5 if ref_sq > 0 else 0.0,
    }
    return tensors, stats, quantization


def encode_file(
    gated: dict[str, tuple[Tensor, Tensor]],
    shapes: dict[str, tuple[int, ...]],
    dtypes: dict[str, str],
    dense: dict[str, Tensor],
    base_fingerprint: dict[str, Any],
    config: dict[str, Any] | None,
    quantization: dict[str, Any] | None,
    value_dtype: torch.dtype | str | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """The file bytes of a diff (the fields of a :class:`~deltamix.diffprune.sparse_diff.SparseDiff`).

    Args:
        gated: ``{param: (sorted local indices (n,) int64, values (n,))}``, checked.
        shapes, dtypes: every gated parameter's shape and dtype name in the base.
        dense: ``{param: tensor}`` of the head, stored in its own dtype.
        base_fingerprint: the base model's fingerprint.
        config: the training config dict, or None.
        quantization: the diff's recorded value cast, kept unless ``value_dtype`` casts again.
        value_dtype: store gated values in this dtype (e.g. ``torch.float16``); None keeps them
            lossless in their own dtype.

    Returns:
        (file bytes, info) where info has ``bytes`` and, when values are or were cast,
        ``value_dtype``, ``max_abs_error`` and ``rel_l2_error``.
    """
    cast = _resolve_dtype(value_dtype) if value_dtype is not None else None
    tensors, stats, cast_errors = _gated_tensors(gated, shapes, dtypes, cast)
    for name, value in dense.items():
        tensors[f"dense/{name}"] = value.contiguous().cpu()
    if cast_errors is not None:
        quantization = cast_errors
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": config,
        "num_gated": sum(int(np.prod(shape)) for shape in shapes.values()),
        "nnz": sum(indices.numel() for indices, _ in gated.values()),
        "gated": stats,
        "dense": {n: {"shape": list(v.shape), "dtype": _dtype_name(v.dtype)} for n, v in dense.items()},
        "base_fingerprint": base_fingerprint,
        "quantization": quantization,
        "payload_sha256": payload_sha256(tensors),
    }
    data = st_save(tensors, metadata={_META_KEY: json.dumps(meta, sort_keys=True)})
    return data, {"bytes": len(data), **(quantization or {})}


def _read_gated(
    gated_meta: dict[str, Any], tensors: dict[str, Tensor]
) -> tuple[dict[str, tuple[Tensor, Tensor]], dict[str, tuple[int, ...]], dict[str, str], set[str]]:
    """The gated entries the metadata lists, decoded from ``tensors``: (entries, shapes, dtypes, the
    tensor names they use). Raises DiffFormatError (missing tensors, bad codes, a count mismatch),
    or KeyError / TypeError / ValueError on malformed metadata (the caller names it)."""
    gated, shapes, dtypes, keys = {}, {}, {}, set()
    for name, info in gated_meta.items():
        shape = tuple(int(s) for s in info["shape"])
        numel = int(np.prod(shape))
        nnz = int(info["nnz"])
        if nnz:
            keys |= {f"gated/{name}/indices", f"gated/{name}/values"}
            raw = tensors.get(f"gated/{name}/indices")
            values = tensors.get(f"gated/{name}/values")
            if raw is None or values is None:
                raise DiffFormatError(f"{name}: indices or values are missing")
            indices = torch.from_numpy(decode_indices(raw.numpy(), nnz, numel))
            if values.numel() != nnz:
                raise DiffFormatError(f"{name}: {nnz} indices but {values.numel()} values")
        else:
            indices, values = torch.zeros(0, dtype=torch.int64), torch.zeros(0)
        gated[name] = (indices, values)
        shapes[name] = shape
        dtypes[name] = str(info["dtype"])
    return gated, shapes, dtypes, keys


def _read_dense(dense_meta: dict[str, Any], tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The dense head tensors the metadata lists, with the shapes it gives (DiffFormatError otherwise)."""
    dense = {}
    for name, info in dense_meta.items():
        value = tensors[f"dense/{name}"]
        if list(value.shape) != list(info["shape"]):
            raise DiffFormatError(
                f"dense {name}: shape {list(value.shape)} but metadata says {info['shape']}"
            )
        dense[name] = value
    return dense


def decode_file(data: bytes) -> tuple[DecodedDiff, dict[str, Any]]:
    """Parse and validate diff file bytes: header, metadata types, payload hash, tensor names and entries.

    Returns:
        (the diff's fields, the file's metadata); the caller builds the SparseDiff (which checks every
        entry) under :func:`metadata_errors` and compares its ``nnz`` / ``num_gated`` with the metadata's.

    Raises:
        DiffFormatError: not a diff file, an unknown format version, corrupted or truncated data, a
            hash mismatch, or metadata that does not match the tensors.
    """
    meta = read_metadata(data)
    _check_meta_types(meta)
    try:
        tensors = st_load(data)
    except Exception as error:  # safetensors raises its own error types for malformed buffers
        raise DiffFormatError(f"corrupted or truncated tensor data ({error})") from None
    if payload_sha256(tensors) != meta.get("payload_sha256"):
        raise DiffFormatError("corrupted file (tensor data does not match its SHA-256)")
    with metadata_errors():
        gated_meta: dict[str, Any] = meta["gated"]
        dense_meta: dict[str, Any] = meta["dense"]
        gated, shapes, dtypes, gated_keys = _read_gated(gated_meta, tensors)
        expected_keys = {f"dense/{n}" for n in dense_meta} | gated_keys
        if set(tensors) != expected_keys:
            raise DiffFormatError(
                f"tensor names do not match the metadata: {sorted(set(tensors) ^ expected_keys)[:3]}"
            )
        dense = _read_dense(dense_meta, tensors)
        decoded = DecodedDiff(
            gated,
            shapes,
            dtypes,
            dense,
            meta["base_fingerprint"],
            meta.get("config"),
            meta.get("quantization"),
        )
    return decoded, meta
