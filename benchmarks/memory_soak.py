"""Benchmark: resident memory (RSS) over a long SeqMix SCAN training run, to show that memory stays flat.

Trains the SCAN LSTM (small: hidden 64, embeddings 32) with SeqMix on addprim_jump for several thousand
steps through the real `Seq2SeqTrainingLoop` (checkpoints every 500 steps, logging, the bucketed loader) on
one thread, reads VmRSS from /proc/self/status every ``--sample-every`` steps, and records the start
(after the first sample window), median, end and peak RSS and the least-squares slope of RSS against
steps over the second half of the run (MiB per 1000 steps; a leak shows as a clearly positive slope).

    OMP_NUM_THREADS=1 python benchmarks/memory_soak.py                  # 5000 steps, appends to results/bench.jsonl
    OMP_NUM_THREADS=1 python benchmarks/memory_soak.py --steps 500 --no-record
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch

from deltamix.core.records import append_record, make_record
from deltamix.data.scan import load_split
from deltamix.data.vocab import Vocabulary
from deltamix.experiments.scan.run import build_model
from deltamix.seqmix.augment import SeqMixAugmenter
from deltamix.seqmix.config import SeqMixConfig
from deltamix.training.loop import Seq2SeqTrainingConfig, Seq2SeqTrainingLoop
from run_options import add_record_options


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise OSError("no VmRSS in /proc/self/status")


def slope_per_1k(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of (step, MiB) points, in MiB per 1000 steps."""
    n = len(points)
    if n < 2:
        return float("nan")
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return 1000.0 * sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--sample-every", type=int, default=50)
    parser.add_argument("--hidden-size", type=int, default=64)
    add_record_options(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)

    train, _ = load_split("addprim_jump")
    vocab = Vocabulary.build(text for pair in train for text in pair)
    torch.manual_seed(0)
    model = build_model("lstm", vocab, {"hidden_size": args.hidden_size, "embedding_dim": 32})
    config = Seq2SeqTrainingConfig(
        max_steps=args.steps, batch_size=32, checkpoint_interval=500, log_interval=50
    )
    augmenter = SeqMixAugmenter(
        SeqMixConfig(variant="seqmix"), vocab.pad_id, vocab.unk_id, len(vocab), (1, 2)
    )
    samples: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Seq2SeqTrainingLoop(model, vocab, config, train, tmp, augmenter=augmenter)
        step_fn = trainer.train_step

        def sampled_step(batch, step):  # wraps one step: sample RSS every --sample-every steps
            loss = step_fn(batch, step)
            if (step + 1) % args.sample_every == 0:
                samples.append((step + 1, rss_mib()))
            return loss

        trainer.train_step = sampled_step
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    values = [mib for _, mib in samples]
    second_half = samples[len(samples) // 2 :]
    metrics = {
        "rss_start_mib": values[0],
        "rss_median_mib": statistics.median(values),
        "rss_end_mib": values[-1],
        "rss_max_mib": max(values),
        "rss_slope_mib_per_1k_steps": slope_per_1k(second_half),
        "rss_slope_all_mib_per_1k_steps": slope_per_1k(samples),
        "steps": float(args.steps),
        "steps_per_second": args.steps / seconds,
    }
    for name, value in metrics.items():
        print(f"{name:34s} {value:10.3f}")
    if not args.no_record:
        record = make_record(
            "bench", "memory-soak", "seqmix", 0, metrics, "rss_slope_mib_per_1k_steps",
            {**vars(args), "model": model.config.to_dict(), "training": vars(config), "samples": samples},
            model="lstm-seq2seq", train_seconds=seconds,
        )  # fmt: skip
        print("record appended to", append_record(record, args.results_dir))


if __name__ == "__main__":
    main()
