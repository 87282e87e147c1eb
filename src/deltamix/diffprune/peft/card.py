"""`write_adapter_card`: the Hub model card (README.md) of a saved diff pruning PEFT adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deltamix.core.model_card import ModelCardInfo, write_model_card
from deltamix.core.records import git_commit, library_versions

ADAPTER_FILE = "adapter_model.safetensors"


def write_adapter_card(
    model: Any,
    folder: str | Path,
    task: str,
    metrics: dict[str, float] | None = None,
    command: str | None = None,
    adapter_name: str | None = None,
    experiment: str | None = None,
) -> Path:
    """Write ``folder/README.md`` for the diff pruning adapter that ``model.save_pretrained(folder)``
    saved: base model, method, non-zeros of the gated parameters, adapter file size, ``metrics``,
    ``command``, deltamix's commit and the library versions, with the Hub's front matter. It replaces
    the generic card PEFT writes.

    Args:
        model: the ``PeftModel`` (or its `DiffPruningTuner`) holding the adapter.
        folder: where the adapter was saved (the adapter's own sub-folder for a non-default name).
        task: what the adapter was trained for (``"sst2"``).
        metrics: dev metrics, name -> value.
        command: the command or script that trained it.
        adapter_name: the adapter to describe; default the active one.
        experiment: a deltamix experiment name (``"glue"``) when it is one, for the Hub's tags.

    Raises:
        ValueError: if ``folder`` holds no saved adapter file.

    >>> model.save_pretrained("sst2-diff")  # doctest: +SKIP
    >>> write_adapter_card(model, "sst2-diff", task="sst2", metrics={"accuracy": 0.91})  # doctest: +SKIP
    """
    folder = Path(folder)
    adapter_file = folder / ADAPTER_FILE
    if not adapter_file.is_file():
        raise ValueError(
            f"{folder} holds no {ADAPTER_FILE}: call model.save_pretrained({str(folder)!r}) first"
        )
    name = adapter_name or model.active_adapters[0]
    config = model.peft_config[name]
    base_config = getattr(model.get_base_model(), "config", None)
    base_model = config.base_model_name_or_path or getattr(base_config, "_name_or_path", "") or "unknown"
    info = ModelCardInfo(
        base_model=str(base_model),
        method="diffprune-structured" if config.structured else "diffprune",
        task=task,
        metrics=dict(metrics or {}),
        experiment=experiment,
        nonzeros=int(model.nnz(name)),
        num_gated=int(model.state(name).num_gated),
        file_bytes=adapter_file.stat().st_size,
        command=command,
        git_commit=git_commit(),
        versions=library_versions(),
        library_name="peft",
        tags=("peft", "diff-pruning"),
    )
    return write_model_card(folder, info)
