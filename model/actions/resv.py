"""The reservation lock and dynamic attachments (v6.12): dma_resv_lock, dma_resv_unlock, the
``_unlocked`` variants of the locked functions, dma_buf_dynamic_attach, and an exporter's move of
storage with dma_buf_move_notify.

Revisions: v6.12 only (these actions are registered with ``revisions=since("v6.12")``, and the
convention is applied by :func:`apply_convention` at v6.12 only; before, the model has no lock).

Documentation: "DOC: locking convention" (corpus §6.6, v6.2+; the model follows the list as it
stands from v6.6 on, so at v6.12: ``ops->mmap`` is called unlocked), the ``@move_notify`` and
``@pin`` kerneldoc (§6.3). The convention is a table, :data:`LOCKED` and :data:`UNLOCKED`, keyed by
the model's action names (the kernel's function names):

- an importer calling a function of the locked list without holding the buffer's reservation
  lock, or one of the unlocked list while holding it, breaks its obligation: the events
  ``resv_not_held`` and ``resv_held_unlocked_call`` (properties/locking.py classifies them);
- an exporter callback of the locked list (pin, unpin, map_dma_buf, unmap_dma_buf, vmap, vunmap)
  that takes the lock itself (knob ``callback_takes_resv``) deadlocks when the core calls it with
  the lock held (by the importer, or by the core itself in an ``_unlocked`` variant): the event
  ``resv_deadlock``. The step still completes in the model, so that a trace shows what follows.

The model's lock has one owner, the kernel importer (one context); an exporter moving storage
takes the lock itself, so the move waits while the importer holds it (the guard of
``exporter_move``). Only the lock's holder matters to the convention; which context the kernel
runs in does not.

Dynamic attachments. ``dma_buf_dynamic_attach`` is ``dma_buf_attach`` with importer_ops whose
``move_notify`` is set (``att_dynamic``). A dynamic exporter (knob ``dynamic``) may move storage a
dynamic attachment has mapped ("If this callback is provided the framework can avoid pinning the
backing store while mappings exists"), with the lock held, and calls dma_buf_move_notify, which
calls ``move_notify`` of each dynamic attachment: the event ``move_notify``. A move changes where
the storage lives, not its data (the old mapping stays valid until the move's fences signal:
"Mappings stay valid and are not directly affected by this callback"), so the model's state does
not change. For a non-dynamic attachment the core pins the storage at attach ("This is called
automatically for non-dynamic importers from dma_buf_attach()", the ``@pin`` kerneldoc; the model
follows this text at v6.12: the code moved that pin to map time only in ~v6.16, corpus §6.1), so a
move is refused while one is attached (``mutant_static_no_pin`` drops that pin: the event
``moved_static``). The 6.12 core also maps such an attachment DMA_BIDIRECTIONAL at attach time,
as it does a dynamic attachment of a non-dynamic exporter, and keeps the mapping until detach
(``device.attach_time_mapping``): so the convention's tables say that dma_buf_attach (of a dynamic
exporter) and dma_buf_dynamic_attach (of a non-dynamic one) call pin / map_dma_buf under the lock
the core takes, dma_buf_detach unmap_dma_buf when a mapping is kept, and a map or unmap of an
attachment with a kept mapping calls no callback at all.

``exporter_move`` is the model's name (the kernel has none: each dynamic exporter evicts or
migrates in its own code, e.g. TTM, and then calls dma_buf_move_notify).
"""
from __future__ import annotations

from typing import Any, Callable

from ..policy import since
from ..rules import not_held
from ..state import LIFE_LIVE
from ..terms import TRUE, Term, and_, any_of, eq, not_, or_, select
from .device import attach_time_mapping, dma_buf_attach, dma_buf_map_attachment, dma_buf_unmap_attachment
from .kernel_access import dma_buf_vmap, dma_buf_vunmap
from .registry import action

__all__ = ["LOCKED", "UNLOCKED", "apply_convention", "V6_12"]

V6_12 = since("v6.12")


def _held(m, buf) -> Term:
    return select(list(m.s.resv_held), buf)


def _att_buf(m, a) -> Term:
    return m.s.att_buf[a["att"]]


def _buf(m, a) -> Term:
    return a["buf"]


def _first_vmap(m, a) -> Term:
    return and_(m.k.has_vmap, eq(select(list(m.s.vmapping_counter), a["buf"]), 0))


def _last_vunmap(m, a) -> Term:
    return and_(m.k.has_vmap, eq(select(list(m.s.vmapping_counter), a["buf"]), 1))


def _uncached(m, a) -> Term:
    """The core calls ops->map_dma_buf / ops->unmap_dma_buf: the attachment has no cached mapping
    (attach->sgt; with one, the map returns it and the unmap returns early)."""
    return not_(m.s.att_sgt[a["att"]])


_Row = tuple[Callable[[Any, dict], Term], Callable[[Any, dict], Term] | None]

# "1. Importers must hold the dma-buf reservation lock when calling these functions" and
# "2. These &dma_buf_ops callbacks are invoked with locked dma-buf reservation and exporter can't
# take the lock": action -> (its buffer, when it calls the exporter's callback of the locked list)
LOCKED: dict[str, _Row] = {
    "dma_buf_pin": (_att_buf, lambda m, a: TRUE),                 # ops->pin
    "dma_buf_unpin": (_att_buf, lambda m, a: TRUE),               # ops->unpin
    "dma_buf_map_attachment": (_att_buf, _uncached),              # ops->map_dma_buf, unless cached
    "dma_buf_unmap_attachment": (_att_buf, _uncached),            # ops->unmap_dma_buf, unless cached
    "dma_buf_vmap": (_buf, _first_vmap),                          # ops->vmap on the first vmap only
    "dma_buf_vunmap": (_buf, _last_vunmap),                       # ops->vunmap on the last one
}

# "2. Importers must not hold the dma-buf reservation lock when calling these functions"
# (dma_buf_mmap() is not an action of the model: no importer forwards its own mmap). The
# ``_unlocked`` variants take the lock themselves around the same callbacks as their locked forms.
UNLOCKED: dict[str, _Row] = {
    "dma_buf_attach": (_buf, lambda m, a: m.k.dynamic),           # ops->pin, ops->map_dma_buf at attach
    "dma_buf_dynamic_attach": (_buf, lambda m, a: not_(m.k.dynamic)),  # ops->map_dma_buf at attach
    "dma_buf_detach": (_att_buf, lambda m, a: m.s.att_sgt[a["att"]]),  # unmap (and unpin) of the cached mapping
    "dma_buf_export": (_buf, None),
    "dma_buf_fd": (_buf, None),
    "dma_buf_get": (lambda m, a: m.s.fd_buf[a["fd"]], None),
    "dma_buf_put": (_buf, None),
    "dma_buf_begin_cpu_access": (_buf, None),
    "dma_buf_end_cpu_access": (_buf, None),
    "dma_buf_map_attachment_unlocked": (_att_buf, _uncached),
    "dma_buf_unmap_attachment_unlocked": (_att_buf, _uncached),
    "dma_buf_vmap_unlocked": (_buf, _first_vmap),
    "dma_buf_vunmap_unlocked": (_buf, _last_vunmap),
}


def apply_convention(m, name: str, args: dict) -> None:
    """The locking convention's events for a step of action ``name`` (v6.12 on; nothing before)."""
    if m.revision not in V6_12:
        return
    if name in LOCKED:
        buf_of, calls = LOCKED[name]
        held = _held(m, buf_of(m, args))
        m.event("resv_not_held", not_(held))
        m.event("resv_deadlock", and_(m.k.callback_takes_resv, held, calls(m, args)))
    elif name in UNLOCKED:
        buf_of, calls = UNLOCKED[name]
        held = _held(m, buf_of(m, args))
        if name == "dma_buf_get":
            held = and_(held, m.s.fd_open[args["fd"]])
        m.event("resv_held_unlocked_call", held)
        if calls is not None:   # the core takes the lock around the callback
            m.event("resv_deadlock", and_(m.k.callback_takes_resv, not_(held), calls(m, args)))


# --- the lock ------------------------------------------------------------------------------------

@action("kernel importer", "buf", revisions=V6_12)
def dma_resv_lock(m, buf):
    """A kernel importer takes the buffer's reservation lock (dma_resv_lock(dmabuf->resv, NULL))."""
    s, n = m.s, m.n
    m.require(s.kref[buf] > 0, not_held(s, buf))
    m.require(not_(s.resv_held[buf]), "the importer already holds the reservation lock of buffer {buf} "
              "(a second dma_resv_lock by its holder deadlocks)")
    m.subject(buf)
    n.resv_held[buf] = True
    return 0


@action("kernel importer", "buf", revisions=V6_12)
def dma_resv_unlock(m, buf):
    """A kernel importer drops the buffer's reservation lock (dma_resv_unlock)."""
    s, n = m.s, m.n
    m.require(s.resv_held[buf], "the importer does not hold the reservation lock of buffer {buf}")
    m.subject(buf)
    n.resv_held[buf] = False
    return 0


# --- the _unlocked variants: the same transitions, the core takes the lock around them ---------

@action("kernel importer", "att", "direction", revisions=V6_12)
def dma_buf_map_attachment_unlocked(m, att, direction):
    """A kernel importer maps the attachment for DMA; the core takes the reservation lock."""
    return dma_buf_map_attachment(m, att, direction)


@action("kernel importer", "att", revisions=V6_12)
def dma_buf_unmap_attachment_unlocked(m, att):
    """A kernel importer unmaps the attachment; the core takes the reservation lock."""
    return dma_buf_unmap_attachment(m, att)


@action("kernel importer", "buf", revisions=V6_12)
def dma_buf_vmap_unlocked(m, buf):
    """A kernel importer vmaps the buffer; the core takes the reservation lock."""
    return dma_buf_vmap(m, buf)


@action("kernel importer", "buf", revisions=V6_12)
def dma_buf_vunmap_unlocked(m, buf):
    """A kernel importer drops a vmap; the core takes the reservation lock."""
    return dma_buf_vunmap(m, buf)


# --- dynamic attachments and moves -------------------------------------------------------------

@action("kernel importer", "buf", revisions=V6_12)
def dma_buf_dynamic_attach(m, buf):
    """A kernel importer attaches a device with importer_ops (move_notify); returns the attachment."""
    n = m.n
    ret = dma_buf_attach(m, buf)
    for a in range(m.scope.attachments):
        m.set(n.att_dynamic, a, True, and_(ret >= 0, eq(ret, a)))
    attach_time_mapping(m, ret, ret >= 0, True)
    return ret


def _attached(m, buf, dynamic: bool) -> Term:
    s = m.s
    return any_of(and_(s.att_live[a], eq(s.att_buf[a], buf), s.att_dynamic[a] if dynamic else not_(s.att_dynamic[a]))
                  for a in range(m.scope.attachments))


@action("exporter", "buf", revisions=V6_12)
def exporter_move(m, buf):
    """A dynamic exporter moves the buffer's storage (eviction, migration) with the reservation
    lock held and calls dma_buf_move_notify, which calls move_notify of each dynamic attachment."""
    s, k = m.s, m.k
    m.require(and_(eq(s.life[buf], LIFE_LIVE), s.resident[buf]), "buffer {buf} is not live and resident")
    m.require(k.dynamic, "the exporter is not dynamic (no ops->pin): it moves no storage while attached")
    m.require(not_(s.resv_held[buf]), "the importer holds the reservation lock of buffer {buf}: the "
              "exporter waits for it")
    m.require(and_(eq(s.pins[buf], 0), eq(s.vmapping_counter[buf], 0),
                   *(or_(not_(s.att_live[a]), s.att_buf[a] != buf, eq(s.att_pins[a], 0))
                     for a in range(m.scope.attachments))),
              "buffer {buf} is pinned (begin_cpu_access, dma_buf_pin or a vmap)")
    static = _attached(m, buf, dynamic=False)
    m.require(or_(k.mutant_static_no_pin, not_(static)),
              "a non-dynamic attachment of buffer {buf} holds the pin dma_buf_attach took")
    m.subject(buf)
    dynamic = _attached(m, buf, dynamic=True)
    m.event("move_notify", and_(dynamic, k.move_notifies))
    m.event("moved_unnotified", and_(dynamic, not_(k.move_notifies)))
    m.event("moved_static", static)
    return 0

