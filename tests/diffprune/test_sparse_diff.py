"""SparseDiff files: round trip, compactness, lower precision, and every bad input rejected before any change."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from diffprune_cases import CASES, assert_bit_equal, snapshot
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from deltamix.core.errors import BaseModelMismatchError, DiffFormatError
from deltamix.diffprune import DiffBank, DiffPruningConfig, DiffPruningModel, SparseDiff
from deltamix.diffprune.index_codec import encode_indices


@pytest.fixture(scope="module")
def trained() -> tuple[DiffPruningModel, SparseDiff]:
    """A tiny BERT diff: a few L0 steps, projection to 5%, a fixed-mask step."""
    case = CASES["bert"]
    dp = DiffPruningModel(case.build(), DiffPruningConfig(dense_modules=["classifier"], target_sparsity=0.05))
    _, kwargs = case.batch()
    for stage in ("l0", "fixed"):
        groups = dp.optimizer_param_groups()
        for group in groups:
            group["lr"] = 0.01 if group["name"] != "gates" else group["lr"]
        optimizer = torch.optim.AdamW(groups)
        for _ in range(2):
            loss = dp(**kwargs).loss + dp.diff_config.l0_lambda * dp.l0_penalty()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if stage == "l0":
            dp.project_()
    return dp, dp.export_diff()


def _payload_hash(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(tensors):
        digest.update(key.encode())
        digest.update(tensors[key].view(torch.uint8).numpy().tobytes() if tensors[key].numel() else b"")
    return digest.hexdigest()


def _rewrite(path, edit_meta=None, edit_tensors=None, rehash: bool = True) -> None:
    """Re-write a diff file with edited metadata / tensors (and a matching payload hash)."""
    data = path.read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    meta = json.loads(json.loads(data[8 : 8 + header_len])["__metadata__"]["deltamix"])
    tensors = dict(st_load(data))
    if edit_tensors:
        edit_tensors(tensors)
    if edit_meta:
        edit_meta(meta)
    if rehash:
        meta["payload_sha256"] = _payload_hash(tensors)
    path.write_bytes(st_save(tensors, metadata={"deltamix": json.dumps(meta)}))


def _first_gated(meta_or_diff) -> str:
    return next(name for name, info in meta_or_diff["gated"].items() if info["nnz"] > 1)


def test_round_trip_is_exact(trained, tmp_path) -> None:
    _, diff = trained
    info = diff.save(tmp_path / "d.safetensors")
    again = SparseDiff.load(tmp_path / "d.safetensors")
    assert again.nnz == diff.nnz > 0 and again.num_gated == diff.num_gated
    assert again.base_fingerprint == diff.base_fingerprint and again.config == diff.config
    for name, (indices, values) in diff.gated.items():
        assert torch.equal(again.gated[name][0], indices) and torch.equal(again.gated[name][1], values)
    for name, value in diff.dense.items():
        assert torch.equal(again.dense[name], value)
    assert info["bytes"] == (tmp_path / "d.safetensors").stat().st_size
    assert sum(row["nnz"] for row in again.tensor_stats() if row["kind"] == "gated") == diff.nnz


def test_payload_bytes_per_nonzero_is_compact(trained) -> None:
    _, diff = trained
    index_bytes = sum(encode_indices(i.numpy()).size for i, _ in diff.gated.values())
    assert (index_bytes + 4 * diff.nnz) / diff.nnz <= 6.0  # lossless fp32 values + varint indices


def test_lower_precision_reports_its_error(trained, tmp_path) -> None:
    _, diff = trained
    lossless = diff.save(tmp_path / "a.safetensors")
    half = diff.save(tmp_path / "b.safetensors", value_dtype="float16")
    assert half["bytes"] < lossless["bytes"]
    loaded = SparseDiff.load(tmp_path / "b.safetensors")
    assert loaded.quantization["value_dtype"] == "float16"
    worst = max(
        float((loaded.gated[n][1].double() - v.double()).abs().max())
        for n, (_, v) in diff.gated.items()
        if v.numel()
    )
    assert worst == pytest.approx(half["max_abs_error"]) and 0 < half["rel_l2_error"] < 1e-3
    with pytest.raises(ValueError, match="value dtype"):
        diff.save(tmp_path / "c.safetensors", value_dtype="int8")


def test_apply_revert_bit_exact_and_guarded(trained) -> None:
    _, diff = trained
    model = CASES["bert"].build()
    before = snapshot(model)
    diff.apply_(model)
    assert diff.is_applied(model)
    with pytest.raises(ValueError, match="already applied"):
        diff.apply_(model)
    diff.revert_(model)
    assert_bit_equal(model, before)
    with pytest.raises(ValueError, match="not applied"):
        diff.revert_(model)


def _other_bert(**changes) -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    base = CASES["bert"].build()
    config = BertConfig(**{**base.config.to_dict(), **changes})
    torch.manual_seed(123)
    return BertForSequenceClassification(config)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: _other_bert(), "values differ"),  # same architecture, other weights
        (lambda: _other_bert(intermediate_size=24), "is \\[24"),  # other shapes
        # another head size alone is installed (test_bank_heads.py); here the body differs too
        (lambda: _other_bert(num_labels=2), "values differ"),
        (lambda: _other_bert(num_hidden_layers=1), "no parameter"),  # missing tensors
        (lambda: CASES["bert"].build().double(), "float64"),  # other dtype
    ],
)
def test_wrong_base_is_rejected_untouched(trained, make, message) -> None:
    _, diff = trained
    model = make()
    before = snapshot(model)
    with pytest.raises(BaseModelMismatchError, match=message):
        diff.apply_(model)
    assert_bit_equal(model, before)
    assert not diff.is_applied(model)


def test_full_hash_catches_a_change_the_sample_misses(trained) -> None:
    _, diff = trained
    model = CASES["bert"].build()
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[0, 1] += 1.0  # flat index 1: not a sampled position
    diff.check_compatible(model)  # the cheap check passes
    with pytest.raises(BaseModelMismatchError, match="full value hash"):
        diff.verify_base(model)
    with pytest.raises(BaseModelMismatchError):
        DiffBank(model).add("task", diff)


def _saved(trained, tmp_path):
    path = tmp_path / "d.safetensors"
    trained[1].save(path)
    return path


def test_corrupted_truncated_and_foreign_files(trained, tmp_path) -> None:
    path = _saved(trained, tmp_path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(DiffFormatError, match="SHA-256"):
        SparseDiff.load(path)
    path = _saved(trained, tmp_path)
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DiffFormatError, match="corrupted or truncated"):
        SparseDiff.load(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DiffFormatError, match="truncated"):
        SparseDiff.load(path)
    path.write_bytes(st_save({"x": torch.zeros(3)}))
    with pytest.raises(DiffFormatError, match="not a deltamix diff"):
        SparseDiff.load(path)
    path.write_bytes(b"")
    with pytest.raises(DiffFormatError):
        SparseDiff.load(path)
    with pytest.raises(DiffFormatError, match="cannot read"):
        SparseDiff.load(tmp_path / "absent.safetensors")


def test_unknown_format_version(trained, tmp_path) -> None:
    path = _saved(trained, tmp_path)
    _rewrite(path, edit_meta=lambda meta: meta.update(format_version=99))
    with pytest.raises(DiffFormatError, match="unknown diff format version 99"):
        SparseDiff.load(path)


def _edit_indices(new_indices: np.ndarray):
    def edit(tensors):
        key = next(k for k in sorted(tensors) if k.endswith("/indices") and tensors[k].numel() > 1)
        tensors[key] = torch.from_numpy(new_indices.astype(np.uint8))
        values_key = key.replace("/indices", "/values")
        tensors[values_key] = tensors[values_key][:2]

    return edit


def _set_nnz(count: int):
    def edit(meta):
        name = next(n for n in sorted(meta["gated"]) if meta["gated"][n]["nnz"] > 1)
        meta["nnz"] -= meta["gated"][name]["nnz"] - count
        meta["gated"][name]["nnz"] = count

    return edit


@pytest.mark.parametrize(
    ("edit_tensors", "edit_meta", "message"),
    [
        (_edit_indices(np.array([5, 0])), _set_nnz(2), "duplicated"),
        (_edit_indices(np.array([0x80, 0x80, 0x80, 0x80, 0x01, 0x01])), _set_nnz(2), "out of range"),
        (_edit_indices(np.array([5, 7])), _set_nnz(3), "2 indices but 3 values|holds 2 indices"),
        (None, lambda meta: meta.update(nnz=meta["nnz"] + 1), "inconsistent"),
        (lambda t: t.pop(next(k for k in sorted(t) if k.endswith("/values"))), None, "missing|do not match"),
    ],
)
def test_inconsistent_files(trained, tmp_path, edit_tensors, edit_meta, message) -> None:
    path = _saved(trained, tmp_path)
    _rewrite(path, edit_meta=edit_meta, edit_tensors=edit_tensors)
    with pytest.raises(DiffFormatError, match=message):
        SparseDiff.load(path)


def test_length_mismatch_between_indices_and_values(trained, tmp_path) -> None:
    path = _saved(trained, tmp_path)

    def edit(tensors):
        key = next(k for k in sorted(tensors) if k.endswith("/values") and tensors[k].numel() > 1)
        tensors[key] = tensors[key][:-1]

    _rewrite(path, edit_tensors=edit)
    with pytest.raises(DiffFormatError, match="values"):
        SparseDiff.load(path)


@pytest.mark.parametrize(
    ("indices", "values", "message"),
    [
        ([3, 1], [1.0, 2.0], "not sorted"),
        ([1, 1], [1.0, 2.0], "duplicated"),
        ([1, 99], [1.0, 2.0], "out of range"),
        ([-1, 2], [1.0, 2.0], "out of range"),
        ([1, 2], [1.0], "2 indices but 1 values"),
        ([1, 2], [1.0, float("nan")], "NaN"),
    ],
)
def test_constructor_rejects_bad_entries(indices, values, message) -> None:
    with pytest.raises(DiffFormatError, match=message):
        SparseDiff(
            gated={"w": (torch.tensor(indices), torch.tensor(values))},
            shapes={"w": (4, 4)},
            dtypes={"w": "float32"},
            dense={},
            base_fingerprint={"params": [], "sample_sha256": ""},
        )


def test_fingerprint_of_a_tensor_beyond_float32_integers() -> None:
    from deltamix.diffprune.fingerprint import fingerprint

    module = torch.nn.Module()
    module.big = torch.nn.Parameter(torch.zeros(2**24 + 3))  # BERT-base's embeddings are 23.4M entries
    module.big.data[-1] = 1.0
    first = fingerprint(module, ["big"], full=False)
    module.big.data[-1] = 2.0  # the last entry is always sampled
    assert fingerprint(module, ["big"], full=False)["sample_sha256"] != first["sample_sha256"]
