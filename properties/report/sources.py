"""Where a quoted kernel sentence is: file and line at a revision, derived from the project's own
data only (``spec/kernel-corpus.md`` and ``spec/seed-commit-0959a1683d78.txt``).

The line numbers come from two places:

* ``include/linux/dma-buf.h`` at 0959a1683d78 (v4.11): corpus section 2 holds the kerneldoc of
  ``struct dma_buf_ops`` verbatim from its ``/**`` line on; the seed commit's diff
  (``seed-commit-0959a1683d78.txt``) gives, in its hunk headers, the new-side line numbers of the
  lines it adds and keeps. :func:`seed_header_base` finds the one offset at which every hunk's
  new-side lines are the corpus copy's lines (the stored diff lost its blank context lines and its
  indentation, so lines are compared with whitespace collapsed and blank ones skipped), and refuses
  when no offset or more than one fits.
* ``include/linux/dma-buf.h`` at de9114ece5df (v5.12): the new side of that commit's two hunks, as
  posted (corpus section 6.2; the corpus records that the merged commit shows them unchanged).
  Only those lines have numbers.

Everything else has no line number in the project's data: ``drivers/dma-buf/dma-buf.c`` ("DOC: cpu
access" and "DOC: dma buf device access", corpus section 1) is copied without its position in the
file, and the seed diff covers the header only. A sentence there is located in its section
and its line is ``None``, with the reason (:attr:`SourceLine.note`); no number is invented.

:func:`locate` maps a quote (whitespace-normalised, kerneldoc comment leaders ignored) to its one
place and raises :class:`SourceError` when the quote is not in the text verbatim, or is there more
than once (ambiguous). :func:`claim_sources` does it for every quote of a claim, in the places its
``Source`` column names (``H @mmap``: the ``@mmap`` member of the header kerneldoc).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

__all__ = ["SourceError", "SourceLine", "Block", "COMMITS", "CORPUS_FILE", "SEED_DIFF_FILE", "normalise",
           "code_blocks", "corpus_code_text", "quote_in_corpus", "seed_header_base", "blocks", "locate", "reconstruction", "starts_at", "claim_sources",
           "source_url"]

SPEC = Path(__file__).resolve().parents[2] / "spec"
CORPUS_FILE = SPEC / "kernel-corpus.md"
SEED_DIFF_FILE = SPEC / "seed-commit-0959a1683d78.txt"

COMMITS = {"v4.11": "0959a1683d78", "v5.12": "de9114ece5df", "v6.12": "v6.12"}  # v6.12: the tag
HEADER = "include/linux/dma-buf.h"
CORE = "drivers/dma-buf/dma-buf.c"

_LEADER = re.compile(r"^\s*(?:/\*\*+|\*+/|\*(?!/))?\s?")


class SourceError(ValueError):
    """A quote that is not in the kernel text verbatim, or is there more than once."""


def normalise(text: str) -> str:
    """Whitespace collapsed to single spaces, ends stripped."""
    return " ".join(text.split())


def _line_words(line: str) -> str:
    """A source line without its kerneldoc comment leader (``/**``, `` * ``, `` */``)."""
    return normalise(_LEADER.sub("", line, count=1))


@dataclass(frozen=True)
class Block:
    """A stretch of kernel text at a revision: its lines, and the file line number of the first
    (``None``: the project's data gives no line numbers for it)."""

    file: str
    revision: str
    section: str                      # what the block is, for a reader ("DOC: cpu access")
    lines: tuple[str, ...]
    first: int | None
    note: str = ""                    # why there is no line number

    def stream(self) -> tuple[str, list[tuple[int, int]]]:
        """The block's words as one string, and (offset, index of the line) at each line's start."""
        parts, starts, pos = [], [], 0
        for i, line in enumerate(self.lines):
            w = _line_words(line)
            if not w:
                continue
            starts.append((pos, i))
            parts.append(w)
            pos += len(w) + 1
        return " ".join(parts), starts


@dataclass(frozen=True)
class SourceLine:
    """Where a quote is: file, revision, line (``None`` with ``note`` when the data has none)."""

    quote: str
    file: str
    revision: str
    section: str
    line: int | None
    note: str = ""

    @property
    def commit(self) -> str:
        return COMMITS[self.revision]

    def label(self) -> str:
        """``include/linux/dma-buf.h:185 @ 0959a1683d78``, or the file and section without a line."""
        if self.line is None:
            return f"{self.file} ({self.section}) @ {self.commit}"
        return f"{self.file}:{self.line} @ {self.commit}"

    def url(self) -> str:
        return source_url(self.file, self.commit, self.line)

    def to_json(self) -> dict:
        return {"quote": self.quote, "file": self.file, "revision": self.revision, "commit": self.commit,
                "section": self.section, "line": self.line, "url": self.url(),
                **({"no_line": self.note} if self.line is None else {})}


def source_url(file: str, commit: str, line: int | None = None) -> str:
    """The file at ``commit`` on git.kernel.org (torvalds/linux), at ``line`` when given."""
    return (f"https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/{file}?id={commit}"
            + (f"#n{line}" if line is not None else ""))


# --- the corpus --------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def code_blocks(path: Path = CORPUS_FILE) -> tuple[tuple[str, str, str], ...]:
    """Every fenced code block of the corpus: (the ``##``/``###`` heading it is under, its
    language, its text). Only code blocks are verbatim kernel text; the prose is the corpus's."""
    out, heading = [], ""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!") and re.match(r"^#{2,3} ", line):
            heading = line.lstrip("#").strip()
        m = re.match(r"^```(\w*)\s*$", line)
        if m:
            j = i + 1
            while j < len(lines) and lines[j].rstrip() != "```":
                j += 1
            out.append((heading, m.group(1), "\n".join(lines[i + 1:j])))
            i = j
        i += 1
    return tuple(out)


@lru_cache(maxsize=4)
def corpus_code_text(path: Path = CORPUS_FILE) -> str:
    """The words of every code block of the corpus, comment leaders dropped, whitespace collapsed;
    a diff block counts twice, as its old side and as its new side."""
    parts = []
    for _, lang, text in code_blocks(path):
        sides = _diff_sides(text) if lang == "diff" else [text.splitlines()]
        for side in sides:
            parts.append(" ".join(w for w in (_line_words(x) for x in side) if w))
    return "\n".join(parts)


def quote_in_corpus(quote: str) -> bool:
    """Whether ``quote`` is kernel text the corpus keeps: in a code block (whitespace-normalised,
    comment leaders ignored), or one of the v5.12 sentences that corpus section 6.2 quotes in its
    prose (:func:`blocks`)."""
    want = normalise(quote)
    if want and want in corpus_code_text():
        return True
    return any(want in b.stream()[0] for b in blocks("v5.12") if b.first is None)


def _diff_sides(text: str) -> list[list[str]]:
    old, new = [], []
    for line in text.splitlines():
        if line.startswith("@@"):
            old.append(""), new.append("")
        elif line.startswith("-"):
            old.append(line[1:])
        elif line.startswith("+"):
            new.append(line[1:])
        else:
            old.append(line[1:]), new.append(line[1:])
    return [old, new]


def _first_block(heading_prefix: str, lang: str = "c", nth: int = 0, path: Path = CORPUS_FILE) -> str:
    found = [t for h, lg, t in code_blocks(path) if h.startswith(heading_prefix) and lg == lang]
    if len(found) <= nth:
        raise SourceError(f"{path.name}: no {lang} block number {nth + 1} under a heading starting {heading_prefix!r}")
    return found[nth]


# --- line numbers ------------------------------------------------------------------------------

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def _seed_hunks(path: Path = SEED_DIFF_FILE) -> list[tuple[int, int, list[str]]]:
    """The seed diff's hunks: (new-side first line, new-side count, the new-side lines the stored
    copy kept, whitespace-normalised, blank ones dropped)."""
    hunks: list[tuple[int, int, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _HUNK.match(line)
        if m:
            hunks.append((int(m.group(1)), int(m.group(2) or 1), []))
            continue
        if not hunks or line.startswith(("-", "diff ", "index ", "--- ", "+++ ")):
            continue
        w = normalise(line[1:] if line.startswith("+") else line)
        if w:
            hunks[-1][2].append(w)
    return hunks


@lru_cache(maxsize=2)
def seed_header_base(corpus: Path = CORPUS_FILE, diff: Path = SEED_DIFF_FILE) -> int:
    """The file line number of the first line of the corpus copy of the ``struct dma_buf_ops``
    kerneldoc at 0959a1683d78: the one offset at which every hunk of the seed diff matches the copy.
    Raises :class:`SourceError` when none or several do."""
    copy = _first_block("2. ", path=corpus).splitlines()
    hunks = _seed_hunks(diff)
    if not hunks:
        raise SourceError(f"{diff.name}: no hunk header")
    fits = []
    for first in range(1, 2000):
        ok = True
        for start, count, seen in hunks:
            lo, hi = start - first, start + count - first          # indices into the copy
            # lines before the copy's first may only be lines the stored diff lost (blank ones):
            # every line it kept must be in the copy, in order, and nothing else that is not blank
            window = [normalise(x) for x in copy[max(lo, 0):max(hi, 0)]]
            if hi > len(copy) or [w for w in window if w] != seen:
                ok = False
                break
        if ok:
            fits.append(first)
    if len(fits) != 1:
        raise SourceError(f"{diff.name}: {len(fits)} offsets align its hunks with the corpus copy of "
                          f"{HEADER} (need exactly one): {fits[:5]}")
    return fits[0]


def _v512_header_blocks(corpus: Path = CORPUS_FILE) -> list[Block]:
    """The new side of de9114ece5df's dma-buf.h hunks (corpus section 6.2), one block per hunk."""
    text = _first_block("6.2 ", lang="diff", path=corpus)
    out: list[Block] = []
    cur: list[str] = []
    start = 0
    for line in text.splitlines() + ["@@ end"]:
        if line.startswith("@@"):
            if cur:
                out.append(Block(HEADER, "v5.12", "struct dma_buf_ops kerneldoc (de9114ece5df's hunks)",
                                 tuple(cur), start))
            m = _HUNK.match(line)
            start, cur = (int(m.group(1)) if m else 0), []
        elif not line.startswith("-"):
            cur.append(line[1:])
    return out


def _v512_core_prose(corpus: Path = CORPUS_FILE) -> Block:
    """The dma-buf.c sentences of de9114ece5df and the v5.12 ``dma_buf_pin()`` kerneldoc as the
    corpus quotes them in the prose of section 6.2 after the header diff (it keeps no copy of
    dma-buf.c at that revision)."""
    text = corpus.read_text(encoding="utf-8")
    start = text.index("\n### 6.2 ")
    end = text.index("\n### 6.3 ", start)
    after = text[text.index("\n```\n", text.index("```diff", start)) + 5:end]
    return Block(CORE, "v5.12", "de9114ece5df's dma-buf.c text and dma_buf_pin() kerneldoc, as quoted in corpus "
                 "section 6.2", tuple(after.strip().splitlines()), None,
                 "the project keeps no copy of drivers/dma-buf/dma-buf.c at de9114ece5df: corpus section 6.2 "
                 "quotes these sentences in its prose")


_NO_LINE_C = ("the project keeps no line-numbered copy of drivers/dma-buf/dma-buf.c (corpus section 1 copies "
              "the comment without its place in the file; the seed diff covers include/linux/dma-buf.h only)")


@lru_cache(maxsize=2)
def blocks(revision: str) -> tuple[Block, ...]:
    """The kernel text the project keeps for ``revision``, as blocks with line numbers where the
    data gives them."""
    if revision == "v4.11":
        header = _first_block("2. ").splitlines()
        return (
            Block(HEADER, revision, "struct dma_buf_ops kerneldoc", tuple(header), seed_header_base()),
            Block(CORE, revision, "DOC: cpu access", tuple(_first_block("1. ", nth=0).splitlines()), None,
                  _NO_LINE_C),
            Block(CORE, revision, "DOC: dma buf device access", tuple(_first_block("1. ", nth=1).splitlines()),
                  None, _NO_LINE_C),
        )
    if revision == "v5.12":
        return (*_v512_header_blocks(), _v512_core_prose())
    raise SourceError(f"no kernel text kept for revision {revision!r}")


# --- locating quotes ---------------------------------------------------------------------------

def _member_range(b: Block, member: str) -> tuple[int, int]:
    """Line indices [lo, hi) of the kerneldoc of ``@member`` in a block: from its ``@member:`` line
    to the next ``/**``."""
    lo = next((i for i, x in enumerate(b.lines) if _line_words(x) == f"@{member}:"), None)
    if lo is None:
        raise SourceError(f"{b.file} at {b.revision}: no kerneldoc member @{member}")
    hi = next((i for i in range(lo + 1, len(b.lines)) if b.lines[i].strip().startswith("/**")), len(b.lines))
    return lo, hi


def locate(quote: str, revision: str, files: Iterable[str] | None = None, member: str | None = None,
           sections: Iterable[str] | None = None) -> SourceLine:
    """The one place of ``quote`` in the kernel text kept for ``revision`` (restricted to
    ``files``, to the kerneldoc of ``@member``, to blocks whose section is in ``sections``).
    Raises :class:`SourceError` when it is not there verbatim, or is there more than once."""
    want = normalise(quote)
    if not want:
        raise SourceError("an empty quote")
    files = None if files is None else set(files)
    sections = None if sections is None else set(sections)
    hits: list[SourceLine] = []
    for b in blocks(revision):
        if (files is not None and b.file not in files) or (sections is not None and b.section not in sections):
            continue
        lo, hi = _member_range(b, member) if member and b.file == HEADER else (0, len(b.lines))
        if member and b.file != HEADER:
            continue
        sub = Block(b.file, b.revision, b.section, b.lines[lo:hi], b.first, b.note)
        text, starts = sub.stream()
        pos = text.find(want)
        while pos >= 0:
            idx = max(i for off, i in starts if off <= pos) + lo
            hits.append(SourceLine(want, b.file, revision, b.section,
                                   None if b.first is None else b.first + idx, b.note))
            pos = text.find(want, pos + 1)
    where = f"{revision}" + (f", {', '.join(sorted(files))}" if files else "") + (f", @{member}" if member else "")
    if not hits:
        raise SourceError(f"not found verbatim in the kernel text kept for {where}: {want!r}")
    if len(hits) > 1:
        raise SourceError(f"ambiguous: {len(hits)} places in the kernel text kept for {where} ("
                          + ", ".join(h.label() for h in hits) + f"): {want!r}")
    return hits[0]


def reconstruction(file: str, revision: str) -> dict[int, str]:
    """Line number -> line, for the lines of ``file`` at ``revision`` that the project's data
    numbers (the rest of the file is not known)."""
    out: dict[int, str] = {}
    for b in blocks(revision):
        if b.file == file and b.first is not None:
            out.update({b.first + i: x for i, x in enumerate(b.lines)})
    return out


def starts_at(file: str, revision: str, line: int, quote: str) -> bool:
    """Whether ``quote`` begins on ``line`` of the reconstruction of ``file`` at ``revision`` (and
    goes on, verbatim, over the lines after it)."""
    lines = reconstruction(file, revision)
    if line not in lines:
        return False
    first = _line_words(lines[line])
    rest = " ".join(w for w in (_line_words(lines[n]) for n in range(line + 1, line + 40) if n in lines) if w)
    pos = f"{first} {rest}".find(normalise(quote))
    return first != "" and 0 <= pos < len(first)


# claims.md Source letters -> (revision, file, sections)
_LETTERS = {
    "H": ("v4.11", HEADER, None),
    "D": ("v4.11", CORE, ("DOC: cpu access",)),
    "A": ("v4.11", CORE, ("DOC: dma buf device access",)),
    "M": ("v5.12", None, None),
}
# Letters of the v6.12 rows: the corpus keeps that text (§6.3, §6.6) in its later (v6.18-based) form and
# without line numbers, so a quote is placed in its file and section only.
_UNNUMBERED = {
    "L": ("v6.12", CORE, "DOC: locking convention"),
    "R": ("v6.12", HEADER, "struct dma_buf_ops, struct dma_buf_attach_ops"),
}
_UNNUMBERED_NOTE = ("the project keeps this text (corpus §6.3, §6.6) in its v6.18-based form, with no line "
                    "numbers")


def claim_sources(claim) -> tuple[SourceLine, ...]:
    """Each quote of ``claim`` (a ``properties.claims.Claim``) at its place, searched in the
    documentation its ``Source`` column names; a quote found in none of them, or in more than one
    place, raises :class:`SourceError`. A claim whose source is the code only (``C``, ``U``) has no
    documentation sentence: ()."""
    places = []
    letters = [p.split()[0] for p in claim.source.split(",") if p.split()]
    if any(x in _UNNUMBERED for x in letters):
        rev, file, section = _UNNUMBERED[next(x for x in letters if x in _UNNUMBERED)]
        return tuple(SourceLine(normalise(q), file, rev, section, None, _UNNUMBERED_NOTE) for q in claim.quotes)
    for part in claim.source.split(","):
        words = part.split()
        if not words or words[0] not in _LETTERS:
            continue
        member = next((w[1:] for w in words[1:] if w.startswith("@")), None)
        places.append((*_LETTERS[words[0]], member))
    if not places:
        return ()
    out = []
    for q in claim.quotes:
        found, errors = [], []
        for revision, file, sections, member in places:
            try:
                found.append(locate(q, revision, None if file is None else (file,), member, sections))
            except SourceError as e:
                errors.append(str(e))
                if str(e).startswith("ambiguous"):
                    raise SourceError(f"{claim.id}: {e}") from None
        if len(found) != 1:
            raise SourceError(f"{claim.id}: " + ("; ".join(errors) if not found else
                                                 f"the quote is in {len(found)} of its sources: {q!r}"))
        out.append(found[0])
    return tuple(out)
