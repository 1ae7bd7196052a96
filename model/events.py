"""Events: what a transition observes, beside its next state and return value.

A transition sets the events that describe what happened in that step: a stale read, a kmap
after end_cpu_access, a PTE the exporter failed to zap. Undefined behaviour is recorded this way
(docs/design.md, point 4): reaching it is an event on the step, carried by traces and graph edges, and
classified by the properties of kind ``undefined``. (Events live on the step rather than as sticky
marks in the state so that the reachable state space does not double per mark; a trace or a graph
edge still shows where the mark was set.)

Each event is one bit of the step's event mask, in the order below.
"""
from __future__ import annotations

__all__ = ["EVENTS", "EVENT_BIT", "EVENT_WORDS", "event_names"]

EVENTS: tuple[tuple[str, str], ...] = (
    ("release", "ops->release ran (the last reference to the dma-buf file was dropped)"),
    ("exporter_after_release", "a CPU access reached the buffer's storage after ops->release"),
    ("vmap_release_bug", "release with vmapping_counter != 0 (BUG_ON in dma_buf_release)"),
    ("release_while_attached", "release with an attachment still attached"),
    ("detach_while_mapped", "dma_buf_detach of an attachment that is still mapped"),
    ("vunmap_bug", "dma_buf_vunmap with vmapping_counter == 0 (BUG_ON)"),
    ("kmap_fail", "a dma_buf_kmap or dma_buf_kmap_atomic returned NULL"),
    ("kmap_after_end", "a kmap after end_cpu_access, with no bracket open"),
    ("kmap_outside_bracket", "a kmap with no begin_cpu_access before it"),
    ("atomic_over_2", "the importer holds more than 2 atomic kmaps"),
    ("atomic_blocked", "kmap_atomic had to bring storage in, which blocks"),
    ("kunmap_unmapped", "a kunmap of a page that is not kmapped"),
    ("kernel_access_unmapped", "a kernel load or store to a page it has neither kmapped nor vmapped"),
    ("kernel_access_unbacked", "a kernel load or store through a mapping whose storage was evicted"),
    ("kernel_access_unbracketed", "a kernel load or store outside begin/end_cpu_access"),
    ("kernel_stale_read", "a kernel load returned an older value than the newest written"),
    ("user_access_unbracketed", "a userspace load or store outside SYNC_START..SYNC_END"),
    ("user_stale_read", "a userspace load returned an older value than the newest written"),
    ("device_stale_handoff", "a device read a page whose newest value a CPU wrote inside a write "
     "bracket that has ended, and that never reached memory"),
    ("device_stale_undisciplined", "a device read a page whose newest value a CPU wrote outside a "
     "bracket or in a bracket without the write direction"),
    ("device_stale_race", "a device read a page that a CPU is writing inside a bracket still open"),
    ("lost_write", "a write-back of a stale dirty cache line overwrote newer data in memory"),
    ("sigbus", "a userspace access faulted with SIGBUS"),
    ("sigsegv", "a userspace access faulted with SIGSEGV"),
    ("zap_missed", "after the exporter zapped the buffer's PTEs, a PTE of it is still present"),
    ("collateral_zap", "the exporter's zap removed PTEs of another buffer's mapping"),
    ("evicted_pinned", "memory pressure evicted storage that was pinned"),
    ("begin_ok", "begin_cpu_access (or SYNC_START) returned 0"),
    ("begin_failed", "begin_cpu_access (or SYNC_START) returned an error"),
    ("end_ok", "end_cpu_access (or SYNC_END) returned 0"),
    ("end_failed", "end_cpu_access (or SYNC_END) returned an error"),
    ("sync_end", "DMA_BUF_IOCTL_SYNC with valid SYNC_END flags on an open fd"),
    ("exporter_begin_called", "the core called ops->begin_cpu_access"),
    ("exporter_end_called", "the core called ops->end_cpu_access"),
    ("from_user", "the step was a userspace call into the dma-buf file"),
    ("sync_bad_flags", "DMA_BUF_IOCTL_SYNC with flags the uapi does not accept"),
    ("mmap_too_large", "the exporter's mmap was called with a vma larger than the buffer"),
    ("vmap_fail", "dma_buf_vmap returned NULL (v4.11) or an error (v5.12)"),
    ("detach_while_pinned", "dma_buf_detach of an attachment that still holds a dma_buf_pin (v5.12)"),
    # dma_buf_export() at v4.11 refusing the exporter's ops (model.policy.EXPORT_REQUIRES_V4_11)
    ("export_without_kmap", "dma_buf_export() refused: ops without kmap (WARN_ON, corpus §3.5)"),
    ("export_without_kmap_atomic", "dma_buf_export() refused: ops without kmap_atomic (WARN_ON, corpus §3.5)"),
    ("export_without_mmap", "dma_buf_export() refused: ops without mmap (WARN_ON, corpus §3.5)"),
    ("resv_not_held", "an importer called a function of the locked list (dma_buf_pin, dma_buf_unpin, "
     "dma_buf_map_attachment, dma_buf_unmap_attachment, dma_buf_vmap, dma_buf_vunmap) without holding "
     "the buffer's reservation lock (v6.12)"),
    ("resv_held_unlocked_call", "an importer called a function it must call without the buffer's "
     "reservation lock (dma_buf_attach, dma_buf_get, dma_buf_begin_cpu_access, the _unlocked "
     "variants, ...) while holding it (v6.12)"),
    ("resv_deadlock", "an exporter callback invoked with the reservation lock held (pin, unpin, "
     "map_dma_buf, unmap_dma_buf, vmap, vunmap) took the lock itself: a deadlock (v6.12)"),
    ("move_notify", "the exporter moved the storage and the core called importer_ops->move_notify "
     "of a dynamic attachment (dma_buf_move_notify, v6.12)"),
    ("moved_unnotified", "the exporter moved storage that a dynamic attachment is attached to without "
     "calling dma_buf_move_notify (v6.12)"),
    ("moved_static", "the exporter moved storage that a non-dynamic attachment is attached to, which "
     "the core should have pinned at dma_buf_attach (v6.12)"),
)

EVENT_BIT: dict[str, int] = {name: 1 << i for i, (name, _) in enumerate(EVENTS)}

# what each event means, in the words a trace shows it with (the JSON keeps the names)
EVENT_WORDS: dict[str, str] = dict(EVENTS)


def event_names(mask: int) -> list[str]:
    """The names of the events set in ``mask``."""
    return [name for name, bit in EVENT_BIT.items() if mask & bit]
