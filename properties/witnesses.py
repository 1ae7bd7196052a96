"""Witnesses: things that must be reachable, so that a model that can do nothing fails.

One witness per action (some step of it succeeds; at the revisions the action exists), plus the outcomes the documentation
describes (a buffer is released, a mapping outlives its fd, kmap works inside a bracket).
"""
from __future__ import annotations

from model.actions import ACTIONS
from model.state import LIFE_LIVE
from model.terms import and_, eq, ge, not_

from .property import Property

__all__ = ["PROPERTIES", "ACTION_CLAIMS"]

ACTION_CLAIMS: dict[str, tuple[str, ...]] = {
    "dma_buf_export": ("LIFE-EXPORT",), "dma_buf_fd": ("LIFE-EXPORT",), "dup": ("LIFE-EXPORT",),
    "close": ("LIFE-RELEASE",), "dma_buf_get": ("LIFE-EXPORT",), "dma_buf_put": ("LIFE-DETACH",),
    "mmap": ("SYNC-BRACKET",), "munmap": ("SYNC-BRACKET",), "ioctl_sync": ("SYNC-BRACKET",),
    "cpu_read": ("SYNC-BRACKET",), "cpu_write": ("SYNC-BRACKET",),
    "dma_buf_attach": ("DEV-SEQUENCE",), "dma_buf_detach": ("DEV-SEQUENCE",),
    "dma_buf_map_attachment": ("DEV-SEQUENCE",), "dma_buf_unmap_attachment": ("DEV-SEQUENCE",),
    "device_read": ("DEV-SEQUENCE",), "device_write": ("DEV-SEQUENCE",),
    "dma_buf_begin_cpu_access": ("KCPU-BRACKET",), "dma_buf_end_cpu_access": ("KCPU-BRACKET",),
    "dma_buf_kmap": ("KCPU-REMAP",), "dma_buf_kunmap": ("KCPU-REMAP",),
    "dma_buf_kmap_atomic": ("KCPU-ATOMIC-2",), "dma_buf_kunmap_atomic": ("KCPU-ATOMIC-2",),
    "dma_buf_vmap": ("KCPU-VMAP-REFCOUNT",), "dma_buf_vunmap": ("KCPU-VMAP-REFCOUNT",),
    "kernel_read": ("KCPU-BRACKET",), "kernel_write": ("KCPU-BRACKET",),
    "reclaim": ("BEGIN-AVAILABLE", "LIFE-MIGRATE"),
    "dma_buf_pin": ("M-PIN-NOT-USER",), "dma_buf_unpin": ("M-PIN-NOT-USER",),
    "reservation_object_add_excl_fence": ("BEGIN-FENCE-WAIT",),
    "reservation_object_add_shared_fence": ("BEGIN-FENCE-WAIT",),
    "dma_fence_signal": ("BEGIN-FENCE-WAIT",),
}

# Actions whose success depends on a callback the policy may lack.
_NEEDS = {
    "dma_buf_kmap": lambda p: p.kmap_gives_pages, "dma_buf_kunmap": lambda p: p.kmap_gives_pages,
    "dma_buf_kmap_atomic": lambda p: p.kmap_atomic_gives_pages,
    "dma_buf_kunmap_atomic": lambda p: p.kmap_atomic_gives_pages,
    "dma_buf_vmap": lambda p: p.has_vmap, "dma_buf_vunmap": lambda p: p.has_vmap,
    "reclaim": lambda p: p.swappable, "mmap": lambda p: p.has_mmap,
    "cpu_read": lambda p: p.has_mmap, "cpu_write": lambda p: p.has_mmap, "munmap": lambda p: p.has_mmap,
}

# Actions whose success depends on the revision too: kernel loads and stores need a kernel
# mapping, which at v5.12 only vmap gives (the kmap family is gone).
_NEEDS_AT = {
    "kernel_read": lambda p, r: p.has_vmap or (r == "v4.11" and (p.kmap_gives_pages or p.kmap_atomic_gives_pages)),
    "kernel_write": lambda p, r: p.has_vmap or (r == "v4.11" and (p.kmap_gives_pages or p.kmap_atomic_gives_pages)),
}

# The bug events a successful step of these actions must not carry.
_CLEAN = {"dma_buf_kunmap": "kunmap_unmapped", "dma_buf_kunmap_atomic": "kunmap_unmapped",
          "dma_buf_vunmap": "vunmap_bug", "dma_buf_detach": "detach_while_mapped"}


def _success(action: str):
    bad = _CLEAN.get(action)
    if bad:
        return lambda v: and_(ge(v.ret, 0), not_(getattr(v.ev, bad)))
    return lambda v: ge(v.ret, 0)


def _action_witness(action: str) -> Property:
    return Property(
        "W-" + action.upper().replace("_", "-"), ACTION_CLAIMS[action], "core", "witness",
        f"some {action} step succeeds", _success(action), on="step", action=action,
        applies=_NEEDS.get(action), revisions=ACTIONS[action].revisions, applies_at=_NEEDS_AT.get(action))


PROPERTIES = tuple(_action_witness(a) for a in ACTIONS if a in ACTION_CLAIMS) + (
    Property(
        "W-RELEASE", ("LIFE-RELEASE",), "core", "witness",
        "a buffer is released when its last reference goes",
        lambda v: v.ev.release, on="step"),
    Property(
        "W-READ-AFTER-CLOSE", ("MMAP-SURVIVES-CLOSE",), "core", "witness",
        "a mapping still reads after every fd of its buffer is closed",
        lambda v: and_(eq(v.ret, 0), not_(v.ev.sigbus), *(
            not_(and_(v.pre.fd_open[f], eq(v.pre.fd_buf[f], v.buf))) for f in range(v.scope.fds)),
            eq(v.at(v.pre.life, v.buf), LIFE_LIVE)),
        on="step", action="cpu_read", applies=lambda p: p.has_mmap),
    Property(
        "W-KMAP-IN-BRACKET", ("KCPU-REMAP", "KCPU-ALWAYS-SUCCEED"), "core", "witness",
        "a kmap inside an open kernel bracket returns a page",
        lambda v: and_(eq(v.ret, 0), v.at(v.pre.kopen, v.buf)), on="step", action="dma_buf_kmap",
        applies=lambda p: p.kmap_gives_pages, revisions=("v4.11",)),
)
