"""Results records: one JSON line per finished run, with everything needed to trust and redo it."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from deltamix.io import append_jsonl

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
        "git_commit": git_commit(),
        "command": " ".join(sys.argv),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": to_jsonable(config),
    }
    record.update(to_jsonable(extra))
    return record


def append_record(record: dict[str, Any], results_dir: str | Path = RESULTS_DIR) -> Path:
    """Append ``record`` to ``results_dir/<experiment>.jsonl`` (concurrent-safe) and return the path."""
    path = Path(results_dir) / f"{record['experiment']}.jsonl"
    append_jsonl(path, record)
    return path
