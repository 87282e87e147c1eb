"""Bench: a seq2seq recipe's training step with deltamix's FastDropout against torch's nn.Dropout.

Two trainers of the same recipe (bench_throughput.py's: real batches, SeqMix on, fp32), one whose
model keeps deltamix's `FastDropout` modules and one with them swapped back to ``nn.Dropout`` (the
same p), run the same batches in one process, interleaved rounds (who goes first alternates), at one
thread and at every core. Per round, ``speedup`` = torch-dropout step time / FastDropout step time;
the record gives its median, min and max over the rounds after ``--warmup``. Records go to
``results/bench.jsonl``: task ``train-dropout-<recipe>``, methods ``fast-dropout-1thread`` and
``fast-dropout-all-threads``.

    python benchmarks/bench_dropout.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench_throughput import RECIPES, Setting, load_recipe, make_trainer
from deltamix.core.precision import available_cores
from deltamix.models.fast_dropout import use_torch_dropout
from run_options import add_record_options, append_bench_record

logger = logging.getLogger("bench_dropout")


def measure(recipe_name: str, args: argparse.Namespace, cores: int) -> dict[str, dict[str, float]]:
    """Interleaved rounds of both trainers at 1 thread and at ``cores``; metrics per method."""
    recipe = load_recipe(recipe_name, args.data_dir, {name: 0 for name in RECIPES})
    recipe.pairs = recipe.pairs[: args.train_pairs]
    scratch = Path(tempfile.mkdtemp(prefix="bench_dropout_"))
    fast = make_trainer(recipe, Setting("fp32", 1, None), scratch / "fast")
    torch_side = make_trainer(recipe, Setting("fp32", 1, None), scratch / "torch")
    swapped = use_torch_dropout(torch_side.model)
    batches = []
    for batch in fast.loader:
        batches.append(batch)
        if len(batches) == args.steps:
            break
    metrics: dict[str, dict[str, float]] = {}
    for method, threads in (("fast-dropout-1thread", 1), ("fast-dropout-all-threads", cores)):
        torch.set_num_threads(threads)
        ratios, fast_ms, torch_ms = [], [], []
        for round_index in range(args.warmup + args.rounds):
            order = [("fast", fast), ("torch", torch_side)]
            seconds = {}
            for name, trainer in order if round_index % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                for step, batch in enumerate(batches):
                    trainer.train_step(batch, step)
                seconds[name] = (time.perf_counter() - start) / len(batches)
            if round_index >= args.warmup:
                ratios.append(seconds["torch"] / seconds["fast"])
                fast_ms.append(seconds["fast"] * 1e3)
                torch_ms.append(seconds["torch"] * 1e3)
        metrics[method] = {
            "speedup": statistics.median(ratios),
            "speedup_min": min(ratios),
            "speedup_max": max(ratios),
            "fast_step_ms": statistics.median(fast_ms),
            "torch_step_ms": statistics.median(torch_ms),
            "dropout_modules": float(swapped),
            "threads": float(threads),
            "rounds": float(args.rounds),
            "load_average": os.getloadavg()[0],
        }
        logger.info(
            "%s %s: FastDropout %.0f ms, nn.Dropout %.0f ms a step: %.3fx (%.3f-%.3f)",
            recipe_name, method, metrics[method]["fast_step_ms"], metrics[method]["torch_step_ms"],
            metrics[method]["speedup"], metrics[method]["speedup_min"], metrics[method]["speedup_max"],
        )  # fmt: skip
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--recipes",
        nargs="+",
        choices=RECIPES,
        default=["multi30k"],
        help="default: multi30k (the LSTM recipes keep nn.Dropout)",
    )
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"), help="default: %(default)s")
    parser.add_argument("--train-pairs", type=int, default=3000, help="pairs to batch from (default: 3000)")
    parser.add_argument("--steps", type=int, default=6, help="training steps per round (default: 6)")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default: 7)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default: 1)")
    add_record_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cores = available_cores()
    for recipe_name in args.recipes:
        config = {key: value for key, value in vars(args).items() if key != "no_record"}
        config["data_dir"], config["recipe"] = str(args.data_dir), recipe_name
        for method, metrics in measure(recipe_name, args, cores).items():
            append_bench_record(
                args, f"train-dropout-{recipe_name}", method, metrics, "speedup", config,
                model=recipe_name, threads=int(metrics["threads"]), logger=logger,
            )  # fmt: skip


if __name__ == "__main__":
    main()
