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

Which revisions each claim's sentence exists in, and what the later revision did to it, are
claim metadata: ``properties.claims`` (``claim_revisions``, ``CHANGES``).
"""
from __future__ import annotations

from model.constants import ERRNO
from model.policy import since
from model.derived import device_mapped, device_pinned
from model.terms import and_, eq, implies, le, lt, not_, or_

from .property import Property

__all__ = ["PROPERTIES", "LATER"]

LATER = since("v5.12")


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
