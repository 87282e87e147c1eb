"""Diff pruning's PEFT layer: the adapters of one model (a DiffState each), what they gate, their file tensors.

Diff pruning wraps no module of the base: its diff is one flat vector over every gated parameter (the
projection ranks them all together), so an adapter is a :class:`~deltamix.diffprune.diff_state.DiffState`,
all of them in one :class:`DiffPruningLayer` held by the tuner, and the model runs with
``functional_call`` (model.py). The layer also answers PEFT's status queries (``get_model_status``,
``disable_adapter``). Here too: which parameters an adapter covers, and its tensors in
``adapter_model.safetensors``: per gated parameter ``<param>.diff_pruning_indices`` (uint8 varint
gaps of the sorted local indices, the codec of SparseDiff files) and ``<param>.diff_pruning_values``
(fp32), about 6 bytes per non-zero; parameters with no kept entry are left out.
"""

from __future__ import annotations

import math

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from peft.utils.other import AuxiliaryTrainingWrapper
from torch import Tensor, nn

from deltamix.core.errors import DiffFormatError
from deltamix.diffprune.config import DiffPruningConfig
from deltamix.diffprune.diff_file import decode_entry, encode_entry
from deltamix.diffprune.diff_state import DiffState
from deltamix.diffprune.peft.config import DiffPruningPeftConfig
from deltamix.diffprune.peft.peft_type import PREFIX
from deltamix.diffprune.spans import Span, input_embedding, spans_of

INDICES = PREFIX + "indices"
VALUES = PREFIX + "values"
KEY_PREFIX = "base_model.model."  # PEFT's prefix of base-model keys in adapter files


class DiffPruningLayer(nn.Module, BaseTunerLayer):
    """The diff pruning adapters of one model: ``diff_pruning_states``, a DiffState per adapter name.

    It holds no base layer (the tuner runs the whole model); its flags (active adapter, disabled,
    merged) are set by the tuner and read by PEFT's status helpers.
    """

    adapter_layer_names = ("diff_pruning_states",)

    def __init__(self) -> None:
        nn.Module.__init__(self)
        self.diff_pruning_states = nn.ModuleDict()
        self._active_adapter: str | list[str] = []
        self._disable_adapters = False
        self.merged_adapters: list[str] = []


def _wrapped_prefixes(model: nn.Module) -> tuple[str, ...]:
    """``name + "."`` of every PEFT auxiliary wrapper (modules_to_save copies of a head) in ``model``."""
    return tuple(f"{name}." for name, m in model.named_modules() if isinstance(m, AuxiliaryTrainingWrapper))


def base_parameter_names(model: nn.Module, config: DiffPruningPeftConfig) -> list[str]:
    """Names of ``model``'s frozen base parameters (all but the heads in ``modules_to_save`` and PEFT's
    copies of them): what the adapter's base fingerprint covers. Tied names are all listed."""
    heads = DiffPruningConfig(dense_modules=list(config.modules_to_save or []))
    wrapped = _wrapped_prefixes(model)
    return [
        name
        for name, _ in model.named_parameters(remove_duplicate=False)
        if not name.startswith(wrapped) and not heads.is_dense(name)
    ]


def gated_parameters(model: nn.Module, config: DiffPruningPeftConfig) -> list[tuple[str, nn.Parameter]]:
    """The parameters an adapter gives a diff: base parameters (tied ones once) selected by ``include`` /
    ``exclude``, in ``named_parameters`` order.

    Raises:
        ValueError: if none is selected, or they lie on several devices.
    """
    base = set(base_parameter_names(model, config))
    gated = [(n, p) for n, p in model.named_parameters() if n in base and config.is_gated(n)]
    if not gated:
        raise ValueError("no parameter is gated: check include / exclude / modules_to_save")
    devices = {p.device for _, p in gated}
    if len(devices) > 1:
        raise ValueError(f"gated parameters must be on one device, found {sorted(map(str, devices))}")
    return gated


def new_diff_state(model: nn.Module, config: DiffPruningPeftConfig) -> DiffState:
    """A fresh adapter (L0 stage, w = 0) over ``model``'s gated parameters."""
    gated = gated_parameters(model, config)
    spans = spans_of(gated)
    return DiffState(spans, config, gated[0][1].device, input_embedding(model, spans))


def adapter_tensors(state: DiffState, adapter_name: str) -> dict[str, Tensor]:
    """The adapter's tensors for ``adapter_model.safetensors``, keyed as PEFT expects before it removes
    the adapter name: ``base_model.model.<param>.diff_pruning_{indices,values}.<adapter_name>``.

    The non-zeros of the diff as the model uses it (``DiffState.current_delta``): after
    ``project_()`` the kept entries; before it, every entry the deterministic gate leaves open.
    """
    tensors = {}
    for name, (indices, values) in state.sparse_entries().items():
        if indices.numel():
            tensors[f"{KEY_PREFIX}{name}.{INDICES}.{adapter_name}"] = encode_entry(indices)
            tensors[f"{KEY_PREFIX}{name}.{VALUES}.{adapter_name}"] = values.contiguous()
    return tensors


def _parameter_of(key: str, suffix: str) -> str:
    return key.removesuffix(suffix).removeprefix(KEY_PREFIX)


def read_adapter_tensors(
    spans: list[Span], tensors: dict[str, Tensor], source: str
) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """Split an adapter file's tensors into the rest (heads) and the diff as flat kept entries.

    Args:
        spans: the gated parameters of the adapter on this model.
        tensors: the file's tensors (keys without the adapter name).
        source: what to name in errors (the adapter).

    Returns:
        (the other tensors, flat indices (k,) int64 sorted, values (k,) fp32).

    Raises:
        DiffFormatError: an entry for a parameter that is not gated here, a lone indices or values
            tensor, or a bad entry (see ``diff_file.decode_entry``).
    """
    rest, codes, values = {}, {}, {}
    for key, tensor in tensors.items():
        if key.endswith("." + INDICES):
            codes[_parameter_of(key, "." + INDICES)] = tensor
        elif key.endswith("." + VALUES):
            values[_parameter_of(key, "." + VALUES)] = tensor
        else:
            rest[key] = tensor
    if set(codes) != set(values):
        raise DiffFormatError(
            f"{source}: indices without values or values without indices: {sorted(set(codes) ^ set(values))}"
        )
    by_name = {span.name: span for span in spans}
    unknown = sorted(set(codes) - set(by_name))
    if unknown:
        raise DiffFormatError(f"{source}: entries for parameters this adapter does not gate: {unknown[:3]}")
    flat_indices, flat_values = [], []
    for span in spans:  # in flat order, so the concatenation is sorted
        if span.name in codes:
            local, vals = decode_entry(
                span.name, codes[span.name].cpu(), values[span.name].cpu(), math.prod(span.shape)
            )
            flat_indices.append(local + span.offset)
            flat_values.append(vals.float())
    if not flat_indices:
        return rest, torch.zeros(0, dtype=torch.int64), torch.zeros(0)
    return rest, torch.cat(flat_indices), torch.cat(flat_values)
