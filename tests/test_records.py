"""Results records carry what is needed to trust and redo a run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from deltamix.core import precision
from deltamix.core.io import read_jsonl
from deltamix.core.records import append_record, make_record


@dataclass
class _Config:
    lr: float = 1e-3
    path: Path = Path("x")


def test_record_has_design_fields_and_appends(tmp_path: Path) -> None:
    record = make_record(
        "glue", "rte", "diffprune", 1, {"accuracy": 0.7}, "accuracy", _Config(), model="m", file_bytes=10
    )
    for key in (
        "experiment",
        "task",
        "method",
        "seed",
        "metrics",
        "main_metric",
        "main_value",
        "versions",
        "git_commit",
        "config",
        "train_seconds",
        "file_bytes",
        "stored_fraction",
        "model",
    ):
        assert key in record
    assert record["config"] == {"lr": 1e-3, "path": "x"}
    assert record["versions"]["torch"]
    import torch

    expected_accelerator = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    assert record["hardware"] == {
        "accelerator": expected_accelerator,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu": precision.cpu_model(),
        "cpu_bf16": precision.hardware_has_bf16("cpu"),
    }
    path = append_record(record, tmp_path)
    assert path == tmp_path / "glue.jsonl"
    assert read_jsonl(path)[0]["main_value"] == 0.7


def test_main_metric_must_be_a_metric() -> None:
    with pytest.raises(ValueError, match="main_metric"):
        make_record("scan", "jump", "none", 0, {"accuracy": 1.0}, "bleu", {})


def test_command_line_names_the_deltamix_command() -> None:
    from deltamix.core.records import command_line

    module_run = ["/x/src/deltamix/cli/main.py", "diffprune", "glue", "--task", "rte"]
    assert command_line(module_run) == "deltamix diffprune glue --task rte"
    assert (
        command_line(["benchmarks/bench_seqmix.py", "--threads", "1"])
        == "benchmarks/bench_seqmix.py --threads 1"
    )
