"""Task heads of different sizes in SparseDiff / DiffBank: installed on apply, restored exactly on revert."""

from __future__ import annotations

import copy

import pytest
import torch
from diffprune_cases import CASES, snapshot
from torch import nn

from deltamix.core.errors import BaseModelMismatchError
from deltamix.diffprune import DiffBank, DiffPruningConfig, DiffPruningModel, SparseDiff


def _task_diff(base: nn.Module, outputs: int, seed: int) -> tuple[SparseDiff, torch.Tensor]:
    """A projected diff of a copy of ``base`` whose head has ``outputs`` outputs; and that model's logits."""
    model = copy.deepcopy(base)
    torch.manual_seed(seed)
    model.classifier = nn.Linear(model.config.hidden_size, outputs)
    dp = DiffPruningModel(model, DiffPruningConfig(dense_modules=["classifier"], target_sparsity=0.05))
    with torch.no_grad():
        dp.w.normal_(std=0.1)
    dp.project_()
    dp.eval()
    with torch.no_grad():
        logits = dp(input_ids=_ids()).logits
    return dp.export_diff(), logits


def _ids() -> torch.Tensor:
    return torch.randint(1, 64, (4, 10), generator=torch.Generator().manual_seed(3))


def _logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=_ids()).logits


def test_apply_installs_a_head_of_another_size_and_revert_restores_it(tmp_path) -> None:
    base = CASES["bert"].build().eval()  # head: 3 outputs
    weight = base.classifier.weight
    before = snapshot(base)
    diff, expected = _task_diff(base, outputs=1, seed=1)
    diff.save(tmp_path / "stsb.safetensors")
    loaded = SparseDiff.load(tmp_path / "stsb.safetensors")
    loaded.apply_(base)
    assert base.classifier.weight is weight and tuple(weight.shape) == (1, 16)
    assert torch.allclose(_logits(base), expected, atol=1e-6, rtol=0)
    loaded.revert_(base)
    assert base.classifier.weight is weight
    after = snapshot(base)
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def test_bank_switches_across_head_sizes_bit_exact() -> None:
    base = CASES["bert"].build().eval()  # head: 3 outputs
    before = snapshot(base)
    bank, expected, states = DiffBank(base), {}, {}
    for name, outputs, seed in (("stsb", 1, 1), ("rte", 2, 2), ("mnli", 3, 3)):
        diff, expected[name] = _task_diff(base, outputs, seed)
        bank.add(name, diff)
    for name in ("stsb", "rte", "stsb", "mnli", "rte", "stsb"):  # A -> B -> A across shapes
        bank.activate(name)
        logits = _logits(base)
        assert logits.shape == expected[name].shape
        assert torch.allclose(logits, expected[name], atol=1e-6, rtol=0)
        state = snapshot(base)
        if name in states:  # the same task activated again: bit for bit the same weights
            assert all(torch.equal(state[k], states[name][k]) for k in state)
        states[name] = state
    bank.activate(None)
    after = snapshot(base)
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_head_with_other_number_of_dimensions_is_rejected_untouched() -> None:
    base = CASES["bert"].build()
    diff, _ = _task_diff(base, outputs=2, seed=1)
    diff.dense["classifier.bias"] = torch.zeros(2, 1)
    before = snapshot(base)
    with pytest.raises(BaseModelMismatchError, match="as many dimensions"):
        diff.apply_(base)
    after = snapshot(base)
    assert all(torch.equal(after[k], before[k]) for k in before)
