"""Magnitude projection: exact k, deterministic ties, and the |w| / gate-probability tie-break for closed gates."""

from __future__ import annotations

import warnings

import pytest
import torch
from diffprune_cases import CASES

from deltamix.diffprune import DiffPruningConfig, DiffPruningModel
from deltamix.diffprune.projection import num_kept, topk_indices


def test_topk_without_keys_breaks_ties_by_index() -> None:
    values = torch.tensor([0.0, 2.0, 0.0, -2.0, 1.0, 0.0])
    assert topk_indices(values, 2).tolist() == [1, 3]
    assert topk_indices(values, 4).tolist() == [0, 1, 3, 4]


def test_topk_keys_rank_ties_lexicographically_then_by_index() -> None:
    values = torch.tensor([0.0, 3.0, 0.0, 0.0, 0.0, 0.0])
    first = torch.tensor([0.0, 0.0, 0.5, 0.5, 0.9, 0.1])
    second = torch.tensor([9.0, 0.0, 0.1, 0.7, 0.0, 0.0])
    # 1 is above the threshold; then 4 (first key 0.9), then 3 (0.5, second key 0.7 beats 2's 0.1).
    assert topk_indices(values, 3, tiebreak=[first, second]).tolist() == [1, 3, 4]
    assert topk_indices(values, 4, tiebreak=[first, second]).tolist() == [1, 2, 3, 4]
    # Equal on every key: the lower index wins.
    assert topk_indices(values, 2, tiebreak=[torch.zeros(6)]).tolist() == [0, 1]
    # Keys never override magnitude: the largest |value| is kept whatever its keys.
    assert 1 in topk_indices(values, 1, tiebreak=[first, second]).tolist()


def test_topk_rejects_bad_keys() -> None:
    values = torch.zeros(4)
    with pytest.raises(ValueError, match="tiebreak key 0 has shape"):
        topk_indices(values, 2, tiebreak=[torch.zeros(3)])
    with pytest.raises(ValueError, match="tiebreak key 0 contains NaN"):
        topk_indices(values, 2, tiebreak=[torch.tensor([0.0, float("nan"), 0.0, 0.0])])


def _closed_gate_model(structured: bool = False) -> DiffPruningModel:
    """An MLP diff in which all gates are closed except a few; |w| and alpha differ among the closed ones."""
    case = CASES["mlp"]
    config = DiffPruningConfig(dense_modules=case.dense_modules, target_sparsity=0.05, structured=structured)
    dp = DiffPruningModel(case.build(), config)
    d = dp.num_gated
    with torch.no_grad():
        dp.w.copy_(torch.rand(d, generator=torch.Generator().manual_seed(0)))
        dp.alpha.fill_(-20.0)  # deterministic gate = 0 everywhere ...
        dp.alpha[d - 3 :] = (
            20.0  # ... but the last three entries (which the index rule would never pick first)
        )
    return dp.eval()


def test_project_fills_budget_by_w_magnitude_and_warns() -> None:
    dp = _closed_gate_model()
    d, k = dp.num_gated, num_kept(0.05, dp.num_gated)
    w = dp.w.detach().clone()
    open_ = set(range(d - 3, d))
    with pytest.warns(UserWarning, match=f"only 3 diff entries are non-zero, fewer than the {k}"):
        dp.project_()
    kept = set(dp.kept_indices.tolist())
    assert len(kept) == k and open_ <= kept
    closed = torch.arange(d - 3)
    expected = set(closed[torch.sort(w[closed], descending=True, stable=True).indices[: k - 3]].tolist())
    assert kept - open_ == expected
    assert kept - open_ != set(range(k - 3))  # not the first entries by index


def test_project_uses_gate_probability_when_w_ties() -> None:
    dp = _closed_gate_model()
    d, k = dp.num_gated, num_kept(0.05, dp.num_gated)
    with torch.no_grad():
        dp.w.fill_(0.5)
        dp.alpha[: d - 3] = torch.linspace(-30.0, -10.0, d - 3)  # still closed; later ones more open
    with pytest.warns(UserWarning):
        dp.project_()
    assert dp.kept_indices.tolist() == list(range(d - 3 - (k - 3), d))


def test_project_is_deterministic_and_silent_when_enough_nonzeros() -> None:
    runs = []
    for _ in range(2):
        dp = _closed_gate_model(structured=True)
        with torch.no_grad():
            dp.alpha.fill_(20.0)
            dp.group_alpha.fill_(20.0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            dp.project_()
        runs.append(dp.kept_indices.clone())
    assert torch.equal(runs[0], runs[1])
