"""Use a trained model: decode new inputs with the model a ``deltamix seqmix`` run saved.

A run folder (``translate``, ``parse``, ``train`` or ``scan``) holds ``model/`` (our Transformer or
LSTM with its tokenizer, or a Hugging Face model written by ``save_pretrained`` with the tokenizer in
``tokenizer/``) and ``config.json``, whose ``training`` section gives the beam size, length penalty and
output-length limit the run was tested with; `Predictor` decodes with those unless told otherwise.
The weights in ``model/`` are the ones the run scored (the checkpoint average where it averaged).

>>> predictor = Predictor.load("runs/multi30k/none-small-seed0")   # doctest: +SKIP
>>> predictor.predict(["Ein Hund rennt durch den Schnee."])        # doctest: +SKIP
['A dog runs through the snow.']
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from deltamix.core.errors import DataFormatError
from deltamix.data.batching import Tokenizer, encode_source
from deltamix.data.tokenization import load_tokenizer
from deltamix.seqmix.hf import build_hf_model
from deltamix.training.decoding import DecodingSettings, decode_batch, length_sorted_batches
from deltamix.training.model_io import MODEL_FORMAT, load_model
from deltamix.training.snapshots import average_checkpoints

__all__ = ["DecodingSettings", "Predictor", "decode_batch", "length_sorted_batches"]

logger = logging.getLogger(__name__)


class Predictor:
    """A trained model with its tokenizer(s) and decoding settings.

    Args:
        model: a `deltamix.models.base.Seq2SeqModel` (put in eval mode here).
        tokenizer: encodes sources (and decodes outputs unless ``target_tokenizer`` is given).
        settings: decoding settings.
        target_tokenizer: decodes outputs when the target side has its own vocabulary.
        device: where to run (default: CUDA if available, else CPU).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Tokenizer,
        settings: DecodingSettings | None = None,
        target_tokenizer: Tokenizer | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.target_tokenizer = target_tokenizer or tokenizer
        self.settings = settings or DecodingSettings()

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str | None = None, **overrides: Any) -> Predictor:
        """The model of a run folder (or of a ``model/`` folder itself), decoding as the run did.

        Args:
            path: a run folder holding ``model/`` (and ``config.json``), or the ``model/`` folder.
            device: where to run (default: CUDA if available, else CPU).
            **overrides: `DecodingSettings` fields to change (None leaves the run's value).

        Raises:
            DataFormatError: no model at ``path``, or an unreadable run config.
            DeltamixError: a Hugging Face model that cannot be loaded.
            ValueError: an override that is not a decoding setting or is out of range.
        """
        unknown = set(overrides) - set(DecodingSettings.__dataclass_fields__)
        if unknown:  # before the (slow) model load
            raise ValueError(f"unknown decoding settings: {sorted(unknown)}")
        path = Path(path)
        model_dir = path / "model" if (path / "model").is_dir() else path
        if not (model_dir / "config.json").is_file():
            raise DataFormatError(path, "no trained model here (expected model/config.json in a run folder)")
        run_dir = model_dir.parent
        model, tokenizer, target_tokenizer = _load_model_and_tokenizers(model_dir, run_dir)
        settings, snapshots = _run_settings(run_dir / "config.json")
        if snapshots:  # an older run folder: model/ holds the final weights, not the scored average
            model.load_state_dict(average_checkpoints(snapshots))
            logger.info(
                "%s: decoding with the mean of %d epoch snapshots, as scored", run_dir, len(snapshots)
            )
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        return cls(model, tokenizer, settings, target_tokenizer, device)

    def predict(self, sources: Sequence[str], progress: bool = False) -> list[str]:
        """Decode ``sources`` (texts); returns the output texts in the order of the inputs.

        Inputs are decoded sorted by length in batches of ``settings.batch_size``.
        """
        encoded = [encode_source(text, self.tokenizer) for text in sources]
        outputs = [""] * len(sources)
        batches = length_sorted_batches([len(ids) for ids in encoded], self.settings.batch_size)
        for indices in tqdm(batches, desc="decoding", unit="batch", disable=not progress):
            texts = decode_batch(
                self.model,
                [encoded[i] for i in indices],
                self.tokenizer.pad_id,
                self.target_tokenizer,
                self.settings,
                self.device,
            )
            for i, text in zip(indices, texts, strict=True):
                outputs[i] = text
        return outputs


def _load_model_and_tokenizers(
    model_dir: Path, run_dir: Path
) -> tuple[nn.Module, Tokenizer, Tokenizer | None]:
    """Our model (with vocab/tokenizer.json and an optional target_vocab.json) or a Hugging Face one."""
    try:
        meta = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataFormatError(model_dir / "config.json", f"unreadable model config ({error})") from error
    if meta.get("format") == MODEL_FORMAT:
        model, tokenizer = load_model(model_dir)
        target = model_dir / "target_vocab.json"
        return model, tokenizer, load_tokenizer(target) if target.is_file() else None
    tokenizer_dir = run_dir / "tokenizer"  # where a run puts a Hugging Face model's tokenizer
    model, tokenizer = build_hf_model(str(model_dir), str(tokenizer_dir) if tokenizer_dir.is_dir() else None)
    return model, tokenizer, None


def _run_settings(config_path: Path) -> tuple[DecodingSettings, list[Path]]:
    """The decoding settings a run was tested with (its config.json ``training``), else the defaults,
    and the epoch snapshots whose mean it was scored with where ``model/`` does not hold that mean.

    Runs finished before the average was saved as ``model/`` (their config has no ``model_weights``)
    keep the final weights there; their snapshots are still in ``epochs/``.
    """
    if not config_path.is_file():
        return DecodingSettings(), []
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        training, run = config.get("training", {}), config.get("run", {})
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        raise DataFormatError(config_path, f"unreadable run config ({error})") from error
    defaults = DecodingSettings()
    settings = DecodingSettings(
        beam_size=int(training.get("beam_size", defaults.beam_size)),
        length_penalty=float(training.get("length_penalty", defaults.length_penalty)),
        max_length=int(training.get("max_decode_length", defaults.max_length)),
    )
    average_last = int(run.get("average_last") or 0)
    if not training or "model_weights" in config or average_last <= 1:
        return settings, []
    snapshots = sorted((config_path.parent / "epochs").glob("step-*.safetensors"))[-average_last:]
    if len(snapshots) < 2:
        logger.warning(
            "%s was scored with the average of its last %d epoch snapshots, which are gone: decoding with "
            "its final weights instead",
            config_path.parent,
            average_last,
        )
        return settings, []
    return settings, snapshots
