"""Device access and the memory system: attachments, DMA, implicit fences, memory pressure.

Documentation: "DOC: dma buf device access" (attach, map, DMA, unmap, detach, put; the exporter
may migrate storage only until an attachment is mapped); code: corpus §3.6; the implicit fences
that begin_cpu_access waits for: §3.7 and §5.2. ``dma_buf_map_attachment`` and
``dma_buf_unmap_attachment`` do the DMA API's cache maintenance (dma_map_sg writes back,
dma_unmap_sg invalidates), as every exporter built on the DMA API does.
"""
from __future__ import annotations

from ..constants import ERRNO
from ..derived import pinned
from ..policy import since
from ..rules import (buffers_of, complete_fence, device_read_page, device_write_page, evict,
                     invalidate, lowest_free, not_held, writeback)
from ..state import FENCE_EXCL, FENCE_NONE, FENCE_SHARED, LIFE_LIVE
from ..terms import and_, any_of, eq, ite, select
from .registry import action


@action("kernel importer", "buf")
def dma_buf_attach(m, buf):
    """A kernel importer attaches a device to ``buf``; returns the attachment."""
    s, n, sc = m.s, m.n, m.scope
    m.require(s.kref[buf] > 0, not_held(s, buf))
    m.subject(buf)
    free, slot = lowest_free(list(s.att_live))
    for a in range(sc.attachments):
        take = and_(free, eq(slot, a))
        m.set(n.att_live, a, True, take)
        m.set(n.att_buf, a, buf, take)
    return ite(free, slot, -ERRNO["ENOMEM"])


def _att(m, att, mapped=None):
    s = m.s
    m.require(s.att_live[att], "attachment {att} does not exist (dma_buf_attach returns it)")
    m.require(eq(select(list(s.life), s.att_buf[att]), LIFE_LIVE), "the buffer of attachment {att} is not live")
    if mapped is not None:
        m.require(eq(s.att_mapped[att], mapped),
                  "attachment {att} is already mapped" if mapped is False else "attachment {att} is not mapped")
    m.subject(s.att_buf[att])
    return s.att_buf[att]


@action("kernel importer", "att")
def dma_buf_detach(m, att):
    """A kernel importer detaches the device (it should unmap first)."""
    n = m.n
    m.event("detach_while_mapped", m.s.att_mapped[att])
    m.event("detach_while_pinned", m.s.att_pins[att] > 0)
    _att(m, att)
    n.att_live[att] = False
    n.att_buf[att] = 0
    n.att_mapped[att] = False
    n.att_pins[att] = 0   # v5.12: the pin goes with the attachment (an importer bug, see the event)
    if m.revision in since("v6.12"):
        n.att_dynamic[att] = False
    return 0


@action("kernel importer", "att", "direction")
def dma_buf_map_attachment(m, att, direction):
    """A kernel importer maps the attachment for DMA: storage is brought in and stays put."""
    n = m.n
    buf = _att(m, att, mapped=False)
    for b, is_b in buffers_of(m, buf):
        m.set(n.resident, b, True, is_b)
        for p in range(m.scope.pages):
            writeback(m, b, p, is_b)
    n.att_mapped[att] = True
    return 0


@action("kernel importer", "att")
def dma_buf_unmap_attachment(m, att):
    """A kernel importer unmaps the attachment once the device is done (no job in flight)."""
    s, n = m.s, m.n
    buf = _att(m, att, mapped=True)
    m.require(eq(select(list(s.fence), buf), FENCE_NONE),
              "a device job is still in flight on the buffer (dma_fence_signal first)")
    for p in range(m.scope.pages):
        invalidate(m, buf, p, True)
    n.att_mapped[att] = False
    return 0


@action("device", "att", "page")
def device_read(m, att, page):
    """The device reads a page by DMA through a mapped attachment."""
    buf = _att(m, att, mapped=True)
    device_read_page(m, buf, page, True)
    return 0


@action("device", "att", "page")
def device_write(m, att, page):
    """The device writes a page by DMA through a mapped attachment."""
    buf = _att(m, att, mapped=True)
    device_write_page(m, buf, page, True)
    return 0


def _queue(m, buf, kind):
    s, n = m.s, m.n
    m.require(and_(eq(s.life[buf], LIFE_LIVE), eq(s.fence[buf], FENCE_NONE), any_of(
        and_(s.att_live[a], s.att_mapped[a], eq(s.att_buf[a], buf)) for a in range(m.scope.attachments))),
        "a job can be queued on buffer {buf} only while it is live, has no unsignaled fence and a mapped "
        "attachment")
    m.subject(buf)
    n.fence[buf] = kind
    return 0


@action("kernel importer", "buf")
def reservation_object_add_excl_fence(m, buf):
    """A device job that will write the buffer is queued with an exclusive fence."""
    return _queue(m, buf, FENCE_EXCL)


@action("kernel importer", "buf")
def reservation_object_add_shared_fence(m, buf):
    """A device job that will read the buffer is queued with a shared fence."""
    return _queue(m, buf, FENCE_SHARED)


@action("device", "buf")
def dma_fence_signal(m, buf):
    """The buffer's pending device job completes; its fence signals."""
    s = m.s
    m.require(s.fence[buf] != FENCE_NONE, "buffer {buf} has no unsignaled fence")
    m.subject(buf)
    complete_fence(m, buf, True)
    return 0


@action("memory", "buf")
def reclaim(m, buf):
    """Memory pressure: the exporter's unpinned, swappable storage is evicted."""
    s, k = m.s, m.k
    m.require(and_(eq(s.life[buf], LIFE_LIVE), s.resident[buf]), "buffer {buf} is not live and resident")
    m.subject(buf)
    held = pinned(s, k, m.scope, buf)
    go = and_(k.swappable, ite(held, k.evict_pinned, True))
    m.event("evicted_pinned", and_(go, held))
    evict(m, buf, go)
    return ite(go, 0, -ERRNO["EBUSY"])
