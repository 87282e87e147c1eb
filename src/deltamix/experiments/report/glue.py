"""The GLUE section of results/README.md: method x task table, storage, claims, and two plots.

Everything comes from the records in ``results/glue.jsonl`` (written by :func:`deltamix.experiments.glue.run.run_glue`):
a cell is the mean ± sd over seeds of the task's score x 100 (the mean of its official metrics:
MRPC and QQP accuracy and F1, STS-B Pearson and Spearman; MNLI has a matched and a mismatched
column). Plots: dev score vs target sparsity, and where each task's diff lands (share of non-zeros
per layer and per parameter type, one row per task, as the paper's Figure 2) from the per-tensor
statistics each record carries.

Runs that chose their checkpoints on a held-out slice of train (``select_on`` "holdout") are kept out
of the main table (whose runs selected on dev, the reported score being the best of their dev
evaluations) and get their own section, tuned against tuned (:mod:`deltamix.experiments.report.glue_tuned`). Where
records carry the dev set's majority-class score (``majority_class``), the tables show it as a row.
"""

from __future__ import annotations

import logging
import re
import statistics
from pathlib import Path
from typing import Any

from deltamix.core.io import atomic_path
from deltamix.experiments.glue.methods import DENSE_METHODS, DIFF_METHODS, L0_METHODS, METHODS, PEFT_METHODS
from deltamix.experiments.glue.metrics import GLUE_AVERAGE_COLUMNS
from deltamix.experiments.glue.run import ADDED_SINCE, RESTART_FREE, GlueRunConfig, default_mask_epochs
from deltamix.experiments.report.common import group_by, markdown_table, mean_sd
from deltamix.experiments.report.glue_settings import base_method, render_paired_settings

logger = logging.getLogger(__name__)

MAIN_SPARSITY = 0.005
SPARSITY_GRID = (0.001, 0.0025, 0.005, 0.01, 1.0)
_COLUMNS = (*GLUE_AVERAGE_COLUMNS, "wnli")
_CLAIMS = (
    ("diffprune-structured", "full", "structured diff pruning within 1 point of full fine-tuning", -1.0),
    ("diffprune", "diffprune-nonadaptive", "diff pruning above non-adaptive diff pruning", 0.0),
    ("diffprune", "lora", "diff pruning above LoRA at the same budget", 0.0),
    ("diffprune", "shira", "diff pruning above SHiRA at the same budget", 0.0),
    ("diffprune", "supertuning", "diff pruning above SuperTuning at the same budget", 0.0),
)


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
    """Column -> the dev set's majority-class score, from the records that carry it (``majority_class``,
    recorded since runs could select on a held-out slice); where records of a column were evaluated on
    different dev examples (``--eval-limit``), the value most of them have."""
    seen: dict[str, list[float]] = {}
    for record in records:
        metrics = record.get("majority_class", {}).get("metrics")
        if metrics:
            for column, score in column_scores({"task": record["task"], "metrics": metrics}).items():
                seen.setdefault(column, []).append(score)
    return {column: statistics.mode(scores) for column, scores in seen.items()}


def _in_main_table(record: dict[str, Any]) -> bool:
    return (
        base_method(record["method"]) in DENSE_METHODS
        or abs(record.get("target_sparsity", 0) - MAIN_SPARSITY) < 1e-12
    )


def _method_order(method: str) -> tuple[int, str]:
    base = base_method(method)  # a relabelled row sorts next to its method's
    return (METHODS.index(base) if base in METHODS else len(METHODS), method)


def _l0_lambda(record: dict[str, Any]) -> float | None:
    """The L0 penalty weight a run used (None for methods without one or records before it was kept)."""
    if base_method(record["method"]) not in L0_METHODS:  # relabelled rows too
        return None
    return record.get("config", {}).get("resolved_l0_lambda")


# (lambda, structured penalty, gates clipped apart, (target density, multiplier lr) or None)
L0Setting = tuple[float | None, str | None, bool, tuple[float, float] | None]


def _l0_setting(record: dict[str, Any]) -> L0Setting | None:
    """(lambda, structured penalty form or None, gates clipped apart, (target density, multiplier
    learning rate) or None) of an L0 run; None for other methods. With a target density the lambda is
    unused and given as None.

    Structured runs recorded before ``structured_penalty`` existed used the paper's product; runs
    recorded before ``clip_gates_apart`` existed clipped all gradients together.
    """
    lam = _l0_lambda(record)
    if lam is None:
        return None
    config = record.get("config", {})
    apart = bool(config.get("clip_gates_apart", False))
    density = config.get("l0_target_density")
    if density is not None:
        density, lam = (density, config["multiplier_lr"]), None
    if base_method(record["method"]) != "diffprune-structured":
        return (lam, None, apart, density)
    return (lam, config.get("structured_penalty", "product"), apart, density)


def _setting_text(setting: L0Setting) -> str:
    lam, penalty, apart, density = setting
    return ", ".join(
        part
        for part in (
            f"lambda {lam:g}"
            if density is None
            else f"target density {100 * density[0]:g}%, multiplier lr {density[1]:g}",
            f"{penalty} penalty" if penalty else "",
            "gates clipped apart" if apart else "",
        )
        if part
    )


def default_l0_setting(record: dict[str, Any]) -> L0Setting:
    """The L0 setting that ``deltamix diffprune glue`` gives the record's method and model today, with
    no L0 flags: the embedded MiniLM's or the paper's lambda, the default penalty form, joint clipping."""
    config = record.get("config", {})
    defaults = GlueRunConfig(
        task=record["task"], method=base_method(record["method"]), model=config.get("model")
    )
    structured = base_method(record["method"]) == "diffprune-structured"
    return (
        defaults.resolved_l0_lambda(),
        defaults.structured_penalty if structured else None,
        defaults.clip_gates_apart,
        None if defaults.l0_target_density is None else (defaults.l0_target_density, defaults.multiplier_lr),
    )


# Training settings a run can change with flags, and how a row label names them (lr: the first stage's).
_TRAINING_SETTINGS = (
    ("resolved_lr", "lr"),
    ("head_lr", "head lr"),
    ("alpha_lr", "gate lr"),
    ("resolved_mask_lr", "fixed-mask lr"),
    ("epochs", "epochs"),
    ("mask_epochs", "fixed-mask epochs"),
    ("batch_size", "batch"),
    ("max_length", "max length"),
    ("warmup_ratio", "warmup"),
    ("weight_decay", "weight decay"),
    ("max_grad_norm", "gradient clip"),
    ("max_train_examples", "train examples"),
    ("max_eval_examples", "dev examples"),
    ("max_steps", "max steps"),
)
# Settings of the diff pruning methods only.
_DIFF_ONLY = frozenset({"head_lr", "resolved_mask_lr", "mask_epochs"})


def recorded_mask_lr(record: dict[str, Any]) -> float | None:
    """The fixed-mask rate a diff pruning run used: ``resolved_mask_lr``, or ``mask_lr`` in records
    written before it existed (the rate itself then, 5e-5 by default); None where neither is recorded."""
    config = record.get("config", {})
    return config.get("resolved_mask_lr", config.get("mask_lr"))


def training_setting_changes(record: dict[str, Any]) -> list[str]:
    """The training settings of ``record``'s run that differ from what ``deltamix diffprune glue`` gives
    its task, method and model with no flags, as label parts (``["fixed-mask lr 0.001"]``); [] for
    none. A setting missing from the record's config (recorded before it existed) counts as its default."""
    config = dict(record.get("config", {}))
    if "mask_lr" in config:
        config["resolved_mask_lr"] = recorded_mask_lr(record)
    method = base_method(record["method"])
    defaults = GlueRunConfig(task=record["task"], method=method, model=config.get("model"))
    expected = {name: getattr(defaults, name, None) for name, _ in _TRAINING_SETTINGS}
    expected["resolved_lr"] = defaults.resolved_lr()
    expected["resolved_mask_lr"] = defaults.resolved_mask_lr()
    if config.get("mask_epochs") is not None:  # None: the default for the task's size
        expected["mask_epochs"] = default_mask_epochs(config.get("train_examples", 0))
    changes = []
    for name, text in _TRAINING_SETTINGS:
        if name not in config or (name in _DIFF_ONLY and method not in DIFF_METHODS):
            continue
        if name == "alpha_lr" and method not in L0_METHODS:
            continue
        if config[name] != expected[name]:
            changes.append(f"{text} {config[name]:g}" if config[name] is not None else f"{text} default")
    return changes


def label_other_settings(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` with the runs of other settings relabelled ``method (setting, ...)``: another L0
    setting (``lambda X``, ``P penalty``, ``gates clipped apart``, ``target density D``) or other
    training settings changed by flags (`training_setting_changes`, e.g. ``fixed-mask lr 0.001``).

    The runs with today's defaults keep the method's name, so the table's plain row and the claims are
    about what the command does without flags; an old default (a default changed) or an exploratory
    setting gets its own labelled row instead of being averaged in. A method with no run at today's
    defaults keeps the settings of its newest run as the plain row (a table of quick runs only stays
    unlabelled).
    """

    def plain_of(candidates: list[dict[str, Any]], setting_of, default_of) -> dict[str, Any]:
        """method -> the setting of its plain row: the default where a run has it, else the newest run's."""
        plain: dict[str, Any] = {}
        newest: dict[str, str] = {}
        for record in candidates:
            method, setting = record["method"], setting_of(record)
            if plain.get(method, object()) == default_of(record):
                continue
            stamp = record.get("finished_at", "")
            if setting == default_of(record) or method not in newest or stamp > newest[method]:
                plain[method], newest[method] = setting, stamp
        return plain

    changes = {id(record): tuple(training_setting_changes(record)) for record in records}

    def training_of(record: dict[str, Any]) -> tuple[str, ...]:
        return changes[id(record)]

    plain_training = plain_of(records, training_of, lambda r: ())
    known = [  # an L0 run recorded without its setting does not choose the plain row
        r for r in records if training_of(r) == plain_training[r["method"]] and _l0_setting(r) is not None
    ]
    plain_l0 = plain_of(known, _l0_setting, default_l0_setting)
    out = []
    for record in records:
        l0, training = _l0_setting(record), training_of(record)
        parts = [_setting_text(l0)] if l0 is not None and l0 != plain_l0.get(record["method"]) else []
        parts += list(training) if training != plain_training[record["method"]] else []
        if parts:
            record = {**record, "method": f"{record['method']} ({', '.join(parts)})"}
        out.append(record)
    return out


# Config fields that do not change what a run computes: where it wrote, how often it logged or
# checkpointed, where its data and model files were read from, whether its first stage was adopted
# (bit for bit the same).
_NOT_SETTINGS = frozenset({*RESTART_FREE, "output_dir", "first_stage_from", "data_dir", "model_path"})


def _run_key(record: dict[str, Any]) -> str:
    """What makes two records the same run: task, method, model, seed, target sparsity and the settings of
    its config (see `_NOT_SETTINGS`)."""
    config = {**ADDED_SINCE, **record.get("config", {})}
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


def _per_seed(records: list[dict[str, Any]]) -> SeedScores:
    """method -> column -> seed -> scores, for comparing two rows seed by seed."""
    table: SeedScores = {}
    for record in records:
        for column, score in column_scores(record).items():
            by_seed = table.setdefault(record["method"], {}).setdefault(column, {})
            by_seed.setdefault(record["seed"], []).append(score)
    return table


def _per_column(by_seed: SeedScores) -> dict[str, dict[str, list[float]]]:
    """method -> column -> scores (one per record), the seeds of `_per_seed` pooled."""
    return {
        method: {column: [s for scores in seeds.values() for s in scores] for column, seeds in row.items()}
        for method, row in by_seed.items()
    }


def _seed_matched(by_seed: SeedScores, ours: str, other: str, columns: list[str]) -> str:
    """The two rows compared on the seeds both have, as a claim's note: the mean over ``columns`` of
    each column's mean difference (x 100) over its shared seeds, the pairs per column, and in how many
    pairs ``ours`` is higher; "" where no column has a seed both rows ran.

    With unequal seed counts (one seed of one method against three of another) the difference of the
    means also carries which seeds each row happened to run; matched seeds compare like with like.
    """
    deltas: list[float] = []
    pairs_per_column: list[tuple[str, int]] = []
    higher = 0
    for column in columns:
        ours_seeds, other_seeds = by_seed[ours].get(column, {}), by_seed[other].get(column, {})
        pairs = [
            statistics.mean(ours_seeds[seed]) - statistics.mean(other_seeds[seed])
            for seed in sorted(ours_seeds.keys() & other_seeds.keys())
        ]
        if pairs:
            deltas.append(statistics.mean(pairs))
            pairs_per_column.append((column, len(pairs)))
            higher += sum(pair > 0 for pair in pairs)
    if not deltas:
        return ""
    total = sum(n for _, n in pairs_per_column)
    counts = ", ".join(f"{column} {n}" for column, n in pairs_per_column)
    return (
        f"; seed-matched Δ {100 * statistics.mean(deltas):+.1f} over {counts} "
        f"pair{'s' if total > 1 else ''}, {ours} higher in {higher} of {total}"
    )


def _average(scores: dict[str, list[float]], columns: list[str]) -> float | None:
    """The GLUE average of the means over ``columns`` (None when a column is missing)."""
    averaged = [c for c in columns if c in GLUE_AVERAGE_COLUMNS]
    if not averaged or any(c not in scores for c in averaged):
        return None
    return statistics.mean(statistics.mean(scores[c]) for c in averaged)


def _shared_columns(table: dict[str, dict[str, list[float]]], averaged: list[str]) -> list[str]:
    """The ``averaged`` columns (those of the GLUE average) that every plain method row (no L0-setting
    label) has.

    While a task is run for some methods only (SST-2 takes days on a CPU), the full GLUE average is
    missing from most rows; the average over these columns keeps the rows comparable meanwhile.
    """
    plain = [row for method, row in table.items() if base_method(method) == method]
    return [c for c in averaged if all(c in row for row in plain)]


def _score_table(
    records: list[dict[str, Any]], by_seed: SeedScores
) -> tuple[str, dict[str, dict[str, list[float]]], list[str], list[str]]:
    """The main table's markdown, its scores (method -> column -> one per seed), its columns, and the
    columns of the GLUE average every plain row has (`_shared_columns`). ``by_seed``: the
    records' `_per_seed` scores."""
    table = _per_column(by_seed)
    columns = [c for c in _COLUMNS if any(c in row for row in table.values())]
    averaged = [c for c in columns if c in GLUE_AVERAGE_COLUMNS]
    shared = _shared_columns(table, averaged)
    partial = 0 < len(shared) < len(averaged)
    rows = []
    for method in sorted(table, key=_method_order):
        stored = [r["stored_fraction"] for r in records if r["method"] == method and r.get("stored_fraction")]
        averages = [_average(table[method], columns), *([_average(table[method], shared)] if partial else [])]
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


def _storage_table(records: list[dict[str, Any]]) -> str:
    """Bytes per task (mean over seeds), total over the tasks, and one full model per task."""
    rows = []
    tasks = sorted({r["task"] for r in records})
    for method, group in sorted(
        group_by(records, lambda r: r["method"]).items(), key=lambda x: _method_order(x[0])
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


def _claims(
    table: dict[str, dict[str, list[float]]],
    columns: list[str],
    by_seed: SeedScores,
    claims: tuple[tuple[str, str, str, float], ...] = _CLAIMS,
) -> list[str]:
    """One line per claim ``(ours, other, text, margin)`` whose rows share a GLUE-average column:
    both means over those columns and whether ``ours - other`` (x 100) is above ``margin``, with the
    seed counts and the difference on the seeds both rows ran (`_seed_matched`; the verdict stays the
    paper's, on the means)."""
    lines = []
    for ours, other, claim, margin in claims:
        if ours not in table or other not in table:
            continue
        common = [c for c in columns if c in table[ours] and c in table[other] and c in GLUE_AVERAGE_COLUMNS]
        if not common:
            continue
        a, b = _average(table[ours], common), _average(table[other], common)
        delta = 100 * (a - b)
        verdict = "holds" if delta > margin else "does not hold"
        seeds = ", ".join(f"{c} {len(table[ours][c])} vs {len(table[other][c])}" for c in common)
        matched = _seed_matched(by_seed, ours, other, common)
        lines.append(
            f"- {claim}: {ours} {100 * a:.1f} vs {other} {100 * b:.1f} "
            f"(Δ {delta:+.1f} over {', '.join(common)}; seeds {seeds}{matched}): **{verdict}**"
        )
    return lines


def _setting_goal_claims(
    table: dict[str, dict[str, list[float]]], shared: list[str], by_seed: SeedScores
) -> list[str]:
    """The goal beyond the paper (the `_CLAIMS` of diff pruning against the PEFT methods) for each
    labelled L0 setting of diff pruning (e.g. "diffprune (target density 2%)") that has all the
    ``shared`` columns (those every plain row has), over those columns."""
    if not shared:
        return []
    settings = sorted(
        m
        for m in table
        if m != "diffprune" and base_method(m) == "diffprune" and all(c in table[m] for c in shared)
    )
    claims = tuple(
        (setting, other, text.removeprefix("diff pruning "), margin)
        for setting in settings
        for ours, other, text, margin in _CLAIMS
        if ours == "diffprune" and other in PEFT_METHODS
    )
    return _claims(table, shared, by_seed, claims)


def _improves_on_plain(table: dict[str, dict[str, list[float]]], label: str, columns: list[str]) -> bool:
    """Whether the labelled row ``label`` ("lora (lr 0.001)") scores above its method's plain row on
    average over the GLUE-average ``columns`` both rows have (False where they share none)."""
    plain = table.get(base_method(label), {})
    common = [c for c in columns if c in table[label] and c in plain]
    ours, default = _average(table[label], common), _average(plain, common)
    return ours is not None and default is not None and ours > default


def _baseline_setting_claims(
    table: dict[str, dict[str, list[float]]], columns: list[str], by_seed: SeedScores
) -> list[str]:
    """The goal beyond the paper against each labelled row of a PEFT baseline that scores above the
    baseline's plain row (e.g. "lora (lr 0.001)" from a learning-rate search): plain diff pruning
    against it over the columns both rows have. A baseline tuned as far as diff pruning was is the
    fair comparison, so these lines sit beside the claims; settings that did worse than the default
    (a rate that diverged) would only make the goal look easier and are left out."""
    claims = tuple(
        ("diffprune", label, text, margin)
        for label in sorted(table)
        if label != base_method(label) and _improves_on_plain(table, label, columns)
        for ours, other, text, margin in _CLAIMS
        if ours == "diffprune" and other in PEFT_METHODS and other == base_method(label)
    )
    return _claims(table, columns, by_seed, claims)


def _reproduce(records: list[dict[str, Any]]) -> str:
    rows = []
    key = lambda r: (r["method"], r["task"], r.get("target_sparsity"), r.get("model"))  # noqa: E731
    for (method, task, sparsity, _), runs in sorted(
        group_by(records, key).items(), key=lambda x: (_method_order(x[0][0]), x[0][1], x[0][2] or 0)
    ):
        first = min(runs, key=lambda r: r["seed"])
        parts = first.get("command", "").split()
        if parts:
            parts[0] = Path(parts[0]).name
        # Name the L0 setting the run used even where it was the default: defaults change.
        setting = _l0_setting(first)
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
        # The same for the fixed-mask rate (its default changed on 2026-11-27).
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
    diff pruning methods and full fine-tuning at today's settings; with ``labelled``, also the rows of
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
        if base_method(method) == method or not all(_in_main_table(r) for r in runs)
    }


def _sparsity_table(records: list[dict[str, Any]]) -> str | None:
    """The numbers behind the sparsity plot, and the curves of other settings (labelled rows): one row
    per task and method, one column per target sparsity, each cell mean ± sd (seeds), so a point of
    one seed is told from a mean of several."""
    points = _curve_points(records, labelled=True)
    if points is None:
        return None
    sparsities = sorted({x for by_sparsity in points.values() for x in by_sparsity})
    rows = [
        [task, method, *(mean_sd(points[task, method].get(x, [])) for x in sparsities)]
        for task, method in sorted(points, key=lambda key: (key[0], _method_order(key[1])))
    ]
    return markdown_table(["task", "method", *(f"{100 * x:g}%" for x in sparsities)], rows)


def _sparsity_plot(records: list[dict[str, Any]], out_dir: Path, slug: str) -> str | None:
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
    methods = sorted({method for _, method in points}, key=_method_order)
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


def _location_plot(records: list[dict[str, Any]], method: str, out_dir: Path, slug: str) -> str | None:
    """Share of non-zeros per layer and per parameter type, one row per task (paper's Figure 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in records if r["method"] == method and r.get("tensor_stats") and _in_main_table(r)]
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


def render(records: list[dict[str, Any]], out_dir: Path) -> str:
    """The GLUE section (Markdown); writes its plots into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from deltamix.experiments.report.glue_tuned import holdout_selected

    lines = ["## GLUE (diff pruning and baselines, dev sets)\n"]
    records, repeated = latest_of_repeated_runs(records)
    tuned = [r for r in records if holdout_selected(r)]
    records = [r for r in records if not holdout_selected(r)]
    if repeated:
        lines.append(
            f"{repeated} record(s) repeat a run with the same settings and seed: only the latest of each "
            "run is counted.\n"
        )
    for model, model_records in group_by(records, lambda r: r.get("model") or "?").items():
        model_records = label_other_settings(model_records)
        main = [r for r in model_records if _in_main_table(r)]
        lines.append(f"### {model}\n")
        slug = re.sub(r"[^A-Za-z0-9]+", "-", model).strip("-")[-40:] or "model"
        if main:
            by_seed = _per_seed(main)
            table, scores, columns, shared = _score_table(main, by_seed)
            lines += [
                f"Dev score x 100, mean ± sd (seeds) at target sparsity {100 * MAIN_SPARSITY:g}% "
                "(full, last-layer and BitFit have their own size). A task's score is the mean of its "
                "official metrics (MRPC, QQP: accuracy and F1; STS-B: Pearson and Spearman; CoLA: "
                "Matthews). avg: the paper's GLUE average, the mean of the columns except WNLI, shown "
                "only where a method has every column of the table (while a task has runs of some methods "
                "only, a second average over the columns every unlabelled row has). stored: task-specific values "
                "stored besides the dense head, as a share of the base model's parameters.\n",
                table,
            ]
            settings = {  # the unlabelled rows' settings (all runs of such a row share one)
                r["method"]: setting
                for r in main
                if base_method(r["method"]) == r["method"] and (setting := _l0_setting(r)) is not None
            }
            if settings:
                shown = ", ".join(
                    f"{method} {_setting_text(value)}" for method, value in sorted(settings.items())
                )
                lines.append(f"L0 settings of the runs in the unlabelled diff pruning rows: {shown}.\n")
            claims = _claims(scores, columns, by_seed)
            if claims:
                lines += [
                    "Claims (averages over the columns both methods have; the verdict is on the means, the "
                    "seed-matched Δ the same average over the seeds both methods ran):\n",
                    *claims,
                    "",
                ]
            paired = render_paired_settings(model_records)
            if paired:
                lines += [
                    "Other settings against the plain row's, run by run (same task, seed and target "
                    "sparsity; dev score "
                    "x 100; non-zero after L0: share of the body's parameters the L0 stage left non-zero "
                    "before the projection to the target; dev after L0: the dense gated diff's score "
                    "then):\n",
                    paired,
                ]
            against_tuned = _baseline_setting_claims(scores, columns, by_seed)
            if against_tuned:
                lines += [
                    "Diff pruning against the PEFT baselines' other settings that score above their "
                    "default (the goal beyond the paper against a baseline tuned further, e.g. its learning "
                    "rate; over the columns both rows have, with the seeds each has):\n",
                    *against_tuned,
                    "",
                ]
            goal = _setting_goal_claims(scores, shared, by_seed)
            if goal:
                lines += [
                    "Other L0 settings against the PEFT baselines (the goal beyond the paper; settings run on "
                    "every task all unlabelled rows have, averaged over those tasks, with the seeds each has):\n",
                    *goal,
                    "",
                ]
            lines += ["Storage (file bytes as written; fp32 full model = 4 bytes per parameter):\n"]
            lines.append(_storage_table(main))
        plot = _sparsity_plot(model_records, out_dir, slug)
        if plot:
            lines.append(
                "Dev score vs target sparsity (mean and sd over seeds; full fine-tuning at 100%; the plot "
                "shows today's settings, the table below also the labelled rows of other settings that "
                "have points off 0.5%):\n"
            )
            lines.append(f"![dev score vs target sparsity]({plot})\n")
            lines.append(_sparsity_table(model_records) or "")
        for method in ("diffprune", "diffprune-structured"):
            plot = _location_plot(model_records, method, out_dir, slug)
            if plot:
                lines.append(f"![where {method}'s non-zeros are]({plot})\n")
        lines += ["How to reproduce each row:\n", _reproduce(model_records)]
    lines += _tuned_sections(tuned)
    return "\n".join(lines)


def _tuned_sections(records: list[dict[str, Any]]) -> list[str]:
    """The tuned-against-tuned section of each model's held-out-selected records."""
    from deltamix.experiments.report import glue_tuned

    lines = []
    for model, model_records in group_by(records, lambda r: r.get("model") or "?").items():
        section = glue_tuned.render(model_records)
        if section:
            lines += [f"### {model}: tuned on held-out slices\n", section]
    return lines


def summary(records: list[dict[str, Any]]) -> list[str]:
    """The claim lines of each model's main table (as `render` prints them), prefixed with the model."""
    from deltamix.experiments.report import glue_tuned

    lines = []
    records, _ = latest_of_repeated_runs(records)
    tuned = [r for r in records if glue_tuned.holdout_selected(r)]
    records = [r for r in records if not glue_tuned.holdout_selected(r)]
    for model, model_records in group_by(records, lambda r: r.get("model") or "?").items():
        main = [r for r in label_other_settings(model_records) if _in_main_table(r)]
        if main:
            by_seed = _per_seed(main)
            _, scores, columns, _ = _score_table(main, by_seed)
            claims = [*_claims(scores, columns, by_seed), *_baseline_setting_claims(scores, columns, by_seed)]
            lines += [f"GLUE dev, {model}: {claim.removeprefix('- ')}" for claim in claims]
    for model, model_records in group_by(tuned, lambda r: r.get("model") or "?").items():
        lines += [
            f"GLUE dev, tuned on held-out slices, {model}: {claim.removeprefix('- ')}"
            for claim in glue_tuned.tuned_claims(model_records)
        ]
    return lines
