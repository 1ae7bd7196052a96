"""The command line: ``dmabuf-check`` (docs/interface.md, "Command line").

Exit status: 0 when every outcome is as expected, 1 when a property outcome is not, 2 for bad
input or usage (one line on stderr naming the file, the place and the problem). Progress goes to
stderr, results to stdout.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import traceback
from typing import Sequence

from model.catalog import CATALOG
from model.machine import Model
from model.policy import KNOBS, REVISIONS, export_refusal

from .. import interrupt
from ..report.atomic import output_problem, write_report
from ..runs import shards
from ..runs.campaign import format_table, parse_duration, run_campaign, shorten_verdicts
from ..runs.cluster import ClusterError
from ..runs.database import DatabaseError, default_spec
from ..runs.scale import run_scaled
from ..scenarios.itf import write_verdict_traces
from ..claims import load_claims
from . import claims as claims_command, conform, explore, litmus, prove, replay, review
from .claims import claim_lines, formalised_by
from .common import (DEPTH, EXAMPLES, JOBS, STATES, STEPS, TIMEOUT, Parser, UsageError, memory_size, progress,
                     resolve_exporters, scope_arg, seed_arg, share_of_memory, warn_not_exportable)

__all__ = ["main", "build_parser"]


def cmd_campaign(a: argparse.Namespace) -> int:
    scope = scope_arg(a.scope)
    exporters = resolve_exporters(a.exporter, a.revision)
    warn_not_exportable(exporters, a.revision)
    jobs = a.jobs if a.jobs else (os.cpu_count() or 1)
    if a.engine is None:  # a time budget, property groups and coverage are Hypothesis's
        a.engine = "hypothesis" if (a.budget or a.property_groups != "all" or a.coverage) else "portfolio"
    if a.coverage and (a.engine != "hypothesis" or a.budget or a.cluster or a.database):
        raise UsageError("campaign: --coverage measures one Hypothesis run per exporter (--engine hypothesis, "
                         "no --budget, --cluster or --database)")
    if a.engine == "hypothesis" and not a.coverage:  # shards on every core, a cluster, a time budget, the database
        result = _campaign_at_scale(a, exporters, scope)
    elif a.budget or a.property_groups != "all":
        raise UsageError("campaign: --budget and --property-groups apply to --engine hypothesis")
    elif (a.cluster or a.database) and a.engine != "portfolio":
        raise UsageError("campaign: --cluster and --database apply to --engine portfolio and hypothesis")
    else:
        memory = a.max_memory if a.max_memory is not None else share_of_memory(min(jobs, len(exporters)))
        try:
            result = run_campaign(exporters, scope, a.revision, examples=a.examples, seed=a.seed,
                                  steps=a.steps, jobs=min(jobs, len(exporters)), progress=progress,
                                  engine=a.engine, depth=a.depth, coverage=a.coverage, states=a.max_states,
                                  memory=memory, z3_seconds=a.z3_seconds, cluster=a.cluster,
                                  database=(default_spec() if a.database is None else a.database)
                                  if a.engine == "portfolio" else None)
        except (DatabaseError, ClusterError) as e:
            raise UsageError(str(e)) from None
    models = {p.name: Model(p, scope, a.revision) for p in result.exporters}   # (not the refused ones)
    if a.shortest and not result.interrupted:
        progress("shortening every trace with the explicit engine (--shortest)")
        result.verdicts = shorten_verdicts(result.verdicts, models, a.shortest_states, progress)
    print(format_table(result, models))
    if a.traces:
        progress(f"{len(write_verdict_traces(result.verdicts, models, a.traces, a.seed))} ITF traces written to {a.traces}")
    if a.json:
        progress(f"report written to {write_report(result.to_json(), a.json)}")
    if result.interrupted:
        return interrupt.exit_status()
    return 1 if result.mismatches else 0


def _campaign_at_scale(a: argparse.Namespace, exporters, scope):
    """The campaign with the Hypothesis engine: shards on every core or a Dask cluster, a time
    budget, the example database (properties.runs.scale)."""
    budget = None
    if a.budget is not None:
        try:
            budget = parse_duration(a.budget)
        except ValueError as e:
            raise UsageError(f"--budget: {e}") from None
    try:
        return run_scaled(exporters, scope, a.revision, examples=a.examples, seed=a.seed, steps=a.steps,
                          jobs=a.jobs, progress=progress, database=a.database, cluster=a.cluster,
                          duration=budget, duration_text=a.budget, grouping=a.property_groups,
                          report=a.json)
    except (DatabaseError, ClusterError) as e:
        raise UsageError(str(e)) from None


def cmd_exporters(a: argparse.Namespace) -> int:
    pols = resolve_exporters(a.exporter, "v4.11") if a.exporter else list(CATALOG.values())
    claims = load_claims()
    for p in pols:
        print(f"{p.name}: {p.description}")
        if p.breaks:
            # each claim with the properties formalising it: the rows of the campaign's table
            print("  breaks (claim: the properties that formalise it):")
            for c in p.breaks:
                print(f"    {c}: " + (formalised_by(c) if c in claims else "(a property)"))
        if p.why:
            print(f"  source: {p.why}")
        refused = [f"{r}: {export_refusal(p, r)}" for r in REVISIONS if not p.exportable_at(r)]
        if refused:   # checked only where dma_buf_export() accepts its ops
            print(f"  exportable at: {', '.join(p.exportable_revisions) or 'no modelled revision'} "
                  f"(not at {'; '.join(refused)})")
        changed = {k: getattr(p, k) for k in KNOBS if getattr(p, k) != KNOBS[k].default}
        print("  knobs differing from the defaults: " +
              (", ".join(f"{k}={v}" for k, v in changed.items()) or "(none)"))
    if a.knobs:
        print("\nKnobs (TOML [knobs] table of a policy file):")
        for k in KNOBS.values():
            kind = " | ".join(repr(c) for c in k.choices) if k.choices else "true | false"
            print(f"  {k.name} = {kind}   (default {k.default!r}): {k.doc}")
        print("\nClaims a policy's breaks = [...] may name (ID (revisions; who): the properties the campaign's "
              "table shows for it, then its quote; 'dmabuf-check claims ID' says more):")
        for c in claims.values():
            print("\n".join(claim_lines(c)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="dmabuf-check", description="A formal model and property checker for the "
                "Linux dma-buf CPU-access rules.")
    sub = p.add_subparsers(dest="command", parser_class=Parser)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--exporter", action="append", metavar="NAME|FILE",
                        help="a catalog exporter or a policy TOML file (repeatable; default: the catalog)")
        sp.add_argument("--revision", choices=REVISIONS, default="v4.11")
        sp.add_argument("--scope", default="small", help="tiny, small or default (default: small)")
        sp.add_argument("--seed", type=seed_arg, default=1, help="(-2**63 to 2**64-1; default 1)")
        sp.add_argument("--json", metavar="PATH", help="write the report as JSON")

    c = sub.add_parser("campaign", help="run properties against exporter policies")
    common(c)
    c.add_argument("--examples", type=EXAMPLES, default=300, help="Hypothesis examples per exporter run "
                   "(1 to 1,000,000; default 300)")
    c.add_argument("--steps", type=STEPS, default=30, help="steps per example (1 to 10,000; default 30)")
    c.add_argument("--jobs", type=JOBS, default=None, help="worker processes (1 to 1024; default: all cores)")
    c.add_argument("--engine", choices=("portfolio", "hypothesis", "z3", "explicit"), default=None,
                   help="portfolio (the default: the tiny scope searched exhaustively, then Z3's bounded checks "
                   "and induction on --scope, then Hypothesis on --scope; each verdict says what it covers), "
                   "or one engine alone: hypothesis (random exploration; the default with --budget, "
                   "--property-groups or --coverage), z3 (bounded checks to --depth, then induction) or "
                   "explicit (every reachable state of --scope)")
    c.add_argument("--depth", type=DEPTH, default=8, help="with --engine z3 or portfolio: steps of the "
                   "bounded checks (1 to 64; default 8)")
    c.add_argument("--max-states", type=STATES, default=None, metavar="N",
                   help="with --engine portfolio or explicit: stop the exhaustive search after N states; what "
                   "it has not decided is unknown (1 to 10**12; default 60000000 for the portfolio's tiny scope)")
    c.add_argument("--max-memory", type=memory_size, default=None, metavar="SIZE",
                   help="with --engine portfolio or explicit: stop the exhaustive search when a worker's "
                   "resident memory passes SIZE (512M, 8G; 1M to 1024T; default: 3/4 of the machine's memory, shared by the jobs)")
    c.add_argument("--z3-seconds", type=TIMEOUT, default=None, metavar="S",
                   help="with --engine portfolio: time the bounded checks may take per exporter (above 0, at "
                   "most 1,000,000; default 60); "
                   "the depth reached is in the report")
    c.add_argument("--traces", metavar="DIR", help="write every trace found as an ITF file in DIR")
    c.add_argument("--coverage", action="store_true", help="also measure the fraction of the reachable "
                   "states and transitions each Hypothesis run visits (explicit engine; scope tiny)")
    c.add_argument("--shortest", action="store_true", help="replace every trace by a shortest one: a "
                   "breadth-first search (explicit engine) to one step less than the trace found")
    c.add_argument("--shortest-states", type=STATES, default=2_000_000, metavar="N",
                   help="with --shortest: at most N states per trace searched; a trace whose search is cut "
                   "is kept and marked unconfirmed (1 to 10**12; default 2000000)")
    # campaigns at scale (docs/scale.md)
    c.add_argument("--budget", metavar="DURATION",
                   help="run slot after slot of shards until this much time is spent (90s, 30m, 8h; at most 1000d)")
    c.add_argument("--database", metavar="DIR|redis://HOST:PORT/N|none",
                   help="where counterexamples are kept and replayed from (default: $DMABUF_CHECK_DATABASE, "
                        "else .cache/hypothesis in the project or $DMABUF_CHECK_CACHE/hypothesis)")
    c.add_argument("--cluster", metavar="tcp://HOST:PORT", help="run the shards on this Dask scheduler")
    c.add_argument("--property-groups", choices=sorted(shards.GROUPINGS), default="all",
                   help="cut each exporter's properties into groups run as separate shards (default: all)")
    c.set_defaults(func=cmd_campaign)

    e = sub.add_parser("exporters", help="list the exporter policy catalog and its knobs")
    e.add_argument("--exporter", action="append", metavar="NAME|FILE")
    e.add_argument("--knobs", action="store_true", help="also describe every knob, and list the claims "
                   "a policy's breaks may name with the properties that formalise each")
    e.set_defaults(func=cmd_exporters)
    for command in (replay, litmus, conform, review, prove, explore, claims_command):
        command.add_parser(sub, common)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    interrupt.reset()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt.handler)   # a SIGTERM before the run starts: exit 143 too
    try:
        parser = build_parser()
        a = parser.parse_args(argv)
        if not getattr(a, "command", None):
            raise UsageError("dmabuf-check: a command is needed (campaign, prove, explore, replay, "
                             "litmus, review, conform, exporters, claims); see --help")
        _check_outputs(a)
        with interrupt.raising():   # the command's own code stops at once; a run's tasks only between steps
            return a.func(a)
    except UsageError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dmabuf-check: interrupted", file=sys.stderr)
        return interrupt.exit_status()
    except Exception as e:  # noqa: BLE001 - a bug of ours: exit 3, not 1 (which means a finding)
        return _internal_error(e)


# per command, the options that name an output and whether it is a folder (conform's --cache and
# campaign's --database are stores read as well as written, which may be shared and read-only)
_OUTPUTS: dict[str, dict[str, bool]] = {
    "campaign": {"json": False, "traces": True},
    "explore": {"json": False, "graph": False, "traces": True},
    "prove": {"json": False, "smt2": True},
    "replay": {"json": False, "litmus": False},
    "litmus": {"json": False},
    "review": {"out": True},
    "conform": {"json": False},
    "exporters": {},
    "claims": {"json": False},
}


def _check_outputs(a: argparse.Namespace) -> None:
    """Every output path is checked before any work starts: a typo must not cost a long run."""
    for name, folder in _OUTPUTS[a.command].items():
        path = getattr(a, name, None)
        if path is not None:
            problem = output_problem(path, folder=folder) if path else "an empty path"
            if problem:
                raise UsageError(f"{a.command}: --{name} {path}: {problem}")


def _internal_error(e: Exception) -> int:
    """An internal error: one line naming a file that keeps the traceback, exit status 3, so that
    a script can tell a crash (3) from an outcome not as expected (1) and from bad input (2)."""
    fd, path = tempfile.mkstemp(prefix="dmabuf-check-crash-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(traceback.format_exception(e)))
    print(f"dmabuf-check: internal error ({type(e).__name__}: {e}); the traceback is in {path}",
          file=sys.stderr)
    return 3

