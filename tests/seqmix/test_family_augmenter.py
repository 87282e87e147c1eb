"""Tests of `SeqMixAugmenter`: the per-variant semantics, padding, determinism and input checks."""

from __future__ import annotations

import math

import pytest
import torch

from deltamix.core.mixed_tokens import embed_mixed
from deltamix.seqmix import SeqMixAugmenter, SeqMixConfig, seqmix_loss

PAD, BOS, EOS, UNK = 0, 1, 2, 3
VARIANTS = ["none", "seqmix", "seqmix-hard", "word-dropout", "switchout"]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(batch: int = 8, seed: int = 0, vocab: int = 20) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random sequences of different lengths: src [B, S], tgt_in = BOS y, labels = y EOS (pad-padded)."""
    g = _gen(seed)
    src_len = torch.randint(1, 9, (batch,), generator=g)
    tgt_len = torch.randint(1, 7, (batch,), generator=g)
    src = torch.full((batch, int(src_len.max()) + 1), PAD)
    labels = torch.full((batch, int(tgt_len.max()) + 1), PAD)
    tgt_in = labels.clone()
    for b in range(batch):
        s = torch.randint(4, vocab, (int(src_len[b]),), generator=g)
        y = torch.randint(4, vocab, (int(tgt_len[b]),), generator=g)
        src[b, : len(s) + 1] = torch.cat([s, torch.tensor([EOS])])
        labels[b, : len(y) + 1] = torch.cat([y, torch.tensor([EOS])])
        tgt_in[b, : len(y) + 1] = torch.cat([torch.tensor([BOS]), y])
    return src, tgt_in, labels


def _augmenter(variant: str, vocab: int | tuple[int, int] = 20, **kwargs) -> SeqMixAugmenter:
    kwargs.setdefault("partner_extent", "union")  # the tests of main name it
    return SeqMixAugmenter(SeqMixConfig(variant=variant, **kwargs), PAD, UNK, vocab, special_ids=(BOS, EOS))


def _tensors(batch) -> list[torch.Tensor | None]:
    return [
        batch.src.ids, batch.src.mask, batch.src.partner_ids, batch.src.weight,
        batch.tgt_in.ids, batch.tgt_in.mask, batch.tgt_in.partner_ids, batch.tgt_in.weight,
        batch.labels, batch.partner_labels, batch.label_weight,
    ]  # fmt: skip


def _same(a, b) -> bool:
    return all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
               for x, y in zip(_tensors(a), _tensors(b), strict=True))  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS)
def test_deterministic_given_a_seed_and_loss_is_finite(variant: str) -> None:
    aug = _augmenter(variant, word_dropout_p=0.3, switchout_tau=2.0)
    src, tgt_in, labels = _batch(16)
    a, b = aug(src, tgt_in, labels, _gen(1)), aug(src, tgt_in, labels, _gen(1))
    assert _same(a, b)
    if variant != "none":
        assert not _same(a, aug(src, tgt_in, labels, _gen(2)))
    lprobs = torch.randn(16, labels.shape[1], 20).log_softmax(-1)
    assert torch.isfinite(seqmix_loss(lprobs, a, 0.1, PAD))


def test_none_returns_the_plain_batch() -> None:
    src, tgt_in, labels = _batch()
    out = _augmenter("none")(src, tgt_in, labels)
    assert not out.src.is_mixed and not out.tgt_in.is_mixed and out.partner_labels is None
    assert torch.equal(out.src.ids, src) and torch.equal(out.src.mask, src.ne(PAD))
    assert torch.equal(out.labels, labels)


def _partner_index(rows: torch.Tensor, partner_rows: torch.Tensor) -> list[int]:
    return [next(j for j in range(len(rows)) if torch.equal(rows[j], r)) for r in partner_rows]


@pytest.mark.parametrize("partner", ["shuffle", "length"])
def test_soft_seqmix_uses_one_partner_and_one_lambda_per_pair(partner: str) -> None:
    src, tgt_in, labels = _batch(12, seed=3)
    out = _augmenter("seqmix", partner=partner, alpha=0.5)(src, tgt_in, labels, _gen(4))
    index = _partner_index(labels, out.partner_labels)
    assert torch.equal(out.src.partner_ids, src[index])
    assert torch.equal(out.tgt_in.partner_ids, tgt_in[index])
    lam = out.label_weight[:, 0]
    assert (lam >= 0.5).all() and (lam <= 1).all()
    for weight in (out.src.weight, out.tgt_in.weight, out.label_weight):
        assert torch.equal(weight, lam.unsqueeze(1).expand_as(weight))
    # Union mask: a position holds a token of either sequence (lambda < 1 here).
    assert (lam < 1).all()
    assert torch.equal(out.src.mask, src.ne(PAD) | src[index].ne(PAD))


@pytest.mark.parametrize("variant", ["seqmix", "seqmix-hard"])
def test_partner_extent_main_keeps_nothing_of_the_partner_beyond_the_main_example(variant: str) -> None:
    """The authors' fairseq code: masks and loss follow the main example; within it, the same draw."""
    src, tgt_in, labels = _batch(16, seed=11)
    union = _augmenter(variant, alpha=0.5)(src, tgt_in, labels, _gen(12))
    main = _augmenter(variant, alpha=0.5, partner_extent="main")(src, tgt_in, labels, _gen(12))
    for mixed, plain in ((main.src, src), (main.tgt_in, tgt_in)):
        assert not (mixed.mask & plain.eq(PAD)).any()  # no position beyond the main example
        assert (union.src.mask & src.eq(PAD)).any()
        if variant == "seqmix":  # (a hard mix may also choose a shorter partner's pad inside it)
            assert torch.equal(mixed.mask, plain.ne(PAD))
    if variant == "seqmix":
        index = _partner_index(labels, union.partner_labels)
        longer = labels[index].ne(PAD) & labels.eq(PAD)
        assert longer.any()  # the batch has partners longer than their main example
        assert union.partner_labels[longer].ne(PAD).all() and main.partner_labels[longer].eq(PAD).all()
        inside = labels.ne(PAD)
        assert torch.equal(main.partner_labels[inside], union.partner_labels[inside])
        assert torch.equal(main.src.partner_ids[src.ne(PAD)], union.src.partner_ids[src.ne(PAD)])
        # The loss counts no partner token outside the main target: the same as union's on a batch cut to it.
        lprobs = torch.randn(16, labels.shape[1], 20).log_softmax(-1)
        union.partner_labels = union.partner_labels.masked_fill(~inside, PAD)
        assert torch.equal(seqmix_loss(lprobs, main, 0.1, PAD), seqmix_loss(lprobs, union, 0.1, PAD))
    else:
        assert main.partner_labels is None
        assert torch.equal(main.labels[labels.ne(PAD)], union.labels[labels.ne(PAD)])
        assert main.labels[labels.eq(PAD)].eq(PAD).all() and union.labels[labels.eq(PAD)].ne(PAD).any()


def test_soft_seqmix_with_lambda_one_is_exactly_the_unmixed_batch() -> None:
    """With alpha -> 0+ and max(l, 1 - l), lambda is 1 in float32: every tensor matches the plain batch."""
    src, tgt_in, labels = _batch(8, seed=5)
    out = _augmenter("seqmix", alpha=1e-4)(src, tgt_in, labels, _gen(6))
    assert out.label_weight.eq(1).all()
    plain = _augmenter("none")(src, tgt_in, labels)
    emb = torch.nn.Embedding(20, 4, padding_idx=PAD)
    for mixed, unmixed in ((out.src, plain.src), (out.tgt_in, plain.tgt_in)):
        assert torch.equal(mixed.mask, unmixed.mask)
        assert torch.equal(embed_mixed(emb, mixed), embed_mixed(emb, unmixed))
    lprobs = torch.randn(8, labels.shape[1], 20).log_softmax(-1)
    assert torch.equal(seqmix_loss(lprobs, out, 0.1, PAD), seqmix_loss(lprobs, plain, 0.1, PAD))


def test_soft_seqmix_without_target_input_mixing() -> None:
    src, tgt_in, labels = _batch(6)
    out = _augmenter("seqmix", mix_target_input=False)(src, tgt_in, labels, _gen(7))
    assert out.src.is_mixed and not out.tgt_in.is_mixed and out.partner_labels is not None


def _decoder_input_matches_labels(tgt_in: torch.Tensor, labels: torch.Tensor) -> bool:
    """tgt_in[t + 1] is the token labels[t] predicts (EOS is never fed: pad there)."""
    return torch.equal(tgt_in[:, 1:], labels[:, :-1].masked_fill(labels[:, :-1].eq(EOS), PAD)) and bool(
        tgt_in[:, 0].eq(BOS).all()
    )


def test_hard_seqmix_picks_tokens_from_either_sequence_consistently() -> None:
    src, tgt_in, labels = _batch(32, seed=8)
    assert _decoder_input_matches_labels(tgt_in, labels)
    out = _augmenter("seqmix-hard", alpha=1.0)(src, tgt_in, labels, _gen(9))
    assert not out.src.is_mixed and out.partner_labels is None
    assert _decoder_input_matches_labels(out.tgt_in.ids, out.labels)
    from_main = out.src.ids.eq(src)
    assert out.src.mask.equal(out.src.ids.ne(PAD))
    # Some tokens come from the partner, and every other one from the main sequence.
    assert (~from_main).any() and from_main.float().mean() > 0.5


def test_word_dropout_replaces_non_special_tokens_with_unk_at_rate_p() -> None:
    p = 0.25
    src, tgt_in, labels = _batch(64, seed=10)
    out = _augmenter("word-dropout", word_dropout_p=p)(src, tgt_in, labels, _gen(11))
    assert torch.equal(out.labels, labels) and out.partner_labels is None
    for new, old in ((out.src.ids, src), (out.tgt_in.ids, tgt_in)):
        changed = new.ne(old)
        assert new[changed].eq(UNK).all()
        assert torch.equal(new.eq(PAD), old.eq(PAD))
        assert not changed[torch.isin(old, torch.tensor([PAD, BOS, EOS]))].any()
    n = int(src.ge(4).sum() + tgt_in.ge(4).sum())
    k = int(out.src.ids.eq(UNK).sum() + out.tgt_in.ids.eq(UNK).sum())
    assert abs(k - n * p) < 4 * math.sqrt(n * p * (1 - p))


def test_word_dropout_leaves_target_alone_without_target_mixing() -> None:
    src, tgt_in, labels = _batch(16)
    out = _augmenter("word-dropout", word_dropout_p=0.5, mix_target_input=False)(
        src, tgt_in, labels, _gen(12)
    )
    assert torch.equal(out.tgt_in.ids, tgt_in) and out.src.ids.eq(UNK).any()


def test_switchout_replaces_source_and_target_consistently_from_separate_vocabularies() -> None:
    src, tgt_in, labels = _batch(64, seed=13, vocab=10)
    out = _augmenter("switchout", vocab=(10, 30), switchout_tau=3.0)(src, tgt_in, labels, _gen(14))
    assert _decoder_input_matches_labels(out.tgt_in.ids, out.labels)
    src_changed, tgt_changed = out.src.ids.ne(src), out.labels.ne(labels)
    assert src_changed.any() and tgt_changed.any()
    specials = torch.tensor([PAD, BOS, EOS, UNK])
    assert not torch.isin(out.src.ids[src_changed], specials).any() and (out.src.ids < 10).all()
    assert not torch.isin(out.labels[tgt_changed], specials).any()
    assert (out.labels[tgt_changed] >= 10).any()  # drawn from the larger target vocabulary
    assert torch.equal(out.labels.eq(EOS), labels.eq(EOS)) and torch.equal(out.src.ids.eq(PAD), src.eq(PAD))


def test_switchout_target_temperature_zero_keeps_the_target() -> None:
    src, tgt_in, labels = _batch(16)
    out = _augmenter("switchout", switchout_tau=5.0, switchout_tau_target=0.0)(src, tgt_in, labels, _gen(15))
    assert torch.equal(out.labels, labels) and torch.equal(out.tgt_in.ids, tgt_in)
    assert out.src.ids.ne(src).any()


def test_bad_inputs_raise_value_errors() -> None:
    aug = _augmenter("seqmix")
    src, tgt_in, labels = _batch(4)
    with pytest.raises(ValueError, match="batch sizes"):
        aug(src[:3], tgt_in, labels)
    with pytest.raises(ValueError, match="one shape"):
        aug(src, tgt_in[:, :-1], labels)
    with pytest.raises(ValueError, match="LongTensor"):
        aug(src.float(), tgt_in, labels)
    with pytest.raises(ValueError, match="vocab_size"):
        SeqMixAugmenter(SeqMixConfig(), PAD, UNK, 3, special_ids=(BOS, EOS))
    with pytest.raises(ValueError, match="SwitchOut"):
        SeqMixAugmenter(SeqMixConfig(variant="switchout"), PAD, UNK, 5, special_ids=(BOS, EOS))


@pytest.mark.parametrize(
    ("field", "value"),
    [("variant", "mixup"), ("partner", "nearest"), ("partner_extent", "partner"), ("alpha", 0.0), ("word_dropout_p", 1.5),
     ("switchout_tau", -1.0), ("switchout_tau_target", -0.5), ("label_smoothing", 1.0)],
)  # fmt: skip
def test_config_validation(field: str, value) -> None:
    with pytest.raises(ValueError, match=field):
        SeqMixConfig(**{field: value})


def test_config_round_trip() -> None:
    config = SeqMixConfig(variant="switchout", switchout_tau=0.8, partner="length")
    assert SeqMixConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        SeqMixConfig.from_dict({"variant": "none", "beta": 1})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", VARIANTS)
def test_cuda_batches_with_cuda_or_cpu_generators(variant: str) -> None:
    aug = _augmenter(variant, partner="length")
    src, tgt_in, labels = (t.cuda() for t in _batch(16))
    for generator in (torch.Generator(device="cuda").manual_seed(0), torch.Generator().manual_seed(0), None):
        out = aug(src, tgt_in, labels, generator)
        assert out.src.ids.is_cuda and out.labels.is_cuda and out.tgt_in.mask.is_cuda
        if out.label_weight is not None:
            assert out.label_weight.is_cuda and out.partner_labels.is_cuda
