"""The explicit stage of a diff: which stage each entry point leaves a DiffPruningModel in, and what it holds."""

from __future__ import annotations

import json

import pytest
import torch
from diffprune_cases import TinyMLP

from deltamix.diffprune import DiffPruningConfig, DiffPruningModel, Stage


def _model(**overrides) -> DiffPruningModel:
    torch.manual_seed(0)
    return DiffPruningModel(
        TinyMLP(), DiffPruningConfig(dense_modules=["classifier"], target_sparsity=0.1, **overrides)
    )


@pytest.mark.parametrize(("learn_gates", "first"), [(True, Stage.L0), (False, Stage.DENSE_DIFF)])
def test_a_new_diff_starts_in_its_first_stage_and_projection_fixes_the_mask(
    learn_gates: bool, first: Stage
) -> None:
    dp = _model(learn_gates=learn_gates)
    assert dp.stage is first and not dp.is_fixed_mask and dp.w is not None
    assert (dp.alpha is not None) is (first is Stage.L0)
    dp.project_()
    assert dp.stage is Stage.FIXED_MASK and dp.is_fixed_mask
    assert dp.w is None and dp.alpha is None and dp.kept_values.numel() == dp.kept_indices.numel()
    assert [g["name"] for g in dp.optimizer_param_groups()] == ["diff", "dense"]
    assert float(dp.l0_penalty()) == 0.0


def test_loading_a_fixed_mask_state_moves_a_fresh_model_to_the_fixed_mask_stage() -> None:
    trained = _model()
    with torch.no_grad():
        trained.w.normal_()
    trained.project_()
    fresh = _model()
    assert fresh.stage is Stage.L0
    fresh.load_trainable_state_dict(trained.trainable_state_dict())
    assert fresh.stage is Stage.FIXED_MASK
    assert torch.equal(fresh.current_delta(), trained.current_delta())


def test_the_stage_is_a_plain_string_where_it_is_written() -> None:
    dp = _model()
    assert dp.stage == "l0" and f"{dp.stage}" == "l0" and json.dumps(dp.stage) == '"l0"'
    dp.project_()
    stage = dp.export_diff().config["stage"]
    assert type(stage) is str and stage == "fixed_mask"
