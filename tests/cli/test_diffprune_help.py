"""`deltamix diffprune glue --help` states the defaults the run resolves, for every method."""

from __future__ import annotations

import re

import pytest

from deltamix.cli.diffprune import _rate
from deltamix.cli.main import build_parser
from deltamix.experiments.glue.run import GlueRunConfig


def _glue_help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["diffprune", "glue", "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_rates_are_written_as_the_docs_write_them() -> None:
    assert [_rate(x) for x in (1e-4, 1.25e-7, 5e-4, 2e-5, 0.1)] == ["1e-4", "1.25e-7", "5e-4", "2e-5", "1e-1"]


def test_help_names_each_methods_resolved_learning_rates(capsys: pytest.CaptureFixture[str]) -> None:
    text = _glue_help(capsys)
    lr_help = re.search(r"--lr LR (.*?) --alpha-lr", text).group(1)

    def rates(method: str) -> tuple[str, str]:  # (embedded MiniLM, any other --model)
        return tuple(
            _rate(GlueRunConfig(task="rte", method=method, model=m).resolved_lr()) for m in (None, "x")
        )

    minilm, paper = rates("diffprune")
    assert f"diff weights {paper}, the paper's ({minilm} for the embedded MiniLM)" in lr_help
    minilm, other = rates("full")
    assert rates("diffprune-nonadaptive") == (minilm, other)
    assert f"the non-adaptive first stage {other} ({minilm} for the embedded MiniLM)" in lr_help
    for method in ("last-layer", "bitfit", "lora", "shira", "supertuning"):
        minilm, other = rates(method)
        assert minilm == other and f"{method} {minilm}" in lr_help
    for name, resolve in (("--mask-lr", "resolved_mask_lr"), ("--l0-lambda", "resolved_l0_lambda")):
        minilm, paper = (_rate(getattr(GlueRunConfig(task="rte", model=m), resolve)()) for m in (None, "x"))
        assert re.search(
            rf"{name} \S+ [^(]*\(default:? {paper}, the paper's; {minilm} for the embedded", text
        ), name
