"""A model measured across the processes of an accelerate job: teacher-forced loss and batched decoding.

Inputs are sorted by length and cut into batches (`length_sorted_batches`); each process takes its
share of the batches, and the results are reduced or gathered so that every process returns the same.
`deltamix.training.loop.Seq2SeqTrainingLoop` calls these with its model and settings.

>>> loss = teacher_forced_loss(accelerator, model, examples, collate, 256, 0.1, pad_id, autocast)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from torch import Tensor, nn
from tqdm.auto import tqdm

from deltamix.data.batching import Tokenizer
from deltamix.seqmix.loss import seqmix_loss
from deltamix.training.augmentation import plain_batch
from deltamix.training.decoding import DecodingSettings, decode_batch, length_sorted_batches


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block, back in its former mode after it."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def teacher_forced_loss(
    accelerator: Accelerator,
    model: nn.Module,
    examples: Sequence[tuple[list[int], list[int]]],
    collate: Callable[[list[Any]], dict[str, Tensor]],
    batch_size: int,
    label_smoothing: float,
    pad_id: int,
    autocast: AbstractContextManager,
) -> float:
    """Label-smoothed cross-entropy per target token of encoded (source, target) ``examples``.

    Args:
        model: the unwrapped model, in eval mode.
        collate: pads a list of examples to ``src_ids`` [B, S], ``tgt_in`` and ``labels`` [B, T].
        autocast: the precision context the forward pass runs in.
    """
    batches = length_sorted_batches([max(len(s), len(t) + 1) for s, t in examples], batch_size)
    device = accelerator.device
    totals = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, token count
    with accelerator.split_between_processes(batches) as mine:
        for indices in mine:
            batch = {k: v.to(device) for k, v in collate([examples[i] for i in indices]).items()}
            mixed = plain_batch(batch["src_ids"], batch["tgt_in"], batch["labels"], pad_id)
            with autocast:
                lprobs = model(mixed.src, mixed.tgt_in).float()  # B x T x V
            totals[0] += seqmix_loss(lprobs, mixed, label_smoothing, pad_id, "sum").double()
            totals[1] += batch["labels"].ne(pad_id).sum()
    if accelerator.num_processes > 1:
        totals = accelerator.reduce(totals, reduction="sum")
    return float(totals[0] / totals[1].clamp_min(1))


def decode_sources(
    accelerator: Accelerator,
    model: nn.Module,
    encoded: Sequence[list[int]],
    pad_id: int,
    target_tokenizer: Tokenizer,
    settings: DecodingSettings,
    desc: str = "decoding",
) -> list[str]:
    """The output texts of encoded sources, in their order; batches of ``settings.batch_size``.

    Args:
        model: the unwrapped model, in eval mode.
        encoded: source ids per input (each ending in EOS).
        pad_id: the source padding id.
        desc: the progress bar's label (shown on the main process only).
    """
    batches = length_sorted_batches([len(ids) for ids in encoded], settings.batch_size)
    outputs: list[tuple[int, str]] = []
    with accelerator.split_between_processes(batches) as mine:
        hidden = not accelerator.is_main_process
        for indices in tqdm(mine, desc=desc, unit="batch", disable=hidden, leave=False):
            sources_ids = [encoded[i] for i in indices]
            texts = decode_batch(model, sources_ids, pad_id, target_tokenizer, settings, accelerator.device)
            outputs.extend(zip(indices, texts, strict=True))
    outputs = gather_object(outputs) if accelerator.num_processes > 1 else outputs
    texts = [""] * len(encoded)
    for i, text in outputs:
        texts[i] = text
    return texts
