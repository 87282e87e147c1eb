"""The per-category exact-match tables of the parsing report (COGS-style data with a category column)."""

from __future__ import annotations

from deltamix.experiments.report.parsing import category_tables


def _record(method: str, seed: int, metrics: dict[str, float]) -> dict:
    return {"experiment": "parsing", "task": "cogs", "method": method, "seed": seed, "metrics": metrics}


def test_each_category_gets_a_row_and_each_method_a_column() -> None:
    records = [
        _record("none", 0, {"exact_match": 0.5, "exact_match:lexical": 0.25, "exact_match:structural": 0.75}),
        _record("none", 1, {"exact_match": 0.5, "exact_match:lexical": 0.35, "exact_match:structural": 0.65}),
        _record("seqmix", 0, {"exact_match": 0.6, "exact_match:lexical": 0.5}),
    ]
    text = category_tables(records)
    assert "### cogs: exact match per category (%)" in text
    assert "| category | none | seqmix |" in text
    assert "| lexical | 30.0 ± 7.1 (2) | 50.0 (1) |" in text
    assert "| structural | 70.0 ± 7.1 (2) | – |" in text


def test_records_without_categories_give_no_table() -> None:
    assert category_tables([_record("none", 0, {"exact_match": 0.5})]) == ""
