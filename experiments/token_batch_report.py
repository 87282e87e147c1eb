"""Summarise the runs of experiments/token_batches.sh: token batches against sentence batches.

Reads results/token-batches/*.jsonl and writes results/token-batches/README.md: per recipe (task,
method, model, epochs), the main metric of each batching (mean ± sd over seeds), the seed-paired
difference token - sentence batches with its min and max, and the optimizer steps each took. How
fast each batching trains is measured apart, in one process with interleaved rounds
(benchmarks/bench_throughput.py, results/bench.jsonl); the runs here share their machine with
others, so their times are not compared.

    python experiments/token_batch_report.py [--results-dir results/token-batches]
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from deltamix.core.io import read_jsonl
from deltamix.experiments.report.common import markdown_table, mean_sd, write_summary_page

SENTENCES = "sentence batches"


def _config(record: dict[str, Any]) -> dict[str, Any]:
    config = record.get("config", {})
    return {**config.get("training", {}), **config.get("run", {}), **config}


def batching(record: dict[str, Any]) -> str:
    """``"sentence batches"``, or ``"<N> tokens"`` for token-budget batches of at most N tokens."""
    max_tokens = _config(record).get("max_tokens")
    return f"{max_tokens} tokens" if max_tokens else SENTENCES


def _recipe(record: dict[str, Any]) -> str:
    epochs = float(_config(record).get("epochs") or 0)
    return (
        f"{record['experiment']}: {record['task']} ({record['method']}, {record['model']}, {epochs:g} epochs)"
    )


def _steps(records: dict[int, dict[str, Any]]) -> str:
    steps = sorted({int(_config(r).get("steps", 0)) for r in records.values()})
    return "/".join(str(s) for s in steps)


def comparison_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """One row per recipe and token budget that has sentence-batch runs to compare with."""
    cells: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    for record in records:  # the latest record of each (recipe, batching, seed)
        cells.setdefault(_recipe(record), {}).setdefault(batching(record), {})[record["seed"]] = record
    rows = []
    for recipe, by_batching in sorted(cells.items()):
        sentences = by_batching.get(SENTENCES, {})
        for name, tokens in sorted(by_batching.items()):
            if name == SENTENCES or not sentences:
                continue
            seeds = sorted(set(sentences) & set(tokens))
            paired = [100 * (tokens[s]["main_value"] - sentences[s]["main_value"]) for s in seeds]
            rows.append([
                recipe,
                name,
                mean_sd([r["main_value"] for r in sentences.values()], scale=100),
                mean_sd([r["main_value"] for r in tokens.values()], scale=100),
                f"{statistics.mean(paired):+.1f}" if paired else "–",
                f"{min(paired):+.1f} / {max(paired):+.1f}" if paired else "–",
                f"{sum(p > 0 for p in paired)} of {len(paired)}",
                f"{_steps(sentences)} / {_steps(tokens)}",
            ])  # fmt: skip
    return rows


def render(results_dir: Path) -> str:
    records = []
    for path in sorted(results_dir.glob("*.jsonl")):
        records += read_jsonl(path)
    header = [
        "recipe", "token batches", "sentence batches", "token batches", "Δ mean (points)",
        "Δ per seed (min / max)", "token batches higher", "optimizer steps (sentences / tokens)",
    ]  # fmt: skip
    return (
        "# Token batches against sentence batches at the same budget\n\n"
        "Made by `python experiments/token_batch_report.py` from the records of "
        "`experiments/token_batches.sh`: the same data, epochs and learning rate, the examples cut into "
        "batches of 32 or into batches of at most N padded tokens. Scores in %, mean ± sd (seeds); Δ is "
        "token minus sentence batches, paired by seed. Training speed: results/README.md, Benchmarks "
        "(train-throughput-*).\n\n" + markdown_table(header, comparison_rows(records))
    )


def main(argv: list[str] | None = None) -> None:
    write_summary_page(__doc__.split("\n")[0], Path("results/token-batches"), render, argv)


if __name__ == "__main__":
    main()
