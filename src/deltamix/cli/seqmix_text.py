"""`deltamix seqmix translate|parse|train`: SeqMix on translation, GeoQuery and any source/target files.

The options are generated from the fields of `deltamix.experiments.text.settings.TextRunConfig`."""

from __future__ import annotations

import argparse

from accelerate import PartialState

from deltamix.cli.settings_args import add_settings_options, settings_from_args
from deltamix.core.errors import DeltamixError
from deltamix.experiments.text import run as text_run
from deltamix.experiments.text.settings import TextRunConfig

# The TextRunConfig fields every command offers, by --help group; their options are generated from the
# fields (deltamix.cli.settings_args). Unset ones take `TASK_DEFAULTS` of the metric (translation-like
# BLEU runs or parsing-like exact-match runs).
COMMON_GROUPS = {
    "augmentation (SeqMix family)": (
        "augment", "alpha", "partner", "partner_extent", "word_dropout_p", "switchout_tau", "label_smoothing",
    ),
    "model": ("model", "model_size", "dropout"),
    "training budget": (
        "epochs", "max_steps", "batch_size", "lr", "warmup_steps", "lr_schedule", "patience", "train_limit",
        "eval_limit", "max_tokens", "precision", "threads",
    ),
    "decoding and checkpoints": ("beam_size", "length_penalty", "average_last", "max_output_length"),
    "outputs": ("seed", "output_dir", "results_dir"),
}  # fmt: skip
COMMON_FIELDS = tuple(name for names in COMMON_GROUPS.values() for name in names)
# Each command's own fields, with the metadata that differs there.
COMMAND_FIELDS = {
    "translate": ("dataset", "data_dir", "hub_config", "source_lang", "target_lang", "vocab_size"),
    "parse": ("geo_split", "geo_form", "data_dir"),
    "train": ("train_file", "valid_file", "test_file", "columns", "metric", "task_name", "vocab_size"),
}
_OVERRIDES = {
    "parse": {"data_dir": {"help": "folder holding geography-logic.json / geography.json", "required": True}},
    "train": {
        "train_file": {"required": True},
        "valid_file": {"required": True},
        "test_file": {"required": True},
        "vocab_size": {"help": "BPE vocabulary size for --metric bleu"},
    },
}


def _add_options(parser: argparse.ArgumentParser, kind: str) -> None:
    """The command's own options, then the shared ones by group."""
    add_settings_options(parser, TextRunConfig, COMMAND_FIELDS[kind], overrides=_OVERRIDES.get(kind))
    for title, names in COMMON_GROUPS.items():
        add_settings_options(parser.add_argument_group(title), TextRunConfig, names)
    parser.set_defaults(func=run_command, kind=kind)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``translate``, ``parse`` and ``train`` to the ``deltamix seqmix`` group."""
    translate = subparsers.add_parser(
        "translate",
        help="translation (Multi30k, IWSLT'14 or any Hub/local pair) with BLEU",
        description="Train a seq2seq model with a SeqMix-family augmentation on a translation data set "
        "and report test BLEU (sacrebleu, detokenized). Record: results/translation.jsonl.",
    )
    _add_options(translate, "translate")
    parse = subparsers.add_parser(
        "parse",
        help="GeoQuery semantic parsing with exact match",
        description="Train on GeoQuery (question or query split, logical forms or SQL) and report test "
        "exact match. Record: results/parsing.jsonl.",
    )
    _add_options(parse, "parse")
    train = subparsers.add_parser(
        "train",
        help="any source/target data from TSV or JSONL files",
        description="Train on your own pairs: .tsv (source<TAB>target, or the columns named by --columns) "
        'or .jsonl ({"source", "target"}) files, optionally .gz. Scored by exact match (word vocabulary) '
        "unless --metric bleu (subword vocabulary).",
    )
    _add_options(train, "train")


def _finish(result: text_run.TextRunResult) -> int:
    # PartialState was initialised by the run; in a multi-process job only the main process reports.
    if not PartialState().is_main_process:
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


def run_command(args: argparse.Namespace) -> int:
    """Build the run config of the command from its options (a refused combination is a clean error)
    and run it."""
    names = COMMAND_FIELDS[args.kind] + COMMON_FIELDS
    try:
        config = TextRunConfig(kind=args.kind, **settings_from_args(args, names))
    except ValueError as error:  # a combination of flags, e.g. --lr-schedule inverse-sqrt without warm-up
        raise DeltamixError(f"seqmix {args.kind}: {error}") from error
    # Looked up on its module when called, so that a stand-in patched there is the one run.
    return _finish(text_run.run_text(config))
