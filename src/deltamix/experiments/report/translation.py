"""The translation section of results/README.md: BLEU per data set and method, mean ± sd over seeds.

`method_tables` (also used by the parsing section) builds one table per task with a row per method.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

from deltamix.experiments.report.common import group_by, markdown_table, mean_sd
from deltamix.seqmix.config import (
    MIXING_VARIANTS,
    SEQMIX_VALUES_WHEN_ABSENT,
    UNNAMED_PARTNER_EXTENT,
    SeqMixConfig,
)

BASELINE = "none"
_METHOD_ORDER = ("none", "word-dropout", "switchout", "seqmix", "seqmix-hard")


# The SeqMixConfig fields that change what each family member computes; a record whose value differs
# from the reference (`_LABEL_REFERENCE`, else the default) is shown as its own row, e.g.
# "seqmix (partner_extent main)".
_MEMBER_SETTINGS = {
    "seqmix": ("alpha", "use_max_lambda", "partner", "partner_extent", "mix_target_input"),
    "seqmix-hard": ("alpha", "use_max_lambda", "partner", "partner_extent", "mix_target_input"),
    "word-dropout": ("word_dropout_p", "mix_target_input"),
    "switchout": ("switchout_tau", "switchout_tau_target", "mix_target_input"),
}


# The value a row label is measured against where it is not the setting's default, so that a table's
# rows stay put when the default changes.
_LABEL_REFERENCE = {"partner_extent": UNNAMED_PARTNER_EXTENT}


def method_label(record: dict[str, Any]) -> str:
    """The record's method, followed by each augmentation setting of its member that is not the
    reference value (the default, or `_LABEL_REFERENCE`'s).

    A record without a setting counts as the value such runs trained with (`SEQMIX_VALUES_WHEN_ABSENT`),
    whatever the default is.
    """
    method = str(record.get("method"))
    seqmix = (record.get("config") or {}).get("seqmix") or {}
    member = str(seqmix.get("variant", method))  # SCAN's geca+seqmix trains the seqmix member
    fields = SeqMixConfig.__dataclass_fields__
    changed = []
    for name in _MEMBER_SETTINGS.get(member, ()):
        value = seqmix.get(name, SEQMIX_VALUES_WHEN_ABSENT.get(name, fields[name].default))
        if value != _LABEL_REFERENCE.get(name, fields[name].default):
            changed.append(f"{name} {value}")
    return f"{method} ({', '.join(changed)})" if changed else method


def _method_key(label: str) -> tuple[int, str]:
    method = label.split(" (")[0]
    return (_METHOD_ORDER.index(method) if method in _METHOD_ORDER else len(_METHOD_ORDER), label)


def _pinned_settings(record: dict[str, Any]) -> list[str]:
    """Flags for the `SEQMIX_VALUES_WHEN_ABSENT` settings that the record's command leaves to the default
    (``--lr-schedule constant``, and ``--partner-extent union`` for a mixing member): the values the
    run trained with, written out so that its command keeps reproducing it after a default changes."""
    command = str(record.get("command") or "")
    config = record.get("config") or {}
    seqmix = config.get("seqmix") or {}
    training = config.get("training") or {}
    flags = []
    if "--lr-schedule" not in command and "kind" in (config.get("run") or {}):  # a text run (run_text)
        flags += ["--lr-schedule", str(training.get("lr_schedule", SEQMIX_VALUES_WHEN_ABSENT["lr_schedule"]))]
    if "--partner-extent" not in command and seqmix.get("variant", record.get("method")) in MIXING_VARIANTS:
        flags += [
            "--partner-extent",
            str(seqmix.get("partner_extent", SEQMIX_VALUES_WHEN_ABSENT["partner_extent"])),
        ]
    return flags


def _command(records: list[dict[str, Any]]) -> str:
    """The command of the group's first record, its seed replaced by ``<seed>`` (in the run folder
    too), with the settings it left to a default that may change written out (`_pinned_settings`)."""
    command = " ".join([str(records[0].get("command") or ""), *_pinned_settings(records[0])]).strip()
    command = re.sub(r"(--seed[ =])\d+", r"\1<seed>", command)
    command = re.sub(r"(-seed)\d+(?=[/\s]|$)", r"\1<seed>", command)  # runs/.../AUGMENT-MODEL-seed0
    return f"`{command}`" if command else "–"


def _budget(record: dict[str, Any]) -> tuple[str, float, str]:
    """The training budget of a run as (unit, amount, learning-rate schedule), from its resolved config.

    A record without ``lr_schedule`` trained with a constant rate after the warm-up.
    """
    config = record.get("config") or {}
    run = config.get("run") or {}
    schedule = (config.get("training") or {}).get("lr_schedule", "constant")
    if run.get("max_steps"):
        return ("steps", float(run["max_steps"]), schedule)
    if run.get("epochs"):
        return ("epochs", float(run["epochs"]), schedule)
    return ("budget not recorded", 0.0, schedule)


# Resolved settings that do not change what a run learns or how it is scored (or that the budget
# already names); every other training, decoding and model setting separates tables.
_NOT_RECIPE = {
    "training": {
        "seed",
        "log_interval",
        "checkpoint_interval",
        "eval_batch_size",
        "epochs",
        "max_steps",
        "lr_schedule",
    },
    "model": {"bos_id", "eos_id", "pad_id"},
}


def _recipe(record: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The run's recipe besides its budget, as sorted (setting, JSON value) pairs: the resolved
    training settings, the number of averaged checkpoints and the model's hyperparameters.

    Two runs with the same budget but, say, another warm-up or dropout are never averaged together.
    """
    config = record.get("config") or {}
    settings: dict[str, Any] = {}
    # A record without precision or max_tokens trained in fp32 on sentence batches.
    added = {name: SEQMIX_VALUES_WHEN_ABSENT[name] for name in ("precision", "max_tokens")}
    sections = {"training": {**added, **(config.get("training") or {})}, "model": config.get("model") or {}}
    for section, values in sections.items():
        for name, value in values.items():
            if name not in _NOT_RECIPE[section]:
                settings[name] = value
    for name in ("patience",):  # run settings that change what is learned, where set
        if (config.get("run") or {}).get(name) is not None:
            settings[name] = config["run"][name]
    average_last = (config.get("run") or {}).get("average_last")
    if average_last is not None:
        settings["average_last"] = average_last
    return tuple(sorted((name, json.dumps(value, sort_keys=True)) for name, value in settings.items()))


def _recipe_labels(recipes: list[tuple[tuple[str, str], ...]]) -> dict[tuple[tuple[str, str], ...], str]:
    """For the recipes of one task's tables, a title suffix naming the settings that differ between them
    ("average_last 5, warmup_steps 1000"); empty when the task has one recipe."""
    given = [dict(recipe) for recipe in recipes]
    names = sorted({name for settings in given for name in settings})
    varying = [n for n in names if len({settings.get(n) for settings in given}) > 1]

    def shown(settings: dict[str, str], name: str) -> str:
        return f"{name} {json.loads(settings[name])}" if name in settings else f"{name} not recorded"

    return {
        recipe: ", ".join(shown(settings, n) for n in varying)
        for recipe, settings in zip(recipes, given, strict=True)
    }


def _budget_label(budget: tuple[str, float, str]) -> str:
    """A table title's budget: "15 epochs", "2000 steps, inverse-sqrt lr" (constant is not named)."""
    unit, amount, schedule = budget
    label = unit if amount == 0 else f"{amount:g} {unit}"
    return label if schedule == "constant" else f"{label}, {schedule} lr"


def _seeds_above(group: list[dict[str, Any]], baseline: list[dict[str, Any]] | None) -> str:
    """ "k of n": in how many of the seeds that both ran the method scored above the baseline."""
    if not baseline:
        return "–"
    base = {r.get("seed"): r["main_value"] for r in baseline}
    shared = [r for r in group if r.get("seed") in base]
    if not shared:
        return "–"
    return f"{sum(r['main_value'] > base[r.get('seed')] for r in shared)} of {len(shared)}"


def _goal_verdicts(deltas: dict[str, tuple[float, str]], margin: float, unit: str) -> str | None:
    """Whether each SeqMix (soft) row's mean is ``margin`` above the baseline's (``margin`` 0: any gain),
    as one sentence; None when the table has no SeqMix row with a baseline. ``deltas``: label ->
    (Δ of means, "n vs m seeds")."""
    rows = {label: d for label, d in deltas.items() if label.split(" (")[0] == "seqmix"}
    if not rows:
        return None
    goal = f"SeqMix at least +{margin:g} above `none`" if margin > 0 else "a gain of SeqMix over `none`"
    verdicts = [
        f"{label} {d:+.2f} ({seeds}): {'met' if (d >= margin if margin > 0 else d > 0) else 'not met'}"
        for label, (d, seeds) in rows.items()
    ]
    return f"{goal} on the mean ({unit}): " + "; ".join(verdicts) + "."


def _tables(records: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The records split into tables, one per (task, model, training budget, recipe), each with its
    title: ``**task** (model: M, 15 epochs[; the settings in which the task's tables differ])``.
    Shorter budgets first."""
    by_table = group_by(records, lambda r: (r.get("task"), r.get("model"), _budget(r), _recipe(r)))
    recipes_of_task = group_by(list(by_table), lambda key: (key[0], key[1]))
    recipe_label = {
        (task, model, recipe): label
        for (task, model), keys in recipes_of_task.items()
        for recipe, label in _recipe_labels(sorted({key[3] for key in keys})).items()
    }
    tables = []
    for (task, model, budget, recipe), table_records in sorted(
        by_table.items(), key=lambda item: (str(item[0][0]), str(item[0][1]), item[0][2], item[0][3])
    ):
        settings = recipe_label[(task, model, recipe)]
        title = _budget_label(budget) + (f"; {settings}" if settings else "")
        tables.append((f"**{task}** (model: {model}, {title})", table_records))
    return tables


def _rows(
    table_records: list[dict[str, Any]], scale: float
) -> tuple[list[list[str]], dict[str, tuple[float, str]]]:
    """A table's rows (one per method label, baseline first) and, per method with a baseline, its Δ of
    means vs the baseline and the runs behind it ("3 vs 3 seeds")."""
    by_method = group_by(table_records, method_label)
    baseline = by_method.get(BASELINE)
    baseline_mean = statistics.mean(r["main_value"] for r in baseline) * scale if baseline else None
    rows, deltas = [], {}
    for method in sorted(by_method, key=lambda m: _method_key(str(m))):
        group = by_method[method]
        values = [r["main_value"] for r in group]
        mean = statistics.mean(values) * scale
        delta, above = "–", "–"
        if baseline_mean is not None and method != BASELINE:
            deltas[method] = (mean - baseline_mean, f"{len(group)} vs {len(baseline)} seeds")
            delta, above = f"{mean - baseline_mean:+.1f}", _seeds_above(group, baseline)
        seeds = ", ".join(str(s) for s in sorted(r.get("seed") for r in group))
        seconds = [r["train_seconds"] for r in group if r.get("train_seconds") is not None]
        minutes = f"{statistics.mean(seconds) / 60:.1f}" if seconds else "–"
        rows.append([method, mean_sd(values, scale=scale), delta, above, seeds, minutes, _command(group)])
    return rows, deltas


def method_tables(
    records: list[dict[str, Any]],
    metric_label: str,
    scale: float,
    note_key: str | None = None,
    goal_margin: float | None = None,
) -> str:
    """One Markdown table per (task, model, training budget, recipe): a row per method with mean ± sd of
    ``main_value``. Runs with different budgets or settings are never averaged together; a title names
    the settings in which its task's tables differ.

    Args:
        records: results records (`deltamix.core.records.make_record`).
        metric_label: the column title of the main metric.
        scale: factor applied to ``main_value`` for display (100 for a fraction shown as %).
        note_key: a record key whose (first) value is printed under each table (e.g. the BLEU signature).
        goal_margin: when given, a line under each table with a baseline says whether each SeqMix row's
            mean is at least this far above the baseline's (0: any gain), in the table's units.
    """
    parts = []
    header = ["method", f"{metric_label} mean ± sd (n)", "Δ vs none", "above none (seeds)", "seeds"]
    for title, table_records in _tables(records):
        rows, deltas = _rows(table_records, scale)
        parts += [f"{title}\n", markdown_table([*header, "train min", "command"], rows)]
        goal = None if goal_margin is None else _goal_verdicts(deltas, goal_margin, metric_label)
        if goal:
            parts.append(f"Goal, {goal}\n")
        if note_key:
            notes = sorted({str(r[note_key]) for r in table_records if r.get(note_key)})
            if notes:
                parts.append(f"{note_key}: " + "; ".join(f"`{n}`" for n in notes) + "\n")
    return "\n".join(parts)


def goal_summary(
    records: list[dict[str, Any]], metric_label: str, scale: float, goal_margin: float
) -> list[str]:
    """One line per table with a SeqMix row and a baseline: its title and the goal's verdicts (the
    lines `method_tables` prints under its tables), for the summary at the top of the results."""
    lines = []
    for title, table_records in _tables(records):
        goal = _goal_verdicts(_rows(table_records, scale)[1], goal_margin, metric_label)
        if goal:
            lines.append(f"{title.replace('**', '')}: {goal}")
    return lines


BLEU_GOAL = 0.5  # the goal for SeqMix on translation, BLEU above the baseline (the paper: about +1.0)


def render(records: list[dict[str, Any]], out_dir: Path) -> str:
    """A Markdown section with one table per data set: test BLEU (sacrebleu, detokenized) per method.

    ``out_dir`` is unused (no plots).
    """
    return (
        "## Translation (SeqMix)\n\n"
        "Test BLEU (sacrebleu on detokenized output, its signature under each table), mean ± sd over "
        "seeds (n = number of seeds); Δ is the difference of means from `none` (no augmentation); "
        "above none: in how many of the seeds both ran the method scored higher. The command of each "
        "row is one run's, with its seed as `<seed>`. The goal line checks SeqMix against the goal of "
        "+0.5 BLEU over the baseline (the paper reports about +1.0).\n\n"
        + method_tables(records, "BLEU", 1.0, note_key="bleu_signature", goal_margin=BLEU_GOAL)
    )


def summary(records: list[dict[str, Any]]) -> list[str]:
    """The goal lines of the translation tables (see `goal_summary`)."""
    return goal_summary(records, "BLEU", 1.0, BLEU_GOAL)
