"""The translation section of results/README.md: BLEU per data set and method, mean ± sd over seeds.

`method_tables` (also used by the parsing section) builds one table per task with a row per method.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

from deltamix.report.common import group_by, markdown_table, mean_sd
from deltamix.seqmix.config import SeqMixConfig

BASELINE = "none"
_METHOD_ORDER = ("none", "word-dropout", "switchout", "seqmix", "seqmix-hard")


# The SeqMixConfig fields that change what each family member computes; a record whose value differs
# from the default is shown as its own row, e.g. "seqmix (partner_extent main)".
_MEMBER_SETTINGS = {
    "seqmix": ("alpha", "use_max_lambda", "partner", "partner_extent", "mix_target_input"),
    "seqmix-hard": ("alpha", "use_max_lambda", "partner", "partner_extent", "mix_target_input"),
    "word-dropout": ("word_dropout_p", "mix_target_input"),
    "switchout": ("switchout_tau", "switchout_tau_target", "mix_target_input"),
}


def method_label(record: dict[str, Any]) -> str:
    """The record's method, followed by each augmentation setting of its member that is not the default.

    Records made before a setting existed lack it and count as its default.
    """
    method = str(record.get("method"))
    seqmix = (record.get("config") or {}).get("seqmix") or {}
    fields = SeqMixConfig.__dataclass_fields__
    changed = [
        f"{name} {seqmix[name]}"
        for name in _MEMBER_SETTINGS.get(method, ())
        if name in seqmix and seqmix[name] != fields[name].default
    ]
    return f"{method} ({', '.join(changed)})" if changed else method


def _method_key(label: str) -> tuple[int, str]:
    method = label.split(" (")[0]
    return (_METHOD_ORDER.index(method) if method in _METHOD_ORDER else len(_METHOD_ORDER), label)


def _command(records: list[dict[str, Any]]) -> str:
    """The command of the group's first record, its seed replaced by ``<seed>`` (in the run folder too)."""
    command = str(records[0].get("command") or "")
    command = re.sub(r"(--seed[ =])\d+", r"\1<seed>", command)
    command = re.sub(r"(-seed)\d+(?=[/\s]|$)", r"\1<seed>", command)  # runs/.../AUGMENT-MODEL-seed0
    return f"`{command}`" if command else "–"


def _budget(record: dict[str, Any]) -> tuple[str, float, str]:
    """The training budget of a run as (unit, amount, learning-rate schedule), from its resolved config.

    Runs recorded before the schedule was a setting trained with a constant rate after the warm-up.
    """
    config = record.get("config") or {}
    run = config.get("run") or {}
    schedule = (config.get("training") or {}).get("lr_schedule", "constant")
    if run.get("max_steps"):
        return ("steps", float(run["max_steps"]), schedule)
    if run.get("epochs"):
        return ("epochs", float(run["epochs"]), schedule)
    return ("budget not recorded", 0.0, schedule)


def _budget_label(budget: tuple[str, float, str]) -> str:
    """A table title's budget: "15 epochs", "2000 steps, inverse-sqrt lr" (constant is not named)."""
    unit, amount, schedule = budget
    label = unit if amount == 0 else f"{amount:g} {unit}"
    return label if schedule == "constant" else f"{label}, {schedule} lr"


def method_tables(
    records: list[dict[str, Any]], metric_label: str, scale: float, note_key: str | None = None
) -> str:
    """One Markdown table per (task, model, training budget): a row per method with mean ± sd of
    ``main_value`` (runs with different budgets are never averaged together).

    Args:
        records: results records (`deltamix.records.make_record`).
        metric_label: the column title of the main metric.
        scale: factor applied to ``main_value`` for display (100 for a fraction shown as %).
        note_key: a record key whose (first) value is printed under each table (e.g. the BLEU signature).
    """
    parts = []
    by_task = group_by(records, lambda r: (r.get("task"), r.get("model"), _budget(r)))
    for (task, model, budget), task_records in sorted(  # longer budgets after shorter ones
        by_task.items(), key=lambda item: (str(item[0][0]), str(item[0][1]), item[0][2])
    ):
        by_method = group_by(task_records, method_label)
        baseline = by_method.get(BASELINE)
        baseline_mean = statistics.mean(r["main_value"] for r in baseline) * scale if baseline else None
        rows = []
        for method in sorted(by_method, key=lambda m: _method_key(str(m))):
            group = by_method[method]
            values = [r["main_value"] for r in group]
            mean = statistics.mean(values) * scale
            delta = "–" if baseline_mean is None or method == BASELINE else f"{mean - baseline_mean:+.1f}"
            seeds = ", ".join(str(s) for s in sorted(r.get("seed") for r in group))
            seconds = [r["train_seconds"] for r in group if r.get("train_seconds") is not None]
            minutes = f"{statistics.mean(seconds) / 60:.1f}" if seconds else "–"
            rows.append([method, mean_sd(values, scale=scale), delta, seeds, minutes, _command(group)])
        parts.append(f"**{task}** (model: {model}, {_budget_label(budget)})\n")
        parts.append(
            markdown_table(
                ["method", f"{metric_label} mean ± sd (n)", "Δ vs none", "seeds", "train min", "command"],
                rows,
            )
        )
        if note_key:
            notes = sorted({str(r[note_key]) for r in task_records if r.get(note_key)})
            if notes:
                parts.append(f"{note_key}: " + "; ".join(f"`{n}`" for n in notes) + "\n")
    return "\n".join(parts)


def render(records: list[dict[str, Any]], out_dir: Path) -> str:
    """A Markdown section with one table per data set: test BLEU (sacrebleu, detokenized) per method.

    ``out_dir`` is unused (no plots).
    """
    return (
        "## Translation (SeqMix)\n\n"
        "Test BLEU (sacrebleu on detokenized output, its signature under each table), mean ± sd over "
        "seeds (n = number of seeds); Δ is the difference of means from `none` (no augmentation). "
        "The command of each row is one run's, with its seed as `<seed>`.\n\n"
        + method_tables(records, "BLEU", 1.0, note_key="bleu_signature")
    )
