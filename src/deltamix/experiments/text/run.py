"""Translation, GeoQuery and any-file SeqMix runs as library functions: load, tokenize, train, average, decode, score, record.

>>> result = run_text(TextRunConfig(kind="parse", data_dir="../shared/data/geoquery"))  # doctest: +SKIP
>>> result.metrics["exact_match"]  # doctest: +SKIP

Three kinds of run share one pipeline (`run_text`):

- ``translate``: Multi30k, IWSLT'14 or any Hub / local parallel data; a joint BPE vocabulary learned
  on the training pairs (`deltamix.data.tokenization`); test BLEU with sacrebleu on detokenized output,
  its signature stored in the record; record in ``results/translation.jsonl``.
- ``parse``: GeoQuery (question or query split, logical forms or SQL); a word vocabulary; exact match
  of the meaning representation; record in ``results/parsing.jsonl``.
- ``train``: the user's TSV/JSONL files, scored by BLEU (subwords) or exact match (words).

Checkpoint averaging (the authors' recipe: fairseq ``average_checkpoints.py --num-epoch-checkpoints 5``):
the model weights are saved at the end of each epoch (``epochs/step-*.safetensors``, the last N kept),
and the test score is that of the element-wise mean of the last N epochs' weights, which ``model/``
then holds (``config.json`` names the snapshots under ``model_weights``; the final weights stay in
``epochs/``), so that `deltamix.training.predict.Predictor` decodes with the model that was scored.

With ``--model`` a Hugging Face encoder-decoder id or path (T5, BART, Marian), the model's own
tokenizer replaces ours and the model is wrapped by `deltamix.seqmix.hf.HFSeq2SeqAdapter`.

A finished run (its ``metrics.json`` exists) is neither trained nor recorded again; an interrupted
one resumes from its last checkpoint (the trainer's) with the epoch snapshots written so far. Both
only for the settings the folder was started with (its ``config.json``, written at the start): a
folder of other settings is refused (`deltamix.core.run_folder.finished_metrics`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from deltamix.core.io import atomic_write_json, atomic_write_text
from deltamix.core.precision import (
    DEFAULT_PRECISION,
    PRECISIONS,
    accelerate_mixed_precision,
    configure_threads,
    resolve_precision,
)
from deltamix.core.records import commit_record, make_record
from deltamix.core.run_folder import finished_metrics
from deltamix.data.seq2seq import (
    GEOQUERY_FORMS,
    GEOQUERY_SPLITS,
    Pair,
    Seq2SeqData,
    load_geoquery,
    load_pair_files,
    load_translation,
    parse_columns,
    take,
)
from deltamix.seqmix.config import (
    PARTNER_EXTENTS,
    PARTNERS,
    SETTINGS_ADDED_SINCE,
    partner_extent_suffix,
    resolve_partner_extent,
)
from deltamix.seqmix.hf import build_hf_model
from deltamix.training.lr_schedule import DEFAULT_LR_SCHEDULE, LR_SCHEDULES, lr_factor
from deltamix.training.metrics import corpus_bleu, exact_match
from deltamix.training.snapshots import EPOCH_DIR, average_checkpoints, train_with_snapshots

logger = logging.getLogger(__name__)

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
    precision: str = field(
        default=DEFAULT_PRECISION,
        metadata={
            "help": "bf16 autocast or fp32; auto = bf16 where the CPU (avx512_bf16 / amx_bf16) or GPU "
            "computes it natively, else fp32",
            "choices": PRECISIONS,
        },
    )
    threads: int | None = field(
        default=None,
        metadata={
            "help": "torch CPU threads",
            "type": "positive_int",
            "default_help": "$OMP_NUM_THREADS if set, else all the cores this process may use",
        },
    )
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


@dataclass
class TextRunResult:
    """What a run produced: test metrics, its folder, the record (None if the run had finished before)."""

    metrics: dict[str, float]
    output_dir: Path
    record: dict[str, Any] | None
    already_finished: bool


# ----------------------------------------------------------------------------- pieces


def load_data(config: TextRunConfig) -> Seq2SeqData:
    """The data of a run (before ``train_limit`` / ``eval_limit``)."""
    if config.kind == "translate":
        return load_translation(
            config.dataset, config.data_dir, config.source_lang, config.target_lang, config.hub_config
        )
    if config.kind == "parse":
        return load_geoquery(config.data_dir, config.geo_split, config.geo_form)
    name = config.task_name or Path(config.train_file).name.split(".")[0]
    return load_pair_files(
        config.train_file, config.valid_file, config.test_file, name=name, columns=config.columns
    )


def build_tokenizer(config: TextRunConfig, data: Seq2SeqData, train: list[Pair]) -> Any:
    """A joint BPE tokenizer (BLEU runs) or a word vocabulary (exact-match runs).

    The word vocabulary holds the tokens of the training pairs plus those of the validation and test
    *questions* (inputs only, known at test time), so that the copy mechanism can copy entity names
    never seen in training (e.g. a state that occurs only in test questions); target-only tokens
    come from training alone.
    """
    from deltamix.data.tokenization import train_joint_tokenizer
    from deltamix.data.vocab import Vocabulary

    if config.metric == "bleu":
        return train_joint_tokenizer(train, vocab_size=config.vocab_size)
    texts = [text for pair in train for text in pair]
    texts += [source for source, _ in data.valid + data.test]
    return Vocabulary.build(texts)


def build_model(config: TextRunConfig, tokenizer: Any) -> Any:
    """Our Transformer (sized by ``model_size``) or LSTM for ``tokenizer``'s joint vocabulary."""
    from deltamix.models.lstm import LSTMSeq2Seq, LSTMSeq2SeqConfig
    from deltamix.models.transformer import TransformerSeq2Seq, TransformerSeq2SeqConfig

    specials = {"pad_id": tokenizer.pad_id, "bos_id": tokenizer.bos_id, "eos_id": tokenizer.eos_id}
    dropout = {} if config.dropout is None else {"dropout": config.dropout}
    if config.model == "lstm":
        return LSTMSeq2Seq(LSTMSeq2SeqConfig(vocab_size=len(tokenizer), **specials, **dropout))
    sizes = {**TRANSFORMER_SIZES[config.model_size], **dropout}
    return TransformerSeq2Seq(TransformerSeq2SeqConfig(vocab_size=len(tokenizer), **specials, **sizes))


def _model_config(model: Any) -> dict[str, Any]:
    """The config of our models, or of the Hugging Face model inside an adapter, as a dict."""
    config = getattr(model, "config", None) or getattr(getattr(model, "model", None), "config", None)
    return config.to_dict() if hasattr(config, "to_dict") else {"repr": repr(config)}


def exact_match_by_category(
    predictions: list[str], references: list[str], categories: list[str]
) -> dict[str, float]:
    """``{"exact_match:<category>": share, "num_test:<category>": count}`` for each category label of
    the test pairs (files read with a ``category`` column, e.g. COGS's generalisation types)."""
    scores: dict[str, float] = {}
    for category in sorted(set(categories)):
        rows = [i for i, label in enumerate(categories) if label == category]
        scores[f"exact_match:{category}"] = exact_match(
            [predictions[i] for i in rows], [references[i] for i in rows]
        )
        scores[f"num_test:{category}"] = float(len(rows))
    return scores


def score(metric: str, predictions: list[str], references: list[str]) -> dict[str, Any]:
    """``{"bleu": ..., "bleu_signature": ...}`` or ``{"exact_match": ...}`` of ``predictions``."""
    if metric == "bleu":
        value, signature = corpus_bleu(predictions, references)
        return {"bleu": value, "bleu_signature": signature}
    return {"exact_match": exact_match(predictions, references)}


# ----------------------------------------------------------------------------- the run


# Settings that may change between an interrupted run and its restart.
_RESTART_FREE = ("threads", "results_dir", "output_dir")


def _run_settings(config: TextRunConfig) -> dict[str, Any]:
    """The settings a restart must match: the run's fields, paths as strings."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}


def run_text(config: TextRunConfig) -> TextRunResult:
    """Train and evaluate one configuration; append its record to ``results_dir/<experiment>.jsonl``."""
    from accelerate import PartialState
    from accelerate.utils import set_seed

    from deltamix.data.tokenization import TOKENIZER_FILE, VOCABULARY_FILE, load_tokenizer, save_tokenizer
    from deltamix.seqmix.augment import SeqMixAugmenter
    from deltamix.seqmix.config import SeqMixConfig
    from deltamix.training.loop import (
        Seq2SeqTrainingConfig,
        Seq2SeqTrainingLoop,
        distributed_cpu,
    )

    # The folder records the precision the run trains in, not "auto" (which differs by machine).
    config = replace(config, precision=resolve_precision(config.precision))
    data = load_data(config)
    task = config.record_task(data.name)
    limited = config.train_limit is not None
    out = config.resolved_output_dir(f"{data.name}-n{config.train_limit}" if limited else data.name)
    settings = {"run": _run_settings(config)}
    saved = finished_metrics(out, settings, _RESTART_FREE, SETTINGS_ADDED_SINCE)
    if saved is not None:
        logger.info("%s already holds a finished run: not training or recording again", out)
        return TextRunResult(saved["metrics"], out, None, True)
    metrics_path = out / "metrics.json"

    threads = configure_threads(config.threads)
    train = take(data.train, config.train_limit)
    valid = take(data.valid, config.eval_limit)
    test = take(data.test, config.eval_limit)

    set_seed(config.seed)
    is_main = PartialState(cpu=distributed_cpu()).is_main_process
    if is_main and not (out / "config.json").is_file():  # what a restart must match; completed at the end
        atomic_write_json(out / "config.json", settings)
    if config.is_hf_model:
        model, tokenizer = build_hf_model(config.model)
        if is_main:
            tokenizer.save_pretrained(out / "tokenizer")  # beside the model the trainer saves in out/model
    else:
        saved = [out / name for name in (TOKENIZER_FILE, VOCABULARY_FILE) if (out / name).is_file()]
        if saved:  # a resumed run keeps the vocabulary its checkpoint was trained with
            tokenizer = load_tokenizer(saved[0])
        else:
            tokenizer = build_tokenizer(config, data, train)
            if is_main:
                save_tokenizer(tokenizer, out)
        model = build_model(config, tokenizer)

    if config.max_output_length is not None:
        max_output = config.max_output_length
    else:
        longest = max(len(tokenizer.encode(target)) for _, target in train)
        limit = getattr(getattr(model, "config", None), "max_positions", 512)
        max_output = min(limit - 1, longest * 6 // 5 + 10)
    training = Seq2SeqTrainingConfig(
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
        max_decode_length=max_output,
        beam_size=config.beam_size,
        length_penalty=config.length_penalty,
        eval_batch_size=64 if config.metric == "bleu" else 256,
    )
    seqmix = SeqMixConfig(
        variant=config.augment,
        alpha=config.alpha,
        partner=config.partner,
        partner_extent=config.partner_extent,
        word_dropout_p=config.word_dropout_p,
        switchout_tau=config.switchout_tau,
        label_smoothing=config.label_smoothing,
    )
    augmenter = None
    if seqmix.variant != "none":
        augmenter = SeqMixAugmenter(
            seqmix,
            tokenizer.pad_id,
            tokenizer.unk_id,
            len(tokenizer),
            special_ids=(tokenizer.bos_id, tokenizer.eos_id),
        )
    trainer = Seq2SeqTrainingLoop(model, tokenizer, training, train, out, augmenter=augmenter)
    num_params = sum(p.numel() for p in model.parameters())
    logger.info(
        "%s, %s, %s: %d train / %d valid / %d test pairs, vocabulary %d, %d parameters, %d steps/epoch, %d threads",
        task, config.augment, config.model_label(), len(train), len(valid), len(test), len(tokenizer),
        num_params, trainer.steps_per_epoch, threads,
    )  # fmt: skip
    state, valid_losses = train_with_snapshots(trainer, config.average_last, valid, config.patience)

    snapshots = (
        sorted((out / EPOCH_DIR).glob("step-*.safetensors"))[-config.average_last :]
        if config.average_last > 1
        else []
    )
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    if len(snapshots) > 1:
        unwrapped.load_state_dict(average_checkpoints(snapshots))
        trainer.save_model(out / "model")  # model/ holds the weights the test score is of
        logger.info("averaged the weights of the last %d epoch checkpoints", len(snapshots))

    # Validation is decoded greedily (a cheap check of the final model; nothing is selected on it),
    # the test set with the configured beam.
    started = time.perf_counter()
    trainer.config = replace(training, beam_size=1)
    valid_predictions = trainer.predict([source for source, _ in valid], desc="decoding valid")
    trainer.config = training
    test_started = time.perf_counter()
    test_predictions = trainer.predict([source for source, _ in test], desc="decoding test")
    eval_seconds = time.perf_counter() - started
    test_seconds = time.perf_counter() - test_started
    valid_scores = score(config.metric, valid_predictions, [target for _, target in valid])
    test_scores = score(config.metric, test_predictions, [target for _, target in test])

    epochs_done = state.step / trainer.steps_per_epoch
    metrics: dict[str, float] = {
        config.metric: test_scores[config.metric],
        f"valid_{config.metric}_greedy": valid_scores[config.metric],
        "num_train": float(len(train)),
        "num_valid": float(len(valid)),
        "num_test": float(len(test)),
        "steps": float(state.step),
        "epochs": epochs_done,
        "seconds_per_epoch": state.train_seconds / epochs_done if epochs_done else float("nan"),
        "averaged_checkpoints": float(max(1, len(snapshots))),
        "final_train_loss": float("nan") if state.last_loss is None else state.last_loss,
        "test_decode_seconds": test_seconds,
    }
    if "test" in data.categories:  # a category column: exact match per category of the test pairs
        categories = take(data.categories["test"], config.eval_limit)
        metrics |= exact_match_by_category(test_predictions, [target for _, target in test], categories)
    if config.patience is not None:
        metrics["best_valid_loss"] = min(valid_losses)
        metrics["stopped_early"] = float(state.step < trainer.total_steps())
    resolved = {
        "run": _run_settings(config),
        "training": asdict(training),
        "seqmix": seqmix.to_dict(),
        "model": _model_config(model),
        "vocabulary_size": len(tokenizer),
        "num_parameters": num_params,
        "threads": threads,
        "processes": trainer.accelerator.num_processes,
        "precision": trainer.precision,
        "mixed_precision": accelerate_mixed_precision(trainer.precision),
        "data_sizes": data.sizes(),
        # what model/ holds: the mean of these epoch snapshots, or the final weights
        "model_weights": [path.name for path in snapshots] if len(snapshots) > 1 else "final",
    }
    record = None
    if trainer.is_main:
        atomic_write_text(out / "predictions.valid.txt", "".join(p + "\n" for p in valid_predictions))
        atomic_write_text(out / "predictions.test.txt", "".join(p + "\n" for p in test_predictions))
        atomic_write_json(out / "config.json", resolved)
        extra = {"bleu_signature": test_scores["bleu_signature"]} if config.metric == "bleu" else {}
        record = make_record(
            config.experiment,
            task,
            config.augment,
            config.seed,
            metrics,
            config.metric,
            resolved,
            model=config.model_label(),
            train_seconds=state.train_seconds,
            eval_seconds=eval_seconds,
            output_dir=str(out),
            **extra,
        )
        # Appended exactly once even if the run is killed here (see commit_record).
        commit_record(record, config.results_dir, metrics_path, {"metrics": metrics})
    return TextRunResult(metrics, out, record, False)
