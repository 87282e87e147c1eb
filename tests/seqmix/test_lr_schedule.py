"""Learning-rate schedules: closed forms (fairseq's inverse_sqrt), bad settings, and the trainer's rates."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from deltamix.core.io import read_jsonl
from deltamix.training.lr_schedule import adamw_with_schedule, lr_factor

from .test_trainer import _trainer, scan_slice  # noqa: F401 (a fixture)


def test_warm_up_then_constant() -> None:
    assert [lr_factor(t, 4, "constant") for t in (1, 2, 3, 4, 5, 100)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lr_factor(1, 0, "constant") == 1.0


def test_inverse_sqrt_is_fairseqs() -> None:
    """fairseq: lr = peak * t / warmup while t < warmup, then peak * sqrt(warmup) * t ** -0.5."""
    peak, warmup = 5e-4, 4000
    for t in (1, 1000, 3999, 4000, 4001, 16000, 100_000):
        fairseq = peak * t / warmup if t < warmup else peak * math.sqrt(warmup) * t**-0.5
        assert peak * lr_factor(t, warmup, "inverse-sqrt") == pytest.approx(fairseq, rel=1e-12)
    assert lr_factor(16000, 4000, "inverse-sqrt") == 0.5


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'cosine'"):
        lr_factor(1, 10, "cosine")
    with pytest.raises(ValueError, match=r"needs warmup_steps >= 1 \(--warmup-steps\), got 0"):
        lr_factor(1, 0, "inverse-sqrt")


def test_the_optimizer_is_fused_adamw_with_the_loops_updates() -> None:
    """On the CPU the fused kernel runs, and its updates are torch's loop AdamW's up to float rounding."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 5))
    fused_model = torch.nn.Sequential(*(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 5)))
    fused_model.load_state_dict(model.state_dict())
    fused, scheduler = adamw_with_schedule(fused_model.parameters(), 1e-2, 0.01, 2, "constant")
    assert fused.defaults["fused"] is True
    loop = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01, foreach=False)
    x = torch.randn(4, 8)
    for step in range(4):
        for net, optimizer in ((model, loop), (fused_model, fused)):
            optimizer.zero_grad()
            net(x).square().mean().backward()
        for group in loop.param_groups:
            group["lr"] = 1e-2 * lr_factor(step + 1, 2, "constant")
        loop.step()
        fused.step()
        scheduler.step()
    for ours, reference in zip(fused_model.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_trainer_follows_the_schedule_across_a_resume(scan_slice, tmp_path: Path) -> None:  # noqa: F811
    """The logged rate after update s is the rate of update s + 1, also after resuming at step 4."""
    settings = {"learning_rate": 1e-2, "warmup_steps": 2, "lr_schedule": "inverse-sqrt", "log_interval": 1}
    first = _trainer(scan_slice, tmp_path / "run", **settings)
    assert not first.train(stop_after=4).finished
    assert _trainer(scan_slice, tmp_path / "run", **settings).train().step == 6
    logged = {row["step"]: row["lr"] for row in read_jsonl(tmp_path / "run" / "log.jsonl") if "lr" in row}
    assert sorted(logged) == [1, 2, 3, 4, 5, 6]
    for step, lr in logged.items():
        assert lr == pytest.approx(1e-2 * lr_factor(step + 1, 2, "inverse-sqrt"), rel=1e-12), step


def _rates(make_scheduler, updates: int) -> list[float]:
    """The learning rate (peak 1) of each of ``updates`` optimizer steps under a torch scheduler."""
    import torch

    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(updates):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_library_schedules_differ_from_ours() -> None:
    """Why lr_schedule.py is kept: transformers' schedules give update 1 the rate 0 and update t + 1
    what ours (fairseq's) gives update t, and its inverse-sqrt rounds differently; torch's LinearLR
    warm-up drifts by float error. Any of them would change the rates of recorded runs."""
    import torch
    from transformers import get_constant_schedule_with_warmup, get_inverse_sqrt_schedule

    warmup, updates = 4000, 4100

    def ours(schedule):
        return lambda opt: torch.optim.lr_scheduler.LambdaLR(
            opt, lambda k: lr_factor(k + 1, warmup, schedule)
        )

    constant = _rates(ours("constant"), updates)
    inverse_sqrt = _rates(ours("inverse-sqrt"), updates)
    hf_constant = _rates(lambda opt: get_constant_schedule_with_warmup(opt, warmup), updates)
    hf_inverse_sqrt = _rates(lambda opt: get_inverse_sqrt_schedule(opt, warmup), updates)
    assert hf_constant[0] == hf_inverse_sqrt[0] == 0.0 and constant[0] == 1 / warmup
    assert hf_constant[1:] == constant[:-1]  # the same values, one update later
    assert hf_inverse_sqrt[1:] != inverse_sqrt[:-1]  # and not even that for inverse-sqrt ...
    assert hf_inverse_sqrt[1:] == pytest.approx(inverse_sqrt[:-1], rel=1e-14)  # ... by rounding only
    linear = _rates(
        lambda opt: torch.optim.lr_scheduler.LinearLR(opt, 1 / warmup, 1.0, total_iters=warmup - 1), updates
    )
    assert linear != constant and linear == pytest.approx(constant, rel=1e-10)
