"""Profile: where a diff pruning training step spends its time (torch.profiler, CPU), next to full fine-tuning.

The step of `bench_diffprune.py` (forward, L0 penalty, backward, clipping, fused AdamW) of each
method on MiniLM at ``--batch-size`` x ``--seq-len``; per method the operators by self CPU time are
printed, grouped into what the issue asks about (the L0 kernel's forward: gate sampling and the
theta = base + z * w materialisation with the penalty; its backward; the optimizer; clipping; the
model's own forward and backward), and written with the settings to
``results/profiles/diffprune-step-<batch>x<len>-<precision>-<threads>t.json``.

    python benchmarks/profile_diffprune_step.py --seq-len 24 --methods full-ft diff-pruning-l0
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from bench_diffprune import METHODS, _setup
from deltamix.core.io import atomic_write_json
from deltamix.core.records import git_commit, hardware


def profiled_step(setup: dict, precision: str) -> None:
    """One step of bench_diffprune's ``_step``, its phases marked for the profiler."""
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    with record_function("phase: forward + penalty"), autocast:
        loss = setup["runner"](**setup["batch"]).loss
        if setup["method"].endswith("-l0"):
            loss = loss + setup["config"].l0_lambda * setup["runner"].l0_penalty()
    with record_function("phase: backward"):
        loss.backward()
    with record_function("phase: clip"):
        torch.nn.utils.clip_grad_norm_(setup["trainable"], 1.0)
    with record_function("phase: optimizer"):
        setup["optimizer"].step()
        setup["optimizer"].zero_grad(set_to_none=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["full-ft", "diff-pruning-l0"])
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="profiled steps, after 2 warm-up steps")
    parser.add_argument("--top", type=int, default=15, help="operators shown per method")
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    settings = {"batch_size": args.batch_size, "seq_len": args.seq_len, "seed": 0, "sparsity": 0.005}
    report: dict = {
        "settings": vars(args) | {"results_dir": str(args.results_dir)},
        "hardware": hardware(),
        "git_commit": git_commit(),
        "load_average_start": os.getloadavg()[0],
        "methods": {},
    }
    for method in args.methods:
        setup = _setup("minilm", method, settings)
        for _ in range(2):
            profiled_step(setup, args.precision)
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                profiled_step(setup, args.precision)
        step_s = (time.perf_counter() - start) / args.steps
        events = prof.key_averages()
        phases = {e.key: e.cpu_time_total / 1e3 / args.steps for e in events if e.key.startswith("phase: ")}
        kernels = {
            e.key: e.cpu_time_total / 1e3 / args.steps
            for e in events
            if e.key in ("GatedTheta", "GatedThetaBackward", "KeptTheta", "KeptThetaBackward", "SplitLinear")
            or e.key.endswith("GatedThetaBackward")
        }
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]
        ops = [[e.key, e.self_cpu_time_total / 1e3 / args.steps, e.count // args.steps] for e in top]
        report["methods"][method] = {
            "step_ms_profiled": step_s * 1e3,
            "phases_ms": phases,
            "kernels_ms": kernels,
            "top_self_ms": ops,
            "load_average": os.getloadavg()[0],
        }
        print(
            f"== {method} ({args.precision}, {args.batch_size} x {args.seq_len}): {step_s * 1e3:.0f} ms/step (profiled)"
        )
        for name, ms in {**phases, **kernels}.items():
            print(f"   {name:<36} {ms:8.1f} ms")
        for name, ms, count in ops:
            print(f"   self {name:<31} {ms:8.1f} ms  x{count}")
    out = (
        args.results_dir
        / "profiles"
        / f"diffprune-step-{args.batch_size}x{args.seq_len}-{args.precision}-{args.threads}t.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, report)
    print(json.dumps({"written": str(out)}))


if __name__ == "__main__":
    main()
