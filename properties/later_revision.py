"""The later revision (v5.12): the properties of the ``M-*`` claims, and which revisions each claim
of ``spec/claims.md`` applies to.

Claims: M-NO-KMAP, M-BEGIN-COHERENCY-ONLY, M-PIN-NOT-USER, M-END-UNDO (spec/claims.md, "The later
revision"), from the v5.12 documentation (corpus §6.2 to §6.5): kmap is gone and vmap is
"bracketed with begin and end"; begin "ensure[s] that the memory is actually coherent for cpu
access" (the allocate/swap-in/pin wording and the FIXME deleted by de9114ece5df); pinning is
``dma_buf_pin``'s, and "It is not permitted to allow userspace to pin arbitrary amounts of buffers
through this interface"; end may "flush caches and undo anything else done in @begin_cpu_access".

What an exporter's begin and end do is the same knobs at both revisions; these properties judge
it against the later text. An exporter that still pins in begin (omapdrm) breaks
M-BEGIN-COHERENCY-ONLY at v5.12, and M-PIN-NOT-USER when its storage is swappable (a userspace
SYNC_START then pins it, the "de-facto mlock" the FIXME worried about, now ruled out).

``CLAIM_REVISIONS`` says which revisions each claim's sentence exists in, and ``CHANGES`` what
the later revision did to it (the report's revision comparison reads both).
"""
from __future__ import annotations

from model.constants import ERRNO
from model.derived import device_mapped, device_pinned
from model.terms import and_, eq, implies, le, lt, not_, or_

from .registry import Property

__all__ = ["PROPERTIES", "CLAIM_REVISIONS", "CHANGES", "claim_revisions", "LATER"]

LATER = ("v5.12",)
BOTH = ("v4.11", "v5.12")

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
}


def claim_revisions(cid: str) -> tuple[str, ...]:
    """The documentation revisions whose text has claim ``cid``."""
    if cid.startswith("M-"):
        return LATER
    return ("v4.11",) if cid in _GONE else BOTH


def _all_claims() -> dict[str, tuple[str, ...]]:
    return {cid: claim_revisions(cid) for cid in CHANGES}


CLAIM_REVISIONS: dict[str, tuple[str, ...]] = _all_claims()


def _on_buf(v, fn):
    """``fn(b)`` for the buffer the step acted on (``v.buf``), as a term."""
    return or_(*(and_(eq(v.buf, b), fn(b)) for b in v.buffers()))


PROPERTIES = (
    Property(
        "P-NO-KMAP", ("M-NO-KMAP",), "core", "always",
        "no page is kmapped: vmap is the only kernel mapping of a dma-buf",
        lambda v: and_(*(and_(eq(v.s.kmaps[b][p], 0), eq(v.s.kmaps_atomic[b][p], 0))
                         for b in v.buffers() for p in v.pages())),
        revisions=LATER),
    Property(
        "W-VMAP-IN-BRACKET", ("M-NO-KMAP",), "core", "witness",
        "a kernel load through a vmap inside an open begin/end bracket finds the storage",
        lambda v: and_(eq(v.ret, 0), v.at(v.pre.kopen, v.buf), v.at(v.pre.vmapping_counter, v.buf) > 0,
                       not_(v.ev.kernel_access_unbacked)),
        on="step", action="kernel_read", applies=lambda p: p.has_vmap, revisions=LATER),
    Property(
        "P-VMAP-BRACKET", ("M-NO-KMAP", "KCPU-BRACKET"), "importer", "undefined",
        "a kernel load or store through a vmap outside begin/end_cpu_access ('users must call "
        "dma_buf_begin_cpu_access() and dma_buf_end_cpu_access() around any cpu access')",
        lambda v: v.ev.kernel_access_unbracketed, on="step", revisions=LATER),
    Property(
        "P-BEGIN-NO-PIN", ("M-BEGIN-COHERENCY-ONLY",), "exporter", "step",
        "begin_cpu_access (from the kernel or the SYNC ioctl) takes no pin on the storage: it is a "
        "coherency hook, and pinning is dma_buf_pin's",
        lambda v: implies(v.ev.exporter_begin_called, le(v.at(v.post.pins, v.buf), v.at(v.pre.pins, v.buf))),
        on="step", revisions=LATER),
    Property(
        "P-USER-NO-PIN", ("M-PIN-NOT-USER",), "exporter", "always",
        "no pin of swappable storage is held on behalf of userspace (only a kernel importer pins, "
        "with dma_buf_pin)",
        lambda v: implies(v.k.swappable, and_(*(eq(v.s.user_pins[b], 0) for b in v.buffers()))),
        revisions=LATER),
    Property(
        "W-PIN-HOLDS", ("M-PIN-NOT-USER",), "core", "witness",
        "memory pressure is refused on swappable storage that a device attachment pinned with "
        "dma_buf_pin and has not mapped",
        lambda v: and_(eq(v.ret, -ERRNO["EBUSY"]), _on_buf(v, lambda b: and_(
            device_pinned(v.pre, v.scope, b), not_(device_mapped(v.pre, v.scope, b))))),
        on="step", action="reclaim", applies=lambda p: p.swappable and not p.evict_pinned,
        revisions=LATER),
    Property(
        "P-END-UNDO", ("M-END-UNDO",), "exporter", "step",
        "end_cpu_access undoes what begin_cpu_access did: a pin begin took is dropped",
        lambda v: implies(and_(v.ev.end_ok, v.ev.exporter_end_called, v.at(v.pre.pins, v.buf) > 0),
                          lt(v.at(v.post.pins, v.buf), v.at(v.pre.pins, v.buf))),
        on="step", revisions=LATER),
    Property(
        "P-DETACH-PINNED", ("LIFE-DETACH",), "importer", "undefined",
        "an importer detaches an attachment that still holds a dma_buf_pin",
        lambda v: v.ev.detach_while_pinned, on="step", revisions=LATER),
)
