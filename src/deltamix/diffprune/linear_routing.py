"""Route ``F.linear`` calls on chosen weight tensors to a custom implementation.

Written by hand: a model's linears call ``F.linear(x, theta, bias)`` with the thetas diff pruning
materialises, and a `TorchFunctionMode` is torch's way to intercept those calls without touching
the model; the bf16 split path and the fixed-mask kernel both use it.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode


class LinearRoutingMode(TorchFunctionMode):
    """While active, ``F.linear(x, weight, bias)`` with a registered ``weight`` calls `linear`.

    ``entries`` maps ``id(weight)`` to a tuple whose first item is ``weight`` itself (kept so the id
    stays unique) and whose other items are what `linear` needs; other calls run unchanged.
    """

    def __init__(self, entries: dict[int, tuple[Tensor, ...]]) -> None:
        super().__init__()
        self.entries = entries

    def linear(self, x: Tensor, weight: Tensor, bias: Tensor | None, extra: tuple[Any, ...]) -> Tensor:
        """The replacement of ``F.linear(x, weight, bias)``; ``extra``: the entry after ``weight``."""
        raise NotImplementedError

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            x, weight = args[0], args[1] if len(args) > 1 else kwargs["weight"]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            entry = self.entries.get(id(weight))
            if entry is not None and entry[0] is weight:
                return self.linear(x, weight, bias, entry[1:])
        return func(*args, **kwargs)
