"""Quantities derived from the state, used by transitions and by properties alike (so that a
rule is written once): references to a dma-buf file, whether storage is held in place.
"""
from __future__ import annotations

from .scope import Scope
from .terms import Term, and_, any_of, count, eq, not_, or_

__all__ = ["total_refs", "pinned", "device_mapped", "device_pinned", "reads_term", "writes_term"]


def total_refs(s, k, scope: Scope, b: int, honour_mutant: bool = True) -> Term:
    """References to buffer ``b``'s dma-buf file: kernel references, fds, and mappings whose
    ``vm_file`` is the dma-buf file (an exporter's own file keeps only its own object alive).
    ``honour_mutant=False`` counts mappings as the real core does, even under the mutant core."""
    fds = count(and_(s.fd_open[f], eq(s.fd_buf[f], b)) for f in range(scope.fds))
    holds = not_(k.mutant_vma_no_file_ref) if honour_mutant else True
    vmas = count(and_(s.vma_live[v], eq(s.vma_buf[v], b), not_(s.vma_own_file[v]), holds)
                 for v in range(scope.vmas))
    return s.kref[b] + fds + vmas


def device_mapped(s, scope: Scope, b: int) -> Term:
    return any_of(and_(s.att_live[a], s.att_mapped[a], eq(s.att_buf[a], b)) for a in range(scope.attachments))


def device_pinned(s, scope: Scope, b: int) -> Term:
    """Does an attachment of buffer ``b`` hold a ``dma_buf_pin`` (v5.12; never at v4.11)?"""
    return any_of(and_(s.att_live[a], s.att_pins[a] > 0, eq(s.att_buf[a], b)) for a in range(scope.attachments))


def pinned(s, k, scope: Scope, b: int) -> Term:
    """Is buffer ``b``'s storage held in place: pinned by begin, mapped for a device, pinned for
    a device with ``dma_buf_pin`` (v5.12), vmapped, attached or mmapped where the exporter holds
    the pages for those (GEM shmem, ``attach_holds_pages``, ``mmap_holds_pages``), or of a kind
    that is never evicted?"""
    attached = any_of(and_(s.att_live[a], eq(s.att_buf[a], b)) for a in range(scope.attachments))
    mmapped = any_of(and_(s.vma_live[v], eq(s.vma_buf[v], b)) for v in range(scope.vmas))
    return or_(s.pins[b] > 0, device_mapped(s, scope, b), device_pinned(s, scope, b),
               s.vmapping_counter[b] > 0, not_(k.swappable), and_(k.attach_holds_pages, attached),
               and_(k.mmap_holds_pages, mmapped))


def reads_term(d) -> Term:
    """The term version of ``constants.reads``: FROM_DEVICE or BIDIRECTIONAL."""
    return or_(eq(d, 2), eq(d, 0))


def writes_term(d) -> Term:
    """The term version of ``constants.writes``: TO_DEVICE or BIDIRECTIONAL."""
    return or_(eq(d, 1), eq(d, 0))
