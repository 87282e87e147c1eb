"""Multi-task serving demo: the diffs of several GLUE runs on one base model, evaluated one after another.

One copy of the base model is loaded; each run's diff, with its dense head, goes into a
:class:`~deltamix.diffprune.DiffBank`. Tasks have heads of different sizes (1 output for STS-B, 3
for MNLI, 2 otherwise); the bank installs each diff's own head on activation. Switching task =
``bank.activate(task)`` (revert one sparse diff and head, apply another, O(nnz + head)). Each task is
evaluated on its dev set and compared with the metrics its own run stored (``metrics.json``).
`serve_records` turns the result into results records (``results/glue-serve.jsonl``, one per task),
which ``deltamix report`` shows next to the runs' own numbers.

>>> results = serve([Path("runs/glue/rte/diffprune-t0.005/seed0"), ...], data_dir="glue_data")  # doctest: +SKIP
>>> records = serve_records(results)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from deltamix.core.errors import DeltamixError
from deltamix.core.records import make_record
from deltamix.data.glue import get_task
from deltamix.diffprune import DiffBank, SparseDiff
from deltamix.experiments.glue.evaluation import default_device, evaluate
from deltamix.experiments.glue.run_data import load_classifier, prepare_data
from deltamix.experiments.glue.settings import DEFAULT_MODEL_NAME, GlueRunConfig

SERVE_EXPERIMENT = "glue-serve"

logger = logging.getLogger(__name__)


@dataclass
class ServedTask:
    """One run loaded for serving: its task, run folder, stored metrics and config."""

    name: str
    task: str
    run_dir: Path
    expected: dict[str, float]
    config: dict[str, Any]


def _read_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, float], Path]:
    config_path, metrics_path, diff_path = (
        run_dir / "config.json",
        run_dir / "metrics.json",
        run_dir / "diff.safetensors",
    )
    for path in (config_path, metrics_path, diff_path):
        if not path.is_file():
            raise DeltamixError(
                f"{run_dir} is not a finished diff pruning run: {path.name} is missing "
                "(serve takes the --output-dir folders of `deltamix diffprune glue` runs of a diffprune method)"
            )
    return json.loads(config_path.read_text()), json.loads(metrics_path.read_text()), diff_path


@dataclass
class _Bank:
    """The shared base model with every run's diff in a DiffBank, and what each task is scored on."""

    base: torch.nn.Module
    bank: DiffBank
    tokenizer: Any
    served: list[ServedTask]
    evals: dict[str, dict[str, Any]]
    diffs: dict[str, dict[str, int]]
    device: torch.device


def _load_bank(runs, data_dir: str | Path | None, max_eval_examples: int | None) -> _Bank:
    """One base model, each run's diff added to its bank, and each task's tokenized dev sets."""
    model_paths = {config["model_path"] for _, config, _, _ in runs}
    if len(model_paths) != 1:
        raise DeltamixError(f"the runs use different base models: {sorted(model_paths)}")
    tasks = [config["task"] for _, config, _, _ in runs]
    if len(set(tasks)) != len(tasks):
        raise DeltamixError(f"each task may be served once; got {tasks}")
    model_path = model_paths.pop()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    # The shared model; each diff carries its task's head, which the bank installs on activate().
    base = load_classifier(
        GlueRunConfig(task=tasks[0], model=model_path, output_dir="unused"), get_task(tasks[0])
    )
    device = default_device()
    base.to(device).eval()
    loaded = _Bank(base, DiffBank(base), tokenizer, [], {}, {}, device)
    for run_dir, config, expected, diff_path in runs:
        spec = get_task(config["task"])
        diff = SparseDiff.load(diff_path)
        loaded.diffs[spec.name] = {"diff_bytes": diff_path.stat().st_size, "nnz": diff.nnz}
        loaded.bank.add(spec.name, diff)
        run_config = GlueRunConfig(
            task=spec.name,
            model=model_path,
            data_dir=str(data_dir) if data_dir is not None else config.get("data_dir"),
            max_length=config["max_length"],
            max_eval_examples=max_eval_examples,
            output_dir="unused",
        )
        _, loaded.evals[spec.name], _ = prepare_data(run_config, tokenizer, with_train=False)
        loaded.served.append(ServedTask(spec.name, spec.name, run_dir, expected, config))
    return loaded


def _serve_task(
    loaded: _Bank,
    task: ServedTask,
    results: dict[str, Any],
    eval_batch_size: int,
    max_eval_examples,
    tolerance,
) -> None:
    """Activate ``task``'s diff, score it, and fold the scores into ``results["tasks"][task.name]``."""
    start = time.perf_counter()
    loaded.bank.activate(task.name)
    results["switch_seconds"].append(time.perf_counter() - start)
    start = time.perf_counter()
    metrics = evaluate(task.task, loaded.base, loaded.evals[task.name], loaded.tokenizer, eval_batch_size)
    seconds = time.perf_counter() - start
    # Comparable only when the run scored the same dev examples (its own max_eval_examples).
    same_examples = task.config.get("max_eval_examples") == max_eval_examples
    compared = {k: v for k, v in task.expected.items() if k in metrics} if same_examples else {}
    worst = max((abs(metrics[k] - v) for k, v in compared.items()), default=None)
    entry = results["tasks"].setdefault(task.name, {"rounds": [], "max_abs_diff": None})
    if entry["max_abs_diff"] is not None and worst is not None:  # the worst over all rounds
        worst = max(worst, entry["max_abs_diff"])
    entry["rounds"].append(metrics)
    entry.update(
        metrics=metrics,
        expected=task.expected,
        max_abs_diff=worst,
        matches=None if worst is None else worst <= tolerance,
        eval_seconds=seconds,
        run_dir=str(task.run_dir),
        method=task.config.get("method"),
        seed=task.config.get("seed"),
        model=task.config.get("model") or DEFAULT_MODEL_NAME,
        **loaded.diffs[task.name],
    )
    logger.info("%s: %s (stored run: %s)", task.name, metrics, compared)


def serve(
    run_dirs: list[Path],
    data_dir: str | Path | None = None,
    eval_batch_size: int = 64,
    max_eval_examples: int | None = None,
    rounds: int = 1,
    tolerance: float = 1e-6,
) -> dict[str, Any]:
    """Evaluate every run's task from one shared base model, switching diffs in a DiffBank.

    Args:
        run_dirs: output folders of finished diff pruning runs, all on the same base model; each task
            at most once.
        data_dir: GLUE TSV folder (None = the Hub), as for the runs.
        eval_batch_size: evaluation batch size.
        max_eval_examples: evaluate on the first N dev examples (a run that scored another set of
            dev examples is not compared: its ``matches`` and ``max_abs_diff`` are None).
        rounds: how many times to cycle through all tasks (>1 shows switching back and forth is exact).
        tolerance: largest allowed difference to a run's stored metrics.

    Returns:
        ``{"tasks": {name: {"metrics", "expected", "max_abs_diff", "matches", "eval_seconds", "rounds",
        "run_dir", "method", "seed", "model", "diff_bytes", "nnz"}}, "switch_seconds": [...],
        "base_params", "stored_nnz", "all_match", "settings"}``.

    Raises:
        DeltamixError: a folder is not a finished diffprune run, runs use different base models, or
            a task appears twice.
    """
    if not run_dirs:
        raise ValueError("serve needs at least one run folder")
    if rounds <= 0:
        raise ValueError(f"rounds must be > 0, got {rounds}")
    loaded = _load_bank([(Path(d), *_read_run(Path(d))) for d in run_dirs], data_dir, max_eval_examples)
    results: dict[str, Any] = {"tasks": {}, "switch_seconds": []}
    for _ in range(rounds):
        for task in loaded.served:
            _serve_task(loaded, task, results, eval_batch_size, max_eval_examples, tolerance)
    loaded.bank.activate(None)
    results["base_params"] = sum(p.numel() for p in loaded.base.parameters())
    results["stored_nnz"] = sum(entry["nnz"] for entry in loaded.diffs.values())
    # Tasks that could not be compared (other dev examples than their run's) do not count against it.
    results["all_match"] = all(entry["matches"] is not False for entry in results["tasks"].values())
    results["settings"] = {
        "runs": [str(d) for d in run_dirs],
        "data_dir": None if data_dir is None else str(data_dir),
        "eval_batch_size": eval_batch_size,
        "max_eval_examples": max_eval_examples,
        "rounds": rounds,
        "tolerance": tolerance,
        "device": loaded.device.type,
    }
    return results


def serve_records(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One results record per served task (experiment ``glue-serve``) from a `serve` result.

    Each record's metrics are those the task scored from the shared bank in the last round;
    ``run_metrics`` are the ones its own run stored, ``max_abs_diff`` and ``matches`` compare them
    (None where the run scored other dev examples than this call).
    The records of one call share a ``serve_id`` and name all ``served_tasks``, the median switch time
    over every ``activate`` call, and the bytes of the diff files and of the base model in fp32.
    """
    serve_id = uuid.uuid4().hex
    tasks = sorted(results["tasks"])
    switch_ms = [1000 * s for s in results["switch_seconds"]]
    records = []
    for name in tasks:
        entry = results["tasks"][name]
        records.append(
            make_record(
                SERVE_EXPERIMENT,
                name,
                str(entry["method"]),
                int(entry["seed"]) if entry["seed"] is not None else 0,
                entry["metrics"],
                "score" if "score" in entry["metrics"] else sorted(entry["metrics"])[0],
                results["settings"],
                model=entry["model"],
                stored_fraction=entry["nnz"] / results["base_params"],
                file_bytes=entry["diff_bytes"],
                eval_seconds=entry["eval_seconds"],
                run_dir=entry["run_dir"],
                run_metrics=entry["expected"],
                max_abs_diff=entry["max_abs_diff"],
                matches=entry["matches"],
                rounds_metrics=entry["rounds"],
                serve_id=serve_id,
                served_tasks=tasks,
                switches=len(switch_ms),
                switch_ms_median=statistics.median(switch_ms),
                switch_ms_max=max(switch_ms),
                base_params=results["base_params"],
                base_fp32_bytes=4 * results["base_params"],
            )
        )
    return records
