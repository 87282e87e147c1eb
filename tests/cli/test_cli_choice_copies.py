"""The seqmix command line keeps copies of the library's choices (so `deltamix --help` need not import
torch); each copy must equal the library's."""

from __future__ import annotations

from deltamix import precision
from deltamix.cli import seqmix_text
from deltamix.seqmix import config, lr_schedule


def test_the_cli_offers_the_librarys_choices_and_defaults() -> None:
    assert seqmix_text.AUGMENTATIONS == config.VARIANTS
    assert seqmix_text.PARTNERS == config.PARTNERS
    assert seqmix_text.PARTNER_EXTENTS == config.PARTNER_EXTENTS
    assert seqmix_text.DEFAULT_PARTNER_EXTENT == config.DEFAULT_PARTNER_EXTENT
    assert seqmix_text.LR_SCHEDULES == lr_schedule.LR_SCHEDULES
    assert seqmix_text.DEFAULT_LR_SCHEDULE == lr_schedule.DEFAULT_LR_SCHEDULE
    assert seqmix_text.PRECISIONS == precision.PRECISIONS
    assert seqmix_text.DEFAULT_PRECISION == precision.DEFAULT_PRECISION
