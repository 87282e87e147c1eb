"""The majority-class score of a GLUE evaluation set: what a model that learned nothing scores.

Every GLUE run records it beside its dev metrics, so the report can say which results are above
chance without reading the data again (RTE's dev set: 52.7 for always answering ``not_entailment``).

>>> majority_class_metrics("rte", [0, 1, 1])["accuracy"]  # doctest: +ELLIPSIS
0.666...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deltamix.data.glue import get_task
from deltamix.experiments.glue.metrics import glue_metrics, task_score


def majority_label(labels: Sequence[int] | np.ndarray) -> int:
    """The most frequent class id of ``labels`` (N,); the smallest id among equally frequent ones."""
    values, counts = np.unique(np.asarray(labels, dtype=np.int64), return_counts=True)
    if len(values) == 0:
        raise ValueError("labels is empty: no majority class")
    return int(values[np.argmax(counts)])


def majority_class_metrics(task: str, labels: Sequence[float] | np.ndarray) -> dict[str, float]:
    """The task's official metrics and ``score`` of always predicting the set's most frequent class.

    Args:
        task: GLUE task name.
        labels: (N,) gold class ids, or STS-B scores.

    Returns:
        Metric name -> value as `deltamix.experiments.glue.metrics.glue_metrics` names them, plus ``score`` (their
        mean). For STS-B the constant prediction is the mean score, whose correlations are 0.
    """
    labels = np.asarray(labels)
    if get_task(task).is_regression:
        constant = np.full(len(labels), float(labels.mean()) if len(labels) else 0.0)
    else:
        constant = np.full(len(labels), majority_label(labels))
    metrics = glue_metrics(task, constant, labels)
    metrics["score"] = task_score(metrics)
    return metrics


def majority_class_record(task: str, evals: dict[str, Any]) -> dict[str, Any]:
    """The majority class of each evaluation split, as a run's record keeps it.

    Args:
        task: GLUE task name.
        evals: eval split name -> a dataset with a ``label`` column (the first split is the main one).

    Returns:
        ``{"labels": {split: class name or "mean score"}, "metrics": {...}}``; the metrics are named as
        `deltamix.experiments.glue.run.evaluate` names the model's (later splits prefixed, ``mismatched_score``).
    """
    spec = get_task(task)
    labels: dict[str, str] = {}
    metrics: dict[str, float] = {}
    for position, (split, dataset) in enumerate(evals.items()):
        prefix = "" if position == 0 else split.rsplit("_", 1)[-1] + "_"
        gold = np.asarray(dataset["label"])
        labels[split] = "mean score" if spec.is_regression else spec.label_names[majority_label(gold)]
        metrics.update({prefix + k: v for k, v in majority_class_metrics(task, gold).items()})
    return {"labels": labels, "metrics": metrics}
