/* dmabuf-check kernel-side runner: the ioctl ABI shared by runner.c and dmabuf_check_kmod.c */
#ifndef DMABUF_CHECK_KMOD_H
#define DMABUF_CHECK_KMOD_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* ops (struct dmabuf_check_op.op) */
enum {
	DCK_GET = 1,       /* a0 = fd                    -> ret = buffer handle (lowest free) */
	DCK_PUT,           /* a0 = handle                -> 0 */
	DCK_ATTACH,        /* a0 = handle                -> ret = attachment slot (static attach) */
	DCK_DYN_ATTACH,    /* a0 = handle                -> ret = attachment slot (dynamic attach) */
	DCK_DETACH,        /* a0 = attachment            -> 0; out = move_notify calls seen */
	DCK_MAP,           /* a0 = attachment, a1 = direction, a2 = locked -> 0 */
	DCK_UNMAP,         /* a0 = attachment, a2 = locked -> 0 */
	DCK_BEGIN,         /* a0 = handle, a1 = direction -> dma_buf_begin_cpu_access() */
	DCK_END,           /* a0 = handle, a1 = direction -> dma_buf_end_cpu_access() */
	DCK_VMAP,          /* a0 = handle, a2 = locked    -> ret = vmap slot (lowest free) */
	DCK_VUNMAP,        /* a0 = vmap slot, a2 = locked -> 0 */
	DCK_VREAD,         /* a0 = vmap slot, a1 = page   -> 0; out = u64 at the page's start */
	DCK_VWRITE,        /* a0 = vmap slot, a1 = page, value -> 0 */
	DCK_PIN,           /* a0 = attachment (dynamic)  -> dma_buf_pin() under the lock */
	DCK_UNPIN,         /* a0 = attachment (dynamic)  -> 0 */
	DCK_MOVES,         /* a0 = attachment            -> 0; out = move_notify calls so far */
	DCK_N_OPS
};

/*
 * Return codes: ret >= 0 success, ret < 0 the kernel's -errno. Refusals of the module itself
 * (no kernel call was made) are ret = -DCK_REFUSE_BASE - reason.
 */
#define DCK_REFUSE_BASE 100000
enum { DCK_R_NOSLOT = 1, DCK_R_FULL, DCK_R_RANGE, DCK_R_STATIC, DCK_R_BUSY, DCK_R_MAPPED, DCK_R_UNMAPPED,
       DCK_R_BADOP };

struct dmabuf_check_op {
	__u32 op;
	__u32 pad;
	__s64 a0, a1, a2;
	__u64 value;
	__s64 ret;
	__u64 out;
};

#define DMABUF_CHECK_IOC_OP _IOWR('D', 0x42, struct dmabuf_check_op)

#endif
