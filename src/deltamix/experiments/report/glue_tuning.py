"""The GLUE section of tuned against tuned: each method's learning rate chosen on a held-out slice of
train, then that setting's seeds on dev, beside each task's majority-class score.

The records are the runs that chose their checkpoints on the held-out slice (``select_on`` "holdout",
e.g. from ``experiments/glue_tuned.sh``); runs that selected on dev stay in the main table. For each
method, task and setting other than the learning rate, the candidates are its learning rates: the one
with the best held-out score at the tuning seed (the smallest seed every candidate ran) is chosen, and
its dev scores over all its seeds are the row's cell. The dev set never takes part in the choice, so the
dev score is not the best of several looks. A result within `CHANCE_MARGIN` of the majority class is
called at chance; a task where every method is at chance is left out of the claims.
(`deltamix.experiments.report.glue_tuned` makes the same choice among run folders, for the queue.)
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from deltamix.experiments.glue.metrics import GLUE_AVERAGE_COLUMNS
from deltamix.experiments.report.common import group_by, markdown_table, mean_sd
from deltamix.experiments.report.glue_claims import CLAIMS, claim_lines
from deltamix.experiments.report.glue_labels import (
    default_l0_setting,
    l0_setting,
    setting_text,
    training_setting_changes,
)
from deltamix.experiments.report.glue_rows import COLUMNS, column_scores, majority_scores, method_order

# A tuned result less than this (x 100) above the majority-class score counts as at chance.
CHANCE_MARGIN = 1.0


def holdout_selected(record: dict[str, Any]) -> bool:
    """Whether a GLUE record's run chose its checkpoints on a held-out slice (a record without
    ``select_on`` selected on dev)."""
    return record.get("config", {}).get("select_on", "dev") == "holdout"


def _lr(record: dict[str, Any]) -> float:
    return record.get("config", {}).get("resolved_lr") or 0.0


def setting_parts(record: dict[str, Any]) -> tuple[str, ...]:
    """The settings of a tuned run other than its learning rate that differ from the command's defaults,
    as label parts (``("epochs 1", "train examples 64")``): runs that differ only in their learning rate
    compete for one row."""
    parts = [c for c in training_setting_changes(record) if not c.startswith("lr ")]
    setting = l0_setting(record)
    if setting is not None and setting != default_l0_setting(record):
        parts.insert(0, setting_text(setting))
    return tuple(parts)


def candidate_labels(records: list[dict[str, Any]]) -> dict[int, str]:
    """``id(record)`` -> its row: the method, plus its `setting_parts` where they are not those of the
    method's plain row (the defaults where some run has them, else the newest run's: a study of quick
    runs only stays unlabelled, as in the main table)."""
    parts = {id(r): setting_parts(r) for r in records}
    plain: dict[str, tuple[str, ...]] = {}
    for method, runs in group_by(records, lambda r: r["method"]).items():
        defaults = [r for r in runs if parts[id(r)] == ()]
        plain[method] = () if defaults else parts[id(max(runs, key=lambda r: r.get("finished_at", "")))]
    return {
        id(r): r["method"]
        if parts[id(r)] == plain[r["method"]]
        else f"{r['method']} ({', '.join(parts[id(r)])})"
        for r in records
    }


def holdout_score(record: dict[str, Any]) -> float | None:
    """The held-out score (the main metric's) of a tuned run, or None where it has none."""
    return record["metrics"].get("holdout_score")


@dataclass
class TunedChoice:
    """One method's tuning on one task: the candidates' held-out scores and the chosen rate's seeds.

    Attributes:
        label: the row (`candidate_labels`).
        task: the GLUE task.
        holdout: learning rate -> held-out score at ``tuning_seed`` (mean over its seeds where no seed
            is common to all rates).
        tuning_seed: the seed the rates were compared on, or None.
        lr: the chosen learning rate.
        runs: the chosen rate's records, by seed.
    """

    label: str
    task: str
    holdout: dict[float, float]
    tuning_seed: int | None
    lr: float
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)


def choose(records: list[dict[str, Any]]) -> list[TunedChoice]:
    """The tuned setting of each row and task among ``records`` (one model's held-out-selected runs,
    repeats removed): the learning rate of best held-out score at the tuning seed (ties: the smaller
    rate)."""
    choices = []
    labels = candidate_labels(records)
    for (label, task), runs in group_by(records, lambda r: (labels[id(r)], r["task"])).items():
        by_lr: dict[float, dict[int, dict[str, Any]]] = {}
        for record in runs:
            if holdout_score(record) is not None:
                by_lr.setdefault(_lr(record), {})[record["seed"]] = record
        if not by_lr:
            continue
        common = set.intersection(*(set(seeds) for seeds in by_lr.values()))
        tuning_seed = min(common) if common else None
        holdout = {
            lr: holdout_score(seeds[tuning_seed])
            if tuning_seed is not None
            else statistics.mean(holdout_score(r) for r in seeds.values())
            for lr, seeds in sorted(by_lr.items())
        }
        best = max(holdout, key=lambda lr: (holdout[lr], -lr))
        choices.append(
            TunedChoice(label, task, holdout, tuning_seed, best, dict(sorted(by_lr[best].items())))
        )
    return sorted(choices, key=lambda c: (c.task, method_order(c.label)))


def _tables(choices: list[TunedChoice]):
    """(label -> column -> dev scores of the chosen seeds, label -> column -> seed -> [score])."""
    table: dict[str, dict[str, list[float]]] = {}
    by_seed: dict[str, dict[str, dict[int, list[float]]]] = {}
    for choice in choices:
        for seed, record in choice.runs.items():
            for column, score in column_scores(record).items():
                table.setdefault(choice.label, {}).setdefault(column, []).append(score)
                by_seed.setdefault(choice.label, {}).setdefault(column, {})[seed] = [score]
    return table, by_seed


def at_chance(scores: list[float], majority: float | None) -> bool:
    """Whether a mean dev score is less than `CHANCE_MARGIN` (x 100) above the majority-class score."""
    return majority is not None and 100 * (statistics.mean(scores) - majority) < CHANCE_MARGIN


def _columns(table: dict[str, dict[str, list[float]]]) -> list[str]:
    """The table's columns that some row has, in `COLUMNS` order."""
    return [c for c in COLUMNS if any(c in row for row in table.values())]


def _chance_notes(
    table: dict[str, dict[str, list[float]]], columns: list[str], majority: dict[str, float]
) -> tuple[list[str], list[str]]:
    """(one line per task naming the plain rows at chance, the columns where some plain row is above)."""
    notes, above = [], []
    for column in columns:
        rows = {m: row[column] for m, row in table.items() if column in row and " (" not in m}
        if not rows or column not in majority:
            above.append(column)
            continue
        low = sorted(
            (m for m, scores in rows.items() if at_chance(scores, majority[column])), key=method_order
        )
        if len(low) == len(rows):
            notes.append(
                f"- {column}: no method gets above chance (every tuned row is within {CHANCE_MARGIN:g} point of "
                f"the majority class, {100 * majority[column]:.1f}); the claims leave {column} out."
            )
            continue
        above.append(column)
        if low:
            notes.append(
                f"- {column}: at chance (within {CHANCE_MARGIN:g} point of the majority class, "
                f"{100 * majority[column]:.1f}): {', '.join(low)}."
            )
    return notes, above


def tuned_claims(records: list[dict[str, Any]]) -> list[str]:
    """The `CLAIMS` on the tuned rows (chosen rates, all their seeds), over the tasks where some method
    is above chance."""
    choices = choose(records)
    table, by_seed = _tables(choices)
    columns = _columns(table)
    _, above = _chance_notes(table, columns, majority_scores(records))
    return claim_lines(table, [c for c in above if c in GLUE_AVERAGE_COLUMNS], by_seed, CLAIMS)


# What the tuned table shows; {rates}: how many learning rates each method and task tried.
_TUNED_NOTE = (
    "Each method's learning rate (the first stage's; diff pruning: the diff weights') is chosen by its "
    "held-out score at the tuning seed, every stage's epoch too; the cell is the dev score x 100, mean ± "
    "sd over the chosen rate's seeds, each evaluated on dev once. majority class: always answering the "
    "dev set's most frequent class (STS-B: a constant, correlation 0). Rates per method and task: "
    "{rates}.\n"
)
_DETAIL_HEADER = [
    "task",
    "method",
    "lr: held-out score (chosen in bold)",
    "tuning seed",
    "seeds",
    "dev per seed",
]


def render(records: list[dict[str, Any]]) -> str | None:
    """The tuned section of one model's held-out-selected records (Markdown), or None without any."""
    choices = choose(records)
    if not choices:
        return None
    table, by_seed = _tables(choices)
    columns = _columns(table)
    majority = majority_scores(records)
    notes, above = _chance_notes(table, columns, majority)
    claims = claim_lines(table, [c for c in above if c in GLUE_AVERAGE_COLUMNS], by_seed, CLAIMS)
    rates_tried = sorted({len(c.holdout) for c in choices})
    lines = [
        "#### Tuned against tuned (learning rate chosen on a held-out slice of train)\n",
        _TUNED_NOTE.format(rates=", ".join(str(n) for n in rates_tried)),
        _score_table(table, columns, majority),
        "",
        markdown_table(_DETAIL_HEADER, [_detail_row(choice, columns) for choice in choices]),
        "",
    ]
    if notes:
        lines += [
            "Above chance or not (a mean less than 1 point above the majority class is at chance):\n",
            *notes,
            "",
        ]
    if claims:
        lines += [
            "Claims, tuned against tuned (the chosen settings; averages over the tasks above chance both rows "
            "have, with their seeds):\n",
            *claims,
            "",
        ]
    return "\n".join(lines)


def _score_table(
    table: dict[str, dict[str, list[float]]], columns: list[str], majority: dict[str, float]
) -> str:
    """The tuned rows' dev scores (mean ± sd over the chosen rate's seeds), then the majority class."""
    rows = [
        [label, *[mean_sd(table[label].get(c, []), scale=100) for c in columns]]
        for label in sorted(table, key=method_order)
    ]
    rows.append(["majority class", *[f"{100 * majority[c]:.1f}" if c in majority else "–" for c in columns]])
    return markdown_table(["method", *columns], rows)


def _detail_row(choice: TunedChoice, columns: list[str]) -> list[str]:
    """One tuning: each rate's held-out score (the chosen one in bold), the seeds, and dev per seed."""
    rates = ", ".join(
        f"**{lr:g}: {100 * score:.1f}**" if lr == choice.lr else f"{lr:g}: {100 * score:.1f}"
        for lr, score in choice.holdout.items()
    )
    dev = [column_scores(r) for r in choice.runs.values()]
    shown = "; ".join(
        f"{c} " + ", ".join(f"{100 * d[c]:.1f}" for d in dev) for c in columns if all(c in d for d in dev)
    )
    return [
        choice.task,
        choice.label,
        rates,
        "–" if choice.tuning_seed is None else str(choice.tuning_seed),
        ",".join(str(s) for s in choice.runs),
        shown,
    ]
