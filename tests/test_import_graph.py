"""securelink's modules form layers: no import cycle, hidden or not, and no import that dodges one.

The graph is read from the source with :mod:`ast`: every import of a securelink module, at module
level or inside a function, relative or absolute, except those under ``if TYPE_CHECKING:`` (which
never run).  A function-local import of a securelink module is allowed only when it is listed in
``ALLOWED_LOCAL`` with the reason, which is never a cycle: a cycle would be caught by the graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "securelink"
SOURCE = Path(__file__).resolve().parent.parent / "src" / PACKAGE

#: (importing module, imported module): why it is imported inside a function, not at the top.
ALLOWED_LOCAL = {
    ("securelink", "securelink._identity"): "PEP 562 lazy name: `import securelink` stays cheap",
    ("securelink", "securelink._inspect"): "PEP 562 lazy name: `import securelink` stays cheap",
    ("securelink", "securelink._rotation"): "PEP 562 lazy name: `import securelink` stays cheap",
    ("securelink._translate", "securelink._unwrap"): "only explain() and translate_errors() "
    "need it, on the failure path: `import securelink` does not load it",
    ("securelink.__main__", "securelink._clihints"): "CLI start-up: loaded on a failure only",
    ("securelink.__main__", "securelink._inspect"): "CLI start-up: one subcommand's module",
    ("securelink.__main__", "securelink.devca"): "CLI start-up: one subcommand's module",
    ("securelink.__main__", "securelink._material"): "CLI start-up: one subcommand's module",
    ("securelink.__main__", "securelink._demo"): "CLI start-up: one subcommand's module",
    ("securelink.__main__", "securelink._probe"): "CLI start-up: one subcommand's module",
    ("securelink.__main__", "securelink.errors"): "CLI start-up: imported with its subcommand",
}


def module_name(path: Path) -> str:
    """The dotted name of the module at *path* under src/."""
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_type_checking(node: ast.If) -> bool:
    """Whether *node* is ``if TYPE_CHECKING:`` (securelink defines the name as a plain False)."""
    test = node.test
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The securelink modules that a ``from ... import ...`` names (a module or its members)."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    if target != PACKAGE and not target.startswith(PACKAGE + "."):
        return []
    # `from . import errors` imports a module; `from .errors import X` imports from one.
    found = [target]
    for alias in node.names:
        candidate = f"{target}.{alias.name}"
        if (SOURCE.parent / Path(*candidate.split("."))).with_suffix(".py").exists():
            found.append(candidate)
    return found


def imports_of(path: Path) -> list[tuple[str, bool, int]]:
    """Each securelink module *path* imports: (module, inside a function, line)."""
    module = module_name(path)
    is_package = path.name == "__init__.py"
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child):
                for other in child.orelse:  # the else branch does run
                    visit(other, in_function)
                continue
            if isinstance(child, ast.ImportFrom):
                found.extend(
                    (t, in_function, child.lineno) for t in resolve(module, is_package, child)
                )
            elif isinstance(child, ast.Import):
                found.extend(
                    (alias.name, in_function, child.lineno)
                    for alias in child.names
                    if alias.name == PACKAGE or alias.name.startswith(PACKAGE + ".")
                )
            visit(
                child,
                in_function
                or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda),
            )

    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    visit(tree, False)
    # The package's PEP 562 names are imported by importlib from the module names of its _LAZY
    # table, which no import statement shows: they count as imports inside a function.
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["_LAZY"]
            and isinstance(node.value, ast.Dict)
        ):
            found.extend(
                (f"{module}.{value.value}", True, node.lineno)
                for value in node.value.values
                if isinstance(value, ast.Constant) and isinstance(value.value, str)
            )
    return found


def graph() -> dict[str, set[str]]:
    """Each module of the package, with the securelink modules it imports (itself excluded)."""
    edges: dict[str, set[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        module = module_name(path)
        targets = {t for t, _, _ in imports_of(path)}
        # Importing securelink.x runs securelink/__init__ first, but that is the package's
        # own business, not an edge of x's: only named modules count.
        edges[module] = {t for t in targets if t not in (module, PACKAGE)}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of *edges* as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := walk(start)):
            return cycle
    return None


class TestFinder:
    """The scan itself sees what it must: a test that cannot fail proves nothing."""

    def test_sees_a_cycle(self) -> None:
        """A cycle through three modules is found and printed in order."""
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
        assert find_cycle(edges) == ["a", "b", "c", "a"]
        assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None

    def test_sees_every_kind_of_import(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Relative, absolute and function-level imports count; TYPE_CHECKING ones do not."""
        package = tmp_path / PACKAGE
        package.mkdir()
        for name in ("__init__", "errors", "_a", "_b", "_c", "_d"):
            (package / f"{name}.py").write_text("")
        source = package / "_a.py"
        source.write_text(
            "from . import errors\n"
            "import securelink._b\n"
            "TYPE_CHECKING = False\n"
            "if TYPE_CHECKING:\n"
            "    from ._d import D\n"
            "def f():\n"
            "    from ._c import C\n"
        )
        monkeypatch.setattr(__import__(__name__, fromlist=["SOURCE"]), "SOURCE", package)
        assert sorted(imports_of(source)) == [
            ("securelink", False, 1),
            ("securelink._b", False, 2),
            ("securelink._c", True, 7),
            ("securelink.errors", False, 1),
        ]


class TestImportGraph:
    """The package's real import graph."""

    def test_no_cycle(self) -> None:
        """No module imports, directly or through others, a module that imports it."""
        cycle = find_cycle(graph())
        assert cycle is None, "import cycle: " + " -> ".join(cycle or [])

    def test_function_local_imports_are_allowed_ones(self) -> None:
        """Each securelink module imported inside a function is listed, with the reason."""
        local = set()
        for path in sorted(SOURCE.rglob("*.py")):
            module = module_name(path)
            local |= {
                (module, target)
                for target, in_function, _ in imports_of(path)
                if in_function and target not in (module, PACKAGE)
            }
        assert sorted(local - ALLOWED_LOCAL.keys()) == []
        # An entry that no longer matches an import would allow the next one silently.
        assert sorted(ALLOWED_LOCAL.keys() - local) == []

    def test_every_module_is_read(self) -> None:
        """The scan covers the modules the package is known to have."""
        edges = graph()
        assert {
            "securelink",
            "securelink._connect",
            "securelink._sockets",
            "securelink.aio",
        } <= set(edges)
        assert "securelink._context" in edges["securelink._connect"]
        assert "securelink._connect" not in edges["securelink._sockets"]
