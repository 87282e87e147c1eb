"""Fixtures of the diff pruning tests; the tiny-model matrix itself is in diffprune_cases.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# pytest runs with --import-mode=importlib: make the helper module of this folder importable.
sys.path.insert(0, str(Path(__file__).parent))

from diffprune_cases import CASES, Case


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    """Each test using this fixture runs once per tiny model."""
    return CASES[request.param]
