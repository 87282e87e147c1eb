"""`SeqMixConfig`: which member of the SeqMix family to train with, and its hyper-parameters.

Defaults follow the authors' SeqMix code (github.com/dguo98/SeqMix: Beta(0.1, 0.1), lambda = max(lambda,
1 - lambda), label smoothing 0.1, in-batch shuffle partners) and the SwitchOut paper (Wang et al., 2018:
p(n) proportional to exp(-n / tau)). See docs/seqmix.md for the semantics of each variant.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

VARIANTS = ("none", "seqmix", "seqmix-hard", "word-dropout", "switchout")
PARTNERS = ("shuffle", "length")
# How far a partner reaches: the union of the two sequences' positions, or the main sequence's only.
PARTNER_EXTENTS = ("union", "main")
# The authors' choice (their fairseq loss counts the main example's positions only), and the better one
# in every comparison recorded (results/README.md: Multi30k train[:5000], GeoQuery query and question).
DEFAULT_PARTNER_EXTENT = "main"
# The members that mix each example with a partner (the others ignore partner settings).
MIXING_VARIANTS = ("seqmix", "seqmix-hard")


# Seq2seq run settings added after run folders and records existed (see
# deltamix.core.run_folder.check_same_run and the report's method labels): the value those runs trained
# with, written out rather than taken from the current defaults, so that a later change of a default
# never relabels them. Old folders resume under that value and refuse any other.
SEQMIX_VALUES_WHEN_ABSENT = {
    "lr_schedule": "constant",
    "partner_extent": "union",
    "precision": "fp32",
    "max_tokens": None,
    "patience": None,
    "dropout": None,
}
# The partner extent that default run folder names and the report's method labels leave unnamed: the
# only one before the setting existed, fixed here so that no folder name or table row moves with the
# default.
UNNAMED_PARTNER_EXTENT = SEQMIX_VALUES_WHEN_ABSENT["partner_extent"]


def partner_extent_suffix(variant: str, partner_extent: str) -> str:
    """``"-main"`` for a mixing member run with partner extent main, else ``""``: default run folder
    names carry it, so runs with the two extents never share a folder.

    >>> partner_extent_suffix("seqmix", "main"), partner_extent_suffix("none", "main")
    ('-main', '')
    """
    return (
        f"-{partner_extent}"
        if variant in MIXING_VARIANTS and partner_extent != UNNAMED_PARTNER_EXTENT
        else ""
    )


def resolve_partner_extent(variant: str, partner_extent: str | None) -> str:
    """The partner extent a run stores: the one given, else `DEFAULT_PARTNER_EXTENT` for a mixing
    member, else (a member that never reads it) `UNNAMED_PARTNER_EXTENT`, the value such runs have
    always stored, so that their settings, folders and records do not change with the default.

    >>> resolve_partner_extent("seqmix", None), resolve_partner_extent("none", None)
    ('main', 'union')
    """
    if partner_extent is not None:
        return partner_extent
    return DEFAULT_PARTNER_EXTENT if variant in MIXING_VARIANTS else UNNAMED_PARTNER_EXTENT


@dataclass
class SeqMixConfig:
    """Configuration of one SeqMix-family augmentation.

    >>> SeqMixConfig(variant="seqmix").alpha
    0.1
    """

    variant: str = field(
        default="seqmix",
        metadata={
            "help": "Family member: 'none' (no augmentation), 'seqmix' (soft: one lambda per pair for the "
            "encoder input, decoder input and loss), 'seqmix-hard' (per-token Bernoulli(lambda) choice between "
            "the two sequences), 'word-dropout' (partner = <unk>, per-token Bernoulli(word_dropout_p)), "
            "'switchout' (partner = uniform random tokens, count n ~ exp(-n / tau))."
        },
    )
    alpha: float = field(
        default=0.1,
        metadata={
            "help": "lambda ~ Beta(alpha, alpha) per pair (SeqMix soft and hard); 0.1 in the authors' code."
        },
    )
    use_max_lambda: bool = field(
        default=True,
        metadata={
            "help": "Use lambda = max(lambda, 1 - lambda), so the main example always has the larger weight "
            "(the authors' code does)."
        },
    )
    partner: str = field(
        default="shuffle",
        metadata={
            "help": "Partner choice for SeqMix: 'shuffle' (a random permutation of the batch, the authors' code) "
            "or 'length' (a partner of similar target length, the paper's appendix for translation)."
        },
    )
    partner_extent: str = field(
        default=DEFAULT_PARTNER_EXTENT,
        metadata={
            "help": "Where a SeqMix partner (soft or hard) counts when it is longer than the main example: "
            "'main' (the default and the authors' fairseq code: only the main example's positions; the "
            "partner's tokens beyond them are dropped from the input, the attention mask and the loss) or "
            "'union' (every position of either sequence: attention covers the longer one and the loss "
            "includes the partner's tokens beyond the main target's end)."
        },
    )
    mix_target_input: bool = field(
        default=True,
        metadata={
            "help": "Apply the augmentation to the teacher-forced decoder input too (the paper does). False: the "
            "decoder is fed the main target unchanged; SeqMix still mixes the loss, word dropout and SwitchOut "
            "leave the target side alone."
        },
    )
    word_dropout_p: float = field(
        default=0.1,
        metadata={"help": "Word dropout: probability that a (non-special) token is replaced by <unk>."},
    )
    switchout_tau: float = field(
        default=1.0,
        metadata={
            "help": "SwitchOut temperature for the source: n replaced tokens with p(n) proportional to "
            "exp(-n / tau), n = 0..length (the paper's form; the SwitchOut reference code multiplies by tau "
            "instead, so its tau = 0.8 is our 1.25). 0 disables replacement."
        },
    )
    switchout_tau_target: float | None = field(
        default=None,
        metadata={
            "help": "SwitchOut temperature for the target (decoder input and labels, replaced together); "
            "None: the same as switchout_tau; 0: the target is never replaced."
        },
    )
    label_smoothing: float = field(
        default=0.1,
        metadata={"help": "Label smoothing epsilon of the loss (0.1 in the authors' translation runs)."},
    )

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.partner not in PARTNERS:
            raise ValueError(f"partner must be one of {PARTNERS}, got {self.partner!r}")
        if self.partner_extent not in PARTNER_EXTENTS:
            raise ValueError(f"partner_extent must be one of {PARTNER_EXTENTS}, got {self.partner_extent!r}")
        if not self.alpha > 0:
            raise ValueError(f"alpha must be > 0 (Beta(alpha, alpha)), got {self.alpha}")
        if not 0.0 <= self.word_dropout_p <= 1.0:
            raise ValueError(f"word_dropout_p must be in [0, 1], got {self.word_dropout_p}")
        if not self.switchout_tau >= 0:
            raise ValueError(f"switchout_tau must be >= 0, got {self.switchout_tau}")
        if self.switchout_tau_target is not None and not self.switchout_tau_target >= 0:
            raise ValueError(f"switchout_tau_target must be >= 0 or None, got {self.switchout_tau_target}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")

    @property
    def target_tau(self) -> float:
        """The SwitchOut temperature used on the target side."""
        return self.switchout_tau if self.switchout_tau_target is None else self.switchout_tau_target

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict."""
        return asdict(self)

    def to_json(self) -> str:
        """The config as a JSON string."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeqMixConfig:
        """Build a config from `to_dict` output.

        Raises:
            ValueError: on unknown keys or invalid values.
        """
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown SeqMixConfig fields: {sorted(unknown)}")
        return cls(**data)
