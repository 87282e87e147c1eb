"""One GLUE run as a library function: data, the method's stages on transformers' Trainer, outputs, record.

>>> from deltamix.experiments.glue.run import GlueRunConfig, run_glue
>>> record = run_glue(GlueRunConfig(task="rte", method="diffprune", data_dir="glue_data"))  # doctest: +SKIP

Stages (each a Trainer run in ``output_dir/<stage>/``, evaluated each epoch on the selection set;
the Trainer code is in :mod:`deltamix.experiments.glue.stages`, each method's in
:mod:`deltamix.experiments.glue.methods`):

- ``full``, ``last-layer``, ``bitfit``, ``lora``, ``shira``, ``supertuning``: one stage ``train``;
  the best epoch on the selection set is kept (``load_best_model_at_end``).
- ``diffprune`` / ``diffprune-structured``: ``l0`` (diff weights and gates with the L0 penalty; the
  final state is kept, since the score before projection is not that of a stored model),
  ``projection`` (magnitude projection to the target sparsity), ``fixed-mask`` (best epoch).

The selection set (``select_on``): by default a slice held out from train (seeded by ``seed``,
disjoint from the examples trained on; `deltamix.data.glue.holdout_split`); the dev set is then
evaluated once, on the chosen model, and that is the reported score. With ``select_on="dev"`` (the
authors' way, and what runs made before the option did) the stages select on dev and the reported dev
score is the best of its evaluations, an optimistic figure. Each record also keeps the held-out
score (``metrics["holdout_score"]``) and the dev set's majority-class score (``majority_class``).
- ``diffprune-nonadaptive``: as above with ``learn_gates=False``; its stage 1, ``full-ft``, is full
  fine-tuning of a dense diff at the full fine-tuning learning rate.

A run can be interrupted (even by SIGKILL) and started again with the same command: finished stages
are loaded from their saved final state, an unfinished one resumes from its last complete checkpoint
(``resume_from_checkpoint``); the record is appended exactly once (``records.commit_record``), and a
restart of a finished run (``run_done.json`` present) returns its record without training again.
Multi-GPU: ``accelerate launch -m deltamix.cli.main diffprune glue ...`` or ``torchrun``; Trainer
does the distribution, files and the record are written by the main process only.

The settings are `deltamix.experiments.glue.settings.GlueRunConfig`; the data and models come from
:mod:`deltamix.experiments.glue.run_data`, the scores from :mod:`deltamix.experiments.glue.evaluation`.
The reported metrics are those of the stored file: after training, the diff (adapter, or trained
tensors) is saved, loaded back onto a fresh copy of the base model, and evaluated.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from transformers import AutoTokenizer, set_seed

from deltamix.core.io import atomic_write_json
from deltamix.core.precision import configure_threads
from deltamix.core.records import commit_record, finish_commit, make_record
from deltamix.core.run_folder import check_same_run
from deltamix.data.glue import GlueTask, get_task
from deltamix.experiments.glue.chance import majority_class_record
from deltamix.experiments.glue.evaluation import default_device, evaluate, predict
from deltamix.experiments.glue.methods import GlueMethod, glue_precision
from deltamix.experiments.glue.parts import PreparedModel, split_parameters, tensor_stats
from deltamix.experiments.glue.resume import (
    LATER_STAGE_SETTINGS,
    MAY_DIFFER_ON_RESTART,
    VALUES_WHEN_ABSENT,
    fixed_mask_started,
)
from deltamix.experiments.glue.run_data import (
    artifact_bytes,
    load_artifact,
    load_classifier,
    prepare_data,
    prepare_run_data,
)
from deltamix.experiments.glue.settings import (
    DEFAULT_MODEL_NAME,
    HOLDOUT_SPLIT,
    SELECT_ON,
    SMALL_TASK_EXAMPLES,
    GlueRunConfig,
    default_mask_epochs,
    folder_select_on,
)
from deltamix.experiments.glue.stages import adopt_first_stage, remove_checkpoints, run_stage

__all__ = [
    "DEFAULT_MODEL_NAME",
    "HOLDOUT_SPLIT",
    "MAY_DIFFER_ON_RESTART",
    "RUN_DONE",
    "SELECT_ON",
    "SMALL_TASK_EXAMPLES",
    "VALUES_WHEN_ABSENT",
    "GlueRunConfig",
    "artifact_bytes",
    "default_mask_epochs",
    "evaluate",
    "folder_select_on",
    "load_artifact",
    "load_classifier",
    "predict",
    "prepare_data",
    "prepare_run_data",
    "run_glue",
    "run_stage",
    "tensor_stats",
]  # fmt: skip

logger = logging.getLogger(__name__)

# Written (with the record) when a run has finished; a restart then returns that record.
RUN_DONE = "run_done.json"


@dataclasses.dataclass
class _Trained:
    """What a run's training left: the stored model's info, the stage logs, and the pretrained body."""

    prepared: PreparedModel
    logs: list[dict[str, Any]]
    base: dict[str, torch.Tensor]


def resolved_settings(
    config: GlueRunConfig, train, holdout, evals: dict[str, Any], mask_epochs: int
) -> dict[str, Any]:
    """A run folder's ``config.json``: every setting of ``config`` plus the values resolved from them."""
    stages_after_first = config.glue_method.stores_diff  # the projection and the fixed-mask stage
    return {
        **dataclasses.asdict(config),
        "model_path": config.model_path(),
        "resolved_lr": config.resolved_lr(),
        "resolved_l0_lambda": config.resolved_l0_lambda(),
        "resolved_mask_lr": config.resolved_mask_lr() if stages_after_first else None,
        "resolved_mask_epochs": mask_epochs if stages_after_first else None,
        "train_examples": len(train),
        "eval_examples": {split: len(d) for split, d in evals.items()},
        "holdout_examples": None if holdout is None else len(holdout),
    }


def _finished_record(config: GlueRunConfig, out_dir: Path, resolved: dict[str, Any]) -> dict[str, Any] | None:
    """The record of a finished run in ``out_dir`` (``{}`` off the main process), or None to train.

    Raises:
        DeltamixError: ``out_dir`` holds a run with other settings (`check_same_run`).
    """
    done_marker = out_dir / RUN_DONE
    may_differ = MAY_DIFFER_ON_RESTART
    if config.glue_method.stores_diff and not done_marker.exists() and not fixed_mask_started(out_dir):
        may_differ = (*MAY_DIFFER_ON_RESTART, *LATER_STAGE_SETTINGS)  # stopped before its fixed-mask stage
    check_same_run(out_dir / "config.json", resolved, may_differ, VALUES_WHEN_ABSENT)
    main_process = PartialState().is_main_process
    if main_process:
        finish_commit(done_marker)  # a run killed while committing its record completes it here
    PartialState().wait_for_everyone()
    if not done_marker.is_file():
        return None
    logger.info("%s already finished (%s): not training again", out_dir, done_marker.name)
    return json.loads(done_marker.read_text())["record"] if main_process else {}


def _score(config: GlueRunConfig, spec: GlueTask, trained: _Trained, data, out_dir: Path) -> dict[str, Any]:
    """Store the task file, load it onto a fresh base model, score it; the record's measured fields."""
    method, (tokenizer, holdout, evals) = config.glue_method, data
    meta = {"task": spec.name, "method": config.method, "model": config.model_path()}
    path = method.save(trained.prepared, out_dir, meta)
    start = time.perf_counter()
    stored_model = load_artifact(config, spec, config.method, path).to(default_device())
    # Dev once, on the chosen model; the held-out score beside it, prefixed holdout_.
    scored = {**evals, **({HOLDOUT_SPLIT: holdout} if holdout is not None else {})}
    metrics = evaluate(spec.name, stored_model, scored, tokenizer, config.eval_batch_size)
    eval_seconds = time.perf_counter() - start
    stats, stored_params = method.stored_counts(trained.prepared, path, stored_model, trained.base)
    return {
        "path": path, "metrics": metrics, "eval_seconds": eval_seconds, "stats": stats,
        "stored_params": stored_params,
    }  # fmt: skip


def _record(
    config: GlueRunConfig, spec: GlueTask, resolved: dict[str, Any], trained: _Trained, scores, evals
) -> dict[str, Any]:
    """The results record of a finished run."""
    prepared, logs, path = trained.prepared, trained.logs, scores["path"]
    return make_record(
        "glue",
        spec.name,
        config.method,
        config.seed,
        scores["metrics"],
        "score",
        resolved,
        model=config.model if config.model is not None else DEFAULT_MODEL_NAME,
        stored_fraction=scores["stored_params"] / prepared.base_params,
        file_bytes=artifact_bytes(path),
        train_seconds=sum(log["seconds"] for log in logs),
        eval_seconds=scores["eval_seconds"],
        target_sparsity=config.target_sparsity,
        stored_params=scores["stored_params"],
        base_params=prepared.base_params,
        head_params=prepared.head_params,
        method_details=prepared.details,
        stages=[{k: v for k, v in log.items() if k != "history"} for log in logs],
        dev_history={log["stage"]: log.get("history", []) for log in logs},
        tensor_stats=scores["stats"],
        output_dir=str(Path(config.output_dir)),
        artifact=str(path),
        data_source=config.data_dir or "hub:nyu-mll/glue",
        majority_class=majority_class_record(spec.name, evals),
    )


def _clean_up(config: GlueRunConfig, method: GlueMethod, logs: list[dict[str, Any]], out_dir: Path) -> None:
    """Delete the stage folders of a finished run (the first stage's final state stays if kept)."""
    if config.keep_checkpoints:
        return
    for log in logs:
        stage_dir = out_dir / log["stage"]
        if config.keep_first_stage and log["stage"] == method.first_stage:
            remove_checkpoints(stage_dir)  # its final state and marker stay, for first_stage_from
        elif stage_dir.is_dir():
            shutil.rmtree(stage_dir)


def run_glue(config: GlueRunConfig) -> dict[str, Any]:
    """Run one GLUE experiment end to end and return its results record.

    Writes into ``config.output_dir``: ``config.json`` (resolved config), the task file
    (``diff.safetensors``, ``adapter/`` or ``trained.safetensors``), ``metrics.json`` and
    ``run_done.json`` (the record); appends the record to ``config.results_dir/glue.jsonl`` once.
    If ``run_done.json`` is already there, returns its record without training.

    Raises:
        ValueError, DataUnavailableError, DataFormatError: bad task, method or data.
    """
    # The folder records the precision the run trains in, not "auto" (which differs by machine).
    out_dir = Path(config.output_dir)
    config = dataclasses.replace(
        config,
        precision=glue_precision(config.method, config.precision),
        select_on=folder_select_on(config, out_dir),
    )
    configure_threads(config.threads)
    spec, method = get_task(config.task), config.glue_method
    main_process = PartialState().is_main_process
    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(config.model_path())
    train, holdout, evals, full_size = prepare_run_data(config, tokenizer)
    mask_epochs = config.mask_epochs or default_mask_epochs(full_size)
    model = load_classifier(config, spec)
    body, _ = split_parameters(model)
    base = {name: p.detach().cpu().clone() for name, p in body.items()}
    resolved = resolved_settings(config, train, holdout, evals, mask_epochs)
    finished = _finished_record(config, out_dir, resolved)
    if finished is not None:
        return finished
    if main_process:
        atomic_write_json(out_dir / "config.json", resolved)
    if config.first_stage_from is not None:
        if main_process:
            adopt_first_stage(Path(config.first_stage_from), out_dir, resolved, method.first_stage)
        PartialState().wait_for_everyone()
    # The stages choose their epoch on the held-out slice (dev is not looked at until the end), or on dev.
    data = (train, {HOLDOUT_SPLIT: holdout} if holdout is not None else evals, tokenizer)
    logs, prepared = method.train(config, model, data, mask_epochs)
    if not main_process:
        return {}
    trained = _Trained(prepared, logs, base)
    scores = _score(config, spec, trained, (tokenizer, holdout, evals), out_dir)
    atomic_write_json(out_dir / "metrics.json", scores["metrics"])
    record = _record(config, spec, resolved, trained, scores, evals)
    # Exactly once, even if killed here: the record goes to glue.jsonl, then run_done.json marks the run done.
    commit_record(record, config.results_dir, out_dir / RUN_DONE, {"metrics": scores["metrics"]})
    _clean_up(config, method, logs, out_dir)
    logger.info("%s %s seed %d: %s", spec.name, config.method, config.seed, scores["metrics"])
    return record
