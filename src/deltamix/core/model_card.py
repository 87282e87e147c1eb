"""Model cards: the README.md the Hugging Face Hub shows for a saved model or adapter.

A card is YAML front matter (``base_model``, ``library_name``, ``pipeline_tag``, ``tags``, ``datasets``
and a ``model-index`` of the evaluation results, written by `huggingface_hub.ModelCardData`, so the
Hub reads it as it reads its own) followed by a short text: what the model is, how sparse its diff
is, its dev metrics, the command and commit that made it, and the library versions.

>>> card = ModelCardInfo(base_model="bert-base-uncased", method="diffprune", task="rte",
...                      metrics={"accuracy": 0.7}, nonzeros=550_000, num_gated=110_000_000)
>>> write_model_card("exported/rte", card)  # doctest: +SKIP
PosixPath('exported/rte/README.md')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltamix.core.io import atomic_write_text

CARD_FILE = "README.md"

# What each method of a run record is, in a sentence and as Hub tags.
METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "diffprune": ("diff pruning (a sparse task diff added to the frozen base weights)", ("diff-pruning",)),
    "diffprune-structured": ("structured diff pruning (one extra gate per weight tensor)", ("diff-pruning",)),
    "diffprune-nonadaptive": ("non-adaptive diff pruning (magnitude pruning of the fine-tuning diff)", ("diff-pruning",)),
    "full": ("full fine-tuning", ("fine-tuning",)),
    "last-layer": ("fine-tuning of the last layer and the head only", ("fine-tuning",)),
    "bitfit": ("BitFit (bias terms and the head trained)", ("bitfit", "peft")),
    "lora": ("LoRA adapters", ("lora", "peft")),
    "shira": ("SHiRA (a sparse high-rank adapter)", ("shira", "peft")),
    "supertuning": ("supertuning (a learned subnetwork of the base)", ("peft",)),
}  # fmt: skip
# Hub data set ids of the record's experiments.
DATASETS = {"glue": "nyu-mll/glue"}
PIPELINE_TAGS = {
    "glue": "text-classification",
    "translation": "translation",
    "parsing": "text2text-generation",
}


@dataclass
class ModelCardInfo:
    """What a model card says about a model.

    Attributes:
        base_model: the Hub id or path of the pretrained model the task model is built on.
        method: the training method (a key of `METHODS`, or any text).
        task: the task or split the model was trained for (``"rte"``).
        metrics: dev metrics, name -> value.
        experiment: the record's experiment (``"glue"``), which names the data set and pipeline.
        nonzeros: stored diff entries (diff pruning), or None.
        num_gated: parameters the diff was pruned over, or None.
        file_bytes: size of the stored diff or adapter file, or None.
        command: the command that made it.
        git_commit: deltamix's commit when it was made.
        versions: library -> version of the run.
        seed: the run's seed.
        library_name: the library that loads the saved folder (``transformers``, ``peft``).
        tags: more Hub tags.
    """

    base_model: str
    method: str
    task: str
    metrics: dict[str, float] = field(default_factory=dict)
    experiment: str | None = None
    nonzeros: int | None = None
    num_gated: int | None = None
    file_bytes: int | None = None
    command: str | None = None
    git_commit: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    library_name: str = "transformers"
    tags: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, record: dict[str, Any], **overrides: Any) -> ModelCardInfo:
        """The card of a run from its results record (`deltamix.core.records.make_record`): model, method,
        task, metrics, stored entries (``stored_params`` of ``base_params``), file size, command, commit,
        versions and seed. ``overrides`` replace any of them (e.g. the run folder's metrics.json)."""
        fields = {
            "base_model": str(record.get("model")),
            "method": str(record.get("method")),
            "task": str(record.get("task")),
            "metrics": dict(record.get("metrics") or {}),
            "experiment": record.get("experiment"),
            "nonzeros": record.get("stored_params"),
            "num_gated": record.get("base_params"),
            "file_bytes": record.get("file_bytes"),
            "command": record.get("command"),
            "git_commit": record.get("git_commit"),
            "versions": dict(record.get("versions") or {}),
            "seed": record.get("seed"),
        }
        return cls(**{**fields, **overrides})


def card_data(info: ModelCardInfo) -> Any:
    """The card's front matter as `huggingface_hub.ModelCardData` (the Hub's own schema)."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset = DATASETS.get(info.experiment or "")
    pipeline = PIPELINE_TAGS.get(info.experiment or "")
    method_tags = METHODS.get(info.method, ("", ()))[1]
    tags = list(
        dict.fromkeys(["deltamix", *method_tags, *filter(None, [info.experiment, info.task]), *info.tags])
    )
    results = [
        EvalResult(
            task_type=pipeline or "other",
            dataset_type=dataset or info.task,
            dataset_name=f"{(info.experiment or '').upper()} {info.task.upper()}".strip(),
            dataset_config=info.task if dataset else None,
            dataset_split="validation",
            metric_type=name,
            metric_value=float(value),
        )
        for name, value in info.metrics.items()
    ]
    return ModelCardData(
        base_model=info.base_model,
        library_name=info.library_name,
        pipeline_tag=pipeline,
        tags=tags,
        datasets=[dataset] if dataset else None,
        model_name=f"{info.base_model.split('/')[-1]}-{info.task}-{info.method}",
        eval_results=results or None,
    )


def render_model_card(info: ModelCardInfo) -> str:
    """The text of README.md: YAML front matter, then the card in Markdown."""
    lines = [
        *_front_matter(info),
        *_sparsity_section(info),
        *_metrics_section(info),
        *_provenance_section(info),
        *_usage_section(info),
    ]
    return "\n".join(lines)


def _front_matter(info: ModelCardInfo) -> list[str]:
    """The YAML front matter (`card_data`), the title and the sentence saying what the model is."""
    description = METHODS.get(info.method, (info.method, ()))[0]
    return [
        "---",
        card_data(info).to_yaml(),
        "---",
        "",
        f"# {info.base_model.split('/')[-1]}: {info.task} with {info.method}",
        "",
        f"`{info.base_model}` trained for {info.experiment.upper() + ' ' if info.experiment else ''}"
        f"{info.task} with {description}, by deltamix.",
        "",
    ]


def _sparsity_section(info: ModelCardInfo) -> list[str]:
    """How many entries the diff stores out of the base parameters (none without a diff)."""
    if info.nonzeros is None or not info.num_gated:
        return []
    size = f"; the diff file holds {info.file_bytes:,} bytes" if info.file_bytes else ""
    return [
        "## Sparsity",
        "",
        f"{info.nonzeros:,} non-zero entries of {info.num_gated:,} base parameters "
        f"({100 * info.nonzeros / info.num_gated:.3f}%){size}.",
        "",
    ]


def _metrics_section(info: ModelCardInfo) -> list[str]:
    """The dev metrics as a table (none without metrics)."""
    if not info.metrics:
        return []
    lines = ["## Dev metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {float(value):.4f} |" for name, value in info.metrics.items()]
    return [*lines, "", "On the task's validation set, as the run measured them (shares in [0, 1]).", ""]


def _provenance_section(info: ModelCardInfo) -> list[str]:
    """How it was made: the command, the seed and commit, and the library versions."""
    lines = ["## How it was made", ""]
    if info.command:
        lines += ["```", info.command, "```", ""]
    made = [
        f"seed {info.seed}" if info.seed is not None else "",
        f"deltamix commit {info.git_commit}" if info.git_commit else "",
    ]
    if any(made):
        lines += [", ".join(filter(None, made)).capitalize() + ".", ""]
    if info.versions:
        lines += ["| library | version |", "|---|---|"]
        lines += [f"| {name} | {version} |" for name, version in sorted(info.versions.items())]
        lines += [""]
    return lines


def _usage_section(info: ModelCardInfo) -> list[str]:
    """How to load the saved folder: a transformers pipeline for a GLUE model, PEFT for a diff adapter."""
    if info.library_name == "transformers" and info.experiment == "glue":
        return [
            "## Use",
            "",
            "```python",
            "from transformers import pipeline",
            'classify = pipeline("text-classification", model="PATH_OR_HUB_ID")',
            "```",
            "",
        ]
    if info.library_name == "peft" and info.method.startswith("diffprune"):  # loads through deltamix
        return [
            "## Use",
            "",
            "```python",
            "import deltamix.diffprune.peft  # registers diff pruning with PEFT",
            "from peft import PeftModel",
            'model = PeftModel.from_pretrained(base_model, "PATH_OR_HUB_ID")  # refuses another base',
            "```",
            "",
        ]
    return []


def write_model_card(folder: str | Path, info: ModelCardInfo) -> Path:
    """Write ``folder/README.md`` (atomically) for ``info``; returns its path."""
    path = Path(folder) / CARD_FILE
    atomic_write_text(path, render_model_card(info))
    return path
