"""The GLUE learning-rate search section: one row per run in ``results/glue-search/glue.jsonl``.

The search runs (``experiments/glue_search.sh``) use a short budget and are kept apart from the
results table; this section shows each one with the settings that differ between runs, its dev
score and, for diff pruning, how many entries were still non-zero when the projection came.
"""

from __future__ import annotations

from typing import Any

from deltamix.experiments.glue.methods import L0_METHODS
from deltamix.experiments.report.common import markdown_table

SEARCH_DIR = "glue-search"


def _nonzero(record: dict[str, Any]) -> str:
    for stage in record.get("stages", []):
        if "nonzero_before" in stage:
            return f"{stage['nonzero_before']:,} / {stage['kept']:,}"
    return "–"


def _epochs(config: dict[str, Any]) -> str:
    mask = config.get("resolved_mask_epochs")
    return f"{config.get('epochs')}" + (f" + {mask}" if mask else "")


def render(records: list[dict[str, Any]]) -> str:
    """Markdown: the search table (task, method, learning rates, epochs, dev metrics, non-zeros, time)."""
    rows = []
    for record in sorted(
        records, key=lambda r: (r["task"], r["method"], r["config"].get("resolved_lr") or 0)
    ):
        config = record["config"]
        metrics = ", ".join(
            f"{name} {100 * value:.1f}" for name, value in record["metrics"].items() if name != "score"
        )
        gated = record["method"] in L0_METHODS
        alpha = config.get("alpha_lr") if gated else None
        penalty = config.get("resolved_l0_lambda", config.get("l0_lambda")) if gated else None
        rows.append(
            [
                record["task"],
                record["method"],
                f"{config.get('resolved_lr'):g}",
                "–" if alpha is None else f"{alpha:g}",
                "–" if penalty is None else f"{penalty:g}",
                _epochs(config),
                f"{100 * record['metrics']['score']:.1f}",
                metrics,
                _nonzero(record),
                f"{record.get('train_seconds') or 0:.0f}",
            ]
        )
    header = [
        "task",
        "method",
        "lr",
        "alpha lr",
        "L0 lambda",
        "epochs",
        "dev score",
        "metrics",
        "non-zero / kept",
        "train s",
    ]
    return "\n".join(
        [
            "### Learning-rate search (short budget)\n",
            "From `results/glue-search/glue.jsonl` (`experiments/glue_search.sh`), seed 0. lr: the "
            "first stage's (diff weights w for diff pruning). epochs: "
            "first stage (+ fixed-mask stage for diff pruning). non-zero / kept: entries of the diff "
            "still non-zero after the L0 stage / the projection's budget.\n",
            markdown_table(header, rows),
        ]
    )
