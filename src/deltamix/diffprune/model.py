"""DiffPruningModel: wraps any nn.Module so that its parameters become theta = theta_base + delta.

The base model is kept, frozen and unchanged, as the submodule ``base_model``; each call runs it
with ``torch.func.functional_call`` on theta = base + delta for the gated parameters, so its class,
forward signature and outputs (Hugging Face ``ModelOutput`` with ``.loss`` included) are untouched
and no weight is copied. The dense modules (the task head) are trained in place.

The diff itself (its stages, the kernels, projection) is :class:`~deltamix.diffprune.diff_state.DiffState`,
which this class extends with the base model, the dense head, export and merging; the PEFT tuner
(:mod:`deltamix.diffprune.peft`) runs the same DiffState once per adapter.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from deltamix.diffprune.config import DiffPruningConfig
from deltamix.diffprune.diff_state import L0_STATE, DiffState
from deltamix.diffprune.fingerprint import fingerprint
from deltamix.diffprune.spans import input_embedding, spans_of
from deltamix.diffprune.sparse_diff import SparseDiff

logger = logging.getLogger(__name__)


def loss_uses_item_count(model: nn.Module) -> bool:
    """Whether ``model``'s loss uses the Trainer's loss kwargs (``num_items_in_batch``).

    Read by transformers' Trainer: when True it passes ``num_items_in_batch`` and, with N > 1
    processes, multiplies the returned loss by N (expecting a sum divided by the global count).
    A model that merely has ``**kwargs`` but computes a plain mean (e.g.
    ``BertForSequenceClassification``, ``T5ForConditionalGeneration``) must answer False, or its
    task gradient is N times too large relative to the (unscaled) L0 penalty. So: an explicit
    ``accepts_loss_kwargs`` attribute wins; a Hugging Face model accepts them only if its
    forward calls ``self.loss_function`` (which honours ``num_items_in_batch``); any other
    module, if its forward has ``**kwargs``.
    """
    if hasattr(model, "accepts_loss_kwargs"):
        return bool(model.accepts_loss_kwargs)
    forward = model.forward
    parameters = inspect.signature(forward).parameters.values()
    if not any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters):
        return False
    if hasattr(model, "loss_function"):  # a transformers PreTrainedModel
        try:
            return "loss_function" in inspect.getsource(forward)
        except (OSError, TypeError):
            return True
    return True


class DiffPruningModel(DiffState):
    """Diff pruning around any ``nn.Module`` (a Hugging Face model or plain PyTorch).

    Args:
        model: the pretrained model; its gated parameters are frozen (``requires_grad=False``), its
            dense modules stay trainable, and nothing else about it changes.
        config: which parameters get a diff, gate hyper-parameters and learning rates.

    Raises:
        ValueError: if no parameter is gated, a dense_modules name matches nothing, or the gated
            parameters are spread over several devices.

    >>> dp = DiffPruningModel(bert_classifier, DiffPruningConfig(dense_modules=["classifier"]))  # doctest: +SKIP
    >>> out = dp(input_ids=ids, labels=y); loss = out.loss + cfg.l0_lambda * dp.l0_penalty()  # doctest: +SKIP
    >>> dp.project_(); dp.export_diff().save("task.safetensors")  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, config: DiffPruningConfig | None = None) -> None:
        nn.Module.__init__(self)  # base_model first: the parameter order stays base, then diff
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        config = config if config is not None else DiffPruningConfig()
        self.base_model = model
        self._merged = False
        self._fingerprint_cache: dict | None = None

        named = list(model.named_parameters())  # tied parameters appear once
        self._original_requires_grad = {name: p.requires_grad for name, p in named}
        dense = [name for name, _ in named if config.is_dense(name)]
        for pattern in config.dense_modules:
            probe = DiffPruningConfig(dense_modules=[pattern])
            if not any(probe.is_dense(name) for name, _ in named):
                raise ValueError(f"dense_modules entry {pattern!r} matches no module with parameters")
        gated = [(name, p) for name, p in named if config.is_gated(name)]
        if not gated:
            raise ValueError("no parameter is gated: check include / exclude / dense_modules")
        devices = {p.device for _, p in gated}
        if len(devices) > 1:
            raise ValueError(f"gated parameters must be on one device, found {sorted(map(str, devices))}")
        for name, p in named:
            p.requires_grad_(name in dense)
        self.dense_names: list[str] = dense
        spans = spans_of(gated)
        self._init_diff(spans, config, next(iter(devices)), input_embedding(model, spans))
        logger.info(
            "diff pruning over %d parameters in %d tensors; %d dense parameters in %d tensors",
            self.num_gated,
            len(spans),
            sum(p.numel() for name, p in named if name in dense),
            len(dense),
        )

    # ----- Hugging Face compatibility ---------------------------------------------------------

    @property
    def config(self) -> Any:
        """The base model's ``config`` (for Hugging Face tooling), or None."""
        return getattr(self.base_model, "config", None)

    @property
    def accepts_loss_kwargs(self) -> bool:
        """Whether the base model's loss uses the Trainer's loss kwargs (see :func:`loss_uses_item_count`)."""
        return loss_uses_item_count(self.base_model)

    def get_base_model(self) -> nn.Module:
        """The wrapped model (with base weights; use :meth:`merged` to run it with the diff)."""
        return self.base_model

    # ----- the diff ---------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._merged:
            raise RuntimeError("merge_and_unload() was called: use the returned model, not this wrapper")

    def _effective_params(self, rows: tuple[int, Tensor] | None = None) -> dict[str, Tensor]:
        """theta = base + delta for every gated tensor that has a diff (``rows``: see `_embedding_rows`)."""
        return self.thetas(dict(self.base_model.named_parameters()), rows)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Call the base model with theta = base + delta; same arguments and outputs as the base model."""
        return self.run(self.base_model, args, kwargs)

    # ----- export / merge ---------------------------------------------------------------------

    def base_fingerprint(self) -> dict:
        """Fingerprint of the frozen base parameters (all but the dense modules), computed once."""
        if self._fingerprint_cache is None:
            names = [
                n
                for n, _ in self.base_model.named_parameters(remove_duplicate=False)
                if n not in self.dense_names
            ]
            self._fingerprint_cache = fingerprint(self.base_model, names, full=True)
        return self._fingerprint_cache

    @torch.no_grad()
    def export_diff(self) -> SparseDiff:
        """The diff as a :class:`SparseDiff`: the non-zeros of :meth:`current_delta` and the dense head.

        Before :meth:`project_` this uses the deterministic gate; after it, the kept entries (kept
        entries that trained to exactly 0 are dropped, which changes nothing on apply).
        """
        self._check_usable()
        base = dict(self.base_model.named_parameters())
        return SparseDiff(
            gated=self.sparse_entries(),
            shapes={s.name: s.shape for s in self._spans},
            dtypes={s.name: str(base[s.name].dtype).removeprefix("torch.") for s in self._spans},
            dense={name: base[name].detach().cpu().clone() for name in self.dense_names},
            base_fingerprint=self.base_fingerprint(),
            config={**self.diff_config.to_dict(), "stage": self.stage.value},
        )

    @contextlib.contextmanager
    def merged(self) -> Iterator[nn.Module]:
        """Temporarily add the diff into the base model in place (e.g. to call ``generate``).

        Yields the base model; on exit its weights are restored bit for bit.

        >>> with dp.merged() as m:  # doctest: +SKIP
        ...     tokens = m.generate(ids)
        """
        self._check_usable()
        diff = self.export_diff()
        diff.apply_(self.base_model, check=False)
        try:
            yield self.base_model
        finally:
            diff.revert_(self.base_model)

    @torch.no_grad()
    def merge_and_unload(self) -> nn.Module:
        """Bake the diff into the base model in place and return it as a plain model.

        The wrapper is unusable afterwards; parameters get back the ``requires_grad`` flags they had
        before wrapping.
        """
        diff = self.export_diff()
        diff.apply_(self.base_model, check=False)
        for name, p in self.base_model.named_parameters():
            p.requires_grad_(self._original_requires_grad.get(name, True))
        self._merged = True
        return self.base_model

    # ----- trainable state (checkpoints) ------------------------------------------------------

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """Everything training changes, and nothing of the frozen base: what a checkpoint must hold.

        Keys: L0 / dense-diff stage ``w`` (d,), ``alpha`` (d,), ``group_alpha`` (num tensors,),
        ``lagrange_multipliers`` (2,) with a target density;
        fixed-mask stage ``kept_values`` (k,) and ``kept_indices`` (k,) int64; both stages
        ``dense/<param name>`` for the head. Tensors are detached and contiguous (not copies).
        """
        state: dict[str, Tensor] = {}
        for key in (*L0_STATE, "kept_values", "kept_indices"):
            value = getattr(self, key)
            if value is not None:
                state[key] = value.detach().contiguous()
        base = dict(self.base_model.named_parameters())
        for name in self.dense_names:
            state[f"dense/{name}"] = base[name].detach().contiguous()
        return state

    @torch.no_grad()
    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load what :meth:`trainable_state_dict` returned (in place; may move the model to fixed-mask).

        A fixed-mask state loaded into a model still in its L0 stage projects it onto the stored mask
        (the Trainer resuming the fixed-mask stage of a fresh process). The state is fully checked
        before anything is written, so a bad one leaves the model untouched.

        Raises:
            ValueError: missing / unexpected keys, or shapes / dtypes that do not match this model.
        """
        self._check_usable()
        fixed = "kept_values" in state
        if fixed:
            expected = {"kept_values", "kept_indices"}
        else:
            expected = {k for k in L0_STATE if getattr(self, k) is not None}
            if self.is_fixed_mask:
                raise ValueError("the model is in its fixed-mask stage; an L0-stage state cannot be loaded")
        expected |= {f"dense/{n}" for n in self.dense_names}
        if set(state) != expected:
            missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
            raise ValueError(
                f"trainable state does not match the model: missing {missing}, unexpected {unexpected}"
            )
        base = dict(self.base_model.named_parameters())
        targets = {f"dense/{n}": base[n] for n in self.dense_names}
        if fixed:
            values, indices = state["kept_values"], state["kept_indices"]
            self.check_kept(indices, values)
        else:
            targets.update({k: getattr(self, k) for k in L0_STATE if getattr(self, k) is not None})
        for key, target in targets.items():
            if tuple(state[key].shape) != tuple(target.shape):
                raise ValueError(
                    f"{key}: shape {tuple(state[key].shape)} in the state, {tuple(target.shape)} in the model"
                )
        for key, target in targets.items():
            target.copy_(state[key])
        if fixed:
            self.install_kept_(indices, values)

    # ----- optimisation -----------------------------------------------------------------------

    def dense_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters of the dense modules."""
        base = dict(self.base_model.named_parameters())
        return [base[name] for name in self.dense_names]

    def optimizer_param_groups(self) -> list[dict[str, Any]]:
        """Parameter groups for ``torch.optim.AdamW``, with the config's learning rates.

        Groups (empty ones left out), each with a ``"name"``:
        ``"diff"`` (w, or kept_values after project_, with ``fixed_mask_learning_rate``),
        ``"gates"`` (alpha and group alphas; ``"constant_lr": True`` so a scheduler keeps it fixed,
        no weight decay), ``"multipliers"`` (the Lagrange multipliers of a target density: constant lr,
        no weight decay, ascent) and ``"dense"`` (the head).
        """
        return self.param_groups_with_dense(self.dense_parameters())

    def extra_repr(self) -> str:
        return f"stage={self.stage}, num_gated={self.num_gated}, dense={len(self.dense_names)} tensors"
