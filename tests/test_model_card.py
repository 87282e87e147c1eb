"""Model cards: the Hub's front matter (read back by huggingface_hub) and the text, from a record."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from deltamix.core.model_card import ModelCardInfo, render_model_card, write_model_card

RECORD = {
    "experiment": "glue", "task": "mrpc", "method": "diffprune", "seed": 1,
    "model": "sentence-transformers/all-MiniLM-L6-v2", "metrics": {"accuracy": 0.8125, "f1": 0.875},
    "stored_params": 22714, "base_params": 22713216, "file_bytes": 162520,
    "command": "deltamix diffprune glue --task mrpc --seed 1", "git_commit": "2163dd9",
    "versions": {"torch": "2.13.0", "transformers": "5.1.0"},
}  # fmt: skip


def test_a_record_gives_a_card_the_hub_reads(tmp_path: Path) -> None:
    path = write_model_card(tmp_path, ModelCardInfo.from_record(RECORD))
    assert path == tmp_path / "README.md"
    card = ModelCard.load(path)
    assert card.data.base_model == RECORD["model"] and card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "text-classification" and card.data.datasets == ["nyu-mll/glue"]
    assert {"deltamix", "diff-pruning", "glue", "mrpc"} <= set(card.data.tags)
    results = {
        r.metric_type: (r.metric_value, r.dataset_config, r.dataset_split) for r in card.data.eval_results
    }
    assert results == {"accuracy": (0.8125, "mrpc", "validation"), "f1": (0.875, "mrpc", "validation")}
    text = card.text
    assert "22,714 non-zero entries of 22,713,216 base parameters (0.100%)" in text
    assert "162,520 bytes" in text and "| accuracy | 0.8125 |" in text
    assert RECORD["command"] in text and "deltamix commit 2163dd9" in text and "| torch | 2.13.0 |" in text


def test_overrides_and_a_method_without_a_diff() -> None:
    info = ModelCardInfo.from_record({**RECORD, "method": "lora", "stored_params": None}, library_name="peft")
    text = render_model_card(info)
    assert "library_name: peft" in text and "- lora" in text and "## Sparsity" not in text
    assert "with LoRA adapters" in text and "## Use" not in text  # a PEFT folder is loaded by PEFT
    other = render_model_card(ModelCardInfo(base_model="t5-small", method="seqmix", task="cogs"))
    assert "base_model: t5-small" in other and "with seqmix" in other and "model-index" not in other


def test_metrics_are_shown_as_measured_and_unknown_fields_refused() -> None:
    text = render_model_card(ModelCardInfo.from_record({**RECORD, "metrics": {"pearson": 0.9, "mse": 1.75}}))
    assert "| pearson | 0.9000 |" in text and "| mse | 1.7500 |" in text
    with pytest.raises(TypeError):
        ModelCardInfo.from_record(RECORD, colour="red")
