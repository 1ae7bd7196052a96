// SPDX-License-Identifier: GPL-2.0
/*
 * dmabuf-check kernel-side runner: performs dma-buf importer calls on a dma-buf fd that the
 * userspace runner (runner.c) created, on its behalf, through one ioctl on /dev/dmabuf_check.
 *
 * Every open of the device has its own tables (buffer handles, attachments, vmaps), and its
 * release undoes whatever is left (vunmap, unmap, unpin, detach, put), so a trace that ends
 * early leaves nothing behind. A slot number from userspace is checked before use: a bad one
 * is refused (DCK_REFUSE_BASE + reason), never dereferenced. So are calls that would make the
 * kernel misbehave rather than answer (a direction that is not one, a put of the last handle
 * of a buffer that still has attachments or vmaps here, a pin of a static attachment, which
 * dma_buf_pin() WARNs about on 6.12). Everything else reaches the dma-buf core unchanged and
 * its return code goes back as it is.
 *
 * Built out of tree against the Debian linux-headers package of the guest kernel
 * (properties/conform/module.py). ABI: dmabuf_check_kmod.h.
 */
#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/mutex.h>
#include <linux/uaccess.h>
#include <linux/dma-buf.h>
#include <linux/dma-resv.h>
#include <linux/dma-mapping.h>
#include <linux/iosys-map.h>
#include <linux/io.h>

#include "dmabuf_check_kmod.h"

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dmabuf-check kernel-side conformance runner");
MODULE_IMPORT_NS(DMA_BUF);

#define NBUF 16
#define NATT 16
#define NVMAP 16
#define REFUSE(r) (-(s64)DCK_REFUSE_BASE - (r))

struct dck_att {
	struct dma_buf_attachment *a;   /* NULL: free */
	struct dma_buf *buf;
	struct sg_table *sgt;           /* NULL: not mapped */
	enum dma_data_direction dir;
	bool dynamic;
	int pins;
	atomic_t moves;
};

struct dck_vmap {
	struct dma_buf *buf;            /* NULL: free */
	struct iosys_map map;
};

struct dck_file {
	struct mutex lock;
	struct dma_buf *bufs[NBUF];
	struct dck_att atts[NATT];
	struct dck_vmap vmaps[NVMAP];
};

static struct miscdevice dck_misc;

static void dck_move_notify(struct dma_buf_attachment *attach)
{
	struct dck_att *a = attach->importer_priv;

	atomic_inc(&a->moves);
}

static const struct dma_buf_attach_ops dck_importer_ops = {
	.allow_peer2peer = false,
	.move_notify = dck_move_notify,
};

static int dck_open(struct inode *inode, struct file *file)
{
	struct dck_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	mutex_init(&f->lock);
	file->private_data = f;
	return 0;
}

static void dck_unmap(struct dck_att *a, bool locked)
{
	if (locked) {
		dma_resv_lock(a->buf->resv, NULL);
		dma_buf_unmap_attachment(a->a, a->sgt, a->dir);
		dma_resv_unlock(a->buf->resv);
	} else {
		dma_buf_unmap_attachment_unlocked(a->a, a->sgt, a->dir);
	}
	a->sgt = NULL;
}

static void dck_vunmap(struct dck_vmap *v, bool locked)
{
	if (locked) {
		dma_resv_lock(v->buf->resv, NULL);
		dma_buf_vunmap(v->buf, &v->map);
		dma_resv_unlock(v->buf->resv);
	} else {
		dma_buf_vunmap_unlocked(v->buf, &v->map);
	}
	v->buf = NULL;
	iosys_map_clear(&v->map);
}

static int dck_release(struct inode *inode, struct file *file)
{
	struct dck_file *f = file->private_data;
	int i;

	for (i = 0; i < NVMAP; i++)
		if (f->vmaps[i].buf)
			dck_vunmap(&f->vmaps[i], false);
	for (i = 0; i < NATT; i++) {
		struct dck_att *a = &f->atts[i];

		if (!a->a)
			continue;
		if (a->sgt)
			dck_unmap(a, false);
		if (a->pins) {
			dma_resv_lock(a->buf->resv, NULL);
			while (a->pins--)
				dma_buf_unpin(a->a);
			dma_resv_unlock(a->buf->resv);
		}
		dma_buf_detach(a->buf, a->a);
	}
	for (i = 0; i < NBUF; i++)
		if (f->bufs[i])
			dma_buf_put(f->bufs[i]);
	kfree(f);
	return 0;
}

static struct dma_buf *dck_buf(struct dck_file *f, s64 h)
{
	return (h >= 0 && h < NBUF) ? f->bufs[h] : NULL;
}

static struct dck_att *dck_att(struct dck_file *f, s64 i)
{
	return (i >= 0 && i < NATT && f->atts[i].a) ? &f->atts[i] : NULL;
}

static struct dck_vmap *dck_vm(struct dck_file *f, s64 i)
{
	return (i >= 0 && i < NVMAP && f->vmaps[i].buf) ? &f->vmaps[i] : NULL;
}

static bool dck_in_use(struct dck_file *f, struct dma_buf *buf)
{
	int i;

	for (i = 0; i < NATT; i++)
		if (f->atts[i].a && f->atts[i].buf == buf)
			return true;
	for (i = 0; i < NVMAP; i++)
		if (f->vmaps[i].buf == buf)
			return true;
	return false;
}

static s64 dck_do(struct dck_file *f, struct dmabuf_check_op *op)
{
	struct dma_buf *buf;
	struct dck_att *a;
	struct dck_vmap *v;
	int i, n, ret;

	op->out = 0;
	switch (op->op) {
	case DCK_GET:
		for (i = 0; i < NBUF && f->bufs[i]; i++)
			;
		if (i == NBUF)
			return REFUSE(DCK_R_FULL);
		if (op->a0 < INT_MIN || op->a0 > INT_MAX)
			return -EBADF;
		buf = dma_buf_get((int)op->a0);
		if (IS_ERR(buf))
			return PTR_ERR(buf);
		f->bufs[i] = buf;
		return i;
	case DCK_PUT:
		buf = dck_buf(f, op->a0);
		if (!buf)
			return REFUSE(DCK_R_NOSLOT);
		for (i = 0, n = 0; i < NBUF; i++)
			n += f->bufs[i] == buf;
		if (n == 1 && dck_in_use(f, buf))
			return REFUSE(DCK_R_BUSY);
		f->bufs[op->a0] = NULL;
		dma_buf_put(buf);
		return 0;
	case DCK_ATTACH:
	case DCK_DYN_ATTACH: {
		struct dma_buf_attachment *at;

		buf = dck_buf(f, op->a0);
		if (!buf)
			return REFUSE(DCK_R_NOSLOT);
		for (i = 0; i < NATT && f->atts[i].a; i++)
			;
		if (i == NATT)
			return REFUSE(DCK_R_FULL);
		a = &f->atts[i];
		atomic_set(&a->moves, 0);
		if (op->op == DCK_ATTACH)
			at = dma_buf_attach(buf, dck_misc.this_device);
		else
			at = dma_buf_dynamic_attach(buf, dck_misc.this_device, &dck_importer_ops, a);
		if (IS_ERR(at))
			return PTR_ERR(at);
		a->a = at;
		a->buf = buf;
		a->sgt = NULL;
		a->pins = 0;
		a->dynamic = op->op == DCK_DYN_ATTACH;
		return i;
	}
	case DCK_DETACH:
		a = dck_att(f, op->a0);
		if (!a)
			return REFUSE(DCK_R_NOSLOT);
		if (a->sgt)
			return REFUSE(DCK_R_MAPPED);
		if (a->pins)
			return REFUSE(DCK_R_BUSY);
		op->out = atomic_read(&a->moves);
		dma_buf_detach(a->buf, a->a);
		a->a = NULL;
		a->buf = NULL;
		return 0;
	case DCK_MAP: {
		struct sg_table *sgt;

		a = dck_att(f, op->a0);
		if (!a)
			return REFUSE(DCK_R_NOSLOT);
		if (a->sgt)
			return REFUSE(DCK_R_MAPPED);
		if (op->a1 < 0 || op->a1 > DMA_FROM_DEVICE)
			return REFUSE(DCK_R_RANGE);
		if (op->a2) {
			dma_resv_lock(a->buf->resv, NULL);
			sgt = dma_buf_map_attachment(a->a, (enum dma_data_direction)op->a1);
			dma_resv_unlock(a->buf->resv);
		} else {
			sgt = dma_buf_map_attachment_unlocked(a->a, (enum dma_data_direction)op->a1);
		}
		if (IS_ERR(sgt))
			return PTR_ERR(sgt);
		if (!sgt)
			return -ENOMEM;
		a->sgt = sgt;
		a->dir = (enum dma_data_direction)op->a1;
		return 0;
	}
	case DCK_UNMAP:
		a = dck_att(f, op->a0);
		if (!a)
			return REFUSE(DCK_R_NOSLOT);
		if (!a->sgt)
			return REFUSE(DCK_R_UNMAPPED);
		dck_unmap(a, op->a2 != 0);
		return 0;
	case DCK_BEGIN:
	case DCK_END:
		buf = dck_buf(f, op->a0);
		if (!buf)
			return REFUSE(DCK_R_NOSLOT);
		if (op->a1 < 0 || op->a1 > DMA_FROM_DEVICE)
			return REFUSE(DCK_R_RANGE);
		if (op->op == DCK_BEGIN)
			return dma_buf_begin_cpu_access(buf, (enum dma_data_direction)op->a1);
		return dma_buf_end_cpu_access(buf, (enum dma_data_direction)op->a1);
	case DCK_VMAP:
		buf = dck_buf(f, op->a0);
		if (!buf)
			return REFUSE(DCK_R_NOSLOT);
		for (i = 0; i < NVMAP && f->vmaps[i].buf; i++)
			;
		if (i == NVMAP)
			return REFUSE(DCK_R_FULL);
		v = &f->vmaps[i];
		iosys_map_clear(&v->map);
		if (op->a2) {
			dma_resv_lock(buf->resv, NULL);
			ret = dma_buf_vmap(buf, &v->map);
			dma_resv_unlock(buf->resv);
		} else {
			ret = dma_buf_vmap_unlocked(buf, &v->map);
		}
		if (ret)
			return ret;
		if (iosys_map_is_null(&v->map))
			return -ENOMEM;
		v->buf = buf;
		return i;
	case DCK_VUNMAP:
		v = dck_vm(f, op->a0);
		if (!v)
			return REFUSE(DCK_R_NOSLOT);
		dck_vunmap(v, op->a2 != 0);
		return 0;
	case DCK_VREAD:
	case DCK_VWRITE: {
		size_t off;

		v = dck_vm(f, op->a0);
		if (!v)
			return REFUSE(DCK_R_NOSLOT);
		if (op->a1 < 0 || (u64)op->a1 >= v->buf->size / PAGE_SIZE)
			return REFUSE(DCK_R_RANGE);
		off = (size_t)op->a1 * PAGE_SIZE;
		if (op->op == DCK_VREAD) {
			if (v->map.is_iomem)
				op->out = readq(v->map.vaddr_iomem + off);
			else
				op->out = READ_ONCE(*(u64 *)(v->map.vaddr + off));
		} else {
			if (v->map.is_iomem)
				writeq(op->value, v->map.vaddr_iomem + off);
			else
				WRITE_ONCE(*(u64 *)(v->map.vaddr + off), op->value);
		}
		return 0;
	}
	case DCK_PIN:
	case DCK_UNPIN:
		a = dck_att(f, op->a0);
		if (!a)
			return REFUSE(DCK_R_NOSLOT);
		if (!a->dynamic)
			return REFUSE(DCK_R_STATIC);
		if (op->op == DCK_UNPIN && a->pins == 0)
			return REFUSE(DCK_R_UNMAPPED);
		dma_resv_lock(a->buf->resv, NULL);
		if (op->op == DCK_PIN) {
			ret = dma_buf_pin(a->a);
			if (!ret)
				a->pins++;
		} else {
			dma_buf_unpin(a->a);
			a->pins--;
			ret = 0;
		}
		dma_resv_unlock(a->buf->resv);
		return ret;
	case DCK_MOVES:
		a = dck_att(f, op->a0);
		if (!a)
			return REFUSE(DCK_R_NOSLOT);
		op->out = atomic_read(&a->moves);
		return 0;
	}
	return REFUSE(DCK_R_BADOP);
}

static long dck_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct dck_file *f = file->private_data;
	struct dmabuf_check_op op;

	if (cmd != DMABUF_CHECK_IOC_OP)
		return -ENOTTY;
	if (copy_from_user(&op, (void __user *)arg, sizeof(op)))
		return -EFAULT;
	mutex_lock(&f->lock);
	op.ret = dck_do(f, &op);
	mutex_unlock(&f->lock);
	if (copy_to_user((void __user *)arg, &op, sizeof(op)))
		return -EFAULT;
	return 0;
}

static const struct file_operations dck_fops = {
	.owner = THIS_MODULE,
	.open = dck_open,
	.release = dck_release,
	.unlocked_ioctl = dck_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice dck_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "dmabuf_check",
	.fops = &dck_fops,
};

static int __init dck_init(void)
{
	int ret = misc_register(&dck_misc);

	if (ret)
		return ret;
	/* the device the attachments are made to: DMA through the direct mapping, 64-bit mask
	 * (what udmabuf does for its own misc device) */
	ret = dma_coerce_mask_and_coherent(dck_misc.this_device, DMA_BIT_MASK(64));
	if (ret) {
		misc_deregister(&dck_misc);
		return ret;
	}
	return 0;
}

static void __exit dck_exit(void)
{
	misc_deregister(&dck_misc);
}

module_init(dck_init);
module_exit(dck_exit);
