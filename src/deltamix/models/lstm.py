"""The SCAN model of GECA and SeqMix: bidirectional LSTM encoder, LSTM decoder with attention and copy.

Sizes follow the papers (Andreas 2020; Guo, Kim and Rush 2020): one bidirectional encoder layer,
hidden size 512, embeddings 64, dropout 0.5. Design choices, stated because the papers leave them open:

- The two encoder directions have ``hidden_size`` units each and are summed, so encoder states and
  the decoder state have the same size; the decoder starts from the summed final encoder states.
- Luong-style attention without input feeding: the decoder LSTM reads only the previous token, and
  attention (bilinear, over the encoder states) is applied to its outputs. Teacher-forced training
  therefore runs the decoder LSTM over the whole target in one call, with no Python loop over time.
- Copy as in pointer-generator networks: a gate ``g = sigmoid(w [h; c])`` mixes the vocabulary
  softmax with the attention scattered onto the source tokens (`scatter_mixed`, so a SeqMix-mixed
  source copies each of its two tokens in proportion to its weight). This needs a vocabulary shared
  by source and target.

>>> model = LSTMSeq2Seq(LSTMSeq2SeqConfig(vocab_size=20, hidden_size=16, embedding_dim=8))
>>> src = MixedTokens.plain(torch.tensor([[5, 6, 2]]), pad_id=0)
>>> model(src, MixedTokens.plain(torch.tensor([[1, 7]]), pad_id=0)).shape
torch.Size([1, 2, 20])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from deltamix.core.mixed_tokens import MixedTokens, embed_mixed, scatter_mixed
from deltamix.core.precision import hardware_has_bf16
from deltamix.models.base import check_model_config
from deltamix.models.decoding import DecoderState, generate


@cache
def _cpu_has_bf16() -> bool:
    return hardware_has_bf16("cpu")


class AutocastSafeLSTM(nn.LSTM):
    """`nn.LSTM` that also runs under CPU bf16 autocast on CPUs without native bf16.

    oneDNN's LSTM refuses bf16 on such CPUs ("could not create a primitive descriptor"); there the
    recurrence runs in float32 (bf16 would only be emulated), the rest of the model stays in autocast.
    Elsewhere it is `nn.LSTM` unchanged (same parameters, same numbers).
    """

    def forward(
        self, input: Tensor | PackedSequence, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor | PackedSequence, tuple[Tensor, Tensor]]:
        """`nn.LSTM.forward` (input [B, T, E] or packed; states [L*D, B, H])."""
        emulated_bf16 = (
            torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16
            and not _cpu_has_bf16()
        )
        if not emulated_bf16:
            return super().forward(input, hx)
        state = None if hx is None else tuple(part.float() for part in hx)
        with torch.autocast("cpu", enabled=False):
            return super().forward(input.float(), state)


@dataclass
class LSTMSeq2SeqConfig:
    """Sizes of `LSTMSeq2Seq` (defaults: the SCAN model of GECA / SeqMix)."""

    vocab_size: int = field(metadata={"help": "size of the vocabulary shared by source and target"})
    embedding_dim: int = field(default=64, metadata={"help": "token embedding size"})
    hidden_size: int = field(default=512, metadata={"help": "LSTM size (each encoder direction and decoder)"})
    dropout: float = field(default=0.5, metadata={"help": "dropout on embeddings and decoder outputs"})
    copy: bool = field(default=True, metadata={"help": "add a copy mechanism over source tokens"})
    pad_id: int = field(default=0, metadata={"help": "padding id (its embedding stays zero)"})
    bos_id: int = field(default=1, metadata={"help": "decoder start id"})
    eos_id: int = field(default=2, metadata={"help": "end-of-sequence id"})

    def __post_init__(self) -> None:
        check_model_config(self, ("vocab_size", "embedding_dim", "hidden_size"))

    def to_dict(self) -> dict:
        return asdict(self)


class LSTMSeq2Seq(nn.Module):
    """Attention + copy LSTM encoder-decoder implementing `Seq2SeqModel` and `IncrementalDecoder`."""

    model_type = "lstm"
    config_class = LSTMSeq2SeqConfig

    def __init__(self, config: LSTMSeq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        self.pad_id, self.bos_id, self.eos_id = config.pad_id, config.bos_id, config.eos_id
        v, e, h = config.vocab_size, config.embedding_dim, config.hidden_size
        self.src_embedding = nn.Embedding(v, e, padding_idx=config.pad_id)
        self.tgt_embedding = nn.Embedding(v, e, padding_idx=config.pad_id)
        self.encoder = AutocastSafeLSTM(e, h, batch_first=True, bidirectional=True)
        self.decoder = AutocastSafeLSTM(e, h, batch_first=True)
        self.attention = nn.Linear(h, h, bias=False)  # bilinear score h_t^T W s
        self.combine = nn.Linear(2 * h, h)
        self.output = nn.Linear(h, v)
        self.copy_gate = nn.Linear(2 * h, 1) if config.copy else None
        self.dropout = nn.Dropout(config.dropout)

    # ----------------------------------------------------------------------------------- encoder
    def encode(self, src: MixedTokens) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Encoder states [B, S, H] (zero at padding) and the decoder's initial (h, c), each [1, B, H].

        Raises:
            ValueError: if a sequence is empty (its mask has no token).
        """
        lengths = src.mask.sum(1)
        if bool((lengths == 0).any()):
            raise ValueError("every source sequence needs at least one token (append EOS to sources)")
        embedded = self.dropout(embed_mixed(self.src_embedding, src))  # B x S x E
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, c) = self.encoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.ids.size(1))  # B x S x 2H
        hidden = self.config.hidden_size
        states = out[..., :hidden] + out[..., hidden:]  # sum of the two directions
        return states, (h[0:1] + h[1:2], c[0:1] + c[1:2])

    # ----------------------------------------------------------------------------------- decoder
    def _final_lprobs(self, dec: Tensor, states: Tensor, src: MixedTokens) -> Tensor:
        """From decoder outputs [B, T, H] to final log-probs [B, T, V] (attention, output, copy)."""
        scores = torch.bmm(self.attention(dec), states.transpose(1, 2))  # B x T x S
        scores = scores.masked_fill(~src.mask.unsqueeze(1), float("-inf"))
        attention = scores.softmax(-1)
        context = torch.bmm(attention, states)  # B x T x H
        both = torch.cat([dec, context], -1)  # B x T x 2H
        # The distribution is formed in float32 also under bf16 autocast: its log feeds the loss.
        logits = self.output(self.dropout(torch.tanh(self.combine(both)))).float()  # B x T x V
        if self.copy_gate is None:
            return F.log_softmax(logits, -1)
        gate = torch.sigmoid(self.copy_gate(both).float())  # B x T x 1
        copied = scatter_mixed(attention.float(), src, self.config.vocab_size)  # B x T x V
        probs = (1.0 - gate) * logits.softmax(-1) + gate * copied
        return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()

    def forward(self, src: MixedTokens, tgt_in: MixedTokens) -> Tensor:
        """Teacher-forced log-probs.

        Args:
            src: source tokens [B, S] (mixed or not; ``mask`` must be a prefix mask).
            tgt_in: decoder input tokens [B, T] starting with BOS (mixed or not).

        Returns:
            FloatTensor [B, T, V]: log of the final (generate + copy) distribution.
        """
        states, initial = self.encode(src)
        embedded = self.dropout(embed_mixed(self.tgt_embedding, tgt_in))  # B x T x E
        dec, _ = self.decoder(embedded, initial)  # B x T x H
        return self._final_lprobs(dec, states, src)

    # ----------------------------------------------------------------------------------- decoding
    def start_decoding(self, src_ids: Tensor) -> DecoderState:
        """Encode ``src_ids`` [B, S] for `decode_step`."""
        src = MixedTokens.plain(src_ids, self.pad_id)
        states, (h, c) = self.encode(src)
        return {"states": states, "src_ids": src_ids, "h": h[0], "c": c[0]}

    def decode_step(self, state: DecoderState, prev_tokens: Tensor) -> tuple[Tensor, DecoderState]:
        """Log-probs [N, V] of the next token after ``prev_tokens`` [N], and the new state."""
        embedded = self.dropout(self.tgt_embedding(prev_tokens)).unsqueeze(1)  # N x 1 x E
        dec, (h, c) = self.decoder(embedded, (state["h"].unsqueeze(0), state["c"].unsqueeze(0)))
        src = MixedTokens.plain(state["src_ids"], self.pad_id)
        lprobs = self._final_lprobs(dec, state["states"], src)[:, 0]
        return lprobs, {**state, "h": h[0], "c": c[0]}

    def generate(
        self, src_ids: Tensor, max_length: int, beam_size: int = 1, length_penalty: float = 1.0
    ) -> list[list[int]]:
        """Greedy (``beam_size=1``) or beam-search outputs for ``src_ids`` [B, S], without BOS/EOS/PAD.
        Call ``model.eval()`` first to decode without dropout."""
        return generate(self, src_ids, max_length, beam_size, length_penalty)
