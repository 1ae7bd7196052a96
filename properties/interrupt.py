"""Stopping a run on SIGINT or SIGTERM, reliably.

The signal handler records the signal. While a run's tasks run (:func:`quiet`: the runner's
dispatch of tasks to workers, and the engines it runs in this process), that is all it does:
every engine checks the record between its steps (:func:`check`: per Hypothesis example, per
block of the explicit search's frontier, per Z3 depth, and the runner about once a second), where
stopping leaves nothing half-done, and nothing is thrown into the code the signal interrupts (a
queue's internals, Hypothesis's own bookkeeping). Code with no step boundary for a long time, a
Z3 query or the stuck-state analysis, runs in a :func:`raising` section, where the handler also
raises ``KeyboardInterrupt`` so that it stops at once rather than at its end; so does a command's
own code outside a run (the command line enters a raising section for the whole command).

Python drops an exception raised while a garbage-collection callback or a ``__del__`` runs
("Exception ignored in ..."), and Hypothesis registers such a callback: a signal's exception lost
that way is still recorded, so the next :func:`check` stops the run, and the unraisable-exception
hook installed by :func:`handler` keeps Python's message about it quiet (it passes anything else
on). A stopped command exits 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM."""
from __future__ import annotations

import contextlib
import signal
import sys

__all__ = ["handler", "check", "requested", "reset", "exit_status", "raising", "quiet"]

_received: list[int] = []
_raising = [0]          # how many raising sections are running (nested sections count)


def handler(signum, frame) -> None:
    """The SIGINT/SIGTERM handler of a run: record; raise only inside a :func:`raising` section."""
    _received.append(signum)
    if _raising[0]:
        if sys.unraisablehook is not _quiet_about_signals:
            global _previous_hook
            _previous_hook = sys.unraisablehook
            sys.unraisablehook = _quiet_about_signals
        raise KeyboardInterrupt


class raising(contextlib.ContextDecorator):
    """A section with no step boundary for a long time (a Z3 query): a signal stops it at once.
    Entering it stops at once too when a signal was recorded before."""

    def __enter__(self) -> "raising":
        check()
        _raising[0] += 1
        return self

    def __exit__(self, *exc) -> bool:
        _raising[0] -= 1
        return False


class quiet(contextlib.ContextDecorator):
    """A section where a signal is only recorded (checked by :func:`check` between steps), even
    inside a raising section; raising sections entered within it raise again."""

    def __enter__(self) -> "quiet":
        self._saved = _raising[0]
        _raising[0] = 0
        return self

    def __exit__(self, *exc) -> bool:
        _raising[0] = self._saved
        return False


_previous_hook = sys.unraisablehook


def _quiet_about_signals(unraisable) -> None:
    """An exception Python could not raise: silent when it is the handler's own (the signal is
    recorded and :func:`check` raises it at the next step), shown as usual otherwise."""
    if _received and isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    _previous_hook(unraisable)


def check() -> None:
    """Between two steps of an engine: stop if a signal came."""
    if _received:
        raise KeyboardInterrupt


def requested() -> bool:
    return bool(_received)


def reset() -> None:
    _received.clear()


def exit_status() -> int:
    """128 + the first signal received (130 when none was recorded: a plain Ctrl-C)."""
    return 128 + (_received[0] if _received else signal.SIGINT)
