"""What each --method trains, and PEFT adapters sized to diff pruning's budget."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from transformers import AutoModelForSequenceClassification

from deltamix.experiments.glue.methods import (
    DIFF_METHODS,
    METHODS,
    check_method,
    diff_budget,
    head_module_names,
    linear_targets,
    lora_rank_for_budget,
    prepare_dense,
    prepare_peft,
)


@pytest.fixture()
def model(tiny_model_dir: Path):
    return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)


def _trainable(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_method_names() -> None:
    assert check_method("lora") == "lora"
    assert set(DIFF_METHODS) <= set(METHODS)
    with pytest.raises(ValueError, match="unknown method 'adapters'"):
        check_method("adapters")


def test_head_and_budget(model) -> None:
    assert head_module_names(model) == ["classifier"]
    d = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("classifier."))
    assert diff_budget(model, 0.005) == math.ceil(0.005 * d)
    with pytest.raises(ValueError, match="target_sparsity"):
        diff_budget(model, 0.0)


def test_bitfit_trains_biases_and_head(model) -> None:
    prepared = prepare_dense(model, "bitfit")
    trainable = _trainable(model)
    assert trainable and all(n.endswith(".bias") or n.startswith("classifier.") for n in trainable)
    assert {"classifier.weight", "bert.encoder.layer.0.attention.self.query.bias"} <= trainable
    assert (
        prepared.stored_params == sum(p.numel() for n, p in model.named_parameters() if n in trainable) - 66
    )


def test_last_layer_trains_last_block_pooler_and_head(model) -> None:
    prepare_dense(model, "last-layer")
    trainable = _trainable(model)
    assert all(".layer.1." in n or ".pooler." in n or n.startswith("classifier.") for n in trainable)
    assert any(".layer.1." in n for n in trainable) and not any(".layer.0." in n for n in trainable)


@pytest.mark.parametrize("method", ["lora", "shira", "supertuning"])
def test_peft_matches_diff_budget(model, method: str) -> None:
    budget = diff_budget(model, 0.01)
    targets = linear_targets(model)  # before PEFT wraps the layers
    per_rank = sum(m.in_features + m.out_features for m in targets.values())
    rank = lora_rank_for_budget(model, budget)
    prepared = prepare_peft(model, method, 0.01, seed=0)
    if method == "supertuning":
        # int(m * n * (1 - s)) per layer: within one entry per layer of the budget
        assert budget - len(targets) <= prepared.stored_params <= budget
    else:
        assert prepared.details["r"] == rank
        assert prepared.stored_params == rank * per_rank
        assert abs(prepared.stored_params - budget) <= per_rank / 2
    # the head trains and is not counted as stored adapter values
    assert any("classifier" in n and p.requires_grad for n, p in prepared.model.named_parameters())
