"""GateNoise: the U[0, 1] draws of the sampled gates, an SFC64 stream keyed by one draw of torch's default generator.

Why: on CPU, ``Tensor.uniform_`` (MT19937, one draw per entry) was the costliest single pass of the
L0 stage (~40% of its gate kernel on MiniLM). NumPy's SFC64 gives 64 random bits per call, two
uniforms, and each 32-bit half becomes u = 1/2 + v 2^-32 (v read as a signed int32) in one pass,
at about half the cost in all. u lies on a grid no coarser than uniform_'s 2^-24 and may be 0 or
(rounded) 1, which the gates clamp to [eps, 1 - eps] as ``logit(u, eps)`` does. Its seed is one int64 drawn from torch's default generator,
so ``torch.manual_seed`` (and a checkpoint's saved RNG state) still fixes every gate, every process
of a data-parallel job draws the same noise, and torch's stream advances by one draw per forward
pass, not by d. The stream is cut into chunks in any way (`GateNoise.fill_` keeps the odd half of a
64-bit word for the next call): chunked draws are the very uniforms of one draw over all entries.
Elsewhere than the CPU, or into other dtypes than float32, the draws are ``uniform_``'s (fast on an
accelerator; NumPy cannot write there, and 24 bits would coarsen a float64 draw).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

_SCALE = 2.0**-32  # u = 1/2 + v 2^-32 for a signed 32-bit v


class GateNoise:
    """A stream of U[0, 1] draws written into tensors chunk by chunk.

    >>> _ = torch.manual_seed(0)
    >>> one = GateNoise(torch.device("cpu")).fill_(torch.empty(5))
    >>> _ = torch.manual_seed(0)
    >>> noise = GateNoise(torch.device("cpu"))
    >>> parts = [noise.fill_(torch.empty(3)), noise.fill_(torch.empty(2))]
    >>> torch.equal(one, torch.cat(parts))
    True
    """

    def __init__(self, device: torch.device) -> None:
        self._bits: np.random.SFC64 | None = None
        self._carry: float | None = None  # the second half of the last word, not yet used
        if device.type == "cpu":
            key = int(torch.empty((), dtype=torch.int64).random_())  # one draw of the default generator
            self._bits = np.random.SFC64(key)
            self._half = torch.tensor(0.5)

    def fill_(self, out: Tensor) -> Tensor:
        """The next ``out.numel()`` draws of the stream, written into ``out`` (contiguous) and returned."""
        if self._bits is None or out.dtype != torch.float32:  # float64: uniform_'s finer draws
            return out.uniform_()
        flat = out.view(-1)
        n = flat.numel()
        if n == 0:
            return out
        start = 0
        if self._carry is not None:
            flat[0] = self._carry
            self._carry, start = None, 1
        needed = n - start
        if needed == 0:
            return out
        words = torch.from_numpy(self._bits.random_raw((needed + 1) // 2).view(np.int32))  # (2 ceil(m/2),)
        # 1/2 + v 2^-32: v 2^-32 is exact (a power of two), so one rounding, vectorised or not
        torch.add(self._half, words[:needed], alpha=_SCALE, out=flat[start:])
        if words.numel() > needed:
            self._carry = float(torch.add(self._half, words[needed:], alpha=_SCALE))
        return out
