"""Property tests: any bytes given to SparseDiff.load / from_bytes load a valid diff or raise DiffFormatError."""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from deltamix.core.errors import DiffFormatError
from deltamix.diffprune import DiffPruningConfig, DiffPruningModel, SparseDiff

from .conftest import no_hang

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_file() -> bytes:
    """A small real diff file: an MLP's projected diff (3 gated tensors) plus a dense head."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4), nn.Linear(4, 2))
    dp = DiffPruningModel(model, DiffPruningConfig(dense_modules=["2"], target_sparsity=0.3))
    with torch.no_grad():
        dp.w.normal_()
    dp.project_()
    with tempfile.TemporaryDirectory() as folder:
        dp.export_diff().save(Path(folder) / "d.safetensors")
        return (Path(folder) / "d.safetensors").read_bytes()


VALID = _valid_file()
HEADER_LEN = int.from_bytes(VALID[:8], "little")
META = json.loads(json.loads(VALID[8 : 8 + HEADER_LEN])["__metadata__"]["deltamix"])
TENSORS = dict(st_load(VALID))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)


def _paths(node, prefix=()):
    """Every key path into the metadata (so that a mutation can target any field)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


META_PATHS = [p for p in _paths(META) if p and p[0] != "payload_sha256"]


def _payload_hash(tensors: dict[str, torch.Tensor]) -> str:
    payload = hashlib.sha256()
    for key in sorted(tensors):
        payload.update(key.encode())
        payload.update(tensors[key].view(torch.uint8).numpy().tobytes() if tensors[key].numel() else b"")
    return payload.hexdigest()


def _file(meta: dict, tensors: dict[str, torch.Tensor]) -> bytes:
    """Re-serialise with a matching payload hash, so the checks beyond the hash are exercised."""
    meta = {**meta, "payload_sha256": _payload_hash(tensors)}
    return st_save(tensors, metadata={"deltamix": json.dumps(meta)})


def _loads_or_rejects(data: bytes) -> None:
    """from_bytes and load either give a consistent diff or raise DiffFormatError (load: naming the file)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "task.safetensors"
        path.write_bytes(data)
        try:
            with no_hang():
                diff = SparseDiff.load(path)
        except DiffFormatError as error:
            assert str(error).startswith(str(path)), error
            with pytest.raises(DiffFormatError), no_hang():
                SparseDiff.from_bytes(data)
            assert [p.name for p in Path(folder).iterdir()] == ["task.safetensors"]  # nothing written
            return
    assert isinstance(SparseDiff.from_bytes(data), SparseDiff)
    for name, (indices, values) in diff.gated.items():  # what loads is consistent
        numel = 1
        for size in diff.shapes[name]:
            numel *= size
        assert indices.dtype == torch.int64 and indices.shape == values.shape
        if indices.numel():
            assert int(indices[0]) >= 0 and int(indices[-1]) < numel
            assert bool((indices[1:] > indices[:-1]).all()) and bool(torch.isfinite(values).all())


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _loads_or_rejects(data)


@FUZZ
@given(
    cut=st.integers(0, len(VALID)),
    edits=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6),
)
def test_truncated_or_overwritten_real_file(cut: int, edits: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for position, value in edits:
        data[position] = value
    _loads_or_rejects(bytes(data[: max(cut, 1) if edits else cut]))


@FUZZ
@given(where=st.sampled_from(META_PATHS), value=JSON)
def test_any_metadata_field_replaced(where: tuple, value) -> None:
    meta = copy.deepcopy(META)
    node = meta
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    _loads_or_rejects(_file(meta, TENSORS))


HOSTILE_VALUES = [
    None,
    True,
    -3,
    2**70,
    1.5,
    float("nan"),
    "x",
    [],
    [1],
    [5, -6],
    [2**40, 2**40],
    {},
    {"a": 1},
]


def test_every_metadata_field_with_every_hostile_value() -> None:
    """Exhaustive over fields x values (random sampling alone misses e.g. ``gated`` set to a list)."""
    for where in META_PATHS:
        for value in HOSTILE_VALUES:
            meta = copy.deepcopy(META)
            node = meta
            for key in where[:-1]:
                node = node[key]
            node[where[-1]] = value
            data = _file(meta, TENSORS)
            try:
                SparseDiff.from_bytes(data)
            except DiffFormatError:
                continue
            except Exception as error:  # the point: no other exception type
                raise AssertionError(f"{where} = {value!r}: {type(error).__name__}: {error}") from error


TENSOR_KEYS = sorted(TENSORS)
DTYPES = [torch.uint8, torch.int8, torch.int64, torch.float16, torch.bfloat16, torch.float32, torch.float64]


@FUZZ
@given(
    key=st.sampled_from(TENSOR_KEYS),
    raw=st.binary(max_size=64),
    dtype=st.sampled_from(DTYPES),
    drop=st.booleans(),
)
def test_any_tensor_replaced_or_dropped(key: str, raw: bytes, dtype: torch.dtype, drop: bool) -> None:
    tensors = dict(TENSORS)
    if drop:
        del tensors[key]
    else:
        size = torch.empty(0, dtype=dtype).element_size()
        raw = raw[: len(raw) - len(raw) % size]
        tensors[key] = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.zeros(0, dtype=dtype)
    _loads_or_rejects(_file(META, tensors))


@pytest.mark.parametrize(
    ("indices", "values", "message"),
    [
        ([3, 1], [1.0, 2.0], "not sorted"),
        ([1, 1], [1.0, 2.0], "duplicated"),
        ([0, 30], [1.0, 2.0], "out of range"),
        ([0, 1, 2], [1.0, 2.0], "3 indices but 2 values"),
    ],
)
def test_bad_entries_are_rejected_before_touching_the_model(indices, values, message) -> None:
    torch.manual_seed(0)
    model = nn.Linear(5, 6)  # weight: 30 entries
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fingerprint = SparseDiff.from_bytes(VALID).base_fingerprint
    with pytest.raises(DiffFormatError, match=message):
        diff = SparseDiff(
            gated={"weight": (torch.tensor(indices), torch.tensor(values))},
            shapes={"weight": (6, 5)},
            dtypes={"weight": "float32"},
            dense={},
            base_fingerprint=fingerprint,
        )
        diff.apply_(model, check=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
