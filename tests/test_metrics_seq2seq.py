"""Exact match and BLEU against hand-checked cases."""

from __future__ import annotations

import pytest

from deltamix.training.metrics import corpus_bleu, exact_match


def test_exact_match_normalises_whitespace() -> None:
    assert exact_match(["a  b", "c"], ["a b", "d"]) == 0.5
    with pytest.raises(ValueError, match="2 predictions for 1"):
        exact_match(["a", "b"], ["a"])


def test_bleu_identity_and_known_value() -> None:
    score, signature = corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert score == pytest.approx(100.0)
    assert "tok:13a" in signature
    # Precisions 4/6, 3/5, 2/4, 1/3 and equal lengths (brevity penalty 1):
    # BLEU = 100 * (4/6 * 3/5 * 2/4 * 1/3) ** (1/4) = 50.81.
    score, _ = corpus_bleu(["the cat sat on a rug"], ["the cat sat on the mat"])
    assert score == pytest.approx(100 * (4 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=1e-6)
