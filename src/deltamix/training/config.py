"""`Seq2SeqTrainingConfig`: how `deltamix.training.loop.Seq2SeqTrainingLoop` trains and decodes.

>>> config = Seq2SeqTrainingConfig(max_steps=2000, batch_size=32, learning_rate=1e-3)
>>> config.beam_size
1
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deltamix.core.precision import (
    precision_field,
    resolve_precision,
)
from deltamix.training.lr_schedule import DEFAULT_LR_SCHEDULE, LR_SCHEDULES, lr_factor


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
    precision: str = precision_field(
        "bf16 autocast of the forward pass and loss (weights, optimizer and loss reduction stay fp32) "
        "or fp32; auto = bf16 where the hardware computes it natively"
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
