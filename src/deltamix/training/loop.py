"""Resumable seq2seq training on accelerate, for any `Seq2SeqModel`, with SeqMix-family augmentation.

API
---
Train (resuming from ``runs/x/checkpoint``; a finished run is a no-op), score exact match and decode,
save ``model.safetensors`` + ``config.json`` + ``vocab.json`` / ``tokenizer.json``:

>>> config = Seq2SeqTrainingConfig(max_steps=2000, batch_size=32, learning_rate=1e-3)
>>> trainer = Seq2SeqTrainingLoop(model, tokenizer, config, train_pairs, "runs/x")  # doctest: +SKIP
>>> state = trainer.train()  # doctest: +SKIP
>>> metrics, predictions = trainer.evaluate(test_pairs)  # doctest: +SKIP
>>> trainer.save_model("runs/x/model")  # doctest: +SKIP

- ``model``: anything with the `deltamix.models.base.Seq2SeqModel` interface (our LSTM and Transformer,
  or a wrapped Hugging Face model): ``model(src: MixedTokens, tgt_in: MixedTokens) -> log-probs [B, T, V]``
  and ``model.generate(src_ids, max_length, beam_size, length_penalty) -> list[list[int]]``.
- ``tokenizer``: the `deltamix.data.vocab.Vocabulary` interface (``pad_id, bos_id, eos_id, unk_id``,
  ``encode``, ``decode``; ``save(path)`` if the model is to be saved); ``target_tokenizer`` optionally.
- ``train_pairs``: (source, target) text pairs, in length-bucketed, padded batches (`deltamix.data.batching`).
- ``augmenter``: ``augmenter(src_ids, tgt_in, labels, generator) -> MixedBatch`` (a
  `deltamix.seqmix.augment.SeqMixAugmenter`), or None for plain training. Its generator is seeded from
  (seed, step), so a resumed run draws the same mixing as an uninterrupted one, and a job of N processes
  the same as one process.

Training: fused AdamW (weight decay 0 by default = Adam), linear warm-up then a constant or inverse-
square-root learning rate (`deltamix.training.lr_schedule`), gradient-norm clipping, the SeqMix loss
(`deltamix.seqmix.loss.seqmix_loss`: label-smoothed cross-entropy for unmixed batches); on the CPU, freed
memory stays mapped for the next step (`deltamix.core.memory`). Accelerate places devices and runs jobs
(``torchrun`` / ``accelerate launch``; gloo without CUDA); its ``save_state``/``load_state`` write and restore
checkpoints (model, optimizer, scheduler, random states) every ``checkpoint_interval`` steps, atomically
(written beside, then renamed; loaded only if every file is plain data). In a job of N processes,
``batch_size`` is the global batch: each process reads and augments (same generator) the whole batch and
trains on its contiguous 1/N of the rows, the loss normalised by the global token count, so the gradient
is the single-process one (up to float summation order; dropout masks differ). Only the main process
logs, shows a progress bar and writes files. A non-finite loss or gradient norm stops training with a
`DeltamixError` naming the step; the last checkpoint is kept.

The pieces it uses live beside it: `deltamix.training.config` (the settings), `.checkpoint` (the run's
files), `.distributed` (a global batch over processes), `.decoding` and `.model_io` (saved models).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from deltamix.core.errors import DeltamixError
from deltamix.core.io import append_jsonl
from deltamix.core.memory import retain_freed_memory
from deltamix.core.mixed_tokens import MixedBatch
from deltamix.core.precision import resolve_precision
from deltamix.data.batching import (
    BucketBatchSampler,
    Collator,
    Seq2SeqDataset,
    Tokenizer,
    encode_pairs,
    encode_source,
)
from deltamix.seqmix.loss import seqmix_loss
from deltamix.training.augmentation import Augmenter, augmentation_seed, plain_batch, step_batch
from deltamix.training.checkpoint import (
    CHECKPOINT_DIR,
    STATE_FILE,
    RunCheckpoints,
    TrainerState,
    load_weights_strictly,
    remove_checkpoints,
    truncate_log,
    unshare_weights,
    write_final_state,
)
from deltamix.training.config import Seq2SeqTrainingConfig
from deltamix.training.decoding import DecodingSettings
from deltamix.training.distributed import distributed_cpu, job_accelerator, label_weight_sum, process_rows
from deltamix.training.evaluation import decode_sources, eval_mode, teacher_forced_loss
from deltamix.training.lr_schedule import adamw_with_schedule
from deltamix.training.metrics import exact_match
from deltamix.training.model_io import load_model, load_weights_into, save_model

__all__ = [
    "CHECKPOINT_DIR",
    "STATE_FILE",
    "Augmenter",
    "Seq2SeqTrainingConfig",
    "Seq2SeqTrainingLoop",
    "TrainerState",
    "augmentation_seed",
    "distributed_cpu",
    "label_weight_sum",
    "load_model",
    "load_weights_strictly",
    "plain_batch",
    "save_model",
    "unshare_weights",
]

logger = logging.getLogger(__name__)


@dataclass
class _CallProgress:
    """What one `Seq2SeqTrainingLoop.train` call has done so far, beside the run's `TrainerState`."""

    total: int | None  # steps of the whole run (None: bounded by time only)
    budget_seconds: float | None
    stop_after: int | None
    base_seconds: float  # training time of the earlier calls
    losses: list[float] = field(default_factory=list)  # since the last log line
    steps: int = 0
    started: float = field(default_factory=time.perf_counter)


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
        self.accelerator = job_accelerator(accelerator, config.batch_size, config.max_tokens)
        self.pad_id = self.target_tokenizer.pad_id
        self.precision = self._training_precision()
        device = self.accelerator.device
        if device.type == "cpu":
            retain_freed_memory()  # no page faults for the step's large tensors (deltamix.core.memory)
        self._autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        self.loader = self._train_loader(train_pairs)
        # Not sharded by accelerate: every process reads and augments the global batch, then trains
        # on its own rows (`train_step`), so N processes draw the batches and mixing of one.
        optimizer, scheduler = adamw_with_schedule(
            model.parameters(),
            config.learning_rate,
            config.weight_decay,
            config.warmup_steps,
            config.lr_schedule,
        )
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        self.checkpoints = RunCheckpoints(self.accelerator, self.output_dir)
        # Called on every process just before a checkpoint is written, so that the step's own files
        # (e.g. epoch snapshots) exist before the checkpoint counts.
        self.before_checkpoint: Callable[[TrainerState], None] | None = None
        self.steps_per_epoch = len(self.loader)

    def _training_precision(self) -> str:
        """The precision it trains in, "bf16" or "fp32": accelerate's where it applies one, else the config's."""
        # accelerate's own mixed precision is one per process (AcceleratorState refuses a second
        # value), so a process could not train an fp32 and a bf16 model; torch.autocast is what it applies.
        if self.accelerator.mixed_precision == "bf16":
            return "bf16"  # already applied to the forward pass by accelerate
        return resolve_precision(self.config.precision, self.accelerator.device)

    def _train_loader(self, train_pairs: Sequence[tuple[str, str]]) -> DataLoader:
        """Length-bucketed, shuffled batches of the encoded training pairs (sets ``self.sampler``)."""
        config = self.config
        dataset = Seq2SeqDataset(encode_pairs(train_pairs, self.tokenizer, self.target_tokenizer))
        self.sampler = BucketBatchSampler(
            dataset.lengths(),
            None if config.max_tokens is not None else config.batch_size,
            shuffle=True,
            seed=config.seed,
            max_tokens=config.max_tokens,
            min_batch=self.accelerator.num_processes,
        )
        return DataLoader(
            dataset,
            batch_sampler=self.sampler,
            collate_fn=self._collator(),
            # Its own generator: creating an iterator (e.g. when resuming) must not draw from the
            # global RNG that dropout uses, or a resumed run would differ from an uninterrupted one.
            generator=torch.Generator().manual_seed(config.seed),
        )

    def _collator(self) -> Collator:
        return Collator(self.pad_id, self.target_tokenizer.bos_id, self.target_tokenizer.eos_id)

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
        return self.checkpoints.read_state()

    def _save_checkpoint(self, state: TrainerState) -> None:
        """Save a resumable checkpoint atomically (after `before_checkpoint`, on every process)."""
        if self.before_checkpoint is not None:
            self.before_checkpoint(state)
        self.checkpoints.save(state)

    def restore_checkpoint(self) -> TrainerState | None:
        """Load the last checkpoint into the model, optimizer and random states, as resuming does, and
        return its state (None without one), e.g. to evaluate an interrupted run before training on."""
        state = self.read_state()
        if state is not None and not state.finished:
            self.checkpoints.load()
        return state

    def _diverged(self, what: str, step: int) -> DeltamixError:
        """The error that stops a run whose loss or gradients are no longer finite (nothing is saved)."""
        kept = self.checkpoints.last_step()
        where = (
            f"the last good checkpoint ({self.checkpoints.directory}, step {kept}) is kept"
            if kept is not None
            else "no checkpoint had been saved yet"
        )
        return DeltamixError(
            f"{what} at step {step + 1}; training stopped and {where}. Lower the learning rate or check "
            "the data; running the same command again resumes from the checkpoint"
        )

    # ------------------------------------------------------------------------------ training
    def train_step(self, batch: dict[str, Tensor], step: int) -> float:
        """One optimizer step on a padded id batch; returns the loss."""
        mixed = step_batch(
            batch, self.augmenter, self.config.seed, step, self.pad_id, self.accelerator.device
        )
        loss, value = self._step_loss(mixed)
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

    def _step_loss(self, mixed: MixedBatch) -> tuple[Tensor, float]:
        """The loss to back-propagate on this process and the global batch's mean loss (the same on all)."""
        world = self.accelerator.num_processes
        if world == 1:
            with self._autocast:
                lprobs = self.model(mixed.src, mixed.tgt_in).float()  # B x T x V
            loss = seqmix_loss(lprobs, mixed, self.config.label_smoothing, self.pad_id)
            return loss, float(loss.detach())
        # This process's rows; its summed loss over the global batch's token count, times the
        # number of processes because DDP averages the gradients: the gradient is the global one.
        rows = process_rows(mixed, self.accelerator.process_index, world)
        with self._autocast:
            lprobs = self.model(rows.src, rows.tgt_in).float()  # b x T x V
        total = label_weight_sum(mixed, self.pad_id).clamp_min(torch.finfo(lprobs.dtype).tiny)
        loss = seqmix_loss(lprobs, rows, self.config.label_smoothing, self.pad_id, "sum") / total * world
        return loss, float(self.accelerator.reduce(loss.detach() / world, reduction="sum"))

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
                remove_checkpoints(self.output_dir)
            return state
        total = self.total_steps()
        state = self._start_or_resume(state, total)
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
        budget = None if self.config.max_minutes is None else self.config.max_minutes * 60.0
        call = _CallProgress(total, budget, stop_after, state.train_seconds, list(state.pending_losses))
        with logging_redirect_tqdm():
            done = self._train_until_stop(state, call, progress)
        progress.close()
        if done:
            self.finish(state)
        return state

    def _start_or_resume(self, state: TrainerState | None, total: int | None) -> TrainerState:
        """A new run's state (and seeded RNGs), or the checkpoint's, loaded into the model and optimizer."""
        if state is None:
            # device_specific: seed + process index, so that the processes of a job draw different
            # dropout masks for their rows (one process: the seed itself).
            set_seed(self.config.seed, device_specific=True)
            return TrainerState(total_steps=total or 0)
        self.checkpoints.load()
        state.resumed_from = state.step
        if self.is_main:
            truncate_log(self.output_dir / "log.jsonl", state.step)
        logger.info("resuming %s from step %d", self.output_dir, state.step)
        return state

    def _epoch_batches(self, step: int) -> Any:
        """The batches of the epoch that step ``step`` (0-based) falls in, from that step on."""
        epoch, offset = divmod(step, self.steps_per_epoch)
        # accelerate's loader sets its sampler's epoch to its own count of iterations, which
        # starts at 0 in a resumed process: set that count too, or a resumed run would repeat
        # epoch 0's order instead of epoch `epoch`'s.
        if hasattr(self.loader, "set_epoch"):  # (a loader prepared by accelerate)
            self.loader.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        return self.accelerator.skip_first_batches(self.loader, offset) if offset else self.loader

    def _train_until_stop(self, state: TrainerState, call: _CallProgress, progress: tqdm) -> bool:
        """Train epoch after epoch until the budget ends (returns True) or ``stop_after`` (False)."""
        while True:
            for batch in self._epoch_batches(state.step):
                call.losses.append(self.train_step(batch, state.step))
                done, stopping = self._after_step(state, call, progress)
                if done or stopping:
                    return done

    def _after_step(self, state: TrainerState, call: _CallProgress, progress: tqdm) -> tuple[bool, bool]:
        """Count the step, then log, evaluate and checkpoint where due; returns (budget spent, stop now)."""
        state.step += 1
        call.steps += 1
        state.train_seconds = call.base_seconds + time.perf_counter() - call.started
        progress.update(1)
        out_of_time = call.budget_seconds is not None and state.train_seconds >= call.budget_seconds
        done = (call.total is not None and state.step >= call.total) or out_of_time
        stopping = call.stop_after is not None and call.steps >= call.stop_after
        if state.step % self.config.log_interval == 0 or done:
            self._log(state, call.losses, progress)
            call.losses = []
        if self.eval_pairs and self.config.eval_interval and state.step % self.config.eval_interval == 0:
            metrics, _ = self.evaluate(self.eval_pairs)
            self.log_event({"step": state.step, **{f"eval_{k}": v for k, v in metrics.items()}})
            self.model.train()
        state.total_steps = call.total or state.step
        if not done and (stopping or state.step % self.config.checkpoint_interval == 0):
            state.pending_losses = list(call.losses)
            self._save_checkpoint(state)
        return done, stopping

    def finish(self, state: TrainerState) -> TrainerState:
        """Mark the run finished at ``state`` (the end of the budget, or an early stop): save the model,
        then the state that says so, then remove the checkpoints; an interruption in between resumes
        from the last checkpoint."""
        state.finished = True
        state.pending_losses = []
        self.save_model(self.output_dir / "model")
        if self.is_main:
            write_final_state(self.output_dir, state)
        self.accelerator.wait_for_everyone()
        return state

    def _log(self, state: TrainerState, losses: list[float], progress: tqdm) -> None:
        if not losses:
            return
        state.last_loss = mean = sum(losses) / len(losses)
        lr = self.scheduler.get_last_lr()[0]
        progress.set_postfix(loss=f"{mean:.4f}")
        self.log_event({"step": state.step, "loss": mean, "lr": lr, "train_seconds": state.train_seconds})

    def log_event(self, event: dict[str, Any]) -> None:
        """Append ``event`` to the run's ``log.jsonl`` (main process only)."""
        if self.is_main:
            logger.debug("%s", event)
            append_jsonl(self.output_dir / "log.jsonl", event)

    # ------------------------------------------------------------------------------ evaluation
    def validation_loss(self, pairs: Sequence[tuple[str, str]]) -> float:
        """The training objective on ``pairs`` without augmentation or dropout: label-smoothed
        cross-entropy per target token (teacher forced), in the training precision.

        Batches of ``eval_batch_size`` pairs sorted by length, split across processes; the sums are
        reduced over processes, so every process returns the same value.
        """
        with eval_mode(self.accelerator.unwrap_model(self.model)) as model:
            examples = encode_pairs(pairs, self.tokenizer, self.target_tokenizer)
            return teacher_forced_loss(
                self.accelerator,
                model,
                examples,
                self._collator(),
                self.config.eval_batch_size,
                self.config.label_smoothing,
                self.pad_id,
                self._autocast,
            )

    def decoding_settings(self) -> DecodingSettings:
        """The configured beam, length penalty and output limit, in batches of ``eval_batch_size``."""
        config = self.config
        return DecodingSettings(
            config.beam_size, config.length_penalty, config.max_decode_length, config.eval_batch_size
        )

    def predict(self, sources: Sequence[str], desc: str = "decoding") -> list[str]:
        """Decode ``sources`` (texts) with the configured beam; returns the output texts in order.

        Sources are decoded sorted by length in batches of ``eval_batch_size``, split across processes.
        """
        with eval_mode(self.accelerator.unwrap_model(self.model)) as model:
            encoded = [encode_source(text, self.tokenizer) for text in sources]
            return decode_sources(
                self.accelerator,
                model,
                encoded,
                self.tokenizer.pad_id,
                self.target_tokenizer,
                self.decoding_settings(),
                desc,
            )

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
        load_weights_into(self.accelerator.unwrap_model(self.model), directory)


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
