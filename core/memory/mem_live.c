/*
 * Memory source: a live process, read from outside without stopping it.
 *
 * A batch of reads is sorted by address, 1,024 reads at a time (so the
 * source's buffers have a fixed size, allocated once), and merged into
 * runs: two reads
 * share a run when the second starts on the same page as the first ends or
 * on the next one, because on the reference VM one more iovec costs about
 * as much as one more page (~0.5 us each, ../shared/TOOLCHAIN.md).  Runs are
 * read into a staging buffer with as few process_vm_readv calls as the
 * iovec limit allows, then copied out.  A run whose reads do not overlap
 * (the usual case: distinct objects, or whole pages) skips the staging
 * buffer: process_vm_readv scatters it straight into the callers' buffers,
 * one local iovec per read (the bytes between two reads go to a scratch
 * area), so a batch of thousands of pages costs a few calls and no copy.
 * A run that fails (a gap page may be unmapped even when every requested
 * byte is mapped) is retried read by read, so a merge never turns a good
 * read into a failure.
 *
 * When process_vm_readv is unavailable (ENOSYS, seccomp), /proc/PID/mem is
 * used instead: same runs, one pread each.  The target is never written.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "asyncunwind.h"
#include "au_internal.h"

#define PAGE 4096u
#define MAX_IOV 1024u              /* Linux IOV_MAX */
#define STAGING (1u << 20)         /* bytes staged per call */
#define MAX_RUN (256u << 10)       /* longest merged run */
/* Reads merge when the next starts at most one page after the page where
 * the run ends, so the bytes between two reads are fewer than this. */
#define GAP_MAX (2u * PAGE)
/* Reads sorted and merged at a time: a system call takes at most MAX_IOV
 * iovecs anyway, and the buffers for a chunk are the source's whole
 * working memory beside the staging buffer. */
#define CHUNK MAX_IOV

typedef struct sorted_read {
    uint64_t addr, end;
    uint32_t index;
} sorted_read;

typedef struct run {
    uint64_t addr, end;
    uint32_t first, count; /* slice of the sorted reads */
    uint32_t overlap;      /* some reads overlap: stage it */
} run;

typedef struct live {
    au_memsrc base;
    au_allocator alloc;
    int pid;
    int memfd;      /* /proc/PID/mem when process_vm_readv is unavailable */
    uint8_t *staging; /* STAGING bytes; its first GAP_MAX also take the bytes
                       * between the reads of a scattered run */
    sorted_read *sorted;
    run *runs;
    uint32_t sorted_cap, runs_cap;
} live;

static uint64_t pages_of(uint64_t addr, uint64_t end) {
    return end > addr ? (end - 1) / PAGE - addr / PAGE + 1 : 0;
}

static int by_addr(const void *a, const void *b) {
    const sorted_read *x = a, *y = b;
    if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Read [addr, addr+len) into dst with one system call; returns bytes read,
 * or -1 with errno set. */
static ssize_t read_one(live *l, uint64_t addr, void *dst, size_t len) {
    l->base.stats.syscalls++;
    if (l->memfd >= 0) return pread(l->memfd, dst, len, (off_t)addr);
    struct iovec local = {dst, len}, remote = {(void *)(uintptr_t)addr, len};
    return process_vm_readv(l->pid, &local, 1, &remote, 1, 0);
}

/* Read runs[from..to) into staging at their offsets.  Each run's outcome
 * goes to ok[k - from]. */
static void read_runs(live *l, const run *runs, uint32_t from, uint32_t to,
                      const uint32_t *offs, uint8_t *ok) {
    if (l->memfd >= 0) {
        for (uint32_t k = from; k < to; k++) {
            size_t len = (size_t)(runs[k].end - runs[k].addr);
            ssize_t got = read_one(l, runs[k].addr, l->staging + offs[k - from], len);
            ok[k - from] = got == (ssize_t)len;
        }
        return;
    }
    struct iovec local[MAX_IOV], remote[MAX_IOV];
    uint32_t k = from;
    while (k < to) {
        uint32_t n = to - k < MAX_IOV ? to - k : MAX_IOV;
        for (uint32_t i = 0; i < n; i++) {
            size_t len = (size_t)(runs[k + i].end - runs[k + i].addr);
            local[i].iov_base = l->staging + offs[k + i - from];
            local[i].iov_len = len;
            remote[i].iov_base = (void *)(uintptr_t)runs[k + i].addr;
            remote[i].iov_len = len;
        }
        l->base.stats.syscalls++;
        ssize_t got = process_vm_readv(l->pid, local, n, remote, n, 0);
        /* The kernel stops at the first iovec it cannot complete: those
         * before it are good, that one failed, the rest were not tried. */
        uint32_t done = 0;
        size_t left = got > 0 ? (size_t)got : 0;
        while (done < n && left >= remote[done].iov_len) {
            left -= remote[done].iov_len;
            ok[k + done - from] = 1;
            done++;
        }
        if (done < n) ok[k + done - from] = 0, done++;
        k += done;
    }
}

/* The local iovecs of run r scattered into its reads' buffers (and the gaps
 * between them into staging, whose contents no one reads).  Returns how many
 * were written, or 0 when they would not fit in `room`. */
static uint32_t scatter_iov(live *l, const run *r, const au_read *reads, struct iovec *iov,
                            uint32_t room) {
    uint32_t n = 0;
    uint64_t at = r->addr;
    for (uint32_t i = r->first; i < r->first + r->count; i++) {
        const sorted_read *s = &l->sorted[i];
        if (s->addr > at) {
            if (n == room) return 0;
            iov[n++] = (struct iovec){l->staging, (size_t)(s->addr - at)};
        }
        if (n == room) return 0;
        iov[n++] = (struct iovec){reads[s->index].buf, (size_t)(s->end - s->addr)};
        at = s->end;
    }
    return n;
}

static void copy_out(const sorted_read *s, uint32_t count, uint64_t base,
                     const uint8_t *src, au_read *reads) {
    for (uint32_t i = 0; i < count; i++) {
        au_read *r = &reads[s[i].index];
        memcpy(r->buf, src + (s[i].addr - base), r->len);
        r->status = AU_OK;
    }
}

/* Slow path for a failed run: each read on its own, so that a bad gap page
 * or one bad read fails only itself. */
static void retry_singly(live *l, const sorted_read *s, uint32_t count, au_read *reads) {
    for (uint32_t i = 0; i < count; i++) {
        au_read *r = &reads[s[i].index];
        ssize_t got = read_one(l, r->addr, r->buf, r->len);
        l->base.stats.pages += pages_of(r->addr, r->addr + r->len);
        if (got == (ssize_t)r->len) {
            r->status = AU_OK;
            l->base.stats.bytes += r->len;
        } else {
            r->status = got < 0 ? au_status_from_errno(errno, AU_ERR_READ) : AU_ERR_READ;
        }
    }
}

/* Read runs[k..) that do not overlap with scattered iovecs, as many per call
 * as the iovec limits allow.  A run that fails is retried singly.  Returns
 * the index of the first run not handled: k when run k cannot be scattered
 * (more reads than iovecs), else past the runs one call completed or
 * failed. */
static uint32_t read_scattered(live *l, uint32_t k, uint32_t nruns, au_read *reads) {
    struct iovec local[MAX_IOV], remote[MAX_IOV];
    uint32_t nl = 0, nr = 0, g = k;
    while (g < nruns && nr < MAX_IOV && !l->runs[g].overlap) {
        uint32_t m = scatter_iov(l, &l->runs[g], reads, local + nl, MAX_IOV - nl);
        if (m == 0) break;
        nl += m;
        remote[nr++] = (struct iovec){(void *)(uintptr_t)l->runs[g].addr,
                                      (size_t)(l->runs[g].end - l->runs[g].addr)};
        g++;
    }
    if (g == k) return k; /* a run with more reads than iovecs: stage it */
    l->base.stats.syscalls++;
    ssize_t got = process_vm_readv(l->pid, local, nl, remote, nr, 0);
    size_t left = got > 0 ? (size_t)got : 0;
    uint32_t done = 0;
    /* The kernel stops at the first remote iovec it cannot complete. */
    while (done < nr && left >= remote[done].iov_len) {
        const run *r = &l->runs[k + done];
        left -= remote[done].iov_len;
        l->base.stats.bytes += r->end - r->addr;
        l->base.stats.pages += pages_of(r->addr, r->end);
        for (uint32_t i = r->first; i < r->first + r->count; i++) reads[l->sorted[i].index].status = AU_OK;
        done++;
    }
    if (done < nr) {
        const run *r = &l->runs[k + done];
        retry_singly(l, &l->sorted[r->first], r->count, reads);
        done++;
    }
    return k + done;
}

/* One chunk of a batch: at most CHUNK reads. */
static int read_chunk(live *l, au_read *reads, uint32_t n) {
    /* Validate and sort.  Empty reads succeed trivially; reads that wrap the
     * address space or exceed a run never merge and go the single way. */
    uint32_t m = 0;
    int in_order = 1;
    for (uint32_t i = 0; i < n; i++) {
        au_read *r = &reads[i];
        r->status = AU_ERR_READ;
        if (r->len == 0) {
            r->status = AU_OK;
            continue;
        }
        if (!r->buf || r->addr == 0 || r->addr + r->len < r->addr) {
            r->status = r->buf ? AU_ERR_READ : AU_ERR_ARG;
            continue;
        }
        /* Indices ascend, so reads in address order are sorted as they
         * come: a warm sample's prefetch (its ranges are kept sorted). */
        in_order &= m == 0 || l->sorted[m - 1].addr <= r->addr;
        l->sorted[m++] = (sorted_read){r->addr, r->addr + r->len, i};
    }
    if (!in_order) au_sort(l->sorted, m, sizeof *l->sorted, by_addr);

    /* Merge into runs. */
    uint32_t nruns = 0;
    for (uint32_t i = 0; i < m; i++) {
        sorted_read *s = &l->sorted[i];
        run *last = nruns ? &l->runs[nruns - 1] : NULL;
        uint64_t end = last && s->end > last->end ? s->end : (last ? last->end : 0);
        if (last && s->addr / PAGE <= (last->end - 1) / PAGE + 1 && end - last->addr <= MAX_RUN) {
            if (s->addr < last->end) last->overlap = 1;
            last->end = end;
            last->count++;
        } else {
            l->runs[nruns++] = (run){s->addr, s->end, i, 1, 0};
        }
    }

    /* Read runs in groups that fit in the staging buffer; a run longer than
     * the staging buffer (a single huge read) goes the single way. */
    uint32_t offs[MAX_IOV];
    uint8_t ok[MAX_IOV];
    uint32_t k = 0;
    while (k < nruns) {
        if (l->memfd < 0 && !l->runs[k].overlap) {
            uint32_t next = read_scattered(l, k, nruns, reads);
            if (next != k) {
                k = next;
                continue;
            }
        }
        uint32_t g = k, used = 0;
        while (g < nruns && g - k < MAX_IOV && (g == k || l->memfd >= 0 || l->runs[g].overlap)) {
            uint64_t len = l->runs[g].end - l->runs[g].addr;
            if (len > STAGING - used) break;
            offs[g - k] = used;
            used += (uint32_t)len;
            g++;
        }
        if (g == k) { /* too big to stage */
            retry_singly(l, &l->sorted[l->runs[k].first], l->runs[k].count, reads);
            k++;
            continue;
        }
        read_runs(l, l->runs, k, g, offs, ok);
        for (uint32_t j = k; j < g; j++) {
            run *r = &l->runs[j];
            const sorted_read *s = &l->sorted[r->first];
            if (ok[j - k]) {
                l->base.stats.bytes += r->end - r->addr;
                l->base.stats.pages += pages_of(r->addr, r->end);
                copy_out(s, r->count, r->addr, l->staging + offs[j - k], reads);
            } else {
                retry_singly(l, s, r->count, reads);
            }
        }
        k = g;
    }
    int first = AU_OK;
    for (uint32_t i = 0; i < n; i++) {
        if (reads[i].status != AU_OK) {
            l->base.stats.failures++;
            if (first == AU_OK) first = reads[i].status;
        }
    }
    return first;
}

static int live_read(au_memsrc *self, au_read *reads, uint32_t n) {
    live *l = (live *)self;
    l->base.stats.requests += n;
    if (n == 0) return AU_OK;
    /* Sized for a whole chunk at once: a batch larger than every batch
     * before it (a sample's prefetch of the previous sample's pages) then
     * needs no allocation. */
    if (au_grow(&l->alloc, NULL, (void **)&l->sorted, &l->sorted_cap, CHUNK, sizeof *l->sorted) ||
        au_grow(&l->alloc, NULL, (void **)&l->runs, &l->runs_cap, CHUNK, sizeof *l->runs)) {
        for (uint32_t i = 0; i < n; i++) reads[i].status = AU_ERR_NOMEM;
        l->base.stats.failures += n;
        return AU_ERR_NOMEM;
    }
    int first = AU_OK;
    for (uint32_t at = 0; at < n; at += CHUNK) {
        int rc = read_chunk(l, reads + at, n - at < CHUNK ? n - at : CHUNK);
        if (first == AU_OK) first = rc;
    }
    return first;
}

static void live_destroy(au_memsrc *self) {
    live *l = (live *)self;
    au_allocator a = l->alloc;
    if (l->memfd >= 0) close(l->memfd);
    if (l->staging) a.realloc(a.ud, l->staging, STAGING, 0);
    AU_FREE_ARRAY(&a, l->sorted, l->sorted_cap);
    AU_FREE_ARRAY(&a, l->runs, l->runs_cap);
    a.realloc(a.ud, l, sizeof *l, 0);
}

/* Can we read this process with process_vm_readv at all?  Probe with a read
 * of an address that is never mapped: EFAULT means the call works and we
 * are allowed; EPERM / ESRCH / ENOSYS say otherwise. */
static int probe_vm_readv(int pid) {
    uint8_t b;
    struct iovec local = {&b, 1}, remote = {(void *)(uintptr_t)8, 1};
    if (process_vm_readv(pid, &local, 1, &remote, 1, 0) >= 0) return 0;
    return errno == EFAULT ? 0 : errno;
}

int au_memsrc_live_open(const au_allocator *alloc, int pid, au_memsrc **out) {
    return au_memsrc_live_open_ex(alloc, pid, 0, out);
}

int au_memsrc_live_open_ex(const au_allocator *alloc, int pid, int force_proc_mem,
                           au_memsrc **out) {
    if (!out || pid <= 0) return AU_ERR_ARG;
    *out = NULL;
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", pid);
    if (stat(path, &st) != 0) return AU_ERR_NOPROC;
    int memfd = -1;
    int e = force_proc_mem ? ENOSYS : probe_vm_readv(pid);
    if (e == ESRCH) return AU_ERR_NOPROC;
    if (e == EPERM || e == EACCES) return AU_ERR_PERM;
    if (e != 0) { /* ENOSYS and friends: fall back to /proc/PID/mem */
        snprintf(path, sizeof path, "/proc/%d/mem", pid);
        memfd = open(path, O_RDONLY | O_CLOEXEC);
        if (memfd < 0) {
            int oe = errno;
            if (oe == ENOENT || oe == ESRCH) return AU_ERR_NOPROC;
            return oe == EACCES || oe == EPERM ? AU_ERR_PERM : AU_ERR_IO;
        }
    }
    au_allocator a = au_alloc_or_libc(alloc);
    live *l = a.realloc(a.ud, NULL, 0, sizeof *l);
    uint8_t *staging = l ? a.realloc(a.ud, NULL, 0, STAGING) : NULL;
    if (!staging) {
        if (l) a.realloc(a.ud, l, sizeof *l, 0);
        if (memfd >= 0) close(memfd);
        return AU_ERR_NOMEM;
    }
    memset(l, 0, sizeof *l);
    l->base.read = live_read;
    l->base.destroy = live_destroy;
    l->alloc = a;
    l->pid = pid;
    l->memfd = memfd;
    l->staging = staging;
    *out = &l->base;
    return AU_OK;
}
