"""Stopping a run on SIGINT or SIGTERM, reliably.

The signal handler records the signal and raises ``KeyboardInterrupt`` (so that a run blocked in
a long call stops at once). Python drops an exception raised while a garbage-collection callback
or a ``__del__`` runs ("Exception ignored in ..."), and Hypothesis runs such callbacks: so the
recorded signal is also checked between the steps of every engine (:func:`check`, called per
Hypothesis example, per explicit-search level and per Z3 query), where raising cannot be lost.
A stopped command exits 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM."""
from __future__ import annotations

import signal

__all__ = ["handler", "check", "requested", "reset", "exit_status"]

_received: list[int] = []


def handler(signum, frame) -> None:
    """The SIGINT/SIGTERM handler of a run: record, then stop at once where that is possible."""
    _received.append(signum)
    raise KeyboardInterrupt


def check() -> None:
    """Between two steps of an engine: stop if a signal came, even if its exception was lost."""
    if _received:
        raise KeyboardInterrupt


def requested() -> bool:
    return bool(_received)


def reset() -> None:
    _received.clear()


def exit_status() -> int:
    """128 + the first signal received (130 when none was recorded: a plain Ctrl-C)."""
    return 128 + (_received[0] if _received else signal.SIGINT)
