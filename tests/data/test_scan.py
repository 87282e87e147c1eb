"""Tests of the generated SCAN grammar, interpreter and splits, checked against the official files."""

from __future__ import annotations

from collections import Counter

import pytest

from deltamix.core.errors import DataFormatError
from deltamix.data import scan


def official(shared_data, name: str) -> tuple[list[scan.Pair], list[scan.Pair]]:
    """The official train and test pairs of split ``name`` from ../shared/data/scan."""
    folder = shared_data("scan", scan.OFFICIAL_FILES[name][0])
    return scan.load_official_split(folder, name)


def test_generate_counts_and_uniqueness():
    pairs = scan.generate()
    assert len(pairs) == scan.NUM_COMMANDS == 20_910
    assert len({c for c, _ in pairs}) == 20_910
    assert pairs == scan.generate()  # deterministic order
    assert max(len(a.split()) for _, a in pairs) == 48


@pytest.mark.parametrize(
    ("command", "actions"),
    [
        ("jump", "I_JUMP"),
        ("turn left", "I_TURN_LEFT"),
        ("turn opposite right", "I_TURN_RIGHT I_TURN_RIGHT"),
        ("turn around left", "I_TURN_LEFT I_TURN_LEFT I_TURN_LEFT I_TURN_LEFT"),
        ("walk right", "I_TURN_RIGHT I_WALK"),
        ("look opposite left twice", "I_TURN_LEFT I_TURN_LEFT I_LOOK I_TURN_LEFT I_TURN_LEFT I_LOOK"),
        ("run around right", "I_TURN_RIGHT I_RUN I_TURN_RIGHT I_RUN I_TURN_RIGHT I_RUN I_TURN_RIGHT I_RUN"),
        ("walk and jump thrice", "I_WALK I_JUMP I_JUMP I_JUMP"),
        ("walk after jump left", "I_TURN_LEFT I_JUMP I_WALK"),
    ],
)
def test_interpret_known_commands(command, actions):
    assert scan.interpret(command) == actions


@pytest.mark.parametrize(
    "command",
    [
        "",
        "turn",
        "fly",
        "jump up",
        "walk twice twice",
        "walk and run and look",
        "jump around",
        "and walk",
        "walk left opposite",
    ],
)
def test_interpret_rejects_commands_outside_the_grammar(command):
    with pytest.raises(ValueError, match="not a SCAN command"):
        scan.interpret(command)


@pytest.mark.parametrize(
    ("name", "n_train", "n_test"),
    [
        ("simple", 16_728, 4_182),
        ("addprim_jump", 14_670, 7_706),
        ("addprim_turn_left", 21_890, 1_208),
        ("template_around_right", 15_225, 4_476),
        ("length", 16_990, 3_920),
    ],
)
def test_split_sizes_match_the_official_counts(name, n_train, n_test):
    train, test = scan.load_split(name)
    assert (len(train), len(test)) == (n_train, n_test)
    assert not {c for c, _ in train} & {c for c, _ in test}


def test_split_rules():
    train, test = scan.load_split("addprim_jump")
    assert Counter(train)[("jump", "I_JUMP")] == 1_467
    assert all("jump" in c.split() for c, _ in test)
    train, test = scan.load_split("addprim_turn_left")
    assert Counter(train)[("turn left", "I_TURN_LEFT")] == 2_189
    assert all("turn left" in c for c, _ in test)
    train, test = scan.load_split("length")
    assert max(len(a.split()) for _, a in train) == 22 < min(len(a.split()) for _, a in test)


def test_simple_split_is_seeded():
    a, b, c = (
        scan.load_split("simple", seed=0),
        scan.load_split("simple", seed=0),
        scan.load_split("simple", seed=1),
    )
    assert a == b
    assert a[0] != c[0]
    assert Counter(a[0] + a[1]) == Counter(scan.generate())


def test_unknown_split_lists_valid_names():
    with pytest.raises(ValueError, match="addprim_jump"):
        scan.load_split("jump")


@pytest.mark.parametrize("name", ["addprim_jump", "template_around_right"])
def test_generated_split_equals_official_files_as_multisets(name, shared_data):
    official_train, official_test = official(shared_data, name)
    train, test = scan.load_split(name)
    assert Counter(train) == Counter(official_train)
    assert Counter(test) == Counter(official_test)


def test_interpret_agrees_with_every_official_pair(shared_data):
    pairs = []
    for name in ("addprim_jump", "template_around_right"):
        train, test = official(shared_data, name)
        pairs += train + test
    assert len(pairs) == 14_670 + 7_706 + 15_225 + 4_476
    wrong = [(c, a) for c, a in pairs if scan.interpret(c) != a]
    assert wrong == []
    assert {c for c, _ in pairs} <= {c for c, _ in scan.generate()}


def test_read_scan_file_and_format_errors(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("IN: jump twice OUT: I_JUMP I_JUMP\n\nIN: walk OUT: I_WALK\n")
    assert scan.read_scan_file(good) == [("jump twice", "I_JUMP I_JUMP"), ("walk", "I_WALK")]
    for bad_line in (
        "jump OUT: I_JUMP",
        "IN: jump I_JUMP",
        "IN: jump OUT:",
        "IN: OUT: I_JUMP",
        "IN: a OUT: b OUT: c",
    ):
        bad = tmp_path / "bad.txt"
        bad.write_text(f"IN: walk OUT: I_WALK\n{bad_line}\n")
        with pytest.raises(DataFormatError, match=r"bad\.txt, line 2"):
            scan.read_scan_file(bad)


def test_load_official_split_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="tasks_train_length"):
        scan.load_official_split(tmp_path, "length")
    with pytest.raises(ValueError, match="valid names"):
        scan.load_official_split(tmp_path, "nope")
