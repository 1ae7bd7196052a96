"""Campaigns at scale (issue 8): every local core, a Dask cluster, a time budget, and a clean
stop on a signal. The CLI's ``campaign`` command runs through ``run_scaled``.

The work is cut into shards (properties.shards), run by local worker processes (``jobs``), in
this process (one job, no budget), or on a Dask cluster (properties.cluster), and merged in plan
order. Without ``budget`` the plan is one slot: one shard per exporter and property group, the
same runs as one process would do. With a ``budget`` in seconds, slot after slot of shards with
derived seeds runs until the time is spent; the shards still running then are stopped and left
out, and the report says how many shards it merged. SIGINT (Ctrl-C) and SIGTERM stop the workers
the same way; the report of what was found is then written (atomically, by
properties.campaign.write_report), and with a budget it is also written every minute while the
campaign runs. Progress goes to stderr.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import re
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from model.policy import ExporterPolicy
from model.scope import Scope

from . import shards as _shards
from .campaign import CampaignResult, _claim_checks
from .shards import Shard, ShardResult, lanes, merge, plan, run_shard

__all__ = ["run_scaled", "parse_duration", "format_duration", "default_jobs", "LocalWorkers",
           "InlineWorkers", "ShardFailed", "add_arguments", "CHECKPOINT_SECONDS"]

CHECKPOINT_SECONDS = 60.0
_PROGRESS_SECONDS = 5.0

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``30m``, ``8h``, ``1h30m``, ``90s``, ``2.5h`` or a number of seconds -> seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        total = float(t)
    elif re.fullmatch(r"(\d+(\.\d+)?[smhd])+", t):
        total = sum(float(n) * _UNITS[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)([smhd])", t))
    else:
        raise ValueError(f"expected a duration such as 90s, 30m, 8h or 1h30m, got {text!r}")
    if total <= 0:
        raise ValueError(f"expected a duration above zero, got {text!r}")
    return total


def format_duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class ShardFailed(RuntimeError):
    """A shard raised something other than a property violation (a bug, not a finding)."""


@dataclass(frozen=True)
class _Failure:
    index: int
    error: BaseException


def _init_worker(counter) -> None:
    # The campaign process stops its workers (SIGTERM from Pool.terminate); Ctrl-C in a
    # terminal reaches the whole process group, and only the campaign process handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _shards.EXAMPLE_COUNTER = counter


class InlineWorkers:
    """Runs each shard in this process when it is submitted (one job, no budget)."""

    capacity = 1

    def __init__(self, scope: Scope, revision: str, database: str | None) -> None:
        self.args = (scope, revision, database)
        self.results: queue.Queue = queue.Queue()

    def submit(self, shard: Shard) -> None:
        try:
            self.results.put(run_shard(shard, *self.args))
        except Exception as e:  # noqa: BLE001 - reported as a failed shard
            self.results.put(_Failure(shard.index, e))

    def collect(self, item):
        return item

    def examples(self) -> int | None:
        return None

    def stop(self, cancel: bool) -> None:
        pass


class LocalWorkers:
    """``jobs`` worker processes on this machine (standard library only)."""

    def __init__(self, jobs: int, scope: Scope, revision: str, database: str | None) -> None:
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
        self.capacity = jobs
        self.args = (scope, revision, database)
        self.counter = ctx.Value("q", 0)
        self.results: queue.Queue = queue.Queue()
        self.pool = ctx.Pool(jobs, initializer=_init_worker, initargs=(self.counter,))

    def submit(self, shard: Shard) -> None:
        self.pool.apply_async(run_shard, (shard, *self.args), callback=self.results.put,
                              error_callback=lambda e, i=shard.index: self.results.put(_Failure(i, e)))

    def collect(self, item):
        return item

    def examples(self) -> int | None:
        return self.counter.value

    def stop(self, cancel: bool) -> None:
        if cancel:
            self.pool.terminate()
        else:
            self.pool.close()
        self.pool.join()


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class _Progress:
    """Live progress on stderr: examples per second, violations and coverage so far."""

    def __init__(self, say: Callable[[str], None], budget: float | None, total: int | None,
                 started: float) -> None:
        self.say, self.budget, self.total, self.started = say, budget, total, started
        self.last = started
        self.examples = 0
        self.violations: set[tuple[str, str]] = set()
        self.witnesses: dict[tuple[str, str], bool] = {}
        self.states = 0

    def add(self, r: ShardResult) -> None:
        self.examples += r.examples
        for v in r.verdicts:
            if v.kind in ("always", "step") and v.verdict == "violated":
                self.violations.add((v.exporter, v.property))
            elif v.kind == "witness":
                key = (v.exporter, v.property)
                self.witnesses[key] = self.witnesses.get(key, False) or v.verdict == "holds"
            self.states = max(self.states, v.evidence.get("states", 0))

    def line(self, done: int, running: int, live_examples: int | None) -> str:
        now = time.monotonic()
        elapsed = now - self.started
        ex = max(self.examples, live_examples or 0)
        clock = format_duration(elapsed) + (f" of {format_duration(self.budget)}" if self.budget else "")
        shards = f"{done}/{self.total} shards" if self.total else f"{done} shards"
        reached = sum(self.witnesses.values())
        cover = (f", witnesses reached {reached}/{len(self.witnesses)}" if self.witnesses else "")
        exporters = len({e for e, _ in self.violations})
        return (f"campaign [{clock}] {shards} done, {running} running; {ex} examples "
                f"({ex / max(elapsed, 1e-9):.0f}/s); {len(self.violations)} violations in {exporters} "
                f"exporters{cover}; up to {self.states} states in a shard")

    def maybe(self, done: int, running: int, live: int | None, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= _PROGRESS_SECONDS:
            self.last = now
            self.say(self.line(done, running, live))


def _dispatch(shards: Iterator[Shard], workers, deadline: float | None, n_lanes: int,
              results: list[ShardResult], on_result: Callable[[ShardResult, int], None],
              tick: Callable[[int], None]) -> str | None:
    """Feed ready shards to the workers in plan order until the plan or the time is spent,
    appending to ``results``. Returns why it stopped early: None, "budget" or "signal"."""
    pending: deque[Shard] = deque()
    in_flight: dict[int, Shard] = {}
    first_done: set[tuple[str, str]] = set()
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < workers.capacity + n_lanes:
                try:
                    pending.append(next(shards))
                except StopIteration:
                    exhausted = True
            if deadline is not None and time.monotonic() >= deadline:
                return "budget"
            for s in list(pending):
                if len(in_flight) >= workers.capacity:
                    break
                if s.slot == 0 or s.lane in first_done:  # a lane's slot 0 replays the database first
                    pending.remove(s)
                    in_flight[s.index] = s
                    workers.submit(s)
            if not in_flight:
                if exhausted and not pending:
                    return None
                raise RuntimeError("no shard is ready to run")  # pragma: no cover - a planning bug
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            try:
                item = workers.results.get(timeout=wait)
            except queue.Empty:
                tick(len(in_flight))
                continue
            try:
                r = workers.collect(item)
            except Exception as e:  # noqa: BLE001 - a shard that raised on a remote worker
                r = _Failure(item.index, e)
            if isinstance(r, _Failure):
                s = in_flight[r.index]
                raise ShardFailed(f"shard {s.label} failed: {type(r.error).__name__}: {r.error}") from r.error
            s = in_flight.pop(r.index)
            if s.slot == 0:
                first_done.add(s.lane)
            results.append(r)
            on_result(r, len(in_flight))
    except KeyboardInterrupt:
        return "signal"


def run_scaled(exporters: Sequence[ExporterPolicy], scope: Scope, revision: str = "v4.11",
               examples: int = 150, seed: int = 1, steps: int = 30, jobs: int = 1,
               progress: Callable[[str], None] | None = None, *, database: str | None = None,
               cluster: str | None = None, budget: float | None = None, budget_text: str | None = None,
               grouping: str = "all", checkpoint: Callable[[CampaignResult], None] | None = None,
               ) -> CampaignResult:
    """Run a campaign as shards (see the module docstring) and merge the result.

    ``database`` is a properties.database spec (``None``: none); ``cluster`` a Dask scheduler
    address; ``budget`` seconds of wall-clock time (``None``: one slot of ``examples`` per shard);
    ``checkpoint`` is called with the result so far, every minute of a budgeted run."""
    say = progress or (lambda msg: None)
    started = time.monotonic()
    budget_info: dict[str, Any] = {"examples": examples, "steps": steps}
    if grouping != "all":
        budget_info["property_groups"] = grouping
    if budget is not None:
        budget_info["duration"] = budget_text or format_duration(budget)
    result = CampaignResult("campaign", revision, scope, seed, "hypothesis", budget_info, list(exporters))

    if database is not None:
        from .database import open_database
        open_database(database)  # a bad spec fails here, with one line, not in a worker
    n_lanes = len(lanes(exporters, grouping))
    total = None if budget is not None else n_lanes
    # with a budget every slot is one round of the engine: the budget loop is the rounds
    shard_iter = plan(exporters, seed, examples, steps, slots=None if budget is not None else 1,
                      grouping=grouping, max_rounds=1 if budget is not None else 6)
    if cluster is not None:
        from .cluster import DaskWorkers
        workers = DaskWorkers(cluster, scope, revision, database)
        where = f"{workers.capacity} Dask worker threads at {cluster}"
    elif jobs > 1 or budget is not None:
        workers = LocalWorkers(max(1, min(jobs, total or jobs)), scope, revision, database)
        where = f"{workers.capacity} worker processes"
    else:
        workers = InlineWorkers(scope, revision, database)
        where = "this process"
    say(f"campaign: {n_lanes} lanes (exporter x property group)"
        + (f", slots of {examples} examples until {format_duration(budget)} is spent" if budget else "")
        + f", on {where}")

    meter = _Progress(say, budget, total, started)
    results: list[ShardResult] = []
    last_checkpoint = [time.monotonic()]

    def snapshot(interrupted: bool) -> CampaignResult:
        r = CampaignResult(result.command, revision, scope, seed, "hypothesis", dict(budget_info),
                           list(exporters))
        _fill(r, exporters, scope, revision, results, budget is not None, grouping)
        r.interrupted = r.interrupted or interrupted
        r.seconds = time.monotonic() - started
        return r

    def on_result(r: ShardResult, running: int) -> None:
        meter.add(r)
        if budget is None:
            name = r.lane[0] + ("" if r.lane[1] == "all" else f"/{r.lane[1]}")
            states = r.verdicts[0].evidence.get("states", 0) if r.verdicts else 0
            bad = sum(1 for v in r.verdicts if v.verdict == "violated" and v.kind in ("always", "step"))
            say(f"[{len(results)}/{total}] {name}: {r.examples} examples, {states} states, {bad} violated, "
                f"{r.seconds:.1f} s")
        else:
            meter.maybe(len(results), running, workers.examples())
            if checkpoint is not None and time.monotonic() - last_checkpoint[0] >= CHECKPOINT_SECONDS:
                last_checkpoint[0] = time.monotonic()
                checkpoint(snapshot(True))

    def tick(running: int) -> None:
        meter.maybe(len(results), running, workers.examples())

    deadline = None if budget is None else started + budget
    main = threading.current_thread() is threading.main_thread()
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    stopped: str | None = None
    try:
        if main:
            signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            stopped = _dispatch(shard_iter, workers, deadline, n_lanes, results, on_result, tick)
        except KeyboardInterrupt:  # a signal between two steps of the loop
            stopped = "signal"
        if main:  # a second signal must not cut the stop and the merge short
            for sig in old:
                signal.signal(sig, signal.SIG_IGN)
        if stopped:
            say("interrupted: stopping the workers, writing what was found" if stopped == "signal"
                else f"budget of {format_duration(budget)} spent: stopping the workers")
        workers.stop(cancel=stopped is not None)
        if budget is not None:
            meter.maybe(len(results), 0, workers.examples(), force=True)
        return snapshot(stopped == "signal")
    except BaseException:
        workers.stop(cancel=True)
        raise
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _fill(result: CampaignResult, exporters: Sequence[ExporterPolicy], scope: Scope, revision: str,
          results: list[ShardResult], budgeted: bool, grouping: str) -> None:
    verdicts = merge(exporters, results)
    result.verdicts = verdicts
    done = {r.lane for r in results}
    ran = {p.name for p in exporters if all(lane in done for lane in lanes([p], grouping))}
    for p in exporters:
        if p.name in ran:
            result.claim_checks += _claim_checks(p, [v for v in verdicts if v.exporter == p.name], scope,
                                                 revision)
    if budgeted:
        result.budget["shards"] = len(results)
    if len(ran) < len(exporters):
        result.interrupted = True   # some exporter has not had all its properties judged once


def add_arguments(c) -> None:
    """The campaign command's options for scale (called by properties.cli)."""
    c.add_argument("--budget", metavar="DURATION",
                   help="run slot after slot of shards until this much time is spent (90s, 30m, 8h)")
    c.add_argument("--database", metavar="DIR|redis://HOST:PORT/N|none",
                   help="where counterexamples are kept and replayed from (default: $DMABUF_CHECK_DATABASE, "
                        "else .cache/hypothesis in the project or $DMABUF_CHECK_CACHE/hypothesis)")
    c.add_argument("--cluster", metavar="tcp://HOST:PORT", help="run the shards on this Dask scheduler")
    c.add_argument("--property-groups", choices=sorted(_shards.GROUPINGS), default="all",
                   help="cut each exporter's properties into groups run as separate shards (default: all)")


def run_from_args(a, exporters: Sequence[ExporterPolicy], scope: Scope,
                  progress: Callable[[str], None]) -> CampaignResult:
    """The campaign command with the Hypothesis engine: options -> run_scaled (bad options
    raise properties.cli.UsageError, one line)."""
    from .campaign import write_report
    from .cli import UsageError
    from .cluster import ClusterError
    from .database import DatabaseError, default_spec

    budget = None
    if a.budget is not None:
        try:
            budget = parse_duration(a.budget)
        except ValueError as e:
            raise UsageError(f"--budget: {e}") from None
    jobs = a.jobs if a.jobs else default_jobs()
    database = default_spec() if a.database is None else a.database
    checkpoint = None
    if a.json and budget is not None:
        def checkpoint(r: CampaignResult) -> None:
            write_report(r.to_json(), a.json)
    try:
        return run_scaled(exporters, scope, a.revision, examples=a.examples, seed=a.seed, steps=a.steps,
                          jobs=jobs, progress=progress, database=database, cluster=a.cluster,
                          budget=budget, budget_text=a.budget, grouping=a.property_groups,
                          checkpoint=checkpoint)
    except (DatabaseError, ClusterError) as e:
        raise UsageError(str(e)) from None
