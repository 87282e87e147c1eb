"""Where a command's per-line results go: a file written atomically, or standard output."""

from __future__ import annotations

import sys
from pathlib import Path

from deltamix.core.errors import DataFormatError
from deltamix.core.io import atomic_write_text


def write_lines(lines: list[str], path: str | Path | None, what: str = "outputs") -> None:
    """Write ``lines`` (one per line) to ``path`` atomically, or to standard output when ``path`` is None.

    Raises:
        DataFormatError: the file cannot be written (names it and ``what`` was being written).
    """
    text = "".join(f"{line}\n" for line in lines)
    if path is None:
        sys.stdout.write(text)
        return
    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise DataFormatError(path, f"cannot write the {what} ({error.strerror})") from error
