"""Proposed documentation fixes, as a patch: ``review.patch``.

The review's documentation findings (the v4.11 text contradicts itself, the code, or is stale)
each come with proposed wording here, as a unified diff against the v4.11 kerneldoc text: the
"DOC: cpu access" comment of ``drivers/dma-buf/dma-buf.c`` and the kerneldoc of
``struct dma_buf_ops`` in ``include/linux/dma-buf.h``, both at the seed commit 0959a1683d78. The
text patched is the project's own verbatim copy of those comments (``spec/kernel-corpus.md``
sections 1 and 2); hunk line numbers count from the first line of each copy. Every hunk names
its finding and the claims it is about in its ``@@`` line.

The wording is the project's proposal (a reading of the evidence, not a quote of the kernel).
Where the kernel later settled the question, the proposal follows what it settled on, and
``why`` says so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

__all__ = ["DocEdit", "DOC_EDITS", "CORPUS_FILE", "corpus_files", "build_patch", "edits_for"]

CORPUS_FILE = Path(__file__).resolve().parents[2] / "spec" / "kernel-corpus.md"

# the corpus sections that hold each comment verbatim (the first C block of the section)
_SECTIONS = {
    "drivers/dma-buf/dma-buf.c": "## 1. ",
    "include/linux/dma-buf.h": "## 2. ",
}

_CONTEXT = 3


@dataclass(frozen=True)
class DocEdit:
    """One proposed change of the v4.11 text: ``old`` (whole lines, found exactly once in
    ``file``) becomes ``new``."""

    finding: str                  # the finding's short name, as the review shows it
    claims: tuple[str, ...]       # the claims (spec/claims.md) the finding is about
    file: str                     # kernel path of the comment
    old: str
    new: str
    why: str                      # the evidence, in one or two sentences


DOC_EDITS: tuple[DocEdit, ...] = (
    DocEdit(
        "stale range sentence", ("KCPU-RANGE-UB",), "drivers/dma-buf/dma-buf.c",
        " *   dma_buf kmap calls outside of the range specified in begin_cpu_access are\n"
        " *   undefined. If the range is not PAGE_SIZE aligned, kmap needs to succeed on\n"
        " *   the partial chunks at the beginning and end but may return stale or bogus\n"
        " *   data outside of the range (in these partial chunks).\n",
        " *   dma_buf kmap calls outside of a dma_buf_begin_cpu_access() and\n"
        " *   dma_buf_end_cpu_access() bracket are undefined. begin_cpu_access takes no\n"
        " *   range: one bracket covers the whole buffer.\n",
        "begin_cpu_access has taken no range since v4.6 ('dma-buf: Remove range-based flush'); "
        "the sentence describes arguments that no longer exist at v4.11."),
    DocEdit(
        "the FIXME answered both ways", ("FIXME-NO-USER-PIN", "FIXME-KMAP-PINNED", "BEGIN-AVAILABLE"),
        "include/linux/dma-buf.h",
        "\t * exporter to ensure that the memory is actually available for cpu\n"
        "\t * access - the exporter might need to allocate or swap-in and pin the\n"
        "\t * backing storage. The exporter also needs to ensure that cpu access is\n",
        "\t * exporter to ensure that the memory is actually available for cpu\n"
        "\t * access - the exporter might need to allocate or swap-in the backing\n"
        "\t * storage. The exporter also needs to ensure that cpu access is\n",
        "begin cannot both pin (for kmap_atomic, FIXME-KMAP-PINNED) and not pin (for the SYNC "
        "ioctl, FIXME-NO-USER-PIN): one callback serves both callers and cannot tell them apart. "
        "The proposal takes the side the kernel took in v5.12 (de9114ece5df: begin only makes the "
        "memory coherent; pinning moved to dma_buf_pin, which userspace may not reach)."),
    DocEdit(
        "the FIXME answered both ways", ("FIXME-NO-USER-PIN", "FIXME-KMAP-PINNED", "FIXME-NO-KMAP-USERS"),
        "include/linux/dma-buf.h",
        "\t * FIXME: This is both called through the DMA_BUF_IOCTL_SYNC command\n"
        "\t * from userspace (where storage shouldn't be pinned to avoid handing\n"
        "\t * de-factor mlock rights to userspace) and for the kernel-internal\n"
        "\t * users of the various kmap interfaces, where the backing storage must\n"
        "\t * be pinned to guarantee that the atomic kmap calls can succeed. Since\n"
        "\t * there's no in-kernel users of the kmap interfaces yet this isn't a\n"
        "\t * real problem.\n",
        "\t * This is both called through the DMA_BUF_IOCTL_SYNC command from\n"
        "\t * userspace and for the kernel-internal users of the kmap interfaces,\n"
        "\t * and cannot tell them apart. It must not pin the backing storage: a\n"
        "\t * pin held from SYNC_START to SYNC_END hands de-facto mlock rights to\n"
        "\t * userspace. An exporter whose backing storage can be evicted must\n"
        "\t * therefore keep it resident by other means for as long as kernel CPU\n"
        "\t * access is possible, or the atomic kmap calls cannot always succeed.\n",
        "Both answers to the FIXME are reachable: an exporter that pins in begin lets a userspace "
        "SYNC pin swappable storage, one that does not leaves kmap_atomic without storage after "
        "eviction. 'No in-kernel users yet' does not hold as a rule: the model's kernel importer "
        "is such a user."),
    DocEdit(
        "the mmap size check floors", ("MMAP-SIZE-CHECK", "LIFE-SIZE"), "include/linux/dma-buf.h",
        "\t * dma-buf core checks whether a vma is too large and rejects such\n"
        "\t * mappings. The exporter hence does not need to duplicate this check.\n"
        "\t * Drivers do not need to check this themselves.\n",
        "\t * dma-buf core checks whether a vma is too large and rejects such\n"
        "\t * mappings. The exporter hence does not need to duplicate this check.\n"
        "\t * Drivers do not need to check this themselves. The check counts\n"
        "\t * whole pages (size >> PAGE_SHIFT): the partial last page of a buffer\n"
        "\t * whose size is not a multiple of PAGE_SIZE cannot be mapped.\n",
        "The bit-precise check of dma_buf_mmap_internal() (prove --only arith) shows that "
        "vm_pgoff + vma_pages(vma) > size >> PAGE_SHIFT refuses every mapping that reaches the "
        "partial last page; nothing in the text says so."),
    DocEdit(
        "@mmap called optional, required by dma_buf_export()", ("MMAP-OPTIONAL-DRIFT",),
        "include/linux/dma-buf.h",
        "\t * own file.\n"
        "\t *\n"
        "\t * This callback is optional.\n",
        "\t * own file.\n"
        "\t *\n"
        "\t * This callback is mandatory: dma_buf_export() refuses an exporter\n"
        "\t * without it, as it does without @kmap and @kmap_atomic.\n",
        "At v4.11 dma_buf_export() returns -EINVAL (WARN_ON) when ops->mmap, ops->kmap or "
        "ops->kmap_atomic is missing (corpus section 3.5); the code made mmap optional only in "
        "v4.19 ('Make mmap callback actually optional'). Either the text or the code must change; "
        "the proposal changes the text to what the v4.11 code does."),
)


@lru_cache(maxsize=1)
def corpus_files(path: Path = CORPUS_FILE) -> dict[str, str]:
    """Kernel path -> the verbatim comment text of the corpus copy (its first C block)."""
    text = path.read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for file, heading in _SECTIONS.items():
        start = text.index("\n" + heading) + 1
        m = re.compile(r"^```c\n(.*?)^```", re.S | re.M).search(text, start)
        if m is None:
            raise ValueError(f"{path}: no C block after {heading!r}")
        out[file] = m.group(1)
    return out


def edits_for(claims: Iterable[str]) -> tuple[DocEdit, ...]:
    """The edits about any of these claims, in patch order."""
    wanted = set(claims)
    return tuple(e for e in DOC_EDITS if wanted & set(e.claims))


def _hunk(lines: list[str], at: int, old: list[str], new: list[str], shift: int, title: str) -> list[str]:
    before = lines[max(0, at - _CONTEXT):at]
    after = lines[at + len(old):at + len(old) + _CONTEXT]
    start = at - len(before)
    n_old = len(before) + len(old) + len(after)
    n_new = len(before) + len(new) + len(after)
    head = f"@@ -{start + 1},{n_old} +{start + 1 + shift},{n_new} @@ {title}\n"
    return ([head] + [" " + x for x in before] + ["-" + x for x in old] + ["+" + x for x in new]
            + [" " + x for x in after])


def build_patch(edits: Iterable[DocEdit] = DOC_EDITS, files: dict[str, str] | None = None) -> str:
    """A unified diff (``git apply`` / ``patch -p1``) with one hunk per edit, each hunk's ``@@``
    line naming its finding and claims. Raises ``ValueError`` when an edit's old text is not
    found exactly once, or two edits' hunks would overlap."""
    files = corpus_files() if files is None else files
    by_file: dict[str, list[tuple[int, DocEdit]]] = {}
    for e in edits:
        text = files[e.file]
        if text.count(e.old) != 1:
            raise ValueError(f"{e.file}: the text of '{e.finding}' occurs {text.count(e.old)} times")
        by_file.setdefault(e.file, []).append((text[:text.index(e.old)].count("\n"), e))
    out: list[str] = []
    for file in files:
        if file not in by_file:
            continue
        lines = files[file].splitlines(keepends=True)
        out += [f"--- a/{file}\n", f"+++ b/{file}\n"]
        shift, last_end = 0, -1
        for at, e in sorted(by_file[file], key=lambda x: x[0]):
            old, new = e.old.splitlines(keepends=True), e.new.splitlines(keepends=True)
            while old and new and old[0] == new[0]:     # lines kept are context, not a change
                old, new, at = old[1:], new[1:], at + 1
            while old and new and old[-1] == new[-1]:
                old, new = old[:-1], new[:-1]
            if at - _CONTEXT <= last_end:
                raise ValueError(f"{file}: the hunk of '{e.finding}' overlaps the one before it")
            out += _hunk(lines, at, old, new, shift, f"{e.finding} ({', '.join(e.claims)})")
            shift += len(new) - len(old)
            last_end = at + len(old) + _CONTEXT
    return "".join(out)
