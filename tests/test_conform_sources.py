"""The kernel lines known.toml and the catalog cite, checked against the Debian source of the 6.12
kernel that conform boots (properties/conform/sources.py; opt-in: skipped unless
``python -m properties.conform.sources 6.12`` has put the files in the kernel cache).

- every ``source`` line of known.toml: its ``code`` is that line of that file, verbatim (but for
  indentation), inside the named function, and the entry's ``source_version`` is the fetched one;
- every ``file:function:line`` reference in the v6.12 text of the catalog's udmabuf, system-heap and
  vgem policies: the line is inside that function (or initialiser), and the word that follows the
  reference is on that line.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from model.catalog import CATALOG
from properties.conform.compare import load_known
from properties.conform.sources import FILES, cached_sources

KERNEL = "6.12"
_HIT = cached_sources(KERNEL)
pytestmark = pytest.mark.skipif(_HIT is None, reason=f"the Debian source of kernel {KERNEL} is not cached "
                                "(python -m properties.conform.sources 6.12)")

# path:function:line, then the word the line must hold ('...' quotes, a leading '.' and a
# trailing ',' ';' ')' are dropped)
_REF = re.compile(r"((?:drivers|include)/[\w/.-]+\.[ch]):(\w+):(\d+)\s+'?\.?([\w>-]+)")


def _lines(path: str) -> list[str]:
    folder, _meta = _HIT
    return (Path(folder) / path).read_text(errors="replace").splitlines()


def _definition(lines: list[str], line: int) -> str:
    """The top-level definition line ``line`` (1-based) is inside: the nearest line above it that
    starts in column 0 with a name; "" when a closing brace in column 0 comes first."""
    for i in range(line - 1, -1, -1):
        text = lines[i]
        if i < line - 1 and text.startswith("}"):
            return ""
        if text[:1].isalpha() or text[:1] == "_":
            return text
    return ""


def _in(name: str, definition: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", definition) is not None


def test_the_fetched_source_is_the_booted_kernel_version():
    folder, meta = _HIT
    assert meta["package"] == "linux-source-6.12" and set(meta["files"]) == set(FILES)
    for k in load_known():
        if k.source:
            assert k.source_version == meta["version"], k.id


def test_every_quoted_known_line_is_at_its_place():
    checked = 0
    for k in load_known():
        for s in k.source:
            assert s.file in FILES, (k.id, s.file)
            lines = _lines(s.file)
            assert lines[s.line - 1].strip() == s.code, (k.id, s.label(k.source_version))
            assert _in(s.function, _definition(lines, s.line)), (k.id, s.label(k.source_version))
            checked += 1
    assert checked >= 5


def test_every_catalog_reference_of_v6_12_is_at_its_place():
    _folder, meta = _HIT
    for name in ("udmabuf", "system-heap", "vgem"):
        why = CATALOG[name].why
        assert f"linux-source-6.12 {meta['version']}" in why, name
        refs = _REF.findall(why)
        assert len(refs) >= 8, (name, refs)
        for path, function, line, word in refs:
            lines = _lines(path)
            at = f"{name}: {path}:{function}:{line}"
            assert word in lines[int(line) - 1], (at, word, lines[int(line) - 1])
            assert _in(function, _definition(lines, int(line))), (at, _definition(lines, int(line)))


def test_a_moved_line_is_caught():
    # the checks above can fail: the line after a quoted one does not hold it
    k = next(k for k in load_known() if k.source)
    s = k.source[0]
    assert _lines(s.file)[s.line].strip() != s.code
