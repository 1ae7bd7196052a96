"""Rules shared by several actions: references and release, the CPU cache and memory, device
jobs and fences, PTE zapping, eviction, and the begin/end_cpu_access paths.

Every rule takes the step ``m``, a buffer (an int, or a term such as ``fd_buf[fd]``) and a
condition ``when``: effects happen only where ``when`` holds, so callers compose rules without
Python branches on state. Buffers and pages given as terms are handled by trying every concrete
index under an equality condition; for static indices the conditions fold away.

Revision switch (``m.revision``): the ghost ``kended`` that judges "kmap after end_cpu_access
is undefined" is kept at v4.11 only; v5.12 has no kmap and deletes the sentence (corpus §6.2).

Sources: corpus §3.1 (release), §3.7 and §5.2 (begin/end and the implicit-fence wait), §5.3 (mmap,
``vm_file`` references), the ``@mmap`` kerneldoc (PTE zapping through the vma's file), and the DMA
API's cache maintenance (``dma_sync_*_for_cpu`` invalidates for reads from the device,
``dma_sync_*_for_device`` writes back for writes to the device).
"""
from __future__ import annotations

from typing import Any

from .constants import ERRNO, reads, writes
from .state import (CACHE_CLEAN, CACHE_DIRTY, CACHE_INVALID, FENCE_EXCL, FENCE_NONE, FENCE_SHARED,
                    LIFE_LIVE, LIFE_RELEASED, LIFE_UNEXPORTED, W_HANDED_OFF, W_KERNEL_OPEN, W_NONE, W_UNDISCIPLINED,
                    W_USER_OPEN)
from .derived import total_refs
from .step import Step
from .terms import (FALSE, TRUE, Term, and_, any_of, clamp, eq, ite, lift, min_, not_, or_, select)

__all__ = [
    "buffers_of", "maybe_release", "not_held", "writeback", "invalidate",
    "cpu_read_page", "cpu_write_page", "device_write_page", "device_read_page", "complete_fence",
    "zap", "evict", "do_begin", "do_end", "lowest_free",
]


def buffers_of(m: Step, buf: Any) -> list[tuple[int, Term]]:
    """``[(b, buf == b)]`` for every buffer ``b`` the term ``buf`` may be."""
    return [(b, eq(buf, b)) for b in range(m.scope.buffers)]


def _pages_of(m: Step, page: Any) -> list[tuple[int, Term]]:
    return [(p, eq(page, p)) for p in range(m.scope.pages)]


def lowest_free(used: list[Term]) -> tuple[Term, Term]:
    """(is there a free slot, the lowest free slot) for slots whose use flags are ``used``."""
    slot = lift(len(used) - 1)
    for i in range(len(used) - 2, -1, -1):
        slot = ite(not_(used[i]), i, slot)
    return not_(and_(*used)), slot


# --- references and release (corpus §3.1, §5.5) ---------------------------------------------

def not_held(s, buf: Any) -> list[tuple[Any, str]]:
    """Why a kernel caller cannot act on ``buf`` when it holds no reference to it (the reason of
    the guard ``kref[buf] > 0``, for ``Step.require``)."""
    life = select(list(s.life), buf)
    return [(eq(life, LIFE_UNEXPORTED), "buffer {buf} is not exported yet (dma_buf_export first)"),
            (eq(life, LIFE_RELEASED), "buffer {buf} has been released (ops->release ran); no kernel caller holds it"),
            (TRUE, "the kernel holds no reference to buffer {buf} (kref is 0): a kernel caller takes one "
                   "with dma_buf_get(fd) (dma_buf_fd moved the export reference to the fd)")]


def maybe_release(m: Step, buf: Any, when: Any) -> None:
    """Run ``ops->release`` if the last reference to the buffer is gone (dma_buf_release)."""
    n = m.n
    for b, is_b in buffers_of(m, buf):
        go = and_(when, is_b, eq(n.life[b], LIFE_LIVE), eq(total_refs(n, m.k, m.scope, b), 0))
        m.event("release", go)
        m.event("vmap_release_bug", and_(go, n.vmapping_counter[b] > 0))
        m.event("release_while_attached", and_(go, any_of(
            and_(n.att_live[a], eq(n.att_buf[a], b)) for a in range(m.scope.attachments))))
        m.set(n.life, b, LIFE_RELEASED, go)
        m.set(n.release_calls, b, min_(n.release_calls[b] + 1, 2), go)


# --- the CPU cache and memory, per page --------------------------------------------------------

def _page_cells(m: Step, buf: Any, page: Any, when: Any):
    for b, is_b in buffers_of(m, buf):
        for p, is_p in _pages_of(m, page):
            yield b, p, and_(when, is_b, is_p)


def writeback(m: Step, buf: Any, page: Any, when: Any) -> None:
    """Write a dirty line back (clean). A stale dirty line overwrites newer memory: lost write."""
    n = m.n
    for b, p, w in _page_cells(m, buf, page, when):
        dirty = and_(w, eq(n.cache[b][p], CACHE_DIRTY))
        m.event("lost_write", and_(dirty, not_(n.cache_ok[b][p]), n.mem_ok[b][p]))
        # after a write-back memory holds what the line held; if that lost newer data, the value
        # now in memory is the newest there is
        m.set(n.mem_ok[b], p, True, dirty)
        m.set(n.cache_ok[b], p, True, dirty)
        m.set(n.cache[b], p, CACHE_CLEAN, dirty)
        m.set(n.wclass[b], p, W_NONE, dirty)


def invalidate(m: Step, buf: Any, page: Any, when: Any) -> None:
    """Clean and invalidate the line (dma_sync_*_for_cpu for reads from the device)."""
    writeback(m, buf, page, when)
    n = m.n
    for b, p, w in _page_cells(m, buf, page, when):
        m.set(n.cache[b], p, CACHE_INVALID, w)
        m.set(n.cache_ok[b], p, False, w)


def _sync_buffer(m: Step, buf: Any, op, when: Any) -> None:
    for p in range(m.scope.pages):
        op(m, buf, p, when)


def cpu_read_page(m: Step, buf: Any, page: Any, when: Any) -> Term:
    """A CPU load; returns the condition under which it saw an older value than the newest."""
    n, k = m.n, m.k
    stale = FALSE
    for b, p, w in _page_cells(m, buf, page, when):
        hit = n.cache[b][p] != CACHE_INVALID
        fresh = ite(k.coherent, n.mem_ok[b][p], ite(hit, n.cache_ok[b][p], n.mem_ok[b][p]))
        stale = or_(stale, and_(w, not_(fresh)))
        fill = and_(w, not_(k.coherent), not_(hit))
        m.set(n.cache_ok[b], p, n.mem_ok[b][p], fill)
        m.set(n.cache[b], p, CACHE_CLEAN, fill)
    return stale


def cpu_write_page(m: Step, buf: Any, page: Any, when: Any, wclass: Any) -> None:
    """A CPU store: into the cache (dirty) or, on coherent memory, straight to memory."""
    n, k = m.n, m.k
    for b, p, w in _page_cells(m, buf, page, when):
        cached = and_(w, not_(k.coherent))
        m.set(n.cache[b], p, CACHE_DIRTY, cached)
        m.set(n.cache_ok[b], p, True, cached)
        m.set(n.mem_ok[b], p, False, cached)
        m.set(n.wclass[b], p, wclass, cached)
        m.set(n.mem_ok[b], p, True, and_(w, k.coherent))


def device_write_page(m: Step, buf: Any, page: Any, when: Any) -> None:
    """DMA into memory. Cached copies become stale (on coherent memory, snooped away)."""
    n, k = m.n, m.k
    for b, p, w in _page_cells(m, buf, page, when):
        m.set(n.mem_ok[b], p, True, w)
        m.set(n.wclass[b], p, W_NONE, w)
        m.set(n.cache_ok[b], p, False, w)
        m.set(n.cache[b], p, CACHE_INVALID, and_(w, k.coherent))
    for b, is_b in buffers_of(m, buf):
        w = and_(when, is_b)
        m.set(n.urace, b, True, and_(w, n.uopen[b]))
        m.set(n.krace, b, True, and_(w, n.kopen[b]))


def device_read_page(m: Step, buf: Any, page: Any, when: Any) -> None:
    """DMA out of memory; on non-coherent memory a dirty CPU line is not seen."""
    n, k = m.n, m.k
    for b, p, w in _page_cells(m, buf, page, when):
        stale = and_(w, not_(k.coherent), not_(n.mem_ok[b][p]))
        wc = n.wclass[b][p]
        m.event("device_stale_handoff", and_(stale, eq(wc, W_HANDED_OFF)))
        m.event("device_stale_undisciplined", and_(stale, eq(wc, W_UNDISCIPLINED)))
        m.event("device_stale_race", and_(stale, or_(eq(wc, W_USER_OPEN), eq(wc, W_KERNEL_OPEN))))


def complete_fence(m: Step, buf: Any, when: Any) -> None:
    """The buffer's pending device job completes and its fence signals."""
    n = m.n
    for b, is_b in buffers_of(m, buf):
        w = and_(when, is_b)
        excl = and_(w, eq(n.fence[b], FENCE_EXCL))
        shared = and_(w, eq(n.fence[b], FENCE_SHARED))
        for p in range(m.scope.pages):
            device_read_page(m, b, p, shared)
            device_write_page(m, b, p, excl)
        m.set(n.fence, b, FENCE_NONE, w)


# --- PTEs and eviction -----------------------------------------------------------------------

def zap(m: Step, buf: Any, when: Any) -> None:
    """The exporter zaps the PTEs of ``buf`` with unmap_mapping_range on the address space of
    its own file, or of the anon file that every dma-buf shares (``@mmap`` kerneldoc)."""
    n, k, sc = m.n, m.k, m.scope
    via_anon = k.is_("zap_via", "anon-file")
    for b, is_b in buffers_of(m, buf):
        w = and_(when, is_b)
        for v in range(sc.vmas):
            live = n.vma_live[v]
            mine = and_(live, eq(n.vma_buf[v], b))
            reached = and_(live, ite(via_anon, not_(n.vma_own_file[v]), and_(mine, n.vma_own_file[v])))
            other = and_(reached, not_(mine))
            m.event("collateral_zap", and_(w, other, any_of(n.pte[v][q] for q in range(sc.pages))))
            for q in range(sc.pages):
                m.set(n.pte[v], q, False, and_(w, reached))
            m.event("zap_missed", and_(w, mine, not_(reached), any_of(n.pte[v][q] for q in range(sc.pages))))


def evict(m: Step, b: int, when: Any) -> None:
    """Memory pressure swaps the storage out: dirty lines are written back first and the mm's
    reverse map unmaps every PTE of the buffer."""
    n, sc = m.n, m.scope
    _sync_buffer(m, b, invalidate, when)
    m.set(n.resident, b, False, when)
    for v in range(sc.vmas):
        mine = and_(when, n.vma_live[v], eq(n.vma_buf[v], b))
        for q in range(sc.pages):
            m.set(n.pte[v], q, False, mine)


# --- begin_cpu_access / end_cpu_access (corpus §3.7, §5.2) ----------------------------------

def do_begin(m: Step, buf: Any, direction: int, interrupted: bool, user: bool, when: Any) -> Term:
    """dma_buf_begin_cpu_access(): the exporter's callback, then (only if it returned 0) the wait
    on the implicit fences: READ waits for the exclusive fence, WRITE and RW for all fences.
    Returns the return value; ``user`` says the caller is the SYNC ioctl (ghost bookkeeping)."""
    n, k = m.n, m.k
    R = m.scope.refs
    cb = k.has_begin
    enomem = and_(cb, k.begin_enomem)
    eintr = and_(cb, not_(enomem), interrupted, k.begin_interruptible)
    m.event("exporter_begin_called", and_(when, cb))
    ret: Term = lift(0)
    for b, is_b in buffers_of(m, buf):
        w = and_(when, is_b)

        def pending() -> Term:
            return n.fence[b] != FENCE_NONE if writes(direction) else eq(n.fence[b], FENCE_EXCL)

        # an exporter may wait for the fences itself before it prepares anything
        ex_wait = and_(cb, not_(enomem), not_(eintr), k.begin_waits_fences, pending())
        ok_cb = not_(or_(enomem, eintr, and_(ex_wait, interrupted)))
        ret_cb = ite(enomem, -ERRNO["ENOMEM"], ite(eintr, -ERRNO["EINTR"],
                                                     ite(ex_wait, -ERRNO["ERESTARTSYS"], 0)))
        complete_fence(m, b, and_(w, ex_wait, not_(interrupted)))
        prep = and_(w, cb, ok_cb)
        m.set(n.resident, b, True, and_(prep, or_(k.begin_swaps_in, k.begin_pins)))
        take_pin = or_(and_(prep, k.begin_pins), and_(w, eintr, k.begin_pins, k.begin_leaks_pin_on_error))
        m.set(n.pins, b, min_(n.pins[b] + 1, R), take_pin)
        if user:
            m.set(n.user_pins, b, min_(n.user_pins[b] + 1, R), take_pin)
        m.set(n.prepared, b, True, prep)
        if reads(direction):
            _sync_buffer(m, b, invalidate, and_(prep, k.is_("begin_sync", "direction")))
        # the core's wait on the implicit fences, only after the exporter returned 0
        waits = and_(ok_cb, pending(), not_(k.mutant_no_fence_wait))
        ret = ite(is_b, ite(not_(ok_cb), ret_cb, ite(and_(waits, interrupted), -ERRNO["ERESTARTSYS"], 0)), ret)
        complete_fence(m, b, and_(w, waits, not_(interrupted)))
    ok = and_(when, eq(ret, 0))
    for b, is_b in buffers_of(m, buf):
        w = and_(ok, is_b)
        if user:
            m.set(n.uopen, b, True, w)
            m.set(n.udir, b, direction, w)
            m.set(n.urace, b, False, w)
        else:
            m.set(n.kopen, b, True, w)
            m.set(n.kdir, b, direction, w)
            if m.revision == "v4.11":  # switch: the ghost of KCPU-KMAP-AFTER-END (no kmap at v5.12)
                m.set(n.kended, b, False, w)
            m.set(n.krace, b, False, w)
    m.event("begin_ok", ok)
    m.event("begin_failed", and_(when, ret != 0))
    return ret


def do_end(m: Step, buf: Any, direction: int, interrupted: bool, user: bool, when: Any) -> Term:
    """dma_buf_end_cpu_access(): the exporter's callback; the core does not wait."""
    n, k = m.n, m.k
    cb = k.has_end
    m.event("exporter_end_called", and_(when, cb))
    ret: Term = lift(0)
    for b, is_b in buffers_of(m, buf):
        w = and_(when, is_b)
        einval = and_(cb, k.end_requires_begin, not_(n.prepared[b]))
        eintr = and_(cb, not_(einval), interrupted, k.end_interruptible)
        ret = ite(is_b, ite(einval, -ERRNO["EINVAL"], ite(eintr, -ERRNO["EINTR"], 0)), ret)
        ok = and_(w, not_(einval), not_(eintr))
        # ghost: pages written inside the closing bracket are now due to reach the device
        open_class = W_USER_OPEN if user else W_KERNEL_OPEN
        for p in range(m.scope.pages):
            m.set(n.wclass[b], p, W_HANDED_OFF if writes(direction) else W_UNDISCIPLINED,
                  and_(ok, eq(n.wclass[b][p], open_class)))
        eff = and_(ok, cb)
        if writes(direction):
            _sync_buffer(m, b, writeback, and_(eff, k.end_flush))
        unpin = and_(eff, k.end_unpins, n.pins[b] > 0)
        new_pins = n.pins[b] - 1
        m.set(n.pins, b, new_pins, unpin)
        drop_user = (n.user_pins[b] - 1) if user else n.user_pins[b]
        m.set(n.user_pins, b, clamp(min_(drop_user, new_pins), 0, m.scope.refs), unpin)
        zap(m, b, and_(eff, k.fake_coherency))
        # (a closed bracket's direction and race flag are left as they are: nothing reads them
        # until a bracket opens and sets them again; the explicit engine's dead-variable
        # reduction, properties/engines/reduce.py, finds that from the terms and merges them)
        if user:
            m.set(n.uopen, b, False, ok)
        else:
            m.set(n.kopen, b, False, ok)
            if m.revision == "v4.11":  # switch: the ghost of KCPU-KMAP-AFTER-END (no kmap at v5.12)
                m.set(n.kended, b, True, ok)
    m.event("end_ok", and_(when, eq(ret, 0)))
    m.event("end_failed", and_(when, ret != 0))
    return ret
