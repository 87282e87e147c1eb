"""The varint index codec: lossless round trips, compactness, and rejection of malformed streams."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltamix.core.errors import DiffFormatError
from deltamix.diffprune.index_codec import decode_indices, encode_indices


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=2**40), max_size=200))
def test_round_trip(values: set[int]) -> None:
    indices = np.array(sorted(values), dtype=np.int64)
    decoded = decode_indices(encode_indices(indices), len(indices), 2**40 + 1)
    assert np.array_equal(decoded, indices)


def test_compact_at_half_percent_density() -> None:
    rng = np.random.default_rng(0)
    indices = np.sort(rng.choice(20_000_000, 100_000, replace=False))
    assert encode_indices(indices).size / indices.size < 2.0  # bytes per index


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        encode_indices(np.array([3, 3]))
    with pytest.raises(ValueError, match="strictly increasing"):
        encode_indices(np.array([5, 2]))
    good = encode_indices(np.array([1, 300, 70000]))
    with pytest.raises(DiffFormatError, match="truncated"):
        decode_indices(good[:-1], 3, 10**6)
    with pytest.raises(DiffFormatError, match="values are stored"):
        decode_indices(good, 4, 10**6)
    with pytest.raises(DiffFormatError, match="out of range"):
        decode_indices(good, 3, 70000)
    with pytest.raises(DiffFormatError, match="duplicated"):
        decode_indices(np.array([5, 0], dtype=np.uint8), 2, 100)
    with pytest.raises(DiffFormatError, match="varint"):
        decode_indices(np.array([0x80] * 10 + [1], dtype=np.uint8), 1, 2**62)
