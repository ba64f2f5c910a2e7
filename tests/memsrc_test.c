/*
 * Memory sources: the live reader against a real child process, batching
 * and coalescing counters, failures, and the recorder -> snapshot -> replay
 * round trip.  The child is a fork of the test, so the test knows exactly
 * what lies at which address in it.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "asyncunwind.h"
#include "membuf.h"
#include "au_internal.h"

#define PG 4096u
#define NPAGES 8u
#define HOLE_PAGE 5u

#define BIG_PAGES 2500u /* more pages than one call's 1,024 iovecs */

typedef struct child {
    pid_t pid;
    uint8_t *mem; /* NPAGES pages in the child at this same address */
    uint8_t *big; /* BIG_PAGES pages, likewise */
} child;

static uint8_t pattern(uint64_t off) { return (uint8_t)(off * 131u + 7u); }

static int setup(void **state) {
    static child c; /* one fixture for the group */
    c.mem = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c.mem == MAP_FAILED) return -1;
    for (uint32_t i = 0; i < NPAGES * PG; i++) c.mem[i] = pattern(i);
    munmap(c.mem + HOLE_PAGE * PG, PG); /* an unmapped page inside */
    c.big = mmap(NULL, BIG_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c.big == MAP_FAILED) return -1;
    for (uint32_t i = 0; i < BIG_PAGES * PG; i++) c.big[i] = pattern(i);
    c.pid = fork();
    if (c.pid == 0) {
        for (;;) pause();
    }
    *state = &c;
    return c.pid > 0 ? 0 : -1;
}

static int teardown(void **state) {
    child *c = *state;
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    return 0;
}

static void check_bytes(const uint8_t *buf, uint64_t off, uint32_t len) {
    for (uint32_t i = 0; i < len; i++) assert_int_equal(buf[i], pattern(off + i));
}

static void batch_on_adjacent_pages(void **state, int force_proc_mem) {
    child *c = *state;
    au_memsrc *m;
    assert_int_equal(au_memsrc_live_open_ex(NULL, c->pid, force_proc_mem, &m), AU_OK);
    /* 100 small reads spread over pages 0..3: one run, one system call,
     * four pages. */
    uint8_t bufs[100][16];
    au_read reads[100];
    for (uint32_t i = 0; i < 100; i++) {
        uint64_t off = (uint64_t)(99 - i) * 160; /* out of order on purpose */
        reads[i] = (au_read){(uint64_t)(uintptr_t)c->mem + off, bufs[i], 16, -99};
    }
    assert_int_equal(m->read(m, reads, 100), AU_OK);
    for (uint32_t i = 0; i < 100; i++) {
        assert_int_equal(reads[i].status, AU_OK);
        check_bytes(bufs[i], (uint64_t)(99 - i) * 160, 16);
    }
    assert_int_equal(m->stats.requests, 100);
    assert_int_equal(m->stats.syscalls, 1);
    assert_int_equal(m->stats.pages, 4);
    assert_int_equal(m->stats.bytes, 99 * 160 + 16);
    au_memsrc_destroy(m);
}

static void test_live_batch_coalesces(void **state) { batch_on_adjacent_pages(state, 0); }
static void test_proc_mem_fallback(void **state) { batch_on_adjacent_pages(state, 1); }

/* Whole pages, as a page cache asks for them: the reads tile their runs, so
 * they are scattered straight into the callers' buffers, 1,024 per call
 * (the iovec limit), with no staging copy and no 1 MiB staging limit. */
static void test_live_pages_scatter(void **state) {
    child *c = *state;
    au_memsrc *m;
    assert_int_equal(au_memsrc_live_open(NULL, c->pid, &m), AU_OK);
    uint8_t *buf = malloc((size_t)BIG_PAGES * PG);
    au_read *reads = malloc(BIG_PAGES * sizeof *reads);
    assert_non_null(buf);
    assert_non_null(reads);
    for (uint32_t i = 0; i < BIG_PAGES; i++) {
        uint32_t p = (i * 7919u) % BIG_PAGES; /* out of order */
        reads[i] = (au_read){(uint64_t)(uintptr_t)c->big + (uint64_t)p * PG, buf + (size_t)p * PG,
                             PG, -1};
    }
    assert_int_equal(m->read(m, reads, BIG_PAGES), AU_OK);
    for (uint32_t i = 0; i < BIG_PAGES; i++) assert_int_equal(reads[i].status, AU_OK);
    for (uint32_t p = 0; p < BIG_PAGES; p += 97) check_bytes(buf + (size_t)p * PG, (uint64_t)p * PG, PG);
    check_bytes(buf + (size_t)(BIG_PAGES - 1) * PG, (uint64_t)(BIG_PAGES - 1) * PG, PG);
    /* 2,500 reads in runs of at most 64 pages (MAX_RUN): 40 runs, but the
     * local iovecs (one per page) fill a call at 1,024. */
    assert_int_equal(m->stats.syscalls, (BIG_PAGES + 1023) / 1024);
    assert_int_equal(m->stats.pages, BIG_PAGES);
    assert_int_equal(m->stats.bytes, (uint64_t)BIG_PAGES * PG);
    free(reads);
    free(buf);
    au_memsrc_destroy(m);
}

/* Overlapping reads cannot be scattered (the kernel fills local buffers in
 * order); they are staged and copied, and still take one call. */
static void test_live_overlap_staged(void **state) {
    child *c = *state;
    au_memsrc *m;
    assert_int_equal(au_memsrc_live_open(NULL, c->pid, &m), AU_OK);
    uint8_t a[64], b[64], d[16];
    uint64_t base = (uint64_t)(uintptr_t)c->mem;
    au_read reads[3] = {{base + 100, a, 64, 0}, {base + 130, b, 64, 0}, {base + 100, d, 16, 0}};
    assert_int_equal(m->read(m, reads, 3), AU_OK);
    check_bytes(a, 100, 64);
    check_bytes(b, 130, 64);
    check_bytes(d, 100, 16);
    assert_int_equal(m->stats.syscalls, 1);
    assert_int_equal(m->stats.bytes, 94);
    au_memsrc_destroy(m);
}

/* Reads two pages apart are not merged (the gap would cost more than an
 * iovec) but still go out in one call. */
static void test_live_separate_runs_one_call(void **state) {
    child *c = *state;
    au_memsrc *m;
    assert_int_equal(au_memsrc_live_open(NULL, c->pid, &m), AU_OK);
    uint8_t a[8], b[8];
    au_read reads[2] = {{(uint64_t)(uintptr_t)c->mem + 10, a, 8, 0},
                        {(uint64_t)(uintptr_t)c->mem + 3 * PG + 10, b, 8, 0}};
    assert_int_equal(m->read(m, reads, 2), AU_OK);
    check_bytes(a, 10, 8);
    check_bytes(b, 3 * PG + 10, 8);
    assert_int_equal(m->stats.syscalls, 1);
    assert_int_equal(m->stats.pages, 2);
    assert_int_equal(m->stats.bytes, 16);
    au_memsrc_destroy(m);
}

/* A read of an unmapped page fails alone; the good read merged with it
 * still succeeds (the run is retried read by read). */
static void test_live_failure_is_isolated(void **state) {
    child *c = *state;
    au_memsrc *m;
    assert_int_equal(au_memsrc_live_open(NULL, c->pid, &m), AU_OK);
    uint8_t a[8], b[8], z[4];
    uint64_t base = (uint64_t)(uintptr_t)c->mem;
    au_read reads[4] = {
        {base + HOLE_PAGE * PG - 8, a, 8, 0}, /* end of the page before the hole */
        {base + HOLE_PAGE * PG + 8, b, 8, 0}, /* inside the hole */
        {0, z, 4, 0},                         /* NULL: never read */
        {base, z, 0, -5},                     /* empty: trivially fine */
    };
    assert_int_equal(m->read(m, reads, 4), AU_ERR_READ);
    assert_int_equal(reads[0].status, AU_OK);
    check_bytes(a, HOLE_PAGE * PG - 8, 8);
    assert_int_equal(reads[1].status, AU_ERR_READ);
    assert_int_equal(reads[2].status, AU_ERR_READ);
    assert_int_equal(reads[3].status, AU_OK);
    assert_int_equal(m->stats.failures, 2);
    /* One merged call, then one retry each for its two reads. */
    assert_int_equal(m->stats.syscalls, 3);
    au_memsrc_destroy(m);
}

static void *counting_realloc(void *ud, void *ptr, size_t old, size_t size) {
    (void)old;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    (*(uint64_t *)ud)++;
    return realloc(ptr, size);
}

/* The source's buffers are sized for a whole chunk of 1,024 reads on first
 * use, so a batch larger than every batch before it (a sampler's prefetch)
 * allocates nothing; a batch over several chunks keeps each read's own
 * outcome and returns the first failure. */
static void test_live_big_batch_after_small(void **state) {
    child *c = *state;
    uint64_t allocs = 0;
    au_allocator a = {counting_realloc, &allocs};
    au_memsrc *m;
    assert_int_equal(au_memsrc_live_open(&a, c->pid, &m), AU_OK);
    uint8_t small[8];
    au_read one = {(uint64_t)(uintptr_t)c->mem + 8, small, 8, 0};
    assert_int_equal(m->read(m, &one, 1), AU_OK);
    check_bytes(small, 8, 8);
    uint32_t n = BIG_PAGES + 1;
    uint8_t *buf = malloc((size_t)n * PG);
    au_read *reads = malloc(n * sizeof *reads);
    assert_non_null(buf);
    assert_non_null(reads);
    for (uint32_t i = 0; i < BIG_PAGES; i++)
        reads[i] = (au_read){(uint64_t)(uintptr_t)c->big + (uint64_t)i * PG, buf + (size_t)i * PG,
                             PG, -1};
    /* The last read, in the third chunk, is of the unmapped page. */
    reads[BIG_PAGES] = (au_read){(uint64_t)(uintptr_t)c->mem + HOLE_PAGE * PG,
                                 buf + (size_t)BIG_PAGES * PG, PG, -1};
    uint64_t before = allocs;
    assert_int_equal(m->read(m, reads, n), AU_ERR_READ);
    assert_int_equal(allocs, before);
    for (uint32_t i = 0; i < BIG_PAGES; i++) assert_int_equal(reads[i].status, AU_OK);
    assert_int_equal(reads[BIG_PAGES].status, AU_ERR_READ);
    for (uint32_t p = 0; p < BIG_PAGES; p += 101) check_bytes(buf + (size_t)p * PG, (uint64_t)p * PG, PG);
    check_bytes(buf + (size_t)(BIG_PAGES - 1) * PG, (uint64_t)(BIG_PAGES - 1) * PG, PG);
    free(reads);
    free(buf);
    au_memsrc_destroy(m);
}

static void test_live_errors(void **state) {
    (void)state;
    au_memsrc *m = (au_memsrc *)1;
    assert_int_equal(au_memsrc_live_open(NULL, 0, &m), AU_ERR_ARG);
    /* A pid that has exited and been reaped. */
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
    assert_int_equal(au_memsrc_live_open(NULL, p, &m), AU_ERR_NOPROC);
    assert_null(m);
    assert_non_null(au_status_hint(AU_ERR_PERM));
    assert_non_null(strstr(au_status_hint(AU_ERR_PERM), "CAP_SYS_PTRACE"));
}

/* ---- recorder -> snapshot -> replay ------------------------------------- */


static void test_record_and_replay(void **state) {
    child *c = *state;
    uint64_t base = (uint64_t)(uintptr_t)c->mem;
    au_memsrc *live, *rec;
    assert_int_equal(au_memsrc_live_open(NULL, c->pid, &live), AU_OK);
    assert_int_equal(au_recorder_open(NULL, live, &rec), AU_OK);
    /* Overlapping, adjacent, far apart, and failing reads. */
    uint8_t b[6][64];
    au_read reads[6] = {
        {base + 100, b[0], 64, 0},          {base + 140, b[1], 64, 0},
        {base + 204, b[2], 16, 0},          {base + 3 * PG, b[3], 32, 0},
        {base + HOLE_PAGE * PG, b[4], 8, 0}, {base + 7 * PG + 4000, b[5], 64, 0},
    };
    assert_int_equal(rec->read(rec, reads, 6), AU_ERR_READ);
    assert_int_equal(rec->stats.requests, 6); /* mirrors the inner source */

    /* The second thread as 3.9/3.10 name it: a PTHREAD record follows. */
    au_snapshot_thread th[2] = {{11, "MainThread", 10, 0, 0},
                                {12, "worker-\xc3\xa9", 8, 0, 0x7f1234567700ull}};
    au_snapshot_meta meta = {4242, 0x030c01f0, 0x7f0000001000ull, 123456789, 2, th,
                             0x7f0000002000ull, 0x7f0000003000ull};
    membuf out = {0};
    assert_int_equal(au_recorder_write(rec, &meta, membuf_write, &out), AU_OK);
    au_memsrc_destroy(rec);
    au_memsrc_destroy(live);

    au_snapshot *snap;
    assert_int_equal(au_snapshot_parse(NULL, out.data, out.len, &snap), AU_OK);
    const au_snapshot_meta *got = au_snapshot_get_meta(snap);
    assert_int_equal(got->pid, 4242);
    assert_int_equal(got->py_version_hex, 0x030c01f0);
    assert_int_equal(got->runtime_addr, 0x7f0000001000ull);
    assert_int_equal(got->time_ns, 123456789);
    assert_int_equal(got->asyncio_debug_addr, 0x7f0000002000ull);
    assert_int_equal(got->agent_addr, 0x7f0000003000ull);
    assert_int_equal(got->nthreads, 2);
    assert_int_equal(got->threads[1].native_id, 12);
    assert_memory_equal(got->threads[1].name, "worker-\xc3\xa9", 8);
    assert_int_equal(got->threads[0].pthread_id, 0);
    assert_int_equal(got->threads[1].pthread_id, 0x7f1234567700ull);

    au_memsrc *rp;
    assert_int_equal(au_memsrc_snapshot_open(NULL, snap, &rp), AU_OK);
    uint8_t r[6][64];
    au_read again[6];
    for (int i = 0; i < 6; i++) again[i] = (au_read){reads[i].addr, r[i], reads[i].len, 0};
    assert_int_equal(rp->read(rp, again, 6), AU_ERR_READ);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(again[i].status, reads[i].status);
        if (reads[i].status == AU_OK) assert_memory_equal(r[i], b[i], reads[i].len);
    }
    /* Inside what was read (the merged 100..220 span): served.  Outside:
     * fails, as does anything that was never read. */
    uint8_t x[8];
    assert_int_equal(au_mem_read1(rp, base + 150, x, 8), AU_OK);
    check_bytes(x, 150, 8);
    assert_int_equal(au_mem_read1(rp, base + 216, x, 8), AU_ERR_READ);
    assert_int_equal(au_mem_read1(rp, base + 2 * PG, x, 8), AU_ERR_READ);
    assert_int_equal(rp->stats.syscalls, 0);
    au_memsrc_destroy(rp);
    au_snapshot_free(snap);
    membuf_free(&out);
}

/* The target changes and unmaps memory while a sample reads it.  The
 * recording is still one view of it: each byte keeps its first value, a
 * failed read stays failed, a failed read of bytes read before is served
 * from them, and the replay gives back exactly what the recorder returned.
 * The target is this process, so the test can change its memory between
 * two reads. */
typedef struct seen {
    uint64_t addr;
    uint32_t len;
    int status;
    uint8_t got[64];
} seen;

static void view_read(au_memsrc *m, seen *s, uint64_t addr, uint32_t len) {
    s->addr = addr;
    s->len = len;
    memset(s->got, 0, sizeof s->got);
    s->status = au_mem_read1(m, addr, s->got, len);
}

static void test_recording_is_one_view(void **state) {
    (void)state;
    uint8_t *m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    for (uint32_t i = 0; i < 3 * PG; i++) m[i] = pattern(i);
    uint64_t base = (uint64_t)(uintptr_t)m;
    au_memsrc *live, *rec;
    assert_int_equal(au_memsrc_live_open(NULL, getpid(), &live), AU_OK);
    assert_int_equal(au_recorder_open(NULL, live, &rec), AU_OK);
    seen s[9];

    view_read(rec, &s[0], base + 100, 64);
    memset(m + 100, 0xAA, 200); /* the target writes */
    view_read(rec, &s[1], base + 132, 64);
    view_read(rec, &s[2], base + 100, 64);
    assert_int_equal(s[1].status, AU_OK);
    check_bytes(s[1].got, 132, 32); /* read before: the first value */
    for (int i = 32; i < 64; i++) assert_int_equal(s[1].got[i], 0xAA); /* new: the target's */
    assert_int_equal(s[2].status, AU_OK);
    check_bytes(s[2].got, 100, 64);
    view_read(rec, &s[3], base + PG - 16, 32); /* across a page boundary */
    check_bytes(s[3].got, PG - 16, 32);

    view_read(rec, &s[4], base + 2 * PG, 64);
    assert_int_equal(munmap(m + 2 * PG, PG), 0); /* the target frees a page */
    view_read(rec, &s[5], base + 2 * PG + 8, 16);
    assert_int_equal(s[5].status, AU_OK); /* every byte was read before */
    check_bytes(s[5].got, 2 * PG + 8, 16);
    view_read(rec, &s[6], base + 2 * PG + 32, 64);
    assert_int_equal(s[6].status, AU_ERR_READ); /* half of it never was */
    uint8_t *again = mmap(m + 2 * PG, PG, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    assert_true(again == m + 2 * PG);
    memset(again, 0x55, PG); /* ... and maps it again */
    view_read(rec, &s[7], base + 2 * PG + 32, 64);
    assert_int_equal(s[7].status, AU_ERR_READ); /* failed once, fails again */
    view_read(rec, &s[8], base + 2 * PG + 100, 8);
    assert_int_equal(s[8].status, AU_OK);
    for (int i = 0; i < 8; i++) assert_int_equal(s[8].got[i], 0x55);
    /* The counters describe the traffic with the target: two reads failed
     * there (s[5] and s[6]); s[7] succeeded there. */
    assert_int_equal(rec->stats.requests, 9);
    assert_int_equal(rec->stats.failures, 2);

    au_snapshot_meta meta = {1, 0x030900f0, 1, 0, 0, NULL, 0, 0};
    membuf out = {0};
    assert_int_equal(au_recorder_write(rec, &meta, membuf_write, &out), AU_OK);
    au_snapshot *snap;
    au_memsrc *rp;
    assert_int_equal(au_snapshot_parse(NULL, out.data, out.len, &snap), AU_OK);
    assert_int_equal(au_memsrc_snapshot_open(NULL, snap, &rp), AU_OK);
    for (int i = 0; i < 9; i++) {
        seen r;
        view_read(rp, &r, s[i].addr, s[i].len);
        assert_int_equal(r.status, s[i].status);
        if (r.status == AU_OK) assert_memory_equal(r.got, s[i].got, s[i].len);
    }
    au_memsrc_destroy(rp);
    au_snapshot_free(snap);
    membuf_free(&out);
    au_memsrc_destroy(rec);
    au_memsrc_destroy(live);
    munmap(m, 3 * PG);
}

/* The writer splits regions over 16 MiB; replay stitches them. */
static void test_replay_spans_split_regions(void **state) {
    (void)state;
    size_t len = (16u << 20) + 4096;
    uint8_t *src = malloc(len), *dst = malloc(len);
    assert_non_null(src);
    assert_non_null(dst);
    for (size_t i = 0; i < len; i++) src[i] = pattern(i);
    /* Record from this very process (reading oneself is allowed). */
    au_memsrc *live, *rec, *rp;
    assert_int_equal(au_memsrc_live_open(NULL, getpid(), &live), AU_OK);
    assert_int_equal(au_recorder_open(NULL, live, &rec), AU_OK);
    assert_int_equal(au_mem_read1(rec, (uint64_t)(uintptr_t)src, dst, (uint32_t)len), AU_OK);
    au_snapshot_meta meta = {1, 0x030d00f0, 1, 0, 0, NULL, 0, 0};
    membuf out = {0};
    assert_int_equal(au_recorder_write(rec, &meta, membuf_write, &out), AU_OK);
    au_snapshot *snap;
    assert_int_equal(au_snapshot_parse(NULL, out.data, out.len, &snap), AU_OK);
    assert_int_equal(au_memsrc_snapshot_open(NULL, snap, &rp), AU_OK);
    memset(dst, 0, len);
    assert_int_equal(au_mem_read1(rp, (uint64_t)(uintptr_t)src, dst, (uint32_t)len), AU_OK);
    assert_memory_equal(src, dst, len);
    au_memsrc_destroy(rp);
    au_snapshot_free(snap);
    au_memsrc_destroy(rec);
    au_memsrc_destroy(live);
    membuf_free(&out);
    free(src);
    free(dst);
}

/* A minimal valid file, then corruptions of it. */
static size_t minimal(uint8_t *f) {
    static const uint8_t head[16] = {0x89, 'A', 'U', 'S', 'N', 'P', '\r', '\n', 1, 0, 0, 0, 16, 0, 0, 0};
    memset(f, 0, 256);
    memcpy(f, head, 16);
    f[16] = 1;  /* META */
    f[20] = 24; /* length */
    f[48] = 3;  /* REGION */
    f[52] = 12; /* addr + 4 bytes */
    f[57] = 0x10; /* addr 0x1000 */
    memcpy(f + 64, "abcd", 4);
    f[72] = 5; /* END */
    return 80;
}

static void test_snapshot_parser_rejects(void **state) {
    (void)state;
    uint8_t f[256];
    au_snapshot *s;
    size_t n = minimal(f);
    assert_int_equal(au_snapshot_parse(NULL, f, n, &s), AU_OK);
    au_snapshot_free(s);
    for (size_t cut = 0; cut < n; cut++) /* every truncation */
        assert_int_not_equal(au_snapshot_parse(NULL, f, cut, &s), AU_OK);
    n = minimal(f);
    f[0] = 'X';
    assert_int_equal(au_snapshot_parse(NULL, f, n, &s), AU_ERR_FORMAT);
    n = minimal(f);
    f[8] = 2; /* a future version */
    assert_int_equal(au_snapshot_parse(NULL, f, n, &s), AU_ERR_UNSUPPORTED);
    n = minimal(f);
    f[52] = 0xff; /* region length past the end */
    assert_int_equal(au_snapshot_parse(NULL, f, n, &s), AU_ERR_FORMAT);
    n = minimal(f);
    f[48] = 9; /* unknown record: skipped */
    assert_int_equal(au_snapshot_parse(NULL, f, n, &s), AU_OK);
    au_snapshot_free(s);
    f[51] = 0x80; /* unknown and critical: refused */
    assert_int_equal(au_snapshot_parse(NULL, f, n, &s), AU_ERR_UNSUPPORTED);
    n = minimal(f);
    f[n] = 0; /* trailing bytes */
    assert_int_equal(au_snapshot_parse(NULL, f, n + 8, &s), AU_ERR_FORMAT);
    /* Two overlapping regions. */
    n = minimal(f);
    memcpy(f + 72, f + 48, 24); /* a second REGION record at 72 */
    f[80] = 0x02;               /* at 0x1002: overlaps 0x1000..0x1004 */
    f[96] = 5;                  /* END */
    assert_int_equal(au_snapshot_parse(NULL, f, 104, &s), AU_ERR_FORMAT);
}

/* META, THREAD 77, PTHREAD 0x7f00 (bytes 64..80), END: n = 88. */
static size_t with_pthread(uint8_t *f) {
    minimal(f);
    memset(f + 48, 0, 48);
    f[48] = 2; /* THREAD, no name */
    f[52] = 8;
    f[56] = 77;
    f[64] = 6; /* PTHREAD */
    f[68] = 8;
    f[73] = 0x7f;
    f[80] = 5; /* END */
    return 88;
}

static void test_snapshot_pthread_records(void **state) {
    (void)state;
    uint8_t f[256];
    au_snapshot *s;
    size_t n = with_pthread(f);
    assert_int_equal(au_snapshot_parse(NULL, f, n, &s), AU_OK);
    const au_snapshot_meta *m = au_snapshot_get_meta(s);
    assert_int_equal(m->nthreads, 1);
    assert_int_equal(m->threads[0].native_id, 77);
    assert_int_equal(m->threads[0].pthread_id, 0x7f00);
    au_snapshot_free(s);
    n = with_pthread(f);
    f[68] = 4; /* not a u64 */
    assert_int_equal(au_snapshot_parse(NULL, f, n, &s), AU_ERR_FORMAT);
    n = with_pthread(f);
    f[48] = 9; /* after an unknown record, not a THREAD */
    assert_int_equal(au_snapshot_parse(NULL, f, n, &s), AU_ERR_FORMAT);
    n = with_pthread(f);
    memcpy(f + 48, f + 64, 16); /* PTHREADs with no THREAD before them */
    assert_int_equal(au_snapshot_parse(NULL, f, n, &s), AU_ERR_FORMAT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_batch_coalesces),
        cmocka_unit_test(test_live_pages_scatter),
        cmocka_unit_test(test_live_overlap_staged),
        cmocka_unit_test(test_proc_mem_fallback),
        cmocka_unit_test(test_live_separate_runs_one_call),
        cmocka_unit_test(test_live_failure_is_isolated),
        cmocka_unit_test(test_live_big_batch_after_small),
        cmocka_unit_test(test_live_errors),
        cmocka_unit_test(test_record_and_replay),
        cmocka_unit_test(test_recording_is_one_view),
        cmocka_unit_test(test_replay_spans_split_regions),
        cmocka_unit_test(test_snapshot_parser_rejects),
        cmocka_unit_test(test_snapshot_pthread_records),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
