"""The explicit-state engine: breadth-first enumeration of every reachable state of a scope, with
every property checked on every reachable state and transition (DESIGN.md, "three engines").

The search is level by level; a level's whole frontier is expanded at once by the numpy
interpretation of the transitions (:mod:`properties.engines.vectorize`), deduplicated by packed
integer keys (optionally canonical under symmetry, :mod:`properties.engines.symmetry`), and every
property is evaluated on the new states and on every transition of the level. Each state keeps
its BFS parent and the instance that reached it, so a counterexample is a shortest path from the
initial state; it is replayed on the compiled model (:func:`properties.trace.replay`) and
confirmed by the Python monitor before it is reported.

Verdicts (DESIGN.md point 7): an ``always``/``step`` property ``holds`` when it was checked on all
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

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from model.machine import Model

from ..monitor import Monitor
from ..registry import Property
from ..trace import Trace, TraceStep
from ..verdict import Verdict, make_verdict
from .symmetry import KeyPacker, Symmetry
from .vectorize import VecModel, VecProperty, columns

__all__ = ["Budget", "StateSpace", "Finding", "explore", "check", "verdicts", "shortest_trace", "GraphTooLarge"]

_CHUNK = 1 << 16          # rows expanded at once per instance (bounds the temporaries)
_FRONTIER_CHUNK = 1 << 18  # frontier states decoded and expanded at once


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
    _states: np.ndarray | None = field(default=None, repr=False)

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
                "complete": self.complete, "seconds": round(self.seconds, 3),
                **({"stopped": self.stopped} if self.stopped else {})}

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
        import networkx as nx

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
    return Trace(start, tuple(steps))


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
            until_found: Iterable[str] | None = None) -> StateSpace:
    """Enumerate the reachable states of ``model`` breadth first, checking ``props`` (those that
    apply to the model's policy, scope and revision) on every state and transition.

    ``roots`` starts the search from these states instead of the initial state (all at depth 0;
    with ``Budget(depth=R)`` this gives the states within ``R`` steps of a trace).
    ``until_found`` stops after the level in which every property named there has fired (the
    search is then not complete)."""
    budget = budget or Budget()
    stop_ids = set(until_found or ())
    started = time.monotonic()
    mon = Monitor(model, list(props))
    vm = VecModel(model, mon.props)
    state_props = vm.state_props
    packer, sym = _packing(model, symmetry)
    width = model.schema.width
    int_hi = {k: hi for k, ((_, hi), spec) in enumerate(zip(model.schema.bounds, model.schema.specs))
              if spec.sort == "int"}
    found: dict[str, Finding] = {}

    starts = [tuple(model.init)] if roots is None else list(dict.fromkeys(tuple(r) for r in roots))
    init = np.array([[int(v) for v in r] for r in starts], dtype=np.int8).T
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

    def out_of_budget() -> bool:
        nonlocal stopped
        if budget.states is not None and n_total >= budget.states:
            stopped = f"state budget of {budget.states:,} states reached"
        elif budget.depth is not None and level >= budget.depth:
            stopped = f"depth budget of {budget.depth} reached"
        else:
            stopped = over_time_or_memory()
        return bool(stopped)

    while len(frontier_keys):
        if out_of_budget():
            complete = False
            break
        level += 1
        cand_keys, cand_rows, cand_parent, cand_via = [], [], [], []
        lv_src, lv_dkey, lv_inst, lv_ret = [], [], [], []
        cut = False
        n_cand, n_kept = 0, 0

        def compact() -> int:
            """Keep the first candidate of each new state (the order of first discovery, as the
            level's final deduplication would): a state reached by many (state, instance) pairs
            is otherwise held once per pair until the level ends, which set the peak memory."""
            ck = np.concatenate(cand_keys)
            _, first = np.unique(ck, return_index=True)
            first.sort()
            cand_keys[:] = [ck[first]]
            if sym is not None:
                cand_rows[:] = [np.concatenate(cand_rows)[first]]
            cand_parent[:] = [np.concatenate(cand_parent)[first]]
            cand_via[:] = [np.concatenate(cand_via)[first]]
            return len(first)
        for f_lo in range(0, len(frontier_keys), _FRONTIER_CHUNK):
            frontier = packer.unpack(frontier_rows[f_lo:f_lo + _FRONTIER_CHUNK], width)
            f_keys = frontier_keys[f_lo:f_lo + _FRONTIER_CHUNK]
            f_base = base + f_lo
            n = frontier.shape[1]
            C = columns(model, frontier)
            for st in vm.steps:
                g = st.guard(C)
                idx_all = np.flatnonzero(np.broadcast_to(np.asarray(g, dtype=bool), (n,)))
                for lo in range(0, len(idx_all), _CHUNK):
                    idx = idx_all[lo:lo + _CHUNK]
                    m = len(idx)
                    Cs = columns(model, frontier, idx)
                    for c in st.checks:
                        if c.id in found:
                            continue
                        hit = np.broadcast_to(np.asarray(c.fn(Cs)) == c.fires_when, (m,))
                        if hit.any():
                            found[c.id] = Finding(f_base + int(idx[int(np.argmax(hit))]), st.index)
                    ret, changes = st.apply(Cs)
                    transitions += m
                    if not changes:
                        self_loops += m
                        continue
                    for k, col in changes:
                        if k in int_hi and np.any((np.asarray(col) < 0) | (np.asarray(col) > int_hi[k])):
                            raise AssertionError(            # the packed keys would alias: a model bug
                                f"explicit engine: {model.instances[st.index]} sets {model.schema.names[k]} "
                                f"outside [0, {int_hi[k]}]")
                    pre_keys = f_keys[idx]
                    if sym is None:
                        # no row is built: a successor's key is its state's plus the changed fields'
                        post = None
                        keys = pre_keys.copy()
                        for k, col in changes:
                            packer.update(keys, k, Cs[k], col)
                    else:
                        post = frontier[:, idx]
                        for k, col in changes:
                            post[k] = col
                        keys = sym.canonical(post)
                    move = np.flatnonzero(keys != pre_keys)
                    self_loops += m - len(move)
                    if not len(move):
                        continue
                    idx, keys = idx[move], keys[move]
                    if post is not None:
                        post = post[:, move]
                    if keep_edges:
                        lv_src.append((f_base + idx).astype(np.int32))
                        lv_dkey.append(keys)
                        lv_inst.append(np.full(len(move), st.index, np.int16))
                        lv_ret.append(np.broadcast_to(np.asarray(ret, dtype=np.int16), (m,))[move])
                    pos = np.searchsorted(seen_sorted, keys)
                    pos[pos >= len(seen_sorted)] = 0
                    new = np.flatnonzero(seen_sorted[pos] != keys)
                    if len(new):
                        _, first = np.unique(keys[new], return_index=True)
                        new = new[np.sort(first)]          # one candidate per new state and chunk
                        cand_keys.append(keys[new])
                        if sym is not None:
                            cand_rows.append(packer.pack(post[:, new]))
                        cand_parent.append((f_base + idx[new]).astype(np.int32))
                        cand_via.append(np.full(len(new), st.index, np.int16))
                        n_cand += len(new)
                        if n_cand > 2 * n_kept + _CHUNK:
                            n_kept = n_cand = compact()
                why = over_time_or_memory()
                if why:
                    stopped = why
                    cut = True
                    break
            if cut:
                break
        C = frontier = None
        if cut:
            complete = False
        # the level's new states, in order of first discovery
        first_new = n_total
        if cand_keys:
            ck = np.concatenate(cand_keys)
            uk, first = np.unique(ck, return_index=True)      # uk: the new keys, sorted
            disc = np.argsort(first, kind="stable")           # sorted position -> discovery rank
            first = first[disc]
            new_keys = ck[first]
            new_rows = np.concatenate(cand_rows)[first] if sym is not None else new_keys
            new_parent = np.concatenate(cand_parent)[first]
            new_via = np.concatenate(cand_via)[first]
            del ck
            rank = np.empty(len(disc), np.int32)
            rank[disc] = np.arange(len(disc), dtype=np.int32)
            at = np.searchsorted(seen_sorted, uk)
            seen_sorted = np.insert(seen_sorted, at, uk)
            seen_ids = np.insert(seen_ids, at, first_new + rank)
            del uk, rank, at
        else:
            new_keys = new_rows = init_key[:0]
            new_parent = np.zeros(0, np.int32)
            new_via = np.zeros(0, np.int16)
        cand_keys = cand_rows = cand_parent = cand_via = None
        for lo in range(0, len(new_keys), _FRONTIER_CHUNK):
            block = packer.unpack(new_rows[lo:lo + _FRONTIER_CHUNK], width)
            if sym is not None:
                sym.check_free_slots(block)
            _check_states(model, state_props, block, first_new + lo, found)
        block = None
        if keep_edges and lv_src:
            # each chunk's destinations become ids, then one edge per distinct pair of the level
            dst_parts = []
            for dk in lv_dkey:
                pos = np.searchsorted(seen_sorted, dk)
                pos[pos >= len(seen_sorted)] = 0
                dst_parts.append(np.where(seen_sorted[pos] == dk, seen_ids[pos], -1).astype(np.int32))
            lv_dkey.clear()
            dst = np.concatenate(dst_parts)
            del dst_parts
            src = np.concatenate(lv_src)
            pair = (src.astype(np.int64) - base) * (first_new + len(new_keys) + 1) + dst + 1
            _, keep = np.unique(pair, return_index=True)
            del pair
            keep.sort()
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
    return StateSpace(
        model=model, symmetry=symmetry, complete=complete,
        parent=cat(parents, np.int32), via=cat(vias, np.int16), depth=cat(depths, np.int16),
        edge_src=cat(e_src, np.int32), edge_dst=cat(e_dst, np.int32), edge_inst=cat(e_inst, np.int16),
        edge_ret=cat(e_ret, np.int16), transitions=transitions, self_loops=self_loops,
        seconds=time.monotonic() - started, checked=tuple(p.id for p in mon.props), found=found,
        stopped="" if complete else stopped, sorted_keys=seen_sorted, order=seen_ids,
        row_keys=np.concatenate(row_key_parts) if row_key_parts is not None else None)


def _check_states(model: Model, state_props: list[VecProperty], block: np.ndarray, first_id: int,
                  found: dict[str, Finding]) -> None:
    if not block.shape[1]:
        return
    C = None
    for p in state_props:
        if p.id in found:
            continue
        if C is None:
            C = columns(model, block)
        hit = np.broadcast_to(np.asarray(p.fn(C)) == p.fires_when, (block.shape[1],))
        if hit.any():
            found[p.id] = Finding(first_id + int(np.argmax(hit)))



def verdicts(space: StateSpace, props: Iterable[Property]) -> list[Verdict]:
    """One verdict per property that applies to the space's model (see the module docstring);
    every counterexample and target trace is replayed and confirmed by the Python monitor."""
    model = space.model
    mon = Monitor(model, list(props))
    base = {"states": space.n_states, "transitions": space.transitions, "depth": space.max_depth,
            "symmetry": space.symmetry, "complete": space.complete, "seconds": round(space.seconds, 3)}
    if space.stopped:
        base["stopped"] = space.stopped
    out = []
    for p in mon.props:
        if p.id not in space.checked:
            raise ValueError(f"property {p.id} was not checked by this exploration")
        f = space.found.get(p.id)
        trace = None
        if f is not None:
            trace = space.trace_to(f.state, f.instance)
            if not mon.fires(trace, p.id):  # pragma: no cover - the two interpretations disagree
                raise AssertionError(f"explicit engine: {p.id} fired in the vectorised search but not "
                                     f"on replay of the trace ({len(trace)} steps)")
        if p.kind in ("always", "step", "undefined"):
            verdict = "violated" if f is not None else "holds" if space.complete else "unknown"
        else:  # witness
            verdict = "holds" if f is not None else "violated" if space.complete else "unknown"
        ev = dict(base)
        ev["checked_on"] = (f"all {space.n_states} states" if p.on == "state"
                            else f"all {space.transitions} transitions")
        if not space.complete and f is None:
            ev["checked_on"] = "a search cut short by its budget"
        if trace is not None:
            ev["trace_length"] = len(trace)
        note = ""
        if p.kind == "witness" and verdict == "violated":
            note = f"unreachable: no state or step of the {space.n_states} reachable ones reaches it"
        out.append(make_verdict(p, model.policy.name, "explicit", verdict,
                                p.expected(model.policy, model.scope), ev, trace, note))
    return out


def check(model: Model, props: Iterable[Property], symmetry: bool = False, budget: Budget | None = None,
          progress: Callable[[str], None] | None = None, keep_edges: bool = True) -> tuple[StateSpace, list[Verdict]]:
    """Explore ``model`` and judge ``props`` exhaustively: the state space and the verdicts."""
    props = list(props)
    space = explore(model, props, symmetry=symmetry, budget=budget, progress=progress, keep_edges=keep_edges)
    return space, verdicts(space, props)


def shortest_trace(model: Model, prop: Property, max_depth: int) -> Trace | None:
    """A shortest trace on which ``prop`` fires (violated, or its target reached), by a search of
    at most ``max_depth`` levels that stops at the first level where it fires; ``None`` if it
    does not fire within ``max_depth`` steps. For another engine's counterexample of length L,
    ``max_depth=L`` gives the shortest one (the issue's ratio 1.0)."""
    space = explore(model, [prop], budget=Budget(depth=max_depth), keep_edges=False, until_found=[prop.id])
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
    b = budget or Budget()
    b = Budget(states=b.states, seconds=b.seconds, depth=len(trace) - 1, memory=b.memory)
    space = explore(model, [prop], budget=b, keep_edges=False, until_found=[prop.id])
    f = space.found.get(prop.id)
    if f is not None:
        return space.trace_to(f.state, f.instance), "shortened"
    covered = space.complete or space.stopped.startswith("depth budget")
    return trace, "shortest" if covered else "unconfirmed"
