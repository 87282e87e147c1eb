"""`deltamix diff inspect`: the summary of a good file, a clean error for a bad one."""

from __future__ import annotations

import argparse
import json

import torch
from diffprune_cases import CASES

from deltamix.cli import diff as diff_cli
from deltamix.core.errors import DiffFormatError
from deltamix.diffprune import DiffPruningConfig, DiffPruningModel


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    diff_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_inspect(tmp_path, capsys) -> None:
    dp = DiffPruningModel(
        CASES["bert"].build(), DiffPruningConfig(dense_modules=["classifier"], target_sparsity=0.01)
    )
    with torch.no_grad():
        dp.w.normal_()
    dp.project_()
    path = tmp_path / "d.safetensors"
    dp.export_diff().save(path)
    assert _run(["diff", "inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert f"{dp.kept_values.numel():,} of {dp.num_gated:,}" in text
    assert "bert.encoder.layer.0" in text and "classifier" in text and "values sha256" in text
    assert _run(["diff", "inspect", "--json", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["nnz"] == dp.kept_values.numel() and summary["bytes"] == path.stat().st_size
    assert sum(row["nnz"] for row in summary["layers"] if row["kind"] == "gated") == summary["nnz"]


def test_inspect_bad_file(tmp_path) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x00" * 64)
    try:
        _run(["diff", "inspect", str(path)])
    except DiffFormatError as error:
        assert "bad.safetensors" in str(error)
    else:
        raise AssertionError("a bad file must raise DiffFormatError (printed cleanly by deltamix.cli.main)")
