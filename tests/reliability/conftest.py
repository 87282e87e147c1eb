"""Shared helpers of the reliability tests: run the `deltamix` command in a child process, kill it, compare runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from safetensors.torch import load_file

# The `deltamix` command in a fresh interpreter of this virtual environment.
DELTAMIX = [sys.executable, "-c", "import sys; from deltamix.cli.main import main; sys.exit(main())"]
# A tiny SCAN run: 64 pairs, a 16-unit LSTM, 2 steps per epoch, ~65 steps/s on one loaded core.
TINY_SCAN = [
    "seqmix", "scan", "--split", "addprim_jump", "--augment", "seqmix", "--seed", "3",
    "--train-limit", "64", "--eval-limit", "16", "--hidden-size", "16", "--embedding-dim", "8",
    "--threads", "1",
]  # fmt: skip
T = TypeVar("T")

# Timing fields differ between any two runs; everything else must be identical.
TIMING = {"eval_seconds", "train_seconds", "test_decode_seconds", "seconds_per_epoch"}


def child_env() -> dict[str, str]:
    """The environment of a child run: one thread, offline, no progress bars in captured output."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


def run_to_end(argv: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``deltamix argv`` to completion; fail the test with its output if it fails."""
    done = subprocess.run(
        [*DELTAMIX, *argv], env=child_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"deltamix {' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def checkpoint_step(out: Path) -> int:
    """The step of the run's current checkpoint (0 if none yet)."""
    path = out / "checkpoint" / "trainer_state.json"
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["step"])
    except (OSError, ValueError, KeyError):
        return 0


# How long one reader call on fuzzed input may take before the fuzz tests call it a hang.
HANG_SECONDS = 10


@contextlib.contextmanager
def no_hang(seconds: int = HANG_SECONDS) -> Iterator[None]:
    """Raise TimeoutError if the block runs longer than ``seconds`` (SIGALRM; main thread only)."""

    def alarm(signum, frame):
        raise TimeoutError(f"ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def kill_when(argv: list[str], ready: Callable[[], T], delay: float, timeout: float = 240) -> T:
    """Start ``deltamix argv``, wait until ``ready()`` is truthy, wait ``delay`` seconds more, then
    SIGKILL it. Returns ``ready()`` at the kill; fails if the run ended first or never got ready.
    """
    child = subprocess.Popen(
        [*DELTAMIX, *argv], env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if child.poll() is not None:
                pytest.fail(f"the run ended before it was ready to be killed: {child.stderr.read()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the run did not get ready to be killed within the timeout")
            time.sleep(0.01)
        time.sleep(delay)
        if child.poll() is not None:
            pytest.fail(f"the run finished before it could be killed (delay {delay:.3f} s)")
        seen = ready()
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    return seen


def kill_after_checkpoint(
    argv: list[str], out: Path, min_step: int, delay: float, timeout: float = 240
) -> int:
    """:func:`kill_when` a checkpoint of ``min_step`` or later exists; returns the checkpoint step at the kill."""
    return kill_when(
        argv, lambda: checkpoint_step(out) if checkpoint_step(out) >= min_step else 0, delay, timeout
    )


def assert_same_weights(a: Path, b: Path) -> None:
    """The two safetensors files hold the same tensor names, dtypes, shapes and bits."""
    first, second = load_file(str(a)), load_file(str(b))
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        other = second[name]
        assert tensor.dtype == other.dtype and tensor.shape == other.shape, name
        assert tensor.numpy().tobytes() == other.numpy().tobytes(), f"{name} differs in its bits"


def without_timing(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k not in TIMING}


def loss_log(out: Path) -> list[tuple[int, float]]:
    """(step, mean loss) of each training log line of a run."""
    events = [json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    return [(e["step"], e["loss"]) for e in events if "loss" in e]
