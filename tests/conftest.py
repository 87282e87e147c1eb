"""Settings for the whole test suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

# ../shared/data from the repository root: the real GLUE, SCAN, GeoQuery and Multi30k files.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and do not fight other tests for the 2 cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def shared_data_folder(name: str, probe: str = "") -> Path:
    """``../shared/data/<name>``, checked to hold ``probe`` (a file or folder below it).

    Skips the test where ``../shared/data`` is absent (a machine without the real data; CI has it).
    Fails, rather than skips, where the folder exists but lacks ``name/probe``: a broken data folder must
    not pass CI as a row of skips.
    """
    folder = SHARED_DATA / name
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent on this machine (the real data files; CI has them)")
    if not (folder / probe).exists():
        pytest.fail(
            f"{folder / probe} is missing although {SHARED_DATA} exists: the data folder is incomplete"
        )
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Callable[..., Path]:
    """`shared_data_folder`: call it with a folder name (and a file to check), e.g. ``shared_data("scan")``."""
    return shared_data_folder
