"""The benchmarks' "at least" targets (issue 31's training throughput) in results/README.md."""

from __future__ import annotations

from pathlib import Path

from deltamix.core.records import make_record
from deltamix.experiments.report import bench


def _throughput(recipe: str, method: str, speedup: float) -> dict:
    metrics = {"speedup": speedup, "speedup_min": speedup - 0.5, "speedup_max": speedup + 0.5}
    return make_record("bench", f"train-throughput-{recipe}", method, 0, metrics, "speedup", {})


def test_a_speed_up_target_is_met_at_or_above_its_goal(tmp_path: Path) -> None:
    records = [
        _throughput("multi30k", "default", 2.6),
        _throughput("multi30k", "default", 2.2),  # the latest record counts
        _throughput("scan", "default", 2.0),
        _throughput("multi30k", "token-batches", 1.05),
    ]
    text = bench.render(records, tmp_path).split("### ")[0]
    assert (
        "| seq2seq training speed-up of the defaults, Multi30k | 2.200 (1.700–2.700) | ≥ 2.5 | **missed** |"
        in text
    )
    assert "| seq2seq training speed-up of the defaults, SCAN | 2.000 (1.500–2.500) | ≥ 2 | met |" in text
    assert (
        "| token batches vs sentence batches per token, Multi30k | 1.050 (0.550–1.550) | ≥ 1 | met |" in text
    )
