"""The epoch-curve section of results/README.md: clean validation loss of each kept epoch snapshot.

Records come from ``experiments/epoch_curves.py`` (one per finished run): the per-token NLL of the
validation references (teacher forcing, no augmentation, no label smoothing) for each epoch snapshot
the run kept and for their mean, which the run was scored with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deltamix.experiments.report.common import markdown_table
from deltamix.experiments.report.translation import _budget, _budget_label, _method_key, method_label


def render(records: list[dict[str, Any]], out_dir: Path) -> str:
    """A Markdown table per (task, budget): a row per run, a column per kept snapshot (by epoch).

    ``out_dir`` is unused (no plots).
    """
    parts = [
        "## Validation loss over the last epochs (seq2seq runs)\n\n"
        "Per-token NLL (nats) of the validation references under each kept epoch snapshot (teacher "
        "forcing, no augmentation, no label smoothing), then of their mean (the model the run was "
        "scored with); Δ = last snapshot - first. A falling baseline curve means the run is still "
        "under-trained, where a regulariser has little to correct; a rising one, that it has begun to "
        "overfit. Produced by "
        "`python experiments/epoch_curves.py RUN...`.\n"
    ]
    groups: dict[tuple[str, tuple], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((str(record.get("task")), _budget(record)), []).append(record)
    for (task, budget), group in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1])):
        per_epoch = []
        for record in group:
            steps_per_epoch = _steps_per_epoch(record)
            per_epoch.append(
                {round(row["step"] / steps_per_epoch): row["valid_nll"] for row in record["snapshots"]}
            )
        epochs = sorted({epoch for curve in per_epoch for epoch in curve})
        rows = []
        for record, curve in sorted(
            zip(group, per_epoch, strict=True),
            key=lambda pair: (_method_key(method_label(pair[0])), pair[0]["seed"]),
        ):
            metrics = record["metrics"]
            rows.append(
                [f"{method_label(record)} (seed {record['seed']})"]
                + [f"{curve[e]:.4f}" if e in curve else "–" for e in epochs]
                + [
                    f"{metrics['valid_nll_averaged']:.4f}",
                    f"{metrics['valid_nll_change_over_snapshots']:+.4f}",
                ]
            )
        header = ["run"] + [f"epoch {e}" for e in epochs] + ["mean of snapshots", "Δ"]
        parts.append(f"### {task}, {_budget_label(budget)}\n\n" + markdown_table(header, rows))
    return "\n".join(parts)


def _steps_per_epoch(record: dict[str, Any]) -> float:
    """Updates per epoch of the run, from its budget (the last snapshot ends the last epoch)."""
    run = (record.get("config") or {}).get("run") or {}
    last_step = max(row["step"] for row in record["snapshots"])
    epochs = float(run.get("epochs") or 0)
    return last_step / epochs if epochs and not run.get("max_steps") else last_step / len(record["snapshots"])
