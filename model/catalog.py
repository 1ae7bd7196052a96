"""The exporter policy catalog: real drivers, a reference exporter, broken exporters, mutants.

Real-driver policies follow the code quoted in the corpus (§7); where a driver postdates v4.11 it
is checked against the v4.11 documentation as the tool's users would (is this driver keeping the
rules the documentation states?). Every policy lists the claims it is expected to break, and why:
the default campaign passes only when exactly those are found broken.

Revisions. A policy is checked at every documentation revision whose ``dma_buf_export()``
accepts its ops: a policy says what a driver does, and the campaign asks whether that keeps the
rules of the revision checked, whichever kernel the driver shipped in (udmabuf came in v4.20, the
system heap in v5.6, vgem's shmem helpers later still). Each catalog policy's ``revisions`` are
derived from its knobs by the rule the export action itself reads (``ExporterPolicy.
exportable_revisions``, ``model.policy.export_requires``), never written by hand: the v4.11
``dma_buf_export()`` refuses ops without kmap, kmap_atomic or mmap (WARN_ON, ``-EINVAL``, corpus
§3.5; optional since v4.19, §6.1), so udmabuf (no kmap_atomic), the system heap and vgem (neither)
are not exportable at v4.11 and are checked at v5.12 only. They are not run at v4.11 at all:
every run there would stop at the refused export, and its "holds" would check nothing. The
campaign, ``explore``, ``prove`` and the review list them instead ("udmabuf: not exportable at
v4.11 (dma_buf_export() refuses ops without kmap_atomic, corpus §3.5)"); i915's kmap stubs exist
(they return NULL, ``kmap_returns_null``), so i915 is exportable at both.

``breaks`` lists the claims broken at any revision the policy is checked at; a claim is judged
only at the revisions whose documentation has it (the properties citing it say which), so the
FIXME claims count at v4.11 and the ``M-*`` claims at v5.12. At v5.12 the kmap knobs
(``has_kmap``, ``has_kmap_atomic``, ``kmap_returns_null``, ``kmap_swaps_in``) have nothing to act
on: the kmap family does not exist. (Before the export refusal was modelled, udmabuf, the system
heap and vgem declared ``KCPU-ALWAYS-SUCCEED`` broken, and vgem ``BEGIN-AVAILABLE``: both claims
exist at v4.11 only, where these drivers cannot be exported, so no kernel reaches those breaks.)

v6.12 (the reservation-lock convention, dynamic attachments, ``L-*`` and ``R-*`` claims): the
reference exporter is dynamic (``dynamic``: it moves storage under the lock and calls
dma_buf_move_notify); the real drivers of the catalog are not (udmabuf, the system heap and the
GEM shmem helpers vgem uses have no ``ops->pin`` at v6.12, so the core pins for every importer),
and none of their locked-list callbacks takes the reservation lock, so they break no v6.12 claim.
Their knobs were checked against the Debian source of the 6.12 kernel the conformance runs boot
(linux-source-6.12 6.12.95-1~bpo12+1, ``python -m properties.conform.sources 6.12``): each entry's
``why`` gives ``file:function:line`` for them (tests/test_conform_sources.py checks the places).
udmabuf and vgem's DRM PRIME ops set ``cache_sgt_mapping`` (the core's cached mapping, v5.12 on:
the kernel has had it since ~v5.3 [U], after the corpus's v5.12 text, and dropped it in ~v6.16).

Broken policies start from ``reference`` (an exporter that keeps every documented exporter rule)
and change one behaviour each; mutants change the core instead, so that each core property is
shown to be able to fail.
"""
from __future__ import annotations

import dataclasses

from .policy import ExporterPolicy

__all__ = ["CATALOG", "get_policy", "REAL_DRIVERS", "BROKEN", "MUTANTS"]

_KMAP_MISSING = ("KCPU-ALWAYS-SUCCEED",)

_i915 = ExporterPolicy(
    name="i915",
    description="i915 GEM at v4.10/v4.11: kmap and kmap_atomic are NULL stubs; mmap redirected to "
                "the GEM shmem file; begin/end move the object between CPU and GTT domains",
    why="corpus §7.1 (S9): i915_gem_dmabuf_kmap returns NULL, i915_gem_dmabuf_mmap swaps vm_file, "
        "begin pins pages only transiently and can fail with -EINTR",
    breaks=_KMAP_MISSING,
    kmap_returns_null=True, swappable=True, starts_resident=False,
    begin_swaps_in=True, begin_pins=False, begin_waits_fences=True, begin_interruptible=True,
    end_interruptible=True, mmap_own_file=True,
)

_omapdrm = ExporterPolicy(
    name="omapdrm",
    description="omapdrm: begin_cpu_access allocates and pins the pages, end_cpu_access unpins, "
                "kmap relies on the pin; write-combined (coherent) CPU mappings",
    why="corpus §7.2 (S13): omap_gem_get_pages(obj, &pages, true) in begin, omap_gem_put_pages "
        "in end, kmap uses get_pages(false); the SYNC ioctl reaches the same hook",
    breaks=(
        "FIXME-NO-USER-PIN",     # SYNC_START pins swappable storage for userspace
        "BEGIN-ERRORS",          # the core's fence wait fails after the pin was taken
        "FIXME-KMAP-PINNED",     # a userspace SYNC_END drops the pin a kernel bracket relies on
        "KCPU-ALWAYS-SUCCEED",   # ... after which memory pressure evicts and kmap finds no pages
        "M-BEGIN-COHERENCY-ONLY",  # v5.12: begin still pins
        "M-PIN-NOT-USER",        # v5.12: so SYNC_START still pins swappable storage for userspace
    ),
    coherent=True, swappable=True, starts_resident=False, begin_pins=True, begin_sync="none",
    has_vmap=False,
)

_udmabuf = ExporterPolicy(
    name="udmabuf",
    description="udmabuf: memfd pages pinned for the buffer's life; begin creates the sg table on "
                "first use and syncs for the CPU, end syncs for the device and fails before any begin",
    why="corpus §7.4 (S14/S15): begin_cpu_udmabuf / end_cpu_udmabuf (-EINVAL without sg table), "
        "mmap with a fault handler, no map_atomic callback (optional from v4.19: the v4.11 "
        "dma_buf_export() refuses it, §3.5). "
        "v6.12, checked in Debian linux-source-6.12 6.12.95-1~bpo12+1: "
        "drivers/dma-buf/udmabuf.c:udmabuf_ops:238 '.cache_sgt_mapping = true,' (cache_sgt_mapping; no .pin: not dynamic); "
        "drivers/dma-buf/udmabuf.c:udmabuf_ops:242 .mmap, :udmabuf_ops:243 .vmap, :udmabuf_ops:245 .begin_cpu_access, "
        "drivers/dma-buf/udmabuf.c:udmabuf_ops:246 .end_cpu_access (has_mmap, has_vmap, has_begin, has_end); "
        "drivers/dma-buf/udmabuf.c:udmabuf_pin_folios:300 memfd_pin_folios at create, unpinned only at release (starts "
        "resident, not swappable); drivers/dma-buf/udmabuf.c:begin_cpu_udmabuf:212 get_sg_table on the first begin maps the sg "
        "table for the direction (dma_map_sgtable), drivers/dma-buf/udmabuf.c:begin_cpu_udmabuf:218 "
        "dma_sync_sgtable_for_cpu on the later ones (begin_sync 'direction'; no pin, no lock, no fence wait); "
        "drivers/dma-buf/udmabuf.c:end_cpu_udmabuf:231 -EINVAL without the sg table (end_requires_begin), "
        "drivers/dma-buf/udmabuf.c:end_cpu_udmabuf:233 dma_sync_sgtable_for_device (end_flush); drivers/dma-buf/udmabuf.c:mmap_udmabuf:68 "
        "vm_ops only, vm_file left alone (mmap_own_file false), drivers/dma-buf/udmabuf.c:udmabuf_vm_fault:54 "
        "vmf_insert_pfn, one page per fault (mmap_prefault false); drivers/dma-buf/udmabuf.c:vmap_udmabuf:81 dma_resv_assert_held, "
        "the lock is the caller's (callback_takes_resv false)",
    swappable=False, end_requires_begin=True, has_kmap_atomic=False, cache_sgt_mapping=True,
)

_system_heap = ExporterPolicy(
    name="system-heap",
    description="DMA-BUF system heap: pages allocated at export and never swapped; begin/end sync "
                "the mapped attachments and the vmap alias; mmap maps every page at once",
    why="corpus §7.5 (S16): system_heap_dma_buf_begin/end_cpu_access never fail, system_heap_mmap "
        "uses remap_pfn_range, no kmap callbacks (the heaps came after kmap was removed; the v4.11 "
        "dma_buf_export() refuses them, §3.5). "
        "v6.12, checked in Debian linux-source-6.12 6.12.95-1~bpo12+1: drivers/dma-buf/heaps/system_heap.c:system_heap_buf_ops:306 "
        ".begin_cpu_access, drivers/dma-buf/heaps/system_heap.c:system_heap_buf_ops:307 .end_cpu_access, drivers/dma-buf/heaps/system_heap.c:system_heap_buf_ops:308 "
        ".mmap, drivers/dma-buf/heaps/system_heap.c:system_heap_buf_ops:309 .vmap; no .pin, no cache_sgt_mapping (not dynamic, every "
        "map is new); drivers/dma-buf/heaps/system_heap.c:system_heap_allocate:371 "
        "alloc_largest_available: pages allocated at export, never swapped; "
        "drivers/dma-buf/heaps/system_heap.c:system_heap_dma_buf_begin_cpu_access:159 mutex_lock, not interruptible, "
        "drivers/dma-buf/heaps/system_heap.c:system_heap_dma_buf_begin_cpu_access:162 invalidate_kernel_vmap_range and "
        "drivers/dma-buf/heaps/system_heap.c:system_heap_dma_buf_begin_cpu_access:167 dma_sync_sgtable_for_cpu of each mapped "
        "attachment (begin_sync 'direction', never fails), drivers/dma-buf/heaps/system_heap.c:system_heap_dma_buf_end_cpu_access:183 "
        "flush_kernel_vmap_range, drivers/dma-buf/heaps/system_heap.c:system_heap_dma_buf_end_cpu_access:188 "
        "dma_sync_sgtable_for_device (end_flush); drivers/dma-buf/heaps/system_heap.c:system_heap_mmap:206 remap_pfn_range of every "
        "page (mmap_prefault); drivers/dma-buf/heaps/system_heap.c:system_heap_vmap:249 mutex_lock of its own "
        "buffer->lock, not the reservation lock (callback_takes_resv false)",
    swappable=False, has_kmap=False, has_kmap_atomic=False, mmap_prefault=True,
)

_coherent = ExporterPolicy(
    name="coherent",
    description="an exporter of coherent, never-swapped memory with no begin/end callbacks",
    why="BEGIN-OPTIONAL / END-OPTIONAL: the core returns 0 without the callbacks",
    has_begin=False, has_end=False, coherent=True, swappable=False,
)

_reference = ExporterPolicy(
    name="reference",
    description="a non-coherent exporter that keeps every documented exporter rule: storage is "
                "never swapped (so kmap always finds it), begin syncs by direction, end flushes; "
                "at v6.12 a dynamic exporter that moves storage under the reservation lock and "
                "calls dma_buf_move_notify",
    why="the starting point of the broken policies",
    swappable=False, begin_waits_fences=True, dynamic=True,
)


_vgem = ExporterPolicy(
    name="vgem",
    description="vgem (virtual GEM) in 6.x: shmem GEM objects exported by the generic DRM PRIME "
                "helpers; no begin/end_cpu_access callbacks (SYNC only checks its flags), "
                "write-combined CPU mappings, pages allocated on first use and faulted in one by one",
    why="corpus §7.3 (generic DRM PRIME exporter) with vgem as of v5.14..6.12 "
        "(drivers/gpu/drm/vgem/vgem_drv.c, drm_gem_shmem_helper.c): DRM_GEM_SHMEM_DRIVER_OPS; "
        "vgem_gem_create_object sets map_wc because 'vgem doesn't have any begin/end cpu access "
        "ioctls, therefore must use coherent memory'; drm_gem_prime_dmabuf_ops has no "
        "begin/end_cpu_access and no kmap (removed in v5.6); drm_gem_shmem_mmap leaves vm_file "
        "alone, refuses copy-on-write (MAP_PRIVATE) mappings, and drm_gem_shmem_fault inserts one "
        "shmem page per fault; the shmem pages are allocated on first get_pages and can be "
        "swapped once nothing holds them; no kmap callbacks, which the v4.11 dma_buf_export() "
        "refuses (§3.5). "
        "v6.12, checked in Debian linux-source-6.12 6.12.95-1~bpo12+1: drivers/gpu/drm/vgem/vgem_drv.c:vgem_driver:119 "
        "DRM_GEM_SHMEM_DRIVER_OPS; drivers/gpu/drm/drm_prime.c:drm_gem_prime_dmabuf_ops:813 '.cache_sgt_mapping = true,' "
        "(cache_sgt_mapping), no .begin_cpu_access, .end_cpu_access or .pin (has_begin, has_end "
        "false; not dynamic), drivers/gpu/drm/drm_prime.c:drm_gem_prime_dmabuf_ops:819 .mmap, "
        "drivers/gpu/drm/drm_prime.c:drm_gem_prime_dmabuf_ops:820 .vmap; drivers/gpu/drm/vgem/vgem_drv.c:vgem_gem_create_object:106 'obj->map_wc = "
        "true;' and drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap:629 pgprot_writecombine (coherent); "
        "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_get_pages:177 drm_gem_get_pages on first use (starts_resident false; "
        "the shmem pages go back to the page cache, swappable, when the last user puts them); "
        "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap:616 is_cow_mapping refused, vm_file left alone (mmap_own_file "
        "false); drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_fault:534 vmf_insert_pfn, one page per fault (mmap_prefault false); "
        "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_vmap:330 dma_resv_assert_held (callback_takes_resv false); "
        "drivers/gpu/drm/drm_prime.c:drm_gem_map_attach:617 drm_gem_pin, so an attachment holds the pages (attach_holds_pages), and "
        "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap:620 drm_gem_shmem_get_pages, so a mapping holds them until it is "
        "closed (mmap_holds_pages): memory pressure cannot evict vgem storage while either exists",
    has_begin=False, has_end=False, has_kmap=False, has_kmap_atomic=False,
    coherent=True, swappable=True, starts_resident=False, cache_sgt_mapping=True,
    attach_holds_pages=True, mmap_holds_pages=True,
)


def _broken(name: str, description: str, breaks: tuple[str, ...], **knobs) -> ExporterPolicy:
    return dataclasses.replace(_reference, name=name, description=description, breaks=breaks,
                               why="deliberately broken: " + description, **knobs)


BROKEN = (
    _broken("broken-end-keeps-pin", "end_cpu_access forgets to drop the pin begin took",
            ("END-FLUSH-UNPIN", "FIXME-NO-USER-PIN", "M-END-UNDO", "M-PIN-NOT-USER",
             "M-BEGIN-COHERENCY-ONLY"),
            swappable=True, begin_pins=True, end_unpins=False),
    _broken("broken-begin-ignores-direction", "begin_cpu_access never invalidates, whatever the "
            "direction", ("BEGIN-COHERENT", "DEV-COHERENT-HANDOFF"), begin_sync="ignore-direction"),
    _broken("broken-end-no-flush", "end_cpu_access does not write CPU caches back",
            ("DEV-COHERENT-HANDOFF",), end_flush=False),
    _broken("broken-zap-anon-file", "fakes coherency by zapping PTEs through the anon file all "
            "dma-bufs share", ("MMAP-OWN-FILE",), fake_coherency=True, zap_via="anon-file"),
    _broken("broken-zap-without-own-file", "fakes coherency by zapping its own address space but "
            "never sets vma->vm_file to its own file", ("MMAP-ZAP-ALL",),
            fake_coherency=True, zap_via="own-file", mmap_own_file=False),
    _broken("broken-pin-leak-on-interrupt", "an interrupted begin_cpu_access keeps the pin it took",
            ("BEGIN-ERRORS", "M-BEGIN-COHERENCY-ONLY"),
            begin_pins=True, begin_interruptible=True, begin_leaks_pin_on_error=True),
    _broken("broken-kmap-unpinned", "serves kmap from swappable storage that begin did not pin",
            ("FIXME-KMAP-PINNED", "KCPU-ALWAYS-SUCCEED"), swappable=True),
    _broken("broken-evict-pinned", "memory pressure evicts storage while it is pinned or mapped "
            "for a device", ("LIFE-MIGRATE", "FIXME-KMAP-PINNED", "KCPU-ALWAYS-SUCCEED", "FIXME-NO-USER-PIN",
                             "M-BEGIN-COHERENCY-ONLY", "M-PIN-NOT-USER"),
            swappable=True, begin_pins=True, evict_pinned=True, begin_swaps_in=True),
    _broken("broken-own-file-no-ref", "redirects mmap to its own file without keeping the storage "
            "alive after release", ("LIFE-RELEASE", "MMAP-SURVIVES-CLOSE"),
            mmap_own_file=True, own_file_keeps_backing=False),
    _broken("broken-callback-takes-resv", "v6.12: its map_dma_buf, vmap, pin ... take the reservation "
            "lock the core already holds (a deadlock)", ("L-EXPORTER-LOCKED-CB",), callback_takes_resv=True),
    _broken("broken-move-no-notify", "v6.12: a dynamic exporter that moves storage without calling "
            "dma_buf_move_notify", ("R-MOVE-NOTIFY",), move_notifies=False),
)

MUTANTS = (
    _broken("mutant-vmap-no-refcount", "MUTANT core: dma_buf_vmap calls ops->vmap every time",
            ("KCPU-VMAP-REFCOUNT",), mutant_vmap_no_refcount=True),
    _broken("mutant-no-size-check", "MUTANT core: mmap skips the size check",
            ("MMAP-SIZE-CHECK",), mutant_no_size_check=True),
    _broken("mutant-sync-stateful", "MUTANT core: SYNC_END without SYNC_START is refused",
            ("SYNC-STATELESS",), mutant_sync_stateful=True),
    _broken("mutant-no-fence-wait", "MUTANT core: begin_cpu_access does not wait for fences",
            ("BEGIN-FENCE-WAIT",), mutant_no_fence_wait=True, begin_waits_fences=False),
    _broken("mutant-vma-no-file-ref", "MUTANT core: a mapping holds no reference on its vm_file",
            ("LIFE-RELEASE", "MMAP-SURVIVES-CLOSE"), mutant_vma_no_file_ref=True),
    _broken("mutant-static-no-pin", "MUTANT core (v6.12): dma_buf_attach does not pin for a "
            "non-dynamic importer", ("R-PIN-STATIC",), mutant_static_no_pin=True),
)

REAL_DRIVERS = (_i915, _omapdrm, _udmabuf, _system_heap, _coherent, _vgem)



def _at_exportable_revisions(policies: tuple[ExporterPolicy, ...]) -> tuple[ExporterPolicy, ...]:
    """Each policy with ``revisions`` = the revisions whose ``dma_buf_export()`` accepts its ops."""
    return tuple(dataclasses.replace(p, revisions=p.exportable_revisions) for p in policies)


REAL_DRIVERS, BROKEN, MUTANTS = map(_at_exportable_revisions, (REAL_DRIVERS, BROKEN, MUTANTS))
(_reference,) = _at_exportable_revisions((_reference,))

CATALOG: dict[str, ExporterPolicy] = {p.name: p for p in (*REAL_DRIVERS, _reference, *BROKEN, *MUTANTS)}


def get_policy(name: str) -> ExporterPolicy:
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown exporter {name!r}; the catalog has: {', '.join(CATALOG)}") from None
