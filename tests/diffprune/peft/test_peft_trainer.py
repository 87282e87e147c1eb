"""Diff pruning in transformers' Trainer for a PeftModel: the penalty reaches the loss, the callback projects."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel, get_peft_model
from peft_models import tiny_bart, tiny_bert
from transformers import (
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    TrainingArguments,
)

from deltamix.diffprune.peft import DiffPruningPeftConfig
from deltamix.diffprune.peft.trainer import DiffPruningPeftTrainer, ProjectCallback
from deltamix.diffprune.projection import num_kept
from deltamix.diffprune.trainer import DiffPruningTrainerMixin


def _dataset() -> list[dict[str, torch.Tensor]]:
    ids = torch.randint(3, 40, (16, 10), generator=torch.Generator().manual_seed(0))
    return [{"input_ids": row, "labels": row[0] % 2} for row in ids]


def _args(path: Path, steps: int) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(path),
        max_steps=steps,
        per_device_train_batch_size=8,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        lr_scheduler_type="linear",
    )


def test_a_trainer_adds_the_penalty_keeps_the_gate_rate_and_the_callback_projects(tmp_path: Path) -> None:
    config = DiffPruningPeftConfig(
        task_type="SEQ_CLS", target_sparsity=0.05, l0_lambda=1e-3, learning_rate=1e-2, alpha_learning_rate=0.1
    )
    model = get_peft_model(tiny_bert(), config)
    trainer = DiffPruningPeftTrainer(
        model=model, args=_args(tmp_path, 4), train_dataset=_dataset(), callbacks=[ProjectCallback()]
    )
    trainer.train()
    gates = [g for g in trainer.optimizer.param_groups if g["name"] == "gates"]
    assert [g["lr"] for g in gates] == [0.1]  # constant while the other groups decay to 0
    assert trainer.last_l0_penalty is not None
    logged = [entry for entry in trainer.state.log_history if "expected_density" in entry]
    assert len(logged) == 4 and all(0 < e["expected_density"] <= 1 for e in logged)
    assert logged[-1]["expected_density"] < logged[0]["expected_density"]  # the penalty closes gates
    state = model.base_model.state()
    assert model.stage == "fixed_mask" and state.kept_values.numel() == num_kept(0.05, state.num_gated)

    kept_before = state.kept_values.detach().clone()
    second = DiffPruningPeftTrainer(model=model, args=_args(tmp_path, 2), train_dataset=_dataset())
    second.train()  # the fixed-mask stage: a new optimizer over the kept entries
    assert [g["name"] for g in second.optimizer.param_groups] == ["diff", "dense"]
    assert not torch.equal(state.kept_values.detach(), kept_before)
    second.save_model(str(tmp_path / "final"))
    reloaded = PeftModel.from_pretrained(tiny_bert(), tmp_path / "final").eval()
    batch = torch.stack([row["input_ids"] for row in _dataset()[:4]])
    model.eval()
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=batch).logits, model(input_ids=batch).logits)


def test_a_plain_mean_loss_is_not_scaled_by_the_number_of_processes(tmp_path: Path) -> None:
    model = get_peft_model(tiny_bert(), DiffPruningPeftConfig(task_type="SEQ_CLS"))
    trainer = DiffPruningPeftTrainer(model=model, args=_args(tmp_path, 1), train_dataset=_dataset())
    assert trainer.model_accepts_loss_kwargs is False  # BertForSequenceClassification: a plain mean


def test_the_peft_trainer_refuses_a_model_without_a_diff_pruning_adapter(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a PeftModel with a diff pruning adapter"):
        DiffPruningPeftTrainer(model=tiny_bert(), args=_args(tmp_path, 1))


class _Seq2SeqDiffTrainer(DiffPruningTrainerMixin, Seq2SeqTrainer):
    """What a user with a Seq2SeqTrainer script writes."""


def test_a_seq2seq_trainer_with_the_mixin_trains_and_generates_with_the_adapter(tmp_path: Path) -> None:
    model = get_peft_model(
        tiny_bart(dropout=0.1),  # BartConfig's default dropout
        DiffPruningPeftConfig(task_type="SEQ_2_SEQ_LM", learning_rate=5e-2),
    )
    model.get_base_model().generation_config.min_new_tokens = 5  # no early end of sequence
    ids = torch.randint(3, 40, (8, 6), generator=torch.Generator().manual_seed(0))
    data = [{"input_ids": row, "labels": row} for row in ids]
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        save_strategy="no",
        predict_with_generate=True,
        generation_max_length=6,
        generation_num_beams=1,
    )
    trainer = _Seq2SeqDiffTrainer(model=model, args=args, train_dataset=data, callbacks=[ProjectCallback()])
    trainer.train()
    assert trainer.last_l0_penalty is not None and model.stage == "fixed_mask"
    predicted = trainer.predict(data).predictions
    model.eval()
    expected = model.generate(input_ids=ids, max_length=6, num_beams=1, do_sample=False)
    assert torch.equal(torch.as_tensor(predicted)[:, : expected.shape[1]], expected)
    with model.disable_adapter():
        base = model.generate(input_ids=ids, max_length=6, num_beams=1, do_sample=False)
    assert not torch.equal(base, expected)  # the adapter changes what is generated
