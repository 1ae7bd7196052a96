"""The shape of the code: the import graph of the project's modules (``model/``, ``properties/``)
has no cycle; imports inside functions are kept only for a heavy or optional dependency or for
start-up time, and say so in a comment on their line; only the command line (``properties/cli/``)
knows about argparse and the ``properties.cli`` package; comments and docstrings cite only files
the repository has.

The graph is built with ``ast``: every ``import`` and ``from ... import`` statement, at module
level or inside a function (both run, sooner or later), relative imports resolved, ``from
package import module`` counted as an import of the module. Imports under ``if TYPE_CHECKING:``
are left out: they never run.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("model", "properties")
CLI = "properties.cli"

# Command-line programs of their own, run with ``python -m`` (Makefile targets), that nothing in
# the library imports: the benchmarks. They may parse their arguments with argparse.
OWN_COMMAND_LINES = ("properties.bench",)

# Documents that are not in the repository under these names (the repository's own are
# docs/design.md and docs/interface.md; "issue N" points to a tracker the repository does not have).
_UNCITABLE = re.compile(r"(?<![\w/])(DESIGN\.md|STYLE\.md|interface\.md)|\bissue\s+#?\d+", re.I)

# Citations still to fix in a file another branch is editing (its docstring says DESIGN.md for
# docs/design.md): (path, citation). Remove the entry with the fix.
_NOT_YET_FIXED: set[tuple[str, str]] = set()


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            parts = f.relative_to(ROOT).with_suffix("").parts
            is_pkg = parts[-1] == "__init__"
            mods[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return mods


MODULES = _modules()


def _resolve(mod: str, is_pkg: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.Module):
    """(import node, inside a function?) for every import that runs."""
    def walk(node, in_func):
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, in_func
            yield from walk(child, in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                  ast.Lambda)))
    yield from walk(tree, False)


def _targets(mod: str, is_pkg: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement names (modules where they are modules)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = _resolve(mod, is_pkg, node.level, node.module)
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _project(name: str) -> str | None:
    """The project module a dotted name falls in (its longest known prefix), or None."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


class Source:
    def __init__(self, mod: str, path: Path, is_pkg: bool):
        self.mod, self.path, self.is_pkg = mod, path, is_pkg
        self.text = path.read_text()
        self.lines = self.text.splitlines()
        self.tree = ast.parse(self.text, str(path))
        self.imports = [(n, f, _targets(mod, is_pkg, n)) for n, f in _imports(self.tree)]


SOURCES = [Source(m, f, p) for m, (f, p) in MODULES.items()]


def import_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(MODULES)
    for s in SOURCES:
        for node, _, targets in s.imports:
            for t in targets:
                p = _project(t)
                if p is not None and p != s.mod:
                    g.add_edge(s.mod, p, line=f"{s.path.relative_to(ROOT)}:{node.lineno}")
    return g


def test_no_import_cycle():
    g = import_graph()
    cycles = sorted(nx.simple_cycles(g), key=lambda c: (len(c), c))
    lines = []
    for c in cycles:
        hops = [f"{a} -> {b} ({g.edges[a, b]['line']})" for a, b in zip(c, c[1:] + c[:1])]
        lines.append("cycle: " + "; ".join(hops))
    print("\n".join(lines))
    assert not cycles, f"{len(cycles)} import cycles:\n" + "\n".join(lines)


def _third_party_or_project(name: str) -> bool:
    top = name.split(".")[0]
    return top not in sys.stdlib_module_names and top != "__future__"


def test_imports_inside_functions_say_why():
    """An import inside a function of a project or third-party module has a '#' comment on its line
    (why it is there: a heavy or optional dependency, start-up time); the others are at the top."""
    bare = []
    for s in SOURCES:
        for node, in_func, targets in s.imports:
            if not in_func or not any(_third_party_or_project(t) for t in targets):
                continue
            if not any("#" in s.lines[i - 1] for i in range(node.lineno, node.end_lineno + 1)):
                bare.append(f"{s.path.relative_to(ROOT)}:{node.lineno}: {s.lines[node.lineno - 1].strip()}")
    assert not bare, "imports inside functions without a reason:\n" + "\n".join(bare)


def test_only_the_command_line_knows_argparse():
    wrong = []
    for s in SOURCES:
        if s.mod == CLI or s.mod.startswith(CLI + ".") or s.mod.startswith(OWN_COMMAND_LINES):
            continue
        for node, _, targets in s.imports:
            for t in targets:
                if t.split(".")[0] == "argparse" or t == CLI or t.startswith(CLI + "."):
                    wrong.append(f"{s.path.relative_to(ROOT)}:{node.lineno}: imports {t}")
    assert not wrong, "\n".join(wrong)


def test_no_library_module_imports_a_benchmark():
    wrong = [f"{s.path.relative_to(ROOT)}:{node.lineno}: imports {t}" for s in SOURCES
             if not s.mod.startswith(OWN_COMMAND_LINES) for node, _, targets in s.imports for t in targets
             if t.startswith(OWN_COMMAND_LINES)]
    assert not wrong, "\n".join(wrong)


def _comments_and_docstrings(s: Source):
    for tok_line, line in enumerate(s.lines, 1):
        if "#" in line:
            yield tok_line, line[line.index("#"):]
    for node in ast.walk(s.tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


@pytest.mark.parametrize("pkg", PACKAGES)
def test_comments_cite_what_the_repository_has(pkg):
    wrong = []
    for s in SOURCES:
        if s.mod.split(".")[0] != pkg:
            continue
        for line, text in _comments_and_docstrings(s):
            for m in _UNCITABLE.finditer(text):
                if (str(s.path.relative_to(ROOT)), m.group(0)) in _NOT_YET_FIXED:
                    continue
                wrong.append(f"{s.path.relative_to(ROOT)}:{line}: {m.group(0)!r}")
    assert not wrong, "citations of files the repository does not have:\n" + "\n".join(sorted(set(wrong)))


def test_the_graph_is_the_whole_project():
    """The test sees every module (a module it missed could hide a cycle)."""
    g = import_graph()
    assert "properties.cli.app" in g and "model.machine" in g and "properties.engines.explicit" in g
    assert g.has_edge("properties.cli.app", "properties.runs.campaign")
