"""Tests of the SCAN report section: mean ± sd per method and split, budget groups, plot file."""

from __future__ import annotations

from pathlib import Path

from deltamix.experiments.report.scan import render


def _record(
    method: str, split: str, seed: int, value: float, steps: int = 1500, limit: int | None = None
) -> dict:
    run = {"model": "lstm", "train_limit": limit, "test_limit": None}
    return {
        "experiment": "scan",
        "method": method,
        "task": split,
        "seed": seed,
        "main_value": value,
        "train_seconds": 120.0,
        "config": {"run": run, "steps": steps, "epochs": 3.3},
    }


def test_render_tables_means_and_plots(tmp_path: Path) -> None:
    records = [_record("seqmix", "addprim_jump", seed, value) for seed, value in enumerate([0.1, 0.2, 0.3])]
    records += [_record("none", "addprim_jump", 0, 0.05), _record("none", "template_around_right", 0, 0.5)]
    records += [_record("geca", "addprim_jump", 0, 0.9, steps=9000)]
    records += [_record("none", "addprim_jump", 0, 0.99, limit=10)]  # a quick run: left out
    text = render(records, tmp_path)
    assert "| seqmix | 20.0 ± 10.0 (3) | – |" in text
    assert "| none | 5.0 (1) [0–1] | 50.0 (1) |" in text
    assert "90.0 (1) [87]" in text  # the other budget gets its own table
    assert "99.0" not in text and "1 quick run(s)" in text
    assert (tmp_path / "scan_lstm_1500.png").stat().st_size > 0
    assert (tmp_path / "scan_lstm_9000.png").stat().st_size > 0


def test_a_run_with_a_non_default_member_setting_gets_its_own_row(tmp_path: Path) -> None:
    """SeqMix with the authors' partner extent (also inside geca+seqmix) is never averaged with the
    default runs; GECA alone has no SeqMix setting to show."""

    def run(method: str, seed: int, value: float, variant: str, **seqmix) -> dict:
        record = _record(method, "addprim_jump", seed, value)
        return {**record, "config": {**record["config"], "seqmix": {"variant": variant, **seqmix}}}

    records = [
        run("geca+seqmix", 0, 0.7, "seqmix"),
        run("geca+seqmix", 1, 0.9, "seqmix", partner_extent="main"),
        run("geca", 0, 0.6, "none", partner_extent="main"),
    ]
    text = render(records, tmp_path)
    assert "| geca+seqmix | 70.0 (1) [98] |" in text
    assert "| geca+seqmix (partner_extent main) | 90.0 (1) |" in text
    assert "| geca | 60.0 (1) [87] |" in text


def test_methods_at_several_budgets_get_a_steps_table_and_plot(tmp_path: Path) -> None:
    records = [_record("geca", "addprim_jump", seed, v) for seed, v in enumerate([0.5, 0.7])]
    records += [_record("geca", "addprim_jump", seed, v, steps=6000) for seed, v in enumerate([0.8, 0.9])]
    records += [_record("none", "addprim_jump", 0, 0.01)]  # one budget only: no curve
    text = render(records, tmp_path)
    assert "exact match against training steps" in text
    assert "| geca | addprim_jump | 60.0 ± 14.1 (2) | 85.0 ± 7.1 (2) |" in text
    assert "| none | addprim_jump |" not in text
    assert (tmp_path / "scan_lstm_steps.png").stat().st_size > 0


def test_no_steps_section_with_one_budget(tmp_path: Path) -> None:
    text = render([_record("geca", "addprim_jump", 0, 0.5)], tmp_path)
    assert "against training steps" not in text and not (tmp_path / "scan_lstm_steps.png").exists()


def test_summary_checks_seqmix_against_its_baseline_and_the_papers_goal() -> None:
    from deltamix.experiments.report.scan import summary

    records = [_record("geca", "addprim_jump", s, v, steps=6000) for s, v in enumerate([0.90, 0.88])]
    records += [_record("geca+seqmix", "addprim_jump", s, v, steps=6000) for s, v in enumerate([0.96, 0.87])]
    records += [_record("none", "addprim_jump", 0, 0.01), _record("seqmix", "addprim_jump", 0, 0.02)]
    lines = summary(records)
    assert (
        "SCAN addprim_jump (lstm, 6000 steps): geca+seqmix above geca: 91.5 vs 89.0 (Δ +2.5; 2 vs 2 seeds, "
        "higher in 1 of 2 seed pairs): not met; at least 95 (the paper's): not met." in lines
    )
    assert any(line.startswith("SCAN addprim_jump (lstm, 1500 steps): seqmix above none") for line in lines)
    assert all("geca above" not in line for line in lines)  # GECA alone has no baseline goal
