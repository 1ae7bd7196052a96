"""Strengthening invariants: facts about reachable states that the documented properties need in
order to be proved by induction (the Z3 engine).

An induction proof checks that a property is preserved by every step from *every* state within
the schema's ranges, reachable or not. Some documented properties are not preserved from states
the model can never reach (an attachment mapped but not attached; a buffer not exported yet
with an attachment); the invariants here rule those states out. Each is a property like any
other: every engine checks it, it cites the claims whose properties it helps to prove, and the
Z3 engine proves it (Houdini's algorithm keeps only invariants that are themselves inductive,
together with the others), so a proof that uses it stands on its own.

- I-ATT-MAPPED-LIVE, I-UNEXPORTED-UNUSED: kept by the core (attach/detach/map, and every entry
  point needing a reference or an fd); they let P-MIGRATE-MAPPED (LIFE-MIGRATE) be proved.
- I-VMAP-RESIDENT, I-KMAP-RESIDENT, I-RESIDENT-UNSWAPPABLE, I-BRACKET-AVAILABLE: kept by an
  exporter that never evicts what is pinned or mapped, and whose begin makes storage available;
  they let the kmap claims (P-KMAP-PINNED, P-KMAP-BACKED, P-KMAP-SUCCEEDS) be proved for the
  policies that keep them, which is how the synthesis query's answer is proved for every depth.
"""
from __future__ import annotations

from model.state import FENCE_NONE, LIFE_UNEXPORTED
from model.terms import and_, eq, implies, not_, or_

from .property import Property

__all__ = ["PROPERTIES"]

V4_11 = ("v4.11",)   # they support the kmap and begin claims, which v5.12 deleted


def _kmapped(v, b):
    return or_(*(x for p in v.pages() for x in (v.s.kmaps[b][p] > 0, v.s.kmaps_atomic[b][p] > 0)))


def _unused(v, b):
    s, sc = v.s, v.scope
    return and_(
        eq(s.kref[b], 0), eq(s.pins[b], 0), eq(s.user_pins[b], 0), eq(s.vmapping_counter[b], 0),
        eq(s.exp_vmaps[b], 0), eq(s.fence[b], FENCE_NONE), not_(s.kopen[b]), not_(s.uopen[b]),
        not_(_kmapped(v, b)),
        *(not_(and_(s.fd_open[f], eq(s.fd_buf[f], b))) for f in range(sc.fds)),
        *(not_(and_(s.vma_live[m], eq(s.vma_buf[m], b))) for m in range(sc.vmas)),
        *(not_(and_(s.att_live[a], eq(s.att_buf[a], b))) for a in range(sc.attachments)))


PROPERTIES = (
    Property(
        "I-ATT-MAPPED-LIVE", ("DEV-SEQUENCE", "LIFE-MIGRATE"), "core", "always",
        "an attachment mapped for DMA is attached (strengthening invariant)",
        lambda v: and_(*(implies(v.s.att_mapped[a], v.s.att_live[a]) for a in range(v.scope.attachments)))),
    Property(
        "I-UNEXPORTED-UNUSED", ("LIFE-EXPORT",), "core", "always",
        "nothing refers to or uses a buffer before dma_buf_export: no reference, fd, mapping, "
        "attachment, fence, bracket, pin, vmap or kmap (strengthening invariant)",
        lambda v: and_(*(implies(eq(v.s.life[b], LIFE_UNEXPORTED), _unused(v, b)) for b in v.buffers()))),
    Property(
        "I-VMAP-RESIDENT", ("KCPU-ALWAYS-SUCCEED", "FIXME-KMAP-PINNED"), "exporter", "always",
        "vmapped storage is present: the exporter never evicts it (strengthening invariant)",
        lambda v: and_(*(implies(v.s.vmapping_counter[b] > 0, v.s.resident[b]) for b in v.buffers())),
        revisions=V4_11),
    Property(
        "I-KMAP-RESIDENT", ("KCPU-ALWAYS-SUCCEED", "FIXME-KMAP-PINNED"), "exporter", "always",
        "storage that is never swapped out is present while a page of it is kmapped "
        "(strengthening invariant)",
        lambda v: implies(not_(v.k.swappable),
                          and_(*(implies(_kmapped(v, b), v.s.resident[b]) for b in v.buffers()))),
        revisions=V4_11),
    Property(
        "I-RESIDENT-UNSWAPPABLE", ("BEGIN-AVAILABLE", "KCPU-ALWAYS-SUCCEED"), "exporter", "always",
        "storage allocated at export and never swapped out stays present (strengthening invariant)",
        lambda v: implies(and_(not_(v.k.swappable), v.k.starts_resident),
                          and_(*(implies(v.s.life[b] != LIFE_UNEXPORTED, v.s.resident[b]) for b in v.buffers()))),
        revisions=V4_11),
    Property(
        "I-BRACKET-AVAILABLE", ("BEGIN-AVAILABLE",), "exporter", "always",
        "while a kernel bracket is open, storage that is never swapped out is present "
        "(strengthening invariant)",
        lambda v: implies(not_(v.k.swappable),
                          and_(*(implies(v.s.kopen[b], v.s.resident[b]) for b in v.buffers()))),
        revisions=V4_11),
)
