"""Steps/s of full fine-tuning, the L0 stage and the fixed-mask stage of diff pruning in one process, on CUDA.

SST-2 shapes (``--batch-size`` 8 x ``--seq-len`` 32 tokens by default: SST-2 sentences padded per
batch) on the MiniLM-L6 architecture (BertConfig of all-MiniLM-L6-v2, random weights: a step's time
does not depend on their values, so no weights travel). Every (method, variant) is set up once and
timed in interleaved rounds after warm-up; a round runs ``--steps`` steps with no host
synchronisation between them (CUDA events around the round, one sync at its end). Variants:
``eager``; ``every-row`` (diff pruning computing every input-embedding row: no ``torch.unique`` of
the batch's ids and no host read of its range, i.e. no host sync per step); ``compile``
(``torch.compile`` of the base model's forward; a variant that fails to compile is recorded with its
error). The host syncs of one step are counted with ``torch.cuda.set_sync_debug_mode``. Writes one
JSON record to ``$OUT/steps_per_second.json`` (or ``--out``); ``--device cpu`` runs the same code on
the CPU (a quick check, not a figure).

    python experiments/device/steps_per_second.py --rounds 5 --steps 20          # on the GPU machine
    python experiments/device/steps_per_second.py --device cpu --rounds 1 --steps 2 --out /tmp/s.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from deltamix.diffprune import DiffPruningConfig, DiffPruningModel

METHODS = ("full-ft", "diff-pruning-l0", "diff-pruning-fixed-mask")
VARIANTS = ("eager", "every-row", "compile")


def build(device: torch.device, seed: int):
    """MiniLM-L6's architecture (384 wide, 6 layers, 12 heads), random weights, 2 labels."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
                        vocab_size=30522, max_position_embeddings=512, num_labels=2)  # fmt: skip
    return BertForSequenceClassification(config).to(device).train()


def setup(method: str, variant: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    model = build(device, args.seed)
    if variant == "compile":
        model.forward = torch.compile(model.forward)
    config = DiffPruningConfig(dense_modules=["classifier"], embedding_rows_only=variant != "every-row")
    if method == "full-ft":
        runner, groups = model, [{"params": list(model.parameters()), "lr": 2e-5}]
    else:
        runner = DiffPruningModel(model, config)
        if method == "diff-pruning-fixed-mask":
            with torch.no_grad():
                runner.w.normal_(0, 1e-3)
            runner.project_()
        groups = runner.optimizer_param_groups()
    generator = torch.Generator().manual_seed(args.seed)
    shape = (args.batch_size, args.seq_len)
    batch = {
        "input_ids": torch.randint(0, 30522, shape, generator=generator).to(device),
        "attention_mask": torch.ones(shape, dtype=torch.long, device=device),
        "labels": torch.randint(0, 2, (args.batch_size,), generator=generator).to(device),
    }
    optimizer = torch.optim.AdamW(groups, fused=True)
    return {"runner": runner, "config": config, "method": method, "batch": batch, "optimizer": optimizer,
            "trainable": [p for g in groups for p in g["params"]]}  # fmt: skip


def step(s: dict[str, Any], precision: str, device: torch.device) -> None:
    """Forward (+ L0 penalty), backward, clipping at 1.0, fused AdamW: no host read of any value."""
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = s["runner"](**s["batch"]).loss
        if s["method"] == "diff-pruning-l0":
            loss = loss + s["config"].l0_lambda * s["runner"].l0_penalty()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(s["trainable"], 1.0)
    s["optimizer"].step()
    s["optimizer"].zero_grad(set_to_none=True)


def host_syncs(s: dict[str, Any], precision: str, device: torch.device) -> int | None:
    """Synchronising CUDA calls in one step (None off CUDA)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step(s, precision, device)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def timed_round(s: dict[str, Any], args: argparse.Namespace, device: torch.device) -> float:
    """Seconds per step over ``args.steps`` steps (CUDA events; one sync at the end)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(args.steps):
            step(s, args.precision, device)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / args.steps
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step(s, args.precision, device)
    return (time.perf_counter() - t0) / args.steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per row (compile: more happen)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "steps_per_second.json"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: pass --device cpu for the CPU path")
    rows, failed, syncs = {}, {}, {}
    for method in args.methods:
        for variant in args.variants:
            if variant == "every-row" and method != "diff-pruning-l0":
                continue  # only the L0 stage restricts embedding rows per step
            label = f"{method}/{variant}"
            try:
                rows[label] = setup(method, variant, args, device)
                for _ in range(args.warmup):
                    step(rows[label], args.precision, device)
                syncs[label] = host_syncs(rows[label], args.precision, device)
            except Exception as error:  # a variant that does not run is recorded, not fatal
                rows.pop(label, None)
                failed[label] = "".join(traceback.format_exception_only(error)).strip()[-500:]
                print(f"{label}: failed: {failed[label]}", flush=True)
    times: dict[str, list[float]] = {label: [] for label in rows}
    labels = list(rows)
    for round_index in range(args.rounds):
        shift = round_index % max(1, len(labels))
        for label in labels[shift:] + labels[:shift]:
            times[label].append(timed_round(rows[label], args, device))
    full = times.get("full-ft/eager")
    results = {}
    for label, t in times.items():
        result = {
            "steps_per_s": 1 / statistics.median(t),
            "step_s_all": t,
            "host_syncs_per_step": syncs[label],
        }
        if full is not None:
            paired = [b / a for a, b in zip(t, full, strict=True)]  # this row's steps/s over full FT's
            result.update(vs_full_eager=statistics.median(paired), vs_full_eager_min=min(paired),
                          vs_full_eager_max=max(paired))  # fmt: skip
        results[label] = result
        print(f"{label:<36} {result['steps_per_s']:8.1f} steps/s  x{result.get('vs_full_eager', float('nan')):.2f} "
              f"of full FT  syncs/step {syncs[label]}", flush=True)  # fmt: skip
    record = {
        "experiment": "bench",
        "task": f"diffprune-steps-per-second-{args.batch_size}x{args.seq_len}",
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "torch": torch.__version__,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "results": results,
        "failed": failed,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
