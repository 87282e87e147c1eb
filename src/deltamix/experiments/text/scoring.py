"""The test scores of a text run: corpus BLEU with its sacrebleu signature, or exact match (per category).

>>> score("exact_match", ["a b", "c"], ["a  b", "d"])
{'exact_match': 0.5}
"""

from __future__ import annotations

from typing import Any

from deltamix.training.metrics import corpus_bleu, exact_match


def score(metric: str, predictions: list[str], references: list[str]) -> dict[str, Any]:
    """``{"bleu": ..., "bleu_signature": ...}`` or ``{"exact_match": ...}`` of ``predictions``."""
    if metric == "bleu":
        value, signature = corpus_bleu(predictions, references)
        return {"bleu": value, "bleu_signature": signature}
    return {"exact_match": exact_match(predictions, references)}


def exact_match_by_category(
    predictions: list[str], references: list[str], categories: list[str]
) -> dict[str, float]:
    """``{"exact_match:<category>": share, "num_test:<category>": count}`` for each category label of
    the test pairs (files read with a ``category`` column, e.g. COGS's generalisation types)."""
    scores: dict[str, float] = {}
    for category in sorted(set(categories)):
        rows = [i for i, label in enumerate(categories) if label == category]
        scores[f"exact_match:{category}"] = exact_match(
            [predictions[i] for i in rows], [references[i] for i in rows]
        )
        scores[f"num_test:{category}"] = float(len(rows))
    return scores
