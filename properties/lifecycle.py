"""Properties of the buffer lifecycle: release, references, attachments, the size check.

Claims: LIFE-EXPORT, LIFE-SIZE, LIFE-RELEASE, LIFE-MIGRATE, LIFE-DETACH, LIFE-VMAP-RELEASE,
MMAP-SIZE-CHECK, MMAP-SURVIVES-CLOSE, DEV-SEQUENCE (spec/claims.md, "Lifecycle").
"""
from __future__ import annotations

from model.derived import device_mapped, total_refs
from model.state import LIFE_LIVE, LIFE_RELEASED
from model.terms import and_, eq, implies, le, not_

from .property import Property

__all__ = ["PROPERTIES"]

PROPERTIES = (
    Property(
        "P-RELEASE-ONCE", ("LIFE-RELEASE",), "core", "always",
        "ops->release runs at most once, and exactly once for a released buffer",
        lambda v: and_(*(and_(le(v.s.release_calls[b], 1),
                              eq(eq(v.s.life[b], LIFE_RELEASED), eq(v.s.release_calls[b], 1)))
                         for b in v.buffers()))),
    Property(
        "P-RELEASE-LAST-REF", ("LIFE-RELEASE", "MMAP-SURVIVES-CLOSE"), "core", "always",
        "a live buffer has a reference (fd, kernel reference, or a mapping of its file) and a "
        "released one has none",
        lambda v: and_(*(and_(implies(eq(v.s.life[b], LIFE_LIVE), total_refs(v.s, v.k, v.scope, b, False) > 0),
                              implies(eq(v.s.life[b], LIFE_RELEASED), eq(total_refs(v.s, v.k, v.scope, b, False), 0)))
                         for b in v.buffers()))),
    Property(
        "P-NO-ACCESS-AFTER-RELEASE", ("LIFE-RELEASE", "MMAP-SURVIVES-CLOSE"), "core", "step",
        "no CPU access reaches a buffer's storage after ops->release",
        lambda v: not_(v.ev.exporter_after_release), on="step"),
    Property(
        "P-FD-LIVE", ("LIFE-EXPORT",), "core", "always",
        "an open fd refers to a live dma-buf",
        lambda v: and_(*(implies(v.s.fd_open[f], eq(v.at(v.s.life, v.s.fd_buf[f]), LIFE_LIVE))
                         for f in range(v.scope.fds)))),
    Property(
        "P-MIGRATE-MAPPED", ("LIFE-MIGRATE",), "exporter", "always",
        "while an attachment is mapped, the storage stays in place",
        lambda v: and_(*(implies(device_mapped(v.s, v.scope, b), v.s.resident[b]) for b in v.buffers()))),
    Property(
        "P-EVICT-UNPINNED", ("LIFE-MIGRATE",), "exporter", "step",
        "memory pressure never evicts storage that is pinned or mapped for a device",
        lambda v: not_(v.ev.evicted_pinned), on="step"),
    Property(
        "P-MAPPING-IN-BOUNDS", ("LIFE-SIZE", "MMAP-SIZE-CHECK"), "core", "always",
        "every mapping lies inside its buffer, whose size never changes",
        lambda v: and_(*(implies(v.s.vma_live[m], le(v.s.vma_pgoff[m] + v.s.vma_npages[m], v.scope.pages))
                         for m in range(v.scope.vmas)))),
    Property(
        "P-MMAP-SIZE-CHECK", ("MMAP-SIZE-CHECK",), "core", "step",
        "the exporter's mmap never sees a vma larger than the buffer",
        lambda v: not_(v.ev.mmap_too_large), on="step"),
    Property(
        "P-VMAP-AT-RELEASE", ("LIFE-VMAP-RELEASE",), "importer", "undefined",
        "an importer drops its last reference while a vmap is live (BUG_ON in dma_buf_release)",
        lambda v: v.ev.vmap_release_bug, on="step"),
    Property(
        "P-DETACH-ORDER", ("LIFE-DETACH", "DEV-SEQUENCE"), "importer", "undefined",
        "an importer detaches a mapped attachment, or drops the buffer while still attached",
        lambda v: v.ev.detach_while_mapped | v.ev.release_while_attached, on="step"),
)
