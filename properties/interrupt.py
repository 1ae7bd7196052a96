"""Stopping a run on SIGINT or SIGTERM, reliably.

The signal handler records the signal and raises ``KeyboardInterrupt`` (so that a run blocked in
a long call stops at once). Python drops an exception raised while a garbage-collection callback
or a ``__del__`` runs ("Exception ignored in ..."), and Hypothesis runs such callbacks: so the
recorded signal is also checked between the steps of every engine (:func:`check`, called per
Hypothesis example, per explicit-search level and per Z3 query), where raising cannot be lost.
The dropped exception is not printed either: :func:`handler` installs an unraisable-exception hook
that stays silent about a ``KeyboardInterrupt`` of a recorded signal and passes anything else on.
A stopped command exits 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM."""
from __future__ import annotations

import signal
import sys

__all__ = ["handler", "check", "requested", "reset", "exit_status"]

_received: list[int] = []


def handler(signum, frame) -> None:
    """The SIGINT/SIGTERM handler of a run: record, then stop at once where that is possible."""
    _received.append(signum)
    if sys.unraisablehook is not _quiet_about_signals:
        global _previous_hook
        _previous_hook = sys.unraisablehook
        sys.unraisablehook = _quiet_about_signals
    raise KeyboardInterrupt


_previous_hook = sys.unraisablehook


def _quiet_about_signals(unraisable) -> None:
    """An exception Python could not raise: silent when it is the handler's own (the signal is
    recorded and :func:`check` raises it at the next step), shown as usual otherwise."""
    if _received and isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    _previous_hook(unraisable)


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
