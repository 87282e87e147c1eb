"""`deltamix.core.memory`: glibc keeps freed large blocks, so a repeated large allocation stops faulting."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from deltamix.core.memory import MALLOC_ENV, retain_freed_memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")


@glibc
def test_a_repeated_large_allocation_no_longer_page_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MALLOC_ENV:
        monkeypatch.delenv(name, raising=False)
    assert retain_freed_memory() is True
    assert retain_freed_memory() is True  # idempotent

    def faults_of_one_allocation() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(64 * 2**20 // 4)  # 64 MiB, above glibc's largest mmap threshold; freed at once
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults_of_one_allocation()  # the heap grows once
    assert faults_of_one_allocation() < 100  # 64 MiB freshly mapped would be 16,384 faults


def test_the_users_malloc_settings_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "65536")
    assert retain_freed_memory() is False
