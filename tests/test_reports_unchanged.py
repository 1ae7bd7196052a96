"""The reports of fixed-seed runs stay what they were before the engines moved behind one
interface (``properties/engines/interface.py``) and one runner (``properties/runs/runner.py``).

The files in ``tests/golden/`` were written by the code before the move (commit d502b01) with the
commands below; each run here must give the same JSON report and the same standard output, timings
aside. Hypothesis and Z3 are pinned in ``pyproject.toml``: another version draws other examples or
answers with other models, and these files would then have to be written again
(``DMABUF_WRITE_GOLDEN=1 pytest tests/test_reports_unchanged.py``).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).parent.parent

RUNS = {
    "campaign-hyp": ["campaign", "--engine", "hypothesis", "--exporter", "omapdrm", "--exporter",
                     "broken-end-no-flush", "--scope", "small", "--examples", "60", "--steps", "20",
                     "--seed", "3", "--jobs", "1", "--database", "none"],
    "campaign-z3": ["campaign", "--engine", "z3", "--exporter", "omapdrm", "--scope", "small", "--depth", "4",
                    "--jobs", "1"],
    "explore": ["explore", "--exporter", "i915", "--scope", "tiny"],
    "prove": ["prove", "--exporter", "omapdrm", "--only", "bmc", "--depth", "4"],
    "litmus": ["litmus"],
}

_TIMING_KEYS = {"seconds", "induction_seconds"}
_TIMING_TEXT = re.compile(r"\d+(\.\d+)? s\b")


def _strip(x):
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if k not in _TIMING_KEYS}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    if isinstance(x, str):
        return _rooted(x)
    return x


def _rooted(text: str) -> str:
    """The clone's own path (litmus reports name their files absolutely) as ``<root>``: a clone
    elsewhere gives the same report."""
    return text.replace(str(ROOT), "<root>")


def _run(name: str, tmp: Path) -> tuple[dict, str]:
    out = tmp / f"{name}.json"
    p = subprocess.run([sys.executable, "-m", "properties.cli", *RUNS[name], "--json", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(out.read_text()), p.stdout


@pytest.mark.parametrize("name", sorted(RUNS))
def test_report_and_output_unchanged(name, tmp_path):
    report, text = _run(name, tmp_path)
    if os.environ.get("DMABUF_WRITE_GOLDEN"):
        (GOLDEN / f"{name}.json").write_text(json.dumps(_strip(report), indent=1) + "\n")
        (GOLDEN / f"{name}.txt").write_text(_rooted(text))
    want_report = json.loads((GOLDEN / f"{name}.json").read_text())
    want_text = (GOLDEN / f"{name}.txt").read_text()
    assert _strip(report) == _strip(want_report)
    assert _TIMING_TEXT.sub("<t> s", _rooted(text)) == _TIMING_TEXT.sub("<t> s", want_text)
