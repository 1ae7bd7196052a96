"""The judge of expectations: which verdict each property should have for a policy, and whether
every claim a policy declares broken was found broken.

Expectations are data (a policy's ``breaks``, the properties' claims and kinds); engines report
what they found and never judge it. This module is the one place that compares the two:

* :func:`expected`: the verdict expected of one property for one policy and scope;
* :func:`judged`: verdicts with their expectation filled in;
* :func:`claim_checks`: for every claim a policy declares broken (and that some property can show
  broken in the scope and revision), whether a violated ``always``/``step`` property cites it;
* :func:`mismatches`: the outcomes that are not as expected, as sentences;
* :func:`split_exportable`: which policies the revision's ``dma_buf_export()`` accepts, and why it
  refuses the others (:class:`NotExportable`): those are reported, never checked.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Iterable, Sequence

from model.policy import ExporterPolicy, export_refusal
from model.scope import Scope

from .claims import load_claims
from .index import PROPERTIES, by_claim
from .property import Property
from .verdict import Verdict

__all__ = ["ClaimCheck", "expected", "judged", "claim_checks", "mismatches", "breaks_problem", "NotExportable",
           "split_exportable"]


@dataclass(frozen=True)
class ClaimCheck:
    """Was the claim ``claim``, which ``exporter`` declares broken, found broken (``by`` which
    violated properties)?"""

    exporter: str
    claim: str
    found: bool
    by: tuple[str, ...]


def expected(prop: Property, policy: ExporterPolicy, scope: Scope) -> str | None:
    """The verdict a campaign expects of ``prop`` for ``policy``: ``holds``, ``violated`` or
    ``None`` (not judged on its own).

    A policy declares the claims it breaks (and may name properties too). A property it names, or
    the only invariant formalising a broken claim, is expected violated; another property citing a
    broken claim is not judged on its own (:func:`claim_checks` checks instead that every broken
    claim has at least one violated property); one citing no broken claim must hold. Undefined
    behaviour and callers' obligations are findings, not judged; witnesses must be reached."""
    if prop.kind == "undefined":
        return None
    if prop.kind == "witness":
        return "holds"
    if prop.party in ("importer", "userspace") or not prop.fits(scope):
        return None
    if prop.id in policy.breaks:
        return "violated"
    broken = set(prop.claims) & set(policy.breaks)
    if not broken:
        return "holds"
    # the only invariant formalising a broken claim must be the one that breaks
    for claim in broken:
        if [p.id for p in by_claim(claim) if p.target_is_bad and p.fits(scope)] == [prop.id]:
            return "violated"
    return None


def judged(verdicts: Iterable[Verdict], props: dict[str, Property], policy: ExporterPolicy,
           scope: Scope) -> list[Verdict]:
    """The verdicts of ``policy`` with their expectation filled in (``props``: by ID)."""
    return [dataclasses.replace(v, expected=expected(props[v.property], policy, scope)) for v in verdicts]


def claim_checks(policy: ExporterPolicy, verdicts: Sequence[Verdict], scope: Scope,
                 revision: str = "v4.11") -> list[ClaimCheck]:
    """One check per claim ``policy`` declares broken that a property can show broken in this
    scope and revision: found when a violated ``always``/``step`` verdict of the policy cites it."""
    mine = [v for v in verdicts if v.exporter == policy.name and v.verdict == "violated"]
    out = []
    for claim in policy.breaks:
        if claim.startswith("P-"):
            continue  # a property ID: judged on its own verdict
        if not any(p.fits(scope) and p.kind in ("always", "step") and revision in p.revisions
                   for p in by_claim(claim)):
            continue  # no property citing it can be violated in a scope this small (or at this revision)
        by = tuple(v.property for v in mine if claim in v.claims and v.kind in ("always", "step"))
        out.append(ClaimCheck(policy.name, claim, bool(by), by))
    return out


@dataclass(frozen=True)
class NotExportable:
    """``exporter`` cannot be exported at ``revision``: its ``dma_buf_export()`` refuses the ops
    (``reason``, ``model.policy.export_refusal``), so no run of it at that revision can do anything
    and nothing of it is checked there. ``declared``: the policy's ``revisions`` leave that revision
    out (the catalog's are derived from the same rule), so this is as expected; a policy that names
    the revision (a policy file's default) and cannot be exported there is an outcome not as
    expected."""

    exporter: str
    revision: str
    reason: str
    exportable_at: tuple[str, ...]
    declared: bool

    def sentence(self, checked: str = "") -> str:
        """``udmabuf: not exportable at v4.11 (dma_buf_export() refuses ops without kmap_atomic,
        corpus §3.5); checked at v5.12 only``; ``checked`` replaces what follows the semicolon."""
        if not checked:
            others = [r for r in self.exportable_at if r != self.revision]
            checked = (f"not checked at {self.revision}; exportable at {', '.join(others)}" if others
                       else "exportable at no modelled revision")
        return f"{self.exporter}: not exportable at {self.revision} ({self.reason}); {checked}"

    def to_json(self) -> dict:
        return {"exporter": self.exporter, "revision": self.revision, "reason": self.reason,
                "exportable_at": list(self.exportable_at), "as_expected": self.declared}


def split_exportable(exporters: Iterable[ExporterPolicy], revision: str
                     ) -> tuple[list[ExporterPolicy], list[NotExportable]]:
    """The policies whose ``dma_buf_export()`` at ``revision`` accepts their ops (in order), and
    one :class:`NotExportable` for each of the others."""
    ok, refused = [], []
    for p in exporters:
        if p.exportable_at(revision):
            ok.append(p)
        else:
            refused.append(NotExportable(p.name, revision, export_refusal(p, revision), p.exportable_revisions,
                                         revision not in p.revisions))
    return ok, refused


def mismatches(verdicts: Iterable[Verdict], checks: Iterable[ClaimCheck],
               refused: Iterable[NotExportable] = ()) -> list[str]:
    """The outcomes not as expected, one sentence each."""
    out = [f"{v.exporter}: {v.property} is {v.verdict}, expected {v.expected}"
           for v in verdicts if not v.as_expected]
    out += [f"{c.exporter}: declares {c.claim} broken, but no property citing it was violated"
            for c in checks if not c.found]
    out += [n.sentence("nothing of it checked, though its revisions name " + n.revision)
            for n in refused if not n.declared]
    return out


def breaks_problem(policy: ExporterPolicy) -> str | None:
    """What is wrong with a policy's ``breaks`` (``None``: nothing): an ID that is neither a claim
    of ``spec/claims.md`` nor a property, or a claim that no property formalises. Either would
    make the expectation silently unjudgeable (a typo of a claim would be expected to hold)."""
    claims = load_claims()
    props = {p.id for p in PROPERTIES}
    for c in policy.breaks:
        if c in props:
            continue
        if c not in claims:
            close = difflib.get_close_matches(c, list(claims) + sorted(props), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"breaks: unknown claim {c!r}{hint}; spec/claims.md lists the claims"
        if not by_claim(c):
            return (f"breaks: no property formalises claim {c!r}, so no run can show it broken; "
                    f"spec/claims.md and properties/claims.py list the claims not modelled")
    return None
