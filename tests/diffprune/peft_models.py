"""The tiny BERT classifier and BART of the PEFT diff pruning tests, built from configs (no download)."""

from __future__ import annotations

import torch
from transformers import BartConfig, BartForConditionalGeneration, BertConfig, BertForSequenceClassification

VOCAB = 40


def tiny_bert(seed: int = 0, hidden: int = 16) -> BertForSequenceClassification:
    """A 2-layer BERT with a 2-class head, no dropout, in eval mode; ``seed`` fixes its weights."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=2,
    )
    return BertForSequenceClassification(config).eval()


def tiny_bart(seed: int = 0, hidden: int = 16, dropout: float = 0.0) -> BartForConditionalGeneration:
    """A 1 + 1 layer BART (pad 1, bos 0, eos 2, decoding starts at eos), in eval mode."""
    torch.manual_seed(seed)
    config = BartConfig(
        vocab_size=VOCAB,
        d_model=hidden,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=32,
        dropout=dropout,
        attention_dropout=0.0,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_eos_token_id=None,
    )
    return BartForConditionalGeneration(config).eval()
