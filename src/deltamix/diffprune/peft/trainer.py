"""Diff pruning in transformers' Trainer for a PeftModel: a ready Trainer and a callback that projects.

The L0 penalty reaches the loss through :class:`~deltamix.diffprune.trainer.DiffPruningTrainerMixin`
(``compute_loss``), which also builds AdamW from the adapter's groups (w at ``learning_rate``, the
gates at ``alpha_learning_rate``, held constant by the schedule, the head at ``head_learning_rate``);
a plain ``Trainer`` would train the gates at the task's learning rate and never add the penalty.
Saving is PEFT's (``save_pretrained``: adapter_config.json and the sparse adapter_model.safetensors).

The recipe, as with DiffPruningModel: train (L0 stage), project, train again with a new Trainer (its
optimizer is built for the kept entries):

>>> model = get_peft_model(bert, DiffPruningPeftConfig(task_type="SEQ_CLS"))  # doctest: +SKIP
>>> DiffPruningPeftTrainer(model=model, args=args, train_dataset=ds, callbacks=[ProjectCallback()]).train()  # doctest: +SKIP
>>> DiffPruningPeftTrainer(model=model, args=args, train_dataset=ds).train(); model.save_pretrained("out")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import Any

from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from deltamix.diffprune.peft.model import DiffPruningTuner
from deltamix.diffprune.stage import Stage
from deltamix.diffprune.trainer import DiffPruningTrainerMixin

logger = logging.getLogger(__name__)


class DiffPruningPeftTrainer(DiffPruningTrainerMixin, Trainer):
    """``transformers.Trainer`` with :class:`DiffPruningTrainerMixin`, for a PeftModel whose active
    adapter is a diff pruning adapter (``get_peft_model(model, DiffPruningPeftConfig(...))``).

    Raises:
        ValueError: if the model has no diff pruning adapter active.
    """

    def __init__(self, model: Any = None, *args: Any, **kwargs: Any) -> None:
        if not isinstance(getattr(model, "base_model", None), DiffPruningTuner):
            raise ValueError(
                f"DiffPruningPeftTrainer needs a PeftModel with a diff pruning adapter, got {type(model).__name__}"
            )
        super().__init__(model, *args, **kwargs)


class ProjectCallback(TrainerCallback):
    """At the end of training, project the active adapter to its budget (``model.project_()``) and fix
    its mask; nothing else (it neither adds to the loss nor changes the optimizer). Works for a
    PeftModel with a diff pruning adapter and for a DiffPruningModel. The next stage needs a new Trainer (a new optimizer over the kept entries).

    Args:
        target_sparsity: the fraction kept; None uses the adapter config's ``target_sparsity``.
    """

    def __init__(self, target_sparsity: float | None = None) -> None:
        self.target_sparsity = target_sparsity

    def on_train_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        if model is None or model.stage == Stage.FIXED_MASK:
            return
        model.project_(self.target_sparsity)
        logger.info("projected the diff to %d of %d entries", model.nnz(), model.num_gated)
