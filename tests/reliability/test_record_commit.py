"""A run killed while recording its result, started again, leaves exactly one record; atomic files get normal modes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from deltamix.core.io import atomic_write_text, read_jsonl
from deltamix.core.records import commit_record, finish_commit, make_record


def _record(output_dir: str = "runs/x") -> dict:
    return make_record(
        "scan", "simple", "seqmix", 0, {"exact_match": 0.5}, "exact_match", {}, output_dir=output_dir
    )


def test_commit_appends_once_and_writes_the_marker(tmp_path: Path) -> None:
    marker = tmp_path / "run" / "metrics.json"
    path = commit_record(_record(), tmp_path / "results", marker, {"metrics": {"exact_match": 0.5}})
    assert path == tmp_path / "results" / "scan.jsonl"
    [line] = read_jsonl(path)
    saved = json.loads(marker.read_text())
    assert saved["metrics"] == {"exact_match": 0.5} and saved["record"]["run_id"] == line["run_id"]
    assert finish_commit(marker) is None  # nothing pending any more


@pytest.mark.parametrize("appended_before_kill", [False, True])
def test_a_commit_killed_midway_completes_once(
    tmp_path: Path, monkeypatch, appended_before_kill: bool
) -> None:
    marker, results = tmp_path / "run" / "metrics.json", tmp_path / "results"
    import deltamix.core.records as records

    def killed(path, record):  # the kill: after (or before) the line is written, before the marker
        if appended_before_kill:
            real_append(path, record)
        raise KeyboardInterrupt

    real_append = records.append_jsonl
    monkeypatch.setattr(records, "append_jsonl", killed)
    with pytest.raises(KeyboardInterrupt):
        commit_record(_record(), results, marker, {"metrics": {}})
    monkeypatch.undo()
    assert not marker.exists()
    # Another run appends meanwhile (concurrent writers share the file).
    records.append_record(_record("runs/other"), results)

    assert finish_commit(marker) == results / "scan.jsonl"  # what a restarted run does first
    assert finish_commit(marker) is None
    lines = read_jsonl(results / "scan.jsonl")
    assert sorted(r["output_dir"] for r in lines) == ["runs/other", "runs/x"]
    assert json.loads(marker.read_text())["record"]["output_dir"] == "runs/x"


def test_atomic_files_get_an_ordinary_mode(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    atomic_write_text(path, "{}")
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
