"""The GLUE report section from hand-made records: table cells, GLUE average, storage, claims, plots."""

from __future__ import annotations

from pathlib import Path

from deltamix.experiments.report.glue import (
    column_scores,
    kind_of,
    latest_of_repeated_runs,
    layer_of,
    render,
    sparsity_position,
    summary,
    training_setting_changes,
)


def _record(task: str, method: str, seed: int, metrics: dict[str, float], **extra) -> dict:
    stats = {
        "bert.embeddings.word_embeddings.weight": [30, 1000],
        "bert.encoder.layer.1.output.dense.bias": [10, 32],
    }
    return {
        "experiment": "glue",
        "task": task,
        "method": method,
        "seed": seed,
        "metrics": metrics,
        "model": "tiny",
        "target_sparsity": 0.005,
        "stored_fraction": 0.005,
        "file_bytes": 1000,
        "base_params": 1000,
        "head_params": 10,
        "tensor_stats": stats,
        "command": f"/x/bin/deltamix diffprune glue --task {task} --method {method} --seed {seed}",
        **extra,
    }


def test_mnli_gives_two_columns() -> None:
    record = _record(
        "mnli",
        "full",
        0,
        {"accuracy": 0.8, "score": 0.8, "mismatched_accuracy": 0.7, "mismatched_score": 0.7},
    )
    assert column_scores(record) == {"mnli-m": 0.8, "mnli-mm": 0.7}


def test_parameter_labels() -> None:
    assert layer_of("bert.encoder.layer.11.attention.self.query.weight") == "L11"
    assert layer_of("bert.embeddings.word_embeddings.weight") == "emb"
    assert kind_of("bert.encoder.layer.0.attention.output.dense.weight") == "attn-out"
    assert kind_of("bert.encoder.layer.0.output.dense.weight") == "ffn-out"
    assert kind_of("bert.encoder.layer.0.output.LayerNorm.bias") == "layernorm"
    assert kind_of("bert.encoder.layer.0.intermediate.dense.bias") == "bias"


def test_render_table_average_storage_claims_and_plots(tmp_path: Path) -> None:
    records = [
        _record("rte", "full", 0, {"accuracy": 0.70, "score": 0.70}),
        _record("rte", "full", 1, {"accuracy": 0.72, "score": 0.72}),
        _record("mrpc", "full", 0, {"accuracy": 0.80, "f1": 0.90, "score": 0.85}),
        _record("rte", "diffprune", 0, {"accuracy": 0.60, "score": 0.60}),
        _record("rte", "diffprune", 0, {"accuracy": 0.64, "score": 0.64}, target_sparsity=0.01),
        _record("rte", "diffprune-structured", 0, {"accuracy": 0.705, "score": 0.705}),
    ]
    markdown = render(records, tmp_path)
    assert "| full | 0.5% | 85.0 (1) | 71.0 ± 1.4 (2) | 78.0 |" in markdown  # avg = (85 + 71) / 2
    assert "| diffprune | 0.5% | – | 60.0 (1) | – |" in markdown  # 1% run is not in the main table
    assert "structured diff pruning within 1 point of full fine-tuning" in markdown
    # On the means -0.5 (one seed against two); on seed 0, which both ran, structured is 0.5 higher.
    verdict = (
        "(Δ -0.5 over rte; seeds rte 1 vs 2; seed-matched Δ +0.5 over rte 1 pair, "
        "diffprune-structured higher in 1 of 1): **holds**"
    )
    assert verdict in markdown
    [line] = summary(records)  # the same claim, named by its model, for the summary at the top
    assert line.startswith("GLUE dev, tiny: structured diff pruning within 1 point of full fine-tuning")
    assert line.endswith(verdict) and line.removeprefix("GLUE dev, tiny: ") in markdown
    assert "| full | 2/2 | 0.001 | 0.00 | 0.0 | 24.75% |" in markdown  # 2 x 1000 bytes vs 2 x 4 x 1010
    assert "`deltamix diffprune glue --task rte --method full --seed 0`" in markdown
    assert (tmp_path / "glue_sparsity_tiny.png").is_file()
    assert (tmp_path / "glue_nnz_diffprune_tiny.png").is_file()


def test_search_records_get_their_own_table_in_the_report(tmp_path: Path) -> None:
    from deltamix.core.io import append_jsonl
    from deltamix.experiments.report import generate_report

    search = _record(
        "stsb",
        "diffprune",
        0,
        {"pearson": 0.8, "spearman": 0.78, "score": 0.79},
        config={
            "resolved_lr": 1e-4,
            "alpha_lr": 0.1,
            "l0_lambda": 1e-5,
            "epochs": 1,
            "resolved_mask_epochs": 1,
        },
        stages=[{"stage": "projection", "nonzero_before": 200000, "kept": 113567}],
        train_seconds=600.0,
    )
    append_jsonl(tmp_path / "glue-search" / "glue.jsonl", search)
    text = generate_report(tmp_path, readme=None).read_text()
    assert "Learning-rate search" in text
    assert (
        "| task | method | lr | alpha lr | L0 lambda | epochs | dev score | metrics | non-zero / kept | train s |"
        in text
    )
    assert (
        "| stsb | diffprune | 0.0001 | 0.1 | 1e-05 | 1 + 1 | 79.0 | pearson 80.0, spearman 78.0 | 200,000 / 113,567 | 600 |"
        in text
    )
    assert "Dev score x 100, mean" not in text  # no main-table records: no results table


def test_runs_of_a_superseded_lambda_get_their_own_row(tmp_path: Path) -> None:
    """A changed default must not average old and new runs: the newest lambda keeps the plain row."""

    def run(seed: int, score: float, lam: float, finished: str) -> dict:
        return _record(
            "rte",
            "diffprune",
            seed,
            {"accuracy": score, "score": score},
            config={"resolved_l0_lambda": lam},
            finished_at=finished,
        )

    records = [
        _record("rte", "full", 0, {"accuracy": 0.70, "score": 0.70}),
        run(0, 0.50, 1e-5, "2026-11-25T22:55:00"),
        run(1, 0.52, 1e-5, "2026-11-25T22:56:00"),
        run(0, 0.68, 2e-7, "2026-11-26T10:00:00"),
    ]
    markdown = render(records, tmp_path)
    assert "| diffprune | 0.5% | 68.0 (1) | 68.0 |" in markdown
    assert "| diffprune (lambda 1e-05) | 0.5% | 51.0 ± 1.4 (2) | 51.0 |" in markdown
    assert markdown.index("| diffprune |") < markdown.index("| diffprune (lambda 1e-05) |")
    assert "L0 settings of the runs in the unlabelled diff pruning rows: diffprune lambda 2e-07." in markdown
    # the reproduce table: the old rows' command names the lambda they ran with (no longer the default)
    assert (
        "| diffprune (lambda 1e-05) | rte | 0.005 | 0,1 | "
        "`deltamix diffprune glue --task rte --method diffprune --seed 0 --l0-lambda 1e-05` |" in markdown
    )
    assert (  # the setting is named even where it was the default: defaults change
        "| diffprune | rte | 0.005 | 0 | `deltamix diffprune glue --task rte --method diffprune --seed 0 "
        "--l0-lambda 2e-07` |" in markdown
    )


def test_structured_runs_are_labelled_with_their_penalty_form(tmp_path: Path) -> None:
    """Runs from before structured_penalty existed used the product: their own row and command."""
    old = [
        _record(
            "mrpc",
            "diffprune-structured",
            seed,
            {"accuracy": 0.7, "score": 0.7},
            config={"resolved_l0_lambda": 1e-5},
            finished_at="2026-11-25T22:55:00",
        )
        for seed in (0, 1)
    ]
    new = _record(
        "mrpc",
        "diffprune-structured",
        0,
        {"accuracy": 0.8, "score": 0.8},
        config={"resolved_l0_lambda": 2e-7, "structured_penalty": "sum"},
        finished_at="2026-11-26T03:00:00",
    )
    markdown = render([*old, new], tmp_path)
    assert "| diffprune-structured | 0.5% | 80.0 (1) | 80.0 |" in markdown
    assert (
        "| diffprune-structured (lambda 1e-05, product penalty) | 0.5% | 70.0 ± 0.0 (2) | 70.0 |" in markdown
    )
    assert "unlabelled diff pruning rows: diffprune-structured lambda 2e-07, sum penalty." in markdown
    assert (
        "--method diffprune-structured --seed 0 --l0-lambda 1e-05 --structured-penalty product` |" in markdown
    )
    assert "--method diffprune-structured --seed 0 --l0-lambda 2e-07 --structured-penalty sum` |" in markdown


def test_runs_with_the_gates_clipped_apart_get_their_own_row(tmp_path: Path) -> None:
    """The authors' clipping is another recipe: never averaged with the default runs (older records,
    without the key, clipped all together), and never the plain row while default runs exist."""
    joint = _record(
        "rte", "diffprune", 0, {"accuracy": 0.5, "score": 0.5}, config={"resolved_l0_lambda": 2e-7}
    )
    apart = _record(
        "rte",
        "diffprune",
        1,
        {"accuracy": 0.6, "score": 0.6},
        config={"resolved_l0_lambda": 2e-7, "clip_gates_apart": True},
        finished_at="2026-11-26T03:00:00",
    )
    for joint_finished in ("2026-11-27T03:00:00", "2026-11-25T03:00:00"):  # newer or older than apart
        joint["finished_at"] = joint_finished
        markdown = render([joint, apart], tmp_path)
        # the default setting keeps the plain name, however recent the exploratory run
        assert "| diffprune | 0.5% | 50.0 (1) |" in markdown
        assert "| diffprune (lambda 2e-07, gates clipped apart) | 0.5% | 60.0 (1) |" in markdown
        assert "diffprune lambda 2e-07." in markdown  # the plain row's settings line: no clipping apart
    # a later run with an explicit, non-default lambda gets its own row too
    larger = _record(
        "rte", "diffprune", 2, {"accuracy": 0.7, "score": 0.7}, config={"resolved_l0_lambda": 1e-6}
    )
    larger["finished_at"] = "2026-11-28T03:00:00"
    markdown = render([joint, apart, larger], tmp_path)
    assert "| diffprune | 0.5% | 50.0 (1) |" in markdown
    assert "| diffprune (lambda 1e-06) | 0.5% | 70.0 (1) |" in markdown
    # with no run at today's default, the newest run's setting is the plain row
    markdown = render([apart, larger], tmp_path)
    assert "| diffprune | 0.5% | 70.0 (1) |" in markdown
    assert "| diffprune (lambda 2e-07, gates clipped apart) | 0.5% | 60.0 (1) |" in markdown


def test_sparsity_plot_keeps_one_colour_per_method_and_spaces_the_grid_evenly(
    tmp_path: Path, monkeypatch
) -> None:
    import matplotlib.pyplot as plt

    closed = []
    monkeypatch.setattr(plt, "close", closed.append)  # keep the figures to look at them
    records = [
        _record("mrpc", "full", 0, {"score": 0.83}),
        _record("rte", "full", 0, {"score": 0.53}),
        _record("mrpc", "diffprune", 0, {"score": 0.80}, target_sparsity=0.001),
        _record("mrpc", "diffprune", 0, {"score": 0.82}),
        _record("rte", "diffprune", 0, {"score": 0.54}),
        _record("rte", "diffprune", 1, {"score": 0.52}),
        _record("rte", "diffprune-nonadaptive", 0, {"score": 0.50}),
    ]
    old, new = {"resolved_l0_lambda": 1e-5}, {"resolved_l0_lambda": 2e-7}
    for record in records[2:5]:
        record.update(config=new, finished_at="2026-11-26")
    records.append(  # a superseded lambda: a row of its own in the table, not in the plot
        _record("rte", "diffprune", 2, {"score": 0.40}, config=old, finished_at="2026-11-25")
    )
    records.append(  # another setting with a point off 0.5%: in the sparsity table, not in the plot
        _record(
            "mrpc", "diffprune", 1, {"score": 0.70}, target_sparsity=0.001, config={**new, "mask_lr": 5e-5}
        )
    )
    markdown = render(records, tmp_path)
    assert "| diffprune (lambda 1e-05) |" in markdown
    # the numbers behind the plot, the number of seeds in each cell; the superseded run (only at 0.5%)
    # left out, the other setting's curve below its plain row
    assert "| task | method | 0.1% | 0.5% | 100% |" in markdown
    assert "| mrpc | diffprune (fixed-mask lr 5e-05) | 70.0 (1) | – | – |" in markdown
    assert "| rte | diffprune (lambda 1e-05) | – |" not in markdown
    assert "| mrpc | diffprune | 80.0 (1) | 82.0 (1) | – |" in markdown
    assert "| rte | diffprune | – | 53.0 ± 1.4 (2) | – |" in markdown
    assert "| rte | full | – | – | 53.0 (1) |" in markdown
    figure = next(f for f in closed if f.axes and f.axes[0].get_title() == "mrpc")
    colours: dict[str, set] = {}
    for ax in figure.axes:
        for container in ax.containers:
            colours.setdefault(container.get_label(), set()).add(container.lines[0].get_color())
    assert set(colours) == {"full", "diffprune", "diffprune-nonadaptive"}
    assert all(len(found) == 1 for found in colours.values())  # the same colour in both panels
    assert len({next(iter(found)) for found in colours.values()}) == 3  # and a different one per method
    legend = figure.legends[0]
    assert [text.get_text() for text in legend.get_texts()] == ["full", "diffprune", "diffprune-nonadaptive"]
    assert [sparsity_position(s) for s in (0.001, 0.0025, 0.005, 0.01, 1.0)] == [0, 1, 2, 3, 4]
    assert 2 < sparsity_position(0.007) < 3


def test_other_l0_settings_are_compared_run_by_run_with_the_default_of_the_same_task_and_seed(
    tmp_path: Path,
) -> None:
    """A labelled setting is paired with the default run of its task and seed only; unpaired runs are left out."""

    def run(task: str, seed: int, score: float, nonzero: int, l0_score: float, **config) -> dict:
        return _record(
            task,
            "diffprune",
            seed,
            {"pearson": score, "score": score},
            config={"resolved_l0_lambda": 2e-7, **config},
            stages=[
                {"stage": "l0"},
                {"stage": "projection", "nonzero_before": nonzero},
                {"stage": "fixed-mask"},
            ],
            dev_history={
                "l0": [{"epoch": 1.0, "eval_validation_score": 0.1}, {"eval_validation_score": l0_score}]
            },
        )

    records = [
        run("stsb", 0, 0.80, 250, 0.86),
        run("stsb", 1, 0.81, 240, 0.87),
        run("stsb", 0, 0.84, 60, 0.87, resolved_l0_lambda=1e-6),
        run("stsb", 1, 0.80, 50, 0.85, resolved_l0_lambda=1e-6),
        run("stsb", 2, 0.99, 40, 0.99, resolved_l0_lambda=1e-6),  # no default run of seed 2: not paired
        run("mrpc", 0, 0.70, 30, 0.75, clip_gates_apart=True),  # no default MRPC run: not paired
    ]
    markdown = render(records, tmp_path)
    assert (
        "| diffprune (lambda 1e-06) | stsb | 0 | 0.5% | 80.0 | 84.0 | +4.0 | 25.0% → 6.0% | 86.0 → 87.0 |"
        in markdown
    )
    assert (
        "| diffprune (lambda 1e-06) | stsb | 1 | 0.5% | 81.0 | 80.0 | -1.0 | 24.0% → 5.0% | 87.0 → 85.0 |"
        in markdown
    )
    paired = markdown.split("run by run")[1].split("Storage")[0]
    assert "| stsb | 2 |" not in paired and "| mrpc |" not in paired
    assert (
        "- diffprune with lambda 1e-06: Δ +1.5 on average over 2 paired runs (stsb), higher in 1 of 2"
        in markdown
    )
    # without any pair there is no such section
    assert "run by run" not in render(records[:2], tmp_path)


def test_a_task_run_for_some_methods_only_adds_an_average_over_the_shared_columns(tmp_path: Path) -> None:
    records = [
        _record("rte", "full", 0, {"accuracy": 0.70, "score": 0.70}),
        _record("mrpc", "full", 0, {"accuracy": 0.80, "f1": 0.90, "score": 0.85}),
        _record("rte", "bitfit", 0, {"accuracy": 0.60, "score": 0.60}),
        _record("mrpc", "bitfit", 0, {"accuracy": 0.80, "f1": 0.80, "score": 0.80}),
        _record("sst2", "bitfit", 0, {"accuracy": 0.90, "score": 0.90}),
    ]
    markdown = render(records, tmp_path)
    assert "| method | stored | sst2 | mrpc | rte | avg | avg mrpc, rte |" in markdown
    assert "| full | 0.5% | – | 85.0 (1) | 70.0 (1) | – | 77.5 |" in markdown
    assert "| bitfit | 0.5% | 90.0 (1) | 80.0 (1) | 60.0 (1) | 76.7 | 70.0 |" in markdown
    complete = render([r for r in records if r["task"] != "sst2"], tmp_path)
    assert "| method | stored | mrpc | rte | avg |" in complete  # no second average when nothing is missing


def test_other_l0_settings_are_compared_with_peft_on_the_shared_tasks(tmp_path: Path) -> None:
    """The goal beyond the paper, per labelled setting: only settings run on every task of the plain rows."""

    def l0_run(task: str, score: float, **config) -> dict:
        return _record(
            task,
            "diffprune",
            0,
            {"accuracy": score, "score": score},
            config={"resolved_l0_lambda": 2e-7, "multiplier_lr": 0.05, **config},
            finished_at="2026-11-26T10:00:00",
        )

    records = [
        *(_record(t, "lora", 0, {"accuracy": 0.70, "score": 0.70}) for t in ("rte", "mrpc")),
        *(l0_run(t, 0.60) for t in ("rte", "mrpc")),
        *(l0_run(t, 0.74, l0_target_density=0.02) for t in ("rte", "mrpc")),
        l0_run("rte", 0.90, l0_lambda=1e-6, resolved_l0_lambda=1e-6),  # RTE only: no goal line
    ]
    markdown = render(records, tmp_path)
    assert "diff pruning above LoRA at the same budget: diffprune 60.0 vs lora 70.0" in markdown
    assert (
        "- above LoRA at the same budget: diffprune (target density 2%, multiplier lr 0.05) 74.0 vs lora 70.0 "
        "(Δ +4.0 over mrpc, rte; seeds mrpc 1 vs 1, rte 1 vs 1; seed-matched Δ +4.0 over mrpc 1, rte 1 "
        "pairs, diffprune (target density 2%, multiplier lr 0.05) higher in 2 of 2): **holds**"
    ) in markdown
    assert "diffprune (lambda 1e-06) 90.0 vs lora" not in markdown


def test_a_run_recorded_twice_counts_once(tmp_path: Path) -> None:
    """The same settings and seed again (a deleted run folder, another machine): the latest record counts."""
    config = {"lr": 1e-4, "epochs": 3, "output_dir": "runs/a", "save_steps": None}
    first = _record(
        "rte", "full", 0, {"accuracy": 0.5, "score": 0.5}, config=config, finished_at="2026-11-01"
    )
    again = _record(
        "rte", "full", 0, {"accuracy": 0.7, "score": 0.7},
        config={**config, "output_dir": "runs/b", "save_steps": 1000}, finished_at="2026-11-02",
    )  # fmt: skip
    other_seed = _record(
        "rte", "full", 1, {"accuracy": 0.6, "score": 0.6}, config=config, finished_at="2026-11-01"
    )
    other_lr = _record(
        "rte",
        "full",
        0,
        {"accuracy": 0.2, "score": 0.2},
        config={**config, "lr": 2e-5},
        finished_at="2026-11-03",
    )
    kept, dropped = latest_of_repeated_runs([first, again, other_seed, other_lr])
    assert dropped == 1 and kept == [again, other_seed, other_lr]
    text = render([first, again, other_seed], tmp_path)
    assert "1 record(s) repeat a run" in text
    assert "65.0 ± 7.1 (2)" in text  # seeds 0 (the latest, 70) and 1 (60), not 50


def test_runs_with_a_training_setting_changed_by_a_flag_get_their_own_row_and_are_paired(
    tmp_path: Path,
) -> None:
    """--mask-lr or --lr off the default must not be averaged into the plain row; a run that names the
    default explicitly stays plain; a labelled run at 0.1% is paired with the plain run at 0.1%."""
    defaults = {"resolved_lr": 1e-4, "mask_lr": 1e-3, "alpha_lr": 0.1, "batch_size": 8, "epochs": 3}

    def run(method: str, seed: int, score: float, sparsity: float = 0.005, **config) -> dict:
        return _record(
            "mrpc",
            method,
            seed,
            {"accuracy": score, "f1": score, "score": score},
            target_sparsity=sparsity,
            config={"resolved_l0_lambda": 2e-7, "model": None, **defaults, **config},
        )

    records = [
        run("diffprune", 0, 0.80),
        run("diffprune", 1, 0.82),
        run("diffprune", 0, 0.70, sparsity=0.001),
        run("diffprune", 0, 0.78, sparsity=0.001, mask_lr=5e-5),
        run("diffprune", 0, 0.84, mask_lr=5e-5, epochs=5),
        _record("mrpc", "bitfit", 0, {"score": 0.81}, config={"resolved_lr": 1e-3}),  # the default: plain
        _record("mrpc", "bitfit", 1, {"score": 0.60}, config={"resolved_lr": 1e-5}),
    ]
    markdown = render(records, tmp_path)
    assert "| diffprune | 0.5% | 81.0 ± 1.4 (2) |" in markdown  # the 0.84 run is not averaged in
    assert "| diffprune (fixed-mask lr 5e-05, epochs 5) | 0.5% | 84.0 (1) |" in markdown
    assert "| bitfit | 0.5% | 81.0 (1) | 81.0 |" in markdown
    assert "| bitfit (lr 1e-05) | 0.5% | 60.0 (1) | 60.0 |" in markdown
    assert "| bitfit (lr 1e-05) | mrpc | – | 1 |" in markdown  # its size does not follow the target
    assert "| diffprune (fixed-mask lr 5e-05) | mrpc | 0 | 0.1% | 70.0 | 78.0 | +8.0 |" in markdown
    assert "| diffprune (fixed-mask lr 5e-05, epochs 5) | mrpc | 0 | 0.5% | 80.0 | 84.0 | +4.0 |" in markdown
    assert "| bitfit (lr 1e-05) | mrpc | 1 | – |" not in markdown  # no plain bitfit run of seed 1
    # the sparsity curve keeps the plain runs only
    assert "| mrpc | diffprune | 70.0 (1) | 81.0 ± 1.4 (2) |" in markdown


def test_training_setting_changes_name_only_what_differs_from_the_command_defaults() -> None:
    def changes(method: str, **config) -> list[str]:
        return training_setting_changes(_record("mrpc", method, 0, {"score": 0.8}, config=config))

    assert changes("diffprune") == []  # nothing recorded: defaults
    assert changes("diffprune", mask_epochs=5, train_examples=3668, resolved_lr=1e-4, model=None) == []
    assert changes("diffprune", mask_epochs=8, train_examples=3668) == ["fixed-mask epochs 8"]
    assert changes("diffprune", mask_epochs=5, train_examples=67349) == ["fixed-mask epochs 5"]
    assert changes("full", mask_lr=1e-3, alpha_lr=1.0) == []  # settings full fine-tuning does not use
    # the fixed-mask rate: 1e-3 is the embedded MiniLM's default, 5e-5 the paper's (other models)
    assert changes("diffprune-nonadaptive", alpha_lr=1.0, mask_lr=5e-5) == ["fixed-mask lr 5e-05"]
    assert changes("diffprune", mask_lr=1e-3, model="bert-base-uncased") == ["fixed-mask lr 0.001"]
    assert changes("diffprune", mask_lr=None, resolved_mask_lr=1e-3, model=None) == []
    assert changes("diffprune", mask_lr=None, resolved_mask_lr=5e-5, model="bert-base-uncased") == []
    assert changes("full", resolved_lr=2e-5, model="bert-base-uncased") == []  # the paper's default there
    assert changes("full", resolved_lr=2e-5, model=None) == ["lr 2e-05"]  # MiniLM's default is 1e-4
    assert changes("lora", max_train_examples=100, batch_size=16) == ["batch 16", "train examples 100"]


def test_the_reproduce_table_shows_the_command_of_the_lowest_seed(tmp_path: Path) -> None:
    records = [_record("rte", "full", seed, {"accuracy": 0.7, "score": 0.7}) for seed in (2, 0, 1)]
    markdown = render(records, tmp_path)
    assert (
        "| full | rte | – | 0,1,2 | `deltamix diffprune glue --task rte --method full --seed 0` |" in markdown
    )


def test_the_reproduce_table_names_the_fixed_mask_rate_a_diff_pruning_run_used(tmp_path: Path) -> None:
    """Its default changed (5e-5 -> 1e-3 for MiniLM): a command without --mask-lr gets the rate the run
    used, from resolved_mask_lr or, in older records, mask_lr; a command that names it keeps its own."""
    old = _record("rte", "diffprune", 0, {"score": 0.5}, config={"resolved_l0_lambda": 2e-7, "mask_lr": 5e-5})
    new = _record(
        "mrpc",
        "diffprune",
        0,
        {"score": 0.8},
        config={"resolved_l0_lambda": 2e-7, "mask_lr": None, "resolved_mask_lr": 1e-3},
    )
    named = _record(
        "stsb", "diffprune", 0, {"score": 0.8}, config={"resolved_l0_lambda": 2e-7, "mask_lr": 2e-4}
    )
    named["command"] += " --mask-lr 2e-4"
    markdown = render([old, new, named], tmp_path)
    assert "--seed 0 --l0-lambda 2e-07 --mask-lr 5e-05` |" in markdown
    assert "--task mrpc --method diffprune --seed 0 --l0-lambda 2e-07 --mask-lr 0.001` |" in markdown
    assert "--mask-lr 2e-4 --l0-lambda 2e-07` |" in markdown
    assert "--mask-lr" not in render([_record("rte", "full", 0, {"score": 0.5})], tmp_path)


def test_diff_pruning_is_compared_with_a_peft_baseline_at_its_other_learning_rates(tmp_path: Path) -> None:
    """A LoRA rate search gets its own row, and the goal line against it sits beside the claims (and in
    the summary), over the tasks it was run on: a fair comparison needs the tuned baseline too. A rate
    below the default (diverged) gets no line."""
    records = [
        *(
            _record(t, "lora", 0, {"accuracy": 0.70, "score": 0.70}, config={"resolved_lr": 5e-4})
            for t in ("rte", "mrpc")
        ),
        *(_record(t, "diffprune", 0, {"accuracy": 0.75, "score": 0.75}) for t in ("rte", "mrpc")),
        _record("mrpc", "lora", 0, {"accuracy": 0.80, "score": 0.80}, config={"resolved_lr": 1e-3}),
        _record(
            "rte", "lora", 0, {"accuracy": 0.50, "score": 0.50}, config={"resolved_lr": 2e-3}
        ),  # diverged
    ]
    markdown = render(records, tmp_path)
    assert "| lora (lr 0.001) | 0.5% | 80.0 (1) | – |" in markdown
    assert "diff pruning above LoRA at the same budget: diffprune 75.0 vs lora 70.0 (Δ +5.0" in markdown
    tuned = (
        "diff pruning above LoRA at the same budget: diffprune 75.0 vs lora (lr 0.001) 80.0 "
        "(Δ -5.0 over mrpc; seeds mrpc 1 vs 1; seed-matched Δ -5.0 over mrpc 1 pair, diffprune higher "
        "in 0 of 1): **does not hold**"
    )
    assert f"- {tuned}" in markdown
    assert f"GLUE dev, tiny: {tuned}" in summary(records)
    assert "| lora (lr 0.002) |" in markdown  # its own row, but no goal line: it is below the default
    assert "vs lora (lr 0.002)" not in markdown


def test_claims_also_compare_the_seeds_both_rows_ran(tmp_path: Path) -> None:
    """With one seed of diff pruning against three of LoRA, the difference of the means carries which seeds
    each ran: a lucky LoRA seed 0 pulls LoRA's mean up. The seed-matched note pairs seed 0 with seed 0 only,
    and a column with no shared seed (STS-B here) is left out of it and named by what it covers."""
    records = [
        _record("rte", "diffprune", 0, {"accuracy": 0.60, "score": 0.60}),
        _record("rte", "diffprune", 2, {"accuracy": 0.56, "score": 0.56}),
        _record("stsb", "diffprune", 1, {"pearson": 0.8, "spearman": 0.8, "score": 0.80}),
        *(
            _record("rte", "lora", seed, {"accuracy": score, "score": score})
            for seed, score in ((0, 0.58), (1, 0.50), (2, 0.57))
        ),
        _record("stsb", "lora", 0, {"pearson": 0.7, "spearman": 0.7, "score": 0.70}),
    ]
    [line] = [claim for claim in summary(records) if "LoRA" in claim]
    # means: rte 58.0 vs 55.0, stsb 80.0 vs 70.0 -> +6.5; matched: rte seeds 0 and 2, (+2.0 - 1.0) / 2
    assert line.endswith(
        "diffprune 69.0 vs lora 62.5 (Δ +6.5 over stsb, rte; seeds stsb 1 vs 1, rte 2 vs 3; "
        "seed-matched Δ +0.5 over rte 2 pairs, diffprune higher in 1 of 2): **holds**"
    )
