"""Options shared by the step-time benchmarks: torch threads and where (whether) the record goes."""

from __future__ import annotations

import argparse
import os

from deltamix.seqmix.trainer import configure_threads


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads``, ``--results-dir`` and ``--no-record`` to ``parser``."""
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: $OMP_NUM_THREADS, else 1)"
    )
    parser.add_argument(
        "--results-dir", default="results", help="where bench.jsonl is (default: %(default)s)"
    )
    parser.add_argument("--no-record", action="store_true", help="print only; do not append a record")


def apply_threads(args: argparse.Namespace) -> int:
    """Set torch's threads from ``--threads``, else $OMP_NUM_THREADS, else 1; returns the count."""
    return configure_threads(args.threads or (None if "OMP_NUM_THREADS" in os.environ else 1))
