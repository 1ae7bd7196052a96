"""Pinning for device access (the later revision): dma_buf_pin and dma_buf_unpin.

Revisions: v5.12 on (``since("v5.12")``; ``dma_buf_pin``/``dma_buf_unpin`` and the ``@pin``/``@unpin`` ops came
with dynamic DMA-buf in v5.7, corpus §6.1; v4.11 has neither). Documentation: the ``@pin``
kerneldoc ("lets the exporter know that the DMA-buf can't be moved any more", corpus §6.3) and
``dma_buf_pin()``'s: "It is not permitted to allow userspace to pin arbitrary amounts of buffers
through this interface" (§6.2). The v5.12 patch that deleted the FIXME moved pinning here: it is a
device-access matter, and only a kernel importer (never userspace) calls it.

The model does not tell dynamic from static importers here: any attachment may pin (at v6.12 the
reservation lock's convention and dynamic attachments are ``resv.py``'s). A pin brings the
storage in and holds it until unpinned (``derived.pinned``: memory pressure cannot evict it). An
unpin without a pin is not part of the API (the exporter's pin count would underflow): the guard.
"""
from __future__ import annotations

from ..policy import since
from ..rules import buffers_of
from ..state import LIFE_LIVE
from ..terms import and_, eq, select
from .registry import action

_LATER = since("v5.12")


def _attached(m, att):
    s = m.s
    m.require(s.att_live[att], "attachment {att} does not exist (dma_buf_attach returns it)")
    m.require(eq(select(list(s.life), s.att_buf[att]), LIFE_LIVE), "the buffer of attachment {att} is not live")
    m.subject(s.att_buf[att])
    return s.att_buf[att]


@action("kernel importer", "att", revisions=_LATER)
def dma_buf_pin(m, att):
    """A kernel importer pins the attachment's buffer in place (ops->pin) for device access."""
    s, n = m.s, m.n
    buf = _attached(m, att)
    m.require(s.att_pins[att] < m.scope.refs, "attachment {att} is at a bound of the scope {scope} (too many pins)")
    for b, is_b in buffers_of(m, buf):
        m.set(n.resident, b, True, is_b)
    n.att_pins[att] = s.att_pins[att] + 1
    return 0


@action("kernel importer", "att", revisions=_LATER)
def dma_buf_unpin(m, att):
    """A kernel importer drops a pin it took with dma_buf_pin (ops->unpin)."""
    s, n = m.s, m.n
    _attached(m, att)
    m.require(s.att_pins[att] > 0, "attachment {att} holds no dma_buf_pin to drop")
    n.att_pins[att] = s.att_pins[att] - 1
    return 0
