"""Diff pruning on GLUE: the methods compared (``methods``), one run end to end (``run``), multi-task
serving (``serve``), and a finished run's model on new inputs or exported (``classify``).

>>> from deltamix.experiments.glue import GlueRunConfig, TaskClassifier, run_glue
>>> record = run_glue(GlueRunConfig(task="rte", method="diffprune", data_dir="glue_data"))  # doctest: +SKIP
>>> TaskClassifier.load(record["output_dir"]).save_pretrained("rte-model")  # doctest: +SKIP
"""

from __future__ import annotations

from deltamix.experiments.glue.classify import TaskClassifier
from deltamix.experiments.glue.methods import METHODS
from deltamix.experiments.glue.run import GlueRunConfig, run_glue
from deltamix.experiments.glue.serve import serve

__all__ = ["METHODS", "GlueRunConfig", "TaskClassifier", "run_glue", "serve"]
