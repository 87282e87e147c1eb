"""Which learning rate a tuned-against-tuned study chooses, for the experiment queue:
``python -m deltamix.experiments.report.glue_tuned RUN_DIR ...`` prints the run folder whose rate
the held-out scores choose, by the rule the report's tuned section uses (`deltamix.experiments.report.glue_tuning`).

The section's names (`choose`, `holdout_selected`, ...) are importable from here too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deltamix.core.io import read_jsonl
from deltamix.experiments.report.glue_tuning import (
    CHANCE_MARGIN,
    TunedChoice,
    at_chance,
    candidate_labels,
    choose,
    holdout_score,
    holdout_selected,
    render,
    setting_parts,
    tuned_claims,
)

__all__ = [
    "CHANCE_MARGIN",
    "TunedChoice",
    "at_chance",
    "candidate_labels",
    "choose",
    "chosen_run",
    "finished_record",
    "holdout_score",
    "holdout_selected",
    "main",
    "render",
    "setting_parts",
    "tuned_claims",
]


def finished_record(run_dir: Path, records: list[dict]) -> dict:
    """The record of the finished run in ``run_dir``: its ``run_done.json``, or else the record in
    ``records`` whose ``output_dir`` is ``run_dir`` (a fresh clone keeps results/ but not runs/).

    Raises:
        ValueError: neither holds a finished run of ``run_dir``.
    """
    try:
        return json.loads((run_dir / "run_done.json").read_text(encoding="utf-8"))["record"]
    except (OSError, ValueError, KeyError) as error:
        matching = [r for r in records if Path(r.get("output_dir", "")) == run_dir]
        if matching:
            return matching[-1]
        raise ValueError(f"{run_dir}: no finished run record in run_done.json ({error})") from None


def chosen_run(run_dirs: list[str | Path], records: list[dict] | None = None) -> Path:
    """The run folder, among the finished runs ``run_dirs`` (one per learning rate, at the tuning seed),
    whose rate the report chooses (`choose`): how ``experiments/glue_tuned.sh`` picks the rate whose
    other seeds it runs, so the queue and the report agree. A folder without ``run_done.json`` counts
    as finished when ``records`` (the results file's lines) hold its record.

    Raises:
        ValueError: a folder holds no finished run, or the runs are not one method's rates on one
            task at one seed, selected on a held-out slice.
    """
    found = [{**finished_record(d, records or []), "output_dir": str(d)} for d in map(Path, run_dirs)]
    choices = choose(found)
    if len(choices) != 1 or len(choices[0].holdout) != len(found):
        raise ValueError(
            f"{[str(d) for d in run_dirs]}: expected one method's learning rates on one task, each with a "
            "held-out score (--select-on holdout)"
        )
    [choice] = choices
    return Path(choice.runs[min(choice.runs)]["output_dir"])


def main(argv: list[str] | None = None) -> int:
    """``python -m deltamix.experiments.report.glue_tuned RUN_DIR ...``: print the chosen run folder (`chosen_run`)."""
    parser = argparse.ArgumentParser(
        prog="python -m deltamix.experiments.report.glue_tuned",
        description="print the run folder whose learning rate the held-out scores choose",
    )
    parser.add_argument("run_dirs", nargs="+", help="finished runs, one per learning rate, same seed")
    parser.add_argument(
        "--records", type=Path, help="results file whose records stand in for missing run folders"
    )
    args = parser.parse_args(argv)
    try:
        records = read_jsonl(args.records) if args.records and args.records.exists() else []
        print(chosen_run(args.run_dirs, records))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
