"""The Hypothesis engine's hazard score: how close a state is to a coherence failure.

Random exploration reaches a stale read or a stale device hand-off only after a precise sequence
(a CPU write, a bracket ended or left open, a device mapped, the access itself). Hypothesis's
generation keeps a mutation of an example only when it scores at least as well
(``properties.engines.hypothesis_engine``: ``target()`` with the best hazard of the example), so
a score that rises on the way to such a failure steers it there. The score counts, per page of
each buffer:

- a *stale cache line*: the CPU cache holds the page (``cache`` is not ``CACHE_INVALID``) but not
  its newest value (``cache_ok`` false), e.g. after a device wrote memory. A CPU read of it is a
  stale read: inside a bracket whose direction reads it breaks P-BEGIN-COHERENT (claims
  BEGIN-COHERENT, DEV-COHERENT-HANDOFF: data written by the device is seen by a CPU reader that
  bracketed its read). It weighs ``NEAR`` while a CPU bracket of the buffer is open (userspace
  SYNC or kernel begin/end: the next read is that read), ``LATENT`` otherwise;
- a *handed-off write*: the newest value of the page was written by the CPU inside a write
  bracket since ended (``wclass`` is ``W_HANDED_OFF``) and memory does not hold it yet. A device
  reading the page then misses it, which breaks P-DEVICE-HANDOFF (claim DEV-COHERENT-HANDOFF:
  data written by the CPU inside a bracket with WRITE or RW is seen by the device after end). It
  weighs ``NEAR`` while an attachment of the buffer is mapped for DMA (the next device read is
  that read), ``LATENT`` otherwise.

The score is written in the property vocabulary (a term over the state fields of
:class:`properties.registry.StateView`, like the properties and the stuck-state goals of
``properties.goals``): an integer term, a sum of ``ite``, compiled to a Python function of the
state tuple with :func:`model.terms.compile_function`, the policy's knobs substituted first.
It only guides sampling, and no verdict depends on it; but its values decide which examples
Hypothesis keeps, so with a fixed seed they are part of the campaign reports (changing them
changes the golden reports of ``tests/test_reports_unchanged.py``).
"""
from __future__ import annotations

from typing import Callable

from model.state import CACHE_INVALID, W_HANDED_OFF
from model.terms import Term, and_, compile_function, const, eq, ite, ne, not_, or_, substitute

from .property import StateView

__all__ = ["CLAIMS", "NEAR", "LATENT", "hazard", "hazard_function"]

CLAIMS = ("BEGIN-COHERENT", "DEV-COHERENT-HANDOFF")
"""The claims whose failures the score leads toward (through P-BEGIN-COHERENT and P-DEVICE-HANDOFF)."""

NEAR = 3     # a hazard the very next access turns into a failure
LATENT = 1   # a hazard that needs a bracket opened or a device mapped first


def stale_line(v: StateView, b: int, p: int) -> Term:
    """The CPU cache holds page ``p`` of buffer ``b``, but not its newest value."""
    return and_(ne(v.s.cache[b][p], CACHE_INVALID), not_(v.s.cache_ok[b][p]))


def cpu_bracket_open(v: StateView, b: int) -> Term:
    """A userspace SYNC bracket or a kernel begin/end bracket of buffer ``b`` is open."""
    return or_(v.s.uopen[b], v.s.kopen[b])


def handed_off(v: StateView, b: int, p: int) -> Term:
    """The newest value of page ``p`` of buffer ``b``, which memory lacks, was written by the CPU
    inside a write bracket since ended."""
    return eq(v.s.wclass[b][p], W_HANDED_OFF)


def device_mapped(v: StateView, b: int) -> Term:
    """An attachment of buffer ``b`` is mapped for DMA."""
    return or_(*(and_(v.s.att_mapped[a], eq(v.s.att_buf[a], b)) for a in range(v.scope.attachments)))


def hazard(v: StateView) -> Term:
    """The hazard score of the state ``v.s``, an integer term."""
    total = const(0)
    for b in v.buffers():
        for p in v.pages():
            total = total + ite(stale_line(v, b, p), ite(cpu_bracket_open(v, b), NEAR, LATENT), 0)
            total = total + ite(handed_off(v, b, p), ite(device_mapped(v, b), NEAR, LATENT), 0)
    return total


def hazard_function(model) -> Callable[[tuple], int]:
    """The hazard score as a Python function of a state tuple of ``model`` (its knobs folded in)."""
    (t,) = substitute([hazard(StateView(model.schema))], model.knob_env)
    fn, _ = compile_function("hazard", ["s"], model.var_expr, [t], result=lambda outs: outs[0])
    return fn
