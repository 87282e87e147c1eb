"""Old module paths of deltamix 0.1, kept importable for one release with a `DeprecationWarning`.

The layered layout (library in ``core``, ``models``, ``data``, ``diffprune``, ``seqmix``,
``training``; harness in ``experiments``) moved these modules. ``import deltamix.seqmix.trainer``
still works and returns the module at its new path. Written by hand because the standard library has
no alias mechanism for modules; it holds names only, so it imports nothing of deltamix until used.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED_MODULES: dict[str, str] = {
    "deltamix.errors": "deltamix.core.errors",
    "deltamix.io": "deltamix.core.io",
    "deltamix.records": "deltamix.core.records",
    "deltamix.precision": "deltamix.core.precision",
    "deltamix.run_folder": "deltamix.core.run_folder",
    "deltamix.model_card": "deltamix.core.model_card",
    "deltamix.models.mixed_tokens": "deltamix.core.mixed_tokens",
    "deltamix.seqmix.tokens": "deltamix.core.mixed_tokens",
    "deltamix.seqmix.trainer": "deltamix.training.loop",
    "deltamix.seqmix.lr_schedule": "deltamix.training.lr_schedule",
    "deltamix.seqmix.predict": "deltamix.training.predict",
    "deltamix.metrics_seq2seq": "deltamix.training.metrics",
    "deltamix.metrics": "deltamix.experiments.glue.metrics",
    "deltamix.seqmix.scan_run": "deltamix.experiments.scan.run",
    "deltamix.seqmix.scan_compare": "deltamix.experiments.scan.compare",
    "deltamix.seqmix.text_run": "deltamix.experiments.text.run",
    "deltamix.glue": "deltamix.experiments.glue",
    "deltamix.report": "deltamix.experiments.report",
}
"""Old dotted module name -> the module that replaces it (packages move with their submodules)."""


def new_name(old: str) -> str | None:
    """The current name of module ``old``, or None where ``old`` did not move.

    >>> new_name("deltamix.glue.run")
    'deltamix.experiments.glue.run'
    """
    for moved, target in MOVED_MODULES.items():
        if old == moved or old.startswith(moved + "."):
            return target + old[len(moved) :]
    return None


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name as the module at its new path (the same module object, not a copy)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.target}; the old name goes away in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: `create_module` returned the imported module."""


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old names in `MOVED_MODULES` (first, so that a moved package's submodules are never
    loaded a second time under the old name)."""

    def find_spec(self, fullname: str, path: object, target: object = None):
        new = new_name(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Put `MovedModuleFinder` first in ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
