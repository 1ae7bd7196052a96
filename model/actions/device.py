"""Device access and the memory system: attachments, DMA, implicit fences, memory pressure.

Documentation: "DOC: dma buf device access" (attach, map, DMA, unmap, detach, put; the exporter
may migrate storage only until an attachment is mapped); code: corpus §3.6; the implicit fences
that begin_cpu_access waits for: §3.7 and §5.2. ``dma_buf_map_attachment`` and
``dma_buf_unmap_attachment`` do the DMA API's cache maintenance (dma_map_sg writes back,
dma_unmap_sg invalidates), as every exporter built on the DMA API does.

The core's cached mapping (v5.12 on, ``CACHED_SGT``; the kernel had it from ~v5.3 to ~v6.16):
with ``ops->cache_sgt_mapping`` (knob ``cache_sgt_mapping``) dma_buf_map_attachment() keeps the
attachment's first sg_table and its direction ("if (!IS_ERR(sg_table) &&
attach->dmabuf->ops->cache_sgt_mapping) { attach->sgt = sg_table; attach->dir = direction; }"),
dma_buf_unmap_attachment() leaves it ("if (attach->sgt == sg_table) return;"), a later map
returns it, unless its direction differs and is not DMA_BIDIRECTIONAL: "Two mappings with
different directions for the same attachment are not allowed. */ if (attach->dir != direction &&
attach->dir != DMA_BIDIRECTIONAL) return ERR_PTR(-EBUSY);", and dma_buf_detach() drops it. At
v6.12 the core also maps DMA_BIDIRECTIONAL at attach time, and keeps that mapping, when the
importer's and the exporter's dynamic-ness differ (``dma_buf_dynamic_attach``: "When either the
importer or the exporter can't handle dynamic mappings we cache the mapping here"). State:
``att_sgt``, ``att_dir``. The model keeps the cache maintenance of map and unmap as without the
cache (a map that returns the cached sg_table calls no ops->map_dma_buf in the kernel, so it does
no dma_map_sg either; the model's map still writes back: a simplification, not checked by the
conformance runs, whose x86 guests are coherent).
"""
from __future__ import annotations

from ..constants import DMA_BIDIRECTIONAL, ERRNO
from ..derived import pinned
from ..policy import since
from ..rules import (buffers_of, complete_fence, device_read_page, device_write_page, evict,
                     invalidate, lowest_free, not_held, writeback)
from ..state import FENCE_EXCL, FENCE_NONE, FENCE_SHARED, LIFE_LIVE
from ..terms import FALSE, and_, any_of, eq, ite, not_, or_, select
from .registry import action

#: the revisions whose state has the core's cached mapping (``att_sgt``, ``att_dir``)
CACHED_SGT = since("v5.12")


def attach_time_mapping(m, slot, taken, dynamic) -> None:
    """v6.12 dma_buf_dynamic_attach(): "if (dma_buf_attachment_is_dynamic(attach) !=
    dma_buf_is_dynamic(dmabuf))" the core maps DMA_BIDIRECTIONAL at attach time and keeps the
    mapping ("attach->sgt = sgt; attach->dir = DMA_BIDIRECTIONAL;") whatever cache_sgt_mapping
    says. ``dynamic``: whether the importer is dynamic; ``taken``: the slot was made."""
    if m.revision not in since("v6.12"):
        return
    n, k = m.n, m.k
    for a in range(m.scope.attachments):
        m.set(n.att_sgt, a, not_(k.dynamic) if dynamic else k.dynamic, and_(taken, eq(slot, a)))
        m.set(n.att_dir, a, DMA_BIDIRECTIONAL, and_(taken, eq(slot, a)))


def map_busy(m, att, direction):
    """dma_buf_map_attachment() returns -EBUSY: the attachment has a cached mapping in another
    direction that is not DMA_BIDIRECTIONAL."""
    if m.revision not in CACHED_SGT:
        return FALSE
    s = m.s
    return and_(s.att_sgt[att], s.att_dir[att] != direction, s.att_dir[att] != DMA_BIDIRECTIONAL)


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
    attach_time_mapping(m, slot, free, False)
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
    if m.revision in CACHED_SGT:   # "if (attach->sgt) __unmap_dma_buf(attach, attach->sgt, attach->dir);"
        n.att_sgt[att] = False
        n.att_dir[att] = 0
    if m.revision in since("v6.12"):
        n.att_dynamic[att] = False
    return 0


@action("kernel importer", "att", "direction")
def dma_buf_map_attachment(m, att, direction):
    """A kernel importer maps the attachment for DMA: storage is brought in and stays put; with a
    cached mapping in another direction (not DMA_BIDIRECTIONAL), -EBUSY and nothing changes."""
    s, n, k = m.s, m.n, m.k
    buf = _att(m, att, mapped=False)
    busy = map_busy(m, att, direction)
    for b, is_b in buffers_of(m, buf):
        m.set(n.resident, b, True, and_(is_b, not_(busy)))
        for p in range(m.scope.pages):
            writeback(m, b, p, and_(is_b, not_(busy)))
    n.att_mapped[att] = not_(busy)
    if m.revision in CACHED_SGT:   # the first mapping is kept with its direction
        keep = and_(not_(s.att_sgt[att]), k.cache_sgt_mapping)
        n.att_sgt[att] = or_(s.att_sgt[att], keep)
        n.att_dir[att] = ite(keep, direction, s.att_dir[att])
    return ite(busy, -ERRNO["EBUSY"], 0)


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
