"""`deltamix seqmix translate|parse|train`: argument checks, tiny end-to-end runs, records, averaging, report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from deltamix.cli import seqmix_text
from deltamix.core.errors import DeltamixError
from deltamix.core.io import read_jsonl
from deltamix.experiments.report import parsing as parsing_report
from deltamix.experiments.report import translation as translation_report
from deltamix.experiments.text.run import (
    TASK_DEFAULTS,
    TextRunConfig,
    average_checkpoints,
    run_text,
)
from deltamix.experiments.text.settings import run_settings


def _parser() -> argparse.ArgumentParser:
    """A parser with only this module's commands (as `deltamix seqmix` registers them)."""
    parser = argparse.ArgumentParser(prog="deltamix seqmix")
    seqmix_text.register(parser.add_subparsers(dest="seqmix_command", required=True))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.func(args)


# ----------------------------------------------------------------------------- argument parsing


def test_commands_and_defaults() -> None:
    args = _parser().parse_args(["translate", "--data-dir", "d"])
    assert (args.dataset, args.augment, args.model, args.seed, args.vocab_size) == (
        "multi30k",
        "seqmix",
        None,
        0,
        8000,
    )
    assert (args.func, args.kind) == (seqmix_text.run_command, "translate")
    args = _parser().parse_args(["parse", "--data-dir", "d", "--split", "question", "--form", "sql"])
    assert (args.geo_split, args.geo_form, args.kind) == ("question", "sql", "parse")
    # Unset flags take the metric's defaults in the run config.
    config = TextRunConfig(kind="parse", data_dir="d")
    assert config.model == "lstm" and config.beam_size == 1 and config.average_last == 0
    config = TextRunConfig(kind="translate")
    assert (config.model, config.beam_size, config.length_penalty, config.average_last) == (
        "transformer",
        4,
        0.6,
        5,
    )
    assert config.experiment == "translation" and TASK_DEFAULTS["bleu"]["label_smoothing"] == 0.1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["translate", "--augment", "mixup"], "invalid choice: 'mixup'"),
        (["translate", "--epochs", "0"], "must be > 0"),
        (["translate", "--seed", "-1"], "must be >= 0"),
        (["translate", "--label-smoothing", "1.5"], r"must be in \[0, 1\)"),
        (["translate", "--word-dropout-p", "2"], r"must be in \[0, 1\]"),
        (["parse", "--data-dir", "d", "--split", "random"], "invalid choice: 'random'"),
        (["parse", "--data-dir", "d", "--form", "lambda"], "invalid choice: 'lambda'"),
        (["parse"], "--data-dir"),
        (["train", "--train", "absent.tsv", "--valid", "a", "--test", "a"], "does not exist"),
        (["translate", "--lr-schedule", "cosine"], "invalid choice: 'cosine'"),
        (["translate", "--partner-extent", "partner"], "invalid choice: 'partner'"),
    ],
)
def test_bad_arguments_rejected_at_parse_time(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(argv)
    assert info.value.code == 2
    assert __import__("re").search(message, capsys.readouterr().err)


def test_output_dir_that_is_a_file_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "f"
    file.write_text("x")
    with pytest.raises(SystemExit):
        _parser().parse_args(["translate", "--output-dir", str(file)])
    assert "is a file, not a folder" in capsys.readouterr().err


def test_a_refused_flag_combination_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    from deltamix.cli.main import main

    code = main(["seqmix", "parse", "--data-dir", "d", "--lr-schedule", "inverse-sqrt"])  # parse: no warm-up
    assert code == 2
    assert (
        "seqmix parse: the inverse-sqrt learning-rate schedule needs warmup_steps >= 1"
        in capsys.readouterr().err
    )


def test_run_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="unknown run kind 'summarize'"):
        TextRunConfig(kind="summarize")
    with pytest.raises(ValueError, match="parse needs data_dir"):
        TextRunConfig(kind="parse")
    with pytest.raises(ValueError, match="train needs train_file"):
        TextRunConfig(kind="train", train_file="a.tsv")
    with pytest.raises(ValueError, match="unknown model size"):
        TextRunConfig(kind="translate", model_size="huge")


# ----------------------------------------------------------------------------- end to end (tiny)


def test_parse_geoquery_slice_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_data
) -> None:
    out, results = tmp_path / "run", tmp_path / "results"
    argv = [
        "parse", "--data-dir", str(shared_data("geoquery")), "--split", "query", "--augment", "seqmix",
        "--train-limit", "32", "--eval-limit", "6", "--max-steps", "2", "--batch-size", "16",
        "--max-output-length", "12", "--threads", "1", "--output-dir", str(out), "--results-dir", str(results),
    ]  # fmt: skip
    assert _run(argv) == 0
    assert "test exact_match" in capsys.readouterr().out
    (record,) = read_jsonl(results / "parsing.jsonl")
    assert record["experiment"] == "parsing" and record["method"] == "seqmix"
    assert record["task"] == "geoquery-query-logic (train[:32])"
    assert record["main_metric"] == "exact_match" and 0.0 <= record["main_value"] <= 1.0
    assert record["metrics"]["num_test"] == 6 and record["metrics"]["steps"] == 2
    assert record["config"]["seqmix"]["variant"] == "seqmix" and record["model"] == "lstm"
    assert len((out / "predictions.test.txt").read_text(encoding="utf-8").splitlines()) == 6
    assert (out / "vocab.json").is_file() and (out / "model" / "model.safetensors").is_file()
    # A finished run is neither trained nor recorded again.
    assert _run(argv) == 0
    assert "already holds a finished run" in capsys.readouterr().out
    assert len(read_jsonl(results / "parsing.jsonl")) == 1
    # ... but only for the settings it was run with: another budget in the same folder is refused.
    other = [*argv[: argv.index("--max-steps")], "--max-steps", "3", *argv[argv.index("--max-steps") + 2 :]]
    with pytest.raises(DeltamixError, match=r"other settings \(run.max_steps: 2 there, 3 now\)"):
        _run(other)
    assert len(read_jsonl(results / "parsing.jsonl")) == 1
    # Where the records go and how many threads may change (a restart on another machine).
    assert _run([*argv[:-2], "--results-dir", str(tmp_path / "elsewhere")]) == 0


def test_an_interrupted_run_folder_of_other_settings_is_refused(tmp_path: Path) -> None:
    """The settings are written when a run starts, so a restart with others is refused mid-run too."""
    data = tmp_path / "pairs.tsv"
    data.write_text(
        "".join(f"{s}\t{t}\n" for s, t in [("walk", "WALK"), ("jump", "JUMP")] * 4), encoding="utf-8"
    )
    files = {"train_file": str(data), "valid_file": str(data), "test_file": str(data)}
    out = tmp_path / "run"
    started = TextRunConfig(kind="train", metric="exact_match", max_steps=2, output_dir=out, **files)
    out.mkdir()  # as a run killed during training leaves it: its settings, no metrics
    (out / "config.json").write_text(json.dumps({"run": run_settings(started)}), encoding="utf-8")
    restart = TextRunConfig(kind="train", metric="exact_match", max_steps=2, output_dir=out, lr=0.01, **files)
    with pytest.raises(DeltamixError, match=r"run.lr: 0.001 there, 0.01 now"):
        run_text(restart)
    assert not (out / "metrics.json").exists()


def test_partner_extent_reaches_the_record_and_older_folders_count_as_union(tmp_path: Path) -> None:
    """--partner-extent main is recorded; a folder started before the setting existed (no such key) is a
    union run: it resumes under the default and refuses main by name."""
    data = tmp_path / "pairs.tsv"
    data.write_text(
        "".join(f"{s}\t{t}\n" for s, t in [("walk", "WALK"), ("jump twice", "JUMP JUMP")] * 4),
        encoding="utf-8",
    )
    results = tmp_path / "results"
    argv = [
        "train", "--train", str(data), "--valid", str(data), "--test", str(data), "--metric", "exact_match",
        "--augment", "seqmix", "--partner-extent", "main", "--max-steps", "2", "--max-output-length", "4",
        "--threads", "1", "--output-dir", str(tmp_path / "run"), "--results-dir", str(results),
    ]  # fmt: skip
    assert _run(argv) == 0
    (record,) = read_jsonl(results / "parsing.jsonl")
    assert record["config"]["seqmix"]["partner_extent"] == "main"
    assert record["config"]["run"]["partner_extent"] == "main"

    files = {"train_file": str(data), "valid_file": str(data), "test_file": str(data)}
    out = tmp_path / "old"
    started = TextRunConfig(kind="train", metric="exact_match", max_steps=2, output_dir=out, **files)
    settings = run_settings(started)
    del settings["partner_extent"]
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"run": settings}), encoding="utf-8")
    restart = TextRunConfig(**{**vars(started), "partner_extent": "main"})
    with pytest.raises(DeltamixError, match=r"run.partner_extent: 'union' there, 'main' now"):
        run_text(restart)


def test_translate_multi30k_slice_with_checkpoint_averaging(tmp_path: Path, shared_data) -> None:
    out, results = tmp_path / "run", tmp_path / "results"
    argv = [
        "translate", "--data-dir", str(shared_data("multi30k")), "--augment", "switchout", "--train-limit", "48",
        "--eval-limit", "3", "--epochs", "2", "--batch-size", "16", "--vocab-size", "300",
        "--average-last", "2", "--beam-size", "2", "--max-output-length", "6", "--threads", "1",
        "--output-dir", str(out), "--results-dir", str(results),
    ]  # fmt: skip
    assert _run(argv) == 0
    (record,) = read_jsonl(results / "translation.jsonl")
    assert record["main_metric"] == "bleu" and record["bleu_signature"].startswith("nrefs:1|case:mixed")
    assert record["metrics"]["epochs"] == 2 and record["metrics"]["averaged_checkpoints"] == 2
    assert record["model"] == "transformer-small" and record["config"]["training"]["beam_size"] == 2
    assert len(list((out / "epochs").glob("step-*.safetensors"))) == 2
    assert json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["model"]["type"] == "BPE"


def test_train_command_on_tsv_and_jsonl_files(tmp_path: Path) -> None:
    pairs = [("walk twice", "WALK WALK"), ("jump", "JUMP"), ("walk", "WALK"), ("jump twice", "JUMP JUMP")]
    tsv = tmp_path / "train.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in pairs * 4), encoding="utf-8")
    jsonl = tmp_path / "test.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"source": s, "target": t}) + "\n" for s, t in pairs), encoding="utf-8"
    )
    results = tmp_path / "results"
    argv = [
        "train", "--train", str(tsv), "--valid", str(jsonl), "--test", str(jsonl), "--metric", "exact_match",
        "--model", "transformer", "--augment", "word-dropout", "--max-steps", "2", "--max-output-length", "4",
        "--threads", "1", "--output-dir", str(tmp_path / "run"), "--results-dir", str(results),
    ]  # fmt: skip
    assert _run(argv) == 0
    (record,) = read_jsonl(results / "parsing.jsonl")
    assert record["task"] == "train" and record["method"] == "word-dropout"


def test_train_command_reports_bad_rows(tmp_path: Path) -> None:
    good = tmp_path / "good.tsv"
    good.write_text("a\tb\n", encoding="utf-8")
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nno tab here\n", encoding="utf-8")
    from deltamix.core.errors import DataFormatError

    with pytest.raises(DataFormatError, match=r"bad\.tsv, line 2: expected 2 tab-separated fields"):
        _run(["train", "--train", str(good), "--valid", str(bad), "--test", str(good), "--max-steps", "1"])


# ----------------------------------------------------------------------------- averaging and report


def test_average_checkpoints_is_the_elementwise_mean(tmp_path: Path) -> None:
    paths = []
    for i, value in enumerate((1.0, 2.0, 6.0)):
        path = tmp_path / f"{i}.safetensors"
        save_file({"w": torch.full((2, 2), value), "n": torch.tensor([i])}, str(path))
        paths.append(path)
    averaged = average_checkpoints(paths)
    assert torch.equal(averaged["w"], torch.full((2, 2), 3.0))
    assert averaged["n"].tolist() == [2]  # integer tensors: the last file's
    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="other tensors"):
        average_checkpoints([paths[0], tmp_path / "other.safetensors"])
    with pytest.raises(ValueError, match="at least one"):
        average_checkpoints([])


def _record(task: str, method: str, seed: int, value: float, metric: str) -> dict:
    return {
        "experiment": "x",
        "task": task,
        "method": method,
        "seed": seed,
        "main_metric": metric,
        "main_value": value,
        "model": "transformer-small",
        "train_seconds": 120.0,
        "command": f"deltamix seqmix translate --augment {method} --seed {seed} --output-dir runs/{method}-seed{seed}",
        "bleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
        "config": {"run": {"epochs": 15, "max_steps": None}},
    }


def test_translation_report_means_deltas_and_commands(tmp_path: Path) -> None:
    records = [_record("multi30k-de-en", "none", s, v, "bleu") for s, v in ((0, 30.0), (1, 32.0), (2, 31.0))]
    records += [
        _record("multi30k-de-en", "seqmix", s, v, "bleu") for s, v in ((0, 32.0), (1, 32.5), (2, 33.0))
    ]
    text = translation_report.render(records, tmp_path)
    assert "## Translation" in text and "**multi30k-de-en** (model: transformer-small, 15 epochs)" in text
    assert "| none | 31.0 ± 1.0 (3) | – | – | 0, 1, 2 | 2.0 |" in text
    # seqmix is above none in every seed (32.0 > 30.0, 32.5 > 32.0, 33.0 > 31.0)
    assert "| seqmix | 32.5 ± 0.5 (3) | +1.5 | 3 of 3 | 0, 1, 2 |" in text
    assert (
        "Goal, SeqMix at least +0.5 above `none` on the mean (BLEU): seqmix +1.50 (3 vs 3 seeds): met."
        in text
    )
    assert (
        "`deltamix seqmix translate --augment seqmix --seed <seed> --output-dir runs/seqmix-seed<seed>"
        " --partner-extent union`" in text
    )
    assert "tok:13a" in text
    # Rows are ordered baseline first whatever the record order.
    assert text.index("| none |") < text.index("| seqmix |")


def test_translation_report_one_table_per_budget_and_schedule_shortest_first(tmp_path: Path) -> None:
    def run(epochs: float, schedule: str | None, value: float) -> dict:
        record = _record("multi30k-de-en", "none", 0, value, "bleu")
        training = {} if schedule is None else {"lr_schedule": schedule}  # older records lack the key
        return {**record, "config": {"run": {"epochs": epochs}, "training": training}}

    records = [
        run(15, "inverse-sqrt", 41.0),
        run(15, None, 40.0),
        run(3, "constant", 28.0),
        run(8, None, 37.0),
    ]
    text = translation_report.render(records, tmp_path)
    titles = [line for line in text.splitlines() if line.startswith("**multi30k-de-en**")]
    assert titles == [
        "**multi30k-de-en** (model: transformer-small, 3 epochs)",
        "**multi30k-de-en** (model: transformer-small, 8 epochs)",
        "**multi30k-de-en** (model: transformer-small, 15 epochs)",
        "**multi30k-de-en** (model: transformer-small, 15 epochs, inverse-sqrt lr)",
    ]
    assert "| none | 41.0 (1) |" in text.split("inverse-sqrt lr)")[1]


def test_translation_report_never_averages_runs_with_another_recipe(tmp_path: Path) -> None:
    """Same budget, another warm-up or dropout: own tables, whose titles name what differs."""

    def run(seed: int, value: float, warmup: int, dropout: float | None) -> dict:
        record = _record("multi30k-de-en", "none", seed, value, "bleu")
        model = {} if dropout is None else {"dropout": dropout, "pad_id": seed}  # ids never separate
        training = {"warmup_steps": warmup, "seed": seed, "log_interval": 10 + seed}
        return {**record, "config": {**record["config"], "training": training, "model": model}}

    records = [
        run(0, 40.0, 1000, 0.2),
        run(1, 41.0, 1000, 0.2),
        run(0, 30.0, 400, 0.2),
        run(0, 20.0, 1000, None),
    ]
    text = translation_report.render(records, tmp_path)
    titles = [line for line in text.splitlines() if line.startswith("**multi30k-de-en**")]
    assert sorted(titles) == sorted(
        [
            "**multi30k-de-en** (model: transformer-small, 15 epochs; dropout 0.2, warmup_steps 1000)",
            "**multi30k-de-en** (model: transformer-small, 15 epochs; dropout 0.2, warmup_steps 400)",
            "**multi30k-de-en** (model: transformer-small, 15 epochs; dropout not recorded, warmup_steps 1000)",
        ]
    )
    assert (
        "| none | 40.5 ± 0.7 (2) |" in text
        and "| none | 30.0 (1) |" in text
        and "| none | 20.0 (1) |" in text
    )
    # One recipe for the task: the title names no settings.
    single = translation_report.render(records[:2], tmp_path)
    assert "**multi30k-de-en** (model: transformer-small, 15 epochs)" in single


def test_translation_report_gives_non_default_augmentation_settings_their_own_row(tmp_path: Path) -> None:
    """A SeqMix run with the authors' partner extent is not averaged with the default ones; older records
    (no such key) and settings that do not concern the member (alpha of word dropout) keep the plain name."""

    def run(method: str, seed: int, value: float, **seqmix) -> dict:
        record = _record("multi30k-de-en", method, seed, value, "bleu")
        return {**record, "config": {**record["config"], "seqmix": {"variant": method, **seqmix}}}

    records = [
        run("none", 0, 40.0, partner_extent="main"),
        run("seqmix", 0, 39.0),  # recorded before partner_extent existed
        run("seqmix", 1, 39.4, partner_extent="union", alpha=0.1),
        run("seqmix", 0, 41.0, partner_extent="main"),
        run("seqmix", 0, 38.0, alpha=0.5, partner="length"),
        run("word-dropout", 0, 37.0, alpha=0.5, word_dropout_p=0.1),
    ]
    text = translation_report.render(records, tmp_path)
    assert "| none | 40.0 (1) | – |" in text
    assert "| seqmix | 39.2 ± 0.3 (2) | -0.8 | 0 of 1 |" in text  # only seed 0 has a baseline
    assert "| seqmix (partner_extent main) | 41.0 (1) | +1.0 |" in text
    assert "| seqmix (alpha 0.5, partner length) | 38.0 (1) | -2.0 |" in text
    assert "| word-dropout | 37.0 (1) |" in text
    assert (
        "Goal, SeqMix at least +0.5 above `none` on the mean (BLEU): seqmix -0.80 (2 vs 1 seeds): not met; "
        "seqmix (alpha 0.5, partner length) -2.00 (1 vs 1 seeds): not met; seqmix (partner_extent main) +1.00 (1 vs 1 seeds): met."
    ) in text
    rows = [
        line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ") and "BLEU" not in line
    ]
    assert rows.index("| none") < rows.index("| word-dropout") < rows.index("| seqmix")


def test_translation_report_labels_old_records_by_the_value_they_trained_with(monkeypatch) -> None:
    """A record from before a setting existed counts as that setting's old value, not today's default:
    were the default partner extent ever changed, the old (union) runs would get their own row."""
    old = _record("multi30k-de-en", "seqmix", 0, 39.0, "bleu")
    old["config"] = {**old["config"], "seqmix": {"variant": "seqmix"}}  # no partner_extent key
    assert translation_report.method_label(old) == "seqmix"
    monkeypatch.setitem(translation_report.SEQMIX_VALUES_WHEN_ABSENT, "partner_extent", "main")
    assert translation_report.method_label(old) == "seqmix (partner_extent main)"


def test_report_commands_name_the_settings_whose_default_may_change() -> None:
    """A row's command writes out the lr schedule and (for a mixing member) the partner extent the run
    trained with, so it keeps reproducing the run after a default changes; flags already given stay."""
    old = _record("multi30k-de-en", "seqmix", 0, 39.0, "bleu")
    old["command"] = "deltamix seqmix translate --augment seqmix --seed 0"
    old["config"] = {"run": {"kind": "translate"}, "training": {}, "seqmix": {"variant": "seqmix"}}
    assert translation_report._command([old]) == (
        "`deltamix seqmix translate --augment seqmix --seed <seed> --lr-schedule constant --partner-extent union`"
    )
    new = {**old, "command": "deltamix seqmix translate --augment seqmix --seed 1 --partner-extent main"}
    new["config"] = {
        "run": {"kind": "translate"},
        "training": {"lr_schedule": "inverse-sqrt"},
        "seqmix": {"variant": "seqmix", "partner_extent": "main"},
    }
    assert translation_report._command([new]) == (
        "`deltamix seqmix translate --augment seqmix --seed <seed> --partner-extent main --lr-schedule inverse-sqrt`"
    )
    baseline = {**old, "method": "none", "config": {**old["config"], "seqmix": {"variant": "none"}}}
    assert translation_report._command([baseline]).endswith("--lr-schedule constant`")  # no partner


def test_parsing_report_shows_percent(tmp_path: Path) -> None:
    records = [
        _record("geoquery-query-logic", "none", s, v, "exact_match") for s, v in ((0, 0.40), (1, 0.42))
    ]
    records += [_record("geoquery-query-logic", "seqmix", 0, 0.45, "exact_match")]
    text = parsing_report.render(records, tmp_path)
    assert "| none | 41.0 ± 1.4 (2) | – |" in text
    assert "| seqmix | 45.0 (1) | +4.0 |" in text
    assert (
        "Goal, a gain of SeqMix over `none` on the mean (exact match %): seqmix +4.00 (1 vs 2 seeds): met."
        in text
    )
    # A run with another budget goes to its own table, not into these means.
    other = _record("geoquery-query-logic", "none", 3, 0.9, "exact_match")
    other["config"] = {"run": {"epochs": None, "max_steps": 50}}
    text = parsing_report.render([*records, other], tmp_path)
    assert "| none | 41.0 ± 1.4 (2) | – |" in text and "50 steps)" in text and "| none | 90.0 (1) |" in text


def test_translate_with_a_hugging_face_t5_from_a_local_path(tmp_path: Path) -> None:
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    from deltamix.data.tokenization import SubwordTokenizer

    sub = SubwordTokenizer.train(["ein Hund läuft", "a dog runs", "zwei Hunde", "two dogs"], vocab_size=60)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=sub.tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    config = T5Config(
        vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        pad_token_id=0, eos_token_id=2, decoder_start_token_id=0,
    )  # fmt: skip
    folder = tmp_path / "tiny-t5"
    T5ForConditionalGeneration(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("ein Hund läuft\ta dog runs\nzwei Hunde\ttwo dogs\n", encoding="utf-8")
    results = tmp_path / "results"
    argv = [
        "train", "--train", str(pairs), "--valid", str(pairs), "--test", str(pairs), "--model", str(folder),
        "--metric", "bleu", "--augment", "seqmix", "--max-steps", "2", "--max-output-length", "4", "--threads", "1",
        "--output-dir", str(tmp_path / "run"), "--results-dir", str(results),
    ]  # fmt: skip
    assert _run(argv) == 0
    (record,) = read_jsonl(results / "translation.jsonl")
    assert record["model"] == str(folder) and record["config"]["model"]["d_model"] == 16
    # The saved Hugging Face model (tokenizer kept apart in tokenizer/) decodes as the run did.
    from deltamix.training.predict import Predictor

    predictor = Predictor.load(tmp_path / "run", device="cpu")
    expected = (tmp_path / "run" / "predictions.test.txt").read_text(encoding="utf-8").splitlines()
    assert predictor.predict(["ein Hund läuft", "zwei Hunde"]) == expected
    assert predictor.settings.max_length == 4


def test_default_run_folders_name_the_partner_extent_main() -> None:
    """Runs with the two extents never share a default folder, and folder names do not move with the
    default: a union run keeps the unsuffixed name it had before the setting existed, a main run
    (now the default) is named so; members without a partner keep theirs."""
    mixed = TextRunConfig(kind="translate", augment="seqmix-hard", partner_extent="main")
    plain = TextRunConfig(kind="translate", augment="none", partner_extent="main")
    default = TextRunConfig(kind="translate", augment="seqmix")
    union = TextRunConfig(kind="translate", augment="seqmix", partner_extent="union")
    assert mixed.resolved_output_dir("t").name == "seqmix-hard-main-transformer-small-seed0"
    assert plain.resolved_output_dir("t").name == "none-transformer-small-seed0"
    assert default.resolved_output_dir("t").name == "seqmix-main-transformer-small-seed0"
    assert union.resolved_output_dir("t").name == "seqmix-transformer-small-seed0"


def test_cogs_style_files_score_each_category_and_default_to_exact_match(tmp_path: Path) -> None:
    """`seqmix train` on three-column TSVs: --columns names them, the run is scored by exact match (not
    translation), and metrics.json and the record hold the exact match of each category."""
    rows = [("walk", "WALK", "seen"), ("jump twice", "JUMP JUMP", "seen"), ("look", "LOOK", "new")] * 3
    data = tmp_path / "gen.tsv"
    data.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    results, out = tmp_path / "results", tmp_path / "run"
    argv = [
        "train", "--train", str(data), "--valid", str(data), "--test", str(data), "--columns",
        "source,target,category", "--max-steps", "2", "--max-output-length", "4", "--threads", "1",
        "--output-dir", str(out), "--results-dir", str(results),
    ]  # fmt: skip
    assert _run(argv) == 0
    (record,) = read_jsonl(results / "parsing.jsonl")
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    predictions = (out / "predictions.test.txt").read_text(encoding="utf-8").splitlines()
    for category in ("seen", "new"):
        rows_of = [i for i, row in enumerate(rows) if row[2] == category]
        expected = sum(predictions[i] == rows[i][1] for i in rows_of) / len(rows_of)
        assert metrics[f"exact_match:{category}"] == pytest.approx(expected)
        assert record["metrics"][f"exact_match:{category}"] == metrics[f"exact_match:{category}"]
        assert metrics[f"num_test:{category}"] == len(rows_of)
    assert (
        record["main_metric"] == "exact_match"
        and record["config"]["run"]["columns"] == "source,target,category"
    )
