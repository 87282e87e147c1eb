"""The source reads as its design: no import circles between modules, every deltamix import at the top
of its module, short functions and files of one idea.

A function-local import hides a dependency (and usually a circle); a function over `MAX_FUNCTION_LINES`
does several things a name could tell apart; a file over `MAX_FILE_LINES` holds several ideas unless it
is listed in `ONE_IDEA_FILES` with the reason. Each test names the places that break its rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "deltamix"
MAX_FUNCTION_LINES = 60
MAX_FILE_LINES = 500
ONE_IDEA_FILES: dict[str, str] = {  # path relative to src/ -> why it stays whole
    "deltamix/diffprune/fused.py": "the chunked L0 kernels: one autograd Function and its penalty",
}


def _modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package."""
    modules = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported_modules(node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    """The deltamix modules an import statement loads (``from pkg import mod`` counts ``pkg.mod``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "deltamix"]
    if node.level or not (node.module or "").startswith("deltamix"):
        return []
    submodules = [f"{node.module}.{alias.name}" for alias in node.names]
    return [node.module, *[name for name in submodules if name in known]]


def _imports(path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every deltamix import in ``path``."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.extend((name, child.lineno, in_function) for name in _imported_modules(child, known))
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _graph() -> dict[str, set[str]]:
    """Module -> the deltamix modules it imports (a package's ``__init__`` counts as the package)."""
    modules = _modules()
    return {
        module: {name for name, _, _ in _imports(path, set(modules)) if name in modules and name != module}
        for module, path in modules.items()
    }


def test_no_import_circles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "modules that import each other (directly or round a circle):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )


def test_deltamix_imports_are_at_the_top_of_a_module() -> None:
    modules = _modules()
    local = [
        f"{path.relative_to(SOURCE.parent)}:{line}: {name}"
        for path in modules.values()
        for name, line, in_function in _imports(path, set(modules))
        if in_function
    ]
    assert not local, "deltamix imports inside functions (move them to the top):\n" + "\n".join(local)


def test_functions_are_short() -> None:
    long = []
    for path in _modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(
                        f"{path.relative_to(SOURCE.parent)}:{node.lineno}: {node.name} ({lines} lines)"
                    )
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_files_hold_one_idea() -> None:
    large = []
    for path in _modules().values():
        name = str(path.relative_to(SOURCE.parent))
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_FILE_LINES and name not in ONE_IDEA_FILES:
            large.append(f"{name}: {lines} lines")
    assert not large, (
        f"files over {MAX_FILE_LINES} lines (split by idea, or list in ONE_IDEA_FILES):\n" + "\n".join(large)
    )


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    """A local import and a two-module circle are found."""
    path = tmp_path / "m.py"
    path.write_text("import os\n\ndef f():\n    from deltamix.core import io\n", encoding="utf-8")
    assert _imports(path, {"deltamix.core.io"}) == [
        ("deltamix.core", 4, True),
        ("deltamix.core.io", 4, True),
    ]
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
