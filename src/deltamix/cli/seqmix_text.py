"""`deltamix seqmix translate|parse|train`: SeqMix on translation, GeoQuery and any source/target files."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from deltamix.cli.args import (
    existing_file,
    non_negative_float,
    non_negative_int,
    output_dir,
    positive_float,
    positive_int,
    probability,
    unit_interval,
)

if TYPE_CHECKING:
    from deltamix.seqmix.text_run import TextRunResult

# Copies of the choices of deltamix.seqmix.config, .lr_schedule and deltamix.precision, not imported here so that
# `deltamix --help` stays fast; tests/cli/test_cli_choice_copies.py checks that they agree.
AUGMENTATIONS = ("none", "seqmix", "seqmix-hard", "word-dropout", "switchout")
PARTNERS = ("shuffle", "length")
PARTNER_EXTENTS = ("union", "main")
DEFAULT_PARTNER_EXTENT = "union"
LR_SCHEDULES = ("constant", "inverse-sqrt")
DEFAULT_LR_SCHEDULE = "constant"
PRECISIONS = ("auto", "bf16", "fp32")
DEFAULT_PRECISION = "auto"


def _add_common(parser: argparse.ArgumentParser) -> None:
    """Flags shared by the three commands: augmentation, model, budget, decoding, outputs.

    Flags left unset take the defaults of `deltamix.seqmix.text_run.TASK_DEFAULTS` for the metric
    (translation-like BLEU runs or parsing-like exact-match runs)."""
    aug = parser.add_argument_group("augmentation (SeqMix family)")
    aug.add_argument(
        "--augment", choices=AUGMENTATIONS, default="seqmix", help="family member (default: seqmix)"
    )
    aug.add_argument(
        "--alpha", type=positive_float, default=0.1, help="lambda ~ Beta(alpha, alpha) (default: 0.1)"
    )
    aug.add_argument(
        "--partner", choices=PARTNERS, default="shuffle", help="partner choice (default: shuffle)"
    )
    aug.add_argument(
        "--partner-extent",
        choices=PARTNER_EXTENTS,
        default=DEFAULT_PARTNER_EXTENT,
        help="SeqMix positions a longer partner covers: union (both sequences', default) or main (the main "
        "example's only, as the authors' fairseq code)",
    )
    aug.add_argument(
        "--word-dropout-p", type=probability, default=0.1, help="word dropout probability (default: 0.1)"
    )
    aug.add_argument(
        "--switchout-tau", type=non_negative_float, default=1.0, help="SwitchOut temperature (default: 1.0)"
    )
    aug.add_argument(
        "--label-smoothing",
        type=unit_interval,
        default=None,
        help="label smoothing (default: 0.1 for BLEU runs, 0 for exact-match runs)",
    )

    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        default=None,
        help="'transformer', 'lstm', or a Hugging Face encoder-decoder id or local path (T5, BART, Marian); "
        "default: transformer for BLEU runs, lstm (GECA's model) for exact-match runs",
    )
    model.add_argument(
        "--model-size",
        choices=("small", "iwslt"),
        default="small",
        help="Transformer size: 'small' (trains on 2 CPU cores) or 'iwslt' (the paper's transformer_iwslt_de_en, "
        "for a GPU); default: small",
    )

    model.add_argument(
        "--dropout",
        type=unit_interval,
        default=None,
        help="model dropout (default: the model's: 0.2 for the small Transformer, 0.3 iwslt, 0.5 LSTM)",
    )

    budget = parser.add_argument_group("training budget")
    budget.add_argument(
        "--epochs",
        type=positive_float,
        default=None,
        help="training epochs (default: 15 BLEU, 100 exact match)",
    )
    budget.add_argument("--max-steps", type=positive_int, default=None, help="stop after this many updates")
    budget.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="pairs per batch (default: 64 BLEU, 32 exact match)",
    )
    budget.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help="peak learning rate (default: 5e-4 BLEU, 1e-3 exact match)",
    )
    budget.add_argument(
        "--warmup-steps",
        type=non_negative_int,
        default=None,
        help="linear warm-up steps (default: 1000 BLEU, 0)",
    )
    budget.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default=DEFAULT_LR_SCHEDULE,
        help="learning rate after the warm-up: constant, or inverse-sqrt (peak * sqrt(warmup / update), "
        "the authors' fairseq --lr-scheduler inverse_sqrt; needs --warmup-steps >= 1); default: constant",
    )
    budget.add_argument(
        "--patience",
        type=positive_int,
        default=None,
        help="early stopping: stop when the validation loss has not improved for N epochs, --epochs being "
        "the cap (default: train every epoch)",
    )
    budget.add_argument(
        "--train-limit", type=positive_int, default=None, help="use only the first N training pairs"
    )
    budget.add_argument(
        "--eval-limit",
        type=positive_int,
        default=None,
        help="score only the first N validation and test pairs",
    )
    budget.add_argument(
        "--max-tokens",
        type=positive_int,
        default=None,
        help="token-budget batches of at most this many padded tokens, length-bucketed (fairseq's "
        "--max-tokens), in place of --batch-size pairs (default: sentence batches)",
    )
    budget.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULT_PRECISION,
        help="bf16 autocast or fp32; auto = bf16 where the CPU (avx512_bf16 / amx_bf16) or GPU computes it "
        f"natively, else fp32 (default: {DEFAULT_PRECISION})",
    )
    budget.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: $OMP_NUM_THREADS if set, else all the cores this process may use)",
    )

    decode = parser.add_argument_group("decoding and checkpoints")
    decode.add_argument(
        "--beam-size",
        type=positive_int,
        default=None,
        help="beam size (default: 4 BLEU as the authors, 1 exact match)",
    )
    decode.add_argument(
        "--length-penalty",
        type=non_negative_float,
        default=None,
        help="beam score / length ** penalty (default: 0.6 BLEU as the authors, 1.0)",
    )
    decode.add_argument(
        "--average-last",
        type=non_negative_int,
        default=None,
        help="average the weights of the last N epoch checkpoints before testing (0: use the last; "
        "default: 5 for BLEU runs as the authors' recipe, 0 for exact-match runs)",
    )

    decode.add_argument(
        "--max-output-length",
        type=positive_int,
        default=None,
        help="most tokens decoded per example (default: 1.2 x the longest training target + 10)",
    )

    out = parser.add_argument_group("outputs")
    out.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    out.add_argument(
        "--output-dir",
        type=output_dir,
        default=None,
        help="run folder (default: runs/<task>/<augment>-s<seed>)",
    )
    out.add_argument(
        "--results-dir",
        type=output_dir,
        default="results",
        help="where the results record goes (default: results)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``translate``, ``parse`` and ``train`` to the ``deltamix seqmix`` group."""
    translate = subparsers.add_parser(
        "translate",
        help="translation (Multi30k, IWSLT'14 or any Hub/local pair) with BLEU",
        description="Train a seq2seq model with a SeqMix-family augmentation on a translation data set "
        "and report test BLEU (sacrebleu, detokenized). Record: results/translation.jsonl.",
    )
    translate.add_argument(
        "--dataset",
        default="multi30k",
        help="'multi30k', 'iwslt14', or any Hugging Face Hub translation data set id (default: multi30k)",
    )
    translate.add_argument(
        "--data-dir",
        default=None,
        help="local data: the Multi30k folder (raw/*.gz) for multi30k, otherwise a folder of "
        "{train,valid,test}.<lang>[.gz] files; without it the data set comes from the Hub",
    )
    translate.add_argument("--hub-config", default=None, help="the Hub data set's configuration name")
    translate.add_argument("--source-lang", default="de", help="source language code (default: de)")
    translate.add_argument("--target-lang", default="en", help="target language code (default: en)")
    translate.add_argument(
        "--vocab-size", type=positive_int, default=8000, help="joint BPE vocabulary size (default: 8000)"
    )
    _add_common(translate)
    translate.set_defaults(func=run_translate)

    parse = subparsers.add_parser(
        "parse",
        help="GeoQuery semantic parsing with exact match",
        description="Train on GeoQuery (question or query split, logical forms or SQL) and report test "
        "exact match. Record: results/parsing.jsonl.",
    )
    parse.add_argument("--split", choices=("question", "query"), default="query", help="default: query")
    parse.add_argument(
        "--form", choices=("logic", "sql"), default="logic", help="meaning representation (default: logic)"
    )
    parse.add_argument(
        "--data-dir", required=True, help="folder holding geography-logic.json / geography.json"
    )
    _add_common(parse)
    parse.set_defaults(func=run_parse)

    train = subparsers.add_parser(
        "train",
        help="any source/target data from TSV or JSONL files",
        description='Train on your own pairs: .tsv (source<TAB>target) or .jsonl ({"source", "target"}) '
        "files, optionally .gz. Scored by BLEU (subword vocabulary) or exact match (word vocabulary).",
    )
    train.add_argument("--train", type=existing_file, required=True, help="training pairs file")
    train.add_argument("--valid", type=existing_file, required=True, help="validation pairs file")
    train.add_argument("--test", type=existing_file, required=True, help="test pairs file")
    train.add_argument(
        "--metric",
        choices=("bleu", "exact_match"),
        default="bleu",
        help="bleu: subword (BPE) vocabulary, record in translation.jsonl; exact_match: word vocabulary, "
        "record in parsing.jsonl (default: bleu)",
    )
    train.add_argument(
        "--task-name", default=None, help="task label in the record (default: the train file's name)"
    )
    train.add_argument(
        "--vocab-size",
        type=positive_int,
        default=8000,
        help="BPE vocabulary size for --metric bleu (default: 8000)",
    )
    _add_common(train)
    train.set_defaults(func=run_train)


def _common_config(args: argparse.Namespace) -> dict:
    return {
        "augment": args.augment,
        "alpha": args.alpha,
        "partner": args.partner,
        "partner_extent": args.partner_extent,
        "word_dropout_p": args.word_dropout_p,
        "switchout_tau": args.switchout_tau,
        "label_smoothing": args.label_smoothing,
        "model": args.model,
        "model_size": args.model_size,
        "dropout": args.dropout,
        "epochs": args.epochs,
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "warmup_steps": args.warmup_steps,
        "lr_schedule": args.lr_schedule,
        "patience": args.patience,
        "train_limit": args.train_limit,
        "eval_limit": args.eval_limit,
        "threads": args.threads,
        "max_tokens": args.max_tokens,
        "precision": args.precision,
        "beam_size": args.beam_size,
        "length_penalty": args.length_penalty,
        "average_last": args.average_last,
        "max_output_length": args.max_output_length,
        "seed": args.seed,
        "output_dir": args.output_dir,
        "results_dir": args.results_dir,
    }


def _finish(result: TextRunResult) -> int:
    from accelerate import PartialState  # initialised by the run

    if not PartialState().is_main_process:  # in a multi-process job only the main process reports
        return 0
    metrics = result.metrics
    metric = "bleu" if "bleu" in metrics else "exact_match"
    value = metrics[metric] * (100 if metric == "exact_match" else 1)
    if result.already_finished:
        print(
            f"{result.output_dir} already holds a finished run (not recorded again): test {metric} = {value:.2f}"
        )
    else:
        print(
            f"test {metric} = {value:.2f} after {metrics['epochs']:.1f} epochs "
            f"({metrics['seconds_per_epoch']:.1f} s/epoch); run folder {result.output_dir}"
        )
    return 0


def _run(args: argparse.Namespace, kind: str, **fields: object) -> int:
    """Build the run config of ``kind`` from the flags (a refused combination is a clean error) and run it."""
    from deltamix.errors import DeltamixError
    from deltamix.seqmix.text_run import TextRunConfig, run_text

    try:
        config = TextRunConfig(kind=kind, **fields, **_common_config(args))
    except ValueError as error:  # a combination of flags, e.g. --lr-schedule inverse-sqrt without warm-up
        raise DeltamixError(f"seqmix {kind}: {error}") from error
    return _finish(run_text(config))


def run_translate(args: argparse.Namespace) -> int:
    return _run(
        args,
        "translate",
        dataset=args.dataset,
        data_dir=args.data_dir,
        hub_config=args.hub_config,
        source_lang=args.source_lang,
        target_lang=args.target_lang,
        vocab_size=args.vocab_size,
    )


def run_parse(args: argparse.Namespace) -> int:
    return _run(args, "parse", data_dir=args.data_dir, geo_split=args.split, geo_form=args.form)


def run_train(args: argparse.Namespace) -> int:
    return _run(
        args,
        "train",
        train_file=args.train,
        valid_file=args.valid,
        test_file=args.test,
        metric=args.metric,
        task_name=args.task_name,
        vocab_size=args.vocab_size,
    )
