"""Results records: one JSON line per finished run, with everything needed to trust and redo it.

Written by hand: Trainer and accelerate log metrics and save checkpoints (which deltamix uses), but
neither keeps an append-exactly-once record of a finished run with its config, versions and commit.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from deltamix.core.errors import DataFormatError
from deltamix.core.io import append_jsonl, atomic_write_json
from deltamix.core.precision import cpu_model, hardware_has_bf16

RESULTS_DIR = Path("results")
_LIBRARIES = (
    "deltamix",
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "peft",
    "safetensors",
    "sacrebleu",
)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a result depends on (absent ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def hardware() -> dict[str, Any]:
    """Where a run trained: the CUDA device's name (None on CPU), CPU cores, torch's thread count, the
    CPU's model and whether it computes bf16 natively (timings of bf16 runs compare only where it does).
    """
    import torch

    return {
        "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_bf16": hardware_has_bf16("cpu"),
    }


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The current git commit, with ``+dirty`` when the tree has uncommitted changes; None outside git."""
    cwd = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def to_jsonable(config: Any) -> Any:
    """A dataclass, dict or plain value as JSON-ready data (paths and other objects become strings)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if isinstance(config, dict):
        return {str(k): to_jsonable(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [to_jsonable(v) for v in config]
    if isinstance(config, (str, int, float, bool)) or config is None:
        return config
    return str(config)


def command_line(argv: list[str]) -> str:
    """The command as a user would type it: ``python -m deltamix.cli.main ...`` reads ``deltamix ...``."""
    if argv and Path(argv[0]).as_posix().endswith("deltamix/cli/main.py"):
        argv = ["deltamix", *argv[1:]]
    return " ".join(argv)


def make_record(
    experiment: str,
    task: str,
    method: str,
    seed: int,
    metrics: dict[str, float],
    main_metric: str,
    config: Any,
    *,
    model: str | None = None,
    stored_fraction: float | None = None,
    file_bytes: int | None = None,
    train_seconds: float | None = None,
    eval_seconds: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build a results record in the format of DESIGN.md ("Results records").

    Raises:
        ValueError: if ``main_metric`` is not one of ``metrics``.
    """
    if main_metric not in metrics:
        raise ValueError(f"main_metric {main_metric!r} is not among the metrics {sorted(metrics)}")
    record = {
        "experiment": experiment,
        "task": task,
        "method": method,
        "seed": seed,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "main_metric": main_metric,
        "main_value": float(metrics[main_metric]),
        "stored_fraction": stored_fraction,
        "file_bytes": file_bytes,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "model": model,
        "versions": library_versions(),
        "hardware": hardware(),
        "git_commit": git_commit(),
        "command": command_line(sys.argv),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": to_jsonable(config),
        "run_id": uuid.uuid4().hex,  # lets a restarted run find out whether its record was appended
    }
    record.update(to_jsonable(extra))
    return record


def append_record(record: dict[str, Any], results_dir: str | Path = RESULTS_DIR) -> Path:
    """Append ``record`` to ``results_dir/<experiment>.jsonl`` (concurrent-safe) and return the path."""
    path = Path(results_dir) / f"{record['experiment']}.jsonl"
    append_jsonl(path, record)
    return path


def _pending_path(marker: Path) -> Path:
    return marker.with_name(marker.name + ".pending")


def _holds_run(path: Path, run_id: str) -> bool:
    """Whether the JSON-lines file ``path`` holds a record with ``run_id`` (unreadable lines are skipped)."""
    if not path.exists():
        return False
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if run_id in line:
                try:
                    if json.loads(line).get("run_id") == run_id:
                        return True
                except (json.JSONDecodeError, AttributeError):
                    continue
    return False


def commit_record(
    record: dict[str, Any], results_dir: str | Path, marker: str | Path, payload: dict[str, Any]
) -> Path:
    """Append ``record`` to the results exactly once, then write the run's ``marker`` (e.g. metrics.json).

    A run killed at any point of this function and started again neither loses its record nor
    appends it twice: the record (with its ``run_id``) and the marker's ``payload`` are first saved to
    ``<marker>.pending``; the record is appended unless a line with its ``run_id`` is already there;
    then the marker is written (``payload`` plus ``"record"``) and the pending file removed. A run
    that finds a pending file calls `finish_commit` before anything else.

    Returns:
        The results file the record is in.
    """
    if not record.get("run_id"):
        record = {**record, "run_id": uuid.uuid4().hex}
    marker = Path(marker)
    atomic_write_json(
        _pending_path(marker), {"record": record, "results_dir": str(results_dir), "payload": payload}
    )
    finish_commit(marker)
    return Path(results_dir) / f"{record['experiment']}.jsonl"


def finish_commit(marker: str | Path) -> Path | None:
    """Complete a `commit_record` that was interrupted; returns the results file, or None if none was pending.

    Raises:
        DataFormatError: if the pending file is unreadable (it is written atomically, so only by hand).
    """
    marker = Path(marker)
    pending = _pending_path(marker)
    if not pending.exists():
        return None
    try:
        data = json.loads(pending.read_text(encoding="utf-8"))
        record, payload = data["record"], data["payload"]
        path = Path(data["results_dir"]) / f"{record['experiment']}.jsonl"
        run_id = record["run_id"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise DataFormatError(pending, f"unreadable pending record ({error})") from error
    if not _holds_run(path, run_id):
        append_jsonl(path, record)
    atomic_write_json(marker, {**payload, "record": record})
    pending.unlink(missing_ok=True)
    return path
