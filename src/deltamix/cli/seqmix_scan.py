"""`deltamix seqmix scan`: train and score a SCAN model with SeqMix, its family or GECA (offline)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time

from accelerate import PartialState

from deltamix.cli.args import positive_int, unit_interval
from deltamix.cli.settings_args import add_settings_options, settings_from_args
from deltamix.core.precision import PRECISIONS
from deltamix.experiments.scan.run import (
    DEFAULT_STEPS,
    ScanRunConfig,
    default_training,
    run_scan,
)
from deltamix.models.lstm import LSTMSeq2SeqConfig
from deltamix.models.transformer import TransformerSeq2SeqConfig
from deltamix.training.loop import Seq2SeqTrainingConfig

# The ScanRunConfig fields offered, in --help order; their options are generated from the fields.
RUN_FIELDS = (
    "split", "augment", "model", "seed", "output_dir", "results_dir", "seqmix_alpha", "partner_extent",
    "geca_ratio", "train_limit", "test_limit", "num_threads",
)  # fmt: skip
# The Seq2SeqTrainingConfig fields offered (defaults: `default_training`), with the option names and
# checked types of this command.
BUDGET_FIELDS = ("max_steps", "epochs", "max_minutes")
TRAINING_FIELDS = ("batch_size", "learning_rate", "label_smoothing", "beam_size", "checkpoint_interval",
                   "precision", "max_tokens")  # fmt: skip
_TRAINING_OPTIONS = {
    "max_steps": {
        "type": "positive_int",
        "aliases": ("--steps",),
        "default_help": f"{DEFAULT_STEPS}, unless --epochs or --minutes",
    },
    "epochs": {
        "help": "training epochs",
        "type": "positive_float",
        "default_help": "none: --max-steps decides",
    },
    "max_minutes": {
        "help": "training time budget in minutes",
        "flag": "--minutes",
        "type": "positive_float",
        "default_help": "none: --max-steps decides",
    },
    "batch_size": {"type": "positive_int"},
    "learning_rate": {"flag": "--lr", "type": "positive_float"},
    "label_smoothing": {"type": "unit_interval"},
    "beam_size": {"help": "beam size (1 = greedy)", "type": "positive_int"},
    "checkpoint_interval": {"type": "positive_int"},
    "precision": {
        "help": "bf16 autocast or fp32; auto = bf16 where the CPU (avx512_bf16 / amx_bf16) or GPU computes "
        "it natively, else fp32",
        "choices": PRECISIONS,
    },
    "max_tokens": {
        "help": "token-budget batches of at most this many padded tokens, length-bucketed (fairseq's "
        "--max-tokens), in place of --batch-size examples",
        "type": "positive_int",
        "default_help": "none: sentence batches",
    },
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``scan`` to the ``seqmix`` command group."""
    training = default_training()
    parser = subparsers.add_parser(
        "scan",
        help="SCAN compositional generalisation (data generated, no download)",
        description=(
            "Train the SCAN model (bidirectional LSTM encoder, attention + copy decoder; or a small "
            "Transformer) on a SCAN split with an augmentation, then report exact-match accuracy on the "
            f"split's test set. Default budget: {DEFAULT_STEPS} steps of batch {training.batch_size} "
            "(about 3 epochs of addprim_jump; a few minutes on one CPU core); the papers train much longer, "
            "use --max-steps/--epochs/--minutes for that. Re-running with the same --output-dir resumes an "
            "interrupted run; a finished run is not trained again."
        ),
    )
    add_settings_options(parser, ScanRunConfig, RUN_FIELDS)
    budget = parser.add_mutually_exclusive_group()
    add_settings_options(
        budget,
        Seq2SeqTrainingConfig,
        BUDGET_FIELDS,
        {name: None for name in BUDGET_FIELDS},
        _TRAINING_OPTIONS,
    )
    defaults = {name: getattr(training, name) for name in TRAINING_FIELDS}
    add_settings_options(parser, Seq2SeqTrainingConfig, TRAINING_FIELDS, defaults, _TRAINING_OPTIONS)
    model = parser.add_argument_group("model (overrides of the model's config)")
    model.add_argument(
        "--hidden-size",
        type=positive_int,
        help="LSTM hidden size / Transformer width (default: the model's: 512 LSTM, 256 Transformer)",
    )
    model.add_argument(
        "--embedding-dim", type=positive_int, help="LSTM embedding size (default: the model's: 64)"
    )
    model.add_argument(
        "--dropout",
        type=unit_interval,
        help="model dropout (default: the model's: 0.5 LSTM, 0.1 Transformer)",
    )
    parser.set_defaults(func=_run, scan_parser=parser)


def _config_from_args(args: argparse.Namespace) -> ScanRunConfig:
    """The `ScanRunConfig` of the parsed command line (parser errors for impossible model settings)."""
    if args.model != "lstm" and args.embedding_dim is not None:
        args.scan_parser.error("--embedding-dim applies to --model lstm only")
    budget = settings_from_args(args, BUDGET_FIELDS)
    if all(value is None for value in budget.values()):
        budget["max_steps"] = DEFAULT_STEPS
    training = dataclasses.replace(
        default_training(), **budget, **settings_from_args(args, TRAINING_FIELDS), seed=args.seed
    )
    model_config = _model_overrides(args)
    run = settings_from_args(args, RUN_FIELDS)
    run["output_dir"] = None if args.output_dir is None else str(args.output_dir)
    run["results_dir"] = str(args.results_dir)
    return ScanRunConfig(**run, training=training, model_config=model_config)


def _model_overrides(args: argparse.Namespace) -> dict[str, float | int]:
    """The model config fields the command line sets, checked now rather than after the data is prepared."""
    model_config: dict[str, float | int] = {}
    if args.hidden_size is not None:
        model_config["hidden_size" if args.model == "lstm" else "d_model"] = args.hidden_size
    if args.embedding_dim is not None:
        model_config["embedding_dim"] = args.embedding_dim
    if args.dropout is not None:
        model_config["dropout"] = args.dropout
    try:
        config_class = LSTMSeq2SeqConfig if args.model == "lstm" else TransformerSeq2SeqConfig
        config_class(vocab_size=32, **model_config)
    except ValueError as error:
        args.scan_parser.error(str(error))
    return model_config


def _run(args: argparse.Namespace) -> int:
    config = _config_from_args(args)
    # accelerate logs six lines per checkpoint: keep them for --verbose
    if not getattr(args, "verbose", False):
        for name in ("accelerate.accelerator", "accelerate.checkpointing"):
            logging.getLogger(name).setLevel(logging.WARNING)
    started = time.perf_counter()
    result = run_scan(config)
    if not PartialState().is_main_process:  # initialised by the run; only the main process reports
        return 0
    metrics = result.metrics
    print()
    print(f"SCAN {args.split} | augment {args.augment} | {args.model} | seed {args.seed}")
    if result.already_finished:
        print("  (this run had already finished: nothing was trained or recorded again)")
    print(
        f"  exact-match accuracy on test: {100 * metrics['exact_match']:.2f}% of {int(metrics['num_test'])} commands"
    )
    print(
        f"  training steps: {result.steps}; wall time of this command: {time.perf_counter() - started:.0f} s"
    )
    print(f"  run folder: {result.output_dir} (model/, metrics.json, predictions.txt, log.jsonl)")
    if result.record_path is not None:
        print(f"  record appended to: {result.record_path}")
    return 0
