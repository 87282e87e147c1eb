"""SCAN methods side by side on the same seeds: runs in parallel, a table of differences, a plot.

>>> result = compare_scan(ScanComparisonConfig(methods=("geca", "geca+seqmix"), seeds=(0, 1)))  # doctest: +SKIP
>>> result.differences[0].mean  # doctest: +SKIP

Each (method, seed) is an ordinary `run_scan` run (its own folder under ``runs/scan/``, its record in
``results/scan.jsonl``; a finished run is reused, an interrupted one resumes). The runs go to a pool
of worker processes, one thread each by default, since two small LSTM runs side by side use two
cores better than one run on both. The comparison pairs each method with the method it extends
(`BASELINE_OF`: SeqMix with no augmentation, GECA + SeqMix with GECA) on the same seeds, and writes
``comparison.json``, ``comparison.md`` and ``comparison.png`` into its folder.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import multiprocessing
import os
import statistics
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from deltamix.core.io import atomic_path, atomic_write_json, atomic_write_text
from deltamix.core.precision import (
    available_cores,
    precision_field,
)
from deltamix.experiments.scan.run import AUGMENTATIONS, SPLITS, ScanRunConfig, default_training, run_scan

logger = logging.getLogger(__name__)

# The method each augmentation is compared against: the same training without the SeqMix part.
BASELINE_OF = {
    "seqmix": "none",
    "seqmix-hard": "none",
    "word-dropout": "none",
    "switchout": "none",
    "geca": "none",
    "geca+seqmix": "geca",
}
# At 1500 steps on addprim_jump, GECA + SeqMix beats GECA in each of seeds 0-2 (results/scan.jsonl);
# none and SeqMix alone stay near 0% there, so the default pair is the one whose gain shows.
DEFAULT_METHODS = ("geca", "geca+seqmix")
DEFAULT_SEEDS = (0, 1)


@dataclass
class ScanComparisonConfig:
    """Which SCAN runs to compare and how to run them."""

    split: str = field(default="addprim_jump", metadata={"help": "SCAN split", "choices": SPLITS})
    methods: tuple[str, ...] = field(
        default=DEFAULT_METHODS,
        metadata={"help": "augmentations to compare", "choices": AUGMENTATIONS, "nargs": "+"},
    )
    seeds: tuple[int, ...] = field(
        default=DEFAULT_SEEDS,
        metadata={"help": "seeds every method runs", "type": "non_negative_int", "nargs": "+"},
    )
    steps: int = field(
        default=1500,
        metadata={
            "help": "training steps of each run",
            "flag": "--max-steps",
            "aliases": ("--steps",),
            "type": "positive_int",
        },
    )
    precision: str = precision_field()
    workers: int | None = field(
        default=None,
        metadata={
            "help": "runs at a time, one thread each",
            "type": "positive_int",
            "default_help": "one per core, at most one per run",
        },
    )
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "folder of the comparison files",
            "type": "output_dir",
            "default_help": "runs/scan-compare/SPLIT-STEPS",
        },
    )
    results_dir: str = field(
        default="results", metadata={"help": "where the runs' records go", "type": "output_dir"}
    )
    runs_dir: str | None = field(
        default=None, metadata={"help": "folder of the run folders (None: each run's default, runs/scan/...)"}
    )
    model_config: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "overrides of the LSTM config (e.g. hidden_size)"}
    )
    train_limit: int | None = field(default=None, metadata={"help": "first N training pairs (quick checks)"})
    test_limit: int | None = field(default=None, metadata={"help": "first N test pairs (quick checks)"})

    def __post_init__(self) -> None:
        self.methods, self.seeds = tuple(self.methods), tuple(self.seeds)
        unknown = [m for m in self.methods if m not in AUGMENTATIONS]
        if unknown or not self.methods:
            raise ValueError(f"unknown or no methods {unknown}; valid: {', '.join(AUGMENTATIONS)}")
        if len(set(self.methods)) < len(self.methods) or len(set(self.seeds)) < len(self.seeds):
            raise ValueError("methods and seeds must not repeat")
        if not self.seeds or min(self.seeds) < 0:
            raise ValueError(f"seeds must be non-negative and at least one, got {self.seeds}")
        if self.steps <= 0 or (self.workers is not None and self.workers <= 0):
            raise ValueError("steps and workers must be > 0")
        if self.split not in SPLITS:
            raise ValueError(f"unknown SCAN split {self.split!r}; valid: {', '.join(SPLITS)}")

    def run_configs(self) -> list[ScanRunConfig]:
        """The run of each (seed, method), seeds outermost so that a pair finishes together."""
        training = replace(default_training(), max_steps=self.steps, precision=self.precision)
        return [
            ScanRunConfig(
                split=self.split,
                augment=method,
                seed=seed,
                results_dir=self.results_dir,
                training=replace(training, seed=seed),
                num_threads=1,
                model_config=dict(self.model_config),
                train_limit=self.train_limit,
                test_limit=self.test_limit,
                output_dir=None
                if self.runs_dir is None
                else str(Path(self.runs_dir) / f"{method}-seed{seed}"),
            )
            for seed in self.seeds
            for method in self.methods
        ]

    def resolved_output_dir(self) -> Path:
        return Path(self.output_dir or f"runs/scan-compare/{self.split}-{self.steps}")


@dataclass
class Difference:
    """``method`` minus ``baseline`` in exact match (points), paired by seed."""

    method: str
    baseline: str
    per_seed: dict[int, float]

    @property
    def mean(self) -> float:
        return statistics.mean(self.per_seed.values())

    @property
    def wins(self) -> int:
        return sum(value > 0 for value in self.per_seed.values())


@dataclass
class ScanComparison:
    """Exact match (%) of every run, the paired differences, and the files written."""

    config: ScanComparisonConfig
    exact_match: dict[str, dict[int, float]]  # method -> seed -> %
    differences: list[Difference]
    seconds: dict[str, dict[int, float]]  # method -> seed -> training seconds
    files: dict[str, str]


def _run_in_worker(config: ScanRunConfig) -> tuple[float, float]:
    """Worker: one run with its info logs off; (exact match, training seconds)."""
    logging.getLogger().setLevel(logging.WARNING)
    result = run_scan(config)
    return result.metrics["exact_match"], result.train_seconds


def _steps_done(folder: Path) -> int:
    """The last step a run's log names (0 before its first log line)."""
    log = folder / "log.jsonl"
    if not log.is_file():
        return 0
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        try:
            return int(json.loads(line).get("step", 0))
        except (json.JSONDecodeError, AttributeError, ValueError):
            continue
    return 0


def _run_all(configs: list[ScanRunConfig], workers: int, steps: int) -> list[tuple[float, float]]:
    """Run ``configs`` in ``workers`` processes with one progress bar over all their steps."""
    folders = [config.resolved_output_dir() for config in configs]
    context = multiprocessing.get_context("spawn")  # no forked copies of torch's thread pools
    # The workers' own bars would garble this one: tqdm reads TQDM_DISABLE when a process imports it,
    # and spawned workers inherit the environment (this process's tqdm was imported before).
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        return _run_pool(configs, folders, workers, steps, context)
    finally:
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous


def _run_pool(
    configs: list[ScanRunConfig], folders: list[Path], workers: int, steps: int, context: Any
) -> list[tuple[float, float]]:
    with (
        concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool,
        tqdm(total=steps * len(configs), desc="training", unit="step", dynamic_ncols=True) as bar,
    ):
        futures = [pool.submit(_run_in_worker, config) for config in configs]
        while True:
            done, pending = concurrent.futures.wait(futures, timeout=2.0)
            finished = sum(
                steps if f in done else min(steps, _steps_done(p))
                for f, p in zip(futures, folders, strict=True)
            )
            bar.update(finished - bar.n)
            bar.set_postfix(runs=f"{len(done)}/{len(futures)}")
            if not pending:
                break
        return [future.result() for future in futures]  # raises a run's error here


def compare_scan(config: ScanComparisonConfig) -> ScanComparison:
    """Run every (method, seed) of ``config`` and compare them; see the module docstring."""
    configs = config.run_configs()
    workers = config.workers or max(1, min(available_cores(), len(configs)))
    logger.info("%d SCAN runs (%s x seeds %s), %d at a time", len(configs), ", ".join(config.methods),
                ", ".join(map(str, config.seeds)), workers)  # fmt: skip
    outcomes = _run_all(configs, workers, config.steps)
    exact: dict[str, dict[int, float]] = {m: {} for m in config.methods}
    seconds: dict[str, dict[int, float]] = {m: {} for m in config.methods}
    for run, (value, train_seconds) in zip(configs, outcomes, strict=True):
        exact[run.augment][run.seed] = 100 * value
        seconds[run.augment][run.seed] = train_seconds
    differences = [
        Difference(m, BASELINE_OF[m], {s: exact[m][s] - exact[BASELINE_OF[m]][s] for s in config.seeds})
        for m in config.methods
        if BASELINE_OF.get(m) in exact
    ]
    out = config.resolved_output_dir()
    files = {name: str(out / f"comparison.{name}") for name in ("json", "md", "png")}
    comparison = ScanComparison(config, exact, differences, seconds, files)
    atomic_write_json(out / "comparison.json", comparison_dict(comparison))
    atomic_write_text(out / "comparison.md", comparison_markdown(comparison))
    plot_comparison(comparison, out / "comparison.png")
    return comparison


def comparison_dict(comparison: ScanComparison) -> dict[str, Any]:
    """The comparison as plain JSON data."""
    return {
        "config": asdict(comparison.config),
        "exact_match": {m: {str(s): v for s, v in seeds.items()} for m, seeds in comparison.exact_match.items()},
        "train_seconds": {m: {str(s): v for s, v in seeds.items()} for m, seeds in comparison.seconds.items()},
        "differences": [
            {"method": d.method, "baseline": d.baseline, "per_seed": {str(s): v for s, v in d.per_seed.items()},
             "mean": d.mean, "min": min(d.per_seed.values()), "max": max(d.per_seed.values()), "wins": d.wins}
            for d in comparison.differences
        ],
    }  # fmt: skip


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def comparison_markdown(comparison: ScanComparison) -> str:
    """Two Markdown tables: exact match per method and seed; paired differences with their spread."""
    seeds = comparison.config.seeds
    header = "| method | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd |"
    lines = [header, "|" + "---|" * (len(seeds) + 2)]
    for method, values in comparison.exact_match.items():
        cells = " | ".join(f"{values[s]:.1f}" for s in seeds)
        lines.append(f"| {method} | {cells} | {_mean_sd(list(values.values()))} |")
    if comparison.differences:
        lines += ["", "| difference (points) | mean | min | max | seeds it wins |", "|---|---|---|---|---|"]
        for d in comparison.differences:
            values = list(d.per_seed.values())
            lines.append(
                f"| {d.method} − {d.baseline} | {d.mean:+.1f} | {min(values):+.1f} | {max(values):+.1f} "
                f"| {d.wins} of {len(values)} |"
            )
    return "\n".join(lines) + "\n"


def plot_comparison(comparison: ScanComparison, path: Path) -> None:
    """Bars of the mean exact match per method with each seed's value as a dot (PNG, atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(comparison.exact_match)
    fig, ax = plt.subplots(figsize=(1.5 + 1.3 * len(methods), 3.4))
    for i, method in enumerate(methods):
        values = list(comparison.exact_match[method].values())
        ax.bar(i, statistics.mean(values), 0.6, color="#9ecae1" if "seqmix" not in method else "#3182bd")
        ax.plot([i] * len(values), values, "o", color="black", markersize=4)
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel("exact match on test (%)")
    ax.set_ylim(0, 100)
    config = comparison.config
    ax.set_title(
        f"SCAN {config.split}, {config.steps} steps, seeds {', '.join(map(str, config.seeds))}", fontsize=10
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
