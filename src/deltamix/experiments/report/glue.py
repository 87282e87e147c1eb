"""The GLUE section of results/README.md: method x task table, storage, claims, and two plots.

Everything comes from the records in ``results/glue.jsonl`` (written by :func:`deltamix.experiments.glue.run.run_glue`):
a cell is the mean ± sd over seeds of the task's score x 100 (the mean of its official metrics:
MRPC and QQP accuracy and F1, STS-B Pearson and Spearman; MNLI has a matched and a mismatched
column). Plots: dev score vs target sparsity, and where each task's diff lands (share of non-zeros
per layer and per parameter type, one row per task, as the paper's Figure 2) from the per-tensor
statistics each record carries.

Runs that chose their checkpoints on a held-out slice of train (``select_on`` "holdout") are kept out
of the main table (whose runs selected on dev, the reported score being the best of their dev
evaluations) and get their own section, tuned against tuned (:mod:`deltamix.experiments.report.glue_tuning`). Where
records carry the dev set's majority-class score (``majority_class``), the tables show it as a row.

The section is assembled here from its parts: the cells and row order (``glue_rows``), the row labels
of other settings (``glue_labels``), the tables (``glue_tables``), the claims (``glue_claims``), the
seed-by-seed settings table (``glue_settings``) and the plots (``glue_plots``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from deltamix.experiments.report.common import group_by
from deltamix.experiments.report.glue_claims import (
    CLAIMS,
    baseline_setting_claims,
    claim_lines,
    setting_goal_claims,
)
from deltamix.experiments.report.glue_labels import (
    L0Setting,
    base_method,
    default_l0_setting,
    l0_setting,
    label_other_settings,
    recorded_mask_lr,
    setting_text,
    training_setting_changes,
)
from deltamix.experiments.report.glue_plots import (
    SPARSITY_GRID,
    kind_of,
    layer_of,
    location_plot,
    sparsity_plot,
    sparsity_position,
    sparsity_table,
)
from deltamix.experiments.report.glue_rows import (
    COLUMNS,
    MAIN_SPARSITY,
    SeedScores,
    column_scores,
    in_main_table,
    latest_of_repeated_runs,
    majority_scores,
    per_seed,
)
from deltamix.experiments.report.glue_settings import render_paired_settings
from deltamix.experiments.report.glue_tables import reproduce_table, score_table, storage_table
from deltamix.experiments.report.glue_tuning import holdout_selected, tuned_claims
from deltamix.experiments.report.glue_tuning import render as render_tuned

__all__ = [  # the section, and the parts it is built from that callers use by this module's name
    "CLAIMS",
    "COLUMNS",
    "MAIN_SPARSITY",
    "SPARSITY_GRID",
    "L0Setting",
    "SeedScores",
    "column_scores",
    "default_l0_setting",
    "kind_of",
    "label_other_settings",
    "latest_of_repeated_runs",
    "layer_of",
    "majority_scores",
    "recorded_mask_lr",
    "render",
    "sparsity_position",
    "summary",
    "training_setting_changes",
]

_TABLE_NOTE = (
    f"Dev score x 100, mean ± sd (seeds) at target sparsity {100 * MAIN_SPARSITY:g}% "
    "(full, last-layer and BitFit have their own size). A task's score is the mean of its "
    "official metrics (MRPC, QQP: accuracy and F1; STS-B: Pearson and Spearman; CoLA: "
    "Matthews). avg: the paper's GLUE average, the mean of the columns except WNLI, shown "
    "only where a method has every column of the table (while a task has runs of some methods "
    "only, a second average over the columns every unlabelled row has). stored: task-specific values "
    "stored besides the dense head, as a share of the base model's parameters.\n"
)
_CLAIMS_NOTE = (
    "Claims (averages over the columns both methods have; the verdict is on the means, the "
    "seed-matched Δ the same average over the seeds both methods ran):\n"
)
_PAIRED_NOTE = (
    "Other settings against the plain row's, run by run (same task, seed and target "
    "sparsity; dev score "
    "x 100; non-zero after L0: share of the body's parameters the L0 stage left non-zero "
    "before the projection to the target; dev after L0: the dense gated diff's score "
    "then):\n"
)
_AGAINST_TUNED_NOTE = (
    "Diff pruning against the PEFT baselines' other settings that score above their "
    "default (the goal beyond the paper against a baseline tuned further, e.g. its learning "
    "rate; over the columns both rows have, with the seeds each has):\n"
)
_SETTING_GOAL_NOTE = (
    "Other L0 settings against the PEFT baselines (the goal beyond the paper; settings run on "
    "every task all unlabelled rows have, averaged over those tasks, with the seeds each has):\n"
)
_STORAGE_NOTE = "Storage (file bytes as written; fp32 full model = 4 bytes per parameter):\n"
_SPARSITY_NOTE = (
    "Dev score vs target sparsity (mean and sd over seeds; full fine-tuning at 100%; the plot "
    "shows today's settings, the table below also the labelled rows of other settings that "
    "have points off 0.5%):\n"
)


def _model_of(record: dict[str, Any]) -> str:
    return record.get("model") or "?"


def _split_repeats_and_tuned(
    records: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(the runs that selected on dev, those that selected on a held-out slice, how many repeats were
    dropped), after `latest_of_repeated_runs`."""
    records, repeated = latest_of_repeated_runs(records)
    tuned = [r for r in records if holdout_selected(r)]
    return [r for r in records if not holdout_selected(r)], tuned, repeated


def render(records: list[dict[str, Any]], out_dir: Path) -> str:
    """The GLUE section (Markdown); writes its plots into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["## GLUE (diff pruning and baselines, dev sets)\n"]
    records, tuned, repeated = _split_repeats_and_tuned(records)
    if repeated:
        lines.append(
            f"{repeated} record(s) repeat a run with the same settings and seed: only the latest of each "
            "run is counted.\n"
        )
    for model, model_records in group_by(records, _model_of).items():
        lines += _model_section(model, label_other_settings(model_records), out_dir)
    lines += _tuned_sections(tuned)
    return "\n".join(lines)


def _model_section(model: str, records: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """One model's part (its records relabelled by `label_other_settings`): the main table with its
    claims and storage, the sparsity plot and table, where the non-zeros are, and the commands."""
    lines = [f"### {model}\n"]
    slug = re.sub(r"[^A-Za-z0-9]+", "-", model).strip("-")[-40:] or "model"
    main = [r for r in records if in_main_table(r)]
    if main:
        lines += _main_table_lines(main, records)
    lines += _plot_lines(records, out_dir, slug)
    lines += ["How to reproduce each row:\n", reproduce_table(records)]
    return lines


def _main_table_lines(main: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[str]:
    """The main table (``main``: the runs in it), the L0 settings of its plain rows, the claims, the
    seed-by-seed table of other settings (from all the model's ``records``) and the storage table."""
    by_seed = per_seed(main)
    table, scores, columns, shared = score_table(main, by_seed)
    lines = [_TABLE_NOTE, table, *_plain_l0_settings(main)]
    lines += _block(_CLAIMS_NOTE, claim_lines(scores, columns, by_seed))
    paired = render_paired_settings(records)
    if paired:
        lines += [_PAIRED_NOTE, paired]
    lines += _block(_AGAINST_TUNED_NOTE, baseline_setting_claims(scores, columns, by_seed))
    lines += _block(_SETTING_GOAL_NOTE, setting_goal_claims(scores, shared, by_seed))
    return [*lines, _STORAGE_NOTE, storage_table(main)]


def _block(note: str, claims: list[str]) -> list[str]:
    """``note``, the claim lines and a blank line; nothing without claims."""
    return [note, *claims, ""] if claims else []


def _plain_l0_settings(main: list[dict[str, Any]]) -> list[str]:
    """The line naming the L0 setting of each unlabelled row (all runs of such a row share one)."""
    settings = {
        r["method"]: setting
        for r in main
        if base_method(r["method"]) == r["method"] and (setting := l0_setting(r)) is not None
    }
    if not settings:
        return []
    shown = ", ".join(f"{method} {setting_text(value)}" for method, value in sorted(settings.items()))
    return [f"L0 settings of the runs in the unlabelled diff pruning rows: {shown}.\n"]


def _plot_lines(records: list[dict[str, Any]], out_dir: Path, slug: str) -> list[str]:
    """The sparsity plot with its table, and the non-zero location plots (written into ``out_dir``)."""
    lines = []
    plot = sparsity_plot(records, out_dir, slug)
    if plot:
        lines += [_SPARSITY_NOTE, f"![dev score vs target sparsity]({plot})\n", sparsity_table(records) or ""]
    for method in ("diffprune", "diffprune-structured"):
        plot = location_plot(records, method, out_dir, slug)
        if plot:
            lines.append(f"![where {method}'s non-zeros are]({plot})\n")
    return lines


def _tuned_sections(records: list[dict[str, Any]]) -> list[str]:
    """The tuned-against-tuned section of each model's held-out-selected records."""
    lines = []
    for model, model_records in group_by(records, _model_of).items():
        section = render_tuned(model_records)
        if section:
            lines += [f"### {model}: tuned on held-out slices\n", section]
    return lines


def summary(records: list[dict[str, Any]]) -> list[str]:
    """The claim lines of each model's main table (as `render` prints them), prefixed with the model."""
    lines = []
    records, tuned, _ = _split_repeats_and_tuned(records)
    for model, model_records in group_by(records, _model_of).items():
        main = [r for r in label_other_settings(model_records) if in_main_table(r)]
        if main:
            by_seed = per_seed(main)
            _, scores, columns, _ = score_table(main, by_seed)
            claims = [
                *claim_lines(scores, columns, by_seed),
                *baseline_setting_claims(scores, columns, by_seed),
            ]
            lines += [f"GLUE dev, {model}: {claim.removeprefix('- ')}" for claim in claims]
    for model, model_records in group_by(tuned, _model_of).items():
        lines += [
            f"GLUE dev, tuned on held-out slices, {model}: {claim.removeprefix('- ')}"
            for claim in tuned_claims(model_records)
        ]
    return lines
