"""A target density for the L0 stage (density_control.py): the schedule, the term, ascent, reaching the target."""

from __future__ import annotations

import pytest
import torch
from diffprune_cases import CASES, token_dataset, trainer_args

from deltamix.diffprune import DiffPruningConfig, DiffPruningModel
from deltamix.diffprune.density_control import annealed_target, lagrangian_term
from deltamix.diffprune.trainer import DiffPruningTrainer


def _model(**config) -> DiffPruningModel:
    settings = {"dense_modules": ["classifier"], "learning_rate": 1e-2, "target_sparsity": 0.05, **config}
    return DiffPruningModel(CASES["bert"].build(), DiffPruningConfig(**settings))


def test_the_asked_density_falls_linearly_from_one_to_the_target_over_the_warmup() -> None:
    assert annealed_target(0.1, 0.0, 0.5) == 1.0
    assert annealed_target(0.1, 0.25, 0.5) == pytest.approx(0.55)
    assert annealed_target(0.1, 0.5, 0.5) == annealed_target(0.1, 1.0, 0.5) == 0.1
    assert annealed_target(0.1, 0.0, 0.0) == 0.1


def test_lagrangian_term_value_and_gradients() -> None:
    density = torch.tensor(0.7, requires_grad=True)
    multipliers = torch.tensor([2.0, 3.0], requires_grad=True)
    term = lagrangian_term(density, 0.2, multipliers)
    term.backward()
    assert float(term) == pytest.approx(2 * 0.5 + 3 * 0.25)
    assert float(density.grad) == pytest.approx(2 + 2 * 3 * 0.5)
    assert multipliers.grad.tolist() == pytest.approx([0.5, 0.25])


def test_the_multipliers_rise_by_gradient_ascent_while_the_density_is_above_the_target(tmp_path) -> None:
    dp = _model(target_density=0.2, density_warmup=0.0, multiplier_learning_rate=0.01)
    trainer = DiffPruningTrainer(
        model=dp, args=trainer_args(tmp_path, 1, logging_steps=10), train_dataset=token_dataset()
    )
    trainer.train()
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert groups["multipliers"]["params"] == [dp.lagrange_multipliers]
    # Density ~0.99 > 0.2: the loss grows with both multipliers, so ascent raises them (Adam: by ~lr).
    assert dp.lagrange_multipliers.detach().tolist() == pytest.approx([0.01, 0.01], rel=1e-3)


def test_the_l0_stage_ends_near_the_target_density(tmp_path) -> None:
    """Without a penalty the gates stay open; with the Lagrangian the expected density follows the target."""
    steps, target = 200, 0.3
    free = _model(l0_lambda=0.0)
    DiffPruningTrainer(
        model=free, args=trainer_args(tmp_path / "free", 40, logging_steps=10), train_dataset=token_dataset()
    ).train()
    # The gates (Adam, lr 0.1) move fast: the multipliers need a fast rate too, and the steps after the
    # warmup to settle (with 120 steps the density overshoots to 0.08 and has no time to come back).
    held = _model(target_density=target, density_warmup=0.5, multiplier_learning_rate=0.2)
    trainer = DiffPruningTrainer(
        model=held,
        args=trainer_args(tmp_path / "held", steps, logging_steps=10),
        train_dataset=token_dataset(),
    )
    trainer.train()
    with torch.no_grad():
        assert float(free.l0_penalty()) / free.num_gated > 0.95
        assert float(held.l0_penalty()) / held.num_gated == pytest.approx(target, abs=0.02)
    logged = [entry for entry in trainer.state.log_history if "lambda_1" in entry]
    assert logged and all("expected_density" in entry for entry in logged)
    assert max(entry["lambda_1"] for entry in logged) > 1 and logged[-1]["lambda_2"] > 1  # they rose


def test_multipliers_are_checkpointed_and_dropped_by_the_projection() -> None:
    dp = _model(target_density=0.2)
    with torch.no_grad():
        dp.lagrange_multipliers.copy_(torch.tensor([1.5, -0.5]))
    state = dp.trainable_state_dict()
    assert state["lagrange_multipliers"].tolist() == [1.5, -0.5]
    fresh = _model(target_density=0.2)
    fresh.load_trainable_state_dict(state)
    assert fresh.lagrange_multipliers.tolist() == [1.5, -0.5]
    with pytest.raises(ValueError, match="missing \\['lagrange_multipliers'\\]"):
        fresh.load_trainable_state_dict({k: v for k, v in state.items() if k != "lagrange_multipliers"})
    dp.project_()
    assert dp.lagrange_multipliers is None
    assert "multipliers" not in {g["name"] for g in dp.optimizer_param_groups()}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"target_density": 0.0}, "target_density must be in \\(0, 1\\)"),
        ({"target_density": 1.0}, "target_density must be in \\(0, 1\\)"),
        ({"target_density": 0.1, "learn_gates": False}, "needs learned gates"),
        ({"density_warmup": 1.5}, "density_warmup must be in \\[0, 1\\]"),
        ({"multiplier_learning_rate": -1.0}, "multiplier_learning_rate must be a finite number >= 0"),
    ],
)
def test_bad_density_settings_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DiffPruningConfig(**settings)
