"""Profile: where a seq2seq training step spends its time (torch.profiler, CPU), per operator.

The step of `bench_throughput.py` (augmentation, forward, loss, backward, clipping, AdamW) on a
recipe's real batches; the table of operators by self time is printed and written, with the settings,
to ``results/profiles/train-step-<recipe>-<precision>-<threads>t[-<max-tokens>tok].json``.

    python benchmarks/profile_train_step.py --recipe multi30k --precision bf16 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from bench_throughput import RECIPES, Setting, load_recipe, make_trainer
from deltamix.core.io import atomic_write_json
from deltamix.core.records import git_commit, hardware


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", choices=RECIPES, default="multi30k", help="default: %(default)s")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16", help="default: %(default)s")
    parser.add_argument("--threads", type=int, default=2, help="default: %(default)s")
    parser.add_argument("--steps", type=int, default=6, help="profiled steps (default: %(default)s)")
    parser.add_argument(
        "--max-tokens", type=int, help="token batches (default: the recipe's sentence batches)"
    )
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"), help="default: %(default)s")
    parser.add_argument("--train-pairs", type=int, default=3000, help="pairs to batch from (default: 3000)")
    parser.add_argument("--results-dir", type=Path, default=Path("results"), help="default: %(default)s")
    args = parser.parse_args(argv)
    recipe = load_recipe(args.recipe, args.data_dir, {name: args.max_tokens or 0 for name in RECIPES})
    recipe.pairs = recipe.pairs[: args.train_pairs]
    torch.set_num_threads(args.threads)
    trainer = make_trainer(
        recipe, Setting(args.precision, args.threads, args.max_tokens), Path("/tmp/profile-step")
    )
    batches = iter(trainer.loader)
    for step in range(3):  # warm-up
        trainer.train_step(next(batches), step)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for step in range(args.steps):
            trainer.train_step(next(batches), 3 + step)
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [
        {"op": e.key, "self_ms_per_step": e.self_cpu_time_total / 1000 / args.steps,
         "share": e.self_cpu_time_total / total, "calls_per_step": e.count / args.steps}
        for e in events[:25]
    ]  # fmt: skip
    for row in rows:
        print(f"{row['op']:<45} {100 * row['share']:5.1f}%  {row['self_ms_per_step']:8.1f} ms/step  "
              f"{row['calls_per_step']:6.0f} calls/step")  # fmt: skip
    batches = f"-{args.max_tokens}tok" if args.max_tokens else ""  # token batches: their own file
    name = f"train-step-{args.recipe}-{args.precision}-{args.threads}t{batches}.json"
    atomic_write_json(
        args.results_dir / "profiles" / name,
        {"settings": {k: str(v) for k, v in vars(args).items()}, "ms_per_step": total / 1000 / args.steps,
         "operators": rows, "torch": torch.__version__, "hardware": hardware(), "git_commit": git_commit(),
         "load_average": os.getloadavg()[0]},
    )  # fmt: skip
    print(json.dumps({"ms_per_step": total / 1000 / args.steps}))


if __name__ == "__main__":
    main()
