"""`deltamix diffprune glue|serve` reject senseless arguments at parse time with a message naming the argument."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltamix.cli.main import main


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "results.txt"
    path.write_text("a file, not a folder\n")
    return path


BAD = [
    (["--target-sparsity", "1.5"], "argument --target-sparsity: must be in (0, 1]"),
    (["--target-sparsity", "-0.1"], "argument --target-sparsity: must be in (0, 1]"),
    (["--target-sparsity", "nan"], "argument --target-sparsity: must be in (0, 1]"),
    (["--epochs", "-1"], "argument --epochs: must be > 0"),
    (["--mask-epochs", "0"], "argument --mask-epochs: must be > 0"),
    (["--max-steps", "-5"], "argument --max-steps: must be > 0"),
    (["--max-steps", "2.5"], "argument --max-steps: expected a whole number"),
    (["--save-steps", "0"], "argument --save-steps: must be > 0"),
    (["--l0-target-density", "1"], "argument --l0-target-density: must be in (0, 1)"),
    (["--batch-size", "0"], "argument --batch-size: must be > 0"),
    (["--seed", "-1"], "argument --seed: must be >= 0"),
    (["--lr", "inf"], "argument --lr: must be > 0 and finite"),
    (["--lr=-1e-3"], "argument --lr: must be > 0"),
    (["--alpha-lr", "0"], "argument --alpha-lr: must be > 0"),
    (["--l0-lambda", "-1"], "argument --l0-lambda: must be >= 0 and finite"),
    (["--method", "unknown"], "argument --method: invalid choice: 'unknown'"),
    (["--task", "squad"], "argument --task: unknown GLUE task 'squad'"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_glue_rejects_at_parse_time(args: list[str], message: str, capsys) -> None:
    argv = (
        ["diffprune", "glue", "--task", "rte", *args]
        if "--task" not in args
        else ["diffprune", "glue", *args]
    )
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--output-dir", "--results-dir"])
def test_glue_output_folder_that_is_a_file(flag: str, a_file: Path, capsys) -> None:
    for value in (a_file, a_file / "below"):
        with pytest.raises(SystemExit) as exit_info:
            main(["diffprune", "glue", "--task", "rte", flag, str(value)])
        assert exit_info.value.code == 2
        assert f"argument {flag}:" in capsys.readouterr().err
    assert a_file.read_text() == "a file, not a folder\n"  # untouched


def test_serve_rejects_a_file_as_run_folder_and_no_rounds(a_file: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["diffprune", "serve", "--runs", str(a_file)])
    assert "argument --runs: folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["diffprune", "serve", "--runs", str(a_file.parent), "--rounds", "0"])
    assert "argument --rounds: must be > 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--method", "diffprune-nonadaptive", "--l0-target-density", "0.02"],
            "l0_target_density applies to",
        ),
        (["--method", "lora", "--first-stage-from", "."], "first_stage_from applies to the diff pruning"),
    ],
)
def test_glue_flags_of_another_method_get_a_clear_error(
    args: list[str], message: str, tmp_path: Path, capsys
) -> None:
    """Flags valid alone but not with this method: one error line, exit 2, no run folder written."""
    out = tmp_path / "run"
    status = main(["diffprune", "glue", "--task", "rte", "--output-dir", str(out), *args])
    error = capsys.readouterr().err
    assert status == 2 and error.startswith("deltamix: error: diffprune glue: ") and message in error
    assert "Traceback" not in error and not out.exists()
