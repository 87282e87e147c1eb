"""Tests of our seq2seq models (LSTM with attention + copy, Transformer), one matrix run by every test."""

from __future__ import annotations

import itertools

import pytest
import torch

from deltamix.core.mixed_tokens import MixedTokens
from deltamix.models.base import Seq2SeqModel
from deltamix.models.lstm import LSTMSeq2Seq, LSTMSeq2SeqConfig
from deltamix.models.transformer import TransformerSeq2Seq, TransformerSeq2SeqConfig

V = 12
PAD, BOS, EOS = 0, 1, 2


def tiny_lstm(copy: bool = True, dropout: float = 0.0) -> LSTMSeq2Seq:
    return LSTMSeq2Seq(
        LSTMSeq2SeqConfig(vocab_size=V, embedding_dim=8, hidden_size=16, dropout=dropout, copy=copy)
    )


def tiny_transformer(dropout: float = 0.0) -> TransformerSeq2Seq:
    return TransformerSeq2Seq(
        TransformerSeq2SeqConfig(
            vocab_size=V,
            d_model=16,
            num_heads=2,
            num_encoder_layers=1,
            num_decoder_layers=1,
            feedforward_dim=32,
            dropout=dropout,
        )
    )


MODELS = {
    "lstm-copy": lambda: tiny_lstm(),
    "lstm-nocopy": lambda: tiny_lstm(copy=False),
    "transformer": tiny_transformer,
}


@pytest.fixture(params=sorted(MODELS))
def model(request: pytest.FixtureRequest) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS[request.param]().eval()


SRC = torch.tensor([[5, 6, 7, EOS], [8, EOS, PAD, PAD]])
TGT_IN = torch.tensor([[BOS, 9, 10], [BOS, 11, PAD]])


def test_implements_the_protocol(model: torch.nn.Module) -> None:
    assert isinstance(model, Seq2SeqModel)


def test_forward_shape_and_normalised(model: torch.nn.Module) -> None:
    lprobs = model(MixedTokens.plain(SRC, PAD), MixedTokens.plain(TGT_IN, PAD))
    assert lprobs.shape == (2, 3, V)
    torch.testing.assert_close(lprobs.exp().sum(-1), torch.ones(2, 3))


def test_padding_does_not_change_outputs(model: torch.nn.Module) -> None:
    """The short example alone gives the same log-probs as when padded in a batch with a longer one."""
    batched = model(MixedTokens.plain(SRC, PAD), MixedTokens.plain(TGT_IN, PAD))
    alone = model(MixedTokens.plain(SRC[1:, :2], PAD), MixedTokens.plain(TGT_IN[1:, :2], PAD))
    torch.testing.assert_close(batched[1, :2], alone[0], rtol=1e-5, atol=1e-5)


def test_mixed_with_weight_one_equals_unmixed(model: torch.nn.Module) -> None:
    """Weight 1 on the main tokens (partners of the same lengths, so the union mask is unchanged)."""
    partner_src = torch.tensor([[9, 10, 4, EOS], [4, EOS, PAD, PAD]])
    partner_tgt = torch.tensor([[BOS, 4, 5], [BOS, 6, PAD]])
    src = MixedTokens(SRC, SRC.ne(PAD), partner_src, torch.ones(SRC.shape))
    tgt = MixedTokens(TGT_IN, TGT_IN.ne(PAD), partner_tgt, torch.ones(TGT_IN.shape))
    plain = model(MixedTokens.plain(SRC, PAD), MixedTokens.plain(TGT_IN, PAD))
    torch.testing.assert_close(model(src, tgt), plain, rtol=1e-5, atol=1e-5)


def test_mixing_is_linear_in_the_embeddings(model: torch.nn.Module) -> None:
    """A half/half mixture of a sequence with itself is the sequence."""
    src = MixedTokens(SRC, SRC.ne(PAD), SRC.clone(), torch.full(SRC.shape, 0.5))
    tgt = MixedTokens(TGT_IN, TGT_IN.ne(PAD), TGT_IN.clone(), torch.full(TGT_IN.shape, 0.5))
    plain = model(MixedTokens.plain(SRC, PAD), MixedTokens.plain(TGT_IN, PAD))
    torch.testing.assert_close(model(src, tgt), plain, rtol=1e-5, atol=1e-5)


def test_greedy_equals_beam_one(model: torch.nn.Module) -> None:
    torch.manual_seed(1)
    src = torch.randint(4, V, (6, 5))
    greedy = model.generate(src, max_length=8)
    from deltamix.models.decoding import beam_search

    assert beam_search(model, src, max_length=8, beam_size=1) == greedy


def _two_layer_transformer() -> TransformerSeq2Seq:
    torch.manual_seed(3)
    config = TransformerSeq2SeqConfig(
        vocab_size=V, d_model=16, num_heads=2, num_encoder_layers=2, num_decoder_layers=2, feedforward_dim=32
    )
    return TransformerSeq2Seq(config).eval()


@pytest.mark.parametrize("two_layers", [False, True])
def test_decode_steps_equal_the_teacher_forced_pass(model: torch.nn.Module, two_layers: bool) -> None:
    """Step-by-step decoding (the Transformer's per-layer cache) gives the forward pass's log-probs."""
    if two_layers:
        model = _two_layer_transformer()
    torch.manual_seed(4)
    tgt_in = torch.cat([torch.full((2, 1), BOS), torch.randint(3, V, (2, 5))], 1)
    with torch.no_grad():
        expected = model(MixedTokens.plain(SRC, PAD), MixedTokens.plain(tgt_in, PAD))  # 2 x 6 x V
        state = model.start_decoding(SRC)
        for t in range(tgt_in.size(1)):
            lprobs, state = model.decode_step(state, tgt_in[:, t])
            torch.testing.assert_close(lprobs, expected[:, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("two_layers", [False, True])
def test_batched_beam_search_equals_one_input_at_a_time(model: torch.nn.Module, two_layers: bool) -> None:
    """Inputs that finish early leave the batch; that must not change anyone's output."""
    if two_layers:
        model = _two_layer_transformer()
    from deltamix.models.decoding import beam_search

    class EndsAtSourceLength:  # the model, made to end each output after as many steps as its source
        pad_id, bos_id, eos_id = PAD, BOS, EOS

        def __init__(self) -> None:
            self.rows: list[int] = []  # hypotheses decoded at each step

        def start_decoding(self, src_ids: torch.Tensor) -> dict:
            state = model.start_decoding(src_ids)
            return {**state, "end": src_ids.ne(PAD).sum(1), "step": torch.zeros_like(src_ids[:, 0])}

        def decode_step(self, state: dict, prev: torch.Tensor) -> tuple[torch.Tensor, dict]:
            self.rows.append(prev.numel())
            inner = {k: v for k, v in state.items() if k not in ("end", "step")}
            lprobs, inner = model.decode_step(inner, prev)
            step = state["step"] + 1
            eos_bonus = torch.where(step >= state["end"], 30.0, -30.0).unsqueeze(1) * (torch.arange(V) == EOS)
            return (lprobs + eos_bonus).log_softmax(-1), {**inner, "end": state["end"], "step": step}

    torch.manual_seed(5)
    src = torch.cat([torch.randint(3, V, (12, 4)), torch.full((12, 1), EOS)], 1)
    src[::3, 2:] = torch.tensor([EOS, PAD, PAD])  # some shorter, padded inputs (3 tokens, 5 for the rest)
    ends_early = EndsAtSourceLength()
    batched = beam_search(ends_early, src, max_length=7, beam_size=3, length_penalty=0.6)
    alone = [
        beam_search(
            EndsAtSourceLength(), row[row.ne(PAD)].unsqueeze(0), max_length=7, beam_size=3, length_penalty=0.6
        )[0]
        for row in src
    ]
    assert batched == alone
    assert ends_early.rows == [36] * 3 + [24] * 2  # the 4 short inputs left the batch after step 3


def _sequence_scores(
    model: torch.nn.Module, src: torch.Tensor, outputs: list[list[int]], max_length: int, lp: float
) -> list[float]:
    """Beam-search scores of complete outputs: an output shorter than max_length ends with EOS."""
    labels = [[*out, EOS] if len(out) < max_length else out for out in outputs]
    width = max(len(row) for row in labels)
    label_ids = torch.tensor([row + [PAD] * (width - len(row)) for row in labels])
    tgt_in = torch.tensor([([BOS, *row[:-1]] + [PAD] * (width - len(row))) for row in labels])
    lprobs = model(MixedTokens.plain(src.expand(len(outputs), -1), PAD), MixedTokens.plain(tgt_in, PAD))
    token = lprobs.gather(2, label_ids.unsqueeze(2)).squeeze(2).masked_fill(label_ids.eq(PAD), 0.0)
    lengths = label_ids.ne(PAD).sum(1).float()
    return (token.sum(1) / lengths.pow(lp)).tolist()


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_exhaustive_beam_finds_the_best_sequence(model: torch.nn.Module, length_penalty: float) -> None:
    """With a beam wider than the hypothesis space, beam search is exact: compare with brute force."""
    max_length = 3
    src = torch.tensor([[5, 6, EOS]])
    tokens = [i for i in range(V) if i not in (PAD, BOS, EOS)]
    candidates = [list(seq) for n in range(max_length + 1) for seq in itertools.product(tokens, repeat=n)]
    with torch.no_grad():
        scores = _sequence_scores(model, src, candidates, max_length, length_penalty)
    best = candidates[max(range(len(candidates)), key=scores.__getitem__)]
    found = model.generate(
        src, max_length=max_length, beam_size=(len(tokens) + 1) ** max_length, length_penalty=length_penalty
    )
    assert found == [best]


def test_beam_outputs_are_valid(model: torch.nn.Module) -> None:
    torch.manual_seed(2)
    src = torch.cat([torch.randint(4, V, (5, 4)), torch.full((5, 1), EOS)], 1)
    outputs = model.generate(src, max_length=6, beam_size=3, length_penalty=0.6)
    assert len(outputs) == 5
    for out in outputs:
        assert len(out) <= 6
        assert all(0 <= t < V and t not in (PAD, BOS, EOS) for t in out)


def test_copy_gate_open_puts_all_mass_on_source_tokens() -> None:
    model = tiny_lstm().eval()
    with torch.no_grad():
        model.copy_gate.bias.fill_(50.0)
    lprobs = model(MixedTokens.plain(SRC, PAD), MixedTokens.plain(TGT_IN, PAD))
    on_source = lprobs.exp()[0][:, [5, 6, 7, EOS]].sum(-1)
    torch.testing.assert_close(on_source, torch.ones(3), rtol=1e-4, atol=1e-4)


def test_mixed_source_copies_softly() -> None:
    """With the copy gate open, a source mixed at weight w copies its tokens in proportion w : 1 - w."""
    model = tiny_lstm().eval()
    with torch.no_grad():
        model.copy_gate.bias.fill_(50.0)
    ids, partner = torch.tensor([[5, 5, 5]]), torch.tensor([[7, 7, 7]])
    src = MixedTokens(ids, ids.ne(PAD), partner, torch.full((1, 3), 0.7))
    probs = model(src, MixedTokens.plain(torch.tensor([[BOS, 9]]), PAD)).exp()
    torch.testing.assert_close(probs[0, :, 5], torch.full((2,), 0.7), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(probs[0, :, 7], torch.full((2,), 0.3), rtol=1e-4, atol=1e-4)


def test_lstm_with_copy_learns_to_copy_in_a_few_steps() -> None:
    """Copying sequences of tokens never seen as targets: only the copy mechanism can do it."""
    torch.manual_seed(0)
    model = tiny_lstm()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(0)
    train_tokens, test_tokens = torch.arange(4, 9), torch.arange(9, V)  # test tokens never seen as targets

    def batch(tokens: torch.Tensor, n: int) -> torch.Tensor:
        return tokens[torch.randint(len(tokens), (n, 2), generator=generator)]

    for _ in range(60):
        seq = batch(train_tokens, 16)
        src = MixedTokens.plain(torch.cat([seq, torch.full((16, 1), EOS)], 1), PAD)
        tgt_in = MixedTokens.plain(torch.cat([torch.full((16, 1), BOS), seq], 1), PAD)
        labels = torch.cat([seq, torch.full((16, 1), EOS)], 1)
        loss = -model(src, tgt_in).gather(2, labels.unsqueeze(2)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    seq = batch(test_tokens, 50)
    outputs = model.generate(torch.cat([seq, torch.full((50, 1), EOS)], 1), max_length=5)
    accuracy = sum(out == row for out, row in zip(outputs, seq.tolist(), strict=True)) / 50
    assert accuracy >= 0.9


@pytest.mark.parametrize("bad", [{"vocab_size": 0}, {"dropout": 1.0}, {"eos_id": 99}])
def test_lstm_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError):
        LSTMSeq2SeqConfig(**{"vocab_size": V, **bad})


@pytest.mark.parametrize(
    "bad", [{"d_model": 10, "num_heads": 4}, {"num_encoder_layers": 0}, {"dropout": -0.1}]
)
def test_transformer_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError):
        TransformerSeq2SeqConfig(**{"vocab_size": V, **bad})


def test_empty_source_is_rejected(model: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="at least one token"):
        model(MixedTokens.plain(torch.zeros(1, 2, dtype=torch.long), PAD), MixedTokens.plain(TGT_IN[:1], PAD))
