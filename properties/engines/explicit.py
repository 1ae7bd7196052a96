"""The explicit-state engine: breadth-first enumeration of every reachable state of a scope, with
every property checked on every reachable state and transition (docs/design.md, "three engines").

The search is level by level; a level's whole frontier is expanded at once by the numpy
interpretation of the transitions (:mod:`properties.engines.vectorize`), deduplicated by packed
integer keys (optionally canonical under symmetry, :mod:`properties.engines.symmetry`), and every
property is evaluated on the new states and on every transition of the level. Each state keeps
its BFS parent and the instance that reached it, so a counterexample is a shortest path from the
initial state; it is replayed on the compiled model (:func:`properties.trace.replay`) and
confirmed by the Python monitor before it is reported.

Verdicts (docs/design.md point 7): an ``always``/``step`` property ``holds`` when it was checked on all
N reachable states (all T transitions) and never failed; an ``undefined`` target that is never
reached ``holds`` (is unreachable) likewise; a ``witness`` that is never reached is ``violated``
(the whole space has no such state, so the model cannot do it). A search cut short by its budget
(states or seconds) reports ``unknown`` for whatever it had not found yet; what it had found
(a violation, a reached target) stands, with a trace that is still shortest (every shallower level
was complete).

:class:`StateSpace` keeps the graph compactly (numpy arrays: states, parents, and one edge per
distinct pair of states, with the first instance that connects them and its return);
:meth:`StateSpace.to_networkx` builds the ``networkx.DiGraph`` from those arrays.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Sequence

import numpy as np

from model.machine import Model

from .. import interrupt
from ..index import PROPERTIES, get_property
from ..monitor import Monitor, fired_along
from ..property import Property
from ..trace import Trace, TraceStep
from ..verdict import Verdict, make_verdict
from .interface import Budget as EngineBudget, EngineResult
from .por import PartialOrder, parse_mode, partial_order
from .reduce import Reduction, reduction_for
from .stuck import find_stuck
from .symmetry import KeyPacker, Symmetry
from .vectorize import VecModel, VecProperty, columns

__all__ = ["Budget", "StateSpace", "Finding", "explore", "check", "verdicts", "shortest_trace", "GraphTooLarge",
           "ExplicitEngine"]

_CHUNK = 1 << 16          # enabled rows of an instance whose step checks were recorded together
_FRONTIER_CHUNK = 1 << 18  # frontier states decoded and expanded at once
_BATCH = 1 << 20           # candidate successors deduplicated at once
_MEMO_ROW_BYTES = 64       # the memo of shared operations holds this many bytes per chunk row
_MEMO_MIN = 1 << 20        # (and at least this many bytes)
_BATCH_PER_ROW = 4         # and a batch up to this many candidates per chunk row (at most _BATCH)
_PACKED = True             # sort keys and positions as one word when they fit (else keys, then a hash)


@dataclass(frozen=True)
class Budget:
    """Stop the search after this many states, seconds or BFS levels (``None``: no bound). The
    state and depth bounds are checked between levels, the time also between instances."""

    states: int | None = None
    seconds: float | None = None
    depth: int | None = None
    memory: int | None = None      # bytes of resident memory (checked like the time)


def resident_bytes() -> int:
    """This process's resident memory now (Linux ``/proc/self/statm``; elsewhere its peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Finding:
    """Where the search first saw a property fire: in state ``state``, or on the step of instance
    ``instance`` from state ``state`` (then the trace has one more step)."""

    state: int
    instance: int | None = None


class GraphTooLarge(ValueError):
    """The graph is larger than the caller allowed for a networkx graph or a file format."""


@dataclass(frozen=True, eq=False)
class StateSpace:
    """The reachable state graph of one model, as found by :func:`explore`.

    ``states[i]`` is state ``i`` (a row of small integers in the schema's layout; state 0 is the
    initial state; ids are in BFS order); ``parent[i]``/``via[i]`` the state and instance that first
    reached it (-1 for the initial state); ``depth[i]`` its distance from the initial state.
    ``edge_src/edge_dst/edge_inst/edge_ret`` hold one edge per distinct pair of different states
    (the lowest-numbered instance connecting them, and its return value). ``transitions`` counts
    every enabled instance in every state (self-loops and parallel instances included),
    ``self_loops`` those that leave the state unchanged. Under symmetry reduction a state stands
    for its class and the counts are of classes.

    The states are kept packed (:class:`KeyPacker`, 8 bytes a word): ``states`` decodes them all
    on first use, ``state(i)`` one. Without symmetry a state's row is its key; with it the row is
    kept apart (``row_keys``), since the key is its class's.
    """

    model: Model
    symmetry: bool
    complete: bool
    parent: np.ndarray
    via: np.ndarray
    depth: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_inst: np.ndarray
    edge_ret: np.ndarray
    transitions: int
    self_loops: int
    seconds: float
    checked: tuple[str, ...] = ()
    found: dict[str, Finding] = field(default_factory=dict)
    stopped: str = ""              # why an incomplete search stopped ("" when complete)
    sorted_keys: np.ndarray | None = field(default=None, repr=False)  # deduplication keys, sorted
    order: np.ndarray | None = field(default=None, repr=False)        # the state id of each sorted key
    row_keys: np.ndarray | None = field(default=None, repr=False)     # packed rows by id (symmetry only)
    reduction: Reduction | None = field(default=None, repr=False)     # dead fields reset (None: no reduction)
    partial_order: PartialOrder | None = field(default=None, repr=False)  # stubborn sets followed
    _states: np.ndarray | None = field(default=None, repr=False)

    @functools.cached_property
    def predecessors(self) -> tuple[np.ndarray, np.ndarray]:
        """The edges reversed, in compressed form: the sources of the edges into state ``d`` are
        ``rsrc[indptr[d]:indptr[d + 1]]`` (``(indptr, rsrc)``). Built once per graph: sorting the
        edges is most of a backward search's time, and every stuck-state goal searches the same
        graph."""
        order = np.argsort(self.edge_dst, kind="stable")
        indptr = np.zeros(self.n_states + 1, np.int64)
        np.cumsum(np.bincount(self.edge_dst, minlength=self.n_states), out=indptr[1:])
        return indptr, self.edge_src[order].astype(np.int64)

    # --- sizes ---------------------------------------------------------------------------------
    @property
    def n_states(self) -> int:
        return int(self.parent.shape[0])

    @property
    def states(self) -> np.ndarray:
        """Every state, one row each (``n_states x width``, ``int8``), decoded on first use."""
        if self._states is None:
            width = self.model.schema.width
            packer, _ = _packing(self.model, False)
            out = np.empty((self.n_states, width), np.int8)
            rows = self._row_keys()
            for lo in range(0, self.n_states, _FRONTIER_CHUNK):
                out[lo:lo + _FRONTIER_CHUNK] = packer.unpack(rows[lo:lo + _FRONTIER_CHUNK], width).T
            object.__setattr__(self, "_states", out)
        return self._states

    def _row_keys(self) -> np.ndarray:
        if self.row_keys is None:   # no symmetry: the row of each id is its key
            by_id = np.empty_like(self.sorted_keys)
            by_id[self.order] = self.sorted_keys
            object.__setattr__(self, "row_keys", by_id)
        return self.row_keys

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.shape[0])

    @property
    def max_depth(self) -> int:
        return int(self.depth.max()) if self.n_states else 0

    def summary(self) -> dict[str, Any]:
        return {"states": self.n_states, "transitions": self.transitions, "edges": self.n_edges,
                "self_loops": self.self_loops, "depth": self.max_depth, "symmetry": self.symmetry,
                **({"reduction": self.mode} if self.mode != "none" else {}),
                "complete": self.complete, "seconds": round(self.seconds, 3),
                **({"stopped": self.stopped} if self.stopped else {})}

    @property
    def mode(self) -> str:
        """The reduction searched: ``none``, ``dead``, ``por`` or ``dead+por``."""
        parts = [m for m, on in (("dead", self.reduction is not None), ("por", self.partial_order is not None)) if on]
        return "+".join(parts) or "none"

    # --- states and traces ---------------------------------------------------------------------
    def state(self, i: int) -> tuple:
        """State ``i`` as a model state tuple (booleans as ``bool``)."""
        if self._states is not None:
            row = self._states[i]
        else:
            packer, _ = _packing(self.model, False)
            row = packer.unpack(self._row_keys()[i:i + 1], self.model.schema.width)[:, 0]
        return tuple(bool(v) if s.sort == "bool" else int(v) for v, s in zip(row, self.model.schema.specs))

    def path_to(self, i: int) -> list[int]:
        """The instances of a shortest path from the initial state to state ``i``."""
        out = []
        while self.parent[i] >= 0:
            out.append(int(self.via[i]))
            i = int(self.parent[i])
        return out[::-1]

    def root_of(self, i: int) -> int:
        while self.parent[i] >= 0:
            i = int(self.parent[i])
        return i

    def trace_to(self, i: int, then: int | None = None) -> Trace:
        """A shortest trace to state ``i`` (and then one more step of instance ``then``), from
        the initial state (from the root it was reached from, when the search had roots)."""
        path = self.path_to(i) + ([then] if then is not None else [])
        return _replay_instances(self.model, path, self.state(self.root_of(i)))

    def index(self, state: Sequence[Any]) -> int | None:
        """The id of ``state`` (of its class, under symmetry), or ``None`` if it is not reached."""
        i = int(self.lookup([state])[0])
        return None if i < 0 else i

    def lookup(self, states: Sequence[Sequence[Any]]) -> np.ndarray:
        """The ids of many states at once (-1 for a state the search did not reach)."""
        if self.sorted_keys is None:
            raise ValueError("this state space was built without keys")
        if not len(states):
            return np.zeros(0, np.int64)
        block = np.array([[int(v) for v in s] for s in states], dtype=np.int8).T
        if self.reduction is not None:     # a concrete state stands for its canonical one
            block = self.reduction.canonical(block)
        keys = _keys_of(self.model, block, self.symmetry)
        sorted_keys = self.sorted_keys
        pos = np.searchsorted(sorted_keys, keys)
        pos[pos >= len(sorted_keys)] = 0
        hit = sorted_keys[pos] == keys
        return np.where(hit, self.order[pos], -1).astype(np.int64)

    # --- the networkx graph --------------------------------------------------------------------
    def to_networkx(self, max_edges: int | None = 2_000_000, nodes: Iterable[int] | None = None,
                    state_attrs: bool = False):
        """The graph as a ``networkx.DiGraph``: nodes are state ids (attribute ``depth``, and
        with ``state_attrs`` one attribute per state field); edges carry ``action``, ``args``
        (``"buf=0, page=1"``), ``call`` and ``ret``. ``nodes`` restricts it to the subgraph
        those states induce. Refuses (:class:`GraphTooLarge`) above ``max_edges`` edges."""
        if nodes is not None:
            keep = np.zeros(self.n_states, bool)
            keep[np.fromiter(nodes, dtype=np.int64)] = True
            sel = np.flatnonzero(keep[self.edge_src] & keep[self.edge_dst])
            node_ids = np.flatnonzero(keep)
        else:
            sel = np.arange(self.n_edges)
            node_ids = np.arange(self.n_states)
        if max_edges is not None and len(sel) > max_edges:
            raise GraphTooLarge(f"the graph has {len(sel)} edges ({len(node_ids)} states), more than "
                                f"the limit of {max_edges} for a networkx graph")
        import networkx as nx  # heavy (0.13 s to import): the search does not need it, graph export does

        g = nx.DiGraph(scope=self.model.scope.name, exporter=self.model.policy.name,
                       revision=self.model.revision, symmetry=self.symmetry, complete=self.complete)
        names = self.model.schema.names
        for i in node_ids.tolist():
            attrs: dict[str, Any] = {"depth": int(self.depth[i])}
            if state_attrs:
                attrs.update(zip(names, self.state(i)))
            g.add_node(i, **attrs)
        insts = self.model.instances
        labels = [(inst.name, ", ".join(f"{k}={v}" for k, v in inst.args), str(inst)) for inst in insts]
        src, dst, via, ret = (self.edge_src[sel].tolist(), self.edge_dst[sel].tolist(),
                              self.edge_inst[sel].tolist(), self.edge_ret[sel].tolist())
        for u, v, k, r in zip(src, dst, via, ret):
            a, args, call = labels[k]
            g.add_edge(u, v, action=a, args=args, call=call, ret=r)
        return g


def _replay_instances(model: Model, path: Sequence[int], start: tuple) -> Trace:
    state = start
    steps = []
    for k in path:
        r = model.step(state, k)
        if r is None:  # pragma: no cover - the search only records enabled instances
            raise AssertionError(f"explicit engine: {model.instances[k]} not enabled on replay")
        state, ret, ev, buf = r
        inst = model.instances[k]
        steps.append(TraceStep(inst.name, inst.args, ret, ev, buf, state))
    return Trace(start, tuple(steps), tuple(model.schema.names))


_PACKING: dict[tuple[int, bool], tuple[Any, KeyPacker, Symmetry | None]] = {}


def _keys_of(model: Model, block: np.ndarray, symmetry: bool) -> np.ndarray:
    packer, sym = _packing(model, symmetry)
    return sym.canonical(block) if sym is not None else packer.pack(block)


def _packing(model: Model, symmetry: bool) -> tuple[KeyPacker, Symmetry | None]:
    key = (id(model.schema), symmetry)
    hit = _PACKING.get(key)
    if hit is None or hit[0] is not model.schema:
        packer = KeyPacker(model.schema)
        hit = (model.schema, packer, Symmetry(model.schema, packer) if symmetry else None)
        _PACKING[key] = hit
    return hit[1], hit[2]


def explore(model: Model, props: Iterable[Property] = (), symmetry: bool = False,
            budget: Budget | None = None, keep_edges: bool = True,
            progress: Callable[[str], None] | None = None,
            roots: Sequence[Sequence[Any]] | None = None,
            until_found: Iterable[str] | None = None, avoid: Iterable[Property] = (),
            reduce: str | Reduction = "none", por_drop: str | None = None) -> StateSpace:
    """Enumerate the reachable states of ``model`` breadth first, checking ``props`` (those that
    apply to the model's policy, scope and revision) on every state and transition.

    ``roots`` starts the search from these states instead of the initial state (all at depth 0;
    with ``Budget(depth=R)`` this gives the states within ``R`` steps of a trace).
    ``until_found`` stops after the level in which every property named there has fired (the
    search is then not complete). ``avoid``: step properties whose firing steps are checked but
    not followed (the search keeps to the states reached without them; see :func:`clean_traces`).
    ``reduce``: ``"dead"`` searches the canonical states of the
    dead-variable reduction (:mod:`properties.engines.reduce`: the same verdicts, shortest
    lengths, findings and stuck states; counts of canonical states), ``"none"`` every state;
    ``"por"`` and ``"dead+por"`` follow stubborn sets (:mod:`properties.engines.por`: the same
    verdicts and findings, traces possibly longer -- :func:`check` shortens them -- and not the
    stuck states; refused with ``symmetry`` or ``avoid``). ``por_drop``: a condition of the
    partial-order relations left out (the tests' mutation check only).

    The order in which states are first discovered, which gives their ids, is: frontier chunk by
    chunk (``_FRONTIER_CHUNK`` states), within a chunk instance by instance, within an instance
    by frontier row. A chunk is expanded one instance at a time over all its rows (the guard,
    the step and its checks as generated numpy code over the chunk's columns, the operations
    they share kept in a memo per chunk); the step's change of the key is one narrow-integer sum
    over the chunk, zero exactly where the step leaves the state unchanged (:class:`_KeyDelta`),
    so only the rows where the guard holds and the state changes get a successor key. The
    successor keys are collected over consecutive instances into a batch (:class:`_Dedup`, at
    most ``_BATCH``), which is deduplicated at once: one sort (keys and batch positions packed in
    a word when they fit), one search of the sorted distinct keys in the sorted array of seen
    states (cache friendly, unlike unsorted queries) and in the level's own sorted runs, and the
    first batch position of each new key, which is its order of discovery. Each batch's new
    states are numbered as it is deduplicated."""
    budget = budget or Budget()
    stop_ids = set(until_found or ())
    started = time.monotonic()
    # the properties that apply (a Monitor's selection; its compiled checks are not needed here)
    active = [p for p in props if p.active(model.policy, model.scope, model.revision)]
    avoid_ids = {p.id for p in avoid if p.active(model.policy, model.scope, model.revision)}
    checked = active + [p for p in avoid if p.id in avoid_ids and p not in active]
    dead, por = (reduce, False) if isinstance(reduce, Reduction) else parse_mode(reduce)
    red = dead if isinstance(dead, Reduction) else reduction_for(model, checked, dead)
    vm = VecModel(model, checked, reduction=red)
    po = None
    if por:
        if symmetry:
            raise ValueError("partial-order reduction with symmetry is not implemented (see properties.engines.por)")
        if avoid_ids:
            raise ValueError("partial-order reduction cannot leave out steps (avoid): search without it")
        po = partial_order(model, checked, [st.index for st in vm.steps], drop=por_drop,
                           noop=[not st.fields for st in vm.steps])
    state_props = vm.state_props
    packer, sym = _packing(model, symmetry)
    width = model.schema.width
    int_hi = {k: hi for k, ((_, hi), spec) in enumerate(zip(model.schema.bounds, model.schema.specs))
              if spec.sort == "int"}
    found: dict[str, Finding] = {}
    plans = {st.index: _KeyDelta.of(packer, model.schema, st.fields) for st in vm.steps}
    dedup = _Dedup(packer)
    edge_ids = keep_edges and dedup.packed        # destinations numbered as batches are

    starts = [tuple(model.init)] if roots is None else list(dict.fromkeys(tuple(r) for r in roots))
    init = np.array([[int(v) for v in r] for r in starts], dtype=np.int8).T
    if red is not None:
        init = red.canonical(init)
    if sym is not None:
        sym.check_free_slots(init)
    init_key = _keys_of(model, init, symmetry)
    _, first_root = np.unique(init_key, return_index=True)
    first_root.sort()                                  # roots equal under symmetry count once
    init, init_key = init[:, first_root], init_key[first_root]
    n_roots = init.shape[1]
    _check_states(model, state_props, init, 0, found)
    init_rows = packer.pack(init) if sym is not None else init_key   # without symmetry, row = key

    # What is kept per state: its key in the sorted index (8 bytes a word) and its id there (4),
    # parent (4), instance (2) and depth (2); with symmetry also its own packed row (8). Rows
    # are decoded a frontier chunk at a time.
    row_key_parts = [init_rows] if sym is not None else None
    parents = [np.full(n_roots, -1, np.int32)]
    vias = [np.full(n_roots, -1, np.int16)]
    depths = [np.zeros(n_roots, np.int16)]
    e_src: list[np.ndarray] = []
    e_dst: list[np.ndarray] = []
    e_inst: list[np.ndarray] = []
    e_ret: list[np.ndarray] = []
    order0 = np.argsort(init_key, kind="stable")
    seen_sorted = init_key[order0]
    seen_ids = np.arange(n_roots, dtype=np.int32)[order0]
    frontier_rows, frontier_keys, base = init_rows, init_key, 0
    next_block = init if n_roots <= _FRONTIER_CHUNK else None   # the frontier's rows, if decoded
    n_total, transitions, self_loops, level = n_roots, 0, 0, 0
    complete = True

    stopped = ""

    def over_time_or_memory() -> str:
        if budget.seconds is not None and time.monotonic() - started > budget.seconds:
            return f"time budget of {budget.seconds:g} s spent"
        if budget.memory is not None:
            rss = resident_bytes()
            if rss > budget.memory:
                return (f"memory budget of {budget.memory / 2**20:,.0f} MB reached "
                        f"({rss / 2**20:,.0f} MB resident)")
        return ""

    level_rss: list[int] = []      # resident memory at the start of each level

    def next_level_too_large() -> str:
        """The memory is checked between instances, but a level's deduplication allocates in
        large steps (the sorted array of seen states is merged anew): a level that grows like the
        last one can pass the budget by gigabytes before the next check, and the kernel's OOM
        killer then ends the process with nothing written. So a level is not started when it
        would pass the budget at the growth of the last one (twice its increase: the merge holds
        the old and the new array at once)."""
        if budget.memory is None:
            return ""
        level_rss.append(resident_bytes())
        if len(level_rss) < 3:
            return ""
        last, before = level_rss[-1] - level_rss[-2], level_rss[-2] - level_rss[-3]
        growth = last / before if before > 0 else 1.0
        predicted = level_rss[-1] + 2 * max(last, 0) * max(growth, 1.0)
        if predicted <= budget.memory:
            return ""
        return (f"memory budget of {budget.memory / 2**20:,.0f} MB would be passed by the next level "
                f"({level_rss[-1] / 2**20:,.0f} MB resident, about {predicted / 2**20:,.0f} MB expected)")

    def out_of_budget() -> bool:
        nonlocal stopped
        if budget.states is not None and n_total >= budget.states:
            stopped = f"state budget of {budget.states:,} states reached"
        elif budget.depth is not None and level >= budget.depth:
            stopped = f"depth budget of {budget.depth} reached"
        else:
            stopped = over_time_or_memory() or next_level_too_large()
        return bool(stopped)

    while len(frontier_keys):
        if out_of_budget():
            complete = False
            break
        level += 1
        if po is not None and found:
            po.observe(p for p in checked if p.id not in found)   # a property seen to fire: settled
        runs = _SortedRuns()                      # this level's new keys so far, with their ids
        lv_keys, lv_rows, lv_parent, lv_via = [], [], [], []
        lv_src, lv_dkey, lv_inst, lv_ret = [], [], [], []
        lv_dst: list[np.ndarray] = []             # (packed batches: the destinations' ids)
        lv_chunks: list[tuple[int, int]] = []     # per chunk: the pieces of edges so far, its first id
        cut = False
        first_new = n_total
        n_new = 0

        def flush() -> None:
            """Number the batch's new states (those neither seen nor already found in this
            level), in order of first discovery."""
            nonlocal n_new
            if not dedup.n:
                return
            keys, first, dst = dedup.new_in_batch(seen_sorted, runs, seen_ids if edge_ids else None)
            if dst is not None and not len(first):
                lv_dst.append(dedup.destinations(dst[0]))
            if len(first):
                ids = np.empty(len(first), np.int32)
                order = np.argsort(first)              # first positions, in discovery order
                ids[order] = np.arange(first_new + n_new, first_new + n_new + len(first), dtype=np.int32)
                if dst is not None:
                    dst[0][dst[1]] = ids
                    lv_dst.append(dedup.destinations(dst[0]))
                runs.add(keys, ids)
                first = first[order]
                keys = keys[order]
                lv_keys.append(keys)
                if sym is not None:
                    lv_rows.append(dedup.rows_of(first))
                lv_parent.append((f_base + dedup.row[first]).astype(np.int32))
                lv_via.append(dedup.instance_of(first))
                n_new += len(first)
            dedup.clear()

        for f_lo in range(0, len(frontier_keys), _FRONTIER_CHUNK):
            interrupt.check()   # a signal stops the search between two blocks
            if next_block is not None:
                frontier, next_block = next_block, None
            else:
                frontier = packer.unpack(frontier_rows[f_lo:f_lo + _FRONTIER_CHUNK], width)
            f_keys = frontier_keys[f_lo:f_lo + _FRONTIER_CHUNK]
            f_base = base + f_lo
            n = frontier.shape[1]
            C = columns(model, frontier, memo_bytes=max(_MEMO_ROW_BYTES * n, _MEMO_MIN))
            batch = min(dedup.capacity, max(_BATCH_PER_ROW * n, _FRONTIER_CHUNK))
            if po is not None:
                # every guard first: each row's stubborn set is chosen from its enabled steps
                G = np.empty((len(vm.steps), n), bool)
                for j, st in enumerate(vm.steps):
                    G[j] = st.guard(C)
                sel, reduced = po.select(G)
                bad = np.zeros(n, bool)      # reduced rows that the cycle proviso expands fully
                deferred: list[tuple] = []   # successors outside a reduced row's set, kept for those

            def emit(st: Any, rows: np.ndarray, keys: np.ndarray, r: np.ndarray, post: Any) -> None:
                nm = len(rows)
                if keep_edges:
                    lv_src.append((f_base + rows).astype(np.int32))
                    if not edge_ids:
                        lv_dkey.append(keys)
                    lv_inst.append(np.full(nm, st.index, np.int16))
                    lv_ret.append(r[rows] if r.ndim else np.full(nm, r, np.int16))
                if dedup.n + nm > batch:
                    flush()
                dedup.add(keys, rows, st.index, post)

            for j, st in enumerate(vm.steps):
                g = np.asarray(st.guard(C), dtype=bool) if po is None else G[j]
                if g.ndim == 0:
                    if not g:
                        continue
                    gm, m = None, n                    # enabled everywhere
                else:
                    m = int(np.count_nonzero(g))
                    if not m:
                        continue
                    gm = g
                transitions += m * st.copies
                if st.checks:
                    _step_checks(st, C, gm, f_base, found)
                if avoid_ids:
                    gm, m = _avoiding(st, C, gm, n, avoid_ids)
                    if not m:
                        continue
                ret, changes = st.apply(C)
                if po is not None:
                    amp = sel[j] & reduced             # rows that follow this step as reduced
                if not changes:
                    self_loops += m * st.copies
                    if po is not None:
                        bad |= amp                     # a self-loop closes a cycle
                    continue
                for k, col in changes:
                    if k in int_hi:
                        _check_range(model, st.index, k, col, int_hi[k], gm)
                # the rows where the step changes some field (a self-loop everywhere else)
                plan = plans[st.index]
                if plan is not None:
                    rows, dkey = plan.moves(changes, frontier, gm)
                else:
                    rows, dkey = _changed_rows(C, changes, gm, n), None
                nm = len(rows)
                if po is not None and amp.any():
                    loops = amp.copy()
                    loops[rows] = False
                    bad |= loops
                if not nm:
                    self_loops += m * st.copies
                    continue
                if sym is None:
                    keys = f_keys[rows]
                    if dkey is not None:
                        keys += dkey
                    else:
                        for k, col in changes:
                            new = col[rows] if isinstance(col, np.ndarray) and col.ndim else col
                            packer.update(keys, k, frontier[k][rows], new)
                    post = None
                else:
                    post = frontier[:, rows]
                    for k, col in changes:
                        post[k] = col[rows] if isinstance(col, np.ndarray) and col.ndim else col
                    keys = sym.canonical(post)
                    move = np.flatnonzero(keys != f_keys[rows])
                    if len(move) < nm:
                        rows, keys, post = rows[move], keys[move], post[:, move]
                        nm = len(move)
                self_loops += (m - nm) * st.copies
                if not nm:
                    continue
                r = np.asarray(ret, dtype=np.int16)
                if po is not None:
                    follow = sel[j][rows]
                    if not follow.all():
                        out = ~follow
                        deferred.append((st, rows[out], keys[out], r))
                        rows, keys = rows[follow], keys[follow]
                    # the cycle proviso: a reduced row with a successor seen before is expanded
                    red_rows = reduced[rows]
                    if red_rows.any():
                        k = keys[red_rows]
                        pos = np.searchsorted(seen_sorted, k)
                        np.minimum(pos, len(seen_sorted) - 1, out=pos)
                        bad[rows[red_rows][seen_sorted[pos] == k]] = True
                    if not len(rows):
                        continue
                emit(st, rows, keys, r, post)
                why = over_time_or_memory()
                if why:
                    stopped = why
                    cut = True
                    break
            if po is not None:
                po.rows_reduced += int(np.count_nonzero(reduced & ~bad))
                po.rows_proviso += int(np.count_nonzero(reduced & bad))
            if po is not None and not cut:
                for st, rows, keys, r in deferred:     # the rows the proviso expands fully
                    keep = bad[rows]
                    if keep.any():
                        emit(st, rows[keep], keys[keep], r, None)
                deferred = []
            flush()
            if keep_edges:
                lv_chunks.append((len(lv_src), f_base))
            if cut:
                break
        C = frontier = None
        if cut:
            complete = False
        # the level's new states, in order of first discovery
        new_keys = np.concatenate(lv_keys) if lv_keys else init_key[:0]
        new_rows = (np.concatenate(lv_rows) if lv_rows else init_rows[:0]) if sym is not None else new_keys
        new_parent = np.concatenate(lv_parent) if lv_parent else np.zeros(0, np.int32)
        new_via = np.concatenate(lv_via) if lv_via else np.zeros(0, np.int16)
        lv_keys = lv_rows = lv_parent = lv_via = None
        if n_new:
            uk, uid = runs.merged()
            at = np.searchsorted(seen_sorted, uk)
            seen_sorted = np.insert(seen_sorted, at, uk)
            seen_ids = np.insert(seen_ids, at, uid)
            del uk, uid, at
        runs = None
        for lo in range(0, len(new_keys), _FRONTIER_CHUNK):
            block = packer.unpack(new_rows[lo:lo + _FRONTIER_CHUNK], width)
            if sym is not None:
                sym.check_free_slots(block)
            _check_states(model, state_props, block, first_new + lo, found)
        # a level of one chunk is the next frontier's one chunk: decoded once
        next_block = block if 0 < len(new_keys) <= _FRONTIER_CHUNK else None
        block = None
        if keep_edges and lv_src:
            # each chunk's destinations become ids, then one edge per distinct pair of the level
            dst_parts = lv_dst
            for dk in lv_dkey:
                pos = np.searchsorted(seen_sorted, dk)
                pos[pos >= len(seen_sorted)] = 0
                dst_parts.append(np.where(seen_sorted[pos] == dk, seen_ids[pos], -1).astype(np.int32))
            lv_dkey.clear()
            dst = np.concatenate(dst_parts)
            del dst_parts
            lv_dst.clear()
            # pairs of different chunks have different sources: the first of each distinct pair
            # is found chunk by chunk
            sizes = np.cumsum([0] + [len(x) for x in lv_src])
            src = np.concatenate(lv_src)
            keep_parts = []
            done = 0
            for pieces, f_base in lv_chunks:
                lo, hi = sizes[done], sizes[pieces]
                done = pieces
                if hi > lo:
                    keep_parts.append(lo + _first_pairs(src[lo:hi] - f_base, dst[lo:hi]))
            keep = np.concatenate(keep_parts)
            keep = keep[dst[keep] >= 0]          # (a cut level may leave targets unnumbered)
            e_src.append(src[keep])
            e_dst.append(dst[keep])
            e_inst.append(np.concatenate(lv_inst)[keep])
            e_ret.append(np.concatenate(lv_ret)[keep])
        if row_key_parts is not None:
            row_key_parts.append(new_rows)
        parents.append(new_parent)
        vias.append(new_via)
        depths.append(np.full(len(new_keys), level, np.int16))
        base = first_new
        n_total += len(new_keys)
        frontier_rows, frontier_keys = new_rows, new_keys
        if progress:
            progress(f"explicit: {model.policy.name} {model.scope.name}: depth {level}, "
                     f"{n_total} states, {transitions} transitions, {time.monotonic() - started:.1f} s")
        if cut:
            break
        if stop_ids and stop_ids <= set(found):
            complete = not len(frontier_keys)
            if not complete:
                stopped = "every property asked for was found"
            break

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    frontier_rows = frontier_keys = new_rows = new_keys = None  # noqa: F841
    dedup = None
    return StateSpace(
        model=model, symmetry=symmetry, complete=complete,
        parent=cat(parents, np.int32), via=cat(vias, np.int16), depth=cat(depths, np.int16),
        edge_src=cat(e_src, np.int32), edge_dst=cat(e_dst, np.int32), edge_inst=cat(e_inst, np.int16),
        edge_ret=cat(e_ret, np.int16), transitions=transitions, self_loops=self_loops,
        seconds=time.monotonic() - started, checked=tuple(p.id for p in active), found=found,
        stopped="" if complete else stopped, sorted_keys=seen_sorted, order=seen_ids,
        row_keys=np.concatenate(row_key_parts) if row_key_parts is not None else None, reduction=red,
        partial_order=po)


def _check_states(model: Model, state_props: list[VecProperty], block: np.ndarray, first_id: int,
                  found: dict[str, Finding]) -> None:
    if not block.shape[1]:
        return
    C = None
    for p in state_props:
        if p.id in found:
            continue
        if C is None:
            C = columns(model, block, memo_bytes=max(_MEMO_ROW_BYTES * block.shape[1], _MEMO_MIN))
        r = np.asarray(p.fn(C))
        hit = np.broadcast_to(r if p.fires_when is True and r.dtype == np.bool_ else r == p.fires_when,
                              (block.shape[1],))
        j = int(hit.argmax())
        if hit[j]:
            found[p.id] = Finding(first_id + j)


def _step_checks(st: Any, C: Any, gm: np.ndarray | None, f_base: int, found: dict[str, Finding]) -> None:
    """Record the first frontier row (of those where the guard ``gm`` holds; all if ``None``) on
    which each of the instance's step checks fires. Findings of one instance are recorded as the
    search always has: block by block of ``_CHUNK`` enabled rows, in the order of the checks."""
    fired = []
    for j, c in enumerate(st.checks):
        if c.id in found:
            continue
        r = c.fn(C)
        if not isinstance(r, np.ndarray) or r.ndim == 0:
            if r != c.fires_when:
                continue
            row = 0 if gm is None else int(gm.argmax())
        else:
            # (r may be the memo's: not changed in place)
            if c.fires_when:
                hit = r if gm is None else np.logical_and(r, gm)
            else:
                hit = ~r if gm is None else np.greater(gm, r)
            row = int(hit.argmax())
            if not hit[row]:
                continue
        fired.append((row, j, c.id))
    if len(fired) > 1 and gm is not None:
        fired.sort(key=lambda f: (int(np.count_nonzero(gm[:f[0]])) // _CHUNK, f[1]))
    elif len(fired) > 1:
        fired.sort(key=lambda f: (f[0] // _CHUNK, f[1]))
    for row, _, cid in fired:
        found[cid] = Finding(f_base + row, st.index)


def _avoiding(st: Any, C: Any, gm: np.ndarray | None, n: int, avoid: set[str]) -> tuple[np.ndarray | None, int]:
    """The guard ``gm`` without the rows where a step check named in ``avoid`` fires, and how many
    rows remain enabled."""
    bad = None
    for c in st.checks:
        if c.id not in avoid:
            continue
        r = c.fn(C)
        if not isinstance(r, np.ndarray) or r.ndim == 0:
            if bool(r) == c.fires_when:
                return np.zeros(n, dtype=bool), 0
            continue
        hit = r if c.fires_when else ~r
        bad = hit if bad is None else (bad | hit)
    if bad is None:
        return gm, n if gm is None else int(np.count_nonzero(gm))
    keep = ~bad if gm is None else np.greater(gm, bad)
    return keep, int(np.count_nonzero(keep))


def _check_range(model: Model, instance: int, k: int, col: Any, hi: int, gm: np.ndarray | None) -> None:
    """Raise if the step sets integer field ``k`` outside ``[0, hi]`` on an enabled row: the
    packed keys would alias (a model bug)."""
    if isinstance(col, np.ndarray) and col.ndim:
        if col.dtype == np.int16:
            bad = col.view(np.uint16) > hi           # negative values are large unsigned ones
        else:
            bad = (col < 0) | (col > hi)
        if not bad.any() or (gm is not None and not np.logical_and(bad, gm, out=bad).any()):
            return
    elif 0 <= col <= hi:
        return
    raise AssertionError(
        f"explicit engine: {model.instances[instance]} sets {model.schema.names[k]} outside [0, {hi}]")


class _KeyDelta:
    """How one instance changes a one-word key: a successor's key is its state's plus
    ``sum((new[k] - old[k]) * mult[k])`` over the fields the step may change. With ``mult[k] =
    unit * r[k]`` the sum over the chunk's rows is computed as ``unit * sum((new[k] - old[k]) *
    r[k])``, the inner sum in the narrowest integer type that holds it (mostly ``int16``); as the
    fields are digits of a mixed radix number and each ``|new - old|`` is at most its field's
    largest value (checked before), the inner sum is 0 exactly where the step changes nothing."""

    __slots__ = ("r", "unit", "dtype")

    def __init__(self, r: dict[int, int], unit: int, dtype: type) -> None:
        self.r, self.unit, self.dtype = r, np.int64(unit), dtype

    @classmethod
    def of(cls, packer: KeyPacker, schema: Any, fields: Sequence[int]) -> "_KeyDelta | None":
        if len(packer.words) != 1:
            return None
        placed = [(k, int(packer.place[k][1])) for k in fields if k in packer.place]
        if not placed:
            return cls({}, 1, np.int16)
        unit = min(mult for _, mult in placed)
        r = {k: mult // unit for k, mult in placed}
        top = sum(schema.bounds[k][1] * rk for k, rk in r.items())
        dtype = np.int16 if top < 1 << 15 else np.int32 if top < 1 << 31 else np.int64
        return cls(r, unit, dtype)

    def moves(self, changes: list, frontier: np.ndarray, gm: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The rows (where ``gm`` holds) on which the step changes the state, and the change of
        each one's key (``uint64``, to add)."""
        acc = None
        for k, col in changes:
            rk = self.r.get(k)
            if rk is None:
                continue                               # a field whose only value is 0
            if isinstance(col, np.ndarray) and col.ndim:
                new = col.view(np.int8) if col.dtype == np.bool_ else col
            else:
                new = int(col)
            t = np.subtract(new, frontier[k], dtype=self.dtype)
            if rk != 1:
                t *= rk
            if acc is None:
                acc = t
            else:
                acc += t
        if acc is None:
            return np.zeros(0, np.intp), np.zeros(0, np.uint64)
        moved = acc != 0
        if gm is not None:
            moved &= gm
        rows = np.flatnonzero(moved)
        d = acc[rows].astype(np.int64)
        if self.unit != 1:
            d *= self.unit
        return rows, d.view(np.uint64)


def _changed_rows(C: Any, changes: list, gm: np.ndarray | None, n: int) -> np.ndarray:
    """The frontier rows, of those where the guard ``gm`` holds (all if ``None``), on which the
    step gives some changed field a new value; on every other enabled row it is a self-loop."""
    chg = None
    for k, col in changes:
        d = np.not_equal(C[k], col)
        if chg is None:
            chg = d
        else:
            np.logical_or(chg, d, out=chg)
    if gm is not None:
        np.logical_and(chg, gm, out=chg)
    return np.flatnonzero(chg)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _hash(keys: np.ndarray, bits: int) -> np.ndarray:
    """A ``bits``-bit multiplicative hash of each key (of each record of words)."""
    if keys.dtype.names is None:
        h = keys * _GOLDEN
    else:
        h = np.zeros(keys.shape, np.uint64)
        for w in keys.dtype.names:
            h ^= keys[w]
            h *= _GOLDEN
    return h >> np.uint64(64 - bits)


class _SortedRuns:
    """The keys of the states found so far in the current level, with their ids: a few sorted
    runs, the last two merged whenever the older is at most twice the newer (so there are
    about log2 of them)."""

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = []
        self.ids: list[np.ndarray] = []

    def ids_of(self, u: np.ndarray) -> np.ndarray:
        """The id of each of the sorted keys ``u`` (-1 for those in no run)."""
        out = np.full(len(u), -1, np.int32)
        for k, i in zip(self.keys, self.ids):
            pos = np.searchsorted(k, u)
            np.minimum(pos, len(k) - 1, out=pos)
            hit = k[pos] == u
            out[hit] = i[pos[hit]]
        return out

    def add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        self.keys.append(keys)
        self.ids.append(ids)
        while len(self.keys) > 1 and len(self.keys[-2]) <= 2 * len(self.keys[-1]):
            self._merge(2)

    def _merge(self, last: int) -> None:
        k = np.concatenate(self.keys[-last:])
        i = np.concatenate(self.ids[-last:])
        o = np.argsort(k, kind="stable")          # a merge of sorted runs
        self.keys[-last:] = [k[o]]
        self.ids[-last:] = [i[o]]

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self.keys) > 1:
            self._merge(len(self.keys))
        return self.keys[0], self.ids[0]


class _Dedup:
    """A batch of candidate successors of one frontier chunk, in order of discovery: their keys,
    frontier rows and instances (and post-states under symmetry), and what is new in it.

    With a one-word key of B bits, a batch holds up to 2**(64-B) candidates, each stored as
    ``key << (64-B) | position``: one sort then gives the distinct keys and each one's first
    position at once. Otherwise the keys sort alone and a hash finds the first positions."""

    def __init__(self, packer: KeyPacker) -> None:
        self.packer = packer
        self.shift = min(63, 64 - packer.word_max[0].bit_length()) if len(packer.words) == 1 else 0
        self.packed = _PACKED and (1 << self.shift) >= _FRONTIER_CHUNK
        self.capacity = min(_BATCH, 1 << self.shift) if self.packed else _BATCH
        self.keys = np.empty(self.capacity, np.uint64 if self.packed else packer.dtype)
        self.row = np.empty(self.capacity, np.int32)
        self.ends: list[int] = []
        self.insts: list[int] = []
        self.posts: list[np.ndarray] = []
        self.n = 0
        self._start: np.ndarray | None = None        # where the sorted batch's runs start

    def add(self, keys: np.ndarray, rows: np.ndarray, instance: int, post: np.ndarray | None) -> None:
        n, m = self.n, len(keys)
        if self.packed:
            seg = self.keys[n:n + m]
            np.left_shift(keys, np.uint64(self.shift), out=seg)
            seg |= np.arange(n, n + m, dtype=np.uint64)
        else:
            self.keys[n:n + m] = keys
        self.row[n:n + m] = rows
        self.n = n + m
        self.ends.append(self.n)
        self.insts.append(instance)
        if post is not None:
            self.posts.append(self.packer.pack(post))   # (8 bytes a row, not one per field)

    def clear(self) -> None:
        self.n = 0
        self.ends.clear()
        self.insts.clear()
        self.posts.clear()

    def instance_of(self, pos: np.ndarray) -> np.ndarray:
        return np.asarray(self.insts, np.int16)[np.searchsorted(np.asarray(self.ends), pos, side="right")]

    def rows_of(self, pos: np.ndarray) -> np.ndarray:
        """The packed post-states at batch positions ``pos`` (symmetry: the concrete rows)."""
        return np.concatenate(self.posts)[pos]

    def new_in_batch(self, seen_sorted: np.ndarray, runs: _SortedRuns,
                     seen_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The batch's keys that are neither in ``seen_sorted`` nor in ``runs``, sorted, and the
        first batch position of each (the batch's keys are not kept). With ``seen_ids`` (packed
        batches only), also the id of every distinct key of the batch (-1 for the new ones, to be
        filled in before :meth:`destinations`)."""
        n = self.n
        K = self.keys[:n]
        if self.packed:
            K.sort()                                   # in place: by key, then position
            start = _run_starts(K, self.shift)
            w = K[start]
            u = w >> np.uint64(self.shift)
            first = w
            first &= np.uint64((1 << self.shift) - 1)
            self._start = start if seen_ids is not None else None
        else:
            s = np.sort(K)
            u = s[_run_starts(s, 0)]
            first = None
            del s
        pos = np.searchsorted(seen_sorted, u)
        np.minimum(pos, len(seen_sorted) - 1, out=pos)
        in_seen = seen_sorted[pos] == u
        ids = np.where(in_seen, seen_ids[pos], -1).astype(np.int32) if seen_ids is not None else None
        rest = np.flatnonzero(~in_seen)
        del pos, in_seen
        if len(rest) and runs.keys:
            rid = runs.ids_of(u[rest])
            if ids is not None:
                ids[rest] = rid
            rest = rest[rid < 0]
        u = u[rest]
        first = first[rest] if first is not None else _first_positions(K, u)
        return u, first.astype(np.int64), (ids, rest) if ids is not None else None

    def destinations(self, ids: np.ndarray) -> np.ndarray:
        """The id of each candidate of the (packed) batch, in batch order, from the ids of its
        distinct keys (:meth:`new_in_batch`, new ones filled in)."""
        K = self.keys[:self.n]
        out = np.empty(self.n, np.int32)
        out[K & np.uint64((1 << self.shift) - 1)] = ids[np.cumsum(self._start) - 1]
        self._start = None
        return out


def _first_pairs(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The positions of the first of each distinct ``(src, dst)`` pair, in order (``src`` are
    small offsets, ``dst`` ids or -1): one sort of ``src|dst+1|position`` packed in a word when
    they fit, else ``numpy.unique``."""
    m = len(src)
    sbits = int(src.max()).bit_length()
    dbits = int(dst.max() + 1).bit_length()
    pbits = max(1, (m - 1).bit_length())
    if sbits + dbits + pbits <= 64:
        v = src.astype(np.uint64) << np.uint64(dbits + pbits)
        v |= (dst + 1).astype(np.uint64) << np.uint64(pbits)
        v |= np.arange(m, dtype=np.uint64)
        v.sort()
        first = v[_run_starts(v, pbits)]
        first &= np.uint64((1 << pbits) - 1)
        first = first.astype(np.int64)
    else:
        pair = src.astype(np.int64) * (int(dst.max()) + 2) + dst + 1
        _, first = np.unique(pair, return_index=True)
    first.sort()
    return first


def _run_starts(v: np.ndarray, shift: int) -> np.ndarray:
    """Where each run of equal values of the sorted ``v`` starts (of equal ``v >> shift`` when
    ``shift``), computed a block at a time to keep the temporaries small."""
    n = len(v)
    start = np.empty(n, bool)
    if not n:
        return start
    start[0] = True
    step = 1 << 17
    for lo in range(1, n, step):
        hi = min(n, lo + step)
        if shift:
            x = np.bitwise_xor(v[lo:hi], v[lo - 1:hi - 1])
            np.greater_equal(x, np.uint64(1 << shift), out=start[lo:hi])
        else:
            start[lo:hi] = v[lo:hi] != v[lo - 1:hi - 1]   # (records of words compare with the operator)
    return start


def _first_positions(K: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The first position in ``K`` of each of the sorted distinct keys ``u`` (each occurs in
    ``K``): a hash bitmap of ``u`` picks the few positions that may hold one; their keys, made
    distinct (first positions kept), are looked up in ``u``."""
    if not len(u):
        return np.zeros(0, np.int64)
    bits = max(10, (16 * len(u)).bit_length())
    mark = np.zeros(1 << bits, bool)
    mark[_hash(u, bits)] = True
    cand = np.flatnonzero(mark[_hash(K, bits)])
    kc, fi = np.unique(K[cand], return_index=True)
    p = np.searchsorted(u, kc)
    np.minimum(p, len(u) - 1, out=p)
    ok = u[p] == kc
    first = np.full(len(u), len(K), np.int64)
    first[p[ok]] = cand[fi[ok]]
    return first


def verdicts(space: StateSpace, props: Iterable[Property]) -> list[Verdict]:
    """One verdict per property that applies to the space's model (see the module docstring);
    every counterexample and target trace is replayed and confirmed by the Python monitor."""
    def trace_of(pid: str) -> Trace | None:
        f = space.found.get(pid)
        return None if f is None else space.trace_to(f.state, f.instance)
    extra = {"reduction": space.mode} if space.mode != "none" else {}
    return judge(space, props, trace_of, extra, "explicit engine")


def judge(space: Any, props: Iterable[Property], trace_of: Callable[[str], Trace | None],
          extra: dict[str, Any], who: str) -> list[Verdict]:
    """The verdicts of a breadth-first search, local or distributed (``space``: its model, counts,
    depth and whether it completed; ``trace_of``: the trace of a property that fired, else None;
    ``extra``: evidence of that search's own). Each trace is confirmed by the Python monitor."""
    model = space.model
    mon = Monitor(model, list(props))
    # what the search covers: every reachable state, or (cut short) every state up to the last
    # level it completed
    covered = ({"guarantee": "exhaustive", "scope": model.scope.name} if space.complete else
               {"guarantee": "bounded", "scope": model.scope.name, "depth_complete": max(0, space.max_depth - 1)})
    base = {**covered, "states": space.n_states, "transitions": space.transitions, "depth": space.max_depth,
            "symmetry": space.symmetry, "complete": space.complete, "seconds": round(space.seconds, 3), **extra}
    if space.stopped:
        base["stopped"] = space.stopped
    out = []
    for p in mon.props:
        if p.id not in space.checked:
            raise ValueError(f"property {p.id} was not checked by this exploration")
        trace = trace_of(p.id)
        if trace is not None and not mon.fires(trace, p.id):  # pragma: no cover - interpretations disagree
            raise AssertionError(f"{who}: {p.id} fired in the vectorised search but not on replay of "
                                 f"the trace ({len(trace)} steps)")
        if p.kind in ("always", "step", "undefined"):
            verdict = "violated" if trace is not None else "holds" if space.complete else "unknown"
        else:  # witness
            verdict = "holds" if trace is not None else "violated" if space.complete else "unknown"
        ev = dict(base)
        ev["checked_on"] = (f"all {space.n_states} states" if p.on == "state"
                            else f"all {space.transitions} transitions")
        if not space.complete and trace is None:
            ev["checked_on"] = "a search cut short by its budget"
        if trace is not None:
            ev["trace_length"] = len(trace)
        note = ""
        if p.kind == "witness" and verdict == "violated":
            note = f"unreachable: no state or step of the {space.n_states} reachable ones reaches it"
        out.append(make_verdict(p, model.policy.name, "explicit", verdict, None, ev, trace, note))
    return out

def check(model: Model, props: Iterable[Property], symmetry: bool = False, budget: Budget | None = None,
          progress: Callable[[str], None] | None = None, keep_edges: bool = True,
          reduce: str | Reduction = "none") -> tuple[StateSpace, list[Verdict]]:
    """Explore ``model`` and judge ``props`` exhaustively: the state space and the verdicts, each
    trace a shortest one in which callers keep their obligations where one exists
    (:func:`clean_traces`)."""
    props = list(props)
    space = explore(model, props, symmetry=symmetry, budget=budget, progress=progress, keep_edges=keep_edges,
                    reduce=reduce)
    vs = verdicts(space, props)
    if space.partial_order is not None:
        vs = shortest_traces(model, vs, budget, symmetry=symmetry,
                             reduce=space.reduction if space.reduction is not None else "none")
    dead = space.reduction if space.reduction is not None else "none"
    return space, clean_traces(model, vs, budget, reduce=reduce if space.partial_order is None else dead)


def _bounded(model: Model, props: list[Property], budget: Budget | None, depth: int, **kw: Any) -> StateSpace:
    """A breadth-first search to ``depth`` within ``budget`` (its own depth replaced) that stops once
    every one of ``props`` has fired: what re-searching another search's traces needs."""
    b = dataclasses.replace(budget or Budget(), depth=depth)
    return explore(model, props, budget=b, keep_edges=False, until_found=[p.id for p in props], **kw)


def shortest_traces(model: Model, vs: list[Verdict], budget: Budget | None = None, symmetry: bool = False,
                    reduce: str | Reduction = "none") -> list[Verdict]:
    """The traces of a partial-order-reduced search made shortest: one breadth-first search without
    that reduction (``reduce``: the dead-variable one or none), bounded by one step less than the
    longest trace, that stops once every traced property has fired; a property it finds in fewer
    steps than its trace gets the shorter (shortest) trace. The evidence says ``trace_shortest``:
    true when the bounded search covered every shorter trace, false when its budget cut it first
    (the trace is kept)."""
    traced = {v.property: v for v in vs if v.trace is not None}
    longest = max((len(v.trace) for v in traced.values()), default=0)
    if not longest:
        return [dataclasses.replace(v, evidence={**v.evidence, "trace_shortest": True}) if v.property in traced
                else v for v in vs]
    props = [get_property(pid) for pid in traced]
    space = _bounded(model, props, budget, longest - 1, symmetry=symmetry, reduce=reduce)
    mon = Monitor(model, props)
    out = []
    for v in vs:
        if v.property not in traced:
            out.append(v)
            continue
        f = space.found.get(v.property)
        trace = space.trace_to(f.state, f.instance) if f is not None else None
        if trace is not None and len(trace) < len(v.trace) and mon.fires(trace, v.property):
            out.append(dataclasses.replace(v, trace=trace, evidence={**v.evidence, "trace_length": len(trace),
                                                                    "trace_shortest": True}))
            continue
        # not found in fewer steps: shortest if the search covered every level below the trace
        # (found at its own length or more: nothing shorter; a breadth-first search finds shortest)
        covered = f is not None or space.complete or space.stopped.startswith("depth budget")
        out.append(dataclasses.replace(v, evidence={**v.evidence, "trace_shortest": bool(covered)}))
    return out


def caller_faults(model: Model) -> list[Property]:
    """The properties whose firing step is a caller breaking its obligation (an importer's or
    userspace's undefined behaviour): a trace that has one before its last step shows that
    caller's fault first, whatever it goes on to show."""
    return [p for p in PROPERTIES if p.kind == "undefined" and p.on == "step"
            and p.party in ("importer", "userspace", "undefined")
            and p.active(model.policy, model.scope, model.revision)]


# how many steps longer than the shortest trace a trace in which callers keep their obligations
# may be (an author dismisses a trace that starts with a caller's fault)
CLEAN_EXTRA_STEPS = 4


def clean_traces(model: Model, vs: list[Verdict], budget: Budget | None = None,
                 reduce: str | Reduction = "none") -> list[Verdict]:
    """Prefer traces in which every caller keeps its obligations: a trace with a caller's fault
    (:func:`caller_faults`) before its last step is replaced by a shortest one without one, found
    by a second breadth-first search that does not follow such steps, within ``budget``: of the
    same length where one exists, else up to ``CLEAN_EXTRA_STEPS`` longer (the evidence then gives
    the length of the shortest trace, which needs a fault: ``shortest_with_caller_fault``). The
    evidence says whether the trace is clean (``callers_keep_obligations``; false: none within
    that length, or the search was cut: the trace is kept). ``reduce``: as for :func:`explore`."""
    faults = caller_faults(model)
    if not faults:
        return vs
    mon = Monitor(model, faults)
    fault_ids = {p.id for p in faults}
    dirty = {}
    for v in vs:
        if v.trace is None or len(v.trace) < 2:
            continue
        along = fired_along(mon, v.trace)
        if any(fault_ids & set(f) for f in along[:-1]):
            dirty[v.property] = v
    if not dirty:
        return vs
    depth = max(len(v.trace) for v in dirty.values()) + CLEAN_EXTRA_STEPS
    props = [get_property(v.property) for v in dirty.values()]
    space = _bounded(model, props, budget, depth, avoid=faults, reduce=reduce)
    check_mon = Monitor(model, props)
    out = []
    for v in vs:
        if v.property not in dirty:
            out.append(v)
            continue
        f = space.found.get(v.property)
        trace = space.trace_to(f.state, f.instance) if f is not None else None
        if trace is not None and len(trace) <= len(v.trace) + CLEAN_EXTRA_STEPS and check_mon.fires(trace, v.property):
            ev = {**v.evidence, "callers_keep_obligations": True}
            if len(trace) > len(v.trace):     # the shortest trace needs a caller's fault first
                ev.update(trace_length=len(trace), shortest_with_caller_fault=len(v.trace))
            out.append(dataclasses.replace(v, trace=trace, evidence=ev))
        else:
            out.append(dataclasses.replace(v, evidence={**v.evidence, "callers_keep_obligations": False}))
    return out


def shortest_trace(model: Model, prop: Property, max_depth: int) -> Trace | None:
    """A shortest trace on which ``prop`` fires (violated, or its target reached), by a search of
    at most ``max_depth`` levels that stops at the first level where it fires; ``None`` if it
    does not fire within ``max_depth`` steps. For another engine's counterexample of length L,
    ``max_depth=L`` gives the shortest one (the issue's ratio 1.0). The search is reduced (dead
    fields merged: the same levels, so the same shortest length)."""
    space = explore(model, [prop], budget=Budget(depth=max_depth), keep_edges=False, until_found=[prop.id],
                    reduce="dead")
    f = space.found.get(prop.id)
    return None if f is None else space.trace_to(f.state, f.instance)


def shorten(model: Model, prop: Property, trace: Trace, budget: Budget | None = None) -> tuple[Trace, str]:
    """Another engine's trace on which ``prop`` fires, made shortest: a breadth-first search to
    one step less than ``trace`` that stops at the first level where ``prop`` fires, within
    ``budget`` (its ``depth`` is set here). Returns the trace to report and what is known of it:
    ``"shortened"`` (a shorter one was found: it is a shortest), ``"shortest"`` (the search
    covered every shorter trace and found none) or ``"unconfirmed"`` (the budget cut the search
    first; ``trace`` is kept)."""
    if len(trace) == 0:
        return trace, "shortest"
    space = _bounded(model, [prop], budget, len(trace) - 1, reduce="dead")
    f = space.found.get(prop.id)
    if f is not None:
        return space.trace_to(f.state, f.instance), "shortened"
    covered = space.complete or space.stopped.startswith("depth budget")
    return trace, "shortest" if covered else "unconfirmed"


# --- the engine interface ------------------------------------------------------------------------
# every reachable state of the model's scope behind properties.engines.interface, and, on a
# complete graph, the stuck states (properties.engines.stuck)

@dataclass(frozen=True)
class ExplicitEngine:
    """``symmetry``: merge states that differ only in interchangeable slots; ``keep_edges``:
    keep the graph's edges (graph export, stuck states); ``stuck``: look for stuck states once the
    graph is complete (``extras["stuck"]``; under partial-order reduction from a second search
    without it, ``extras["stuck_searched"]``); ``reduce``: ``"dead"`` for the dead-variable
    reduction (:mod:`properties.engines.reduce`), ``"por"``/``"dead+por"`` with partial-order
    reduction (:mod:`properties.engines.por`). The budget's ``states``, ``seconds``, ``depth`` and
    ``memory`` bound the search; a cut search says ``unknown`` for what it did not find."""

    symmetry: bool = False
    keep_edges: bool = True
    stuck: bool = False
    reduce: str = "none"
    name: ClassVar[str] = "explicit"

    def check(self, model: Model, props: Sequence[Property], budget: EngineBudget,
              progress: Callable[[str], None] | None = None) -> EngineResult:
        started = time.monotonic()
        space, verdicts = check(model, props, symmetry=self.symmetry, budget=budget, progress=progress,
                                keep_edges=self.keep_edges or self.stuck, reduce=self.reduce)
        extras = {}
        if self.stuck and space.complete and not (space.symmetry and model.scope.buffers > 1):
            graph = space
            if space.partial_order is not None:
                # stubborn sets do not keep "no goal is reachable from here": a search without them
                graph = explore(model, (), symmetry=self.symmetry, budget=budget, keep_edges=True,
                                reduce=space.reduction if space.reduction is not None else "none")
                extras["stuck_searched"] = f"without partial-order reduction ({graph.n_states} states)"
            if graph.complete:
                extras["stuck"] = find_stuck(graph)
        return EngineResult(self.name, model.policy.name, model.scope.name, model.revision, verdicts,
                            time.monotonic() - started, space.summary(), extras, space)
