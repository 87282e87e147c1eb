"""DiffPruningModel over the tiny-model matrix: training, penalty, gradients, projection, merging, export."""

from __future__ import annotations

import math

import pytest
import torch
from diffprune_cases import CASES, Case, assert_bit_equal, snapshot

from deltamix.diffprune import DiffBank, DiffPruningConfig, DiffPruningModel, SparseDiff
from deltamix.diffprune.projection import num_kept


def _wrap(case: Case, **overrides) -> tuple[torch.nn.Module, DiffPruningModel]:
    base = case.build()
    config = DiffPruningConfig(dense_modules=case.dense_modules, target_sparsity=0.05, **overrides)
    return base, DiffPruningModel(base, config)


def _train(dp: DiffPruningModel, case: Case, steps: int = 2, lr_scale: float = 1000.0) -> list[float]:
    """A plain PyTorch loop: task loss + lambda * L0 penalty, AdamW over the model's parameter groups."""
    groups = dp.optimizer_param_groups()
    for group in groups:
        if group["name"] != "gates":
            group["lr"] *= lr_scale  # tiny models, few steps: make w move visibly
    optimizer = torch.optim.AdamW(groups)
    args, kwargs = case.batch()
    dp.train()
    losses = []
    for _ in range(steps):
        loss = case.loss(dp(*args, **kwargs), args, kwargs) + dp.diff_config.l0_lambda * dp.l0_penalty()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dp.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def test_wrap_and_train_leaves_base_frozen(case: Case) -> None:
    base, dp = _wrap(case)
    before = snapshot(base)
    dense = set(dp.dense_names)
    assert all(p.requires_grad == (n in dense) for n, p in base.named_parameters())
    losses = _train(dp, case)
    assert all(math.isfinite(v) for v in losses)
    assert dp.w.abs().sum() > 0
    assert not torch.equal(dp.alpha, torch.full_like(dp.alpha, 5.0))
    assert_bit_equal(base, before, skip=tuple(dense))
    if dense:
        assert any(not torch.equal(p, before[n]) for n, p in base.named_parameters() if n in dense)


def test_gradients_reach_only_w_alpha_and_head(case: Case) -> None:
    base, dp = _wrap(case)
    args, kwargs = case.batch()
    loss = case.loss(dp(*args, **kwargs), args, kwargs) + dp.l0_penalty()
    loss.backward()
    assert dp.w.grad is not None and dp.w.grad.abs().sum() > 0
    assert dp.alpha.grad is not None and dp.alpha.grad.abs().sum() > 0
    for name, p in base.named_parameters():
        if name in dp.dense_names:
            assert p.grad is not None
        else:
            assert p.grad is None, name


def test_behaves_like_the_base_model_at_init(case: Case) -> None:
    base, dp = _wrap(case)
    base.eval()
    dp.eval()
    args, kwargs = case.batch()
    with torch.no_grad():  # (T5 takes a different kernel path when autograd records, ~1e-6 apart)
        expected = base(*args, **kwargs)
        actual = dp(*args, **kwargs)
    assert torch.equal(case.output(actual), case.output(expected))  # w = 0, so theta = base exactly
    assert type(actual) is type(expected)
    if case.name != "mlp":
        assert torch.equal(actual.loss, expected.loss)


@pytest.mark.parametrize("structure", [None, "sum", "product"])
def test_penalty_equals_closed_form(case: Case, structure: str | None) -> None:
    structured = structure is not None
    _, dp = _wrap(case, structured=structured, structured_penalty=structure or "sum")
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        dp.alpha.copy_(torch.randn(dp.alpha.shape, generator=generator) * 3)
        if structured:
            dp.group_alpha.copy_(torch.randn(dp.group_alpha.shape, generator=generator) * 3)
    c = math.log(1.5 / 1.5)
    probs = [1 / (1 + math.exp(-(a - c))) for a in dp.alpha.double().tolist()]
    group_probs = [1 / (1 + math.exp(-(a - c))) for a in dp.group_alpha.tolist()] if structured else []
    if structure in (None, "sum"):  # the authors' code adds each group gate's probability
        expected = sum(probs) + sum(group_probs)
    else:  # the paper's equation: an entry counts while its group is open
        expected, offset = 0.0, 0
        for span, group_prob in zip(dp._spans, group_probs, strict=True):
            expected += sum(probs[offset : offset + span.numel]) * group_prob
            offset += span.numel
    assert float(dp.l0_penalty().detach()) == pytest.approx(expected, rel=1e-5)
    if structured:  # the same value when the forward pass computes it (fused kernel)
        dp.train()
        args, kwargs = case.batch()
        dp(*args, **kwargs)
        assert float(dp.l0_penalty().detach()) == pytest.approx(expected, rel=1e-5)


def test_unknown_structured_penalty_is_refused() -> None:
    with pytest.raises(ValueError, match="structured_penalty"):
        DiffPruningConfig(structured=True, structured_penalty="mean")


def test_structured_group_gate_scales_whole_tensor() -> None:
    _, dp = _wrap(CASES["mlp"], structured=True)
    with torch.no_grad():
        dp.w.fill_(1.0)
        dp.group_alpha[0] = -20.0  # first tensor's group gate closed deterministically
    dp.eval()
    delta = dp.current_delta()
    first = dp._spans[0]
    assert torch.all(delta[: first.numel] == 0)
    assert torch.all(delta[first.numel :] == 1.0)


def test_projection_keeps_exactly_k_largest(case: Case) -> None:
    _, dp = _wrap(case)
    _train(dp, case, steps=2)
    dp.eval()
    delta = dp.current_delta()
    dp.project_()
    k = num_kept(0.05, dp.num_gated)
    assert k == math.ceil(0.05 * dp.num_gated)
    assert dp.kept_values.numel() == k and dp.kept_indices.numel() == k
    assert torch.all(dp.kept_indices[1:] > dp.kept_indices[:-1])
    kept = delta.abs()[dp.kept_indices]
    dropped = delta.abs().clone()
    dropped[dp.kept_indices] = -1
    assert kept.min() >= dropped.max()
    assert torch.equal(dp.kept_values.detach(), delta[dp.kept_indices])
    assert dp.w is None and dp.alpha is None and dp.stage == "fixed_mask"
    assert float(dp.l0_penalty().detach()) == 0.0


def test_fixed_mask_changes_only_kept_entries(case: Case) -> None:
    base, dp = _wrap(case)
    _train(dp, case, steps=2)
    dp.project_()
    before = snapshot(base)
    kept_before = dp.current_delta()
    _train(dp, case, steps=2)
    after = dp.current_delta()
    changed = torch.nonzero(after != kept_before).flatten()
    assert changed.numel() > 0
    assert torch.isin(changed, dp.kept_indices).all()
    assert dp.kept_values.grad.shape == (dp.kept_values.numel(),)  # O(k) gradient
    assert_bit_equal(base, before, skip=tuple(dp.dense_names))


def test_merged_equals_unmerged(case: Case) -> None:
    base, dp = _wrap(case)
    _train(dp, case, steps=2)
    dp.eval()
    args, kwargs = case.batch()
    with torch.no_grad():  # compare like with like (T5's kernels differ under autograd)
        unmerged = case.output(dp(*args, **kwargs))  # L0 stage, deterministic gates
        with dp.merged() as model:
            assert torch.equal(case.output(model(*args, **kwargs)), unmerged)
    dp.project_()
    _train(dp, case, steps=1)
    dp.eval()
    with torch.no_grad():
        unmerged = case.output(dp(*args, **kwargs))  # fixed-mask stage
        merged = dp.merge_and_unload()
        assert merged is base
        assert torch.equal(case.output(merged(*args, **kwargs)), unmerged)
    with pytest.raises(RuntimeError, match="merge_and_unload"):
        dp(*args, **kwargs)


def test_dense_diff_without_gates_merges_exactly() -> None:
    case = CASES["mlp"]
    _, dp = _wrap(case, learn_gates=False)
    assert dp.stage == "dense_diff" and dp.alpha is None and float(dp.l0_penalty()) == 0.0
    _train(dp, case, steps=2)
    dp.eval()
    args, _ = case.batch()
    with torch.no_grad():
        unmerged = dp(*args)
        assert torch.equal(dp.merge_and_unload()(*args), unmerged)


def test_loaded_diff_on_fresh_base_reproduces_outputs(case: Case, tmp_path) -> None:
    _, dp = _wrap(case)
    _train(dp, case, steps=2)
    dp.project_()
    _train(dp, case, steps=2)
    dp.eval()
    args, kwargs = case.batch()
    with torch.no_grad():  # like with like: T5's kernels round differently under autograd (~1e-6)
        trained = case.output(dp(*args, **kwargs))
    dp.export_diff().save(tmp_path / "task.safetensors")

    fresh = case.build().eval()
    with torch.no_grad():  # a fresh head is random: the diff must bring its own
        for name, p in fresh.named_parameters():
            if name in dp.dense_names:
                p.normal_()
    before = snapshot(fresh)
    diff = SparseDiff.load(tmp_path / "task.safetensors")
    diff.apply_(fresh)
    with torch.no_grad():
        assert torch.allclose(case.output(fresh(*args, **kwargs)), trained, atol=1e-6, rtol=0)
    diff.revert_(fresh)
    assert_bit_equal(fresh, before)


def test_bank_switching_is_bit_exact(case: Case) -> None:
    diffs = {}
    for task, seed in (("a", 1), ("b", 2)):
        _, dp = _wrap(case)
        torch.manual_seed(seed)
        _train(dp, case, steps=2)
        dp.project_()
        diffs[task] = dp
    args, kwargs = case.batch()
    expected = {}
    for task, dp in diffs.items():
        dp.eval()
        with torch.no_grad():  # outputs compared without autograd (T5's kernels round differently under it)
            expected[task] = case.output(dp(*args, **kwargs))
    model = case.build().eval()
    pristine = snapshot(model)
    bank = DiffBank(model)
    for task, dp in diffs.items():
        bank.add(task, dp.export_diff())
    bank.activate("a")
    state_a = snapshot(model)
    with torch.no_grad():
        assert torch.allclose(case.output(model(*args, **kwargs)), expected["a"], atol=1e-6, rtol=0)
    bank.activate("b")
    assert bank.active == "b"
    with torch.no_grad():
        assert torch.allclose(case.output(model(*args, **kwargs)), expected["b"], atol=1e-6, rtol=0)
    bank.activate("a")
    assert_bit_equal(model, state_a)
    bank.activate(None)
    assert bank.active is None
    assert_bit_equal(model, pristine)
    with pytest.raises(KeyError, match="no diff named"):
        bank.activate("c")
    assert bank.active is None


def test_eval_gate_modes() -> None:
    case = CASES["mlp"]
    args, _ = case.batch()
    for mode, deterministic in (("deterministic", True), ("sampled", False)):
        _, dp = _wrap(case, eval_gate=mode)
        with torch.no_grad():
            dp.w.fill_(0.5)
            dp.alpha.fill_(0.0)  # gates in (0, 1) with noise
        dp.eval()
        first, second = dp(*args), dp(*args)
        assert torch.equal(first, second) == deterministic


def test_optimizer_param_groups() -> None:
    _, dp = _wrap(CASES["mlp"], structured=True, dense_learning_rate=3e-4)
    groups = {g["name"]: g for g in dp.optimizer_param_groups()}
    assert groups["diff"]["params"] == [dp.w] and groups["diff"]["lr"] == 1e-5
    assert groups["gates"]["params"] == [dp.alpha, dp.group_alpha]
    assert groups["gates"]["lr"] == 0.1 and groups["gates"]["constant_lr"]
    assert groups["dense"]["lr"] == 3e-4 and len(groups["dense"]["params"]) == 2
    dp.project_()
    groups = {g["name"]: g for g in dp.optimizer_param_groups()}
    assert set(groups) == {"diff", "dense"} and groups["diff"]["params"] == [dp.kept_values]
    assert groups["diff"]["lr"] == 5e-5


def test_include_exclude_and_bad_dense_modules() -> None:
    base, dp = _wrap(CASES["bert"], include=[r"encoder\."], exclude=[r"LayerNorm"])
    names = [s.name for s in dp._spans]
    assert names and all("encoder." in n and "LayerNorm" not in n for n in names)
    frozen = [n for n, p in base.named_parameters() if not p.requires_grad]
    assert any("embeddings" in n for n in frozen)
    with pytest.raises(ValueError, match="matches no module"):
        DiffPruningModel(CASES["mlp"].build(), DiffPruningConfig(dense_modules=["head"]))
    with pytest.raises(ValueError, match="no parameter is gated"):
        DiffPruningModel(CASES["mlp"].build(), DiffPruningConfig(include=["nothing-matches"]))


def test_a_bf16_base_trains_fp32_diff_values_through_the_rounded_theta() -> None:
    """The diff's trainable values are the fp32 master copy; the forward sees theta rounded to bf16, so a
    delta below half a bf16 step of its weight changes no output yet still gets its gradient."""
    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).to(
        torch.bfloat16
    )
    before = {name: p.detach().clone() for name, p in base.named_parameters()}
    dp = DiffPruningModel(base, DiffPruningConfig(dense_modules=["2"], target_sparsity=0.25))
    x = torch.randn(4, 8, dtype=torch.bfloat16)
    plain = base(x)
    assert dp.w.dtype == dp.alpha.dtype == torch.float32
    with torch.no_grad():
        dp.w.fill_(1e-6)  # far below half a bf16 step of weights of size ~0.1
        dp.eval()
        assert torch.equal(dp(x), plain)
    dp.train()
    optimizer = torch.optim.AdamW(dp.optimizer_param_groups())
    for _ in range(2):
        loss = dp(x).float().pow(2).mean() + 1e-3 * dp.l0_penalty()
        optimizer.zero_grad()
        loss.backward()
        assert dp.w.grad.dtype == torch.float32 and dp.w.grad.abs().sum() > 0
        assert torch.isfinite(dp.alpha.grad).all()
        optimizer.step()
    dp.project_()
    loss = dp(x).float().pow(2).mean()
    loss.backward()
    assert dp.kept_values.dtype == torch.float32 and dp.kept_values.grad.abs().sum() > 0
    for name, p in base.named_parameters():
        if not name.startswith("2."):
            assert p.dtype == torch.bfloat16 and torch.equal(p, before[name])  # the base stays as loaded
