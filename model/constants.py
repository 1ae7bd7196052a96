"""Kernel constants the model uses, spelled as the kernel spells them.

Sources: ``include/uapi/linux/dma-buf.h`` (v4.6 to v5.2 form, corpus §4.1 and §4.2),
``enum dma_data_direction`` (``include/linux/dma-direction.h``) and the errno values of
``include/uapi/asm-generic/errno-base.h`` / ``errno.h`` (x86-64). ``ERESTARTSYS`` is the
kernel-internal 512 of ``include/linux/errno.h``.
"""
from __future__ import annotations

__all__ = [
    "DMA_BIDIRECTIONAL", "DMA_TO_DEVICE", "DMA_FROM_DEVICE", "DMA_NONE", "DIRECTIONS",
    "DMA_BUF_SYNC_READ", "DMA_BUF_SYNC_WRITE", "DMA_BUF_SYNC_RW", "DMA_BUF_SYNC_START",
    "DMA_BUF_SYNC_END", "DMA_BUF_SYNC_VALID_FLAGS_MASK", "DMA_BUF_IOCTL_SYNC", "ERRNO",
    "ERRNO_NAMES", "NAMED_CONSTANTS", "SIGBUS", "SIGSEGV", "FAULT_SIGBUS", "FAULT_SIGSEGV",
    "errno_name", "reads", "writes", "decode_sync_flags", "sync_flags_name",
    "PAGE_SHIFT", "U64_MAX", "ULONG_MAX", "PGOFF_MAX", "TASK_SIZE",
]

# enum dma_data_direction
DMA_BIDIRECTIONAL = 0
DMA_TO_DEVICE = 1
DMA_FROM_DEVICE = 2
DMA_NONE = 3
DIRECTIONS = {"DMA_BIDIRECTIONAL": DMA_BIDIRECTIONAL, "DMA_TO_DEVICE": DMA_TO_DEVICE,
              "DMA_FROM_DEVICE": DMA_FROM_DEVICE}

# include/uapi/linux/dma-buf.h
DMA_BUF_SYNC_READ = 1 << 0
DMA_BUF_SYNC_WRITE = 2 << 0
DMA_BUF_SYNC_RW = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE
DMA_BUF_SYNC_START = 0 << 2
DMA_BUF_SYNC_END = 1 << 2
DMA_BUF_SYNC_VALID_FLAGS_MASK = DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END
DMA_BUF_IOCTL_SYNC = 0x40086200

# x86-64 (the model's errno values are x86-64's too): PAGE_SHIFT, unsigned long and __u64 are
# 64 bits wide; TASK_SIZE is the user address space with 4-level page tables (TASK_SIZE_MAX,
# 2^47 - PAGE_SIZE). With 5-level tables (v4.14+) an mmap without an address hint still searches
# below 2^47 - PAGE_SIZE (DEFAULT_MAP_WINDOW), so no longer mapping can be placed either.
PAGE_SHIFT = 12
U64_MAX = (1 << 64) - 1
ULONG_MAX = (1 << 64) - 1
PGOFF_MAX = ULONG_MAX >> PAGE_SHIFT        # the largest page offset of a byte offset or length
TASK_SIZE = (1 << 47) - (1 << PAGE_SHIFT)

ERRNO = {
    "EPERM": 1, "ENOENT": 2, "EINTR": 4, "EBADF": 9, "EAGAIN": 11, "ENOMEM": 12,
    "EFAULT": 14, "EBUSY": 16, "ENODEV": 19, "EINVAL": 22, "EMFILE": 24, "ENOTTY": 25,
    "ENOSYS": 38, "EOVERFLOW": 75, "ERESTARTSYS": 512,
}
ERRNO_NAMES = {v: k for k, v in ERRNO.items()}

# A userspace load or store that faults delivers a signal rather than returning an errno.
# The model returns these values for cpu_read/cpu_write; they are outside the errno range.
SIGBUS = 7
SIGSEGV = 11
FAULT_SIGBUS = -(1000 + SIGBUS)
FAULT_SIGSEGV = -(1000 + SIGSEGV)

NAMED_CONSTANTS: dict[str, int] = {
    **DIRECTIONS,
    "DMA_NONE": DMA_NONE,
    "DMA_BUF_SYNC_READ": DMA_BUF_SYNC_READ,
    "DMA_BUF_SYNC_WRITE": DMA_BUF_SYNC_WRITE,
    "DMA_BUF_SYNC_RW": DMA_BUF_SYNC_RW,
    "DMA_BUF_SYNC_START": DMA_BUF_SYNC_START,
    "DMA_BUF_SYNC_END": DMA_BUF_SYNC_END,
    "DMA_BUF_SYNC_VALID_FLAGS_MASK": DMA_BUF_SYNC_VALID_FLAGS_MASK,
}


def errno_name(ret: int) -> str:
    """``-22`` -> ``"-EINVAL"``; signals as ``"SIGBUS"``; other values as they are."""
    if ret == FAULT_SIGBUS:
        return "SIGBUS"
    if ret == FAULT_SIGSEGV:
        return "SIGSEGV"
    if ret < 0 and -ret in ERRNO_NAMES:
        return "-" + ERRNO_NAMES[-ret]
    return str(ret)


def decode_sync_flags(flags: int) -> tuple[int | None, bool]:
    """dma_buf_ioctl()'s decoding of ``struct dma_buf_sync.flags`` (corpus §5.1): the direction of
    the access (``None``: the ioctl returns -EINVAL) and whether it is a SYNC_END."""
    if flags & ~DMA_BUF_SYNC_VALID_FLAGS_MASK:
        return None, False
    direction = {DMA_BUF_SYNC_READ: DMA_FROM_DEVICE, DMA_BUF_SYNC_WRITE: DMA_TO_DEVICE,
                 DMA_BUF_SYNC_RW: DMA_BIDIRECTIONAL}.get(flags & DMA_BUF_SYNC_RW)
    return direction, bool(flags & DMA_BUF_SYNC_END)


def sync_flags_name(flags: int) -> str:
    """``DMA_BUF_SYNC_END|DMA_BUF_SYNC_READ`` for flags the ioctl accepts; the raw value otherwise."""
    direction, end = decode_sync_flags(flags)
    if direction is None:
        return hex(flags) if flags > 9 else str(flags)
    rw = {DMA_FROM_DEVICE: "DMA_BUF_SYNC_READ", DMA_TO_DEVICE: "DMA_BUF_SYNC_WRITE",
          DMA_BIDIRECTIONAL: "DMA_BUF_SYNC_RW"}[direction]
    return ("DMA_BUF_SYNC_END|" if end else "DMA_BUF_SYNC_START|") + rw


def reads(direction: int) -> bool:
    """Does CPU access in ``direction`` read what a device wrote (FROM_DEVICE or BIDIRECTIONAL)?"""
    return direction in (DMA_FROM_DEVICE, DMA_BIDIRECTIONAL)


def writes(direction: int) -> bool:
    """Does CPU access in ``direction`` write for a device (TO_DEVICE or BIDIRECTIONAL)?"""
    return direction in (DMA_TO_DEVICE, DMA_BIDIRECTIONAL)
