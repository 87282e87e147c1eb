"""The SCAN experiment as a library function: generate a split, augment, train, decode, score, record.

>>> result = run_scan(ScanRunConfig(split="addprim_jump", augment="seqmix", seed=0))  # doctest: +SKIP
>>> result.metrics["exact_match"]  # doctest: +SKIP

Augmentations: ``none``; the SeqMix family (``seqmix``, ``seqmix-hard``, ``word-dropout``, ``switchout``,
through `SeqMixAugmenter`); ``geca`` (GECA's extra pairs added to the training set); ``geca+seqmix``
(both). One vocabulary is shared by commands and actions, so the copy mechanism is well defined.
The GECA pairs of a run are stored in its folder, so a resumed run trains on the same data.
A finished run (its ``metrics.json`` exists) is not trained or recorded again; a run killed while
recording completes its record (once) when started again. Both only for the settings the folder was
started with (its ``config.json``, written at the start): a folder of other settings is refused
(`deltamix.core.run_folder.finished_metrics`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from accelerate import PartialState
from accelerate.utils import set_seed

from deltamix.core.errors import DataFormatError
from deltamix.core.io import atomic_write_json, atomic_write_text
from deltamix.core.precision import (
    accelerate_mixed_precision,
    configure_threads,
    resolve_precision,
    threads_field,
)
from deltamix.core.records import commit_record, make_record
from deltamix.core.run_folder import finished_metrics
from deltamix.data.scan import Pair, load_split
from deltamix.data.vocab import Vocabulary
from deltamix.models.lstm import LSTMSeq2Seq, LSTMSeq2SeqConfig
from deltamix.models.transformer import TransformerSeq2Seq, TransformerSeq2SeqConfig
from deltamix.seqmix.augment import SeqMixAugmenter
from deltamix.seqmix.config import (
    PARTNER_EXTENTS,
    SEQMIX_VALUES_WHEN_ABSENT,
    SeqMixConfig,
    partner_extent_suffix,
    resolve_partner_extent,
)
from deltamix.seqmix.geca import GecaConfig, geca_augment
from deltamix.training.checkpoint import TrainerState
from deltamix.training.loop import (
    Seq2SeqTrainingConfig,
    Seq2SeqTrainingLoop,
    distributed_cpu,
)

logger = logging.getLogger(__name__)

SPLITS = ("simple", "addprim_jump", "addprim_turn_left", "template_around_right", "length")
AUGMENTATIONS = ("none", "seqmix", "seqmix-hard", "word-dropout", "switchout", "geca", "geca+seqmix")
MODELS = ("lstm", "transformer")
# The default budget of `deltamix seqmix scan`: a few minutes of training on 2 CPU cores.
DEFAULT_STEPS = 1500
DEFAULT_BATCH_SIZE = 32


def default_training() -> Seq2SeqTrainingConfig:
    """SCAN training defaults: the papers' Adam lr 1e-3, batch 32, no label smoothing (as GECA's
    baseline), greedy decoding, outputs up to 60 tokens (the longest SCAN output has 48 actions)."""
    return Seq2SeqTrainingConfig(
        max_steps=DEFAULT_STEPS,
        batch_size=DEFAULT_BATCH_SIZE,
        learning_rate=1e-3,
        max_grad_norm=5.0,
        label_smoothing=0.0,
        max_decode_length=60,
        checkpoint_interval=500,
    )


@dataclass
class ScanRunConfig:
    """One SCAN run."""

    # Field metadata beyond "help" (flag, type, choices, default_help, aliases) shapes the generated
    # command line: see deltamix.cli.settings_args.
    split: str = field(default="addprim_jump", metadata={"help": "SCAN split", "choices": SPLITS})
    augment: str = field(default="seqmix", metadata={"help": "augmentation", "choices": AUGMENTATIONS})
    model: str = field(
        default="lstm", metadata={"help": "lstm (the papers' SCAN model) or transformer", "choices": MODELS}
    )
    seed: int = field(
        default=0,
        metadata={"help": "seed of initialisation, data order, mixing and GECA", "type": "non_negative_int"},
    )
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "run folder",
            "type": "output_dir",
            "default_help": "runs/scan/SPLIT/AUGMENT[-main]-MODEL-seedS",
        },
    )
    results_dir: str = field(
        default="results", metadata={"help": "where results/scan.jsonl lives", "type": "output_dir"}
    )
    training: Seq2SeqTrainingConfig = field(default_factory=default_training)
    seqmix_alpha: float = field(
        default=0.1,
        metadata={
            "help": "SeqMix lambda ~ Beta(alpha, alpha)",
            "flag": "--alpha",
            "aliases": ("--seqmix-alpha",),
            "type": "positive_float",
        },
    )
    partner_extent: str | None = field(
        default=None,
        metadata={
            "help": "positions a longer SeqMix partner covers: main (the main example's only, as the "
            "authors' fairseq code) or union (both sequences'); see SeqMixConfig.partner_extent",
            "choices": PARTNER_EXTENTS,
            "default_help": "main for the members that mix (seqmix, seqmix-hard, geca+seqmix)",
        },
    )
    geca_ratio: float = field(
        default=0.3,
        metadata={
            "help": "share of training draws that are GECA pairs (the authors' aug_ratio 0.3): the GECA pairs "
            "are repeated so that they make up this share of the training set",
            "type": "open_unit_interval",
        },
    )
    model_config: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "overrides of the model config (e.g. hidden_size)"}
    )
    train_limit: int | None = field(
        default=None,
        metadata={
            "help": "train on the first N pairs only (quick checks)",
            "type": "positive_int",
            "default_help": "none: all",
        },
    )
    test_limit: int | None = field(
        default=None,
        metadata={
            "help": "score the first N test pairs only (quick checks)",
            "flag": "--eval-limit",
            "aliases": ("--test-limit",),
            "type": "positive_int",
            "default_help": "none: all",
        },
    )
    num_threads: int | None = threads_field(flag="--threads")

    def __post_init__(self) -> None:
        self.partner_extent = resolve_partner_extent(self.seqmix_variant, self.partner_extent)
        if self.split not in SPLITS:
            raise ValueError(f"unknown SCAN split {self.split!r}; valid: {', '.join(SPLITS)}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {self.augment!r}; valid: {', '.join(AUGMENTATIONS)}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; valid: {', '.join(MODELS)}")
        if self.partner_extent not in PARTNER_EXTENTS:
            raise ValueError(
                f"unknown partner extent {self.partner_extent!r}; valid: {', '.join(PARTNER_EXTENTS)}"
            )
        if not 0 < self.geca_ratio < 1:
            raise ValueError(f"geca_ratio must be in (0, 1), got {self.geca_ratio}")
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")

    def resolved_output_dir(self) -> Path:
        if self.output_dir is not None:
            return Path(self.output_dir)
        name = self.augment + partner_extent_suffix(self.seqmix_variant, self.partner_extent)
        return Path("runs") / "scan" / self.split / f"{name}-{self.model}-seed{self.seed}"

    @property
    def seqmix_variant(self) -> str:
        """The SeqMix-family member applied to batches (GECA alone trains on plain batches)."""
        return {"geca": "none", "geca+seqmix": "seqmix"}.get(self.augment, self.augment)

    @property
    def uses_geca(self) -> bool:
        """Whether GECA's pairs join the training set (``geca`` and ``geca+seqmix``)."""
        return self.augment.startswith("geca")

    def seqmix_config(self) -> SeqMixConfig:
        """The `SeqMixConfig` of this run, built from its fields.

        The run's command line, ``config.json`` and records keep SeqMix's settings as flat fields of
        `ScanRunConfig` (``seqmix_alpha``, ``partner_extent``) and the label smoothing in
        ``training``; this is the one place that turns them into the augmentation's config.
        """
        return SeqMixConfig(
            variant=self.seqmix_variant,
            alpha=self.seqmix_alpha,
            partner_extent=self.partner_extent,
            label_smoothing=self.training.label_smoothing,
        )


@dataclass
class ScanRunResult:
    """What a run produced."""

    metrics: dict[str, float]
    output_dir: Path
    record_path: Path | None
    already_finished: bool
    steps: int
    files: dict[str, str]
    train_seconds: float = 0.0


def geca_repeats(num_original: int, num_extra: int, ratio: float) -> int:
    """How often to repeat GECA's pairs so that they are ``ratio`` of the training set.

    GECA's code draws a generated pair with probability ``aug_ratio`` at each draw; repeating the
    generated pairs k = ratio / (1 - ratio) * N / M times (N original, M generated pairs) gives the
    same expected mixture with an ordinary shuffled epoch. At least 1 (when M > 0).

    >>> geca_repeats(14670, 1000, 0.3)
    6
    """
    if num_extra == 0:
        return 0
    return max(1, round(ratio / (1.0 - ratio) * num_original / num_extra))


def _geca_pairs(train: list[Pair], seed: int, path: Path) -> list[Pair]:
    """GECA's extra pairs for ``train``, computed once per run folder and stored in ``path``."""
    if path.exists():
        try:
            return [tuple(pair) for pair in json.loads(path.read_text(encoding="utf-8"))["pairs"]]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise DataFormatError(path, f"unreadable GECA pairs ({error})") from error
    started = time.perf_counter()
    extra = [tuple(pair) for pair in geca_augment(train, GecaConfig(), seed)]
    logger.info("GECA added %d pairs in %.1f s", len(extra), time.perf_counter() - started)
    if PartialState(cpu=distributed_cpu()).is_main_process:  # every process computes the same pairs
        atomic_write_json(path, {"pairs": extra})
    return extra


@dataclass
class ScanData:
    """The pairs a run trains and is scored on, and the vocabulary built from its training pairs."""

    train: list[Pair]
    test: list[Pair]
    vocab: Vocabulary
    num_original: int
    """Training pairs of the split (after ``train_limit``), before GECA's are added."""
    num_geca: int
    """Distinct pairs GECA generated (each repeated `geca_repeats` times in ``train``)."""


def prepare_data(config: ScanRunConfig, out: Path) -> ScanData:
    """The split of ``config``, limited, with GECA's pairs (stored in ``out``) where it uses GECA."""
    train, test = load_split(config.split, seed=config.seed)
    if config.train_limit is not None:
        train = train[: config.train_limit]
    if config.test_limit is not None:
        test = test[: config.test_limit]
    num_original, num_geca = len(train), 0
    if config.uses_geca:
        extra = _geca_pairs(train, config.seed, out / "geca_pairs.json")
        num_geca = len(extra)
        train = train + extra * geca_repeats(len(train), len(extra), config.geca_ratio)
    vocab = Vocabulary.build(text for pair in train for text in pair)
    return ScanData(train, test, vocab, num_original, num_geca)


def build_model(name: str, vocab: Vocabulary, overrides: dict[str, Any]) -> LSTMSeq2Seq | TransformerSeq2Seq:
    """The SCAN model ``name`` (lstm or transformer) for ``vocab``, with config overrides."""
    cls, config_cls = (
        (LSTMSeq2Seq, LSTMSeq2SeqConfig) if name == "lstm" else (TransformerSeq2Seq, TransformerSeq2SeqConfig)
    )
    unknown = set(overrides) - set(config_cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown {name} model settings: {sorted(unknown)}")
    specials = {"pad_id": vocab.pad_id, "bos_id": vocab.bos_id, "eos_id": vocab.eos_id}
    return cls(config_cls(vocab_size=len(vocab), **specials, **overrides))


def build_augmenter(seqmix: SeqMixConfig, vocab: Vocabulary) -> SeqMixAugmenter | None:
    """The batch augmenter of ``seqmix`` over ``vocab`` (None for ``variant="none"``)."""
    if seqmix.variant == "none":
        return None
    return SeqMixAugmenter(
        seqmix, vocab.pad_id, vocab.unk_id, len(vocab), special_ids=(vocab.bos_id, vocab.eos_id)
    )


# Settings that may change between an interrupted run and its restart.
MAY_DIFFER_ON_RESTART = ("num_threads", "results_dir", "output_dir", "log_interval", "eval_batch_size")


def _run_settings(config: ScanRunConfig) -> dict[str, Any]:
    """The settings a restart must match: the run's fields and, apart, its training config."""
    return {
        "run": {k: v for k, v in asdict(config).items() if k != "training"},
        "training": asdict(config.training),
    }


def _run_files(out: Path) -> dict[str, str]:
    """The files a run leaves in its folder ``out``, by name."""
    return {
        "model": str(out / "model"),
        "metrics": str(out / "metrics.json"),
        "predictions": str(out / "predictions.txt"),
    }


def _run_metrics(data: ScanData, state: TrainerState, evaluation: dict[str, float]) -> dict[str, float]:
    """The metrics a run saves: test exact match, data sizes, the last training loss, eval time."""
    return {
        "exact_match": evaluation["exact_match"],
        "num_test": float(len(data.test)),
        "num_train": float(len(data.train)),
        "num_geca_pairs": float(data.num_geca),
        "final_train_loss": float("nan") if state.last_loss is None else state.last_loss,
        "eval_seconds": evaluation["eval_seconds"],
    }


def _resolved_config(
    config: ScanRunConfig,
    settings: dict[str, Any],
    seqmix: SeqMixConfig,
    model: LSTMSeq2Seq | TransformerSeq2Seq,
    trainer: Seq2SeqTrainingLoop,
    state: TrainerState,
    threads: int,
) -> dict[str, Any]:
    """The finished run's ``config.json`` and record config: the settings and what they resolved to."""
    return {
        **settings,
        "seqmix": seqmix.to_dict(),
        "geca": GecaConfig().to_dict() if config.uses_geca else None,
        "model": model.config.to_dict(),
        "threads": threads,
        "processes": trainer.accelerator.num_processes,
        "precision": trainer.precision,
        "mixed_precision": accelerate_mixed_precision(trainer.precision),
        "steps": state.step,
        "epochs": state.step / trainer.steps_per_epoch,
    }


def _save_and_record(
    config: ScanRunConfig,
    out: Path,
    metrics: dict[str, float],
    predictions: list[str],
    resolved: dict[str, Any],
    state: TrainerState,
) -> Path:
    """Write the predictions and the resolved config, append the record; the record's path."""
    atomic_write_text(out / "predictions.txt", "".join(p + "\n" for p in predictions))
    atomic_write_json(out / "config.json", resolved)
    record = make_record(
        "scan",
        config.split,
        config.augment,
        config.seed,
        {k: v for k, v in metrics.items() if k != "eval_seconds"},
        "exact_match",
        resolved,
        model=f"{config.model}-seq2seq",
        train_seconds=state.train_seconds,
        eval_seconds=metrics["eval_seconds"],
        output_dir=str(out),
    )
    # The record is appended exactly once even if the run is killed here (see commit_record).
    return commit_record(
        record,
        config.results_dir,
        out / "metrics.json",
        {"metrics": metrics, "steps": state.step, "train_seconds": state.train_seconds},
    )


def run_scan(config: ScanRunConfig) -> ScanRunResult:
    """Train and evaluate one SCAN configuration; append its record to ``results_dir/scan.jsonl``."""
    # The folder records the precision the run trains in, not "auto" (which differs by machine).
    precision = resolve_precision(config.training.precision)
    config = replace(config, training=replace(config.training, precision=precision))
    out = config.resolved_output_dir()
    files = _run_files(out)
    settings = _run_settings(config)
    saved = finished_metrics(out, settings, MAY_DIFFER_ON_RESTART, SEQMIX_VALUES_WHEN_ABSENT)
    if saved is not None:
        logger.info("%s already holds a finished run: not training again", out)
        seconds = float(saved.get("train_seconds", 0.0))
        return ScanRunResult(saved["metrics"], out, None, True, int(saved["steps"]), files, seconds)

    threads = configure_threads(config.num_threads)
    data = prepare_data(config, out)
    set_seed(config.seed)
    if PartialState(cpu=distributed_cpu()).is_main_process and not (out / "config.json").is_file():
        atomic_write_json(out / "config.json", settings)  # what a restart must match; completed at the end
    model = build_model(config.model, data.vocab, config.model_config)
    seqmix = config.seqmix_config()
    augmenter = build_augmenter(seqmix, data.vocab)
    trainer = Seq2SeqTrainingLoop(model, data.vocab, config.training, data.train, out, augmenter=augmenter)
    logger.info(
        "SCAN %s, %s, %s: %d training pairs (%d from GECA), %d test pairs, %d steps/epoch, %d threads",
        config.split, config.augment, config.model, len(data.train), len(data.train) - data.num_original,
        len(data.test), trainer.steps_per_epoch, threads,
    )  # fmt: skip

    state = trainer.train()
    evaluation, predictions = trainer.evaluate(data.test)
    metrics = _run_metrics(data, state, evaluation)
    resolved = _resolved_config(config, settings, seqmix, model, trainer, state, threads)
    record_path = None
    if trainer.is_main:
        record_path = _save_and_record(config, out, metrics, predictions, resolved, state)
    return ScanRunResult(metrics, out, record_path, False, state.step, files, state.train_seconds)
