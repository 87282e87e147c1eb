"""The serving section of results/README.md: many GLUE tasks' diffs on one base model, from their records.

Records come from ``deltamix diffprune serve --runs DIR...`` (`deltamix.experiments.glue.serve.serve_records`), one
per task and call; the records of one call share a ``serve_id``. Each call gets a table: the task's
dev metrics scored from the shared `DiffBank`, the metrics its own run stored, the largest difference
over all rounds, and the storage of the whole set against one full model per task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deltamix.experiments.report.common import group_by, markdown_table


def _metrics_text(metrics: dict[str, float]) -> str:
    return ", ".join(
        f"{name} {100 * value:.2f}" for name, value in sorted(metrics.items()) if name != "score"
    )


def render(records: list[dict[str, Any]], out_dir: Path) -> str:
    """A Markdown section with one table per serve call (newest first). ``out_dir`` is unused."""
    parts = [
        "## Serving many GLUE tasks from one base model (DiffBank)\n\n"
        "`deltamix diffprune serve --runs DIR...` loads the base model once, adds each run's diff (with "
        "its head) to one `DiffBank` and evaluates the tasks one after another, switching with "
        "`bank.activate`, for several rounds. served: the dev metrics (x 100) from the shared model; "
        "run: those the run stored when it finished; max Δ: the largest absolute difference over all rounds "
        "and metrics (0 means bit-identical metrics; not compared where the call scored other dev "
        "examples than the run).\n"
    ]
    calls = group_by(records, lambda record: record["serve_id"])
    for _, group in sorted(calls.items(), key=lambda item: item[1][0]["finished_at"], reverse=True):
        group = sorted(group, key=lambda record: record["task"])
        first = group[0]
        rows = [
            [
                record["task"],
                f"{record['method']} (seed {record['seed']})",
                _metrics_text(record["metrics"]),
                _metrics_text(record["run_metrics"]),
                "–" if record["max_abs_diff"] is None else f"{record['max_abs_diff']:.1e}",
                {True: "yes", False: "**no**", None: "not compared"}[record["matches"]],
                f"{record['file_bytes'] / 1e6:.3f}",
            ]
            for record in group
        ]
        diffs_mb = sum(record["file_bytes"] for record in group) / 1e6
        base_mb = first["base_fp32_bytes"] / 1e6
        settings = first["config"]
        limit = settings.get("max_eval_examples")
        dev = "full dev sets" if limit is None else f"first {limit} dev examples"
        parts.append(
            f"### {len(group)} tasks on {first['model']} ({first['finished_at'][:10]}, {dev}, "
            f"{settings['rounds']} rounds, {settings['device']})\n\n"
            + markdown_table(["task", "diff", "served", "run", "max Δ", "same", "diff MB"], rows)
            + f"\nSwitches: {first['switches']}, median {first['switch_ms_median']:.1f} ms, slowest "
            f"{first['switch_ms_max']:.1f} ms (revert one diff and head, apply the next). Storage: one "
            f"fp32 base model ({base_mb:.1f} MB) plus {len(group)} diffs ({diffs_mb:.2f} MB) = "
            f"{base_mb + diffs_mb:.1f} MB, against {len(group) * base_mb:.1f} MB for one fine-tuned model "
            f"per task. Command: `{first['command']}`.\n"
        )
    return "\n".join(parts)
