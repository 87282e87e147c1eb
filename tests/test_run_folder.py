"""`deltamix.core.run_folder`: which settings count as different, and what the refusal says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deltamix.core.errors import DataFormatError, DeltamixError
from deltamix.core.run_folder import check_same_run, finished_metrics, setting_differences


def test_differences_name_the_setting_and_both_values() -> None:
    before = {"run": {"epochs": 3, "seed": 0, "threads": 1}, "vocabulary_size": 8000}
    now = {"run": {"epochs": 15, "seed": 0, "threads": 4}}
    assert setting_differences(before, now, ("threads",)) == ["run.epochs: 3 there, 15 now"]
    # the earlier file may hold more (what the run measured); a setting it lacks is a difference
    assert setting_differences(before, {"run": {"seed": 0, "alpha": 0.1}}) == [
        "run.alpha: None there, 0.1 now"
    ]
    assert setting_differences({"lr": 1e-3}, {"lr": 1e-3, "results_dir": "x"}, ("results_dir",)) == []


def test_a_new_or_same_folder_passes_and_tuples_compare_as_json_lists(tmp_path: Path) -> None:
    config = tmp_path / "run" / "config.json"
    check_same_run(config, {"run": {"epochs": 3}})  # never started
    config.parent.mkdir()
    config.write_text(json.dumps({"run": {"epochs": 3, "sizes": [1, 2], "data": "d"}}), encoding="utf-8")
    check_same_run(config, {"run": {"epochs": 3, "sizes": (1, 2), "data": Path("d")}})


def test_other_settings_are_refused_with_the_folder_named(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"run": {"epochs": 3, "average_last": 2}}), encoding="utf-8")
    with pytest.raises(
        DeltamixError, match=r"holds a run started with other settings \(run.epochs: 3 there, 15 now\)"
    ):
        check_same_run(config, {"run": {"epochs": 15, "average_last": 2}})


def test_an_unreadable_config_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"config\.json: unreadable run config"):
        check_same_run(config, {"run": {}})


def test_finished_metrics_answers_only_for_a_finished_run_of_the_same_settings(tmp_path: Path) -> None:
    from deltamix.core.records import _pending_path

    folder = tmp_path / "run"
    settings = {"run": {"epochs": 3}}
    assert finished_metrics(folder, settings) is None  # never started
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(settings), encoding="utf-8")
    assert finished_metrics(folder, settings) is None  # started, not finished
    # killed while committing its record: the pending record is appended once and the metrics written
    record = {"experiment": "demo", "run_id": "r1", "score": 1.0}
    pending = {
        "record": record,
        "payload": {"metrics": {"bleu": 40.1}},
        "results_dir": str(tmp_path / "results"),
    }
    _pending_path(folder / "metrics.json").write_text(json.dumps(pending), encoding="utf-8")
    assert finished_metrics(folder, settings)["metrics"] == {"bleu": 40.1}
    lines = (tmp_path / "results" / "demo.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == ["r1"]
    assert finished_metrics(folder, settings)["metrics"] == {"bleu": 40.1}  # and not appended again
    assert len((tmp_path / "results" / "demo.jsonl").read_text(encoding="utf-8").splitlines()) == 1
    with pytest.raises(DeltamixError, match=r"run\.epochs: 3 there, 15 now"):
        finished_metrics(folder, {"run": {"epochs": 15}})
