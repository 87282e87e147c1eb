"""experiments/precision_report.py: parity per recipe, and emulated bf16 kept out of what it cannot show."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "precision_report.py"
_spec = importlib.util.spec_from_file_location("precision_report", SCRIPT)
precision_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(precision_report)

NATIVE = {"accelerator": None, "cpu": "Xeon", "cpu_bf16": True}
EMULATED = {"accelerator": None, "cpu": "Xeon", "cpu_bf16": False}


def _record(model: str, precision: str, seed: int, value: float, seconds: float, hardware: Any) -> dict:
    record = {
        "experiment": "translation",
        "task": "multi30k",
        "method": "seqmix",
        "model": model,
        "seed": seed,
        "main_metric": "bleu",
        "main_value": value,
        "train_seconds": seconds,
        "config": {"precision": precision},
    }
    if hardware is not None:
        record["hardware"] = hardware
    return record


def _runs(model: str, third_bf16_hardware: dict) -> list[dict]:
    runs = []
    for seed, (fp32, bf16) in enumerate([(20.0, 20.2), (20.1, 20.1), (19.9, 20.3)]):
        runs.append(_record(model, "fp32", seed, fp32, 100.0, None if seed < 2 else EMULATED))
        hardware = None if seed < 2 else third_bf16_hardware
        runs.append(_record(model, "bf16", seed, bf16, 400.0 if hardware is EMULATED else 50.0, hardware))
    return runs


def test_emulated_bf16_counts_for_the_score_not_for_the_time() -> None:
    [row] = precision_report.parity_rows(_runs("transformer-small", EMULATED))
    assert row[3] == "20.20 ± 0.10 (3)"  # all three bf16 seeds
    assert row[-1] == "2.00 (2.00-2.00) (1 emulated left out)"  # 100 s / 50 s, the 400 s seed left out


def test_native_bf16_counts_everywhere() -> None:
    [row] = precision_report.parity_rows(_runs("transformer-small", NATIVE))
    assert row[3] == "20.20 ± 0.10 (3)"
    assert row[-1] == "2.00 (2.00-2.00)"


def test_an_emulated_lstm_run_is_left_out_since_its_lstm_ran_in_fp32() -> None:
    [row] = precision_report.parity_rows(_runs("lstm", EMULATED))
    assert row[2] == "20.00 ± 0.10 (3)"  # its fp32 runs all count
    assert row[3] == "20.15 ± 0.07 (2)"
    assert row[-1] == "2.00 (2.00-2.00)"
    bf16 = {"config": {"precision": "bf16"}}
    assert precision_report.emulated_bf16({**bf16, "hardware": EMULATED})
    assert not precision_report.emulated_bf16({"config": {"precision": "fp32"}, "hardware": EMULATED})
    assert not precision_report.emulated_bf16({**bf16, "hardware": NATIVE})
    assert not precision_report.emulated_bf16(
        {**bf16, "hardware": {**EMULATED, "accelerator": "NVIDIA H100"}}
    )
    assert not precision_report.emulated_bf16(bf16)  # recorded before runs named their hardware
