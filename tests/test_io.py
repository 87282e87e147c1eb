"""Atomic writes and concurrent JSON-lines appends."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from deltamix.core.errors import DataFormatError
from deltamix.core.io import _umask, append_jsonl, atomic_folder, atomic_path, atomic_write_json, read_jsonl


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "metrics.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"b": 2})
    assert json.loads(path.read_text()) == {"b": 2}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "diff.safetensors"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["diff.safetensors"]


def _append_many(args: tuple[str, int]) -> None:
    path, worker = args
    for i in range(200):
        append_jsonl(path, {"worker": worker, "i": i, "pad": "x" * 2000})


def test_concurrent_appends_lose_and_corrupt_nothing(tmp_path: Path) -> None:
    path = tmp_path / "results" / "glue.jsonl"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_append_many, [(str(path), w) for w in range(4)])
    records = read_jsonl(path)
    assert len(records) == 800
    assert {(r["worker"], r["i"]) for r in records} == {(w, i) for w in range(4) for i in range(200)}


def test_read_jsonl_names_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "scan.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DataFormatError, match=r"scan.jsonl, line 2"):
        read_jsonl(path)


def test_atomic_folder_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with pytest.raises(RuntimeError, match="interrupted"), atomic_folder(target) as staging:
        (staging / "half.txt").write_text("half", encoding="utf-8")
        assert not target.exists()  # nothing visible while it is being written
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its staging copy
    target.mkdir()  # an empty folder may be replaced
    with atomic_folder(target) as staging:
        (staging / "done.txt").write_text("done", encoding="utf-8")
    assert [path.name for path in target.iterdir()] == ["done.txt"]
    assert target.stat().st_mode & 0o777 == 0o777 & ~_umask()
    with pytest.raises(FileExistsError, match="not an empty folder"), atomic_folder(target):
        pass
    assert [path.name for path in target.iterdir()] == ["done.txt"]
