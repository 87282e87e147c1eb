"""GLUE records as table cells: the columns a record fills, which runs the main table holds, the row
order, repeated runs, and the scores per seed and per column that the tables and claims average.
"""

from __future__ import annotations

import statistics
from typing import Any

from deltamix.experiments.glue.methods import DENSE_METHODS, METHODS
from deltamix.experiments.glue.metrics import GLUE_AVERAGE_COLUMNS
from deltamix.experiments.glue.run import MAY_DIFFER_ON_RESTART, VALUES_WHEN_ABSENT
from deltamix.experiments.report.glue_labels import base_method

# The target sparsity of the main table (the paper's 0.5%); runs at other targets are sparsity points.
MAIN_SPARSITY = 0.005
# The table's columns, in order: the tasks of the GLUE average, then WNLI.
COLUMNS = (*GLUE_AVERAGE_COLUMNS, "wnli")


def column_scores(record: dict[str, Any]) -> dict[str, float]:
    """The table column(s) of one record: ``{"rte": score}``, MNLI ``{"mnli-m": .., "mnli-mm": ..}``."""
    metrics = record["metrics"]
    if record["task"] == "mnli":
        columns = {"mnli-m": metrics["score"]}
        if "mismatched_score" in metrics:
            columns["mnli-mm"] = metrics["mismatched_score"]
        return columns
    return {record["task"]: metrics["score"]}


def majority_scores(records: list[dict[str, Any]]) -> dict[str, float]:
    """Column -> the dev set's majority-class score, from the records that carry it (``majority_class``);
    where records of a column were evaluated on different dev examples (``--eval-limit``), the value
    most of them have."""
    seen: dict[str, list[float]] = {}
    for record in records:
        metrics = record.get("majority_class", {}).get("metrics")
        if metrics:
            for column, score in column_scores({"task": record["task"], "metrics": metrics}).items():
                seen.setdefault(column, []).append(score)
    return {column: statistics.mode(scores) for column, scores in seen.items()}


def in_main_table(record: dict[str, Any]) -> bool:
    """Whether a record belongs in the main table: a dense method, or a run at `MAIN_SPARSITY`."""
    return (
        base_method(record["method"]) in DENSE_METHODS
        or abs(record.get("target_sparsity", 0) - MAIN_SPARSITY) < 1e-12
    )


def method_order(method: str) -> tuple[int, str]:
    """Sort key of a row label: its method's place in `METHODS`, then the label."""
    base = base_method(method)  # a relabelled row sorts next to its method's
    return (METHODS.index(base) if base in METHODS else len(METHODS), method)


# Config fields that do not change what a run computes: where it wrote, how often it logged or
# checkpointed, where its data and model files were read from, whether its first stage was adopted
# (bit for bit the same).
_NOT_SETTINGS = frozenset(
    {*MAY_DIFFER_ON_RESTART, "output_dir", "first_stage_from", "data_dir", "model_path"}
)


def _run_key(record: dict[str, Any]) -> str:
    """What makes two records the same run: task, method, model, seed, target sparsity and the settings of
    its config (see `_NOT_SETTINGS`)."""
    config = {**VALUES_WHEN_ABSENT, **record.get("config", {})}
    settings = {k: v for k, v in config.items() if k not in _NOT_SETTINGS}
    identity = [record.get(k) for k in ("task", "method", "model", "seed", "target_sparsity")]
    return repr((identity, sorted((k, repr(v)) for k, v in settings.items())))


def latest_of_repeated_runs(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Keep only the latest record (``finished_at``) of each run recorded more than once, so a run
    done again (its folder deleted, or run on another machine too) counts once toward mean ± sd.

    Returns:
        The records kept, in their order, and how many were dropped.
    """
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        key = _run_key(record)
        if key not in latest or record.get("finished_at", "") >= latest[key].get("finished_at", ""):
            latest[key] = record
    kept_ids = {id(record) for record in latest.values()}
    kept = [record for record in records if id(record) in kept_ids]
    return kept, len(records) - len(kept)


# method -> column -> seed -> scores (one per record; a seed's records are averaged)
SeedScores = dict[str, dict[str, dict[int, list[float]]]]


def per_seed(records: list[dict[str, Any]]) -> SeedScores:
    """method -> column -> seed -> scores, for comparing two rows seed by seed."""
    table: SeedScores = {}
    for record in records:
        for column, score in column_scores(record).items():
            by_seed = table.setdefault(record["method"], {}).setdefault(column, {})
            by_seed.setdefault(record["seed"], []).append(score)
    return table


def per_column(by_seed: SeedScores) -> dict[str, dict[str, list[float]]]:
    """method -> column -> scores (one per record), the seeds of `per_seed` pooled."""
    return {
        method: {column: [s for scores in seeds.values() for s in scores] for column, seeds in row.items()}
        for method, row in by_seed.items()
    }


def average(scores: dict[str, list[float]], columns: list[str]) -> float | None:
    """The GLUE average of the means over ``columns`` (None when a column is missing)."""
    averaged = [c for c in columns if c in GLUE_AVERAGE_COLUMNS]
    if not averaged or any(c not in scores for c in averaged):
        return None
    return statistics.mean(statistics.mean(scores[c]) for c in averaged)
