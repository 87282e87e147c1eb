"""DiffPruningConfig: defaults, validation, name matching and the JSON round trip."""

from __future__ import annotations

import json

import pytest

from deltamix.diffprune import DiffPruningConfig


def test_defaults_are_the_papers() -> None:
    config = DiffPruningConfig()
    assert (config.target_sparsity, config.l0_lambda, config.alpha_init) == (0.005, 1.25e-7, 5.0)
    assert (config.stretch_left, config.stretch_right, config.log_ratio) == (-1.5, 1.5, 0.0)
    assert (config.learning_rate, config.alpha_learning_rate, config.head_learning_rate) == (1e-5, 0.1, 1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_sparsity": 0.0}, "target_sparsity"),
        ({"target_sparsity": 1.5}, "target_sparsity"),
        ({"stretch_left": 0.1}, "stretch_left"),
        ({"stretch_right": 0.9}, "stretch_right"),
        ({"l0_lambda": -1.0}, "l0_lambda"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"eval_gate": "mean"}, "eval_gate"),
        ({"dense_modules": "classifier"}, "dense_modules"),
        ({"include": ["("]}, "regular expression"),
        ({"exclude": "bias"}, "exclude"),
    ],
)
def test_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DiffPruningConfig(**kwargs)


def test_name_matching() -> None:
    config = DiffPruningConfig(dense_modules=["classifier"], exclude=[r"LayerNorm"])
    assert config.is_dense("classifier.weight") and config.is_dense("roberta.classifier.dense.bias")
    assert not config.is_dense("bert.classifier_extra.weight") and not config.is_dense("classifier")
    assert config.is_gated("bert.encoder.layer.0.attention.self.query.weight")
    assert not config.is_gated("bert.embeddings.LayerNorm.weight")
    assert not config.is_gated("classifier.bias")
    only = DiffPruningConfig(include=[r"\.query\."])
    assert only.is_gated("a.query.weight") and not only.is_gated("a.key.weight")


def test_json_round_trip() -> None:
    config = DiffPruningConfig(structured=True, dense_modules=["classifier"], include=["encoder"])
    again = DiffPruningConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    with pytest.raises(ValueError, match="unknown"):
        DiffPruningConfig.from_dict({"nope": 1})
