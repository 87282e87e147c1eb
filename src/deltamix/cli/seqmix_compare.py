"""`deltamix seqmix compare`: SCAN methods side by side on the same seeds (the README's main job)."""

from __future__ import annotations

import argparse
import logging

from deltamix.cli.args import non_negative_int, output_dir, positive_int
from deltamix.cli.settings_args import add_alias
from deltamix.errors import DeltamixError
from deltamix.precision import PRECISIONS
from deltamix.seqmix.scan_compare import (
    BASELINE_OF,
    DEFAULT_METHODS,
    DEFAULT_SEEDS,
    ScanComparison,
    ScanComparisonConfig,
    compare_scan,
    comparison_markdown,
)
from deltamix.seqmix.scan_run import AUGMENTATIONS, SPLITS

DEFAULTS = ScanComparisonConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the ``seqmix`` command group."""
    parser = subparsers.add_parser(
        "compare",
        help="SCAN methods side by side on the same seeds, with the paired differences and a plot",
        description=(
            "Train and score each SCAN method on the same seeds (runs in parallel, one per core), then "
            "print exact match per method and seed and each method's paired difference to the method it "
            "extends (GECA + SeqMix against GECA, SeqMix against no augmentation), and write "
            "comparison.{json,md,png}. Each run is an ordinary `deltamix seqmix scan` run: its folder "
            "is reused when finished and resumed when interrupted; its record goes to RESULTS_DIR/scan.jsonl."
        ),
    )
    parser.add_argument(
        "--split", choices=SPLITS, default=DEFAULTS.split, help="SCAN split (default: %(default)s)"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=AUGMENTATIONS,
        default=list(DEFAULT_METHODS),
        help=f"augmentations to compare (default: {' '.join(DEFAULT_METHODS)})",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=non_negative_int,
        default=list(DEFAULT_SEEDS),
        help=f"seeds every method runs (default: {' '.join(map(str, DEFAULT_SEEDS))})",
    )
    parser.add_argument(
        "--max-steps",
        dest="steps",
        type=positive_int,
        default=DEFAULTS.steps,
        help="training steps of each run (default: %(default)s)",
    )
    add_alias(parser, "--steps", "--max-steps", "steps", type=positive_int)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULTS.precision,
        help="bf16 autocast or fp32; auto = bf16 where the hardware computes it natively (default: %(default)s)",
    )
    parser.add_argument(
        "--workers", type=positive_int, help="runs at a time, one thread each (default: one per core)"
    )
    parser.add_argument(
        "--output-dir", type=output_dir, help="comparison folder (default: runs/scan-compare/SPLIT-STEPS)"
    )
    parser.add_argument(
        "--results-dir", type=output_dir, default="results", help="records folder (default: %(default)s)"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        config = ScanComparisonConfig(
            split=args.split,
            methods=tuple(args.methods),
            seeds=tuple(args.seeds),
            steps=args.steps,
            precision=args.precision,
            workers=args.workers,
            output_dir=None if args.output_dir is None else str(args.output_dir),
            results_dir=str(args.results_dir),
        )
    except ValueError as error:
        raise DeltamixError(f"seqmix compare: {error}") from None
    if not getattr(args, "verbose", False):
        for name in ("accelerate", "deltamix.seqmix.trainer"):
            logging.getLogger(name).setLevel(logging.WARNING)
    print_summary(compare_scan(config))
    return 0


def print_summary(comparison: ScanComparison) -> None:
    """What was compared, the two tables, what they mean and where the longer results are."""
    config = comparison.config
    print()
    print(
        f"SCAN {config.split}: exact match (%) on the {config.split} test set after {config.steps} training "
        f"steps of the papers' LSTM (batch 32), seeds {', '.join(map(str, config.seeds))}."
    )
    print()
    print(comparison_markdown(comparison), end="")
    print()
    for d in comparison.differences:
        print(
            f"{d.method} gains {d.mean:+.1f} points over {d.baseline} on average, winning on "
            f"{d.wins} of {len(d.per_seed)} seeds (same seed = same initialisation, data order and GECA pairs)."
        )
    if not comparison.differences:
        pairs = ", ".join(f"{m} with {b}" for m, b in BASELINE_OF.items())
        print(f"(no method was run with its baseline; the pairs compared are {pairs})")
    seconds = [v for seeds in comparison.seconds.values() for v in seeds.values()]
    if seconds:
        print(f"Training took {min(seconds):.0f}-{max(seconds):.0f} s per run.")
    print(
        "At this budget neither no augmentation nor SeqMix alone solves this split (under 2%); the papers "
        "train far longer. All runs, splits, seeds and longer budgets: results/README.md (SCAN section)."
    )
    print(f"Files: {comparison.files['md']}, {comparison.files['png']}, {comparison.files['json']}")
