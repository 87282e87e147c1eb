"""GECA (Andreas 2020, "Good-Enough Compositional Data Augmentation"): new examples by swapping fragments that share an environment.

The procedure follows the authors' code (``jacobandreas/geca``, ``data/builder.py`` and ``compose.py``):

1. Each training pair (x, y), deduplicated, is one sequence ``x ## y``. A *fragment* is a tuple of up to
   ``num_fragments`` contiguous spans of at most ``fragment_size`` tokens, pairwise token-disjoint, none
   crossing ``##`` (several spans make a gapped fragment). Its *template* (environment) is the sequence
   with every occurrence of span k replaced by a hole ``WUGk``. Because x and y are one sequence, a
   fragment can hold a command span and the action span it aligns with (``(jump, I_JUMP)`` with template
   ``WUG0 twice ## WUG1 WUG1``): that is how GECA aligns source and target fragments on SCAN.
2. Two templates are neighbours when some fragment fills both. Fragments that fill a common template
   with more than one fragment ("multiplicity > 1") are interchangeable.
3. For each template t2 with a hole on both sides of ``##``: the candidates are the fragments of t2's
   neighbours t1 (multiplicity > 1), one entry per (t1, fragment), less those that *overlap* t2's own
   fragments (already fill t2, or share a span with every fragment of t2). ``variants`` candidates are
   drawn without replacement and substituted into t2.
4. A realised (x', y') is kept if x' is not a training input, y' is not a training output, and it is
   new; generation stops after ``max_new`` examples.

SCAN settings of the authors (``exp/scan_jump/retrieval/run.sh``): ``--wug_size 1`` (``fragment_size``),
``wug_count`` 2 (default; ``num_fragments``), no ``--wug_limit`` (``fragment_count_limit=None``),
``--max_comp_len 40``, ``variants`` 2 (default), ``--n_sample 1000`` (``max_new``), ``--dedup``. Their
``--max_adjacencies 1000`` does not bind in their code (it breaks a loop of one element) and
``--nouse_trie`` only chooses the storage; neither exists here. See docs/scan_geca.md.
"""

from __future__ import annotations

import bisect
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import accumulate

logger = logging.getLogger(__name__)

Pair = tuple[str, str]

# Sequences are str with one character per token, so that templates are made by str.replace (the
# authors' left-to-right replace-all) and hashed cheaply: 1 = the x/y separator "##", 2.. = holes.
_SEP = "\x01"
_MAX_FRAGMENTS = 8
_WUGS = tuple(chr(2 + k) for k in range(_MAX_FRAGMENTS))
_TOKEN_BASE = 16


@dataclass
class GecaConfig:
    """Settings of :func:`geca_augment`; defaults are the authors' SCAN settings (names in brackets)."""

    fragment_size: int = field(
        default=1,
        metadata={"help": "Maximum tokens in one contiguous span of a fragment [wug_size; SCAN: 1]."},
    )
    num_fragments: int = field(
        default=2,
        metadata={
            "help": "Maximum spans (holes) per fragment/template; 2 aligns a command span with an action span [wug_count: 2]."
        },
    )
    fragment_count_limit: int | None = field(
        default=None,
        metadata={
            "help": "Only spans occurring at most this often in the data may be holes; None = all [wug_limit; SCAN: None]."
        },
    )
    max_comp_len: int | None = field(
        default=40,
        metadata={
            "help": "Skip training pairs with len(x) + 1 + len(y) >= this when extracting templates [max_comp_len: 40]."
        },
    )
    variants: int = field(
        default=2, metadata={"help": "Candidate fragments substituted into each template [variants: 2]."}
    )
    max_new: int | None = field(
        default=1000, metadata={"help": "Stop after this many new examples; None = all [n_sample: 1000]."}
    )
    time_limit_s: float | None = field(
        default=None, metadata={"help": "Stop (with a warning) after this many seconds; None = no limit."}
    )

    def __post_init__(self) -> None:
        if self.fragment_size < 1:
            raise ValueError(f"fragment_size must be >= 1, got {self.fragment_size}")
        if not 1 <= self.num_fragments <= _MAX_FRAGMENTS:
            raise ValueError(f"num_fragments must be in [1, {_MAX_FRAGMENTS}], got {self.num_fragments}")
        if self.fragment_count_limit is not None and self.fragment_count_limit < 1:
            raise ValueError(f"fragment_count_limit must be >= 1 or None, got {self.fragment_count_limit}")
        if self.max_comp_len is not None and self.max_comp_len < 2:
            raise ValueError(f"max_comp_len must be >= 2 or None, got {self.max_comp_len}")
        if self.variants < 1:
            raise ValueError(f"variants must be >= 1, got {self.variants}")
        if self.max_new is not None and self.max_new < 0:
            raise ValueError(f"max_new must be >= 0 or None, got {self.max_new}")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise ValueError(f"time_limit_s must be > 0 or None, got {self.time_limit_s}")

    def to_dict(self) -> dict:
        """The settings as a JSON-serialisable dict (for run records)."""
        return asdict(self)


class _Codec:
    """Maps whitespace tokens to single characters and back."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.tokens: list[str] = []

    def encode(self, text: str) -> str:
        chars = []
        for token in text.split():
            if token not in self.ids:
                self.ids[token] = chr(_TOKEN_BASE + len(self.tokens))
                self.tokens.append(token)
            chars.append(self.ids[token])
        return "".join(chars)

    def decode(self, chars: str) -> str:
        return " ".join(self.tokens[ord(c) - _TOKEN_BASE] for c in chars)


@dataclass
class _TemplateIndex:
    """Templates and fragments as ints: template t has fragments ``templ_args[t]``, fragment a fills ``arg_templs[a]``."""

    templates: list[str] = field(default_factory=list)
    args: list[tuple[str, ...]] = field(default_factory=list)
    templ_args: list[list[int]] = field(default_factory=list)
    arg_templs: list[list[int]] = field(default_factory=list)
    _templ_ids: dict[str, int] = field(default_factory=dict)
    _arg_ids: dict[tuple[str, ...], int] = field(default_factory=dict)

    def add(self, template: str, args: tuple[str, ...]) -> None:
        t = self._templ_ids.get(template)
        if t is None:
            t = self._templ_ids[template] = len(self.templates)
            self.templates.append(template)
            self.templ_args.append([])
        a = self._arg_ids.get(args)
        if a is None:
            a = self._arg_ids[args] = len(self.args)
            self.args.append(args)
            self.arg_templs.append([])
        self.templ_args[t].append(a)
        self.arg_templs[a].append(t)


def _span_counts(seqs: Sequence[str], size: int) -> Counter:
    """How often each span of <= ``size`` tokens occurs within the x or y sides (the wug_limit counts)."""
    counts: Counter = Counter()
    for seq in seqs:
        for side in seq.split(_SEP):
            for n in range(1, size + 1):
                counts.update(side[i : i + n] for i in range(len(side) + 1 - n))
    return counts


def _generic(
    seq: str, begin: int, depth: int, used: tuple[str, ...], config: GecaConfig, keep: set[str] | None
) -> Iterator[tuple[str, tuple[str, ...]]]:
    """All (template, fragment) pairs of one sequence, as the authors' ``_make_generic_helper``.

    A span's first occurrence at or after ``begin`` yields a superset of what its later occurrences
    yield (same template, later start for the next hole), so only first occurrences are expanded.
    """
    seen: set[str] = set()
    for span in range(1, config.fragment_size + 1):
        for i in range(begin, len(seq) + 1 - span):
            arg = seq[i : i + span]
            if arg in seen:
                continue
            seen.add(arg)
            if min(arg) < chr(_TOKEN_BASE):  # crosses "##" or covers a hole
                continue
            if keep is not None and arg not in keep:
                continue
            if any(set(arg) & set(u) for u in used):
                continue
            template = seq.replace(arg, _WUGS[depth])
            args = (*used, arg)
            yield template, args
            if depth + 1 < config.num_fragments:
                yield from _generic(template, i + 1, depth + 1, args, config, keep)


def _build_index(seqs: Sequence[str], config: GecaConfig, deadline: float = float("inf")) -> _TemplateIndex:
    """Templates of the sequences shorter than ``max_comp_len``, until ``deadline`` (``time.perf_counter``)."""
    keep = None
    if config.fragment_count_limit is not None:
        counts = _span_counts(seqs, config.fragment_size)
        keep = {s for s, n in counts.items() if n <= config.fragment_count_limit}
    index = _TemplateIndex()
    for i, seq in enumerate(seqs):
        if time.perf_counter() > deadline:
            logger.warning(
                "GECA reached its time limit while extracting templates (%d of %d pairs)", i, len(seqs)
            )
            break
        if config.max_comp_len is not None and len(seq) >= config.max_comp_len:
            continue
        # dict, not set: str hashes vary between processes and the order fixes template ids.
        for template, args in dict.fromkeys(_generic(seq, 0, 0, (), config, keep)):
            index.add(template, args)
    return index


def _overlaps(arg: tuple[str, ...], ref_args: list[tuple[str, ...]]) -> bool:
    """The authors' ``overlap``: ``arg`` fills the template already, or shares a span with each of its fragments."""
    return arg in ref_args or all(set(arg) & set(ref) for ref in ref_args)


def _candidates(index: _TemplateIndex, t2: int, multiplicity: list[int]) -> tuple[list[int], list[int]]:
    """Candidate fragments for template ``t2`` and the cumulative counts of their (t1, fragment) entries."""
    own = index.templ_args[t2]
    neighbours = {t1 for a in own for t1 in index.arg_templs[a]}
    counts: Counter = Counter()
    for t1 in neighbours:
        if multiplicity[t1] > 1:
            counts.update(index.templ_args[t1])
    own_args = [index.args[a] for a in own]
    args = sorted(a for a in counts if not _overlaps(index.args[a], own_args))
    return args, list(accumulate(counts[a] for a in args))


def _draw(args: list[int], cumulative: list[int], k: int, rng: random.Random) -> list[int]:
    """``k`` entries drawn without replacement (the authors shuffle the entry list and take the first k)."""
    total = cumulative[-1]
    positions = rng.sample(range(total), min(k, total))
    return [args[bisect.bisect_right(cumulative, p)] for p in positions]


def _realize(template: str, args: tuple[str, ...]) -> tuple[str, str]:
    for k, arg in enumerate(args):
        template = template.replace(_WUGS[k], arg)
    x, y = template.split(_SEP)
    return x, y


def geca_augment(pairs: Sequence[Pair], config: GecaConfig | None = None, seed: int = 0) -> list[Pair]:
    """New (x, y) examples made by GECA from a training set (the new ones only).

    Args:
        pairs: training (source, target) pairs, whitespace-tokenised strings; duplicates are ignored.
        config: the settings; defaults are the authors' SCAN settings.
        seed: seeds the order in which templates are visited and the fragments drawn.

    Returns:
        Up to ``config.max_new`` distinct pairs whose source is no training source and whose target is
        no training target, in the order generated. The same inputs and seed give the same list.

    Raises:
        ValueError: a pair has an empty side.

    >>> train = [("walk", "W"), ("run", "R"), ("walk twice", "W W"), ("jump", "J")]
    >>> sorted(geca_augment(train, GecaConfig()))
    [('jump twice', 'J J'), ('run twice', 'R R')]
    """
    config = config or GecaConfig()
    start = time.perf_counter()
    codec = _Codec()
    encoded = _encode_pairs(pairs, codec)
    seqs = sorted(x + _SEP + y for x, y in encoded)

    deadline = start + config.time_limit_s if config.time_limit_s is not None else float("inf")
    index = _build_index(seqs, config, deadline)
    logger.info(
        "GECA: %d pairs -> %d templates, %d fragments (%.1fs)",
        len(seqs),
        len(index.templates),
        len(index.args),
        time.perf_counter() - start,
    )

    rng = random.Random(seed)
    order = _template_order(index, rng)
    known = ({x for x, _ in encoded}, {y for _, y in encoded})
    realized, visited = _realize_new(index, order, known, config, rng, deadline)
    logger.info(
        "GECA: %d new examples from %d of %d templates (%.1fs)",
        len(realized),
        visited,
        len(order),
        time.perf_counter() - start,
    )
    return [(codec.decode(x), codec.decode(y)) for x, y in realized]


def _encode_pairs(pairs: Sequence[Pair], codec: _Codec) -> set[tuple[str, str]]:
    """The distinct training pairs, encoded one character per token."""
    encoded = set()
    for i, (x, y) in enumerate(pairs):
        ex, ey = codec.encode(x), codec.encode(y)
        if not ex or not ey:
            raise ValueError(f"GECA needs non-empty source and target; pair {i} is {(x, y)!r}")
        encoded.add((ex, ey))
    return encoded


def _template_order(index: _TemplateIndex, rng: random.Random) -> list[int]:
    """The templates to visit, in a seeded random order.

    Only templates with a hole on each side can realise a pair that passes the authors' filters.
    """
    holes = set(_WUGS)
    order = [
        t
        for t, templ in enumerate(index.templates)
        if all(holes.intersection(side) for side in templ.split(_SEP))
    ]
    rng.shuffle(order)
    return order


def _realize_new(
    index: _TemplateIndex,
    order: list[int],
    known: tuple[set[str], set[str]],
    config: GecaConfig,
    rng: random.Random,
    deadline: float,
) -> tuple[dict[tuple[str, str], None], int]:
    """Fill the templates of ``order`` with drawn fragments until ``config.max_new`` new pairs.

    A pair is new when its source is none of ``known[0]`` (the training sources) and its target none
    of ``known[1]``. Returns the new encoded pairs (a dict, for their generation order) and how many
    templates were visited.
    """
    train_x, train_y = known
    multiplicity = [len(a) for a in index.templ_args]
    cache: dict[frozenset[int], tuple[list[int], list[int]]] = {}
    realized: dict[tuple[str, str], None] = {}
    limit = config.max_new if config.max_new is not None else float("inf")
    visited = 0
    for t2 in order:
        if len(realized) >= limit:
            break
        if time.perf_counter() > deadline:
            logger.warning("GECA reached its time limit after visiting %d templates", visited)
            break
        visited += 1
        key = frozenset(index.templ_args[t2])
        if key not in cache:
            cache[key] = _candidates(index, t2, multiplicity)
        args, cumulative = cache[key]
        if not args:
            continue
        for a in _draw(args, cumulative, config.variants, rng):
            x, y = _realize(index.templates[t2], index.args[a])
            if x in train_x or y in train_y or (x, y) in realized:
                continue
            realized[(x, y)] = None
            if len(realized) >= limit:
                break
    return realized, visited
