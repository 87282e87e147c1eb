"""Diff pruning on GLUE: the methods compared, one object each (``methods``), a run's settings
(``settings``), one run end to end (``run``; its Trainer stages in ``stages``), multi-task serving
(``serve``), and a finished run's model on new inputs or exported (``classify``).

>>> from deltamix.experiments.glue import GlueRunConfig, TaskClassifier, run_glue
>>> record = run_glue(GlueRunConfig(task="rte", method="diffprune", data_dir="glue_data"))  # doctest: +SKIP
>>> TaskClassifier.load(record["output_dir"]).save_pretrained("rte-model")  # doctest: +SKIP
"""

from __future__ import annotations

from deltamix.experiments.glue.classify import TaskClassifier
from deltamix.experiments.glue.methods import GLUE_METHODS, METHODS, GlueMethod, get_method
from deltamix.experiments.glue.run import run_glue
from deltamix.experiments.glue.serve import serve
from deltamix.experiments.glue.settings import GlueRunConfig

__all__ = [
    "GLUE_METHODS",
    "METHODS",
    "GlueMethod",
    "GlueRunConfig",
    "TaskClassifier",
    "get_method",
    "run_glue",
    "serve",
]
