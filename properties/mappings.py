"""Properties of userspace mappings: PTE zapping through the vma's file, and the drift between
the ``@mmap`` documentation and what dma_buf_export() requires at v4.11.

Claims: MMAP-ZAP-ALL, MMAP-OWN-FILE, MMAP-ANON-SHARED, MMAP-OPTIONAL-DRIFT (spec/claims.md,
"Userspace access").
"""
from __future__ import annotations

from model.policy import EXPORT_REQUIRES_V4_11
from model.terms import not_, or_

from .property import Property

__all__ = ["PROPERTIES"]

PROPERTIES = (
    Property(
        "P-ZAP-ALL", ("MMAP-ZAP-ALL",), "exporter", "step",
        "after the exporter zaps a buffer's PTEs, none of them is present",
        lambda v: not_(v.ev.zap_missed), on="step"),
    Property(
        "P-ZAP-OWN-FILE", ("MMAP-OWN-FILE", "MMAP-ANON-SHARED"), "exporter", "step",
        "the exporter's zap of one buffer leaves other buffers' mappings alone (it needs its own "
        "file: all dma-bufs share one anon file)",
        lambda v: not_(v.ev.collateral_zap), on="step", needs=(("buffers", 2),)),
    Property(
        "P-EXPORT-OPS-DRIFT", ("MMAP-OPTIONAL-DRIFT",), "tension", "undefined",
        "dma_buf_export() refuses the exporter's ops (WARN_ON, -EINVAL) because they lack mmap, "
        "kmap or kmap_atomic, which @mmap calls optional",
        lambda v: or_(*(getattr(v.ev, "export_without_" + member) for member, _ in EXPORT_REQUIRES_V4_11)),
        on="step", action="dma_buf_export",
        revisions=("v4.11",)),   # export stopped requiring them in v4.19 (corpus §6.1)
)
