"""experiments/token_batches.sh queues both batchings per seed; token_batch_report.py pairs them by seed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from queue_fakes import queue_project, run_queue

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "token_batch_report.py"
_spec = importlib.util.spec_from_file_location("token_batch_report", SCRIPT)
token_batch_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(token_batch_report)


def _record(seed: int, value: float, max_tokens: int | None, steps: int) -> dict:
    training = {"epochs": 3, "batch_size": 32}
    if max_tokens is not None:
        training["max_tokens"] = max_tokens
    return {
        "experiment": "scan",
        "task": "addprim_jump",
        "method": "geca+seqmix",
        "model": "lstm-seq2seq",
        "seed": seed,
        "main_metric": "exact_match",
        "main_value": value,
        "config": {"epochs": 3.0, "steps": steps, "training": training},
    }


def test_rows_pair_token_with_sentence_batches_by_seed(tmp_path: Path) -> None:
    records = [_record(s, v, None, 1938) for s, v in enumerate([0.70, 0.60, 0.80])]
    records += [_record(s, v, 2048, 426) for s, v in enumerate([0.50, 0.65, 0.60])]
    records.append(_record(0, 0.55, 2048, 426))  # a rerun of seed 0: the latest record counts
    (tmp_path / "scan.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    [row] = token_batch_report.comparison_rows(records)
    assert row[0] == "scan: addprim_jump (geca+seqmix, lstm-seq2seq, 3 epochs)"
    assert row[1:4] == ["2048 tokens", "70.0 ± 10.0 (3)", "60.0 ± 5.0 (3)"]
    assert row[4:8] == ["-10.0", "-20.0 / +5.0", "1 of 3", "1938 / 426"]
    bench = {
        "experiment": "bench",
        "method": "token-batches",
        "model": "SCAN addprim_jump, LSTM 512",
        "seed": 0,
        "main_value": 1.5,
        "config": {"setting": {"max_tokens": 2048}},
        "hardware": {"cpu": "Xeon"},
        "metrics": {
            "tokens_per_second": 3000.4,
            "speedup": 1.5,
            "speedup_min": 1.2,
            "speedup_max": 1.9,
            "target_tokens_per_step": 1969.2,
            "rounds": 21.0,
            "load_average": 0.4,
        },
    }
    (tmp_path / "bench.jsonl").write_text(json.dumps(bench) + "\n")
    page = token_batch_report.render(tmp_path)
    assert "| 2048 tokens |" in page  # the quality table, the benchmark record left out of it
    assert "| SCAN addprim_jump, LSTM 512 | 2048 | 3000 | 1.50 (1.20-1.90) | 1969 | 21 | 0.4 | Xeon |" in page


def test_the_queue_trains_each_seed_both_ways_at_the_same_epochs(tmp_path: Path) -> None:
    script, fake = queue_project(tmp_path, "token_batches.sh")
    calls = run_queue(script, fake, SEEDS="0 1")
    assert len(calls) == 4
    for args in calls:
        assert args[args.index("--epochs") + 1] == "3" and args[args.index("--precision") + 1] == "fp32"
        assert args[args.index("--results-dir") + 1] == "results/token-batches"
    cuts = [("--max-tokens" in args, args[args.index("--seed") + 1]) for args in calls]
    assert cuts == [(False, "0"), (True, "0"), (False, "1"), (True, "1")]
    assert run_queue(script, fake, SEEDS="0 1") == []  # finished runs are skipped
