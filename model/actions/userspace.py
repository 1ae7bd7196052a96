"""Userspace access: mmap of the dma-buf fd, munmap, DMA_BUF_IOCTL_SYNC, loads and stores.

Documentation: "DOC: cpu access" (the mmap bullet: SYNC_START, access, SYNC_END, munmap) and the
``@mmap`` kerneldoc (incoherent mapping, the core's size check, PTE zapping needs the exporter's
own ``vm_file``); code: corpus §3.2 (dma_buf_mmap_internal), §3.4 (dma_buf_ioctl), §5.1, §5.3.
The userspace API is total: a bad call returns the errno the kernel returns, for every value of
the arguments' C types (``mmap``'s ``pgoff`` and ``npages``, the SYNC ``flags``), not only for
the scope's representative values that the engines enumerate.
"""
from __future__ import annotations

from ..constants import (ERRNO, FAULT_SIGBUS, FAULT_SIGSEGV, PAGE_SHIFT, PGOFF_MAX, TASK_SIZE, ULONG_MAX,
                         decode_sync_flags)
from ..derived import writes_term as direction_writes
from ..rules import cpu_read_page, cpu_write_page, do_begin, do_end, invalidate, lowest_free, maybe_release
from ..state import LIFE_RELEASED, W_UNDISCIPLINED, W_USER_OPEN
from ..terms import and_, eq, ite, not_, or_, select
from .registry import action


@action("userspace", "fd", "pgoff", "npages")
def mmap(m, fd, pgoff, npages):
    """Userspace maps ``npages`` pages from page ``pgoff`` (MAP_SHARED, read-write).

    ``pgoff`` and ``npages`` may be any values of their C types (``vm_pgoff``, an unsigned
    long; the pages of an unsigned long length): the checks are comparisons, in the order the
    kernel makes them. The mm core (``ksys_mmap_pgoff``, ``do_mmap``, ``get_unmapped_area``)
    checks the call before the dma-buf file's mmap (``dma_buf_mmap_internal``, corpus §3.2) is
    reached: no length, -EINVAL; ``pgoff + npages`` wrapping an unsigned long ("offset
    overflow?"), -EOVERFLOW; a length beyond the user address space, -ENOMEM; from v4.17
    (``file_mmap_ok``, so at v5.12, not at v4.11) a byte range past ``ULONG_MAX``, -EOVERFLOW.
    The model has no address space: it assumes a free range of ``npages`` pages exists."""
    s, n, k, sc = m.s, m.n, m.k, m.scope
    is_open = s.fd_open[fd]
    buf = s.fd_buf[fd]
    m.subject(buf)
    no_len = eq(npages, 0)                                      # do_mmap: if (!len) -EINVAL
    wraps = pgoff + npages > ULONG_MAX                          # do_mmap: offset overflow?
    too_long = npages > TASK_SIZE >> PAGE_SHIFT                 # get_unmapped_area: len > TASK_SIZE
    past_max = pgoff + npages > PGOFF_MAX if m.revision != "v4.11" else False   # file_mmap_ok
    mm_refused = or_(no_len, wraps, too_long, past_max)
    too_large = pgoff + npages > sc.pages          # vm_pgoff + vma_pages > size >> PAGE_SHIFT
    size_bad = and_(too_large, not_(k.mutant_no_size_check))
    free, slot = lowest_free(list(s.vma_live))
    ok = and_(is_open, not_(mm_refused), k.has_mmap, not_(size_bad), free)
    m.event("mmap_too_large", and_(ok, too_large))
    for v in range(sc.vmas):
        take = and_(ok, eq(slot, v))
        m.set(n.vma_live, v, True, take)
        m.set(n.vma_buf, v, buf, take)
        m.set(n.vma_pgoff, v, pgoff, take)
        m.set(n.vma_npages, v, npages, take)
        m.set(n.vma_own_file, v, k.mmap_own_file, take)
        for q in range(sc.pages):
            m.set(n.pte[v], q, and_(k.mmap_prefault, q < npages), take)
    return ite(not_(is_open), -ERRNO["EBADF"],
               ite(no_len, -ERRNO["EINVAL"],
                   ite(wraps, -ERRNO["EOVERFLOW"],
                       ite(too_long, -ERRNO["ENOMEM"],
                           ite(past_max, -ERRNO["EOVERFLOW"],
                               ite(or_(not_(k.has_mmap), size_bad), -ERRNO["EINVAL"],
                                   ite(free, slot, -ERRNO["ENOMEM"])))))))


@action("userspace", "vma")
def munmap(m, vma):
    """Userspace unmaps a mapping (unmapping a range with no mapping succeeds)."""
    s, n, sc = m.s, m.n, m.scope
    live = s.vma_live[vma]
    buf = s.vma_buf[vma]
    m.subject(buf)
    n.vma_live[vma] = False
    n.vma_buf[vma] = 0
    n.vma_pgoff[vma] = 0
    n.vma_npages[vma] = 0
    n.vma_own_file[vma] = False
    for q in range(sc.pages):
        n.pte[vma][q] = False
    maybe_release(m, buf, live)
    return 0


@action("userspace", "fd", "flags", "interrupted", optional=("interrupted",))
def ioctl_sync(m, fd, flags, interrupted):
    """Userspace calls DMA_BUF_IOCTL_SYNC with raw ``flags`` (START or END, READ/WRITE/RW)."""
    s, k = m.s, m.k
    is_open = s.fd_open[fd]
    buf = s.fd_buf[fd]
    m.subject(buf)
    m.event("from_user", True)
    direction, end = decode_sync_flags(flags)
    if direction is None:
        m.event("sync_bad_flags", is_open)
        return ite(is_open, -ERRNO["EINVAL"], -ERRNO["EBADF"])
    if end:
        m.event("sync_end", is_open)
        refused = and_(k.mutant_sync_stateful, not_(select(list(s.uopen), buf)))
        ret = do_end(m, buf, direction, interrupted, True, and_(is_open, not_(refused)))
        ret = ite(refused, -ERRNO["EINVAL"], ret)
    else:
        ret = do_begin(m, buf, direction, interrupted, True, is_open)
    # -ERESTARTSYS reaches userspace as -EINTR (a handler without SA_RESTART); see corpus §5.2
    ret = ite(eq(ret, -ERRNO["ERESTARTSYS"]), -ERRNO["EINTR"], ret)
    return ite(is_open, ret, -ERRNO["EBADF"])


def _user_access(m, vma, page, store: bool):
    s, n, k, sc = m.s, m.n, m.k, m.scope
    live = s.vma_live[vma]
    inside = and_(live, page < s.vma_npages[vma])
    buf = s.vma_buf[vma]
    bpage = s.vma_pgoff[vma] + page
    m.subject(buf)
    present = s.pte[vma][page]
    sigbus = and_(inside, not_(present), k.mmap_prefault)
    access = and_(inside, not_(sigbus))
    fault = and_(access, not_(present))
    # the fault handler fills the PTE, swapping storage in; a faking exporter syncs for the CPU
    n.pte[vma][page] = or_(present, fault)
    for b in range(sc.buffers):
        m.set(n.resident, b, True, and_(fault, eq(buf, b)))
    invalidate(m, buf, bpage, and_(fault, k.fake_coherency))
    released = eq(select(list(s.life), buf), LIFE_RELEASED)
    m.event("exporter_after_release", and_(access, released, or_(
        and_(s.vma_own_file[vma], not_(k.own_file_keeps_backing)),
        and_(not_(s.vma_own_file[vma]), k.mutant_vma_no_file_ref))))
    uopen = select(list(s.uopen), buf)
    m.event("user_access_unbracketed", and_(access, not_(uopen)))
    if store:
        disciplined = and_(uopen, direction_writes(select(list(s.udir), buf)))
        cpu_write_page(m, buf, bpage, access, ite(disciplined, W_USER_OPEN, W_UNDISCIPLINED))
    else:
        m.event("user_stale_read", cpu_read_page(m, buf, bpage, access))
    m.event("sigsegv", not_(inside))
    m.event("sigbus", sigbus)
    return ite(not_(inside), FAULT_SIGSEGV, ite(sigbus, FAULT_SIGBUS, 0))


@action("userspace", "vma", "page")
def cpu_read(m, vma, page):
    """Userspace loads from page ``page`` of a mapping."""
    return _user_access(m, vma, page, store=False)


@action("userspace", "vma", "page")
def cpu_write(m, vma, page):
    """Userspace stores to page ``page`` of a mapping."""
    return _user_access(m, vma, page, store=True)
