"""GLUE metrics against scipy / scikit-learn and closed forms, and the paper's GLUE average."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

from deltamix.experiments.glue.metrics import GLUE_AVERAGE_COLUMNS, glue_average, glue_metrics, task_score

RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, 2, size=200)
PREDICTIONS = np.where(RNG.random(200) < 0.8, LABELS, 1 - LABELS)


def test_cola_is_matthews() -> None:
    metrics = glue_metrics("cola", PREDICTIONS, LABELS)
    assert metrics == {"mcc": pytest.approx(matthews_corrcoef(LABELS, PREDICTIONS))}
    # closed form on a 2x2 table: tp=3, tn=2, fp=1, fn=0
    mcc = glue_metrics("cola", [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0])["mcc"]
    assert mcc == pytest.approx((3 * 2 - 1 * 0) / math.sqrt(4 * 3 * 3 * 2))
    assert glue_metrics("cola", [1, 1, 1], [0, 1, 0])["mcc"] == 0.0  # constant prediction


@pytest.mark.parametrize("task", ["sst2", "rte", "qnli", "wnli"])
def test_accuracy_tasks(task: str) -> None:
    assert glue_metrics(task, PREDICTIONS, LABELS) == {
        "accuracy": pytest.approx((PREDICTIONS == LABELS).mean())
    }


@pytest.mark.parametrize("task", ["mrpc", "qqp"])
def test_accuracy_and_f1(task: str) -> None:
    metrics = glue_metrics(task, PREDICTIONS, LABELS)
    assert metrics["accuracy"] == pytest.approx((PREDICTIONS == LABELS).mean())
    assert metrics["f1"] == pytest.approx(f1_score(LABELS, PREDICTIONS))
    # closed form: tp=2, fp=1, fn=1 -> F1 = 2*2 / (2*2 + 1 + 1)
    assert glue_metrics(task, [1, 1, 1, 0], [1, 1, 0, 1])["f1"] == pytest.approx(4 / 6)


def test_stsb_pearson_spearman_from_scores_or_logits() -> None:
    gold = RNG.uniform(0, 5, size=100)
    predicted = gold + RNG.normal(0, 1, size=100)
    metrics = glue_metrics("stsb", predicted[:, None], gold)  # (N, 1) regression logits
    assert metrics["pearson"] == pytest.approx(pearsonr(predicted, gold)[0])
    assert metrics["spearman"] == pytest.approx(spearmanr(predicted, gold)[0])
    assert glue_metrics("stsb", np.ones(4), [1.0, 2.0, 3.0, 4.0]) == {"pearson": 0.0, "spearman": 0.0}


def test_logits_are_argmaxed() -> None:
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    assert glue_metrics("mnli", logits, [1, 0, 1])["accuracy"] == pytest.approx(2 / 3)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="3 predictions but 2 labels"):
        glue_metrics("rte", [0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="no predictions"):
        glue_metrics("rte", [], [])
    with pytest.raises(ValueError, match="unknown GLUE task"):
        glue_metrics("squad", [0], [0])


def test_glue_average_is_mean_of_per_column_means() -> None:
    columns = {
        "cola": {"mcc": 0.5},
        "mrpc": {"accuracy": 0.8, "f1": 0.9},
        "stsb": {"pearson": 0.7, "spearman": 0.9},
        "mnli-m": 0.6,
        "mnli-mm": {"accuracy": 0.4},
        "wnli": {"accuracy": 0.1},  # left out, as in the paper
    }
    expected = (0.5 + 0.85 + 0.8 + 0.6 + 0.4) / 5
    assert glue_average(columns) == pytest.approx(expected)
    assert task_score({"accuracy": 0.8, "f1": 0.9}) == pytest.approx(0.85)
    assert math.isnan(glue_average({"wnli": 0.5}))
    assert "wnli" not in GLUE_AVERAGE_COLUMNS and len(GLUE_AVERAGE_COLUMNS) == 9
