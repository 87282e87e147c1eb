"""A small Transformer encoder-decoder on `torch.nn` Transformer layers, sized by a config, SeqMix-ready.

Pre-norm layers, sinusoidal positions, one embedding table shared by encoder, decoder and output
projection (a joint source/target vocabulary, as `Seq2SeqModel` has one vocabulary size V).
Embeddings go through `embed_mixed`, so SeqMix mixes them before the positions are added.
Incremental decoding caches, for every decoder layer, its (normalised) inputs at the positions
already decoded, so a step runs the layers and the output projection on the new position only; the
result equals the teacher-forced forward pass (tested).

>>> model = TransformerSeq2Seq(TransformerSeq2SeqConfig(vocab_size=20, d_model=16, num_heads=2,
...     num_encoder_layers=1, num_decoder_layers=1, feedforward_dim=32))
>>> src = MixedTokens.plain(torch.tensor([[5, 6, 2]]), pad_id=0)
>>> model(src, MixedTokens.plain(torch.tensor([[1, 7]]), pad_id=0)).shape
torch.Size([1, 2, 20])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deltamix.core.mixed_tokens import MixedTokens, embed_mixed
from deltamix.models.base import check_model_config
from deltamix.models.decoding import DecoderState, generate
from deltamix.models.fast_dropout import use_fast_dropout


@dataclass
class TransformerSeq2SeqConfig:
    """Sizes of `TransformerSeq2Seq`."""

    vocab_size: int = field(metadata={"help": "size of the joint vocabulary"})
    d_model: int = field(default=256, metadata={"help": "model width"})
    num_heads: int = field(default=4, metadata={"help": "attention heads (must divide d_model)"})
    num_encoder_layers: int = field(default=3, metadata={"help": "encoder layers"})
    num_decoder_layers: int = field(default=3, metadata={"help": "decoder layers"})
    feedforward_dim: int = field(default=512, metadata={"help": "feed-forward inner size"})
    dropout: float = field(default=0.1, metadata={"help": "dropout in every sub-layer and on embeddings"})
    max_positions: int = field(default=512, metadata={"help": "longest source or target sequence"})
    pad_id: int = field(default=0, metadata={"help": "padding id"})
    bos_id: int = field(default=1, metadata={"help": "decoder start id"})
    eos_id: int = field(default=2, metadata={"help": "end-of-sequence id"})

    def __post_init__(self) -> None:
        sizes = ("vocab_size", "d_model", "num_heads", "feedforward_dim", "max_positions")
        check_model_config(self, (*sizes, "num_encoder_layers", "num_decoder_layers"))
        if self.d_model % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide d_model={self.d_model}")

    def to_dict(self) -> dict:
        return asdict(self)


def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """The sinusoidal position table [length, dim] of Vaswani et al. (2017)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)[:, : dim // 2]
    return table


class TransformerSeq2Seq(nn.Module):
    """Transformer encoder-decoder implementing `Seq2SeqModel` and `IncrementalDecoder`."""

    model_type = "transformer"
    config_class = TransformerSeq2SeqConfig

    def __init__(self, config: TransformerSeq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        self.pad_id, self.bos_id, self.eos_id = config.pad_id, config.bos_id, config.eos_id
        d = config.d_model
        self.embedding = nn.Embedding(config.vocab_size, d, padding_idx=config.pad_id)
        nn.init.normal_(self.embedding.weight, std=d**-0.5)
        with torch.no_grad():
            self.embedding.weight[config.pad_id].zero_()
        self.register_buffer("positions", sinusoidal_positions(config.max_positions, d), persistent=False)

        def layer_args() -> dict:
            return {
                "d_model": d,
                "nhead": config.num_heads,
                "dim_feedforward": config.feedforward_dim,
                "dropout": config.dropout,
                "batch_first": True,
                "norm_first": True,
            }

        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(**layer_args()),
            config.num_encoder_layers,
            norm=nn.LayerNorm(d),
            enable_nested_tensor=False,
        )
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(**layer_args()), config.num_decoder_layers, norm=nn.LayerNorm(d)
        )
        self.dropout = nn.Dropout(config.dropout)
        use_fast_dropout(self)  # every nn.Dropout, the layers' too: torch's CPU masks (fast_dropout.py)

    def _embed(self, tokens: MixedTokens) -> Tensor:
        length = tokens.ids.size(1)
        if length > self.config.max_positions:
            raise ValueError(f"sequence of length {length} exceeds max_positions={self.config.max_positions}")
        scaled = embed_mixed(self.embedding, tokens) * math.sqrt(self.config.d_model)
        return self.dropout(scaled + self.positions[:length])  # B x T x D

    def encode(self, src: MixedTokens) -> Tensor:
        """Encoder states [B, S, D]."""
        if bool((src.mask.sum(1) == 0).any()):
            raise ValueError("every source sequence needs at least one token (append EOS to sources)")
        return self.encoder(self._embed(src), src_key_padding_mask=~src.mask)

    def _decode(self, memory: Tensor, memory_mask: Tensor, tgt_in: MixedTokens) -> Tensor:
        length = tgt_in.ids.size(1)
        causal = nn.Transformer.generate_square_subsequent_mask(
            length, device=memory.device, dtype=torch.bool
        )
        out = self.decoder(
            self._embed(tgt_in),
            memory,
            tgt_mask=causal,
            tgt_key_padding_mask=~tgt_in.mask,
            memory_key_padding_mask=~memory_mask,
        )
        return F.log_softmax(F.linear(out, self.embedding.weight).float(), -1)  # B x T x V

    def forward(self, src: MixedTokens, tgt_in: MixedTokens) -> Tensor:
        """Teacher-forced log-probs [B, T, V] for ``src`` [B, S] and ``tgt_in`` [B, T] (BOS first)."""
        return self._decode(self.encode(src), src.mask, tgt_in)

    def start_decoding(self, src_ids: Tensor) -> DecoderState:
        """Encode ``src_ids`` [B, S] for `decode_step`; the per-layer caches start empty [B, 0, D]."""
        src = MixedTokens.plain(src_ids, self.pad_id)
        memory = self.encode(src)
        empty = memory.new_zeros(memory.size(0), 0, memory.size(2))
        caches = {f"layer{i}": empty for i in range(len(self.decoder.layers))}
        return {"memory": memory, "memory_mask": src.mask, **caches}

    def decode_step(self, state: DecoderState, prev_tokens: Tensor) -> tuple[Tensor, DecoderState]:
        """Log-probs [N, V] of the next token after ``prev_tokens`` [N], and the new state.

        Each pre-norm layer's self-attention at the new position t attends to its normalised inputs at
        positions 0..t, so caching those [N, t, D] per layer is exact (eval mode: no dropout)."""
        position = state["layer0"].size(1)
        if position >= self.config.max_positions:
            raise ValueError(f"cannot decode past max_positions={self.config.max_positions}")
        x = self.embedding(prev_tokens) * math.sqrt(self.config.d_model) + self.positions[position]
        x = self.dropout(x).unsqueeze(1)  # N x 1 x D
        memory_padding = ~state["memory_mask"]
        new_state = dict(state)
        for i, layer in enumerate(self.decoder.layers):
            normed = layer.norm1(x)
            seen = torch.cat([state[f"layer{i}"], normed], 1)  # N x (t+1) x D
            new_state[f"layer{i}"] = seen
            x = x + layer.dropout1(layer.self_attn(normed, seen, seen, need_weights=False)[0])
            x = x + layer._mha_block(layer.norm2(x), state["memory"], None, memory_padding)
            x = x + layer._ff_block(layer.norm3(x))
        out = self.decoder.norm(x.squeeze(1))  # N x D
        return F.log_softmax(F.linear(out, self.embedding.weight).float(), -1), new_state

    def generate(
        self, src_ids: Tensor, max_length: int, beam_size: int = 1, length_penalty: float = 1.0
    ) -> list[list[int]]:
        """Greedy (``beam_size=1``) or beam-search outputs for ``src_ids`` [B, S], without BOS/EOS/PAD.
        Call ``model.eval()`` first to decode without dropout."""
        return generate(self, src_ids, max_length, beam_size, length_penalty)
