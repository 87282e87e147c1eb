"""Benchmark: seq2seq training throughput (target tokens per second) of precision, threads and batching.

For each recipe (Multi30k transformer-small, SCAN LSTM, GeoQuery LSTM) and each configuration, one
`Seq2SeqTrainingLoop` of the same initial weights trains on its own real batches (SeqMix on, as the runs
do); every configuration runs in this one process, in interleaved rounds whose order rotates, so the
machine's load affects them alike. A round gives each configuration ``--steps`` optimizer steps
(augmentation, forward, loss, backward, clipping, AdamW) and measures its target tokens per second;
``speedup`` is the per-round ratio to ``fp32-1thread`` (how the recorded runs trained), reported as
its median with min and max over the rounds. Warm-up rounds are left out.

Configurations: ``fp32-1thread``; ``bf16`` (autocast, 1 thread); ``all-threads`` (fp32, every core);
``token-batches`` (fp32, 1 thread, ``--max-tokens`` batches); ``default`` (what the commands now
do: ``--precision auto`` and every core, with the recipe's default batching); ``default-token-batches``
(the defaults with ``--max-tokens`` batches: how the converged Multi30k runs train).

    python benchmarks/bench_throughput.py --data-dir ../shared/data        # records to results/bench.jsonl
    python benchmarks/bench_throughput.py --recipes scan --rounds 3 --no-record
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deltamix.core.precision import available_cores, resolve_precision
from deltamix.data.scan import load_split
from deltamix.data.seq2seq import load_geoquery, load_translation
from deltamix.data.tokenization import train_joint_tokenizer
from deltamix.data.vocab import Vocabulary
from deltamix.experiments.scan.run import build_model as build_scan_model
from deltamix.experiments.text.run import TASK_DEFAULTS, TextRunConfig
from deltamix.experiments.text.run import build_model as build_text_model
from deltamix.seqmix.augment import SeqMixAugmenter
from deltamix.seqmix.config import SeqMixConfig
from deltamix.training.loop import Seq2SeqTrainingConfig, Seq2SeqTrainingLoop
from run_options import add_record_options, append_bench_record

logger = logging.getLogger("bench_throughput")

RECIPES = ("multi30k", "scan", "geoquery")
CONFIGS = ("fp32-1thread", "bf16", "all-threads", "token-batches", "default", "default-token-batches")


@dataclass
class Recipe:
    """A model, its training pairs and batch settings as the recorded runs used them."""

    name: str
    model: torch.nn.Module
    tokenizer: Any
    pairs: list[tuple[str, str]]
    batch_size: int
    max_tokens: int
    default_max_tokens: int | None  # the recipe's batching under the current defaults (None: sentences)
    label_smoothing: float
    description: str


def load_recipe(name: str, data_dir: Path, max_tokens: dict[str, int]) -> Recipe:
    """The recipe ``name`` on real data (``data_dir``: the folder holding multi30k/ and geoquery/)."""
    torch.manual_seed(0)
    if name == "scan":
        pairs, _ = load_split("addprim_jump")
        vocab = Vocabulary.build(text for pair in pairs for text in pair)
        model = build_scan_model("lstm", vocab, {})
        return Recipe(
            name, model, vocab, pairs, 32, max_tokens[name], None, 0.0, "SCAN addprim_jump, LSTM 512"
        )
    if name == "geoquery":
        data = load_geoquery(data_dir / "geoquery", "query", "logic")
        vocab = Vocabulary.build(text for pair in data.train for text in pair)
        config = TextRunConfig(kind="parse", data_dir=str(data_dir / "geoquery"))
        model = build_text_model(config, vocab)
        return Recipe(
            name, model, vocab, list(data.train), 32, max_tokens[name], None, 0.0, "GeoQuery query, LSTM"
        )
    data = load_translation("multi30k", data_dir / "multi30k", "de", "en")
    tokenizer = train_joint_tokenizer(list(data.train), vocab_size=8000)
    config = TextRunConfig(kind="translate", data_dir=str(data_dir / "multi30k"))
    model = build_text_model(config, tokenizer)
    defaults = TASK_DEFAULTS["bleu"]
    return Recipe(
        name,
        model,
        tokenizer,
        list(data.train),
        defaults["batch_size"],
        max_tokens[name],
        defaults.get("max_tokens"),
        0.1,
        "Multi30k de-en, transformer-small, BPE 8k",
    )


@dataclass
class Setting:
    """One configuration: precision, threads and batching."""

    precision: str
    threads: int
    max_tokens: int | None


def settings_of(recipe: Recipe, cores: int) -> dict[str, Setting]:
    return {
        "fp32-1thread": Setting("fp32", 1, None),
        "bf16": Setting("bf16", 1, None),
        "all-threads": Setting("fp32", cores, None),
        "token-batches": Setting("fp32", 1, recipe.max_tokens),
        "default": Setting(resolve_precision("auto"), cores, recipe.default_max_tokens),
        "default-token-batches": Setting(resolve_precision("auto"), cores, recipe.max_tokens),
    }


def make_trainer(recipe: Recipe, setting: Setting, folder: Path) -> Seq2SeqTrainingLoop:
    """A trainer of the recipe's initial weights (a copy) with ``setting``, SeqMix on."""
    config = Seq2SeqTrainingConfig(
        max_steps=10**9,
        batch_size=recipe.batch_size,
        max_tokens=setting.max_tokens,
        precision=setting.precision,
        label_smoothing=recipe.label_smoothing,
        learning_rate=5e-4,
    )
    tok = recipe.tokenizer
    augmenter = SeqMixAugmenter(
        SeqMixConfig(variant="seqmix"), tok.pad_id, tok.unk_id, len(tok), special_ids=(tok.bos_id, tok.eos_id)
    )
    return Seq2SeqTrainingLoop(
        copy.deepcopy(recipe.model), tok, config, recipe.pairs, folder, augmenter=augmenter
    )


def measure_recipe(recipe: Recipe, args: argparse.Namespace, cores: int) -> dict[str, dict[str, float]]:
    """Interleaved rounds over the configurations; returns the metrics of each configuration."""
    settings = {name: s for name, s in settings_of(recipe, cores).items() if name in args.configs}
    trainers = {name: make_trainer(recipe, s, Path(args.scratch) / name) for name, s in settings.items()}
    streams = {name: iter(trainer.loader) for name, trainer in trainers.items()}
    rates: dict[str, list[float]] = {name: [] for name in settings}
    tokens_per_step: dict[str, list[float]] = {name: [] for name in settings}
    names = list(settings)
    step = 0
    for round_index in range(args.warmup + args.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:  # rotate who goes first
            torch.set_num_threads(settings[name].threads)
            tokens, seconds = 0, 0.0
            for _ in range(args.steps):
                batch = next(streams[name], None)
                if batch is None:
                    streams[name] = iter(trainers[name].loader)
                    batch = next(streams[name])
                started = time.perf_counter()
                trainers[name].train_step(batch, step)
                seconds += time.perf_counter() - started
                tokens += int(batch["labels"].ne(recipe.tokenizer.pad_id).sum())
                step += 1
            if round_index >= args.warmup:
                rates[name].append(tokens / seconds)
                tokens_per_step[name].append(tokens / args.steps)
    metrics: dict[str, dict[str, float]] = {}
    reference = rates["fp32-1thread"]
    for name in names:
        paired = [rate / ref for rate, ref in zip(rates[name], reference, strict=True)]
        metrics[name] = {
            "tokens_per_second": statistics.median(rates[name]),
            "speedup": statistics.median(paired),
            "speedup_min": min(paired),
            "speedup_max": max(paired),
            "target_tokens_per_step": statistics.mean(tokens_per_step[name]),
            "threads": float(settings[name].threads),
            "rounds": float(args.rounds),
        }
    return metrics


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES), help="default: all")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS), help="default: all")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"), help="default: %(default)s")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=6, help="steps per configuration per round (default: 6)")
    parser.add_argument(
        "--max-tokens-multi30k", type=int, default=4096, help="token-batches budget (default: %(default)s)"
    )
    parser.add_argument("--max-tokens-scan", type=int, default=1024, help="default: %(default)s")
    parser.add_argument("--max-tokens-geoquery", type=int, default=1024, help="default: %(default)s")
    parser.add_argument("--scratch", default="runs/bench-throughput", help="trainer folders (nothing saved)")
    add_record_options(parser)
    args = parser.parse_args(argv)
    for name in ("rounds", "steps"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be > 0")
    if "fp32-1thread" not in args.configs:
        parser.error("--configs must include fp32-1thread (the reference)")
    return args


def main(argv: list[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("accelerate", "deltamix"):
        logging.getLogger(name).setLevel(logging.WARNING)
    cores = available_cores()
    max_tokens = {name: getattr(args, f"max_tokens_{name}") for name in RECIPES}
    results = {}
    for name in args.recipes:
        recipe = load_recipe(name, args.data_dir, max_tokens)
        load_before = os.getloadavg()[0]
        metrics = measure_recipe(recipe, args, cores)
        load_after = os.getloadavg()[0]
        results[name] = metrics
        for config, values in metrics.items():
            values["load_average"] = (load_before + load_after) / 2
            logger.info(
                "%-9s %-13s %8.0f tokens/s  x%.2f (min %.2f, max %.2f)  %.0f tokens/step, %d threads",
                name, config, values["tokens_per_second"], values["speedup"], values["speedup_min"],
                values["speedup_max"], values["target_tokens_per_step"], values["threads"],
            )  # fmt: skip
            append_bench_record(
                args,
                f"train-throughput-{name}",
                config,
                values,
                "speedup",
                {
                    "recipe": recipe.description,
                    "setting": vars(settings_of(recipe, cores)[config]),
                    "batch_size": recipe.batch_size,
                    "rounds": args.rounds,
                    "warmup": args.warmup,
                    "steps": args.steps,
                    "cores": cores,
                    "augment": "seqmix",
                },
                model=recipe.description,
                threads=int(values["threads"]),
                logger=logger,
            )
    return results


if __name__ == "__main__":
    main()
