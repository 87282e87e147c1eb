"""deltamix.experiments.report.bench: one table per benchmark task, latest record per method, any metric names."""

from __future__ import annotations

from deltamix.core.records import make_record
from deltamix.experiments.report.bench import render


def test_render_groups_by_task_and_keeps_latest(tmp_path) -> None:
    records = [
        make_record("bench", "diffprune-train-minilm", "full-ft", 0, {"step_s": 2.0}, "step_s", {}),
        make_record("bench", "diffprune-train-minilm", "full-ft", 0, {"step_s": 1.5}, "step_s", {}),
        make_record(
            "bench", "diffprune-train-minilm", "l0", 0, {"step_s": 1.8, "step_vs_full": 1.2}, "step_s", {}
        ),
        make_record("bench", "seqmix-throughput", "seqmix", 0, {"tokens_per_s": 12345.0}, "tokens_per_s", {}),
    ]
    text = render(records, tmp_path)
    assert text.count("### ") == 2
    train = text.split("### diffprune-train-minilm")[1].split("###")[0]
    assert "| method | step_s | step_vs_full | model | runs |" in train
    assert "| full-ft | 1.500 | – |" in train and "| 2 |" in train  # latest value, two runs
    assert "| l0 | 1.800 | 1.200 |" in train
    assert "12,345" in text.split("### seqmix-throughput")[1]


def test_benchmark_with_many_metrics_is_shown_a_row_per_metric(tmp_path) -> None:
    from deltamix.core.records import make_record
    from deltamix.experiments.report import bench

    metrics = {f"ratio_{i}": float(i) for i in range(20)}
    record = make_record("bench", "wide", "seqmix", 0, metrics, "ratio_3", {}, model="lstm")
    text = bench.render([record], tmp_path)
    assert "| metric | seqmix |" in text
    assert "| ratio_3 | 3.000 |" in text and "| runs | 1 |" in text


def test_targets_table_uses_the_latest_record_and_says_met_or_missed(tmp_path) -> None:
    from deltamix.experiments.report import bench

    def l0(ratio: float) -> dict:
        metrics = {"step_vs_full": ratio, "load_average": 2.5}
        return make_record(
            "bench", "diffprune-train-minilm", "diff-pruning-l0", 0, metrics, "step_vs_full", {}
        )

    seqmix = make_record(
        "bench", "seqmix-step-time", "seqmix", 0, {"step_time_ratio": 1.08}, "step_time_ratio", {}
    )
    text = bench.render([l0(1.4), l0(1.06), seqmix], tmp_path)
    cores = l0(1.0)["hardware"]["cpu_count"]
    assert f"| L0 step vs full fine-tuning, MiniLM | 1.060 | ≤ 1.1 | met | 2.5 / {cores} |" in text
    assert "| SeqMix step vs no augmentation | 1.080 | ≤ 1.05 | **missed** | – |" in text
    assert "BERT-base" not in text.split("### ")[0]  # no record, no row
    assert bench.targets_table([]) is None


def test_paired_ratio_spread_is_one_cell_and_a_target_can_be_another_method(tmp_path) -> None:
    from deltamix.experiments.report import bench

    def row(method: str, median: float, low: float, high: float) -> dict:
        metrics = {
            "step_vs_full": median,
            "step_vs_full_min": low,
            "step_vs_full_max": high,
            "load_average_max": 3.0,
        }
        return make_record("bench", "diffprune-train-minilm-seq24", method, 0, metrics, "step_vs_full", {})

    records = [row("diff-pruning-fixed-mask", 0.7, 0.65, 0.8), row("peft-lora", 0.68, 0.6, 0.75)]
    text = bench.render(records, tmp_path)
    table = text.split("### diffprune-train-minilm-seq24")[1]
    assert "| method | step_vs_full | load_average_max | model | runs |" in table
    assert "| diff-pruning-fixed-mask | 0.700 (0.650–0.800) | 3.000 |" in table
    assert (
        "| fixed-mask step vs full FT, MiniLM, 8 x 24 tokens | 0.700 (0.650–0.800) | ≤ peft-lora (0.680) | **missed** |"
        in text
    )
    records[1] = row("peft-lora", 0.72, 0.6, 0.75)
    assert "≤ peft-lora (0.720) | met |" in bench.render(records, tmp_path)
