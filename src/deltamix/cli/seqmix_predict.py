"""`deltamix seqmix predict`: decode new inputs (one per line) with the model a seqmix run saved."""

from __future__ import annotations

import argparse
import sys
import time

from deltamix.cli.args import add_line_files, existing_dir, non_negative_float, positive_int
from deltamix.cli.output import write_lines
from deltamix.core.errors import DeltamixError
from deltamix.data.seq2seq import read_lines
from deltamix.training.predict import Predictor


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``predict`` to the ``deltamix seqmix`` group."""
    parser = subparsers.add_parser(
        "predict",
        help="translate or parse new inputs with a trained run's model",
        description="Decode each line of --input with the model of a `deltamix seqmix translate|parse|"
        "train|scan` run folder (or its model/ folder), using the run's beam size, length penalty and "
        "output limit unless given here. Outputs go one per line to --output (written atomically) or "
        "standard output.",
    )
    parser.add_argument("run", type=existing_dir, help="the run folder (holding model/) or a model/ folder")
    add_line_files(parser, inputs="one input per line (.gz is decompressed)", outputs="outputs")
    parser.add_argument("--beam-size", type=positive_int, default=None, help="beam size (default: the run's)")
    parser.add_argument(
        "--length-penalty", type=non_negative_float, default=None, help="length penalty (default: the run's)"
    )
    parser.add_argument(
        "--max-length", type=positive_int, default=None, help="most output tokens (default: the run's limit)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=64, help="inputs per batch (default: 64)")
    parser.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    """Decode the lines of ``--input`` with the run's model; outputs to ``--output`` or standard output."""
    sources = read_lines(args.input)
    try:
        predictor = Predictor.load(
            args.run,
            beam_size=args.beam_size,
            length_penalty=args.length_penalty,
            max_length=args.max_length,
            batch_size=args.batch_size,
        )
    except DeltamixError:
        raise
    except ValueError as error:  # a decoding setting out of range
        raise DeltamixError(f"seqmix predict: {error}") from error
    started = time.perf_counter()
    outputs = predictor.predict(sources, progress=True)
    seconds = time.perf_counter() - started
    write_lines(outputs, args.output)
    settings = predictor.settings
    print(
        f"decoded {len(sources)} inputs in {seconds:.1f} s (beam {settings.beam_size}, length penalty "
        f"{settings.length_penalty:g}, at most {settings.max_length} tokens)"
        + (f" -> {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    return 0
