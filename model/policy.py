"""Exporter policies: what a driver's ``struct dma_buf_ops`` does, as data.

docs/design.md, point 5. A policy is a frozen record of knobs. Transitions read the knobs as model
variables (``k.begin_pins``), so the same transition definition serves every policy: the concrete
interpretation substitutes the policy's values before compiling, and the Z3 engine can leave them
free to ask which policies satisfy a pair of claims.

The ``mutant_*`` knobs change the dma-buf *core*, not the exporter. No real driver sets them; they
exist so that a property about the core can be shown to fail against a deliberately broken core
(a property no policy can ever violate would be suspicious).
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .files import FileProblem, parse_toml, read_text
from .terms import Term, var

__all__ = ["ExporterPolicy", "Knob", "KNOBS", "PolicyError", "load_policy_file", "knob_vars",
           "policy_from_mapping", "check_knob", "REVISIONS", "EXPORT_REQUIRES_V4_11", "export_requires",
           "export_refusal", "since", "knobs_at"]

REVISIONS = ("v4.11", "v5.12", "v6.12")


def since(first: str) -> tuple[str, ...]:
    """The revisions from ``first`` on, in order: ``since("v5.12")`` is ``("v5.12", "v6.12")``.
    A later revision behaves like the one before it unless a rule of its own says otherwise, so
    rules and properties name the revision they start at, once."""
    return REVISIONS[REVISIONS.index(first):]

# What dma_buf_export() refuses, the one definition that the export action's guard
# (model/actions/lifecycle.py), the catalog's revisions and the reports all read. The members of
# struct dma_buf_ops that the v4.11 dma_buf_export() requires, each with the knob that says the
# exporter has it: "if (WARN_ON(!exp_info->priv || !exp_info->ops || !exp_info->ops->map_dma_buf
# || !exp_info->ops->unmap_dma_buf || !exp_info->ops->release || !exp_info->ops->kmap_atomic ||
# !exp_info->ops->kmap || !exp_info->ops->mmap)) { return ERR_PTR(-EINVAL); }" (corpus §3.5).
# priv, map_dma_buf, unmap_dma_buf and release have no knob: every modelled exporter has them.
# v4.19 made kmap_atomic, kmap (then map_atomic, map) and mmap optional (corpus §6.1), so v5.12
# and any later revision require none of the members the model has knobs for.
EXPORT_REQUIRES_V4_11: tuple[tuple[str, str], ...] = (
    ("kmap", "has_kmap"), ("kmap_atomic", "has_kmap_atomic"), ("mmap", "has_mmap"))


def export_requires(revision: str) -> tuple[tuple[str, str], ...]:
    """(member of ``struct dma_buf_ops``, knob) pairs that ``dma_buf_export()`` at ``revision``
    refuses to do without (WARN_ON, ``-EINVAL``): those of v4.11, none from v4.19 on."""
    return EXPORT_REQUIRES_V4_11 if revision == "v4.11" else ()


def export_refusal(policy: "ExporterPolicy", revision: str) -> str:
    """Why ``dma_buf_export()`` at ``revision`` refuses ``policy``, in words ("" when it does
    not): ``dma_buf_export() refuses ops without kmap and kmap_atomic, corpus §3.5`` (a WARN_ON
    and ``-EINVAL``)."""
    missing = policy.export_missing(revision)
    if not missing:
        return ""
    names = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
    return f"dma_buf_export() refuses ops without {names}, corpus §3.5"


class PolicyError(ValueError):
    """A policy file or knob value that cannot be used; the message names the place."""


def _k(default: Any, doc: str, choices: tuple[str, ...] | None = None, since: str = "") -> Any:
    return field(default=default, metadata={"doc": doc, "choices": choices, "knob": True, "since": since})


@dataclass(frozen=True)
class ExporterPolicy:
    name: str
    description: str = ""
    breaks: tuple[str, ...] = ()        # claim IDs this policy is expected to break
    why: str = ""                        # where in the corpus the behaviour comes from
    based_on: str = ""                   # a policy file's based_on: the catalog exporter it starts from
    revisions: tuple[str, ...] = REVISIONS
    # --- callbacks present ------------------------------------------------------------------
    has_begin: bool = _k(True, "ops->begin_cpu_access exists")
    has_end: bool = _k(True, "ops->end_cpu_access exists")
    has_kmap: bool = _k(True, "ops->kmap exists (dma_buf_export() at v4.11 refuses ops without it)")
    has_kmap_atomic: bool = _k(True, "ops->kmap_atomic exists (dma_buf_export() at v4.11 refuses ops without it)")
    kmap_returns_null: bool = _k(False, "ops->kmap and ops->kmap_atomic are stubs that return NULL "
                                 "(i915 at v4.11): present for dma_buf_export(), no page for a caller")
    has_vmap: bool = _k(True, "ops->vmap exists")
    has_mmap: bool = _k(True, "ops->mmap exists (dma_buf_export() at v4.11 refuses ops without it)")
    # --- backing storage ----------------------------------------------------------------------
    coherent: bool = _k(False, "memory is coherent between CPU caches and devices")
    swappable: bool = _k(False, "unpinned storage can be evicted under memory pressure (shmem, GEM)")
    starts_resident: bool = _k(True, "storage is allocated at export time")
    evict_pinned: bool = _k(False, "BROKEN: memory pressure evicts storage even while it is pinned")
    # --- begin_cpu_access / end_cpu_access ----------------------------------------------------
    begin_swaps_in: bool = _k(True, "begin allocates or swaps the storage in")
    begin_pins: bool = _k(False, "begin pins the storage until end (omapdrm)")
    begin_sync: str = _k("direction", "cache maintenance in begin: 'direction' (dma_sync_*_for_cpu "
                         "by direction), 'none', or BROKEN 'ignore-direction' (never invalidates)",
                         ("none", "direction", "ignore-direction"))
    begin_waits_fences: bool = _k(False, "begin waits for the implicit fences itself (interruptibly) "
                                  "before it prepares anything")
    begin_interruptible: bool = _k(False, "begin takes an interruptible lock: -EINTR on a signal")
    begin_enomem: bool = _k(False, "begin fails with -ENOMEM (omapdrm: tiled buffers)")
    begin_leaks_pin_on_error: bool = _k(False, "BROKEN: an interrupted begin keeps the pin it took")
    end_flush: bool = _k(True, "end writes dirty cache lines back for write directions")
    end_unpins: bool = _k(True, "end drops a pin taken by begin")
    end_interruptible: bool = _k(False, "end takes an interruptible lock: -EINTR on a signal")
    end_requires_begin: bool = _k(False, "end fails with -EINVAL before the first begin (udmabuf)")
    # --- kmap ---------------------------------------------------------------------------------
    kmap_swaps_in: bool = _k(False, "kmap brings evicted storage back in itself (this can block)")
    # --- mmap ---------------------------------------------------------------------------------
    mmap_own_file: bool = _k(False, "mmap sets vma->vm_file to the exporter's own file (i915: shmem)")
    own_file_keeps_backing: bool = _k(True, "the exporter's own file keeps the storage alive after release")
    mmap_prefault: bool = _k(False, "mmap inserts every PTE at once (remap_pfn_range), no fault handler")
    fake_coherency: bool = _k(False, "end zaps the PTEs; the next CPU access faults and the fault "
                              "handler syncs for the CPU")
    zap_via: str = _k("own-file", "address space the exporter zaps PTEs through",
                      ("own-file", "anon-file"))
    # --- the core's cached mapping (v5.12 on; the core dropped it in ~v6.16) --------------------
    cache_sgt_mapping: bool = _k(False, "ops->cache_sgt_mapping: the core keeps an attachment's first "
                                 "mapping and its direction until detach; a later dma_buf_map_attachment "
                                 "in another direction, unless the kept one is DMA_BIDIRECTIONAL, "
                                 "returns -EBUSY",
        since="v5.12")
    # --- what holds the storage of a GEM shmem object (vgem, v5.12 on) -------------------------
    attach_holds_pages: bool = _k(False, "every attachment holds the storage in place while it exists "
                                  "(GEM PRIME: drm_gem_map_attach() pins the object, drm_gem_map_detach() "
                                  "unpins it): memory pressure cannot evict it", since="v5.12")
    mmap_holds_pages: bool = _k(False, "a userspace mapping holds the storage while it exists (GEM shmem: "
                                "drm_gem_shmem_mmap() gets the pages, the vma's close puts them): memory "
                                "pressure cannot evict it", since="v5.12")
    # --- dynamic dma-buf and the reservation lock (act at v6.12 only) --------------------------
    dynamic: bool = _k(False, "v6.12: a dynamic exporter (ops->pin exists): it may move storage that "
                       "dynamic attachments have mapped, under the reservation lock, and calls "
                       "dma_buf_move_notify",
        since="v6.12")
    move_notifies: bool = _k(True, "v6.12: a move of storage calls dma_buf_move_notify (BROKEN when false)",
        since="v6.12")
    callback_takes_resv: bool = _k(False, "BROKEN (v6.12): a callback of the locked list (pin, unpin, "
                                   "map_dma_buf, unmap_dma_buf, vmap, vunmap) takes dmabuf->resv itself",
        since="v6.12")
    # --- mutants of the core (never set by a real driver) -------------------------------------
    mutant_vmap_no_refcount: bool = _k(False, "MUTANT core: calls ops->vmap on every dma_buf_vmap")
    mutant_no_size_check: bool = _k(False, "MUTANT core: mmap skips the size check")
    mutant_sync_stateful: bool = _k(False, "MUTANT core: SYNC_END without SYNC_START is refused")
    mutant_no_fence_wait: bool = _k(False, "MUTANT core: begin does not wait for implicit fences")
    mutant_vma_no_file_ref: bool = _k(False, "MUTANT core: a mapping holds no reference on vm_file")
    mutant_static_no_pin: bool = _k(False, "MUTANT core (v6.12): dma_buf_attach does not pin the storage "
                                    "of a dynamic exporter for a non-dynamic importer",
        since="v6.12")

    @property
    def kmap_gives_pages(self) -> bool:
        """ops->kmap exists and is not a NULL stub."""
        return self.has_kmap and not self.kmap_returns_null

    @property
    def kmap_atomic_gives_pages(self) -> bool:
        """ops->kmap_atomic exists and is not a NULL stub."""
        return self.has_kmap_atomic and not self.kmap_returns_null

    def export_missing(self, revision: str) -> tuple[str, ...]:
        """The members of ``struct dma_buf_ops`` that ``dma_buf_export()`` at ``revision``
        requires and this exporter lacks (``export_requires``); empty when it can be exported."""
        return tuple(member for member, knob in export_requires(revision) if not getattr(self, knob))

    def exportable_at(self, revision: str) -> bool:
        """Does ``dma_buf_export()`` at ``revision`` accept this exporter's ops?"""
        return not self.export_missing(revision)

    @property
    def exportable_revisions(self) -> tuple[str, ...]:
        """The revisions whose ``dma_buf_export()`` accepts this exporter's ops."""
        return tuple(r for r in REVISIONS if self.exportable_at(r))

    def knob_values(self) -> dict[str, bool | int]:
        """Knob name -> the value transitions see (enumerated knobs as their index)."""
        out: dict[str, bool | int] = {}
        for k in KNOBS.values():
            v = getattr(self, k.name)
            out[k.name] = k.choices.index(v) if k.choices else v
        return out

    def knobs(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in KNOBS}

    def with_knobs(self, **changes: Any) -> "ExporterPolicy":
        for k, v in changes.items():
            check_knob(k, v, "with_knobs")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Knob:
    name: str
    sort: str                   # "bool" or "int"
    default: Any
    doc: str
    choices: tuple[str, ...] | None
    since: str = ""             # the first revision whose rules read the knob ("": all)


KNOBS: dict[str, Knob] = {
    f.name: Knob(f.name, "int" if f.metadata["choices"] else "bool", f.default, f.metadata["doc"],
                 f.metadata["choices"], f.metadata["since"])
    for f in fields(ExporterPolicy) if f.metadata.get("knob")
}


def knobs_at(revision: str) -> tuple[str, ...]:
    """The knobs the rules of ``revision`` read: a knob introduced for a later revision has nothing
    to act on before it (a search over the policies of an earlier revision leaves it out)."""
    return tuple(k.name for k in KNOBS.values()
                 if not k.since or REVISIONS.index(revision) >= REVISIONS.index(k.since))


def later_knobs_fixed(revision: str) -> dict[str, Any]:
    """The knobs ``revision`` does not have, as model variables ``k.<name>`` fixed at their
    defaults (choices by index): a query over every policy of ``revision`` leaves them out, and a
    rule shared by the revisions that reads one (``derived.pinned``) then reads its default."""
    at = set(knobs_at(revision))
    return {"k." + k.name: (k.choices.index(k.default) if k.choices else k.default)
            for k in KNOBS.values() if k.name not in at}


def knob_vars() -> dict[str, Term]:
    """The knobs as model variables ``k.<name>`` (what transitions read)."""
    return {k.name: var("k." + k.name, k.sort) for k in KNOBS.values()}


def check_knob(name: str, value: Any, where: str) -> None:
    """``PolicyError`` starting with ``where`` unless ``name`` is a knob and ``value`` one of its values."""
    if name not in KNOBS:
        close = difflib.get_close_matches(name, list(KNOBS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise PolicyError(f"{where}: unknown knob {name!r} ({hint}'dmabuf-check exporters --knobs' lists the knobs)")
    k = KNOBS[name]
    if k.choices:
        if value not in k.choices:
            raise PolicyError(f"{where}: knob {name} must be one of {', '.join(map(repr, k.choices))}, got {value!r}")
    elif not isinstance(value, bool):
        raise PolicyError(f"{where}: knob {name} must be true or false, got {value!r}")


def policy_from_mapping(data: dict[str, Any], where: str, base: ExporterPolicy | None = None) -> ExporterPolicy:
    """Build a policy from parsed TOML: top-level name/description/breaks/based_on, [knobs]."""
    allowed = {"name", "description", "breaks", "why", "based_on", "knobs", "revisions"}
    for key in data:
        if key not in allowed:
            raise PolicyError(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{where}: 'name' must be a non-empty string")
    knobs = data.get("knobs", {})
    if not isinstance(knobs, dict):
        raise PolicyError(f"{where}: [knobs] must be a table")
    for k, v in knobs.items():
        check_knob(k, v, f"{where}: [knobs]")
    breaks = data.get("breaks", [])
    if not isinstance(breaks, list) or not all(isinstance(b, str) for b in breaks):
        raise PolicyError(f"{where}: 'breaks' must be a list of claim IDs")
    for key in ("description", "why"):
        if not isinstance(data.get(key, ""), str):
            raise PolicyError(f"{where}: {key!r} must be a string")
    revisions = data.get("revisions", list(REVISIONS))
    if not isinstance(revisions, list) or any(r not in REVISIONS for r in revisions):
        raise PolicyError(f"{where}: 'revisions' must be a list drawn from {', '.join(REVISIONS)}")
    start = base if base is not None else ExporterPolicy(name=name)
    return dataclasses.replace(
        start, name=name, description=str(data.get("description", start.description)),
        why=str(data.get("why", "")), breaks=tuple(breaks), revisions=tuple(revisions),
        based_on=base.name if base is not None else "", **knobs)


def load_policy_file(path: str | Path, catalog: dict[str, ExporterPolicy] | None = None) -> ExporterPolicy:
    """Load a user's policy from a TOML file; errors are ``PolicyError`` naming the file."""
    p = Path(path)
    try:
        data = parse_toml(read_text(p))
    except FileProblem as e:
        raise PolicyError(f"{p}: " + str(e).replace("cannot read:", "cannot read policy file:", 1)) from None
    base = None
    if "based_on" in data:
        based_on = data["based_on"]
        if not isinstance(based_on, str) or catalog is None or based_on not in catalog:
            close = difflib.get_close_matches(based_on, list(catalog or ()), n=1) if isinstance(based_on, str) else []
            hint = f" (did you mean {close[0]!r}?)" if close else "; 'dmabuf-check exporters' lists the catalog"
            raise PolicyError(f"{p}: based_on names no catalog exporter: {based_on!r}{hint}")
        base = catalog[based_on]
    return policy_from_mapping(data, str(p), base)
