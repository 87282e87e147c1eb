"""Tests of SeqMix inside transformers' Seq2SeqTrainer (`deltamix.seqmix.hf_trainer`), tiny BART and T5 from configs."""

from __future__ import annotations

import copy
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    DataCollatorForSeq2Seq,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    T5Config,
    T5ForConditionalGeneration,
)

from deltamix.seqmix import VARIANTS, SeqMixConfig, mixing, seqmix_loss
from deltamix.seqmix import augment as augment_module
from deltamix.seqmix.hf import HFSeq2SeqAdapter
from deltamix.seqmix.hf_trainer import SeqMixSeq2SeqTrainer, SeqMixTrainerMixin, mixed_batch_from_inputs

WORDS = ["a", "b", "c", "d", "e", "f", "g", "h"]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seq2seq_trainer_seqmix.py"


def _tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(["<pad>", "<s>", "</s>", "<unk>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def _bart(vocab: int) -> BartForConditionalGeneration:
    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=vocab, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=2, dropout=0.0,
        attention_dropout=0.0, activation_dropout=0.0, forced_bos_token_id=None, forced_eos_token_id=None,
    )  # fmt: skip
    return BartForConditionalGeneration(config)


def _t5(vocab: int) -> T5ForConditionalGeneration:
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=vocab, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2,
        pad_token_id=0, eos_token_id=2, decoder_start_token_id=0, dropout_rate=0.0,
    )  # fmt: skip
    return T5ForConditionalGeneration(config)


MODELS = {"bart": _bart, "t5": _t5}


def _pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Reversal pairs of 2..5 words (a task a tiny model learns in a few dozen steps)."""
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(n):
        length = int(torch.randint(2, 6, (1,), generator=g))
        words = [WORDS[int(i)] for i in torch.randint(0, len(WORDS), (length,), generator=g)]
        pairs.append((" ".join(words), " ".join(reversed(words))))
    return pairs


def _dataset(tokenizer, pairs) -> Dataset:
    sources, targets = zip(*pairs, strict=True)
    encoded = tokenizer(list(sources), text_target=list(targets))
    return Dataset.from_dict(dict(encoded))


def _args(tmp_path: Path, **overrides) -> Seq2SeqTrainingArguments:
    settings = dict(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, per_device_eval_batch_size=8,
        learning_rate=3e-3, max_steps=2, label_smoothing_factor=0.1, report_to=[], save_strategy="no",
        logging_strategy="no", use_cpu=not torch.cuda.is_available(), seed=0, disable_tqdm=True,
    )  # fmt: skip
    settings.update(overrides)
    return Seq2SeqTrainingArguments(**settings)


def _trainer(tmp_path, name, variant="seqmix", cls=SeqMixSeq2SeqTrainer, pairs=None, **args):
    tokenizer = _tokenizer()
    model = MODELS[name](len(tokenizer))
    kwargs = {} if cls is Seq2SeqTrainer else {"seqmix_config": SeqMixConfig(variant=variant)}
    return cls(
        model=model,
        args=_args(tmp_path, **args),
        train_dataset=_dataset(tokenizer, pairs or _pairs(16)),
        eval_dataset=_dataset(tokenizer, _pairs(8, seed=1)),
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
        **kwargs,
    )


def _batch(trainer, pairs) -> dict[str, torch.Tensor]:
    """The collated batch of the first ``len(pairs)`` training examples, on the trainer's device."""
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(pairs))])
    return {key: value.to(trainer.args.device) for key, value in batch.items()}


@pytest.fixture
def fixed_mixing(monkeypatch):
    """Fix lambda and the partners (row b is mixed with row B - 1 - b); returns a setter for lambda."""
    state = {"lambda": 0.7}

    def fake_lambda(batch_size, alpha, use_max=True, generator=None, device=None):
        return torch.full((batch_size,), state["lambda"], device=device)

    monkeypatch.setattr(mixing, "sample_lambda", fake_lambda)
    monkeypatch.setattr(
        augment_module, "sample_partners", lambda kind, lengths, generator=None: lengths.new_tensor(
            list(range(lengths.shape[0] - 1, -1, -1)))
    )  # fmt: skip
    return state


@pytest.mark.parametrize("name", sorted(MODELS))
def test_mixed_loss_is_the_closed_form(tmp_path, name, fixed_mixing):
    """Rows of one length: loss = lambda * CE(Y) + (1 - lambda) * CE(Y') with the model fed the mixed
    embeddings, and equal to deltamix's seqmix_loss on the same batch."""
    pairs = [("a b c", "c b a"), ("d e f", "f e d"), ("g h a", "a h g"), ("b b c", "c b b")]
    trainer = _trainer(tmp_path, name, pairs=pairs)
    batch = _batch(trainer, pairs)
    model = trainer.model.train()
    loss = trainer.compute_loss(model, dict(batch))

    lam, partner = 0.7, torch.arange(3, -1, -1, device=trainer.args.device)
    adapter = HFSeq2SeqAdapter(model)
    enc = model.get_encoder().get_input_embeddings()
    dec = model.get_decoder().get_input_embeddings()
    src, labels = batch["input_ids"], batch["labels"]
    tgt_in = batch["decoder_input_ids"]
    logits = model(
        inputs_embeds=lam * enc(src) + (1 - lam) * enc(src[partner]),
        decoder_inputs_embeds=lam * dec(tgt_in) + (1 - lam) * dec(tgt_in[partner]),
    ).logits
    ce = lambda y: F.cross_entropy(logits.flatten(0, 1), y.flatten(), label_smoothing=0.1)  # noqa: E731
    closed = lam * ce(labels) + (1 - lam) * ce(labels[partner])
    torch.testing.assert_close(loss, closed, rtol=1e-5, atol=1e-6)

    mixed = mixed_batch_from_inputs(batch, trainer.seqmix_augmenter, model)
    ours = seqmix_loss(adapter(mixed.src, mixed.tgt_in), mixed, 0.1, adapter.pad_id)
    torch.testing.assert_close(loss, ours, rtol=1e-5, atol=1e-6)
    # With the Trainer's num_items_in_batch: the summed loss over that count, as its label smoother.
    summed = seqmix_loss(adapter(mixed.src, mixed.tgt_in), mixed, 0.1, adapter.pad_id, reduction="sum")
    torch.testing.assert_close(trainer.compute_loss(model, dict(batch), num_items_in_batch=40), summed / 40)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_none_and_lambda_one_give_the_trainers_loss(tmp_path, name, fixed_mixing):
    """Variant "none" is the Trainer's own loss; SeqMix with lambda = 1 (rows of different lengths,
    padded) feeds the model through inputs_embeds and gives the same value."""
    plain = _trainer(tmp_path, name, cls=Seq2SeqTrainer)
    none = _trainer(tmp_path, name, variant="none")
    pairs = _pairs(4)
    batch = _batch(plain, pairs)
    assert batch["labels"].eq(-100).any()  # the rows are padded
    expected = plain.compute_loss(plain.model.train(), dict(batch))
    assert torch.equal(none.compute_loss(none.model.train(), dict(batch)), expected)
    fixed_mixing["lambda"] = 1.0
    seqmix = _trainer(tmp_path, name, variant="seqmix")
    torch.testing.assert_close(seqmix.compute_loss(seqmix.model.train(), dict(batch)), expected)


def test_gradient_accumulation_gives_the_large_batch_step(tmp_path, fixed_mixing):
    """With lambda = 1, two accumulated micro-batches of 2 take the step of one batch of 4
    (normalised by the Trainer's num_items_in_batch)."""
    fixed_mixing["lambda"] = 1.0
    pairs = _pairs(4)
    one = _trainer(tmp_path / "one", "bart", pairs=pairs, max_steps=1, optim="sgd", learning_rate=1.0)
    accumulated = _trainer(
        tmp_path / "two", "bart", pairs=pairs, max_steps=1, optim="sgd", learning_rate=1.0,
        per_device_train_batch_size=2, gradient_accumulation_steps=2,
    )  # fmt: skip
    assert accumulated.model_accepts_loss_kwargs  # so the Trainer passes num_items_in_batch
    start = copy.deepcopy(one.model.state_dict())
    one.train()
    accumulated.train()
    moved = 0.0
    for key, value in one.model.state_dict().items():
        torch.testing.assert_close(accumulated.model.state_dict()[key], value, rtol=1e-4, atol=1e-6)
        moved = max(moved, float((value - start[key]).abs().max()))
    assert moved > 1e-3  # the step did change the weights


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_lowers_the_loss_and_generation_is_plain(tmp_path, name):
    trainer = _trainer(
        tmp_path, name, pairs=_pairs(64), max_steps=40, gradient_accumulation_steps=2,
        predict_with_generate=True, generation_max_length=8,
    )  # fmt: skip
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    drawn = trainer._seqmix_draw
    output = trainer.predict(trainer.eval_dataset)
    assert trainer._seqmix_draw == drawn  # evaluation drew no mixing
    after = output.metrics["test_loss"]
    assert math.isfinite(after) and after < before - 0.2, (before, after)
    # The predictions are what model.generate gives on the plain inputs.
    model = trainer.model.eval()
    batch = trainer.data_collator([trainer.eval_dataset[i] for i in range(len(trainer.eval_dataset))])
    batch = {key: value.to(trainer.args.device) for key, value in batch.items()}
    with torch.no_grad():
        generated = model.generate(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], max_length=8
        )
    pad = trainer.processing_class.pad_token_id
    for row, expected in zip(output.predictions, generated.tolist(), strict=True):
        strip = lambda ids: [i for i in ids if i not in (pad, -100)]  # noqa: E731
        assert strip(row.tolist()) == strip(expected)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains_a_step(tmp_path, variant):
    trainer = _trainer(tmp_path, "t5", variant=variant, max_steps=2)
    assert math.isfinite(trainer.train().training_loss)


def test_bad_settings_raise_clear_errors(tmp_path):
    tokenizer = _tokenizer()
    model = _bart(len(tokenizer))
    common = dict(model=model, args=_args(tmp_path), processing_class=tokenizer)
    with pytest.raises(ValueError, match="seqmix_config"):
        SeqMixSeq2SeqTrainer(**common)
    with pytest.raises(ValueError, match="SeqMixConfig"):
        SeqMixSeq2SeqTrainer(**common, seqmix_config={"variant": "seqmix"})
    with pytest.raises(ValueError, match="variant must be one of"):
        SeqMixConfig(variant="mixup")
    with pytest.raises(ValueError, match="compute_loss_func"):
        SeqMixSeq2SeqTrainer(**common, seqmix_config=SeqMixConfig(), compute_loss_func=lambda *a, **k: 0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=12, n_embd=8, n_layer=1, n_head=2, n_positions=16))
    with pytest.raises(ValueError, match="encoder-decoder"):
        SeqMixSeq2SeqTrainer(model=gpt2, args=_args(tmp_path), seqmix_config=SeqMixConfig())
    trainer = _trainer(tmp_path, "bart")
    with pytest.raises(ValueError, match="'labels'"):
        trainer.compute_loss(trainer.model.train(), {"input_ids": torch.ones(2, 3, dtype=torch.long)})


def test_mixin_joins_a_users_own_trainer(tmp_path):
    class MyTrainer(SeqMixTrainerMixin, Seq2SeqTrainer):
        pass

    trainer = _trainer(tmp_path, "bart", cls=MyTrainer, max_steps=1)
    assert math.isfinite(trainer.train().training_loss)


def test_example_script_runs_end_to_end(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("seq2seq_trainer_seqmix", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, example)  # its dataclasses look their module up
    spec.loader.exec_module(example)
    metrics = example.main([
        "--tiny", "--max_steps", "4", "--output_dir", str(tmp_path / "run"), "--eval_limit", "16",
        "--generation_max_length", "12", "--report_to", "none", "--disable_tqdm", "true",
    ])  # fmt: skip
    assert set(metrics) >= {"eval_bleu", "eval_loss"}
    assert 0.0 <= metrics["eval_bleu"] <= 100.0
