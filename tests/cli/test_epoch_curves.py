"""experiments/epoch_curves.py: the clean validation loss of each epoch snapshot of a finished run."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from deltamix.core.io import read_jsonl
from deltamix.data.batching import encode_pairs
from deltamix.data.tokenization import load_tokenizer
from deltamix.training.loop import load_model


def test_one_record_per_run_with_a_row_per_snapshot(averaged_run, experiment_script, tmp_path: Path) -> None:
    run_dir, pairs = averaged_run
    script = experiment_script("epoch_curves")
    script.main([str(run_dir), "--results-dir", str(tmp_path)])
    (record,) = read_jsonl(tmp_path / "translation-curves.jsonl")
    assert record["experiment"] == "translation-curves" and record["task"] == "pairs"
    snapshots = sorted((run_dir / "epochs").glob("step-*.safetensors"))
    assert [row["snapshot"] for row in record["snapshots"]] == [path.name for path in snapshots]
    metrics = record["metrics"]
    assert metrics["valid_nll_change_over_snapshots"] == pytest.approx(
        record["snapshots"][-1]["valid_nll"] - record["snapshots"][0]["valid_nll"]
    )
    # The mean of the snapshots is what model/ holds: its loss, computed from model/ directly.
    model, _ = load_model(run_dir / "model")
    tokenizer = load_tokenizer(run_dir)
    direct = script.clean_loss(model, encode_pairs(pairs, tokenizer), tokenizer, batch_size=7)
    assert metrics["valid_nll_averaged"] == pytest.approx(direct["valid_nll"], rel=1e-5)
    # ... and each snapshot's, from its file.
    model.load_state_dict(load_file(str(snapshots[0])))
    first = script.clean_loss(model, encode_pairs(pairs, tokenizer), tokenizer, batch_size=64)
    assert record["snapshots"][0]["valid_nll"] == pytest.approx(first["valid_nll"], rel=1e-5)
    assert 0.0 <= first["valid_token_accuracy"] <= 1.0 and first["valid_tokens"] > len(pairs)


def test_the_report_shows_each_run_by_epoch(averaged_run, experiment_script, tmp_path: Path) -> None:
    from deltamix.experiments.report import generate_report

    run_dir, _ = averaged_run
    experiment_script("epoch_curves").main([str(run_dir), "--results-dir", str(tmp_path)])
    (record,) = read_jsonl(tmp_path / "translation-curves.jsonl")
    text = generate_report(tmp_path, readme=None).read_text(encoding="utf-8")
    assert "## Validation loss over the last epochs" in text and "### pairs, 3 epochs" in text
    first, last = record["snapshots"]
    row = f"| {record['method']} (seed 0) | {first['valid_nll']:.4f} | {last['valid_nll']:.4f} |"
    assert row in text and "| run | epoch 2 | epoch 3 | mean of snapshots | Δ |" in text


def test_records_carry_the_runs_augmentation_and_task_for_the_report(
    averaged_run, experiment_script, tmp_path: Path
) -> None:
    """A curve record holds the run's resolved SeqMix config, so the report labels a run with the
    authors' partner extent as such; a run on a slice of the data is its own task."""
    import json

    from deltamix.experiments.report import translation_curves
    from deltamix.experiments.text.run import TextRunConfig

    run_dir, _ = averaged_run
    experiment_script("epoch_curves").main([str(run_dir), "--results-dir", str(tmp_path)])
    (record,) = read_jsonl(tmp_path / "translation-curves.jsonl")
    assert record["config"]["seqmix"] == json.loads((run_dir / "config.json").read_text())["seqmix"]
    main = {
        **record,
        "config": {**record["config"], "seqmix": {**record["config"]["seqmix"], "partner_extent": "main"}},
    }
    text = translation_curves.render([record, main], tmp_path)
    assert "| seqmix (seed 0) |" in text and "| seqmix (partner_extent main) (seed 0) |" in text
    config = TextRunConfig(kind="translate", train_limit=5000)
    assert config.record_task("multi30k-de-en") == "multi30k-de-en (train[:5000])"
    assert TextRunConfig(kind="translate").record_task("multi30k-de-en") == "multi30k-de-en"
