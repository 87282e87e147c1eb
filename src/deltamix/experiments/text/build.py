"""What a text run is built from: its data, its tokenizer (kept in the run folder) and its model.

>>> data = load_data(config)                                   # doctest: +SKIP
>>> model, tokenizer = model_and_tokenizer(config, data, data.train, out, is_main=True)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deltamix.data.seq2seq import (
    Pair,
    Seq2SeqData,
    load_geoquery,
    load_pair_files,
    load_translation,
)
from deltamix.data.tokenization import (
    TOKENIZER_FILE,
    VOCABULARY_FILE,
    load_tokenizer,
    save_tokenizer,
    train_joint_tokenizer,
)
from deltamix.data.vocab import Vocabulary
from deltamix.experiments.text.settings import TRANSFORMER_SIZES, TextRunConfig
from deltamix.models.lstm import LSTMSeq2Seq, LSTMSeq2SeqConfig
from deltamix.models.transformer import TransformerSeq2Seq, TransformerSeq2SeqConfig
from deltamix.seqmix.hf import build_hf_model


def load_data(config: TextRunConfig) -> Seq2SeqData:
    """The data of a run (before ``train_limit`` / ``eval_limit``)."""
    if config.kind == "translate":
        return load_translation(
            config.dataset, config.data_dir, config.source_lang, config.target_lang, config.hub_config
        )
    if config.kind == "parse":
        return load_geoquery(config.data_dir, config.geo_split, config.geo_form)
    name = config.task_name or Path(config.train_file).name.split(".")[0]
    return load_pair_files(
        config.train_file, config.valid_file, config.test_file, name=name, columns=config.columns
    )


def build_tokenizer(config: TextRunConfig, data: Seq2SeqData, train: list[Pair]) -> Any:
    """A joint BPE tokenizer (BLEU runs) or a word vocabulary (exact-match runs).

    The word vocabulary holds the tokens of the training pairs plus those of the validation and test
    *questions* (inputs only, known at test time), so that the copy mechanism can copy entity names
    never seen in training (e.g. a state that occurs only in test questions); target-only tokens
    come from training alone.
    """
    if config.metric == "bleu":
        return train_joint_tokenizer(train, vocab_size=config.vocab_size)
    texts = [text for pair in train for text in pair]
    texts += [source for source, _ in data.valid + data.test]
    return Vocabulary.build(texts)


def build_model(config: TextRunConfig, tokenizer: Any) -> Any:
    """Our Transformer (sized by ``model_size``) or LSTM for ``tokenizer``'s joint vocabulary."""
    specials = {"pad_id": tokenizer.pad_id, "bos_id": tokenizer.bos_id, "eos_id": tokenizer.eos_id}
    dropout = {} if config.dropout is None else {"dropout": config.dropout}
    if config.model == "lstm":
        return LSTMSeq2Seq(LSTMSeq2SeqConfig(vocab_size=len(tokenizer), **specials, **dropout))
    sizes = {**TRANSFORMER_SIZES[config.model_size], **dropout}
    return TransformerSeq2Seq(TransformerSeq2SeqConfig(vocab_size=len(tokenizer), **specials, **sizes))


def model_and_tokenizer(
    config: TextRunConfig, data: Seq2SeqData, train: list[Pair], out: Path, is_main: bool
) -> tuple[Any, Any]:
    """The run's untrained model and its tokenizer, which the main process saves in ``out``.

    A Hugging Face model brings its own tokenizer (saved in ``out/tokenizer``); ours is built from
    the data, or read back from ``out`` when resuming, so that a checkpoint meets its vocabulary.
    """
    if config.is_hf_model:
        model, tokenizer = build_hf_model(config.model)
        if is_main:
            tokenizer.save_pretrained(out / "tokenizer")  # beside the model the trainer saves in out/model
        return model, tokenizer
    saved = [out / name for name in (TOKENIZER_FILE, VOCABULARY_FILE) if (out / name).is_file()]
    if saved:  # a resumed run keeps the vocabulary its checkpoint was trained with
        tokenizer = load_tokenizer(saved[0])
    else:
        tokenizer = build_tokenizer(config, data, train)
        if is_main:
            save_tokenizer(tokenizer, out)
    return build_model(config, tokenizer), tokenizer


def max_output_length(config: TextRunConfig, model: Any, tokenizer: Any, train: list[Pair]) -> int:
    """``max_output_length`` if set, else 1.2 x the longest training target + 10 tokens, within the
    model's positions."""
    if config.max_output_length is not None:
        return config.max_output_length
    longest = max(len(tokenizer.encode(target)) for _, target in train)
    limit = getattr(getattr(model, "config", None), "max_positions", 512)
    return min(limit - 1, longest * 6 // 5 + 10)


def model_config(model: Any) -> dict[str, Any]:
    """The config of our models, or of the Hugging Face model inside an adapter, as a dict."""
    config = getattr(model, "config", None) or getattr(getattr(model, "model", None), "config", None)
    return config.to_dict() if hasattr(config, "to_dict") else {"repr": repr(config)}
