"""GECA's pairs are repeated to make up the authors' aug_ratio share of the SCAN training set."""

from __future__ import annotations

import pytest

from deltamix.experiments.scan.run import ScanRunConfig, geca_repeats


@pytest.mark.parametrize(
    ("num_original", "num_extra", "ratio"), [(14670, 1000, 0.3), (15225, 2372, 0.3), (100, 5, 0.5)]
)
def test_repeats_give_the_ratio(num_original: int, num_extra: int, ratio: float) -> None:
    repeats = geca_repeats(num_original, num_extra, ratio)
    share = repeats * num_extra / (num_original + repeats * num_extra)
    # rounding the repeat count is the only error: within half a repeat's share of the ratio
    assert abs(share - ratio) <= 0.5 * num_extra / (num_original + repeats * num_extra) + 1e-12


def test_no_pairs_no_repeats_and_bad_ratio() -> None:
    assert geca_repeats(100, 0, 0.3) == 0
    assert geca_repeats(10, 1000, 0.3) == 1
    with pytest.raises(ValueError, match="geca_ratio"):
        ScanRunConfig(geca_ratio=1.0)
