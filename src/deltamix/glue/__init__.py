"""Diff pruning on GLUE: the methods compared (``methods``), one run end to end (``run``), multi-task serving (``serve``).

>>> from deltamix.glue import GlueRunConfig, run_glue
>>> record = run_glue(GlueRunConfig(task="rte", method="diffprune", data_dir="glue_data"))  # doctest: +SKIP
"""

from __future__ import annotations

from deltamix.glue.methods import METHODS
from deltamix.glue.run import GlueRunConfig, run_glue
from deltamix.glue.serve import serve

__all__ = ["METHODS", "GlueRunConfig", "run_glue", "serve"]
