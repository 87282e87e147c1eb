"""DiffPruningTrainer on a tiny BERT: the L0 loss term, per-group learning rates, the fixed-mask stage, saving."""

from __future__ import annotations

import pytest
import torch
from diffprune_cases import CASES, token_dataset, trainer_args

from deltamix.diffprune import DiffPruningConfig, DiffPruningModel, SparseDiff
from deltamix.diffprune.trainer import DIFF_FILE_NAME, DiffPruningTrainer


def test_three_stage_recipe_with_trainer(tmp_path) -> None:
    config = DiffPruningConfig(
        dense_modules=["classifier"], target_sparsity=0.05, learning_rate=1e-2, l0_lambda=1e-3
    )
    dp = DiffPruningModel(CASES["bert"].build(), config)
    trainer = DiffPruningTrainer(
        model=dp, args=trainer_args(tmp_path, steps=4), train_dataset=token_dataset(unused_text=True)
    )

    # The loss is the task loss plus lambda times the expected L0 penalty.
    batch = {k: torch.tensor(v) for k, v in token_dataset(unused_text=True)[:4].items() if k != "text"}
    dp.train()
    torch.manual_seed(5)
    expected = dp(**batch).loss + config.l0_lambda * dp.l0_penalty()
    torch.manual_seed(5)
    assert torch.allclose(trainer.compute_loss(dp, dict(batch)), expected)

    trainer.train()
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert groups["gates"]["lr"] == pytest.approx(0.1)  # constant
    assert groups["diff"]["lr"] == pytest.approx(0.0)  # linear decay reached its end
    assert dp.w.abs().sum() > 0 and trainer.last_l0_penalty is not None
    assert trainer.last_l0_penalty < dp.num_gated  # alphas moved from their initial value

    dp.project_()
    kept_before = dp.current_delta()
    stage2 = DiffPruningTrainer(
        model=dp, args=trainer_args(tmp_path, steps=2), train_dataset=token_dataset(unused_text=True)
    )
    stage2.train()
    assert {g["name"] for g in stage2.optimizer.param_groups} == {"diff", "dense"}
    changed = torch.nonzero(dp.current_delta() != kept_before).flatten()
    assert changed.numel() > 0 and torch.isin(changed, dp.kept_indices).all()

    stage2.save_model(str(tmp_path / "final"))
    diff = SparseDiff.load(tmp_path / "final" / DIFF_FILE_NAME)
    assert diff.nnz <= dp.kept_values.numel() and diff.config["stage"] == "fixed_mask"


def test_trainer_needs_a_diff_pruning_model(tmp_path) -> None:
    with pytest.raises(ValueError, match="DiffPruningModel"):
        DiffPruningTrainer(model=CASES["bert"].build(), args=trainer_args(tmp_path, steps=1))
