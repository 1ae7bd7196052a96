"""The notebooks: every one executes in a fresh kernel (so none can rot), stays thin (it imports
the package and defines no logic), and is committed with its outputs."""
from __future__ import annotations

import re
import time

import nbformat
import pytest

from properties.cli.notebooks import NOTEBOOKS, execute, notebooks

ALL = notebooks()
_LOGIC = re.compile(r"^\s*(def|class|for|while|if|with|try)\b|\blambda\b", re.M)


def test_the_five_notebooks_and_their_readme():
    names = [p.name for p in ALL]
    assert names == ["01-tour.ipynb", "02-counterexample-explorer.ipynb", "03-fixme.ipynb",
                     "04-pte-zapping.ipynb", "05-coherence-and-direction.ipynb"]
    readme = (NOTEBOOKS / "README.md").read_text()
    for n in names:
        assert n in readme


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_notebook_is_thin_and_committed_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for c in code:
        assert not _LOGIC.search(c.source), f"{path.name}: a cell defines logic:\n{c.source}"
        for line in c.source.splitlines():
            if line.startswith(("import ", "from ")):
                assert line.startswith(("from properties", "import properties")), line
        assert c.execution_count is not None, f"{path.name}: a cell was never executed"
    assert sum(1 for c in code if c.outputs) >= len(code) - 2, f"{path.name}: committed without outputs"
    assert not any(o.output_type == "error" for c in code for o in c.outputs)


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_notebook_executes(path):
    started = time.monotonic()
    nb = execute(path, timeout=120)
    seconds = time.monotonic() - started
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs) or path.name == "01-tour.ipynb"
    assert any("text/html" in o.get("data", {}) for o in outputs)
    assert seconds < 90, f"{path.name} took {seconds:.0f} s"
