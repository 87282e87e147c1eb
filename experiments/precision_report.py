"""Summarise the bf16-against-fp32 parity runs of experiments/precision_parity.sh.

Reads results/precision/{glue,scan,parsing,translation}.jsonl and writes results/precision/README.md:
per recipe, the main metric of each precision (mean ± sd over seeds), the seed-paired difference
bf16 - fp32 with its min and max, whether the mean difference lies within the seed spread (the
larger of the two standard deviations) and within ``PARITY_POINTS`` (0.5 points: what the GLUE
methods must show before ``--precision auto`` trains them in bf16, deltamix.experiments.glue.methods), and the
training-time ratio fp32 / bf16 per seed pair. A bf16 run on a CPU without native bf16 (its record's
``hardware`` says ``cpu_bf16: false`` and no accelerator) computes the same bf16 rounding in emulation:
its score counts, its time does not (emulated bf16 is slower than fp32); records made before runs
recorded their hardware count as native. Emulated bf16 rounds the matrix products' inputs as native
bf16 does (fp32 accumulation), except the LSTM, which deltamix runs in fp32 there
(deltamix.models.lstm): emulated runs of LSTM recipes are left out.

    python experiments/precision_report.py [--results-dir results/precision]
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from deltamix.core.io import read_jsonl
from deltamix.experiments.report.common import markdown_table, mean_sd, write_summary_page

FILES = ("glue", "scan", "parsing", "translation")
PARITY_POINTS = 0.5  # |mean bf16 - mean fp32| in points (% or BLEU) that counts as parity


def _precision(record: dict[str, Any]) -> str:
    config = record.get("config", {})
    return config.get("precision") or config.get("run", {}).get("precision") or "fp32"


def emulated_bf16(record: dict[str, Any]) -> bool:
    """Whether a bf16 run trained on a CPU that emulates bf16 (no native bf16 instructions, no accelerator)."""
    hardware = record.get("hardware")
    return (
        _precision(record) == "bf16"
        and bool(hardware)
        and not hardware.get("accelerator")
        and hardware.get("cpu_bf16") is False
    )


def _speed(fp32: dict[str, Any], bf16: dict[str, Any]) -> str:
    """fp32 / bf16 training time, median (min-max) over the seed pairs whose bf16 ran natively."""
    seeds = [s for s in sorted(set(fp32) & set(bf16)) if not emulated_bf16(bf16[s])]
    speed = [fp32[s]["train_seconds"] / bf16[s]["train_seconds"] for s in seeds]
    left_out = len(set(fp32) & set(bf16)) - len(seeds)
    note = f" ({left_out} emulated left out)" if left_out else ""
    if not speed:
        return "–" + note
    return f"{statistics.median(speed):.2f} ({min(speed):.2f}-{max(speed):.2f}){note}"


def _recipe(record: dict[str, Any]) -> str:
    return f"{record['experiment']}: {record['task']} ({record['method']}, {record['model']})"


def parity_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """One table row per recipe that has runs of both precisions."""
    cells: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    for record in records:  # the latest record of each (recipe, precision, seed)
        if emulated_bf16(record) and "lstm" in record["model"]:
            continue  # its LSTM ran in fp32
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
            _speed(fp32, bf16),
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
        "Scores in % (BLEU as is), mean ± sd (seeds); 'within spread' = |Δ mean| <= the larger seed sd. "
        "A bf16 run on a CPU without native bf16 rounds as native bf16 does, in emulation: its score "
        "counts, its time is left out of the time column (LSTM recipes leave such runs out: their LSTM "
        "runs in fp32 there).\n\n" + markdown_table(header, parity_rows(records))
    )


def main(argv: list[str] | None = None) -> None:
    write_summary_page(__doc__.split("\n")[0], Path("results/precision"), render, argv)


if __name__ == "__main__":
    main()
