"""Nonsensical arguments to the seqmix commands are rejected at parse time, with a message naming the argument."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltamix.cli.main import main

SCAN_BAD = [
    (["--steps", "-5"], "--steps"),
    (["--steps", "0"], "--steps"),
    (["--epochs", "-1"], "--epochs"),
    (["--minutes", "nan"], "--minutes"),
    (["--lr", "inf"], "--lr"),
    (["--epochs", "inf"], "--epochs"),
    (["--split", "jump"], "--split"),
    (["--augment", "mixup"], "--augment"),
    (["--batch-size", "0"], "--batch-size"),
    (["--checkpoint-interval", "0"], "--checkpoint-interval"),
    (["--label-smoothing", "1.0"], "--label-smoothing"),
    (["--dropout", "-0.1"], "--dropout"),
    (["--geca-ratio", "0"], "--geca-ratio"),
    (["--geca-ratio", "1.5"], "--geca-ratio"),
    (["--seqmix-alpha", "-1"], "--seqmix-alpha"),
    (["--train-limit", "-3"], "--train-limit"),
    (["--threads", "0"], "--threads"),
]


def _expect_rejected(argv: list[str], name: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {name}" in err or f"{name} " in err, err


@pytest.mark.parametrize(("bad", "name"), SCAN_BAD)
def test_scan_rejects(bad: list[str], name: str, capsys, tmp_path: Path) -> None:
    _expect_rejected(["seqmix", "scan", "--output-dir", str(tmp_path / "run"), *bad], name, capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--output-dir", "--results-dir"])
@pytest.mark.parametrize("inside", [False, True])
def test_scan_rejects_an_output_folder_that_is_a_file(
    flag: str, inside: bool, capsys, tmp_path: Path
) -> None:
    file = tmp_path / "file.txt"
    file.write_text("not a folder")
    target = file / "sub" if inside else file  # a folder below a file cannot be created either
    _expect_rejected(["seqmix", "scan", flag, str(target)], flag, capsys)
    assert file.read_text() == "not a folder"


TEXT_BAD = [
    (["--max-steps", "-1"], "--max-steps"),
    (["--epochs", "0"], "--epochs"),
    (["--lr", "inf"], "--lr"),
    (["--augment", "mixup"], "--augment"),
    (["--partner", "random"], "--partner"),
    (["--word-dropout-p", "1.5"], "--word-dropout-p"),
    (["--label-smoothing", "-0.1"], "--label-smoothing"),
    (["--alpha", "0"], "--alpha"),
    (["--batch-size", "-8"], "--batch-size"),
    (["--beam-size", "0"], "--beam-size"),
    (["--warmup-steps", "-1"], "--warmup-steps"),
]


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.tsv"
    path.write_text("a b\tc d\n")
    return path


@pytest.mark.parametrize(("bad", "name"), TEXT_BAD)
def test_train_command_rejects(bad: list[str], name: str, pairs_file: Path, capsys, tmp_path: Path) -> None:
    files = ["--train", str(pairs_file), "--valid", str(pairs_file), "--test", str(pairs_file)]
    out = ["--output-dir", str(tmp_path / "run")]
    _expect_rejected(["seqmix", "train", *files, *out, *bad], name, capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["translate", "parse", "train"])
def test_text_commands_reject_an_output_folder_that_is_a_file(command: str, pairs_file: Path, capsys) -> None:
    extra = {
        "translate": [],
        "parse": ["--data-dir", str(pairs_file.parent)],
        "train": ["--train", str(pairs_file), "--valid", str(pairs_file), "--test", str(pairs_file)],
    }[command]
    _expect_rejected(["seqmix", command, *extra, "--output-dir", str(pairs_file)], "--output-dir", capsys)


def test_train_command_rejects_missing_data_files(capsys, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.tsv")
    _expect_rejected(
        ["seqmix", "train", "--train", missing, "--valid", missing, "--test", missing], "--train", capsys
    )
