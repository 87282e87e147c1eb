"""The rule of the `shared_data` fixture: skip only where ../shared/data is absent, fail where it is partial."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_absent_folder_skips_and_a_partial_one_fails(shared_data, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(shared_data.__globals__, "SHARED_DATA", tmp_path / "absent")
    with pytest.raises(pytest.skip.Exception, match="is absent on this machine"):
        shared_data("scan")
    (tmp_path / "data" / "glue" / "RTE").mkdir(parents=True)
    monkeypatch.setitem(shared_data.__globals__, "SHARED_DATA", tmp_path / "data")
    with pytest.raises(pytest.fail.Exception, match=r"glue/RTE/train\.tsv is missing although"):
        shared_data("glue", "RTE/train.tsv")
    (tmp_path / "data" / "glue" / "RTE" / "train.tsv").write_text("index\tsentence1\n", encoding="utf-8")
    assert shared_data("glue", "RTE/train.tsv") == tmp_path / "data" / "glue"
