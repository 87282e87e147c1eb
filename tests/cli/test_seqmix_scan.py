"""Tests of `deltamix seqmix scan`: argument checking at parse time and a tiny end-to-end run."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltamix.cli.main import main
from deltamix.core.io import read_jsonl
from deltamix.experiments.scan.run import ScanRunConfig

TINY = ["--hidden-size", "16", "--embedding-dim", "8", "--train-limit", "100", "--test-limit", "5"]


@pytest.mark.parametrize(
    "bad",
    [
        ["--split", "jump"],
        ["--augment", "mixup"],
        ["--model", "gru"],
        ["--steps", "0"],
        ["--steps", "5", "--minutes", "1"],
        ["--dropout", "1.5"],
        ["--seed", "-1"],
        ["--lr", "abc"],
        ["--model", "transformer", "--embedding-dim", "8"],
        ["--model", "transformer", "--hidden-size", "30"],  # not divisible by the 4 heads
        ["--partner-extent", "both"],
    ],
)
def test_bad_arguments_are_rejected_at_parse_time(
    bad: list[str], capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["seqmix", "scan", "--output-dir", str(tmp_path / "run"), *bad])
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_tiny_run_end_to_end(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    argv = [
        "seqmix",
        "scan",
        "--split",
        "addprim_jump",
        "--augment",
        "word-dropout",
        "--seed",
        "2",
        "--steps",
        "2",
    ]
    argv += ["--output-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "results"), *TINY]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "exact-match accuracy on test" in out and "of 5 commands" in out
    assert str(tmp_path / "run") in out
    [record] = read_jsonl(tmp_path / "results" / "scan.jsonl")
    assert (record["method"], record["seed"], record["config"]["steps"]) == ("word-dropout", 2, 2)

    assert main(argv) == 0  # finished: reported, not trained or recorded again
    assert "already finished" in capsys.readouterr().out
    assert len(read_jsonl(tmp_path / "results" / "scan.jsonl")) == 1
    # ... for its own settings only: another budget in the same folder is refused, nothing recorded.
    assert main([*argv, "--lr", "0.5"]) == 2
    assert "other settings (training.learning_rate: 0.001 there, 0.5 now)" in capsys.readouterr().err
    assert len(read_jsonl(tmp_path / "results" / "scan.jsonl")) == 1


def test_the_authors_partner_extent_reaches_the_augmenter_record_and_folder(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--partner-extent main` trains geca+seqmix's SeqMix with it, records it, and names the default
    folder after it; GECA alone (no partner) keeps the plain folder name."""
    monkeypatch.chdir(tmp_path)
    argv = ["seqmix", "scan", "--augment", "geca+seqmix", "--partner-extent", "main", "--steps", "1", *TINY]
    assert main([*argv, "--results-dir", "results"]) == 0
    [record] = read_jsonl(tmp_path / "results" / "scan.jsonl")
    assert record["config"]["seqmix"]["partner_extent"] == "main"
    assert record["config"]["run"]["partner_extent"] == "main"
    assert (tmp_path / "runs/scan/addprim_jump/geca+seqmix-main-lstm-seed0/metrics.json").is_file()
    config = ScanRunConfig(augment="geca", partner_extent="main")
    assert config.resolved_output_dir() == Path("runs/scan/addprim_jump/geca-lstm-seed0")
    with pytest.raises(ValueError, match="unknown partner extent 'both'"):
        ScanRunConfig(partner_extent="both")
    capsys.readouterr()
