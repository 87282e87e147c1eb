"""The semantic parsing section of results/README.md: GeoQuery exact match per split and method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deltamix.experiments.report.common import group_by, markdown_table, mean_sd
from deltamix.experiments.report.translation import goal_summary, method_label, method_tables

CATEGORY_PREFIX = "exact_match:"  # per-category scores of `seqmix train --columns ...,category`


def category_tables(records: list[dict[str, Any]]) -> str:
    """Per task with category columns: exact match (%) per category and method, mean ± sd over seeds."""
    sections = []
    with_categories = [r for r in records if any(k.startswith(CATEGORY_PREFIX) for k in r.get("metrics", {}))]
    for task, group in sorted(group_by(with_categories, lambda r: r["task"]).items()):
        categories = sorted(
            {k[len(CATEGORY_PREFIX) :] for r in group for k in r["metrics"] if k.startswith(CATEGORY_PREFIX)}
        )
        by_method = group_by(group, method_label)
        rows = [
            [
                category,
                *(
                    mean_sd(
                        [
                            r["metrics"][CATEGORY_PREFIX + category]
                            for r in runs
                            if CATEGORY_PREFIX + category in r["metrics"]
                        ],
                        scale=100,
                    )
                    for runs in by_method.values()
                ),
            ]
            for category in categories
        ]
        sections.append(
            f"### {task}: exact match per category (%)\n\n" + markdown_table(["category", *by_method], rows)
        )
    return "\n".join(sections)


def render(records: list[dict[str, Any]], out_dir: Path) -> str:
    """A Markdown section with one table per GeoQuery split/form (and any other parsing task):
    test exact match of the meaning representation in %, mean ± sd over seeds, per method.

    ``out_dir`` is unused (no plots).
    """
    categories = category_tables(records)
    return (
        "## Semantic parsing (SeqMix, GeoQuery)\n\n"
        "Test exact match of the whole meaning representation (%, whitespace-normalised, as GECA "
        "and SeqMix report), mean ± sd over seeds (n = number of seeds); Δ is the difference of means "
        "from `none` (no augmentation), in points; above none: in how many of the seeds both ran the "
        "method scored higher. The command of each row is one run's, with its seed as `<seed>`. The "
        "goal line checks SeqMix for a gain over the baseline.\n\n"
        + method_tables(records, "exact match %", 100.0, goal_margin=0.0)
        + ("\n" + categories if categories else "")
    )


def summary(records: list[dict[str, Any]]) -> list[str]:
    """The goal lines of the parsing tables: does SeqMix gain over the baseline (see `goal_summary`)."""
    return goal_summary(records, "exact match %", 100.0, 0.0)
