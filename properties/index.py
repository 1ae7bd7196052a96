"""The property catalog: every property, by ID."""
from __future__ import annotations

from . import callbacks, invariants, kernel_access, later_revision, lifecycle, locking, mappings, witnesses
from .property import Property

__all__ = ["PROPERTIES", "get_property", "by_claim"]

PROPERTIES: tuple[Property, ...] = (
    *lifecycle.PROPERTIES, *kernel_access.PROPERTIES, *callbacks.PROPERTIES,
    *mappings.PROPERTIES, *witnesses.PROPERTIES, *later_revision.PROPERTIES,
    *invariants.PROPERTIES, *locking.PROPERTIES,
)

_BY_ID = {p.id: p for p in PROPERTIES}
if len(_BY_ID) != len(PROPERTIES):  # pragma: no cover - a definition error
    raise ValueError("two properties share an ID")


def get_property(pid: str) -> Property:
    try:
        return _BY_ID[pid]
    except KeyError:
        raise KeyError(f"unknown property {pid!r}") from None


def by_claim(claim: str) -> list[Property]:
    return [p for p in PROPERTIES if claim in p.claims]
