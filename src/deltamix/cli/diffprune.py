"""`deltamix diffprune glue|serve|predict`: GLUE runs of diff pruning and its baselines, the multi-task
demo, and a finished run's model applied to new examples."""

from __future__ import annotations

import argparse
from pathlib import Path

from deltamix.cli.args import (
    existing_dir,
    fraction,
    input_file,
    non_negative_float,
    non_negative_int,
    open_unit_interval,
    output_dir,
    positive_float,
    positive_int,
    unit_interval,
)
from deltamix.diffprune.config import STRUCTURED_PENALTIES
from deltamix.precision import DEFAULT_PRECISION, PRECISIONS


def _task(text: str) -> str:
    from deltamix.data.glue import get_task

    try:
        return get_task(text).name
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _rate(value: float) -> str:
    """A learning rate or penalty weight as the docs write it: ``1e-4``, ``1.25e-7``."""
    mantissa, exponent = f"{value:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``diffprune`` command group with ``glue``, ``serve`` and ``predict``."""
    from deltamix.glue.methods import (
        DEFAULT_LR,
        METHODS,
        MINILM_DIFF_LR,
        MINILM_FULL_LR,
        MINILM_L0_LAMBDA,
        MINILM_MASK_LR,
        PAPER_DIFF_LR,
        PAPER_L0_LAMBDA,
        PAPER_MASK_LR,
    )

    group = subparsers.add_parser("diffprune", help="diff pruning experiments (GLUE) and serving demo")
    commands = group.add_subparsers(dest="diffprune_command", metavar="COMMAND", required=True)

    glue = commands.add_parser(
        "glue",
        help="train one GLUE task with diff pruning or a baseline, write the task file and a record",
        description="One GLUE run: data, the method's stages (Trainer), the stored diff/adapter, "
        "metrics.json, config.json and one line in RESULTS_DIR/glue.jsonl. Defaults: the paper's.",
    )
    glue.add_argument(
        "--task", required=True, type=_task, help="cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli"
    )
    glue.add_argument("--method", default="diffprune", choices=METHODS, help="default: diffprune")
    glue.add_argument(
        "--data-dir", type=existing_dir, help="GLUE TSV folder (DIR/RTE/train.tsv, ...); default: Hub"
    )
    glue.add_argument("--model", help="HF model id or path; default: the embedded all-MiniLM-L6-v2")
    glue.add_argument("--seed", type=non_negative_int, default=0)
    glue.add_argument("--output-dir", type=output_dir, help="default: runs/glue/TASK/METHOD-tSPARSITY/seedS")
    glue.add_argument("--results-dir", type=output_dir, default=Path("results"), help="folder of glue.jsonl")
    glue.add_argument(
        "--target-sparsity", type=fraction, default=0.005, help="kept share of the diff (0.005)"
    )
    glue.add_argument("--epochs", type=positive_int, default=3, help="baselines / L0 stage epochs (3)")
    glue.add_argument(
        "--mask-epochs", type=positive_int, help="fixed-mask epochs (default 5 small tasks, else 3)"
    )
    glue.add_argument(
        "--lr",
        type=positive_float,
        help=f"the first stage's lr. Default: diff weights {_rate(PAPER_DIFF_LR)}, the paper's ({_rate(MINILM_DIFF_LR)} "
        f"for the embedded MiniLM); full fine-tuning and the non-adaptive first stage {_rate(DEFAULT_LR['full'])} "
        f"({_rate(MINILM_FULL_LR)} for the embedded MiniLM); "
        + "; ".join(f"{method} {_rate(lr)}" for method, lr in DEFAULT_LR.items() if method != "full"),
    )
    glue.add_argument("--alpha-lr", type=positive_float, default=0.1, help="gate lr (0.1, constant)")
    glue.add_argument("--head-lr", type=positive_float, help="diff pruning head lr (default: --lr)")
    glue.add_argument(
        "--mask-lr",
        type=positive_float,
        help=f"fixed-mask stage lr (default {_rate(PAPER_MASK_LR)}, the paper's; {_rate(MINILM_MASK_LR)} for the "
        "embedded MiniLM)",
    )
    glue.add_argument(
        "--l0-lambda",
        type=non_negative_float,
        help=f"L0 penalty weight (default {_rate(PAPER_L0_LAMBDA)}, the paper's; {_rate(MINILM_L0_LAMBDA)} for the "
        "embedded MiniLM)",
    )
    glue.add_argument(
        "--l0-target-density",
        type=open_unit_interval,
        help="diffprune / diffprune-structured: hold the L0 stage's expected share of non-zero entries at "
        "this value (e.g. 0.02) with learned Lagrange multipliers instead of the fixed --l0-lambda (beyond "
        "the paper; see docs/diffprune.md)",
    )
    glue.add_argument(
        "--multiplier-lr",
        type=positive_float,
        default=0.05,
        help="learning rate of the Lagrange multipliers of --l0-target-density (0.05)",
    )
    glue.add_argument(
        "--structured-penalty",
        choices=STRUCTURED_PENALTIES,
        default="sum",
        help="diffprune-structured's expected L0: 'sum' of entry and group gate probabilities (the "
        "authors' code, default) or the paper equation's 'product' (see docs/diffprune.md)",
    )
    glue.add_argument("--batch-size", type=positive_int, default=8)
    glue.add_argument("--eval-batch-size", type=positive_int, default=64)
    glue.add_argument("--max-length", type=positive_int, default=128)
    glue.add_argument("--max-grad-norm", type=non_negative_float, default=1.0)
    glue.add_argument(
        "--clip-gates-apart",
        action="store_true",
        help="L0 stage: clip the gates' gradients apart from w and the head, each to --max-grad-norm, as "
        "the authors' code does (default: one clip over all)",
    )
    glue.add_argument("--weight-decay", type=non_negative_float, default=0.0)
    glue.add_argument("--warmup-ratio", type=unit_interval, default=0.0)
    glue.add_argument("--max-train-examples", type=positive_int, help="seeded random training subset")
    glue.add_argument("--max-eval-examples", type=positive_int, help="first N dev examples only")
    glue.add_argument("--max-steps", type=positive_int, help="optimizer steps per stage (smoke tests)")
    glue.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULT_PRECISION,
        help="bf16 (Trainer's bf16 autocast) or fp32; auto = bf16 where the hardware computes it natively and "
        "the method's bf16 parity on GLUE is shown, else fp32; diff pruning trains in fp32 "
        f"(default: {DEFAULT_PRECISION})",
    )
    glue.add_argument(
        "--threads",
        type=positive_int,
        help="torch CPU threads (default: $OMP_NUM_THREADS if set, else all the cores this process may use)",
    )
    glue.add_argument("--logging-steps", type=positive_int, default=50)
    glue.add_argument(
        "--save-steps",
        type=positive_int,
        help="also checkpoint every N optimizer steps inside an epoch, so that a long stage (SST-2, a "
        "preemptible machine) resumes mid-epoch after an interruption (default: at each epoch's end)",
    )
    glue.add_argument("--keep-checkpoints", action="store_true", help="keep stage checkpoints after success")
    glue.add_argument(
        "--keep-first-stage",
        action="store_true",
        help="diff pruning: keep the first stage's final state (~8 bytes per base parameter) so that runs "
        "at other --target-sparsity values can start from it (--first-stage-from)",
    )
    glue.add_argument(
        "--first-stage-from",
        type=existing_dir,
        help="diff pruning: a run folder kept with --keep-first-stage, of the same settings but the target "
        "sparsity and fixed-mask ones; its first stage is taken instead of trained (a sparsity sweep "
        "trains it once)",
    )
    glue.set_defaults(func=run_glue_command)

    serve = commands.add_parser(
        "serve",
        help="evaluate several tasks' diffs from one base model, switching diffs in a DiffBank",
    )
    serve.add_argument(
        "--runs", nargs="+", required=True, type=existing_dir, help="output folders of diffprune runs"
    )
    serve.add_argument("--data-dir", type=existing_dir, help="GLUE TSV folder; default: each run's")
    serve.add_argument("--eval-batch-size", type=positive_int, default=64)
    serve.add_argument("--max-eval-examples", type=positive_int)
    serve.add_argument("--rounds", type=positive_int, default=2, help="cycles through all tasks (2)")
    serve.add_argument("--output", type=Path, help="write the results as JSON here")
    serve.add_argument(
        "--results-dir",
        type=output_dir,
        default=Path("results"),
        help="folder of glue-serve.jsonl, which gets one record per task",
    )
    serve.set_defaults(func=run_serve_command)

    predict = commands.add_parser(
        "predict",
        help="label (or score, STS-B) new sentences or sentence pairs with a finished GLUE run's model",
        description="Apply a finished `deltamix diffprune glue` run (any method) to new examples: one per "
        "line of --input, the task's text columns separated by a tab (one column for CoLA and SST-2, two "
        "for the pair tasks), no header. Writes one label name (or STS-B score) per line to --output "
        "(atomically) or standard output.",
    )
    predict.add_argument("run", type=existing_dir, help="the --output-dir of a finished GLUE run")
    predict.add_argument(
        "--input",
        type=input_file,
        default="-",
        help="UTF-8 text file, one example per line; '-' reads standard input (default)",
    )
    predict.add_argument("--output", type=Path, help="file for the labels (default: standard output)")
    predict.add_argument("--batch-size", type=positive_int, default=64, help="examples per batch (64)")
    predict.set_defaults(func=run_predict_command)

    export = commands.add_parser(
        "export",
        help="save a finished GLUE run's model as a standalone Hugging Face model folder",
        description="Write the model a finished `deltamix diffprune glue` run was scored with (base model "
        "plus its diff and head, or its PEFT adapter merged, or its trained tensors) as an ordinary "
        "transformers folder: model.safetensors, config.json with the label names, the tokenizer, and "
        "deltamix.json naming the run. AutoModelForSequenceClassification.from_pretrained and "
        "pipeline('text-classification') load it without deltamix. The folder is written atomically and "
        "must not exist yet (or be empty).",
    )
    export.add_argument("run", type=existing_dir, help="the --output-dir of a finished GLUE run")
    export.add_argument("--output-dir", type=Path, required=True, help="the new model folder")
    export.set_defaults(func=run_export_command)


def run_glue_command(args: argparse.Namespace) -> int:
    from deltamix.errors import DeltamixError
    from deltamix.glue.run import GlueRunConfig, run_glue

    try:
        config = GlueRunConfig(
            task=args.task,
            method=args.method,
            model=args.model,
            data_dir=None if args.data_dir is None else str(args.data_dir),
            seed=args.seed,
            output_dir=None if args.output_dir is None else str(args.output_dir),
            results_dir=str(args.results_dir),
            target_sparsity=args.target_sparsity,
            max_length=args.max_length,
            batch_size=args.batch_size,
            eval_batch_size=args.eval_batch_size,
            epochs=args.epochs,
            mask_epochs=args.mask_epochs,
            lr=args.lr,
            alpha_lr=args.alpha_lr,
            head_lr=args.head_lr,
            mask_lr=args.mask_lr,
            l0_lambda=args.l0_lambda,
            l0_target_density=args.l0_target_density,
            multiplier_lr=args.multiplier_lr,
            structured_penalty=args.structured_penalty,
            max_grad_norm=args.max_grad_norm,
            clip_gates_apart=args.clip_gates_apart,
            weight_decay=args.weight_decay,
            warmup_ratio=args.warmup_ratio,
            max_train_examples=args.max_train_examples,
            max_eval_examples=args.max_eval_examples,
            max_steps=args.max_steps,
            precision=args.precision,
            threads=args.threads,
            logging_steps=args.logging_steps,
            save_steps=args.save_steps,
            keep_checkpoints=args.keep_checkpoints,
            keep_first_stage=args.keep_first_stage,
            first_stage_from=str(args.first_stage_from) if args.first_stage_from else None,
        )
    except ValueError as error:  # settings that conflict only together, e.g. a flag of another method
        raise DeltamixError(f"diffprune glue: {error}") from None
    record = run_glue(config)
    if record:  # only the main process of a multi-GPU run has one
        metrics = ", ".join(f"{k} {100 * v:.2f}" for k, v in record["metrics"].items())
        print(
            f"{record['task']} {record['method']} seed {record['seed']}: {metrics}; stored "
            f"{100 * record['stored_fraction']:.3f}% ({record['file_bytes']:,} bytes) in {config.output_dir}"
        )
    return 0


def run_serve_command(args: argparse.Namespace) -> int:
    from deltamix.glue.serve import serve, serve_records
    from deltamix.io import atomic_write_json
    from deltamix.records import append_record

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
    import sys
    import time

    from deltamix.cli.output import write_lines
    from deltamix.glue.classify import TaskClassifier, read_examples

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
    from deltamix.glue.classify import TaskClassifier

    classifier = TaskClassifier.load(args.run, device="cpu")
    folder = classifier.save_pretrained(args.output_dir)
    size = sum(path.stat().st_size for path in folder.iterdir()) / 1e6
    print(
        f"{classifier.task.name} ({classifier.source['method']}): a transformers model folder of {size:.1f} MB "
        f"-> {folder}\n  load it with AutoModelForSequenceClassification.from_pretrained({str(folder)!r})"
    )
    return 0
