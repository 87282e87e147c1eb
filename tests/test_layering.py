"""The package import graph of deltamix goes one way: each package imports only packages of lower layers.

The layers, lowest first: shared core modules, data readers and models, the two methods, the
experiment harness (GLUE), the report and the command line. A package that imports one above it
(the model layer taking a type from a method, say) makes a circle a reader cannot follow; this test
names the import that does.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "deltamix"

LAYERS: list[set[str]] = [
    {"_moved"},  # old module names -> new ones (strings only)
    {"(root)"},  # deltamix/__init__.py: version and lazy exports only
    {"core"},  # errors, atomic IO, records, precision, run folders, model cards, mixed tokens
    {"data"},
    {"models"},
    {"diffprune"},
    {"seqmix"},
    {"training"},  # the seq2seq loop: trains any model with any SeqMix-family member
    {"experiments"},  # GLUE, SCAN, text runs, the report: never imported by the library
    {"cli"},
]
LAYER_OF = {package: i for i, layer in enumerate(LAYERS) for package in layer}


def _package(module: str) -> str:
    """``deltamix.seqmix.loss`` -> ``seqmix``; ``deltamix`` -> ``(root)``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported deltamix module, line) of every import statement in ``path``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("deltamix")
        ):
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "deltamix"]
    return found


def _modules() -> dict[str, Path]:
    modules = {}
    for path in SOURCE.rglob("*.py"):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def test_every_package_has_a_layer() -> None:
    packages = {_package(module) for module in _modules()}
    assert packages <= set(LAYER_OF), (
        f"give these packages a layer in LAYERS: {sorted(packages - set(LAYER_OF))}"
    )


def test_packages_import_only_lower_layers() -> None:
    upward = []
    for module, path in sorted(_modules().items()):
        source = _package(module)
        for target, line in _imports(path):
            imported = _package(target)
            if imported != source and LAYER_OF.get(imported, -1) >= LAYER_OF[source]:
                upward.append(f"{path.relative_to(SOURCE.parent)}:{line}: {source} imports {target}")
    assert not upward, "imports from a package to one of its own or a higher layer:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The scanner finds an import inside a function body too (the kind that hides a circle)."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from deltamix.cli.main import main\n", encoding="utf-8")
    assert _imports(path) == [("deltamix.cli.main", 2)]
