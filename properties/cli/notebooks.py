"""Execute the project's notebooks (``notebooks/*.ipynb``), in the test suite and to refresh the
outputs committed with them.

docs/design.md ("Notebooks are executed by the test suite, so they never rot"). Each notebook runs in
a fresh IPython kernel started with this interpreter (``sys.executable -m ipykernel_launcher``),
whatever kernel specs the user has installed, with the notebooks folder as its working folder.

    python -m properties.cli.notebooks            # execute every notebook, report, change nothing
    python -m properties.cli.notebooks --write    # execute and save the outputs into the files
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence


__all__ = ["NOTEBOOKS", "notebooks", "execute", "main"]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted(folder.glob("[0-9][0-9]-*.ipynb"))


def _kernel_manager():
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager  # optional: the notebooks extra
    from jupyter_client.manager import KernelManager  # optional: the notebooks extra

    class _ThisPython(KernelSpecManager):
        """Every kernel name resolves to an ipykernel on this very interpreter."""

        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name="Python 3 (dmabuf-check)", language="python",
                              env={"MPLBACKEND": "module://matplotlib_inline.backend_inline",
                                   "PYDEVD_DISABLE_FILE_VALIDATION": "1"})

    return KernelManager(kernel_name="python3", kernel_spec_manager=_ThisPython())


def execute(path: str | Path, timeout: int = 120, write: bool = False):
    """Run every cell of the notebook at ``path`` in a fresh kernel; return the executed
    notebook (``nbformat.NotebookNode``). A failing cell raises ``nbclient``'s
    ``CellExecutionError`` naming the cell. With ``write``, save the outputs into the file."""
    import nbformat  # optional: the notebooks extra
    from nbclient import NotebookClient  # optional: the notebooks extra

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, km=_kernel_manager(), timeout=timeout, allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    # the kernel spec name stays "python3", so the files open anywhere
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if write:
        for cell in nb.cells:
            cell.get("metadata", {}).pop("execution", None)
        nbformat.write(nb, path)
    return nb


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m properties.cli.notebooks",
                                 description="execute the notebooks (and optionally save their outputs)")
    ap.add_argument("paths", nargs="*", help="notebooks (default: every numbered notebook)")
    ap.add_argument("--write", action="store_true", help="save the outputs into the notebook files")
    a = ap.parse_args(argv)
    paths = [Path(p) for p in a.paths] or notebooks()
    for p in paths:
        t = time.monotonic()
        print(f"{p.name} ...", file=sys.stderr, flush=True)
        execute(p, write=a.write)
        print(f"{p.name}: ok ({time.monotonic() - t:.1f} s){' , written' if a.write else ''}",
              file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
