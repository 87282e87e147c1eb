"""The tiny-model matrix of the diff pruning tests (an MLP, BERT, GPT-2 and T5 built from configs) and helpers."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class TinyMLP(nn.Module):
    """A plain PyTorch classifier: body (two linear layers) and a ``classifier`` head."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh())
        self.classifier = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 8) -> (B, 3)
        return self.classifier(self.body(x))


@dataclass
class Case:
    """One model of the matrix: how to build it, feed it, and read its loss and output tensor."""

    name: str
    build: Callable[[], nn.Module]
    batch: Callable[[], tuple[tuple, dict[str, Any]]]
    loss: Callable[[Any, tuple, dict[str, Any]], torch.Tensor]
    output: Callable[[Any], torch.Tensor]
    dense_modules: list[str]


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return TinyMLP()


def _bert() -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=3,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.0,
    )
    return BertForSequenceClassification(config)


def _gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=2, n_head=2, n_positions=32))


def _t5() -> nn.Module:
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=64,
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        decoder_start_token_id=0,
    )
    return T5ForConditionalGeneration(config)


def _ids(batch: int = 4, length: int = 10, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, 64, (batch, length), generator=generator)


CASES = {
    "mlp": Case(
        "mlp",
        _mlp,
        lambda: ((torch.randn(6, 8, generator=torch.Generator().manual_seed(1)),), {}),
        lambda out, args, kwargs: nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 0, 1, 2])),
        lambda out: out,
        ["classifier"],
    ),
    "bert": Case(
        "bert",
        _bert,
        lambda: ((), {"input_ids": _ids(), "labels": torch.tensor([0, 1, 2, 1])}),
        lambda out, args, kwargs: out.loss,
        lambda out: out.logits,
        ["classifier"],
    ),
    "gpt2": Case(
        "gpt2",
        _gpt2,
        lambda: ((), {"input_ids": _ids(), "labels": _ids()}),
        lambda out, args, kwargs: out.loss,
        lambda out: out.logits,
        [],
    ),
    "t5": Case(
        "t5",
        _t5,
        lambda: ((), {"input_ids": _ids(), "labels": _ids(length=6, seed=2)}),
        lambda out, args, kwargs: out.loss,
        lambda out: out.logits,
        [],
    ),
}


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every parameter, for bit-exact comparisons."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def assert_bit_equal(
    model: nn.Module, reference: dict[str, torch.Tensor], skip: tuple[str, ...] = ()
) -> None:
    """Every parameter of ``model`` equals ``reference`` bit for bit (except names in ``skip``)."""
    for name, p in model.named_parameters():
        if name in skip:
            continue
        assert torch.equal(p.detach(), reference[name]), f"{name} changed"


def token_dataset(unused_text: bool = False):
    """16 rows of random BERT input (ids 1..63, length 8) with 3-class labels, as a ``datasets.Dataset``.

    With ``unused_text`` a string column the model does not take is added (the Trainer must drop it).
    """
    from datasets import Dataset

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 64, (16, 8), generator=generator)
    columns = {
        "input_ids": ids.tolist(),
        "attention_mask": torch.ones_like(ids).tolist(),
        "labels": (ids[:, 0] % 3).tolist(),
    }
    if unused_text:
        columns["text"] = ["unused column"] * 16
    return Dataset.from_dict(columns)


def trainer_args(out_dir, steps: int, logging_steps: int = 1):
    """TrainingArguments for a short CPU run without checkpoints: batch 4, linear decay, clip 1.0, seed 0."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out_dir),
        max_steps=steps,
        per_device_train_batch_size=4,
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        logging_steps=logging_steps,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
