"""What a transition definition receives: the pre-state, the next state being built, the knobs,
the events and the guard, in one object.

A transition is ``def action(m, **args) -> ret``: it adds its guard with ``m.require(cond, why)``
(``why``: the reason the step cannot be taken when ``cond`` is false, which litmus files and
replays print),
writes effects to ``m.n`` (reads of ``m.n`` see earlier writes of the same step), sets events
with ``m.event(name, cond)``, names the buffer it acted on with ``m.subject(buf)``, and returns
its return value as a term or an int.

``m.revision`` is the documentation revision the model is built for (``"v4.11"``, ``"v5.12"`` or
``"v6.12"``; ``model.policy.since`` orders them, and a later revision behaves like the one before
it unless a rule of its own says otherwise),
a static value: a transition may branch on it in Python (it is not state). The semantic switches
that read it, each naming the revisions it applies to (docs/review.md has the full table):

=============================================  ==============================  ====================
switch                                         v4.11                           v5.12
=============================================  ==============================  ====================
kmap, kunmap, kmap_atomic, kunmap_atomic       actions exist                   removed (v5.6)
dma_buf_pin, dma_buf_unpin                     no such actions                 actions exist (v5.7)
ghost ``kended`` (kmap after end is undefined) kept by begin/end (rules.py)    not kept: no kmap
dma_buf_vmap without ``ops->vmap``             NULL (modelled as -ENOMEM)      -EINVAL (v5.11)
mmap of a byte range past ULONG_MAX            size check (-EINVAL)            -EOVERFLOW (v4.17)
dma_buf_export of ops without kmap,            -EINVAL, WARN_ON, nothing       accepted (optional
kmap_atomic or mmap (``export_requires``)      created (corpus §3.5)           from v4.19, §6.1)
the core's cached mapping (``att_sgt``,         none                            kept from the first
``att_dir``, knob ``cache_sgt_mapping``)                                        map; -EBUSY in
                                                                                another direction
=============================================  ==============================  ====================

v6.12 is v5.12 plus the reservation lock and dynamic attachments (``model/actions/resv.py``): the
state fields ``resv_held`` and ``att_dynamic`` (``FieldSpec.since``: an earlier revision's state
has neither), the actions ``dma_resv_lock``, ``dma_resv_unlock``, the ``_unlocked`` variants,
``dma_buf_dynamic_attach`` and ``exporter_move``, the knobs ``dynamic``, ``move_notifies``,
``callback_takes_resv`` and ``mutant_static_no_pin`` (``Knob.since``), and the locking
convention's events, applied to every step by ``resv.apply_convention``.

(The action sets are switched by the ``revisions`` of each action's registration; the others
read ``m.revision``.) What begin and end *do* stays the exporter's knobs at both revisions; what
the later documentation *asks* of them (coherency hooks only, no pinning for userspace) is judged
by the properties of ``properties/later_revision.py``.
"""
from __future__ import annotations

from typing import Any, Sequence

from .events import EVENT_BIT
from .policy import KNOBS
from .scope import Scope
from .state import NextState, SymState
from .terms import FALSE, TRUE, Term, and_, ite, lift, or_

__all__ = ["Step", "Knobs"]


class Knobs:
    """The exporter's knobs as terms: ``m.k.begin_pins``; enumerated knobs compare to names:
    ``m.k.is_("begin_sync", "direction")``."""

    def __init__(self, terms: dict[str, Term]) -> None:
        self._terms = terms

    def __getattr__(self, name: str) -> Term:
        try:
            return self._terms[name]
        except KeyError:
            raise AttributeError(f"no exporter knob {name!r}") from None

    def is_(self, name: str, choice: str) -> Term:
        return self._terms[name] == KNOBS[name].choices.index(choice)


class Step:
    def __init__(self, scope: Scope, pre: SymState, knobs: Knobs, revision: str = "v4.11") -> None:
        self.scope = scope
        self.revision = revision
        self.s = pre
        self.n = NextState(pre)
        self.k = knobs
        self.guard: Term = TRUE
        self.requires: list[tuple[Term, tuple[tuple[Term, str], ...]]] = []
        self.events: dict[str, Term] = {}
        self.subject_buf: Term = lift(0)

    def require(self, cond: Any, why: str | Sequence[tuple[Any, str]]) -> None:
        """Add to the guard: the action is enabled only when ``cond`` holds in the pre-state.

        ``why`` says why the step cannot be taken when ``cond`` is false, in the kernel reader's
        words: a sentence, or ``(condition, sentence)`` pairs of which the first whose condition
        holds in the pre-state is the reason (the last one's condition is usually ``TRUE``).
        Sentences may name the action's arguments (``{buf}``) and the scope (``{scope}``)."""
        cond = lift(cond)
        self.guard = and_(self.guard, cond)
        reasons = ((TRUE, why),) if isinstance(why, str) else tuple((lift(c), w) for c, w in why)
        self.requires.append((cond, reasons))

    def event(self, name: str, cond: Any) -> None:
        if name not in EVENT_BIT:
            raise KeyError(f"unknown event {name!r}; declare it in model/events.py")
        self.events[name] = or_(self.events.get(name, FALSE), cond)

    def subject(self, buf: Any) -> None:
        self.subject_buf = lift(buf)

    def set(self, arr, i: int, value: Any, when: Any) -> None:
        """``arr[i] = value`` where ``when`` holds, unchanged elsewhere."""
        arr[i] = ite(when, value, arr[i])
