"""Use a trained GLUE task model: label (or score, for STS-B) new sentences or sentence pairs.

`TaskClassifier.load(run_dir)` rebuilds the model a finished ``deltamix diffprune glue`` run was
scored with: the base model with the run's stored file applied (a sparse diff with its dense head, a
PEFT adapter, or the trained tensors of full / last-layer / BitFit), through the same
`deltamix.experiments.glue.run_data.load_artifact` the run used for its final evaluation. Inputs are tokenized as the
run tokenized its dev set (its ``max_length``).

>>> classifier = TaskClassifier.load("runs/glue/mrpc/diffprune/seed0")   # doctest: +SKIP
>>> classifier.predict([("The cat sat.", "A cat was sitting.")])        # doctest: +SKIP
['equivalent']
>>> classifier.save_pretrained("mrpc-model")  # a plain transformers model folder  # doctest: +SKIP

`TaskClassifier.save_pretrained` writes the merged model (base + diff, or adapter merged) as an ordinary
Hugging Face folder (safetensors, config with the task's label names, tokenizer), the counterpart of
PEFT's ``merge_and_unload``: ``AutoModelForSequenceClassification.from_pretrained`` and
``pipeline("text-classification", ...)`` load it with no deltamix installed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging

from deltamix.core.errors import DataFormatError, DeltamixError
from deltamix.core.io import atomic_folder, atomic_write_json
from deltamix.data.glue import GlueTask, get_task
from deltamix.data.seq2seq import decode_lines, source_name
from deltamix.experiments.glue.run import RUN_DONE
from deltamix.experiments.glue.run_data import load_artifact
from deltamix.experiments.glue.settings import GlueRunConfig

Example = str | tuple[str, ...]


class TaskClassifier:
    """A GLUE task model with its tokenizer.

    Args:
        model: a sequence-classification model (eval mode is set here).
        tokenizer: its Hugging Face tokenizer.
        task: the GLUE task (its label names and number of text columns).
        max_length: most tokens per example (longer inputs are truncated, as in training).
        batch_size: examples per forward pass.
        device: where to run (default: CUDA if available, else CPU).
        source: where the model came from (`load` fills it: run folder, method, base model, seed, dev
            metrics); `save_pretrained` writes it to ``deltamix.json``.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        task: GlueTask,
        max_length: int = 128,
        batch_size: int = 64,
        device: torch.device | str | None = None,
        source: dict[str, Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.task = task
        self.max_length = max_length
        self.batch_size = batch_size
        self.source = dict(source or {})

    @classmethod
    def load(
        cls, run_dir: str | Path, batch_size: int = 64, device: torch.device | str | None = None
    ) -> TaskClassifier:
        """The model of a finished GLUE run folder (its ``run_done.json``, ``config.json`` and stored file).

        Raises:
            DeltamixError: the folder holds no finished run, or its stored file is gone.
            DataFormatError: an unreadable ``run_done.json`` or ``config.json``.
        """
        run_dir = Path(run_dir)
        done, config = _read_json(run_dir / RUN_DONE), _read_json(run_dir / "config.json")
        # The stored file sits in the run folder (the record names it from where the run was started).
        artifact = run_dir / Path(done["record"]["artifact"]).name
        if not artifact.exists():
            raise DeltamixError(f"{run_dir}: the run's stored file {artifact.name} is missing")
        spec = get_task(config["task"])
        run_config = GlueRunConfig(
            task=spec.name, model=config["model_path"], seed=config["seed"], output_dir=str(run_dir)
        )
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the fresh head it reports as "newly initialized" is replaced next
        try:
            model = load_artifact(run_config, spec, config["method"], artifact)
        finally:
            hf_logging.set_verbosity(verbosity)
        tokenizer = AutoTokenizer.from_pretrained(config["model_path"])
        record = done["record"]
        source = {
            "run": str(run_dir.resolve()),
            "method": config["method"],
            "base_model": record.get("model", config["model_path"]),
            "seed": config["seed"],
            "dev_metrics": record.get("metrics", done.get("metrics")),
            "git_commit": record.get("git_commit"),
        }
        return cls(model, tokenizer, spec, config["max_length"], batch_size, device, source)

    @torch.no_grad()
    def logits(self, examples: Sequence[Example]) -> np.ndarray:
        """Model outputs [N, C] for ``examples`` (a text, or a tuple of one text per column of the task);
        C = number of labels (1 for STS-B, whose output is the similarity score)."""
        rows = [_columns(example, self.task) for example in examples]
        outputs = []
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            texts = [list(column) for column in zip(*batch, strict=True)]
            encoded = self.tokenizer(
                *texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
            )
            output = self.model(**{name: value.to(self.device) for name, value in encoded.items()})
            outputs.append(output.logits.float().cpu().numpy())
        width = 1 if self.task.is_regression else self.task.num_labels
        return np.concatenate(outputs) if outputs else np.zeros((0, width), dtype=np.float32)

    def predict(self, examples: Sequence[Example]) -> list[str] | list[float]:
        """Label names (classification) or scores (STS-B) of ``examples``, in order."""
        logits = self.logits(examples)
        if self.task.is_regression:
            return [float(value) for value in logits[:, 0]]
        names = self.task.label_names
        return [names[index] for index in logits.argmax(axis=1)]

    def save_pretrained(self, folder: str | Path, model_card: str | None = None) -> Path:
        """Write the model as a standalone Hugging Face folder, atomically: all of it or nothing.

        ``model.safetensors`` and ``config.json`` (label names in ``id2label``; ``problem_type``
        ``regression`` for STS-B, so a pipeline returns the raw score) from the model's own
        ``save_pretrained``, the tokenizer (its ``model_max_length`` set to this classifier's
        ``max_length``, so a ``pipeline`` truncates as training did), and ``deltamix.json``: the task
        and `source` (run folder, method, base model, seed, dev metrics); ``model_card``, if given, as
        ``README.md`` (`deltamix.core.model_card.render_model_card`).

        Raises:
            DeltamixError: ``folder`` exists and is not empty (nothing is overwritten).
        """
        folder = Path(folder)
        try:
            with atomic_folder(folder) as staging:
                # So a pipeline returns STS-B's raw score, not a sigmoid of it, and labels' softmax otherwise.
                self.model.config.problem_type = (
                    "regression" if self.task.is_regression else "single_label_classification"
                )
                self.model.save_pretrained(str(staging), safe_serialization=True)
                max_length = self.tokenizer.model_max_length
                self.tokenizer.model_max_length = self.max_length
                try:
                    self.tokenizer.save_pretrained(str(staging))
                finally:
                    self.tokenizer.model_max_length = max_length
                atomic_write_json(staging / "deltamix.json", {"task": self.task.name, **self.source})
                if model_card is not None:
                    (staging / "README.md").write_text(model_card, encoding="utf-8")
        except FileExistsError as error:
            raise DeltamixError(f"{error}; choose a new folder (nothing is overwritten)") from None
        return folder


def read_examples(source: str | Path | BinaryIO, task: GlueTask) -> list[tuple[str, ...]]:
    """Examples from a UTF-8 text file or binary stream (``sys.stdin.buffer``): one per line, the
    task's text columns separated by tabs (one column for CoLA and SST-2, two for the pair tasks); no
    header.

    Raises:
        DataFormatError: naming the file and line, for a missing file, bad UTF-8, a line with another
            number of columns, or an empty text.
    """
    path = source_name(source)
    columns = len(task.text_columns)
    examples = []
    for number, line in decode_lines(source):
        fields = line.split("\t")
        if len(fields) != columns:
            raise DataFormatError(
                path,
                f"{len(fields)} tab-separated field(s), {task.name} takes {columns} "
                f"({', '.join(task.text_columns)})",
                number,
            )
        if not all(field.strip() for field in fields):
            raise DataFormatError(path, "empty text", number)
        examples.append(tuple(field.strip() for field in fields))
    if not examples:
        raise DataFormatError(path, "the file holds no examples")
    return examples


def _columns(example: Example, task: GlueTask) -> tuple[str, ...]:
    """``example`` as a tuple of the task's text columns."""
    texts = (example,) if isinstance(example, str) else tuple(example)
    if len(texts) != len(task.text_columns):
        raise ValueError(
            f"{task.name} takes {len(task.text_columns)} text(s) per example ({', '.join(task.text_columns)}), "
            f"got {len(texts)}: {example!r}"
        )
    return texts


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DeltamixError(
            f"{path.parent} holds no finished GLUE run ({path.name} is missing): give the --output-dir "
            "of a finished `deltamix diffprune glue` run"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataFormatError(path, f"unreadable ({error})") from error
