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
from deltamix.core.precision import accelerate_mixed_precision, configure_threads, resolve_precision
from deltamix.core.records import commit_record, make_record
from deltamix.core.run_folder import finished_metrics
from deltamix.data.vocab import Vocabulary
from deltamix.seqmix.config import (
    PARTNER_EXTENTS,
    SETTINGS_ADDED_SINCE,
    partner_extent_suffix,
    resolve_partner_extent,
)
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
    num_threads: int | None = field(
        default=None,
        metadata={
            "help": "torch CPU threads",
            "flag": "--threads",
            "type": "positive_int",
            "default_help": "$OMP_NUM_THREADS if set, else all the cores this process may use",
        },
    )

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


def _geca_config() -> Any:
    """GECA's settings for SCAN (the authors' defaults)."""
    from deltamix.seqmix.geca import GecaConfig

    return GecaConfig()


def _geca_pairs(train: list[tuple[str, str]], seed: int, path: Path) -> list[tuple[str, str]]:
    """GECA's extra pairs for ``train``, computed once per run folder and stored in ``path``."""
    if path.exists():
        try:
            return [tuple(pair) for pair in json.loads(path.read_text(encoding="utf-8"))["pairs"]]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise DataFormatError(path, f"unreadable GECA pairs ({error})") from error
    from deltamix.seqmix.geca import geca_augment

    started = time.perf_counter()
    extra = [tuple(pair) for pair in geca_augment(train, _geca_config(), seed)]
    logger.info("GECA added %d pairs in %.1f s", len(extra), time.perf_counter() - started)
    if PartialState(cpu=distributed_cpu()).is_main_process:  # every process computes the same pairs
        atomic_write_json(path, {"pairs": extra})
    return extra


def build_model(name: str, vocab: Vocabulary, overrides: dict[str, Any]) -> Any:
    """The SCAN model ``name`` (lstm or transformer) for ``vocab``, with config overrides."""
    from deltamix.models.lstm import LSTMSeq2Seq, LSTMSeq2SeqConfig
    from deltamix.models.transformer import TransformerSeq2Seq, TransformerSeq2SeqConfig

    cls, config_cls = (
        (LSTMSeq2Seq, LSTMSeq2SeqConfig) if name == "lstm" else (TransformerSeq2Seq, TransformerSeq2SeqConfig)
    )
    unknown = set(overrides) - set(config_cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown {name} model settings: {sorted(unknown)}")
    specials = {"pad_id": vocab.pad_id, "bos_id": vocab.bos_id, "eos_id": vocab.eos_id}
    return cls(config_cls(vocab_size=len(vocab), **specials, **overrides))


# Settings that may change between an interrupted run and its restart.
_RESTART_FREE = ("num_threads", "results_dir", "output_dir", "log_interval", "eval_batch_size")


def _run_settings(config: ScanRunConfig) -> dict[str, Any]:
    """The settings a restart must match: the run's fields and, apart, its training config."""
    return {
        "run": {k: v for k, v in asdict(config).items() if k != "training"},
        "training": asdict(config.training),
    }


def run_scan(config: ScanRunConfig) -> ScanRunResult:
    """Train and evaluate one SCAN configuration; append its record to ``results_dir/scan.jsonl``."""
    from deltamix.data.scan import load_split
    from deltamix.seqmix.augment import SeqMixAugmenter
    from deltamix.seqmix.config import SeqMixConfig

    # The folder records the precision the run trains in, not "auto" (which differs by machine).
    precision = resolve_precision(config.training.precision)
    config = replace(config, training=replace(config.training, precision=precision))
    out = config.resolved_output_dir()
    files = {
        "model": str(out / "model"),
        "metrics": str(out / "metrics.json"),
        "predictions": str(out / "predictions.txt"),
    }
    settings = _run_settings(config)
    saved = finished_metrics(out, settings, _RESTART_FREE, SETTINGS_ADDED_SINCE)
    if saved is not None:
        logger.info("%s already holds a finished run: not training again", out)
        seconds = float(saved.get("train_seconds", 0.0))
        return ScanRunResult(saved["metrics"], out, None, True, int(saved["steps"]), files, seconds)
    metrics_path = out / "metrics.json"

    threads = configure_threads(config.num_threads)
    train, test = load_split(config.split, seed=config.seed)
    if config.train_limit is not None:
        train = train[: config.train_limit]
    if config.test_limit is not None:
        test = test[: config.test_limit]
    num_original, num_geca = len(train), 0
    if config.augment.startswith("geca"):
        extra = _geca_pairs(train, config.seed, out / "geca_pairs.json")
        num_geca = len(extra)
        train = train + extra * geca_repeats(len(train), len(extra), config.geca_ratio)
    vocab = Vocabulary.build(text for pair in train for text in pair)

    set_seed(config.seed)
    if PartialState(cpu=distributed_cpu()).is_main_process and not (out / "config.json").is_file():
        atomic_write_json(out / "config.json", settings)  # what a restart must match; completed at the end
    model = build_model(config.model, vocab, config.model_config)
    seqmix = SeqMixConfig(
        variant=config.seqmix_variant,
        alpha=config.seqmix_alpha,
        partner_extent=config.partner_extent,
        label_smoothing=config.training.label_smoothing,
    )
    augmenter = None
    if seqmix.variant != "none":
        augmenter = SeqMixAugmenter(
            seqmix, vocab.pad_id, vocab.unk_id, len(vocab), special_ids=(vocab.bos_id, vocab.eos_id)
        )
    trainer = Seq2SeqTrainingLoop(model, vocab, config.training, train, out, augmenter=augmenter)
    logger.info(
        "SCAN %s, %s, %s: %d training pairs (%d from GECA), %d test pairs, %d steps/epoch, %d threads",
        config.split, config.augment, config.model, len(train), len(train) - num_original, len(test),
        trainer.steps_per_epoch, threads,
    )  # fmt: skip
    state = trainer.train()
    metrics, predictions = trainer.evaluate(test)
    metrics = {
        "exact_match": metrics["exact_match"],
        "num_test": float(len(test)),
        "num_train": float(len(train)),
        "num_geca_pairs": float(num_geca),
        "final_train_loss": float("nan") if state.last_loss is None else state.last_loss,
        "eval_seconds": metrics["eval_seconds"],
    }
    resolved = {
        **settings,
        "seqmix": seqmix.to_dict(),
        "geca": _geca_config().to_dict() if config.augment.startswith("geca") else None,
        "model": model.config.to_dict(),
        "threads": threads,
        "processes": trainer.accelerator.num_processes,
        "precision": trainer.precision,
        "mixed_precision": accelerate_mixed_precision(trainer.precision),
        "steps": state.step,
        "epochs": state.step / trainer.steps_per_epoch,
    }
    record_path = None
    if trainer.is_main:
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
        record_path = commit_record(
            record,
            config.results_dir,
            metrics_path,
            {"metrics": metrics, "steps": state.step, "train_seconds": state.train_seconds},
        )
    return ScanRunResult(metrics, out, record_path, False, state.step, files, state.train_seconds)
