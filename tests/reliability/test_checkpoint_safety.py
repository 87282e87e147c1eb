"""Checkpoints: never run code on load, count only when complete, survive kills inside a save, NaN keeps the last."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from deltamix.core.errors import DataFormatError, DeltamixError
from deltamix.data.scan import load_split
from deltamix.data.vocab import Vocabulary
from deltamix.models.lstm import LSTMSeq2Seq, LSTMSeq2SeqConfig
from deltamix.seqmix.augment import SeqMixAugmenter
from deltamix.seqmix.config import SeqMixConfig
from deltamix.training.loop import Seq2SeqTrainingConfig, Seq2SeqTrainingLoop


@pytest.fixture(scope="module")
def data() -> tuple[list[tuple[str, str]], Vocabulary]:
    train, _ = load_split("simple")
    train = train[::400]  # 38 pairs
    return train, Vocabulary.build(text for pair in train for text in pair)


def _trainer(data, out: Path, **overrides) -> Seq2SeqTrainingLoop:
    train, vocab = data
    torch.manual_seed(0)
    model = LSTMSeq2Seq(LSTMSeq2SeqConfig(vocab_size=len(vocab), hidden_size=8, embedding_dim=4))
    settings = {"max_steps": 8, "batch_size": 8, "checkpoint_interval": 3, "log_interval": 2}
    augmenter = SeqMixAugmenter(
        SeqMixConfig(variant="seqmix"), vocab.pad_id, vocab.unk_id, len(vocab), (1, 2)
    )
    return Seq2SeqTrainingLoop(
        model, vocab, Seq2SeqTrainingConfig(**{**settings, **overrides}), train, out, augmenter=augmenter
    )


def _weights(trainer: Seq2SeqTrainingLoop) -> dict[str, torch.Tensor]:
    return trainer.accelerator.unwrap_model(trainer.model).state_dict()


class _RunsCode:
    """A pickle payload that creates a file when unpickled (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


@pytest.mark.parametrize("name", ["optimizer.bin", "scheduler.bin", "random_states_0.pkl"])
def test_a_checkpoint_file_that_would_run_code_is_refused(data, tmp_path: Path, name: str) -> None:
    _trainer(data, tmp_path / "run").train(stop_after=3)
    marker = tmp_path / "code-ran"
    with open(tmp_path / "run" / "checkpoint" / name, "wb") as handle:
        pickle.dump({"state": _RunsCode(marker)}, handle)
    with pytest.raises(DataFormatError, match=rf"{name}.*refusing to load"):
        _trainer(data, tmp_path / "run").train()
    assert not marker.exists()


def test_a_checkpoint_missing_a_file_is_refused(data, tmp_path: Path) -> None:
    _trainer(data, tmp_path / "run").train(stop_after=3)
    (tmp_path / "run" / "checkpoint" / "random_states_0.pkl").unlink()  # accelerate alone would go on
    with pytest.raises(DataFormatError, match=r"random_states_0\.pkl.*missing"):
        _trainer(data, tmp_path / "run").train()


def test_a_save_killed_at_any_of_its_steps_resumes_like_an_uninterrupted_run(data, tmp_path: Path) -> None:
    straight = _trainer(data, tmp_path / "straight")
    straight.train()
    first = _trainer(data, tmp_path / "template")
    first.train(stop_after=3)  # checkpoint at 3
    first.train(stop_after=3)  # checkpoint at 6 (the one at 3 is replaced)
    template = tmp_path / "template"
    # What a kill leaves at each point of _save_checkpoint (at step 6, the previous one being step 3):
    cases = {
        "writing checkpoint.tmp": lambda run: shutil.copytree(run / "checkpoint", run / "checkpoint.tmp"),
        "between the renames": lambda run: (run / "checkpoint").rename(run / "checkpoint.old"),
        "removing checkpoint.old": lambda run: (
            shutil.copytree(run / "checkpoint", run / "checkpoint.old"),
            (run / "checkpoint.old" / "optimizer.bin").unlink(),
        ),
    }
    for what, damage in cases.items():
        run = tmp_path / what.replace(" ", "-")
        shutil.copytree(template, run)
        damage(run)
        resumed = _trainer(data, run)
        state = resumed.train()
        assert state.finished and state.resumed_from == 6, what
        for name, value in _weights(straight).items():
            assert torch.equal(_weights(resumed)[name], value), f"{what}: {name}"
        assert sorted(p.name for p in run.iterdir() if p.name.startswith("checkpoint")) == [], what


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path: Path, monkeypatch) -> None:
    trainer = _trainer(data, tmp_path / "run")
    model = trainer.accelerator.unwrap_model(trainer.model)
    forward, calls = model.forward, []

    def poisoned(*args, **kwargs):
        calls.append(1)
        out = forward(*args, **kwargs)
        return out * float("nan") if len(calls) == 5 else out

    monkeypatch.setattr(model, "forward", poisoned)
    with pytest.raises(DeltamixError, match=r"loss became nan at step 5.*last good checkpoint.*step 3"):
        trainer.train()
    checkpoint = tmp_path / "run" / "checkpoint"
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 3
    assert not (tmp_path / "run" / "checkpoint.tmp").exists() and not (tmp_path / "run" / "model").exists()
    saved = torch.load(checkpoint / "optimizer.bin", weights_only=True)
    assert all(torch.isfinite(t).all() for s in saved["state"].values() for t in s.values() if t.dim())

    monkeypatch.undo()
    state = _trainer(data, tmp_path / "run").train()  # the same command again resumes from step 3
    assert state.finished and state.resumed_from == 3


def test_non_finite_gradients_stop_before_the_weights_change(data, tmp_path: Path) -> None:
    trainer = _trainer(data, tmp_path / "run")
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.output.weight.register_hook(lambda grad: grad * float("inf"))  # finite loss, infinite gradient
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(DeltamixError, match=r"gradient norm became (inf|nan) at step 1"):
        trainer.train()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_an_epoch_snapshot_exists_before_its_checkpoint_counts(data, tmp_path: Path, monkeypatch) -> None:
    """`seqmix translate/parse/train --average-last N`: a kill right after an epoch-end checkpoint
    must not lose that epoch's snapshot (the resumed run would never write it)."""
    from deltamix.experiments.text.run import EPOCH_DIR, train_with_snapshots

    trainer = _trainer(data, tmp_path / "run", max_steps=None, epochs=3)
    per_epoch = trainer.steps_per_epoch
    save = trainer._save_checkpoint

    def save_then_die(state):
        save(state)
        if state.step == per_epoch:
            raise KeyboardInterrupt  # stands for SIGKILL just after the checkpoint is renamed into place

    monkeypatch.setattr(trainer, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_with_snapshots(trainer, keep=3)
    assert (tmp_path / "run" / EPOCH_DIR / f"step-{per_epoch:09d}.safetensors").exists()
    monkeypatch.undo()
    train_with_snapshots(_trainer(data, tmp_path / "run", max_steps=None, epochs=3), keep=3)
    assert len(list((tmp_path / "run" / EPOCH_DIR).glob("step-*.safetensors"))) == 3
