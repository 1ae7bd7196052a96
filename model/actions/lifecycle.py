"""The buffer lifecycle: export, fd install, dup and close, kernel get and put.

Documentation: "DOC: dma buf device access" steps 1, 2 and 4; code: corpus §3.1 and §3.5;
derived behaviour §5.5 (the export reference moves to the fd table, last fput releases).
"""
from __future__ import annotations

from ..constants import ERRNO
from ..policy import export_requires
from ..rules import lowest_free, maybe_release, not_held
from ..state import LIFE_LIVE, LIFE_UNEXPORTED
from ..terms import TRUE, and_, eq, ite, not_, select
from .registry import action


@action("exporter", "buf")
def dma_buf_export(m, buf):
    """The exporter wraps buffer ``buf`` into a dma-buf (anon file, one reference).

    At v4.11 the core first refuses ops without kmap, kmap_atomic or mmap: ``WARN_ON(...)``,
    ``return ERR_PTR(-EINVAL)``, nothing created (corpus §3.5); v4.19 made them optional, so
    v5.12 accepts such ops (the switch is ``model.policy.export_requires``, which the catalog's
    revisions read too)."""
    s, n, k = m.s, m.n, m.k
    m.require(eq(s.life[buf], LIFE_UNEXPORTED), "buffer {buf} is already exported")
    m.subject(buf)
    required = export_requires(m.revision)           # (member, knob); none after v4.11
    ok = and_(TRUE, *(getattr(k, knob) for _, knob in required))
    for member, knob in required:
        m.event("export_without_" + member, not_(getattr(k, knob)))
    m.set(n.life, buf, LIFE_LIVE, ok)
    m.set(n.kref, buf, 1, ok)
    m.set(n.resident, buf, k.starts_resident, ok)
    return ite(ok, buf, -ERRNO["EINVAL"])


@action("exporter", "buf")
def dma_buf_fd(m, buf):
    """The exporter installs the dma-buf's file as an fd; the export reference moves to it."""
    s, n = m.s, m.n
    m.require(and_(eq(s.life[buf], LIFE_LIVE), s.kref[buf] > 0), [
        (eq(s.life[buf], LIFE_UNEXPORTED), "buffer {buf} is not exported"),
        (TRUE, "the export reference of buffer {buf} is gone (dma_buf_fd installs it once)")])
    m.subject(buf)
    free, slot = lowest_free(list(s.fd_open))
    for f in range(m.scope.fds):
        take = and_(free, eq(slot, f))
        m.set(n.fd_open, f, True, take)
        m.set(n.fd_buf, f, buf, take)
    m.set(n.kref, buf, s.kref[buf] - 1, free)
    return ite(free, slot, -ERRNO["EMFILE"])


@action("userspace", "fd")
def dup(m, fd):
    """Userspace duplicates an fd: another fd slot refers to the same file."""
    s, n = m.s, m.n
    is_open = s.fd_open[fd]
    m.subject(s.fd_buf[fd])
    free, slot = lowest_free(list(s.fd_open))
    for f in range(m.scope.fds):
        take = and_(is_open, free, eq(slot, f))
        m.set(n.fd_open, f, True, take)
        m.set(n.fd_buf, f, s.fd_buf[fd], take)
    return ite(not_(is_open), -ERRNO["EBADF"], ite(free, slot, -ERRNO["EMFILE"]))


@action("userspace", "fd")
def close(m, fd):
    """Userspace closes an fd; the last reference releases the dma-buf."""
    s, n = m.s, m.n
    is_open = s.fd_open[fd]
    buf = s.fd_buf[fd]
    m.subject(buf)
    m.set(n.fd_open, fd, False, is_open)
    m.set(n.fd_buf, fd, 0, is_open)
    maybe_release(m, buf, is_open)
    return ite(is_open, 0, -ERRNO["EBADF"])


@action("kernel importer", "fd")
def dma_buf_get(m, fd):
    """A kernel importer turns an fd into a dma-buf reference (fget)."""
    s, n = m.s, m.n
    is_open = s.fd_open[fd]
    buf = s.fd_buf[fd]
    m.subject(buf)
    m.require(not_(and_(is_open, eq(select(list(s.kref), buf), m.scope.refs))),
              "the buffer of fd {fd} has the most references the scope {scope} allows")
    for b in range(m.scope.buffers):
        m.set(n.kref, b, s.kref[b] + 1, and_(is_open, eq(buf, b)))
    return ite(is_open, buf, -ERRNO["EBADF"])


@action("kernel importer", "buf")
def dma_buf_put(m, buf):
    """A kernel importer drops its reference (fput); the last one releases the dma-buf."""
    s, n = m.s, m.n
    m.require(s.kref[buf] > 0, not_held(s, buf))
    m.subject(buf)
    n.kref[buf] = s.kref[buf] - 1
    maybe_release(m, buf, True)
    return 0
