"""SCAN (Lake & Baroni 2018) generated offline: the grammar's 20,910 commands, their interpreter and the official splits."""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from deltamix.core.errors import DataFormatError

Pair = tuple[str, str]
"""One SCAN example: (command, actions), both whitespace-joined token strings."""

PRIMITIVES: dict[str, str] = {"walk": "I_WALK", "look": "I_LOOK", "run": "I_RUN", "jump": "I_JUMP"}
DIRECTIONS: dict[str, str] = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}
REPEATS: dict[str, int] = {"twice": 2, "thrice": 3}
CONJUNCTIONS = ("and", "after")
NUM_COMMANDS = 20_910

SPLITS = ("simple", "addprim_jump", "addprim_turn_left", "template_around_right", "length")
"""Names accepted by :func:`load_split`."""

OFFICIAL_FILES: dict[str, tuple[str, str]] = {
    "simple": ("simple_split/tasks_train_simple.txt", "simple_split/tasks_test_simple.txt"),
    "addprim_jump": (
        "add_prim_split/tasks_train_addprim_jump.txt",
        "add_prim_split/tasks_test_addprim_jump.txt",
    ),
    "addprim_turn_left": (
        "add_prim_split/tasks_train_addprim_turn_left.txt",
        "add_prim_split/tasks_test_addprim_turn_left.txt",
    ),
    "template_around_right": (
        "template_split/tasks_train_template_around_right.txt",
        "template_split/tasks_test_template_around_right.txt",
    ),
    "length": ("length_split/tasks_train_length.txt", "length_split/tasks_test_length.txt"),
}
"""(train, test) paths of each split inside a copy of the ``brendenlake/SCAN`` repository."""

SIMPLE_TRAIN_FRACTION = 0.8
LENGTH_SPLIT_MAX_TRAIN_ACTIONS = 22
# In the official add-primitive files the isolated primitive makes up a tenth of the training set:
# 13,203 other commands + 1,467 x "jump" = 14,670 rows; 19,701 + 2,189 x "turn left" = 21,890 rows.
_PRIMITIVE_SHARE_DIVISOR = 9


def _verb_phrases() -> list[str]:
    """The 34 V phrases of the grammar: ``U``, ``U dir``, ``x opposite dir``, ``x around dir``."""
    phrases = list(PRIMITIVES)
    for verb in [*PRIMITIVES, "turn"]:
        phrases.extend(f"{verb} {d}" for d in DIRECTIONS)
    for verb in [*PRIMITIVES, "turn"]:
        for modifier in ("opposite", "around"):
            phrases.extend(f"{verb} {modifier} {d}" for d in DIRECTIONS)
    return phrases


def generate() -> list[Pair]:
    """All 20,910 (command, actions) pairs of the SCAN grammar, in a fixed order.

    The order: the 102 single phrases ``S`` first, then ``S1 and S2`` / ``S1 after S2`` for every
    (S1, conjunction, S2) in grammar order. It is not the (random) order of the official ``tasks.txt``.

    >>> pairs = generate()
    >>> len(pairs), pairs[0]
    (20910, ('walk', 'I_WALK'))
    """
    return list(_all_pairs())


@lru_cache(maxsize=1)
def _all_pairs() -> tuple[Pair, ...]:
    phrases = [v + r for v in _verb_phrases() for r in ("", " twice", " thrice")]
    commands = phrases + [f"{a} {c} {b}" for a in phrases for c in CONJUNCTIONS for b in phrases]
    return tuple((c, interpret(c)) for c in commands)


def _invalid(command: str, reason: str) -> ValueError:
    return ValueError(f"not a SCAN command: {command!r} ({reason})")


def _interpret_verb(tokens: Sequence[str], command: str) -> list[str]:
    """Actions of one V phrase: ``U | U dir | x opposite dir | x around dir`` with x in U or ``turn``."""
    if not tokens:
        raise _invalid(command, "empty phrase")
    verb, rest = tokens[0], list(tokens[1:])
    if verb != "turn" and verb not in PRIMITIVES:
        raise _invalid(command, f"{verb!r} is not one of {[*PRIMITIVES, 'turn']}")
    action = [] if verb == "turn" else [PRIMITIVES[verb]]
    if not rest:
        if verb == "turn":
            raise _invalid(command, "'turn' needs a direction")
        return action
    if rest[-1] not in DIRECTIONS:
        raise _invalid(command, f"expected 'left' or 'right' after {verb!r}, got {rest[-1]!r}")
    turn = DIRECTIONS[rest[-1]]
    modifier = rest[:-1]
    if modifier == []:
        return [turn, *action]
    if modifier == ["opposite"]:
        return [turn, turn, *action]
    if modifier == ["around"]:
        return [turn, *action] * 4
    raise _invalid(command, f"unexpected words {modifier} between {verb!r} and the direction")


def _interpret_phrase(tokens: Sequence[str], command: str) -> list[str]:
    """Actions of one S phrase: a V phrase, optionally followed by ``twice`` or ``thrice``."""
    if tokens and tokens[-1] in REPEATS:
        return _interpret_verb(tokens[:-1], command) * REPEATS[tokens[-1]]
    return _interpret_verb(tokens, command)


def interpret(command: str) -> str:
    """The action sequence of a SCAN command (the grammar's semantics).

    Args:
        command: whitespace-separated command words, e.g. ``"jump around left twice"``.

    Returns:
        Space-joined action tokens, e.g. ``"I_TURN_LEFT I_JUMP"`` for ``"jump left"``.

    Raises:
        ValueError: the command is not generated by the SCAN grammar.

    >>> interpret("walk opposite left after jump twice")
    'I_JUMP I_JUMP I_TURN_LEFT I_TURN_LEFT I_WALK'
    """
    tokens = command.split()
    conjunctions = [i for i, t in enumerate(tokens) if t in CONJUNCTIONS]
    if len(conjunctions) > 1:
        raise _invalid(command, "at most one 'and'/'after' is allowed")
    if not conjunctions:
        return " ".join(_interpret_phrase(tokens, command))
    i = conjunctions[0]
    first = _interpret_phrase(tokens[:i], command)
    second = _interpret_phrase(tokens[i + 1 :], command)
    return " ".join(first + second if tokens[i] == "and" else second + first)


def _contains(command: str, words: str) -> bool:
    """Whether ``words`` occurs in ``command`` as a contiguous run of whole tokens."""
    return f" {words} " in f" {command} "


def _add_primitive_split(pairs: list[Pair], primitive: str) -> tuple[list[Pair], list[Pair]]:
    """Train: commands without ``primitive`` plus the bare primitive repeated to a tenth of the set."""
    others = [p for p in pairs if not _contains(p[0], primitive)]
    test = [p for p in pairs if _contains(p[0], primitive) and p[0] != primitive]
    repeats = len(others) // _PRIMITIVE_SHARE_DIVISOR
    return others + [(primitive, interpret(primitive))] * repeats, test


def load_split(name: str, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """The (train, test) pairs of a SCAN split, generated from the grammar (no download).

    Splits (Lake & Baroni 2018; around-right from Loula et al. 2018):

    - ``simple``: a seeded random 80/20 split (16,728 / 4,182); ``seed`` picks the permutation.
    - ``addprim_jump``: train = all 13,203 commands without "jump" plus "jump" x 1,467 (14,670 rows);
      test = the 7,706 other commands with "jump".
    - ``addprim_turn_left``: likewise for "turn left" (19,701 + 2,189 x "turn left"; test 1,208).
    - ``template_around_right``: train = the 15,225 commands without "around right"; test = the
      4,476 commands with "around right" but without "turn around right" (as the official files).
    - ``length``: train = commands whose action sequence has at most 22 actions (16,990); test the
      rest (3,920).

    Except for ``simple``, the pairs come in :func:`generate` order (repeated primitives last) and
    ``seed`` is unused; the pairs and their multiplicities equal the official files'.

    Raises:
        ValueError: unknown split name.
    """
    if name not in SPLITS:
        raise ValueError(f"unknown SCAN split {name!r}; valid names: {', '.join(SPLITS)}")
    pairs = generate()
    if name == "simple":
        order = list(range(len(pairs)))
        random.Random(seed).shuffle(order)
        n_train = round(SIMPLE_TRAIN_FRACTION * len(pairs))
        return [pairs[i] for i in order[:n_train]], [pairs[i] for i in order[n_train:]]
    if name == "addprim_jump":
        return _add_primitive_split(pairs, "jump")
    if name == "addprim_turn_left":
        return _add_primitive_split(pairs, "turn left")
    if name == "template_around_right":
        train = [p for p in pairs if not _contains(p[0], "around right")]
        test = [
            p for p in pairs if _contains(p[0], "around right") and not _contains(p[0], "turn around right")
        ]
        return train, test
    short = [p for p in pairs if len(p[1].split()) <= LENGTH_SPLIT_MAX_TRAIN_ACTIONS]
    long = [p for p in pairs if len(p[1].split()) > LENGTH_SPLIT_MAX_TRAIN_ACTIONS]
    return short, long


def read_scan_file(path: str | Path) -> list[Pair]:
    """Read an official SCAN file: one ``IN: <command> OUT: <actions>`` per line.

    Blank lines are skipped. Tokens are re-joined with single spaces.

    Raises:
        DataFormatError: a line is not UTF-8 or not in that format (names the file and 1-based line).
        FileNotFoundError: no such file.
    """
    path = Path(path)
    pairs: list[Pair] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataFormatError(
                    path, f"not valid UTF-8 (byte {error.start + 1} of the line)", number
                ) from None
            if not line.strip():
                continue
            tokens = line.split()
            if tokens[0] != "IN:" or tokens.count("OUT:") != 1:
                raise DataFormatError(
                    path, f"expected 'IN: <command> OUT: <actions>', got {line.strip()!r}", number
                )
            out = tokens.index("OUT:")
            command, actions = tokens[1:out], tokens[out + 1 :]
            if not command or not actions:
                raise DataFormatError(path, "empty command or empty action sequence", number)
            pairs.append((" ".join(command), " ".join(actions)))
    return pairs


def load_official_split(data_dir: str | Path, name: str) -> tuple[list[Pair], list[Pair]]:
    """Read a split's (train, test) files from a copy of the SCAN repository (see :data:`OFFICIAL_FILES`).

    Raises:
        ValueError: unknown split name.
        FileNotFoundError: the files are not in ``data_dir``.
    """
    if name not in OFFICIAL_FILES:
        raise ValueError(f"unknown SCAN split {name!r}; valid names: {', '.join(SPLITS)}")
    train_file, test_file = (Path(data_dir) / f for f in OFFICIAL_FILES[name])
    for f in (train_file, test_file):
        if not f.is_file():
            raise FileNotFoundError(f"SCAN split {name!r}: no file {f}")
    return read_scan_file(train_file), read_scan_file(test_file)
