"""Diff pruning as a PEFT method, on a tiny BERT classifier and a tiny BART: a PEFT user's script end to end."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from peft import PeftModel, get_peft_model
from peft_models import VOCAB, tiny_bart, tiny_bert
from safetensors import safe_open
from torch import nn

from deltamix.core.errors import BaseModelMismatchError
from deltamix.diffprune import DiffBank, DiffPruningConfig, DiffPruningModel
from deltamix.diffprune.diff_state import DiffState
from deltamix.diffprune.peft import DiffPruningPeftConfig
from deltamix.diffprune.projection import num_kept

SPARSITY = 0.05


def _classify_batch(seed: int) -> dict[str, torch.Tensor]:
    ids = torch.randint(3, VOCAB, (8, 10), generator=torch.Generator().manual_seed(seed))
    return {"input_ids": ids, "labels": (ids[:, 0] + seed) % 2}


def _copy_batch(seed: int) -> dict[str, torch.Tensor]:
    ids = torch.randint(3, VOCAB, (8, 6), generator=torch.Generator().manual_seed(seed))
    return {"input_ids": ids, "labels": (ids + seed) % (VOCAB - 3) + 3}


@dataclass(frozen=True)
class Case:
    build: Callable[..., nn.Module]
    task_type: str
    batch: Callable[[int], dict[str, torch.Tensor]]
    output: str  # the output compared between models
    structured: bool = False


CASES = {
    "bert-seq-cls": Case(tiny_bert, "SEQ_CLS", _classify_batch, "logits"),
    "bart-seq2seq": Case(tiny_bart, "SEQ_2_SEQ_LM", _copy_batch, "logits"),
    "bert-seq-cls-structured": Case(tiny_bert, "SEQ_CLS", _classify_batch, "logits", structured=True),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


def _config(case: Case) -> DiffPruningPeftConfig:
    return DiffPruningPeftConfig(
        task_type=case.task_type,
        target_sparsity=SPARSITY,
        learning_rate=1e-2,
        l0_lambda=1e-3,
        structured=case.structured,
    )


def _train(case: Case, data_seed: int, steps: int = 12) -> tuple[PeftModel, list[float]]:
    """The PEFT user's script: get_peft_model, the loss plus the L0 penalty, AdamW, project_."""
    model = get_peft_model(case.build(0), _config(case))
    optimizer = torch.optim.AdamW(model.optimizer_param_groups())
    batch, losses = case.batch(data_seed), []
    model.train()
    for _ in range(steps):
        out = model(**batch)
        (out.loss + model.diff_config.l0_lambda * model.l0_penalty()).backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(out.loss.detach()))
    model.project_()
    return model.eval(), losses


def _out(case: Case, model: nn.Module, data_seed: int = 0) -> torch.Tensor:
    batch = case.batch(data_seed)
    with torch.no_grad():
        return getattr(model(**batch), case.output)


def test_the_script_trains_with_the_penalty_and_projects_to_an_exact_count(case: Case) -> None:
    model = get_peft_model(case.build(0), _config(case))
    model.train()
    model.l0_penalty().backward()
    alpha = model.base_model.state().alpha
    assert alpha.grad is not None and bool((alpha.grad != 0).all())  # the penalty reaches every gate
    trained, losses = _train(case, data_seed=0)
    assert losses[-1] < 0.9 * losses[0]
    state = trained.base_model.state()
    assert trained.stage == "fixed_mask" and state.w is None and state.alpha is None
    assert state.kept_values.numel() == num_kept(SPARSITY, state.num_gated)
    assert [g["name"] for g in trained.optimizer_param_groups()] == ["diff", "dense"][
        : 2 if case.task_type == "SEQ_CLS" else 1
    ]


def test_save_writes_a_sparse_file_and_reload_gives_identical_outputs(case: Case, tmp_path: Path) -> None:
    model, _ = _train(case, data_seed=0)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert saved["peft_type"] == "DIFF_PRUNING" and saved["target_sparsity"] == SPARSITY
    assert saved["base_fingerprint"]["values_sha256"]
    nnz, payload = model.nnz(), 0
    with safe_open(tmp_path / "adapter_model.safetensors", "pt") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
            if ".diff_pruning_" in key:
                payload += f.get_tensor(key).numel() * f.get_tensor(key).element_size()
    assert 4 * nnz < payload <= 6 * nnz  # fp32 values plus 1-2 bytes of varint index each
    reloaded = PeftModel.from_pretrained(case.build(0), tmp_path)
    assert type(reloaded) is type(model) and reloaded.stage == "fixed_mask"
    assert torch.equal(_out(case, reloaded), _out(case, model))


def test_a_loaded_adapter_trains_its_kept_values_when_asked(case: Case, tmp_path: Path) -> None:
    model, _ = _train(case, data_seed=0)
    model.save_pretrained(tmp_path)
    frozen = PeftModel.from_pretrained(case.build(0), tmp_path)
    assert not frozen.base_model.state().kept_values.requires_grad
    loaded = PeftModel.from_pretrained(case.build(0), tmp_path, is_trainable=True)
    state = loaded.base_model.state()
    before, kept = _out(case, loaded), state.kept_indices.clone()
    optimizer = torch.optim.AdamW(loaded.optimizer_param_groups())
    loaded.train()
    loaded(**case.batch(0)).loss.backward()
    optimizer.step()
    assert torch.equal(state.kept_indices, kept) and not torch.equal(_out(case, loaded.eval()), before)


def test_two_adapters_switch_on_one_base_and_match_their_merged_models(case: Case, tmp_path: Path) -> None:
    for name, data_seed in (("a", 0), ("b", 1)):
        _train(case, data_seed)[0].save_pretrained(tmp_path / name)
    merged = {n: PeftModel.from_pretrained(case.build(0), tmp_path / n).merge_and_unload() for n in "ab"}
    model = PeftModel.from_pretrained(case.build(0), tmp_path / "a", adapter_name="a")
    model.load_adapter(tmp_path / "b", adapter_name="b")
    outputs = {}
    for name in ("a", "b", "a"):
        model.set_adapter(name)
        outputs[name] = _out(case, model)
        torch.testing.assert_close(outputs[name], _out(case, merged[name]), rtol=0, atol=1e-6)
    assert not torch.allclose(outputs["a"], outputs["b"])
    with model.disable_adapter():
        torch.testing.assert_close(_out(case, model), _out(case, case.build(0)), rtol=0, atol=0)
    model.delete_adapter("b")
    assert list(model.peft_config) == ["a"] and model.active_adapter == "a"
    torch.testing.assert_close(_out(case, model), outputs["a"], rtol=0, atol=0)


@pytest.mark.parametrize("other", ["other weights", "other shapes"])
def test_a_wrong_base_is_refused_with_a_clear_error(case: Case, tmp_path: Path, other: str) -> None:
    _train(case, data_seed=0, steps=1)[0].save_pretrained(tmp_path)
    wrong = case.build(1) if other == "other weights" else case.build(0, hidden=8)
    expected = "values differ" if other == "other weights" else "in the model but"
    with pytest.raises(BaseModelMismatchError, match=f"not trained on this base model.*{expected}"):
        PeftModel.from_pretrained(wrong, tmp_path)
    model = get_peft_model(wrong, _config(case))
    with pytest.raises(BaseModelMismatchError, match="adapter 'x' was not trained on this base model"):
        model.load_adapter(tmp_path, adapter_name="x")
    assert list(model.peft_config) == ["default"]


def test_one_config_object_serves_several_bases(case: Case) -> None:
    config = _config(case)
    first, second = get_peft_model(case.build(0), config), get_peft_model(case.build(1), config)
    assert config.base_fingerprint is None  # each adapter records its own base
    fingerprints = [m.peft_config["default"].base_fingerprint["values_sha256"] for m in (first, second)]
    assert fingerprints[0] != fingerprints[1]


def test_merge_and_unload_returns_the_plain_model_with_the_adapter_outputs(case: Case) -> None:
    model, _ = _train(case, data_seed=0)
    expected = _out(case, model)
    plain = model.merge_and_unload()
    assert type(plain) is type(case.build(0))
    assert not any("diff_pruning" in n or "modules_to_save" in n for n, _ in plain.named_parameters())
    torch.testing.assert_close(_out(case, plain), expected, rtol=0, atol=1e-6)


def test_merge_adapter_and_unmerge_restore_the_base_bit_for_bit(case: Case) -> None:
    model, _ = _train(case, data_seed=0)
    before = {n: p.detach().clone() for n, p in model.get_base_model().named_parameters()}
    expected = _out(case, model)
    model.merge_adapter()
    torch.testing.assert_close(_out(case, model), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="merged into the base weights: unmerge_adapter"):
        model.add_adapter("other", _config(case))
    with pytest.raises(ValueError, match="is merged: unmerge_adapter"):
        model.project_()
    model.unmerge_adapter()
    after = dict(model.get_base_model().named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_the_adapter_is_the_diff_pruning_model_s_own_diff(case: Case) -> None:
    """One implementation: the same parameters, the same flat layout, the same outputs, the same file."""
    model, _ = _train(case, data_seed=0)
    state = model.base_model.state()
    dense = ["classifier"] if case.task_type == "SEQ_CLS" else []
    dp = DiffPruningModel(
        case.build(0), DiffPruningConfig(dense_modules=dense, structured=case.structured)
    ).eval()
    assert isinstance(state, DiffState) and isinstance(dp, DiffState)
    assert dp._spans == state._spans
    diff = model.export_diff()
    dp.load_trainable_state_dict(
        {
            "kept_values": state.kept_values.detach().clone(),
            "kept_indices": state.kept_indices.clone(),
            **{f"dense/{n}": v for n, v in diff.dense.items()},
        }
    )
    torch.testing.assert_close(_out(case, dp), _out(case, model), rtol=0, atol=0)
    bank = DiffBank(case.build(0))
    bank.add("task", diff)
    bank.activate("task")
    torch.testing.assert_close(_out(case, bank.model), _out(case, model), rtol=0, atol=1e-6)


def test_generate_runs_with_the_adapter() -> None:
    case = CASES["bart-seq2seq"]
    model, _ = _train(case, data_seed=0)
    ids = case.batch(0)["input_ids"]
    kwargs = {"max_new_tokens": 5, "do_sample": False, "num_beams": 1}
    tokens = model.generate(input_ids=ids, **kwargs)
    before = {n: p.detach().clone() for n, p in model.get_base_model().named_parameters()}
    assert torch.equal(tokens, model.merge_and_unload().generate(input_ids=ids, **kwargs))
    assert not torch.equal(tokens, case.build(0).generate(input_ids=ids, **kwargs))
    assert math.isfinite(sum(float(v.sum()) for v in before.values()))
