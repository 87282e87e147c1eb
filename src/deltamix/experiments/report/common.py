"""Helpers shared by the report sections and the summary scripts of experiments/: grouping records,
formatting mean ± sd, Markdown tables, a summary page's command line."""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from deltamix.core.io import atomic_write_text


def group_by(records: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> dict[Any, list]:
    """Records grouped by ``key(record)``, in first-seen order."""
    groups: dict[Any, list] = defaultdict(list)
    for record in records:
        groups[key(record)].append(record)
    return dict(groups)


def mean_sd(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    """``"mean ± sd (n)"`` of ``values * scale``; a single value has no sd."""
    values = [v * scale for v in values]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (1)"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f} ({len(values)})"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_summary_page(
    description: str, default_dir: Path, render: Callable[[Path], str], argv: list[str] | None = None
) -> None:
    """The command line of a summary script: ``--results-dir`` (default ``default_dir``) -> its
    README.md, written atomically from ``render(results_dir)`` and printed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--results-dir", type=Path, default=default_dir, help="default: %(default)s")
    args = parser.parse_args(argv)
    text = render(args.results_dir)
    atomic_write_text(args.results_dir / "README.md", text)
    print(text)
