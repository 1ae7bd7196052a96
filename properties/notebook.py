"""What the notebooks call: load a trace or a litmus scenario, show it as tables and pictures,
change a step and run it again, and look at the state graph around it.

docs/design.md ("Notebooks are thin": they import the package and define no logic). Everything a
notebook shows is computed here or in the modules this one imports (``properties.scenarios.itf``,
``properties.scenarios.replay``, ``properties.scenarios.litmus``, ``properties.report.diagrams``). Tables are
:class:`HtmlTable` values: plain rows (a list of dicts) that render as HTML in a notebook and as
text elsewhere.
"""
from __future__ import annotations

import html
import importlib
import importlib.util
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import networkx as nx

from model.actions import ACTIONS
from model.catalog import CATALOG, get_policy
from model.machine import Model
from model.policy import REVISIONS, ExporterPolicy, KNOBS
from model.scope import get_scope
from model.state import FIELDS, Schema

from .claims import load_claims
from .index import PROPERTIES
from .monitor import Monitor, Replayed
from .property import PARTIES
from .report import diagrams
from .scenarios.itf import read_itf
from .scenarios.litmus import (LIBRARY, LitmusError, LitmusRunner, collect, display_fires, format_line,
                               load_litmus, parse_step)
from .scenarios.replay import replay_itf
from .trace import ReplayError, Trace, render, replay

__all__ = [
    "HtmlTable", "Explored", "Picture", "load_trace", "litmus", "library", "library_table", "edit",
    "on_exporter", "steps_table", "state_table", "state_at", "sequence_diagram", "neighbourhood",
    "draw_neighbourhood", "fields_table", "actions_table", "properties_by_party", "claims_table",
    "exporters_table", "knob_diff", "fixme_synthesis", "SynthesisView",
]


@dataclass(frozen=True)
class HtmlTable:
    """Rows (a list of dicts) that show as an HTML table in a notebook and as text elsewhere."""

    rows: list[dict[str, Any]]
    html: str = field(repr=False)
    title: str = ""

    def _repr_html_(self) -> str:
        head = f"<p><b>{html.escape(self.title)}</b></p>" if self.title else ""
        return head + self.html

    def __str__(self) -> str:
        if not self.rows:
            return self.title or "(empty)"
        cols = list(self.rows[0])
        lines = [self.title] if self.title else []
        lines.append(" | ".join(cols))
        lines += [" | ".join(str(r.get(c, "")) for c in cols) for r in self.rows]
        return "\n".join(lines)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"<table: {len(self.rows)} rows{': ' + self.title if self.title else ''}>"


def _table(rows: list[dict[str, Any]], title: str = "", columns: Sequence[str] | None = None) -> HtmlTable:
    cols = list(columns or (rows[0].keys() if rows else []))
    out = ["<table><tr>" + "".join(diagrams._th(html.escape(c)) for c in cols) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(diagrams._td(html.escape(str(r.get(c, "")))) for c in cols) + "</tr>")
    out.append("</table>")
    return HtmlTable(rows, "".join(out), title)


# --- a trace to explore ------------------------------------------------------------------------

@dataclass(frozen=True)
class Explored(Replayed):
    """A trace on its model, with the properties that fire in the initial state and at each step
    (``Replayed``), a title and where it came from."""

    title: str = ""
    source: str = ""
    verdict: str = ""               # a litmus file's "Ok ..." / "No ..." line, or the replay's agreement

    def __len__(self) -> int:
        return len(self.trace)

    def calls(self) -> list[str]:
        return [s.call() for s in self.trace.steps]

    def __repr__(self) -> str:
        return f"<{self.title}: {len(self.trace)} steps on {self.model.policy.name}; print() it for the calls>"

    def shown(self) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        """What fires, as renderings show it (no witnesses, state properties at their onset)."""
        return display_fires(self.fired_init, self.fired)

    def __str__(self) -> str:
        init, fired = self.shown()
        head = f"{self.title}  [exporter {self.model.policy.name}, scope {self.model.scope.name}]"
        if init:
            head += "\n    initially fires: " + ", ".join(init)
        return head + "\n" + render(self.model, self.trace, fired)

    def _repr_html_(self) -> str:
        return (f"<p><b>{html.escape(self.title)}</b> (exporter {html.escape(self.model.policy.name)}, "
                f"scope {self.model.scope.name}, {len(self.trace)} steps)"
                + (f"<br>{html.escape(self.verdict)}" if self.verdict else "") + "</p>"
                + steps_table(self)._repr_html_())


def _explore(model: Model, trace: Trace, title: str, source: str = "", verdict: str = "") -> Explored:
    run = Monitor(model, PROPERTIES).replayed(trace)
    return Explored(model, trace, run.fired_init, run.fired, title=title, source=source, verdict=verdict)


def load_trace(path: str | Path) -> Explored:
    """Load an ITF trace file and recompute it on its model (as ``dmabuf-check replay`` does)."""
    out = replay_itf(read_itf(path))
    agree = ("agrees with the file" if out.ok else "DISAGREES with the file: " + "; ".join(out.disagreements))
    return Explored(out.model, out.trace, out.fired_init, out.fired,
                    title=out.itf.meta.get("description") or Path(path).name, source=str(path), verdict=agree)


_RUNNER = LitmusRunner()


def library(name: str) -> Path:
    """The path of a litmus file of the library, by name (``"kmap-after-end"``)."""
    p = LIBRARY / (name if name.endswith(".litmus.toml") else name + ".litmus.toml")
    if not p.exists():
        raise FileNotFoundError(f"no litmus file {p.name} in {LIBRARY}")
    return p


def litmus(name_or_path: str | Path) -> Explored:
    """Run a litmus file (a library name or a path) and explore its run."""
    p = Path(name_or_path)
    if not p.exists():
        p = library(str(name_or_path))
    out = _RUNNER.run(load_litmus(p))
    return Explored(out.model, out.trace, out.fired_init, out.fired, title=out.test.title, source=str(p),
                    verdict=format_line(out))


def library_table() -> HtmlTable:
    """Every litmus file of the library with its verdict."""
    rows = []
    for p in collect([LIBRARY]):
        out = _RUNNER.run(load_litmus(p))
        rows.append({"file": p.name, "verdict": "Ok" if out.ok else "No", "exporter": out.test.policy.name,
                     "claims": ", ".join(out.test.claims), "title": out.test.title})
    return _table(rows, f"The litmus library ({len(rows)} files)")


def _run_calls(model: Model, calls: Iterable[str]) -> Trace:

    parsed = ((name, dict(args)) for name, args in map(parse_step, calls))
    try:
        return replay(model, parsed, why=lambda state, inst: model.why_disabled(state, inst.index))
    except ReplayError as e:
        raise LitmusError(str(e)) from None


def edit(ex: Explored, step: int, call: str | None = None, insert: bool = False) -> Explored:
    """The same trace with step ``step`` (1-based) replaced by ``call`` (a litmus-style call such
    as ``"dma_buf_begin_cpu_access(buf=0, direction=DMA_FROM_DEVICE)"``), deleted (``call=None``)
    or, with ``insert=True``, ``call`` inserted before it; run again on the same model."""
    calls = ex.calls()
    if not 1 <= step <= len(calls) + (1 if insert else 0):
        raise IndexError(f"the trace has steps 1..{len(calls)}")
    if insert:
        if call is None:
            raise ValueError("insert needs a call")
        calls.insert(step - 1, call)
        what = f"step {step} inserted: {call}"
    elif call is None:
        what = f"step {step} deleted: {calls.pop(step - 1)}"
    else:
        what = f"step {step}: {calls[step - 1]} -> {call}"
        calls[step - 1] = call
    return _explore(ex.model, _run_calls(ex.model, calls), f"{ex.title} ({what})", ex.source)


def on_exporter(ex: Explored, exporter: str | ExporterPolicy) -> Explored:
    """The same calls on another exporter policy (a catalog name or a policy)."""
    pol = get_policy(exporter) if isinstance(exporter, str) else exporter
    model = Model(pol, ex.model.scope, ex.model.revision)
    return _explore(model, _run_calls(model, ex.calls()), f"{ex.title} (on {pol.name})", ex.source)


# --- views -------------------------------------------------------------------------------------

def steps_table(ex: Explored) -> HtmlTable:
    """One row per step: actor, call, return, changed fields (highlighted), events, what fires."""
    init, fired = ex.shown()
    rows = diagrams.trace_rows(ex.model, ex.trace, fired)
    title = f"initially fires: {', '.join(init)}" if init else ""
    return HtmlTable(rows, diagrams.trace_html(rows), title)


def state_table(ex: Explored, groups: Sequence[str] | None = None, only_changed: bool = True) -> HtmlTable:
    """Fields by step (column 0 is the initial state), the cells where a field changed
    highlighted; ``groups`` picks field groups, e.g. ``["cache", "cache_ok", "mem_ok"]``."""
    rows = diagrams.state_rows(ex.model, ex.trace, groups, only_changed)
    return HtmlTable(rows, diagrams.state_html(rows, len(ex.trace), ex.calls()))


def state_at(ex: Explored, step: int) -> HtmlTable:
    """Every field group after ``step`` (0: the initial state), the changed ones highlighted."""
    states = ex.trace.states()
    if not 0 <= step < len(states):
        raise IndexError(f"the trace has states 0..{len(states) - 1}")
    now = ex.model.schema.as_dict(states[step])
    before = ex.model.schema.as_dict(states[step - 1]) if step else now
    rows = []
    out = ["<table><tr>" + "".join(diagrams._th(h) for h in ("field", "value", "meaning")) + "</tr>"]
    for spec in (f for f in FIELDS if f.name in now):
        changed = now[spec.name] != before[spec.name]
        rows.append({"field": spec.name, "value": now[spec.name], "changed": changed})
        mark = diagrams._CHG if changed else ""
        out.append("<tr>" + diagrams._td(spec.name, mark) + diagrams._td(html.escape(str(now[spec.name])), mark)
                   + diagrams._td(html.escape(spec.doc)) + "</tr>")
    out.append("</table>")
    call = "the initial state" if step == 0 else f"after step {step}: {ex.calls()[step - 1]}"
    return HtmlTable(rows, "".join(out), call)


@dataclass(frozen=True)
class Picture:
    """A matplotlib Figure that a notebook shows as a PNG whatever the plotting backend
    (``figure`` is the Figure itself)."""

    figure: Any

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()

    def savefig(self, *args: Any, **kwargs: Any) -> None:
        self.figure.savefig(*args, **kwargs)

    def __repr__(self) -> str:
        return "<picture>"


def sequence_diagram(ex: Explored) -> Picture:
    """The trace as a sequence diagram, one lane per actor (``.figure`` is the matplotlib Figure)."""
    init, fired = ex.shown()
    return Picture(diagrams.sequence_diagram(ex.model, ex.trace, fired, ex.title, init))


def neighbourhood(ex: Explored, per_state: int = 6):
    """The state graph around the trace (a networkx DiGraph): the trace's states (nodes
    ``("trace", i)``, so a step that changes nothing still shows) and, for each, up to
    ``per_state`` successors off the trace (nodes are the states; those where a property fires
    come first). Nodes carry ``on_trace``, ``index`` (position on the trace), ``fires`` and
    ``state``; edges carry ``call``."""
    model = ex.model
    mon = Monitor(model, PROPERTIES)
    kinds = {p.id: p.kind for p in PROPERTIES}
    states = ex.trace.states()
    g = nx.DiGraph()
    for i, s in enumerate(states):
        g.add_node(("trace", i), on_trace=True, index=i, fires=(), state=s)
    for i, st in enumerate(ex.trace.steps):
        g.add_edge(("trace", i), ("trace", i + 1), call=st.call(), on_trace=True)
    on_trace = set(states)
    for i, s in enumerate(states):
        cands = []
        seen = set()
        for idx, nxt, ret, ev, buf in model.successors(s):
            if nxt == s or nxt in on_trace or nxt in seen:
                continue
            seen.add(nxt)
            f = [p for p in mon.bad_step(idx, s, nxt, ret, ev, buf) + mon.hit_step(idx, s, nxt, ret, ev, buf)
                 + mon.bad_state(nxt) + mon.hit_state(nxt) if kinds[p] != "witness"]
            cands.append((not f, str(model.instances[idx]), nxt, tuple(f)))
        cands.sort(key=lambda c: (c[0], c[1]))
        for _, call, nxt, f in cands[:per_state]:
            if nxt not in g:
                g.add_node(nxt, on_trace=False, index=i, fires=f, state=nxt)
            g.add_edge(("trace", i), nxt, call=call, on_trace=False)
    return g


def draw_neighbourhood(ex: Explored, g=None, per_state: int = 6) -> Picture:
    """Draw :func:`neighbourhood`: the trace left to right (blue, red where a property fires),
    the other successors of each state fanned out above and below (grey, red where a property
    fires), with the call of each trace edge. Returns a matplotlib Figure."""
    g = g if g is not None else neighbourhood(ex, per_state)
    kinds = {p.id: p.kind for p in PROPERTIES}
    on_fire = {i: any(kinds[p] != "witness" for p in f) for i, f in enumerate([ex.fired_init, *ex.fired])}
    pos = {}
    fan: dict[int, int] = {}
    for node, d in g.nodes(data=True):
        if d["on_trace"]:
            pos[node] = (2.0 * d["index"], 0.0)
    for node, d in sorted(((n, d) for n, d in g.nodes(data=True) if not d["on_trace"]),
                          key=lambda nd: (nd[1]["index"], nd[1]["fires"] == ())):
        k = fan.get(d["index"], 0)
        fan[d["index"]] = k + 1
        level = k // 2 + 1
        pos[node] = (2.0 * d["index"] + 0.6, level * (1 if k % 2 == 0 else -1))
    n = len(ex.trace)
    from matplotlib.figure import Figure  # optional: the notebooks extra, needed only to draw

    fig = Figure(figsize=(min(2.0 + 1.4 * (n + 1), 16), 4.2), dpi=80)
    ax = fig.add_subplot(1, 1, 1)
    ax.axis("off")
    trace_nodes = [v for v, d in g.nodes(data=True) if d["on_trace"]]
    other = [v for v, d in g.nodes(data=True) if not d["on_trace"]]
    nx.draw_networkx_edges(g, pos, ax=ax, edgelist=[(a, b) for a, b, d in g.edges(data=True) if not d["on_trace"]],
                           edge_color="#bbbbbb", arrows=True, arrowsize=8, width=0.7)
    nx.draw_networkx_edges(g, pos, ax=ax, edgelist=[(a, b) for a, b, d in g.edges(data=True) if d["on_trace"]],
                           edge_color="#1f3b73", arrows=True, arrowsize=12, width=2.0)
    nx.draw_networkx_nodes(g, pos, ax=ax, nodelist=other, node_size=60,
                           node_color=["#d62728" if g.nodes[v]["fires"] else "#c7c7c7" for v in other])
    nx.draw_networkx_nodes(g, pos, ax=ax, nodelist=trace_nodes, node_size=260,
                           node_color=["#d62728" if on_fire.get(g.nodes[v]["index"]) else "#4c72b0"
                                       for v in trace_nodes])
    nx.draw_networkx_labels(g, pos, ax=ax, labels={v: str(g.nodes[v]["index"]) for v in trace_nodes},
                            font_size=8, font_color="white")
    for i, st in enumerate(ex.trace.steps):
        ax.text(2.0 * i + 1.0, -0.22, st.action.replace("dma_buf_", ""), fontsize=7, ha="center",
                va="top", rotation=20, color="#1f3b73")
    ax.set_title(f"{ex.title}: the trace (numbered) and up to {per_state} other successors of each "
                 f"state; red: a property fires", fontsize=9)
    return Picture(fig)


# --- the model at a glance ---------------------------------------------------------------------

def fields_table(scope: str = "small") -> HtmlTable:
    """The state's field groups: shape in the scope, sort, range, ghost or kernel state, meaning."""
    sc = get_scope(scope)
    rows = []
    for f in FIELDS:
        shape = "x".join(str(getattr(sc, d)) for d in f.dims)
        rows.append({"field": f.name, "indexed by": ", ".join(f.dims), "shape": shape,
                     "values": "bool" if f.sort == "bool" else f"0..{f.hi(sc)}",
                     "kept by": "ghost (judges the docs)" if f.ghost else "kernel",
                     "meaning": f.doc + (f" (from {f.since})" if f.since else "")})
    return _table(rows, f"The state at scope {scope}: {len(rows)} field groups, {Schema(sc, REVISIONS[-1]).width} "
                        f"fields (at {REVISIONS[-1]}; a field of a later revision says so)")


def actions_table(revision: str = "v4.11") -> HtmlTable:
    """The actions: actor, parameters, what they model."""
    rows = [{"action": a.name, "actor": a.actor, "parameters": ", ".join(a.params), "meaning": a.doc}
            for a in ACTIONS.values() if revision in a.revisions]
    return _table(rows, f"The actions at revision {revision} ({len(rows)})")


def properties_by_party(one_each: bool = True) -> HtmlTable:
    """Properties grouped by the party responsible (one per party with ``one_each``), with the
    claim they formalise."""
    claims = load_claims()
    rows = []
    for party in PARTIES:
        ps = [p for p in PROPERTIES if p.party == party]
        for p in ps[:1] if one_each else ps:
            c = claims.get(p.claims[0])
            rows.append({"party": party, "property": p.id, "kind": p.kind, "what": p.doc,
                         "claim": p.claims[0], "claim text": c.text if c else ""})
    return _table(rows, "One property per party" if one_each else "Properties by party")


def claims_table(ids: Iterable[str]) -> HtmlTable:
    """Claims of spec/claims.md by ID, with their source and who carries them."""
    claims = load_claims()
    rows = [{"claim": i, "source": claims[i].source, "who": claims[i].who, "text": claims[i].text} for i in ids]
    return _table(rows)


def exporters_table(names: Iterable[str] | None = None) -> HtmlTable:
    """Exporter policies: description and the claims each is expected to break."""
    pols = [get_policy(n) for n in names] if names is not None else list(CATALOG.values())
    rows = [{"exporter": p.name, "breaks": ", ".join(p.breaks), "description": p.description} for p in pols]
    return _table(rows, "Exporter policies")


def knob_diff(*names: str) -> HtmlTable:
    """The knobs on which the named policies differ."""
    pols = [get_policy(n) for n in names]
    rows = []
    for k in KNOBS:
        vals = [getattr(p, k) for p in pols]
        if len(set(map(repr, vals))) > 1:
            rows.append({"knob": k, **{p.name: v for p, v in zip(pols, vals)}, "meaning": KNOBS[k].doc})
    return _table(rows, "Knobs that differ: " + " vs ".join(names))


def fixme_synthesis(scope: str = "tiny", depth: int = 8) -> Any:
    """The Z3 policy-synthesis query on the FIXME (``properties.engines.synthesis.fixme_query``),
    with and without kernel kmap users: which exporter policies keep FIXME-NO-USER-PIN together
    with FIXME-KMAP-PINNED and KCPU-ALWAYS-SUCCEED. A note instead if the synthesis engine is
    not part of this checkout."""
    if importlib.util.find_spec("properties.engines.synthesis") is None:
        return _Note("The synthesis engine (properties/engines/synthesis.py) is not part of this "
                     "checkout; the traces below show the FIXME from the two sides instead.")
    synthesis = importlib.import_module("properties.engines.synthesis")
    return SynthesisView(tuple(synthesis.fixme_query(kmap_users, scope=scope, depth=depth)
                               for kmap_users in (True, False)))


@dataclass(frozen=True)
class SynthesisView:
    """Synthesis answers, shown as: the answer, how many policies keep both sides, the split by
    ``swappable``, which catalog exporters keep both, and the classes of policies that keep both
    or fail (with the property a refuting trace violates)."""

    results: tuple[Any, ...]

    def _rows(self, r: Any, which: str) -> list[dict[str, Any]]:
        classes = r.satisfying if which == "keeps both" else r.failing
        return [{"policies with": c.describe(), "outcome": which if which == "keeps both" else
                 (", ".join(c.violates) + " violated" if c.violates else f"{c.unreached} never reached")}
                for c in classes]

    def _summary(self, r: Any) -> list[str]:
        real = ("i915", "omapdrm", "udmabuf", "system-heap", "coherent")
        return [f"answer: {r.status} (up to depth {r.depth}, scope {r.scope.name}, {r.seconds:.1f} s, "
                f"{r.refuting_traces} refuting traces)",
                f"policies keeping both: {r.count if r.count is not None else 'not counted'}",
                "by swappable storage: " + ", ".join(f"{k}: {v}" for k, v in r.partitions.items()),
                "real drivers: " + ", ".join(f"{n} {r.catalog[n]}" for n in real if n in r.catalog)]

    def __str__(self) -> str:
        out = []
        for r in self.results:
            out += [r.title, *("  " + line for line in self._summary(r))]
            out += [f"  {row['outcome']}: {row['policies with']}"
                    for which in ("keeps both", "fails") for row in self._rows(r, which)]
        return "\n".join(out)

    def __repr__(self) -> str:
        return "<synthesis answers: " + "; ".join(f"{r.title}: {r.status}" for r in self.results) + ">"

    def _repr_html_(self) -> str:
        parts = []
        for r in self.results:
            parts.append(f"<h4>{html.escape(r.title)}</h4><ul>"
                         + "".join(f"<li>{html.escape(line)}</li>" for line in self._summary(r)) + "</ul>")
            rows = self._rows(r, "keeps both") + self._rows(r, "fails")
            parts.append(_table(rows, columns=("policies with", "outcome")).html)
        return "".join(parts)

    def refutation(self, violates: str, query: int = 0) -> Explored:
        """The trace that refutes the first failing class of policies violating property
        ``violates`` (query 0: with kmap users, 1: without), run on that class's example policy."""
        r = self.results[query]
        for c in r.failing:
            if violates in c.violates and c.trace is not None:
                model = Model(c.example, r.scope, "v4.11")
                return _explore(model, c.trace, f"{violates}: refutes every policy with {c.describe()}")
        raise ValueError(f"no failing class of {r.title!r} violates {violates}")


@dataclass(frozen=True)
class _Note:
    text: str

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<p><i>{html.escape(self.text)}</i></p>"

