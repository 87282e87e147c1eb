"""Tests of `deltamix.core.precision`: what auto resolves to, CPU flags, thread defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deltamix.core import precision


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n\nflags : other\n")
    assert precision.cpu_flags(cpuinfo) == {"fpu", "sse2", "avx512f", "avx512_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize(
    ("flags", "expected"), [({"avx512_bf16"}, "bf16"), ({"amx_bf16"}, "bf16"), ({"avx512f"}, "fp32")]
)
def test_auto_is_bf16_only_on_cpus_with_native_bf16(monkeypatch, flags, expected) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda *args: flags)
    assert precision.resolve_precision("auto", "cpu") == expected
    assert precision.resolve_precision("fp32", "cpu") == "fp32"
    assert precision.resolve_precision("bf16", "cpu") == "bf16"  # asked for: given, even if emulated


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        precision.resolve_precision("fp16")


def test_default_threads_take_every_core_unless_told(monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert precision.default_threads() == precision.available_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert precision.default_threads() == 1
    before = torch.get_num_threads()
    try:
        assert precision.configure_threads(1) == 1
        with pytest.raises(ValueError, match="num_threads must be > 0"):
            precision.configure_threads(0)
    finally:
        torch.set_num_threads(before)


def test_processes_of_a_job_share_the_cores(monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(2 * precision.available_cores()))
    assert precision.default_threads() == 1


def test_cpu_model_reads_the_model_name_line(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu\n")
    assert precision.cpu_model(cpuinfo) == "AMD EPYC 9R14"
    assert precision.cpu_model(tmp_path / "missing") is None
