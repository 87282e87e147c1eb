"""`deltamix diffprune glue|serve|predict|export`: GLUE runs of diff pruning and its baselines, the
multi-task demo, and a finished run's model applied to new examples or exported with a model card.

The options of ``glue`` are generated from the fields of `deltamix.experiments.glue.run.GlueRunConfig`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from deltamix.cli.args import add_line_files, existing_dir, output_dir, positive_int
from deltamix.cli.output import write_lines
from deltamix.cli.settings_args import add_alias, add_settings_options, settings_from_args
from deltamix.core.errors import DeltamixError
from deltamix.core.io import atomic_write_json
from deltamix.core.model_card import ModelCardInfo, render_model_card
from deltamix.core.records import append_record
from deltamix.data.glue import get_task
from deltamix.experiments.glue import run as glue_run
from deltamix.experiments.glue.classify import TaskClassifier, read_examples
from deltamix.experiments.glue.methods import (
    DEFAULT_LR,
    MINILM_DIFF_LR,
    MINILM_FULL_LR,
    MINILM_L0_LAMBDA,
    MINILM_MASK_LR,
    PAPER_DIFF_LR,
    PAPER_L0_LAMBDA,
    PAPER_MASK_LR,
)
from deltamix.experiments.glue.run import RUN_DONE
from deltamix.experiments.glue.serve import serve, serve_records
from deltamix.experiments.glue.settings import GlueRunConfig


def _task(text: str) -> str:
    try:
        return get_task(text).name
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _rate(value: float) -> str:
    """A learning rate or penalty weight as the docs write it: ``1e-4``, ``1.25e-7``."""
    mantissa, exponent = f"{value:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


# The GlueRunConfig fields `diffprune glue` offers, in --help order; options generated from the fields.
GLUE_FIELDS = (
    "task", "method", "data_dir", "model", "seed", "output_dir", "results_dir", "target_sparsity", "epochs",
    "mask_epochs", "lr", "alpha_lr", "head_lr", "mask_lr", "l0_lambda", "l0_target_density", "multiplier_lr",
    "structured_penalty", "batch_size", "eval_batch_size", "max_length", "max_grad_norm", "clip_gates_apart",
    "weight_decay", "warmup_ratio", "max_train_examples", "max_eval_examples", "max_steps", "precision",
    "threads", "logging_steps", "save_steps", "keep_checkpoints", "keep_first_stage", "first_stage_from",
    "select_on", "holdout_size",
)  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``diffprune`` command group with ``glue``, ``serve``, ``predict`` and ``export``."""
    group = subparsers.add_parser("diffprune", help="diff pruning experiments (GLUE) and serving demo")
    commands = group.add_subparsers(dest="diffprune_command", metavar="COMMAND", required=True)
    _add_glue(commands)
    _add_serve(commands)
    _add_predict(commands)
    _add_export(commands)


def _lr_overrides() -> dict[str, dict[str, object]]:
    """The ``--help`` text of the rates whose defaults depend on the method and the base model."""
    return {
        "task": {"type": _task},
        "lr": {
            "help": "the first stage's lr",
            "default_help": f"diff weights {_rate(PAPER_DIFF_LR)}, the paper's ({_rate(MINILM_DIFF_LR)} "
            f"for the embedded MiniLM); full fine-tuning and the non-adaptive first stage "
            f"{_rate(DEFAULT_LR['full'])} ({_rate(MINILM_FULL_LR)} for the embedded MiniLM); "
            + "; ".join(f"{method} {_rate(lr)}" for method, lr in DEFAULT_LR.items() if method != "full"),
        },
        "mask_lr": {
            "help": "fixed-mask stage lr",
            "default_help": f"{_rate(PAPER_MASK_LR)}, the paper's; {_rate(MINILM_MASK_LR)} for the embedded MiniLM",
        },
        "l0_lambda": {
            "help": "L0 penalty weight",
            "default_help": f"{_rate(PAPER_L0_LAMBDA)}, the paper's; {_rate(MINILM_L0_LAMBDA)} for the embedded "
            "MiniLM",
        },
    }


def _add_glue(commands: argparse._SubParsersAction) -> None:
    glue = commands.add_parser(
        "glue",
        help="train one GLUE task with diff pruning or a baseline, write the task file and a record",
        description="One GLUE run: data, the method's stages (Trainer), the stored diff/adapter, "
        "metrics.json, config.json and one line in RESULTS_DIR/glue.jsonl. Defaults: the paper's.",
    )
    add_settings_options(glue, GlueRunConfig, GLUE_FIELDS, overrides=_lr_overrides())
    glue.set_defaults(func=run_glue_command)


def _add_serve(commands: argparse._SubParsersAction) -> None:
    serving = commands.add_parser(
        "serve",
        help="evaluate several tasks' diffs from one base model, switching diffs in a DiffBank",
    )
    serving.add_argument(
        "--runs",
        nargs="+",
        required=True,
        type=existing_dir,
        help="output folders of diffprune runs (required)",
    )
    serving.add_argument("--data-dir", type=existing_dir, help="GLUE TSV folder (default: each run's)")
    serving.add_argument(
        "--eval-batch-size", type=positive_int, default=64, help="examples per batch (default: %(default)s)"
    )
    serving.add_argument(
        "--eval-limit",
        dest="max_eval_examples",
        type=positive_int,
        help="evaluate on the first N dev examples of each task (default: all)",
    )
    add_alias(serving, "--max-eval-examples", "--eval-limit", "max_eval_examples", type=positive_int)
    serving.add_argument(
        "--rounds", type=positive_int, default=2, help="cycles through all tasks (default: %(default)s)"
    )
    serving.add_argument("--output", type=Path, help="write the results as JSON here (default: not written)")
    serving.add_argument(
        "--results-dir",
        type=output_dir,
        default=Path("results"),
        help="folder of glue-serve.jsonl, which gets one record per task (default: %(default)s)",
    )
    serving.set_defaults(func=run_serve_command)


def _add_predict(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict",
        help="label (or score, STS-B) new sentences or sentence pairs with a finished GLUE run's model",
        description="Apply a finished `deltamix diffprune glue` run (any method) to new examples: one per "
        "line of --input, the task's text columns separated by a tab (one column for CoLA and SST-2, two "
        "for the pair tasks), no header. Writes one label name (or STS-B score) per line to --output "
        "(atomically) or standard output.",
    )
    predict.add_argument("run", type=existing_dir, help="the --output-dir of a finished GLUE run")
    add_line_files(predict, inputs="one example per line", outputs="labels")
    predict.add_argument(
        "--batch-size", type=positive_int, default=64, help="examples per batch (default: %(default)s)"
    )
    predict.set_defaults(func=run_predict_command)


def _add_export(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export",
        help="save a finished GLUE run's model as a standalone Hugging Face model folder",
        description="Write the model a finished `deltamix diffprune glue` run was scored with (base model "
        "plus its diff and head, or its PEFT adapter merged, or its trained tensors) as an ordinary "
        "transformers folder: model.safetensors, config.json with the label names, the tokenizer, "
        "deltamix.json naming the run, and a model card (README.md: base model, method, sparsity, dev "
        "metrics, the command that made it, library versions; the Hub's front matter). AutoModelForSequenceClassification.from_pretrained and "
        "pipeline('text-classification') load it without deltamix. The folder is written atomically and "
        "must not exist yet (or be empty).",
    )
    export.add_argument("run", type=existing_dir, help="the --output-dir of a finished GLUE run")
    export.add_argument("--output-dir", type=Path, required=True, help="the new model folder (required)")
    export.set_defaults(func=run_export_command)


def run_glue_command(args: argparse.Namespace) -> int:
    settings = settings_from_args(args, GLUE_FIELDS)
    for name in ("data_dir", "output_dir", "results_dir", "first_stage_from"):  # the config holds text
        settings[name] = None if settings[name] is None else str(settings[name])
    try:
        config = GlueRunConfig(**settings)
    except ValueError as error:  # settings that conflict only together, e.g. a flag of another method
        raise DeltamixError(f"diffprune glue: {error}") from None
    record = glue_run.run_glue(config)  # looked up at call time, so tests can stand in for it
    if record:  # only the main process of a multi-GPU run has one
        metrics = ", ".join(f"{k} {100 * v:.2f}" for k, v in record["metrics"].items())
        print(
            f"{record['task']} {record['method']} seed {record['seed']}: {metrics}; stored "
            f"{100 * record['stored_fraction']:.3f}% ({record['file_bytes']:,} bytes) in {config.output_dir}"
        )
    return 0


def run_serve_command(args: argparse.Namespace) -> int:
    results = serve(
        args.runs,
        data_dir=args.data_dir,
        eval_batch_size=args.eval_batch_size,
        max_eval_examples=args.max_eval_examples,
        rounds=args.rounds,
    )
    records = serve_records(results)
    for record in records:
        metrics = ", ".join(f"{k} {100 * v:.2f}" for k, v in record["metrics"].items())
        if record["matches"]:
            verdict = "same as its run"
        elif record["matches"] is None:
            verdict = "not compared: its run scored another set of dev examples"
        else:
            verdict = f"DIFFERS from its run by {record['max_abs_diff']:.2e}"
        print(f"{record['task']} ({record['method']}, seed {record['seed']}): {metrics} ({verdict})")
    if args.output is not None:
        atomic_write_json(args.output, results)
    path = None
    for record in records:
        path = append_record(record, args.results_dir)
    first = records[0]
    print(
        f"{len(records)} tasks from one base model ({first['base_params']:,} parameters): "
        f"{results['stored_nnz']:,} stored diff values in all; {first['switches']} switches, median "
        f"{first['switch_ms_median']:.1f} ms; records -> {path}"
    )
    return 0 if results["all_match"] else 1


def run_predict_command(args: argparse.Namespace) -> int:
    classifier = TaskClassifier.load(args.run, batch_size=args.batch_size)
    examples = read_examples(args.input, classifier.task)
    started = time.perf_counter()
    outputs = classifier.predict(examples)
    seconds = time.perf_counter() - started
    write_lines(
        [f"{value:.4f}" if isinstance(value, float) else value for value in outputs], args.output, "labels"
    )
    where = f" -> {args.output}" if args.output is not None else ""
    print(f"{classifier.task.name}: {len(examples)} examples in {seconds:.1f} s{where}", file=sys.stderr)
    return 0


def run_export_command(args: argparse.Namespace) -> int:
    classifier = TaskClassifier.load(args.run, device="cpu")
    record = json.loads((args.run / RUN_DONE).read_text(encoding="utf-8"))["record"]
    metrics_path = args.run / "metrics.json"  # the dev metrics of the run
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else None
    card = ModelCardInfo.from_record(record, **({"metrics": metrics} if metrics else {}))
    folder = classifier.save_pretrained(args.output_dir, model_card=render_model_card(card))
    size = sum(path.stat().st_size for path in folder.iterdir()) / 1e6
    print(
        f"{classifier.task.name} ({classifier.source['method']}): a transformers model folder of {size:.1f} MB "
        f"-> {folder}\n  load it with AutoModelForSequenceClassification.from_pretrained({str(folder)!r})"
    )
    return 0
