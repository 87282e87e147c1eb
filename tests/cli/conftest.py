"""Fixtures of the command tests: a finished tiny seqmix run scored with a checkpoint average."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from deltamix.cli import seqmix_text

PAIRS = [
    ("walk twice", "WALK WALK"),
    ("jump", "JUMP"),
    ("walk", "WALK"),
    ("jump twice", "JUMP JUMP"),
    ("look thrice", "LOOK LOOK LOOK"),
    ("run left", "LTURN RUN"),
]


@pytest.fixture(scope="session")
def averaged_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str]]]:
    """(run folder, its test pairs) of a finished 3-epoch `seqmix train` BLEU run (subword tokenizer,
    Transformer, beam 2) scored with the mean of its last 2 epoch snapshots; valid = test = train."""
    folder = tmp_path_factory.mktemp("averaged-run")
    pairs = PAIRS * 4
    tsv = folder / "pairs.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    out = folder / "run"
    argv = [
        "train", "--train", str(tsv), "--valid", str(tsv), "--test", str(tsv), "--metric", "bleu",
        "--vocab-size", "80", "--epochs", "3", "--batch-size", "8", "--average-last", "2", "--beam-size", "2",
        "--max-output-length", "7", "--threads", "1", "--output-dir", str(out),
        "--results-dir", str(folder / "results"), "--partner-extent", "union",  # the tests contrast it with main
    ]  # fmt: skip
    parser = argparse.ArgumentParser(prog="deltamix seqmix")
    seqmix_text.register(parser.add_subparsers(dest="seqmix_command", required=True))
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    return out, pairs


@pytest.fixture(scope="session")
def experiment_script():
    """Loads ``experiments/<name>.py`` as a module (the experiment scripts are not a package)."""

    def load(name: str) -> ModuleType:
        path = Path(__file__).resolve().parents[2] / "experiments" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
