"""Workspace: large buffers that are reused from one training step to the next when nobody holds them.

Why: the L0 stage needs four d-sized tensors per step (the gates z, theta for every gated tensor,
and the gradients of w and alpha; d = 22.7M on MiniLM). Freshly allocated, each costs a first touch
of every page (~30 ms per 91 MB on CPU, more than the arithmetic on it), every step. Reusing them is
safe only when no other tensor can still see the old contents, so a buffer is handed out as a
*view* and reused only when its storage has no other user: every tensor that shares it (the view
we returned, autograd's saved copy, ``param.grad`` that stole a gradient, a user's slice of it)
holds a reference to the storage, and :meth:`Workspace.take` counts them. A buffer still in use is
left alone and a fresh one is allocated in its place, so reuse never changes results.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import torch
from torch import Tensor


def _storage_users(tensor: Tensor) -> int:
    """References to ``tensor``'s storage (tensors sharing it and storage handles), or -1 if unknown."""
    counter = getattr(torch._C, "_storage_Use_Count", None)
    if counter is None:  # not in this torch build: never reuse
        return -1
    return int(counter(tensor.untyped_storage()._cdata))


def _is_idle(buffer: Tensor, idle_users: int) -> bool:
    """Whether nothing but the workspace holds ``buffer``'s storage (False when that cannot be told)."""
    return idle_users >= 0 and _storage_users(buffer) == idle_users


class Workspace:
    """Named buffers, each reused across calls while no other tensor shares its storage.

    >>> ws = Workspace()
    >>> a = ws.take("z", (4,), torch.float32, torch.device("cpu"))
    >>> b = ws.take("z", (4,), torch.float32, torch.device("cpu"))  # `a` is alive: a fresh buffer
    >>> a.data_ptr() != b.data_ptr()
    True
    """

    def __init__(self) -> None:
        self._buffers: dict[Hashable, tuple[Tensor, int]] = {}  # key -> (buffer, users when idle)
        self._stamps: dict[Hashable, tuple] = {}  # key -> ((data pointer, version, inputs), note): stamp()

    def take(self, key: Hashable, shape: Sequence[int], dtype: torch.dtype, device: torch.device) -> Tensor:
        """An uninitialised tensor of ``shape``: the buffer kept under ``key`` if idle, else a new one.

        The returned tensor is a view; the buffer stays idle again once every tensor sharing its
        storage (that view and anything derived from it) is gone.
        """
        shape = tuple(shape)
        entry = self._buffers.get(key)
        if entry is not None:
            buffer, idle_users = entry
            reusable = (
                buffer.shape == shape
                and buffer.dtype == dtype
                and buffer.device == device
                and _is_idle(buffer, idle_users)
            )
            if reusable:
                return buffer.view(shape)
        buffer = torch.empty(shape, dtype=dtype, device=device)
        self._buffers[key] = (buffer, _storage_users(buffer))
        return buffer.view(shape)

    def stamp(self, key: Hashable, tensor: Tensor, inputs: tuple, note: Any = None) -> None:
        """Record that ``tensor`` (just taken under ``key`` and written) holds a function of ``inputs``.

        ``inputs``: hashable stamps of what the contents were computed from (see `tensor_stamp`);
        ``note``: anything the writer needs to update the contents next time (see `held`).
        """
        self._stamps[key] = ((tensor.data_ptr(), tensor._version, inputs), note)

    def held(self, key: Hashable, tensor: Tensor, inputs: tuple) -> tuple[bool, Any]:
        """(whether ``tensor``, just taken under ``key``, still holds what was stamped from ``inputs``:
        the same buffer, not written since (its version), the same inputs; the stamp's note, or None)."""
        entry = self._stamps.get(key)
        if entry is None or entry[0] != (tensor.data_ptr(), tensor._version, inputs):
            return False, None
        return True, entry[1]

    def clear(self) -> None:
        """Forget every buffer (memory is freed once the tensors handed out are gone)."""
        self._buffers.clear()
        self._stamps.clear()

    def nbytes(self, idle_only: bool = False) -> int:
        """Bytes held by the workspace's buffers (with ``idle_only``: those no other tensor shares now)."""
        return sum(
            buffer.numel() * buffer.element_size()
            for buffer, idle_users in self._buffers.values()
            if not idle_only or _is_idle(buffer, idle_users)
        )


def tensor_stamp(tensor: Tensor) -> tuple[int, int, int, tuple[int, ...]]:
    """What identifies a tensor's current contents: its object, data pointer, version and shape."""
    return (id(tensor), tensor.data_ptr(), tensor._version, tuple(tensor.shape))
