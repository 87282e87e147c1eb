"""One command line: every shared concept has one name in every command, every option's help shows its
default, older spellings still parse (with a warning), and the running queues' commands resolve to the
settings they always had."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from unittest import mock

import pytest

from deltamix.cli.main import build_parser, main, parse_args
from deltamix.experiments.scan.run import ScanRunConfig, default_training
from deltamix.experiments.text.run import TextRunConfig
from queue_fakes import fake_python, queue_project, run_queue

REPO = Path(__file__).resolve().parents[2]

# concept -> (its one option name, the config fields it fills in some command, spellings no command
# may show). A command may keep an older spelling only as a hidden alias of the option.
CONCEPTS = {
    "training-set limit": ("--train-limit", {"train_limit", "max_train_examples"}, {"--max-train-examples"}),
    "evaluation-set limit": (
        "--eval-limit",
        {"eval_limit", "test_limit", "max_eval_examples"},
        {"--max-eval-examples", "--test-limit"},
    ),
    "threads": ("--threads", {"threads", "num_threads"}, {"--num-threads", "--torch-threads"}),
    "precision": ("--precision", {"precision"}, {"--dtype", "--bf16", "--fp32", "--mixed-precision"}),
    "run folder": ("--output-dir", {"output_dir"}, {"--out-dir", "--run-dir", "--output-folder"}),
    "records folder": ("--results-dir", {"results_dir"}, {"--records-dir", "--results"}),
    "seed": ("--seed", {"seed"}, {"--random-seed"}),
    "training steps": ("--max-steps", {"max_steps"}, {"--steps"}),
    "SeqMix alpha": ("--alpha", {"alpha", "seqmix_alpha"}, {"--seqmix-alpha"}),
}


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) of every command that runs something (the leaves)."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
    for action in subparsers:
        for name, child in action.choices.items():
            yield from _commands(child, (*path, name))


COMMANDS = list(_commands(build_parser()))


def _visible(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.option_strings and a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)
    ]


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"seqmix scan", "seqmix translate", "seqmix train", "diffprune glue", "diffprune export"} <= names
    assert len(names) >= 12


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_shared_concept_has_one_name(path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    for concept, (name, fields, retired) in CONCEPTS.items():
        for action in _visible(parser):
            assert not set(action.option_strings) & retired, f"{' '.join(path)}: {concept} is {name}"
            if action.dest in fields:
                assert action.option_strings == [name], f"{' '.join(path)}: {concept} is {name}"


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_shows_its_default(path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    formatter = parser._get_formatter()
    for action in _visible(parser):
        if isinstance(action, argparse._VersionAction):
            continue
        text = formatter._expand_help(action)
        assert "(default" in text or "(required)" in text or "default:" in text, (
            f"{' '.join(path)} {action.option_strings[0]}: its help shows no default: {text!r}"
        )


@pytest.mark.parametrize(
    ("argv", "field", "value", "old"),
    [
        (["seqmix", "scan", "--steps", "7"], "max_steps", 7, "--steps"),
        (["seqmix", "scan", "--seqmix-alpha", "0.5"], "seqmix_alpha", 0.5, "--seqmix-alpha"),
        (["seqmix", "scan", "--test-limit", "3"], "test_limit", 3, "--test-limit"),
        (["diffprune", "glue", "--task", "rte", "--max-train-examples", "9"], "max_train_examples", 9, None),
        (["diffprune", "glue", "--task", "rte", "--max-eval-examples", "4"], "max_eval_examples", 4, None),
        (["seqmix", "compare", "--steps", "11"], "steps", 11, "--steps"),
    ],
)
def test_older_spellings_still_parse_with_a_warning(argv, field, value, old, capsys) -> None:
    with pytest.warns(FutureWarning, match=f"{old or argv[-2]} is deprecated"):
        args = build_parser().parse_args(argv)
    assert getattr(args, field) == value
    parse_args(build_parser(), argv)  # the command line prints the warning as one line
    assert f"deltamix: warning: {argv[-2]} is deprecated" in capsys.readouterr().err


def test_a_bad_value_for_an_older_spelling_names_it(capsys) -> None:
    with pytest.raises(SystemExit), pytest.warns(FutureWarning):
        build_parser().parse_args(["seqmix", "scan", "--steps", "0"])
    assert "argument --steps: must be > 0" in capsys.readouterr().err


def test_version(capsys) -> None:
    import deltamix

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"deltamix {deltamix.__version__}"


# ----------------------------------------------------------------------------- the running queues


def _queue_commands(tmp_path: Path, script: str) -> list[list[str]]:
    """The argument lists ``experiments/<script>`` passes to deltamix (run with a fake command)."""
    copy, fake = queue_project(tmp_path, script)
    # multi30k_converged.sh runs only where --precision auto gives bf16
    return run_queue(copy, fake, PYTHON=fake_python(tmp_path, "bf16"))


class _Built(Exception):
    """Raised by the stand-in of a run function, carrying the config it was given."""


def _stand_in(config: object) -> None:
    raise _Built(config)


def _resolved(argv: list[str], target: str) -> object:
    """The run config the command line builds from ``argv`` (``target``, the run, is not called)."""
    with mock.patch(target, side_effect=_stand_in):
        args = build_parser().parse_args(argv)
        with pytest.raises(_Built) as built:
            args.func(args)
    return built.value.args[0]


def _value(argv: list[str], option: str) -> str:
    return argv[argv.index(option) + 1]


def test_the_scan_queue_resolves_to_the_settings_it_always_had(tmp_path: Path) -> None:
    """experiments/scan_long.sh: the mixing members pass main; the others leave the extent unset, and
    store union as before the default changed (so their folders resume and their records match)."""
    calls = _queue_commands(tmp_path, "scan_long.sh")
    assert len(calls) == 24
    for argv in calls:
        augment, seed = _value(argv, "--augment"), int(_value(argv, "--seed"))
        before = ScanRunConfig(
            split=_value(argv, "--split"),
            augment=augment,
            seed=seed,
            output_dir=_value(argv, "--output-dir"),
            training=dataclasses.replace(default_training(), max_steps=6000, seed=seed),
            partner_extent="main" if "seqmix" in augment else "union",
            num_threads=1,
        )
        assert _resolved(argv, "deltamix.cli.seqmix_scan.run_scan") == before


def test_the_translation_queue_resolves_to_the_settings_it_always_had(tmp_path: Path) -> None:
    calls = _queue_commands(tmp_path, "multi30k_converged.sh")
    assert len(calls) == 9
    for argv in calls:
        before = TextRunConfig(
            kind="translate", dataset="multi30k", data_dir=_value(argv, "--data-dir"),
            augment=_value(argv, "--augment"), partner_extent="main", seed=int(_value(argv, "--seed")),
            epochs=60, patience=5, max_tokens=4096, lr=7e-4, warmup_steps=1000, lr_schedule="inverse-sqrt",
            label_smoothing=0.1, dropout=0.3, average_last=5, beam_size=4, length_penalty=0.6, threads=1,
            output_dir=Path(_value(argv, "--output-dir")), results_dir=Path("results"),
        )  # fmt: skip
        assert _resolved(argv, "deltamix.experiments.text.run.run_text") == before
