"""Writing the explicit engine's state graph to a file: GraphML, JSON (networkx node-link) or DOT.

docs/interface.md (``dmabuf-check explore``). Nodes are state ids (BFS order, 0 is
the initial state) with their depth and every state field; edges carry the action, its
arguments, the call as the kernel would spell it and the return value. A graph larger than the
format can usefully hold is refused with a message that says how large it is and what to do
instead (``--around TRACE --radius R`` writes the neighbourhood of one trace): DOT is meant for
Graphviz, which cannot lay out more than a few thousand edges readably; GraphML and node-link JSON
are read whole into memory by the tools that take them (networkx, Gephi, yEd), which stops being
useful around a million edges. Files are written atomically (a temporary file, then rename).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from model.constants import errno_name

from ..engines.explicit import GraphTooLarge, StateSpace
from .atomic import write_atomic

if TYPE_CHECKING:  # annotations only; imported where a graph is written
    import networkx as nx

__all__ = ["FORMATS", "LIMITS", "format_for", "write_graph", "write_networkx", "GraphTooLarge"]

FORMATS = {".graphml": "graphml", ".json": "json", ".dot": "dot", ".gv": "dot"}
LIMITS = {"graphml": 1_000_000, "json": 1_000_000, "dot": 5_000}   # edges


def format_for(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format named, or the one the file name's suffix implies."""
    if fmt is not None:
        if fmt not in LIMITS:
            raise ValueError(f"unknown graph format {fmt!r}; known: {', '.join(LIMITS)}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: cannot tell the graph format from the suffix {suffix or '(none)'!r}; "
                         f"use .graphml, .json or .dot (or --format)")
    return FORMATS[suffix]


def write_graph(space: StateSpace, path: str | os.PathLike, fmt: str | None = None,
                nodes=None, marks: dict[int, dict[str, Any]] | None = None) -> tuple[int, int]:
    """Write the graph (or the subgraph the ``nodes`` induce) to ``path``; ``marks`` adds node
    attributes (e.g. ``on_trace``). Returns (nodes, edges) written. :class:`GraphTooLarge` when
    the graph is over the format's limit."""
    fmt = format_for(path, fmt)
    limit = LIMITS[fmt]
    n_edges = space.n_edges if nodes is None else None
    if n_edges is not None and n_edges > limit:
        raise GraphTooLarge(_too_large(fmt, space.n_states, n_edges, limit))
    try:
        g = space.to_networkx(max_edges=limit, nodes=nodes, state_attrs=True)
    except GraphTooLarge as e:
        raise GraphTooLarge(f"{e} ({fmt} holds at most {limit}); write the neighbourhood of a trace "
                            f"with --around TRACE --radius R") from None
    for v, attrs in (marks or {}).items():
        if v in g:
            g.nodes[v].update(attrs)
    write_networkx(g, path, fmt)
    return g.number_of_nodes(), g.number_of_edges()


def _too_large(fmt: str, states: int, edges: int, limit: int) -> str:
    return (f"the state graph has {states} states and {edges} edges; a {fmt} file is useful up to "
            f"{limit} edges: write the neighbourhood of a trace instead (--around TRACE --radius R)")


def write_networkx(g: nx.DiGraph, path: str | os.PathLike, fmt: str) -> None:
    """Write a networkx graph whose attributes are scalars, atomically."""
    import networkx as nx  # heavy (0.13 s to import): only writing a graph needs it, not every command's start-up

    writers: dict[str, Callable[[nx.DiGraph, Any], None]] = {
        "graphml": lambda g, f: nx.write_graphml(g, f),
        "json": lambda g, f: f.write(json.dumps(nx.node_link_data(g, edges="edges"), indent=None).encode()),
        "dot": lambda g, f: f.write(to_dot(g).encode()),
    }
    _atomic(path, lambda f: writers[fmt](g, f))


def to_dot(g: nx.DiGraph) -> str:
    """Graphviz DOT text (no pydot or pygraphviz needed): nodes labelled by id and depth (with the
    state's fields in the tooltip), nodes on a trace filled, edges labelled ``call = ret``."""
    def q(s: Any) -> str:
        return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = ["digraph dmabuf {", "  rankdir=LR;", '  node [shape=box, fontname="monospace", fontsize=9];',
             '  edge [fontname="monospace", fontsize=8];']
    for k, v in g.graph.items():
        lines.append(f"  // {k} = {v}")
    for n, d in g.nodes(data=True):
        label = f"{n}\ndepth {d.get('depth', '?')}"
        extra = ""
        if d.get("on_trace"):
            label += f"\ntrace step {d.get('trace_index')}"
            extra = ', style=filled, fillcolor="lightblue"'
        if d.get("fires"):
            label += f"\n{d['fires']}"
            extra = ', style=filled, fillcolor="salmon"'
        tip = ", ".join(f"{k}={int(v)}" for k, v in d.items()
                        if k not in ("depth", "on_trace", "trace_index", "fires"))
        lines.append(f"  {n} [label={q(label)}, tooltip={q(tip)}{extra}];")
    for u, v, d in g.edges(data=True):
        lines.append(f"  {u} -> {v} [label={q(d.get('call', '') + ' = ' + errno_name(int(d.get('ret', 0))))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _atomic(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    write_atomic(path, write, binary=True)
