"""``dmabuf-check review``: write the spec-review report (docs/interface.md, docs/review.md).

Runs what the report needs at both documentation revisions (by default the portfolio campaign, the
default campaign's engine, and the synthesis and bit-precise engines; the Hypothesis, Z3 and
explicit engines alone where requested), with a budget, then
writes ``review.md``, ``review.html`` (one self-contained file), ``findings.json``, ``review.patch`` and every
trace as an ITF file under ``--out``. Progress goes to stderr; stdout gets the paths written and
one line per finding. Exit status: 0 when every outcome is as expected, 1 when one is not (the
report lists them), 2 for bad input, 130 or 143 when stopped by SIGINT or SIGTERM (what was found is still written).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

from model.catalog import CATALOG
from model.policy import REVISIONS

from .. import interrupt
from ..report.review import DEFAULT_ENGINES, ENGINES, ReviewConfig, collect, findings
from ..report.review_render import write_review
from .common import (DEPTH, EXAMPLES, JOBS, STATES, STEPS, TIMEOUT, UsageError, memory_size, progress,
                     resolve_exporters, scope_arg, seed_arg, share_of_memory,
                     warn_not_exportable)

__all__ = ["add_parser", "cmd_review"]


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.ArgumentParser:
    """Register ``review`` on the CLI's subparsers (``common`` is unused: the review covers both
    revisions, so it takes no ``--revision``)."""
    p = sub.add_parser("review", help="write the spec-review report (Markdown and self-contained HTML)")
    p.add_argument("--out", metavar="DIR", default="reports/review",
                   help="folder for review.md, review.html, findings.json, review.patch and traces/ (default reports/review)")
    p.add_argument("--exporter", action="append", metavar="NAME|FILE",
                   help="a catalog exporter or a policy TOML file (repeatable; default: the catalog)")
    p.add_argument("--scope", default="small", help="tiny, small or default (default: small)")
    p.add_argument("--seed", type=seed_arg, default=1, help="(-2**63 to 2**64-1; default 1)")
    p.add_argument("--examples", type=EXAMPLES, default=300,
                   help="--engine hypothesis: examples per exporter and round (1 to 1,000,000; default 300)")
    p.add_argument("--portfolio-examples", type=EXAMPLES, default=50,
                   help="the portfolio's sampled stage: Hypothesis examples per exporter and round "
                   "(1 to 1,000,000; default 50)")
    p.add_argument("--steps", type=STEPS, default=30,
                   help="Hypothesis steps per example, for both (1 to 10,000; default 30)")
    p.add_argument("--depth", type=DEPTH, default=6,
                   help="--engine z3: bounded-check depth; the synthesis queries use depth + 2 (1 to 64; default 6)")
    p.add_argument("--portfolio-depth", type=DEPTH, default=8,
                   help="the portfolio's Z3 stage: bounded-check depth on --scope (1 to 64; default 8, as for campaign)")
    p.add_argument("--max-states", type=STATES, default=60_000_000,
                   help="the portfolio's exhaustive search of the tiny scope: at most N states per exporter; "
                   "what it has not decided is unknown (1 to 10**12; default 60000000, as for campaign)")
    p.add_argument("--max-memory", type=memory_size, default=None, metavar="SIZE",
                   help="the portfolio's exhaustive search: stop when a worker's resident memory passes SIZE "
                   "(512M, 8G; 1M to 1024T; default: 3/4 of the machine's memory, shared by the jobs)")
    p.add_argument("--z3-seconds", type=TIMEOUT, default=None, metavar="S",
                   help="the portfolio's Z3 stage: at most S seconds per exporter (above 0, at most 1,000,000; "
                   "default: no time bound, so "
                   "that the depth reached depends on --portfolio-depth only)")
    p.add_argument("--timeout", type=TIMEOUT, default=60.0,
                   help="--engine z3 and the synthesis and arithmetic queries: seconds per Z3 query; one that runs "
                   "out is 'unknown' (above 0, at most 1,000,000; default 60; the portfolio's Z3 stage has the campaign's 20)")
    p.add_argument("--states", type=STATES, default=200_000,
                   help="--engine explicit: states per exporter run (1 to 10**12; default 200000)")
    p.add_argument("--engine", action="append", choices=ENGINES,
                   help=f"engines to run (repeatable; default: {', '.join(DEFAULT_ENGINES)})")
    p.add_argument("--jobs", type=JOBS, default=None,
                   help="worker processes (1 to 1024; default: all cores); the report does not depend on it")
    p.set_defaults(func=cmd_review)
    return p


def cmd_review(a: argparse.Namespace) -> int:
    scope = scope_arg(a.scope)
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} exists and is not a folder")
    pols = resolve_exporters(a.exporter, REVISIONS[0])
    if not a.exporter:  # the whole catalog: every policy, whichever revisions it names

        pols = list(CATALOG.values())
    for rev in REVISIONS:
        warn_not_exportable(pols, rev)
    engines = tuple(dict.fromkeys(a.engine or DEFAULT_ENGINES))
    jobs = a.jobs or (os.cpu_count() or 1)
    memory = a.max_memory
    if memory is None and "portfolio" in engines:   # as campaign: a share of the machine's memory per worker

        memory = share_of_memory(min(jobs, len(pols)))
    cfg = ReviewConfig(scope=scope, seed=a.seed, examples=a.examples, steps=a.steps, depth=a.depth,
                       timeout=a.timeout, states=a.states, engines=engines, exporters=tuple(pols), jobs=jobs,
                       portfolio_depth=a.portfolio_depth, max_states=a.max_states, z3_seconds=a.z3_seconds,
                       memory=memory, portfolio_examples=a.portfolio_examples)
    data = collect(cfg, progress=progress)
    try:
        paths = write_review(data, out)
    except OSError as e:
        raise UsageError(f"--out: cannot write the report into {out}: {e.strerror}") from None
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    for f in findings(data):
        print(f"{f.id}. {f.title}")
    mism = data.mismatches()
    if mism:
        print(f"{len(mism)} outcomes not as expected (listed in the report)", file=sys.stderr)
    if data.interrupted:
        return interrupt.exit_status()
    return 1 if mism else 0
