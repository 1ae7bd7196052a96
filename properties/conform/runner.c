/*
 * dmabuf-check conformance runner: /init of a throw-away QEMU guest.
 *
 * Reads /batch (format: see protocol.py), loads the modules listed in
 * /modules/order, then runs every trace in a forked child (so each trace starts
 * with clean fd and vma tables, and a trace the kernel kills is reported instead
 * of killing init), prints one JSON object per line on the console, and powers
 * the machine off.
 *
 * Every output line is  "@@DMABUF@@ <json> ~<fnv1a32 of json, 8 hex>"  and is
 * written with a single write(2).
 *
 * Build: gcc -static -O2 -Wall -o init runner.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>

#include "kmod/dmabuf_check_kmod.h"

/* ---- DRM uapi (include/uapi/drm/drm.h, drm_mode.h): not installed, so defined here ---- */
struct drm_version_ {
	int version_major, version_minor, version_patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};
struct drm_gem_close_ {
	uint32_t handle, pad;
};
struct drm_prime_handle_ {
	uint32_t handle, flags;
	int32_t fd;
};
struct drm_mode_create_dumb_ {
	uint32_t height, width, bpp, flags;
	uint32_t handle, pitch;
	uint64_t size;
};
#define DRM_IOCTL_VERSION_            _IOWR('d', 0x00, struct drm_version_)
#define DRM_IOCTL_GEM_CLOSE_          _IOW('d', 0x09, struct drm_gem_close_)
#define DRM_IOCTL_PRIME_HANDLE_TO_FD_ _IOWR('d', 0x2d, struct drm_prime_handle_)
#define DRM_IOCTL_MODE_CREATE_DUMB_   _IOWR('d', 0xB2, struct drm_mode_create_dumb_)
#define DRM_CLOEXEC_ O_CLOEXEC
#define DRM_RDWR_    O_RDWR
_Static_assert(DRM_IOCTL_VERSION_ == 0xc0406400, "DRM_IOCTL_VERSION");
_Static_assert(DRM_IOCTL_GEM_CLOSE_ == 0x40086409, "DRM_IOCTL_GEM_CLOSE");
_Static_assert(DRM_IOCTL_PRIME_HANDLE_TO_FD_ == 0xc00c642d, "DRM_IOCTL_PRIME_HANDLE_TO_FD");
_Static_assert(DRM_IOCTL_MODE_CREATE_DUMB_ == 0xc02064b2, "DRM_IOCTL_MODE_CREATE_DUMB");
_Static_assert(DMA_BUF_IOCTL_SYNC == 0x40086200, "DMA_BUF_IOCTL_SYNC");

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

#define MARK "@@DMABUF@@ "
#define PAGE 4096ULL
#define MAX_SLOTS 1024
#define MAX_VMAS 1024
#define MAX_ARGS 3
#define TRACE_TIMEOUT_S 60

enum op { OP_CREATE, OP_DUP, OP_CLOSE, OP_MMAP, OP_MUNMAP, OP_SYNC, OP_READ, OP_WRITE,
	  /* kernel side: one DMABUF_CHECK_IOC_OP on /dev/dmabuf_check each (kmod/) */
	  OP_KGET, OP_KPUT, OP_KATTACH, OP_KDATTACH, OP_KDETACH, OP_KMAP, OP_KUNMAP, OP_KBEGIN, OP_KEND,
	  OP_KVMAP, OP_KVUNMAP, OP_KREAD, OP_KWRITE, OP_KPIN, OP_KUNPIN, OP_KMOVES, N_OPS };
static const char *op_names[N_OPS] = {"create", "dup", "close", "mmap", "munmap", "sync", "read", "write",
	"kget", "kput", "kattach", "kdattach", "kdetach", "kmap", "kunmap", "kbegin", "kend",
	"kvmap", "kvunmap", "kread", "kwrite", "kpin", "kunpin", "kmoves"};
static const int op_nargs[N_OPS] = {0, 1, 1, 3, 1, 2, 2, 3,
	1, 1, 1, 1, 1, 3, 2, 2, 2, 2, 2, 2, 3, 1, 1, 1};
/* runner op -> module op, and which arguments go to a0, a1, a2 / value */
static const unsigned kop[N_OPS] = {[OP_KGET] = DCK_GET, [OP_KPUT] = DCK_PUT, [OP_KATTACH] = DCK_ATTACH,
	[OP_KDATTACH] = DCK_DYN_ATTACH, [OP_KDETACH] = DCK_DETACH, [OP_KMAP] = DCK_MAP,
	[OP_KUNMAP] = DCK_UNMAP, [OP_KBEGIN] = DCK_BEGIN, [OP_KEND] = DCK_END, [OP_KVMAP] = DCK_VMAP,
	[OP_KVUNMAP] = DCK_VUNMAP, [OP_KREAD] = DCK_VREAD, [OP_KWRITE] = DCK_VWRITE, [OP_KPIN] = DCK_PIN,
	[OP_KUNPIN] = DCK_UNPIN, [OP_KMOVES] = DCK_MOVES};
static const char *krefuse[] = {"?", "noslot", "full", "range", "static", "busy", "mapped", "unmapped",
				"badop"};

enum exporter { EXP_UDMABUF, EXP_HEAP, EXP_VGEM, N_EXP };
static const char *exp_names[N_EXP] = {"udmabuf", "system-heap", "vgem"};

struct step {
	int op;
	uint64_t a[MAX_ARGS]; /* raw 64-bit; slots/vmas/pages are read as int64 */
};
struct trace {
	long long id;
	int exporter;
	uint64_t npages;
	size_t nsteps;
	struct step *steps;
};

static struct trace *traces;
static size_t ntraces;
static int have_exp[N_EXP];
static char vgem_path[64];

/* ------------------------------------------------------------------ output */

static uint32_t fnv1a(const char *s, size_t n)
{
	uint32_t h = 0x811c9dc5u;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x01000193u;
	}
	return h;
}

/* emit one object; fmt builds the JSON text, which must be the whole object */
static void emit(const char *fmt, ...)
{
	char json[3072], line[3200];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(json, sizeof json, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof json)
		n = sizeof json - 1;
	int m = snprintf(line, sizeof line, MARK "%s ~%08x\n", json, fnv1a(json, (size_t)n));
	if (m < 0)
		return;
	const char *p = line;
	size_t left = (size_t)m;
	while (left) {
		ssize_t w = write(1, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		left -= (size_t)w;
	}
}

/* copy s into out as JSON string content (no quotes) */
static void jesc(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	for (; *s && o + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = 0;
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

static void fatal(const char *what)
{
	char buf[512];
	jesc(buf, sizeof buf, what);
	emit("{\"fatal\":\"%s\",\"errno\":%d}", buf, errno);
	power_off();
}

/* ------------------------------------------------------------------ batch parsing */

static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		fatal("out of memory reading batch");
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = 0;
	*len = got;
	return buf;
}

static int parse_u64(const char *tok, uint64_t *out)
{
	char *end;
	errno = 0;
	if (*tok == '-') {
		long long v = strtoll(tok, &end, 10);
		*out = (uint64_t)v;
	} else {
		*out = strtoull(tok, &end, 10);
	}
	return (errno || end == tok || *end) ? -1 : 0;
}

static void parse_batch(char *text)
{
	char msg[256];
	size_t lineno = 0, cap_traces = 0, cap_steps = 0;
	struct trace *cur = NULL;
	int declared = -1;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		char *tok[8];
		int nt = 0;
		char *s2 = NULL;
		for (char *t = strtok_r(line, " \t\r", &s2); t && nt < 8; t = strtok_r(NULL, " \t\r", &s2))
			tok[nt++] = t;
		if (nt == 0)
			continue;
#define BAD(why) do { snprintf(msg, sizeof msg, "batch line %zu: %s", lineno, why); errno = 0; fatal(msg); } while (0)
		if (!strcmp(tok[0], "B")) {
			uint64_t n;
			if (nt != 2 || parse_u64(tok[1], &n) || declared >= 0)
				BAD("bad B line");
			declared = (int)n;
		} else if (!strcmp(tok[0], "T")) {
			uint64_t id, np;
			if (nt != 4 || cur || parse_u64(tok[1], &id) || parse_u64(tok[3], &np))
				BAD("bad T line");
			int e;
			for (e = 0; e < N_EXP && strcmp(tok[2], exp_names[e]); e++)
				;
			if (e == N_EXP)
				BAD("unknown exporter");
			if (ntraces == cap_traces) {
				cap_traces = cap_traces ? 2 * cap_traces : 64;
				traces = realloc(traces, cap_traces * sizeof *traces);
				if (!traces)
					fatal("out of memory");
			}
			cur = &traces[ntraces++];
			memset(cur, 0, sizeof *cur);
			cur->id = (long long)id;
			cur->exporter = e;
			cur->npages = np;
			cap_steps = 0;
		} else if (!strcmp(tok[0], "S")) {
			if (!cur || nt < 2)
				BAD("S line outside a trace");
			int op;
			for (op = 0; op < N_OPS && strcmp(tok[1], op_names[op]); op++)
				;
			if (op == N_OPS)
				BAD("unknown op");
			if (nt - 2 != op_nargs[op])
				BAD("wrong number of arguments");
			if (cur->nsteps == cap_steps) {
				cap_steps = cap_steps ? 2 * cap_steps : 16;
				cur->steps = realloc(cur->steps, cap_steps * sizeof *cur->steps);
				if (!cur->steps)
					fatal("out of memory");
			}
			struct step *st = &cur->steps[cur->nsteps++];
			memset(st, 0, sizeof *st);
			st->op = op;
			for (int i = 0; i < op_nargs[op]; i++)
				if (parse_u64(tok[2 + i], &st->a[i]))
					BAD("bad integer");
		} else if (!strcmp(tok[0], "E")) {
			if (!cur)
				BAD("E without T");
			cur = NULL;
		} else {
			BAD("unknown line type");
		}
	}
	if (cur)
		BAD("last trace has no E line");
	if (declared < 0 || (size_t)declared != ntraces) {
		snprintf(msg, sizeof msg, "batch declares %d traces but holds %zu", declared, ntraces);
		errno = 0;
		fatal(msg);
	}
#undef BAD
}

/* ------------------------------------------------------------------ setup */

static int find_vgem(char *path, size_t cap)
{
	for (int i = 0; i < 16; i++) {
		char p[64], name[64] = {0};
		snprintf(p, sizeof p, "/dev/dri/card%d", i);
		int fd = open(p, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct drm_version_ v;
		memset(&v, 0, sizeof v);
		v.name = name;
		v.name_len = sizeof name - 1;
		int r = ioctl(fd, DRM_IOCTL_VERSION_, &v);
		close(fd);
		if (r == 0 && !strcmp(name, "vgem")) {
			snprintf(path, cap, "%s", p);
			return 1;
		}
	}
	return 0;
}

/* load /modules/<name> for each line of /modules/order; JSON fragment into out */
static void load_modules(char *out, size_t cap)
{
	size_t o = 0;
	out[0] = 0;
	size_t len;
	char *order = read_file("/modules/order", &len);
	if (!order)
		return;
	char *save = NULL;
	for (char *name = strtok_r(order, "\n", &save); name; name = strtok_r(NULL, "\n", &save)) {
		if (!*name)
			continue;
		char path[512], esc[256];
		snprintf(path, sizeof path, "/modules/%s", name);
		int flags = 0;
		size_t nl = strlen(name);
		if ((nl > 3 && !strcmp(name + nl - 3, ".xz")) || (nl > 4 && !strcmp(name + nl - 4, ".zst")) ||
		    (nl > 3 && !strcmp(name + nl - 3, ".gz")))
			flags = MODULE_INIT_COMPRESSED_FILE;
		int err = 0;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			err = errno;
		else {
			if (syscall(SYS_finit_module, fd, "", flags) != 0)
				err = errno;
			close(fd);
		}
		jesc(esc, sizeof esc, name);
		if (o + strlen(esc) + 32 < cap)
			o += (size_t)snprintf(out + o, cap - o, "%s\"%s\":%d", o ? "," : "", esc, err);
	}
	free(order);
}

/* ------------------------------------------------------------------ trace execution (child) */

static int slots[MAX_SLOTS];
static struct vma {
	int used;
	volatile unsigned char *addr;
	size_t len;
	uint64_t npages;
} vmas[MAX_VMAS];
static int vgem_fd = -1;
static int kmod_fd = -1;

/* one kernel-side step through the module */
static void kernel_step(const struct trace *t, size_t s, const struct step *st);

static sigjmp_buf fault_jb;
static volatile sig_atomic_t fault_armed;

static void on_fault(int sig)
{
	if (fault_armed) {
		fault_armed = 0;
		siglongjmp(fault_jb, sig);
	}
	/* a fault outside a guarded access is a runner bug: die with that signal */
	signal(sig, SIG_DFL);
	raise(sig);
}

/* one 8-byte load or store; returns 0, or the signal the access raised */
static __attribute__((noinline)) int guarded_access(volatile uint64_t *p, int is_write, uint64_t in,
						    uint64_t *out)
{
	int sig = sigsetjmp(fault_jb, 1);
	if (sig != 0)
		return sig;
	fault_armed = 1;
	if (is_write)
		*p = in;
	else
		*out = *p;
	fault_armed = 0;
	return 0;
}

static int slot_fd(int64_t slot)
{
	if (slot < 0 || slot >= MAX_SLOTS)
		return -1;
	return slots[slot];
}

static int new_slot(int fd)
{
	for (int i = 0; i < MAX_SLOTS; i++)
		if (slots[i] < 0) {
			slots[i] = fd;
			return i;
		}
	return -1;
}

static struct vma *get_vma(int64_t v)
{
	if (v < 0 || v >= MAX_VMAS || !vmas[v].used)
		return NULL;
	return &vmas[v];
}

/* create a dma-buf; returns fd or -1 with errno set and *at naming the failing call */
static int create_buf(int exporter, uint64_t npages, const char **at)
{
	uint64_t size = npages * PAGE;
	if (npages > UINT64_MAX / PAGE) {
		errno = EOVERFLOW;
		*at = "size";
		return -1;
	}
	if (exporter == EXP_UDMABUF) {
		int memfd = memfd_create("dmabuf-check", MFD_ALLOW_SEALING | MFD_CLOEXEC);
		if (memfd < 0) {
			*at = "memfd_create";
			return -1;
		}
		if (fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK) < 0) {
			*at = "F_ADD_SEALS";
			goto fail_memfd;
		}
		if (ftruncate(memfd, (off_t)size) < 0) {
			*at = "ftruncate";
			goto fail_memfd;
		}
		int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
		if (dev < 0) {
			*at = "open /dev/udmabuf";
			goto fail_memfd;
		}
		struct udmabuf_create c = {.memfd = (uint32_t)memfd, .flags = UDMABUF_FLAGS_CLOEXEC,
					   .offset = 0, .size = size};
		int fd = ioctl(dev, UDMABUF_CREATE, &c);
		int e = errno;
		close(dev);
		close(memfd);
		errno = e;
		return fd;
	fail_memfd:
		e = errno;
		close(memfd);
		errno = e;
		return -1;
	}
	if (exporter == EXP_HEAP) {
		int heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
		if (heap < 0) {
			*at = "open /dev/dma_heap/system";
			return -1;
		}
		struct dma_heap_allocation_data d = {.len = size, .fd = 0,
						     .fd_flags = O_RDWR | O_CLOEXEC, .heap_flags = 0};
		int r = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &d);
		int e = errno;
		close(heap);
		errno = e;
		return r < 0 ? -1 : (int)d.fd;
	}
	/* vgem */
	if (vgem_fd < 0) {
		if (!vgem_path[0]) {
			errno = ENODEV;
			*at = "no vgem card";
			return -1;
		}
		vgem_fd = open(vgem_path, O_RDWR | O_CLOEXEC);
		if (vgem_fd < 0) {
			*at = "open vgem card";
			return -1;
		}
	}
	if (npages > UINT32_MAX) {
		errno = EOVERFLOW;
		*at = "size";
		return -1;
	}
	struct drm_mode_create_dumb_ cd = {.height = (uint32_t)npages, .width = 1024, .bpp = 32};
	if (ioctl(vgem_fd, DRM_IOCTL_MODE_CREATE_DUMB_, &cd) < 0) {
		*at = "DRM_IOCTL_MODE_CREATE_DUMB";
		return -1;
	}
	struct drm_prime_handle_ ph = {.handle = cd.handle, .flags = DRM_CLOEXEC_ | DRM_RDWR_, .fd = -1};
	int r = ioctl(vgem_fd, DRM_IOCTL_PRIME_HANDLE_TO_FD_, &ph);
	int e = errno;
	struct drm_gem_close_ gc = {.handle = cd.handle};
	ioctl(vgem_fd, DRM_IOCTL_GEM_CLOSE_, &gc); /* the dma-buf keeps the object alive */
	errno = e;
	if (r < 0)
		return -1;
	return ph.fd;
}

#define SSTEP "{\"t\":%lld,\"s\":%zu,\"op\":\"%s\""

static void report(const struct trace *t, size_t s, long long ret, int err)
{
	emit(SSTEP ",\"ret\":%lld,\"errno\":%d}", t->id, s, op_names[t->steps[s].op], ret, err);
}

static void refuse(const struct trace *t, size_t s, const char *why)
{
	emit(SSTEP ",\"err\":\"%s\"}", t->id, s, op_names[t->steps[s].op], why);
}

static void run_trace(const struct trace *t)
{
	for (int i = 0; i < MAX_SLOTS; i++)
		slots[i] = -1;
	memset(vmas, 0, sizeof vmas);

	for (size_t s = 0; s < t->nsteps; s++) {
		const struct step *st = &t->steps[s];
		int64_t a0 = (int64_t)st->a[0], a1 = (int64_t)st->a[1];
		switch (st->op) {
		case OP_CREATE: {
			if (!have_exp[t->exporter]) {
				refuse(t, s, "noexporter");
				break;
			}
			const char *at = NULL;
			errno = 0;
			int fd = create_buf(t->exporter, t->npages, &at);
			if (fd < 0) {
				int e = errno;
				if (at)
					emit(SSTEP ",\"ret\":-1,\"errno\":%d,\"at\":\"%s\"}", t->id, s, "create", e, at);
				else
					report(t, s, -1, e);
				break;
			}
			int sl = new_slot(fd);
			if (sl < 0) {
				close(fd);
				refuse(t, s, "full");
				break;
			}
			report(t, s, sl, 0);
			break;
		}
		case OP_DUP: {
			int fd = dup(slot_fd(a0));
			if (fd < 0) {
				report(t, s, -1, errno);
				break;
			}
			int sl = new_slot(fd);
			if (sl < 0) {
				close(fd);
				refuse(t, s, "full");
				break;
			}
			report(t, s, sl, 0);
			break;
		}
		case OP_CLOSE: {
			int fd = slot_fd(a0);
			int r = close(fd);
			int e = r < 0 ? errno : 0;
			if (fd >= 0)
				slots[a0] = -1; /* Linux releases the fd even when close reports an error */
			report(t, s, r, e);
			break;
		}
		case OP_MMAP: {
			uint64_t pgoff = st->a[1], np = st->a[2];
			if (pgoff > (uint64_t)INT64_MAX / PAGE || np > SIZE_MAX / PAGE) {
				refuse(t, s, "overflow");
				break;
			}
			int v;
			for (v = 0; v < MAX_VMAS && vmas[v].used; v++)
				;
			if (v == MAX_VMAS) {
				refuse(t, s, "full");
				break;
			}
			size_t len = (size_t)(np * PAGE);
			void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, slot_fd(a0),
				       (off_t)(pgoff * PAGE));
			if (p == MAP_FAILED) {
				report(t, s, -1, errno);
				break;
			}
			vmas[v].used = 1;
			vmas[v].addr = p;
			vmas[v].len = len;
			vmas[v].npages = np;
			report(t, s, v, 0);
			break;
		}
		case OP_MUNMAP: {
			struct vma *vm = get_vma(a0);
			if (!vm) {
				refuse(t, s, "nomap");
				break;
			}
			int r = munmap((void *)vm->addr, vm->len);
			int e = r < 0 ? errno : 0;
			if (r == 0)
				vm->used = 0;
			report(t, s, r, e);
			break;
		}
		case OP_SYNC: {
			struct dma_buf_sync sy = {.flags = st->a[1]};
			int r = ioctl(slot_fd(a0), DMA_BUF_IOCTL_SYNC, &sy);
			report(t, s, r, r < 0 ? errno : 0);
			break;
		}
		case OP_KGET: case OP_KPUT: case OP_KATTACH: case OP_KDATTACH: case OP_KDETACH:
		case OP_KMAP: case OP_KUNMAP: case OP_KBEGIN: case OP_KEND: case OP_KVMAP:
		case OP_KVUNMAP: case OP_KREAD: case OP_KWRITE: case OP_KPIN: case OP_KUNPIN:
		case OP_KMOVES:
			kernel_step(t, s, st);
			break;
		case OP_READ:
		case OP_WRITE: {
			struct vma *vm = get_vma(a0);
			if (!vm) {
				refuse(t, s, "nomap");
				break;
			}
			if (a1 < 0 || (uint64_t)a1 >= vm->npages) {
				refuse(t, s, "range");
				break;
			}
			volatile uint64_t *p = (volatile uint64_t *)(vm->addr + (uint64_t)a1 * PAGE);
			uint64_t val = 0;
			int sig = guarded_access(p, st->op == OP_WRITE, st->a[2], &val);
			if (sig)
				emit(SSTEP ",\"ret\":-1,\"errno\":0,\"sig\":\"%s\"}", t->id, s, op_names[st->op],
				     sig == SIGBUS ? "SIGBUS" : sig == SIGSEGV ? "SIGSEGV" : "SIG?");
			else if (st->op == OP_READ)
				emit(SSTEP ",\"ret\":0,\"errno\":0,\"val\":%" PRIu64 "}", t->id, s, "read", val);
			else
				report(t, s, 0, 0);
			break;
		}
		}
	}
}

static void kernel_step(const struct trace *t, size_t s, const struct step *st)
{
	if (kmod_fd < 0) {
		kmod_fd = open("/dev/dmabuf_check", O_RDWR | O_CLOEXEC);
		if (kmod_fd < 0) {
			refuse(t, s, "nokmod");
			return;
		}
	}
	struct dmabuf_check_op op;
	memset(&op, 0, sizeof op);
	op.op = kop[st->op];
	op.a0 = (int64_t)st->a[0];
	switch (st->op) {
	case OP_KGET:
		op.a0 = slot_fd((int64_t)st->a[0]); /* -1 for a closed slot: EBADF */
		break;
	case OP_KMAP:
		op.a1 = (int64_t)st->a[1];
		op.a2 = (int64_t)st->a[2];
		break;
	case OP_KUNMAP: case OP_KVMAP: case OP_KVUNMAP:
		op.a2 = (int64_t)st->a[1];
		break;
	case OP_KBEGIN: case OP_KEND: case OP_KREAD:
		op.a1 = (int64_t)st->a[1];
		break;
	case OP_KWRITE:
		op.a1 = (int64_t)st->a[1];
		op.value = st->a[2];
		break;
	default:
		break;
	}
	if (ioctl(kmod_fd, DMABUF_CHECK_IOC_OP, &op) < 0) {
		report(t, s, -1, errno);
		return;
	}
	if (op.ret <= -(int64_t)DCK_REFUSE_BASE) {
		int64_t r = -op.ret - DCK_REFUSE_BASE;
		refuse(t, s, r > 0 && r < (int64_t)(sizeof krefuse / sizeof *krefuse) ? krefuse[r] : "?");
	} else if (op.ret < 0) {
		report(t, s, -1, (int)-op.ret);
	} else if (st->op == OP_KREAD || st->op == OP_KMOVES) {
		emit(SSTEP ",\"ret\":0,\"errno\":0,\"val\":%" PRIu64 "}", t->id, s, op_names[st->op], op.out);
	} else if (st->op == OP_KDETACH && op.out) {
		emit(SSTEP ",\"ret\":0,\"errno\":0,\"moves\":%" PRIu64 "}", t->id, s, op_names[st->op], op.out);
	} else {
		report(t, s, op.ret, 0);
	}
}

/* ------------------------------------------------------------------ main (pid 1) */

static volatile sig_atomic_t alarm_fired;
static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

static const char *signame(int sig)
{
	switch (sig) {
	case SIGKILL: return "SIGKILL";
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGABRT: return "SIGABRT";
	case SIGTERM: return "SIGTERM";
	case SIGILL: return "SIGILL";
	case SIGFPE: return "SIGFPE";
	default: return "SIG?";
	}
}

int main(void)
{
	/* console on fds 0-2 (the kernel opens /dev/console if the initramfs has it) */
	if (fcntl(1, F_GETFD) < 0) {
		mkdir("/dev", 0755);
		mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
		int c = open("/dev/console", O_RDWR);
		if (c >= 0) {
			dup2(c, 0);
			dup2(c, 1);
			dup2(c, 2);
			if (c > 2)
				close(c);
		}
	} else {
		mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	}
	mount("proc", "/proc", "proc", 0, NULL);

	size_t blen;
	char *batch = read_file("/batch", &blen);
	if (!batch)
		fatal("cannot read /batch");
	parse_batch(batch);

	char mods[2048];
	load_modules(mods, sizeof mods);

	have_exp[EXP_UDMABUF] = access("/dev/udmabuf", F_OK) == 0;
	have_exp[EXP_HEAP] = access("/dev/dma_heap/system", F_OK) == 0;
	have_exp[EXP_VGEM] = find_vgem(vgem_path, sizeof vgem_path);

	struct utsname u;
	char rel[200] = "?";
	if (uname(&u) == 0)
		jesc(rel, sizeof rel, u.release);
	emit("{\"hello\":1,\"uname\":\"%s\",\"exporters\":{\"udmabuf\":%s,\"system-heap\":%s,\"vgem\":%s},"
	     "\"modules\":{%s},\"ntraces\":%zu,\"pagesize\":%ld}",
	     rel, have_exp[0] ? "true" : "false", have_exp[1] ? "true" : "false",
	     have_exp[2] ? "true" : "false", mods, ntraces, sysconf(_SC_PAGESIZE));

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm; /* no SA_RESTART: waitpid returns EINTR */
	sigaction(SIGALRM, &sa, NULL);

	for (size_t i = 0; i < ntraces; i++) {
		const struct trace *t = &traces[i];
		emit("{\"t\":%lld,\"begin\":1,\"exporter\":\"%s\",\"npages\":%" PRIu64 ",\"steps\":%zu}",
		     t->id, exp_names[t->exporter], t->npages, t->nsteps);
		pid_t pid = fork();
		if (pid < 0) {
			fatal("fork");
		}
		if (pid == 0) {
			struct sigaction fa;
			memset(&fa, 0, sizeof fa);
			fa.sa_handler = on_fault;
			sigaction(SIGBUS, &fa, NULL);
			sigaction(SIGSEGV, &fa, NULL);
			signal(SIGALRM, SIG_DFL);
			run_trace(t);
			_exit(0);
		}
		alarm_fired = 0;
		alarm(TRACE_TIMEOUT_S);
		int st = 0;
		pid_t w;
		for (;;) {
			w = waitpid(pid, &st, 0);
			if (w == pid)
				break;
			if (w < 0 && errno == EINTR && alarm_fired) {
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				break;
			}
			if (w < 0 && errno != EINTR)
				break;
		}
		alarm(0);
		if (alarm_fired)
			emit("{\"t\":%lld,\"end\":1,\"status\":\"timeout\",\"seconds\":%d}", t->id, TRACE_TIMEOUT_S);
		else if (WIFSIGNALED(st))
			emit("{\"t\":%lld,\"end\":1,\"status\":\"killed\",\"sig\":\"%s\",\"signo\":%d}", t->id,
			     signame(WTERMSIG(st)), WTERMSIG(st));
		else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
			emit("{\"t\":%lld,\"end\":1,\"status\":\"exit\",\"code\":%d}", t->id, WEXITSTATUS(st));
		else
			emit("{\"t\":%lld,\"end\":1,\"status\":\"ok\"}", t->id);
		/* reap anything else (nothing expected) */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	emit("{\"done\":%zu}", ntraces);
	power_off();
	return 0;
}
