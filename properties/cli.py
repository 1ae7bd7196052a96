"""The command line: ``dmabuf-check`` (docs/interface.md, "Command line").

Exit status: 0 when every outcome is as expected, 1 when a property outcome is not, 2 for bad
input or usage (one line on stderr naming the file, the place and the problem). Progress goes to
stderr, results to stdout.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main", "UsageError"]


class UsageError(Exception):
    """Bad input: printed as one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message}")


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {v}")
    return v


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None


def resolve_exporters(names: Sequence[str] | None, revision: str):
    """Catalog names or policy TOML files -> policies (default: the catalog for the revision)."""
    from model.catalog import CATALOG
    from model.policy import PolicyError, load_policy_file

    if not names:
        return [p for p in CATALOG.values() if revision in p.revisions]
    out = []
    for n in names:
        if n in CATALOG:
            out.append(CATALOG[n])
        elif n.endswith(".toml") or os.sep in n or Path(n).exists():
            try:
                out.append(load_policy_file(n, CATALOG))
            except PolicyError as e:
                raise UsageError(str(e)) from None
        else:
            raise UsageError(f"--exporter: unknown exporter {n!r} (not in the catalog, not a .toml "
                             f"file); 'dmabuf-check exporters' lists the catalog")
    names_seen = [p.name for p in out]
    dup = {n for n in names_seen if names_seen.count(n) > 1}
    if dup:
        raise UsageError(f"--exporter: {sorted(dup)[0]!r} given twice")
    return out


def _scope(name: str):
    from model.scope import SCOPES

    if name not in SCOPES:
        raise UsageError(f"--scope: unknown scope {name!r}; known scopes: {', '.join(SCOPES)}")
    return SCOPES[name]


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_campaign(a: argparse.Namespace) -> int:
    from model.machine import Model

    from .campaign import format_table, run_campaign, write_report

    scope = _scope(a.scope)
    exporters = resolve_exporters(a.exporter, a.revision)
    jobs = a.jobs if a.jobs else (os.cpu_count() or 1)
    if a.engine is None:  # a time budget, property groups and coverage are Hypothesis's
        a.engine = "hypothesis" if (a.budget or a.property_groups != "all" or a.coverage) else "portfolio"
    if a.coverage and (a.engine != "hypothesis" or a.budget or a.cluster or a.database):
        raise UsageError("campaign: --coverage measures one Hypothesis run per exporter (--engine hypothesis, "
                         "no --budget, --cluster or --database)")
    if a.engine == "hypothesis" and not a.coverage:  # shards on every core, a cluster, a time budget, the database
        from .scale import run_from_args
        result = run_from_args(a, exporters, scope, _progress)
    elif a.budget or a.property_groups != "all":
        raise UsageError("campaign: --budget and --property-groups apply to --engine hypothesis")
    elif (a.cluster or a.database) and a.engine != "portfolio":
        raise UsageError("campaign: --cluster and --database apply to --engine portfolio and hypothesis")
    else:
        from .database import DatabaseError, default_spec
        from .runs.cluster import ClusterError

        memory = a.max_memory if a.max_memory is not None else _share_of_memory(min(jobs, len(exporters)))
        try:
            result = run_campaign(exporters, scope, a.revision, examples=a.examples, seed=a.seed,
                                  steps=a.steps, jobs=min(jobs, len(exporters)), progress=_progress,
                                  engine=a.engine, depth=a.depth, coverage=a.coverage, states=a.max_states,
                                  memory=memory, z3_seconds=a.z3_seconds, cluster=a.cluster,
                                  database=(default_spec() if a.database is None else a.database)
                                  if a.engine == "portfolio" else None)
        except (DatabaseError, ClusterError) as e:
            raise UsageError(str(e)) from None
    models = {p.name: Model(p, scope, a.revision) for p in exporters}
    if a.shortest and not result.interrupted:
        from .campaign import shorten_verdicts
        _progress("shortening every trace with the explicit engine (--shortest)")
        result.verdicts = shorten_verdicts(result.verdicts, models, a.shortest_states, _progress)
    print(format_table(result, models))
    if a.traces:
        from .itf import write_verdict_traces
        _progress(f"{len(write_verdict_traces(result.verdicts, models, a.traces, a.seed))} ITF traces written to {a.traces}")
    if a.json:
        write_report(result.to_json(), a.json)
        _progress(f"report written to {a.json}")
    if result.interrupted:
        return 130
    return 1 if result.mismatches else 0


def _share_of_memory(jobs: int) -> int | None:
    """Three quarters of the machine's memory, shared by ``jobs`` workers: what an exhaustive
    search may use before it stops and says ``unknown``."""
    from .engines.explicit import physical_memory

    total = physical_memory()
    return None if total is None else int(0.75 * total / max(1, jobs))


def _memory_size(text: str) -> int:
    from .cli_explore import _memory_size as parse

    return parse(text)


def cmd_exporters(a: argparse.Namespace) -> int:
    from model.catalog import CATALOG
    from model.policy import KNOBS

    pols = resolve_exporters(a.exporter, "v4.11") if a.exporter else list(CATALOG.values())
    for p in pols:
        print(f"{p.name}: {p.description}")
        if p.breaks:
            print(f"  breaks: {', '.join(p.breaks)}")
        if p.why:
            print(f"  source: {p.why}")
        changed = {k: getattr(p, k) for k in KNOBS if getattr(p, k) != KNOBS[k].default}
        print("  knobs differing from the defaults: " +
              (", ".join(f"{k}={v}" for k, v in changed.items()) or "(none)"))
    if a.knobs:
        print("\nKnobs (TOML [knobs] table of a policy file):")
        for k in KNOBS.values():
            kind = " | ".join(repr(c) for c in k.choices) if k.choices else "true | false"
            print(f"  {k.name} = {kind}   (default {k.default!r}): {k.doc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from model.policy import REVISIONS

    p = _Parser(prog="dmabuf-check", description="A formal model and property checker for the "
                "Linux dma-buf CPU-access rules.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--exporter", action="append", metavar="NAME|FILE",
                        help="a catalog exporter or a policy TOML file (repeatable; default: the catalog)")
        sp.add_argument("--revision", choices=REVISIONS, default="v4.11")
        sp.add_argument("--scope", default="small", help="tiny, small or default (default: small)")
        sp.add_argument("--seed", type=_seed, default=1)
        sp.add_argument("--json", metavar="PATH", help="write the report as JSON")

    c = sub.add_parser("campaign", help="run properties against exporter policies")
    common(c)
    c.add_argument("--examples", type=_positive, default=300, help="Hypothesis examples per exporter run")
    c.add_argument("--steps", type=_positive, default=30, help="steps per example")
    c.add_argument("--jobs", type=_positive, default=None, help="worker processes (default: all cores)")
    c.add_argument("--engine", choices=("portfolio", "hypothesis", "z3", "explicit"), default=None,
                   help="portfolio (the default: the tiny scope searched exhaustively, then Z3's bounded checks "
                   "and induction on --scope, then Hypothesis on --scope; each verdict says what it covers), "
                   "or one engine alone: hypothesis (random exploration; the default with --budget, "
                   "--property-groups or --coverage), z3 (bounded checks to --depth, then induction) or "
                   "explicit (every reachable state of --scope)")
    c.add_argument("--depth", type=_positive, default=8, help="with --engine z3 or portfolio: steps of the "
                   "bounded checks (default 8)")
    c.add_argument("--max-states", type=_positive, default=None, metavar="N",
                   help="with --engine portfolio or explicit: stop the exhaustive search after N states; what "
                   "it has not decided is unknown (default 60000000 for the portfolio's tiny scope)")
    c.add_argument("--max-memory", type=_memory_size, default=None, metavar="SIZE",
                   help="with --engine portfolio or explicit: stop the exhaustive search when a worker's "
                   "resident memory passes SIZE (512M, 8G; default: 3/4 of the machine's memory, shared by the jobs)")
    c.add_argument("--z3-seconds", type=float, default=None, metavar="S",
                   help="with --engine portfolio: time the bounded checks may take per exporter (default 60); "
                   "the depth reached is in the report")
    c.add_argument("--traces", metavar="DIR", help="write every trace found as an ITF file in DIR")
    c.add_argument("--coverage", action="store_true", help="also measure the fraction of the reachable "
                   "states and transitions each Hypothesis run visits (explicit engine; scope tiny)")
    c.add_argument("--shortest", action="store_true", help="replace every trace by a shortest one: a "
                   "breadth-first search (explicit engine) to one step less than the trace found")
    c.add_argument("--shortest-states", type=_positive, default=2_000_000, metavar="N",
                   help="with --shortest: at most N states per trace searched; a trace whose search is cut "
                   "is kept and marked unconfirmed (default 2000000)")
    from .scale import add_arguments as add_scale; add_scale(c)  # noqa: E702
    c.set_defaults(func=cmd_campaign)

    e = sub.add_parser("exporters", help="list the exporter policy catalog and its knobs")
    e.add_argument("--exporter", action="append", metavar="NAME|FILE")
    e.add_argument("--knobs", action="store_true", help="also describe every knob")
    e.set_defaults(func=cmd_exporters)
    from .replay_cmd import add_parser as add_replay; add_replay(sub, common)  # noqa: E702
    from .cli_litmus import add_parser as add_litmus; add_litmus(sub, common)  # noqa: E702
    from .cli_conform import add_parser as add_conform; add_conform(sub, common)  # noqa: E702
    from .cli_review import add_parser as add_review; add_review(sub, common)  # noqa: E702
    from .cli_prove import add_parser as add_prove; add_prove(sub, common)  # noqa: E702
    from .cli_explore import add_parser as add_explore; add_explore(sub, common)  # noqa: E702
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        a = parser.parse_args(argv)
        if not getattr(a, "command", None):
            raise UsageError("dmabuf-check: a command is needed (campaign, prove, explore, replay, "
                             "litmus, review, conform, exporters); see --help")
        return a.func(a)
    except UsageError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dmabuf-check: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    # run the imported module's main, so that the UsageError the subcommand modules import
    # from properties.cli is the one main catches (under python -m this file is __main__)
    from properties.cli import main as _main
    sys.exit(_main())
