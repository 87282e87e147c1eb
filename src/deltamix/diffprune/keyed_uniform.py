"""keyed_uniform_: U[0, 1) draws that are a hash of (key, position), the same whichever other positions are drawn.

The sampled gates of a row-restricted input embedding (fused.py) take their noise from one key drawn
from the default generator and each entry's flat position, so every process of a data-parallel job
draws the same gate for an entry whichever rows it looks up.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _signed(value: int) -> int:
    """A 64-bit constant as the int64 with the same bits (torch's int64 arithmetic wraps mod 2^64)."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN, _MIX1, _MIX2 = (_signed(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))


def keyed_uniform_(out: Tensor, key: Tensor, positions: Tensor) -> Tensor:
    """U[0, 1) draws that are a function of (``key``, position) alone, written into ``out`` (shape (m,)).

    The splitmix64 hash of ``key + (position + 1) * golden`` (logical shifts: torch's ``>>`` on int64
    is arithmetic, so the sign bits are masked off), its top 24 bits scaled by 2^-24 as ``uniform_``
    does for float32. Entry j's draw is the same whichever other entries are drawn with it, and the
    generator's stream advances by the one draw of ``key``, not by m: what keeps every process of a
    data-parallel job on the same noise when each looks up other embedding rows.
    """
    x = (positions + 1) * _GOLDEN + key
    x = x ^ ((x >> 30) & ((1 << 34) - 1))
    x = x * _MIX1
    x = x ^ ((x >> 27) & ((1 << 37) - 1))
    x = x * _MIX2
    x = x ^ ((x >> 31) & ((1 << 33) - 1))
    return torch.mul((x >> 40) & 0xFFFFFF, 2.0**-24, out=out)
