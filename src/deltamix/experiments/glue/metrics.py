"""GLUE metrics: the official metric(s) of each task (scipy / scikit-learn) and the GLUE average.

Per task (GLUE paper, Wang et al. 2019): CoLA Matthews correlation; SST-2, MNLI-m/-mm, QNLI, RTE,
WNLI accuracy; MRPC and QQP accuracy and F1 of the positive class; STS-B Pearson and Spearman
correlation. All values are in [0, 1] (correlations in [-1, 1]); reports multiply by 100.

The GLUE average (:func:`glue_average`) follows the paper's Table 1 (and the GLUE leaderboard):
each column is the mean of its task's metrics (MRPC: mean of accuracy and F1; QQP: likewise; STS-B:
mean of Pearson and Spearman); MNLI-m and MNLI-mm are two columns; WNLI is left out, as in the
paper (and BERT); the average is the unweighted mean of the columns.
Seq2seq metrics (exact match, BLEU) live in :mod:`deltamix.training.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from deltamix.data.glue import get_task

# Columns of the paper's GLUE table, in its order; the average is over these.
GLUE_AVERAGE_COLUMNS = ("qnli", "sst2", "mnli-m", "mnli-mm", "cola", "mrpc", "stsb", "rte", "qqp")


def accuracy(predictions: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Share of ``predictions`` (N,) equal to ``labels`` (N,)."""
    predictions, labels = _pair(predictions, labels)
    return float((predictions == labels).mean())


def f1_positive(predictions: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """F1 of class 1 (``sklearn.metrics.f1_score``, binary); 0 when neither side has a positive."""
    from sklearn.metrics import f1_score

    predictions, labels = _pair(predictions, labels)
    return float(f1_score(labels, predictions, average="binary", pos_label=1, zero_division=0))


def matthews(predictions: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Matthews correlation (``sklearn.metrics.matthews_corrcoef``); 0 for a constant prediction."""
    from sklearn.metrics import matthews_corrcoef

    predictions, labels = _pair(predictions, labels)
    return float(matthews_corrcoef(labels, predictions))


def pearson_spearman(
    predictions: Sequence[float] | np.ndarray, labels: Sequence[float] | np.ndarray
) -> dict[str, float]:
    """Pearson and Spearman correlation of scores (``scipy.stats``); 0 when either side is constant."""
    from scipy.stats import pearsonr, spearmanr

    predictions, labels = _pair(predictions, labels)
    if np.ptp(predictions) == 0 or np.ptp(labels) == 0:
        return {"pearson": 0.0, "spearman": 0.0}
    return {
        "pearson": float(pearsonr(predictions, labels)[0]),
        "spearman": float(spearmanr(predictions, labels)[0]),
    }


def glue_metrics(
    task: str, predictions: Sequence[float] | np.ndarray, labels: Sequence[float] | np.ndarray
) -> dict[str, float]:
    """The official metrics of one GLUE task.

    Args:
        task: GLUE task name (see :func:`deltamix.data.glue.get_task`).
        predictions: (N,) predicted class ids, or scores for STS-B; or (N, C) logits, reduced here
            (argmax, or the single column for STS-B).
        labels: (N,) gold class ids or scores.

    Returns:
        Metric name -> value, names as in ``GlueTask.metrics`` (``mcc``, ``accuracy``, ``f1``,
        ``pearson``, ``spearman``).
    """
    spec = get_task(task)
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:
        predictions = predictions[:, 0] if spec.is_regression else predictions.argmax(axis=-1)
    if spec.is_regression:
        return pearson_spearman(predictions.astype(np.float64), np.asarray(labels, dtype=np.float64))
    results = {}
    for name in spec.metrics:
        if name == "accuracy":
            results[name] = accuracy(predictions, labels)
        elif name == "f1":
            results[name] = f1_positive(predictions, labels)
        elif name == "mcc":
            results[name] = matthews(predictions, labels)
        else:
            raise ValueError(f"no implementation of metric {name!r} for task {task!r}")
    return results


def task_score(metrics: Mapping[str, float]) -> float:
    """One number per task column: the mean of its official metrics (as the paper averages)."""
    if not metrics:
        raise ValueError("no metrics to score")
    return float(sum(metrics.values()) / len(metrics))


def glue_average(columns: Mapping[str, Mapping[str, float] | float]) -> float:
    """The paper's GLUE average over the columns of :data:`GLUE_AVERAGE_COLUMNS`.

    Args:
        columns: column name (``qnli``, ``sst2``, ``mnli-m``, ``mnli-mm``, ``cola``, ``mrpc``,
            ``stsb``, ``rte``, ``qqp``; other keys such as ``wnli`` are ignored) -> that column's metrics
            dict, or its score already averaged.

    Returns:
        The mean of the per-column scores; NaN when none of the columns is present.

    >>> round(glue_average({"rte": {"accuracy": 0.7}, "mrpc": {"accuracy": 0.8, "f1": 0.9}}), 4)
    0.775
    """
    scores = []
    for column in GLUE_AVERAGE_COLUMNS:
        if column in columns:
            value = columns[column]
            scores.append(float(value) if isinstance(value, (int, float)) else task_score(value))
    return float(sum(scores) / len(scores)) if scores else math.nan


def _pair(predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    predictions, labels = np.asarray(predictions).reshape(-1), np.asarray(labels).reshape(-1)
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.shape[0]} predictions but {labels.shape[0]} labels")
    if predictions.size == 0:
        raise ValueError("no predictions to score")
    return predictions, labels
