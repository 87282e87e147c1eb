"""DiffPruningConfig: the hyper-parameters of diff pruning (Guo, Kim and Rush, ACL 2021), validated."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

EVAL_GATE_MODES = ("deterministic", "sampled")
# The expected L0 of a structured diff: "sum" as the authors' code computes it (each entry's and each
# group's open probability added), "product" as the paper's equation writes it (an entry counts
# only while its group is open). See docs/diffprune.md.
STRUCTURED_PENALTIES = ("sum", "product")


@dataclass
class DiffPruningConfig:
    """What gets a diff, how its gates are parameterised, and how it is trained.

    Defaults are the paper's (BERT-large, GLUE). Parameter selection: a parameter gets a gated diff
    unless it belongs to a ``dense_modules`` module (trained densely, stored densely) or is filtered
    out by ``include`` / ``exclude``; filtered-out parameters stay frozen and are never stored.

    >>> DiffPruningConfig(target_sparsity=0.01, dense_modules=["classifier"]).l0_lambda
    1.25e-07
    """

    target_sparsity: float = field(
        default=0.005,
        metadata={"help": "fraction of gated parameters kept non-zero by project_() (the paper's t = 0.5%)"},
    )
    structured: bool = field(
        default=False,
        metadata={"help": "add one gate per parameter tensor (group); see structured_penalty"},
    )
    structured_penalty: str = field(
        default="sum",
        metadata={
            "help": "expected L0 of a structured diff: 'sum' (the authors' code, the default: "
            "sum_i P(z_i != 0) + sum_g P(z_g != 0)) or 'product' (the paper's equation: "
            "sum_g P(z_g != 0) * sum_{i in g} P(z_i != 0))"
        },
    )
    learn_gates: bool = field(
        default=True,
        metadata={
            "help": "learn hard-concrete gates; False trains a dense diff (z = 1), which with project_() "
            "gives the paper's non-adaptive (magnitude) diff pruning baseline"
        },
    )
    l0_lambda: float = field(
        default=1.25e-7, metadata={"help": "weight of the expected-L0 penalty (on the sum over parameters)"}
    )
    target_density: float | None = field(
        default=None,
        metadata={
            "help": "L0 stage: hold the expected share of non-zero gates at this value with a Lagrangian "
            "whose multipliers are learned (density_control.py) instead of the fixed l0_lambda, which is "
            "then unused; None (default) is the paper's fixed lambda"
        },
    )
    density_warmup: float = field(
        default=0.5,
        metadata={
            "help": "share of the L0 stage's steps over which the asked density falls from 1 to target_density"
        },
    )
    multiplier_learning_rate: float = field(
        default=0.05,
        metadata={"help": "AdamW learning rate (constant) of the two Lagrange multipliers of target_density"},
    )
    alpha_init: float = field(default=5.0, metadata={"help": "initial gate log-odds alpha"})
    stretch_left: float = field(
        default=-1.5, metadata={"help": "left stretch limit l of the hard-concrete (< 0)"}
    )
    stretch_right: float = field(
        default=1.5, metadata={"help": "right stretch limit r of the hard-concrete (> 1)"}
    )
    dense_modules: list[str] = field(
        default_factory=list,
        metadata={
            "help": "module names trained and stored densely (the task head), e.g. ['classifier']; a name "
            "matches a module whose dotted path equals it or ends with '.' + it"
        },
    )
    include: list[str] | None = field(
        default=None,
        metadata={"help": "regular expressions (re.search on parameter names); None gates every parameter"},
    )
    exclude: list[str] = field(
        default_factory=list,
        metadata={"help": "regular expressions (re.search); matching parameters get no diff and stay frozen"},
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate of the diff weights w"})
    alpha_learning_rate: float = field(
        default=0.1, metadata={"help": "AdamW learning rate of the gate parameters alpha (kept constant)"}
    )
    dense_learning_rate: float | None = field(
        default=None, metadata={"help": "learning rate of the dense modules; None uses learning_rate"}
    )
    fixed_mask_learning_rate: float = field(
        default=5e-5, metadata={"help": "learning rate of the kept diff entries after project_()"}
    )
    weight_decay: float = field(
        default=0.0, metadata={"help": "AdamW weight decay of w and the dense modules"}
    )
    clip_gates_apart: bool = field(
        default=False,
        metadata={
            "help": "DiffPruningTrainer, L0 stage: clip the gates' gradient norm (alpha and group gates) "
            "apart from that of w and the dense modules, each to max_grad_norm, as the authors' code does; "
            "False (default) clips all together, the Trainer's own clip"
        },
    )
    eval_gate: str = field(
        default="deterministic",
        metadata={
            "help": "gate used in eval mode before project_(): 'deterministic' "
            "(z = clamp(sigmoid(alpha) * (r - l) + l, 0, 1)) or 'sampled' (one hard-concrete draw per call)"
        },
    )
    reuse_buffers: bool = field(
        default=True,
        metadata={
            "help": "L0 stage: keep the d-sized per-step tensors (gates, theta, gradients) and reuse them "
            "across steps when nothing holds them (~10% faster steps on CPU; z and theta, 2 x 4 bytes "
            "per gated parameter, stay allocated between steps); False allocates them every step"
        },
    )
    embedding_rows_only: bool = field(
        default=True,
        metadata={
            "help": "before the projection (L0 stage, or the dense diff of learn_gates=False), with "
            "gradients: draw gates and compose theta only at the rows of the input word embeddings that "
            "the batch's input_ids (and the padding id) look up; the other rows cannot reach the loss, so "
            "the result is the same (their w gets no gradient, their alpha the penalty's alone) and a step "
            "is faster where the vocabulary is a large share of the parameters (half of MiniLM's). Off "
            "for tied or shared embeddings and encoder-decoders"
        },
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.target_sparsity <= 1.0:
            raise ValueError(f"target_sparsity must be in (0, 1], got {self.target_sparsity}")
        if not self.stretch_left < 0.0:
            raise ValueError(f"stretch_left must be < 0, got {self.stretch_left}")
        if not self.stretch_right > 1.0:
            raise ValueError(f"stretch_right must be > 1, got {self.stretch_right}")
        for name in ("l0_lambda", "weight_decay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.target_density is not None:
            if not 0.0 < self.target_density < 1.0:
                raise ValueError(f"target_density must be in (0, 1), got {self.target_density}")
            if not self.learn_gates:
                raise ValueError("target_density needs learned gates (learn_gates=True)")
        if not 0.0 <= self.density_warmup <= 1.0:
            raise ValueError(f"density_warmup must be in [0, 1], got {self.density_warmup}")
        for name in (
            "learning_rate",
            "alpha_learning_rate",
            "fixed_mask_learning_rate",
            "dense_learning_rate",
            "multiplier_learning_rate",
        ):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not math.isfinite(self.alpha_init):
            raise ValueError(f"alpha_init must be finite, got {self.alpha_init}")
        if self.structured_penalty not in STRUCTURED_PENALTIES:
            raise ValueError(
                f"structured_penalty must be one of {STRUCTURED_PENALTIES}, got {self.structured_penalty!r}"
            )
        if self.eval_gate not in EVAL_GATE_MODES:
            raise ValueError(f"eval_gate must be one of {EVAL_GATE_MODES}, got {self.eval_gate!r}")
        if isinstance(self.dense_modules, str):
            raise ValueError("dense_modules must be a list of module names, not a string")
        self.dense_modules = list(self.dense_modules)
        for name in self.dense_modules:
            if not isinstance(name, str) or not name or name.startswith(".") or name.endswith("."):
                raise ValueError(f"dense_modules entries must be dotted module names, got {name!r}")
        for attr in ("include", "exclude"):
            patterns = getattr(self, attr)
            if patterns is None:
                continue
            if isinstance(patterns, str):
                raise ValueError(f"{attr} must be a list of regular expressions, not a string")
            patterns = list(patterns)
            setattr(self, attr, patterns)
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as error:
                    raise ValueError(
                        f"{attr} pattern {pattern!r} is not a regular expression: {error}"
                    ) from None

    @property
    def log_ratio(self) -> float:
        """c = log(-l / r), the shift in the expected-L0 penalty sigmoid(alpha - c)."""
        return math.log(-self.stretch_left / self.stretch_right)

    @property
    def head_learning_rate(self) -> float:
        """The learning rate of the dense modules (``dense_learning_rate`` or ``learning_rate``)."""
        return self.learning_rate if self.dense_learning_rate is None else self.dense_learning_rate

    def is_dense(self, param_name: str) -> bool:
        """Whether parameter ``param_name`` belongs to one of the ``dense_modules``."""
        module_path = param_name.rsplit(".", 1)[0] if "." in param_name else ""
        parts = module_path.split(".") if module_path else []
        prefixes = [".".join(parts[: i + 1]) for i in range(len(parts))]
        return any(p == name or p.endswith("." + name) for p in prefixes for name in self.dense_modules)

    def is_gated(self, param_name: str) -> bool:
        """Whether parameter ``param_name`` gets a gated diff (not dense, included, not excluded)."""
        if self.is_dense(param_name):
            return False
        if self.include is not None and not any(re.search(p, param_name) for p in self.include):
            return False
        return not any(re.search(p, param_name) for p in self.exclude)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffPruningConfig:
        """Rebuild a config from :meth:`to_dict` output (unknown keys raise ``ValueError``)."""
        if not isinstance(data, dict):
            raise ValueError(f"a DiffPruningConfig dict is expected, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DiffPruningConfig fields: {unknown}")
        return cls(**data)
