"""The seqmix command line offers the library's choices and defaults: its options are generated from
the settings dataclasses, so no copy of a choice list or default lives in the CLI."""

from __future__ import annotations

import argparse

import pytest

from deltamix.cli.main import build_parser
from deltamix.core import precision
from deltamix.seqmix import config, lr_schedule, text_run


def _options(*path: str) -> dict[str, argparse.Action]:
    parser = build_parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return {opt: action for action in parser._actions for opt in action.option_strings}


@pytest.mark.parametrize("command", ["translate", "parse", "train"])
def test_the_cli_offers_the_librarys_choices_and_defaults(command: str) -> None:
    options = _options("seqmix", command)
    assert text_run.AUGMENTATIONS == config.VARIANTS
    assert options["--augment"].choices == config.VARIANTS
    assert options["--partner"].choices == config.PARTNERS
    assert options["--partner-extent"].choices == config.PARTNER_EXTENTS
    assert options["--lr-schedule"].choices == lr_schedule.LR_SCHEDULES
    assert options["--lr-schedule"].default == lr_schedule.DEFAULT_LR_SCHEDULE
    assert options["--precision"].choices == precision.PRECISIONS
    assert options["--precision"].default == precision.DEFAULT_PRECISION


def test_one_declaration_of_the_default_partner_extent() -> None:
    """Unset, the partner extent of a mixing member is the library's default (the authors' main) in
    the run configs and so on the command line; members that never read it keep what they stored."""
    assert config.DEFAULT_PARTNER_EXTENT == "main" == config.SeqMixConfig().partner_extent
    assert _options("seqmix", "translate")["--partner-extent"].default is None
    assert text_run.TextRunConfig(kind="translate").partner_extent == config.DEFAULT_PARTNER_EXTENT
    assert text_run.TextRunConfig(kind="translate", augment="none").partner_extent == "union"
