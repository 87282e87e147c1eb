"""Tests of GECA: known substitutions on hand-made corpora, a line-by-line port of the authors' code, SCAN jump."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from deltamix.data import scan
from deltamix.seqmix import geca
from deltamix.seqmix.geca import GecaConfig, geca_augment


def correct(command: str, actions: str) -> bool:
    try:
        return scan.interpret(command) == actions
    except ValueError:
        return False


def test_swaps_a_primitive_into_its_partners_environments():
    # "jump" shares the environment "WUG0 ## WUG1" with walk and look, so it fills their other ones.
    train = [
        ("walk", "W"),
        ("look", "L"),
        ("jump", "J"),
        ("walk left", "LT W"),
        ("look left", "LT L"),
        ("walk twice", "W W"),
        ("look twice", "L L"),
    ]
    assert sorted(geca_augment(train, GecaConfig(max_new=None))) == [
        ("jump left", "LT J"),
        ("jump twice", "J J"),
    ]


def test_multiplicity_one_environments_license_nothing():
    # run and walk share "WUG0 ## WUG1", so run fills walk's "WUG0 twice ## WUG1 WUG1"; look occurs only in
    # "look thrice", shares no environment with anything, so neither "look", "run thrice" nor "walk thrice".
    train = [("walk", "W"), ("run", "R"), ("walk twice", "W W"), ("look thrice", "L L L")]
    assert geca_augment(train, GecaConfig(max_new=None)) == [("run twice", "R R")]


def test_one_hole_cannot_align_source_and_target_tokens():
    # With distinct source/target vocabularies a template needs a hole on each side, i.e. two fragments.
    train = [("walk", "W"), ("jump", "J"), ("walk twice", "W W")]
    assert geca_augment(train, GecaConfig(num_fragments=1, max_new=None)) == []
    assert geca_augment(train, GecaConfig(num_fragments=2, max_new=None)) == [("jump twice", "J J")]


def test_one_hole_suffices_when_a_token_appears_on_both_sides():
    train = [("a b", "a b"), ("c b", "c b"), ("a d", "a d")]
    assert geca_augment(train, GecaConfig(num_fragments=1, max_new=None)) == [("c d", "c d")]


def test_recovers_every_single_phrase_jump_command_of_scan():
    train, _ = scan.load_split("addprim_jump")
    phrases = [p for p in train if not {"and", "after"} & set(p[0].split())]
    new = geca_augment(phrases, GecaConfig(max_new=None), seed=3)
    expected = {
        (c, a) for c, a in scan.generate() if "jump" in c.split() and c != "jump" and len(c.split()) <= 4
    }
    expected = {p for p in expected if not {"and", "after"} & set(p[0].split())}
    assert len(expected) == 20
    assert set(new) == expected
    assert len(new) == len(set(new))


def test_outputs_are_new_deterministic_and_bounded():
    train, _ = scan.load_split("addprim_jump")
    train = [*random.Random(0).sample(train, 1200), ("jump", "I_JUMP")]
    first = geca_augment(train, GecaConfig(max_new=None), seed=0)
    assert first == geca_augment(train, GecaConfig(max_new=None), seed=0)
    assert len(first) == len(set(first)) > 20
    train_x, train_y = {x for x, _ in train}, {y for _, y in train}
    assert not any(x in train_x or y in train_y for x, y in first)
    other = geca_augment(train, GecaConfig(max_new=None), seed=1)
    assert other != first  # the seed orders templates and draws fragments
    assert len(geca_augment(train, GecaConfig(max_new=7), seed=0)) == 7
    assert geca_augment(train, GecaConfig(max_new=0), seed=0) == []


def test_time_limit_stops_with_a_warning(caplog):
    train, _ = scan.load_split("addprim_jump")
    train = [*train[:3000], ("jump", "I_JUMP")]
    with caplog.at_level(logging.WARNING, logger="deltamix.seqmix.geca"):
        new = geca_augment(train, GecaConfig(max_new=None, time_limit_s=1e-9))
    assert new == []
    assert "time limit" in caplog.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fragment_size": 0},
        {"num_fragments": 0},
        {"num_fragments": 9},
        {"fragment_count_limit": 0},
        {"max_comp_len": 1},
        {"variants": 0},
        {"max_new": -1},
        {"time_limit_s": 0.0},
    ],
)
def test_config_validation(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        GecaConfig(**kwargs)


def test_empty_side_is_rejected():
    with pytest.raises(ValueError, match="pair 1"):
        geca_augment([("walk", "W"), ("run", " ")])


# A line-by-line port of the authors' data/builder.py (wug_limit=None), on token tuples, to check that
# our fast version (first occurrences only, str.replace, candidates grouped by fragment) is the same.
def _ref_replace_all(old, new, seq):
    out, i = [], 0
    while i < len(seq):
        if tuple(seq[i : i + len(old)]) == old:
            out.extend(new)
            i += len(old)
        else:
            out.append(seq[i])
            i += 1
    return tuple(out)


def _ref_generic(seq, begin, i_wug, used, size, count, wugs, sep):
    for span in range(1, size + 1):
        for i in range(begin, len(seq) + 1 - span):
            arg = seq[i : i + span]
            templ = _ref_replace_all(arg, (wugs[i_wug],), seq)
            if sep in arg or any(w in arg for w in wugs):  # not in the authors' keep_args
                continue
            if any(len(set(u) & set(arg)) > 0 for u in used):
                continue
            yield templ, (*used, arg)
            if i_wug + 1 < count:
                yield from _ref_generic(templ, i + 1, i_wug + 1, (*used, arg), size, count, wugs, sep)


def _ref_candidates(seqs, size, count):
    wugs, sep = geca._WUGS[:count], geca._SEP
    arg_to_templ, templ_to_arg = {}, {}
    for seq in seqs:
        for templ, args in _ref_generic(tuple(seq), 0, 0, (), size, count, wugs, sep):
            arg_to_templ.setdefault(args, set()).add(templ)
            templ_to_arg.setdefault(templ, set()).add(args)
    multiplicity, templ_to_templ = Counter(), {}
    for templs in arg_to_templ.values():
        for templ1 in templs:
            multiplicity[templ1] += 1
            for templ2 in templs:
                if templ1 != templ2:
                    templ_to_templ.setdefault(templ2, set()).add(templ1)

    def overlap(arg, ref_args):
        return arg in ref_args or all(len(set(arg) & set(a)) > 0 for a in ref_args)

    return {
        "".join(templ2): Counter(
            tuple("".join(span) for span in arg)
            for templ1 in templ_to_templ[templ2]
            if multiplicity[templ1] > 1
            for arg in templ_to_arg[templ1]
            if not overlap(arg, templ_to_arg[templ2])
        )
        for templ2 in templ_to_templ
    }, {"".join(t): {tuple("".join(s) for s in a) for a in args} for t, args in templ_to_arg.items()}


@pytest.mark.parametrize(("size", "count"), [(1, 1), (1, 2), (2, 2), (2, 3)])
def test_matches_a_port_of_the_authors_code(size, count):
    rng = random.Random(size * 10 + count)
    codec = geca._Codec()
    seqs = set()
    for _ in range(25):
        x = " ".join(rng.choice("abcde") for _ in range(rng.randint(1, 4)))
        y = " ".join(rng.choice("ABCab") for _ in range(rng.randint(1, 4)))
        seqs.add(codec.encode(x) + geca._SEP + codec.encode(y))
    seqs = sorted(seqs)
    config = GecaConfig(fragment_size=size, num_fragments=count, max_comp_len=None)
    index = geca._build_index(seqs, config)
    ref_candidates, ref_templ_to_arg = _ref_candidates(seqs, size, count)

    ours = {t: {index.args[a] for a in index.templ_args[i]} for i, t in enumerate(index.templates)}
    assert ours == ref_templ_to_arg
    multiplicity = [len(a) for a in index.templ_args]
    checked = 0
    for t2, templ in enumerate(index.templates):
        args, cumulative = geca._candidates(index, t2, multiplicity)
        sizes = [b - a for a, b in zip([0, *cumulative], cumulative, strict=False)]
        counts = Counter({index.args[a]: n for a, n in zip(args, sizes, strict=True)})
        assert counts == ref_candidates.get(templ, Counter()), templ
        checked += bool(counts)
    assert checked > 0


def test_scan_jump_generates_correct_compositional_jump_commands():
    train, test = scan.load_split("addprim_jump")
    new = geca_augment(train, GecaConfig(max_new=300), seed=0)
    assert len(new) == 300
    jump = [(c, a) for c, a in new if "jump" in c.split() and c != "jump"]
    good = [p for p in jump if correct(*p)]
    assert len(good) >= 250
    assert {c for c, _ in good} <= {c for c, _ in test}
    assert any({"and", "after"} & set(c.split()) for c, _ in good)


def test_same_output_in_processes_with_different_string_hashes():
    # geca.py is loaded from its file so the subprocess does not import torch through deltamix.seqmix.
    train = [*random.Random(0).sample(scan.load_split("addprim_jump")[0], 600), ("jump", "I_JUMP")]
    code = (
        "import importlib.util, json, sys; "
        f"spec = importlib.util.spec_from_file_location('geca', {geca.__file__!r}); "
        "m = importlib.util.module_from_spec(spec); sys.modules['geca'] = m; spec.loader.exec_module(m); "
        "print(json.dumps(m.geca_augment(json.load(sys.stdin), m.GecaConfig(max_new=40), seed=5)))"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(train),
            env={**os.environ, "PYTHONHASHSEED": str(h)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for h in (1, 2)
    ]
    assert outputs[0] == outputs[1]
    assert len(json.loads(outputs[0])) == 40
