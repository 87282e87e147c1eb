"""What the step-time benchmarks share: torch threads, and where (whether) their record goes."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from deltamix.core.precision import configure_threads
from deltamix.core.records import append_record, make_record


def add_record_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--results-dir`` and ``--no-record`` (where a benchmark's record goes, or that it goes nowhere)."""
    parser.add_argument(
        "--results-dir", default="results", help="where bench.jsonl is (default: %(default)s)"
    )
    parser.add_argument("--no-record", action="store_true", help="print only; do not append a record")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads``, ``--results-dir`` and ``--no-record`` to ``parser``."""
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: $OMP_NUM_THREADS, else 1)"
    )
    add_record_options(parser)


def apply_threads(args: argparse.Namespace) -> int:
    """Set torch's threads from ``--threads``, else $OMP_NUM_THREADS, else 1; returns the count."""
    return configure_threads(args.threads or (None if "OMP_NUM_THREADS" in os.environ else 1))


def append_bench_record(
    args: argparse.Namespace,
    task: str,
    method: str,
    metrics: dict[str, float],
    main_metric: str,
    config: dict[str, Any],
    *,
    model: str,
    threads: int,
    logger: logging.Logger,
) -> None:
    """Append a CPU benchmark's record to ``args.results_dir``/bench.jsonl, unless ``--no-record``."""
    if args.no_record:
        return
    record = make_record(
        "bench", task, method, 0, metrics, main_metric, config, model=model, device="cpu", cpu_threads=threads
    )
    logger.info("record appended to %s", append_record(record, args.results_dir))
