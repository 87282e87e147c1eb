"""A job of several processes that trains as one: its `Accelerator`, each process's rows, the token count.

`job_accelerator` makes the accelerator of a run whose ``batch_size`` is the global batch. Every process reads and augments the whole global batch with the same generator, then trains on its
contiguous share of the rows (`process_rows`), with its summed loss divided by the global batch's
token count (`label_weight_sum`), so that the averaged gradient is the single-process one.

>>> share = process_rows(batch, rank=1, world=2)   # doctest: +SKIP
"""

from __future__ import annotations

import os

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration
from torch import Tensor

from deltamix.core.mixed_tokens import MixedBatch, MixedTokens


def distributed_cpu() -> bool:
    """True when launched as several processes (torchrun, ``accelerate launch --multi_gpu``) on a machine
    without CUDA: accelerate then forms a CPU job with the gloo backend only if told ``cpu=True``
    (otherwise each process would train alone and all would write the same files)."""
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return launched and not torch.cuda.is_available()


def job_accelerator(accelerator: Accelerator | None, batch_size: int, max_tokens: int | None) -> Accelerator:
    """``accelerator``, or a new one for this job (gloo on a CPU job), checked for global batches.

    Raises:
        ValueError: a multi-process accelerator without ``split_batches``, or fewer sentences per
            batch than processes.
    """
    # split_batches: ``batch_size`` is the global batch, and the scheduler steps once per step
    # whatever the number of processes (accelerate would step it once per process otherwise).
    accelerator = accelerator or Accelerator(
        cpu=distributed_cpu(), dataloader_config=DataLoaderConfiguration(split_batches=True)
    )
    if accelerator.num_processes > 1 and not accelerator.split_batches:
        raise ValueError("a multi-process Accelerator must be created with split_batches=True")
    if max_tokens is None and batch_size < accelerator.num_processes:
        raise ValueError(f"batch_size {batch_size} is smaller than the {accelerator.num_processes} processes")
    return accelerator


def label_weight_sum(batch: MixedBatch, pad_id: int) -> Tensor:
    """The (expected) number of target tokens of a batch: the denominator of `seqmix_loss` (a scalar)."""
    tokens = batch.labels.ne(pad_id).float()  # B x T
    if batch.label_weight is None:
        return tokens.sum()
    weight = batch.label_weight.float()
    total = (weight * tokens).sum()
    if batch.partner_labels is not None:
        total = total + ((1.0 - weight) * batch.partner_labels.ne(pad_id).float()).sum()
    return total


def process_rows(batch: MixedBatch, rank: int, world: int) -> MixedBatch:
    """Process ``rank``'s contiguous share of the rows of ``batch`` (ceil(B / world) rows, fewer at the end)."""
    size = -(-batch.labels.shape[0] // world)
    cut = slice(rank * size, (rank + 1) * size)

    def part(tensor: Tensor | None) -> Tensor | None:
        return None if tensor is None else tensor[cut]

    def tokens(t: MixedTokens) -> MixedTokens:
        return MixedTokens(
            ids=t.ids[cut], mask=t.mask[cut], partner_ids=part(t.partner_ids), weight=part(t.weight)
        )

    return MixedBatch(
        src=tokens(batch.src),
        tgt_in=tokens(batch.tgt_in),
        labels=batch.labels[cut],
        partner_labels=part(batch.partner_labels),
        label_weight=part(batch.label_weight),
    )
