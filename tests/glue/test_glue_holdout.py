"""Model selection on a slice held out from train: the split, the majority class, runs and old run folders."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from deltamix.core.errors import DeltamixError
from deltamix.data.glue import default_holdout_size, holdout_split, load_glue
from deltamix.experiments.glue.chance import majority_class_metrics, majority_label
from deltamix.experiments.glue.run import GlueRunConfig, folder_select_on, run_glue


def test_holdout_split_is_seeded_disjoint_and_complete() -> None:
    rest, held = holdout_split(100, 10, seed=3)
    assert len(held) == 10 and held == sorted(held)
    assert not set(rest) & set(held) and sorted(rest + held) == list(range(100))
    assert holdout_split(100, 10, seed=3) == (rest, held)  # the seed decides it
    assert holdout_split(100, 10, seed=4)[1] != held
    with pytest.raises(ValueError, match="holdout_size must be in \\[1, 9\\]"):
        holdout_split(10, 10, seed=0)
    assert [default_holdout_size(n) for n in (5, 2490, 5749, 67349)] == [1, 249, 575, 1000]


def test_majority_class_scores_rte_mrpc_and_stsb() -> None:
    # RTE's dev set: 131 entailment (0), 146 not_entailment (1): always "not_entailment" scores 52.7
    rte = [0] * 131 + [1] * 146
    assert majority_label(rte) == 1
    assert majority_class_metrics("rte", rte)["score"] == pytest.approx(146 / 277)
    mrpc = [1] * 3 + [0]  # always "equivalent": accuracy 3/4, F1 of class 1 = 2*0.75/(1.75)
    metrics = majority_class_metrics("mrpc", mrpc)
    assert metrics["accuracy"] == pytest.approx(0.75) and metrics["f1"] == pytest.approx(1.5 / 1.75)
    assert metrics["score"] == pytest.approx((0.75 + 1.5 / 1.75) / 2)
    assert majority_class_metrics("stsb", np.array([0.5, 4.0, 2.0]))["score"] == 0.0  # a constant
    assert majority_label([2, 0, 0, 2]) == 0  # a tie: the smaller id


def test_holdout_size_needs_holdout_selection() -> None:
    with pytest.raises(ValueError, match="holdout_size applies to select_on='holdout'"):
        GlueRunConfig(task="rte", select_on="dev", holdout_size=10)
    with pytest.raises(ValueError, match="select_on must be one of"):
        GlueRunConfig(task="rte", select_on="test")


QUICK = {"max_train_examples": 16, "max_eval_examples": 16, "logging_steps": 1, "lr": 1e-3}


def _config(tiny_model_dir: Path, glue_dir: Path, out: Path, **kwargs) -> GlueRunConfig:
    return GlueRunConfig(
        model=str(tiny_model_dir),
        data_dir=str(glue_dir),
        output_dir=str(out / "run"),
        results_dir=str(out / "results"),
        **{**QUICK, **kwargs},
    )


def test_holdout_chooses_the_epoch_and_dev_is_evaluated_once(tiny_model_dir, glue_dir, tmp_path) -> None:
    config = _config(tiny_model_dir, glue_dir, tmp_path, task="rte", method="full", epochs=3, holdout_size=24)
    record = run_glue(config)
    [stage] = record["stages"]
    history = record["dev_history"]["train"]
    # every evaluation during training was on the held-out slice; dev is not among them
    assert len(history) == 3 and all(
        "eval_holdout_score" in e and "eval_validation_score" not in e for e in history
    )
    assert stage["best_metric"] == max(e["eval_holdout_score"] for e in history)
    # the stored model is the chosen epoch's: its held-out score is the best one, dev measured on it once
    assert record["metrics"]["holdout_score"] == pytest.approx(stage["best_metric"], abs=1e-6)
    assert {"accuracy", "score"} <= set(record["metrics"])
    assert record["config"]["select_on"] == "holdout" and record["config"]["holdout_examples"] == 24
    assert record["config"]["train_examples"] == 16
    labels = list(load_glue("rte", glue_dir)["validation"]["label"][:16])  # the dev examples evaluated
    top = max((0, 1), key=lambda label: (labels.count(label), -label))
    assert record["majority_class"]["labels"] == {"validation": ("entailment", "not_entailment")[top]}
    assert record["majority_class"]["metrics"]["score"] == pytest.approx(labels.count(top) / 16)


def test_a_run_folder_from_before_the_option_keeps_dev_selection(tiny_model_dir, glue_dir, tmp_path) -> None:
    config = _config(
        tiny_model_dir, glue_dir, tmp_path, task="rte", method="bitfit", max_steps=1, select_on="dev"
    )
    record = run_glue(config)
    out = Path(config.output_dir)
    assert "holdout_score" not in record["metrics"] and record["config"]["holdout_examples"] is None
    saved = json.loads((out / "config.json").read_text())
    for key in ("select_on", "holdout_size", "holdout_examples"):  # as a folder of an older version
        del saved[key]
    (out / "config.json").write_text(json.dumps(saved))
    plain = dataclasses.replace(config, select_on=None)
    assert folder_select_on(plain, out) == "dev" and folder_select_on(plain, tmp_path / "new") == "holdout"
    assert run_glue(plain) == record  # the same command finds its finished run, with its meaning
    with pytest.raises(DeltamixError, match="select_on: 'dev' there, 'holdout' now"):
        run_glue(dataclasses.replace(config, select_on="holdout"))
