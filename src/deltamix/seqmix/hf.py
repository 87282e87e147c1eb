"""`HFSeq2SeqAdapter`: any Hugging Face encoder-decoder (T5, BART, mT5, Marian, ...) as a SeqMix `Seq2SeqModel`.

Mixed inputs reach the model through ``inputs_embeds`` / ``decoder_inputs_embeds``: the adapter embeds
the soft one-hot mixture with the model's own (possibly scaled) embedding modules, so the model itself is
used unchanged and can be saved with ``save_pretrained`` as usual.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from deltamix.core.errors import DeltamixError
from deltamix.core.mixed_tokens import MixedTokens
from deltamix.data.tokenization import HFTokenizer


def _special_id(model: nn.Module, *names: str) -> int:
    """The first of ``names`` set on the model config or its generation config (transformers v5 keeps
    some, e.g. T5's ``decoder_start_token_id``, only in one of them); a list (several EOS) gives its first."""
    sources = [model.config, getattr(model, "generation_config", None)]
    for name in names:
        for source in sources:
            value = getattr(source, name, None) if source is not None else None
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            if value is not None:
                return int(value)
    raise ValueError(
        f"the model config has no {' or '.join(names)}; set it (model.config.{names[0]} = ...) before wrapping"
    )


class HFSeq2SeqAdapter(nn.Module):
    """Wrap a ``transformers`` encoder-decoder ``PreTrainedModel`` (with an LM head) for SeqMix training.

    Token conventions are the model's: ``pad_id`` = ``pad_token_id``, ``eos_id`` = ``eos_token_id`` and
    ``bos_id`` = ``decoder_start_token_id`` (else ``bos_token_id``, as ``generate`` does), read from the
    model config or its generation config: what the decoder input starts with (the pad id for T5, EOS
    for BART). Build ``tgt_in = [bos_id] + y`` and
    ``labels = y + [eos_id]`` from the model's tokenizer.

    Padding rule for mixed inputs (`deltamix.core.mixed_tokens`): the pad token contributes a zero vector,
    so a position that is padding in one sequence is the other sequence's token scaled by its weight.
    (HF pad embeddings are not zero, e.g. T5's, so the adapter zeroes them itself; the decoder's first
    position is kept as it is, since T5 starts decoding with the pad id.) Unmixed inputs take exactly
    the model's own embedding path.

    Args:
        model: e.g. ``T5ForConditionalGeneration`` or ``BartForConditionalGeneration``.

    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> config = T5Config(vocab_size=32, d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2,
    ...                   decoder_start_token_id=0)
    >>> adapter = HFSeq2SeqAdapter(T5ForConditionalGeneration(config))
    >>> src = MixedTokens.plain(torch.tensor([[5, 6, 1]]), adapter.pad_id)
    >>> adapter(src, MixedTokens.plain(torch.tensor([[0, 7]]), adapter.pad_id)).shape
    torch.Size([1, 2, 32])
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        config = getattr(model, "config", None)
        if config is None or not getattr(config, "is_encoder_decoder", False):
            raise ValueError(
                "HFSeq2SeqAdapter needs a transformers encoder-decoder model (config.is_encoder_decoder)"
            )
        self.model = model
        self.pad_id = _special_id(model, "pad_token_id")
        self.eos_id = _special_id(model, "eos_token_id")
        # As model.generate: the decoder start token, else BOS.
        self.bos_id = _special_id(model, "decoder_start_token_id", "bos_token_id")

    @property
    def vocab_size(self) -> int:
        """Size V of the output vocabulary."""
        return int(self.model.get_output_embeddings().weight.shape[0])

    def _embed(self, embedding: nn.Module, tokens: MixedTokens, keep_first: bool) -> Tensor:
        """Embeddings [B, T, D] of (possibly mixed) tokens; see the class docstring for the pad rule."""
        if not tokens.is_mixed:
            return embedding(tokens.ids)
        weight = tokens.weight.unsqueeze(-1)  # B x T x 1
        parts = []
        for ids in (tokens.ids, tokens.partner_ids):
            real = ids.ne(self.pad_id)
            if keep_first:
                real[:, 0] = True
            parts.append(embedding(ids) * real.unsqueeze(-1))  # B x T x D
        return weight.to(parts[0].dtype) * parts[0] + (1.0 - weight.to(parts[0].dtype)) * parts[1]

    def forward(self, src: MixedTokens, tgt_in: MixedTokens) -> Tensor:
        """Teacher-forced log-probabilities.

        Args:
            src: encoder input, ids [B, S] (mixed or not), mask [B, S].
            tgt_in: decoder input starting with ``bos_id``, ids [B, T] (mixed or not), mask [B, T].

        Returns:
            FloatTensor [B, T, V], log-softmax of the LM head's logits.
        """
        out = self.model(**self.model_inputs(src, tgt_in))
        return torch.log_softmax(out.logits.float(), dim=-1)

    def model_inputs(self, src: MixedTokens, tgt_in: MixedTokens) -> dict[str, Tensor | bool]:
        """The keyword arguments of the wrapped model's forward for (possibly mixed) tokens: embeddings
        ``inputs_embeds`` [B, S, D] and ``decoder_inputs_embeds`` [B, T, D] with their attention masks.

        What `forward` calls the model with; a caller that must run the model through a wrapper of its
        own (DDP, accelerate: `deltamix.seqmix.hf_trainer`) calls that wrapper with these.
        """
        encoder_embedding = self.model.get_encoder().get_input_embeddings()
        decoder_embedding = self.model.get_decoder().get_input_embeddings()
        # The first decoder position always holds the start token (for T5 the pad id), so it stays
        # visible; trailing pads only affect their own (ignored) positions under the causal mask.
        decoder_mask = tgt_in.mask.clone()
        decoder_mask[:, 0] = True
        return {
            "inputs_embeds": self._embed(encoder_embedding, src, keep_first=False),
            "attention_mask": src.mask.long(),
            "decoder_inputs_embeds": self._embed(decoder_embedding, tgt_in, keep_first=True),
            "decoder_attention_mask": decoder_mask.long(),
            "use_cache": False,
        }

    @torch.no_grad()
    def generate(
        self, src_ids: Tensor, max_length: int, beam_size: int = 1, length_penalty: float = 1.0
    ) -> list[list[int]]:
        """Decode with ``model.generate`` (greedy for ``beam_size=1``, else beam search).

        Args:
            src_ids: LongTensor [B, S], padded with ``pad_id``.
            max_length: the most tokens generated per example (EOS included).
            beam_size: number of beams.
            length_penalty: beam-search length penalty (exponent on the length, as in transformers).

        Returns:
            For each example, the generated ids without the start token, EOS and padding.
        """
        if max_length < 1 or beam_size < 1:
            raise ValueError(f"max_length and beam_size must be >= 1, got {max_length} and {beam_size}")
        sequences = self.model.generate(
            input_ids=src_ids,
            attention_mask=src_ids.ne(self.pad_id).long(),
            max_new_tokens=max_length,
            num_beams=beam_size,
            length_penalty=length_penalty,
            do_sample=False,
            decoder_start_token_id=self.bos_id,
            eos_token_id=self.eos_id,
            pad_token_id=self.pad_id,
        )
        outputs = []
        for row in sequences[:, 1:].tolist():  # column 0 is the decoder start token
            if self.eos_id in row:
                row = row[: row.index(self.eos_id)]
            outputs.append([i for i in row if i != self.pad_id])
        return outputs


def build_hf_model(name_or_path: str, tokenizer_path: str | None = None) -> tuple[Any, Any]:
    """A Hugging Face encoder-decoder (id or local path) wrapped for SeqMix, and its own tokenizer in
    our interface (`deltamix.data.tokenization.HFTokenizer`), loaded from ``tokenizer_path`` if given
    (a run keeps it apart from the model, in ``tokenizer/``), else from ``name_or_path``.

    Raises:
        DeltamixError: the model or its tokenizer cannot be loaded (offline and not cached, unknown
            id, not an encoder-decoder).
    """
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or name_or_path)
    except (OSError, ValueError) as error:
        raise DeltamixError(
            f"could not load the Hugging Face encoder-decoder {name_or_path!r} ({error}); give a local "
            "folder written by save_pretrained, or an id that is cached or reachable"
        ) from error
    adapter = HFSeq2SeqAdapter(model)
    return adapter, HFTokenizer(tokenizer, decoder_start_id=adapter.bos_id)
