"""The runner: "for each exporter and revision: model, engines, judge", for every front-end.

A :class:`Task` is one engine (``properties.engines.interface.Engine``) run on one exporter policy
at one scope and revision, on a group of properties, with a budget. Tasks run anywhere: in this
process, in local worker processes, or on a Dask cluster (``properties.runs.workers``); a task's
result depends only on its own fields (and, for a Hypothesis task that replays the example
database, on what the database held when the run started), never on where or when it ran.
:func:`run` feeds the tasks to the workers in plan order and returns their results in plan order,
so what a front-end reports depends on the seed and the budget, not on the number of workers.

Tasks of one *lane* (an exporter and a property group run by the same engine) share an example
database key: a lane's later slots start only once its slot 0 has finished (slot 0 alone replays
the database, so no task of a run replays what another task of the same run stored).

:func:`run` also stops cleanly: with a ``deadline`` it stops feeding tasks once the time is spent
and cancels what is running; SIGINT and SIGTERM do the same; either way the results so far are
returned, with the reason it stopped.
"""
from __future__ import annotations

import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from model.machine import Model
from model.policy import ExporterPolicy
from model.scope import Scope

from .. import interrupt
from ..engines.interface import Budget, Engine
from ..index import get_property
from ..judge import judged

__all__ = ["Task", "Call", "TaskResult", "TaskFailed", "Failure", "run_task", "run", "Outcome", "plan_per_exporter",
           "by_exporter"]


@dataclass(frozen=True)
class Task:
    """One engine on one exporter policy, scope and revision, for the properties ``props``."""

    index: int                   # position in the plan: results come back in this order
    exporter: ExporterPolicy
    scope: Scope
    revision: str
    engine: Engine
    props: tuple[str, ...]       # property IDs
    budget: Budget = Budget()
    group: str = "all"           # the property group (a lane is exporter x group)
    slot: int = 0                # 0, or a later slot of the same lane (another seed)

    @property
    def lane(self) -> tuple[str, str]:
        return (self.exporter.name, self.group)

    @property
    def label(self) -> str:
        group = "" if self.group == "all" else f"/{self.group}"
        return f"{self.exporter.name}{group}#{self.slot}"


@dataclass(frozen=True)
class Call:
    """A query that belongs to no exporter (the synthesis queries leave every knob free; the
    bit-precise arithmetic reads no policy): ``fn(*args)``, run by the same workers as the tasks.
    ``fn`` must be a module-level function, so that a worker process can be handed it."""

    index: int
    label: str
    fn: Callable[..., Any]
    args: tuple = ()
    slot: int = 0

    @property
    def lane(self) -> tuple[str, str]:
        return ("", self.label)


@dataclass(frozen=True)
class TaskResult:
    index: int
    lane: tuple[str, str]
    slot: int
    result: Any           # an EngineResult; for a Call, what its function returned

    @property
    def verdicts(self):
        return self.result.verdicts

    @property
    def seconds(self) -> float:
        return self.result.seconds


class TaskFailed(RuntimeError):
    """A task raised something other than a finding (a bug, not a property outcome)."""


@dataclass(frozen=True)
class Failure:
    """What a worker hands back for a task that raised: its index and the exception."""

    index: int
    error: BaseException


def run_task(task: Task | Call, progress: Callable[[str], None] | None = None,
             keep_space: bool = False) -> TaskResult:
    """Run one task (in whatever process or machine): build the model, run the engine, judge."""
    if isinstance(task, Call):
        return TaskResult(task.index, task.lane, task.slot, task.fn(*task.args))
    model = Model(task.exporter, task.scope, task.revision)
    props = [get_property(pid) for pid in task.props]
    res = task.engine.check(model, props, task.budget, progress)
    res.verdicts = judged(res.verdicts, {p.id: p for p in props}, task.exporter, task.scope)
    if not keep_space:
        res.space = None
    return TaskResult(task.index, task.lane, task.slot, res)


@dataclass
class Outcome:
    """What :func:`run` returns: the results in plan order, and why it stopped early (``None``,
    ``"budget"`` or ``"signal"``)."""

    results: list[TaskResult] = field(default_factory=list)
    stopped: str | None = None
    seconds: float = 0.0


def run(tasks: Iterable[Task], workers, *, deadline: float | None = None,
        on_result: Callable[[TaskResult, int], None] | None = None,
        tick: Callable[[int], None] | None = None) -> Outcome:
    """Run ``tasks`` on ``workers`` (``properties.runs.workers``) until the plan or the time is
    spent; SIGINT and SIGTERM stop the run the same way. ``on_result(result, running)`` is called
    as each task finishes, ``tick(running)`` about once a second while tasks run. The workers are
    stopped before this returns (cancelled if the run stopped early)."""
    started = time.monotonic()
    out = Outcome()
    main = threading.current_thread() is threading.main_thread()
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:   # a signal recorded before (while the command started) stops the run at its first check
        if main:
            for sig in old:
                signal.signal(sig, interrupt.handler)
        try:
            with interrupt.quiet():   # from here a signal is a flag, checked between steps
                out.stopped = _dispatch(iter(tasks), workers, deadline, out.results,
                                        on_result or (lambda r, n: None), tick or (lambda n: None))
        except KeyboardInterrupt:  # a signal between two steps of the loop
            out.stopped = "signal"
        if main:  # a second signal must not cut the stop short
            for sig in old:
                signal.signal(sig, signal.SIG_IGN)
        workers.stop(cancel=out.stopped is not None)
    except BaseException:
        workers.stop(cancel=True)
        raise
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
    out.results.sort(key=lambda r: r.index)
    out.seconds = time.monotonic() - started
    return out


def _dispatch(tasks: Iterator[Task], workers, deadline: float | None, results: list[TaskResult],
              on_result: Callable[[TaskResult, int], None], tick: Callable[[int], None]) -> str | None:
    """Feed ready tasks to the workers in plan order until the plan or the time is spent,
    appending to ``results``. Returns why it stopped early: None, "budget" or "signal"."""
    pending: deque[Task] = deque()
    in_flight: dict[int, Task] = {}
    first_done: set[tuple[str, str]] = set()
    lanes_seen: set[tuple[str, str]] = set()
    exhausted = False
    try:
        while True:
            if interrupt.requested():   # its exception may have been lost (properties.interrupt)
                return "signal"
            while not exhausted and len(pending) < workers.capacity + len(lanes_seen) + 1:
                try:
                    t = next(tasks)
                except StopIteration:
                    exhausted = True
                    break
                pending.append(t)
                lanes_seen.add(t.lane)
            if deadline is not None and time.monotonic() >= deadline:
                return "budget"
            for t in list(pending):
                if len(in_flight) >= workers.capacity:
                    break
                if t.slot == 0 or t.lane in first_done:  # a lane's slot 0 replays the database first
                    pending.remove(t)
                    in_flight[t.index] = t
                    workers.submit(t)
            if not in_flight:
                if exhausted and not pending:
                    return None
                raise RuntimeError("no task is ready to run")  # pragma: no cover - a planning bug
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            item = workers.get(wait)
            if item is None:
                tick(len(in_flight))
                continue
            try:
                r = workers.collect(item)
            except Exception as e:  # noqa: BLE001 - a task that raised on a remote worker
                r = Failure(item.index, e)
            if isinstance(r, Failure):
                t = in_flight[r.index]
                raise TaskFailed(f"task {t.label} failed: {type(r.error).__name__}: {r.error}") from r.error
            t = in_flight.pop(r.index)
            if t.slot == 0:
                first_done.add(t.lane)
            results.append(r)
            on_result(r, len(in_flight))
    except KeyboardInterrupt:
        return "signal"


def plan_per_exporter(exporters: Sequence[ExporterPolicy], scope: Scope, revision: str, engine: Engine,
                      props: Sequence[str], budget: Budget = Budget(), start: int = 0) -> list[Task]:
    """One task per exporter: the plan of every front-end that runs one engine once per policy."""
    return [Task(start + i, p, scope, revision, engine, tuple(props), budget) for i, p in enumerate(exporters)]


def by_exporter(results: Iterable[TaskResult]) -> dict[str, list[Any]]:
    """The verdicts of the results, by exporter, in plan order."""
    out: dict[str, list[Any]] = {}
    for r in sorted(results, key=lambda r: r.index):
        out.setdefault(r.lane[0], []).extend(r.verdicts)
    return out
