"""The semantic parsing section of results/README.md: GeoQuery exact match per split and method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deltamix.report.translation import goal_summary, method_tables


def render(records: list[dict[str, Any]], out_dir: Path) -> str:
    """A Markdown section with one table per GeoQuery split/form (and any other parsing task):
    test exact match of the meaning representation in %, mean ± sd over seeds, per method.

    ``out_dir`` is unused (no plots).
    """
    return (
        "## Semantic parsing (SeqMix, GeoQuery)\n\n"
        "Test exact match of the whole meaning representation (%, whitespace-normalised, as GECA "
        "and SeqMix report), mean ± sd over seeds (n = number of seeds); Δ is the difference of means "
        "from `none` (no augmentation), in points; above none: in how many of the seeds both ran the "
        "method scored higher. The command of each row is one run's, with its seed as `<seed>`. The "
        "goal line checks SeqMix for a gain over the baseline.\n\n"
        + method_tables(records, "exact match %", 100.0, goal_margin=0.0)
    )


def summary(records: list[dict[str, Any]]) -> list[str]:
    """The goal lines of the parsing tables: does SeqMix gain over the baseline (see `goal_summary`)."""
    return goal_summary(records, "exact match %", 100.0, 0.0)
