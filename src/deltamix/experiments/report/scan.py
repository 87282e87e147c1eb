"""The SCAN section of results/README.md: method x split exact match (mean ± sd over seeds) and a bar plot.

Everything comes from the records in ``results/scan.jsonl`` (written by
:func:`deltamix.experiments.scan.run.run_scan`). Runs are compared only within the same model and training
budget (one table and one plot per such group); quick runs on a slice of the data
(``train_limit``/``test_limit``) are left out. The paper's numbers are shown beside ours as anchors.
Where a model was trained at several budgets, exact match is also tabled and plotted against the
number of training steps (precisions pooled: bf16 and fp32 agree within the seed spread, see
results/precision/).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from deltamix.core.io import atomic_path
from deltamix.experiments.report.common import group_by, markdown_table, mean_sd
from deltamix.experiments.report.translation import method_label
from deltamix.experiments.scan.run import AUGMENTATIONS, SPLITS

# Exact match (%) reported by Guo, Kim and Rush (2020) / Andreas (2020) for the LSTM SCAN model.
PAPER = {
    ("none", "addprim_jump"): "0–1",
    ("geca", "addprim_jump"): "87",
    ("geca", "template_around_right"): "82",
    ("geca+seqmix", "addprim_jump"): "98",
    ("geca+seqmix", "template_around_right"): "89",
}


def _is_full_run(record: dict[str, Any]) -> bool:
    run = record.get("config", {}).get("run", {})
    return run.get("train_limit") is None and run.get("test_limit") is None


def _budget(record: dict[str, Any]) -> tuple[str, int, str]:
    """(model, steps, precision): runs are compared within one such group (fp32 where unrecorded)."""
    config = record.get("config", {})
    model = config.get("run", {}).get("model", record.get("model") or "?")
    return model, int(config.get("steps", 0)), config.get("precision", "fp32")


def _save(fig: Any, path: Path) -> None:
    """Write a matplotlib figure as a PNG, atomically (a reader never sees half a PNG), and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _plot(
    cells: dict[tuple[str, str], list[float]], methods: list[str], splits: list[str], path: Path, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / len(splits)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(methods), 3.6))
    for k, split in enumerate(splits):
        xs, means, sds = [], [], []
        for i, method in enumerate(methods):
            values = [100 * v for v in cells.get((method, split), [])]
            if values:
                xs.append(i + (k - (len(splits) - 1) / 2) * width)
                means.append(statistics.mean(values))
                sds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
        ax.bar(xs, means, width, yerr=sds, capsize=3, label=split)
    ax.set_xticks(range(len(methods)), methods, rotation=20, ha="right")
    ax.set_ylabel("exact match on test (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    _save(fig, path)


def _curves(group: list[dict[str, Any]]) -> dict[tuple[str, str], dict[int, list[float]]]:
    """(method label, split) -> steps -> exact-match values (fractions) of the group's records."""
    curves: dict[tuple[str, str], dict[int, list[float]]] = {}
    for record in group:
        steps = int(record.get("config", {}).get("steps", 0))
        curve = curves.setdefault((method_label(record), record["task"]), {})
        curve.setdefault(steps, []).append(record["main_value"])
    return curves


def _plot_steps(curves: dict[tuple[str, str], dict[int, list[float]]], splits: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(splits), figsize=(4.2 * len(splits), 3.6), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=True):
        for (method, curve_split), curve in sorted(curves.items()):
            if curve_split != split or len(curve) < 2:
                continue
            steps = sorted(curve)
            means = [100 * statistics.mean(curve[s]) for s in steps]
            sds = [100 * statistics.stdev(curve[s]) if len(curve[s]) > 1 else 0.0 for s in steps]
            ax.errorbar(steps, means, yerr=sds, marker="o", capsize=3, label=method)
        ax.set_xlabel("training steps (batch 32)")
        ax.set_ylabel("exact match on test (%)")
        ax.set_ylim(0, 100)
        ax.set_title(split, fontsize=10)
        ax.legend(fontsize=7)
    _save(fig, path)


def _steps_section(full: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Exact match against training steps for each model trained at two or more budgets."""
    lines: list[str] = []
    for model, group in sorted(group_by(full, lambda r: _budget(r)[0]).items()):
        curves = {key: curve for key, curve in _curves(group).items() if len(curve) > 1}
        if not curves:
            continue
        budgets = sorted({steps for curve in curves.values() for steps in curve})
        splits = [s for s in SPLITS if any(k[1] == s for k in curves)]
        rows = [
            [method, split, *(mean_sd(curve.get(steps, []), scale=100) for steps in budgets)]
            for split in splits
            for (method, curve_split), curve in sorted(curves.items())
            if curve_split == split
        ]
        plot = f"scan_{model}_steps.png"
        _plot_steps(curves, splits, out_dir / plot)
        lines += [
            f"### {model}: exact match against training steps\n",
            "Methods trained at two or more budgets, all precisions pooled; mean ± sd (seeds).\n",
            markdown_table(["method", "split", *(f"{steps} steps" for steps in budgets)], rows),
            f"![SCAN {model} exact match against steps]({plot})\n",
        ]
    return lines


def render(records: list[dict[str, Any]], out_dir: Path) -> str:
    """The Markdown SCAN section; writes one PNG per (model, budget) group into ``out_dir``."""
    full = [r for r in records if _is_full_run(r)]
    lines = [
        "## SCAN compositional generalisation (SeqMix)\n",
        "Exact-match accuracy (%) on the test set of each split, mean ± sd (number of seeds). "
        "Produced by `deltamix seqmix scan --split S --augment A --seed N`; the paper's numbers "
        "(LSTM, much longer training) are in brackets.\n",
    ]
    if len(full) < len(records):
        lines.append(f"{len(records) - len(full)} quick run(s) on a slice of the data are not shown.\n")
    for (model, steps, precision), group in sorted(group_by(full, _budget).items()):
        cells: dict[tuple[str, str], list[float]] = {}
        for record in group:
            cells.setdefault((method_label(record), record["task"]), []).append(record["main_value"])
        methods = [m for m in AUGMENTATIONS if any(k[0] == m for k in cells)]
        methods += sorted({m for m, _ in cells} - set(methods))
        splits = [s for s in SPLITS if any(k[1] == s for k in cells)]
        epochs = statistics.mean(r["config"].get("epochs", 0.0) for r in group)
        minutes = statistics.mean((r.get("train_seconds") or 0.0) / 60 for r in group)
        trained = "" if precision == "fp32" else f", {precision}"
        title = f"{model}, {steps} steps{trained} (~{epochs:.1f} epochs, ~{minutes:.0f} min per run)"
        rows = []
        for method in methods:
            row = [method]
            for split in splits:
                cell = mean_sd(cells.get((method, split), []), scale=100)
                if (method, split) in PAPER:
                    cell += f" [{PAPER[method, split]}]"
                row.append(cell)
            rows.append(row)
        plot = f"scan_{model}_{steps}{'' if precision == 'fp32' else '_' + precision}.png"
        _plot(cells, methods, splits, out_dir / plot, title)
        lines += [f"### {title}\n", markdown_table(["method", *splits], rows), f"![SCAN {title}]({plot})\n"]
    lines += _steps_section(full, out_dir)
    return "\n".join(lines)


# The papers' GECA + SeqMix exact match (%) per split: the goal of a long-budget comparison.
GOALS = {"addprim_jump": 95.0, "template_around_right": 89.0}
BASELINE_OF = {"geca+seqmix": "geca", "seqmix": "none"}


def _goal_line(title: str, split: str, method: str, baseline: str, cells: dict) -> str:
    """One claim line: ``method`` against ``baseline`` on ``split``, paired by seed where both ran."""
    ours, theirs = cells[(method, split)], cells[(baseline, split)]
    pairs = [(ours[s], theirs[s]) for s in sorted(set(ours) & set(theirs))]
    mean, baseline_mean = (statistics.mean(values.values()) * 100 for values in (ours, theirs))
    wins = sum(a > b for a, b in pairs)
    line = (
        f"SCAN {split} ({title}): {method} above {baseline}: {mean:.1f} vs {baseline_mean:.1f} "
        f"(Δ {mean - baseline_mean:+.1f}; {len(ours)} vs {len(theirs)} seeds, "
        f"higher in {wins} of {len(pairs)} seed pairs): {'met' if pairs and wins == len(pairs) else 'not met'}"
    )
    if method.startswith("geca+seqmix") and split in GOALS:
        line += f"; at least {GOALS[split]:.0f} (the paper's): {'met' if mean >= GOALS[split] else 'not met'}"
    return line + "."


def summary(records: list[dict[str, Any]]) -> list[str]:
    """The SCAN goals per (model, budget, precision) group: SeqMix above its baseline (GECA + SeqMix
    above GECA, SeqMix above none) on every seed, and GECA + SeqMix at the paper's 95 / 89."""
    lines = []
    for (model, steps, precision), group in sorted(group_by(filter(_is_full_run, records), _budget).items()):
        cells: dict[tuple[str, str], dict[int, float]] = {}
        for record in group:
            cells.setdefault((method_label(record), record["task"]), {})[int(record["seed"])] = record[
                "main_value"
            ]
        title = f"{model}, {steps} steps" + ("" if precision == "fp32" else f", {precision}")
        for method, split in sorted(cells):
            baseline = BASELINE_OF.get(method.split(" (")[0])
            if baseline and (baseline, split) in cells:
                lines.append(_goal_line(title, split, method, baseline, cells))
    return lines
