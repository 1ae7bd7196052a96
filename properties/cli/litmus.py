"""``dmabuf-check litmus PATH...``: run litmus files and compare each with its expected outcome.

docs/interface.md ("Litmus files"). One line per file, ``Ok`` or ``No`` in the manner of herd7, with
what differed; ``-v`` also prints each run as kernel calls with the properties that fire. Files
and folders (searched for ``*.litmus.toml``); no path runs the library shipped with the project
(``litmus/``). Exit 0 when every file is as expected, 1 when one is not, 2 when a file is
invalid (one line on stderr per invalid file, naming it, the step and the reason).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..report.atomic import write_report
from ..scenarios.litmus import (LIBRARY, LitmusError, LitmusRunner, collect, format_details, format_line,
                                load_litmus)
from .common import UsageError, progress

__all__ = ["add_parser", "cmd_litmus"]


def cmd_litmus(a: argparse.Namespace) -> int:
    paths = a.paths or [LIBRARY]
    try:
        files = collect(paths)
    except LitmusError as e:
        raise UsageError(str(e)) from None
    if not files:
        raise UsageError(f"litmus: no *.litmus.toml files in {', '.join(map(str, paths))}")
    runner = LitmusRunner()
    results = []
    invalid = 0
    for f in files:
        try:
            out = runner.run(load_litmus(f))
        except LitmusError as e:
            print(str(e), file=sys.stderr, flush=True)
            invalid += 1
            continue
        results.append(out)
        print(format_line(out), flush=True)
        if a.verbose:
            print(format_details(out))
    bad = sum(1 for r in results if not r.ok)
    print(f"litmus: {len(files)} files, {len(results) - bad} Ok, {bad} No"
          + (f", {invalid} invalid" if invalid else ""))
    if a.json:
        write_report({
            "schema": "dmabuf-check.litmus/1", "command": "litmus",
            "results": [{
                "file": str(r.test.path), "title": r.test.title, "exporter": r.test.policy.name,
                "revision": r.test.revision, "scope": {"name": r.test.scope.name},
                "verdict": "Ok" if r.ok else "No", "differences": list(r.differences),
                "claims_fired": {c: {"step": s, "property": p} for c, (s, p) in sorted(r.fired_claims.items())},
                "trace": r.trace.to_json()} for r in results],
            "invalid": invalid,
        }, a.json)
        progress(f"report written to {a.json}")
    if invalid:
        return 2
    return 1 if bad else 0


def add_parser(sub: Any, common: Any = None) -> argparse.ArgumentParser:
    """Register ``litmus`` on the CLI's subparsers."""
    p = sub.add_parser("litmus", help="run litmus files and compare each with its expected outcome")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="litmus files or folders (default: the library in litmus/)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print each run: calls, returns, changed fields, properties that fire")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.set_defaults(func=cmd_litmus)
    return p
