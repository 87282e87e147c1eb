"""``python -m deltamix.experiments.report.glue_tuned``: the queue's rate chooser as a command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_chooser_runs_as_a_module_without_import_warnings(tmp_path: Path) -> None:
    """The report package imports its sections at the top; the chooser must not be one of them, or
    ``-m`` finds it imported already and warns that it runs twice."""
    missing = tmp_path / "no-run"
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::RuntimeWarning",
            "-m",
            "deltamix.experiments.report.glue_tuned",
            str(missing),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: {missing}: no finished run record"), done.stderr
    assert "RuntimeWarning" not in done.stderr
