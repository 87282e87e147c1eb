"""Tests of the accelerate SeqMix trainer and the SCAN run: end to end, resume, divergence, budgets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from deltamix.core.errors import DataFormatError, DeltamixError
from deltamix.core.io import read_jsonl
from deltamix.data.scan import load_split
from deltamix.data.vocab import Vocabulary
from deltamix.experiments.scan.run import ScanRunConfig, run_scan
from deltamix.models.lstm import LSTMSeq2Seq, LSTMSeq2SeqConfig
from deltamix.seqmix.augment import SeqMixAugmenter
from deltamix.seqmix.config import SeqMixConfig
from deltamix.training.loop import Seq2SeqTrainingConfig, Seq2SeqTrainingLoop, load_model

TINY = {"hidden_size": 16, "embedding_dim": 8}


@pytest.fixture(scope="module")
def scan_slice() -> tuple[list[tuple[str, str]], list[tuple[str, str]], Vocabulary]:
    train, test = load_split("addprim_jump")
    train = train[::100]  # 147 pairs spread over the grammar
    vocab = Vocabulary.build(text for pair in train + test for text in pair)
    return train, test[:10], vocab


def _transformer(vocab: Vocabulary) -> torch.nn.Module:
    """A tiny Transformer with dropout on (its masks are FastDropout's)."""
    from deltamix.models.transformer import TransformerSeq2Seq, TransformerSeq2SeqConfig

    sizes = {
        "d_model": 16,
        "num_heads": 2,
        "feedforward_dim": 32,
        "num_encoder_layers": 1,
        "num_decoder_layers": 1,
    }
    ids = {"pad_id": vocab.pad_id, "bos_id": vocab.bos_id, "eos_id": vocab.eos_id}
    return TransformerSeq2Seq(TransformerSeq2SeqConfig(vocab_size=len(vocab), dropout=0.3, **sizes, **ids))


def _trainer(
    scan_slice, out: Path, seed: int = 0, model_kind: str = "lstm", **overrides
) -> Seq2SeqTrainingLoop:
    train, _, vocab = scan_slice
    torch.manual_seed(seed)
    if model_kind == "transformer":
        model = _transformer(vocab)
    else:
        model = LSTMSeq2Seq(LSTMSeq2SeqConfig(vocab_size=len(vocab), **TINY, dropout=0.5))
    settings = {"max_steps": 6, "batch_size": 8, "checkpoint_interval": 3, "log_interval": 2, "seed": 0}
    config = Seq2SeqTrainingConfig(**{**settings, **overrides})
    augmenter = SeqMixAugmenter(
        SeqMixConfig(variant="seqmix"), vocab.pad_id, vocab.unk_id, len(vocab), (1, 2)
    )
    return Seq2SeqTrainingLoop(model, vocab, config, train, out, augmenter=augmenter)


def _weights(trainer: Seq2SeqTrainingLoop) -> dict[str, torch.Tensor]:
    return trainer.accelerator.unwrap_model(trainer.model).state_dict()


@pytest.mark.parametrize("model_kind", ["lstm", "transformer"])
def test_resume_after_interruption_equals_uninterrupted(scan_slice, tmp_path: Path, model_kind: str) -> None:
    straight = _trainer(scan_slice, tmp_path / "straight", model_kind=model_kind)
    state = straight.train()
    assert state.finished and state.step == 6

    first = _trainer(scan_slice, tmp_path / "resumed", model_kind=model_kind)
    partial = first.train(stop_after=4)  # checkpoints at 3 and when stopping at 4
    assert not partial.finished and partial.step == 4
    # other init: must be overwritten; the dropout masks after the resume come from the saved RNG state
    second = _trainer(scan_slice, tmp_path / "resumed", seed=123, model_kind=model_kind)
    resumed = second.train()
    assert resumed.finished and resumed.step == 6 and resumed.resumed_from == 4
    for name, value in _weights(straight).items():
        torch.testing.assert_close(_weights(second)[name], value, rtol=0, atol=0, msg=name)

    third = _trainer(scan_slice, tmp_path / "resumed", seed=7, model_kind=model_kind)  # finished: not again
    assert third.train().step == 6
    for name, value in _weights(straight).items():
        torch.testing.assert_close(_weights(third)[name], value, rtol=0, atol=0, msg=name)
    assert not (tmp_path / "resumed" / "checkpoint").exists()


def _pack_into_one_buffer(module: torch.nn.Module) -> None:
    """Make the parameters views of one flat buffer, as cuDNN does with an LSTM's weights on CUDA."""
    params = list(module.parameters())
    flat = torch.cat([param.detach().reshape(-1) for param in params])
    offset = 0
    for param in params:
        param.data = flat[offset : offset + param.numel()].view_as(param)
        offset += param.numel()


def test_resume_with_weights_sharing_one_buffer(scan_slice, tmp_path: Path) -> None:
    """The GPU case: safetensors would drop or refuse weights that share memory; the checkpoint must not."""
    straight = _trainer(scan_slice, tmp_path / "straight")
    straight.train()
    first = _trainer(scan_slice, tmp_path / "resumed")
    _pack_into_one_buffer(first.accelerator.unwrap_model(first.model).encoder)
    first.train(stop_after=4)
    second = _trainer(scan_slice, tmp_path / "resumed", seed=123)
    _pack_into_one_buffer(second.accelerator.unwrap_model(second.model).encoder)
    assert second.train().resumed_from == 4
    for name, value in _weights(straight).items():
        torch.testing.assert_close(_weights(second)[name], value, rtol=0, atol=0, msg=name)


def test_saved_model_round_trips(scan_slice, tmp_path: Path) -> None:
    trainer = _trainer(scan_slice, tmp_path / "run", max_steps=2)
    trainer.train()
    model, vocab = load_model(tmp_path / "run" / "model")
    original = trainer.accelerator.unwrap_model(trainer.model).eval()
    model.eval()
    src = torch.tensor([[*vocab.encode("jump twice"), vocab.eos_id]])
    on_its_device = src.to(next(original.parameters()).device)  # the trained model is on CUDA if any
    assert model.generate(src, 10) == original.generate(on_its_device, 10)
    assert vocab.tokens == scan_slice[2].tokens


def test_a_subword_translation_model_round_trips(tmp_path: Path) -> None:
    """A BPE model is saved with tokenizer.json and loads back with its SubwordTokenizer; a folder of
    the older layout (the tokenizer JSON in vocab.json) still loads."""
    from deltamix.data.tokenization import SubwordTokenizer, train_joint_tokenizer
    from deltamix.models.transformer import TransformerSeq2Seq, TransformerSeq2SeqConfig
    from deltamix.training.loop import save_model

    pairs = [("ein Haus", "a house"), ("ein Hund", "a dog"), ("zwei Hunde", "two dogs")] * 4
    tokenizer = train_joint_tokenizer(pairs, vocab_size=60, min_frequency=1)
    torch.manual_seed(0)
    sizes = {"d_model": 16, "num_heads": 2, "num_encoder_layers": 1, "num_decoder_layers": 1}
    specials = {"pad_id": tokenizer.pad_id, "bos_id": tokenizer.bos_id, "eos_id": tokenizer.eos_id}
    config = TransformerSeq2SeqConfig(vocab_size=len(tokenizer), feedforward_dim=32, **sizes, **specials)
    original = TransformerSeq2Seq(config).eval()
    src = torch.tensor([[*tokenizer.encode("ein Hund"), tokenizer.eos_id]])
    save_model(original, tokenizer, tmp_path / "model")
    assert (tmp_path / "model" / "tokenizer.json").is_file()
    assert not (tmp_path / "model" / "vocab.json").exists()
    for folder in (tmp_path / "model", tmp_path / "older"):
        if folder.name == "older":  # as written before: the subword tokenizer under vocab.json
            folder.mkdir()
            for name in ("model.safetensors", "config.json"):
                (folder / name).write_bytes((tmp_path / "model" / name).read_bytes())
            tokenizer.save(folder / "vocab.json")
        model, loaded = load_model(folder)
        assert isinstance(loaded, SubwordTokenizer) and loaded.encode("zwei Hunde") == tokenizer.encode(
            "zwei Hunde"
        )
        assert model.eval().generate(src, 6) == original.generate(src, 6)
    (tmp_path / "older" / "vocab.json").unlink()
    with pytest.raises(DataFormatError, match=r"no tokenizer\.json or vocab\.json beside the model"):
        load_model(tmp_path / "older")


def test_non_finite_loss_stops_with_a_clear_error(scan_slice, tmp_path: Path) -> None:
    trainer = _trainer(scan_slice, tmp_path / "run")
    with torch.no_grad():
        trainer.accelerator.unwrap_model(trainer.model).output.bias.fill_(float("nan"))
    with pytest.raises(DeltamixError, match=r"loss became nan at step 1"):
        trainer.train()


def test_time_budget_finishes_the_run(scan_slice, tmp_path: Path) -> None:
    state = _trainer(scan_slice, tmp_path / "run", max_steps=None, max_minutes=1e-6).train()
    assert state.finished and state.step == 1


def test_evaluate_scores_exact_match(scan_slice, tmp_path: Path) -> None:
    trainer = _trainer(scan_slice, tmp_path / "run", max_steps=1)
    _, test, _ = scan_slice
    metrics, predictions = trainer.evaluate(test)
    assert len(predictions) == len(test)
    assert metrics["exact_match"] == sum(p == t for p, (_, t) in zip(predictions, test, strict=True)) / len(
        test
    )


@pytest.mark.parametrize(
    "bad", [{}, {"max_steps": 0}, {"max_steps": 5, "batch_size": 0}, {"max_steps": 5, "label_smoothing": 1.0}]
)
def test_training_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError):
        Seq2SeqTrainingConfig(**bad)


def test_scan_run_end_to_end_writes_model_metrics_and_record(tmp_path: Path) -> None:
    config = ScanRunConfig(
        split="addprim_jump",
        augment="seqmix",
        seed=1,
        output_dir=str(tmp_path / "run"),
        results_dir=str(tmp_path / "results"),
        training=Seq2SeqTrainingConfig(max_steps=3, batch_size=8, max_decode_length=60),
        model_config=TINY,
        train_limit=200,
        test_limit=15,
    )
    result = run_scan(config)
    records = read_jsonl(tmp_path / "results" / "scan.jsonl")
    assert len(records) == 1
    record = records[0]
    assert (record["experiment"], record["task"], record["method"], record["seed"]) == (
        "scan",
        "addprim_jump",
        "seqmix",
        1,
    )
    assert record["main_metric"] == "exact_match"
    assert record["main_value"] == result.metrics["exact_match"]
    assert record["config"]["model"]["hidden_size"] == 16 and record["config"]["steps"] == 3
    for name in ("model.safetensors", "config.json", "vocab.json"):
        assert (tmp_path / "run" / "model" / name).is_file()
    predictions = (tmp_path / "run" / "predictions.txt").read_text().splitlines()
    assert len(predictions) == 15
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]["num_test"] == 15
    assert not math.isnan(result.metrics["final_train_loss"])

    again = run_scan(config)  # finished: neither trained nor recorded again
    assert again.already_finished and again.metrics == result.metrics
    assert len(read_jsonl(tmp_path / "results" / "scan.jsonl")) == 1


def test_scan_run_config_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="split"):
        ScanRunConfig(split="jump")
    with pytest.raises(ValueError, match="augmentation"):
        ScanRunConfig(augment="mixup")


# ----------------------------------------------------------------------------- precision, token batches


def test_a_bf16_step_runs_and_gives_finite_losses_on_cpu(scan_slice, tmp_path: Path) -> None:
    trainer = _trainer(scan_slice, tmp_path / "bf16", precision="bf16", max_steps=4)
    assert trainer.precision == "bf16"
    state = trainer.train()
    losses = [event["loss"] for event in read_jsonl(tmp_path / "bf16" / "log.jsonl") if "loss" in event]
    assert state.finished and losses and all(math.isfinite(loss) for loss in losses)
    for value in _weights(trainer).values():  # weights and optimizer stay float32 under autocast
        assert value.dtype == torch.float32


def test_bf16_losses_follow_fp32_ones(scan_slice, tmp_path: Path) -> None:
    losses = {}
    for precision in ("fp32", "bf16"):
        trainer = _trainer(scan_slice, tmp_path / precision, precision=precision, max_steps=4)
        losses[precision] = trainer.train().last_loss
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)


def test_token_batches_train_and_resume_like_an_uninterrupted_run(scan_slice, tmp_path: Path) -> None:
    straight = _trainer(scan_slice, tmp_path / "straight", max_tokens=120, precision="fp32")
    assert all(
        len(batch) * max(straight.loader.dataset.lengths()[i] for i in batch) <= 120
        for batch in straight.sampler.batches()
    )
    straight.train()
    first = _trainer(scan_slice, tmp_path / "resumed", max_tokens=120, precision="fp32")
    first.train(stop_after=4)
    resumed = _trainer(scan_slice, tmp_path / "resumed", max_tokens=120, precision="fp32")
    resumed.train()
    for name, value in _weights(straight).items():
        assert torch.equal(value, _weights(resumed)[name]), name


def test_the_scan_record_names_the_precision_it_trained_in(tmp_path: Path) -> None:
    config = ScanRunConfig(
        split="simple",
        augment="none",
        output_dir=str(tmp_path / "run"),
        results_dir=str(tmp_path / "results"),
        model_config=TINY,
        train_limit=40,
        test_limit=5,
        num_threads=1,
        training=Seq2SeqTrainingConfig(max_steps=2, batch_size=8, precision="bf16"),
    )
    run_scan(config)
    record = read_jsonl(tmp_path / "results" / "scan.jsonl")[-1]
    assert record["config"]["precision"] == "bf16"
    assert record["config"]["mixed_precision"] == "bf16"
    assert record["config"]["training"]["precision"] == "bf16"


def test_old_name_is_a_deprecated_alias():
    import deltamix.training.loop as trainer_module

    with pytest.warns(DeprecationWarning, match="Seq2SeqTrainingLoop"):
        old = trainer_module.Seq2SeqTrainer
    assert old is Seq2SeqTrainingLoop
    with pytest.raises(AttributeError):
        trainer_module.NoSuchName  # noqa: B018
