"""The fixed-mask linears (kept_linear.py): the kept entries' gradient against autograd's dense product."""

from __future__ import annotations

import pytest
import torch
from diffprune_cases import CASES

import deltamix.diffprune.kept_linear as kept_linear
from deltamix.diffprune import DiffPruningConfig, DiffPruningModel
from deltamix.diffprune.diff_state import DiffState
from deltamix.diffprune.row_gradients import gradient_at


def test_kept_linear_matches_the_dense_gradient_at_the_kept_entries() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 7, generator=g, requires_grad=True)
    theta = torch.randn(4, 7, generator=g, requires_grad=True)
    bias = torch.randn(4, generator=g, requires_grad=True)
    flat = torch.tensor([0, 3, 8, 13, 27])
    upstream = torch.randn(3, 5, 4, generator=g)
    rows = flat // 7
    row_starts = torch.cat([torch.zeros(1, dtype=torch.int64), torch.bincount(rows, minlength=4).cumsum(0)])
    y = kept_linear.KeptLinear.apply(x, theta, bias, rows, flat % 7, row_starts)
    grads = torch.autograd.grad(y, (x, theta, bias), upstream)
    reference = torch.autograd.grad(torch.nn.functional.linear(x, theta, bias), (x, theta, bias), upstream)
    assert torch.allclose(y, torch.nn.functional.linear(x, theta, bias))
    assert torch.allclose(grads[0], reference[0]) and torch.allclose(grads[2], reference[2])
    assert grads[1].is_sparse
    assert torch.allclose(gradient_at(grads[1], flat), reference[1].reshape(-1)[flat], atol=1e-6)
    assert torch.equal(
        gradient_at(grads[1], torch.tensor([1, 3])), torch.tensor([0.0, float(grads[1].values()[1])])
    )


@pytest.mark.parametrize("name", ["mlp", "bert"])
def test_the_fixed_mask_stage_gets_the_dense_paths_gradient(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    dp = DiffPruningModel(
        case.build(), DiffPruningConfig(dense_modules=case.dense_modules, target_sparsity=0.2)
    )
    with torch.no_grad():
        dp.w.normal_(0, 1e-2, generator=torch.Generator().manual_seed(1))
    dp.project_()
    args, kwargs = case.batch()
    calls = []
    original = kept_linear.KeptLinear.apply
    monkeypatch.setattr(kept_linear.KeptLinear, "apply", lambda *a: calls.append(1) or original(*a))
    torch.manual_seed(0)  # the same dropout masks in both runs
    case.loss(dp(*args, **kwargs), args, kwargs).backward()
    assert calls  # the linears ran through KeptLinear
    sparse_path = dp.kept_values.grad.clone()
    dp.kept_values.grad = None
    monkeypatch.setattr(DiffState, "_kept_linear_indices", lambda self, model: {})
    torch.manual_seed(0)
    case.loss(dp(*args, **kwargs), args, kwargs).backward()
    assert torch.allclose(sparse_path, dp.kept_values.grad, rtol=1e-5, atol=1e-7)
