"""Resumable seq2seq training on accelerate, for any `Seq2SeqModel`, with SeqMix-family augmentation.

API
---
>>> config = Seq2SeqTrainingConfig(max_steps=2000, batch_size=32, learning_rate=1e-3)  # doctest: +SKIP
>>> trainer = Seq2SeqTrainingLoop(model, tokenizer, config, train_pairs, "runs/x", augmenter=augmenter)
>>> state = trainer.train()                  # resumes from runs/x/checkpoint; a finished run is a no-op
>>> metrics, predictions = trainer.evaluate(test_pairs)   # {"exact_match": ..., ...}, decoded texts
>>> trainer.save_model("runs/x/model")       # model.safetensors + config.json + vocab/tokenizer.json

- ``model``: anything with the `deltamix.models.base.Seq2SeqModel` interface (our LSTM and Transformer,
  or a wrapped Hugging Face model): ``model(src: MixedTokens, tgt_in: MixedTokens) -> log-probs [B, T, V]``
  and ``model.generate(src_ids, max_length, beam_size, length_penalty) -> list[list[int]]``.
- ``tokenizer``: the `deltamix.data.vocab.Vocabulary` interface (``pad_id, bos_id, eos_id, unk_id``,
  ``encode``, ``decode``; ``save(path)`` if the model is to be saved); ``target_tokenizer`` optionally.
- ``train_pairs``: (source text, target text) pairs; batches are length-bucketed and dynamically padded
  (`deltamix.data.batching`).
- ``augmenter``: ``augmenter(src_ids, tgt_in, labels, generator) -> MixedBatch`` (a
  `deltamix.seqmix.augment.SeqMixAugmenter`), or None for plain training. Its generator is seeded from
  (seed, step), so a resumed run draws the same mixing as an uninterrupted one, and a job of N processes
  the same as one process.

Training: AdamW (weight decay 0 by default = Adam), linear warm-up then a constant or inverse-square-root
learning rate (`deltamix.training.lr_schedule`),
gradient-norm clipping, the SeqMix loss (`deltamix.seqmix.loss.seqmix_loss`, which reduces to label-
smoothed cross-entropy for unmixed batches). Accelerate does device placement and multi-process runs
(``torchrun`` / ``accelerate launch``; gloo on machines without CUDA), and ``save_state``/``load_state``
write and restore checkpoints (model, optimizer, scheduler and random states) every ``checkpoint_interval``
steps, atomically (written beside, then renamed; loaded only if every file is plain data). In a job of
N processes, ``batch_size`` is the global batch: each process reads the whole batch, augments it with
the same generator and trains on its contiguous 1/N of the rows, with the loss normalised by the global
token count, so the gradient is the single-process one (up to float summation order; dropout masks
differ). Only the main process logs, shows a progress bar and writes files. A non-finite loss or
gradient norm stops training with a `DeltamixError` naming the step; the last checkpoint is kept.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, gather_object, set_seed
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from deltamix.core.errors import DataFormatError, DeltamixError
from deltamix.core.io import append_jsonl, atomic_path, atomic_write_json, atomic_write_text
from deltamix.core.mixed_tokens import MixedBatch, MixedTokens
from deltamix.core.precision import DEFAULT_PRECISION, PRECISIONS, resolve_precision
from deltamix.data.batching import (
    BucketBatchSampler,
    Collator,
    Seq2SeqDataset,
    Tokenizer,
    encode_pairs,
    encode_source,
)
from deltamix.seqmix.loss import seqmix_loss
from deltamix.training.lr_schedule import DEFAULT_LR_SCHEDULE, LR_SCHEDULES, lr_factor
from deltamix.training.metrics import exact_match
from deltamix.training.predict import DecodingSettings, decode_batch, length_sorted_batches

logger = logging.getLogger(__name__)

Augmenter = Callable[[Tensor, Tensor, Tensor, torch.Generator], MixedBatch]
STATE_FILE = "trainer_state.json"
CHECKPOINT_DIR = "checkpoint"


@dataclass
class Seq2SeqTrainingConfig:
    """How to train (and decode) a seq2seq model; give ``max_steps`` or ``epochs`` (steps win)."""

    max_steps: int | None = field(default=None, metadata={"help": "optimizer steps to train"})
    epochs: float | None = field(default=None, metadata={"help": "epochs to train when max_steps is None"})
    max_minutes: float | None = field(
        default=None, metadata={"help": "stop (as finished) after this much training time, over resumes"}
    )
    batch_size: int = field(
        default=32, metadata={"help": "examples per batch (the global batch, split across processes)"}
    )
    max_tokens: int | None = field(
        default=None,
        metadata={
            "help": "token-budget batches: as many length-sorted examples as fit in this many padded "
            "tokens (the longer of source and target), as fairseq's --max-tokens, in place of batch_size; "
            "None: batch_size examples"
        },
    )
    precision: str = field(
        default=DEFAULT_PRECISION,
        metadata={
            "help": f"{', '.join(PRECISIONS)}: bf16 autocast of the forward pass and loss (weights, optimizer "
            "and loss reduction stay fp32); auto = bf16 where the hardware computes it natively"
        },
    )
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (0 = Adam)"})
    warmup_steps: int = field(default=0, metadata={"help": "linear warm-up steps"})
    lr_schedule: str = field(
        default=DEFAULT_LR_SCHEDULE,
        metadata={"help": f"after the warm-up: {' or '.join(LR_SCHEDULES)} (fairseq's inverse_sqrt)"},
    )
    max_grad_norm: float | None = field(default=5.0, metadata={"help": "gradient-norm clipping (None: off)"})
    label_smoothing: float = field(default=0.0, metadata={"help": "label smoothing epsilon"})
    log_interval: int = field(default=50, metadata={"help": "log the mean loss every this many steps"})
    checkpoint_interval: int = field(
        default=500, metadata={"help": "save a resumable checkpoint every N steps"}
    )
    eval_interval: int = field(
        default=0, metadata={"help": "evaluate on eval_pairs every N steps (0: never)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of initial RNG state, data order and mixing"})
    max_decode_length: int = field(default=100, metadata={"help": "most tokens generated per example"})
    beam_size: int = field(default=1, metadata={"help": "beam size (1 = greedy)"})
    length_penalty: float = field(default=1.0, metadata={"help": "beam-search length-penalty exponent"})
    eval_batch_size: int = field(default=256, metadata={"help": "examples per decoding batch"})

    def __post_init__(self) -> None:
        if self.max_steps is None and self.epochs is None and self.max_minutes is None:
            raise ValueError("give max_steps, epochs or max_minutes")
        for name in ("max_steps", "epochs", "max_minutes"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name in ("batch_size", "log_interval", "checkpoint_interval", "max_decode_length", "beam_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ValueError(f"max_tokens must be > 0 or None, got {self.max_tokens}")
        resolve_precision(self.precision, "cpu")  # raises on an unknown precision
        if self.eval_batch_size <= 0:
            raise ValueError(f"eval_batch_size must be > 0, got {self.eval_batch_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.warmup_steps < 0 or self.eval_interval < 0 or self.weight_decay < 0:
            raise ValueError("warmup_steps, eval_interval and weight_decay must be >= 0")
        lr_factor(1, self.warmup_steps, self.lr_schedule)  # raises on an unknown schedule or bad warm-up
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass
class TrainerState:
    """Progress of a run, saved with each checkpoint (JSON)."""

    step: int = 0
    total_steps: int = 0
    train_seconds: float = 0.0
    finished: bool = False
    last_loss: float | None = None
    resumed_from: int | None = None
    # Losses of the steps since the last log line, so that a resumed run logs the same means.
    pending_losses: list[float] = field(default_factory=list)


def distributed_cpu() -> bool:
    """True when launched as several processes (torchrun, ``accelerate launch --multi_gpu``) on a machine
    without CUDA: accelerate then forms a CPU job with the gloo backend only if told ``cpu=True``
    (otherwise each process would train alone and all would write the same files)."""
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return launched and not torch.cuda.is_available()


def augmentation_seed(seed: int, step: int) -> int:
    """The seed of the generator that draws the augmentation of optimizer step ``step`` (1-based).

    It depends on the run's seed and the step only, so every process draws the mixing of the whole
    global batch, a resumed run draws what an uninterrupted one would, and a replay (e.g.
    experiments/partner_overhang.py) can reproduce a run's draws.
    """
    return (seed * 1_000_003 + step) * 1009


def plain_batch(src_ids: Tensor, tgt_in: Tensor, labels: Tensor, pad_id: int) -> MixedBatch:
    """An unaugmented `MixedBatch` of padded ids ([B, S], [B, T], [B, T])."""
    return MixedBatch(
        src=MixedTokens.plain(src_ids, pad_id), tgt_in=MixedTokens.plain(tgt_in, pad_id), labels=labels
    )


class Seq2SeqTrainingLoop:
    """Train and evaluate one seq2seq model in one output folder (see the module docstring).

    Named apart from ``transformers.Seq2SeqTrainer``, which `deltamix.seqmix.hf_trainer` extends with
    SeqMix; ``Seq2SeqTrainer`` in this module is a deprecated alias of this class.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Tokenizer,
        config: Seq2SeqTrainingConfig,
        train_pairs: Sequence[tuple[str, str]],
        output_dir: str | Path,
        *,
        augmenter: Augmenter | None = None,
        target_tokenizer: Tokenizer | None = None,
        eval_pairs: Sequence[tuple[str, str]] | None = None,
        accelerator: Accelerator | None = None,
    ) -> None:
        if not train_pairs:
            raise ValueError("train_pairs is empty")
        self.config = config
        self.tokenizer = tokenizer
        self.target_tokenizer = target_tokenizer or tokenizer
        self.augmenter = augmenter
        self.eval_pairs = list(eval_pairs) if eval_pairs else None
        self.output_dir = Path(output_dir)
        # split_batches: ``batch_size`` is the global batch, and the scheduler steps once per step
        # whatever the number of processes (accelerate would step it once per process otherwise).
        self.accelerator = accelerator or Accelerator(
            cpu=distributed_cpu(), dataloader_config=DataLoaderConfiguration(split_batches=True)
        )
        if self.accelerator.num_processes > 1 and not self.accelerator.split_batches:
            raise ValueError("a multi-process Accelerator must be created with split_batches=True")
        if config.max_tokens is None and config.batch_size < self.accelerator.num_processes:
            raise ValueError(
                f"batch_size {config.batch_size} is smaller than the {self.accelerator.num_processes} processes"
            )
        self.pad_id = self.target_tokenizer.pad_id

        # accelerate's own mixed precision is one per process (AcceleratorState refuses a second
        # value), so a process could not train an fp32 and a bf16 model; torch.autocast is what it applies.
        device = self.accelerator.device
        if self.accelerator.mixed_precision == "bf16":
            self.precision = "bf16"  # already applied to the forward pass by accelerate
        else:
            self.precision = resolve_precision(config.precision, device)
        self._autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        dataset = Seq2SeqDataset(encode_pairs(train_pairs, tokenizer, target_tokenizer))
        self.sampler = BucketBatchSampler(
            dataset.lengths(),
            None if config.max_tokens is not None else config.batch_size,
            shuffle=True,
            seed=config.seed,
            max_tokens=config.max_tokens,
            min_batch=self.accelerator.num_processes,
        )
        loader = DataLoader(
            dataset,
            batch_sampler=self.sampler,
            collate_fn=Collator(self.pad_id, self.target_tokenizer.bos_id, self.target_tokenizer.eos_id),
            # Its own generator: creating an iterator (e.g. when resuming) must not draw from the
            # global RNG that dropout uses, or a resumed run would differ from an uninterrupted one.
            generator=torch.Generator().manual_seed(config.seed),
        )
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        warmup, schedule = config.warmup_steps, config.lr_schedule
        scheduler = torch.optim.lr_scheduler.LambdaLR(  # its step count is the updates taken so far
            optimizer, lambda step: lr_factor(step + 1, warmup, schedule)
        )
        # The loader is not sharded by accelerate: every process reads the same global batch and
        # augments it with the same generator, then trains on its own rows (`train_step`), so a run
        # on N processes draws the same batches and mixing as a run on one.
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        self.accelerator.register_save_state_pre_hook(unshare_weights)
        self.accelerator.register_load_state_pre_hook(load_weights_strictly)
        # Called with the state on every process just before a checkpoint is written, so that files
        # that belong to that step (e.g. epoch snapshots) exist before the checkpoint counts.
        self.before_checkpoint: Callable[[TrainerState], None] | None = None
        self.loader = loader
        self.steps_per_epoch = len(self.loader)

    # ------------------------------------------------------------------------------ bookkeeping
    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def total_steps(self) -> int | None:
        """Steps to train (None: bounded by ``max_minutes`` only)."""
        if self.config.max_steps is not None:
            return self.config.max_steps
        if self.config.epochs is not None:
            return max(1, math.ceil(self.config.epochs * self.steps_per_epoch))
        return None

    def read_state(self) -> TrainerState | None:
        """The state of a finished run (``output_dir/trainer_state.json``) or of the last checkpoint."""
        old = self.output_dir / f"{CHECKPOINT_DIR}.old"
        if self.is_main and old.exists():
            if (self.output_dir / CHECKPOINT_DIR).exists():
                shutil.rmtree(old)  # killed while removing the previous checkpoint after a save
            else:
                old.rename(self.output_dir / CHECKPOINT_DIR)  # killed between the two renames of a save
        self.accelerator.wait_for_everyone()
        for path in (self.output_dir / STATE_FILE, self.output_dir / CHECKPOINT_DIR / STATE_FILE):
            if path.exists():
                try:
                    return TrainerState(**json.loads(path.read_text(encoding="utf-8")))
                except (json.JSONDecodeError, TypeError) as error:
                    raise DataFormatError(path, f"unreadable trainer state ({error})") from error
        return None

    def _remove_checkpoints(self) -> None:
        """Remove the checkpoint of a finished run and any left by a killed save."""
        for suffix in ("", ".tmp", ".old"):
            shutil.rmtree(self.output_dir / f"{CHECKPOINT_DIR}{suffix}", ignore_errors=True)

    def _save_checkpoint(self, state: TrainerState) -> None:
        """Save a resumable checkpoint atomically: write ``checkpoint.tmp``, then rename it."""
        if self.before_checkpoint is not None:
            self.before_checkpoint(state)
        final = self.output_dir / CHECKPOINT_DIR
        tmp = self.output_dir / f"{CHECKPOINT_DIR}.tmp"
        if self.is_main and tmp.exists():
            shutil.rmtree(tmp)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp))
        if self.is_main:
            atomic_write_json(tmp / STATE_FILE, asdict(state))
            _fsync_tree(tmp)  # the rename below must not publish files still in the page cache only
            old = self.output_dir / f"{CHECKPOINT_DIR}.old"
            if old.exists():  # left by a save killed while removing it
                shutil.rmtree(old)
            if final.exists():
                final.rename(old)
            tmp.rename(final)
            if old.exists():
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()

    # ------------------------------------------------------------------------------ training
    def train_step(self, batch: dict[str, Tensor], step: int) -> float:
        """One optimizer step on a padded id batch; returns the loss."""
        device = self.accelerator.device
        src_ids, tgt_in, labels = (batch[k].to(device) for k in ("src_ids", "tgt_in", "labels"))
        if self.augmenter is None:
            mixed = plain_batch(src_ids, tgt_in, labels, self.pad_id)
        else:
            seed = augmentation_seed(self.config.seed, step)
            generator = torch.Generator(device=src_ids.device).manual_seed(seed)
            mixed = self.augmenter(src_ids, tgt_in, labels, generator)
        world = self.accelerator.num_processes
        if world == 1:
            with self._autocast:
                lprobs = self.model(mixed.src, mixed.tgt_in).float()  # B x T x V
            loss = seqmix_loss(lprobs, mixed, self.config.label_smoothing, self.pad_id)
            value = float(loss.detach())
        else:
            # This process's rows; its summed loss over the global batch's token count, times the
            # number of processes because DDP averages the gradients: the gradient is the global one.
            rows = _rows(mixed, self.accelerator.process_index, world)
            with self._autocast:
                lprobs = self.model(rows.src, rows.tgt_in).float()  # b x T x V
            total = label_weight_sum(mixed, self.pad_id).clamp_min(torch.finfo(lprobs.dtype).tiny)
            loss = seqmix_loss(lprobs, rows, self.config.label_smoothing, self.pad_id, "sum") / total * world
            value = float(self.accelerator.reduce(loss.detach() / world, reduction="sum"))
        if not math.isfinite(value):
            raise self._diverged(f"the training loss became {value}", step)
        self.accelerator.backward(loss)
        if self.config.max_grad_norm is not None:
            norm = float(self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm))
            # With an fp16 loss scaler, inf gradients are expected now and then (the scaler skips them).
            if not math.isfinite(norm) and self.accelerator.scaler is None:
                raise self._diverged(f"the gradient norm became {norm}", step)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return value

    def _diverged(self, what: str, step: int) -> DeltamixError:
        """The error that stops a run whose loss or gradients are no longer finite (nothing is saved)."""
        kept = self.output_dir / CHECKPOINT_DIR / STATE_FILE
        where = (
            f"the last good checkpoint ({kept.parent}, step {json.loads(kept.read_text())['step']}) is kept"
            if kept.exists()
            else "no checkpoint had been saved yet"
        )
        return DeltamixError(
            f"{what} at step {step + 1}; training stopped and {where}. Lower the learning rate or check "
            "the data; running the same command again resumes from the checkpoint"
        )

    def _load_checkpoint(self, directory: Path) -> None:
        """Restore a checkpoint written by `_save_checkpoint`, refusing anything but plain tensors and data.

        accelerate reads its pickled files (optimizer, scheduler, random states) with
        ``torch.load(weights_only=True)``, so a checkpoint cannot run code; but it silently skips random
        states it cannot read, which would make a resumed run differ from an uninterrupted one. So each
        file is checked first (same loader), and the random states are compared after loading.

        Raises:
            DataFormatError: if a file is missing, is not a plain-data pickle, or was not restored.
        """
        from accelerate.utils import load as safe_load

        rng_file = directory / f"random_states_{self.accelerator.process_index}.pkl"
        for name in ("model.safetensors", "optimizer.bin", "scheduler.bin", rng_file.name):
            if not (directory / name).is_file():
                raise DataFormatError(directory / name, "missing from the checkpoint")
        states = {}
        for path in sorted(directory.glob("*.bin")) + sorted(directory.glob("*.pkl")):
            try:
                states[path.name] = safe_load(path, map_location="cpu")
            except Exception as error:  # pickle and torch raise many types for a hostile file
                raise DataFormatError(
                    path, f"not a plain tensor/data checkpoint file, refusing to load it ({error})"
                ) from error
        self.accelerator.load_state(str(directory))
        saved = states[rng_file.name]
        if not (
            isinstance(saved, dict) and torch.equal(saved.get("torch_manual_seed"), torch.get_rng_state())
        ):
            raise DataFormatError(rng_file, "the random states were not restored")

    def restore_checkpoint(self) -> TrainerState | None:
        """Load the last checkpoint into the model, optimizer and random states, as resuming does, and
        return its state (None without one), e.g. to evaluate an interrupted run before training on."""
        state = self.read_state()
        if state is not None and not state.finished:
            self._load_checkpoint(self.output_dir / CHECKPOINT_DIR)
        return state

    def train(self, stop_after: int | None = None) -> TrainerState:
        """Train to the end of the budget, resuming from ``output_dir/checkpoint`` if there is one.

        Args:
            stop_after: leave after this many steps in this call (with a checkpoint), e.g. to train
                in time slices; the run is then not finished and the next call resumes it.

        Returns:
            The final state (``finished`` True unless stopped by ``stop_after``).
        """
        state = self.read_state()
        if state is not None and state.finished:
            logger.info("%s holds a finished run (%d steps): not training again", self.output_dir, state.step)
            self.load_weights(self.output_dir / "model")
            if self.is_main:  # killed while removing them after the final save
                self._remove_checkpoints()
            return state
        total = self.total_steps()
        if state is None:
            state = TrainerState(total_steps=total or 0)
            # device_specific: seed + process index, so that the processes of a job draw different
            # dropout masks for their rows (one process: the seed itself).
            set_seed(self.config.seed, device_specific=True)
        else:
            self._load_checkpoint(self.output_dir / CHECKPOINT_DIR)
            state.resumed_from = state.step
            if self.is_main:
                _truncate_log(self.output_dir / "log.jsonl", state.step)
            logger.info("resuming %s from step %d", self.output_dir, state.step)
        budget = None if self.config.max_minutes is None else self.config.max_minutes * 60.0
        progress = tqdm(
            total=total,
            initial=state.step,
            desc="training",
            unit="step",
            dynamic_ncols=True,
            # left unset on the main process so that tqdm's TQDM_DISABLE (set by `seqmix compare`
            # for its workers) applies; an explicit value would override it
            **({} if self.is_main else {"disable": True}),
        )
        self.model.train()
        losses: list[float] = list(state.pending_losses)
        steps_this_call = 0
        started = time.perf_counter()
        base_seconds = state.train_seconds
        done = False
        with logging_redirect_tqdm():
            while not done:
                epoch, offset = divmod(state.step, self.steps_per_epoch)
                # accelerate's loader sets its sampler's epoch to its own count of iterations, which
                # starts at 0 in a resumed process: set that count too, or a resumed run would repeat
                # epoch 0's order instead of epoch `epoch`'s.
                if hasattr(self.loader, "set_epoch"):  # (a loader prepared by accelerate)
                    self.loader.set_epoch(epoch)
                self.sampler.set_epoch(epoch)
                loader = self.accelerator.skip_first_batches(self.loader, offset) if offset else self.loader
                for batch in loader:
                    losses.append(self.train_step(batch, state.step))
                    state.step += 1
                    steps_this_call += 1
                    state.train_seconds = base_seconds + time.perf_counter() - started
                    progress.update(1)
                    out_of_time = budget is not None and state.train_seconds >= budget
                    done = (total is not None and state.step >= total) or out_of_time
                    stopping = stop_after is not None and steps_this_call >= stop_after
                    if state.step % self.config.log_interval == 0 or done:
                        self._log(state, losses, progress)
                        losses = []
                    if (
                        self.eval_pairs
                        and self.config.eval_interval
                        and state.step % self.config.eval_interval == 0
                    ):
                        metrics, _ = self.evaluate(self.eval_pairs)
                        self.log_event({"step": state.step, **{f"eval_{k}": v for k, v in metrics.items()}})
                        self.model.train()
                    state.total_steps = total or state.step
                    if not done and (stopping or state.step % self.config.checkpoint_interval == 0):
                        state.pending_losses = list(losses)
                        self._save_checkpoint(state)
                    if done or stopping:
                        break
                if stopping and not done:
                    break
        progress.close()
        if done:
            self.finish(state)
        return state

    def finish(self, state: TrainerState) -> TrainerState:
        """Mark the run finished at ``state`` (the end of the budget, or an early stop): save the model,
        then the state that says so, then remove the checkpoints; an interruption in between resumes
        from the last checkpoint."""
        state.finished = True
        state.pending_losses = []
        self.save_model(self.output_dir / "model")
        if self.is_main:
            atomic_write_json(self.output_dir / STATE_FILE, asdict(state))
            self._remove_checkpoints()
        self.accelerator.wait_for_everyone()
        return state

    def _log(self, state: TrainerState, losses: list[float], progress: tqdm) -> None:
        if not losses:
            return
        mean = sum(losses) / len(losses)
        state.last_loss = mean
        lr = self.scheduler.get_last_lr()[0]
        progress.set_postfix(loss=f"{mean:.4f}")
        self.log_event({"step": state.step, "loss": mean, "lr": lr, "train_seconds": state.train_seconds})

    def log_event(self, event: dict[str, Any]) -> None:
        """Append ``event`` to the run's ``log.jsonl`` (main process only)."""
        if self.is_main:
            logger.debug("%s", event)
            append_jsonl(self.output_dir / "log.jsonl", event)

    # ------------------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def validation_loss(self, pairs: Sequence[tuple[str, str]]) -> float:
        """The training objective on ``pairs`` without augmentation or dropout: label-smoothed
        cross-entropy per target token (teacher forced), in the training precision.

        Batches of ``eval_batch_size`` pairs sorted by length, split across processes; the sums are
        reduced over processes, so every process returns the same value.
        """
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        examples = encode_pairs(pairs, self.tokenizer, self.target_tokenizer)
        collate = Collator(self.pad_id, self.target_tokenizer.bos_id, self.target_tokenizer.eos_id)
        batches = length_sorted_batches(
            [max(len(s), len(t) + 1) for s, t in examples], self.config.eval_batch_size
        )
        device = self.accelerator.device
        totals = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, token count
        with self.accelerator.split_between_processes(batches) as mine:
            for indices in mine:
                batch = {k: v.to(device) for k, v in collate([examples[i] for i in indices]).items()}
                mixed = plain_batch(batch["src_ids"], batch["tgt_in"], batch["labels"], self.pad_id)
                with self._autocast:
                    lprobs = model(mixed.src, mixed.tgt_in).float()  # B x T x V
                totals[0] += seqmix_loss(
                    lprobs, mixed, self.config.label_smoothing, self.pad_id, "sum"
                ).double()
                totals[1] += batch["labels"].ne(self.pad_id).sum()
        if self.accelerator.num_processes > 1:
            totals = self.accelerator.reduce(totals, reduction="sum")
        model.train(was_training)
        return float(totals[0] / totals[1].clamp_min(1))

    def predict(self, sources: Sequence[str], desc: str = "decoding") -> list[str]:
        """Decode ``sources`` (texts) with the configured beam; returns the output texts in order.

        Sources are decoded sorted by length in batches of ``eval_batch_size``, split across processes.
        """
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        encoded = [encode_source(text, self.tokenizer) for text in sources]
        batches = length_sorted_batches([len(ids) for ids in encoded], self.config.eval_batch_size)
        settings = DecodingSettings(
            self.config.beam_size, self.config.length_penalty, self.config.max_decode_length
        )
        outputs: list[tuple[int, str]] = []
        with self.accelerator.split_between_processes(batches) as mine:
            for indices in tqdm(mine, desc=desc, unit="batch", disable=not self.is_main, leave=False):
                sources_ids = [encoded[i] for i in indices]
                texts = decode_batch(
                    model,
                    sources_ids,
                    self.tokenizer.pad_id,
                    self.target_tokenizer,
                    settings,
                    self.accelerator.device,
                )
                outputs.extend(zip(indices, texts, strict=True))
        outputs = gather_object(outputs) if self.accelerator.num_processes > 1 else outputs
        model.train(was_training)
        texts = [""] * len(sources)
        for i, text in outputs:
            texts[i] = text
        return texts

    def evaluate(self, pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, float], list[str]]:
        """Exact-match accuracy of the decoded sources against the targets (whitespace-normalised).

        Returns:
            ({"exact_match": fraction, "num_examples": n, "eval_seconds": s}, predicted texts).
        """
        started = time.perf_counter()
        predictions = self.predict([source for source, _ in pairs])
        accuracy = exact_match(predictions, [target for _, target in pairs])
        seconds = time.perf_counter() - started
        return {
            "exact_match": accuracy,
            "num_examples": float(len(pairs)),
            "eval_seconds": seconds,
        }, predictions

    # ------------------------------------------------------------------------------ saving
    def save_model(self, directory: str | Path) -> None:
        """Save the (unwrapped) model and tokenizer(s) into ``directory`` (main process only)."""
        self.accelerator.wait_for_everyone()
        if self.is_main:
            save_model(
                self.accelerator.unwrap_model(self.model), self.tokenizer, directory, self.target_tokenizer
            )

    def load_weights(self, directory: str | Path) -> None:
        """Load weights saved by `save_model` into the trained model."""
        path = Path(directory) / "model.safetensors"
        if not path.exists():
            raise DataFormatError(path, "missing: the run is marked finished but its model was not saved")
        model = self.accelerator.unwrap_model(self.model)
        if hasattr(model, "model_type"):
            model.load_state_dict(load_file(str(path)))
            return
        # Hugging Face format (save_pretrained): let from_pretrained resolve tied and renamed weights.
        inner = model if hasattr(model, "save_pretrained") else model.model
        inner.load_state_dict(type(inner).from_pretrained(str(directory)).state_dict())


def unshare_weights(models: list[torch.nn.Module], weights: list[dict[str, Tensor]], output_dir: str) -> None:
    """accelerate's save-state hook: give every tensor of the checkpoint its own memory.

    On CUDA, cuDNN packs an LSTM's weights into one buffer, so its state dict holds views that share
    storage with no single one covering it; safetensors would then keep one of those names and drop
    the rest (accelerate only warns "Removed shared tensor"), losing weights. Cloned, all are saved.
    """
    for state in weights:
        for name, value in state.items():
            state[name] = value.detach().clone()


def load_weights_strictly(models: list[torch.nn.Module], input_dir: str) -> None:
    """accelerate's load-state hook: load each model's checkpoint weights with ``load_state_dict``.

    safetensors' own loader refuses a model whose parameters share memory the way cuDNN's packed
    LSTM weights do (see `unshare_weights`); ``load_state_dict`` copies into them, strictly (every
    name present, none unexpected). The models are removed from ``models`` so accelerate skips them.
    """
    for index in reversed(range(len(models))):
        path = Path(input_dir) / ("model.safetensors" if index == 0 else f"model_{index}.safetensors")
        if not path.is_file():
            raise DataFormatError(path, "missing from the checkpoint")
        device = next(models[index].parameters()).device
        models[index].load_state_dict(load_file(str(path), device=str(device)))
        del models[index]


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


def _rows(batch: MixedBatch, rank: int, world: int) -> MixedBatch:
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


def _fsync_tree(directory: Path) -> None:
    """Flush every file under ``directory`` and the folder itself to disk."""
    for path in directory.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _truncate_log(path: Path, step: int) -> None:
    """Drop the events after ``step`` from a run's log (they are trained and logged again on resume)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill mid-write (append_jsonl writes whole lines, so unlikely)
        if isinstance(event, dict) and int(event.get("step", 0)) <= step:
            kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))


def save_model(
    model: nn.Module, tokenizer: Tokenizer, directory: str | Path, target_tokenizer: Tokenizer | None = None
) -> None:
    from deltamix.data.tokenization import SubwordTokenizer, save_tokenizer
    from deltamix.data.vocab import Vocabulary

    """Write ``model.safetensors``, ``config.json`` and the tokenizer (``target_vocab.json``) atomically.

    The tokenizer goes under its standard name (`deltamix.data.tokenization.save_tokenizer`): a word
    `Vocabulary` as ``vocab.json``, a BPE `SubwordTokenizer` as ``tokenizer.json``.

    Our models (with ``model_type`` and a ``config`` dataclass) are saved in deltamix's format; other
    models with ``save_pretrained`` (or adapters whose ``.model`` has it, e.g. `HFSeq2SeqAdapter`) in
    Hugging Face's format, and so are tokenizers with ``save_pretrained`` but no ``save``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "model_type") and hasattr(model.config, "to_dict"):
        tensors = {name: value.detach().contiguous().cpu() for name, value in model.state_dict().items()}
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt"})
        atomic_write_json(
            directory / "config.json",
            {
                "format": "deltamix-seq2seq-model",
                "version": 1,
                "model_type": model.model_type,
                "config": model.config.to_dict(),
            },
        )
    elif hasattr(model, "save_pretrained"):
        model.save_pretrained(str(directory))
    elif hasattr(getattr(model, "model", None), "save_pretrained"):  # an adapter around a HF model
        model.model.save_pretrained(str(directory))
    else:
        raise ValueError(
            f"cannot save a {type(model).__name__}: it has neither model_type+config nor save_pretrained"
        )
    if isinstance(tokenizer, Vocabulary | SubwordTokenizer):
        save_tokenizer(tokenizer, directory)  # vocab.json or tokenizer.json, by kind
    elif hasattr(tokenizer, "save"):
        tokenizer.save(directory / "vocab.json")
    elif hasattr(tokenizer, "save_pretrained"):
        tokenizer.save_pretrained(str(directory))
    if (
        target_tokenizer is not None
        and target_tokenizer is not tokenizer
        and hasattr(target_tokenizer, "save")
    ):
        target_tokenizer.save(directory / "target_vocab.json")


def load_model(directory: str | Path) -> tuple[nn.Module, Any]:
    """Load a model and its tokenizer saved by `save_model` (our LSTM or Transformer).

    Returns:
        The model (eval mode is the caller's choice) and its `Vocabulary` or `SubwordTokenizer` (also
        from folders written before the subword tokenizer had its own file name, where it sits in
        ``vocab.json``).

    Raises:
        DataFormatError: if the folder holds no such model or tokenizer.
    """
    from deltamix.data.tokenization import TOKENIZER_FILE, VOCABULARY_FILE, load_tokenizer
    from deltamix.models.lstm import LSTMSeq2Seq
    from deltamix.models.transformer import TransformerSeq2Seq

    directory = Path(directory)
    path = directory / "config.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DataFormatError(path, f"unreadable model config ({error})") from error
    classes = {cls.model_type: cls for cls in (LSTMSeq2Seq, TransformerSeq2Seq)}
    if meta.get("format") != "deltamix-seq2seq-model" or meta.get("model_type") not in classes:
        raise DataFormatError(path, "not a deltamix seq2seq model config")
    cls = classes[meta["model_type"]]
    model = cls(cls.config_class(**meta["config"]))
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    names = [name for name in (TOKENIZER_FILE, VOCABULARY_FILE) if (directory / name).is_file()]
    if not names:
        raise DataFormatError(directory, f"no {TOKENIZER_FILE} or {VOCABULARY_FILE} beside the model")
    return model, load_tokenizer(directory / names[0])


def __getattr__(name: str) -> Any:
    # The loop's name in deltamix 0.1.0 (it clashed with transformers.Seq2SeqTrainer): kept for one
    # release, the same class, with a DeprecationWarning on use.
    if name == "Seq2SeqTrainer":
        warnings.warn(
            "deltamix.training.loop.Seq2SeqTrainer is renamed Seq2SeqTrainingLoop; the old name goes "
            "in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return Seq2SeqTrainingLoop
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
