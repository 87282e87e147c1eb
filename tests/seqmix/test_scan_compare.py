"""Tests of `deltamix seqmix compare`: parallel SCAN runs, paired differences, the files it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deltamix.cli.main import main
from deltamix.core.io import read_jsonl
from deltamix.experiments.scan.compare import ScanComparisonConfig, compare_scan

QUICK = {"hidden_size": 16, "embedding_dim": 8}


def test_compare_runs_every_method_and_seed_and_pairs_them(tmp_path: Path) -> None:
    config = ScanComparisonConfig(
        split="simple",
        methods=("none", "seqmix"),
        seeds=(0, 1),
        steps=3,
        precision="fp32",
        workers=2,
        output_dir=str(tmp_path / "compare"),
        results_dir=str(tmp_path / "results"),
        runs_dir=str(tmp_path / "runs"),
        model_config=QUICK,
        train_limit=40,
        test_limit=6,
    )
    comparison = compare_scan(config)
    assert set(comparison.exact_match) == {"none", "seqmix"}
    assert all(set(seeds) == {0, 1} for seeds in comparison.exact_match.values())
    (difference,) = comparison.differences
    assert (difference.method, difference.baseline) == ("seqmix", "none")
    for seed in (0, 1):
        expected = comparison.exact_match["seqmix"][seed] - comparison.exact_match["none"][seed]
        assert difference.per_seed[seed] == pytest.approx(expected)
    records = read_jsonl(tmp_path / "results" / "scan.jsonl")
    assert sorted((r["method"], r["seed"]) for r in records) == [
        ("none", 0),
        ("none", 1),
        ("seqmix", 0),
        ("seqmix", 1),
    ]
    saved = json.loads((tmp_path / "compare" / "comparison.json").read_text())
    assert saved["differences"][0]["wins"] == difference.wins
    assert (tmp_path / "compare" / "comparison.png").stat().st_size > 0
    assert "seqmix − none" in (tmp_path / "compare" / "comparison.md").read_text()

    again = compare_scan(config)  # finished runs are reused, not trained or recorded again
    assert again.exact_match == comparison.exact_match
    assert len(read_jsonl(tmp_path / "results" / "scan.jsonl")) == 4


def test_compare_refuses_unknown_methods_and_repeated_seeds(capsys) -> None:
    with pytest.raises(ValueError, match="methods and seeds must not repeat"):
        ScanComparisonConfig(seeds=(0, 0))
    assert main(["seqmix", "compare", "--seeds", "1", "1"]) == 2
    assert "methods and seeds must not repeat" in capsys.readouterr().err
