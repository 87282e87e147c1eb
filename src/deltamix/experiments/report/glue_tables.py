"""The tables of the GLUE section: scores per method and task with the GLUE average, storage per
task, and the command that reproduces each row.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from deltamix.experiments.glue.methods import DENSE_METHODS, DIFF_METHODS
from deltamix.experiments.glue.metrics import GLUE_AVERAGE_COLUMNS
from deltamix.experiments.report.common import group_by, markdown_table, mean_sd
from deltamix.experiments.report.glue_labels import base_method, l0_setting, recorded_mask_lr
from deltamix.experiments.report.glue_rows import (
    COLUMNS,
    SeedScores,
    average,
    majority_scores,
    method_order,
    per_column,
)


def _shared_columns(table: dict[str, dict[str, list[float]]], averaged: list[str]) -> list[str]:
    """The ``averaged`` columns (those of the GLUE average) that every plain method row (no L0-setting
    label) has.

    While a task has runs of some methods only, the full GLUE average is missing from most rows; the
    average over these columns keeps the rows comparable meanwhile.
    """
    plain = [row for method, row in table.items() if base_method(method) == method]
    return [c for c in averaged if all(c in row for row in plain)]


def score_table(
    records: list[dict[str, Any]], by_seed: SeedScores
) -> tuple[str, dict[str, dict[str, list[float]]], list[str], list[str]]:
    """The main table's markdown, its scores (method -> column -> one per seed), its columns, and the
    columns of the GLUE average every plain row has (`_shared_columns`). ``by_seed``: the
    records' `per_seed` scores."""
    table = per_column(by_seed)
    columns = [c for c in COLUMNS if any(c in row for row in table.values())]
    averaged = [c for c in columns if c in GLUE_AVERAGE_COLUMNS]
    shared = _shared_columns(table, averaged)
    partial = 0 < len(shared) < len(averaged)
    rows = []
    for method in sorted(table, key=method_order):
        stored = [r["stored_fraction"] for r in records if r["method"] == method and r.get("stored_fraction")]
        averages = [average(table[method], columns), *([average(table[method], shared)] if partial else [])]
        rows.append(
            [
                method,
                f"{100 * statistics.mean(stored):.3g}%" if stored else "–",
                *[mean_sd(table[method].get(c, []), scale=100) for c in columns],
                *["–" if average is None else f"{100 * average:.1f}" for average in averages],
            ]
        )
    majority = majority_scores(records)
    if majority:  # records made before it was recorded carry none: no row
        rows.append(
            ["majority class", "–", *[f"{100 * majority[c]:.1f}" if c in majority else "–" for c in columns]]
            + ["–"] * (1 + partial)
        )
    header = ["method", "stored", *columns, "avg", *([f"avg {', '.join(shared)}"] if partial else [])]
    return markdown_table(header, rows), table, columns, shared


def storage_table(records: list[dict[str, Any]]) -> str:
    """Bytes per task (mean over seeds), total over the tasks, and one full model per task."""
    rows = []
    tasks = sorted({r["task"] for r in records})
    for method, group in sorted(
        group_by(records, lambda r: r["method"]).items(), key=lambda x: method_order(x[0])
    ):
        per_task = {
            task: statistics.mean(r["file_bytes"] for r in runs if r.get("file_bytes"))
            for task, runs in group_by(group, lambda r: r["task"]).items()
            if any(r.get("file_bytes") for r in runs)
        }
        full = {
            task: 4 * (runs[0]["base_params"] + runs[0]["head_params"])
            for task, runs in group_by(group, lambda r: r["task"]).items()
        }
        if not per_task:
            continue
        total, full_total = sum(per_task.values()), sum(full[t] for t in per_task)
        rows.append(
            [
                method,
                f"{len(per_task)}/{len(tasks)}",
                f"{statistics.mean(per_task.values()) / 1e6:.3f}",
                f"{total / 1e6:.2f}",
                f"{full_total / 1e6:.1f}",
                f"{100 * total / full_total:.2f}%",
            ]
        )
    header = ["method", "tasks", "MB per task", "MB all tasks", "MB, one fp32 model per task", "share"]
    return markdown_table(header, rows)


def reproduce_table(records: list[dict[str, Any]]) -> str:
    """The command of each row's first seed, with its L0 setting and fixed-mask rate written out."""
    rows = []
    key = lambda r: (r["method"], r["task"], r.get("target_sparsity"), r.get("model"))  # noqa: E731
    for (method, task, sparsity, _), runs in sorted(
        group_by(records, key).items(), key=lambda x: (method_order(x[0][0]), x[0][1], x[0][2] or 0)
    ):
        first = min(runs, key=lambda r: r["seed"])
        parts = first.get("command", "").split()
        if parts:
            parts[0] = Path(parts[0]).name
        # Write out the L0 setting even where it is the default, so the command reproduces the run
        # whatever the default becomes.
        setting = l0_setting(first)
        if (
            setting is not None
            and setting[0] is not None
            and not any(p.startswith(("--l0-lambda", "--l0-target-density")) for p in parts)
        ):
            parts += ["--l0-lambda", f"{setting[0]:g}"]
        if (
            setting is not None
            and setting[1]
            and not any(p.startswith("--structured-penalty") for p in parts)
        ):
            parts += ["--structured-penalty", setting[1]]
        # The same for the fixed-mask rate.
        mask_lr = recorded_mask_lr(first)
        if (
            base_method(method) in DIFF_METHODS
            and mask_lr
            and not any(p.startswith("--mask-lr") for p in parts)
        ):
            parts += ["--mask-lr", f"{mask_lr:g}"]
        seeds = ",".join(str(s) for s in sorted({r["seed"] for r in runs}))
        shown = "–" if base_method(method) in DENSE_METHODS or not sparsity else f"{sparsity:g}"
        rows.append([method, task, shown, seeds, f"`{' '.join(parts)}`"])
    return markdown_table(["method", "task", "t", "seeds", "command (first seed)"], rows)
