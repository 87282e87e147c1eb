"""`deltamix seqmix ...`: SeqMix training commands (SCAN, translation, parsing, any files)."""

from __future__ import annotations

import argparse
import importlib

_SUBCOMMAND_MODULES = (
    "deltamix.cli.seqmix_compare",
    "deltamix.cli.seqmix_scan",
    "deltamix.cli.seqmix_text",
    "deltamix.cli.seqmix_predict",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``seqmix`` command group; each module above adds its own subcommands."""
    parser = subparsers.add_parser("seqmix", help="train seq2seq models with SeqMix and its family")
    commands = parser.add_subparsers(dest="seqmix_command", metavar="COMMAND", required=True)
    for module_name in _SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
