"""The plots of the GLUE section, with the numbers behind them: dev score against target sparsity, and
where each task's diff keeps its non-zeros (per layer and per parameter type, as the paper's Figure 2).
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

from deltamix.core.io import atomic_path
from deltamix.experiments.report.common import group_by, markdown_table, mean_sd
from deltamix.experiments.report.glue_labels import base_method
from deltamix.experiments.report.glue_rows import MAIN_SPARSITY, in_main_table, method_order

# The target sparsities the x axis marks (1.0: full fine-tuning).
SPARSITY_GRID = (0.001, 0.0025, 0.005, 0.01, 1.0)


def sparsity_position(sparsity: float) -> float:
    """Where ``sparsity`` sits on the plot's x axis: the index of its `SPARSITY_GRID` entry (evenly
    spaced, so 0.1-1% are not squeezed against 100%), log-interpolated between entries.

    >>> sparsity_position(0.005), sparsity_position(1.0)
    (2.0, 4.0)
    """
    import numpy as np

    grid = np.log(np.asarray(SPARSITY_GRID))
    return float(np.interp(np.log(sparsity), grid, np.arange(len(SPARSITY_GRID))))


def _plotted_sparsity(record: dict[str, Any]) -> float:
    """The sparsity a run is plotted at: full fine-tuning at 100%, diff pruning at its target."""
    return 1.0 if record["method"] == "full" else record["target_sparsity"]


def _curve_points(
    records: list[dict[str, Any]], labelled: bool = False
) -> dict[tuple[str, str], dict[float, list[float]]] | None:
    """(task, method) -> plotted sparsity -> dev scores x 100 (one per seed) of the sparsity curves:
    diff pruning methods and full fine-tuning at the plain rows' settings; with ``labelled``, also the rows of
    other settings (relabelled by `label_other_settings`) that have a point off the main sparsity.
    None with fewer than two sparsities."""
    curves = [
        r
        for r in records
        if (r["method"].startswith("diffprune") or r["method"] == "full")
        and (labelled or base_method(r["method"]) == r["method"])
    ]
    if len({_plotted_sparsity(r) for r in curves}) < 2:
        return None
    return {
        (task, method): {
            x: [100 * r["metrics"]["score"] for r in at_x]
            for x, at_x in group_by(runs, _plotted_sparsity).items()
        }
        for (task, method), runs in group_by(curves, lambda r: (r["task"], r["method"])).items()
        if base_method(method) == method or not all(in_main_table(r) for r in runs)
    }


def sparsity_table(records: list[dict[str, Any]]) -> str | None:
    """The numbers behind the sparsity plot, and the curves of other settings (labelled rows): one row
    per task and method, one column per target sparsity, each cell mean ± sd (seeds), so a point of
    one seed is told from a mean of several."""
    points = _curve_points(records, labelled=True)
    if points is None:
        return None
    sparsities = sorted({x for by_sparsity in points.values() for x in by_sparsity})
    rows = [
        [task, method, *(mean_sd(points[task, method].get(x, [])) for x in sparsities)]
        for task, method in sorted(points, key=lambda key: (key[0], method_order(key[1])))
    ]
    return markdown_table(["task", "method", *(f"{100 * x:g}%" for x in sparsities)], rows)


def sparsity_plot(records: list[dict[str, Any]], out_dir: Path, slug: str) -> str | None:
    """Dev score vs target sparsity per task (diff pruning methods, full fine-tuning at 100%).

    One colour per method in every panel and one legend for the figure; the methods at one sparsity
    are spread a little sideways so their error bars (sd over seeds) do not hide each other. Runs of
    other settings (relabelled by `label_other_settings`) are left out.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = _curve_points(records)
    if points is None:
        return None
    tasks = sorted({task for task, _ in points})
    methods = sorted({method for _, method in points}, key=method_order)
    colours = {method: plt.get_cmap("tab10")(i % 10) for i, method in enumerate(methods)}
    spread = 0.3 / max(1, len(methods) - 1)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.0), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for rank, method in enumerate(methods):
            if (task, method) not in points:
                continue
            xs = sorted(points[task, method])
            scores = [points[task, method][x] for x in xs]
            offset = (rank - (len(methods) - 1) / 2) * spread
            ax.errorbar(
                [sparsity_position(x) + offset for x in xs],
                [statistics.mean(values) for values in scores],
                yerr=[statistics.stdev(values) if len(values) > 1 else 0.0 for values in scores],
                marker="o",
                capsize=3,
                color=colours[method],
                label=method,
            )
        ax.set_xticks(range(len(SPARSITY_GRID)), [f"{100 * s:g}%" for s in SPARSITY_GRID])
        ax.set_xlim(-0.5, len(SPARSITY_GRID) - 0.5)
        ax.set_title(task)
        ax.set_xlabel("target sparsity (share of parameters kept)")
        ax.set_ylabel("dev score")
        ax.grid(axis="y", alpha=0.3)
    handles = [plt.Line2D([], [], color=colours[m], marker="o", linestyle="-", label=m) for m in methods]
    fig.legend(handles=handles, loc="lower center", ncol=min(3, len(methods)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 * ((len(methods) + 2) // 3) + 0.02, 1, 1))
    path = out_dir / f"glue_sparsity_{slug}.png"
    with atomic_path(path) as tmp:  # a reader never sees half a PNG
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path.name


def layer_of(name: str) -> str:
    """Layer label of a parameter name: ``emb``, ``L0``..``L{n}``, ``pooler`` or ``other``."""
    if match := re.search(r"\.layers?\.(\d+)\.", name):
        return f"L{match.group(1)}"
    if "embed" in name:
        return "emb"
    return "pooler" if "pooler" in name else "other"


def _layer_rank(label: str) -> tuple[int, str]:
    """Sort key of layer labels: emb, L0, L1, ..., pooler, other."""
    if label == "emb":
        return (-1, label)
    if label.startswith("L") and label[1:].isdigit():
        return (int(label[1:]), label)
    return (10**6 if label == "pooler" else 10**6 + 1, label)


def kind_of(name: str) -> str:
    """Parameter type of a (BERT-style) parameter name, e.g. ``query``, ``ffn-in``, ``bias``."""
    if "LayerNorm" in name or "layer_norm" in name or ".norm" in name:
        return "layernorm"
    if name.endswith(".bias"):
        return "bias"
    for needle, kind in (
        ("word_embeddings", "word-emb"),
        ("position_embeddings", "pos-emb"),
        ("token_type_embeddings", "type-emb"),
        ("query", "query"),
        ("key", "key"),
        ("value", "value"),
        ("attention.output", "attn-out"),
        ("intermediate", "ffn-in"),
        ("output.dense", "ffn-out"),
        ("pooler", "pooler"),
    ):
        if needle in name:
            return kind
    return "other"


def location_plot(records: list[dict[str, Any]], method: str, out_dir: Path, slug: str) -> str | None:
    """Share of non-zeros per layer and per parameter type, one row per task (paper's Figure 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in records if r["method"] == method and r.get("tensor_stats") and in_main_table(r)]
    if not runs:
        return None
    by_task = group_by(runs, lambda r: r["task"])
    tasks = sorted(by_task)
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 1.9 * len(tasks) + 0.6), squeeze=False)
    for row, task in enumerate(tasks):
        for col, label_of in enumerate((layer_of, kind_of)):
            counts: dict[str, int] = {}
            for record in by_task[task]:
                for name, (nnz, _) in record["tensor_stats"].items():
                    counts[label_of(name)] = counts.get(label_of(name), 0) + nnz
            total = sum(counts.values()) or 1
            labels = sorted(counts, key=_layer_rank if col == 0 else str)
            ax = axes[row][col]
            ax.bar(labels, [100 * counts[label] / total for label in labels])
            ax.set_ylabel(f"{task}\n% of nnz")
            ax.tick_params(axis="x", labelsize=7, rotation=45)
        axes[row][0].set_title("by layer" if row == 0 else "")
        axes[row][1].set_title("by parameter type" if row == 0 else "")
    fig.suptitle(f"{method}: where the non-zeros of each task's diff are (t = {100 * MAIN_SPARSITY:g}%)")
    fig.tight_layout()
    path = out_dir / f"glue_nnz_{method}_{slug}.png"
    with atomic_path(path) as tmp:  # a reader never sees half a PNG
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path.name
