"""The L0 stage computes the input embedding's diff only at the rows a batch looks up (embedding_rows_only).

The other rows cannot reach the loss, so the result must be that of computing every entry: the same
loss, the same gradients (w: 0 off the rows; alpha: the penalty's alone there).
"""

from __future__ import annotations

import pytest
import torch
from diffprune_cases import CASES

import deltamix.diffprune.fused as fused
from deltamix.diffprune import DiffPruningConfig, DiffPruningModel
from deltamix.diffprune.dense_theta import dense_thetas
from deltamix.diffprune.hard_concrete import prob_nonzero
from deltamix.diffprune.kept_theta import kept_thetas
from deltamix.diffprune.keyed_uniform import keyed_uniform_
from deltamix.diffprune.workspace import Workspace

L, R = -1.5, 1.5


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fused, "CHUNK", 37)  # chunk boundaries inside and across every tensor


def _kernel_inputs():
    g = torch.Generator().manual_seed(0)
    bases = [torch.randn(3, 7, generator=g), torch.randn(12, 5, generator=g), torch.randn(9, generator=g)]
    d = sum(b.numel() for b in bases)
    w = torch.randn(d, generator=g).requires_grad_()
    alpha = (torch.randn(d, generator=g) * 3).requires_grad_()
    group_z = torch.rand(len(bases), generator=g).requires_grad_()
    return bases, w, alpha, group_z, [0, 21, 81]


@pytest.mark.parametrize("structured", [False, True])
@pytest.mark.parametrize("sparse_gradient", [False, True])
def test_the_kernel_at_some_rows_matches_every_entry(structured: bool, sparse_gradient: bool) -> None:
    bases, w, alpha, group_z, offsets = _kernel_inputs()
    looked_up = torch.tensor([0, 3, 3, 7, 11])  # tensor 1's rows the "batch" reads (one twice)
    row_ids = torch.unique(looked_up)
    values = torch.randn(looked_up.numel(), 5, generator=torch.Generator().manual_seed(1))
    weights = [torch.randn(b.shape, generator=torch.Generator().manual_seed(i)) for i, b in enumerate(bases)]

    def run(rows):
        w.grad = alpha.grad = group_z.grad = None
        thetas, penalty = fused.gated_thetas(
            w, alpha, L, R, False, offsets, bases, with_penalty=True,
            group_z=group_z if structured else None, rows=rows,
        )  # fmt: skip
        table = thetas[1]
        if sparse_gradient:  # what nn.Embedding(sparse=True) sends back: a sparse gradient over rows
            loss = (torch.nn.functional.embedding(looked_up, table, sparse=True) * values).sum()
        else:
            loss = (table[looked_up] * values).sum()
        loss = loss + (thetas[0] * weights[0]).sum() + (thetas[2] * weights[2]).sum() + 3.0 * penalty.sum()
        loss.backward()
        grads = (w.grad.clone(), alpha.grad.clone(), group_z.grad.clone() if structured else None)
        return [t.detach() for t in thetas], float(loss.detach()), grads

    thetas_rows, loss_rows, grads_rows = run((1, row_ids))
    thetas_all, loss_all, grads_all = run(None)
    assert loss_rows == pytest.approx(loss_all, rel=1e-6)
    assert torch.equal(thetas_rows[0], thetas_all[0]) and torch.equal(thetas_rows[2], thetas_all[2])
    assert torch.allclose(thetas_rows[1][row_ids], thetas_all[1][row_ids], rtol=0, atol=1e-6)
    others = torch.ones(12, dtype=torch.bool)
    others[row_ids] = False
    assert torch.equal(thetas_rows[1][others], bases[1][others])  # rows not looked up: the base
    for got, expected in zip(grads_rows, grads_all, strict=True):
        if expected is not None:
            assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
    untouched = slice(21 + 5 * 1, 21 + 5 * 3)  # rows 1 and 2 of tensor 1
    assert (grads_rows[0][untouched] == 0).all()
    p = prob_nonzero(alpha.detach()[untouched], L, R)
    assert torch.allclose(grads_rows[1][untouched], 3.0 * p * (1 - p), rtol=1e-5, atol=1e-7)


def _bert_pair(**settings):
    """The same tiny BERT wrapped twice (``DiffPruningConfig(**settings)``): rows only, and every entry;
    spread-out diffs and gates."""
    models = []
    for rows_only in (True, False):
        config = DiffPruningConfig(dense_modules=["classifier"], embedding_rows_only=rows_only, **settings)
        model = DiffPruningModel(CASES["bert"].build(), config)
        with torch.no_grad():
            model.w.normal_(0, 0.01, generator=torch.Generator().manual_seed(1))
            if model.alpha is not None:
                model.alpha.normal_(0, 2, generator=torch.Generator().manual_seed(2))
        models.append(model)
    return models


def _ids() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[2, 5, 7, 9, 0, 0], [3, 5, 11, 13, 17, 0]])
    return {"input_ids": ids, "attention_mask": (ids > 0).long(), "labels": torch.tensor([0, 2])}


@pytest.mark.parametrize("structured", [False, True])
def test_a_model_gets_the_same_loss_and_gradients_as_with_every_row(structured: bool, monkeypatch) -> None:
    fast, reference = _bert_pair(structured=structured)
    assert fast._embedding_rows_of is not None and reference._embedding_rows_of is None
    seen = []
    kernel = fused.gated_thetas
    monkeypatch.setattr(
        "deltamix.diffprune.diff_state.gated_thetas",
        lambda *a, **k: seen.append(k["rows"]) or kernel(*a, **k),
    )
    results = []
    for model in (fast, reference):
        model.eval()  # deterministic gates, no dropout; gradients on
        loss = model(**_ids()).loss + 1e-3 * model.l0_penalty()
        loss.backward()
        grads = [p.grad for p in (model.w, model.alpha, model.group_alpha) if p is not None]
        results.append((float(loss.detach()), grads))
    assert seen[0] is not None and torch.equal(seen[0][1], torch.tensor([0, 2, 3, 5, 7, 9, 11, 13, 17]))
    assert seen[1] is None
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    for got, expected in zip(results[0][1], results[1][1], strict=True):
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-8)
    assert fast._embedding_rows_of[0].sparse is False  # restored after the call


def test_training_steps_leave_the_unread_rows_to_the_penalty() -> None:
    model, _ = _bert_pair(structured=False)
    model.train()
    lam = 1e-3
    (model(**_ids()).loss + lam * model.l0_penalty()).backward()
    _, index = model._embedding_rows_of
    span = model._spans[index]
    width = span.shape[1]
    row = 40  # a row no input id reads
    entries = slice(span.offset + row * width, span.offset + (row + 1) * width)
    assert (model.w.grad[entries] == 0).all()
    config = model.diff_config
    p = prob_nonzero(model.alpha.detach()[entries], config.stretch_left, config.stretch_right)
    assert torch.allclose(model.alpha.grad[entries], lam * p * (1 - p), rtol=1e-5, atol=1e-12)
    read = slice(span.offset + 5 * width, span.offset + 6 * width)
    assert (model.w.grad[read] != 0).any()


def test_no_grad_evaluation_and_inputs_embeds_compute_every_row(monkeypatch) -> None:
    model, _ = _bert_pair(structured=False)
    seen = []
    kernel = fused.gated_thetas
    monkeypatch.setattr(
        "deltamix.diffprune.diff_state.gated_thetas",
        lambda *a, **k: seen.append(k["rows"]) or kernel(*a, **k),
    )
    model.eval()
    with torch.no_grad():  # so that merged() stays bit for bit the unmerged model
        model(**_ids())
    batch = _ids()
    embeds = model.base_model.get_input_embeddings()(batch.pop("input_ids"))
    model(inputs_embeds=embeds, **batch)
    assert seen == [None, None]


@pytest.mark.parametrize("name", ["gpt2", "t5"])
def test_tied_or_shared_embeddings_are_not_restricted(name: str) -> None:
    """GPT-2's LM head is the embedding matrix (every row reaches the loss); T5's decoder reads other ids."""
    model = DiffPruningModel(CASES[name].build(), DiffPruningConfig(dense_modules=CASES[name].dense_modules))
    assert model._embedding_rows_of is None


@pytest.mark.parametrize("sparse_gradient", [False, True])
def test_the_dense_diff_kernel_is_base_plus_w_bit_for_bit(sparse_gradient: bool) -> None:
    """The non-adaptive baseline's first stage: theta and the gradient of w exactly as ``base + w``."""
    bases, w, _, _, offsets = _kernel_inputs()
    looked_up = torch.tensor([0, 3, 3, 7, 11])
    values = torch.randn(looked_up.numel(), 5, generator=torch.Generator().manual_seed(1))
    weights = [torch.randn(b.shape, generator=torch.Generator().manual_seed(i)) for i, b in enumerate(bases)]

    def run(thetas, sparse: bool = False):
        table = thetas[1]
        if sparse:
            loss = (torch.nn.functional.embedding(looked_up, table, sparse=True) * values).sum()
        else:
            loss = (table[looked_up] * values).sum()
        ((thetas[0] * weights[0]).sum() + (thetas[2] * weights[2]).sum() + loss).backward()
        grad, w.grad = w.grad.clone(), None
        return grad

    sizes = [b.numel() for b in bases]
    composed = [b + part.view(b.shape) for b, part in zip(bases, w.split(sizes), strict=True)]
    reference = run(composed)  # autograd's own path (a sparse gradient cannot pass its view)
    for rows in (None, (1, torch.unique(looked_up))):
        thetas = dense_thetas(w, offsets, bases, rows=rows)
        assert torch.equal(thetas[0], composed[0]) and torch.equal(thetas[2], composed[2])
        read = torch.unique(looked_up)
        assert torch.equal(thetas[1][read], composed[1][read])
        assert torch.equal(run(thetas, sparse_gradient), reference)


def test_a_dense_diff_model_gets_the_same_gradients_as_with_every_row() -> None:
    grads = []
    for model in _bert_pair(learn_gates=False):
        model.eval()
        model(**_ids()).loss.backward()
        grads.append(model.w.grad)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("sparse_gradient", [False, True])
def test_the_fixed_mask_kernel_is_index_add_bit_for_bit(sparse_gradient: bool) -> None:
    """The fixed-mask stage: theta and the kept values' gradient exactly as ``base.index_add``."""
    bases, *_ = _kernel_inputs()
    bases = bases[:2]
    pieces = [(torch.tensor([1, 4, 20]), 0, 3), (torch.tensor([0, 16, 17, 40, 59]), 3, 8)]  # 16, 17: row 3
    values = torch.randn(8, generator=torch.Generator().manual_seed(3)).requires_grad_()
    looked_up = torch.tensor([3, 3, 8, 11])  # rows 3, 8 and 11 of tensor 1 (kept: 16, 17 in row 3; 40, 59)
    lookup_values = torch.randn(looked_up.numel(), 5, generator=torch.Generator().manual_seed(1))
    weight = torch.randn(bases[0].shape, generator=torch.Generator().manual_seed(2))

    def run(thetas, sparse: bool = False):
        table = thetas[1]
        read = torch.nn.functional.embedding(looked_up, table, sparse=True) if sparse else table[looked_up]
        ((thetas[0] * weight).sum() + (read * lookup_values).sum()).backward()
        grad, values.grad = values.grad.clone(), None
        return grad

    composed = [
        b.reshape(-1).index_add(0, local, values[start:end]).view(b.shape)
        for (local, start, end), b in zip(pieces, bases, strict=True)
    ]
    reference = run(composed)
    assert reference[3] == 0 and reference[6:].abs().sum() > 0  # entry 0 of tensor 1 is in an unread row
    thetas = kept_thetas(values, pieces, bases)
    assert all(torch.equal(a, b) for a, b in zip(thetas, composed, strict=True))
    assert torch.equal(run(thetas, sparse_gradient), reference)


def test_a_fixed_mask_model_gets_the_same_gradients_with_a_sparse_embedding_gradient() -> None:
    grads = []
    for model in _bert_pair(target_sparsity=0.3):
        model.project_()
        assert any(span.name.endswith("word_embeddings.weight") for span, *_ in model._kept_local)
        model.eval()
        model(**_ids()).loss.backward()
        grads.append(model.kept_values.grad)
    assert torch.equal(grads[0], grads[1])


def test_an_embedding_read_beyond_the_input_ids_is_an_error_not_a_wrong_gradient() -> None:
    """A model that looks its embedding up at other ids too would have trained on base rows there."""
    bases, w, alpha, _, offsets = _kernel_inputs()
    thetas, _ = fused.gated_thetas(w, alpha, L, R, True, offsets, bases, rows=(1, torch.tensor([0, 3])))
    read = torch.nn.functional.embedding(torch.tensor([0, 3, 5]), thetas[1], sparse=True)  # 5: not in rows
    with pytest.raises(RuntimeError, match="embedding_rows_only=False"):
        read.sum().backward()


@pytest.mark.parametrize("structured", [False, True])
def test_sampled_gates_at_some_rows_do_not_depend_on_the_other_rows(structured: bool) -> None:
    """Two processes of a data-parallel job look up other rows: an entry's sampled gate, every other
    tensor's gates and the generator's state afterwards must be what one process looking up all of
    them gets, or the processes train on other noise than one process does (issue 35)."""
    bases, w, alpha, group_z, offsets = _kernel_inputs()
    draws = {}
    for name, row_ids in {"both": [0, 3, 7, 11], "first": [0, 3], "second": [7, 11], "one": [3]}.items():
        torch.manual_seed(5)
        with torch.no_grad():
            thetas, _ = fused.gated_thetas(
                w, alpha, L, R, True, offsets, bases, with_penalty=True,
                group_z=group_z if structured else None, rows=(1, torch.tensor(row_ids)),
            )  # fmt: skip
        draws[name] = ([t.clone() for t in thetas], torch.get_rng_state(), row_ids)
    (all_thetas, all_state, _) = draws.pop("both")
    for thetas, state, row_ids in draws.values():
        assert torch.equal(state, all_state)
        assert torch.equal(thetas[0], all_thetas[0]) and torch.equal(thetas[2], all_thetas[2])
        assert torch.equal(thetas[1][row_ids], all_thetas[1][row_ids])
    delta = all_thetas[1][[0, 3, 7, 11]] - bases[1][[0, 3, 7, 11]]
    assert (delta != 0).any() and not torch.equal(delta[0], delta[1])  # gated diffs, not one draw per row


def test_keyed_uniforms_are_uniform() -> None:
    u = keyed_uniform_(torch.empty(200_000), torch.tensor(12345), torch.arange(200_000))
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 5e-3 and abs(float(u.var()) - 1 / 12) < 2e-3
    histogram = torch.histc(u, bins=20, min=0.0, max=1.0) / u.numel()
    assert (histogram - 0.05).abs().max() < 3e-3
    other = keyed_uniform_(torch.empty(200_000), torch.tensor(12346), torch.arange(200_000))
    assert abs(float(torch.corrcoef(torch.stack([u, other]))[0, 1])) < 1e-2  # another key: other draws


def test_a_reused_row_restricted_theta_equals_a_fresh_one() -> None:
    """The buffer kept from the last step gets only the last rows reset to base (row_theta.py)."""
    bases, w, alpha, _, offsets = _kernel_inputs()
    workspace = Workspace()
    for rows in (torch.tensor([0, 3, 7]), torch.tensor([1, 3, 11]), torch.tensor([2])):
        torch.manual_seed(4)
        reused, _ = fused.gated_thetas(
            w, alpha, L, R, True, offsets, bases, workspace=workspace, rows=(1, rows)
        )
        torch.manual_seed(4)
        fresh, _ = fused.gated_thetas(w, alpha, L, R, True, offsets, bases, rows=(1, rows))
        assert all(torch.equal(a, b) for a, b in zip(reused, fresh, strict=True))
        del reused  # idle again: the next step reuses the buffer


def test_a_reused_kept_theta_equals_a_fresh_one() -> None:
    """The buffer kept from the last step gets only the kept entries rewritten (kept_theta.py)."""
    bases = [torch.randn(4, 6, generator=torch.Generator().manual_seed(0))]
    pieces = [(torch.tensor([1, 5, 17]), 0, 3)]
    workspace = Workspace()
    for step in range(3):
        values = torch.randn(3, generator=torch.Generator().manual_seed(step))
        (reused,) = kept_thetas(values, pieces, bases, workspace=workspace)
        (fresh,) = kept_thetas(values, pieces, bases)
        assert torch.equal(reused, fresh)
        del reused
    with torch.no_grad():
        bases[0].add_(1.0)  # a changed base is copied afresh
    (reused,) = kept_thetas(values, pieces, bases, workspace=workspace)
    assert torch.equal(reused, kept_thetas(values, pieces, bases)[0])
