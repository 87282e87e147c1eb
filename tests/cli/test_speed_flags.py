"""Every training command offers --precision and --threads with their defaults in --help, and the
seq2seq ones --max-tokens; the flags reach the run configs."""

from __future__ import annotations

import argparse

import pytest

from deltamix.cli.main import build_parser

TRAINING_COMMANDS = [
    ["seqmix", "scan"], ["seqmix", "translate"], ["seqmix", "parse"], ["seqmix", "train"],
    ["seqmix", "compare"], ["diffprune", "glue"],
]  # fmt: skip


def _subparser(path: list[str]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("command", TRAINING_COMMANDS, ids=" ".join)
def test_training_commands_take_precision_and_threads_with_defaults(command: list[str]) -> None:
    options = {opt: action for action in _subparser(command)._actions for opt in action.option_strings}
    assert options["--precision"].choices == ("auto", "bf16", "fp32")
    assert options["--precision"].default == "auto"
    assert "default" in options["--precision"].help
    if command[-1] != "compare":  # compare runs one thread per worker
        assert "--threads" in options and "default" in options["--threads"].help
    if command[0] == "seqmix" and command[-1] != "compare":
        assert "--max-tokens" in options and "default" in options["--max-tokens"].help
