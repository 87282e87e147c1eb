"""FastDropout: ``nn.Dropout`` whose CPU mask comes from NumPy's SFC64 generator, 16 random bits an entry.

Why by hand: on CPU, torch's dropout draws its mask with ``bernoulli_`` (mt19937, one draw per entry,
on one thread whatever ``torch.get_num_threads()`` says): 12% of a Multi30k transformer-small step on
one thread, more on two, where the matrix products halve and the draws do not. Here one 64-bit word
of SFC64 gives four 16-bit draws v, read as signed (uniform on [-32768, 32768)), and an entry is kept
when v >= t - 32768, t = round(p 65536): P(dropped) = t / 65536 (within 8e-6 of p), and kept entries are scaled by 65536 / (65536 - t), so the
output's expectation is the input, as nn.Dropout's. The generator is keyed by one int64 drawn from
torch's default generator per call, so ``torch.manual_seed`` (and a checkpoint's saved RNG state)
still fixes every mask. Elsewhere than the CPU, the mask is ``F.dropout``'s (fast on an accelerator).

>>> layer = FastDropout(0.5).train()
>>> _ = torch.manual_seed(0)
>>> out = layer(torch.ones(4, 1000))
>>> sorted({round(v, 3) for v in out.unique().tolist()})
[0.0, 2.0]
>>> abs(float((out == 0).float().mean()) - 0.5) < 0.05
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LEVELS = 1 << 16  # 16-bit draws


def fast_dropout(x: Tensor, p: float) -> Tensor:
    """Dropout of ``x`` (any shape) with drop probability ``p`` in [0, 1) (training mode)."""
    if x.device.type != "cpu" or p == 0.0 or x.numel() == 0:
        return F.dropout(x, p, training=p > 0.0)
    threshold = round(p * _LEVELS)
    if threshold == 0:
        return x.clone()
    key = int(torch.empty((), dtype=torch.int64).random_())  # one draw of torch's default generator
    words = np.random.SFC64(key).random_raw((x.numel() + 3) // 4)  # 4 x 16 bits a word
    # read as int16 (torch compares no uint16): uniform on [-2^15, 2^15), kept with P = 1 - t / 2^16
    draws = torch.from_numpy(words.view(np.int16)[: x.numel()]).view(x.shape)
    keep = draws >= threshold - _LEVELS // 2  # bool: what autograd keeps for backward (1 byte an entry)
    return torch.mul(x, keep).mul_(_LEVELS / (_LEVELS - threshold))


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with the CPU mask of `fast_dropout` (same ``p``, ``train()`` / ``eval()`` behaviour)."""

    def forward(self, input: Tensor) -> Tensor:
        """``input`` of any shape; identity in eval mode or with p = 0."""
        if not self.training or self.p == 0.0:
            return input
        out = fast_dropout(input, self.p)
        if self.inplace:
            return input.copy_(out)
        return out


def _swap_dropouts(module: nn.Module, is_source: Callable[[nn.Module], bool], make: type[nn.Dropout]) -> int:
    """Replace every submodule of ``module`` that ``is_source`` picks with ``make(p, inplace)``; how many."""
    replaced = 0
    for parent in module.modules():
        for name, child in list(parent.named_children()):
            if is_source(child):
                setattr(parent, name, make(child.p, inplace=child.inplace))
                replaced += 1
    return replaced


def use_fast_dropout(module: nn.Module) -> int:
    """Replace every plain ``nn.Dropout`` inside ``module`` with a FastDropout of the same ``p``.

    Returns how many were replaced. Attention-weight dropout that a layer applies through a float
    argument (``nn.MultiheadAttention``'s ``dropout``) is not a module and stays torch's.
    """
    return _swap_dropouts(module, lambda child: type(child) is nn.Dropout, FastDropout)


def use_torch_dropout(module: nn.Module) -> int:
    """The inverse of `use_fast_dropout`: every FastDropout back to ``nn.Dropout`` (same ``p``).

    For runs that must repeat, mask for mask, a Transformer run recorded before FastDropout (and for
    measuring what it saves: benchmarks/bench_dropout.py). Returns how many were replaced.
    """
    return _swap_dropouts(module, lambda child: isinstance(child, FastDropout), nn.Dropout)
