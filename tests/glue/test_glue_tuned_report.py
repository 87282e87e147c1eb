"""The tuned-against-tuned GLUE section from hand-made records: the choice on the held-out slice, the
seeds' dev scores, the majority class and the claims over the tasks above chance."""

from __future__ import annotations

from pathlib import Path

from deltamix.experiments.report.glue import render, summary
from deltamix.experiments.report.glue_tuned import choose, holdout_selected

MAJORITY = {
    "rte": {"accuracy": 0.527, "score": 0.527},
    "mrpc": {"accuracy": 0.684, "f1": 0.812, "score": 0.748},
}


def _record(task: str, method: str, seed: int, lr: float, dev: float, held: float, **config) -> dict:
    return {
        "experiment": "glue",
        "task": task,
        "method": method,
        "seed": seed,
        "metrics": {"score": dev, "holdout_score": held},
        "model": "tiny",
        "target_sparsity": 0.005,
        "stored_fraction": 0.005,
        "file_bytes": 1000,
        "base_params": 1000,
        "head_params": 10,
        "config": {"select_on": "holdout", "resolved_lr": lr, "lr": lr, "model": "tiny", **config},
        "majority_class": {"labels": {"validation": "x"}, "metrics": MAJORITY[task]},
        "finished_at": f"2026-12-07T00:00:0{seed}",
    }


def _tuning(
    task: str, method: str, dev_by_lr: dict[float, float], held_by_lr: dict[float, float], seeds
) -> list:
    """Seed 0 at every rate, then seeds 1, 2 of the best held-out rate (with ``seeds`` dev scores)."""
    records = [_record(task, method, 0, lr, dev_by_lr[lr], held_by_lr[lr]) for lr in dev_by_lr]
    best = max(held_by_lr, key=held_by_lr.get)
    records += [_record(task, method, s, best, dev, 0.5) for s, dev in zip((1, 2), seeds, strict=True)]
    return records


def _study() -> list[dict]:
    return [
        # full: the best dev rate (1e-4: 0.90) is not the best held-out one (2e-5): 2e-5 is chosen
        *_tuning("mrpc", "full", {2e-5: 0.80, 5e-5: 0.78, 1e-4: 0.90}, {2e-5: 0.85, 5e-5: 0.80, 1e-4: 0.70}, (0.82, 0.84)),
        *_tuning("mrpc", "diffprune", {1e-5: 0.70, 1e-4: 0.86, 1e-3: 0.60}, {1e-5: 0.7, 1e-4: 0.9, 1e-3: 0.6}, (0.85, 0.87)),
        # RTE: both at the majority class
        *_tuning("rte", "full", {2e-5: 0.527, 5e-5: 0.53, 1e-4: 0.52}, {2e-5: 0.6, 5e-5: 0.5, 1e-4: 0.5}, (0.527, 0.53)),
        *_tuning("rte", "diffprune", {1e-5: 0.52, 1e-4: 0.527, 1e-3: 0.5}, {1e-5: 0.5, 1e-4: 0.6, 1e-3: 0.5}, (0.53, 0.52)),
    ]  # fmt: skip


def test_the_rate_is_chosen_on_the_held_out_slice_not_on_dev() -> None:
    choices = {(c.task, c.label): c for c in choose(_study())}
    full = choices["mrpc", "full"]
    assert full.lr == 2e-5 and full.tuning_seed == 0 and list(full.runs) == [0, 1, 2]
    assert [r["metrics"]["score"] for r in full.runs.values()] == [0.80, 0.82, 0.84]
    assert full.holdout == {2e-5: 0.85, 5e-5: 0.80, 1e-4: 0.70}
    assert choices["mrpc", "diffprune"].lr == 1e-4


def test_tuned_section_table_majority_chance_and_claims(tmp_path: Path) -> None:
    markdown = render(_study(), tmp_path)
    assert "tuned on held-out slices" in markdown
    assert "| full | 82.0 ± 2.0 (3) | 52.8 ± 0.2 (3) |" in markdown  # columns mrpc, rte (the paper's order)
    assert "| majority class | 74.8 | 52.7 |" in markdown
    assert "**2e-05: 85.0**" in markdown  # the chosen rate in bold
    assert "rte: no method gets above chance" in markdown and "the claims leave rte out" in markdown
    assert "Claims, tuned against tuned" not in markdown  # no claim pairs full with diffprune
    assert "| full |" not in markdown.split("tuned on held-out slices")[0]  # not in the main table
    assert summary(_study()) == []


def test_tuned_claims_compare_chosen_settings_with_their_seed_spread(tmp_path: Path) -> None:
    records = [
        *_study(),
        *_tuning("mrpc", "lora", {1e-4: 0.75, 5e-4: 0.80, 1e-3: 0.70}, {1e-4: 0.7, 5e-4: 0.8, 1e-3: 0.6}, (0.78, 0.76)),
        *_tuning("rte", "lora", {1e-4: 0.52, 5e-4: 0.527, 1e-3: 0.5}, {1e-4: 0.5, 5e-4: 0.6, 1e-3: 0.5}, (0.53, 0.52)),
    ]  # fmt: skip
    markdown = render(records, tmp_path)
    expected = (
        "- diff pruning above LoRA at the same budget: diffprune 86.0 vs lora 78.0 (Δ +8.0 over mrpc; seeds mrpc 3 "
        "vs 3; seed-matched Δ +8.0 over mrpc 3 pairs, diffprune higher in 3 of 3): **holds**"
    )
    assert expected in markdown
    [line] = summary(records)
    assert line == "GLUE dev, tuned on held-out slices, tiny: " + expected.removeprefix("- ")


def test_dev_selected_records_stay_in_the_main_table_alone(tmp_path: Path) -> None:
    old = _record("mrpc", "full", 0, 2e-5, 0.81, 0.0)
    del old["config"]["select_on"], old["majority_class"]  # a record from before the option
    old["metrics"] = {"score": 0.81}
    assert not holdout_selected(old) and holdout_selected(_study()[0])
    markdown = render([old], tmp_path)
    assert "| full | 0.5% | 81.0 (1) |" in markdown
    assert "majority class" not in markdown and "tuned on held-out slices" not in markdown


def test_runs_of_other_settings_than_the_rate_get_their_own_row() -> None:
    quick = [_record("mrpc", "full", 0, lr, 0.7, held, epochs=1) for lr, held in ((2e-5, 0.9), (1e-4, 0.6))]
    choices = {c.label: c for c in choose([*_study(), *quick])}
    # the one-epoch runs do not compete with the default-epoch runs: another row, its own choice
    assert choices["full (epochs 1)"].lr == 2e-5 and list(choices["full (epochs 1)"].runs) == [0]
    assert choices["full"].lr == 2e-5 and list(choices["full"].runs) == [0, 1, 2]
    assert [c.label for c in choose(quick)] == ["full"]  # quick runs alone stay unlabelled


def test_the_main_table_shows_the_majority_class_where_records_carry_it(tmp_path: Path) -> None:
    new = _record("mrpc", "full", 0, 2e-5, 0.81, 0.0)
    new["config"]["select_on"] = "dev"  # a dev-selected run made since majority_class is recorded
    markdown = render([new], tmp_path)
    assert "| full | 0.5% | 81.0 (1) |" in markdown and "| majority class | – | 74.8 | – |" in markdown
