"""Kernel CPU access: begin/end_cpu_access, kmap, kmap_atomic, vmap, and loads and stores
through those mappings.

Documentation: "DOC: cpu access" (the first bullet: bracketing, page-based kmap, at most 2 atomic
kmaps, kmap must always succeed, vmap refcounting), the ``@begin_cpu_access`` and
``@end_cpu_access`` kerneldoc (allocate/swap-in/pin, coherency by direction, the FIXME, kmap after
end is undefined); code: corpus §3.7, §3.8, §3.10, §5.2, §5.4. Kernel callers hold a reference
to the buffer (the guard): a call on a buffer the caller does not hold is a use-after-free, not
part of the API.

Revisions: the kmap family (dma_buf_kmap, dma_buf_kunmap, dma_buf_kmap_atomic,
dma_buf_kunmap_atomic) exists at v4.11 only (removed in v5.6, corpus §6.1); at v5.12 vmap is the
only kernel mapping, "bracketed with begin and end" (§6.2), and dma_buf_vmap without ``ops->vmap``
returns -EINVAL instead of NULL (``m.revision`` switch). begin/end are the same transitions at
both revisions.
"""
from __future__ import annotations

from ..constants import ERRNO
from ..derived import writes_term as direction_writes
from ..rules import cpu_read_page, cpu_write_page, do_begin, do_end, not_held
from ..state import W_KERNEL_OPEN, W_UNDISCIPLINED
from ..terms import and_, eq, ite, lift, min_, not_, or_
from .registry import action


# the guard of a counter at its bound: the model is finite, the kernel is not
_BOUND = "buffer {buf} is at a bound of the scope {scope} (too many maps or references)"


def _holds(m, buf):
    m.require(m.s.kref[buf] > 0, not_held(m.s, buf))
    m.subject(buf)


@action("kernel importer", "buf", "direction", "interrupted", optional=("interrupted",))
def dma_buf_begin_cpu_access(m, buf, direction, interrupted):
    """A kernel importer opens a CPU access bracket on ``buf`` in ``direction``."""
    _holds(m, buf)
    return do_begin(m, buf, direction, interrupted, False, True)


@action("kernel importer", "buf", "direction", "interrupted", optional=("interrupted",))
def dma_buf_end_cpu_access(m, buf, direction, interrupted):
    """A kernel importer closes its CPU access bracket on ``buf``."""
    _holds(m, buf)
    return do_end(m, buf, direction, interrupted, False, True)


def _kmap_checks(m, buf):
    s = m.s
    m.event("kmap_after_end", and_(s.kended[buf], not_(s.kopen[buf])))
    m.event("kmap_outside_bracket", and_(not_(s.kended[buf]), not_(s.kopen[buf])))


@action("kernel importer", "buf", "page", revisions=("v4.11",))
def dma_buf_kmap(m, buf, page):
    """A kernel importer maps one page of ``buf`` (ops->kmap)."""
    s, n, k = m.s, m.n, m.k
    _holds(m, buf)
    m.require(s.kmaps[buf][page] < m.scope.refs, _BOUND)
    _kmap_checks(m, buf)
    ok = and_(k.has_kmap, not_(k.kmap_returns_null), or_(s.resident[buf], k.kmap_swaps_in))
    n.resident[buf] = or_(s.resident[buf], ok)
    n.kmaps[buf][page] = ite(ok, s.kmaps[buf][page] + 1, s.kmaps[buf][page])
    m.event("kmap_fail", not_(ok))
    return ite(ok, 0, -ERRNO["ENOMEM"])   # NULL is modelled as -ENOMEM


@action("kernel importer", "buf", "page", revisions=("v4.11",))
def dma_buf_kunmap(m, buf, page):
    """A kernel importer unmaps a page it kmapped."""
    s, n = m.s, m.n
    _holds(m, buf)
    mapped = s.kmaps[buf][page] > 0
    n.kmaps[buf][page] = ite(mapped, s.kmaps[buf][page] - 1, 0)
    m.event("kunmap_unmapped", not_(mapped))
    return 0


@action("kernel importer", "buf", "page", revisions=("v4.11",))
def dma_buf_kmap_atomic(m, buf, page):
    """A kernel importer maps one page atomically (ops->kmap_atomic); it may not block."""
    s, n, k, sc = m.s, m.n, m.k, m.scope
    _holds(m, buf)
    m.require(s.kmaps_atomic[buf][page] < 3, _BOUND)
    _kmap_checks(m, buf)
    ok = and_(k.has_kmap_atomic, not_(k.kmap_returns_null), or_(s.resident[buf], k.kmap_swaps_in))
    m.event("atomic_blocked", and_(ok, not_(s.resident[buf])))
    n.resident[buf] = or_(s.resident[buf], ok)
    n.kmaps_atomic[buf][page] = ite(ok, s.kmaps_atomic[buf][page] + 1, s.kmaps_atomic[buf][page])
    total = lift(0)
    for b in range(sc.buffers):
        for p in range(sc.pages):
            total = total + n.kmaps_atomic[b][p]
    m.event("atomic_over_2", and_(ok, total > 2))
    m.event("kmap_fail", not_(ok))
    return ite(ok, 0, -ERRNO["ENOMEM"])


@action("kernel importer", "buf", "page", revisions=("v4.11",))
def dma_buf_kunmap_atomic(m, buf, page):
    """A kernel importer unmaps an atomic kmap."""
    s, n = m.s, m.n
    _holds(m, buf)
    mapped = s.kmaps_atomic[buf][page] > 0
    n.kmaps_atomic[buf][page] = ite(mapped, s.kmaps_atomic[buf][page] - 1, 0)
    m.event("kunmap_unmapped", not_(mapped))
    return 0


@action("kernel importer", "buf")
def dma_buf_vmap(m, buf):
    """A kernel importer maps the whole buffer; the core refcounts vmaps (vmapping_counter)."""
    s, n, k = m.s, m.n, m.k
    R = m.scope.refs
    _holds(m, buf)
    m.require(s.vmapping_counter[buf] < R, _BOUND)
    first = eq(s.vmapping_counter[buf], 0)
    ok = k.has_vmap
    calls_exporter = and_(ok, or_(first, k.mutant_vmap_no_refcount))
    n.exp_vmaps[buf] = ite(calls_exporter, min_(s.exp_vmaps[buf] + 1, R), s.exp_vmaps[buf])
    n.vmapping_counter[buf] = ite(ok, s.vmapping_counter[buf] + 1, s.vmapping_counter[buf])
    n.resident[buf] = or_(s.resident[buf], calls_exporter)
    m.event("vmap_fail", not_(ok))
    # switch: v4.11 returns NULL (modelled as -ENOMEM); from v5.11 dma_buf_vmap returns an int,
    # -EINVAL without ops->vmap (corpus §6.5)
    return ite(ok, 0, -ERRNO["ENOMEM"] if m.revision == "v4.11" else -ERRNO["EINVAL"])


@action("kernel importer", "buf")
def dma_buf_vunmap(m, buf):
    """A kernel importer drops a vmap; the exporter's vunmap runs on the last one."""
    s, n = m.s, m.n
    _holds(m, buf)
    live = s.vmapping_counter[buf] > 0
    last = eq(s.vmapping_counter[buf], 1)
    n.vmapping_counter[buf] = ite(live, s.vmapping_counter[buf] - 1, 0)
    n.exp_vmaps[buf] = ite(last, ite(s.exp_vmaps[buf] > 0, s.exp_vmaps[buf] - 1, 0), s.exp_vmaps[buf])
    m.event("vunmap_bug", not_(live))
    return 0


def _kernel_access(m, buf, page, store: bool):
    s = m.s
    _holds(m, buf)
    mapped = or_(s.kmaps[buf][page] > 0, s.kmaps_atomic[buf][page] > 0, s.vmapping_counter[buf] > 0)
    backed = s.resident[buf]
    m.event("kernel_access_unmapped", not_(mapped))
    m.event("kernel_access_unbacked", and_(mapped, not_(backed)))
    m.event("kernel_access_unbracketed", and_(mapped, not_(s.kopen[buf])))
    access = and_(mapped, backed)
    if store:
        disciplined = and_(s.kopen[buf], direction_writes(s.kdir[buf]))
        cpu_write_page(m, buf, page, access, ite(disciplined, W_KERNEL_OPEN, W_UNDISCIPLINED))
    else:
        m.event("kernel_stale_read", cpu_read_page(m, buf, page, access))
    return ite(mapped, 0, -ERRNO["EFAULT"])


@action("kernel importer", "buf", "page")
def kernel_read(m, buf, page):
    """The kernel loads from a page through its kmap or vmap of it."""
    return _kernel_access(m, buf, page, store=False)


@action("kernel importer", "buf", "page")
def kernel_write(m, buf, page):
    """The kernel stores to a page through its kmap or vmap of it."""
    return _kernel_access(m, buf, page, store=True)
