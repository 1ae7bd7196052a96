"""The model's state: a flat, fixed-width vector of small integers and booleans.

docs/design.md, point 1. Every field is declared once here with its range and its meaning; a scope
turns the declarations into a flat layout (``life[0]``, ``cache[0][1]``, ...). A concrete state is
a plain tuple in that layout, so it is hashable, a networkx node as it is, and packs into integers
for a vectorised search; symbolically, each field is one model variable.

Fields that model kernel objects use the kernel's names where it has them (``vmapping_counter``);
fields that exist only to judge the documentation ("ghost" state, which the kernel does not keep,
such as whether a userspace SYNC bracket is open) say so in their description.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any, Callable, Iterator, Sequence

from .policy import REVISIONS
from .scope import Scope
from .terms import Term, lift, select, ite, eq, var

__all__ = [
    "FieldSpec", "FIELDS", "Schema", "Arr", "SymState", "NextState",
    "LIFE_UNEXPORTED", "LIFE_LIVE", "LIFE_RELEASED", "CACHE_INVALID", "CACHE_CLEAN",
    "CACHE_DIRTY", "FENCE_NONE", "FENCE_EXCL", "FENCE_SHARED", "W_NONE", "W_USER_OPEN",
    "W_HANDED_OFF", "W_UNDISCIPLINED", "W_KERNEL_OPEN", "FieldWords", "FIELD_WORDS", "WORDS_OF",
    "describe_changes",
]

LIFE_UNEXPORTED, LIFE_LIVE, LIFE_RELEASED = 0, 1, 2
CACHE_INVALID, CACHE_CLEAN, CACHE_DIRTY = 0, 1, 2
FENCE_NONE, FENCE_EXCL, FENCE_SHARED = 0, 1, 2
# wclass: who wrote the newest value of a page that memory does not hold yet
W_NONE, W_USER_OPEN, W_HANDED_OFF, W_UNDISCIPLINED, W_KERNEL_OPEN = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class FieldSpec:
    name: str
    dims: tuple[str, ...]                    # scope attributes indexing the field
    hi: Callable[[Scope], int]               # largest value (bools: 1)
    sort: str = "int"                        # "int" or "bool"
    init: int | bool = 0
    ghost: bool = False                      # not kept by the kernel; kept to judge the docs
    doc: str = ""
    since: str = ""                          # the first revision whose state has the field ("": all)


def _b(name: str, dims: tuple[str, ...], doc: str, init: bool = False, ghost: bool = False,
       since: str = "") -> FieldSpec:
    return FieldSpec(name, dims, lambda sc: 1, "bool", init, ghost, doc, since)


def _i(name: str, dims: tuple[str, ...], hi: Callable[[Scope], int], doc: str, ghost: bool = False,
       since: str = "") -> FieldSpec:
    return FieldSpec(name, dims, hi, "int", 0, ghost, doc, since)


_R = lambda sc: sc.refs  # noqa: E731
B, BP, F, V, VP, A = ("buffers",), ("buffers", "pages"), ("fds",), ("vmas",), ("vmas", "pages"), ("attachments",)

FIELDS: tuple[FieldSpec, ...] = (
    # --- the dma-buf object (drivers/dma-buf/dma-buf.c) -------------------------------------
    _i("life", B, lambda sc: 2, "0 not exported yet, 1 live (exported), 2 released (ops->release ran)"),
    _i("kref", B, _R, "kernel references: the export reference until dma_buf_fd, plus dma_buf_get"),
    _i("release_calls", B, lambda sc: 2, "how often ops->release ran", ghost=True),
    _i("vmapping_counter", B, _R, "dmabuf->vmapping_counter"),
    _i("exp_vmaps", B, _R, "exporter vmap calls not yet undone by its vunmap", ghost=True),
    _i("fence", B, lambda sc: 2, "unsignaled implicit fence in dmabuf->resv: 0 none, 1 exclusive, 2 shared"),
    # --- the exporter's backing storage ------------------------------------------------------
    _b("resident", B, "backing storage is allocated / swapped in"),
    _i("pins", B, _R, "pins the exporter's begin_cpu_access holds on the storage"),
    _i("user_pins", B, _R, "of those pins, the ones taken on behalf of a userspace SYNC", ghost=True),
    _b("prepared", B, "exporter-private: begin_cpu_access has prepared the buffer once (udmabuf's sg table)"),
    # --- CPU access brackets (ghost: the core keeps no bracket state, corpus §5.1) ------------
    _b("kopen", B, "a kernel begin/end bracket is open", ghost=True),
    _i("kdir", B, lambda sc: 2, "direction of the open kernel bracket (that of the last one when none "
       "is open: nothing reads it then)", ghost=True),
    _b("kended", B, "the last kernel bracket has ended (kmap after end is undefined)", ghost=True),
    _b("krace", B, "a device wrote the buffer while the kernel bracket was open", ghost=True),
    _b("uopen", B, "a userspace SYNC_START..SYNC_END bracket is open", ghost=True),
    _i("udir", B, lambda sc: 2, "direction of the open userspace bracket (that of the last one when none "
       "is open: nothing reads it then)", ghost=True),
    _b("urace", B, "a device wrote the buffer while the userspace bracket was open", ghost=True),
    # --- pages: memory, the CPU cache, kernel mappings ---------------------------------------
    _b("mem_ok", BP, "memory holds the newest value of the page", init=True, ghost=True),
    _i("cache", BP, lambda sc: 2, "CPU cache line of the page: 0 invalid, 1 clean, 2 dirty"),
    _b("cache_ok", BP, "the cache line holds the newest value of the page", ghost=True),
    _i("wclass", BP, lambda sc: 4, "who wrote the newest value memory lacks: 0 none, 1 user in "
       "open write bracket, 2 in a write bracket since ended, 3 without a proper bracket, 4 kernel "
       "in open write bracket", ghost=True),
    _i("kmaps", BP, _R, "live dma_buf_kmap mappings of the page"),
    _i("kmaps_atomic", BP, lambda sc: 3, "live dma_buf_kmap_atomic mappings of the page"),
    # --- the process: fd table and mappings ---------------------------------------------------
    _b("fd_open", F, "the fd slot holds a dma-buf file"),
    _i("fd_buf", F, lambda sc: sc.buffers - 1, "the buffer of the file in the fd slot"),
    _b("vma_live", V, "the mapping exists"),
    _i("vma_buf", V, lambda sc: sc.buffers - 1, "the buffer the mapping maps"),
    _i("vma_pgoff", V, lambda sc: sc.pages, "vma->vm_pgoff as set up by mmap (buffer page of the first page)"),
    _i("vma_npages", V, lambda sc: sc.pages + 1, "vma_pages(vma) (larger than the buffer only under a mutant core)"),
    _b("vma_own_file", V, "vma->vm_file is the exporter's own file, not the dma-buf's anon file"),
    _b("pte", VP, "the PTE of page q of the mapping is present"),
    # --- device attachments -------------------------------------------------------------------
    _b("att_live", A, "the attachment exists (dma_buf_attach)"),
    _i("att_buf", A, lambda sc: sc.buffers - 1, "the buffer the attachment is attached to"),
    _b("att_mapped", A, "the attachment is mapped for DMA (dma_buf_map_attachment)"),
    _i("att_pins", A, _R, "dma_buf_pin calls on the attachment not yet undone by dma_buf_unpin "
       "(v5.12 only; always 0 at v4.11, which has no dma_buf_pin)"),
    # the dma-buf core's cached mapping (v5.12 on): attach->sgt and attach->dir, kept by
    # dma_buf_map_attachment() when ops->cache_sgt_mapping is set (or made at attach time when the
    # importer's and the exporter's dynamic-ness differ, v6.12) and dropped only at detach
    _b("att_sgt", A, "the core keeps a cached mapping of the attachment (attach->sgt: the first "
       "dma_buf_map_attachment with ops->cache_sgt_mapping, or the attach-time mapping)", since="v5.12"),
    _i("att_dir", A, lambda sc: 2, "direction of the cached mapping (attach->dir; 0 when none is cached)",
       since="v5.12"),
    # --- the reservation lock and dynamic attachments: v6.12 only (the state of an earlier ------
    # --- revision has no such fields, so its searches and proofs are those of before) ---------
    _b("resv_held", B, "the kernel importer holds the buffer's reservation lock (dma_resv_lock(dmabuf->resv)); "
       "the locking convention, corpus §6.6", since="v6.12"),
    _b("att_dynamic", A, "the attachment was made with dma_buf_dynamic_attach (its importer_ops has "
       "move_notify)", since="v6.12"),
)



# --- the fields in a kernel reader's words ----------------------------------------------------
# One table, read by trace rendering (properties/trace.py) and the reports: each subject groups the
# fields of one kernel object (the CPU cache line of a page, a vm_area_struct, ...) and says its
# value in words from those fields. Every field belongs to exactly one subject.

_DIRECTION = {0: "DMA_BIDIRECTIONAL", 1: "DMA_TO_DEVICE", 2: "DMA_FROM_DEVICE"}
_SYNC_RW = {0: "DMA_BUF_SYNC_RW", 1: "DMA_BUF_SYNC_WRITE", 2: "DMA_BUF_SYNC_READ"}
_LIFE = {LIFE_UNEXPORTED: "not exported", LIFE_LIVE: "exported", LIFE_RELEASED: "released (ops->release ran)"}
_FENCE = {FENCE_NONE: "none", FENCE_EXCL: "exclusive (a device job will write)",
          FENCE_SHARED: "shared (a device job will read)"}
_WCLASS = {
    W_NONE: "lacks the newest data",
    W_USER_OPEN: "lacks a CPU write made by userspace inside an open SYNC write bracket",
    W_HANDED_OFF: "lacks a CPU write made inside a write bracket since ended",
    W_UNDISCIPLINED: "lacks a CPU write made outside a bracket or in one without the write direction",
    W_KERNEL_OPEN: "lacks a CPU write made by the kernel inside an open write bracket",
}


@dataclass(frozen=True)
class FieldWords:
    """How one subject (a kernel object, or one of the model's ghost records) is said.

    ``fields``: the fields it groups (of the same dimensions; the index of a change picks the
    object); ``subject``: its name, formatted with that index (``{0}``, ``{1}``); ``value``: its
    value in words, from ``at(field)`` (the field at that index, in one state); ``cleared``: the
    word for the first field going from true to false (a PTE is "zapped"), if not the value's."""
    fields: tuple[str, ...]
    subject: str
    value: Callable[[Callable[[str], Any]], str]
    cleared: str = ""


def _count(what: str, none: str = "none") -> Callable[[Callable[[str], Any]], str]:
    return lambda at: f"{at(what)}" if at(what) else none


def _pins(at) -> str:
    n, u = at("pins"), at("user_pins")
    if not n:
        return "not pinned"
    return ("pinned by begin_cpu_access" + (f" ({n} pins)" if n > 1 else "")
            + (f", {u} for a userspace DMA_BUF_IOCTL_SYNC" if u else ""))


def _kernel_bracket(at) -> str:
    if at("kopen"):
        return (f"open, {_DIRECTION[at('kdir')]}"
                + (", a device wrote the buffer meanwhile" if at("krace") else ""))
    return "ended (dma_buf_end_cpu_access)" if at("kended") else "closed"


def _user_bracket(at) -> str:
    if not at("uopen"):
        return "closed"
    return f"open, {_SYNC_RW[at('udir')]}" + (", a device wrote the buffer meanwhile" if at("urace") else "")


def _cache_line(at) -> str:
    state = {CACHE_INVALID: "invalid", CACHE_CLEAN: "clean", CACHE_DIRTY: "dirty"}[at("cache")]
    if at("cache") == CACHE_INVALID or at("cache_ok"):
        return state
    return "stale" if at("cache") == CACHE_CLEAN else "dirty and stale"


def _memory(at) -> str:
    return "holds the newest data" if at("mem_ok") else _WCLASS[at("wclass")]


def _kmaps(at) -> str:
    parts = [f"{at('kmaps')} dma_buf_kmap"] if at("kmaps") else []
    parts += [f"{at('kmaps_atomic')} dma_buf_kmap_atomic"] if at("kmaps_atomic") else []
    return ", ".join(parts) or "none"


def _vma(at) -> str:
    if not at("vma_live"):
        return "none"
    lo, n = at("vma_pgoff"), at("vma_npages")
    pages = f"page {lo}" if n == 1 else f"pages {lo}..{lo + n - 1}"
    file = "the exporter's own file" if at("vma_own_file") else "the dma-buf's file"
    return f"maps {pages} of dma-buf {at('vma_buf')} (vm_file: {file})"


def _attachment(at) -> str:
    if not at("att_live"):
        return "none"
    return (f"attached to dma-buf {at('att_buf')}" + (", mapped for DMA" if at("att_mapped") else "")
            + (f", {at('att_pins')} dma_buf_pin" if at("att_pins") else "")
            + (", dynamic (importer_ops->move_notify)" if at("att_dynamic") else "")
            + (f", cached mapping {_DIRECTION[at('att_dir')]} (attach->sgt)" if at("att_sgt") else ""))


FIELD_WORDS: tuple[FieldWords, ...] = (
    FieldWords(("life",), "dma-buf {0}", lambda at: _LIFE[at("life")]),
    FieldWords(("kref",), "kernel references to dma-buf {0} (export, dma_buf_get)", _count("kref", "0")),
    FieldWords(("release_calls",), "ops->release calls for dma-buf {0}", _count("release_calls", "0")),
    FieldWords(("vmapping_counter",), "vmapping_counter of dma-buf {0}", _count("vmapping_counter", "0")),
    FieldWords(("exp_vmaps",), "exporter vmap calls not undone by vunmap, dma-buf {0}", _count("exp_vmaps", "0")),
    FieldWords(("fence",), "unsignaled implicit fence in the reservation object of dma-buf {0}",
               lambda at: _FENCE[at("fence")]),
    FieldWords(("resident",), "backing storage of dma-buf {0}",
               lambda at: "resident" if at("resident") else "not resident", cleared="evicted"),
    FieldWords(("pins", "user_pins"), "storage of dma-buf {0}", _pins),
    FieldWords(("prepared",), "exporter's one-time preparation in begin_cpu_access, dma-buf {0}",
               lambda at: "done" if at("prepared") else "not done"),
    FieldWords(("kopen", "kdir", "kended", "krace"), "kernel CPU-access bracket on dma-buf {0}", _kernel_bracket),
    FieldWords(("uopen", "udir", "urace"), "userspace DMA_BUF_IOCTL_SYNC bracket on dma-buf {0}", _user_bracket),
    FieldWords(("cache", "cache_ok"), "CPU cache line of page {1} of dma-buf {0}", _cache_line),
    FieldWords(("mem_ok", "wclass"), "memory of page {1} of dma-buf {0}", _memory),
    FieldWords(("kmaps", "kmaps_atomic"), "kernel mappings of page {1} of dma-buf {0}", _kmaps),
    FieldWords(("fd_open", "fd_buf"), "fd {0}",
               lambda at: f"open on dma-buf {at('fd_buf')}" if at("fd_open") else "closed"),
    FieldWords(("vma_live", "vma_buf", "vma_pgoff", "vma_npages", "vma_own_file"), "vm_area_struct {0}", _vma,
               cleared="unmapped"),
    FieldWords(("pte",), "PTE of page {1} of vm_area_struct {0}",
               lambda at: "present" if at("pte") else "not present", cleared="zapped"),
    FieldWords(("att_live", "att_buf", "att_mapped", "att_pins", "att_dynamic", "att_sgt", "att_dir"), "attachment {0}",
               _attachment),
    FieldWords(("resv_held",), "reservation lock (dmabuf->resv) of dma-buf {0}",
               lambda at: "held by the kernel importer" if at("resv_held") else "not held"),
)

WORDS_OF: dict[str, FieldWords] = {f: w for w in FIELD_WORDS for f in w.fields}
_ORDER = {w.subject: i for i, w in enumerate(FIELD_WORDS)}


def _split(flat: str) -> tuple[str, str]:
    """``cache[0][1]`` -> ``("cache", "[0][1]")``."""
    i = flat.find("[")
    return (flat, "") if i < 0 else (flat[:i], flat[i:])


def _get(state: Sequence[Any], offset: dict[str, int], flat: str) -> Any:
    """A field of ``state``, or 0 for one its revision's state does not have (``FieldSpec.since``)."""
    return state[offset[flat]] if flat in offset else 0


def describe_changes(names: Sequence[str], pre: Sequence[Any], post: Sequence[Any]) -> list[str]:
    """The fields that differ between two states, in words: one line per kernel object that
    changed (``CPU cache line of page 0 of dma-buf 0: clean -> stale``), in the order of
    ``FIELD_WORDS``. ``names`` is the flat layout of the states (``Schema.names``)."""
    offset = {n: i for i, n in enumerate(names)}
    lines: list[tuple[int, str, str]] = []
    done: set[tuple[str, str]] = set()
    for i, n in enumerate(names):
        if pre[i] == post[i]:
            continue
        group, idx = _split(n)
        w = WORDS_OF[group]
        if (w.subject, idx) in done:
            continue
        done.add((w.subject, idx))
        old = w.value(lambda f: _get(pre, offset, f + idx))
        if w.cleared and post[offset[w.fields[0] + idx]] != pre[offset[w.fields[0] + idx]] \
                and not post[offset[w.fields[0] + idx]]:
            new = w.cleared
        else:
            new = w.value(lambda f: _get(post, offset, f + idx))
        ix = [int(x) for x in idx.strip("[]").split("][")] if idx else []
        if old == new:   # a change the words do not show (a field of an object that does not exist)
            raw = ", ".join(f"{f}{idx}: {pre[offset[f + idx]]!r}->{post[offset[f + idx]]!r}" for f in w.fields
                            if f + idx in offset and pre[offset[f + idx]] != post[offset[f + idx]])
            lines.append((_ORDER[w.subject], idx, f"{w.subject.format(*ix)}: {old} ({raw})"))
        else:
            lines.append((_ORDER[w.subject], idx, f"{w.subject.format(*ix)}: {old} -> {new}"))
    return [text for _, _, text in sorted(lines)]


class Arr:
    """A fixed-length array of terms (nested for two dimensions), as transitions see a field.

    Static indices are plain ints: ``a[buf]``. A term index selects with an ``ite`` chain:
    ``a.at(idx)``; ``a.put(idx, value)`` stores at a term index.
    """

    __slots__ = ("items", "writable")

    def __init__(self, items: list, writable: bool) -> None:
        self.items = items
        self.writable = writable

    def __getitem__(self, i: int):
        if isinstance(i, Term):
            raise TypeError("index a model array by a term with .at(index), not [index]")
        return self.items[i]

    def __setitem__(self, i: int, value: Any) -> None:
        if not self.writable:
            raise TypeError("the pre-state is read-only; assign to the next state")
        if isinstance(i, Term):
            raise TypeError("store at a term index with .put(index, value)")
        if isinstance(self.items[i], Arr):
            raise TypeError("assign to an element of the row, not to the row")
        old = self.items[i]
        value = lift(value)
        if value.sort != old.sort:
            raise TypeError(f"assigning a {value.sort} to a {old.sort} field")
        self.items[i] = value

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator:
        return iter(self.items)

    def at(self, index: Any):
        if isinstance(self.items[0], Arr):
            return Arr([select([row[j] for row in self.items], index)
                        for j in range(len(self.items[0]))], False)
        return select(self.items, index)

    def put(self, index: Any, value: Any) -> None:
        index = lift(index)
        for i in range(len(self.items)):
            self[i] = ite(eq(index, i), value, self.items[i])


def _has(spec: FieldSpec, revision: str) -> bool:
    """Is field ``spec`` part of the state at ``revision``?"""
    return not spec.since or REVISIONS.index(revision) >= REVISIONS.index(spec.since)


class Schema:
    """The flat layout of the state for one scope at one documentation revision (a field declared
    ``since`` a later revision is not part of an earlier revision's state)."""

    def __init__(self, scope: Scope, revision: str = "v4.11") -> None:
        self.scope = scope
        self.revision = revision
        self.names: list[str] = []
        self.specs: list[FieldSpec] = []
        self.groups: dict[str, list] = {}
        self.offset: dict[str, int] = {}
        for spec in FIELDS:
            if not _has(spec, revision):
                continue
            shape = [getattr(scope, d) for d in spec.dims]
            self.groups[spec.name] = shape
            for idx in product(*(range(n) for n in shape)):
                flat = spec.name + "".join(f"[{i}]" for i in idx)
                self.offset[flat] = len(self.names)
                self.names.append(flat)
                self.specs.append(spec)
        self.width = len(self.names)
        self.spec_by_group = {s.name: s for s in FIELDS}
        self.bounds = [(0, s.hi(scope)) for s in self.specs]
        self.is_bool = [s.sort == "bool" for s in self.specs]
        self.init: tuple = tuple(bool(s.init) if s.sort == "bool" else int(s.init) for s in self.specs)

    def _nest(self, group: str, leaf: Callable[[str], Any]) -> Any:
        shape = self.groups[group]

        def build(prefix: str, dims: Sequence[int]):
            if not dims:
                return leaf(prefix)
            return [build(f"{prefix}[{i}]", dims[1:]) for i in range(dims[0])]

        return build(group, shape)

    def variables(self, prefix: str = "") -> list[Term]:
        """One model variable per field, named ``prefix + flat name``."""
        return [var(prefix + n, s.sort) for n, s in zip(self.names, self.specs)]

    def sym(self, prefix: str = "") -> "SymState":
        return SymState(self, self.variables(prefix))

    def as_dict(self, state: Sequence[Any]) -> dict[str, Any]:
        """The state as nested lists per field group (what traces and notebooks show)."""
        out: dict[str, Any] = {}
        for g in self.groups:
            out[g] = self._nest(g, lambda flat: state[self.offset[flat]])
        return out

    def from_dict(self, d: dict[str, Any]) -> tuple:
        vals = list(self.init)
        for g in self.groups:
            if g not in d:
                raise KeyError(f"state has no field {g!r}")
            def walk(prefix: str, v: Any) -> None:
                if isinstance(v, list):
                    for i, x in enumerate(v):
                        walk(f"{prefix}[{i}]", x)
                else:
                    if prefix not in self.offset:
                        raise KeyError(f"state field {prefix} is outside the scope")
                    spec = self.specs[self.offset[prefix]]
                    vals[self.offset[prefix]] = bool(v) if spec.sort == "bool" else int(v)
            walk(g, d[g])
        return tuple(vals)

    def describe(self, a: Sequence[Any], b: Sequence[Any]) -> list[str]:
        """The change from state ``a`` to state ``b`` in words (:func:`describe_changes`)."""
        return describe_changes(self.names, a, b)

    def diff(self, a: Sequence[Any], b: Sequence[Any]) -> dict[str, tuple[Any, Any]]:
        """The flat fields that differ between two states, with their old and new values."""
        return {n: (x, y) for n, x, y in zip(self.names, a, b) if x != y}

    def check(self, state: Sequence[Any]) -> None:
        """Raise ``ValueError`` if ``state`` is not a state of this layout."""
        if len(state) != self.width:
            raise ValueError(f"state has {len(state)} fields, the scope {self.scope.name} has {self.width}")
        for n, v, (lo, hi), s in zip(self.names, state, self.bounds, self.specs):
            if s.sort == "bool":
                if not isinstance(v, bool):
                    raise ValueError(f"state field {n} must be a boolean, got {v!r}")
            elif isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"state field {n} must be an integer in [{lo}, {hi}], got {v!r}")


class SymState:
    """The state as terms, field groups as attributes: ``s.pins[buf]``, ``s.cache[buf][page]``."""

    def __init__(self, schema: Schema, terms: Sequence[Term], writable: bool = False) -> None:
        object.__setattr__(self, "schema", schema)
        object.__setattr__(self, "_writable", writable)
        arrays: dict[str, Any] = {}
        for g in schema.groups:
            arrays[g] = self._arr(schema._nest(g, lambda flat: terms[schema.offset[flat]]), writable)
        object.__setattr__(self, "_arrays", arrays)

    @staticmethod
    def _arr(nested: Any, writable: bool) -> Any:
        if isinstance(nested, list):
            return Arr([SymState._arr(x, writable) for x in nested], writable)
        return nested

    def __getattr__(self, name: str) -> Any:
        try:
            return self._arrays[name]
        except KeyError:
            raise AttributeError(f"the model state has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"assign to elements of the field, e.g. n.{name}[i] = ...")

    def flat(self) -> list[Term]:
        out: list[Term] = []

        def walk(a: Any) -> None:
            if isinstance(a, Arr):
                for x in a.items:
                    walk(x)
            else:
                out.append(a)

        for g in self.schema.groups:
            walk(self._arrays[g])
        return out


class NextState(SymState):
    """The next state while a transition builds it: starts equal to the pre-state (UNCHANGED);
    reading a field gives the value written so far, so effects compose in program order."""

    def __init__(self, pre: SymState) -> None:
        super().__init__(pre.schema, pre.flat(), writable=True)
