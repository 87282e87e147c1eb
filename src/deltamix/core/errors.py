"""The exceptions deltamix raises for bad input: each names the file, line or argument at fault."""

from __future__ import annotations

from pathlib import Path


class DeltamixError(Exception):
    """Base class of every error deltamix raises on purpose (catch this to handle them all)."""


class DataFormatError(DeltamixError, ValueError):
    """A data file could not be read: names the file and, where known, the 1-based line.

    Args:
        path: the file at fault.
        message: what is wrong.
        line: 1-based line number, if the fault is on one line.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class DiffFormatError(DeltamixError, ValueError):
    """A diff file is corrupted, truncated, inconsistent or of an unknown format version."""


class BaseModelMismatchError(DeltamixError, ValueError):
    """A diff was applied to a model other than the base model it was trained on."""


class DataUnavailableError(DeltamixError, RuntimeError):
    """A data set could not be loaded from the Hub (e.g. offline) and no local folder was given."""
