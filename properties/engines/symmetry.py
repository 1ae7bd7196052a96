"""Symmetry reduction for the explicit engine: one canonical key per class of states that differ
only in which interchangeable identities they use.

Which identities are interchangeable, and why (the argument the reduction rests on):

* **Slots of the fd table, of the mapping table and of the attachment table.** Every action that
  names a slot (``close(fd)``, ``munmap(vma)``, ``dma_buf_detach(att)``, ...) reads and writes that
  slot's own fields; the rules that range over all slots (references of a buffer, PTE zapping,
  mapped attachments of a buffer) count or combine them in an order-free way. Slot *numbers* matter
  in one place only: allocation takes the lowest free slot (``lowest_free``: the fd table's
  "lowest free fd first", and the same for mappings and attachments), and returns its number.
  Two states whose slot tables hold the same *multiset* of slot contents allocate different slot
  numbers, but the new contents go into a free slot in both, so the successors again hold equal
  multisets: the relation "equal multisets" is a bisimulation, provided a free slot carries no
  data of its own. The model resets every field of a slot when it is freed (``close`` clears
  ``fd_buf``, ``munmap`` every ``vma_*`` field and the PTEs, ``dma_buf_detach`` every ``att_*``
  field), and :meth:`Symmetry.check_free_slots` verifies that on every state the engine stores; a
  model that broke it would make the engine refuse the reduction rather than merge states that
  differ. What differs between two related steps is the returned slot number (``dup``,
  ``dma_buf_fd``, ``mmap``, ``dma_buf_attach``); the properties read returned handles only as
  "``>= 0``" (success) or as an errno, both the same for either slot.
* **Buffers.** All buffers start alike, every policy treats them alike, and no rule picks a buffer
  by its number: a permutation of buffer numbers applied to every buffer-indexed field and to the
  fields that hold buffer numbers (``fd_buf``, ``vma_buf``, ``att_buf``, in live slots only: a free
  slot holds 0) maps steps to steps. The subject buffer and the handles ``dma_buf_export`` and
  ``dma_buf_get`` return are renamed along; properties read them as indices into the state.
* **Pages are not interchangeable**: a mapping covers a contiguous range from ``vma_pgoff``.

The canonical key of a state is the smallest packed key over the buffer permutations of the state
with each slot table sorted. The engine stores and expands the state it first reached (a concrete
state), so that a counterexample is replayed from the initial state exactly as found; only the
deduplication uses the canonical key. tests/test_explicit.py checks the reduction against the
unreduced search (same verdicts, same shortest lengths) and checks that the key is invariant
under random permutations and that successors commute with them.
"""
from __future__ import annotations

from itertools import permutations
from typing import Any

import numpy as np

from model.state import Schema

__all__ = ["Symmetry", "SymmetryError", "SLOT_TABLES", "BUFFER_REFS", "KeyPacker"]

# slot table -> the field saying the slot is in use; fields whose values are buffer numbers
SLOT_TABLES: dict[str, str] = {"fds": "fd_open", "vmas": "vma_live", "attachments": "att_live"}
BUFFER_REFS: dict[str, str] = {"fd_buf": "fds", "vma_buf": "vmas", "att_buf": "attachments"}


class SymmetryError(ValueError):
    """The model does not have the symmetry the reduction assumes."""


class KeyPacker:
    """Packs a block of states (``width x n`` small integers) into sortable keys: mixed radix in
    one ``uint64`` when the layout fits in 64 bits (tiny, small), else a record of several."""

    def __init__(self, schema: Schema) -> None:
        his = [hi for _, hi in schema.bounds]
        self.words: list[list[tuple[int, int]]] = [[]]   # per word: (field, multiplier)
        cap = 1
        for k in range(len(his) - 1, -1, -1):
            if his[k] == 0:
                continue
            radix = his[k] + 1
            if cap * radix >= 1 << 63:
                self.words.append([])
                cap = 1
            self.words[-1].append((k, cap))
            cap *= radix
        self.words.reverse()
        self.dtype = (np.dtype(np.uint64) if len(self.words) == 1 else
                      np.dtype([(f"w{i}", np.uint64) for i in range(len(self.words))]))
        # field -> (word, multiplier), for updating keys in place
        self.place = {k: (i, np.uint64(mult)) for i, word in enumerate(self.words) for k, mult in word}
        # the largest value of each word (the product of its fields' radices, less one)
        self.word_max = [sum(his[k] * mult for k, mult in word) for word in self.words]
        # for unpacking: each word's fields in groups of consecutive digits whose values fit in
        # 32 bits (one 64-bit division per group, then 32-bit arithmetic, twice as fast): per
        # group, its multiplier and its fields' multipliers within it, largest first
        self.groups: list[list[tuple[int, list[tuple[int, int]]]]] = []
        for word in self.words:
            groups: list[tuple[int, list[tuple[int, int]]]] = []
            for k, mult in word:                  # least significant first
                if not groups or mult // groups[-1][0] * (his[k] + 1) > 1 << 32:
                    groups.append((mult, []))
                groups[-1][1].append((k, mult // groups[-1][0]))
            self.groups.append([(base, fields[::-1]) for base, fields in reversed(groups)])

    def update(self, keys: np.ndarray, k: int, old: Any, new: Any) -> None:
        """Add to ``keys`` (in place) the change of field ``k`` from ``old`` to ``new``: a step
        changes a few fields, so its successors' keys are its states' keys plus a few terms
        (unsigned arithmetic wraps, and the result is in range because the new value is)."""
        if k not in self.place:
            return                                   # a field whose only value is 0
        i, mult = self.place[k]
        delta = (np.asarray(new, np.int64) - np.asarray(old, np.int64)).astype(np.uint64) * mult
        if len(self.words) == 1:
            keys += delta
        else:
            keys[f"w{i}"] += delta

    def pack(self, block: np.ndarray) -> np.ndarray:
        n = block.shape[1]
        out = np.zeros(n, self.dtype)
        for i, word in enumerate(self.words):
            acc = np.zeros(n, np.uint64)
            for k, mult in word:
                acc += block[k].astype(np.uint64) * np.uint64(mult)
            if len(self.words) == 1:
                return acc
            out[f"w{i}"] = acc
        return out

    def unpack(self, keys: np.ndarray, width: int) -> np.ndarray:
        """The block (``width x n``, ``int8``) whose :meth:`pack` is ``keys``: the explicit engine
        keeps states as keys (8 bytes a word) and decodes a frontier chunk when it expands it."""
        n = keys.shape[0]
        out = np.zeros((width, n), np.int8)
        for i, groups in enumerate(self.groups):
            acc = keys if len(self.words) == 1 else keys[f"w{i}"]
            for base, fields in groups:            # most significant first
                if base == 1:
                    g = acc.astype(np.uint32)
                else:
                    q = acc // np.uint64(base)
                    acc = acc - q * np.uint64(base)
                    g = q.astype(np.uint32)
                for k, mult in fields:             # largest multiplier first
                    if mult == 1:
                        out[k] = g
                    else:
                        v = g // np.uint32(mult)
                        out[k] = v
                        g -= v * np.uint32(mult)
        return out


class Symmetry:
    """Canonical keys of blocks of states for one schema (see the module docstring)."""

    def __init__(self, schema: Schema, packer: KeyPacker | None = None) -> None:
        self.schema = schema
        self.packer = packer or KeyPacker(schema)
        off = schema.offset
        sc = schema.scope
        self.buffers = sc.buffers
        # rows (field indices) of each slot of each table, and of the in-use flag and buffer refs
        self.tables: list[tuple[str, list[list[int]], list[int], list[int]]] = []
        for table, live in SLOT_TABLES.items():
            nslots = getattr(sc, table)
            groups = [g for g, spec in schema.spec_by_group.items() if spec.dims and spec.dims[0] == table]
            for g in schema.spec_by_group:
                if table in schema.spec_by_group[g].dims[1:]:
                    raise SymmetryError(f"field {g} is indexed by {table} but not first: the "
                                        f"reduction cannot treat its slots as units")
            ref = [r for r, t in BUFFER_REFS.items() if t == table]
            rows = [_rows(schema, groups, s) for s in range(nslots)]
            for slot_rows in rows:
                if len(slot_rows) > 15 or any(schema.bounds[k][1] > 15 for k in slot_rows):
                    raise SymmetryError(f"a {table} slot has too many or too wide fields to sort")
            self.tables.append((table, rows, [off[f"{live}[{s}]"] for s in range(nslots)],
                                [off[f"{ref[0]}[{s}]"] for s in range(nslots)] if ref else []))
        for g, spec in schema.spec_by_group.items():
            if g.endswith("_buf") and g not in BUFFER_REFS:
                raise SymmetryError(f"field {g} looks like a buffer number but is not declared in "
                                    f"properties/engines/symmetry.py BUFFER_REFS")
        # buffer-indexed rows: per buffer, its field indices in layout order
        bgroups = [g for g, spec in schema.spec_by_group.items() if spec.dims and spec.dims[0] == "buffers"]
        self.buf_rows = [_rows(schema, bgroups, b) for b in range(self.buffers)]
        self.perms = list(permutations(range(self.buffers)))

    def check_free_slots(self, block: np.ndarray) -> None:
        """Raise :class:`SymmetryError` if a free slot of some state holds data."""
        for table, rows, live, _ in self.tables:
            for s, slot_rows in enumerate(rows):
                free = block[live[s]] == 0
                dirty = np.zeros(block.shape[1], bool)
                for k in slot_rows:
                    dirty |= block[k] != 0
                if np.any(free & dirty):
                    j = int(np.flatnonzero(free & dirty)[0])
                    raise SymmetryError(f"a free {table} slot {s} holds data in a reached state "
                                        f"(state field values {block[:, j].tolist()}): the symmetry "
                                        f"reduction would be unsound; explore without it")

    def canonical(self, block: np.ndarray) -> np.ndarray:
        """The canonical keys of the states of ``block`` (``width x n``)."""
        best = None
        for perm in self.perms:
            keys = self.packer.pack(self._permuted(block, perm))
            best = keys if best is None else np.where(_less(keys, best), keys, best)
        return best

    def canonical_block(self, block: np.ndarray) -> np.ndarray:
        """A canonical member of each state's class (for tests and for looking states up)."""
        best_keys, best = None, None
        for perm in self.perms:
            b = self._permuted(block, perm)
            keys = self.packer.pack(b)
            if best is None:
                best_keys, best = keys, b
            else:
                take = _less(keys, best_keys)
                best_keys = np.where(take, keys, best_keys)
                best = np.where(take[None, :], b, best)
        return best

    def _permuted(self, block: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
        out = block.copy() if len(self.perms) > 1 or any(len(r) > 1 for _, r, _, _ in self.tables) else block
        if any(p != i for i, p in enumerate(perm)):
            for b, p in enumerate(perm):              # buffer b becomes buffer p
                out[self.buf_rows[p]] = block[self.buf_rows[b]]
            lut = np.array(perm, dtype=block.dtype)
            for _, _, live, refs in self.tables:
                for s, r in enumerate(refs):
                    out[r] = np.where(block[live[s]] != 0, lut[block[r]], block[r])
        for _, rows, _, _ in self.tables:
            ns = len(rows)
            if ns < 2:
                continue
            # each slot's contents as one code; slots sorted by descending code (used slots first)
            # with a bubble network of compare-exchanges (tables have two or three slots)
            slots = [out[r] for r in rows]                    # per slot: fields x n
            codes = []
            for v in slots:
                c = np.zeros(block.shape[1], np.int64)
                for j in range(v.shape[0]):
                    c = c * 16 + v[j]
                codes.append(c)
            for i in range(ns - 1):
                for j in range(ns - 1 - i):
                    swap = codes[j] < codes[j + 1]
                    if swap.any():
                        for xs in (codes, slots):
                            xs[j], xs[j + 1] = np.where(swap, xs[j + 1], xs[j]), np.where(swap, xs[j], xs[j + 1])
            for v, r in zip(slots, rows):
                out[r] = v
        return out


def _rows(schema: Schema, groups: list[str], index: int) -> list[int]:
    """Field indices, in layout order, of element ``index`` of the groups (first dimension)."""
    out = []
    for k, name in enumerate(schema.names):
        g, _, rest = name.partition("[")
        if g in groups and int(rest.split("]", 1)[0]) == index:
            out.append(k)
    return out


def _less(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise ``a < b`` for keys (lexicographic over the words of a record key)."""
    if a.dtype.names is None:
        return a < b
    less = np.zeros(a.shape, bool)
    equal = np.ones(a.shape, bool)
    for w in a.dtype.names:
        less |= equal & (a[w] < b[w])
        equal &= a[w] == b[w]
    return less
