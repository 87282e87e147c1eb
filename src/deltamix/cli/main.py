"""The `deltamix` command: a thin layer over the library, one module per command group."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import deltamix
from deltamix.core.errors import DeltamixError

# Each module defines ``register(subparsers)``, adding its command group; the handler of a command
# is stored as ``func`` in its parser defaults and receives the parsed arguments.
_COMMAND_MODULES = (
    "deltamix.cli.diff",
    "deltamix.cli.diffprune",
    "deltamix.cli.seqmix",
    "deltamix.cli.report",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="deltamix",
        description="Diff pruning and SeqMix for Hugging Face and PyTorch models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages (default: off)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def version() -> str:
    """The installed package's version (its metadata), else `deltamix.__version__` (a source tree)."""
    try:
        return package_version("deltamix")
    except PackageNotFoundError:
        return deltamix.__version__


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, printing each deprecated option's warning as one line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        args = parser.parse_args(argv)
    for warning in caught:
        if issubclass(warning.category, FutureWarning):
            print(f"deltamix: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parse_args(parser, argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.func(args) or 0)
    except DeltamixError as error:
        print(f"deltamix: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deltamix: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
