"""Model userspace traces -> runner batches, with what the model predicts for every step.

A conformance trace is a sequence of model calls drawn from the userspace part of the action
vocabulary (docs/interface.md, "Actions"): ``dup``, ``close``, ``mmap``, ``munmap``, ``ioctl_sync``,
``cpu_read``, ``cpu_write``, plus the exporter's ``dma_buf_export(buf)`` immediately followed by
``dma_buf_fd(buf)``, which the runner performs as one ``create`` (a real exporter allocates,
exports and installs the fd in one call). The calls are replayed on the model of the matching
catalog policy, and each becomes one runner step (protocol.py) with a predicted outcome in the
format of ``StepResult.outcome``:

=====================  ===============================  ======================================
model call             runner step                      predicted outcome
=====================  ===============================  ======================================
export + fd            ``create``                       ``ok=<fd slot>``
dup(fd)                ``dup <fd>``                     ``ok=<fd slot>`` / ``EBADF``
close(fd)              ``close <fd>``                   ``ok`` / ``EBADF``
mmap(fd,pgoff,npages)  ``mmap <fd> <pgoff> <npages>``   ``ok=<vma>`` / ``EINVAL`` /
                                                        ``EOVERFLOW`` / ``ENOMEM`` / ``EBADF``;
                                                        ``err:overflow`` when ``pgoff << 12``
                                                        does not fit the runner's ``off_t``
                                                        (the runner refuses; no x86-64 user
                                                        offset has such a page offset)
munmap(vma)            ``munmap <vma>``                 ``ok``; ``err:nomap`` for a vma that
                                                        is not mapped (the model's munmap of
                                                        nothing returns 0; the runner has no
                                                        address to pass and refuses)
ioctl_sync(fd,flags)   ``sync <fd> <flags>``            ``ok`` / ``EINVAL`` / ``EBADF``
cpu_write(vma,page)    ``write <vma> <page> <value>``   ``ok``; ``SIGBUS``; SIGSEGV (outside
                                                        any mapping) as the runner's refusal
                                                        ``err:nomap`` / ``err:range``
cpu_read(vma,page)     ``read <vma> <page>``            ``val=<v>`` or ``val=*`` (any value)
=====================  ===============================  ======================================

Values. Every write stores a fresh u64 (``write_value``). A read is predicted to see the last
value written to that page of that buffer, through any mapping, when the model says the read
is fresh (no ``user_stale_read`` event): that is the value a correctly bracketed reader sees.
When the model says the read may be stale, any value is accepted. A page never written reads
as 0: the model has no initial contents, and every exporter compared here hands out zeroed
memory (memfd, page allocator, shmem), so 0 is the newest value of such a page.

What is left out, and why:

- ``ioctl_sync(..., interrupted=True)``: a real guest cannot have a signal pending at the one
  instant the ioctl waits, on demand. Random traces never contain it; in a litmus file the step
  is dropped (from the model replay too) and the trace says so in ``notes``.
- Scope bounds: the model's fd table has ``scope.fds`` slots and ``scope.vmas`` mappings; when
  they are exhausted it returns -EMFILE (dup, dma_buf_fd) or -ENOMEM (mmap), where the runner
  (1024 of each) succeeds. Those returns are artefacts of the bounded model, not predictions:
  random traces never take such a step, and a litmus trace is cut just before one (``notes``).
- Kernel-side actions without a module step (devices, fences, kmap, reclaim) and, without
  ``kernel_side``, every kernel-side action: a litmus file using them is skipped.

Kernel-side actions (``KERNEL_ACTIONS``; ``kernel_side`` in ``random_traces`` and
``litmus_traces``) run in the module ``kmod/dmabuf_check_kmod.c`` (protocol.py, the ``k`` ops).
The module only reaches a buffer through an fd of the trace (``dma_buf_get``), so buffers stay
the model's buffers; ``_Kernel`` keeps its handles, attachments and vmaps in step:

========================================  ==========================  ===========================
model call                                runner step                 predicted outcome
========================================  ==========================  ===========================
dma_buf_get(fd)                           ``kget <fd>``               ``ok=<handle>`` / ``EBADF``
dma_buf_put(buf)                          ``kput <newest handle>``    ``ok``; ``err:busy`` for
                                                                      the last handle while the
                                                                      module holds attachments or
                                                                      vmaps of it (random traces
                                                                      never do this)
dma_buf_attach(buf)                       ``kattach`` / ``kdattach``  ``ok=<attachment>``
dma_buf_detach(att)                       ``kdetach``                 ``ok`` (``err:mapped`` /
                                                                      ``err:busy`` while mapped or
                                                                      pinned: importer bugs)
dma_buf_map_attachment(att, dir)          ``kmap <att> <dir> <l>``    the return (``ok``)
dma_buf_unmap_attachment(att)             ``kunmap <att> <l>``        ``ok``
dma_buf_begin/end_cpu_access(buf, dir)    ``kbegin``/``kend``         the return
dma_buf_vmap(buf) / dma_buf_vunmap(buf)   ``kvmap``/``kvunmap``       ``ok=<vmap>`` / ``ok``
kernel_write(buf, page)                   ``kwrite <vmap> <page> v``  ``ok``; ``err:noslot``
                                                                      without a vmap (the model's
                                                                      -EFAULT)
kernel_read(buf, page)                    ``kread <vmap> <page>``     the value, as for ``read``
                                                                      (any value when the model
                                                                      reports kernel_stale_read)
dma_buf_pin(att) / dma_buf_unpin(att)     ``kpin``/``kunpin``         the return
========================================  ==========================  ===========================

``<l>``: map and vmap alternate between the calls under ``dma_resv_lock`` and the ``_unlocked``
ones (by step index), which the model does not tell apart. The model has no dynamic importers:
an attachment that the trace pins is made with ``dma_buf_dynamic_attach`` (6.12's dma_buf_pin
WARNs on a static one), and every third other one too, unless the model refuses a map of it with
-EBUSY (its cached mapping): 6.12 maps a dynamic attachment DMA_BIDIRECTIONAL at attach time, so
that map would succeed (a pinned one: the trace is cut before that map). Interrupted begin/end calls are dropped
like interrupted SYNCs.

At v6.12 (``KERNEL_ACTIONS_V6_12``) the model says which variant and which attachment: the three
calls ``dma_resv_lock(buf); <call of the locked list>; dma_resv_unlock(buf)`` become one module
step with ``<l>`` = 1 (the module holds the lock inside that one ioctl), an ``_unlocked`` variant
is the step with ``<l>`` = 0, ``dma_buf_dynamic_attach`` is ``kdattach`` and ``dma_buf_attach``
``kattach``. The lock held across several calls, and a pin of a static attachment (6.12 WARNs),
cannot be performed (TranslateError). Random traces keep the convention (``random_calls``).
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from model.catalog import CATALOG
from model.constants import ERRNO, ERRNO_NAMES, FAULT_SIGBUS, FAULT_SIGSEGV
from model.events import EVENT_BIT
from model.machine import Model, format_call
from model.scope import SCOPES

from ..scenarios.litmus import LitmusError, collect, load_litmus

__all__ = [
    "USERSPACE_ACTIONS",
    "KERNEL_ACTIONS",
    "KERNEL_ACTIONS_V6_12",
    "POLICY_OF",
    "Step",
    "ConformTrace",
    "TranslateError",
    "translate",
    "random_calls",
    "random_traces",
    "litmus_traces",
    "write_value",
    "outcome_matches",
    "access_predictions",
    "buffer_page",
    "ANY_VALUE",
]

#: model actions the runner performs directly (besides the export + fd pair)
USERSPACE_ACTIONS = ("dup", "close", "mmap", "munmap", "ioctl_sync", "cpu_read", "cpu_write")
#: runner exporter -> catalog policy that models it
POLICY_OF: Mapping[str, str] = {"udmabuf": "udmabuf", "system-heap": "system-heap", "vgem": "vgem"}
#: the predicted outcome of a read whose value the model does not pin down
ANY_VALUE = "val=*"

#: the model's kernel-side actions the runner performs through the module (kmod/), and the
#: runner op of each (dma_buf_attach becomes kattach or kdattach, see _Kernel)
KERNEL_ACTIONS = ("dma_buf_get", "dma_buf_put", "dma_buf_attach", "dma_buf_detach", "dma_buf_map_attachment",
                  "dma_buf_unmap_attachment", "dma_buf_begin_cpu_access", "dma_buf_end_cpu_access",
                  "dma_buf_vmap", "dma_buf_vunmap", "kernel_read", "kernel_write", "dma_buf_pin",
                  "dma_buf_unpin")
#: the v6.12 kernel-side actions the module performs too (the model has them from v6.12 on):
#: the reservation lock around one call of the locked list, the ``_unlocked`` variants (the core
#: takes the lock itself) and dma_buf_dynamic_attach (``kdattach``)
KERNEL_ACTIONS_V6_12 = ("dma_resv_lock", "dma_resv_unlock", "dma_buf_map_attachment_unlocked",
                        "dma_buf_unmap_attachment_unlocked", "dma_buf_vmap_unlocked", "dma_buf_vunmap_unlocked",
                        "dma_buf_dynamic_attach")
#: the functions of the convention's locked list the module calls (kmod/: under dma_resv_lock)
_LOCKED_CALLS = ("dma_buf_map_attachment", "dma_buf_unmap_attachment", "dma_buf_vmap", "dma_buf_vunmap",
                 "dma_buf_pin", "dma_buf_unpin")
_UNLOCKED_OF = {"dma_buf_map_attachment_unlocked": "dma_buf_map_attachment",
                "dma_buf_unmap_attachment_unlocked": "dma_buf_unmap_attachment",
                "dma_buf_vmap_unlocked": "dma_buf_vmap", "dma_buf_vunmap_unlocked": "dma_buf_vunmap"}
#: the module's table sizes (kmod/dmabuf_check_kmod.c: NBUF, NATT, NVMAP)
KMOD_SLOTS = 16
_OP_OF = {"dup": "dup", "close": "close", "mmap": "mmap", "munmap": "munmap", "ioctl_sync": "sync",
          "cpu_read": "read", "cpu_write": "write"}
#: the largest page offset and count the runner passes to mmap (runner.c: the byte offset must
#: fit an off_t, the length a size_t); beyond them it refuses the step (``err:overflow``)
RUNNER_PGOFF_MAX = (2**63 - 1) // 4096
RUNNER_NPAGES_MAX = (2**64 - 1) // 4096
_STALE = EVENT_BIT["user_stale_read"]
_KSTALE = EVENT_BIT["kernel_stale_read"]
#: importer bugs the module refuses (a kernel would misbehave, not answer): never in random traces
_IMPORTER_BUGS = (EVENT_BIT["detach_while_mapped"] | EVENT_BIT["detach_while_pinned"] | EVENT_BIT["vunmap_bug"]
                  # v6.12: breaks of the locking convention (the kernel deadlocks or WARNs; model only)
                  | EVENT_BIT["resv_not_held"] | EVENT_BIT["resv_held_unlocked_call"] | EVENT_BIT["resv_deadlock"])
_EMFILE, _ENOMEM = -ERRNO["EMFILE"], -ERRNO["ENOMEM"]
#: how often the random walk picks each kind of step (when it can)
_WEIGHTS = {"create": 2, "dup": 1, "close": 1, "mmap": 3, "munmap": 1, "ioctl_sync": 3,
            "cpu_read": 3, "cpu_write": 3}
#: the same for kernel-side steps (random traces with ``kernel_side``)
_KWEIGHTS = {"dma_buf_get": 3, "dma_buf_put": 1, "dma_buf_attach": 2, "dma_buf_detach": 1,
             "dma_buf_map_attachment": 2, "dma_buf_unmap_attachment": 1, "dma_buf_begin_cpu_access": 2,
             "dma_buf_end_cpu_access": 2, "dma_buf_vmap": 2, "dma_buf_vunmap": 1, "kernel_read": 3,
             "kernel_write": 3, "dma_buf_pin": 1, "dma_buf_unpin": 1}
#: at v6.12: the same, the locked calls (taken inside dma_resv_lock/unlock) sharing their weight
#: with the ``_unlocked`` variants, and attach with dma_buf_dynamic_attach
_KWEIGHTS_V6_12 = dict(_KWEIGHTS, dma_buf_attach=1, dma_buf_dynamic_attach=1, dma_buf_map_attachment=1,
                       dma_buf_map_attachment_unlocked=1, dma_buf_vmap=1, dma_buf_vmap_unlocked=1,
                       dma_buf_unmap_attachment=1, dma_buf_unmap_attachment_unlocked=1, dma_buf_vunmap=1,
                       dma_buf_vunmap_unlocked=1)
#: how often the random walk prefers a step that does something over one that fails
_P_USEFUL = 0.8


_PREDICTED = "val=?"   # a load's prediction, until access_predictions computes it


class TranslateError(ValueError):
    """A model trace the runner cannot perform; the message names the step."""


@dataclass(frozen=True)
class Step:
    """One runner step with what the model says about it.

    ``model`` is the model call (two calls joined by "; " for a create); ``ret`` the model's
    return; ``expect`` the predicted outcome (``StepResult.outcome`` format, ``val=*`` for any
    value). For reads and writes, ``buf``/``pgoff``/``page`` say which buffer page the model
    accesses (buffer page = pgoff + page); ``value`` is what a write stores.
    """

    op: str
    args: tuple[int, ...]
    model: str
    ret: int
    expect: str
    buf: int | None = None
    pgoff: int | None = None
    page: int | None = None
    value: int | None = None
    stale: bool = False

    def runner(self) -> str:
        return " ".join([self.op, *map(str, self.args)])


@dataclass(frozen=True)
class ConformTrace:
    """A translated trace: the runner steps for one exporter, and the model's predictions."""

    id: int
    exporter: str  # runner exporter (udmabuf | system-heap | vgem)
    policy: str  # catalog policy the predictions come from
    npages: int  # pages per buffer (the model scope's pages)
    source: str  # "random seed=S #k" or the litmus file
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()  # steps dropped or a cut, with the reason
    scope: str = "default"

    def batch(self) -> dict[str, Any]:
        """The trace as ``write_batch`` / ``run_batch`` take it."""
        return {"id": self.id, "exporter": self.exporter, "npages": self.npages,
                "steps": [(s.op, s.args) for s in self.steps]}


def write_value(trace_id: int, index: int) -> int:
    """The fresh u64 the write at step ``index`` of trace ``trace_id`` stores (never 0)."""
    return (0xD0 << 56) | ((trace_id & 0xFFFF_FFFF) << 20) | ((index + 1) & 0xFFFFF)


def buffer_page(step: Step) -> int:
    """The buffer page a load or store of ``step`` touches, as the model maps it: pgoff + page."""
    assert step.pgoff is not None and step.page is not None
    return step.pgoff + step.page


def access_predictions(steps: Sequence[Step], page_of: Callable[[Step], int] = buffer_page) -> list[str | None]:
    """Per step, what a successful load or store predicts when vma pages map to buffer pages by
    ``page_of``: a store ``ok``; a load the last value stored to its page (0 if none), or any
    value where the model says it may be stale. ``None`` for every other step (the one place
    the page values are tracked: translating a trace, and the kernel variants of
    ``properties.conform.compare``)."""
    values: dict[tuple[int, int], int] = {}
    out: list[str | None] = []
    for s in steps:
        if s.op in ("read", "write", "kread", "kwrite") and s.buf is not None and s.ret == 0:
            key = (s.buf, page_of(s))
            if s.op in ("write", "kwrite"):
                values[key] = s.value  # type: ignore[assignment]
                out.append("ok")
            else:
                out.append(ANY_VALUE if s.stale else f"val={values.get(key, 0)}")
            continue
        out.append(None)
    return out


def outcome_matches(expect: str, got: str) -> bool:
    """Does the kernel's outcome ``got`` match the predicted ``expect`` (``val=*``: any value)?"""
    if expect == ANY_VALUE:
        return got.startswith("val=")
    return expect == got


def _errno_outcome(ret: int) -> str:
    return ERRNO_NAMES.get(-ret, f"ret={ret}")


class _Replayer:
    """Replays model calls one by one and turns each into a runner step with its prediction."""

    def __init__(self, model: Model, trace_id: int):
        self.model = model
        self.trace_id = trace_id
        self.state = model.init
        self.off = model.schema.offset
        self.steps: list[Step] = []
        self.k = _Kernel()

    def get(self, field_name: str) -> Any:
        return self.state[self.off[field_name]]

    def instance(self, n: int, name: str, args: Mapping[str, Any]):
        try:
            return self.model.find(name, **args)
        except KeyError as e:
            raise TranslateError(f"step {n}: {e.args[0]}") from None

    def apply(self, n: int, inst) -> tuple[tuple, int, int, int]:
        r = self.model.step(self.state, inst.index)
        if r is None:
            raise TranslateError(f"step {n}: {inst} is not enabled in this state")
        return r

    # --- the two kinds of step -----------------------------------------------------------
    def create(self, n: int, buf: int) -> str | None:
        """export + fd; returns a note when the model's fd table is full (the cut), else None."""
        exp = self.instance(n, "dma_buf_export", {"buf": buf})
        st1, _ret, _ev, _b = self.apply(n, exp)
        fd = self.model.find("dma_buf_fd", buf=buf)
        r = self.model.step(st1, fd.index)
        if r is None:
            raise TranslateError(f"step {n + 1}: {fd} is not enabled after {exp}")
        st2, ret, _ev, _b = r
        if ret == _EMFILE:
            return (f"step {n + 1}: {fd} returns -EMFILE only because the model's fd table has "
                    f"{self.model.scope.fds} slots; trace cut before it")
        self.state = st2
        self.steps.append(Step("create", (), f"{exp}; {fd}", ret, f"ok={ret}"))
        return None

    def user(self, n: int, name: str, args: Mapping[str, Any]) -> str | None:
        inst = self.instance(n, name, args)
        a = inst.kwargs
        nxt, ret, ev, _b = self.apply(n, inst)
        # -ENOMEM from mmap is the model's bound only when its mapping table is full (a length
        # beyond the address space gets -ENOMEM from the kernel too)
        table_full = all(self.get(f"vma_live[{v}]") for v in range(self.model.scope.vmas))
        if (name in ("dup",) and ret == _EMFILE) or (name == "mmap" and ret == _ENOMEM and table_full):
            bound = "fd table" if name == "dup" else "mapping table"
            size = self.model.scope.fds if name == "dup" else self.model.scope.vmas
            return (f"step {n}: {inst} returns {self.model.describe_ret(ret)} only because the model's "
                    f"{bound} has {size} slots; trace cut before it")
        op = _OP_OF[name]
        call = str(inst)
        if name in ("dup", "close"):
            step = Step(op, (a["fd"],), call, ret, f"ok={ret}" if name == "dup" and ret >= 0
                        else "ok" if ret == 0 else _errno_outcome(ret))
        elif name == "mmap":
            refused = a["pgoff"] > RUNNER_PGOFF_MAX or a["npages"] > RUNNER_NPAGES_MAX
            step = Step(op, (a["fd"], a["pgoff"], a["npages"]), call, ret,
                        "err:overflow" if refused else f"ok={ret}" if ret >= 0 else _errno_outcome(ret))
        elif name == "munmap":
            live = self.get(f"vma_live[{a['vma']}]")
            step = Step(op, (a["vma"],), call, ret, "ok" if live else "err:nomap")
        elif name == "ioctl_sync":
            step = Step(op, (a["fd"], a["flags"]), call, ret, "ok" if ret == 0 else _errno_outcome(ret))
        else:
            step = self.access(name, a, call, ret, ev)
        self.state = nxt
        self.steps.append(step)
        return None

    # --- kernel side ----------------------------------------------------------------------
    def kernel(self, n: int, name: str, args: Mapping[str, Any], locked: int | None = None) -> str | None:
        """One kernel-side model call -> one module step (``_Kernel`` keeps the module's
        handles, attachments and vmaps in step with the model's buffers and attachments).
        ``locked``: the module's call under dma_resv_lock (1) or the ``_unlocked`` one (0); by
        default (v5.12, where the model has no lock) both, alternately."""
        inst = self.instance(n, name, args)
        a = inst.kwargs
        nxt, ret, ev, _b = self.apply(n, inst)
        k = self.k
        call = str(inst)
        idx = len(self.steps)
        if name in _UNLOCKED_OF:
            name, locked = _UNLOCKED_OF[name], 0
        dynamic = name == "dma_buf_dynamic_attach"
        if dynamic:
            name = "dma_buf_attach"
            k.v612 = True
        if locked is None:
            locked = (self.trace_id + idx) % 2   # both variants of map/vmap, alternately
        ok = "ok" if ret == 0 else _errno_outcome(ret)
        if name == "dma_buf_get":
            if ret >= 0:
                h = k.lowest(k.handles)
                if h is None:
                    return f"step {n}: {call} needs a 17th module handle; trace cut before it"
                k.handles[h] = ret
                step = Step("kget", (a["fd"],), call, ret, f"ok={h}")
            else:
                step = Step("kget", (a["fd"],), call, ret, ok)
        elif name == "dma_buf_put":
            h = k.handle(a["buf"])
            last = sum(1 for b in k.handles.values() if b == a["buf"]) == 1
            busy = last and (a["buf"] in k.atts.values() or a["buf"] in k.vmaps.values())
            if not busy and h is not None:
                del k.handles[h]
            step = Step("kput", (-1 if h is None else h,), call, ret, "err:busy" if busy else ok)
        elif name == "dma_buf_attach":
            if ret < 0:
                return (f"step {n}: {call} returns {self.model.describe_ret(ret)} only because the model "
                        f"has {self.model.scope.attachments} attachment slots; trace cut before it")
            slot = k.lowest(k.atts)
            if slot is None:
                return f"step {n}: {call} needs a 17th module attachment; trace cut before it"
            h = k.handle(a["buf"])
            k.atts[slot] = a["buf"]
            k.att_of[ret] = slot
            k.att_step[slot] = idx
            k.dyn_slot[slot] = dynamic
            step = Step("kdattach" if dynamic else "kattach", (h,), call, ret, f"ok={slot}")
        elif name in ("dma_buf_detach", "dma_buf_map_attachment", "dma_buf_unmap_attachment",
                      "dma_buf_pin", "dma_buf_unpin"):
            slot = k.att_of.get(a["att"], -1)
            if name == "dma_buf_detach":
                mapped = bool(self.get(f"att_mapped[{a['att']}]"))
                pinned = self.get(f"att_pins[{a['att']}]") > 0
                expect = "err:mapped" if mapped else "err:busy" if pinned else ok
                if not (mapped or pinned):
                    k.atts.pop(slot, None)
                    k.att_of.pop(a["att"], None)
                step = Step("kdetach", (slot,), call, ret, expect)
            elif name == "dma_buf_map_attachment":
                step = Step("kmap", (slot, a["direction"], locked), call, ret, ok)
            elif name == "dma_buf_unmap_attachment":
                step = Step("kunmap", (slot, locked), call, ret, ok)
            else:
                if k.v612 and not k.dyn_slot.get(slot, False):
                    raise TranslateError(f"step {n}: {call} on an attachment not made with "
                                         f"dma_buf_dynamic_attach: 6.12's dma_buf_pin WARNs, the module refuses")
                if slot in k.att_step:
                    k.dynamic.add(k.att_step[slot])   # dma_buf_pin needs a dynamic importer on 6.12
                step = Step("kpin" if name == "dma_buf_pin" else "kunpin", (slot,), call, ret, ok)
        elif name in ("dma_buf_begin_cpu_access", "dma_buf_end_cpu_access"):
            h = k.handle(a["buf"])
            op = "kbegin" if name == "dma_buf_begin_cpu_access" else "kend"
            step = Step(op, (-1 if h is None else h, a["direction"]), call, ret, ok)
        elif name == "dma_buf_vmap":
            h = k.handle(a["buf"])
            if ret == 0:
                v = k.lowest(k.vmaps)
                if v is None:
                    return f"step {n}: {call} needs a 17th module vmap; trace cut before it"
                k.vmaps[v] = a["buf"]
                step = Step("kvmap", (h, locked), call, ret, f"ok={v}")
            else:
                step = Step("kvmap", (h, locked), call, ret, ok)
        elif name == "dma_buf_vunmap":
            v = k.vmap(a["buf"])
            if v is not None:
                del k.vmaps[v]
            step = Step("kvunmap", (-1 if v is None else v, locked), call, ret,
                        "err:noslot" if v is None else ok)
        else:  # kernel_read, kernel_write
            v = k.vmap(a["buf"])
            store = name == "kernel_write"
            value = write_value(self.trace_id, idx) if store else None
            vv = -1 if v is None else v
            args_ = (vv, a["page"], value) if store else (vv, a["page"])
            if v is None:
                expect = "err:noslot"     # the model: -EFAULT, no kernel mapping to go through
            elif ret != 0:
                raise TranslateError(f"{call}: unexpected model return {ret}")
            else:
                expect = _PREDICTED
            step = Step("kwrite" if store else "kread", args_, call, ret, expect, buf=a["buf"], pgoff=0,
                        page=a["page"], value=value, stale=bool(ev & _KSTALE))
        self.state = nxt
        self.steps.append(step)
        return None

    def access(self, name: str, a: Mapping[str, Any], call: str, ret: int, ev: int) -> Step:
        vma, page = a["vma"], a["page"]
        live = bool(self.get(f"vma_live[{vma}]"))
        buf = self.get(f"vma_buf[{vma}]") if live else None
        pgoff = self.get(f"vma_pgoff[{vma}]") if live else None
        store = name == "cpu_write"
        index = len(self.steps)
        value = write_value(self.trace_id, index) if store else None
        args = (vma, page, value) if store else (vma, page)
        stale = bool(ev & _STALE)
        if ret == FAULT_SIGSEGV:
            expect = "err:range" if live else "err:nomap"
        elif ret == FAULT_SIGBUS:
            expect = "SIGBUS"
        elif ret != 0:
            raise TranslateError(f"{call}: unexpected model return {ret}")
        else:
            expect = _PREDICTED      # filled in by access_predictions once the trace is whole
        return Step(_OP_OF[name], args, call, ret, expect, buf=buf, pgoff=pgoff, page=page,
                    value=value, stale=stale)


class _Kernel:
    """The module's tables as the translation fills them: handle -> model buffer, attachment
    slot -> model buffer, vmap slot -> model buffer, model attachment -> module slot; the steps
    whose attachment must be dynamic (it is pinned later)."""

    def __init__(self) -> None:
        self.handles: dict[int, int] = {}
        self.atts: dict[int, int] = {}
        self.vmaps: dict[int, int] = {}
        self.att_of: dict[int, int] = {}
        self.att_step: dict[int, int] = {}
        self.dynamic: set[int] = set()
        self.dyn_slot: dict[int, bool] = {}
        #: the model is at v6.12: it says which attachments are dynamic (no rewrite by _dynamic)
        self.v612 = False

    @staticmethod
    def lowest(table: Mapping[int, int]) -> int | None:
        return next((i for i in range(KMOD_SLOTS) if i not in table), None)

    def handle(self, buf: int) -> int | None:
        """The newest module handle of model buffer ``buf`` (the one a put drops)."""
        hs = [h for h, b in self.handles.items() if b == buf]
        return max(hs) if hs else None

    def vmap(self, buf: int) -> int | None:
        vs = [v for v, b in self.vmaps.items() if b == buf]
        return max(vs) if vs else None


def _busy_maps(steps: list[Step]) -> dict[int, int]:
    """Attach step -> its first ``kmap`` predicted ``EBUSY`` (the model's cached mapping in
    another direction), following the module's attachment slots through detaches."""
    made: dict[int, int] = {}   # slot -> the attach step that made it
    busy: dict[int, int] = {}
    for i, st in enumerate(steps):
        if st.op == "kattach" and st.expect.startswith("ok="):
            made[int(st.expect[3:])] = i
        elif st.op == "kdetach" and st.expect == "ok":
            made.pop(st.args[0], None)
        elif st.op == "kmap" and st.expect == "EBUSY" and st.args[0] in made:
            busy.setdefault(made[st.args[0]], i)
    return busy


def _dynamic(steps: list[Step], k: _Kernel, trace_id: int) -> list[Step]:
    """Attachments that are pinned, and every third other one, are made with
    dma_buf_dynamic_attach (``kdattach``); the v5.12 model has static attachments only. It tells
    the two apart in one way: 6.12's core maps a dynamic attachment of these (non-dynamic)
    exporters DMA_BIDIRECTIONAL at attach time and keeps that mapping, so a map the model refuses
    with -EBUSY (a kept mapping in another direction, ``cache_sgt_mapping``) succeeds there. Such
    an attachment stays static; when it must be dynamic (it is pinned), the trace is cut before
    that map."""
    if k.v612:
        return steps
    busy = _busy_maps(steps)
    cut = min((j for i, j in busy.items() if i in k.dynamic), default=len(steps))
    out = []
    for i, st in enumerate(steps[:cut]):
        if st.op == "kattach" and (i in k.dynamic or ((trace_id + i) % 3 == 0 and i not in busy)):
            st = dataclasses.replace(st, op="kdattach")
        out.append(st)
    return out


def _calls(calls: Iterable[tuple[str, Mapping[str, Any]] | tuple[str, Sequence]]) -> list[tuple[str, dict]]:
    out = []
    for c in calls:
        name, args = c
        out.append((name, dict(args)))
    return out


def translate(
    model: Model,
    calls: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    trace_id: int,
    exporter: str,
    source: str = "",
) -> ConformTrace:
    """Replay ``calls`` (``(action, {param: value})``) on ``model`` and build the runner trace.

    Raises TranslateError for a call the runner cannot perform (a kernel-side action, an
    export not followed by its fd install) or the model cannot take. Interrupted SYNCs are
    dropped and a scope-exhaustion return cuts the trace, both recorded in ``notes``.
    """
    if exporter not in POLICY_OF:
        raise TranslateError(f"unknown exporter {exporter!r} (known: {', '.join(POLICY_OF)})")
    calls = _calls(calls)
    rp = _Replayer(model, trace_id)
    rp.k.v612 = "dma_resv_lock" in model.by_name
    notes: list[str] = []
    i = 0
    while i < len(calls):
        n = i + 1
        name, args = calls[i]
        if name == "dma_buf_export":
            nxt = calls[i + 1] if i + 1 < len(calls) else None
            if nxt is None or nxt[0] != "dma_buf_fd" or nxt[1] != args:
                raise TranslateError(f"step {n}: {format_call(name, tuple(args.items()))} is not followed by "
                                     f"dma_buf_fd with the same buffer; the runner exports and installs "
                                     f"the fd in one step")
            cut = rp.create(n, args.get("buf", 0))
            i += 2
        elif name == "dma_buf_fd":
            raise TranslateError(f"step {n}: dma_buf_fd without the dma_buf_export just before it")
        elif name in ("dma_resv_lock", "dma_resv_unlock"):
            # the module holds the lock inside one call: "lock; <locked call>; unlock" only
            mid = calls[i + 1] if i + 1 < len(calls) else None
            end = calls[i + 2] if i + 2 < len(calls) else None
            if (name != "dma_resv_lock" or mid is None or mid[0] not in _LOCKED_CALLS or end is None
                    or end[0] != "dma_resv_unlock" or end[1] != args):
                raise TranslateError(f"step {n}: {format_call(name, tuple(args.items()))}: the module takes "
                                     f"dma_resv_lock around one call only (lock; one of "
                                     f"{', '.join(_LOCKED_CALLS)}; unlock of the same buffer)")
            lock = rp.instance(n, name, args)
            rp.state = rp.apply(n, lock)[0]
            cut = rp.kernel(n + 1, mid[0], mid[1], locked=1)
            if not cut:
                unlock = rp.instance(n + 2, end[0], end[1])
                rp.state = rp.apply(n + 2, unlock)[0]
                st = rp.steps[-1]
                rp.steps[-1] = dataclasses.replace(st, model=f"{lock}; {st.model}; {unlock}")
            i += 3
        elif name in KERNEL_ACTIONS + KERNEL_ACTIONS_V6_12 and not (name.endswith("cpu_access")
                                                                     and args.get("interrupted")):
            cut = rp.kernel(n, name, args)
            i += 1
        elif name in KERNEL_ACTIONS:
            notes.append(f"step {n}: {format_call(name, tuple(args.items()))} dropped: a real guest cannot be "
                         f"interrupted on demand")
            i += 1
            continue
        elif name not in USERSPACE_ACTIONS:
            raise TranslateError(f"step {n}: {name} is neither a userspace action nor a kernel-side one "
                                 f"the module performs; the runner cannot perform it")
        elif name == "ioctl_sync" and args.get("interrupted"):
            notes.append(f"step {n}: {format_call(name, tuple(args.items()))} dropped: a real guest cannot be "
                         f"interrupted on demand")
            i += 1
            continue
        else:
            cut = rp.user(n, name, args)
            i += 1
        if cut:
            notes.append(cut)
            break
    steps = [dataclasses.replace(s, expect=p) if s.expect == _PREDICTED else s
             for s, p in zip(rp.steps, access_predictions(rp.steps))]
    steps = _dynamic(steps, rp.k, trace_id)
    return ConformTrace(id=trace_id, exporter=exporter, policy=model.policy.name, npages=model.scope.pages,
                        source=source, steps=tuple(steps), notes=tuple(notes), scope=model.scope.name)


# --------------------------------------------------------------------------------------
# random traces


def _user_instances(model: Model, kernel_side: bool = False) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for name in USERSPACE_ACTIONS + (KERNEL_ACTIONS + KERNEL_ACTIONS_V6_12 if kernel_side else ()):
        out[name] = [i for i in model.by_name.get(name, ())
                     if not model.instances[i].kwargs.get("interrupted", False)]
    return out


def random_calls(model: Model, rng: random.Random, length: int,
                 kernel_side: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """A seeded random walk of ``length`` runner steps through the model's userspace actions
    (and, with ``kernel_side``, its kernel-side ones, ``KERNEL_ACTIONS``).

    The first step creates a buffer. Each further step picks a kind of step (weighted, among
    those possible now), then one of its instances at random; steps whose return is a scope
    artefact (-EMFILE, -ENOMEM) are never taken, nor interrupted SYNCs and begin/end calls,
    nor the importer bugs the module refuses (a detach while mapped or pinned, a vunmap
    without a vmap, a put of the last reference while attachments or vmaps remain).

    At v6.12 the walk is a correct importer of the locking convention: each call of the locked
    list is taken as ``dma_resv_lock; call; dma_resv_unlock`` of its buffer (one runner step), the
    lock is never held between steps (so no function of the unlocked list runs with it held), and
    only attachments made with dma_buf_dynamic_attach are pinned; the model's convention breaks
    (``resv_not_held``, ``resv_held_unlocked_call``, ``resv_deadlock``) are never taken.
    """
    v612 = "dma_resv_lock" in model.by_name
    weights_of = dict(_WEIGHTS, **((_KWEIGHTS_V6_12 if v612 else _KWEIGHTS) if kernel_side else {}))
    inst = _user_instances(model, kernel_side)
    exports = model.by_name["dma_buf_export"]
    fd_of = {model.instances[i].kwargs["buf"]: model.find("dma_buf_fd", **model.instances[i].kwargs).index
             for i in exports}
    state = model.init
    calls: list[tuple[str, dict[str, Any]]] = []
    steps = 0
    while steps < length:
        kinds = ["create"] if steps == 0 else [k for k in weights_of if k == "create" or inst.get(k)]
        while kinds:
            weights = [weights_of[k] for k in kinds]
            kind = rng.choices(kinds, weights)[0]
            kinds.remove(kind)
            took = _take(model, rng, state, kind, inst, exports, fd_of)
            if took is not None:
                state, new = took
                calls.extend(new)
                steps += 1
                break
        else:
            break  # nothing possible (cannot happen: close of any slot is always possible)
    return calls


def _take(model, rng, state, kind, inst, exports, fd_of):
    """One step of kind ``kind`` from ``state``: ``(next state, calls)`` or None if none fits.

    Steps that do something (a successful call, an access inside a mapping) are preferred
    (``_P_USEFUL``), so that traces reach mappings, brackets and loads; failing ones still come
    up often enough to check every errno."""
    if kind == "create":
        cands = list(exports)
        rng.shuffle(cands)
        for i in cands:
            r = model.step(state, i)
            if r is None:
                continue
            b = model.instances[i].kwargs["buf"]
            r2 = model.step(r[0], fd_of[b])
            if r2 is None or r2[1] == _EMFILE:
                continue
            return r2[0], [("dma_buf_export", {"buf": b}), ("dma_buf_fd", {"buf": b})]
        return None
    useful, other = [], []
    off = model.schema.offset
    locked = kind in _LOCKED_CALLS and "dma_resv_lock" in model.by_name
    for i in inst[kind]:
        pre = state
        if locked:   # v6.12: the call inside dma_resv_lock/unlock of its buffer
            kw = model.instances[i].kwargs
            b = kw["buf"] if "buf" in kw else state[off[f"att_buf[{kw['att']}]"]]
            if kind in ("dma_buf_pin", "dma_buf_unpin") and not state[off[f"att_dynamic[{kw['att']}]"]]:
                continue      # 6.12's dma_buf_pin WARNs on a static attachment
            rl = model.step(state, model.find("dma_resv_lock", buf=b).index)
            if rl is None:
                continue
            pre = rl[0]
        r = model.step(pre, i)
        if r is None:
            continue
        if locked:
            ru = model.step(r[0], model.find("dma_resv_unlock", buf=b).index)
            if ru is None:
                continue
            r = (ru[0],) + tuple(r[1:])
        ret = r[1]
        if (kind == "dup" and ret == _EMFILE) or (kind == "mmap" and ret == _ENOMEM):
            continue
        if kind in KERNEL_ACTIONS + KERNEL_ACTIONS_V6_12 and not _kernel_step_ok(model, state, i, r):
            continue
        if kind == "munmap":
            ok = bool(state[off[f"vma_live[{model.instances[i].kwargs['vma']}]"]])
        else:
            ok = ret >= 0
        (useful if ok else other).append((i, r))
    pool = useful if useful and (not other or rng.random() < _P_USEFUL) else other
    if not pool:
        return None
    i, r = rng.choice(pool)
    a = dict(model.instances[i].args)
    a.pop("interrupted", None)
    if locked:
        kw = model.instances[i].kwargs
        b = kw["buf"] if "buf" in kw else state[off[f"att_buf[{kw['att']}]"]]
        return r[0], [("dma_resv_lock", {"buf": b}), (kind, a), ("dma_resv_unlock", {"buf": b})]
    return r[0], [(kind, a)]


def _kernel_step_ok(model: Model, state: tuple, i: int, r: tuple) -> bool:
    """Whether a random trace may take kernel-side instance ``i`` (result ``r``) in ``state``."""
    name = model.instances[i].name
    kw = model.instances[i].kwargs
    if r[2] & _IMPORTER_BUGS:
        return False
    if name in ("dma_buf_attach", "dma_buf_dynamic_attach") and r[1] < 0:
        return False      # the model's attachment table is full: a scope artefact
    off = model.schema.offset
    if name == "dma_buf_put":
        b = kw["buf"]
        if state[off[f"kref[{b}]"]] == 1:
            if state[off[f"vmapping_counter[{b}]"]] > 0:
                return False
            if any(state[off[f"att_live[{a}]"]] and state[off[f"att_buf[{a}]"]] == b
                   for a in range(model.scope.attachments)):
                return False
    if name in ("dma_buf_get", "dma_buf_attach", "dma_buf_vmap"):
        # the module's tables (16 each) are larger than any scope's; keep it that way
        pass
    return True


def random_traces(
    exporter: str,
    n: int,
    seed: int,
    *,
    scope: str = "default",
    revision: str = "v5.12",
    first_id: int = 0,
    min_len: int = 4,
    max_len: int = 24,
    model: Model | None = None,
    kernel_side: bool = False,
) -> list[ConformTrace]:
    """``n`` random traces for ``exporter`` (ids ``first_id``...), predicted by its catalog policy.

    Trace ``k`` depends only on (seed, exporter, k): asking for more traces extends the list.
    """
    if exporter not in POLICY_OF:
        raise TranslateError(f"unknown exporter {exporter!r} (known: {', '.join(POLICY_OF)})")
    m = model or Model(CATALOG[POLICY_OF[exporter]], SCOPES[scope], revision)
    out = []
    for k in range(n):
        rng = random.Random(f"dmabuf-check conform {seed} {exporter} {k}")
        calls = random_calls(m, rng, rng.randint(min_len, max_len), kernel_side)
        out.append(translate(m, calls, trace_id=first_id + k, exporter=exporter,
                             source=f"random seed={seed} #{k}"))
    return out


# --------------------------------------------------------------------------------------
# litmus files (docs/interface.md, "Litmus files"; read by properties.scenarios.litmus)


def _is_userspace(action: str, kernel_side: bool = False) -> bool:
    return (action in USERSPACE_ACTIONS or action in ("dma_buf_export", "dma_buf_fd")
            or (kernel_side and action in KERNEL_ACTIONS + KERNEL_ACTIONS_V6_12))


def litmus_traces(
    paths: Sequence[str | Path],
    exporters: Sequence[str],
    *,
    first_id: int = 0,
    revision: str = "v5.12",
    kernel_side: bool = False,
) -> tuple[list[ConformTrace], list[str]]:
    """Every userspace litmus file among ``paths`` (files, or folders searched for
    ``*.litmus.toml``) as one trace per exporter, predicted by that exporter's policy in the
    file's scope at ``revision`` (the file's own exporter, revision and expectations are for
    ``litmus``: the prediction is for the real kernel's driver, which the v4.11 dma_buf_export()
    would refuse, corpus §3.5; every userspace action exists at both revisions).

    Returns ``(traces, skipped)``; ``skipped`` says why a file was not used (it uses kernel-side
    actions, or exports without installing the fd). A file that cannot be read, parsed or translated raises TranslateError naming it.
    """
    try:
        files = collect(paths)
    except LitmusError as e:
        raise TranslateError(str(e)) from None
    traces: list[ConformTrace] = []
    skipped: list[str] = []
    models: dict[tuple[str, str, str], Model] = {}
    tid = first_id
    for path in files:
        try:
            lt = load_litmus(path, as_test=False)   # its steps, not its expectations
        except LitmusError as e:
            raise TranslateError(str(e)) from None
        other = sorted({s.action for s in lt.steps if not _is_userspace(s.action, kernel_side)})
        if other:
            skipped.append(f"{path}: not userspace ({', '.join(other)})" if not kernel_side else
                           f"{path}: actions the runner cannot perform ({', '.join(other)})")
            continue
        calls = [(s.action, dict(s.args)) for s in lt.steps]
        if any(a == "dma_buf_export" and (i + 1 == len(calls) or calls[i + 1] != ("dma_buf_fd", args))
               for i, (a, args) in enumerate(calls)):
            # (mmap-optional-drift: an export that v4.11 refuses, with nothing after it)
            skipped.append(f"{path}: a dma_buf_export without its dma_buf_fd (the runner does both in one step)")
            continue
        for exporter in exporters:
            key = (exporter, lt.scope.name, revision)
            if key not in models:
                models[key] = Model(CATALOG[POLICY_OF[exporter]], lt.scope, revision)
            try:
                traces.append(translate(models[key], calls, trace_id=tid, exporter=exporter,
                                        source=str(path)))
            except TranslateError as e:
                if kernel_side and any(s.action in KERNEL_ACTIONS + KERNEL_ACTIONS_V6_12 for s in lt.steps):
                    # e.g. a buffer exported without an fd: the module only reaches buffers
                    # through the fds the userspace runner made
                    skipped.append(f"{path}: cannot be performed ({e})")
                    break
                raise TranslateError(f"{path}: {e}") from None
            tid += 1
    return traces, skipped
