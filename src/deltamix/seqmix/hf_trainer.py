"""SeqMix and its family inside ``transformers.Seq2SeqTrainer``: `SeqMixTrainerMixin` and `SeqMixSeq2SeqTrainer`.

A ``run_translation.py``-style script keeps its data, its ``DataCollatorForSeq2Seq`` (labels padded
with -100) and its ``Seq2SeqTrainingArguments``; it swaps the trainer class and passes a `SeqMixConfig`::

    >>> trainer = SeqMixSeq2SeqTrainer(  # doctest: +SKIP
    ...     model=model, args=args, train_dataset=train, eval_dataset=dev, processing_class=tokenizer,
    ...     data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
    ...     seqmix_config=SeqMixConfig(variant="seqmix", alpha=0.1))

or mixes `SeqMixTrainerMixin` into a Trainer subclass of its own (``class T(SeqMixTrainerMixin,
Seq2SeqTrainer)``). The method is deltamix's one implementation: `SeqMixAugmenter` draws the mixing
(partners, lambda ~ Beta(a, a), max(lambda, 1 - lambda), or the word-dropout / SwitchOut / hard masks),
`HFSeq2SeqAdapter.model_inputs` embeds the soft one-hot mixtures for ``inputs_embeds`` /
``decoder_inputs_embeds``, and `seqmix_loss` scores lambda * CE(Y) + (1 - lambda) * CE(Y') with the
Trainer's ``label_smoothing_factor``.

Mixing happens in ``compute_loss`` and only while the model is training: the Trainer feeds the same
collator's batches to evaluation, which (loss and ``predict_with_generate``'s ``model.generate``) stay
unmixed. Variant ``"none"`` is the Trainer's own ``compute_loss``. Normalisation follows the Trainer:
with ``num_items_in_batch`` (the label tokens of the whole accumulated batch, which transformers passes
to models that accept loss kwargs, e.g. BART and T5) the summed loss is divided by it, as its label
smoother does, so gradient accumulation gives the large-batch gradient; without it the loss is the
per-token mean of the micro-batch (`seqmix_loss`), which the Trainer divides by the accumulation steps.
The mixing of each micro-batch is drawn from a generator seeded by (``args.seed``, global step,
micro-batch), so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from transformers import Seq2SeqTrainer

from deltamix.core.mixed_tokens import MixedBatch
from deltamix.seqmix.augment import SeqMixAugmenter
from deltamix.seqmix.config import SeqMixConfig
from deltamix.seqmix.hf import HFSeq2SeqAdapter
from deltamix.seqmix.loss import seqmix_loss

IGNORE_INDEX = -100  # DataCollatorForSeq2Seq's label padding


def seqmix_augmenter_for(
    config: SeqMixConfig, model: nn.Module, tokenizer: Any | None = None
) -> SeqMixAugmenter:
    """The `SeqMixAugmenter` of a Hugging Face encoder-decoder and its tokenizer.

    Pad, EOS and decoder start ids are the model's (`HFSeq2SeqAdapter`); word dropout's partner is the
    tokenizer's ``unk_token_id`` (the pad id without a tokenizer or an unknown token, as
    `deltamix.data.tokenization.HFTokenizer`); SwitchOut samples below ``len(tokenizer)`` (the model's
    vocabulary size without a tokenizer) and neither replaces nor samples the tokenizer's special ids.

    Raises:
        ValueError: the model is not an encoder-decoder, or ``config`` is not a `SeqMixConfig`.
    """
    if not isinstance(config, SeqMixConfig):
        raise ValueError(f"seqmix_config must be a deltamix.seqmix.SeqMixConfig, got {type(config).__name__}")
    adapter = HFSeq2SeqAdapter(model)
    special = {adapter.pad_id, adapter.eos_id, adapter.bos_id}
    unk_id = None
    vocab_size = adapter.vocab_size
    if tokenizer is not None and hasattr(tokenizer, "all_special_ids"):
        special.update(int(i) for i in tokenizer.all_special_ids)
        unk_id = tokenizer.unk_token_id
        vocab_size = min(vocab_size, len(tokenizer))
    if unk_id is None:
        unk_id = adapter.pad_id
    special.discard(int(unk_id))
    return SeqMixAugmenter(config, adapter.pad_id, int(unk_id), vocab_size, special_ids=sorted(special))


def mixed_batch_from_inputs(
    inputs: dict[str, Any],
    augmenter: SeqMixAugmenter,
    model: nn.Module,
    generator: torch.Generator | None = None,
) -> MixedBatch:
    """The augmented `MixedBatch` of a ``DataCollatorForSeq2Seq`` batch.

    Args:
        inputs: ``input_ids`` [B, S] (padded with the pad id), ``labels`` [B, T] (padded with -100) and
            optionally ``decoder_input_ids`` [B, T] (else made from the labels with the model's
            ``prepare_decoder_input_ids_from_labels``, as the collator does when given the model).
        augmenter: from `seqmix_augmenter_for`.
        model: the (unwrapped) encoder-decoder, for the decoder inputs.
        generator: the source of the mixing's randomness.

    Returns:
        The `MixedBatch`; its labels and partner labels are padded with the pad id, not -100.

    Raises:
        ValueError: a key is missing or the decoder inputs and labels differ in shape.
    """
    for key in ("input_ids", "labels"):
        if key not in inputs:
            raise ValueError(
                f"SeqMix needs {key!r} in every training batch (got {sorted(inputs)}); use "
                "transformers.DataCollatorForSeq2Seq or a collator that follows it"
            )
    pad = augmenter.pad_id
    labels = inputs["labels"]
    tgt_in = inputs.get("decoder_input_ids")
    if tgt_in is None:
        prepare = getattr(model, "prepare_decoder_input_ids_from_labels", None)
        if prepare is None:
            raise ValueError(
                "the batch has no decoder_input_ids and the model cannot make them from labels; pass "
                "model=... to DataCollatorForSeq2Seq"
            )
        tgt_in = prepare(labels=labels)
    if tgt_in.shape != labels.shape:
        raise ValueError(
            f"decoder_input_ids {tuple(tgt_in.shape)} and labels {tuple(labels.shape)} must have one shape"
        )
    labels = labels.masked_fill(labels.eq(IGNORE_INDEX), pad)
    tgt_in = tgt_in.masked_fill(tgt_in.eq(IGNORE_INDEX), pad)
    return augmenter(inputs["input_ids"], tgt_in, labels, generator)


class SeqMixTrainerMixin:
    """Adds SeqMix-family training to a ``transformers`` Trainer subclass (see the module docstring).

    Place it before the Trainer in the bases: ``class T(SeqMixTrainerMixin, Seq2SeqTrainer)``.

    Args:
        seqmix_config: the family member and its settings (keyword argument); its
            ``label_smoothing`` is not read: the Trainer's ``label_smoothing_factor`` is the smoothing
            of both the baseline and the mixed loss.
        *args, **kwargs: passed to the Trainer.

    Raises:
        ValueError: no or a bad ``seqmix_config``, a model that is not an encoder-decoder, or a
            ``compute_loss_func`` with a variant other than "none" (SeqMix owns the loss).
    """

    def __init__(self, *args: Any, seqmix_config: SeqMixConfig | None = None, **kwargs: Any) -> None:
        if seqmix_config is None:
            raise ValueError("SeqMixTrainerMixin needs seqmix_config=SeqMixConfig(...)")
        if not isinstance(seqmix_config, SeqMixConfig):
            raise ValueError(
                f"seqmix_config must be a deltamix.seqmix.SeqMixConfig, got {type(seqmix_config).__name__}"
            )
        super().__init__(*args, **kwargs)
        self.seqmix_config = seqmix_config
        if seqmix_config.variant != "none" and self.compute_loss_func is not None:
            raise ValueError(
                "compute_loss_func cannot be combined with SeqMix (variant "
                f"{seqmix_config.variant!r}), which computes the loss itself"
            )
        unwrapped = self.accelerator.unwrap_model(self.model)
        self.seqmix_adapter = HFSeq2SeqAdapter(unwrapped)
        self.seqmix_augmenter = seqmix_augmenter_for(seqmix_config, unwrapped, self.processing_class)
        self._seqmix_draw = (-1, 0)  # (global step, micro-batches drawn at that step)

    def _seqmix_generator(self, device: torch.device) -> torch.Generator:
        """A generator seeded by (seed, global step, micro-batch of that step)."""
        step, drawn = self._seqmix_draw
        drawn = drawn + 1 if step == self.state.global_step else 0
        self._seqmix_draw = (self.state.global_step, drawn)
        seed = ((self.args.seed * 1_000_003 + self.state.global_step) * 1009 + drawn) % (2**63)
        return torch.Generator(device=device).manual_seed(seed)

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Tensor | Any],
        return_outputs: bool = False,
        num_items_in_batch: Tensor | int | None = None,
    ) -> Tensor | tuple[Tensor, Any]:
        """The SeqMix loss of a training batch; the Trainer's own loss for evaluation and variant "none".

        Returns:
            A scalar (and the model outputs, logits [B, T, V], if ``return_outputs``).
        """
        if self.seqmix_config.variant == "none" or not model.training:
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        unwrapped = self.accelerator.unwrap_model(model)
        batch = mixed_batch_from_inputs(
            inputs, self.seqmix_augmenter, unwrapped, self._seqmix_generator(inputs["input_ids"].device)
        )
        # Through the (possibly wrapped) model the Trainer gave, so DDP and autocast apply as usual.
        outputs = model(**self.seqmix_adapter.model_inputs(batch.src, batch.tgt_in))
        lprobs = torch.log_softmax(outputs.logits.float(), dim=-1)  # B x T x V
        epsilon = float(self.args.label_smoothing_factor)
        pad = self.seqmix_augmenter.pad_id
        if num_items_in_batch is None:
            loss = seqmix_loss(lprobs, batch, epsilon, pad)
        else:
            total = seqmix_loss(lprobs, batch, epsilon, pad, reduction="sum")
            if torch.is_tensor(num_items_in_batch):
                num_items_in_batch = num_items_in_batch.to(total.device)
            loss = total / num_items_in_batch
            if self.args.average_tokens_across_devices and self.model_accepts_loss_kwargs:
                # As Trainer.compute_loss: num_items_in_batch counts every process's tokens.
                tp_size = self.get_tp_size() if hasattr(self, "get_tp_size") else 1
                loss = loss * (
                    self.accelerator.num_processes // tp_size if self.args.n_gpu <= 1 else self.args.n_gpu
                )
        return (loss, outputs) if return_outputs else loss


class SeqMixSeq2SeqTrainer(SeqMixTrainerMixin, Seq2SeqTrainer):
    """``transformers.Seq2SeqTrainer`` with SeqMix-family training (`SeqMixTrainerMixin`)."""


__all__ = [
    "IGNORE_INDEX",
    "SeqMixSeq2SeqTrainer",
    "SeqMixTrainerMixin",
    "mixed_batch_from_inputs",
    "seqmix_augmenter_for",
]
