"""The papers' claims and the goals beyond them, checked on GLUE score tables: each claim compares two
rows on the GLUE-average columns both have, on the means and seed by seed.
"""

from __future__ import annotations

import statistics

from deltamix.experiments.glue.methods import PEFT_METHODS
from deltamix.experiments.glue.metrics import GLUE_AVERAGE_COLUMNS
from deltamix.experiments.report.glue_labels import base_method
from deltamix.experiments.report.glue_rows import SeedScores, average

# (ours, other, claim, margin): the claim holds where ours - other (x 100, GLUE average) is above margin.
CLAIMS = (
    ("diffprune-structured", "full", "structured diff pruning within 1 point of full fine-tuning", -1.0),
    ("diffprune", "diffprune-nonadaptive", "diff pruning above non-adaptive diff pruning", 0.0),
    ("diffprune", "lora", "diff pruning above LoRA at the same budget", 0.0),
    ("diffprune", "shira", "diff pruning above SHiRA at the same budget", 0.0),
    ("diffprune", "supertuning", "diff pruning above SuperTuning at the same budget", 0.0),
)


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


def claim_lines(
    table: dict[str, dict[str, list[float]]],
    columns: list[str],
    by_seed: SeedScores,
    claims: tuple[tuple[str, str, str, float], ...] = CLAIMS,
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
        a, b = average(table[ours], common), average(table[other], common)
        delta = 100 * (a - b)
        verdict = "holds" if delta > margin else "does not hold"
        seeds = ", ".join(f"{c} {len(table[ours][c])} vs {len(table[other][c])}" for c in common)
        matched = _seed_matched(by_seed, ours, other, common)
        lines.append(
            f"- {claim}: {ours} {100 * a:.1f} vs {other} {100 * b:.1f} "
            f"(Δ {delta:+.1f} over {', '.join(common)}; seeds {seeds}{matched}): **{verdict}**"
        )
    return lines


def setting_goal_claims(
    table: dict[str, dict[str, list[float]]], shared: list[str], by_seed: SeedScores
) -> list[str]:
    """The goal beyond the paper (the `CLAIMS` of diff pruning against the PEFT methods) for each
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
        for ours, other, text, margin in CLAIMS
        if ours == "diffprune" and other in PEFT_METHODS
    )
    return claim_lines(table, shared, by_seed, claims)


def _improves_on_plain(table: dict[str, dict[str, list[float]]], label: str, columns: list[str]) -> bool:
    """Whether the labelled row ``label`` ("lora (lr 0.001)") scores above its method's plain row on
    average over the GLUE-average ``columns`` both rows have (False where they share none)."""
    plain = table.get(base_method(label), {})
    common = [c for c in columns if c in table[label] and c in plain]
    ours, default = average(table[label], common), average(plain, common)
    return ours is not None and default is not None and ours > default


def baseline_setting_claims(
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
        for ours, other, text, margin in CLAIMS
        if ours == "diffprune" and other in PEFT_METHODS and other == base_method(label)
    )
    return claim_lines(table, columns, by_seed, claims)
