"""argparse types that reject nonsensical values at parse time, naming the argument."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import BinaryIO


def _parse_number(text: str, kind: type, low: float, high: float, low_open: bool, high_open: bool) -> float:
    """``text`` as ``kind`` (int or float) in the interval from ``low`` to ``high``.

    Raises:
        argparse.ArgumentTypeError: naming the interval, for a non-number, NaN or a value outside it
            (argparse then names the argument).
    """
    if math.isinf(high):
        interval = f"{'>' if low_open else '>='} {low:g}" + (" and finite" if kind is float else "")
    else:
        interval = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    try:
        value = kind(text)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {noun} {interval}, got {text!r}") from None
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"must be {interval}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer > 0."""
    return int(_parse_number(text, int, 0, math.inf, low_open=True, high_open=True))


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return int(_parse_number(text, int, 0, math.inf, low_open=False, high_open=True))


def positive_float(text: str) -> float:
    """A finite float > 0 (``inf`` would mean an endless run or a diverging learning rate)."""
    return _parse_number(text, float, 0, math.inf, low_open=True, high_open=True)


def non_negative_float(text: str) -> float:
    """A finite float >= 0."""
    return _parse_number(text, float, 0, math.inf, low_open=False, high_open=True)


def fraction(text: str) -> float:
    """A float in (0, 1], e.g. a target sparsity (density) of 0.005."""
    return _parse_number(text, float, 0, 1, low_open=True, high_open=False)


def probability(text: str) -> float:
    """A float in [0, 1]."""
    return _parse_number(text, float, 0, 1, low_open=False, high_open=False)


def unit_interval(text: str) -> float:
    """A float in [0, 1), e.g. a dropout rate or label smoothing."""
    return _parse_number(text, float, 0, 1, low_open=False, high_open=True)


def open_unit_interval(text: str) -> float:
    """A float in (0, 1), e.g. a mixing ratio."""
    return _parse_number(text, float, 0, 1, low_open=True, high_open=True)


def output_dir(text: str) -> Path:
    """A folder to write into: may not exist yet, but neither it nor a folder above it may be a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file, not a folder")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{text!r} cannot be created: {str(parent)!r} is a file")
            break
    return path


def existing_dir(text: str) -> Path:
    """A folder that exists."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"folder {text!r} does not exist")
    return path


def existing_file(text: str) -> Path:
    """A file that exists."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"file {text!r} does not exist")
    return path


def input_file(text: str) -> Path | BinaryIO:
    """A file to read (``Path``), or standard input's byte stream for ``-``.

    The readers (`deltamix.data.seq2seq.read_lines`, `deltamix.experiments.glue.classify.read_examples`) take
    either and name a missing file, or the stream as ``<stdin>``, with the line at fault.
    """
    return sys.stdin.buffer if text == "-" else Path(text)


def add_line_files(parser: argparse.ArgumentParser, inputs: str, outputs: str) -> None:
    """Add ``--input`` (a UTF-8 file of one item per line, ``-`` or absent: standard input) and
    ``--output`` (a file written atomically, absent: standard output) for a command that maps each input
    line to one output line; ``inputs`` / ``outputs`` say what the lines hold ("one input per line")."""
    parser.add_argument(
        "--input",
        type=input_file,
        default="-",
        help=f"UTF-8 text file, {inputs}; '-' reads standard input (default)",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help=f"file for the {outputs} (default: standard output)"
    )
