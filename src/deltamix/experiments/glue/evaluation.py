"""Scoring a GLUE model: its logits on a tokenized set, and the official metrics on every eval split.

>>> metrics = evaluate("rte", model, {"validation": dev}, tokenizer)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from deltamix.experiments.glue.metrics import glue_metrics, task_score


@torch.no_grad()
def predict(model: nn.Module, dataset, tokenizer, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, C), labels (N,)) of ``model`` on a tokenized set, in order, on the model's device.

    The labels are not passed to the model, so a head can be swapped without touching its config.
    """
    device = next(model.parameters()).device
    labels = np.asarray(dataset["label"])
    inputs = dataset.remove_columns("label")
    loader = DataLoader(inputs, batch_size=batch_size, collate_fn=DataCollatorWithPadding(tokenizer))
    was_training = model.training
    model.eval()
    logits = []
    for batch in loader:
        output = model(**{k: v.to(device) for k, v in batch.items()})
        logits.append(output.logits.float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(logits), labels


def evaluate(
    task: str, model: nn.Module, evals: dict[str, Any], tokenizer, batch_size: int = 64
) -> dict[str, float]:
    """Official metrics and ``score`` of ``model`` on every eval split (MNLI: ``mismatched_*`` too).

    The first split's metrics are unprefixed; later splits are prefixed with their last name part
    (``validation_mismatched`` -> ``mismatched_accuracy``).
    """
    metrics: dict[str, float] = {}
    for position, (split, dataset) in enumerate(evals.items()):
        prefix = "" if position == 0 else split.rsplit("_", 1)[-1] + "_"
        logits, labels = predict(model, dataset, tokenizer, batch_size)
        results = glue_metrics(task, logits, labels)
        results["score"] = task_score(results)
        metrics.update({prefix + name: value for name, value in results.items()})
    return metrics


def default_device() -> torch.device:
    """CUDA if available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
