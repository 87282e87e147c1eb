"""Benchmark: Transformer decoding with the per-layer cache vs recomputing the decoder over the prefix.

`TransformerSeq2Seq.decode_step` runs each decoder layer and the output projection on the new
position only, reading the earlier positions' layer inputs from its cache. The reference here is the
same model decoded the way it was before the cache: every step runs the whole decoder over the
prefix and keeps the last position's log-probs (`RecomputePrefix`). Both decode the same sources
with the same search (greedy and beam 4, length penalty 0.6), timed interleaved; their outputs must
be identical. The model has random weights and a forbidden EOS, so every hypothesis runs to
``--length`` tokens: a fixed amount of work. Default size: the "small" Transformer of the Multi30k
runs (d 256, 3+3 layers, vocabulary 8,000).

    python benchmarks/bench_decoding.py                 # appends a record to results/bench.jsonl
    OMP_NUM_THREADS=1 python benchmarks/bench_decoding.py --sources 20 --no-record
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch
from torch import Tensor

from deltamix.core.mixed_tokens import MixedTokens
from deltamix.models.decoding import DecoderState, generate
from deltamix.models.transformer import TransformerSeq2Seq, TransformerSeq2SeqConfig
from run_options import add_run_options, append_bench_record, apply_threads

logger = logging.getLogger("bench_decoding")


class RecomputePrefix:
    """``model`` decoded without a cache: each step runs the decoder over the whole prefix [N, t]."""

    def __init__(self, model: TransformerSeq2Seq) -> None:
        self.model = model
        self.pad_id, self.bos_id, self.eos_id = model.pad_id, model.bos_id, model.eos_id

    def start_decoding(self, src_ids: Tensor) -> DecoderState:
        src = MixedTokens.plain(src_ids, self.pad_id)
        memory = self.model.encode(src)
        return {"memory": memory, "memory_mask": src.mask, "prefix": src_ids.new_zeros(len(src_ids), 0)}

    def decode_step(self, state: DecoderState, prev_tokens: Tensor) -> tuple[Tensor, DecoderState]:
        prefix = torch.cat([state["prefix"], prev_tokens.unsqueeze(1)], 1)  # N x t
        tokens = MixedTokens(ids=prefix, mask=torch.ones_like(prefix, dtype=torch.bool))
        lprobs = self.model._decode(state["memory"], state["memory_mask"], tokens)[:, -1]
        return lprobs, {**state, "prefix": prefix}


class NoEos:
    """A decoder with EOS forbidden, so that every hypothesis decodes exactly ``max_length`` tokens."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.pad_id, self.bos_id, self.eos_id = inner.pad_id, inner.bos_id, inner.eos_id

    def start_decoding(self, src_ids: Tensor) -> DecoderState:
        return self.inner.start_decoding(src_ids)

    def decode_step(self, state: DecoderState, prev_tokens: Tensor) -> tuple[Tensor, DecoderState]:
        lprobs, state = self.inner.decode_step(state, prev_tokens)
        return lprobs.index_fill(1, torch.tensor([self.eos_id]), float("-inf")), state


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=50, help="sources decoded (default: %(default)s)")
    parser.add_argument(
        "--source-length", type=int, default=16, help="tokens per source (default: %(default)s)"
    )
    parser.add_argument("--length", type=int, default=30, help="tokens decoded (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (default: %(default)s)")
    parser.add_argument("--vocab-size", type=int, default=8000, help="vocabulary (default: %(default)s)")
    add_run_options(parser)
    args = parser.parse_args(argv)
    for name in ("sources", "source_length", "length", "repeats", "vocab_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0")
    return args


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    threads = apply_threads(args)
    torch.manual_seed(0)
    config = TransformerSeq2SeqConfig(vocab_size=args.vocab_size)  # the "small" size's shape
    config.feedforward_dim, config.dropout = 512, 0.0
    model = TransformerSeq2Seq(config).eval()
    src = torch.randint(3, args.vocab_size, (args.sources, args.source_length))
    src[:, -1] = model.eos_id
    decoders = {"cached": NoEos(model), "recompute": NoEos(RecomputePrefix(model))}
    searches = {"greedy": (1, 1.0), "beam4": (4, 0.6)}
    times: dict[str, list[float]] = {f"{s}_{d}": [] for s in searches for d in decoders}
    for rep in range(1 + args.repeats):  # repetition 0 warms up and is not timed
        for search, (beam, penalty) in searches.items():
            outputs = {}
            order = list(decoders) if rep % 2 == 0 else list(reversed(decoders))
            for name in order:
                started = time.perf_counter()
                with torch.no_grad():
                    outputs[name] = generate(decoders[name], src, args.length, beam, penalty)
                if rep > 0:
                    times[f"{search}_{name}"].append(time.perf_counter() - started)
            if outputs["cached"] != outputs["recompute"]:
                raise RuntimeError(f"{search}: the cached decoder's outputs differ from the reference")
    metrics: dict[str, float] = {}
    for search in searches:
        cached, recompute = (statistics.median(times[f"{search}_{d}"]) for d in ("cached", "recompute"))
        metrics[f"seconds_{search}_cached"], metrics[f"seconds_{search}_recompute"] = cached, recompute
        metrics[f"speedup_{search}"] = recompute / cached
        logger.info(
            "%-6s cached %6.2f s, recompute %6.2f s: %.1fx faster",
            search,
            cached,
            recompute,
            recompute / cached,
        )
    append_bench_record(
        args,
        "transformer-decoding",
        "kv-cache",
        metrics,
        "speedup_beam4",
        {**vars(args), "threads": threads, "model": config.to_dict()},
        model=f"transformer-seq2seq (d {config.d_model}, {config.num_decoder_layers} decoder layers)",
        threads=threads,
        logger=logger,
    )
    return metrics


if __name__ == "__main__":
    main()
