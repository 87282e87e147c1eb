"""bf16 autocast keeps the diff: the gated linears' base and diff products computed apart (split_linear.py)."""

from __future__ import annotations

import pytest
import torch
from diffprune_cases import CASES
from torch import nn

from deltamix.diffprune import DiffPruningConfig, DiffPruningModel
from deltamix.diffprune.split_linear import SplitLinear


def _one_weight_model(diff: float, learn_gates: bool) -> tuple[nn.Module, DiffPruningModel]:
    """A 4 -> 4 linear of weights 1 (no bias), wrapped with a diff of ``diff`` on weight (0, 0)."""
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(4, 4, bias=False))
    with torch.no_grad():
        base[0].weight.fill_(1.0)
    dp = DiffPruningModel(base, DiffPruningConfig(learn_gates=learn_gates))
    with torch.no_grad():
        dp.w[0] = diff  # alpha = 5 gives the deterministic gate z = 1, so delta = w
    return base, dp.eval()


@pytest.mark.parametrize("learn_gates", [True, False], ids=["l0", "dense-diff"])
def test_a_diff_of_1e4_on_a_weight_of_1_changes_the_bf16_output(learn_gates: bool) -> None:
    base, dp = _one_weight_model(1e-4, learn_gates)
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        with_diff = dp(x)
        naive = base[0](x) + 0.0  # the base under autocast: what rounding theta to bf16 gives
        plain = torch.nn.functional.linear(x, base[0].weight + 1e-4)  # theta cast to bf16 as a whole
    assert torch.equal(plain.float(), naive.float())  # the naive path loses the diff entirely
    assert with_diff[0, 0].item() == pytest.approx(1.0 + 1e-4, rel=1e-6)
    assert torch.equal(with_diff[0, 1:], naive[0, 1:].float())  # rows without a diff: the base's


def test_fixed_mask_stage_keeps_the_diff_under_bf16() -> None:
    _base, dp = _one_weight_model(1e-4, learn_gates=True)
    dp.project_(target_sparsity=1 / 16)  # keeps the one non-zero entry
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = dp(x)
    assert out[0, 0].item() == pytest.approx(1.0 + 1e-4, rel=1e-6)


def test_without_autocast_nothing_is_split() -> None:
    """fp32 runs take the plain path: outputs bit for bit those of the base model run on theta."""
    base, dp = _one_weight_model(1e-3, learn_gates=True)
    x = torch.randn(3, 4)
    theta = base[0].weight.detach() + dp.current_delta().reshape(4, 4)
    assert torch.equal(dp(x), torch.nn.functional.linear(x, theta))


def test_split_linear_gradients_match_fp32_within_bf16_tolerance() -> None:
    torch.manual_seed(0)
    base = torch.randn(6, 5)
    theta = (base + 1e-3 * torch.randn(6, 5)).requires_grad_()
    bias = torch.randn(6, requires_grad=True)
    x = torch.randn(2, 3, 5, requires_grad=True)
    y = SplitLinear.apply(x, theta, base, base.to(torch.bfloat16), bias, torch.bfloat16)
    assert y.dtype == torch.float32 and y.shape == (2, 3, 6)
    upstream = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, theta, bias), upstream)
    reference = torch.nn.functional.linear(x, theta, bias)
    expected = torch.autograd.grad(reference, (x, theta, bias), upstream)
    torch.testing.assert_close(y, reference, rtol=2e-2, atol=2e-2)
    for got, want in zip(grads, expected, strict=True):
        assert got.dtype == want.dtype
        torch.testing.assert_close(got, want, rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("name", ["bert", "mlp"])
def test_bf16_outputs_and_gradients_match_fp32(name: str) -> None:
    """Trained-looking diffs on the tiny models: the bf16 path's loss and the diff's effect on the
    output match fp32 within bf16 tolerance, and the L0 gradients agree in direction."""
    case = CASES[name]
    model = case.build()
    dp = DiffPruningModel(model, DiffPruningConfig(dense_modules=case.dense_modules))
    with torch.no_grad():
        dp.w.normal_(0, 1e-2, generator=torch.Generator().manual_seed(1))
    dp.eval()
    args, kwargs = case.batch()
    with torch.no_grad():
        fp32_out = case.output(dp(*args, **kwargs)).float()
        base_out = case.output(model(*args, **kwargs)).float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16_out = case.output(dp(*args, **kwargs)).float()
    scale = fp32_out.abs().max()
    torch.testing.assert_close(bf16_out, fp32_out, rtol=0, atol=0.03 * float(scale))
    effect, effect_bf16 = fp32_out - base_out, bf16_out - base_out
    cosine = torch.nn.functional.cosine_similarity(effect.flatten(), effect_bf16.flatten(), dim=0)
    assert cosine > 0.9
    grads = []
    for autocast in (False, True):
        dp.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = case.loss(dp(*args, **kwargs), args, kwargs)
        loss.float().backward()
        grads.append(dp.w.grad.clone())
    cosine = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cosine > 0.98
