"""The chunked L0-stage kernels (fused.py) against the composed ops, across chunk boundaries."""

from __future__ import annotations

import pytest
import torch
from diffprune_cases import CASES

import deltamix.diffprune.fused as fused
from deltamix.diffprune import DiffPruningConfig, DiffPruningModel
from deltamix.diffprune.hard_concrete import deterministic_gate, gated_diff, prob_nonzero, prob_zero
from deltamix.diffprune.workspace import Workspace

L, R = -1.5, 1.5


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fused, "CHUNK", 37)  # chunk boundaries inside and across every tensor


def _tensors(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    bases = [torch.randn(5, 40, generator=g), torch.randn(3, generator=g), torch.randn(90, generator=g)]
    d = sum(b.numel() for b in bases)
    w = torch.randn(d, generator=g).requires_grad_()
    alpha = (torch.randn(d, generator=g) * 3).requires_grad_()
    offsets = [0, 200, 203]
    return bases, w, alpha, offsets


def test_deterministic_theta_and_gradients_match_composed_ops() -> None:
    bases, w, alpha, offsets = _tensors()
    thetas, per_tensor = fused.gated_thetas(w, alpha, L, R, False, offsets, bases, with_penalty=True)
    assert per_tensor.shape == (len(bases),)
    penalty = per_tensor.sum()
    delta = fused.deterministic_delta(w.detach(), alpha.detach(), L, R, offsets)
    for theta, base, start in zip(thetas, bases, offsets, strict=True):  # bit for bit with the export path
        assert torch.equal(theta, base + delta[start : start + base.numel()].view(base.shape))
    weights = [torch.randn(b.shape, generator=torch.Generator().manual_seed(i)) for i, b in enumerate(bases)]
    (sum((t * c).sum() for t, c in zip(thetas, weights, strict=True)) + 3.0 * penalty).backward()
    grad_w, grad_alpha = w.grad.clone(), alpha.grad.clone()
    w.grad = alpha.grad = None
    reference = gated_diff(w, alpha, L, R, False)
    parts = reference.split([b.numel() for b in bases])
    expected_penalty = prob_nonzero(alpha, L, R).sum()
    assert float(penalty.detach()) == pytest.approx(float(expected_penalty.detach()), rel=1e-6)
    loss = sum((p.view(b.shape) * c).sum() for p, b, c in zip(parts, bases, weights, strict=True))
    (loss + 3.0 * expected_penalty).backward()
    assert torch.allclose(grad_w, w.grad, rtol=1e-6, atol=1e-7)
    assert torch.allclose(grad_alpha, alpha.grad, rtol=1e-6, atol=1e-7)
    gate = deterministic_gate(alpha.detach(), L, R)
    assert (gate == 0).any() and (gate == 1).any() and ((gate > 0) & (gate < 1)).any()  # all three kinds


def test_sampled_gates_follow_the_closed_form() -> None:
    d = 60_000
    alpha = torch.full((d,), 0.5)
    torch.manual_seed(0)
    (z,), _ = fused.gated_thetas(torch.ones(d), alpha, L, R, True, [0], [torch.zeros(d)])  # theta = z
    assert float((z == 0).float().mean()) == pytest.approx(float(prob_zero(alpha[:1], L, R)), abs=0.01)
    assert float((z != 0).float().mean()) == pytest.approx(float(prob_nonzero(alpha[:1], L, R)), abs=0.01)


def test_expected_l0_and_its_gradient() -> None:
    alpha = (torch.randn(1000, generator=torch.Generator().manual_seed(1)) * 4).requires_grad_()
    value = fused.expected_l0_chunked(alpha, L, R)
    (2.0 * value).backward()
    fast = alpha.grad.clone()
    alpha.grad = None
    # The value against a float64 sum: the fused one accumulates in float64, while a float32 sum of
    # 1,000 terms can be off by more than 1e-6 depending on its (thread-count dependent) order.
    reference_value = prob_nonzero(alpha.detach().double(), L, R).sum()
    assert float(value) == pytest.approx(float(reference_value), rel=1e-6)
    # The gradient is elementwise (no reduction): against autograd's float32 one, same formula.
    (2.0 * prob_nonzero(alpha, L, R).sum()).backward()
    assert torch.allclose(fast, alpha.grad, rtol=1e-6, atol=1e-8)


def _sampled_step(w, alpha, offsets, bases, workspace, seed: int):
    """Thetas and penalty of one sampled forward pass, with its own noise."""
    torch.manual_seed(seed)
    thetas, penalty = fused.gated_thetas(
        w, alpha, L, R, True, offsets, bases, with_penalty=True, workspace=workspace
    )
    return sum((t * (i + 1)).sum() for i, t in enumerate(thetas)) + 2.0 * penalty.sum()


def test_a_shared_workspace_gives_the_same_gradients_as_fresh_buffers() -> None:
    """Reuse across steps, two forward passes before one backward, and accumulation into .grad."""
    bases, w, alpha, offsets = _tensors()
    fresh = []
    for seed in (1, 2):
        _sampled_step(w, alpha, offsets, bases, None, seed).backward()
        fresh.append((w.grad.clone(), alpha.grad.clone()))
        w.grad = alpha.grad = None
    workspace = Workspace()
    for seed, (grad_w, grad_alpha) in zip((1, 2), fresh, strict=True):  # one step after another
        _sampled_step(w, alpha, offsets, bases, workspace, seed).backward()
        assert torch.equal(w.grad, grad_w) and torch.equal(alpha.grad, grad_alpha)
        w.grad = alpha.grad = None
    first = _sampled_step(w, alpha, offsets, bases, workspace, 1)  # z of this graph must survive ...
    second = _sampled_step(w, alpha, offsets, bases, workspace, 2)  # ... this forward pass
    (first + second).backward()  # and both gradients accumulate into the same .grad
    assert torch.allclose(w.grad, fresh[0][0] + fresh[1][0]) and torch.allclose(
        alpha.grad, fresh[0][1] + fresh[1][1]
    )
    kept = w.grad
    _sampled_step(w, alpha, offsets, bases, workspace, 1).backward()  # .grad is not reset: it accumulates
    assert torch.allclose(kept, 2 * fresh[0][0] + fresh[1][0])


def test_the_workspace_reuses_a_buffer_only_when_nothing_holds_it() -> None:
    workspace = Workspace()
    cpu = torch.device("cpu")
    first = workspace.take("z", (10,), torch.float32, cpu)
    pointer = first.data_ptr()
    view = first[2:]
    del first
    assert workspace.take("z", (10,), torch.float32, cpu).data_ptr() != pointer  # a slice still holds it
    del view
    again = workspace.take("z", (10,), torch.float32, cpu)
    del again
    reused = workspace.take("z", (10,), torch.float32, cpu)
    assert workspace.take("z", (10,), torch.float32, cpu).data_ptr() != reused.data_ptr()
    assert workspace.take("z", (5,), torch.float32, cpu).shape == (5,)  # another shape: a new buffer
    assert workspace.nbytes() == workspace.nbytes(idle_only=True) == 20  # one buffer per name: the (5,)
    held = workspace.take("z", (5,), torch.float32, cpu)
    assert workspace.nbytes(idle_only=True) == 0 and held.numel() == 5


def test_the_training_loop_reuses_the_buffers() -> None:
    """With .grad set to None between steps (Trainer, zero_grad()), no d-sized tensor is allocated."""
    bases, w, alpha, offsets = _tensors()
    workspace = Workspace()
    pointers = []
    for seed in range(3):
        _sampled_step(w, alpha, offsets, bases, workspace, seed).backward()
        pointers.append((w.grad.data_ptr(), alpha.grad.data_ptr()))
        w.grad = alpha.grad = None
    assert pointers[0] == pointers[1] == pointers[2]


def test_merged_equals_unmerged_across_chunks() -> None:
    case = CASES["bert"]
    dp = DiffPruningModel(case.build(), DiffPruningConfig(dense_modules=case.dense_modules))
    with torch.no_grad():
        dp.w.normal_()
        dp.alpha.normal_(0, 3)
    dp.eval()
    args, kwargs = case.batch()
    with torch.no_grad():
        unmerged = dp(*args, **kwargs).logits
        with dp.merged() as model:
            assert torch.equal(model(*args, **kwargs).logits, unmerged)


def _computed_by(tensor: torch.Tensor, name: str) -> bool:
    """Whether the autograd graph of ``tensor`` contains a node whose class name contains ``name``."""
    stack, seen = [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if name in type(node).__name__:
            return True
        stack.extend(next_node for next_node, _ in node.next_functions)
    return False


def test_penalty_from_the_forward_pass_is_used_once_and_never_stale() -> None:
    case = CASES["bert"]
    dp = DiffPruningModel(case.build(), DiffPruningConfig(dense_modules=case.dense_modules))
    args, kwargs = case.batch()
    closed_form = float(prob_nonzero(dp.alpha.detach(), L, R).sum())
    loss = dp(*args, **kwargs).loss
    penalty = dp.l0_penalty()
    assert _computed_by(penalty, "GatedTheta")
    assert float(penalty) == pytest.approx(closed_form, rel=1e-6)
    (loss + penalty).backward()
    again = dp.l0_penalty()  # the forward's graph is used up: a fresh computation
    assert again is not penalty and float(again) == pytest.approx(closed_form, rel=1e-6)
    again.backward()  # works (a second backward through the used graph would raise)
    dp(*args, **kwargs)
    with torch.no_grad():
        dp.alpha.sub_(1.0)  # as an optimizer step: the cached penalty is stale now
    moved = float(prob_nonzero(dp.alpha.detach(), L, R).sum())
    assert float(dp.l0_penalty()) == pytest.approx(moved, rel=1e-6) and moved != pytest.approx(closed_form)


def test_a_model_training_loop_allocates_no_new_buffers_after_the_first_step() -> None:
    case = CASES["bert"]
    dp = DiffPruningModel(case.build(), DiffPruningConfig(dense_modules=case.dense_modules))
    dp.train()
    optimizer = torch.optim.AdamW(dp.optimizer_param_groups())
    args, kwargs = case.batch()
    seen = []
    for _ in range(3):
        loss = dp(*args, **kwargs).loss + dp.diff_config.l0_lambda * dp.l0_penalty()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seen.append({key: buffer.data_ptr() for key, (buffer, _) in dp._workspace._buffers.items()})
    # z, theta per gated tensor, both gradients, two chunk scratch buffers
    assert len(seen[0]) == 1 + len(dp._spans) + 2 + 2
    assert seen[0] == seen[1] == seen[2]


def test_without_buffer_reuse_nothing_is_kept_between_steps() -> None:
    case = CASES["bert"]
    config = DiffPruningConfig(dense_modules=case.dense_modules, reuse_buffers=False)
    dp = DiffPruningModel(case.build(), config)
    args, kwargs = case.batch()
    dp(*args, **kwargs).loss.backward()
    assert dp._workspace.nbytes() == 0


def test_structured_theta_and_gradients_match_composed_ops() -> None:
    """Group gates closed, open and in between: theta bit for bit, gradients of w, alpha and the group."""
    bases, w, alpha, offsets = _tensors(seed=3)
    group_alpha = torch.tensor([-9.0, 0.3, 9.0]).requires_grad_()  # z_g = 0, in (0, 1), 1
    sizes = [b.numel() for b in bases]
    weights = [torch.randn(b.shape, generator=torch.Generator().manual_seed(i)) for i, b in enumerate(bases)]

    group_z = deterministic_gate(group_alpha, L, R)
    thetas, per_tensor = fused.gated_thetas(
        w, alpha, L, R, False, offsets, bases, with_penalty=True, group_z=group_z
    )
    delta = fused.deterministic_delta(w.detach(), alpha.detach(), L, R, offsets).split(sizes)
    for theta, base, part, zg in zip(thetas, bases, delta, group_z.detach(), strict=True):
        assert torch.equal(theta, base + (part * zg).view(base.shape))
    penalty = (prob_nonzero(group_alpha, L, R) * per_tensor).sum()
    (sum((t * c).sum() for t, c in zip(thetas, weights, strict=True)) + 3.0 * penalty).backward()
    fast = [w.grad.clone(), alpha.grad.clone(), group_alpha.grad.clone()]
    w.grad = alpha.grad = group_alpha.grad = None

    parts = gated_diff(w, alpha, L, R, False).split(sizes)
    reference_group = deterministic_gate(group_alpha, L, R)
    loss = sum(
        (p.view(b.shape) * reference_group[i] * c).sum()
        for i, (p, b, c) in enumerate(zip(parts, bases, weights, strict=True))
    )
    probs = prob_nonzero(alpha, L, R).split(sizes)
    expected_penalty = (prob_nonzero(group_alpha, L, R) * torch.stack([p.sum() for p in probs])).sum()
    assert float(penalty.detach()) == pytest.approx(float(expected_penalty.detach()), rel=1e-6)
    (loss + 3.0 * expected_penalty).backward()
    for got, expected in zip(fast, (w.grad, alpha.grad, group_alpha.grad), strict=True):
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert float(fast[2][1].abs()) > 0  # the open-but-not-saturated group gate learns


def test_structured_model_runs_the_fused_kernel_and_merges_bit_for_bit() -> None:
    case = CASES["bert"]
    config = DiffPruningConfig(
        dense_modules=case.dense_modules, structured=True, structured_penalty="product"
    )
    dp = DiffPruningModel(case.build(), config)
    with torch.no_grad():
        dp.w.normal_()
        dp.alpha.normal_(0, 3)
        dp.group_alpha.normal_(0, 2)
    args, kwargs = case.batch()
    dp.train()
    loss = dp(*args, **kwargs).loss
    penalty = dp.l0_penalty()
    assert _computed_by(penalty, "GatedTheta")  # from the forward pass, not recomputed
    sizes = [s.numel for s in dp._spans]
    closed_form = prob_nonzero(dp.group_alpha.detach(), L, R) @ torch.stack(
        [p.sum() for p in prob_nonzero(dp.alpha.detach(), L, R).split(sizes)]
    )
    assert float(penalty) == pytest.approx(float(closed_form), rel=1e-5)
    (loss + penalty).backward()
    assert dp.group_alpha.grad is not None and bool(dp.group_alpha.grad.ne(0).any())
    dp.eval()
    with torch.no_grad():
        unmerged = dp(*args, **kwargs).logits
        with dp.merged() as model:
            assert torch.equal(model(*args, **kwargs).logits, unmerged)


def test_sampled_theta_penalty_and_gradients_match_composed_ops() -> None:
    """The sampled gate from one exponential (and the penalty slope kept by forward) against the
    logit / sigmoid ops on the same uniform draws, with gate log-odds far into both tails."""
    bases, w, alpha, offsets = _tensors(seed=3)
    with torch.no_grad():
        alpha[:6] = torch.tensor([-200.0, -90.0, -30.0, 30.0, 90.0, 200.0])
    weights = [torch.randn(b.shape, generator=torch.Generator().manual_seed(i)) for i, b in enumerate(bases)]
    torch.manual_seed(11)  # on CPU the chunked draws are the same uniforms as one draw over d (gate_noise.py)
    thetas, per_tensor = fused.gated_thetas(w, alpha, L, R, True, offsets, bases, with_penalty=True)
    (sum((t * c).sum() for t, c in zip(thetas, weights, strict=True)) + 3.0 * per_tensor.sum()).backward()
    grad_w, grad_alpha = w.grad.clone(), alpha.grad.clone()
    w.grad = alpha.grad = None
    torch.manual_seed(11)
    parts = gated_diff(w, alpha, L, R, True).split([b.numel() for b in bases])
    expected_penalty = prob_nonzero(alpha, L, R).sum()
    loss = sum(((b + p.view(b.shape)) * c).sum() for p, b, c in zip(parts, bases, weights, strict=True))
    (loss + 3.0 * expected_penalty).backward()
    for theta, base, part in zip(thetas, bases, parts, strict=True):
        assert torch.allclose(theta, base + part.detach().view(base.shape), rtol=1e-5, atol=1e-6)
    assert float(per_tensor.sum().detach()) == pytest.approx(float(expected_penalty.detach()), rel=1e-6)
    assert torch.allclose(grad_w, w.grad, rtol=1e-5, atol=1e-6)
    assert torch.allclose(grad_alpha, alpha.grad, rtol=1e-5, atol=1e-6)
    assert (
        torch.isfinite(grad_alpha).all() and torch.isfinite(torch.cat([t.reshape(-1) for t in thetas])).all()
    )
