"""The action registry: each action's name, actor, parameters and transition definition."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..constants import DIRECTIONS, PGOFF_MAX, U64_MAX, ULONG_MAX
from ..policy import REVISIONS
from ..scope import Scope

__all__ = ["ActionSpec", "ACTIONS", "action", "DOMAINS", "VALUE_RANGES", "SYNC_FLAG_VALUES"]

# DMA_BUF_IOCTL_SYNC flags the scope draws from: every value 0..8 and the IGT's all-ones (-1).
SYNC_FLAG_VALUES: tuple[int, ...] = tuple(range(9)) + ((1 << 64) - 1,)

DOMAINS: dict[str, Callable[[Scope], Sequence[Any]]] = {
    "buf": lambda sc: range(sc.buffers),
    "page": lambda sc: range(sc.pages),
    "fd": lambda sc: range(sc.fds),
    "vma": lambda sc: range(sc.vmas),
    "att": lambda sc: range(sc.attachments),
    "direction": lambda sc: tuple(DIRECTIONS.values()),
    "interrupted": lambda sc: (False, True),
    "flags": lambda sc: SYNC_FLAG_VALUES,
    "pgoff": lambda sc: range(sc.pages + 1),
    "npages": lambda sc: range(1, sc.pages + 2),
}


# Arguments that are plain values a caller passes, not handles of model objects: the engines
# enumerate the DOMAINS above (the scope's representative values), but a litmus step or a
# replayed call may pass any value of the C type, and the action's rule gives the kernel's
# answer for it. (lowest, highest, the C type as the kernel declares it.)
VALUE_RANGES: dict[str, tuple[int, int, str]] = {
    "flags": (0, U64_MAX, "__u64 (struct dma_buf_sync.flags)"),
    "pgoff": (0, ULONG_MAX, "unsigned long (vma->vm_pgoff)"),
    "npages": (0, PGOFF_MAX, "vma_pages(vma) of an unsigned long length"),
}


@dataclass(frozen=True)
class ActionSpec:
    name: str
    actor: str                       # userspace | kernel importer | exporter | device | memory
    params: tuple[str, ...]
    fn: Callable[..., Any]
    doc: str
    revisions: tuple[str, ...]
    optional: tuple[str, ...] = ()   # parameters a litmus step may leave out (default False)

    def domain(self, param: str, scope: Scope) -> Sequence[Any]:
        return DOMAINS[param](scope)


ACTIONS: dict[str, ActionSpec] = {}


def action(actor: str, *params: str, revisions: tuple[str, ...] = REVISIONS,
           optional: tuple[str, ...] = ()):
    """Register a transition definition; its name is the function's name."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for p in params:
            if p not in DOMAINS:
                raise ValueError(f"action {fn.__name__}: unknown parameter {p!r}")
        if fn.__name__ in ACTIONS:
            raise ValueError(f"action {fn.__name__} registered twice")
        doc = (fn.__doc__ or "").strip()
        ACTIONS[fn.__name__] = ActionSpec(fn.__name__, actor, tuple(params), fn, doc, revisions, optional)
        return fn
    return register
