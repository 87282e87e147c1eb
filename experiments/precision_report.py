"""Summarise the bf16-against-fp32 parity runs of experiments/precision_parity.sh.

Reads results/precision/{glue,scan,parsing,translation}.jsonl and writes results/precision/README.md:
per recipe, the main metric of each precision (mean ± sd over seeds), the seed-paired difference
bf16 - fp32 with its min and max, whether the mean difference lies within the seed spread (the
larger of the two standard deviations) and within ``PARITY_POINTS`` (0.5 points: what the GLUE
methods must show before ``--precision auto`` trains them in bf16, deltamix.experiments.glue.methods), and the
training-time ratio fp32 / bf16 per seed pair.

    python experiments/precision_report.py [--results-dir results/precision]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from deltamix.core.io import atomic_write_text, read_jsonl
from deltamix.experiments.report.common import markdown_table, mean_sd

FILES = ("glue", "scan", "parsing", "translation")
PARITY_POINTS = 0.5  # |mean bf16 - mean fp32| in points (% or BLEU) that counts as parity


def _precision(record: dict[str, Any]) -> str:
    config = record.get("config", {})
    return config.get("precision") or config.get("run", {}).get("precision") or "fp32"


def _recipe(record: dict[str, Any]) -> str:
    return f"{record['experiment']}: {record['task']} ({record['method']}, {record['model']})"


def parity_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """One table row per recipe that has runs of both precisions."""
    cells: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    for record in records:  # the latest record of each (recipe, precision, seed)
        cells.setdefault(_recipe(record), {}).setdefault(_precision(record), {})[record["seed"]] = record
    rows = []
    for recipe, by_precision in sorted(cells.items()):
        fp32, bf16 = by_precision.get("fp32", {}), by_precision.get("bf16", {})
        if not fp32 or not bf16:
            continue
        scale = 1.0 if next(iter(fp32.values()))["main_metric"] == "bleu" else 100.0
        a = [r["main_value"] * scale for r in fp32.values()]
        b = [r["main_value"] * scale for r in bf16.values()]
        seeds = sorted(set(fp32) & set(bf16))
        paired = [(bf16[s]["main_value"] - fp32[s]["main_value"]) * scale for s in seeds]
        spread = max(statistics.stdev(v) if len(v) > 1 else 0.0 for v in (a, b))
        delta = statistics.mean(b) - statistics.mean(a)
        speed = [fp32[s]["train_seconds"] / bf16[s]["train_seconds"] for s in seeds]
        rows.append([
            recipe,
            next(iter(fp32.values()))["main_metric"],
            mean_sd(a, digits=2),
            mean_sd(b, digits=2),
            f"{delta:+.2f}",
            f"{min(paired):+.2f} / {max(paired):+.2f}" if paired else "–",
            f"{spread:.2f}",
            "yes" if abs(delta) <= spread else "no",
            "yes" if abs(delta) <= PARITY_POINTS and len(seeds) >= 3 else "no",
            f"{statistics.median(speed):.2f} ({min(speed):.2f}-{max(speed):.2f})" if speed else "–",
        ])  # fmt: skip
    return rows


def render(results_dir: Path) -> str:
    records = []
    for name in FILES:
        path = results_dir / f"{name}.jsonl"
        if path.is_file():
            records += read_jsonl(path)
    header = [
        "recipe", "metric", "fp32", "bf16", "Δ mean", "Δ per seed (min / max)", "seed spread (sd)",
        "within spread", f"within {PARITY_POINTS} (3+ seeds)", "time fp32 / bf16 (median, min-max)",
    ]  # fmt: skip
    return (
        "# bf16 against fp32 at the same budget\n\n"
        "Made by `python experiments/precision_report.py` from the records of "
        "`experiments/precision_parity.sh` (1 thread per run, two runs side by side on a 2-core machine). "
        "Scores in % (BLEU as is), mean ± sd (seeds); 'within spread' = |Δ mean| <= the larger seed sd.\n\n"
        + markdown_table(header, parity_rows(records))
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--results-dir", type=Path, default=Path("results/precision"), help="default: %(default)s"
    )
    args = parser.parse_args(argv)
    text = render(args.results_dir)
    atomic_write_text(args.results_dir / "README.md", text)
    print(text)


if __name__ == "__main__":
    main()
