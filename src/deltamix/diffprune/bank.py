"""DiffBank: many task diffs over one base model in memory; switching tasks reverts one diff and applies another."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from deltamix.diffprune.sparse_diff import SparseDiff, _cpu_single_thread

logger = logging.getLogger(__name__)


@dataclass
class _Prepared:
    """A diff resolved against the bank's model: for each touched tensor, its entries' base and task values."""

    gated: list[tuple[nn.Parameter, Tensor, Tensor, Tensor]]  # param, indices, base values, task values
    dense: list[tuple[nn.Parameter, Tensor, Tensor]]  # param, base value, task value


class DiffBank:
    """Serve several tasks from one base model by switching sparse diffs in place.

    Each diff is checked against the base (names, shapes, dtypes and the full value hash) once, in
    :meth:`add`, which also records the base values of the entries it touches and their task values
    (base + diff, the same float addition as :meth:`SparseDiff.apply_`). :meth:`activate` then only
    copies values: revert = write back the base values of the active diff, apply = write the task
    values of the next, O(nnz) with two indexed copies per tensor and no arithmetic. The extra memory
    is 2 x nnz values per diff.

    Task heads of different sizes (GLUE: 1 output for STS-B, 3 for MNLI, 2 otherwise) are carried by
    the diffs themselves: each diff stores its head densely (``SparseDiff.dense``), and activating it
    installs that head even where its shape differs from the base's current head (the Parameter
    object stays the same, its data is replaced, as in :meth:`SparseDiff.apply_`); ``activate(None)``
    restores the base head exactly. Module attributes (``out_features``, ``config.num_labels``) are
    not changed: read logits, don't pass ``labels`` to a model whose head was swapped.

    Args:
        model: the base model (without any diff applied). Do not replace its parameters
            (``module.weight = ...``) while it is in a bank; ``model.to(...)`` is fine.

    >>> bank = DiffBank(model)  # doctest: +SKIP
    >>> bank.add("sst2", SparseDiff.load("sst2.safetensors")); bank.activate("sst2")  # doctest: +SKIP
    >>> bank.activate(None)  # back to the base model  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self._diffs: dict[str, SparseDiff] = {}
        self._prepared: dict[str, _Prepared] = {}
        self._active: str | None = None

    @property
    def active(self) -> str | None:
        """The name of the applied diff, or None when the model holds the base weights."""
        return self._active

    @property
    def names(self) -> list[str]:
        """Names of the diffs added, in insertion order."""
        return list(self._diffs)

    def __contains__(self, name: str) -> bool:
        return name in self._diffs

    def __len__(self) -> int:
        return len(self._diffs)

    def get(self, name: str) -> SparseDiff:
        """The diff registered under ``name``."""
        if name not in self._diffs:
            raise KeyError(f"no diff named {name!r} in the bank (have: {self.names})")
        return self._diffs[name]

    @torch.no_grad()
    def add(self, name: str, diff: SparseDiff) -> None:
        """Register ``diff`` under ``name`` after checking it against the base model.

        Raises:
            ValueError: if ``name`` is taken or not a non-empty string.
            BaseModelMismatchError: if the diff was trained on another base model.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a diff name must be a non-empty string, got {name!r}")
        if name in self._diffs:
            raise ValueError(f"a diff named {name!r} is already in the bank; remove() it first")
        if not isinstance(diff, SparseDiff):
            raise ValueError(f"expected a SparseDiff, got {type(diff).__name__}")
        active = self._active
        self.activate(None)  # check and record against the base weights, not a diffed model
        try:
            diff.check_compatible(self.model, full=True)
            params = dict(self.model.named_parameters(remove_duplicate=False))
            gated = []
            for param_name, (indices, values) in diff.gated.items():
                if not indices.numel():
                    continue
                param = params[param_name]
                indices = indices.to(param.device)
                base_values = param.data.view(-1).index_select(0, indices)
                task_values = base_values.clone().add_(values.to(device=param.device, dtype=param.dtype))
                gated.append((param, indices, base_values, task_values))
            dense = [
                (params[n], params[n].data.clone(), v.to(device=params[n].device, dtype=params[n].dtype))
                for n, v in diff.dense.items()
            ]
        finally:
            self.activate(active)
        self._diffs[name] = diff
        self._prepared[name] = _Prepared(gated, dense)

    def remove(self, name: str) -> None:
        """Drop a diff (reverting it first if it is active)."""
        if name not in self._diffs:
            raise KeyError(f"no diff named {name!r} in the bank (have: {self.names})")
        if self._active == name:
            self.activate(None)
        del self._diffs[name]
        del self._prepared[name]

    @torch.no_grad()
    def activate(self, name: str | None) -> None:
        """Make ``name`` the applied diff (None restores the base model); O(nnz of both diffs).

        Raises:
            KeyError: for an unknown name (the model is left as it was).
        """
        if name is not None and name not in self._diffs:
            raise KeyError(f"no diff named {name!r} in the bank (have: {self.names})")
        if name == self._active:
            return
        device = next(self.model.parameters()).device
        with _cpu_single_thread(device):
            if self._active is not None:
                self._write(self._prepared[self._active], task=False)
                self._active = None
            if name is not None:
                self._write(self._prepared[name], task=True)
                self._active = name
        logger.debug("active diff: %s", name)

    @staticmethod
    def _write(prepared: _Prepared, task: bool) -> None:
        for param, indices, base_values, task_values in prepared.gated:
            param.data.view(-1).index_copy_(0, indices, task_values if task else base_values)
        for param, base_value, task_value in prepared.dense:
            target = task_value if task else base_value
            if param.shape == target.shape:
                param.data.copy_(target)
            else:  # a head of another size: install a copy (the prepared values must stay pristine)
                param.data = target.clone()
