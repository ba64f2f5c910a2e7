/*
 * Profiles (core/profile/) built from the golden snapshots of real CPython
 * processes (corpus/golden/NAME.snap, replayed offline):
 *   - every snapshot's profile, written collapsed, carries exactly the
 *     stacks of its recorded dump (NAME.collapsed), with counts multiplied;
 *   - names and stacks are interned once (counts derived from the dump);
 *   - limits (stacks, names, text, entries, depth): new stacks past a full
 *     table go to "[dropped: profile full]"
 *     and memory stops growing; deep stacks keep their root side;
 *   - cpu mode keeps only threads on CPU, and of those the running task;
 *   - adding a stack seen before allocates nothing (a counting allocator);
 *   - an allocation failure leaves the profile as it was;
 *   - the writers' escaping of hostile target text.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "asyncunwind.h"
#include "au_render_out.h"
#include "au_profile.h"

#define GOLDEN "corpus/golden/"

/* ---- helpers ------------------------------------------------------------- */

typedef struct buf {
    char *data;
    size_t len, cap;
} buf;

static int buf_write(void *ud, const void *p, size_t n) {
    buf *b = ud;
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = realloc(b->data, b->cap);
        assert_non_null(b->data);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    buf b = {0};
    char tmp[65536];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) buf_write(&b, tmp, k);
    fclose(f);
    if (!b.data) buf_write(&b, "", 0);
    *len = b.len;
    return b.data;
}

typedef struct counting {
    uint64_t allocs; /* allocations and resizes */
    uint64_t fail_at; /* 0: never; else refuse the fail_at-th allocation */
} counting;

static void *counting_realloc(void *ud, void *ptr, size_t old, size_t size) {
    counting *c = ud;
    (void)old;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    c->allocs++;
    if (c->fail_at && c->allocs == c->fail_at) return NULL;
    return realloc(ptr, size);
}

/* A snapshot replayed: one sample of it. */
typedef struct replay {
    char *data;
    au_snapshot *snap;
    au_sampler *s;
    const au_sample *smp;
} replay;

static void replay_open(replay *r, const char *path) {
    size_t len;
    r->data = read_file(path, &len);
    assert_non_null(r->data);
    assert_int_equal(au_snapshot_parse(NULL, (const uint8_t *)r->data, len, &r->snap), AU_OK);
    assert_int_equal(au_sampler_open_snapshot(NULL, r->snap, NULL, &r->s), AU_OK);
    assert_int_equal(au_sampler_sample(r->s, &r->smp), AU_OK);
}

static void replay_close(replay *r) {
    au_sampler_free(r->s);
    au_snapshot_free(r->snap);
    free(r->data);
}

static char *write_profile(const au_profile *p, uint32_t format) {
    buf b = {0};
    assert_int_equal(au_profile_write(p, format, "t", buf_write, &b), AU_OK);
    if (!b.data) buf_write(&b, "", 0);
    return b.data;
}

/* Lines of a collapsed text as a sorted list of (stack, count) after
 * merging equal stacks, counts multiplied by `times`. */
typedef struct line {
    char *stack;
    unsigned long long count;
} line;

static int line_cmp(const void *a, const void *b) {
    return strcmp(((const line *)a)->stack, ((const line *)b)->stack);
}

static size_t parse_collapsed(char *text, line **out, unsigned long long times) {
    size_t n = 0, cap = 16;
    line *v = malloc(cap * sizeof *v);
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *sp = strrchr(l, ' ');
        assert_non_null(sp);
        *sp = 0;
        if (n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[n].stack = l;
        v[n++].count = strtoull(sp + 1, NULL, 10) * times;
    }
    qsort(v, n, sizeof *v, line_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && !strcmp(v[m - 1].stack, v[i].stack)) v[m - 1].count += v[i].count;
        else v[m++] = v[i];
    }
    *out = v;
    return m;
}

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* ---- every golden snapshot ---------------------------------------------- */

/* The profile's collapsed output is the dump's collapsed output, counted:
 * the same frame text, each distinct stack once with its count. */
static void check_golden(const char *snap_path, const char *collapsed_path) {
    replay r;
    replay_open(&r, snap_path);
    au_profile *p;
    assert_int_equal(au_profile_new(NULL, NULL, &p), AU_OK);
    assert_int_equal(au_profile_add(p, r.s, r.smp, 0, 1), AU_OK);
    assert_int_equal(au_profile_add(p, r.s, r.smp, 0, 2), AU_OK);
    char *got = write_profile(p, AU_FORMAT_COLLAPSED);
    size_t len;
    char *want = read_file(collapsed_path, &len);
    assert_non_null(want);
    line *gl, *wl;
    size_t gn = parse_collapsed(got, &gl, 1), wn = parse_collapsed(want, &wl, 3);
    if (gn != wn) fail_msg("%s: %zu stacks, the dump has %zu", snap_path, gn, wn);
    for (size_t i = 0; i < gn; i++) {
        if (strcmp(gl[i].stack, wl[i].stack) || gl[i].count != wl[i].count)
            fail_msg("%s: stack %zu:\n  got  %s %llu\n  want %s %llu", snap_path, i, gl[i].stack,
                     gl[i].count, wl[i].stack, wl[i].count);
    }
    /* Interning: one name per distinct segment, plus the reserved
     * "[dropped: profile full]"; one stack per distinct line. */
    au_profile_stats st;
    au_profile_get_stats(p, &st);
    assert_int_equal(st.stacks, wn);
    assert_int_equal(st.samples, 2);
    assert_int_equal(st.dropped, 0);
    free(gl);
    free(wl);
    free(got);
    free(want);
    au_profile_free(p);
    replay_close(&r);
}

static void test_every_golden(void **state) {
    (void)state;
    DIR *d = opendir(GOLDEN);
    assert_non_null(d);
    struct dirent *e;
    int checked = 0;
    while ((e = readdir(d))) {
        if (!has_suffix(e->d_name, ".snap")) continue;
        char snap[512], coll[512];
        snprintf(snap, sizeof snap, GOLDEN "%s", e->d_name);
        snprintf(coll, sizeof coll, GOLDEN "%.*s.collapsed", (int)(strlen(e->d_name) - 5),
                 e->d_name);
        struct stat sb;
        if (stat(coll, &sb) != 0) continue;
        check_golden(snap, coll);
        checked++;
    }
    closedir(d);
    /* 9 interpreters' worth of fixtures; a handful is a broken data dep. */
    assert_true(checked >= 200);
}

/* Distinct names equal the distinct ';'-separated segments of the dump
 * (the thread root included), plus the reserved dropped name. */
static void test_interning(void **state) {
    (void)state;
    replay r;
    replay_open(&r, GOLDEN "pyenv-3.12-gather_tree.snap");
    au_profile *p;
    assert_int_equal(au_profile_new(NULL, NULL, &p), AU_OK);
    for (int i = 0; i < 4; i++) assert_int_equal(au_profile_add(p, r.s, r.smp, 0, 1), AU_OK);
    size_t len;
    char *want = read_file(GOLDEN "pyenv-3.12-gather_tree.collapsed", &len);
    char *segs[4096];
    size_t nsegs = 0, nlines = 0;
    for (char *s1 = NULL, *l = strtok_r(want, "\n", &s1); l; l = strtok_r(NULL, "\n", &s1)) {
        *strrchr(l, ' ') = 0;
        nlines++;
        for (char *s2 = NULL, *seg = strtok_r(l, ";", &s2); seg; seg = strtok_r(NULL, ";", &s2)) {
            size_t j = 0;
            while (j < nsegs && strcmp(segs[j], seg)) j++;
            if (j == nsegs && nsegs < 4096) segs[nsegs++] = seg;
        }
    }
    au_profile_stats st;
    au_profile_get_stats(p, &st);
    assert_true(nlines > 3);
    assert_int_equal(st.names, nsegs + 1);
    assert_int_equal(st.stacks, nlines);
    assert_int_equal(st.stacks_added, 4 * nlines);
    assert_int_equal(st.samples, 4);
    /* Each name's text is held once: the text is at most the sum of the
     * distinct segments' lengths. */
    uint64_t seg_bytes = 0;
    for (size_t j = 0; j < nsegs; j++) seg_bytes += strlen(segs[j]);
    assert_true(st.text_bytes <= seg_bytes + 64);
    free(want);
    au_profile_free(p);
    replay_close(&r);
}

/* AU_PROFILE_PROCESS: samples of two processes (record --subprocesses)
 * stay apart under a "process PID" root, in every format; without it the
 * stacks are exactly the dump's. */
static void test_process_root(void **state) {
    (void)state;
    replay a, b;
    replay_open(&a, GOLDEN "pyenv-3.12-seed.agent.snap");
    replay_open(&b, GOLDEN "pyenv-3.9-seed.agent.snap");
    assert_int_not_equal(a.smp->pid, b.smp->pid);
    au_profile *p;
    assert_int_equal(au_profile_new(NULL, NULL, &p), AU_OK);
    assert_int_equal(au_profile_add(p, a.s, a.smp, AU_PROFILE_PROCESS, 1), AU_OK);
    assert_int_equal(au_profile_add(p, b.s, b.smp, AU_PROFILE_PROCESS, 2), AU_OK);
    assert_int_equal(au_profile_add(p, b.s, b.smp, 0x80, 1), AU_ERR_ARG);
    char *out = write_profile(p, AU_FORMAT_COLLAPSED);
    char pa[64], pb[64];
    snprintf(pa, sizeof pa, "process %d;thread ", a.smp->pid);
    snprintf(pb, sizeof pb, "process %d;thread ", b.smp->pid);
    size_t na = 0, nb = 0;
    for (char *sv = NULL, *l = strtok_r(out, "\n", &sv); l; l = strtok_r(NULL, "\n", &sv)) {
        int in_a = !strncmp(l, pa, strlen(pa)), in_b = !strncmp(l, pb, strlen(pb));
        assert_true(in_a || in_b);
        if (strstr(l, ";parent (") && strstr(l, ";[Task-not_awaited];func_not_awaited (")) {
            /* counts: 1 for a's sample, 2 for b's */
            assert_string_equal(strrchr(l, ' '), in_a ? " 1" : " 2");
            na += in_a, nb += in_b;
        }
    }
    assert_int_equal(na, 1);
    assert_int_equal(nb, 1);
    free(out);
    /* speedscope: one profile per process and thread, named after both;
     * neither is a frame. */
    out = write_profile(p, AU_FORMAT_SPEEDSCOPE);
    snprintf(pa, sizeof pa, "\"name\":\"process %d thread ", a.smp->pid);
    snprintf(pb, sizeof pb, "\"name\":\"process %d thread ", b.smp->pid);
    assert_non_null(strstr(out, pa));
    assert_non_null(strstr(out, pb));
    assert_null(strstr(out, "{\"name\":\"process "));
    assert_null(strstr(out, "4294967295"));
    free(out);
    out = write_profile(p, AU_FORMAT_SVG);
    snprintf(pa, sizeof pa, "process %d", a.smp->pid);
    assert_non_null(strstr(out, pa));
    free(out);
    au_profile_free(p);
    replay_close(&a);
    replay_close(&b);
}

/* ---- allocation ---------------------------------------------------------- */

static void test_repeat_add_allocates_nothing(void **state) {
    (void)state;
    static const char *const snaps[] = {GOLDEN "pyenv-3.12-many_tasks.agent.snap",
                                        GOLDEN "sid-3.14-gather_tree.snap",
                                        GOLDEN "pyenv-3.9-threads.snap"};
    for (size_t i = 0; i < sizeof snaps / sizeof *snaps; i++) {
        replay r;
        replay_open(&r, snaps[i]);
        counting c = {0, 0};
        au_allocator a = {counting_realloc, &c};
        au_profile *p;
        assert_int_equal(au_profile_new(&a, NULL, &p), AU_OK);
        assert_int_equal(au_profile_add(p, r.s, r.smp, 0, 1), AU_OK);
        uint64_t warm = c.allocs;
        assert_true(warm > 1);
        assert_int_equal(au_profile_allocations(p), warm);
        for (int k = 0; k < 3; k++) assert_int_equal(au_profile_add(p, r.s, r.smp, 0, 1), AU_OK);
        assert_int_equal(c.allocs, warm);
        assert_int_equal(au_profile_allocations(p), warm);
        au_profile_free(p);
        replay_close(&r);
    }
}

/* Failing each allocation of a first add in turn: the call fails with
 * AU_ERR_NOMEM, the profile is as before (its output and stats), and
 * adding again later gives exactly what a fresh profile gives. */
static void test_nomem_leaves_profile_unchanged(void **state) {
    (void)state;
    replay base, more;
    replay_open(&base, GOLDEN "pyenv-3.12-seed.agent.snap");
    replay_open(&more, GOLDEN "pyenv-3.12-many_tasks.snap");
    au_profile *ref;
    assert_int_equal(au_profile_new(NULL, NULL, &ref), AU_OK);
    assert_int_equal(au_profile_add(ref, base.s, base.smp, 0, 1), AU_OK);
    assert_int_equal(au_profile_add(ref, more.s, more.smp, 0, 1), AU_OK);
    char *want = write_profile(ref, AU_FORMAT_COLLAPSED);
    int failures = 0;
    for (uint64_t k = 1;; k++) {
        counting c = {0, 0};
        au_allocator a = {counting_realloc, &c};
        au_profile *p;
        assert_int_equal(au_profile_new(&a, NULL, &p), AU_OK);
        assert_int_equal(au_profile_add(p, base.s, base.smp, 0, 1), AU_OK);
        char *before = write_profile(p, AU_FORMAT_COLLAPSED);
        au_profile_stats sb, sa;
        au_profile_get_stats(p, &sb);
        c.fail_at = c.allocs + k;
        int rc = au_profile_add(p, more.s, more.smp, 0, 1);
        c.fail_at = 0;
        if (rc == AU_OK) {
            free(before);
            au_profile_free(p);
            break;
        }
        failures++;
        assert_int_equal(rc, AU_ERR_NOMEM);
        au_profile_get_stats(p, &sa);
        assert_int_equal(sa.samples, sb.samples);
        assert_int_equal(sa.stacks, sb.stacks);
        assert_int_equal(sa.names, sb.names);
        assert_int_equal(sa.text_bytes, sb.text_bytes);
        assert_int_equal(sa.stacks_added, sb.stacks_added);
        char *after = write_profile(p, AU_FORMAT_COLLAPSED);
        assert_string_equal(after, before);
        assert_int_equal(au_profile_add(p, more.s, more.smp, 0, 1), AU_OK);
        char *again = write_profile(p, AU_FORMAT_COLLAPSED);
        assert_string_equal(again, want);
        free(before);
        free(after);
        free(again);
        au_profile_free(p);
    }
    assert_true(failures >= 3); /* the names, text, stacks and pool grew */
    free(want);
    au_profile_free(ref);
    replay_close(&base);
    replay_close(&more);
}

/* ---- limits --------------------------------------------------------------- */

static void test_stack_limit_drops(void **state) {
    (void)state;
    replay r;
    replay_open(&r, GOLDEN "pyenv-3.12-many_tasks.snap");
    uint32_t nst = r.smp->nstacks;
    assert_true(nst > 10);
    au_profile_limits lim = {4, 0, 0, 0, 0};
    au_profile *p;
    assert_int_equal(au_profile_new(NULL, &lim, &p), AU_OK);
    assert_int_equal(au_profile_add(p, r.s, r.smp, 0, 1), AU_OK);
    au_profile_stats st;
    au_profile_get_stats(p, &st);
    /* 3 stacks, and the 4th slot is the dropped stack's */
    assert_int_equal(st.stacks, 4);
    assert_int_equal(st.stacks_added, nst);
    assert_int_equal(st.dropped, nst - 3);
    uint64_t heap = st.heap_bytes;
    uint32_t names = st.names;
    /* More samples, other stacks: no growth past the limit. */
    replay o;
    replay_open(&o, GOLDEN "pyenv-3.11-gather_tree.snap");
    for (int i = 0; i < 5; i++) assert_int_equal(au_profile_add(p, o.s, o.smp, 0, 1), AU_OK);
    au_profile_get_stats(p, &st);
    assert_int_equal(st.stacks, 4);
    assert_int_equal(st.dropped, nst - 3 + 5ull * o.smp->nstacks);
    /* Names of stacks that cannot be added are not kept either; only the
     * per-call scratch may grow, for deeper stacks. */
    assert_int_equal(st.names, names);
    assert_true(st.heap_bytes <= heap + 4096);
    char *out = write_profile(p, AU_FORMAT_COLLAPSED);
    char want[64];
    snprintf(want, sizeof want, "\n[dropped: profile full] %llu\n",
             (unsigned long long)st.dropped);
    assert_non_null(strstr(out, want));
    free(out);
    au_profile_free(p);
    replay_close(&o);
    replay_close(&r);
}

static void test_name_and_text_limits_drop(void **state) {
    (void)state;
    replay r;
    replay_open(&r, GOLDEN "pyenv-3.12-many_tasks.snap");
    /* Few names: the first stack fits (thread, frames, tasks), most
     * others bring a new task name and are dropped. */
    au_profile_limits lim = {0, 20, 0, 0, 0};
    au_profile *p;
    assert_int_equal(au_profile_new(NULL, &lim, &p), AU_OK);
    assert_int_equal(au_profile_add(p, r.s, r.smp, 0, 1), AU_OK);
    au_profile_stats st;
    au_profile_get_stats(p, &st);
    assert_true(st.names <= 20);
    assert_true(st.dropped > 0 && st.dropped < st.stacks_added);
    au_profile_free(p);
    /* Little text: nothing but the dropped name fits. */
    au_profile_limits tl = {0, 0, 32, 0, 0};
    assert_int_equal(au_profile_new(NULL, &tl, &p), AU_OK);
    assert_int_equal(au_profile_add(p, r.s, r.smp, 0, 1), AU_OK);
    au_profile_get_stats(p, &st);
    assert_true(st.text_bytes <= 32);
    assert_int_equal(st.dropped, st.stacks_added);
    assert_int_equal(st.stacks, 1);
    au_profile_free(p);
    /* Few entries: as many whole stacks as fit in them (one entry kept
     * for the dropped stack), the rest dropped. */
    uint64_t len0 = au_sample_stack_entries(r.s, 0, NULL, 0) + 1; /* + thread */
    au_profile_limits el = {0, 0, 0, 0, (uint32_t)(2 * len0 + 1)};
    assert_int_equal(au_profile_new(NULL, &el, &p), AU_OK);
    assert_int_equal(au_profile_add(p, r.s, r.smp, 0, 1), AU_OK);
    au_profile_get_stats(p, &st);
    assert_int_equal(st.stacks, 3); /* two stacks of len0 entries, and dropped */
    assert_int_equal(st.dropped, st.stacks_added - 2);
    au_profile_free(p);
    replay_close(&r);
}

/* A deeper stack keeps its root side and ends in "[truncated]". */
static void test_depth_limit(void **state) {
    (void)state;
    replay r;
    replay_open(&r, GOLDEN "pyenv-3.12-deep_chain.snap");
    au_profile_limits lim = {0, 0, 0, 6, 0};
    au_profile *p;
    assert_int_equal(au_profile_new(NULL, &lim, &p), AU_OK);
    assert_int_equal(au_profile_add(p, r.s, r.smp, 0, 1), AU_OK);
    char *out = write_profile(p, AU_FORMAT_COLLAPSED);
    size_t len;
    char *dump = read_file(GOLDEN "pyenv-3.12-deep_chain.collapsed", &len);
    /* The dump's first 6 segments (thread + 5 entries), then the marker. */
    char *end = dump;
    for (int i = 0; i < 6; i++) end = strchr(end + 1, ';');
    *end = 0;
    char want[8192];
    snprintf(want, sizeof want, "%s;[truncated] 1\n", dump);
    assert_string_equal(out, want);
    free(out);
    free(dump);
    au_profile_free(p);
    replay_close(&r);
}

/* ---- cpu mode ------------------------------------------------------------- */

/* The sample with every thread's flags changed (the sampler sets
 * AU_THREAD_ON_CPU live with AU_SAMPLER_CPU_STATE; a replay cannot). */
static au_sample with_thread_flags(const au_sample *smp, au_sample_thread *copy, uint32_t set) {
    au_sample s = *smp;
    for (uint32_t i = 0; i < smp->nthreads; i++) {
        copy[i] = smp->threads[i];
        copy[i].flags |= set;
    }
    s.threads = copy;
    return s;
}

static char *cpu_profile(replay *r, uint32_t thread_flags, au_profile_stats *st) {
    au_sample_thread threads[64];
    assert_true(r->smp->nthreads <= 64);
    au_sample s = with_thread_flags(r->smp, threads, thread_flags);
    au_profile *p;
    assert_int_equal(au_profile_new(NULL, NULL, &p), AU_OK);
    assert_int_equal(au_profile_add(p, r->s, &s, AU_PROFILE_CPU, 1), AU_OK);
    au_profile_get_stats(p, st);
    char *out = write_profile(p, AU_FORMAT_COLLAPSED);
    au_profile_free(p);
    return out;
}

static void test_cpu_mode(void **state) {
    (void)state;
    au_profile_stats st;
    /* Threads off CPU count nothing. */
    replay r;
    replay_open(&r, GOLDEN "pyenv-3.12-on_cpu.snap");
    char *out = cpu_profile(&r, 0, &st);
    assert_int_equal(st.stacks_added, 0);
    assert_string_equal(out, "");
    free(out);
    /* On CPU: the running task's stack alone, the dump's line for it. */
    out = cpu_profile(&r, AU_THREAD_ON_CPU, &st);
    assert_int_equal(st.stacks_added, 1);
    size_t len;
    char *dump = read_file(GOLDEN "pyenv-3.12-on_cpu.collapsed", &len);
    char *l = strstr(dump, "[cpu-spinner];");
    assert_non_null(l);
    while (l > dump && l[-1] != '\n') l--;
    *strchr(l, '\n') = 0;
    char want[8192];
    snprintf(want, sizeof want, "%s\n", l);
    assert_string_equal(out, want);
    assert_non_null(strstr(out, ";spin ("));
    free(out);
    free(dump);
    replay_close(&r);
    /* Bare thread stacks all count. */
    replay_open(&r, GOLDEN "pyenv-3.12-threads.snap");
    out = cpu_profile(&r, AU_THREAD_ON_CPU, &st);
    assert_int_equal(st.stacks_added, r.smp->nstacks);
    free(out);
    replay_close(&r);
    /* An event loop on CPU between tasks (none running): its own frames,
     * the root side up to the first task, count once. */
    replay_open(&r, GOLDEN "pyenv-3.12-seed.snap");
    out = cpu_profile(&r, AU_THREAD_ON_CPU, &st);
    assert_int_equal(st.stacks_added, 1);
    assert_null(strchr(out, '['));
    assert_non_null(strstr(out, ";EpollSelector.select ("));
    assert_non_null(strstr(out, ") 1\n"));
    free(out);
    replay_close(&r);
}

/* ---- writers' escaping ---------------------------------------------------- */

static char *escaped(void (*esc)(au_out *, const char *, size_t), const char *s, size_t n) {
    buf b = {0};
    au_out o;
    au_out_init(&o, buf_write, &b);
    esc(&o, s, n);
    assert_int_equal(au_out_flush(&o), AU_OK);
    if (!b.data) buf_write(&b, "", 0);
    return b.data;
}

static void test_escaping(void **state) {
    (void)state;
    /* quote, tag, ampersand, apostrophe, CDATA end, control byte, a stray
     * continuation byte, an overlong '/', a surrogate, valid 2- and
     * 4-byte characters */
    static const char hostile[] = "a\"<b>&'c]]>\x01\n\x80\xc0\xaf\xed\xa0\x80\xc3\xa9\xf0\x90\x8c\xb0";
    size_t n = sizeof hostile - 1;
    char *j = escaped(au_out_json, hostile, n);
    assert_string_equal(j, "a\\\"<b>&'c]]>\\u0001\\n\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9\xf0\x90\x8c\xb0");
    char *x = escaped(au_out_xml, hostile, n);
    assert_string_equal(x, "a&quot;&lt;b&gt;&amp;&#39;c]]&gt;??\xef\xbf\xbd\xef\xbf\xbd"
                           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9"
                           "\xf0\x90\x8c\xb0");
    free(j);
    free(x);
}

/* Arguments are checked; unknown formats refused. */
static void test_arguments(void **state) {
    (void)state;
    au_profile *p;
    assert_int_equal(au_profile_new(NULL, NULL, NULL), AU_ERR_ARG);
    assert_int_equal(au_profile_new(NULL, NULL, &p), AU_OK);
    buf b = {0};
    assert_int_equal(au_profile_write(p, AU_FORMAT_TEXT, NULL, buf_write, &b), AU_ERR_ARG);
    assert_int_equal(au_profile_write(p, 99, NULL, buf_write, &b), AU_ERR_ARG);
    assert_int_equal(au_profile_write(p, AU_FORMAT_COLLAPSED, NULL, NULL, NULL), AU_ERR_ARG);
    assert_int_equal(au_profile_add(p, NULL, NULL, 0, 1), AU_ERR_ARG);
    au_profile_stats st;
    au_profile_get_stats(p, &st);
    assert_int_equal(st.samples, 0);
    assert_int_equal(st.names, 1); /* the reserved dropped name */
    free(b.data);
    au_profile_free(p);
    au_profile_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_golden),
        cmocka_unit_test(test_interning),
        cmocka_unit_test(test_process_root),
        cmocka_unit_test(test_repeat_add_allocates_nothing),
        cmocka_unit_test(test_nomem_leaves_profile_unchanged),
        cmocka_unit_test(test_stack_limit_drops),
        cmocka_unit_test(test_name_and_text_limits_drop),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_cpu_mode),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
