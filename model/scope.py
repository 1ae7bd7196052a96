"""Bounded scopes: how many buffers, pages, fds, mappings and attachments the model has.

The model is finite so that the explicit engine can enumerate it and Z3 can encode it; a scope
names those bounds. Every buffer has ``pages`` pages (``dmabuf->size = pages << PAGE_SHIFT``).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Scope", "SCOPES", "get_scope"]


@dataclass(frozen=True)
class Scope:
    name: str
    buffers: int        # dma-bufs the exporter can export
    pages: int          # pages per buffer
    fds: int            # slots of the process's fd table
    vmas: int           # userspace mappings at once
    attachments: int    # device attachments at once
    refs: int = 2       # bound of the small counters (kernel references, pins, vmaps, kmaps)

    def __post_init__(self) -> None:
        for f in ("buffers", "pages", "fds", "vmas", "attachments", "refs"):
            if getattr(self, f) < 1:
                raise ValueError(f"scope {self.name}: {f} must be at least 1")


SCOPES: dict[str, Scope] = {
    "tiny": Scope("tiny", buffers=1, pages=1, fds=2, vmas=1, attachments=1),
    "small": Scope("small", buffers=1, pages=2, fds=2, vmas=2, attachments=1),
    "default": Scope("default", buffers=2, pages=2, fds=3, vmas=2, attachments=2),
}


def get_scope(name: str) -> Scope:
    try:
        return SCOPES[name]
    except KeyError:
        raise KeyError(f"unknown scope {name!r}; known scopes: {', '.join(SCOPES)}") from None
