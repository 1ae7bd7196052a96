"""Where tasks run: in this process, in local worker processes, or (``properties.runs.cluster``)
on a Dask cluster. Every kind has the same face: ``capacity``, ``submit(task)``, ``get(timeout)``
(a finished item, or ``None``), ``collect(item)`` (its :class:`~properties.runs.runner.TaskResult`,
or a :class:`Failure`), ``examples()`` (Hypothesis examples run so far, where known) and
``stop(cancel)``.
"""
from __future__ import annotations

import multiprocessing
import queue
import signal
import sys

from .runner import Failure, Task, TaskResult, run_task

__all__ = ["InlineWorkers", "LocalWorkers", "run_counted"]

# Set in a worker process by LocalWorkers: a shared count of the Hypothesis examples run, for the
# live examples-per-second figure.
EXAMPLE_COUNTER = None


def run_counted(task: Task) -> TaskResult:
    """:func:`run_task`, adding the Hypothesis examples it runs to the shared counter (the engine
    reports progress every 100 examples)."""
    ticks = [0]

    def tick(_msg: str) -> None:
        ticks[0] += 1
        if EXAMPLE_COUNTER is not None:
            with EXAMPLE_COUNTER.get_lock():
                EXAMPLE_COUNTER.value += 100

    hyp = getattr(getattr(task, "engine", None), "name", "") == "hypothesis"
    r = run_task(task, tick if hyp else None)
    if EXAMPLE_COUNTER is not None and hyp:
        with EXAMPLE_COUNTER.get_lock():
            EXAMPLE_COUNTER.value += r.result.summary.get("examples", 0) - 100 * ticks[0]
    return r


def _init_worker(counter) -> None:
    # The run's process stops its workers (SIGTERM from Pool.terminate); Ctrl-C in a terminal
    # reaches the whole process group, and only the run's process handles it.
    global EXAMPLE_COUNTER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    EXAMPLE_COUNTER = counter


class InlineWorkers:
    """Runs each task in this process when it is submitted (one job). ``keep_space``: the
    explicit engine's state graph stays in the result (for graph export and coverage);
    ``progress`` receives the engines' progress lines; ``announce(task)`` is called as a task
    starts."""

    capacity = 1

    def __init__(self, keep_space: bool = False, progress=None, announce=None) -> None:
        self.keep_space = keep_space
        self.progress = progress
        self.announce = announce
        self.results: queue.Queue = queue.Queue()

    def submit(self, task: Task) -> None:
        if self.announce is not None:
            self.announce(task)
        try:
            self.results.put(run_task(task, self.progress, keep_space=self.keep_space))
        except Exception as e:  # noqa: BLE001 - reported as a failed task
            self.results.put(Failure(task.index, e))

    def get(self, timeout: float):
        try:
            return self.results.get(timeout=timeout)
        except queue.Empty:
            return None

    def collect(self, item):
        return item

    def examples(self) -> int | None:
        return None

    def stop(self, cancel: bool) -> None:
        pass


class LocalWorkers(InlineWorkers):
    """``jobs`` worker processes on this machine (standard library only). A worker runs task
    after task; what Z3 answers does not depend on that, since every engine run that uses Z3
    starts from a fresh Z3 context (``properties.engines.z3_engine.fresh_context``)."""

    def __init__(self, jobs: int) -> None:
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
        self.capacity = jobs
        self.counter = ctx.Value("q", 0)
        self.results = queue.Queue()
        self.pool = ctx.Pool(jobs, initializer=_init_worker, initargs=(self.counter,))

    def submit(self, task: Task) -> None:
        self.pool.apply_async(run_counted, (task,), callback=self.results.put,
                              error_callback=lambda e, i=task.index: self.results.put(Failure(i, e)))

    def examples(self) -> int | None:
        return self.counter.value

    def stop(self, cancel: bool) -> None:
        if cancel:
            self.pool.terminate()
        else:
            self.pool.close()
        self.pool.join()
