"""`write_adapter_card`: the Hub model card of a saved diff pruning adapter, read back with huggingface_hub."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from peft import get_peft_model
from peft_models import tiny_bert

from deltamix.diffprune.peft import DiffPruningPeftConfig
from deltamix.diffprune.peft.card import write_adapter_card


def _projected_adapter() -> torch.nn.Module:
    base = tiny_bert()
    base.name_or_path = "tiny-bert"  # what from_pretrained sets, and PEFT records
    model = get_peft_model(base, DiffPruningPeftConfig(task_type="SEQ_CLS", target_sparsity=0.05))
    model.base_model.state().w.data.normal_()  # a diff to project
    model.project_()
    return model


def test_the_card_names_base_method_sparsity_metrics_and_command(tmp_path: Path) -> None:
    model = _projected_adapter()
    model.save_pretrained(tmp_path)
    path = write_adapter_card(
        model, tmp_path, task="sst2", metrics={"accuracy": 0.875}, command="python t.py"
    )
    card = ModelCard.load(path)
    assert card.data.base_model == "tiny-bert" and card.data.library_name == "peft"
    assert {"deltamix", "peft", "diff-pruning"} <= set(card.data.tags)
    assert f"{model.nnz():,} non-zero entries of {model.num_gated:,} base parameters" in card.text
    assert (tmp_path / "adapter_model.safetensors").stat().st_size > 0
    assert f"holds {(tmp_path / 'adapter_model.safetensors').stat().st_size:,} bytes" in card.text
    assert "| accuracy | 0.8750 |" in card.text and "python t.py" in card.text
    assert "PeftModel.from_pretrained" in card.text


def test_a_folder_without_a_saved_adapter_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="save_pretrained"):
        write_adapter_card(_projected_adapter(), tmp_path, task="sst2")
    assert not (tmp_path / "README.md").exists()
