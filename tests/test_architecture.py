"""The package layering of docs/architecture.md, checked on the source: no import cycle, arrows one way,
and every store name spelled only in the store contract (core/store.py)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "explainers", "pipeline", "training", "benchmarks", "tests")
# package -> the project packages it may import (besides itself)
ALLOWED = {
    "core": set(),
    "explainers": set(),
    "pipeline": {"core", "explainers"},
    "training": {"core"},
    "benchmarks": {"core", "explainers", "pipeline", "training"},
    "tests": set(PACKAGES),
}
STORE_PREFIXES = ("index/", "pssl/", "progress/", "saliency/", "scores/", "predictions/")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    """Project modules imported anywhere in the file (function-level imports count too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name in MODULES and name != module}


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def test_the_import_graph_has_no_cycle():
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycle = trail[trail.index(target):] + [target] if target in trail else [module, target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_what_the_layering_allows(package):
    wrong = sorted(f"{module} imports {target}" for module, targets in GRAPH.items()
                   if module.split(".")[0] == package
                   for target in targets if target.split(".")[0] not in ALLOWED[package] | {package})
    assert not wrong, "\n".join(wrong)


def _string_parts(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_store_names_are_spelled_only_in_the_contract():
    contract = MODULES["core.store"]
    found = [f"{path.relative_to(ROOT)}:{line}: {text!r}"
             for path in MODULES.values() if path not in (contract, Path(__file__).resolve())
             for line, text in _string_parts(ast.parse(path.read_text()))
             if text.startswith(STORE_PREFIXES)]
    assert not found, "store names outside core/store.py:\n" + "\n".join(found)
