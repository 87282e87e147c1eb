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

The pieces live beside it: `deltamix.experiments.text.settings` (`TextRunConfig`), ``build`` (data,
tokenizer, model) and ``scoring`` (BLEU, exact match).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from accelerate import PartialState
from accelerate.utils import set_seed

from deltamix.core.io import atomic_write_json, atomic_write_text
from deltamix.core.precision import accelerate_mixed_precision, configure_threads, resolve_precision
from deltamix.core.records import commit_record, make_record
from deltamix.core.run_folder import finished_metrics
from deltamix.data.seq2seq import Pair, Seq2SeqData, take
from deltamix.experiments.text.build import (
    build_model,
    build_tokenizer,
    load_data,
    max_output_length,
    model_and_tokenizer,
    model_config,
)
from deltamix.experiments.text.scoring import exact_match_by_category, score
from deltamix.experiments.text.settings import (
    AUGMENTATIONS,
    EXPERIMENT,
    KINDS,
    MAY_DIFFER_ON_RESTART,
    METRICS,
    TASK_DEFAULTS,
    TRANSFORMER_SIZES,
    TextRunConfig,
    run_settings,
    seqmix_config,
    training_config,
)
from deltamix.seqmix.augment import SeqMixAugmenter
from deltamix.seqmix.config import SEQMIX_VALUES_WHEN_ABSENT, SeqMixConfig
from deltamix.training.config import Seq2SeqTrainingConfig
from deltamix.training.distributed import distributed_cpu
from deltamix.training.loop import Seq2SeqTrainingLoop, TrainerState
from deltamix.training.snapshots import EPOCH_DIR, average_checkpoints, train_with_snapshots

__all__ = [
    "AUGMENTATIONS",
    "EPOCH_DIR",
    "EXPERIMENT",
    "KINDS",
    "METRICS",
    "TASK_DEFAULTS",
    "TRANSFORMER_SIZES",
    "TextRunConfig",
    "TextRunResult",
    "average_checkpoints",
    "build_model",
    "build_tokenizer",
    "exact_match_by_category",
    "load_data",
    "run_text",
    "score",
    "train_with_snapshots",
]

logger = logging.getLogger(__name__)


@dataclass
class TextRunResult:
    """What a run produced: test metrics, its folder, the record (None if the run had finished before)."""

    metrics: dict[str, float]
    output_dir: Path
    record: dict[str, Any] | None
    already_finished: bool


@dataclass
class _Splits:
    """The pairs a run trains, validates and tests on (after ``train_limit`` / ``eval_limit``)."""

    train: list[Pair]
    valid: list[Pair]
    test: list[Pair]


@dataclass
class _Decoded:
    """The decoded validation (greedy) and test (the configured beam) sources, and the time it took."""

    valid: list[str]
    test: list[str]
    eval_seconds: float  # both sets
    test_seconds: float


def run_text(config: TextRunConfig) -> TextRunResult:
    """Train and evaluate one configuration; append its record to ``results_dir/<experiment>.jsonl``.

    A folder that holds a finished run of the same settings is neither trained nor recorded again
    (``already_finished``); an interrupted one resumes.
    """
    # The folder records the precision the run trains in, not "auto" (which differs by machine).
    config = replace(config, precision=resolve_precision(config.precision))
    data = load_data(config)
    limited = config.train_limit is not None
    out = config.resolved_output_dir(f"{data.name}-n{config.train_limit}" if limited else data.name)
    settings = {"run": run_settings(config)}
    saved = finished_metrics(out, settings, MAY_DIFFER_ON_RESTART, SEQMIX_VALUES_WHEN_ABSENT)
    if saved is not None:
        logger.info("%s already holds a finished run: not training or recording again", out)
        return TextRunResult(saved["metrics"], out, None, True)

    threads = configure_threads(config.threads)
    splits = _Splits(
        take(data.train, config.train_limit),
        take(data.valid, config.eval_limit),
        take(data.test, config.eval_limit),
    )
    set_seed(config.seed)
    is_main = PartialState(cpu=distributed_cpu()).is_main_process
    if is_main and not (out / "config.json").is_file():  # what a restart must match; completed at the end
        atomic_write_json(out / "config.json", settings)
    model, tokenizer = model_and_tokenizer(config, data, splits.train, out, is_main)
    training = training_config(config, max_output_length(config, model, tokenizer, splits.train))
    seqmix = seqmix_config(config)
    trainer = Seq2SeqTrainingLoop(
        model, tokenizer, training, splits.train, out, augmenter=_augmenter(seqmix, tokenizer)
    )
    _log_start(config, data, splits, tokenizer, _num_parameters(model), trainer.steps_per_epoch, threads)
    state, valid_losses = train_with_snapshots(trainer, config.average_last, splits.valid, config.patience)
    snapshots = _average_last_epochs(config, trainer, out)
    decoded = _decode(trainer, training, splits)
    test_scores = score(config.metric, decoded.test, [target for _, target in splits.test])
    metrics = _metrics(
        config, data, splits, decoded, test_scores, state, trainer, valid_losses, len(snapshots)
    )
    resolved = _resolved_config(config, data, training, seqmix, trainer, tokenizer, threads, snapshots)
    record = None
    if trainer.is_main:
        signature = test_scores.get("bleu_signature")
        record = _write_results(config, data, out, decoded, metrics, resolved, state.train_seconds, signature)
    return TextRunResult(metrics, out, record, False)


def _num_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def _resolved_config(
    config: TextRunConfig,
    data: Seq2SeqData,
    training: Seq2SeqTrainingConfig,
    seqmix: SeqMixConfig,
    trainer: Seq2SeqTrainingLoop,
    tokenizer: Any,
    threads: int,
    snapshots: list[Path],
) -> dict[str, Any]:
    """The completed config.json of a run (and its record's "config"): the settings, the library
    configs they gave, the model, the machine's share and what ``model/`` holds."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    return {
        "run": run_settings(config),
        "training": asdict(training),
        "seqmix": seqmix.to_dict(),
        "model": model_config(model),
        "vocabulary_size": len(tokenizer),
        "num_parameters": _num_parameters(model),
        "threads": threads,
        "processes": trainer.accelerator.num_processes,
        "precision": trainer.precision,
        "mixed_precision": accelerate_mixed_precision(trainer.precision),
        "data_sizes": data.sizes(),
        # what model/ holds: the mean of these epoch snapshots, or the final weights
        "model_weights": [path.name for path in snapshots] if len(snapshots) > 1 else "final",
    }


def _augmenter(seqmix: SeqMixConfig, tokenizer: Any) -> SeqMixAugmenter | None:
    """The SeqMix-family augmenter over ``tokenizer``'s ids, or None for plain training."""
    if seqmix.variant == "none":
        return None
    return SeqMixAugmenter(
        seqmix,
        tokenizer.pad_id,
        tokenizer.unk_id,
        len(tokenizer),
        special_ids=(tokenizer.bos_id, tokenizer.eos_id),
    )


def _log_start(
    config: TextRunConfig,
    data: Seq2SeqData,
    splits: _Splits,
    tokenizer: Any,
    num_params: int,
    steps_per_epoch: int,
    threads: int,
) -> None:
    logger.info(
        "%s, %s, %s: %d train / %d valid / %d test pairs, vocabulary %d, %d parameters, %d steps/epoch, %d threads",
        config.record_task(data.name), config.augment, config.model_label(), len(splits.train),
        len(splits.valid), len(splits.test), len(tokenizer), num_params, steps_per_epoch, threads,
    )  # fmt: skip


def _average_last_epochs(config: TextRunConfig, trainer: Seq2SeqTrainingLoop, out: Path) -> list[Path]:
    """Load the mean of the last ``average_last`` epoch snapshots into the model and save it as
    ``model/`` (the weights the test score is of); returns the snapshots averaged (none: final weights)."""
    snapshots = (
        sorted((out / EPOCH_DIR).glob("step-*.safetensors"))[-config.average_last :]
        if config.average_last > 1
        else []
    )
    if len(snapshots) > 1:
        trainer.accelerator.unwrap_model(trainer.model).load_state_dict(average_checkpoints(snapshots))
        trainer.save_model(out / "model")
        logger.info("averaged the weights of the last %d epoch checkpoints", len(snapshots))
    return snapshots


def _decode(trainer: Seq2SeqTrainingLoop, training: Seq2SeqTrainingConfig, splits: _Splits) -> _Decoded:
    """Decode validation greedily (a cheap check of the final model; nothing is selected on it) and
    the test set with the configured beam."""
    started = time.perf_counter()
    trainer.config = replace(training, beam_size=1)
    valid = trainer.predict([source for source, _ in splits.valid], desc="decoding valid")
    trainer.config = training
    test_started = time.perf_counter()
    test = trainer.predict([source for source, _ in splits.test], desc="decoding test")
    return _Decoded(valid, test, time.perf_counter() - started, time.perf_counter() - test_started)


def _metrics(
    config: TextRunConfig,
    data: Seq2SeqData,
    splits: _Splits,
    decoded: _Decoded,
    test_scores: dict[str, Any],
    state: TrainerState,
    trainer: Seq2SeqTrainingLoop,
    valid_losses: list[float],
    averaged: int,
) -> dict[str, float]:
    """The run's metrics.json: the test score, the greedy validation score, sizes, time and training."""
    metric = config.metric
    valid_scores = score(metric, decoded.valid, [target for _, target in splits.valid])
    epochs_done = state.step / trainer.steps_per_epoch
    metrics: dict[str, float] = {
        metric: test_scores[metric],
        f"valid_{metric}_greedy": valid_scores[metric],
        "num_train": float(len(splits.train)),
        "num_valid": float(len(splits.valid)),
        "num_test": float(len(splits.test)),
        "steps": float(state.step),
        "epochs": epochs_done,
        "seconds_per_epoch": state.train_seconds / epochs_done if epochs_done else float("nan"),
        "averaged_checkpoints": float(max(1, averaged)),
        "final_train_loss": float("nan") if state.last_loss is None else state.last_loss,
        "test_decode_seconds": decoded.test_seconds,
    }
    if "test" in data.categories:  # a category column: exact match per category of the test pairs
        categories = take(data.categories["test"], config.eval_limit)
        metrics |= exact_match_by_category(decoded.test, [target for _, target in splits.test], categories)
    if config.patience is not None:
        metrics["best_valid_loss"] = min(valid_losses)
        metrics["stopped_early"] = float(state.step < trainer.total_steps())
    return metrics


def _write_results(
    config: TextRunConfig,
    data: Seq2SeqData,
    out: Path,
    decoded: _Decoded,
    metrics: dict[str, float],
    resolved: dict[str, Any],
    train_seconds: float,
    bleu_signature: str | None,
) -> dict[str, Any]:
    """Write the predictions and the completed config.json, then commit the record (main process)."""
    atomic_write_text(out / "predictions.valid.txt", "".join(p + "\n" for p in decoded.valid))
    atomic_write_text(out / "predictions.test.txt", "".join(p + "\n" for p in decoded.test))
    atomic_write_json(out / "config.json", resolved)
    extra = {"bleu_signature": bleu_signature} if config.metric == "bleu" else {}
    record = make_record(
        config.experiment,
        config.record_task(data.name),
        config.augment,
        config.seed,
        metrics,
        config.metric,
        resolved,
        model=config.model_label(),
        train_seconds=train_seconds,
        eval_seconds=decoded.eval_seconds,
        output_dir=str(out),
        **extra,
    )
    # Appended exactly once even if the run is killed here (see commit_record).
    commit_record(record, config.results_dir, out / "metrics.json", {"metrics": metrics})
    return record
