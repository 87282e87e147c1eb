"""One object per GLUE method: the registry, and each method's stored file giving back the model it trained."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from deltamix.experiments.glue import GLUE_METHODS, METHODS, GlueMethod, GlueRunConfig, get_method
from deltamix.experiments.glue.methods import DiffPruningMethod


def _tiny(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32
    )
    return BertForSequenceClassification(config).eval()


def _settings(method: str) -> GlueRunConfig:
    return GlueRunConfig(task="rte", method=method, model="tiny", target_sparsity=0.05, output_dir="unused")


def test_the_registry_names_every_method_once_and_refuses_others() -> None:
    assert tuple(GLUE_METHODS) == METHODS
    assert all(isinstance(m, GlueMethod) and GLUE_METHODS[m.name] is m for m in GLUE_METHODS.values())
    assert get_method("diffprune-nonadaptive").first_stage == "full-ft"
    assert get_method("diffprune").first_stage == "l0" and get_method("bitfit").first_stage == "train"
    with pytest.raises(ValueError, match="unknown method 'adapters'"):
        get_method("adapters")


@pytest.mark.parametrize("name", METHODS)
def test_the_stored_file_applied_to_a_fresh_model_gives_the_trained_outputs(
    name: str, tmp_path: Path
) -> None:
    method = get_method(name)
    prepared = method.prepare(_tiny(), _settings(name))
    with torch.no_grad():  # stands in for training: move every trainable value
        for parameter in prepared.model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    if isinstance(method, DiffPruningMethod):
        prepared.model.project_(0.05)
    inputs = {"input_ids": torch.randint(0, 40, (3, 7)), "attention_mask": torch.ones(3, 7, dtype=torch.long)}
    prepared.model.eval()
    with torch.no_grad():
        expected = prepared.model(**inputs).logits
    path = method.save(prepared, tmp_path, {"task": "rte", "method": name, "model": "tiny"})
    assert path.name == method.stored_file and path.exists()
    stored = method.apply(_tiny(), path).eval()
    with torch.no_grad():
        assert not torch.allclose(_tiny()(**inputs).logits, expected)  # the file carries a change
        torch.testing.assert_close(stored(**inputs).logits, expected, atol=1e-5, rtol=1e-5)
    base = {k: v.detach().clone() for k, v in _tiny().named_parameters() if not k.startswith("classifier.")}
    _, stored_params = method.stored_counts(prepared, path, stored, base)
    assert 0 < stored_params <= prepared.base_params


def test_default_rates_come_from_the_method_object() -> None:
    for name, method in GLUE_METHODS.items():
        embedded = GlueRunConfig(task="rte", method=name)
        other = GlueRunConfig(task="rte", method=name, model="bert-base-uncased")
        assert embedded.resolved_lr() == method.default_lr(embedded=True)
        assert other.resolved_lr() == method.default_lr(embedded=False)
