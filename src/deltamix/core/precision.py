"""Training precision and CPU threads: what ``--precision auto`` and the default ``--threads`` resolve to.

>>> resolve_precision("fp32")
'fp32'
>>> resolve_precision("auto") in ("bf16", "fp32")
True

``auto`` means bf16 autocast where the hardware computes bf16 natively (a CUDA device with bf16, or
a CPU with the ``avx512_bf16`` or ``amx_bf16`` instructions), fp32 elsewhere: on other CPUs bf16 is
emulated and slower than fp32. Weights, optimizer state and the loss stay fp32 either way (autocast
only runs the matrix products in bf16).
"""

from __future__ import annotations

import os
from dataclasses import field
from pathlib import Path
from typing import Any

import torch

PRECISIONS = ("auto", "bf16", "fp32")
DEFAULT_PRECISION = "auto"
# CPU flags (as /proc/cpuinfo names them) of native bf16 matrix instructions.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
PRECISION_HELP = (
    "bf16 autocast or fp32; auto = bf16 where the hardware computes it natively (a CUDA GPU with bf16, "
    "a CPU with avx512_bf16 or amx_bf16), else fp32"
)


def precision_field(help: str = PRECISION_HELP) -> Any:
    """The ``precision`` field of a run's settings dataclass: default auto, the three choices, ``help``."""
    return field(default=DEFAULT_PRECISION, metadata={"help": help, "choices": PRECISIONS})


def threads_field(**metadata: Any) -> Any:
    """The CPU-threads field of a run's settings dataclass (default None: `default_threads`)."""
    return field(
        default=None,
        metadata={
            "help": "torch CPU threads",
            "type": "positive_int",
            "default_help": "$OMP_NUM_THREADS if set, else all the cores this process may use",
            **metadata,
        },
    )


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The instruction-set flags of the first CPU in ``cpuinfo`` (empty where the file is missing)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The CPU's model name as ``cpuinfo`` gives it (None where the file or the line is missing)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("model name") and ":" in line:
            return line.split(":", 1)[1].strip()
    return None


def hardware_has_bf16(device: str | torch.device = "cpu") -> bool:
    """True where ``device`` computes bf16 matrix products natively (see the module docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(cpu_flags() & BF16_CPU_FLAGS)
    return False


def default_device() -> torch.device:
    """The device a run trains on by default: CUDA if present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_precision(precision: str, device: str | torch.device | None = None) -> str:
    """``"bf16"`` or ``"fp32"`` for a requested ``precision`` (auto, bf16 or fp32) on ``device``.

    Raises:
        ValueError: an unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    return "bf16" if hardware_has_bf16(device or default_device()) else "fp32"


def accelerate_mixed_precision(precision: str) -> str:
    """accelerate's name (``"bf16"`` or ``"no"``) of a resolved precision."""
    return {"bf16": "bf16", "fp32": "no"}[precision]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask; all cores where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """Threads a process uses by default: ``$OMP_NUM_THREADS`` if set, else its share of the cores
    (all of them, divided among the processes of a job launched on this machine)."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"])
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, available_cores() // max(1, local_processes))


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``num_threads`` (None: `default_threads`); returns the number.

    Raises:
        ValueError: ``num_threads`` is not positive.
    """
    if num_threads is None:
        num_threads = default_threads()
    if num_threads <= 0:
        raise ValueError(f"num_threads must be > 0, got {num_threads}")
    torch.set_num_threads(num_threads)
    return torch.get_num_threads()
