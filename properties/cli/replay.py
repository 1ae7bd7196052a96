"""``dmabuf-check replay TRACE``: re-run a saved ITF trace on the model, step by step, and say
which properties fire (docs/interface.md; the replay itself is ``properties.scenarios.replay``).
Exit 0 when everything agrees (and the property the file was written for fires), 1 when a recorded
value disagrees or that property does not fire, 2 when the file is malformed."""
from __future__ import annotations

import argparse
from typing import Any

from model.policy import export_refusal

from ..report.atomic import write_report, write_text_atomic
from ..scenarios.itf import ItfError, read_itf
from ..scenarios.litmus import litmus_from_trace
from ..scenarios.replay import format_outcome, replay_itf, to_json
from .common import UsageError, progress, resolve_exporters

__all__ = ["add_parser", "cmd_replay"]


def cmd_replay(a: argparse.Namespace) -> int:
    try:
        itf = read_itf(a.trace)
        policy = None
        if a.exporter:
            pols = resolve_exporters(a.exporter, "v4.11")
            if len(pols) != 1:
                raise UsageError("replay: --exporter names one exporter")
            policy = pols[0]
        out = replay_itf(itf, policy)
    except ItfError as e:
        raise UsageError(str(e)) from None
    for n in out.notes:
        progress(f"note: {n}")
    pol, rev = out.model.policy, out.model.revision
    if not pol.exportable_at(rev):   # a trace of it at this revision can only show the refused export
        progress(f"note: {pol.name}: not exportable at {rev} ({export_refusal(pol, rev)}): its dma_buf_export() "
                 f"returns -EINVAL")
    print(format_outcome(out))
    if a.json:
        progress(f"report written to {write_report(to_json(out), a.json)}")
    if a.litmus:
        text = litmus_from_trace(out.model, out.trace, title=out.itf.meta.get("description") or "replayed trace",
                                 prop=out.prop, source=out.itf.path)
        write_text_atomic(a.litmus, text)
        progress(f"litmus file written to {a.litmus}")
    return 0 if out.ok else 1


def add_parser(sub: Any, common: Any = None) -> argparse.ArgumentParser:
    """Register ``replay`` on the CLI's subparsers."""
    r = sub.add_parser("replay", help="re-run a saved ITF trace step by step and say which properties fire")
    r.add_argument("trace", metavar="TRACE", help="an ITF trace file (.itf.json)")
    r.add_argument("--exporter", action="append", metavar="NAME|FILE",
                   help="replay on this exporter policy instead of the recorded one (recorded states "
                        "are then not compared)")
    r.add_argument("--json", metavar="PATH", help="write the replay as JSON")
    r.add_argument("--litmus", metavar="PATH", help="also write the trace as a litmus file (its steps, "
                   "the returns the model gives and the claims that fire)")
    r.set_defaults(func=cmd_replay)
    return r
