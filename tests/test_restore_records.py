"""experiments/restore_records.py puts back a finished run's record exactly once."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from deltamix.core.errors import DeltamixError
from deltamix.core.io import read_jsonl

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "restore_records.py"
_spec = importlib.util.spec_from_file_location("restore_records", SCRIPT)
restore_records = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(restore_records)


def _finished_run(folder: Path, run_id: str) -> dict:
    record = {"experiment": "scan", "run_id": run_id, "method": "seqmix", "main_value": 0.5}
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"metrics": {}, "record": record}))
    return record


def test_a_lost_record_is_appended_once_and_a_present_one_left(tmp_path: Path) -> None:
    lost = _finished_run(tmp_path / "runs" / "a", "lost")
    kept = _finished_run(tmp_path / "runs" / "b", "kept")
    results = tmp_path / "results"
    results.mkdir()
    (results / "scan.jsonl").write_text(json.dumps(kept) + "\n")
    folders = [tmp_path / "runs" / "a", tmp_path / "runs" / "b"]
    assert restore_records.restore(folders, results) == [tmp_path / "runs" / "a"]
    assert restore_records.restore(folders, results) == []
    assert read_jsonl(results / "scan.jsonl") == [kept, lost]


def test_a_folder_without_a_record_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    _finished_run(tmp_path / "runs" / "a", "a")
    (tmp_path / "runs" / "unfinished").mkdir()
    with pytest.raises(DeltamixError, match="unfinished: no finished run"):
        restore_records.restore([tmp_path / "runs" / "a", tmp_path / "runs" / "unfinished"], tmp_path)
    assert not (tmp_path / "scan.jsonl").exists()
