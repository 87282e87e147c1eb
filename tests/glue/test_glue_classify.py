"""`deltamix diffprune predict` and `deltamix.experiments.glue.classify.TaskClassifier`: a finished run's model labels
new examples exactly as the run scored its dev set, for a diff (RTE) and a dense file (STS-B, full)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deltamix.cli.main import main
from deltamix.core.errors import DataFormatError, DeltamixError
from deltamix.data.glue import get_task, load_glue
from deltamix.experiments.glue.classify import TaskClassifier, read_examples
from deltamix.experiments.glue.metrics import glue_metrics
from deltamix.experiments.glue.run import GlueRunConfig, run_glue

# One thread: with several, a matrix product's sums split by batch size, and the tiny model's near-zero
# STS-B correlation moves by ~1e-5 between the run's batches of 64 and the classifier's of 5.
QUICK = {
    "max_train_examples": 16, "max_eval_examples": 16, "max_steps": 2, "logging_steps": 1, "lr": 1e-3,
    "threads": 1,
}  # fmt: skip


def _run(tiny_model_dir: Path, glue_dir: Path, out: Path, task: str, method: str) -> tuple[Path, dict]:
    config = GlueRunConfig(
        task=task,
        method=method,
        model=str(tiny_model_dir),
        data_dir=str(glue_dir),
        output_dir=str(out / "run"),
        results_dir=str(out / "results"),
        **QUICK,
    )
    return out / "run", run_glue(config)


@pytest.fixture(scope="module")
def rte_diff_run(tiny_model_dir: Path, glue_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    return _run(tiny_model_dir, glue_dir, tmp_path_factory.mktemp("rte"), "rte", "diffprune")


@pytest.fixture(scope="module")
def stsb_full_run(tiny_model_dir: Path, glue_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    return _run(tiny_model_dir, glue_dir, tmp_path_factory.mktemp("stsb"), "stsb", "full")


@pytest.mark.parametrize("run_name", ["rte_diff_run", "stsb_full_run"])
def test_the_classifier_reproduces_the_runs_dev_metrics(
    run_name: str, glue_dir: Path, request: pytest.FixtureRequest
) -> None:
    run_dir, record = request.getfixturevalue(run_name)
    task = get_task(record["task"])
    dev = load_glue(task, glue_dir)["validation"].select(range(16))
    examples = list(zip(*(dev[column] for column in task.text_columns), strict=True))
    classifier = TaskClassifier.load(run_dir, batch_size=5, device="cpu")  # other batches than the run's
    metrics = glue_metrics(task.name, classifier.logits(examples), dev["label"])
    for name, value in metrics.items():
        assert value == pytest.approx(record["metrics"][name], abs=1e-5), name
    predictions = classifier.predict(examples)
    if task.is_regression:
        assert all(isinstance(value, float) for value in predictions)
    else:
        assert set(predictions) <= set(task.label_names)


def test_the_command_writes_one_label_per_line(rte_diff_run, tmp_path: Path, capsys, monkeypatch) -> None:
    run_dir, _ = rte_diff_run
    inputs = tmp_path / "pairs.tsv"
    inputs.write_text("A dog runs.\tAn animal moves.\nIt rains.\tThe sun shines.\n", encoding="utf-8")
    outputs = tmp_path / "labels.txt"
    assert main(["diffprune", "predict", str(run_dir), "--input", str(inputs), "--output", str(outputs)]) == 0
    expected = TaskClassifier.load(run_dir, device="cpu").predict(
        [("A dog runs.", "An animal moves."), ("It rains.", "The sun shines.")]
    )
    assert outputs.read_text(encoding="utf-8").splitlines() == expected
    assert "rte: 2 examples" in capsys.readouterr().err
    assert main(["diffprune", "predict", str(run_dir), "--input", str(inputs)]) == 0  # to standard output
    assert capsys.readouterr().out.splitlines() == expected
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(inputs.read_bytes())))
    assert main(["diffprune", "predict", str(run_dir)]) == 0  # from standard input
    assert capsys.readouterr().out.splitlines() == expected


def test_bad_input_is_named(rte_diff_run, tmp_path: Path, capsys) -> None:
    run_dir, _ = rte_diff_run
    rte = get_task("rte")
    bad = tmp_path / "bad.tsv"
    bad.write_text("one\ttwo\nonly one column\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad\.tsv, line 2: 1 tab-separated field\(s\), rte takes 2"):
        read_examples(bad, rte)
    bad.write_text("one\t \n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad\.tsv, line 1: empty text"):
        read_examples(bad, rte)
    assert main(["diffprune", "predict", str(run_dir), "--input", str(bad)]) == 2  # a clean error, exit 2
    assert "line 1: empty text" in capsys.readouterr().err
    with pytest.raises(DeltamixError, match=r"holds no finished GLUE run \(run_done\.json is missing\)"):
        TaskClassifier.load(tmp_path)
    classifier = TaskClassifier.load(run_dir, device="cpu")
    with pytest.raises(ValueError, match=r"rte takes 2 text\(s\) per example"):
        classifier.predict(["a single sentence"])


def test_export_writes_a_plain_transformers_folder_with_the_same_outputs(
    rte_diff_run, tmp_path: Path
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    run_dir, record = rte_diff_run
    folder = tmp_path / "rte-model"
    assert main(["diffprune", "export", str(run_dir), "--output-dir", str(folder)]) == 0
    names = {path.name for path in folder.iterdir()}
    assert {"model.safetensors", "config.json", "deltamix.json", "tokenizer.json"} <= names
    assert not [name for name in names if name.endswith((".bin", ".pt", ".pkl"))]  # no pickle
    provenance = json.loads((folder / "deltamix.json").read_text(encoding="utf-8"))
    assert provenance["task"] == "rte" and provenance["method"] == "diffprune"
    assert provenance["dev_metrics"] == pytest.approx(record["metrics"])
    # The model card: the Hub's front matter, the sparsity and the command of the run.
    from huggingface_hub import ModelCard

    card = ModelCard.load(folder / "README.md")
    assert card.data.base_model == record["model"] and card.data.library_name == "transformers"
    assert {"deltamix", "diff-pruning", "rte"} <= set(card.data.tags)
    scores = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert scores == pytest.approx(json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")))
    assert f"{record['stored_params']:,} non-zero entries" in card.text and record["command"] in card.text

    pairs = [("A dog runs in the park.", "An animal moves."), ("It rains.", "The sun shines today.")]
    classifier = TaskClassifier.load(run_dir, device="cpu")
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.model_max_length == classifier.max_length
    assert model.config.id2label == dict(enumerate(get_task("rte").label_names))
    encoded = tokenizer(*map(list, zip(*pairs, strict=True)), padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**encoded).logits.numpy()
    np.testing.assert_allclose(logits, classifier.logits(pairs), atol=1e-6)
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    labels = [classify({"text": a, "text_pair": b})["label"] for a, b in pairs]
    assert labels == classifier.predict(pairs)


def test_export_refuses_a_used_folder_and_leaves_nothing_on_failure(
    rte_diff_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, _ = rte_diff_run
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine", encoding="utf-8")
    assert main(["diffprune", "export", str(run_dir), "--output-dir", str(used)]) == 2
    assert [path.name for path in used.iterdir()] == ["keep.txt"]

    classifier = TaskClassifier.load(run_dir, device="cpu")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(classifier.tokenizer, "save_pretrained", fail)
    with pytest.raises(OSError, match="disk full"):
        classifier.save_pretrained(tmp_path / "new")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["used"]  # no folder, no staging left


def test_an_exported_stsb_model_gives_the_raw_score_in_a_pipeline(stsb_full_run, tmp_path: Path) -> None:
    from transformers import pipeline

    run_dir, _ = stsb_full_run
    classifier = TaskClassifier.load(run_dir, device="cpu")
    folder = classifier.save_pretrained(tmp_path / "stsb-model")
    score = pipeline("text-classification", model=str(folder), device="cpu")
    pair = ("A man plays a guitar.", "Someone is playing music.")
    result = score({"text": pair[0], "text_pair": pair[1]}, function_to_apply="none")
    assert result["score"] == pytest.approx(classifier.predict([pair])[0], abs=1e-5)
    default = score({"text": pair[0], "text_pair": pair[1]})  # problem_type regression: no sigmoid
    assert default["score"] == pytest.approx(result["score"], abs=1e-5)
