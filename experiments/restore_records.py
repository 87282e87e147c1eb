"""Append the record a finished run folder holds to results/ when the results file lost it.

A finished run keeps its record inside its marker file (``metrics.json``'s ``"record"``, or
``run_done.json``'s for GLUE), written by the same step that appended it to
``results/<experiment>.jsonl``. A results file reset or rewritten by hand can lose lines; this script
puts back the record of each given folder whose ``run_id`` is missing and leaves the others alone.

    python experiments/restore_records.py runs/scan-6000/template_around_right/seqmix-seed1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deltamix.core.errors import DataFormatError, DeltamixError
from deltamix.core.io import read_jsonl
from deltamix.core.records import append_record

MARKERS = ("metrics.json", "run_done.json")  # the files a finished run writes its record into


def folder_record(folder: Path) -> dict:
    """The record saved in ``folder``'s marker; raises DeltamixError naming the folder if there is none."""
    for name in MARKERS:
        marker = folder / name
        if marker.is_file():
            try:
                record = json.loads(marker.read_text(encoding="utf-8")).get("record")
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
                raise DataFormatError(marker, f"unreadable marker ({error})") from error
            if isinstance(record, dict) and record.get("run_id") and record.get("experiment"):
                return record
    raise DeltamixError(f"{folder}: no finished run with a saved record ({' or '.join(MARKERS)})")


def restore(folders: list[Path], results_dir: Path) -> list[Path]:
    """Append each folder's record whose ``run_id`` is not yet in its results file; the folders restored."""
    records = [(folder, folder_record(folder)) for folder in folders]  # read all before writing any
    restored = []
    for folder, record in records:
        path = results_dir / f"{record['experiment']}.jsonl"
        present = {line.get("run_id") for line in read_jsonl(path)} if path.exists() else set()
        if record["run_id"] not in present:
            append_record(record, results_dir)
            restored.append(folder)
    return restored


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="finished run folders")
    parser.add_argument("--results-dir", type=Path, default=Path("results"), help="default: %(default)s")
    args = parser.parse_args(argv)
    restored = restore(args.folders, args.results_dir)
    for folder in restored:
        print(f"restored the record of {folder}")
    print(f"{len(restored)} of {len(args.folders)} records restored; the others were present")


if __name__ == "__main__":
    main()
