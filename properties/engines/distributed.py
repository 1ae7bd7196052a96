"""The explicit-state search on a Dask cluster: the visited set partitioned across the workers by a
hash of the packed state key, one breadth-first level at a time (``explore --cluster``).

Where a scope outgrows one machine's memory, each of P workers holds one partition of the visited
set: the states whose packed key (:class:`~properties.engines.symmetry.KeyPacker`, canonical under
symmetry) hashes to it, each with the key of its BFS parent and the instance that reached it. A
level is two rounds of tasks, each pinned to the worker that owns the partition (and between them
a task per pair of partitions that hands over one bucket, on the worker that made it):

1. **expand**: each worker decodes the frontier states it owns and expands them as the local
   search does (:class:`~properties.engines.vectorize.VecModel`: the guards, the steps and the
   ``step`` properties as numpy code over a block of states), counts the transitions, the
   self-loops and the distinct edges (every edge of a state is found by its owner, so the pairs are
   made distinct where they are found), and splits the successors' keys by owner. A successor
   key is kept once per frontier chunk, with the smallest ``(parent key, instance)`` that reaches
   it there;
2. **merge**: each owner receives the buckets addressed to it (Dask moves them from worker to
   worker; they do not pass through the client), keeps each key's smallest ``(parent key,
   instance)``, drops the keys it has already visited, adds the rest to its visited set and checks
   every ``always``/``undefined``/``witness`` state property on them; they are its next frontier.

The client only coordinates: it submits the tasks, adds up the figures each merge returns (new
states, transitions, self-loops, edges, findings, resident memory), stops when no partition found
a new state (complete), or between levels when the budget is spent (states, depth, seconds, or a
worker's resident memory: then what was not found is ``unknown``, as in the local search). The
visited sets never leave their workers.

The counts are those of :func:`properties.engines.explicit.explore`: states (classes under
symmetry), transitions (every enabled instance in every state), self-loops, distinct edges between
different states, depth. They do not depend on the number of workers: each partition's frontier is
sorted by key, every choice (which parent a state keeps, which finding of a level is reported) is
the smallest by key, so the same cluster size or another gives the same result.

**Traces** are rebuilt by walking parents across partitions: a property first fires in level L on
a state (or on a step from a state) of the smallest key among those of that level; the client asks
that key's owner for its parent key and instance, then the parent's owner, and so on to the
initial state (L rounds, one task per owner for every property's walk at once), and replays the instances on the compiled model
(:func:`properties.engines.explicit._replay_instances`). Every BFS parent is one level shallower,
so the trace is a shortest one, as the local search's. The Python monitor confirms it before the
verdict is reported (as :func:`properties.engines.explicit.verdicts` does).

Not done here: the graph's edges are counted, not kept, so there is no stuck-state analysis and no
graph export; the search starts from the initial state only.

Every worker must run the same dmabuf-check as the client: the connection is that of
``campaign --cluster`` (:class:`properties.runs.cluster.DaskWorkers`), which refuses a worker
whose sources differ.
"""
from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from model.machine import Model
from model.policy import ExporterPolicy
from model.scope import Scope

from .. import interrupt
from ..index import get_property
from ..property import Property
from ..verdict import Verdict
from .explicit import Budget, _changed_rows, _check_range, _packing, _replay_instances, judge, resident_bytes
from .interface import Budget as EngineBudget, EngineResult
from .vectorize import VecModel, columns

__all__ = ["DistributedSpace", "DistributedEngine", "explore_distributed", "owner_of"]

_CHUNK = 1 << 18          # frontier states decoded and expanded at once
_MEMO_ROW_BYTES = 64
_MEMO_MIN = 1 << 20
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def owner_of(keys: np.ndarray, parts: int) -> np.ndarray:
    """The partition (0..parts-1) of each packed key (of each record of words): the high 32 bits
    of a multiplicative hash, modulo ``parts``."""
    with np.errstate(over="ignore"):
        if keys.dtype.names is None:
            h = keys * _GOLDEN
        else:
            h = np.zeros(keys.shape, np.uint64)
            for w in keys.dtype.names:
                h ^= keys[w]
                h *= _GOLDEN
    return ((h >> np.uint64(32)) % np.uint64(parts)).astype(np.int32)


def _order(keys: np.ndarray, *ties: np.ndarray) -> np.ndarray:
    """The positions that sort by ``keys``, then by ``ties`` in the order given (stable)."""
    if keys.dtype.names is None and all(t.dtype.names is None for t in ties):
        return np.lexsort((*reversed(ties), keys))
    o = np.arange(len(keys))
    for t in (*reversed(ties), keys):          # least significant first, each sort stable
        o = o[np.argsort(t[o], kind="stable")]
    return o


def _starts(*cols: np.ndarray) -> np.ndarray:
    """Where each run of equal rows of the sorted columns ``cols`` starts."""
    n = len(cols[0])
    start = np.zeros(n, bool)
    if n:
        start[0] = True
        for c in cols:
            start[1:] |= c[1:] != c[:-1]
    return start


def _first_per_key(keys: np.ndarray, *ties: np.ndarray) -> np.ndarray:
    """The positions of the distinct ``keys``, in key order, each the one with the smallest
    ``ties`` (compared in the order given)."""
    o = _order(keys, *ties)
    return o[_starts(keys[o])]


def _as_key(value: Any, dtype: np.dtype) -> np.ndarray:
    """One key (an int, or a tuple of words) as a one-element array of the packer's dtype."""
    return np.array([tuple(value) if dtype.names else value], dtype=dtype)


# --- the worker side ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Job:
    """What a worker needs to build its partition (small and picklable: the model is compiled
    on the worker)."""

    run: str
    part: int
    parts: int
    exporter: ExporterPolicy
    scope: Scope
    revision: str
    props: tuple[str, ...]
    symmetry: bool


class _Partition:
    """One worker's share of the search: the visited keys it owns (sorted), each one's parent key
    and instance, its current frontier (sorted by key) and the figures of its last expansion."""

    def __init__(self, job: _Job) -> None:
        self.job = job
        model = self.model = Model(job.exporter, job.scope, job.revision)
        props = [get_property(pid) for pid in job.props]
        active = [p for p in props if p.active(model.policy, model.scope, model.revision)]
        self.vm = VecModel(model, active)
        self.packer, self.sym = _packing(model, job.symmetry)
        self.width = model.schema.width
        self.key_bits = self.packer.word_max[0].bit_length() if len(self.packer.words) == 1 else None
        self.int_hi = {k: hi for k, ((_, hi), spec) in enumerate(zip(model.schema.bounds, model.schema.specs))
                       if spec.sort == "int"}
        empty = np.zeros(0, self.packer.dtype)
        self.seen, self.parent, self.via = empty, empty, np.zeros(0, np.int16)
        self.frontier_keys = empty
        self.frontier_rows = empty          # packed concrete rows (the keys without symmetry)
        self.expanded: dict[str, Any] = {}

    # the expansion of the frontier, split by owner
    def expand(self, skip: frozenset[str]) -> list[tuple]:
        vm, packer, sym, P = self.vm, self.packer, self.sym, self.job.parts
        transitions = self_loops = edges = 0
        found: dict[str, tuple] = {}       # step property -> (source key, instance), the smallest
        out: list[list[tuple]] = [[] for _ in range(P)]
        for lo in range(0, len(self.frontier_keys), _CHUNK):
            f_keys = self.frontier_keys[lo:lo + _CHUNK]
            frontier = self.packer.unpack(self.frontier_rows[lo:lo + _CHUNK], self.width)
            n = frontier.shape[1]
            C = columns(self.model, frontier, memo_bytes=max(_MEMO_ROW_BYTES * n, _MEMO_MIN))
            c_keys, c_src, c_via, c_post = [], [], [], []
            for st in vm.steps:
                g = np.asarray(st.guard(C), dtype=bool)
                if g.ndim == 0:
                    if not g:
                        continue
                    gm, m = None, n
                else:
                    m = int(np.count_nonzero(g))
                    if not m:
                        continue
                    gm = g
                transitions += m * st.copies
                for c in st.checks:
                    if c.id in skip:
                        continue
                    r = np.asarray(c.fn(C))
                    hit = r if c.fires_when is True and r.dtype == np.bool_ else (r == c.fires_when)
                    hit = np.broadcast_to(hit, (n,))
                    if gm is not None:
                        hit = hit & gm
                    j = int(hit.argmax())
                    if hit[j]:               # the frontier is sorted: row j has the smallest key
                        cand = (f_keys[j:j + 1].tolist()[0], st.index)
                        if c.id not in found or cand < found[c.id]:
                            found[c.id] = cand
                ret, changes = st.apply(C)
                if not changes:
                    self_loops += m * st.copies
                    continue
                for k, col in changes:
                    if k in self.int_hi:
                        _check_range(self.model, st.index, k, col, self.int_hi[k], gm)
                rows = _changed_rows(C, changes, gm, n)
                if sym is None:                  # the key changes in the changed fields' digits
                    keys = f_keys[rows]
                    for k, col in changes:
                        packer.update(keys, k, frontier[k][rows],
                                      col[rows] if isinstance(col, np.ndarray) and col.ndim else col)
                else:
                    post = frontier[:, rows]
                    for k, col in changes:
                        post[k] = col[rows] if isinstance(col, np.ndarray) and col.ndim else col
                    keys = sym.canonical(post)
                    move = np.flatnonzero(keys != f_keys[rows])
                    rows, keys, post = rows[move], keys[move], post[:, move]
                nm = len(rows)
                self_loops += (m - nm) * st.copies
                if not nm:
                    continue
                c_keys.append(keys)
                c_src.append(rows.astype(np.int32))
                c_via.append(np.full(nm, st.index, np.int16))
                if sym is not None:
                    c_post.append(packer.pack(post))
            C = frontier = None
            if not c_keys:
                continue
            keys, src, via = np.concatenate(c_keys), np.concatenate(c_src), np.concatenate(c_via)
            # by key, then source row (the frontier is sorted: the parent key's order), then
            # instance (the candidates come instance by instance, and the sort is stable): the
            # distinct (source, key) pairs are the edges, and each key's first candidate has the
            # smallest (parent key, instance)
            sbits = max(1, (n - 1).bit_length())
            if self.key_bits is not None and self.key_bits + sbits <= 64:   # one word: key, row
                v = (keys << np.uint64(sbits)) | src.astype(np.uint64)
                o = np.argsort(v, kind="stable")
                v = v[o]
                edges += int(np.count_nonzero(_starts(v)))
                first = o[_starts(v >> np.uint64(sbits))]
                del v, o
            else:
                o = _order(keys, src)
                ks, ss = keys[o], src[o]
                edges += int(np.count_nonzero(_starts(ks, ss)))
                first = o[_starts(ks)]
                del ks, ss, o
            keys, src, via = keys[first], src[first], via[first]
            posts = np.concatenate(c_post)[first] if sym is not None else keys
            owner = owner_of(keys, P)
            for j in range(P):
                sel = np.flatnonzero(owner == j)
                if len(sel):
                    out[j].append((keys[sel], f_keys[src[sel]], via[sel], posts[sel]))
        self.expanded = {"transitions": transitions, "self_loops": self_loops, "edges": edges,
                         "found": found}
        return [self._bucket(parts) for parts in out]

    def _bucket(self, parts: list[tuple]) -> tuple:
        if not parts:
            e = np.zeros(0, self.packer.dtype)
            return e, e, np.zeros(0, np.int16), e
        return tuple(np.concatenate(x) for x in zip(*parts))

    # the buckets addressed to this partition: its new states
    def merge(self, buckets: Sequence[tuple], skip: frozenset[str]) -> dict[str, Any]:
        keys, parent, via, rows = (np.concatenate(x) for x in zip(*buckets))
        first = _first_per_key(keys, parent, via)
        keys, parent, via, rows = keys[first], parent[first], via[first], rows[first]
        if len(self.seen):
            pos = np.searchsorted(self.seen, keys)
            np.minimum(pos, len(self.seen) - 1, out=pos)
            new = np.flatnonzero(self.seen[pos] != keys)
            keys, parent, via, rows = keys[new], parent[new], via[new], rows[new]
            at = np.searchsorted(self.seen, keys)
            self.seen = np.insert(self.seen, at, keys)
            self.parent = np.insert(self.parent, at, parent)
            self.via = np.insert(self.via, at, via)
        else:
            self.seen, self.parent, self.via = keys, parent, via
        self.frontier_keys = keys
        self.frontier_rows = rows if self.sym is not None else keys
        found: dict[str, Any] = {}
        for lo in range(0, len(keys), _CHUNK):
            block = self.packer.unpack(self.frontier_rows[lo:lo + _CHUNK], self.width)
            if self.sym is not None:
                self.sym.check_free_slots(block)
            C = None
            for p in self.vm.state_props:
                if p.id in skip or p.id in found:
                    continue
                if C is None:
                    C = columns(self.model, block, memo_bytes=max(_MEMO_ROW_BYTES * block.shape[1], _MEMO_MIN))
                r = np.asarray(p.fn(C))
                hit = np.broadcast_to(r if p.fires_when is True and r.dtype == np.bool_ else r == p.fires_when,
                                      (block.shape[1],))
                j = int(hit.argmax())
                if hit[j]:                   # keys are sorted: the first chunk's first hit is smallest
                    found[p.id] = (keys[lo + j:lo + j + 1].tolist()[0], None)
        # with the figures of this worker's expansion of the level (none for the initial state)
        expanded, self.expanded = self.expanded, {}
        return {"transitions": 0, "self_loops": 0, "edges": 0, **expanded, "new": int(len(keys)),
                "found": {**expanded.get("found", {}), **found}, "rss": resident_bytes(),
                "visited": int(len(self.seen))}

    def parent_of(self, key: Any) -> tuple[Any, int]:
        k = _as_key(key, self.packer.dtype)
        i = int(np.searchsorted(self.seen, k)[0])
        if i >= len(self.seen) or self.seen[i] != k[0]:
            raise KeyError(f"distributed search: state key {key} is not in partition {self.job.part}")
        return self.parent[i:i + 1].tolist()[0], int(self.via[i])


_PARTS: dict[tuple[str, int], _Partition] = {}   # worker-local: this worker's partitions, by run


def _open(job: _Job) -> int:
    _PARTS[(job.run, job.part)] = _Partition(job)
    return job.part


def _expand(run: str, part: int, skip: frozenset[str]) -> list[tuple]:
    return _PARTS[(run, part)].expand(skip)


def _take(buckets: list[tuple], j: int) -> tuple:
    return buckets[j]


def _merge(run: str, part: int, skip: frozenset[str], *buckets: tuple) -> dict[str, Any]:
    return _PARTS[(run, part)].merge(buckets, skip)


def _parents(run: str, part: int, keys: list) -> list[tuple[Any, int]]:
    return [_PARTS[(run, part)].parent_of(k) for k in keys]


def _close(run: str, part: int) -> int:
    _PARTS.pop((run, part), None)
    return part


# --- the client side ---------------------------------------------------------------------------

@dataclass
class DistributedSpace:
    """What a distributed search found: the counts (as :meth:`StateSpace.summary
    <properties.engines.explicit.StateSpace.summary>` gives them), the traces of the properties
    that fired, and the seconds of each level (``levels``: one ``(new states, seconds)`` per
    level, level 0 being the initial state)."""

    model: Model
    symmetry: bool
    complete: bool
    n_states: int
    transitions: int
    self_loops: int
    n_edges: int
    max_depth: int
    seconds: float
    partitions: int
    checked: tuple[str, ...] = ()
    traces: dict[str, Any] = field(default_factory=dict)
    stopped: str = ""
    levels: list[tuple[int, float]] = field(default_factory=list)
    peak_worker_bytes: int = 0

    def summary(self) -> dict[str, Any]:
        return {"states": self.n_states, "transitions": self.transitions, "edges": self.n_edges,
                "self_loops": self.self_loops, "depth": self.max_depth, "symmetry": self.symmetry,
                "complete": self.complete, "seconds": round(self.seconds, 3), "partitions": self.partitions,
                **({"stopped": self.stopped} if self.stopped else {})}


def _workers(client: Any) -> list[str]:
    return sorted(client.scheduler_info()["workers"])


def explore_distributed(client: Any, model: Model, props: Sequence[Property] = (), symmetry: bool = False,
                        budget: Budget | None = None, progress: Callable[[str], None] | None = None,
                        partitions: int | None = None) -> DistributedSpace:
    """Enumerate the reachable states of ``model`` breadth first on the workers of the Dask
    ``client``, checking ``props`` (those that apply to the model) on every state and transition;
    see the module docstring. ``partitions`` (default: one per worker) go to the workers in turn."""
    budget = budget or Budget()
    started = time.monotonic()
    props = list(props)
    active = [p for p in props if p.active(model.policy, model.scope, model.revision)]
    workers = _workers(client)
    if not workers:
        raise RuntimeError("distributed search: the Dask cluster has no workers")
    P = partitions or len(workers)
    run = uuid.uuid4().hex[:12]
    token = iter(range(1 << 62))

    def submit(fn: Callable, part: int, *args: Any) -> Any:
        """``fn(*args)`` on the worker that holds partition ``part``."""
        return client.submit(fn, *args, key=f"dmabuf-explore-{run}-{fn.__name__.strip('_')}-{next(token)}",
                             workers=[workers[part % len(workers)]], allow_other_workers=False, pure=False)

    jobs = [_Job(run, j, P, model.policy, model.scope, model.revision, tuple(p.id for p in active), symmetry)
            for j in range(P)]
    packer, sym = _packing(model, symmetry)
    try:
        client.gather([submit(_open, j, jobs[j]) for j in range(P)])
        init = np.array([[int(v) for v in model.init]], dtype=np.int8).T
        init_key = sym.canonical(init) if sym is not None else packer.pack(init)
        home = int(owner_of(init_key, P)[0])
        empty = np.zeros(0, packer.dtype)
        seed = [(init_key, init_key, np.full(1, -1, np.int16), packer.pack(init)) if j == home
                else (empty, empty, np.zeros(0, np.int16), empty) for j in range(P)]
        t0 = time.monotonic()
        summaries = client.gather([submit(_merge, j, run, j, frozenset(), seed[j]) for j in range(P)])
        levels = [(1, time.monotonic() - t0)]
        found: dict[str, tuple[int, Any, int]] = {}   # property -> (level, key, instance or -1)

        def note(level: int, sums: list[dict]) -> None:
            for s in sums:
                for pid, (key, inst) in s["found"].items():
                    cand = (level, key, -1 if inst is None else inst)
                    if pid not in found or cand < found[pid]:
                        found[pid] = cand

        note(0, summaries)
        n_total, transitions, self_loops, edges, level, depth = 1, 0, 0, 0, 0, 0
        peak = max(s["rss"] for s in summaries)
        new = sum(s["new"] for s in summaries)
        complete, stopped = True, ""
        while new:
            interrupt.check()
            if budget.states is not None and n_total >= budget.states:
                stopped = f"state budget of {budget.states:,} states reached"
            elif budget.depth is not None and level >= budget.depth:
                stopped = f"depth budget of {budget.depth} reached"
            elif budget.seconds is not None and time.monotonic() - started > budget.seconds:
                stopped = f"time budget of {budget.seconds:g} s spent"
            elif budget.memory is not None and peak > budget.memory:
                stopped = (f"memory budget of {budget.memory / 2**20:,.0f} MB reached on a worker "
                           f"({peak / 2**20:,.0f} MB resident)")
            if stopped:
                complete = False
                break
            level += 1
            t0 = time.monotonic()
            skip = frozenset(found)
            expanded = [submit(_expand, j, run, j, skip) for j in range(P)]
            buckets = [[submit(_take, i, expanded[i], j) for j in range(P)] for i in range(P)]
            summaries = client.gather([submit(_merge, j, run, j, skip, *(buckets[i][j] for i in range(P)))
                                       for j in range(P)])
            del expanded, buckets
            new = sum(s["new"] for s in summaries)
            levels.append((new, time.monotonic() - t0))
            note(level, summaries)
            if new:
                depth = level
            n_total += new
            transitions += sum(s["transitions"] for s in summaries)
            self_loops += sum(s["self_loops"] for s in summaries)
            edges += sum(s["edges"] for s in summaries)
            peak = max(peak, *(s["rss"] for s in summaries))
            if progress:
                progress(f"distributed: {model.policy.name} {model.scope.name}: depth {level}, {n_total} states, "
                         f"{transitions} transitions, {P} partitions, {time.monotonic() - started:.1f} s")
        # the paths: every property's walk one parent further per round, a task per owner
        paths: dict[str, list[int]] = {pid: [] for pid in found}
        at = {pid: key for pid, (_, key, _) in found.items()}
        while at:
            ask: dict[int, list[str]] = {}
            for pid, k in sorted(at.items()):
                ask.setdefault(int(owner_of(_as_key(k, packer.dtype), P)[0]), []).append(pid)
            futures = {j: submit(_parents, j, run, j, [at[pid] for pid in pids]) for j, pids in ask.items()}
            for j, pids in ask.items():
                for pid, (pk, via) in zip(pids, futures[j].result()):
                    if via < 0:
                        del at[pid]
                    else:
                        paths[pid].append(via)
                        at[pid] = pk
        traces = {}
        for pid, (_, _, inst) in sorted(found.items()):
            path = paths[pid][::-1] + ([inst] if inst >= 0 else [])
            traces[pid] = _replay_instances(model, path, tuple(model.init))
    finally:
        with contextlib.suppress(Exception):
            client.gather([submit(_close, j, run, j) for j in range(P)])
    return DistributedSpace(model, symmetry, complete, n_total, transitions, self_loops, edges, depth,
                            time.monotonic() - started, P, tuple(p.id for p in active), traces,
                            "" if complete else stopped, levels, peak)


def verdicts(space: DistributedSpace, props: Sequence[Property]) -> list[Verdict]:
    """One verdict per property that applies to the space's model, as
    :func:`properties.engines.explicit.verdicts` gives them (the same evidence, and the number of
    partitions); every trace is confirmed by the Python monitor."""
    return judge(space, props, space.traces.get, {"partitions": space.partitions}, "distributed search")

@dataclass(frozen=True)
class DistributedEngine:
    """The explicit engine's search on the Dask scheduler at ``address`` (``tcp://HOST:PORT``),
    one partition of the visited set per worker. The budget's ``states``, ``seconds``, ``depth``
    and ``memory`` (per worker) bound it, checked between levels. Verdicts as the explicit
    engine's (engine ``explicit``; evidence ``partitions``); no stuck-state analysis."""

    address: str
    symmetry: bool = False
    name: ClassVar[str] = "explicit"

    def check(self, model: Model, props: Sequence[Property], budget: EngineBudget,
              progress: Callable[[str], None] | None = None) -> EngineResult:
        from ..runs.cluster import DaskWorkers  # reason: imports distributed, needed only with --cluster
        started = time.monotonic()
        workers = DaskWorkers(self.address)
        try:
            b = Budget(states=budget.states, seconds=budget.seconds, depth=budget.depth, memory=budget.memory)
            space = explore_distributed(workers.client, model, props, symmetry=self.symmetry, budget=b,
                                        progress=progress)
        finally:
            workers.stop(cancel=True)
        return EngineResult(self.name, model.policy.name, model.scope.name, model.revision,
                            verdicts(space, props), time.monotonic() - started, space.summary(), {}, space)


# --- a loopback cluster (tests, benchmark) -----------------------------------------------------

