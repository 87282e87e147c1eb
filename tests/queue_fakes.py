"""Running an ``experiments/*.sh`` queue without training anything: a temporary project and fake commands.

A queue is copied into a temporary project (with ``queue_lib.sh``), so the run folders it makes land
there, and ``$DELTAMIX`` points at `FAKE_DELTAMIX`, which logs its arguments and writes the files that
mark a run finished. Shared by the tests of the queues' logic and of the settings their commands
resolve to.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FAKE_DELTAMIX = """#!/usr/bin/env bash
# Logs its arguments, then marks the run in --output-dir finished the way deltamix does.
echo "$*" >> "$(dirname "$0")/calls.log"
while [ $# -gt 0 ]; do
  if [ "$1" = --output-dir ]; then out="$2"; fi
  shift
done
mkdir -p "$out"
echo '{}' > "$out/run_done.json"
echo '{}' > "$out/metrics.json"
"""


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def queue_project(root: Path, script: str) -> tuple[Path, Path]:
    """A project in ``root`` holding ``experiments/<script>`` and the fake command: (script, fake)."""
    if shutil.which("flock") is None:
        pytest.skip("the queues claim runs with flock(1)")
    (root / "experiments").mkdir(parents=True)
    copy = root / "experiments" / script
    shutil.copy(REPO / "experiments" / script, copy)
    shutil.copy(REPO / "experiments" / "queue_lib.sh", root / "experiments" / "queue_lib.sh")
    return copy, _executable(root / "fake_deltamix", FAKE_DELTAMIX)


def run_queue(script: Path, fake: Path, **env: str) -> list[list[str]]:
    """Runs ``script`` with ``env`` added; the argument lists of the runs it started, in order."""
    log = fake.parent / "calls.log"
    log.unlink(missing_ok=True)
    full_env = {**os.environ, "DELTAMIX": str(fake), **env}
    subprocess.run(["bash", str(script)], env=full_env, check=True, capture_output=True, text=True)
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def fake_python(root: Path, precision: str) -> str:
    """A stand-in for the venv's python that answers a queue's precision check with ``precision``."""
    return str(_executable(root / f"fake_python_{precision}", f"#!/usr/bin/env bash\necho {precision}\n"))
