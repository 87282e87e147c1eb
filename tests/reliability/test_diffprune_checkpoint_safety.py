"""Resuming DiffPruningTrainer from a checkpoint never executes code hidden in its files (weights_only loads)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification, TrainingArguments

from deltamix.diffprune import DiffPruningConfig, DiffPruningModel
from deltamix.diffprune.trainer import STATE_FILE_NAME, DiffPruningTrainer


class _Payload:
    """Unpickling this touches a file: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _model() -> DiffPruningModel:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=32, num_labels=2,
    )  # fmt: skip
    return DiffPruningModel(
        BertForSequenceClassification(config), DiffPruningConfig(dense_modules=["classifier"])
    )


def _data() -> Dataset:
    ids = torch.randint(1, 64, (8, 6), generator=torch.Generator().manual_seed(0))
    return Dataset.from_dict({"input_ids": ids.tolist(), "labels": (ids[:, 0] % 2).tolist()})


def _args(out: Path) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(out), max_steps=4, save_steps=2, per_device_train_batch_size=4, report_to=[],
        use_cpu=True, disable_tqdm=True,
    )  # fmt: skip


@pytest.mark.parametrize("target", ["rng_state.pth", "optimizer.pt", "scheduler.pt"])
def test_pickled_code_in_a_checkpoint_is_not_run(target: str, tmp_path: Path) -> None:
    DiffPruningTrainer(model=_model(), args=_args(tmp_path), train_dataset=_data()).train()
    checkpoint = tmp_path / "checkpoint-2"
    assert (checkpoint / STATE_FILE_NAME).is_file() and (checkpoint / target).is_file()
    marker = tmp_path / "code-ran"
    torch.save(_Payload(marker), checkpoint / target)  # a real torch file whose pickle runs code
    trainer = DiffPruningTrainer(model=_model(), args=_args(tmp_path / "again"), train_dataset=_data())
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint))
    except pickle.UnpicklingError:
        pass  # refused: fine; what matters is that nothing ran
    except RuntimeError as error:  # torch wraps the refusal on some paths
        assert "weights_only" in str(error) or "Unpickl" in str(error), error
    assert not marker.exists(), f"loading {target} executed code"
