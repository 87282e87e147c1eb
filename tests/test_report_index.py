"""`deltamix report`: the results README and the README's generated benchmark block."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltamix.io import append_jsonl
from deltamix.records import make_record
from deltamix.report import BENCH_END, BENCH_START, generate_report, replace_marked_block


def test_replace_marked_block_keeps_the_rest() -> None:
    text = f"intro\n{BENCH_START}\nold\n{BENCH_END}\noutro\n"
    assert replace_marked_block(text, "new") == f"intro\n{BENCH_START}\nnew\n{BENCH_END}\noutro\n"
    with pytest.raises(ValueError, match="markers"):
        replace_marked_block("no markers", "new")


def test_report_writes_results_readme_and_readme_block(tmp_path: Path) -> None:
    record = make_record("bench", "switch-time", "minilm", 0, {"switch_ms": 3.5}, "switch_ms", {})
    append_jsonl(tmp_path / "results" / "bench.jsonl", record)
    readme = tmp_path / "README.md"
    readme.write_text(f"# project\n{BENCH_START}\n{BENCH_END}\n")
    path = generate_report(tmp_path / "results", readme=readme)
    assert "switch_ms" in path.read_text()
    text = readme.read_text()
    assert text.startswith("# project\n") and "switch-time" in text and "3.500" in text
