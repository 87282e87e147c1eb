"""End to end on a tiny BERT and the shared RTE / STS-B data: runs, stored files, records, resume, serving, CLI, report."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from deltamix.cli.main import main
from deltamix.core.io import read_jsonl
from deltamix.diffprune import SparseDiff
from deltamix.experiments.glue.run import GlueRunConfig, run_glue

QUICK = {"max_train_examples": 16, "max_eval_examples": 16, "max_steps": 2, "logging_steps": 1, "lr": 1e-3}


def _config(tiny_model_dir: Path, glue_dir: Path, out: Path, **kwargs) -> GlueRunConfig:
    settings = {**QUICK, **kwargs}
    return GlueRunConfig(
        model=str(tiny_model_dir),
        data_dir=str(glue_dir),
        output_dir=str(out / "run"),
        results_dir=str(out / "results"),
        **settings,
    )


@pytest.fixture(scope="module")
def rte_run(tiny_model_dir: Path, glue_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("rte")
    config = _config(tiny_model_dir, glue_dir, out, task="rte", method="diffprune", keep_checkpoints=True)
    return config, run_glue(config)


@pytest.fixture(scope="module")
def stsb_run(tiny_model_dir: Path, glue_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("stsb")
    config = _config(
        tiny_model_dir,
        glue_dir,
        out,
        task="stsb",
        method="diffprune-structured",
        target_sparsity=0.01,
        clip_gates_apart=True,  # the authors' clipping, end to end
    )
    return config, run_glue(config)


def test_diffprune_run_writes_diff_metrics_config_and_record(rte_run) -> None:
    config, record = rte_run
    out = Path(config.output_dir)
    diff = SparseDiff.load(out / "diff.safetensors")
    budget = math.ceil(config.target_sparsity * diff.num_gated)
    assert budget * 0.99 <= diff.nnz <= budget
    assert set(diff.dense) == {"classifier.weight", "classifier.bias"}
    assert json.loads((out / "metrics.json").read_text()) == record["metrics"]
    # dev once on the stored model, and the held-out slice that chose its epoch (the default selection)
    assert set(record["metrics"]) == {"accuracy", "score", "holdout_accuracy", "holdout_score"}
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["task"] == "rte" and resolved["resolved_mask_epochs"] == 5  # RTE is a small task
    lines = read_jsonl(Path(config.results_dir) / "glue.jsonl")
    assert lines == [record]
    assert (
        record["experiment"] == "glue"
        and record["method"] == "diffprune"
        and record["main_metric"] == "score"
    )
    assert record["stored_params"] == diff.nnz and record["stored_fraction"] == pytest.approx(diff.density)
    assert record["file_bytes"] == (out / "diff.safetensors").stat().st_size
    assert [s["stage"] for s in record["stages"]] == ["l0", "projection", "fixed-mask"]
    assert sum(nnz for nnz, _ in record["tensor_stats"].values()) == diff.nnz
    assert record["train_seconds"] > 0 and record["eval_seconds"] > 0


def test_rerun_resumes_from_finished_stage_and_checkpoint(
    rte_run, tiny_model_dir: Path, glue_dir: Path
) -> None:
    config, record = rte_run
    import torch

    stage = Path(config.output_dir) / "fixed-mask"
    first = SparseDiff.load(Path(config.output_dir) / "diff.safetensors")
    (stage / "stage_done.json").unlink()  # as if interrupted after its last checkpoint
    (stage / "final_state.safetensors").unlink()
    (Path(config.output_dir) / "run_done.json").unlink()  # the run is not finished any more
    assert (Path(config.output_dir) / "l0" / "stage_done.json").is_file()
    again = run_glue(config)
    assert again["metrics"] == record["metrics"]
    second = SparseDiff.load(Path(config.output_dir) / "diff.safetensors")
    for name, (indices, values) in first.gated.items():  # the checkpoint's trained values, bit for bit
        assert torch.equal(second.gated[name][0], indices) and torch.equal(second.gated[name][1], values)
    assert again["stages"][0]["seconds"] == record["stages"][0]["seconds"]  # l0 loaded, not retrained
    assert again["stages"][2]["steps"] == QUICK["max_steps"]
    assert not (Path(config.output_dir) / "l0").exists() or config.keep_checkpoints


def test_regression_task_and_structured(stsb_run) -> None:
    config, record = stsb_run
    assert set(record["metrics"]) == {
        "pearson",
        "spearman",
        "score",
        "holdout_pearson",
        "holdout_spearman",
        "holdout_score",
    }
    assert 0 < record["stored_params"] <= math.ceil(0.01 * record["base_params"])
    assert not (Path(config.output_dir) / "l0").exists()  # checkpoints removed after success
    # the structured penalty form the run used is on record (the authors' sum by default)
    assert record["config"]["structured_penalty"] == "sum"
    assert record["method_details"]["diffprune_config"]["structured_penalty"] == "sum"
    assert record["config"]["clip_gates_apart"] is True
    assert record["method_details"]["diffprune_config"]["clip_gates_apart"] is True


def test_serving_all_tasks_from_one_bank_matches_runs(rte_run, stsb_run, tmp_path: Path, capsys) -> None:
    from deltamix.experiments.glue.serve import serve
    from deltamix.experiments.report import glue_serve

    results = serve(
        [Path(rte_run[0].output_dir), Path(stsb_run[0].output_dir)], max_eval_examples=16, rounds=2
    )
    assert results["all_match"], results
    assert set(results["tasks"]) == {"rte", "stsb"}
    assert results["tasks"]["stsb"]["rounds"][0] == results["tasks"]["stsb"]["rounds"][1]

    runs = [rte_run[0].output_dir, stsb_run[0].output_dir]
    argv = ["diffprune", "serve", "--runs", *runs, "--max-eval-examples", "16", "--rounds", "2"]
    assert main([*argv, "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rte (diffprune, seed 0)" in out and "same as its run" in out and "median" in out
    records = read_jsonl(tmp_path / "glue-serve.jsonl")
    assert [r["task"] for r in records] == ["rte", "stsb"]
    assert len({r["serve_id"] for r in records}) == 1
    by_task = {r["task"]: r for r in records}
    assert by_task["stsb"]["method"] == "diffprune-structured"

    def dev(metrics: dict) -> dict:  # serving scores dev; a run also records its held-out slice
        return {k: v for k, v in metrics.items() if not k.startswith("holdout_")}

    assert by_task["stsb"]["metrics"] == dev(stsb_run[1]["metrics"]) == dev(by_task["stsb"]["run_metrics"])
    assert by_task["rte"]["metrics"] == dev(rte_run[1]["metrics"])
    assert all(r["matches"] and r["max_abs_diff"] == 0.0 and r["switches"] == 4 for r in records)
    assert by_task["rte"]["file_bytes"] == (Path(runs[0]) / "diff.safetensors").stat().st_size

    markdown = glue_serve.render(records, tmp_path)
    assert "### 2 tasks on" in markdown and "first 16 dev examples, 2 rounds" in markdown
    assert "| rte | diffprune (seed 0) |" in markdown and "| yes |" in markdown


def test_serve_record_shows_a_task_whose_metrics_differ(rte_run, tmp_path: Path, capsys) -> None:
    """A served task that does not reproduce its run exits 1, and its record and report say so."""
    from deltamix.experiments.report import glue_serve

    run = tmp_path / "run"
    shutil.copytree(rte_run[0].output_dir, run)
    stored = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({k: v + 0.25 for k, v in stored.items()}))
    argv = ["diffprune", "serve", "--runs", str(run), "--max-eval-examples", "16", "--rounds", "1"]
    assert main([*argv, "--results-dir", str(tmp_path)]) == 1
    assert "DIFFERS from its run by 2.50e-01" in capsys.readouterr().out
    (record,) = read_jsonl(tmp_path / "glue-serve.jsonl")
    assert not record["matches"] and record["max_abs_diff"] == pytest.approx(0.25)
    assert "| **no** |" in glue_serve.render([record], tmp_path)


def test_serve_on_other_dev_examples_than_the_run_compares_nothing(rte_run, tmp_path: Path, capsys) -> None:
    """The run scored 16 dev examples; serving 8 cannot be compared with it, which is not a failure."""
    from deltamix.experiments.report import glue_serve

    argv = [
        "diffprune",
        "serve",
        "--runs",
        rte_run[0].output_dir,
        "--max-eval-examples",
        "8",
        "--rounds",
        "1",
    ]
    assert main([*argv, "--results-dir", str(tmp_path)]) == 0
    assert "not compared: its run scored another set of dev examples" in capsys.readouterr().out
    (record,) = read_jsonl(tmp_path / "glue-serve.jsonl")
    assert record["matches"] is None and record["max_abs_diff"] is None
    assert record["run_metrics"] == rte_run[1]["metrics"]
    assert "| not compared |" in glue_serve.render([record], tmp_path)


def test_serve_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    from deltamix.core.errors import DeltamixError
    from deltamix.experiments.glue.serve import serve

    with pytest.raises(DeltamixError, match=r"config\.json is missing"):
        serve([tmp_path])


def test_cli_baseline_run_and_report(
    tiny_model_dir: Path, glue_dir: Path, tmp_path: Path, rte_run, capsys
) -> None:
    argv = ["diffprune", "glue", "--task", "RTE", "--method", "lora", "--model", str(tiny_model_dir)]
    argv += [
        "--data-dir",
        str(glue_dir),
        "--output-dir",
        str(tmp_path / "lora"),
        "--results-dir",
        str(tmp_path),
    ]
    argv += [
        "--max-train-examples",
        "16",
        "--max-eval-examples",
        "16",
        "--max-steps",
        "2",
        "--target-sparsity",
        "0.005",
    ]
    assert main(argv) == 0
    assert "rte lora seed 0" in capsys.readouterr().out
    assert (tmp_path / "lora" / "adapter" / "adapter_model.safetensors").is_file()
    records = [*read_jsonl(tmp_path / "glue.jsonl"), rte_run[1]]
    from deltamix.experiments.report.glue import render

    markdown = render(records, tmp_path / "report")
    # both selected on a held-out slice (the default): the tuned section, quick runs left unlabelled
    tuned = markdown.split("tuned on held-out slices")[1]
    assert "| lora |" in tuned and "| diffprune |" in tuned and "| majority class |" in tuned
    # a claim on RTE unless no method is above the majority class there (a tiny random model may not be)
    assert ("diff pruning above LoRA at the same budget" in tuned) != (
        "rte: no method gets above chance" in tuned
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "squad"], "argument --task: unknown GLUE task 'squad'"),
        (["--task", "rte", "--method", "adapters"], "argument --method: invalid choice: 'adapters'"),
        (["--task", "rte", "--target-sparsity", "0"], "argument --target-sparsity: must be in (0, 1]"),
        (["--task", "rte", "--data-dir", "/nonexistent/glue"], "argument --data-dir: folder"),
        (["--task", "rte", "--epochs", "0"], "argument --epochs: must be > 0"),
        (["--task", "rte", "--warmup-ratio", "1.5"], "argument --warmup-ratio"),
        (["--task", "rte", "--structured-penalty", "mean"], "argument --structured-penalty: invalid choice"),
    ],
)
def test_cli_rejects_bad_arguments_at_parse_time(args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["diffprune", "glue", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_reports_missing_data_cleanly(tmp_path: Path, capsys) -> None:
    (tmp_path / "glue").mkdir()
    code = main(["diffprune", "glue", "--task", "rte", "--data-dir", str(tmp_path / "glue")])
    assert code == 2
    assert "no RTE folder" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "glue")


def test_run_folder_of_other_settings_is_refused(rte_run) -> None:
    import dataclasses

    from deltamix.core.errors import DeltamixError

    config, _ = rte_run
    other = dataclasses.replace(config, lr=0.5)
    with pytest.raises(DeltamixError, match=r"started with other settings .*lr"):
        run_glue(other)


def test_diff_pruning_defaults_paper_or_embedded_minilm_from_the_search() -> None:
    from deltamix.experiments.glue.run import GlueRunConfig

    minilm = GlueRunConfig(task="rte", method="diffprune")  # no --model: the embedded MiniLM
    assert (minilm.resolved_lr(), minilm.resolved_l0_lambda()) == (1e-4, 2e-7)
    other = GlueRunConfig(task="rte", method="diffprune-structured", model="bert-large-cased")
    assert (other.resolved_lr(), other.resolved_l0_lambda()) == (1e-5, 1.25e-7)  # the paper's
    chosen = GlueRunConfig(task="rte", method="diffprune", lr=3e-5, l0_lambda=0.0)
    assert (chosen.resolved_lr(), chosen.resolved_l0_lambda()) == (3e-5, 0.0)
    assert GlueRunConfig(task="rte", method="diffprune-nonadaptive").resolved_lr() == 1e-4  # full's
    assert GlueRunConfig(task="rte", method="full", model="bert-base-uncased").resolved_lr() == 2e-5
    assert GlueRunConfig(task="rte", method="bitfit").resolved_lr() == 1e-3
    with pytest.raises(ValueError, match="structured_penalty"):
        GlueRunConfig(task="rte", method="diffprune-structured", structured_penalty="mean")


def test_cli_flag_clip_gates_apart_reaches_the_run_config(monkeypatch, tmp_path: Path) -> None:
    import deltamix.experiments.glue.run as glue_run

    seen = []

    def fake_run(config):
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr(glue_run, "run_glue", fake_run)
    argv = [
        "diffprune",
        "glue",
        "--task",
        "rte",
        "--data-dir",
        str(tmp_path),
        "--output-dir",
        str(tmp_path / "o"),
    ]
    for flag, expected in (([], False), (["--clip-gates-apart"], True)):
        with pytest.raises(SystemExit):
            main([*argv, *flag])
        assert seen.pop().clip_gates_apart is expected


def test_a_target_density_run_records_its_multipliers_and_gets_its_own_report_row(
    tiny_model_dir: Path, glue_dir: Path, tmp_path: Path
) -> None:
    from deltamix.experiments.report.glue import render

    config = _config(  # the main table's rows: a run that selected on dev
        tiny_model_dir,
        glue_dir,
        tmp_path,
        task="rte",
        method="diffprune",
        l0_target_density=0.3,
        select_on="dev",
    )
    record = run_glue(config)
    assert record["config"]["l0_target_density"] == 0.3
    projection = next(stage for stage in record["stages"] if stage["stage"] == "projection")
    assert 0 < projection["expected_density"] <= 1 and len(projection["lagrange_multipliers"]) == 2
    assert record["method_details"]["diffprune_config"]["target_density"] == 0.3
    gates = record["stages"][0]["gate_history"]  # logged every step here (logging_steps 1)
    assert [entry["step"] for entry in gates] == [1, 2] and all(len(entry) == 4 for entry in gates)
    # alone it is the plain row, its setting named; beside a run at the default lambda, its own row
    assert "unlabelled diff pruning rows: diffprune target density 30%, multiplier lr 0.05." in render(
        [record], tmp_path / "report"
    )
    default = {**record, "seed": 1, "config": {**record["config"], "l0_target_density": None}}
    assert "| diffprune (target density 30%, multiplier lr 0.05) |" in render(
        [record, default], tmp_path / "report"
    )
    faster = {**record, "seed": 2, "config": {**record["config"], "multiplier_lr": 0.2}}
    assert "| diffprune (target density 30%, multiplier lr 0.2) |" in render(
        [record, default, faster], tmp_path / "r"
    )
    with pytest.raises(ValueError, match="l0_target_density applies to the methods with learned gates"):
        _config(
            tiny_model_dir,
            glue_dir,
            tmp_path,
            task="rte",
            method="diffprune-nonadaptive",
            l0_target_density=0.3,
        )


def test_full_fine_tuning_trains_in_bf16_and_records_it(
    tiny_model_dir: Path, glue_dir: Path, tmp_path
) -> None:
    config = _config(
        tiny_model_dir, glue_dir, tmp_path, task="rte", method="full", precision="bf16", threads=1
    )
    record = run_glue(config)
    assert record["config"]["precision"] == "bf16"
    assert all(math.isfinite(value) for value in record["metrics"].values())


def test_precision_auto_keeps_diff_pruning_in_fp32_and_bf16_trains_it(
    tiny_model_dir, glue_dir, tmp_path
) -> None:
    from deltamix.experiments.glue.methods import glue_precision

    assert glue_precision("diffprune", "auto") == "fp32"  # until its bf16 parity is recorded
    config = _config(
        tiny_model_dir, glue_dir, tmp_path, task="rte", method="diffprune", precision="bf16", threads=1
    )
    record = run_glue(config)
    assert record["config"]["precision"] == "bf16"
    assert all(math.isfinite(value) for value in record["metrics"].values())
