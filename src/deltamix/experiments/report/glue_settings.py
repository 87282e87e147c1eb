"""Settings compared seed by seed: each exploratory run (another L0 or training setting) against the
default run of its task, seed and target sparsity.

The GLUE table averages each labelled row (``diffprune (lambda 1e-06)``, ``... gates clipped apart``)
over its own seeds, which are often fewer than the default row's; a difference of means over unequal
seed sets mixes the setting with the seeds. Here every run of a labelled row is paired with the run of
the plain row (the default setting where it has runs, see ``label_other_settings``) that has the
same task, seed and target sparsity, and the table shows both scores, their difference and what the L0 stage left
non-zero before the projection (the share of the body's parameters, from the projection stage's
``nonzero_before``), with the L0 stage's last dev score: the projection's cost is their gap.
"""

from __future__ import annotations

import statistics
from typing import Any

from deltamix.experiments.glue.methods import DENSE_METHODS
from deltamix.experiments.report.common import markdown_table
from deltamix.experiments.report.glue_labels import base_method


def _nonzero_share(record: dict[str, Any]) -> float | None:
    """Share of the body's parameters non-zero after the L0 stage (before projection), or None."""
    for stage in record.get("stages", []):
        if stage.get("stage") == "projection" and stage.get("nonzero_before") is not None:
            return stage["nonzero_before"] / record["base_params"]
    return None


def _l0_dev_score(record: dict[str, Any]) -> float | None:
    """The dev score at the end of the L0 stage (the dense, gated diff before projection), or None."""
    history = record.get("dev_history", {}).get("l0") or []
    scores = [value for key, value in (history[-1].items() if history else ()) if key.endswith("_score")]
    return scores[0] if scores else None


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _share(value: float | None) -> str:
    """A percentage, with two significant digits below 1% (the L0 stage may leave 0.04%)."""
    if value is None:
        return "–"
    if value < 1e-5:
        return "0%" if value == 0 else "<0.001%"
    return f"{100 * value:.2g}%" if value < 0.01 else f"{100 * value:.1f}%"


def _sparsity(record: dict[str, Any]) -> str:
    """The run's target sparsity as a percentage; "–" for methods whose size does not follow it."""
    if base_method(record["method"]) in DENSE_METHODS or record.get("target_sparsity") is None:
        return "–"
    return f"{100 * record['target_sparsity']:g}%"


def _key(record: dict[str, Any]) -> tuple[str, int, float | None]:
    return (record["task"], record["seed"], record.get("target_sparsity"))


def paired_setting_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per labelled run (another L0 or training setting) that has a plain run of the same
    method, task, seed and target sparsity.

    Args:
        records: one model's records after ``label_other_settings`` (labelled rows are
            ``"<method> (<setting>)"``).

    Returns:
        dicts with ``method``, ``setting`` (the label's text), ``task``, ``seed``, ``default`` and
        ``variant`` (the records), sorted by method, setting, task and seed.
    """
    plain = {(r["method"], *_key(r)): r for r in records if base_method(r["method"]) == r["method"]}
    pairs = []
    for record in records:
        base = base_method(record["method"])
        if base == record["method"]:
            continue
        default = plain.get((base, *_key(record)))
        if default is not None:
            setting = record["method"][len(base) + 2 : -1]
            pairs.append(
                {
                    "method": base,
                    "setting": setting,
                    "task": record["task"],
                    "seed": record["seed"],
                    "default": default,
                    "variant": record,
                }
            )
    return sorted(pairs, key=lambda p: (p["method"], p["setting"], p["task"], p["seed"]))


def render_paired_settings(records: list[dict[str, Any]]) -> str | None:
    """The seed-by-seed table and one line per setting with its mean difference; None without pairs."""
    pairs = paired_setting_rows(records)
    if not pairs:
        return None
    rows = []
    for pair in pairs:
        default, variant = pair["default"], pair["variant"]
        ours, theirs = variant["metrics"]["score"], default["metrics"]["score"]
        rows.append(
            [
                f"{pair['method']} ({pair['setting']})",
                pair["task"],
                str(pair["seed"]),
                _sparsity(pair["variant"]),
                _cell(theirs),
                _cell(ours),
                f"{100 * (ours - theirs):+.1f}",
                f"{_share(_nonzero_share(default))} → {_share(_nonzero_share(variant))}",
                f"{_cell(_l0_dev_score(default))} → {_cell(_l0_dev_score(variant))}",
            ]
        )
    header = [
        "setting",
        "task",
        "seed",
        "sparsity",
        "default",
        "setting's",
        "Δ",
        "non-zero after L0",
        "dev after L0",
    ]
    lines = [markdown_table(header, rows)]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for pair in pairs:
        groups.setdefault((pair["method"], pair["setting"]), []).append(pair)
    for (method, setting), group in groups.items():
        deltas = [p["variant"]["metrics"]["score"] - p["default"]["metrics"]["score"] for p in group]
        better = sum(d > 0 for d in deltas)
        tasks = sorted({p["task"] for p in group})
        lines.append(
            f"- {method} with {setting}: Δ {100 * statistics.mean(deltas):+.1f} on average over "
            f"{len(deltas)} paired run{'s' * (len(deltas) > 1)} ({', '.join(tasks)}), higher in {better} of "
            f"{len(deltas)}"
        )
    return "\n".join(lines) + "\n"
