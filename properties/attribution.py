"""Who is at fault when a property is violated or an outcome is reached: the one place that
decides it, with the reason, for the spec review (``properties/report/review.py``).

Four classes, and one for what is no defect at all:

* ``documentation``: the text contradicts itself, the code, or is stale;
* ``core``: the core's own ordering or checks make a rule impossible to keep (an exporter cannot
  comply whatever it does);
* ``exporter``: a driver breaks a rule it could keep;
* ``caller``: undefined behaviour, or a caller (importer, userspace) breaking its own obligation,
  that the core does not prevent;
* ``none``: the sentence a property reads is permissive ("lets the exporter ...", "may"), so a
  policy that does not use the permission breaks nothing.

The class follows from the property's kind and party (``undefined`` -> caller obligation, party
``tension`` -> documentation defect, ``core`` -> core defect, ``exporter`` -> exporter defect),
except where ``RULES`` says otherwise, keyed by property ID, with the reason. ``counts_against``
is the set of claims a violation of a property shows broken: a claim a property cites for context
(``KCPU-REMAP`` by ``P-KMAP-SUCCEEDS``: the remapping is what kmap may do, not what fails) or a
permissive one (``PERMISSIVE``) is not among them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .index import get_property
from .property import Property

__all__ = ["CLASSES", "Rule", "RULES", "PERMISSIVE", "CONTEXT", "rule", "classify", "counts_against"]

CLASSES: dict[str, str] = {
    "documentation": "documentation defect",
    "core": "core defect",
    "exporter": "exporter defect",
    "caller": "caller obligation",
    "none": "not a defect",
}

# Claims whose text grants a permission rather than stating a rule: nobody breaks them.
PERMISSIVE: dict[str, str] = {
    "BEGIN-AVAILABLE": "the text is permissive: begin_cpu_access \"allows the exporter to ensure that the memory "
                       "is actually available for cpu access - the exporter might need to allocate or swap-in "
                       "and pin the backing storage\" (dma-buf.h, @begin_cpu_access); an exporter without the callback (the core then returns 0) "
                       "or whose storage is faulted in on access uses no permission and breaks nothing",
}

# Claims a property cites for context only, per property: a violation does not show them broken.
CONTEXT: dict[str, dict[str, str]] = {
    "P-KMAP-SUCCEEDS": {
        "KCPU-REMAP": "KCPU-REMAP says access is page-based and a page may be mapped any number of times in "
                      "one bracket; a kmap that fails breaks KCPU-ALWAYS-SUCCEED, not the permission to remap"},
    "P-MAPPING-IN-BOUNDS": {
        "LIFE-SIZE": "a mapping past the end comes from a missing size check (MMAP-SIZE-CHECK); the buffer's "
                     "size itself never changes in the model, so LIFE-SIZE is not what breaks"},
}


@dataclass(frozen=True)
class Rule:
    """The class of a property's violation and why; ``exporter_if`` names a policy knob that,
    when set, makes the violation the exporter's own (the same property can be a core defect
    for one policy and an exporter defect for another)."""

    cls: str
    reason: str
    exporter_if: str = ""


RULES: dict[str, Rule] = {
    "P-BEGIN-ERRORS": Rule(
        "core",
        "dma_buf_begin_cpu_access() calls the exporter's begin_cpu_access first and only then waits, "
        "interruptibly, for the fences (reservation_object_wait_timeout_rcu(..., true, ...)); when that wait "
        "returns -ERESTARTSYS the core returns it without calling end_cpu_access, so whatever the hook acquired "
        "(a pin) stays, and the restarted call acquires it again. No exporter that acquires anything in its "
        "hook can leave nothing behind on that failure (the reading P-BEGIN-ERRORS checks of the Returns "
        "paragraph, the project's wording, not the kernel's): the core's ordering makes it impossible",
        exporter_if="begin_leaks_pin_on_error"),
    "P-EXPORT-OPS-DRIFT": Rule(
        "documentation",
        "@mmap is documented \"optional\" while the v4.11 dma_buf_export() refuses an exporter without mmap, "
        "kmap or kmap_atomic: the text contradicts the code"),
}


def _derived(p: Property) -> Rule:
    if p.party == "tension":
        return Rule("documentation", "the property reads a tension between the text and the code")
    if p.kind == "undefined":
        who = {"importer": "a kernel importer", "userspace": "userspace"}.get(p.party, "the caller")
        return Rule("caller", f"documented as undefined or as {who}'s obligation; the core does not prevent it")
    if p.kind == "witness":
        return Rule("none", "a witness: reaching it shows the model can do something, not a defect")
    if p.party == "core":
        return Rule("core", "a rule the core itself keeps; only a core that breaks it (a mutant) violates it")
    return Rule("exporter", "a rule the exporter's callbacks can keep")


def rule(pid: str) -> Rule:
    """The rule for property ``pid``: ``RULES`` or the one its kind and party give; ``none`` when
    every claim it cites is permissive or context."""
    p = get_property(pid)
    if pid in RULES:
        return RULES[pid]
    if p.kind in ("always", "step") and not counts_against(pid):
        reasons = [PERMISSIVE.get(c) or CONTEXT.get(pid, {}).get(c, "") for c in p.claims]
        return Rule("none", "; ".join(r for r in reasons if r))
    return _derived(p)


def classify(pid: str, policy: Any = None) -> tuple[str, str]:
    """(class, reason) of a violation of ``pid`` by ``policy`` (an ExporterPolicy or None)."""
    r = rule(pid)
    if r.exporter_if and policy is not None and getattr(policy, r.exporter_if, False):
        return "exporter", f"the policy's own begin_cpu_access keeps the pin when it fails ({r.exporter_if})"
    return r.cls, r.reason


def counts_against(pid: str) -> tuple[str, ...]:
    """The claims a violation of ``pid`` shows broken (its claims less the permissive ones and
    those it cites for context)."""
    p = get_property(pid)
    ctx = CONTEXT.get(pid, {})
    return tuple(c for c in p.claims if c not in PERMISSIVE and c not in ctx)
