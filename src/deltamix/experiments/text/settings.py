"""`TextRunConfig`: the settings of a translation, GeoQuery or any-file run, and the library configs they give.

The fields carry their help text and the metadata the command line is generated from
(`deltamix.cli.settings_args`); ``None`` fields take `TASK_DEFAULTS` of the run's metric. A run's
``config.json`` stores `run_settings` (the fields) beside the `Seq2SeqTrainingConfig` and
`SeqMixConfig` that `training_config` and `seqmix_config` build from them.

>>> config = TextRunConfig(kind="parse", data_dir="../shared/data/geoquery")
>>> config.metric, config.model, config.epochs
('exact_match', 'lstm', 100)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deltamix.core.precision import PRECISIONS, precision_field, threads_field
from deltamix.data.seq2seq import GEOQUERY_FORMS, GEOQUERY_SPLITS, parse_columns
from deltamix.seqmix.config import (
    PARTNER_EXTENTS,
    PARTNERS,
    SeqMixConfig,
    partner_extent_suffix,
    resolve_partner_extent,
)
from deltamix.training.config import Seq2SeqTrainingConfig
from deltamix.training.lr_schedule import DEFAULT_LR_SCHEDULE, LR_SCHEDULES, lr_factor

KINDS = ("translate", "parse", "train")
AUGMENTATIONS = ("none", "seqmix", "seqmix-hard", "word-dropout", "switchout")
METRICS = ("bleu", "exact_match")
EXPERIMENT = {"bleu": "translation", "exact_match": "parsing"}

# Transformer sizes. "small": trains on 2 CPU cores within a session (Multi30k); "iwslt": fairseq's
# transformer_iwslt_de_en, the paper's IWSLT'14 setup, for a GPU (with --lr 5e-4 --batch-size 128).
TRANSFORMER_SIZES: dict[str, dict[str, Any]] = {
    "small": {
        "d_model": 256,
        "num_heads": 4,
        "num_encoder_layers": 3,
        "num_decoder_layers": 3,
        "feedforward_dim": 512,
        "dropout": 0.2,
    },
    "iwslt": {
        "d_model": 512,
        "num_heads": 4,
        "num_encoder_layers": 6,
        "num_decoder_layers": 6,
        "feedforward_dim": 1024,
        "dropout": 0.3,
    },
}

# Defaults per metric (translation-like vs parsing-like); any of them can be overridden by a flag.
# Translation follows the authors' fairseq recipe where CPU allows (label smoothing 0.1, beam 4,
# length penalty 0.6, average of the last 5 epochs, Adam with warm-up); GeoQuery follows GECA's
# LSTM setup (the SCAN model: Adam 1e-3, batch 32, no label smoothing, greedy decoding).
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "bleu": {
        "model": "transformer",
        "epochs": 15,
        "batch_size": 64,
        "lr": 5e-4,
        "warmup_steps": 1000,
        "label_smoothing": 0.1,
        "beam_size": 4,
        "length_penalty": 0.6,
        "average_last": 5,
    },
    "exact_match": {
        "model": "lstm",
        "epochs": 100,
        "batch_size": 32,
        "lr": 1e-3,
        "warmup_steps": 0,
        "label_smoothing": 0.0,
        "beam_size": 1,
        "length_penalty": 1.0,
        "average_last": 0,
    },
}


@dataclass
class TextRunConfig:
    """One translation / parsing / any-file run; ``None`` fields take `TASK_DEFAULTS` of the metric."""

    # Field metadata beyond "help" (flag, type, choices, default_help, aliases) shapes the generated
    # command line: see deltamix.cli.settings_args.
    kind: str = field(metadata={"help": f"one of {KINDS}"})
    # data
    dataset: str = field(
        default="multi30k",
        metadata={"help": "'multi30k', 'iwslt14', or any Hugging Face Hub translation data set id"},
    )
    data_dir: str | Path | None = field(
        default=None,
        metadata={
            "help": "local data: the Multi30k folder (raw/*.gz) for multi30k, otherwise a folder of "
            "{train,valid,test}.<lang>[.gz] files",
            "default_help": "none: the data set comes from the Hub",
        },
    )
    hub_config: str | None = field(default=None, metadata={"help": "the Hub data set's configuration name"})
    source_lang: str = field(default="de", metadata={"help": "source language code"})
    target_lang: str = field(default="en", metadata={"help": "target language code"})
    geo_split: str = field(
        default="query",
        metadata={"help": "GeoQuery split", "flag": "--split", "choices": GEOQUERY_SPLITS},
    )
    geo_form: str = field(
        default="logic",
        metadata={"help": "meaning representation", "flag": "--form", "choices": GEOQUERY_FORMS},
    )
    train_file: str | Path | None = field(
        default=None, metadata={"help": "training pairs file", "flag": "--train", "type": "existing_file"}
    )
    valid_file: str | Path | None = field(
        default=None, metadata={"help": "validation pairs file", "flag": "--valid", "type": "existing_file"}
    )
    test_file: str | Path | None = field(
        default=None, metadata={"help": "test pairs file", "flag": "--test", "type": "existing_file"}
    )
    columns: str | None = field(
        default=None,
        metadata={
            "help": "the names of a TSV file's columns in order, comma-separated, e.g. "
            "'source,target,category' for COGS-style files: 'source' and 'target' are required, a "
            "'category' column (e.g. the generalisation type) adds an exact-match score per category to "
            "metrics.json and the record, other names are read and ignored; a first line holding the "
            "names is a header. JSON-lines files take the same names as keys",
            "default_help": "source,target",
        },
    )
    metric: str | None = field(
        default=None,
        metadata={
            "help": "bleu: subword (BPE) vocabulary, record in translation.jsonl; exact_match: word "
            "vocabulary, record in parsing.jsonl",
            "choices": METRICS,
            "default_help": "what the task calls for: bleu for translation (seqmix translate), exact_match "
            "otherwise (semantic parsing, SCAN- or COGS-like files)",
        },
    )
    task_name: str | None = field(
        default=None,
        metadata={"help": "task label in the record", "default_help": "the train file's name"},
    )
    vocab_size: int = field(
        default=8000, metadata={"help": "joint BPE vocabulary size (BLEU runs)", "type": "positive_int"}
    )
    # augmentation
    augment: str = field(default="seqmix", metadata={"help": "family member", "choices": AUGMENTATIONS})
    alpha: float = field(
        default=0.1,
        metadata={"help": "lambda ~ Beta(alpha, alpha)", "type": "positive_float"},
    )
    partner: str = field(default="shuffle", metadata={"help": "partner choice", "choices": PARTNERS})
    partner_extent: str | None = field(
        default=None,
        metadata={
            "help": "SeqMix positions a longer partner covers: main (the main example's only, as the "
            "authors' fairseq code) or union (both sequences'); see SeqMixConfig.partner_extent",
            "choices": PARTNER_EXTENTS,
            "default_help": "main for the members that mix (seqmix, seqmix-hard)",
        },
    )
    word_dropout_p: float = field(
        default=0.1, metadata={"help": "word dropout probability", "type": "probability"}
    )
    switchout_tau: float = field(
        default=1.0, metadata={"help": "SwitchOut temperature", "type": "non_negative_float"}
    )
    label_smoothing: float | None = field(
        default=None,
        metadata={
            "help": "label smoothing",
            "type": "unit_interval",
            "default_help": "0.1 for BLEU runs, 0 for exact-match runs",
        },
    )
    # model
    model: str | None = field(
        default=None,
        metadata={
            "help": "'transformer', 'lstm', or a Hugging Face encoder-decoder id or local path (T5, BART, Marian)",
            "default_help": "transformer for BLEU runs, lstm (GECA's model) for exact-match runs",
        },
    )
    model_size: str = field(
        default="small",
        metadata={
            "help": "Transformer size: 'small' (trains on 2 CPU cores) or 'iwslt' (the paper's "
            "transformer_iwslt_de_en, for a GPU)",
            "choices": tuple(TRANSFORMER_SIZES),
        },
    )
    dropout: float | None = field(
        default=None,
        metadata={
            "help": "model dropout",
            "type": "unit_interval",
            "default_help": "the model's: 0.2 for the small Transformer, 0.3 iwslt, 0.5 LSTM",
        },
    )
    # budget
    epochs: float | None = field(
        default=None,
        metadata={
            "help": "training epochs",
            "type": "positive_float",
            "default_help": "15 BLEU, 100 exact match",
        },
    )
    max_steps: int | None = field(
        default=None,
        metadata={
            "help": "stop after this many updates (overrides --epochs)",
            "type": "positive_int",
            "default_help": "none: --epochs decides",
        },
    )
    batch_size: int | None = field(
        default=None,
        metadata={
            "help": "pairs per batch",
            "type": "positive_int",
            "default_help": "64 BLEU, 32 exact match",
        },
    )
    lr: float | None = field(
        default=None,
        metadata={
            "help": "peak learning rate",
            "type": "positive_float",
            "default_help": "5e-4 BLEU, 1e-3 exact match",
        },
    )
    warmup_steps: int | None = field(
        default=None,
        metadata={
            "help": "linear warm-up steps",
            "type": "non_negative_int",
            "default_help": "1000 BLEU, 0 exact match",
        },
    )
    lr_schedule: str = field(
        default=DEFAULT_LR_SCHEDULE,
        metadata={
            "help": "learning rate after the warm-up: constant, or inverse-sqrt (peak * sqrt(warmup / "
            "update), the authors' fairseq --lr-scheduler inverse_sqrt; needs --warmup-steps >= 1)",
            "choices": LR_SCHEDULES,
        },
    )
    patience: int | None = field(
        default=None,
        metadata={
            "help": "early stopping: stop when the validation loss has not improved for N epochs, "
            "--epochs being the cap",
            "type": "positive_int",
            "default_help": "none: train every epoch",
        },
    )
    train_limit: int | None = field(
        default=None,
        metadata={
            "help": "use only the first N training pairs (a run on a slice is its own task in the records)",
            "type": "positive_int",
            "default_help": "none: all",
        },
    )
    eval_limit: int | None = field(
        default=None,
        metadata={
            "help": "score only the first N validation and test pairs",
            "type": "positive_int",
            "default_help": "none: all",
        },
    )
    max_tokens: int | None = field(
        default=None,
        metadata={
            "help": "token-budget batches of at most this many padded tokens, length-bucketed (fairseq's "
            "--max-tokens), in place of --batch-size pairs",
            "type": "positive_int",
            "default_help": "none: sentence batches",
        },
    )
    precision: str = precision_field()
    threads: int | None = threads_field()
    # decoding
    beam_size: int | None = field(
        default=None,
        metadata={
            "help": "beam size",
            "type": "positive_int",
            "default_help": "4 BLEU as the authors, 1 exact match",
        },
    )
    length_penalty: float | None = field(
        default=None,
        metadata={
            "help": "beam score / length ** penalty",
            "type": "non_negative_float",
            "default_help": "0.6 BLEU as the authors, 1.0",
        },
    )
    average_last: int | None = field(
        default=None,
        metadata={
            "help": "average the weights of the last N epoch checkpoints before testing (0: use the last)",
            "type": "non_negative_int",
            "default_help": "5 for BLEU runs as the authors' recipe, 0 for exact-match runs",
        },
    )
    max_output_length: int | None = field(
        default=None,
        metadata={
            "help": "most tokens decoded per example",
            "type": "positive_int",
            "default_help": "1.2 x the longest training target + 10",
        },
    )
    # outputs
    seed: int = field(default=0, metadata={"help": "random seed", "type": "non_negative_int"})
    output_dir: str | Path | None = field(
        default=None,
        metadata={
            "help": "run folder",
            "type": "output_dir",
            "default_help": "runs/<experiment>/<task>/<augment>[-main]-<model>-seed<seed>",
        },
    )
    results_dir: str | Path = field(
        default="results",
        metadata={"help": "where the results record goes", "type": "output_dir"},
    )

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown run kind {self.kind!r}; valid: {', '.join(KINDS)}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {self.augment!r}; valid: {', '.join(AUGMENTATIONS)}")
        self.partner_extent = resolve_partner_extent(self.augment, self.partner_extent)
        if self.partner_extent not in PARTNER_EXTENTS:
            raise ValueError(
                f"unknown partner extent {self.partner_extent!r}; valid: {', '.join(PARTNER_EXTENTS)}"
            )
        if self.metric is None:  # translation is scored by BLEU; parsing and any other pairs by exact match
            self.metric = "bleu" if self.kind == "translate" else "exact_match"
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; valid: {', '.join(METRICS)}")
        if self.model_size not in TRANSFORMER_SIZES:
            raise ValueError(f"unknown model size {self.model_size!r}; valid: {', '.join(TRANSFORMER_SIZES)}")
        if self.kind == "parse" and self.data_dir is None:
            raise ValueError(
                "parse needs data_dir (the folder holding geography-logic.json / geography.json)"
            )
        if self.kind == "train" and None in (self.train_file, self.valid_file, self.test_file):
            raise ValueError("train needs train_file, valid_file and test_file")
        for name, value in TASK_DEFAULTS[self.metric].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        for name in (
            "train_limit",
            "eval_limit",
            "max_steps",
            "batch_size",
            "beam_size",
            "threads",
            "max_tokens",
            "patience",
            "max_output_length",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.average_last < 0:
            raise ValueError(f"average_last must be >= 0, got {self.average_last}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        lr_factor(1, self.warmup_steps, self.lr_schedule)  # raises on an unknown schedule or bad warm-up
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.columns is not None:
            parse_columns(self.columns)  # raises on a list without source and target
        if self.vocab_size <= 4:
            raise ValueError(f"vocab_size must exceed the 4 special tokens, got {self.vocab_size}")

    @property
    def experiment(self) -> str:
        """The results file: ``translation`` (BLEU) or ``parsing`` (exact match)."""
        return EXPERIMENT[self.metric]

    @property
    def is_hf_model(self) -> bool:
        return self.model not in ("transformer", "lstm")

    def model_label(self) -> str:
        if self.model == "transformer":
            return f"transformer-{self.model_size}"
        return self.model

    def record_task(self, data_name: str) -> str:
        """The task name of this run's records: a run on a slice of the training data is another task
        (``"multi30k-de-en (train[:5000])"``), never mixed into the full-data tables."""
        return data_name if self.train_limit is None else f"{data_name} (train[:{self.train_limit}])"

    def resolved_output_dir(self, task: str) -> Path:
        if self.output_dir is not None:
            return Path(self.output_dir)
        model = self.model_label().replace("/", "--")
        name = self.augment + partner_extent_suffix(self.augment, self.partner_extent)
        return Path("runs") / self.experiment / task / f"{name}-{model}-seed{self.seed}"


# Settings that may change between an interrupted run and its restart.
MAY_DIFFER_ON_RESTART = ("threads", "results_dir", "output_dir")


def run_settings(config: TextRunConfig) -> dict[str, Any]:
    """The settings a restart must match: the run's fields, paths as strings."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}


# The two functions below are where the run's flat settings (one command line, one "run" section in
# config.json) become the library's configs; they are kept as the only place that maps the names,
# because nesting the library configs in TextRunConfig would change the saved settings that runs
# resume by and records hold.


def training_config(config: TextRunConfig, max_decode_length: int) -> Seq2SeqTrainingConfig:
    """How the loop trains and decodes for ``config`` (``max_steps``, when given, replaces ``epochs``)."""
    return Seq2SeqTrainingConfig(
        max_steps=config.max_steps,
        epochs=None if config.max_steps is not None else config.epochs,
        batch_size=config.batch_size,
        max_tokens=config.max_tokens,
        precision=config.precision,
        learning_rate=config.lr,
        warmup_steps=config.warmup_steps,
        lr_schedule=config.lr_schedule,
        label_smoothing=config.label_smoothing,
        seed=config.seed,
        max_decode_length=max_decode_length,
        beam_size=config.beam_size,
        length_penalty=config.length_penalty,
        eval_batch_size=64 if config.metric == "bleu" else 256,
    )


def seqmix_config(config: TextRunConfig) -> SeqMixConfig:
    """The SeqMix-family member ``config`` trains with (``variant`` "none": no augmentation)."""
    return SeqMixConfig(
        variant=config.augment,
        alpha=config.alpha,
        partner=config.partner,
        partner_extent=config.partner_extent,
        word_dropout_p=config.word_dropout_p,
        switchout_tau=config.switchout_tau,
        label_smoothing=config.label_smoothing,
    )
