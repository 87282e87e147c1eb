"""Benchmark: SeqMix training-step time relative to no augmentation (same model, same batches, one run).

One training step = augmentation + forward + SeqMix loss + backward + clipping + Adam step, on the
papers' SCAN model (bidirectional LSTM encoder, hidden 512, attention + copy) and real addprim_jump
batches. Variants are timed interleaved (each repetition runs every variant on the same batch, in an
order that rotates), so machine load affects them alike; we report medians of wall time, the median
of the per-repetition ratios, and medians of process CPU time (steadier on a shared machine). Target: SeqMix <= 1.05x the step time of no augmentation.

    python benchmarks/bench_seqmix.py                  # appends a record to results/bench.jsonl
    OMP_NUM_THREADS=1 python benchmarks/bench_seqmix.py --repeats 50 --no-record
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch

from deltamix.data.batching import BucketBatchSampler, Collator, Seq2SeqDataset, encode_pairs
from deltamix.data.scan import load_split
from deltamix.data.vocab import Vocabulary
from deltamix.experiments.scan.run import build_model
from deltamix.seqmix.augment import SeqMixAugmenter
from deltamix.seqmix.config import VARIANTS, SeqMixConfig
from deltamix.seqmix.loss import seqmix_loss
from run_options import add_run_options, append_bench_record, apply_threads

logger = logging.getLogger("bench_seqmix")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--batch-size", type=int, default=32, help="examples per batch (default: %(default)s)"
    )
    parser.add_argument(
        "--batches", type=int, default=8, help="distinct batches cycled through (default: %(default)s)"
    )
    parser.add_argument(
        "--repeats", type=int, default=30, help="timed repetitions per variant (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed repetitions first (default: %(default)s)"
    )
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS, help="variants to time"
    )
    parser.add_argument(
        "--hidden-size", type=int, default=512, help="LSTM size (default: the paper's %(default)s)"
    )
    add_run_options(parser)
    args = parser.parse_args(argv)
    for name in ("batch_size", "batches", "repeats", "hidden_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0")
    if "none" not in args.variants:
        parser.error("--variants must include 'none' (the reference)")
    return args


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    threads = apply_threads(args)
    train, _ = load_split("addprim_jump")
    vocab = Vocabulary.build(text for pair in train for text in pair)
    dataset = Seq2SeqDataset(encode_pairs(train, vocab))
    sampler = BucketBatchSampler(dataset.lengths(), args.batch_size, seed=0, drop_last=True)
    collate = Collator(vocab.pad_id, vocab.bos_id, vocab.eos_id)
    batches = [collate([dataset[i] for i in indices]) for indices in sampler.batches()[: args.batches]]

    torch.manual_seed(0)
    model = build_model("lstm", vocab, {"hidden_size": args.hidden_size})
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    augmenters = {
        variant: SeqMixAugmenter(
            SeqMixConfig(variant=variant), vocab.pad_id, vocab.unk_id, len(vocab), (1, 2)
        )
        for variant in args.variants
    }

    def step(variant: str, batch: dict[str, torch.Tensor], seed: int) -> tuple[float, float]:
        """One training step; returns (wall seconds, process CPU seconds)."""
        started, cpu_started = time.perf_counter(), time.process_time()
        generator = torch.Generator().manual_seed(seed)
        mixed = augmenters[variant](batch["src_ids"], batch["tgt_in"], batch["labels"], generator)
        loss = seqmix_loss(model(mixed.src, mixed.tgt_in), mixed, 0.0, vocab.pad_id)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started, time.process_time() - cpu_started

    times: dict[str, list[float]] = {variant: [] for variant in args.variants}
    cpu_times: dict[str, list[float]] = {variant: [] for variant in args.variants}
    variants = list(args.variants)
    for rep in range(args.warmup + args.repeats):
        batch = batches[rep % len(batches)]
        order = variants[rep % len(variants) :] + variants[: rep % len(variants)]  # rotate who goes first
        for variant in order:
            seconds, cpu_seconds = step(variant, batch, rep)
            if rep >= args.warmup:
                times[variant].append(seconds)
                cpu_times[variant].append(cpu_seconds)

    metrics: dict[str, float] = {}
    for variant in variants:
        paired = [t / ref for t, ref in zip(times[variant], times["none"], strict=True)]
        metrics[f"ms_{variant}"] = 1000 * statistics.median(times[variant])
        metrics[f"ratio_{variant}"] = statistics.median(times[variant]) / statistics.median(times["none"])
        metrics[f"paired_ratio_{variant}"] = statistics.median(paired)
        # CPU time of this process: less sensitive than wall time to other processes on a shared machine.
        metrics[f"cpu_ms_{variant}"] = 1000 * statistics.median(cpu_times[variant])
        metrics[f"cpu_ratio_{variant}"] = statistics.median(cpu_times[variant]) / statistics.median(
            cpu_times["none"]
        )
    main_variant = "seqmix" if "seqmix" in variants else variants[-1]
    metrics["step_time_ratio"] = metrics[f"ratio_{main_variant}"]
    for variant in variants:
        logger.info(
            "%-13s median %7.1f ms/step  x%.3f of none (paired x%.3f; CPU time %7.1f ms, x%.3f)",
            variant, metrics[f"ms_{variant}"], metrics[f"ratio_{variant}"], metrics[f"paired_ratio_{variant}"],
            metrics[f"cpu_ms_{variant}"], metrics[f"cpu_ratio_{variant}"],
        )  # fmt: skip
    verdict = "meets" if metrics["step_time_ratio"] <= 1.05 else "misses"
    logger.info(
        "%s: x%.3f, %s the <= 1.05x target (%d threads)",
        main_variant,
        metrics["step_time_ratio"],
        verdict,
        threads,
    )
    append_bench_record(
        args,
        "seqmix-step-time",
        main_variant,
        metrics,
        "step_time_ratio",
        {**vars(args), "threads": threads, "model": model.config.to_dict(), "vocab_size": len(vocab)},
        model=f"lstm-seq2seq (SCAN, hidden {args.hidden_size})",
        threads=threads,
        logger=logger,
    )
    return metrics


if __name__ == "__main__":
    main()
