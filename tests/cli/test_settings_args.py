"""Options generated from settings dataclasses: names, checked types, defaults in the help, aliases."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from deltamix.cli.settings_args import add_settings_options, settings_from_args


@dataclass
class Settings:
    name: str = field(metadata={"help": "what it is called"})
    steps: int | None = field(
        default=None,
        metadata={"help": "updates", "type": "positive_int", "aliases": ("--steps",), "flag": "--max-steps"},
    )
    rate: float = field(default=0.5, metadata={"help": "a share of 50%", "type": "probability"})
    mode: str = field(default="a", metadata={"help": "the mode", "choices": ("a", "b")})
    fast: bool = field(default=False, metadata={"help": "go fast"})
    width: int = field(default=4, metadata={"help": "columns", "default_help": "4, or 8 in wide mode"})


def _parser(**kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="x")
    add_settings_options(parser, Settings, ["name", "steps", "rate", "mode", "fast", "width"], **kwargs)
    return parser


def test_one_declaration_gives_the_options_and_the_config() -> None:
    args = _parser().parse_args(["--name", "n", "--max-steps", "3", "--rate", "0.25", "--fast"])
    values = settings_from_args(args, ["name", "steps", "rate", "mode", "fast", "width"])
    assert Settings(**values) == Settings(name="n", steps=3, rate=0.25, mode="a", fast=True, width=4)


def test_help_shows_each_default_and_what_a_none_default_means(capsys) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--name NAME what it is called (required)" in text
    assert "--max-steps MAX_STEPS updates (default: none)" in text
    assert "a share of 50% (default: 0.5)" in text
    assert "{a,b} the mode (default: a)" in text and "go fast (default: off)" in text
    assert "columns (default: 4, or 8 in wide mode)" in text
    assert "--steps" not in text  # the older spelling is hidden


def test_checked_types_refuse_bad_values_naming_the_option(capsys) -> None:
    for argv, message in (
        (["--name", "n", "--max-steps", "0"], "argument --max-steps: must be > 0"),
        (["--name", "n", "--rate", "2"], "argument --rate: must be in [0, 1]"),
        (["--name", "n", "--mode", "c"], "invalid choice: 'c'"),
        ([], "the following arguments are required: --name"),
    ):
        with pytest.raises(SystemExit):
            _parser().parse_args(argv)
        assert message in capsys.readouterr().err


def test_an_older_spelling_fills_the_same_field_with_a_warning() -> None:
    with pytest.warns(FutureWarning, match="--steps is deprecated and will be removed; use --max-steps"):
        args = _parser().parse_args(["--name", "n", "--steps", "7"])
    assert args.steps == 7


def test_command_defaults_and_overrides() -> None:
    parser = _parser(defaults={"width": 9}, overrides={"mode": {"help": "another mode", "required": True}})
    assert parser.parse_args(["--name", "n", "--mode", "b"]).width == 9
    with pytest.raises(SystemExit):
        parser.parse_args(["--name", "n"])
    with pytest.raises(ValueError, match="Settings has no field 'colour'"):
        add_settings_options(argparse.ArgumentParser(), Settings, ["colour"])


def test_seqmix_compare_options_are_scan_comparison_config_fields() -> None:
    """`deltamix seqmix compare` parses to the library's ScanComparisonConfig, its defaults included."""
    from deltamix.cli.main import build_parser, parse_args
    from deltamix.cli.seqmix_compare import OPTIONS
    from deltamix.experiments.scan.compare import ScanComparisonConfig

    parser = build_parser()
    defaults = settings_from_args(parse_args(parser, ["seqmix", "compare"]), OPTIONS)
    defaults["results_dir"] = str(defaults["results_dir"])
    assert ScanComparisonConfig(**defaults) == ScanComparisonConfig()
    given = settings_from_args(
        parse_args(
            parser, ["seqmix", "compare", "--seeds", "3", "4", "--methods", "none", "--max-steps", "9"]
        ),
        OPTIONS,
    )
    assert (given["seeds"], given["methods"], given["steps"]) == ([3, 4], ["none"], 9)
    with pytest.raises(SystemExit):
        parse_args(parser, ["seqmix", "compare", "--seeds", "-1"])
