"""A trained seq2seq model on disk: `save_model` writes a model folder, `load_model` reads one back.

A folder holds ``model.safetensors`` and ``config.json`` (our LSTM or Transformer, in deltamix's
format) or a Hugging Face model written by ``save_pretrained``, beside its tokenizer.

>>> save_model(model, tokenizer, "runs/x/model")   # doctest: +SKIP
>>> model, tokenizer = load_model("runs/x/model")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from deltamix.core.errors import DataFormatError
from deltamix.core.io import atomic_path, atomic_write_json
from deltamix.data.batching import Tokenizer
from deltamix.data.tokenization import (
    TOKENIZER_FILE,
    VOCABULARY_FILE,
    SubwordTokenizer,
    load_tokenizer,
    save_tokenizer,
)
from deltamix.data.vocab import Vocabulary
from deltamix.models.lstm import LSTMSeq2Seq
from deltamix.models.transformer import TransformerSeq2Seq

MODEL_FORMAT = "deltamix-seq2seq-model"  # the "format" of config.json in deltamix's own model folders


def save_model(
    model: nn.Module, tokenizer: Tokenizer, directory: str | Path, target_tokenizer: Tokenizer | None = None
) -> None:
    """Write ``model.safetensors``, ``config.json`` and the tokenizer (``target_vocab.json``) atomically.

    The tokenizer goes under its standard name (`deltamix.data.tokenization.save_tokenizer`): a word
    `Vocabulary` as ``vocab.json``, a BPE `SubwordTokenizer` as ``tokenizer.json``.

    Our models (with ``model_type`` and a ``config`` dataclass) are saved in deltamix's format; other
    models with ``save_pretrained`` (or adapters whose ``.model`` has it, e.g. `HFSeq2SeqAdapter`) in
    Hugging Face's format, and so are tokenizers with ``save_pretrained`` but no ``save``.

    Raises:
        ValueError: ``model`` has neither ``model_type`` + ``config`` nor ``save_pretrained``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _save_weights(model, directory)
    _save_tokenizers(tokenizer, target_tokenizer, directory)


def _save_weights(model: nn.Module, directory: Path) -> None:
    """The model's weights and config, in deltamix's format or Hugging Face's."""
    if hasattr(model, "model_type") and hasattr(model.config, "to_dict"):
        tensors = {name: value.detach().contiguous().cpu() for name, value in model.state_dict().items()}
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt"})
        atomic_write_json(
            directory / "config.json",
            {
                "format": MODEL_FORMAT,
                "version": 1,
                "model_type": model.model_type,
                "config": model.config.to_dict(),
            },
        )
    elif hasattr(model, "save_pretrained"):
        model.save_pretrained(str(directory))
    elif hasattr(getattr(model, "model", None), "save_pretrained"):  # an adapter around a HF model
        model.model.save_pretrained(str(directory))
    else:
        raise ValueError(
            f"cannot save a {type(model).__name__}: it has neither model_type+config nor save_pretrained"
        )


def _save_tokenizers(tokenizer: Tokenizer, target_tokenizer: Tokenizer | None, directory: Path) -> None:
    """The source tokenizer under its standard name, a separate target vocabulary as target_vocab.json."""
    if isinstance(tokenizer, Vocabulary | SubwordTokenizer):
        save_tokenizer(tokenizer, directory)  # vocab.json or tokenizer.json, by kind
    elif hasattr(tokenizer, "save"):
        tokenizer.save(directory / "vocab.json")
    elif hasattr(tokenizer, "save_pretrained"):
        tokenizer.save_pretrained(str(directory))
    if (
        target_tokenizer is not None
        and target_tokenizer is not tokenizer
        and hasattr(target_tokenizer, "save")
    ):
        target_tokenizer.save(directory / "target_vocab.json")


def load_model(directory: str | Path) -> tuple[nn.Module, Any]:
    """Load a model and its tokenizer saved by `save_model` (our LSTM or Transformer).

    Returns:
        The model (eval mode is the caller's choice) and its `Vocabulary` or `SubwordTokenizer` (also
        from folders written before the subword tokenizer had its own file name, where it sits in
        ``vocab.json``).

    Raises:
        DataFormatError: if the folder holds no such model or tokenizer.
    """
    directory = Path(directory)
    path = directory / "config.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DataFormatError(path, f"unreadable model config ({error})") from error
    classes = {cls.model_type: cls for cls in (LSTMSeq2Seq, TransformerSeq2Seq)}
    if meta.get("format") != MODEL_FORMAT or meta.get("model_type") not in classes:
        raise DataFormatError(path, "not a deltamix seq2seq model config")
    cls = classes[meta["model_type"]]
    model = cls(cls.config_class(**meta["config"]))
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    names = [name for name in (TOKENIZER_FILE, VOCABULARY_FILE) if (directory / name).is_file()]
    if not names:
        raise DataFormatError(directory, f"no {TOKENIZER_FILE} or {VOCABULARY_FILE} beside the model")
    return model, load_tokenizer(directory / names[0])


def load_weights_into(model: nn.Module, directory: str | Path) -> None:
    """Load the weights `save_model` wrote into ``directory`` into ``model`` (of the same architecture).

    Raises:
        DataFormatError: ``directory`` holds no ``model.safetensors``.
    """
    path = Path(directory) / "model.safetensors"
    if not path.exists():
        raise DataFormatError(path, "missing: the run is marked finished but its model was not saved")
    if hasattr(model, "model_type"):
        model.load_state_dict(load_file(str(path)))
        return
    # Hugging Face format (save_pretrained): let from_pretrained resolve tied and renamed weights.
    inner = model if hasattr(model, "save_pretrained") else model.model
    inner.load_state_dict(type(inner).from_pretrained(str(directory)).state_dict())
