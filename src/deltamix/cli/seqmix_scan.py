"""`deltamix seqmix scan`: train and score a SCAN model with SeqMix, its family or GECA (offline)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time

from deltamix.cli.args import (
    non_negative_int,
    open_unit_interval,
    output_dir,
    positive_float,
    positive_int,
    unit_interval,
)
from deltamix.models.lstm import LSTMSeq2SeqConfig
from deltamix.models.transformer import TransformerSeq2SeqConfig
from deltamix.precision import PRECISIONS
from deltamix.seqmix.config import DEFAULT_PARTNER_EXTENT, PARTNER_EXTENTS
from deltamix.seqmix.scan_run import (
    AUGMENTATIONS,
    DEFAULT_STEPS,
    MODELS,
    SPLITS,
    ScanRunConfig,
    default_training,
    run_scan,
)


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
            "use --epochs/--steps/--minutes for that. Re-running with the same --output-dir resumes an "
            "interrupted run; a finished run is not trained again."
        ),
    )
    parser.add_argument(
        "--split", choices=SPLITS, default="addprim_jump", help="SCAN split (default: %(default)s)"
    )
    parser.add_argument(
        "--augment", choices=AUGMENTATIONS, default="seqmix", help="augmentation (default: %(default)s)"
    )
    parser.add_argument("--model", choices=MODELS, default="lstm", help="model (default: %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--output-dir",
        type=output_dir,
        help="run folder (default: runs/scan/SPLIT/AUGMENT[-main]-MODEL-seedS)",
    )
    parser.add_argument(
        "--results-dir", type=output_dir, default="results", help="records folder (default: %(default)s)"
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=positive_int, help=f"training steps (default: {DEFAULT_STEPS})")
    budget.add_argument("--epochs", type=positive_float, help="training epochs")
    budget.add_argument("--minutes", type=positive_float, help="training time budget in minutes")
    parser.add_argument(
        "--batch-size", type=positive_int, default=training.batch_size, help="default: %(default)s"
    )
    parser.add_argument(
        "--lr", type=positive_float, default=training.learning_rate, help="default: %(default)s"
    )
    parser.add_argument(
        "--label-smoothing", type=unit_interval, default=training.label_smoothing, help="default: %(default)s"
    )
    parser.add_argument(
        "--seqmix-alpha", type=positive_float, default=0.1, help="Beta(a, a) of SeqMix (default: %(default)s)"
    )
    parser.add_argument(
        "--partner-extent",
        choices=PARTNER_EXTENTS,
        default=DEFAULT_PARTNER_EXTENT,
        help="SeqMix positions a longer partner covers: union (both sequences', default) or main (the main "
        "example's only, as the authors' fairseq code)",
    )
    parser.add_argument(
        "--geca-ratio",
        type=open_unit_interval,
        default=0.3,
        help="share of training draws that are GECA pairs, as GECA's aug_ratio (default: %(default)s)",
    )
    parser.add_argument("--beam-size", type=positive_int, default=1, help="1 = greedy (default: %(default)s)")
    parser.add_argument(
        "--hidden-size", type=positive_int, help="LSTM hidden size (512) / Transformer width (256)"
    )
    parser.add_argument("--embedding-dim", type=positive_int, help="LSTM embedding size (default 64)")
    parser.add_argument("--dropout", type=unit_interval, help="model dropout (LSTM 0.5, Transformer 0.1)")
    parser.add_argument(
        "--checkpoint-interval",
        type=positive_int,
        default=training.checkpoint_interval,
        help="default: %(default)s",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="torch threads (default: $OMP_NUM_THREADS if set, else all the cores this process may use)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=training.precision,
        help="bf16 autocast or fp32; auto = bf16 where the CPU (avx512_bf16 / amx_bf16) or GPU computes it "
        "natively, else fp32 (default: %(default)s)",
    )
    parser.add_argument(
        "--max-tokens",
        type=positive_int,
        help="token-budget batches of at most this many padded tokens, length-bucketed (fairseq's "
        "--max-tokens), in place of --batch-size examples (default: sentence batches)",
    )
    parser.add_argument(
        "--train-limit", type=positive_int, help="train on the first N pairs only (quick checks)"
    )
    parser.add_argument(
        "--test-limit", type=positive_int, help="score the first N test pairs only (quick checks)"
    )
    parser.set_defaults(func=_run, scan_parser=parser)


def _run(args: argparse.Namespace) -> int:
    if args.model != "lstm" and args.embedding_dim is not None:
        args.scan_parser.error("--embedding-dim applies to --model lstm only")
    steps = args.steps
    if steps is None and args.epochs is None and args.minutes is None:
        steps = DEFAULT_STEPS
    training = dataclasses.replace(
        default_training(),
        max_steps=steps,
        epochs=args.epochs,
        max_minutes=args.minutes,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        precision=args.precision,
        learning_rate=args.lr,
        label_smoothing=args.label_smoothing,
        beam_size=args.beam_size,
        checkpoint_interval=args.checkpoint_interval,
        seed=args.seed,
    )
    model_config = {}
    if args.hidden_size is not None:
        model_config["hidden_size" if args.model == "lstm" else "d_model"] = args.hidden_size
    if args.embedding_dim is not None:
        model_config["embedding_dim"] = args.embedding_dim
    if args.dropout is not None:
        model_config["dropout"] = args.dropout
    try:  # reject impossible model sizes now, not after the data is prepared
        config_class = LSTMSeq2SeqConfig if args.model == "lstm" else TransformerSeq2SeqConfig
        config_class(vocab_size=32, **model_config)
    except ValueError as error:
        args.scan_parser.error(str(error))
    config = ScanRunConfig(
        split=args.split,
        augment=args.augment,
        model=args.model,
        seed=args.seed,
        output_dir=None if args.output_dir is None else str(args.output_dir),
        results_dir=str(args.results_dir),
        training=training,
        seqmix_alpha=args.seqmix_alpha,
        partner_extent=args.partner_extent,
        geca_ratio=args.geca_ratio,
        model_config=model_config,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        num_threads=args.threads,
    )
    if not getattr(
        args, "verbose", False
    ):  # accelerate logs six lines per checkpoint: keep them for --verbose
        for name in ("accelerate.accelerator", "accelerate.checkpointing"):
            logging.getLogger(name).setLevel(logging.WARNING)
    started = time.perf_counter()
    result = run_scan(config)
    from accelerate import PartialState  # initialised by the run

    if not PartialState().is_main_process:  # in a multi-process job only the main process reports
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
