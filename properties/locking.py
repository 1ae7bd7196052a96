"""The v6.12 documentation: the reservation-lock convention and dynamic attachments.

Claims (spec/claims.md, "The v6.12 revision"): L-IMPORTER-LOCKED, L-IMPORTER-UNLOCKED,
L-EXPORTER-LOCKED-CB ("DOC: locking convention", corpus §6.6), R-MOVE-NOTIFY, R-MOVE-NOTIFY-LOCKED
(``@move_notify``, §6.3) and R-PIN-STATIC (``@pin``, §6.3). The events come from
``model/actions/resv.py``, where the convention is one table.

An importer breaking the convention is a caller's obligation broken (kind ``undefined``, party
importer), reported as a finding like the other obligations; an exporter callback that takes the
lock the core already holds is a deadlock, the exporter's (kind ``step``). The model's dynamic
exporter moves storage only under the lock and calls dma_buf_move_notify (P-MOVE-NOTIFY); a
non-dynamic attachment keeps the storage pinned (P-STATIC-PINNED, a core promise, shown able to
fail by the mutant core ``mutant-static-no-pin``). Witnesses show each new action can succeed and
the convention can be kept.
"""
from __future__ import annotations

from model.actions.resv import V6_12
from model.terms import and_, ge, not_

from .property import Property

__all__ = ["PROPERTIES"]


def _witness(action: str, claims: tuple[str, ...], applies=None, clean: str | None = None) -> Property:
    ok = (lambda v: and_(ge(v.ret, 0), not_(getattr(v.ev, clean)))) if clean else (lambda v: ge(v.ret, 0))
    return Property("W-" + action.upper().replace("_", "-"), claims, "core", "witness",
                    f"some {action} step succeeds" + (f" without the event {clean}" if clean else ""),
                    ok, on="step", action=action, applies=applies, revisions=V6_12)


_VMAP = lambda p: p.has_vmap  # noqa: E731
_DYNAMIC = lambda p: p.dynamic  # noqa: E731

PROPERTIES = (
    Property(
        "P-RESV-LOCKED-CALL", ("L-IMPORTER-LOCKED",), "importer", "undefined",
        "an importer calls dma_buf_pin, dma_buf_unpin, dma_buf_map_attachment, "
        "dma_buf_unmap_attachment, dma_buf_vmap or dma_buf_vunmap without holding the buffer's "
        "reservation lock",
        lambda v: v.ev.resv_not_held, on="step", revisions=V6_12),
    Property(
        "P-RESV-UNLOCKED-CALL", ("L-IMPORTER-UNLOCKED",), "importer", "undefined",
        "an importer holding the buffer's reservation lock calls a function of the unlocked list "
        "(dma_buf_attach, dma_buf_get, dma_buf_begin_cpu_access, the _unlocked variants, ...)",
        lambda v: v.ev.resv_held_unlocked_call, on="step", revisions=V6_12),
    Property(
        "P-RESV-NO-DEADLOCK", ("L-EXPORTER-LOCKED-CB",), "exporter", "step",
        "no callback the core invokes with the reservation lock held (pin, unpin, map_dma_buf, "
        "unmap_dma_buf, vmap, vunmap) takes the lock itself",
        lambda v: not_(v.ev.resv_deadlock), on="step", revisions=V6_12),
    Property(
        "P-MOVE-NOTIFY", ("R-MOVE-NOTIFY",), "exporter", "step",
        "a dynamic exporter that moves storage a dynamic attachment is attached to calls "
        "dma_buf_move_notify (so its move_notify runs)",
        lambda v: not_(v.ev.moved_unnotified), on="step", action="exporter_move", applies=_DYNAMIC,
        revisions=V6_12),
    Property(
        "P-STATIC-PINNED", ("R-PIN-STATIC",), "core", "step",
        "storage a non-dynamic attachment is attached to is never moved: dma_buf_attach pinned it",
        lambda v: not_(v.ev.moved_static), on="step", action="exporter_move", applies=_DYNAMIC,
        revisions=V6_12),
    Property(
        "W-MOVE-NOTIFY", ("R-MOVE-NOTIFY", "R-MOVE-NOTIFY-LOCKED"), "core", "witness",
        "a dynamic exporter moves storage a dynamic attachment has mapped, and move_notify runs",
        lambda v: v.ev.move_notify, on="step", action="exporter_move",
        applies=lambda p: p.dynamic and p.move_notifies, revisions=V6_12),
    Property(
        "W-LOCKED-MAP", ("L-IMPORTER-LOCKED", "R-MOVE-NOTIFY-LOCKED"), "core", "witness",
        "an importer maps an attachment holding the reservation lock, as the convention asks",
        lambda v: and_(ge(v.ret, 0), not_(v.ev.resv_not_held)), on="step",
        action="dma_buf_map_attachment", revisions=V6_12),
    _witness("dma_resv_lock", ("L-IMPORTER-LOCKED",)),
    _witness("dma_resv_unlock", ("L-IMPORTER-LOCKED",)),
    _witness("dma_buf_map_attachment_unlocked", ("L-IMPORTER-UNLOCKED",), clean="resv_held_unlocked_call"),
    _witness("dma_buf_unmap_attachment_unlocked", ("L-IMPORTER-UNLOCKED",), clean="resv_held_unlocked_call"),
    _witness("dma_buf_vmap_unlocked", ("L-IMPORTER-UNLOCKED",), _VMAP, clean="resv_held_unlocked_call"),
    _witness("dma_buf_vunmap_unlocked", ("L-IMPORTER-UNLOCKED",), _VMAP, clean="vunmap_bug"),
    _witness("dma_buf_dynamic_attach", ("R-MOVE-NOTIFY",)),
    _witness("exporter_move", ("R-MOVE-NOTIFY",), _DYNAMIC),
)
