"""Properties of kernel CPU access: brackets, kmap, kmap_atomic, vmap, and the FIXME's pinning.

Claims: KCPU-BRACKET, KCPU-REMAP, KCPU-ATOMIC-NOBLOCK, KCPU-ATOMIC-2, KCPU-ALWAYS-SUCCEED,
KCPU-VMAP-FAIL, KCPU-VMAP-REFCOUNT, KCPU-KMAP-AFTER-END, FIXME-KMAP-PINNED (spec/claims.md,
"Kernel CPU access" and the FIXME rows). The kmap properties apply at v4.11 only; the brackets
and vmap at both revisions.
"""
from __future__ import annotations

from model.derived import pinned
from model.terms import and_, any_of, eq, implies, ite, not_

from .property import Property

V4_11 = ("v4.11",)   # the kmap family and the FIXME are gone at v5.12 (corpus §6.1, §6.2)

__all__ = ["PROPERTIES"]


def _kmapped(v, b):
    return any_of(or_kmap for p in v.pages() for or_kmap in (v.s.kmaps[b][p] > 0, v.s.kmaps_atomic[b][p] > 0))


PROPERTIES = (
    Property(
        "P-KMAP-SUCCEEDS", ("KCPU-ALWAYS-SUCCEED", "KCPU-REMAP"), "exporter", "step",
        "kmap and kmap_atomic inside an open kernel bracket always succeed, however often",
        lambda v: not_(and_(v.ev.kmap_fail, v.at(v.pre.kopen, v.buf))), on="step", revisions=V4_11),
    Property(
        "P-KMAP-BACKED", ("KCPU-ALWAYS-SUCCEED", "FIXME-KMAP-PINNED"), "exporter", "step",
        "a kernel access through a kmap inside its bracket finds the storage there",
        lambda v: not_(and_(v.ev.kernel_access_unbacked, v.at(v.pre.kopen, v.buf))), on="step",
        revisions=V4_11),
    Property(
        "P-KMAP-PINNED", ("FIXME-KMAP-PINNED",), "exporter", "always",
        "while a kernel bracket is open and a page is kmapped, the storage is pinned and present",
        lambda v: and_(*(implies(and_(v.s.kopen[b], _kmapped(v, b)),
                                 and_(pinned(v.s, v.k, v.scope, b), v.s.resident[b])) for b in v.buffers())),
        revisions=V4_11),
    Property(
        "P-ATOMIC-NOBLOCK", ("KCPU-ATOMIC-NOBLOCK",), "exporter", "step",
        "kmap_atomic never has to bring storage in (which would block)",
        lambda v: not_(v.ev.atomic_blocked), on="step", revisions=V4_11),
    Property(
        "P-VMAP-REFCOUNT", ("KCPU-VMAP-REFCOUNT",), "core", "always",
        "the exporter's vmap has run exactly once while vmapping_counter > 0, and is undone at 0",
        lambda v: and_(*(eq(v.s.exp_vmaps[b], ite(v.s.vmapping_counter[b] > 0, 1, 0)) for b in v.buffers()))),
    Property(
        "P-KMAP-AFTER-END", ("KCPU-KMAP-AFTER-END",), "undefined", "undefined",
        "a kmap after end_cpu_access (documented as undefined)",
        lambda v: v.ev.kmap_after_end, on="step", revisions=V4_11),
    Property(
        "P-KERNEL-BRACKET", ("KCPU-BRACKET",), "importer", "undefined",
        "an importer kmaps or accesses the buffer without begin_cpu_access",
        lambda v: v.ev.kmap_outside_bracket | v.ev.kernel_access_unbracketed | v.ev.kernel_access_unmapped,
        on="step"),
    Property(
        "P-ATOMIC-2", ("KCPU-ATOMIC-2",), "importer", "undefined",
        "an importer holds more than 2 atomic kmaps",
        lambda v: v.ev.atomic_over_2, on="step", revisions=V4_11),
    Property(
        "P-VUNMAP-UNBALANCED", ("KCPU-VMAP-REFCOUNT",), "importer", "undefined",
        "an importer calls vunmap with no vmap live (BUG_ON)",
        lambda v: v.ev.vunmap_bug, on="step"),
    Property(
        "W-VMAP-FAILS", ("KCPU-VMAP-FAIL",), "importer", "witness",
        "vmap fails (the importer must fall back to kmap)",
        lambda v: v.ev.vmap_fail, on="step", applies=lambda p: not p.has_vmap),
)
