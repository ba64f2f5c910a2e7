/*
 * End to end: every fixture in python_fixtures/ on every supported
 * interpreter, read from outside with the core, checked against the
 * fixture's expected stacks (function, file, line), then recorded, written
 * as a snapshot, replayed, and checked to give exactly the same result.
 *
 * Interpreters: pyenv 3.9-3.13 (shared builds), Debian's static 3.11, and
 * sid's 3.14 and 3.15 in the chroot of tools/sid_chroot.sh.  A missing one
 * is a skip with its reason, or a failure under CI=true (tests/pythons.h).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "asyncunwind.h"
#include "membuf.h"
#include "expect.h"
#include "pythons.h"

static const char *const fixtures[] = {
    "threads", "deep_recursion", "generators", "unicode_names", "cpu_bound", "spawner",
    "lambdas",
};


/* Everything a sample says, as text, for the replay comparison. */
static char *render(const au_pyreader *r, const au_pysample *s) {
    size_t cap = 1 << 20, at = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (uint32_t i = 0; i < s->nthreads; i++) {
        const au_pythread *t = &s->threads[i];
        at += (size_t)snprintf(out + at, cap - at, "thread %llx %llu %u\n",
                               (unsigned long long)t->thread_id,
                               (unsigned long long)t->native_id, t->flags);
        for (uint32_t k = 0; k < t->nframes && at < cap - 8192; k++) {
            const au_pycode *c = au_pyreader_code(r, t->frames[k].code);
            at += (size_t)snprintf(out + at, cap - at, " %llx %.*s|%.*s|%.*s:%d\n",
                                   (unsigned long long)t->frames[k].addr,
                                   c ? (int)c->name_len : 1, c ? c->name : "?",
                                   c ? (int)c->qualname_len : 1, c ? c->qualname : "?",
                                   c ? (int)c->filename_len : 1, c ? c->filename : "?",
                                   t->frames[k].line);
        }
    }
    return out;
}

/* Fail, naming the first line where the replay differs from the live
 * sample (the whole texts are too long to read in a log). */
static void check_replay_equals_live(const char *what, const char *live, const char *replay) {
    if (!strcmp(live, replay)) return;
    const char *a = live, *b = replay;
    int line = 1;
    for (;;) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la) || !ea || !eb) {
            fail_msg("%s: the replay differs from the live sample at line %d:\n  live:   %.*s\n"
                     "  replay: %.*s",
                     what, line, (int)la, a, (int)lb, b);
        }
        a = ea + 1;
        b = eb + 1;
        line++;
    }
}

/* Take one recorded sample of pid; return its rendering and the snapshot. */
static char *record(int pid, const au_pyruntime *rt, const au_pyreader_limits *lim,
                    membuf *snap, const ex_file *ex, int *matched) {
    au_memsrc *live, *rec;
    au_pyreader *r;
    assert_int_equal(au_memsrc_live_open(NULL, pid, &live), AU_OK);
    assert_int_equal(au_recorder_open(NULL, live, &rec), AU_OK);
    assert_int_equal(au_pyreader_new(NULL, rec, rt->py_version_hex, rt->runtime_addr, lim, &r), AU_OK);
    au_pysample s;
    assert_int_equal(au_pyreader_sample(r, &s), AU_OK);
    char err[16384];
    *matched = ex_match(ex, r, &s, err, sizeof err) == 0;
    if (!*matched) fprintf(stderr, "mismatch: %s\n", err);
    char *text = render(r, &s);
    au_snapshot_meta meta = {(uint32_t)pid, rt->py_version_hex, rt->runtime_addr, 0, 0, NULL, 0, 0};
    assert_int_equal(au_recorder_write(rec, &meta, membuf_write, snap), AU_OK);
    au_pyreader_free(r);
    au_memsrc_destroy(rec);
    au_memsrc_destroy(live);
    return text;
}

static char *replay(const membuf *snap, const au_pyreader_limits *lim) {
    au_snapshot *sn;
    au_memsrc *src;
    au_pyreader *r;
    assert_int_equal(au_snapshot_parse(NULL, snap->data, snap->len, &sn), AU_OK);
    const au_snapshot_meta *m = au_snapshot_get_meta(sn);
    assert_int_equal(au_memsrc_snapshot_open(NULL, sn, &src), AU_OK);
    assert_int_equal(au_pyreader_new(NULL, src, m->py_version_hex, m->runtime_addr, lim, &r), AU_OK);
    au_pysample s;
    assert_int_equal(au_pyreader_sample(r, &s), AU_OK);
    char *text = render(r, &s);
    au_pyreader_free(r);
    au_memsrc_destroy(src);
    au_snapshot_free(sn);
    return text;
}

/* Names longer than max_name are cut to max_name code points plus "...". */
static void check_long_name_cut(int pid, const au_pyruntime *rt) {
    au_memsrc *live;
    au_pyreader *r;
    assert_int_equal(au_memsrc_live_open(NULL, pid, &live), AU_OK);
    assert_int_equal(au_pyreader_new(NULL, live, rt->py_version_hex, rt->runtime_addr, NULL, &r), AU_OK);
    au_pysample s;
    assert_int_equal(au_pyreader_sample(r, &s), AU_OK);
    int found = 0;
    for (uint32_t i = 0; i < s.nthreads; i++)
        for (uint32_t k = 0; k < s.threads[i].nframes; k++) {
            const au_pycode *c = au_pyreader_code(r, s.threads[i].frames[k].code);
            if (c && c->name_len > 5 && !memcmp(c->name, "long_", 5)) {
                assert_int_equal(c->name_len, 1024 + 3);
                assert_memory_equal(c->name + 1024, "...", 3);
                found = 1;
            }
        }
    assert_true(found);
    au_pyreader_free(r);
    au_memsrc_destroy(live);
}

/* Warm samples of a blocked process: the code cache answers everything,
 * and nothing is allocated. */
static void check_warm(int pid, const au_pyruntime *rt) {
    au_memsrc *live;
    au_pyreader *r;
    assert_int_equal(au_memsrc_live_open(NULL, pid, &live), AU_OK);
    assert_int_equal(au_pyreader_new(NULL, live, rt->py_version_hex, rt->runtime_addr, NULL, &r), AU_OK);
    au_pysample s;
    au_pyreader_stats st;
    assert_int_equal(au_pyreader_sample(r, &s), AU_OK);
    au_pyreader_get_stats(r, &st);
    uint32_t distinct = st.code_misses;
    assert_true(distinct > 0);
    assert_int_equal(au_pyreader_sample(r, &s), AU_OK);
    au_pyreader_get_stats(r, &st);
    assert_int_equal(st.code_misses, 0);
    assert_int_equal(st.code_hits, distinct);
    assert_int_equal(st.allocations, 0);
    assert_true(st.mem.syscalls > 0);
    au_pyreader_free(r);
    au_memsrc_destroy(live);
}

static void run_fixture(const py_interp *p, const char *name) {
    char path[256], expected[256], err[512];
    snprintf(path, sizeof path, "python_fixtures/%s.py", name);
    snprintf(expected, sizeof expected, "python_fixtures/expected/%s.txt", name);
    static ex_file ex;
    if (ex_load(expected, &ex, err, sizeof err)) fail_msg("%s", err);
    py_proc proc;
    if (py_spawn_fixture(p, path, NULL, &proc)) fail_msg("%s: %s", p->name, proc.error);
    int blocking = strcmp(name, "cpu_bound") && strcmp(name, "spawner");
    if (blocking && py_wait_sleeping(&proc, 10000)) {
        py_kill(&proc);
        fail_msg("%s %s: %s", p->name, name, proc.error);
    }
    au_memsrc *live;
    au_pyruntime rt;
    assert_int_equal(au_memsrc_live_open(NULL, proc.pid, &live), AU_OK);
    assert_int_equal(au_pyruntime_find(NULL, proc.pid, live, &rt), AU_OK);
    au_memsrc_destroy(live);
    assert_int_equal(rt.py_version_hex >> 24, (unsigned)p->major);
    assert_int_equal(rt.py_version_hex >> 16 & 0xff, (unsigned)p->minor);
    assert_int_equal(rt.version_source, p->minor >= 13   ? AU_VERSION_FROM_DEBUG_OFFSETS
                                        : p->minor >= 11 ? AU_VERSION_FROM_PY_VERSION
                                                         : AU_VERSION_FROM_FILE_NAME);

    /* The longest names the reader keeps: unicode_names.py's 5,000-character
     * function comes back cut to 4,096 characters and "...". */
    au_pyreader_limits lim = {0, 0, 4096, 0, 0};
    /* A process on CPU may be caught between two of our reads: allow a few
     * attempts there.  A blocked one must match the first time. */
    int attempts = blocking ? 1 : 50, matched = 0;
    for (int a = 0; a < attempts && !matched; a++) {
        /* Spread the attempts over a second: right after READY the
         * process may still be inside the call that printed it. */
        if (a) nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
        membuf snap = {NULL, 0, 0};
        char *live_text = record(proc.pid, &rt, &lim, &snap, &ex, &matched);
        char *replay_text = replay(&snap, &lim);
        char what[128];
        snprintf(what, sizeof what, "%s %s", p->name, name);
        check_replay_equals_live(what, live_text, replay_text);
        free(live_text);
        free(replay_text);
        membuf_free(&snap);
    }
    if (!matched) {
        py_kill(&proc);
        fail_msg("%s %s: the stacks do not match %s", p->name, name, expected);
    }
    if (!strcmp(name, "unicode_names")) check_long_name_cut(proc.pid, &rt);
    if (blocking) check_warm(proc.pid, &rt);
    py_kill(&proc);
}

static void run_interp(const char *interp) {
    const py_interp *p = py_interpreter(interp);
    assert_non_null(p);
    PY_REQUIRE(p);
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
        fprintf(stderr, "[ %s ] %s\n", interp, fixtures[i]);
        run_fixture(p, fixtures[i]);
    }
}

#define INTERP_TEST(fn, name) \
    static void fn(void **state) { (void)state; run_interp(name); }
INTERP_TEST(test_pyenv_3_9, "pyenv-3.9")
INTERP_TEST(test_pyenv_3_10, "pyenv-3.10")
INTERP_TEST(test_pyenv_3_11, "pyenv-3.11")
INTERP_TEST(test_pyenv_3_12, "pyenv-3.12")
INTERP_TEST(test_pyenv_3_13, "pyenv-3.13")
INTERP_TEST(test_debian_3_11_static, "debian-3.11-static")
INTERP_TEST(test_sid_3_13, "sid-3.13")
INTERP_TEST(test_sid_3_14, "sid-3.14")
INTERP_TEST(test_sid_3_15, "sid-3.15")

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pyenv_3_9),  cmocka_unit_test(test_pyenv_3_10),
        cmocka_unit_test(test_pyenv_3_11), cmocka_unit_test(test_pyenv_3_12),
        cmocka_unit_test(test_pyenv_3_13), cmocka_unit_test(test_debian_3_11_static),
        cmocka_unit_test(test_sid_3_13),   cmocka_unit_test(test_sid_3_14),
        cmocka_unit_test(test_sid_3_15),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
