"""``dmabuf-check explore``: the explicit-state engine on the command line (docs/interface.md).

For each exporter: enumerate the reachable states of the scope (default ``tiny``) breadth first,
judge every property on every reachable state and transition (``holds`` means checked on all of
them; a search cut short by ``--max-states``/``--max-seconds`` is ``unknown``), print the
property table, the shortest counterexamples and the stuck states (states from which a buffer can
never be released or a pin never dropped, with a shortest trace to one), and optionally the
coverage of a default Hypothesis campaign (``--coverage``). ``--graph PATH`` writes the state graph
(GraphML, node-link JSON or DOT, by suffix or ``--format``); ``--around TRACE --radius R`` writes
instead the states within ``R`` steps of each state of an ITF trace, with the trace marked.
``--cluster tcp://HOST:PORT`` runs the search on a Dask cluster, the visited set partitioned
across its workers (:mod:`properties.engines.distributed`; edges counted, not kept).

Exit status as for ``campaign``: 0 when every outcome is as expected, 1 when not (an ``unknown``
is not as expected), 2 for bad input.
"""
from __future__ import annotations

import argparse
import time
from typing import Any

from model.machine import Model

from .. import interrupt
from ..engines.distributed import DistributedEngine
from ..engines.explicit import Budget as SearchBudget, ExplicitEngine, GraphTooLarge, explore, physical_memory
from ..engines.interface import Budget
from ..index import PROPERTIES
from ..judge import claim_checks, split_exportable
from ..report.atomic import write_report
from ..report.graph_export import format_for, write_graph
from ..runs.campaign import CampaignResult, format_table
from ..runs.cluster import ClusterError, DaskWorkers
from ..runs.coverage import campaign_coverage
from ..runs.runner import plan_per_exporter, run
from ..runs.workers import InlineWorkers
from ..scenarios.itf import ItfError, read_itf, trace_filename, write_itf, write_verdict_traces
from ..scenarios.replay import replay_itf
from ..trace import render
from .common import (EXAMPLES, RADIUS, SECONDS, STATES, STEPS, UsageError, memory_size, progress, resolve_exporters,
                     scope_arg, warn_not_exportable)

__all__ = ["add_parser", "cmd_explore"]

_DEFAULT_MAX_STATES = 20_000_000   # about 1 KB per state at the peak with edges kept (docs/explicit.md): every tiny graph


def add_parser(sub: Any, common: Any) -> argparse.ArgumentParser:
    e = sub.add_parser("explore", help="the explicit-state engine: every reachable state, exhaustive "
                       "checks, stuck states, graph export")
    common(e)
    e.set_defaults(scope=None)
    e.add_argument("--symmetry", action="store_true",
                   help="merge states that differ only in interchangeable slots and buffers")
    e.add_argument("--reduce", choices=("dead", "none", "por", "dead+por"), default=None,
                   help="dead (the default; none with --coverage, which counts concrete states, and with "
                        "--cluster): merge states that differ only in fields no continuation reads before "
                        "writing them (the same verdicts, shortest traces and stuck states; counts are of "
                        "merged states); none: every state; por, dead+por: also follow stubborn sets only "
                        "(partial-order reduction: the same verdicts and findings, traces shortened by a search "
                        "without it, stuck states from a search without it; not with --symmetry, --coverage "
                        "or --cluster)")
    e.add_argument("--max-states", type=STATES, default=_DEFAULT_MAX_STATES,
                   help=f"stop after this many states: what is not found is unknown (1 to 10**12; default "
                   f"{_DEFAULT_MAX_STATES})")
    e.add_argument("--max-seconds", type=SECONDS, default=None, help="stop after this many seconds (1 to 1,000,000)")
    e.add_argument("--max-memory", type=memory_size, default=None, metavar="SIZE",
                   help="stop when the process's resident memory passes SIZE (512M, 8G; 1M to 1024T; default: 3/4 of "
                        "the machine's memory): what is not found is unknown")
    e.add_argument("--no-stuck", action="store_true", help="skip the stuck-state analysis")
    e.add_argument("--graph", metavar="PATH", help="write the state graph (.graphml, .json or .dot)")
    e.add_argument("--format", choices=("graphml", "json", "dot"), help="the graph format (default: by suffix)")
    e.add_argument("--around", metavar="TRACE", help="with --graph: write only the neighbourhood of this "
                   "ITF trace")
    e.add_argument("--radius", type=RADIUS, default=2, help="with --around: steps from the trace (1 to 100; default 2)")
    e.add_argument("--traces", metavar="DIR", help="write every trace found (shortest counterexamples, "
                   "targets reached, stuck states) as an ITF file in DIR")
    e.add_argument("--cluster", metavar="tcp://HOST:PORT", help="run the search on this Dask scheduler: the "
                   "visited set partitioned across its workers (no stuck states, --graph or --coverage)")
    e.add_argument("--coverage", action="store_true", help="also run a Hypothesis campaign (--examples, "
                   "--steps, --seed) and report the fraction of the graph it visited")
    e.add_argument("--examples", type=EXAMPLES, default=300, help="with --coverage: Hypothesis examples "
                   "(1 to 1,000,000; default 300)")
    e.add_argument("--steps", type=STEPS, default=30, help="with --coverage: steps per example (1 to 10,000; default 30)")
    e.set_defaults(func=cmd_explore)
    return e


def cmd_explore(a: argparse.Namespace) -> int:
    if a.around is not None and a.graph is None:
        raise UsageError("explore: --around needs --graph PATH (where to write the neighbourhood)")
    if a.graph is not None:
        try:
            format_for(a.graph, a.format)
        except ValueError as e:
            raise UsageError(f"explore: --graph: {e}") from None
    if a.around is not None:
        if a.cluster:
            raise UsageError("explore: --around searches near one trace on this machine: leave out --cluster")
        return _around(a)
    return _explore(a)


def _explore(a: argparse.Namespace) -> int:
    scope = scope_arg(a.scope or "tiny")
    exporters = resolve_exporters(a.exporter, a.revision)
    warn_not_exportable(exporters, a.revision)
    exporters, refused = split_exportable(exporters, a.revision)   # listed, never run
    if a.graph is not None and len(exporters) != 1:
        raise UsageError("explore: --graph writes one exporter's graph: name it with --exporter")
    if a.cluster and (a.graph is not None or a.coverage):
        raise UsageError("explore: --cluster counts the graph's edges, it does not keep them: leave out "
                         "--graph and --coverage")
    if a.symmetry and a.coverage:
        raise UsageError("explore: --coverage counts concrete states: leave out --symmetry")
    if a.cluster and a.reduce == "dead":
        raise UsageError("explore: --cluster searches every state (no reduction there yet): leave out --reduce dead")
    if a.reduce in ("por", "dead+por") and (a.symmetry or a.coverage or a.cluster):
        raise UsageError(f"explore: --reduce {a.reduce} (partial-order reduction) is not sound here with "
                         "--symmetry, --coverage or --cluster: leave them out or use --reduce dead")
    if a.reduce is None:
        a.reduce = "none" if a.coverage or a.cluster else "dead"
    memory = a.max_memory if a.max_memory is not None else _default_memory()
    budget = Budget(states=a.max_states, seconds=a.max_seconds, memory=memory)
    result = CampaignResult("explore", a.revision, scope, a.seed, "explicit",
                            {"states": a.max_states, "seconds": a.max_seconds, "memory": memory,
                             "symmetry": a.symmetry, "reduce": a.reduce},
                            list(exporters), not_exportable=refused)
    started = time.monotonic()
    models: dict[str, Model] = {}
    spaces: list[dict[str, Any]] = []
    stuck_lines: list[str] = []
    stuck_json: list[dict[str, Any]] = []
    cover_lines: list[str] = []
    graph_space = []
    engine = ExplicitEngine(symmetry=a.symmetry, keep_edges=not a.no_stuck or a.graph is not None,
                            stuck=not a.no_stuck, reduce=a.reduce)
    if a.cluster:
        try:   # the address, the scheduler and its workers' sources, checked before the first policy
            DaskWorkers(a.cluster).stop(cancel=False)
        except ClusterError as e:
            raise UsageError(str(e)) from None
        engine = DistributedEngine(a.cluster, symmetry=a.symmetry)
    tasks = plan_per_exporter(exporters, scope, a.revision, engine, [p.id for p in PROPERTIES], budget)
    n = len(tasks)

    def on_result(r, running: int) -> None:
        i = r.index + 1
        pol = tasks[r.index].exporter
        res = r.result
        space = res.space
        model = models[pol.name] = space.model
        summary = {"exporter": pol.name, **res.summary}
        spaces.append(summary)
        progress(f"[{i}/{n}] {pol.name}: {_space_line(summary)}")
        for f in res.extras.get("stuck", ()):
            stuck_json.append({"exporter": pol.name, **f.to_json(), "_trace": f.trace})
            stuck_lines.append(f"- {pol.name}: {f.goal} [{', '.join(f.claims)}]: {f.stuck} of {f.pending} states with the "
                               f"obligation pending are stuck ({f.doc}); shortest path "
                               f"({len(f.trace)} steps):")
            stuck_lines.append(_indent(_render(model, f.trace), "  "))
        if a.coverage:
            if not space.complete:
                progress(f"{pol.name}: no coverage: the exploration was cut short")
            else:
                _, cov = campaign_coverage(model, PROPERTIES, a.examples, a.seed, a.steps, space=space)
                cover_lines.append("- " + cov.line())
                summary["coverage"] = cov.to_json()
        result.verdicts += r.verdicts
        result.claim_checks += claim_checks(pol, r.verdicts, scope, a.revision)
        if a.graph is not None:
            graph_space.append(space)
        res.space = None

    workers = InlineWorkers(keep_space=True, progress=progress,
                            announce=lambda t: progress(f"[{t.index + 1}/{n}] {t.exporter.name} ..."))
    out = run(tasks, workers, on_result=on_result)
    if out.stopped:
        result.interrupted = True
        progress("interrupted: writing what was found")
    graph_space = graph_space[0] if graph_space else None
    result.seconds = time.monotonic() - started
    text = format_table(result, models).split("\n", 1)[1]
    print(f"dmabuf-check explore: revision {a.revision}, scope {scope.name}, engine explicit (every reachable "
          f"state), symmetry {'on' if a.symmetry else 'off'}, reduction {a.reduce}"
          + (f", on the Dask cluster at {a.cluster}" if a.cluster else ""))
    print("\n".join(f"{s['exporter']}: {_space_line(s)}" for s in spaces))
    print(text)
    por_note = (" (from a search without partial-order reduction, which does not keep them)"
                if a.reduce.endswith("por") else "")
    if stuck_lines:
        print(f"\nStuck states (no path from them discharges the obligation){por_note}:")
        print("\n".join(stuck_lines))
    elif a.cluster and not a.no_stuck and spaces:
        print("\nStuck states: not analysed (the distributed search counts the edges, it does not keep them)")
    elif not a.no_stuck and spaces:
        print("\nStuck states: none (from every reachable state the buffer can be released and every pin dropped)"
              + por_note)
    if cover_lines:
        print(f"\nCoverage of the reachable graph by a Hypothesis campaign ({a.examples} examples x "
              f"{a.steps} steps, seed {a.seed}):")
        print("\n".join(cover_lines))
    if a.traces:
        written = write_verdict_traces(result.verdicts, models, a.traces, a.seed)
        for s in stuck_json:
            model = models[s["exporter"]]
            written.append(write_itf(f"{a.traces}/{trace_filename(s['exporter'], 'stuck-' + s['goal'])}",
                                     model, s.pop("_trace"), engine="explicit",
                                     description=f"{s['exporter']}: {s['doc']} (stuck state)"))
        progress(f"{len(written)} ITF traces written to {a.traces}")
    for s in stuck_json:
        s.pop("_trace", None)
    if a.json:
        data = result.to_json()
        data["state_spaces"] = spaces
        data["stuck"] = stuck_json
        progress(f"report written to {write_report(data, a.json)}")
    if graph_space is not None:
        try:
            n, m = write_graph(graph_space, a.graph, a.format)
        except GraphTooLarge as e:
            raise UsageError(f"explore: --graph {a.graph}: {e}") from None
        progress(f"graph written to {a.graph} ({n} states, {m} edges)")
    if result.interrupted:
        return interrupt.exit_status()
    return 1 if result.mismatches else 0


def _around(a: argparse.Namespace) -> int:
    try:
        itf = read_itf(a.around)
        policy = None
        if a.exporter:
            pols = resolve_exporters(a.exporter, a.revision)
            if len(pols) != 1:
                raise UsageError("explore: --around takes at most one --exporter")
            policy = pols[0]
        out = replay_itf(itf, policy)
    except ItfError as e:
        raise UsageError(str(e)) from None
    model, trace = out.model, out.trace
    if a.scope is not None and scope_arg(a.scope) != model.scope:
        raise UsageError(f"explore: {a.around} was recorded in scope {model.scope.name}, not {a.scope}")
    states = trace.states()
    space = explore(model, (), symmetry=a.symmetry,
                    budget=SearchBudget(states=a.max_states, seconds=a.max_seconds, depth=a.radius),
                    roots=states, reduce=a.reduce or "dead")
    ids = space.lookup(states)
    marks: dict[int, dict[str, Any]] = {}
    for i, v in enumerate(ids.tolist()):
        marks.setdefault(v, {"on_trace": True, "trace_index": i})
    try:
        n, m = write_graph(space, a.graph, a.format, marks=marks)
    except GraphTooLarge as e:
        raise UsageError(f"explore: --graph {a.graph}: {e}; use a smaller --radius") from None
    print(f"neighbourhood of {a.around} ({len(trace)} steps, {model.policy.name}, scope {model.scope.name}), "
          f"radius {a.radius}: {n} states, {m} edges written to {a.graph}")
    progress(f"graph written to {a.graph}")
    return 0


def _space_line(s: dict[str, Any]) -> str:
    cut = f"CUT SHORT: {s['stopped']}" if s.get("stopped") else "CUT SHORT by the budget"
    on = f", {s['partitions']} partitions" if "partitions" in s else ""
    return (f"{s['states']} states, {s['transitions']} transitions ({s['self_loops']} leave the state "
            f"unchanged), {s['edges']} edges, depth {s['depth']}, "
            f"{'complete' if s['complete'] else cut}, {s['seconds']:.1f} s{on}")


def _default_memory() -> int | None:
    total = physical_memory()
    return total * 3 // 4 if total else None


def _render(model, trace) -> str:
    return render(model, trace)


def _indent(text: str, pre: str) -> str:
    return "\n".join(pre + line for line in text.splitlines())
