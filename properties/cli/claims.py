"""``dmabuf-check claims [ID...]``: the bridge between the two kinds of ID. A policy's ``breaks``
names claims of ``spec/claims.md`` (``DEV-COHERENT-HANDOFF``); the campaign's table shows the
properties that formalise them (``P-DEVICE-HANDOFF``). For each claim: its ID, its quote
(shortened; the kernel's words in double quotes, the project's own after ``Reading:``), the
properties citing it and the documentation revisions that have it. An ID may
also be a property's: its claims are listed. Exit 0, or 2 for an unknown ID.
"""
from __future__ import annotations

import argparse
import difflib
from typing import Any, Sequence

from ..claims import CHANGES, NOT_MODELLED, Claim, claim_revisions, load_claims
from ..index import PROPERTIES, by_claim, get_property
from ..report.atomic import write_report
from .common import UsageError, progress

__all__ = ["add_parser", "cmd_claims", "claim_lines", "formalised_by", "short_quote"]

QUOTE_WIDTH = 110


def short_quote(text: str, width: int = QUOTE_WIDTH) -> str:
    """The claim's quote, cut at a word before ``width`` characters (``...`` says it was cut)."""
    if len(text) <= width:
        return text
    return text[:width - 3].rsplit(" ", 1)[0].rstrip(",;:") + "..."


def formalised_by(cid: str) -> str:
    """The properties citing claim ``cid``, or why none does."""
    props = [p.id for p in by_claim(cid)]
    if props:
        return ", ".join(props)
    return "not modelled" if cid in NOT_MODELLED else "no property"


def claim_lines(c: Claim, indent: str = "  ") -> list[str]:
    """Two lines: ``ID (revisions; who): properties`` and the quote, shortened."""
    return [f"{indent}{c.id} ({', '.join(claim_revisions(c.id))}; {c.who}): {formalised_by(c.id)}",
            f"{indent}    {short_quote(c.text)}"]


def _select(ids: Sequence[str]) -> list[Claim]:
    claims = load_claims()
    if not ids:
        return list(claims.values())
    pids = {p.id for p in PROPERTIES}
    out: list[Claim] = []
    for i in ids:
        if i in claims:
            picked = [i]
        elif i in pids:
            picked = [c for c in get_property(i).claims if c in claims]
        else:
            close = difflib.get_close_matches(i, list(claims) + sorted(pids), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"claims: {i!r} is neither a claim of spec/claims.md nor a property{hint}")
        out += [claims[c] for c in picked if claims[c] not in out]
    return out


def _to_json(c: Claim) -> dict[str, Any]:
    return {"id": c.id, "quote": c.text, "kernel": list(c.quotes), "reading": c.reading, "source": c.source, "who": c.who, "section": c.section,
            "properties": [p.id for p in by_claim(c.id)], "revisions": list(claim_revisions(c.id)),
            **({"later": CHANGES[c.id]} if c.id in CHANGES else {}),
            **({"not_modelled": NOT_MODELLED[c.id]} if c.id in NOT_MODELLED else {})}


def cmd_claims(a: argparse.Namespace) -> int:
    chosen = _select(a.ids)
    print("Claims of spec/claims.md: ID (documentation revisions that have it; who carries it): the "
          "properties that formalise it, then its quote")
    section = None
    for c in chosen:
        if c.section != section:
            section = c.section
            print(f"\n{section}")
        print("\n".join(claim_lines(c)))
        if a.ids and c.id in CHANGES:
            print(f"      v5.12: {CHANGES[c.id]}")
        if a.ids and c.id in NOT_MODELLED:
            print(f"      not modelled: {NOT_MODELLED[c.id]}")
    if a.json:
        write_report({"schema": "dmabuf-check.claims/1", "claims": [_to_json(c) for c in chosen]}, a.json)
        progress(f"claims written to {a.json}")
    return 0


def add_parser(sub: Any, common: Any = None) -> argparse.ArgumentParser:
    """Register ``claims`` on the CLI's subparsers."""
    p = sub.add_parser("claims", help="list the claims (the IDs a policy's breaks names) with the "
                       "properties that formalise each")
    p.add_argument("ids", nargs="*", metavar="ID", help="claim IDs, or property IDs (their claims); "
                   "default: every claim")
    p.add_argument("--json", metavar="PATH", help="write the claims as JSON")
    p.set_defaults(func=cmd_claims)
    return p
