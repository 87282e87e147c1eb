"""Tests of `HFSeq2SeqAdapter` with a tiny T5 and a tiny BART built from configs (no downloads)."""

from __future__ import annotations

import pytest
import torch
from transformers import BartConfig, BartForConditionalGeneration, T5Config, T5ForConditionalGeneration

from deltamix.core.mixed_tokens import MixedTokens
from deltamix.models.base import Seq2SeqModel
from deltamix.seqmix import SeqMixAugmenter, SeqMixConfig, seqmix_loss
from deltamix.seqmix.hf import HFSeq2SeqAdapter
from deltamix.seqmix.mixing import soft_mix

V = 40


def _t5() -> T5ForConditionalGeneration:
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=V, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0,
    )  # fmt: skip
    return T5ForConditionalGeneration(config).eval()


def _bart() -> BartForConditionalGeneration:
    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=V, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, scale_embedding=True,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, forced_bos_token_id=None,
        forced_eos_token_id=None,
    )  # fmt: skip
    return BartForConditionalGeneration(config).eval()


MODELS = {"t5": _t5, "bart": _bart}


def _batch(adapter: HFSeq2SeqAdapter, seed: int = 0):
    """src [B, S] (ends with EOS, padded), tgt_in = start y, labels = y EOS; rows of different lengths."""
    g = torch.Generator().manual_seed(seed)
    pad, eos, bos = adapter.pad_id, adapter.eos_id, adapter.bos_id
    src = torch.randint(3, V, (4, 7), generator=g)
    y = torch.randint(3, V, (4, 5), generator=g)
    src_len, tgt_len = [7, 5, 3, 6], [5, 2, 4, 1]
    for b in range(4):
        src[b, src_len[b] - 1] = eos
        src[b, src_len[b] :] = pad
        y[b, tgt_len[b] :] = pad
    labels = torch.cat([y, torch.full((4, 1), pad)], dim=1)
    labels[torch.arange(4), torch.tensor(tgt_len)] = eos
    tgt_in = torch.cat([torch.full((4, 1), bos), y], dim=1)
    return src, tgt_in, labels


@pytest.fixture(params=sorted(MODELS))
def adapter(request) -> HFSeq2SeqAdapter:
    return HFSeq2SeqAdapter(MODELS[request.param]())


def test_is_a_seq2seq_model(adapter: HFSeq2SeqAdapter) -> None:
    assert isinstance(adapter, Seq2SeqModel)
    assert adapter.vocab_size == V


def test_plain_forward_matches_the_hf_model(adapter: HFSeq2SeqAdapter) -> None:
    src, tgt_in, labels = _batch(adapter)
    pad = adapter.pad_id
    got = adapter(MixedTokens.plain(src, pad), MixedTokens.plain(tgt_in, pad))
    expected = adapter.model(
        input_ids=src, attention_mask=src.ne(pad).long(), decoder_input_ids=tgt_in
    ).logits.log_softmax(-1)
    valid = labels.ne(pad)  # positions that are scored
    torch.testing.assert_close(got[valid], expected[valid], atol=1e-5, rtol=1e-5)


def test_lambda_one_equals_the_unmixed_forward(adapter: HFSeq2SeqAdapter) -> None:
    src, tgt_in, labels = _batch(adapter)
    pad = adapter.pad_id
    perm = torch.tensor([2, 3, 0, 1])
    ones = torch.ones(4)
    mixed = adapter(soft_mix(src, src[perm], ones, pad), soft_mix(tgt_in, tgt_in[perm], ones, pad))
    plain = adapter(MixedTokens.plain(src, pad), MixedTokens.plain(tgt_in, pad))
    valid = labels.ne(pad)
    torch.testing.assert_close(mixed[valid], plain[valid], atol=1e-5, rtol=1e-5)


def test_mixed_input_is_the_embedding_of_the_soft_one_hot(adapter: HFSeq2SeqAdapter) -> None:
    """Against a closed form built from the raw embedding matrix (and BART's sqrt(d) scale)."""
    src, tgt_in, _ = _batch(adapter)
    pad = adapter.pad_id
    perm = torch.tensor([1, 0, 3, 2])
    lam = torch.tensor([0.9, 0.6, 0.75, 0.5])
    src_mixed = soft_mix(src, src[perm], lam, pad)
    tgt_mixed = soft_mix(tgt_in, tgt_in[perm], lam, pad)
    got = adapter(src_mixed, tgt_mixed)

    model = adapter.model
    weight = model.get_input_embeddings().weight  # V x D
    scale = getattr(model.get_encoder().get_input_embeddings(), "embed_scale", None) or 1.0

    def soft_one_hot(tokens: MixedTokens, keep_first: bool) -> torch.Tensor:  # B x T x V
        out = []
        for ids in (tokens.ids, tokens.partner_ids):
            hot = torch.nn.functional.one_hot(ids, V).float()
            hot[..., pad] = 0.0  # pad contributes nothing ...
            if keep_first:
                hot[:, 0] = torch.nn.functional.one_hot(ids[:, 0], V).float()  # ... except the start token
            out.append(hot)
        w = tokens.weight.unsqueeze(-1)
        return w * out[0] + (1 - w) * out[1]

    expected = model(
        inputs_embeds=scale * soft_one_hot(src_mixed, False) @ weight,
        attention_mask=(src.ne(pad) | src[perm].ne(pad)).long(),
        decoder_inputs_embeds=scale * soft_one_hot(tgt_mixed, True) @ weight,
        decoder_attention_mask=torch.ones_like(tgt_in),
    ).logits.log_softmax(-1)
    valid = tgt_mixed.mask
    torch.testing.assert_close(got[valid], expected[valid], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("beam", [1, 3])
def test_generate_matches_step_by_step_greedy_and_strips_specials(
    adapter: HFSeq2SeqAdapter, beam: int
) -> None:
    src, _, _ = _batch(adapter, seed=1)
    out = adapter.generate(src, max_length=6, beam_size=beam, length_penalty=0.6)
    assert len(out) == 4
    for row in out:
        assert len(row) <= 6 and all(0 <= i < V and i not in (adapter.eos_id, adapter.pad_id) for i in row)
    if beam > 1:
        return
    pad = adapter.pad_id
    for b in range(4):  # greedy by hand with the adapter's own forward
        prefix = [adapter.bos_id]
        for _ in range(6):
            lp = adapter(
                MixedTokens.plain(src[b : b + 1], pad), MixedTokens.plain(torch.tensor([prefix]), pad)
            )
            prefix.append(int(lp[0, -1].argmax()))
            if prefix[-1] == adapter.eos_id:
                break
        expected = [i for i in prefix[1:] if i != adapter.eos_id]
        assert out[b] == [i for i in expected if i != pad]


@pytest.mark.parametrize("variant", ["seqmix"])
def test_seqmix_training_steps_reduce_the_loss(adapter: HFSeq2SeqAdapter, variant: str) -> None:
    adapter.train()
    pad, eos, bos = adapter.pad_id, adapter.eos_id, adapter.bos_id
    specials = {pad, eos, bos, 0, 1, 2}
    aug = SeqMixAugmenter(
        SeqMixConfig(variant=variant, alpha=0.4), pad, unk_id=3, vocab_size=V, special_ids=specials
    )
    src, tgt_in, labels = _batch(adapter, seed=2)
    optimizer = torch.optim.Adam(adapter.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    plain = aug.plain(src, tgt_in, labels)
    with torch.no_grad():
        before = seqmix_loss(adapter(plain.src, plain.tgt_in), plain, 0.0, pad)
    for _ in range(10):
        batch = aug(src, tgt_in, labels, g)
        loss = seqmix_loss(adapter(batch.src, batch.tgt_in), batch, 0.1, pad)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = seqmix_loss(adapter(plain.src, plain.tgt_in), plain, 0.0, pad)
    assert after < before


def test_rejects_models_that_are_not_encoder_decoders() -> None:
    with pytest.raises(ValueError, match="encoder-decoder"):
        HFSeq2SeqAdapter(torch.nn.Linear(2, 2))
    model = _t5()
    model.config.decoder_start_token_id = None
    model.generation_config.decoder_start_token_id = None
    with pytest.raises(ValueError, match="decoder_start_token_id or bos_token_id"):
        HFSeq2SeqAdapter(model)
    model.generation_config.decoder_start_token_id = 0  # transformers v5 may keep it only here
    assert HFSeq2SeqAdapter(model).bos_id == 0
    with pytest.raises(ValueError, match="max_length"):
        HFSeq2SeqAdapter(_t5()).generate(torch.tensor([[5, 1]]), max_length=0)
