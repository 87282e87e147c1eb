"""Refuse to reuse a run folder that was started with other settings.

Every run command (GLUE, SCAN, translation, parsing) skips a finished run and resumes an interrupted
one from its folder. Both are only right if the folder was started with the same settings: a folder
of 3 epochs must not answer a request for 15. Each run writes its settings to ``config.json`` when it
starts and checks them here before it resumes or returns a finished run's metrics. (Trainer's
``resume_from_checkpoint`` and accelerate's ``load_state`` restore a checkpoint but never compare the
settings it was made with, hence this check.)

>>> check_same_run(Path("runs/x/config.json"), {"run": {"epochs": 15}})  # doctest: +SKIP
DeltamixError: runs/x holds a run started with other settings (run.epochs: 3 there, 15 now); ...
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deltamix.core.errors import DataFormatError, DeltamixError
from deltamix.core.records import finish_commit

logger = logging.getLogger(__name__)


def setting_differences(
    before: dict[str, Any],
    now: dict[str, Any],
    restart_free: Iterable[str] = (),
    values_when_absent: dict[str, Any] | None = None,
) -> list[str]:
    """The settings of ``now`` that ``before`` holds with another value, as ``"name: old there, new now"``.

    Dict values one level down are compared key by key and named ``section.key``. Only the keys of
    ``now`` are compared: ``before`` may hold more (a finished run's config.json adds what the run
    measured, such as the vocabulary size). Keys named in ``restart_free`` (at either level) may
    change between an interrupted run and its restart (threads, where the records go). A key of
    ``values_when_absent`` that ``before`` lacks stands for that value: the value of a setting in runs
    whose config.json does not name it.
    """
    free, added = set(restart_free), values_when_absent or {}
    differ: list[str] = []
    for key, value in now.items():
        if key in free:
            continue
        old = before.get(key, added.get(key))
        if isinstance(value, dict) and isinstance(old, dict):
            differ += [f"{key}.{entry}" for entry in setting_differences(old, value, free, added)]
        elif old != value:
            differ.append(f"{key}: {old!r} there, {value!r} now")
    return differ


def check_same_run(
    path: Path,
    settings: dict[str, Any],
    restart_free: Iterable[str] = (),
    values_when_absent: dict[str, Any] | None = None,
) -> None:
    """Raise unless the run folder of ``path`` (its ``config.json``) is new or holds ``settings``.

    Args:
        path: the folder's config file; a folder without one was never started (or predates this
            check), and passes.
        settings: the resolved settings of the run about to start (paths are compared as strings).
        restart_free: keys that may differ (see :func:`setting_differences`).
        values_when_absent: settings a saved config may lack, with the value such a run had.

    Raises:
        DeltamixError: naming the folder and each setting that differs, with both values.
        DataFormatError: the config file is not JSON.
    """
    if not path.is_file():
        return
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataFormatError(path, f"unreadable run config ({error})") from error
    now = json.loads(json.dumps(settings, default=str))  # as the file holds them: lists, not tuples
    differ = setting_differences(before, now, restart_free, values_when_absent)
    if differ:
        raise DeltamixError(
            f"{path.parent} holds a run started with other settings ({'; '.join(differ)}); "
            "pass another --output-dir, or delete that folder to start over"
        )


def finished_metrics(
    folder: Path,
    settings: dict[str, Any],
    restart_free: Iterable[str] = (),
    values_when_absent: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The saved ``metrics.json`` of a finished run in ``folder``, or None if it has yet to finish.

    First checks that the folder holds ``settings`` (:func:`check_same_run`) and completes the record
    of a run that was killed while committing it (`deltamix.core.records.finish_commit`).

    Raises:
        DeltamixError: the folder was started with other settings.
        DataFormatError: its config or pending record is unreadable.
    """
    check_same_run(folder / "config.json", settings, restart_free, values_when_absent)
    metrics_path = folder / "metrics.json"
    if finish_commit(metrics_path) is not None:
        logger.info("%s: completed the record of a run interrupted while recording", folder)
    if not metrics_path.exists():
        return None
    return json.loads(metrics_path.read_text(encoding="utf-8"))
