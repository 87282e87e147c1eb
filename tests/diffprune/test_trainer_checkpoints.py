"""DiffPruningTrainer checkpoints: trainable state only, resume of both stages bit-exact, best-model loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffprune_cases import CASES, token_dataset
from transformers import TrainingArguments

from deltamix.core.errors import DiffFormatError
from deltamix.diffprune import DiffPruningConfig, DiffPruningModel
from deltamix.diffprune.trainer import (
    DIFF_FILE_NAME,
    STATE_FILE_NAME,
    DiffPruningTrainer,
    load_trainable_state,
)


def _args(out: Path, steps: int, **extra) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        save_strategy="steps",
        save_steps=2,
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        **extra,
    )


def _model(structured: bool = False) -> DiffPruningModel:
    torch.manual_seed(0)
    config = DiffPruningConfig(
        dense_modules=["classifier"], target_sparsity=0.05, learning_rate=1e-2, structured=structured
    )
    return DiffPruningModel(CASES["bert"].build(), config)


def _state(dp: DiffPruningModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in dp.trainable_state_dict().items()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_l0_and_fixed_mask_stages_resume_bit_exact(tmp_path) -> None:
    # Uninterrupted: 4 L0 steps, projection, 4 fixed-mask steps.
    dp = _model(structured=True)
    DiffPruningTrainer(model=dp, args=_args(tmp_path / "a1", 4), train_dataset=token_dataset()).train()
    l0_done = _state(dp)
    dp.project_()
    DiffPruningTrainer(model=dp, args=_args(tmp_path / "a2", 4), train_dataset=token_dataset()).train()
    expected = _state(dp)

    # The checkpoint holds only the trainable state (no copy of the frozen base).
    checkpoint = tmp_path / "a1" / "checkpoint-2"
    assert (checkpoint / STATE_FILE_NAME).is_file() and not (checkpoint / "model.safetensors").exists()
    assert not (checkpoint / DIFF_FILE_NAME).exists()  # redundant in the L0 stage, and ~6 bytes x d
    assert (tmp_path / "a2" / "checkpoint-2" / DIFF_FILE_NAME).is_file()  # O(k) in the fixed-mask stage
    base_bytes = sum(p.numel() * p.element_size() for p in dp.base_model.parameters())
    assert (checkpoint / STATE_FILE_NAME).stat().st_size < 3 * dp.num_gated * 4 + base_bytes // 4

    # A fresh process resumes the L0 stage from step 2 ...
    resumed = _model(structured=True)
    trainer = DiffPruningTrainer(model=resumed, args=_args(tmp_path / "a1", 4), train_dataset=token_dataset())
    trainer.train(resume_from_checkpoint=str(checkpoint))
    _assert_same(_state(resumed), l0_done)
    # ... and another fresh process (still in its L0 stage) resumes the fixed-mask stage from step 2.
    fresh = _model(structured=True)
    trainer = DiffPruningTrainer(model=fresh, args=_args(tmp_path / "a2", 4), train_dataset=token_dataset())
    trainer.train(resume_from_checkpoint=str(tmp_path / "a2" / "checkpoint-2"))
    assert fresh.stage == "fixed_mask"
    _assert_same(_state(fresh), expected)


def test_load_best_model_at_end_restores_the_best_checkpoint(tmp_path) -> None:
    dp = _model()
    metric = iter([0.9, 0.1])  # the first evaluation (step 2) is the best

    args = _args(
        tmp_path, 4, eval_strategy="steps", eval_steps=2, load_best_model_at_end=True,
        metric_for_best_model="eval_fake", greater_is_better=True,
    )  # fmt: skip
    trainer = DiffPruningTrainer(
        model=dp, args=args, train_dataset=token_dataset(), eval_dataset=token_dataset(),
        compute_metrics=lambda _: {"fake": next(metric)},
    )  # fmt: skip
    trainer.train()
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-2")
    at_best = _model()
    load_trainable_state(at_best, Path(trainer.state.best_model_checkpoint) / STATE_FILE_NAME)
    _assert_same(_state(dp), _state(at_best))
    assert not torch.equal(dp.w, _model().w)  # it trained: w moved from 0


def test_state_file_for_another_model_is_rejected_untouched(tmp_path) -> None:
    dp = _model()
    DiffPruningTrainer(model=dp, args=_args(tmp_path, 2), train_dataset=token_dataset()).train()
    path = tmp_path / "checkpoint-2" / STATE_FILE_NAME
    other = DiffPruningModel(
        CASES["bert"].build(), DiffPruningConfig(dense_modules=["classifier"], exclude=[r".*embeddings.*"])
    )
    before = _state(other)
    with pytest.raises(DiffFormatError, match="gated parameters"):
        load_trainable_state(other, path)
    _assert_same(_state(other), before)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DiffFormatError, match="not a readable"):
        load_trainable_state(_model(), path)
    with pytest.raises(ValueError, match="has no diffprune_state"):
        DiffPruningTrainer(
            model=_model(), args=_args(tmp_path / "x", 2), train_dataset=token_dataset()
        ).train(resume_from_checkpoint=str(tmp_path))


@pytest.mark.parametrize("apart", [False, True])
def test_gate_gradients_clipped_with_the_rest_or_apart(tmp_path, apart: bool) -> None:
    """By default one clip scales all gradients alike; ``clip_gates_apart`` (the authors' code) clips
    the gates and the rest each to max_grad_norm, so large w gradients leave the gates' step alone."""
    dp = _model()
    dp.diff_config.clip_gates_apart = apart
    trainer = DiffPruningTrainer(
        model=dp, args=_args(tmp_path, 1, max_grad_norm=1.0), train_dataset=token_dataset()
    )
    trainer.create_optimizer()
    rest = [p for g in trainer.optimizer.param_groups if g["name"] != "gates" for p in g["params"]]
    for p in rest:
        p.grad = torch.full_like(p, 10.0)
    dp.alpha.grad = torch.full_like(dp.alpha, 0.5 / dp.alpha.numel() ** 0.5)  # norm 0.5
    before = torch.cat([p.grad.flatten() for p in [*rest, dp.alpha]]).norm()
    returned = trainer._clip_grad_norm(trainer.model)
    assert torch.allclose(torch.as_tensor(returned, dtype=before.dtype), before)
    rest_norm = torch.cat([p.grad.flatten() for p in rest]).norm()
    gate_norm = dp.alpha.grad.norm()
    if apart:
        assert torch.allclose(rest_norm, torch.tensor(1.0), atol=1e-4)
        assert torch.allclose(gate_norm, torch.tensor(0.5))  # below the limit: untouched
    else:
        total = torch.sqrt(rest_norm**2 + gate_norm**2)
        assert torch.allclose(total, torch.tensor(1.0), atol=1e-4)
        assert torch.allclose(gate_norm, 0.5 / before, rtol=1e-4)  # the same factor as w's gradients


def test_the_trainer_loop_clips_through_our_override(tmp_path, monkeypatch) -> None:
    """Guards the override's name: the Trainer's training step must call `_clip_grad_norm`."""
    calls = []
    original = DiffPruningTrainer._clip_grad_norm

    def counting(self, model):
        calls.append(self.diff_model.stage)
        return original(self, model)

    monkeypatch.setattr(DiffPruningTrainer, "_clip_grad_norm", counting)
    dp = _model(structured=True)
    dp.diff_config.clip_gates_apart = True
    DiffPruningTrainer(
        model=dp, args=_args(tmp_path, 2, max_grad_norm=1.0), train_dataset=token_dataset()
    ).train()
    assert calls == ["l0", "l0"]
