"""Keeping freed memory for reuse: the glibc malloc settings that make a CPU training step fault-free.

glibc serves every allocation above its mmap threshold (at most 32 MiB on 64-bit Linux) with a fresh
``mmap`` and gives it back to the kernel on ``free``. A training step allocates and frees the same
large tensors every time (the [B, T, V] logits, log-probs and their gradients: 117 MB each for a
Multi30k token batch of 3,670 target tokens and a vocabulary of 8,000), so each step page-faults
every one of them in again: 143,000 minor faults and a tenth of the step's CPU time in the kernel,
more under a hypervisor. Serving them from the heap and keeping freed memory there makes the
faults disappear after the first steps; the price is that the process keeps its peak memory. Aligned
blocks (torch allocates with 64-byte alignment) fit the freed ones only once neighbours have merged,
so the heap may grow by a few blocks' worth before it is reused (about 0.5 GiB for a repeated 64 MiB
tensor on 2 threads).

>>> retain_freed_memory() in (True, False)
True
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

logger = logging.getLogger(__name__)

# mallopt parameters of <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# Free memory at the top of the heap kept rather than returned to the kernel (mallopt takes an int).
TRIM_THRESHOLD = 2**31 - 1
# Environment variables by which a user sets these glibc tunables: then theirs are left in force.
MALLOC_ENV = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")


def retain_freed_memory() -> bool:
    """Make glibc serve large blocks from the heap and keep freed memory (process-wide, idempotent).

    Nothing is changed where the C library is not glibc or where the environment already sets
    glibc's malloc tunables (`MALLOC_ENV`).

    Returns:
        True if the settings are in force, False if left alone.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in MALLOC_ENV):
        return False
    try:
        libc = ctypes.CDLL(None)
        trimmed = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        no_mmap = libc.mallopt(M_MMAP_MAX, 0)
    except (OSError, AttributeError):
        return False
    applied = bool(trimmed and no_mmap)  # mallopt returns 1 on success
    if applied:
        logger.debug("glibc malloc: large blocks from the heap, freed memory kept for reuse")
    return applied
