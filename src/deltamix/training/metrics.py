"""Sequence-output metrics: exact match and corpus BLEU (sacrebleu, with its signature)."""

from __future__ import annotations

from collections.abc import Sequence

import sacrebleu


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of predictions equal to their reference after whitespace normalisation.

    Raises:
        ValueError: if the two lists differ in length or are empty.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("exact_match needs at least one example")
    hits = sum(
        " ".join(p.split()) == " ".join(r.split()) for p, r in zip(predictions, references, strict=True)
    )
    return hits / len(references)


def corpus_bleu(
    hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "13a"
) -> tuple[float, str]:
    """Corpus BLEU of detokenized hypotheses against one reference each, with sacrebleu.

    Returns:
        (score on 0-100, sacrebleu's signature string, to store with the score).

    Raises:
        ValueError: if the two lists differ in length or are empty.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if not references:
        raise ValueError("corpus_bleu needs at least one example")
    metric = sacrebleu.metrics.BLEU(tokenize=tokenize)
    score = metric.corpus_score(list(hypotheses), [list(references)])
    return float(score.score), str(metric.get_signature())
