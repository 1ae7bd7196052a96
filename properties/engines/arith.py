"""Bit-precise checks of the kernel's mmap arithmetic (MMAP-SIZE-CHECK, MMAP-INTERNAL-OVERFLOW).

The model checks a mapping's size with unbounded integers over a small scope; the kernel
computes in 64-bit unsigned arithmetic (x86-64 ``unsigned long``, ``size_t``). This module
states the kernel's two checks as Z3 bit-vector formulas, exactly as the C code computes them
(corpus §3.2 ``dma_buf_mmap_internal``, §3.9 ``dma_buf_mmap`` and §5.3)::

    /* userspace mmap of the dma-buf fd */
    if (vma->vm_pgoff + vma_pages(vma) > dmabuf->size >> PAGE_SHIFT)
            return -EINVAL;

    /* kernel-internal dma_buf_mmap(dmabuf, vma, pgoff) */
    if (pgoff + vma_pages(vma) < pgoff)
            return -EOVERFLOW;
    if (pgoff + vma_pages(vma) > dmabuf->size >> PAGE_SHIFT)
            return -EINVAL;
    get_file(dmabuf->file); oldfile = vma->vm_file;
    vma->vm_file = dmabuf->file; vma->vm_pgoff = pgoff;
    ret = dmabuf->ops->mmap(dmabuf, vma);
    if (ret) { vma->vm_file = oldfile; fput(dmabuf->file); }   /* vm_pgoff is not restored */

and asks: can the sum wrap for an x86-64 user mapping; what flooring
``size >> PAGE_SHIFT`` does to a size that is not page aligned; what ``dma_buf_mmap()`` returns
and leaves behind on failure; and whether the model's own check (the ``mmap`` transition's terms,
evaluated on every instance of a scope) agrees with the bit-precise one, inside the model's
scope and outside it. Every answer is a solver result (``proved`` when the negation is
unsatisfiable, ``reachable`` with a witness when satisfiable), never a sample.

x86-64 bounds used for user mappings (arch/x86/kernel/sys_x86_64.c, mm/mmap.c): the syscall's
``off`` is an ``unsigned long`` that must be page aligned, so ``vm_pgoff = off >> PAGE_SHIFT``
is below 2^52; a mapping is at most ``TASK_SIZE`` long: ``2^47 - PAGE_SIZE`` with 4-level page
tables, ``2^56 - PAGE_SIZE`` with 5-level ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import z3

from model.catalog import CATALOG
from model.constants import ERRNO
from model.machine import Model
from model.scope import SCOPES, Scope

from .. import interrupt
from ..trace import replay

__all__ = ["PAGE_SHIFT", "ArithFinding", "userspace_rejects", "dma_buf_mmap", "check_all", "model_agreement"]

PAGE_SHIFT = 12
W = 64
TASK_SIZE_4LEVEL = (1 << 47) - (1 << PAGE_SHIFT)
TASK_SIZE_5LEVEL = (1 << 56) - (1 << PAGE_SHIFT)
PGOFF_MAX = (1 << (W - PAGE_SHIFT)) - 1       # (2^64 - 1) >> PAGE_SHIFT


@dataclass(frozen=True)
class ArithFinding:
    """One bit-precise question and the solver's answer."""

    id: str
    claim: str
    question: str
    answer: str                       # "proved" | "reachable" | "unknown"
    summary: str
    witness: dict[str, Any] = field(default_factory=dict)
    smt2: str = field(default="", repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "claim": self.claim, "question": self.question, "answer": self.answer,
                "summary": self.summary, "witness": self.witness}


def _bv(name: str) -> z3.BitVecRef:
    return z3.BitVec(name, W)


def _c(x: int) -> z3.BitVecRef:
    return z3.BitVecVal(x, W)


def userspace_rejects(vm_pgoff: z3.BitVecRef, npages: z3.BitVecRef, size: z3.BitVecRef) -> z3.BoolRef:
    """``vma->vm_pgoff + vma_pages(vma) > dmabuf->size >> PAGE_SHIFT``, unsigned 64-bit.

    Outside the term vocabulary on purpose: this is the kernel's 64-bit C arithmetic, which the
    model abstracts to small integers (its own check is the ``mmap`` transition's terms, which
    :func:`model_agreement` reads)."""
    return z3.UGT(vm_pgoff + npages, z3.LShR(size, PAGE_SHIFT))


def dma_buf_mmap(pgoff, npages, size, old_pgoff, mmap_fails: z3.BoolRef):
    """``dma_buf_mmap()`` as bit-vector terms: (return value as an Int errno, the vma's
    ``vm_pgoff`` afterwards, whether ``vm_file`` is the dma-buf's file afterwards). Outside the
    term vocabulary on purpose: the kernel-internal call is not an action of the model, and its
    checks are 64-bit C arithmetic."""
    overflow = z3.ULT(pgoff + npages, pgoff)
    too_big = z3.UGT(pgoff + npages, z3.LShR(size, PAGE_SHIFT))
    ret = z3.If(overflow, -ERRNO["EOVERFLOW"], z3.If(too_big, -ERRNO["EINVAL"], z3.If(mmap_fails, -1, 0)))
    reached = z3.And(z3.Not(overflow), z3.Not(too_big))
    new_pgoff = z3.If(reached, pgoff, old_pgoff)
    file_is_dmabuf = z3.And(reached, z3.Not(mmap_fails))
    return ret, new_pgoff, file_is_dmabuf


def _ask(fid: str, claim: str, question: str, goal: z3.BoolRef, kind: str, summary_yes: str,
         summary_no: str, shown: dict[str, z3.ExprRef], timeout: float | None) -> ArithFinding:
    """``kind="valid"``: prove ``goal`` for all inputs (its negation unsatisfiable);
    ``kind="reach"``: find inputs satisfying ``goal``."""
    s = z3.Solver()
    if timeout:
        s.set("timeout", max(1, int(timeout * 1000)))
    q = z3.Not(goal) if kind == "valid" else goal
    s.add(q)
    smt = s.to_smt2()
    r = s.check()
    if r == z3.unknown:
        return ArithFinding(fid, claim, question, "unknown", f"solver: {s.reason_unknown()}", {}, smt)
    if (r == z3.unsat) == (kind == "valid"):
        if kind == "valid":
            return ArithFinding(fid, claim, question, "proved", summary_yes, {}, smt)
        m = s.model()
        wit = {k: _val(m.eval(v, model_completion=True)) for k, v in shown.items()}
        return ArithFinding(fid, claim, question, "reachable", summary_yes, wit, smt)
    if kind == "valid":
        m = s.model()
        wit = {k: _val(m.eval(v, model_completion=True)) for k, v in shown.items()}
        return ArithFinding(fid, claim, question, "refuted", summary_no, wit, smt)
    return ArithFinding(fid, claim, question, "unreachable", summary_no, {}, smt)


def _val(x: z3.ExprRef) -> Any:
    if z3.is_bv_value(x) or z3.is_int_value(x):
        v = x.as_long()
        return hex(v) if v > 1 << 20 else v
    if z3.is_true(x) or z3.is_false(x):
        return z3.is_true(x)
    return str(x)


def model_agreement(scope: Scope, revision: str = "v4.11", policy: str = "reference") -> ArithFinding:
    """The model's own mmap check, read off its transition terms (every ``mmap`` instance of the
    scope, run on a state with an open fd and a free mapping slot, under ``policy``), against
    the bit-precise check with ``size = pages << PAGE_SHIFT``: they agree on every input of the
    scope."""
    model = Model(CATALOG[policy], scope, revision)
    # a state with an open fd of buffer 0 and every mapping slot free, reached through the API
    state = replay(model, [("dma_buf_export", {"buf": 0}), ("dma_buf_fd", {"buf": 0})]).states()[-1]
    size = scope.pages << PAGE_SHIFT
    rows, bad = 0, []
    for inst in model.instances:
        if inst.name != "mmap" or inst.kwargs["fd"] != 0:
            continue
        r = model.step(state, inst.index)
        model_rejects = r is not None and r[1] == -ERRNO["EINVAL"]
        pg, n = inst.kwargs["pgoff"], inst.kwargs["npages"]
        bv = z3.simplify(userspace_rejects(_c(pg), _c(n), _c(size)))
        rows += 1
        if z3.is_true(bv) != model_rejects:
            bad.append({"pgoff": pg, "npages": n, "model": model_rejects, "kernel": z3.is_true(bv)})
    q = f"does the model's mmap check agree with the 64-bit check on every mmap of the {scope.name} scope?"
    if bad:
        return ArithFinding(f"model-agrees-{scope.name}", "MMAP-SIZE-CHECK", q, "refuted",
                            f"{len(bad)} of {rows} inputs disagree", bad[0])
    return ArithFinding(f"model-agrees-{scope.name}", "MMAP-SIZE-CHECK", q, "proved",
                        f"all {rows} (vm_pgoff, vma_pages) inputs of the scope (size = {scope.pages} "
                        f"pages) get the same answer from the model's terms and the 64-bit check "
                        f"(checked exhaustively)")


@interrupt.raising()   # long Z3 queries or graph searches: a signal stops them at once
def check_all(timeout: float | None = 60.0, scopes: tuple[str, ...] = tuple(SCOPES),
              progress: Callable[[str], None] | None = None) -> list[ArithFinding]:
    """Every bit-precise finding, in report order."""
    pg, n, size, old = _bv("vm_pgoff"), _bv("vma_pages"), _bv("size"), _bv("old_vm_pgoff")
    fails = z3.Bool("ops_mmap_fails")
    wrap = z3.ULT(pg + n, pg)
    out: list[ArithFinding] = []

    def user_bounds(task_size: int):
        return z3.And(z3.ULE(pg, _c(PGOFF_MAX)), z3.UGE(n, _c(1)), z3.ULE(n, _c(task_size >> PAGE_SHIFT)))

    out.append(_ask(
        "user-no-wrap-4level", "MMAP-SIZE-CHECK",
        "can vm_pgoff + vma_pages(vma) wrap for an x86-64 user mapping (4-level page tables)?",
        z3.Implies(user_bounds(TASK_SIZE_4LEVEL), z3.Not(wrap)), "valid",
        "no: vm_pgoff < 2^52 and vma_pages < 2^35, so the sum stays below 2^53",
        "yes", {"vm_pgoff": pg, "vma_pages": n}, timeout))
    out.append(_ask(
        "user-no-wrap-5level", "MMAP-SIZE-CHECK",
        "can vm_pgoff + vma_pages(vma) wrap for an x86-64 user mapping (5-level page tables)?",
        z3.Implies(user_bounds(TASK_SIZE_5LEVEL), z3.Not(wrap)), "valid",
        "no: vm_pgoff < 2^52 and vma_pages < 2^44, so the sum stays below 2^53",
        "yes", {"vm_pgoff": pg, "vma_pages": n}, timeout))
    out.append(_ask(
        "check-alone-misses-wrap", "MMAP-INTERNAL-OVERFLOW",
        "without the -EOVERFLOW test, would a wrapping pgoff + vma_pages pass the size check?",
        z3.And(wrap, z3.Not(userspace_rejects(pg, n, size)), z3.UGE(n, _c(1)), z3.ULE(n, _c(16)),
               size == _c(16 << PAGE_SHIFT)), "reach",
        "yes: a wrapped sum is small, so `> size >> PAGE_SHIFT` accepts it; dma_buf_mmap()'s "
        "-EOVERFLOW test (for a pgoff chosen by a kernel caller, not bounded like a user offset) "
        "is needed", "no", {"pgoff": pg, "vma_pages": n, "size": size}, timeout))
    # flooring
    unaligned = (size & _c((1 << PAGE_SHIFT) - 1)) != _c(0)
    ceil_pages = z3.LShR(size + _c((1 << PAGE_SHIFT) - 1), PAGE_SHIFT)
    no_wrap_size = z3.ULT(size, _c((1 << W) - (1 << PAGE_SHIFT)))
    out.append(_ask(
        "floor-refuses-whole-buffer", "MMAP-SIZE-CHECK",
        "if size is not page aligned, is mmap of the whole buffer (pgoff 0, ceil(size / PAGE_SIZE) "
        "pages) refused?",
        z3.Implies(z3.And(unaligned, no_wrap_size), userspace_rejects(_c(0), ceil_pages, size)), "valid",
        "yes, always: size >> PAGE_SHIFT floors, so the whole buffer needs one page more than the "
        "check allows (-EINVAL)", "no", {"size": size}, timeout))
    out.append(_ask(
        "floor-hides-last-page", "MMAP-SIZE-CHECK",
        "can any accepted mapping reach the last, partial page of a buffer whose size is not page aligned?",
        z3.Implies(z3.And(unaligned, z3.Not(wrap), z3.UGE(n, _c(1)), z3.Not(userspace_rejects(pg, n, size))),
                   z3.ULT(pg + n - _c(1), z3.LShR(size, PAGE_SHIFT))), "valid",
        "no: every accepted mapping ends before page size >> PAGE_SHIFT, so the partial last page "
        "(and its bytes) can never be mapped", "yes", {"vm_pgoff": pg, "vma_pages": n, "size": size}, timeout))
    out.append(_ask(
        "floor-example", "MMAP-SIZE-CHECK",
        "an example: a 4097-byte buffer mapped whole (2 pages)",
        z3.And(size == _c(4097), pg == _c(0), n == _c(2), userspace_rejects(pg, n, size)), "reach",
        "-EINVAL: 0 + 2 > 4097 >> 12 = 1", "accepted", {"size": size, "vm_pgoff": pg, "vma_pages": n}, timeout))
    # kernel-internal dma_buf_mmap()
    ret, new_pgoff, file_is_dmabuf = dma_buf_mmap(pg, n, size, old, fails)
    out.append(_ask(
        "internal-eoverflow-exactly-on-wrap", "MMAP-INTERNAL-OVERFLOW",
        "does dma_buf_mmap() return -EOVERFLOW exactly when pgoff + vma_pages wraps?",
        (ret == -ERRNO["EOVERFLOW"]) == wrap, "valid",
        "yes: -EOVERFLOW if and only if the 64-bit sum wraps", "no", {"pgoff": pg, "vma_pages": n}, timeout))
    out.append(_ask(
        "internal-eoverflow-example", "MMAP-INTERNAL-OVERFLOW",
        "an example of -EOVERFLOW", z3.And(ret == -ERRNO["EOVERFLOW"], z3.UGE(n, _c(1)), z3.ULE(n, _c(16))), "reach",
        "-EOVERFLOW", "none", {"pgoff": pg, "vma_pages": n}, timeout))
    out.append(_ask(
        "internal-einval-unchanged", "MMAP-INTERNAL-OVERFLOW",
        "after -EOVERFLOW or -EINVAL from dma_buf_mmap(), are vm_pgoff and vm_file unchanged?",
        z3.Implies(z3.Or(ret == -ERRNO["EOVERFLOW"], ret == -ERRNO["EINVAL"]),
                   z3.And(new_pgoff == old, z3.Not(file_is_dmabuf))), "valid",
        "yes: both checks return before the vma is touched", "no", {}, timeout))
    out.append(_ask(
        "internal-failure-leaves-pgoff", "MMAP-INTERNAL-OVERFLOW",
        "when the exporter's mmap fails, can dma_buf_mmap() return with vm_pgoff changed?",
        z3.And(ret == -1, new_pgoff != old, z3.Not(file_is_dmabuf), old == _c(0), z3.UGE(n, _c(1)),
               size == _c(16 << PAGE_SHIFT), z3.ULE(pg, _c(16))), "reach",
        "yes: vm_file is restored but vm_pgoff keeps the new pgoff (the vma is left inconsistent: "
        "the old file with the dma-buf's offset)", "no",
        {"old_vm_pgoff": old, "pgoff": pg, "vma_pages": n, "size": size, "vm_pgoff_after": new_pgoff}, timeout))
    out.append(_ask(
        "internal-failure-always-pgoff", "MMAP-INTERNAL-OVERFLOW",
        "whenever the exporter's mmap fails, is vm_pgoff left equal to the new pgoff?",
        z3.Implies(ret == -1, new_pgoff == pg), "valid",
        "yes: on every exporter failure vm_pgoff is the dma-buf offset", "no", {}, timeout))
    # the model's check against the kernel's
    for name in scopes:
        out.append(model_agreement(SCOPES[name]))
    P = _bv("pages")
    link = z3.ULT(P, _c(1 << (W - PAGE_SHIFT)))           # size = pages << PAGE_SHIFT fits
    # the model's formula pgoff + npages > pages over unbounded integers: for 64-bit inputs,
    # 66-bit arithmetic on the zero-extended values computes it exactly (no sum can wrap)
    model_check = z3.UGT(z3.ZeroExt(2, pg) + z3.ZeroExt(2, n), z3.ZeroExt(2, P))
    kernel_check = userspace_rejects(pg, n, P << PAGE_SHIFT)
    out.append(_ask(
        "model-agrees-without-wrap", "MMAP-SIZE-CHECK",
        "outside the scope: does the model's check (unbounded integers, size = pages << PAGE_SHIFT) "
        "agree with the 64-bit check for every input whose sum does not wrap?",
        z3.Implies(z3.And(link, z3.Not(wrap)), model_check == kernel_check), "valid",
        "yes: for page-aligned sizes and non-wrapping sums the two checks are the same function, so "
        "(with user-no-wrap) the model's check is exact for every x86-64 user mapping", "no",
        {"vm_pgoff": pg, "vma_pages": n, "pages": P}, timeout))
    out.append(_ask(
        "model-disagrees-on-wrap", "MMAP-SIZE-CHECK",
        "outside the scope: where do the model's check and the 64-bit check disagree?",
        z3.And(link, model_check != kernel_check, P == _c(16), z3.ULE(n, _c(16))), "reach",
        "only where the 64-bit sum wraps (the kernel accepts, the model refuses); user mappings "
        "cannot reach it (user-no-wrap), kernel callers of dma_buf_mmap() get -EOVERFLOW first",
        "nowhere", {"vm_pgoff": pg, "vma_pages": n, "pages": P}, timeout))
    if progress:
        progress(f"arith: {len(out)} bit-precise questions answered")
    return out
