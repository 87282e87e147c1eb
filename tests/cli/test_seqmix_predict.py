"""`deltamix seqmix predict` and `deltamix.training.predict.Predictor`: a trained run decodes new inputs
exactly as the run decoded its test set (the scored weights, the run's beam), and bad input is named."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deltamix.cli import seqmix_predict
from deltamix.core.errors import DataFormatError
from deltamix.experiments.text.run import average_checkpoints
from deltamix.training.predict import DecodingSettings, Predictor, length_sorted_batches


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="deltamix seqmix")
    seqmix_predict.register(parser.add_subparsers(dest="seqmix_command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_the_saved_model_is_the_scored_average_and_reproduces_the_test_predictions(averaged_run) -> None:
    trained_run, pairs = averaged_run
    config = json.loads((trained_run / "config.json").read_text(encoding="utf-8"))
    snapshots = sorted((trained_run / "epochs").glob("step-*.safetensors"))
    assert config["model_weights"] == [path.name for path in snapshots] and len(snapshots) == 2
    averaged = average_checkpoints(snapshots)
    for name, value in load_file(str(trained_run / "model" / "model.safetensors")).items():
        torch.testing.assert_close(value, averaged[name], rtol=0, atol=0, msg=name)

    predictor = Predictor.load(trained_run, device="cpu")
    assert predictor.settings == DecodingSettings(beam_size=2, length_penalty=0.6, max_length=7)
    expected = (trained_run / "predictions.test.txt").read_text(encoding="utf-8").splitlines()
    sources = [source for source, _ in pairs]
    assert predictor.predict(sources) == expected
    assert (
        Predictor.load(trained_run / "model", device="cpu").predict(sources) == expected
    )  # the model/ folder


def test_an_older_run_folder_is_decoded_with_the_average_it_was_scored_with(
    averaged_run, tmp_path: Path
) -> None:
    """Runs finished before model/ held the average: the snapshots in epochs/ are averaged on loading."""
    trained_run, pairs = averaged_run
    older = tmp_path / "older"
    for path in trained_run.rglob("*"):
        if path.is_file():
            (older / path.relative_to(trained_run)).parent.mkdir(parents=True, exist_ok=True)
            (older / path.relative_to(trained_run)).write_bytes(path.read_bytes())
    config = json.loads((older / "config.json").read_text(encoding="utf-8"))
    del config["model_weights"]
    (older / "config.json").write_text(json.dumps(config), encoding="utf-8")
    final = sorted((older / "epochs").glob("step-*.safetensors"))[-1]
    model_file = older / "model" / "model.safetensors"
    model_file.write_bytes(final.read_bytes())  # as such runs left it: the final weights
    expected = (trained_run / "predictions.test.txt").read_text(encoding="utf-8").splitlines()
    assert Predictor.load(older, device="cpu").predict([s for s, _ in pairs]) == expected


def test_the_command_writes_one_output_per_input_line(
    averaged_run, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trained_run, _ = averaged_run
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("jump twice\nwalk\n", encoding="utf-8")
    outputs = tmp_path / "outputs.txt"
    assert _run(["predict", str(trained_run), "--input", str(inputs), "--output", str(outputs)]) == 0
    expected = Predictor.load(trained_run, device="cpu").predict(["jump twice", "walk"])
    assert outputs.read_text(encoding="utf-8").splitlines() == expected
    assert "decoded 2 inputs" in capsys.readouterr().err
    # standard input to standard output, with the decoding changed from the command line
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"jump twice\nwalk\n")))
    assert _run(["predict", str(trained_run), "--beam-size", "1", "--max-length", "3"]) == 0
    captured = capsys.readouterr()
    greedy = Predictor.load(trained_run, device="cpu", beam_size=1, max_length=3).predict(
        ["jump twice", "walk"]
    )
    assert captured.out.splitlines() == greedy
    assert "(beam 1, length penalty 0.6, at most 3 tokens)" in captured.err


def test_bad_input_is_named(
    averaged_run, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trained_run, _ = averaged_run
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("walk\n\njump\n", encoding="utf-8")
    outputs = tmp_path / "outputs.txt"
    with pytest.raises(DataFormatError, match=r"inputs\.txt, line 2: empty line"):
        _run(["predict", str(trained_run), "--input", str(inputs), "--output", str(outputs)])
    assert not outputs.exists()
    inputs.write_text("walk\n", encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"walk\n\n")))
    with pytest.raises(DataFormatError, match=r"line 2: empty line"):
        _run(["predict", str(trained_run)])  # standard input, checked like a file
    with pytest.raises(DataFormatError, match=r"no trained model here"):
        _run(["predict", str(tmp_path), "--input", str(inputs)])
    with pytest.raises(SystemExit):
        _run(["predict", str(tmp_path / "missing")])
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run(["predict", str(trained_run), "--beam-size", "0"])
    assert "must be > 0" in capsys.readouterr().err


def test_length_sorted_batches_cover_every_input_once() -> None:
    batches = length_sorted_batches([4, 1, 3, 1, 9], 2)
    assert batches == [[1, 3], [2, 0], [4]]
    with pytest.raises(ValueError, match="beam_size must be >= 1"):
        DecodingSettings(beam_size=0)
