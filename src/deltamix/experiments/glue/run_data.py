"""What a GLUE run trains and scores with: the tokenized sets, a fresh classifier, and a classifier
with a run's stored task file applied.

>>> train, holdout, evals, full_size = prepare_run_data(config, tokenizer)  # doctest: +SKIP
>>> model = load_artifact(config, get_task("rte"), "diffprune", run_dir / "diff.safetensors")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

from deltamix.data.glue import GlueTask, default_holdout_size, get_task, holdout_split, load_glue
from deltamix.experiments.glue.methods import get_method
from deltamix.experiments.glue.settings import GlueRunConfig


def prepare_data(
    config: GlueRunConfig, tokenizer, with_train: bool = True
) -> tuple[Any, dict[str, Any], int]:
    """(tokenized train set or None, {eval split: tokenized dev set}, size of the full train set).

    The sets have columns ``input_ids``, ``attention_mask`` (, ``token_type_ids``) and ``label``. With
    holdout selection the train set leaves out the held-out slice (`prepare_run_data` returns it too).
    """
    train, _, evals, full_size = prepare_run_data(config, tokenizer, with_train)
    return train, evals, full_size


def prepare_run_data(
    config: GlueRunConfig, tokenizer, with_train: bool = True
) -> tuple[Any, Any, dict[str, Any], int]:
    """(tokenized train set or None, tokenized held-out slice or None, {eval split: tokenized dev set},
    size of the full train set).

    With ``select_on`` "holdout" (`GlueRunConfig.resolved_select_on`) a seeded slice of the train set
    (``holdout_size``, default `deltamix.data.glue.default_holdout_size`) is held out and the train set
    (or its ``max_train_examples`` subset) is drawn from the rest; with "dev" the slice is None and the
    train set is the one runs before the option had. Without ``with_train`` both are None.
    """
    spec = get_task(config.task)
    data = load_glue(spec, config.data_dir)
    train = data["train"]
    full_size = len(train)
    holdout = None
    if config.resolved_select_on() == "holdout" and with_train:
        size = config.holdout_size or default_holdout_size(full_size)
        rest, held = holdout_split(full_size, size, config.seed)
        if config.max_train_examples is not None and config.max_train_examples < len(rest):
            rest = rest[: config.max_train_examples]
        else:
            rest = sorted(rest)
        train, holdout = train.select(rest), train.select(held)
    elif config.max_train_examples is not None and config.max_train_examples < len(train):
        train = train.shuffle(seed=config.seed).select(range(config.max_train_examples))
    evals = {}
    for split in spec.eval_files:
        dev = data[split]
        if config.max_eval_examples is not None and config.max_eval_examples < len(dev):
            dev = dev.select(range(config.max_eval_examples))
        evals[split] = dev

    def encode(batch: dict[str, list]) -> dict[str, list]:
        texts = [batch[name] for name in spec.text_columns]
        return tokenizer(*texts, truncation=True, max_length=config.max_length)

    drop = [*spec.text_columns, "idx"]
    train = (
        train.map(encode, batched=True, remove_columns=drop, desc="tokenizing train") if with_train else None
    )
    evals = {
        s: d.map(encode, batched=True, remove_columns=drop, desc=f"tokenizing {s}") for s, d in evals.items()
    }
    if holdout is not None:
        holdout = holdout.map(encode, batched=True, remove_columns=drop, desc="tokenizing the held-out slice")
    return train, holdout, evals, full_size


def load_classifier(config: GlueRunConfig, spec: GlueTask) -> nn.Module:
    """A fresh sequence-classification model (pretrained body, seeded random head)."""
    torch.manual_seed(config.seed)
    kwargs: dict[str, Any] = {"num_labels": spec.num_labels}
    if spec.label_names is not None:
        kwargs["id2label"] = dict(enumerate(spec.label_names))
        kwargs["label2id"] = {name: i for i, name in enumerate(spec.label_names)}
    # A checkpoint whose head has another size (e.g. fine-tuned on MNLI) gets a fresh head.
    return AutoModelForSequenceClassification.from_pretrained(
        config.model_path(), ignore_mismatched_sizes=True, **kwargs
    )


def artifact_bytes(path: Path) -> int:
    """Size of a stored file, or of every file in a stored folder."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def load_artifact(config: GlueRunConfig, spec: GlueTask, method: str, path: Path) -> nn.Module:
    """A fresh base model with a stored task file applied (merged): the model the metrics describe."""
    return get_method(method).apply(load_classifier(config, spec), path).eval()
