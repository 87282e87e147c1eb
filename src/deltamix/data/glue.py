"""The nine GLUE tasks, from the Hugging Face Hub or from local files in the standard GLUE TSV layout.

Both sources give a ``datasets.DatasetDict`` with the same columns: the Hub's text column names of
the task (e.g. ``sentence1``/``sentence2`` for RTE), ``label`` (a ``ClassLabel`` with the Hub's label
order, or a float for STS-B) and ``idx``. Splits: ``train`` and ``validation`` (MNLI:
``validation_matched`` and ``validation_mismatched``). The unlabelled test splits are not loaded.

Local files are read exactly per the official GLUE layout (the output of ``download_glue_data.py``):
lines split on tab, never CSV quoting (the files hold bare ``"`` characters), a UTF-8 BOM tolerated,
columns at the official positions (those of the GLUE baseline and ``transformers``' GLUE
processors), the header checked where there is one (CoLA has none).

>>> data = load_glue("rte", data_dir="glue_data")  # doctest: +SKIP
>>> data["train"][0]["label"], GLUE_TASKS["rte"].label_names  # doctest: +SKIP
(1, ('entailment', 'not_entailment'))
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deltamix.core.errors import DataFormatError, DataUnavailableError

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

HUB_DATASET = "nyu-mll/glue"


@dataclass(frozen=True)
class GlueTask:
    """How one GLUE task is stored and scored.

    Args:
        name: canonical short name (``"sst2"``), also the Hub config name.
        folder: folder name in the GLUE layout (``"SST-2"``).
        text_columns: names of the text columns (one or two), as on the Hub.
        label_names: class names in the Hub's label order; ``None`` for regression (STS-B).
        header: whether the TSV files start with a header line.
        text_positions: 0-based column positions of the texts in the TSV files.
        label_position: column position of the label (negative counts from the end).
        num_columns: number of columns of a row in files without header (with a header: its length).
        tsv_labels: raw TSV label string -> label id (classification only).
        eval_files: evaluation split name -> TSV file name.
        metrics: official metric names of the task, in the paper's order.
    """

    name: str
    folder: str
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...] | None
    header: bool
    text_positions: tuple[int, ...]
    label_position: int
    num_columns: int | None
    tsv_labels: dict[str, int] | None
    eval_files: dict[str, str]
    metrics: tuple[str, ...]

    @property
    def is_regression(self) -> bool:
        """True for STS-B (a similarity score), False for the classification tasks."""
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        """Output size of the sequence-classification head (1 for regression)."""
        return 1 if self.label_names is None else len(self.label_names)


_DEV = {"validation": "dev.tsv"}
GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        # CoLA train/dev: no header; source, label, original annotation, sentence.
        GlueTask("cola", "CoLA", ("sentence",), ("unacceptable", "acceptable"), False, (3,), 1, 4,
                 {"0": 0, "1": 1}, _DEV, ("mcc",)),
        GlueTask("sst2", "SST-2", ("sentence",), ("negative", "positive"), True, (0,), 1, None,
                 {"0": 0, "1": 1}, _DEV, ("accuracy",)),
        # MRPC: Quality, #1 ID, #2 ID, #1 String, #2 String (files start with a BOM).
        GlueTask("mrpc", "MRPC", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), True,
                 (3, 4), 0, None, {"0": 0, "1": 1}, _DEV, ("accuracy", "f1")),
        # STS-B: index genre filename year old_index source1 source2 sentence1 sentence2 score.
        GlueTask("stsb", "STS-B", ("sentence1", "sentence2"), None, True, (7, 8), -1, None, None, _DEV,
                 ("pearson", "spearman")),
        # QQP: id qid1 qid2 question1 question2 is_duplicate.
        GlueTask("qqp", "QQP", ("question1", "question2"), ("not_duplicate", "duplicate"), True, (3, 4), 5,
                 None, {"0": 0, "1": 1}, _DEV, ("accuracy", "f1")),
        # MNLI: sentence1/sentence2 at 8/9, gold_label last (train 12 columns, dev 16).
        GlueTask("mnli", "MNLI", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"), True,
                 (8, 9), -1, None, {"entailment": 0, "neutral": 1, "contradiction": 2},
                 {"validation_matched": "dev_matched.tsv", "validation_mismatched": "dev_mismatched.tsv"},
                 ("accuracy",)),
        GlueTask("qnli", "QNLI", ("question", "sentence"), ("entailment", "not_entailment"), True, (1, 2), 3,
                 None, {"entailment": 0, "not_entailment": 1}, _DEV, ("accuracy",)),
        GlueTask("rte", "RTE", ("sentence1", "sentence2"), ("entailment", "not_entailment"), True, (1, 2), 3,
                 None, {"entailment": 0, "not_entailment": 1}, _DEV, ("accuracy",)),
        # WNLI: label 1 = entailment, as on the Hub (names: not_entailment, entailment).
        GlueTask("wnli", "WNLI", ("sentence1", "sentence2"), ("not_entailment", "entailment"), True, (1, 2), 3,
                 None, {"0": 0, "1": 1}, _DEV, ("accuracy",)),
    )
}  # fmt: skip

# Header names at the positions above, checked so that a file of another task or layout is refused.
_HEADER_NAMES: dict[str, tuple[str, ...]] = {
    "sst2": ("sentence", "label"),
    "mrpc": ("#1 String", "#2 String", "Quality"),
    "stsb": ("sentence1", "sentence2", "score"),
    "qqp": ("question1", "question2", "is_duplicate"),
    "mnli": ("sentence1", "sentence2", "gold_label"),
    "qnli": ("question", "sentence", "label"),
    "rte": ("sentence1", "sentence2", "label"),
    "wnli": ("sentence1", "sentence2", "label"),
}


def get_task(name: str) -> GlueTask:
    """The task called ``name`` (case-insensitive; ``SST-2``, ``sst-2`` and ``sst2`` are the same).

    Raises:
        ValueError: for an unknown task, listing the known ones.
    """
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task {name!r}; expected one of {', '.join(GLUE_TASKS)}")
    return GLUE_TASKS[key]


def split_names(task: str | GlueTask) -> tuple[str, ...]:
    """The labelled splits of a task: ``train`` then its evaluation split(s)."""
    task = get_task(task) if isinstance(task, str) else task
    return ("train", *task.eval_files)


def read_tsv(task: str | GlueTask, path: str | Path) -> dict[str, list]:
    """Read one labelled GLUE TSV file as columns (``text_columns``, ``label``, ``idx``).

    Args:
        task: the task (name or spec) whose layout the file has.
        path: the ``train.tsv`` / ``dev*.tsv`` file.

    Returns:
        Column name -> list of values, one per data row, in file order.

    Raises:
        DataUnavailableError: the file does not exist.
        DataFormatError: a header or row does not match the task's layout, or a label is unknown
            (the message names the file and the 1-based line).
    """
    task = get_task(task) if isinstance(task, str) else task
    path = Path(path)
    lines = _read_lines(path)
    columns: dict[str, list] = {name: [] for name in (*task.text_columns, "label", "idx")}
    num_columns, first = task.num_columns, 0
    if task.header:
        num_columns, first = _check_header(task, path, lines), 1
    for number in range(first, len(lines)):
        line_number = number + 1
        fields = lines[number].rstrip("\r").split("\t")
        if len(fields) != num_columns:
            raise DataFormatError(
                path,
                f"expected {num_columns} tab-separated columns for {task.folder}, found {len(fields)}",
                line=line_number,
            )
        label = _parse_label(task, fields[task.label_position], path, line_number)
        for name, position in zip(task.text_columns, task.text_positions, strict=True):
            columns[name].append(fields[position])
        columns["label"].append(label)
        columns["idx"].append(number - first)
    return columns


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 file (a BOM dropped, "\r" kept), without the final newline's empty line."""
    if not path.is_file():
        raise DataUnavailableError(f"GLUE file {path} not found")
    raw_bytes = path.read_bytes()
    try:
        # utf-8-sig drops a BOM at the start; "\r" is kept here and stripped per line by the reader.
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw_bytes.count(b"\n", 0, error.start) + 1
        raise DataFormatError(
            path, f"not valid UTF-8 (byte {raw_bytes[error.start]:#04x} at offset {error.start})", line=line
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final newline
    return lines


def _check_header(task: GlueTask, path: Path, lines: list[str]) -> int:
    """Check the header line of ``task``'s file against its layout; the number of columns it names."""
    if not lines:
        raise DataFormatError(path, "empty file: expected a header line", line=1)
    header = lines[0].rstrip("\r").split("\t")
    positions = (*task.text_positions, task.label_position)
    for position, expected in zip(positions, _HEADER_NAMES[task.name], strict=True):
        found = header[position] if -len(header) <= position < len(header) else None
        if found != expected:
            raise DataFormatError(
                path,
                f"header does not match the {task.folder} layout: expected {expected!r} in column "
                f"{position}, found {found!r} (header: {header})",
                line=1,
            )
    return len(header)


def _parse_label(task: GlueTask, raw: str, path: Path, line_number: int) -> float | int:
    """The label ``raw`` of line ``line_number``: a finite float (regression) or the class index."""
    if task.is_regression:
        try:
            label = float(raw)
        except ValueError:
            raise DataFormatError(path, f"label {raw!r} is not a number", line=line_number) from None
        if not math.isfinite(label):
            raise DataFormatError(path, f"label {raw!r} is not a finite number", line=line_number)
        return label
    labels = task.tsv_labels or {}
    if raw not in labels:
        raise DataFormatError(
            path,
            f"unknown label {raw!r} for {task.folder}; expected one of {sorted(labels)}",
            line=line_number,
        )
    return labels[raw]


def _features(task: GlueTask):
    import datasets

    features = {name: datasets.Value("string") for name in task.text_columns}
    features["label"] = (
        datasets.Value("float32") if task.is_regression else datasets.ClassLabel(names=list(task.label_names))
    )
    features["idx"] = datasets.Value("int32")
    return datasets.Features(features)


def _task_folder(task: GlueTask, data_dir: Path) -> Path:
    """``data_dir/<Folder>`` in the GLUE layout, or ``data_dir`` itself if it holds the task's files."""
    for candidate in (data_dir / task.folder, data_dir / task.folder.lower(), data_dir / task.name):
        if candidate.is_dir():
            return candidate
    if (data_dir / "train.tsv").is_file():
        return data_dir
    raise DataUnavailableError(
        f"no {task.folder} folder in {data_dir}: expected the standard GLUE layout "
        f"{data_dir}/{task.folder}/train.tsv and {', '.join(task.eval_files.values())}"
    )


def load_glue_local(task: str | GlueTask, data_dir: str | Path) -> datasets.DatasetDict:
    """Load a task's labelled splits from a folder in the standard GLUE layout (see :func:`read_tsv`)."""
    import datasets

    task = get_task(task) if isinstance(task, str) else task
    folder = _task_folder(task, Path(data_dir))
    files = {"train": "train.tsv", **task.eval_files}
    features = _features(task)
    splits = {}
    for split, file_name in files.items():
        splits[split] = datasets.Dataset.from_dict(read_tsv(task, folder / file_name), features=features)
        logger.info("read %d %s examples from %s", len(splits[split]), split, folder / file_name)
    return datasets.DatasetDict(splits)


def load_glue_hub(task: str | GlueTask, cache_dir: str | Path | None = None) -> datasets.DatasetDict:
    """Load a task's labelled splits from the Hugging Face Hub (``nyu-mll/glue``) via ``datasets``.

    Raises:
        DataUnavailableError: the Hub cannot be reached (e.g. offline) and nothing is cached; the
            message says how to point at local files instead.
    """
    import datasets

    task = get_task(task) if isinstance(task, str) else task
    try:
        loaded = datasets.load_dataset(
            HUB_DATASET, task.name, cache_dir=None if cache_dir is None else str(cache_dir)
        )
    except Exception as error:  # datasets raises many types (ConnectionError, offline errors, ...)
        raise DataUnavailableError(
            f"could not load GLUE {task.folder} from the Hugging Face Hub ({HUB_DATASET}, config "
            f"{task.name!r}): {type(error).__name__}: {error}. Without network access, download the GLUE "
            f"data and pass its folder with --data-dir (Python: data_dir=...), in the standard layout "
            f"DIR/{task.folder}/train.tsv, DIR/{task.folder}/{next(iter(task.eval_files.values()))}"
        ) from error
    splits = {split: loaded[split] for split in split_names(task)}
    return datasets.DatasetDict(splits).cast(_features(task))


def load_glue(
    task: str | GlueTask, data_dir: str | Path | None = None, cache_dir: str | Path | None = None
) -> datasets.DatasetDict:
    """Load a GLUE task: from ``data_dir`` (GLUE TSV layout) if given, else from the Hub.

    Args:
        task: task name (``cola``, ``sst2``, ``mrpc``, ``stsb``, ``qqp``, ``mnli``, ``qnli``, ``rte``,
            ``wnli``; GLUE folder names such as ``SST-2`` work too).
        data_dir: folder holding ``<Folder>/train.tsv`` etc., or one task's folder.
        cache_dir: ``datasets`` cache for the Hub source.

    Returns:
        A ``DatasetDict`` with ``train`` and the evaluation split(s).
    """
    task = get_task(task) if isinstance(task, str) else task
    if data_dir is not None:
        return load_glue_local(task, data_dir)
    return load_glue_hub(task, cache_dir=cache_dir)


# A held-out slice (`holdout_split`) of this share of the training set, at most MAX_DEFAULT_HOLDOUT
# examples, when its size is not given: RTE 249, MRPC 367, STS-B 575, SST-2 1,000.
DEFAULT_HOLDOUT_FRACTION = 0.1
MAX_DEFAULT_HOLDOUT = 1000


def default_holdout_size(num_examples: int) -> int:
    """The held-out slice's size for a training set of ``num_examples``: 10%, at least 1, at most 1,000.

    >>> default_holdout_size(2490), default_holdout_size(67349)
    (249, 1000)
    """
    return max(1, min(MAX_DEFAULT_HOLDOUT, round(DEFAULT_HOLDOUT_FRACTION * num_examples)))


def holdout_split(num_examples: int, holdout_size: int, seed: int) -> tuple[list[int], list[int]]:
    """A seeded split of ``range(num_examples)`` into (the rest, a held-out slice), disjoint.

    The held-out slice chooses a run's checkpoint in place of the dev set, so the dev set is evaluated
    once, on the chosen model. The same ``seed`` gives the same split.

    Args:
        num_examples: size of the training set.
        holdout_size: examples held out, in [1, num_examples - 1].
        seed: seed of the permutation.

    Returns:
        (the other indices in a seeded random order, from which a smaller training subset is a prefix;
        the held-out indices, ascending).

    Raises:
        ValueError: ``holdout_size`` leaves no example to train on, or is not positive.

    >>> rest, held = holdout_split(10, 3, seed=0)
    >>> len(rest), len(held), sorted(rest + held) == list(range(10))
    (7, 3, True)
    """
    import numpy as np

    if not 0 < holdout_size < num_examples:
        raise ValueError(
            f"holdout_size must be in [1, {num_examples - 1}] for a training set of {num_examples} "
            f"examples, got {holdout_size}"
        )
    order = np.random.default_rng(seed).permutation(num_examples)
    return [int(i) for i in order[holdout_size:]], sorted(int(i) for i in order[:holdout_size])
