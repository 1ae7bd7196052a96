"""Obligations that must always remain dischargeable: the goals of the stuck-state analysis.

A *goal* is a pair of state predicates in the property vocabulary (``properties.property.StateView``),
citing the claims it comes from like every property: ``pending`` (an obligation is open) and
``done`` (it is discharged). A reachable state where the obligation is pending and from which no
path reaches a state where it is done is *stuck* (``properties.engines.stuck``): no single state is
wrong, yet a resource leaks for ever.

- ``release[b]``: an exported buffer can always still be released (LIFE-RELEASE: release runs
  when the last reference is dropped, so dropping every reference must remain possible);
- ``unpin[b]``: a pin taken by ``begin_cpu_access`` can always still be dropped (END-FLUSH-UNPIN at
  v4.11, "unpin any resources pinned in begin_cpu_access"; M-END-UNDO at v5.12, "undo anything
  else done in @begin_cpu_access");
- ``device-unpin``: a ``dma_buf_pin`` can always still be undone (LIFE-DETACH: at v5.12 a pin must
  be undone before detach).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from model.policy import REVISIONS, since
from model.state import LIFE_LIVE, LIFE_RELEASED
from model.terms import Term, and_, eq, or_

from .property import StateView

__all__ = ["Goal", "GOALS", "goals_for_scope"]


@dataclass(frozen=True)
class Goal:
    name: str
    claims: tuple[str, ...]
    doc: str
    pending: Callable[[StateView], Term]
    done: Callable[[StateView], Term]
    revisions: tuple[str, ...] = REVISIONS


def _per_buffer(b: int) -> list[Goal]:
    return [
        Goal(f"release[{b}]", ("LIFE-RELEASE",), f"buffer {b} is exported and can never be released",
             lambda v: eq(v.s.life[b], LIFE_LIVE), lambda v: eq(v.s.life[b], LIFE_RELEASED)),
        Goal(f"unpin[{b}]", ("END-FLUSH-UNPIN",), f"buffer {b}'s storage is pinned and the pin can never be dropped",
             lambda v: v.s.pins[b] > 0, lambda v: eq(v.s.pins[b], 0), revisions=("v4.11",)),
        Goal(f"unpin[{b}]", ("M-END-UNDO",), f"buffer {b}'s storage is pinned and the pin can never be dropped",
             lambda v: v.s.pins[b] > 0, lambda v: eq(v.s.pins[b], 0), revisions=since("v5.12")),
    ]


_DEVICE_UNPIN = Goal(
    "device-unpin", ("LIFE-DETACH",), "an attachment holds a dma_buf_pin that can never be dropped",
    lambda v: or_(*(v.s.att_pins[a] > 0 for a in range(v.scope.attachments))),
    lambda v: and_(*(eq(v.s.att_pins[a], 0) for a in range(v.scope.attachments))), revisions=since("v5.12"))


def goals_for_scope(buffers: int, revision: str) -> list[Goal]:
    """The goals of a scope with ``buffers`` buffers at ``revision``."""
    out = [g for b in range(buffers) for g in _per_buffer(b)] + [_DEVICE_UNPIN]
    return [g for g in out if revision in g.revisions]


GOALS = goals_for_scope(1, "v4.11") + goals_for_scope(1, "v5.12")
