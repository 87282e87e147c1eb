"""Append results records written on a device machine (a GPU lent to a session) to results/.

The device runs a copy of the working tree whose git metadata can be stale: there, `git rev-parse`
named an older commit (plus ``+dirty``) than the one whose files were sent. This script records the
commit that was sent (``--commit``, checked to exist here) in ``git_commit`` and keeps what the device
wrote in ``git_commit_on_device``; a command run as ``python -m deltamix.cli.main`` is written as
``deltamix ...``. Records already present (same ``run_id``) are skipped. Every source is read and
checked before anything is appended, so a bad file imports nothing.

    python experiments/import_device_records.py --commit c6e6ad6 /work/.device/2/glue.jsonl ...
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from deltamix.cli.args import existing_file
from deltamix.core.errors import DeltamixError
from deltamix.core.io import read_jsonl
from deltamix.core.records import append_record, command_line

REQUIRED = ("experiment", "run_id", "command")  # what the import reads or rewrites in each record


def read_records(source: Path) -> list[dict]:
    """The records of ``source``; raises DeltamixError naming the file (and line) if one is unusable."""
    records = read_jsonl(source)
    for number, record in enumerate(records, start=1):
        missing = [key for key in REQUIRED if not isinstance(record, dict) or key not in record]
        if missing:
            raise DeltamixError(f"{source}, record {number}: not a results record (no {', '.join(missing)})")
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "sources", nargs="+", type=existing_file, help="JSON-lines files written on the device"
    )
    parser.add_argument("--commit", required=True, help="the commit whose files the device ran")
    parser.add_argument("--results-dir", default="results", help="default: %(default)s")
    args = parser.parse_args(argv)
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{args.commit}^{{commit}}"], capture_output=True, text=True
    )
    if commit.returncode != 0:
        parser.error(f"--commit {args.commit}: not a commit of this repository")
    full = commit.stdout.strip()
    added = skipped = 0
    present: dict[str, set[str]] = {}  # experiment -> run ids already in its results file
    try:
        batches = [read_records(source) for source in args.sources]
    except DeltamixError as error:
        parser.error(str(error))
    for records in batches:
        for record in records:
            if record["experiment"] not in present:
                target = Path(args.results_dir) / f"{record['experiment']}.jsonl"
                present[record["experiment"]] = (
                    {r.get("run_id") for r in read_jsonl(target)} if target.exists() else set()
                )
            if record["run_id"] in present[record["experiment"]]:
                skipped += 1
                continue
            present[record["experiment"]].add(record["run_id"])
            record = {
                **record,
                "git_commit": full,
                "git_commit_on_device": record.get("git_commit"),
                "command": command_line(record["command"].split(" ")),
            }
            append_record(record, args.results_dir)
            added += 1
    print(f"appended {added} records, skipped {skipped} already present")


if __name__ == "__main__":
    main()
