"""`deltamix report`: the results README and the README's generated benchmark block."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltamix.core.io import append_jsonl
from deltamix.core.records import make_record
from deltamix.experiments.report import (
    BENCH_END,
    BENCH_START,
    CLAIMS_END,
    CLAIMS_START,
    generate_report,
    replace_marked_block,
)


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


def test_report_writes_the_claims_at_a_glance_into_both_readmes(tmp_path: Path) -> None:
    """Each table's goal verdict is summarised at the top of results/README.md and in the README's
    claims block, from the records alone."""
    for method, seed, bleu in (
        ("none", 0, 30.0),
        ("none", 1, 31.0),
        ("seqmix", 0, 31.5),
        ("seqmix", 1, 31.0),
    ):
        record = make_record("translation", "multi30k-de-en", method, seed, {"bleu": bleu}, "bleu", {})
        record["model"] = "transformer-small"
        record["config"] = {"run": {"epochs": 15}}
        append_jsonl(tmp_path / "results" / "translation.jsonl", record)
    readme = tmp_path / "README.md"
    readme.write_text(f"# project\n{CLAIMS_START}\nold\n{CLAIMS_END}\nrest\n")
    text = generate_report(tmp_path / "results", readme=readme).read_text()
    line = (
        "- multi30k-de-en (model: transformer-small, 15 epochs): SeqMix at least +0.5 above `none` on the "
        "mean (BLEU): seqmix +0.75 (2 vs 2 seeds): met."
    )
    assert "## Claims and goals at a glance" in text and line in text
    assert text.index("at a glance") < text.index("## Translation")
    assert readme.read_text() == f"# project\n{CLAIMS_START}\n{line}\n{CLAIMS_END}\nrest\n"


def test_report_command_prints_the_claims(tmp_path: Path, monkeypatch, capsys) -> None:
    from deltamix.cli.main import main

    monkeypatch.chdir(tmp_path)  # the command rewrites ./README.md's marked blocks: keep it here
    for method, bleu in (("none", 30.0), ("seqmix", 29.0)):
        record = make_record("translation", "t", method, 0, {"bleu": bleu}, "bleu", {})
        append_jsonl(tmp_path / "results" / "translation.jsonl", record)
    assert main(["report", "--results-dir", "results"]) == 0
    out = capsys.readouterr().out
    assert "Claims and goals at a glance:" in out and "seqmix -1.00 (1 vs 1 seeds): not met." in out
    assert "wrote results/README.md" in out
