"""`deltamix report`: regenerate results/README.md and the plots from the results records."""

from __future__ import annotations

import argparse

from deltamix.cli.args import output_dir
from deltamix.experiments.report import claims_at_a_glance, generate_report


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `deltamix report` to ``subparsers``."""
    parser = subparsers.add_parser(
        "report", help="regenerate results/README.md and plots from results/*.jsonl"
    )
    parser.add_argument(
        "--results-dir",
        type=output_dir,
        default="results",
        help="folder of the *.jsonl records (default: %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write results/README.md and the plots from ``args.results_dir``; print the claim lines."""
    path = generate_report(args.results_dir)
    claims = claims_at_a_glance(args.results_dir)
    if claims:
        print("Claims and goals at a glance:")
        for line in claims:
            print(f"  - {line.replace('**', '')}")
    print(f"wrote {path}")
    return 0
