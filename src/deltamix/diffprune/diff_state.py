"""DiffState: one task's diff over a model's gated parameters, and the model run with theta = base + delta.

The method itself, shared by :class:`~deltamix.diffprune.model.DiffPruningModel` (a DiffState around one base model) and
the PEFT tuner (:mod:`deltamix.diffprune.peft`, one per adapter). It never holds the base model: the
caller passes the model (or its parameters) in, so one base can carry many states.

Its stage is explicit (``DiffState.stage``, a :class:`~deltamix.diffprune.stage.Stage`), and what
the state holds follows from it:

- L0 stage: flat fp32 vectors ``w`` and ``alpha`` over all d gated entries (and ``group_alpha``, one
  per tensor, if structured); delta = z(alpha) * w [* z_g], z a stretched hard-concrete gate.
- Dense-diff stage (``learn_gates=False``): ``w`` alone, delta = w.
- Fixed-mask stage (after :meth:`DiffState.project_`): only the k kept entries remain, as
  ``kept_values`` (a trainable (k,) vector) at ``kept_indices`` (sorted flat indices); ``w`` and
  ``alpha`` are freed, so gradients and optimizer state cost O(k), not O(d).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from deltamix.diffprune.config import DiffPruningConfig
from deltamix.diffprune.dense_theta import dense_thetas
from deltamix.diffprune.density_control import MULTIPLIERS_KEY, ascend
from deltamix.diffprune.fused import deterministic_delta, expected_l0_chunked, gated_thetas
from deltamix.diffprune.hard_concrete import deterministic_gate, prob_nonzero, sample_gate
from deltamix.diffprune.kept_linear import kept_linears
from deltamix.diffprune.kept_theta import kept_thetas
from deltamix.diffprune.param_groups import dense_group, diff_param_groups
from deltamix.diffprune.projection import num_kept, topk_indices
from deltamix.diffprune.spans import Span, input_embedding, spans_of
from deltamix.diffprune.split_linear import (
    LowPrecisionBases,
    autocast_dtype,
    linear_weight_names,
    split_linears,
)
from deltamix.diffprune.stage import Stage
from deltamix.diffprune.workspace import Workspace

__all__ = ["L0_STATE", "DiffState", "Span", "Stage", "input_embedding", "spans_of"]

L0_STATE = ("w", "alpha", "group_alpha", MULTIPLIERS_KEY)  # the trainable tensors of the first stage

logger = logging.getLogger(__name__)


class DiffState(nn.Module):
    """One task's diff over the gated parameters ``spans`` of a model (see the module docstring).

    Args:
        spans: the gated parameters, laid end to end (:func:`spans_of`); d = their total size.
        config: gate hyper-parameters, stage-1 options and learning rates.
        device: where the diff lives (the gated parameters' device).
        embedding: the model's input embedding and its span index (:func:`input_embedding`), whose
            rows are then computed only where a batch looks them up; None computes every entry.

    >>> state = DiffState(spans_of(gated), DiffPruningConfig(), torch.device("cpu"))  # doctest: +SKIP
    >>> out = state.run(model, (), {"input_ids": ids}); penalty = state.l0_penalty()  # doctest: +SKIP
    """

    def __init__(
        self,
        spans: list[Span],
        config: DiffPruningConfig,
        device: torch.device,
        embedding: tuple[nn.Embedding, int] | None = None,
    ) -> None:
        super().__init__()
        self._init_diff(spans, config, device, embedding)

    def _init_diff(
        self,
        spans: list[Span],
        config: DiffPruningConfig,
        device: torch.device,
        embedding: tuple[nn.Embedding, int] | None,
    ) -> None:
        """Create the L0-stage state (for subclasses that register other modules first)."""
        if not spans:
            raise ValueError("no parameter is gated: check include / exclude / dense_modules")
        self.diff_config = config
        self._spans: list[Span] = list(spans)
        offset = spans[-1].offset + spans[-1].numel
        self.num_gated = offset
        # The input embedding's (module, span index): its rows are computed only where looked up.
        self._embedding_rows_of = embedding if config.embedding_rows_only else None
        self._stage = Stage.initial(config.learn_gates)
        self.w: nn.Parameter | None = nn.Parameter(torch.zeros(offset, device=device))
        self.alpha: nn.Parameter | None = None
        self.group_alpha: nn.Parameter | None = None
        if config.learn_gates:
            self.alpha = nn.Parameter(torch.full((offset,), float(config.alpha_init), device=device))
            if config.structured:
                self.group_alpha = nn.Parameter(
                    torch.full((len(spans),), float(config.alpha_init), device=device)
                )
        # With a target density, the L0 stage's two Lagrange multipliers (density_control.py), raised by
        # gradient ascent: the hook negates their gradient before the optimizer's descent step.
        self.lagrange_multipliers: nn.Parameter | None = None
        if config.learn_gates and config.target_density is not None:
            self.lagrange_multipliers = nn.Parameter(torch.zeros(2, device=device))
            self.lagrange_multipliers.register_hook(ascend)
        self.kept_values: nn.Parameter | None = None
        self.register_buffer("kept_indices", None)
        self._kept_local: list[tuple[Span, Tensor, int, int]] = []
        self._penalty_cache: tuple[Tensor, int, list[bool]] | None = None  # its expected L0 (fused.py)
        self._workspace = Workspace()  # the L0 stage's d-sized per-step tensors (workspace.py)
        self._low_precision_bases = LowPrecisionBases()  # base weights in bf16 / fp16 (split_linear.py)
        self._linear_names_cache: tuple[nn.Module, set[str]] | None = None  # (model, its gated linears)

    def _check_usable(self) -> None:
        """Raise if this state may not be used any more (a subclass's hook; always usable here)."""

    @property
    def diff_device(self) -> torch.device:
        """The device of the diff's tensors."""
        return (self.kept_values if self._stage is Stage.FIXED_MASK else self.w).device

    @property
    def stage(self) -> Stage:
        """``Stage.L0`` (learned gates), ``Stage.DENSE_DIFF`` (learn_gates=False) or ``Stage.FIXED_MASK``;
        a str enum, equal to ``"l0"``, ``"dense_diff"``, ``"fixed_mask"``."""
        return self._stage

    @property
    def is_fixed_mask(self) -> bool:
        """True after :meth:`project_`."""
        return self._stage is Stage.FIXED_MASK

    def _flat_delta(self) -> Tensor:
        """The deterministic delta over all gated entries before projection, shape (d,), fp32.

        Computed in the same chunks as the forward pass (fused.py), so merged() is bit for bit unmerged.
        """
        cfg = self.diff_config
        if self._stage is Stage.DENSE_DIFF:
            return self.w
        offsets = [span.offset for span in self._spans]
        delta = deterministic_delta(self.w, self.alpha, cfg.stretch_left, cfg.stretch_right, offsets)
        if self.group_alpha is None:
            return delta
        z_group = self._group_gates(sample=False)
        sizes = [span.numel for span in self._spans]
        return torch.cat([part * z_group[g] for g, part in enumerate(delta.split(sizes))])

    def _group_gates(self, sample: bool) -> Tensor:
        """The structured diff's gate of each tensor, shape (num tensors,), differentiable."""
        cfg = self.diff_config
        gate = sample_gate if sample else deterministic_gate
        return gate(self.group_alpha, cfg.stretch_left, cfg.stretch_right)

    def _sample_gates(self) -> bool:
        return self.training or self.diff_config.eval_gate == "sampled"

    def _embedding_rows(self, kwargs: dict[str, Any]) -> tuple[int, Tensor] | None:
        """(span index, sorted row ids) of the input-embedding rows this call looks up, for
        `gated_thetas` ``rows``; None where every entry must be computed.

        Only with gradients enabled (a no-grad evaluation computes every entry, so ``merged()`` stays
        bit for bit the unmerged model) and with ``input_ids`` given by keyword. The fixed-mask stage
        computes every entry anyway; there the rows only switch the embedding's gradient to sparse.
        """
        found = self._embedding_rows_of
        ids = kwargs.get("input_ids")
        if found is None or not isinstance(ids, Tensor) or kwargs.get("inputs_embeds") is not None:
            return None
        if not torch.is_grad_enabled():
            return None
        embedding, index = found
        rows = ids.reshape(-1)
        if embedding.padding_idx is not None:  # a model may pad input_ids itself (Longformer)
            rows = torch.cat([rows, rows.new_tensor([embedding.padding_idx])])
        rows = torch.unique(rows.to(embedding.weight.device))
        if rows.numel() == 0 or int(rows[0]) < 0 or int(rows[-1]) >= embedding.num_embeddings:
            return None  # out-of-range ids: let the model raise its own error
        return index, rows

    def thetas(self, base: dict[str, Tensor], rows: tuple[int, Tensor] | None = None) -> dict[str, Tensor]:
        """theta = base + delta for every gated tensor that has a diff, keyed by parameter name.

        Args:
            base: the model's parameters by name (at least the gated ones), left unchanged.
            rows: see `_embedding_rows`.
        """
        cfg = self.diff_config
        workspace = self._workspace if cfg.reuse_buffers else None  # see workspace.py
        if self._stage is Stage.FIXED_MASK:  # base plus the kept values (kept_theta.py)
            pieces = [(local, start, end) for _, local, start, end in self._kept_local]
            kept = [base[span.name].contiguous() for span, *_ in self._kept_local]
            thetas = kept_thetas(self.kept_values, pieces, kept, workspace=workspace)
            return {span.name: theta for (span, *_), theta in zip(self._kept_local, thetas, strict=True)}
        gated = [base[span.name].contiguous() for span in self._spans]  # no copy where already contiguous
        offsets = [span.offset for span in self._spans]
        if self._stage is Stage.L0:  # the chunked kernel writes theta directly (see fused.py)
            with_penalty, alive = torch.is_grad_enabled() and self.alpha.requires_grad, [True]
            sample = self._sample_gates()
            thetas, penalty = gated_thetas(
                self.w,
                self.alpha,
                cfg.stretch_left,
                cfg.stretch_right,
                sample,
                offsets,
                gated,
                with_penalty=with_penalty,
                alive=alive,
                workspace=workspace,
                group_z=self._group_gates(sample) if self.group_alpha is not None else None,
                rows=rows,
            )
            # l0_penalty() uses this per-tensor expected L0 while alpha is unchanged (optimizer steps
            # bump its version) and the graph has not been used by a backward pass yet.
            self._penalty_cache = (penalty, self.alpha._version, alive) if with_penalty else None
            return {span.name: theta for span, theta in zip(self._spans, thetas, strict=True)}
        # Dense-diff stage (no gates: the non-adaptive baseline's first stage): theta = base + w.
        thetas = dense_thetas(self.w, offsets, gated, workspace=workspace, rows=rows)
        return {span.name: theta for span, theta in zip(self._spans, thetas, strict=True)}

    def run(self, model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call ``model(*args, **kwargs)`` with theta = base + delta in place of its gated parameters.

        ``torch.func.functional_call``: nothing is written into ``model``, and its outputs are its own.
        Under bf16 / fp16 autocast the gated linears compute their base and diff products apart, so
        the diff is not rounded away (split_linear.py).
        """
        self._check_usable()
        rows = self._embedding_rows(kwargs)
        base = dict(model.named_parameters())
        params = self.thetas(base, rows)
        dtype = autocast_dtype(self.diff_device)
        names = self._linear_names(model) if dtype is not None else set()
        kept = self._kept_linear_indices(model) if dtype is None else {}
        with split_linears(params, base, names, self._low_precision_bases, dtype), kept_linears(params, kept):
            if rows is None:
                return functional_call(model, params, args, kwargs, tie_weights=True, strict=False)
            embedding = self._embedding_rows_of[0]
            sparse, embedding.sparse = embedding.sparse, True  # a gradient over the looked-up rows only
            try:
                return functional_call(model, params, args, kwargs, tie_weights=True, strict=False)
            finally:
                embedding.sparse = sparse

    def _kept_linear_indices(self, model: nn.Module) -> dict[str, Tensor]:
        """Fixed-mask stage, training: the kept flat indices of each gated linear weight, by name (their
        gradient is computed there only, kept_linear.py); empty otherwise."""
        if (
            self._stage is not Stage.FIXED_MASK
            or not torch.is_grad_enabled()
            or not self.kept_values.requires_grad
        ):
            return {}
        names = self._linear_names(model)
        return {span.name: local for span, local, _, _ in self._kept_local if span.name in names}

    def _linear_names(self, model: nn.Module) -> set[str]:
        """The gated parameters of ``model`` that are nn.Linear weights (split under autocast), cached per model."""
        cached = self._linear_names_cache
        if cached is None or cached[0] is not model:
            gated = {span.name for span in self._spans}
            cached = (model, linear_weight_names(model) & gated)
            self._linear_names_cache = cached
        return cached[1]

    def l0_penalty(self) -> Tensor:
        """The expected L0 norm of the gates (a scalar, differentiable in alpha).

        Unstructured: sum_i sigmoid(alpha_i - c), with c = log(-l / r). Structured, per
        ``structured_penalty``: "sum" (the authors' code) sum_i sigmoid(alpha_i - c) +
        sum_g sigmoid(alpha_g - c); "product" (the paper's equation)
        sum_g sigmoid(alpha_g - c) * sum_{i in g} sigmoid(alpha_i - c). Zero (no gradient) without
        learned gates or after :meth:`project_`.
        """
        cfg = self.diff_config
        if self._stage is not Stage.L0:
            return torch.zeros((), device=self.diff_device)
        cached = self._penalty_cache
        if (
            cached is not None
            and torch.is_grad_enabled()
            and cached[1] == self.alpha._version
            and cached[2][0]
        ):
            # Computed by the last forward pass, in the same chunked pass as the gates.
            self._penalty_cache = None  # once: a second call builds its own graph
            per_tensor = cached[0]
        elif self.group_alpha is None:
            return expected_l0_chunked(self.alpha, cfg.stretch_left, cfg.stretch_right)
        else:
            probs = prob_nonzero(self.alpha, cfg.stretch_left, cfg.stretch_right)
            per_tensor = torch.stack([part.sum() for part in probs.split([s.numel for s in self._spans])])
        if self.group_alpha is None:
            return per_tensor.sum()
        group = prob_nonzero(self.group_alpha, cfg.stretch_left, cfg.stretch_right)
        if cfg.structured_penalty == "product":
            return (group * per_tensor).sum()
        return per_tensor.sum() + group.sum()

    @torch.no_grad()
    def current_delta(self) -> Tensor:
        """The diff the model uses in deterministic evaluation, flat over gated entries, shape (d,), fp32."""
        if self._stage is Stage.FIXED_MASK:
            delta = torch.zeros(self.num_gated, device=self.kept_values.device)
            return delta.index_copy_(0, self.kept_indices, self.kept_values.detach())
        return self._flat_delta().detach()

    def nnz(self) -> int:
        """Non-zeros of :meth:`current_delta`."""
        if self._stage is Stage.FIXED_MASK:
            return int((self.kept_values != 0).sum())
        return int((self.current_delta() != 0).sum())

    @torch.no_grad()
    def project_(self, target_sparsity: float | None = None) -> DiffState:
        """Keep the k = ceil(t * d) largest-magnitude diff entries over all gated parameters; fix the mask.

        Ties at the threshold (typically exact zeros from closed gates) are broken by larger |w|, then
        larger gate open probability, then lower flat index (the order of ``named_parameters``), so the
        result is deterministic and keeps exactly k entries; a warning is issued when fewer than k
        entries are non-zero. Afterwards only the kept entries are trainable (``kept_values``);
        ``w`` and ``alpha`` are freed, so build a new optimizer from :meth:`optimizer_param_groups`.
        Calling it again projects the kept entries further (k can only shrink).

        Args:
            target_sparsity: fraction t of gated parameters kept; None uses the config's.

        Returns:
            self.
        """
        self._check_usable()
        t = self.diff_config.target_sparsity if target_sparsity is None else float(target_sparsity)
        delta = self.current_delta()
        k = num_kept(t, self.num_gated)
        if self._stage is Stage.FIXED_MASK and k > self.kept_values.numel():
            raise ValueError(f"the mask keeps {self.kept_values.numel()} entries; cannot grow it to {k}")
        nonzero = int((delta != 0).sum())
        if nonzero < k:
            warnings.warn(
                f"only {nonzero} diff entries are non-zero, fewer than the {k} the projection keeps: the "
                "gates closed early (try a higher learning rate or a lower alpha learning rate / l0_lambda); "
                "the rest of the budget goes to zero entries ranked by |w|, then gate open probability",
                stacklevel=2,
            )
        indices = topk_indices(delta, k, tiebreak=self._tiebreak_keys())
        values = delta.index_select(0, indices)
        self._drop_l0_state()
        self._enter_fixed_mask(nn.Parameter(values), indices)
        logger.info(
            "projected the diff to %d of %d entries (%.4f%%)", k, self.num_gated, 100 * k / self.num_gated
        )
        return self

    def _enter_fixed_mask(self, kept_values: nn.Parameter, kept_indices: Tensor) -> None:
        """Hold ``kept_values`` (k,) at the sorted flat ``kept_indices`` (k,) int64: the fixed-mask stage."""
        self.kept_values = kept_values
        self.kept_indices = kept_indices
        self._stage = Stage.FIXED_MASK
        self._index_spans()

    def _drop_l0_state(self) -> None:
        """Free what only the L0 stage uses: w, the gates, the cached penalty and the workspace buffers."""
        self.w = None
        self._penalty_cache = None
        self.alpha = None
        self.group_alpha = None
        self.lagrange_multipliers = None
        self._workspace.clear()

    @torch.no_grad()
    def _tiebreak_keys(self) -> list[Tensor]:
        """Secondary projection keys for entries of equal |delta|: |w|, then the gate's open probability.

        Exact ties are common at |delta| = 0 (closed gates); ranking those by index would spend the
        budget on the first tensors' entries, while |w| and P(z != 0) pick the ones the L0 stage
        valued most. Shapes (d,), fp32. Empty in the fixed-mask stage (no w or alpha left).
        """
        if self._stage is Stage.FIXED_MASK:
            return []
        keys = [self.w.detach().abs()]
        if self._stage is Stage.L0:
            cfg = self.diff_config
            probs = prob_nonzero(self.alpha.detach(), cfg.stretch_left, cfg.stretch_right)
            if self.group_alpha is not None:
                group = prob_nonzero(self.group_alpha.detach(), cfg.stretch_left, cfg.stretch_right)
                sizes = torch.tensor([s.numel for s in self._spans], device=group.device)
                probs = probs * group.repeat_interleave(sizes)
            keys.append(probs)
        return keys

    def _index_spans(self) -> None:
        """Split the sorted kept indices by tensor, as local indices (for the forward pass)."""
        offsets = torch.tensor(
            [s.offset for s in self._spans] + [self.num_gated], device=self.kept_indices.device
        )
        bounds = torch.searchsorted(self.kept_indices, offsets).tolist()
        self._kept_local = []
        for i, span in enumerate(self._spans):
            start, end = bounds[i], bounds[i + 1]
            if end > start:
                self._kept_local.append((span, self.kept_indices[start:end] - span.offset, start, end))

    def _apply(self, fn: Any, recurse: bool = True) -> DiffState:
        # .to()/.cuda() move kept_indices; keep the per-tensor index views on the same device.
        result = super()._apply(fn, recurse)
        self._workspace.clear()  # its buffers may be on the old device or dtype
        self._low_precision_bases.clear()
        if self._stage is Stage.FIXED_MASK:
            self._index_spans()
        return result

    def extra_repr(self) -> str:
        return f"stage={self.stage}, num_gated={self.num_gated}"

    # ----- the pieces DiffPruningModel and the PEFT tuner build on ----------------------------

    def check_kept(self, indices: Tensor, values: Tensor) -> None:
        """Check a fixed mask for this state: 1-D, equal length, int64 indices strictly increasing in [0, d).

        Raises:
            ValueError: naming what is wrong.
        """
        if values.dim() != 1 or indices.shape != values.shape or indices.dtype != torch.int64:
            raise ValueError("kept_values / kept_indices must be 1-D of equal length, indices int64")
        if indices.numel() and (
            int(indices[0]) < 0
            or int(indices[-1]) >= self.num_gated
            or not bool((indices[1:] > indices[:-1]).all())
        ):
            raise ValueError(f"kept_indices must be strictly increasing in [0, {self.num_gated})")

    @torch.no_grad()
    def install_kept_(self, indices: Tensor, values: Tensor) -> None:
        """Move to the fixed-mask stage with these kept entries (flat indices (k,), values (k,)), as
        :meth:`project_` leaves it; an existing ``kept_values`` Parameter of the same size is reused
        (an optimizer may hold it). Call :meth:`check_kept` first."""
        device = self.diff_device
        self._drop_l0_state()
        kept = self.kept_values
        if kept is not None and kept.shape == values.shape:
            kept.copy_(values)
        else:
            kept = nn.Parameter(values.to(device=device, dtype=torch.float32).clone())
        self._enter_fixed_mask(kept, indices.to(device).clone())

    @torch.no_grad()
    def sparse_entries(self) -> dict[str, tuple[Tensor, Tensor]]:
        """The non-zeros of :meth:`current_delta` per gated tensor: ``{name: (local flat indices (n,)
        int64, values (n,) fp32)}``, on CPU, every gated tensor present (empty where nothing is kept)."""
        delta = self.current_delta()
        entries = {}
        for span, part in zip(self._spans, delta.split([s.numel for s in self._spans]), strict=True):
            local = torch.nonzero(part).flatten()
            entries[span.name] = (local.cpu(), part.index_select(0, local).cpu())
        return entries

    def param_groups_with_dense(self, dense: list[nn.Parameter]) -> list[dict[str, Any]]:
        """`diff_param_groups` plus a ``"dense"`` group of ``dense`` (the head: the config's
        ``head_learning_rate`` and weight decay), left out when ``dense`` is empty."""
        return self.diff_param_groups() + dense_group(self.diff_config, dense)

    def diff_param_groups(self) -> list[dict[str, Any]]:
        """The diff's parameter groups for ``torch.optim.AdamW``, each with a ``"name"``: ``"diff"`` (w,
        or kept_values after project_, with ``fixed_mask_learning_rate``), ``"gates"`` (alpha and group
        alphas; ``"constant_lr": True`` so a scheduler keeps it fixed, no weight decay) and
        ``"multipliers"`` (the Lagrange multipliers of a target density: constant lr, no weight decay,
        ascent); empty ones left out (see param_groups.py)."""
        fixed = self._stage is Stage.FIXED_MASK
        return diff_param_groups(
            self.diff_config,
            self._stage,
            self.kept_values if fixed else self.w,
            [] if fixed else [p for p in (self.alpha, self.group_alpha) if p is not None],
            None if fixed else self.lagrange_multipliers,
        )
