"""The benchmarks section of results/README.md: one table per benchmark (record ``task``), rows = methods.

Generic over benchmarks: columns are the union of the records' metric names in first-seen order;
for each (task, method) the latest record is shown, with the number of runs recorded. A metric ``m``
recorded with ``m_min`` and ``m_max`` (a paired ratio's spread over rounds, bench_diffprune.py) is
shown in one cell as ``median (min–max)``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from deltamix.experiments.report.common import group_by, markdown_table

# Benchmarks with more metrics than this are shown transposed (a row per metric).
MAX_METRIC_COLUMNS = 12


def _format(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3g}"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


# The performance targets the benchmarks are checked against: (benchmark task, method, metric, what it
# measures, at most).
# "at most" is a number, or the name of another method of the same task whose metric is the bound.
TARGETS = (
    ("diffprune-train-minilm", "diff-pruning-l0", "step_vs_full", "L0 step vs full fine-tuning, MiniLM", 1.1),
    ("diffprune-train-minilm-seq24", "diff-pruning-l0", "step_vs_full", "L0 step vs full fine-tuning, MiniLM, 8 x 24 tokens", 1.3),
    ("diffprune-train-bert-base", "diff-pruning-l0", "step_vs_full", "L0 step vs full fine-tuning, BERT-base", 1.1),
    ("diffprune-train-minilm", "diff-pruning-l0-bf16", "step_vs_full", "L0 step in bf16 vs full FT in fp32, MiniLM", 0.7),
    ("diffprune-train-minilm-seq24", "diff-pruning-l0-bf16", "step_vs_full", "L0 step in bf16 vs full FT in fp32, MiniLM, 8 x 24 tokens", 0.7),
    ("diffprune-train-minilm", "diff-pruning-fixed-mask", "step_vs_full", "fixed-mask step vs full FT, MiniLM", "peft-lora"),
    ("diffprune-train-minilm-seq24", "diff-pruning-fixed-mask", "step_vs_full", "fixed-mask step vs full FT, MiniLM, 8 x 24 tokens", "peft-lora"),
    ("diffprune-train-bert-base", "diff-pruning-fixed-mask", "step_vs_full", "fixed-mask step vs full FT, BERT-base", 1.1),
    ("diffprune-file-minilm", "lossless", "bytes_per_nnz", "diff file bytes per non-zero (lossless)", 6.0),
    ("diffprune-switch-minilm", "switch", "ms", "task switch on MiniLM (ms)", 10.0),
    ("seqmix-step-time", "seqmix", "step_time_ratio", "SeqMix step vs no augmentation", 1.05),
)  # fmt: skip
# Targets a figure must reach (same fields; "at least" instead of "at most"): issue 31's throughput.
AT_LEAST_TARGETS = (
    ("train-throughput-multi30k", "default", "speedup", "seq2seq training speed-up of the defaults, Multi30k", 2.5),
    ("train-throughput-scan", "default", "speedup", "seq2seq training speed-up of the defaults, SCAN", 2.0),
    ("train-throughput-multi30k", "token-batches", "speedup", "token batches vs sentence batches per token, Multi30k", 1.0),
)  # fmt: skip


def _with_spread(metrics: dict[str, Any], name: str) -> str:
    """``metrics[name]``, followed by ``(min–max)`` where ``name_min`` and ``name_max`` are recorded."""
    low, high = metrics.get(f"{name}_min"), metrics.get(f"{name}_max")
    if low is None or high is None or metrics.get(name) is None:
        return _format(metrics.get(name))
    return f"{_format(metrics[name])} ({_format(low)}–{_format(high)})"


def _load(record: dict[str, Any]) -> str:
    """ "load average / cores" of the machine when the record was measured ("–" if not recorded)."""
    load = record.get("metrics", {}).get("load_average")
    cores = (record.get("hardware") or {}).get("cpu_count")
    if load is None:
        return "–"
    return f"{load:.1f}" + (f" / {cores}" if cores else "")


def _target_row(
    latest: dict[tuple[Any, Any], dict[str, Any]], target: tuple, at_least: bool
) -> list[str] | None:
    """The row of one target against the latest records (None where nothing measures it)."""
    task, method, metric, label, limit = target
    record = latest.get((task, method), {})
    value = record.get("metrics", {}).get(metric)
    if value is None:
        return None
    sign = "≥" if at_least else "≤"
    if isinstance(limit, str):  # another method's figure of the same benchmark
        bound = latest.get((task, limit), {}).get("metrics", {}).get(metric)
        if bound is None:
            return None
        goal = f"{sign} {limit} ({_format(bound)})"
    else:
        bound, goal = limit, f"{sign} {limit:g}"
    met = value >= bound if at_least else value <= bound
    return [
        label,
        _with_spread(record.get("metrics", {}), metric),
        goal,
        "met" if met else "**missed**",
        _load(record),
        str(record.get("finished_at", "–"))[:10],
    ]


def targets_table(records: list[dict[str, Any]]) -> str | None:
    """Each target of :data:`TARGETS` and :data:`AT_LEAST_TARGETS` against the latest record that
    measures it (None if none does).

    The load column says how busy the machine was then (a ratio measured on a loaded machine is noisier).
    """
    latest = {(r.get("task"), r.get("method")): r for r in records}  # append order: the last one wins
    candidates = [_target_row(latest, target, False) for target in TARGETS]
    candidates += [_target_row(latest, target, True) for target in AT_LEAST_TARGETS]
    rows = [row for row in candidates if row is not None]
    header = ["target", "latest", "goal", "", "load average / cores", "measured"]
    return markdown_table(header, rows) if rows else None


def render(records: list[dict[str, Any]], out_dir: Path) -> str:
    """Markdown tables of every benchmark record (``out_dir`` is unused: no plots)."""
    lines = ["## Benchmarks\n"]
    summary = targets_table(records)
    if summary:
        lines += ["Targets, from the latest record of each benchmark (details below):\n", summary]
    for task, task_records in group_by(records, lambda r: r.get("task", "?")).items():
        latest: dict[str, dict[str, Any]] = {}
        runs: dict[str, int] = {}
        for record in task_records:  # records are in append order: the last one wins
            method = str(record.get("method", "?"))
            latest[method] = record
            runs[method] = runs.get(method, 0) + 1
        metric_names: list[str] = []
        for record in latest.values():
            for name in record.get("metrics", {}):
                if name not in metric_names:
                    metric_names.append(name)
        spread = {
            n[: -len("_min")] for n in metric_names if n.endswith("_min") and n[:-4] + "_max" in metric_names
        }
        metric_names = [
            n
            for n in metric_names
            if n.removesuffix("_min").removesuffix("_max") not in spread or n in spread
        ]
        if len(metric_names) <= MAX_METRIC_COLUMNS:
            header = ["method", *metric_names, "model", "runs"]
            rows = [
                [
                    method,
                    *(_with_spread(r.get("metrics", {}), n) for n in metric_names),
                    _format(r.get("model")),
                    str(runs[method]),
                ]
                for method, r in latest.items()
            ]
        else:  # too many metrics for one row: one row per metric, one column per method
            header = ["metric", *latest]
            rows = [
                [name, *(_with_spread(r.get("metrics", {}), name) for r in latest.values())]
                for name in metric_names
            ]
            rows.append(["model", *(_format(r.get("model")) for r in latest.values())])
            rows.append(["runs", *(str(runs[method]) for method in latest)])
        newest = max(latest.values(), key=lambda r: str(r.get("finished_at", "")))
        lines.append(f"### {task}\n")
        lines.append(markdown_table(header, rows))
        lines.append(
            f"Latest run: {newest.get('finished_at', '?')}, commit {newest.get('git_commit', '?')}, "
            f"command `{newest.get('command', '?')}`.\n"
        )
    return "\n".join(lines)
