"""The import graph of the package: no cycles, and a core that knows no client library.

Every ``import`` counts, wherever it is written: at the top, inside a function, or under
``if TYPE_CHECKING:`` (a type-only import still ties the two modules together).
"""

from __future__ import annotations

import ast
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import apirecorder

SRC = Path(apirecorder.__file__).resolve().parent
PACKAGE = "apirecorder"

#: Libraries the core never imports: the test runner and every client library.
CLIENT_LIBRARIES = frozenset(
    {
        "pytest",
        "openai",
        "anthropic",
        "ollama",
        "mcp",
        "httpx",
        "httpx2",
        "requests",
        "aiohttp",
        "google",
        "botocore",
        "urllib3",
    }
)

#: Shells over the core (may import anything): the public façade (it re-exports
#: ``mcp_client``), the pytest plugin and its settings module, the ASGI helpers, the CLI and
#: the interceptors.
SHELLS = frozenset(
    {PACKAGE, f"{PACKAGE}.pytest_plugin", f"{PACKAGE}._plugin_settings", f"{PACKAGE}.asgi"}
)
SHELL_PACKAGES = (f"{PACKAGE}._cli", f"{PACKAGE}._interceptors")

#: The one core module that installs the interceptors, through the package's installer
#: (``_interceptors/__init__``: a list of module names, importing no adapter or library).
INSTALLER = f"{PACKAGE}._interceptors"
COMPOSITION = f"{PACKAGE}._recording"

#: Type-only imports that still close a cycle, with the change that removes each. The test
#: fails when one becomes a runtime import, or is gone (then delete it here). None is left:
#: _redaction now reads a session through its own Protocol (``HasOptions``).
PENDING_TYPE_ONLY: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for inner in ast.walk(child):
                    if hasattr(inner, "lineno"):
                        lines.add(inner.lineno)
    return lines


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, bool]]:
    """Every module ``name`` imports, with whether the import is for type checking only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _type_checking_lines(tree)
    is_package = path.name == "__init__.py"
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno in typing_only) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.append(
                    (submodule if submodule in known else target, node.lineno in typing_only)
                )
    return found


def graph_here() -> dict[str, list[tuple[str, bool]]]:
    """The graph, parsed in this interpreter."""
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


@functools.cache
def _graph() -> dict[str, list[tuple[str, bool]]]:
    # Parsed in a fresh interpreter: CPython 3.11's parser can fail with "AST constructor
    # recursion depth mismatch" in a worker where another test hit a RecursionError.
    code = "import json, tests.test_import_graph as g; print(json.dumps(g.graph_here()))"
    # The same package as this test imported, whatever is installed.
    path = os.pathsep.join([str(SRC.parent), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        module: [(target, bool(typing_only)) for target, typing_only in targets]
        for module, targets in json.loads(out.stdout).items()
    }


def _is_core(module: str) -> bool:
    return module not in SHELLS and not module.startswith(SHELL_PACKAGES)


def test_there_are_no_import_cycles() -> None:
    graph = _graph()
    edges = {
        module: {
            target
            for target, typing_only in targets
            if target.startswith(f"{PACKAGE}.")
            and target != module
            and (module, target) not in PENDING_TYPE_ONLY
        }
        for module, targets in graph.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_pending_type_only_imports_are_still_type_only() -> None:
    graph = _graph()
    for module, target in sorted(PENDING_TYPE_ONLY):
        kinds = {typing_only for found, typing_only in graph[module] if found == target}
        assert kinds == {True}, f"{module} -> {target}: gone or no longer type-only"


def test_the_core_imports_no_interceptor_pytest_or_client_library() -> None:
    graph = _graph()
    offences = []
    for module, targets in sorted(graph.items()):
        if not _is_core(module):
            continue
        for target, _typing_only in targets:
            top = target.split(".")[0]
            adapter = target.startswith(f"{INSTALLER}.")
            installer = target == INSTALLER and module != COMPOSITION
            if top in CLIENT_LIBRARIES or adapter or installer:
                offences.append(f"{module} imports {target}")
    assert offences == []


def test_the_graph_sees_local_and_type_only_imports() -> None:
    # The parser itself: a function-local import and a TYPE_CHECKING one are both edges.
    graph = _graph()
    network = dict(graph[f"{PACKAGE}._network"])
    assert network[f"{PACKAGE}._recorder"] in (True, False)
    assert ("difflib", True) in graph[f"{PACKAGE}._diagnostics"]
