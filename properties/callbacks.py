"""Properties of the begin_cpu_access / end_cpu_access callbacks and the SYNC ioctl.

Claims: BEGIN-AVAILABLE, BEGIN-COHERENT, BEGIN-DIRECTION-UB, BEGIN-OPTIONAL, BEGIN-ERRORS,
BEGIN-FENCE-WAIT, END-FLUSH-UNPIN, END-OPTIONAL, FIXME-NO-USER-PIN, SYNC-BRACKET, SYNC-RESTART,
SYNC-NO-COHERENCE, SYNC-FLAGS, SYNC-STATELESS, MMAP-INCOHERENT, DEV-COHERENT-HANDOFF
(spec/claims.md, "The begin_cpu_access / end_cpu_access callbacks" and "Userspace access").
P-BEGIN-AVAILABLE, P-END-UNPINS and P-NO-USER-PIN apply at v4.11 only: v5.12 deleted the
allocate/swap-in/pin wording and the FIXME and reworded end ("undo anything else done in
@begin_cpu_access"); properties/later_revision.py has the v5.12 counterparts.
"""
from __future__ import annotations

from model.constants import ERRNO
from model.derived import reads_term
from model.state import FENCE_EXCL, FENCE_NONE
from model.terms import and_, eq, implies, ite, lt, not_, or_

from .property import Property

V4_11 = ("v4.11",)   # sentences the v5.12 documentation deleted or reworded (corpus §6.2)

__all__ = ["PROPERTIES"]


def _stale_in_bracket(v, good_direction: bool):
    """A stale CPU read inside an open bracket, no device write since it began, whose direction
    reads (``good_direction``) or does not."""
    def case(stale, is_open, direction, race):
        d_ok = reads_term(direction)
        return and_(stale, v.at(is_open, v.buf), d_ok if good_direction else not_(d_ok), not_(v.at(race, v.buf)))

    p = v.pre
    return or_(case(v.ev.user_stale_read, p.uopen, v.at(p.udir, v.buf), p.urace),
               case(v.ev.kernel_stale_read, p.kopen, v.at(p.kdir, v.buf), p.krace))


def _post_dir(v):
    return ite(v.ev.from_user, v.at(v.post.udir, v.buf), v.at(v.post.kdir, v.buf))


PROPERTIES = (
    Property(
        "P-BEGIN-AVAILABLE", ("BEGIN-AVAILABLE",), "exporter", "step",
        "when begin_cpu_access returns 0 the storage is present",
        lambda v: implies(v.ev.begin_ok, v.at(v.post.resident, v.buf)), on="step", revisions=V4_11),
    Property(
        "P-BEGIN-COHERENT", ("BEGIN-COHERENT", "DEV-COHERENT-HANDOFF"), "exporter", "step",
        "a CPU read inside a bracket whose direction reads sees what devices wrote before it began",
        lambda v: not_(_stale_in_bracket(v, True)), on="step"),
    Property(
        "P-DEVICE-HANDOFF", ("DEV-COHERENT-HANDOFF",), "exporter", "step",
        "a device sees what the CPU wrote inside a write bracket once that bracket has ended",
        lambda v: not_(v.ev.device_stale_handoff), on="step"),
    Property(
        "P-BEGIN-ERRORS", ("BEGIN-ERRORS",), "exporter", "step",
        "a begin_cpu_access that fails leaves no pin behind",
        lambda v: implies(v.ev.begin_failed, eq(v.at(v.post.pins, v.buf), v.at(v.pre.pins, v.buf))), on="step"),
    Property(
        "P-BEGIN-OPTIONAL", ("BEGIN-OPTIONAL",), "core", "step",
        "without the callback, begin fails only when the fence wait is interrupted",
        lambda v: implies(and_(not_(v.k.has_begin), v.ev.begin_failed),
                          or_(eq(v.ret, -ERRNO["ERESTARTSYS"]), eq(v.ret, -ERRNO["EINTR"]))), on="step"),
    Property(
        "P-END-OPTIONAL", ("END-OPTIONAL",), "core", "step",
        "without the callback, end always returns 0",
        lambda v: implies(not_(v.k.has_end), not_(v.ev.end_failed)), on="step"),
    Property(
        "P-FENCE-WAIT", ("BEGIN-FENCE-WAIT",), "core", "step",
        "after begin returns 0 no fence it must wait for is pending: READ waits for the exclusive "
        "fence, WRITE and RW for all",
        lambda v: implies(v.ev.begin_ok, ite(eq(_post_dir(v), 2),
                                             v.at(v.post.fence, v.buf) != FENCE_EXCL,
                                             eq(v.at(v.post.fence, v.buf), FENCE_NONE))), on="step"),
    Property(
        "P-END-UNPINS", ("END-FLUSH-UNPIN",), "exporter", "step",
        "end_cpu_access drops a pin that begin_cpu_access took",
        lambda v: implies(and_(v.ev.end_ok, v.ev.exporter_end_called, v.at(v.pre.pins, v.buf) > 0),
                          lt(v.at(v.post.pins, v.buf), v.at(v.pre.pins, v.buf))), on="step",
        revisions=V4_11),
    Property(
        "P-NO-USER-PIN", ("FIXME-NO-USER-PIN",), "exporter", "always",
        "no pin of swappable storage is held on behalf of userspace once the SYNC ioctl returns",
        lambda v: implies(v.k.swappable, and_(*(eq(v.s.user_pins[b], 0) for b in v.buffers()))),
        revisions=V4_11),
    Property(
        "P-SYNC-FLAGS", ("SYNC-FLAGS",), "core", "step",
        "SYNC with flags outside {1,2,3,5,6,7} returns -EINVAL and changes nothing",
        lambda v: implies(v.ev.sync_bad_flags, and_(eq(v.ret, -ERRNO["EINVAL"]),
                                                    *(eq(a, b) for a, b in zip(v.pre.flat(), v.post.flat())))),
        on="step"),
    Property(
        "P-SYNC-STATELESS", ("SYNC-STATELESS",), "core", "step",
        "every SYNC_END with valid flags reaches the exporter's end_cpu_access, bracket or not",
        lambda v: implies(and_(v.ev.sync_end, v.k.has_end), v.ev.exporter_end_called), on="step"),
    Property(
        "P-DIRECTION-UB", ("BEGIN-DIRECTION-UB",), "undefined", "undefined",
        "a stale CPU read inside a bracket whose direction does not read (documented as stale or bogus)",
        lambda v: _stale_in_bracket(v, False), on="step"),
    Property(
        "P-UNBRACKETED-STALE", ("SYNC-NO-COHERENCE", "MMAP-INCOHERENT"), "undefined", "undefined",
        "a stale userspace read with no SYNC bracket open (userspace cannot rely on coherency)",
        lambda v: and_(v.ev.user_stale_read, not_(v.at(v.pre.uopen, v.buf))), on="step"),
    Property(
        "P-DEVICE-UNDISCIPLINED", ("SYNC-NO-COHERENCE", "BEGIN-DIRECTION-UB"), "undefined", "undefined",
        "a device misses a CPU write made outside a bracket or in a bracket without the write direction",
        lambda v: v.ev.device_stale_undisciplined, on="step"),
    Property(
        "P-USER-BRACKET", ("SYNC-BRACKET", "MMAP-INCOHERENT"), "userspace", "undefined",
        "userspace touches the mapping outside SYNC_START..SYNC_END",
        lambda v: v.ev.user_access_unbracketed, on="step"),
    Property(
        "P-CPU-DEVICE-RACE", ("DEV-SEQUENCE",), "importer", "undefined",
        "a device and the CPU use the buffer at once (a device reads a page in an open CPU write "
        "bracket, or writes while a CPU bracket is open and the CPU then reads stale data)",
        lambda v: or_(v.ev.device_stale_race,
                      and_(v.ev.user_stale_read, v.at(v.pre.uopen, v.buf), v.at(v.pre.urace, v.buf)),
                      and_(v.ev.kernel_stale_read, v.at(v.pre.kopen, v.buf), v.at(v.pre.krace, v.buf))),
        on="step"),
    Property(
        "W-SYNC-INTERRUPTED", ("SYNC-RESTART",), "userspace", "witness",
        "a SYNC ioctl interrupted by a signal returns -EINTR (userspace must restart it)",
        lambda v: and_(v.ev.from_user, eq(v.ret, -ERRNO["EINTR"])), on="step", action="ioctl_sync",
        # something in the SYNC path must be able to wait or lock interruptibly
        applies=lambda p: (p.begin_interruptible or p.end_interruptible or p.begin_waits_fences
                           or not p.mutant_no_fence_wait)),
)
