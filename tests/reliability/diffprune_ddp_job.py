"""A tiny diff pruning job (L0 stage, project_(), fixed-mask stage) with DiffPruningTrainer, run by the
distributed test as one process or under ``torchrun`` (gloo, CPU).

Usage: ``python diffprune_ddp_job.py OUT_DIR GLOBAL_BATCH`` (alone, or after
``python -m torch.distributed.run --nproc_per_node N --standalone``). Every process reads the same
global batches: the Trainer's loader is sharded by accelerate, so with a per-device batch of
``GLOBAL_BATCH / N`` process i trains on rows [i * b, (i + 1) * b) of the same global batch that a
single process with batch ``GLOBAL_BATCH`` sees (the seedable sampler draws one permutation per
epoch on every process). Only the main process writes files: ``OUT_DIR/l0/`` and ``OUT_DIR/final/``
(``diff.safetensors`` and ``diffprune_state.safetensors``, from ``trainer.save_model``) and
``OUT_DIR/summary.json`` (world size, per-device batch, logged losses).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification, TrainingArguments

from deltamix.core.io import atomic_write_json
from deltamix.diffprune import DiffPruningConfig, DiffPruningModel
from deltamix.diffprune.trainer import DiffPruningTrainer

EXAMPLES, SEQ_LEN, VOCAB, LABELS = 64, 8, 64, 3
L0_STEPS, FIXED_MASK_STEPS = 8, 4


def build_model() -> BertForSequenceClassification:
    """A 2-layer, 16-unit BERT classifier from a config (seed 0, dropout 0: no per-process randomness)."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=LABELS,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        classifier_dropout=0.0,
    )
    return BertForSequenceClassification(config)


def build_dataset() -> Dataset:
    """EXAMPLES synthetic rows: input_ids (SEQ_LEN,) in [1, VOCAB), attention_mask, labels in [0, LABELS)."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, VOCAB, (EXAMPLES, SEQ_LEN), generator=generator)
    labels = ids[:, 0] % LABELS  # learnable from the first token
    return Dataset.from_dict(
        {
            "input_ids": ids.tolist(),
            "attention_mask": torch.ones_like(ids).tolist(),
            "labels": labels.tolist(),
        }
    )


def training_args(out: Path, stage: str, per_device_batch: int, steps: int) -> TrainingArguments:
    """Arguments of one stage: fixed seed, no checkpoints, no reporting, CPU."""
    return TrainingArguments(
        output_dir=str(out / "trainer" / stage),
        per_device_train_batch_size=per_device_batch,
        max_steps=steps,
        seed=0,
        save_strategy="no",
        report_to=[],
        logging_steps=1,
        disable_tqdm=True,
        use_cpu=True,
        lr_scheduler_type="constant",
        dataloader_num_workers=0,
    )


def main(out: Path, global_batch: int) -> None:
    """Train both stages and save the diffs (main process only)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if global_batch % world:
        raise ValueError(f"global batch {global_batch} is not divisible by {world} processes")
    per_device = global_batch // world
    config = DiffPruningConfig(
        dense_modules=["classifier"],
        target_sparsity=0.05,
        l0_lambda=1e-3,
        learning_rate=1e-2,
        fixed_mask_learning_rate=1e-2,
    )
    model = DiffPruningModel(build_model(), config)
    data = build_dataset()

    trainer = DiffPruningTrainer(
        model=model, args=training_args(out, "l0", per_device, L0_STEPS), train_dataset=data
    )
    trainer.train()
    l0_log = trainer.state.log_history
    trainer.save_model(str(out / "l0"))
    world_seen = trainer.args.world_size

    model.project_()
    trainer = DiffPruningTrainer(
        model=model,
        args=training_args(out, "fixed_mask", per_device, FIXED_MASK_STEPS),
        train_dataset=data,
    )
    trainer.train()
    trainer.save_model(str(out / "final"))
    if trainer.args.should_save:
        atomic_write_json(
            out / "summary.json",
            {
                "world_size": world_seen,
                "per_device_batch": per_device,
                "l0_losses": [e["loss"] for e in l0_log if "loss" in e],
                "fixed_mask_losses": [e["loss"] for e in trainer.state.log_history if "loss" in e],
            },
        )
    print(f"rank {trainer.args.process_index} of {trainer.args.world_size} done", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: diffprune_ddp_job.py OUT_DIR GLOBAL_BATCH")
    main(Path(sys.argv[1]), int(sys.argv[2]))
