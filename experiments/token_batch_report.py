"""Summarise the runs of experiments/token_batches.sh: token batches against sentence batches.

Reads results/token-batches/*.jsonl and writes results/token-batches/README.md: per recipe (task,
method, model, epochs), the main metric of each batching (mean ± sd over seeds), the seed-paired
difference token - sentence batches with its min and max, and the optimizer steps each took. The
runs share their machine with others, so their times are not compared; how fast each batching
trains comes from the throughput benchmark's records in the same folder (bench.jsonl, written by
``benchmarks/bench_throughput.py --recipes scan --configs fp32-1thread token-batches
--max-tokens-scan N --results-dir results/token-batches``: one process, interleaved rounds, the
speedup paired per round), shown in a second table.

    python experiments/token_batch_report.py [--results-dir results/token-batches]
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from deltamix.core.io import read_jsonl
from deltamix.experiments.report.common import markdown_table, mean_sd, write_summary_page

SENTENCES = "sentence batches"


def batching(record: dict[str, Any]) -> str:
    """``"sentence batches"``, or ``"<N> tokens"`` for token-budget batches of at most N tokens."""
    max_tokens = record["config"]["training"].get("max_tokens")
    return f"{max_tokens} tokens" if max_tokens else SENTENCES


def _recipe(record: dict[str, Any]) -> str:
    epochs = float(record["config"]["epochs"])  # the epochs trained, as the SCAN record states them
    return (
        f"{record['experiment']}: {record['task']} ({record['method']}, {record['model']}, {epochs:g} epochs)"
    )


def _steps(records: dict[int, dict[str, Any]]) -> str:
    steps = sorted({int(r["config"]["steps"]) for r in records.values()})
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


def speed_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """One row per token-batch benchmark record: its budget, tokens/s, paired speedup, load."""
    rows = []
    for record in records:
        if record["method"] != "token-batches":
            continue
        metrics = record["metrics"]
        rows.append([
            record["model"],
            str(record["config"]["setting"]["max_tokens"]),
            f"{metrics['tokens_per_second']:.0f}",
            f"{metrics['speedup']:.2f} ({metrics['speedup_min']:.2f}-{metrics['speedup_max']:.2f})",
            f"{metrics['target_tokens_per_step']:.0f}",
            f"{metrics['rounds']:.0f}",
            f"{metrics['load_average']:.1f}",
            record["hardware"]["cpu"],
        ])  # fmt: skip
    return rows


def render(results_dir: Path) -> str:
    records = []
    for path in sorted(results_dir.glob("*.jsonl")):
        records += read_jsonl(path)
    runs = [r for r in records if r["experiment"] != "bench"]
    benches = [r for r in records if r["experiment"] == "bench"]
    speed_header = [
        "recipe", "max tokens", "target tokens/s", "speedup over batches of 32 (median, min-max)",
        "target tokens a step", "rounds", "load average", "CPU",
    ]  # fmt: skip
    header = [
        "recipe", "token batches", "sentence batches", "token batches", "Δ mean (points)",
        "Δ per seed (min / max)", "token batches higher", "optimizer steps (sentences / tokens)",
    ]  # fmt: skip
    return (
        "# Token batches against sentence batches at the same budget\n\n"
        "Made by `python experiments/token_batch_report.py` from the records of "
        "`experiments/token_batches.sh`: the same data, epochs and learning rate, the examples cut into "
        "batches of 32 or into batches of at most N padded tokens. Scores in %, mean ± sd (seeds); Δ is "
        "token minus sentence batches, paired by seed.\n\n"
        + markdown_table(header, comparison_rows(runs))
        + "\n## Speed\n\nTarget tokens per second of one training step (SeqMix on, fp32, one thread), "
        "token batches against batches of 32 in one process, interleaved rounds, paired per round.\n\n"
        + markdown_table(speed_header, speed_rows(benches))
    )


def main(argv: list[str] | None = None) -> None:
    write_summary_page(__doc__.split("\n")[0], Path("results/token-batches"), render, argv)


if __name__ == "__main__":
    main()
