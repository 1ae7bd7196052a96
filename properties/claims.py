"""The claim catalog, read from ``spec/claims.md`` (the project's own copy of the claims of the
seed documentation, with IDs, sources and quotes); the claims not modelled, with why; and
the claims' revision metadata: which documentation revisions have each sentence
(:func:`claim_revisions`) and what the later revision (v5.12) did to it (``CHANGES``).

A claim's text is the kernel's words in double quotes, verbatim, then the project's own words
after the label ``Reading:`` (``READING``; the convention at the top of ``spec/claims.md``):
:attr:`Claim.quotes` are the kernel's, :attr:`Claim.reading` the project's, and
:func:`marking_problem` says what is wrong with a text that mixes them unmarked.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from model.policy import REVISIONS, since

__all__ = ["Claim", "load_claims", "READING", "marking_problem", "CLAIMS_FILE", "NOT_MODELLED", "claim_revisions", "CLAIM_REVISIONS",
           "CHANGES", "LATER", "BOTH", "V6_12"]

CLAIMS_FILE = Path(__file__).resolve().parent.parent / "spec" / "claims.md"

READING = "Reading:"
_QUOTE = re.compile(r'"([^"]*)"')

_ROW = re.compile(r"^\|\s*([A-Z][A-Z0-9-]+)\s*\|\s*([^|]*)\|\s*(.*)\|\s*([^|]*)\|\s*$")


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    text: str
    who: str
    section: str

    @property
    def kernel(self) -> str:
        """The kernel's words: the quotes before the ``Reading:`` label ("" when there are none)."""
        return self.text.split(READING, 1)[0].strip()

    @property
    def reading(self) -> str:
        """The project's own words, after the ``Reading:`` label ("" when the claim is all quote)."""
        return self.text.split(READING, 1)[1].strip() if READING in self.text else ""

    @property
    def quotes(self) -> tuple[str, ...]:
        """The kernel sentences the claim quotes (before its reading), verbatim."""
        return tuple(_QUOTE.findall(self.kernel))

    @property
    def revisions(self) -> tuple[str, ...]:
        """The documentation revisions whose text has this claim."""
        return claim_revisions(self.id)


@lru_cache(maxsize=1)
def load_claims(path: Path = CLAIMS_FILE) -> dict[str, Claim]:
    out: dict[str, Claim] = {}
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        m = _ROW.match(line)
        if m and m.group(1) != "ID":
            out[m.group(1)] = Claim(m.group(1), m.group(2).strip(), m.group(3).strip(), m.group(4).strip(), section)
    return out


def marking_problem(text: str) -> str | None:
    """What breaks the quote/reading convention in a claim's text, or None: the project's words
    must follow ``Reading:`` (once); before it there may be only quotes (and punctuation between
    them), and every double quote must be closed."""
    if text.count('"') % 2:
        return "an unclosed double quote"
    if text.count(READING) > 1:
        return f"{READING!r} more than once"
    kernel = text.split(READING, 1)[0]
    loose = re.sub(r"[\s.,;:]+", " ", _QUOTE.sub(" ", kernel)).strip()
    if loose:
        return f"words outside quotes not marked as the project's reading ({READING!r}): {loose!r}"
    if not _QUOTE.search(kernel) and READING not in text:
        return "neither a quote nor a reading"
    return None


# Claims of the v4.11 documentation that no property formalises, and why.
NOT_MODELLED: dict[str, str] = {
    "KCPU-RANGE-UB": "begin_cpu_access has taken no range since v4.6 ('dma-buf: Remove range-based "
                     "flush'); the sentence refers to arguments that no longer exist at v4.11, so "
                     "there is no range to model. It is a documentation drift finding.",
    "MMAP-INTERNAL-OVERFLOW": "kernel-internal dma_buf_mmap() is not an action of the model (no "
                              "importer forwards its own mmap); its 64-bit checks are a bit-precise "
                              "arithmetic question for the Z3 engine.",
    "MMAP-REDIRECT-ONLY": "a design assumption ('redirecting the initial mmap is all that's needed'), "
                          "not a rule a state or step can break; its tension with MMAP-ZAP-ALL shows "
                          "in P-ZAP-ALL and P-ZAP-OWN-FILE (an exporter faking coherency must zap PTEs, "
                          "for which the interface offers nothing).",
    "FIXME-NO-KMAP-USERS": "a statement about which kernel callers existed in 2016; the FIXME's "
                           "question with and without kmap users is a policy-synthesis query for "
                           "the Z3 engine, not a property of one policy.",
    # v6.12 (properties/locking.py has the others)
    "L-EXPORTER-UNLOCKED-CB": "a promise of the core that no step of the model can break: the core "
                              "itself never holds the lock around these callbacks (the model's "
                              "_unlocked variants hold it only around map/unmap/vmap/vunmap), and the "
                              "importer holding it around them is L-IMPORTER-UNLOCKED's finding "
                              "(P-RESV-UNLOCKED-CALL); the model's callbacks take no lock of their own.",
    "L-EXPORTER-MOVE-NOTIFY": "the model's exporter_move always holds the lock (its guard waits while "
                              "the importer holds it); an exporter calling dma_buf_move_notify "
                              "without the lock is not a knob (no real driver in the catalog is "
                              "dynamic).",
    "R-MOVE-NOTIFY-REMAP": "'as soon as possible' sets no point by which the importer must have "
                           "re-mapped, and the old mapping 'stay[s] valid': a move changes no data "
                           "of the model, so no state or step can break it.",
    "R-PIN-NO-MOVE": "kept by exporter_move's guard (a pinned buffer is not moved); an exporter "
                     "evicting pinned storage is the knob evict_pinned, judged through reclaim by "
                     "P-MIGRATE-MAPPED and W-PIN-HOLDS (LIFE-MIGRATE, M-PIN-NOT-USER).",
}


# The documentation revisions, and which of them each claim's sentence exists in.
LATER = since("v5.12")
BOTH = REVISIONS
V6_12 = since("v6.12")   # the L- and R- claims: the v6.12 revision

# Claims whose sentence the later documentation no longer has; every other v4.11 claim is kept
# (the M- claims exist at v5.12 only).
_GONE = ("KCPU-REMAP", "KCPU-ATOMIC-NOBLOCK", "KCPU-ATOMIC-2", "KCPU-RANGE-UB", "KCPU-ALWAYS-SUCCEED",
         "KCPU-KMAP-AFTER-END", "BEGIN-AVAILABLE", "END-FLUSH-UNPIN", "FIXME-NO-USER-PIN",
         "FIXME-KMAP-PINNED", "FIXME-NO-KMAP-USERS", "MMAP-OPTIONAL-DRIFT")

_FIXME = ("the FIXME was deleted by de9114ece5df (v5.12) once kmap was gone (v5.6); the userspace "
          "pinning concern moved to dma_buf_pin's rule (M-PIN-NOT-USER)")

CHANGES: dict[str, str] = {
    "KCPU-BRACKET": "kept: vmap accesses are bracketed with begin/end (dma_buf_vmap's new kerneldoc, "
                    "de9114ece5df)",
    "KCPU-REMAP": "deleted: page-based access went with dma_buf_kmap (7f0de8d80816, v5.6)",
    "KCPU-ATOMIC-NOBLOCK": "deleted: kmap_atomic was removed in v4.19",
    "KCPU-ATOMIC-2": "deleted: kmap_atomic was removed in v4.19",
    "KCPU-RANGE-UB": "deleted with the kmap text (v5.6); the range arguments it refers to were "
                     "already gone in v4.6",
    "KCPU-ALWAYS-SUCCEED": "deleted with kmap (v5.6); de9114ece5df also dropped 'Fallback to kmap "
                           "should be implemented'",
    "KCPU-VMAP-FAIL": "kept ('The vmap call can fail ...'); the fallback to kmap is gone",
    "KCPU-VMAP-REFCOUNT": "kept verbatim (corpus §6.4)",
    "KCPU-KMAP-AFTER-END": "deleted by de9114ece5df; end now 'undo[es] anything else done in "
                           "@begin_cpu_access' (M-END-UNDO)",
    "BEGIN-AVAILABLE": "deleted by de9114ece5df: begin only 'ensure[s] that the memory is actually "
                       "coherent for cpu access' (M-BEGIN-COHERENCY-ONLY)",
    "BEGIN-COHERENT": "kept verbatim",
    "BEGIN-DIRECTION-UB": "kept verbatim",
    "BEGIN-OPTIONAL": "kept ('This callback is optional.')",
    "BEGIN-ERRORS": "kept: the Returns paragraph is unchanged",
    "BEGIN-FENCE-WAIT": "kept, and now documented: dma_buf_begin_cpu_access() 'will also wait for "
                        "any DMA transactions tracked through implicit synchronization'",
    "END-FLUSH-UNPIN": "reworded by de9114ece5df: 'flush caches and undo anything else done in "
                       "@begin_cpu_access' (M-END-UNDO)",
    "END-OPTIONAL": "kept",
    "FIXME-NO-USER-PIN": _FIXME,
    "FIXME-KMAP-PINNED": _FIXME,
    "FIXME-NO-KMAP-USERS": _FIXME,
    "SYNC-BRACKET": "kept (typo fixes only)",
    "SYNC-RESTART": "kept",
    "SYNC-NO-COHERENCE": "kept",
    "SYNC-FLAGS": "kept: the SYNC decoding is byte-identical (corpus §5.1)",
    "SYNC-STATELESS": "kept: the core still keeps no SYNC state",
    "MMAP-INCOHERENT": "kept ('braket' corrected to 'bracket')",
    "MMAP-SIZE-CHECK": "kept verbatim",
    "MMAP-INTERNAL-OVERFLOW": "changed in v5.11: dma_buf_mmap() uses vma_set_file() and restores "
                              "nothing on failure, so vm_file and vm_pgoff now agree (corpus §6.1, §6.5)",
    "MMAP-ZAP-ALL": "kept verbatim",
    "MMAP-ANON-SHARED": "kept verbatim",
    "MMAP-OWN-FILE": "kept verbatim",
    "MMAP-SURVIVES-CLOSE": "kept (the code is unchanged)",
    "MMAP-REDIRECT-ONLY": "kept verbatim",
    "MMAP-OPTIONAL-DRIFT": "resolved in v4.19: dma_buf_export() stopped requiring mmap, map and "
                           "map_atomic ('Make mmap callback actually optional')",
    "LIFE-EXPORT": "kept", "LIFE-SIZE": "kept", "LIFE-RELEASE": "kept", "LIFE-MIGRATE": "kept",
    "LIFE-DETACH": "kept; a dma_buf_pin must also be undone before detach",
    "LIFE-VMAP-RELEASE": "kept (BUG_ON(dmabuf->vmapping_counter))",
    "DEV-SEQUENCE": "kept", "DEV-COHERENT-HANDOFF": "kept",
    "M-NO-KMAP": "new: kmap removed (v5.6), vmap bracketed with begin/end (de9114ece5df)",
    "M-BEGIN-COHERENCY-ONLY": "new in de9114ece5df (v5.12)",
    "M-PIN-NOT-USER": "new: dma_buf_pin (v5.7) and its kerneldoc (c545781e1c55, v5.12)",
    "M-END-UNDO": "new in de9114ece5df (v5.12)",
    "L-IMPORTER-LOCKED": "new: the locking convention (ae2e7f28a170, v6.2)",
    "L-IMPORTER-UNLOCKED": "new: the locking convention (v6.2), the _unlocked variants (v6.2)",
    "L-EXPORTER-UNLOCKED-CB": "new (v6.2); mmap() joined this list in v6.6",
    "L-EXPORTER-LOCKED-CB": "new (v6.2); mmap() left this list in v6.6",
    "L-EXPORTER-MOVE-NOTIFY": "new (v6.2)",
    "R-MOVE-NOTIFY": "new: dynamic DMA-buf (bb42df4662a4, v5.7), documented in the model's v6.12 revision",
    "R-MOVE-NOTIFY-LOCKED": "new: dynamic DMA-buf (v5.7)",
    "R-MOVE-NOTIFY-REMAP": "new: dynamic DMA-buf (v5.7)",
    "R-PIN-NO-MOVE": "new: the @pin op (v5.7), reworded by c545781e1c55 (v5.12)",
    "R-PIN-STATIC": "new: the @pin op (v5.7); the code moved the pin to map time in ~v6.16",
}


def claim_revisions(cid: str) -> tuple[str, ...]:
    """The documentation revisions whose text has claim ``cid``."""
    if cid.startswith("M-"):
        return LATER
    if cid.startswith(("L-", "R-")):
        return V6_12
    return ("v4.11",) if cid in _GONE else BOTH


def _all_claims() -> dict[str, tuple[str, ...]]:
    return {cid: claim_revisions(cid) for cid in CHANGES}


CLAIM_REVISIONS: dict[str, tuple[str, ...]] = _all_claims()
