"""DiffPruningTuner: PEFT's tuner for diff pruning; one DiffState per adapter over one frozen base model.

No layer is injected into the base. Each adapter is a :class:`~deltamix.diffprune.diff_state.DiffState`
in the tuner's one :class:`~deltamix.diffprune.peft.layer.DiffPruningLayer` (``diff_pruning_layer``,
the tuner's shared state in PEFT's terms), and a forward pass runs the base model with ``torch.func.functional_call`` on
theta = base + delta of the active adapter, exactly as :class:`~deltamix.diffprune.model.DiffPruningModel`
does. ``generate`` and ``merge_adapter`` add the adapter's sparse diff into the base weights in place
(O(nnz), reverted bit for bit by ``SparseDiff.revert_``). Task heads are PEFT's ``modules_to_save``.

Reached from the ``PeftModel`` (PEFT forwards unknown attributes to its tuner):
``l0_penalty()``, ``project_()``, ``optimizer_param_groups()``, ``stage``, ``export_diff()``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from peft.tuners.tuners_utils import BaseTuner
from peft.utils.other import AuxiliaryTrainingWrapper, _set_adapter, set_additional_trainable_modules
from torch import Tensor, nn

from deltamix.core.errors import BaseModelMismatchError
from deltamix.diffprune.diff_state import DiffState
from deltamix.diffprune.fingerprint import describe_mismatch, fingerprint
from deltamix.diffprune.peft.config import DiffPruningPeftConfig
from deltamix.diffprune.peft.layer import (
    DiffPruningLayer,
    adapter_tensors,
    base_parameter_names,
    new_diff_state,
    read_adapter_tensors,
)
from deltamix.diffprune.peft.peft_type import PREFIX
from deltamix.diffprune.sparse_diff import SparseDiff
from deltamix.diffprune.stage import Stage

logger = logging.getLogger(__name__)

LAYER = PREFIX + "layer"  # the tuner's attribute holding the adapters' DiffStates


def _find_tuner(model: nn.Module) -> DiffPruningTuner:
    for module in model.modules():
        if isinstance(module, DiffPruningTuner):
            return module
    raise ValueError(f"{type(model).__name__} holds no diff pruning adapter")


class DiffPruningTuner(BaseTuner):
    """Diff pruning (Guo, Kim and Rush, 2021) as a PEFT method; made by ``peft.get_peft_model`` with a
    :class:`DiffPruningPeftConfig` (see the module docstring).

    >>> model = get_peft_model(bert, DiffPruningPeftConfig(task_type="SEQ_CLS"))  # doctest: +SKIP
    >>> loss = model(**batch).loss + model.diff_config.l0_lambda * model.l0_penalty()  # doctest: +SKIP
    >>> model.project_(); model.save_pretrained("sst2-diff")  # doctest: +SKIP
    """

    prefix: str = PREFIX
    tuner_layer_cls = DiffPruningLayer
    target_module_mapping: dict[str, list[str]] = {}  # noqa: RUF012 (PEFT's class attribute)
    uses_shared_state = True

    # ----- adapters ---------------------------------------------------------------------------

    def _pre_injection_hook(self, model: nn.Module, config: DiffPruningPeftConfig, adapter_name: str) -> None:
        if LAYER not in self._modules:
            setattr(self, LAYER, DiffPruningLayer())
            self._merged: tuple[str, SparseDiff] | None = None

    @property
    def _layer(self) -> DiffPruningLayer:
        return self._modules[LAYER]

    @property
    def _states(self) -> nn.ModuleDict:
        return self._layer.diff_pruning_states

    def inject_adapter(
        self,
        model: nn.Module,
        adapter_name: str,
        autocast_adapter_dtype: bool = True,
        low_cpu_mem_usage: bool = False,
        state_dict: dict[str, Tensor] | None = None,
    ) -> None:
        """Add adapter ``adapter_name`` (its config is already in ``peft_config``): check the base against
        the config's fingerprint (or record it), create its DiffState, set up its head copies.

        Raises:
            ValueError: the config is not a DiffPruningPeftConfig, no parameter is gated, or an adapter
                is merged into the base weights.
            BaseModelMismatchError: the config's ``base_fingerprint`` is not this model's.
        """
        config = self.peft_config[adapter_name]
        if not isinstance(config, DiffPruningPeftConfig):
            raise ValueError(
                f"adapter {adapter_name!r}: expected a DiffPruningPeftConfig, got {type(config).__name__}"
            )
        self._pre_injection_hook(model, config, adapter_name)
        if self._merged is not None:
            raise ValueError(
                f"adapter {self._merged[0]!r} is merged into the base weights: unmerge_adapter() before adding "
                f"{adapter_name!r}"
            )
        self._check_new_adapter_config(config)
        names = base_parameter_names(model, config)
        if config.base_fingerprint is not None:
            expected = config.base_fingerprint
            try:
                actual = fingerprint(model, names, full=bool(expected.get("values_sha256")))
                problem = describe_mismatch(expected, actual)
            except (KeyError, TypeError) as error:
                problem = f"unreadable base_fingerprint ({error})"
            if problem is not None:
                raise BaseModelMismatchError(
                    f"adapter {adapter_name!r} was not trained on this base model: {problem}"
                )
        else:  # a copy: the caller's config object may be used again on another base
            config = copy.copy(config)
            config.base_fingerprint = fingerprint(model, names, full=True)
            self.peft_config[adapter_name] = config
        state = new_diff_state(model, config)
        self._states[adapter_name] = state
        self._layer._active_adapter = self.active_adapter
        state.requires_grad_(adapter_name in self.active_adapters and not config.inference_mode)
        self._mark_only_adapters_as_trainable(model)
        set_additional_trainable_modules(
            model=model,
            peft_config=config,
            model_config=BaseTuner.get_model_config(self),
            adapter_name=adapter_name,
            activate_adapter=adapter_name in self.active_adapters,
        )
        logger.info("diff pruning adapter %r over %d parameters", adapter_name, state.num_gated)

    def _create_and_replace(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("diff pruning replaces no module (see inject_adapter)")

    def set_adapter(self, adapter_name: str | list[str], inference_mode: bool = False) -> None:
        """Make ``adapter_name`` the adapter the model runs with (one at a time); it trains unless
        ``inference_mode``, the others are frozen."""
        name = adapter_name[0] if isinstance(adapter_name, list) and len(adapter_name) == 1 else adapter_name
        if not isinstance(name, str):
            raise ValueError(f"diff pruning runs one adapter at a time, got {adapter_name!r}")
        if name not in self._states:
            raise ValueError(f"no diff pruning adapter {name!r} (have: {list(self._states)})")
        if self._merged is not None and self._merged[0] != name:
            warnings.warn(f"unmerging adapter {self._merged[0]!r} to activate {name!r}", stacklevel=2)
            self.unmerge_adapter()
        _set_adapter(self.model, name, inference_mode=inference_mode)  # the heads (modules_to_save)
        for other, state in self._states.items():
            state.requires_grad_(other == name and not inference_mode)
        self.active_adapter = name
        self._layer._active_adapter = name

    def delete_adapter(self, adapter_name: str) -> None:
        """Drop an adapter (not while it is merged); another one becomes active if it was."""
        if adapter_name not in self._states:
            raise ValueError(f"Adapter {adapter_name} does not exist")
        if self._merged is not None and self._merged[0] == adapter_name:
            raise ValueError(f"adapter {adapter_name!r} is merged: unmerge_adapter() it first")
        del self.peft_config[adapter_name]
        del self._states[adapter_name]
        remaining = [a for a in self.active_adapters if a != adapter_name] or list(self._states)[:1]
        for module in self.model.modules():
            if isinstance(module, AuxiliaryTrainingWrapper):
                module.delete_adapter(adapter_name, new_active_adapters=remaining or None)
        self.active_adapter = remaining[0] if remaining else []
        self._layer._active_adapter = self.active_adapter

    def _enable_adapter_layers(self, enabled: bool = True) -> None:
        if not enabled and self._merged is not None:
            self.unmerge_adapter()
        self._layer._disable_adapters = not enabled
        super()._enable_adapter_layers(enabled)

    # ----- running the model ------------------------------------------------------------------

    def state(self, adapter_name: str | None = None) -> DiffState:
        """The DiffState of ``adapter_name`` (None: the active adapter)."""
        if adapter_name is None:
            active = self.active_adapters
            if len(active) != 1:
                raise ValueError(f"diff pruning runs one adapter at a time; active: {active}")
            adapter_name = active[0]
        if adapter_name not in self._states:
            raise ValueError(f"no diff pruning adapter {adapter_name!r} (have: {list(self._states)})")
        return self._states[adapter_name]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The base model with theta = base + delta of the active adapter (the base's own outputs)."""
        if self._layer.disable_adapters or self._merged is not None:
            return self.model(*args, **kwargs)
        return self.state().run(self.model, args, kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """The base model's ``generate`` with the active adapter's diff added in place for the call."""
        if self._layer.disable_adapters or self._merged is not None:
            return self.model.generate(*args, **kwargs)
        with self._applied(self.active_adapters[0]):
            return self.model.generate(*args, **kwargs)

    # ----- the method's calls -----------------------------------------------------------------

    @property
    def diff_config(self) -> DiffPruningPeftConfig:
        """The active adapter's config."""
        return self.peft_config[self.active_adapters[0]]

    @property
    def stage(self) -> Stage:
        """The active adapter's stage (a str enum: ``"l0"``, ``"dense_diff"`` or ``"fixed_mask"``)."""
        return self.state().stage

    @property
    def num_gated(self) -> int:
        """Number d of the active adapter's gated parameters."""
        return self.state().num_gated

    @property
    def lagrange_multipliers(self) -> nn.Parameter | None:
        """The active adapter's Lagrange multipliers (a ``target_density``), or None."""
        return self.state().lagrange_multipliers

    def nnz(self, adapter_name: str | None = None) -> int:
        """Non-zeros of the adapter's diff as the model uses it."""
        return self.state(adapter_name).nnz()

    def l0_penalty(self, adapter_name: str | None = None) -> Tensor:
        """The adapter's expected L0 norm (a scalar, differentiable in its gates; 0 after ``project_``).
        Add ``l0_lambda`` times it to the task loss, or use ``DiffPruningTrainerMixin``."""
        return self.state(adapter_name).l0_penalty()

    def project_(self, target_sparsity: float | None = None, adapter_name: str | None = None) -> DiffState:
        """Keep the adapter's k = ceil(t * d) largest diff entries and fix its mask (``DiffState.project_``);
        t defaults to the config's ``target_sparsity``. Build a new optimizer afterwards."""
        if self._merged is not None:
            raise ValueError(f"adapter {self._merged[0]!r} is merged: unmerge_adapter() before projecting")
        return self.state(adapter_name).project_(target_sparsity)

    def optimizer_param_groups(self, adapter_name: str | None = None) -> list[dict[str, Any]]:
        """AdamW groups of the adapter with its config's learning rates: ``"diff"``, ``"gates"``,
        ``"multipliers"`` (``DiffState.diff_param_groups``) and ``"dense"``: every other trainable
        parameter of the model (the active head copies of ``modules_to_save``)."""
        dense = [p for p in self.model.parameters() if p.requires_grad]
        return self.state(adapter_name).param_groups_with_dense(dense)

    @torch.no_grad()
    def export_diff(self, adapter_name: str | None = None) -> SparseDiff:
        """The adapter as a :class:`SparseDiff` over the plain base model (its active head copies stored
        densely under the base's own names), e.g. for ``DiffBank`` or ``SparseDiff.save``."""
        name = adapter_name if adapter_name is not None else self.active_adapters[0]
        state = self.state(name)
        params = dict(self.model.named_parameters())
        dense = {}
        for module_name, module in self.model.named_modules():
            if isinstance(module, AuxiliaryTrainingWrapper) and name in getattr(
                module, "modules_to_save", {}
            ):
                for param_name, p in module.modules_to_save[name].named_parameters():
                    dense[f"{module_name}.{param_name}"] = p.detach().cpu().clone()
        config = self.peft_config[name]
        return SparseDiff(
            gated=state.sparse_entries(),
            shapes={s.name: s.shape for s in state._spans},
            dtypes={s.name: str(params[s.name].dtype).removeprefix("torch.") for s in state._spans},
            dense=dense,
            base_fingerprint=config.base_fingerprint,
            config={
                **{k: v for k, v in config.to_dict().items() if k != "base_fingerprint"},
                "stage": state.stage.value,
            },
        )

    # ----- merging ----------------------------------------------------------------------------

    def _diff_only(self, adapter_name: str) -> SparseDiff:
        diff = self.export_diff(adapter_name)
        return SparseDiff(diff.gated, diff.shapes, diff.dtypes, {}, diff.base_fingerprint, diff.config)

    @contextlib.contextmanager
    def _applied(self, adapter_name: str) -> Iterator[None]:
        diff = self._diff_only(adapter_name)
        diff.apply_(self.model, check=False)
        try:
            yield
        finally:
            diff.revert_(self.model)

    def merge_adapter(self, adapter_names: list[str] | None = None, safe_merge: bool = False) -> None:
        """Add the adapter's diff into the base weights in place (``unmerge_adapter`` restores them exactly)."""
        names = adapter_names if adapter_names is not None else self.active_adapters
        if len(names) != 1:
            raise ValueError(f"diff pruning merges one adapter at a time, got {names}")
        if self._merged is not None:
            warnings.warn(f"adapter {self._merged[0]!r} is already merged", stacklevel=2)
            return
        diff = self._diff_only(names[0])
        diff.apply_(self.model, check=False)
        if safe_merge:
            params = dict(self.model.named_parameters())
            if not all(torch.isfinite(params[n]).all() for n in diff.gated):
                diff.revert_(self.model)
                raise ValueError(f"merging adapter {names[0]!r} gives non-finite weights")
        self._merged = (names[0], diff)
        self._layer.merged_adapters = [names[0]]

    def unmerge_adapter(self) -> None:
        """Undo :meth:`merge_adapter` bit for bit."""
        if self._merged is None:
            warnings.warn("Already unmerged. Nothing to do.", stacklevel=2)
            return
        self._merged[1].revert_(self.model)
        self._merged = None
        self._layer.merged_adapters = []

    def _unload_and_optionally_merge(
        self,
        merge: bool = True,
        progressbar: bool = False,
        safe_merge: bool = False,
        adapter_names: list[str] | None = None,
    ) -> nn.Module:
        if merge:
            names = adapter_names if adapter_names is not None else self.active_adapters
            if self._merged is None or [self._merged[0]] != list(names):
                if self._merged is not None:
                    self.unmerge_adapter()
                self.merge_adapter(list(names), safe_merge=safe_merge)
        elif self._merged is not None:
            self.unmerge_adapter()
        self._merged = None  # what is merged now stays: the model is handed back
        self._layer.merged_adapters = []
        return super()._unload_and_optionally_merge(
            merge=merge, progressbar=progressbar, safe_merge=safe_merge, adapter_names=adapter_names
        )

    # ----- adapter_model.safetensors ----------------------------------------------------------

    @classmethod
    def _get_adapter_state_dict(
        cls,
        model: nn.Module,
        config: DiffPruningPeftConfig,
        adapter_name: str,
        state_dict: dict[str, Tensor],
        unwanted_adapter_names: list[str],
    ) -> dict[str, Tensor]:
        """The adapter's sparse tensors (layer.py); PEFT adds the heads and removes the adapter name."""
        return adapter_tensors(_find_tuner(model).state(adapter_name), adapter_name)

    @classmethod
    def _remap_adapter_state_dict_for_load(
        cls,
        model: nn.Module,
        config: DiffPruningPeftConfig,
        adapter_name: str,
        state_dict: dict[str, Tensor],
    ) -> dict[str, Tensor]:
        """Install the file's kept entries as the adapter's fixed mask; return the rest for PEFT to load,
        with the kept entries under the model's own keys (so none is reported missing)."""
        tuner = _find_tuner(model)
        state = tuner.state(adapter_name)
        rest, indices, values = read_adapter_tensors(state._spans, state_dict, f"adapter {adapter_name!r}")
        state.check_kept(indices, values)
        state.install_kept_(indices, values)
        state.requires_grad_(adapter_name in tuner.active_adapters and not config.inference_mode)
        rest = super()._remap_adapter_state_dict_for_load(model, config, adapter_name, rest)
        path = next(name for name, module in model.named_modules() if module is state)
        rest[f"{path}.kept_values"] = state.kept_values.detach()
        rest[f"{path}.kept_indices"] = state.kept_indices
        return rest
