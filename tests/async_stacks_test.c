/*
 * Task-aware stacks of every asyncio scenario fixture, read from outside a
 * live interpreter by the sampler (the same calls `asyncunwind dump`
 * makes), checked against python_fixtures/expected/<fixture>.txt (started
 * with the agent, agent/) or .noagent.txt (without it, where the stacks
 * differ), then snapshotted and replayed: the replay must print exactly
 * what the live sample printed.
 *
 * One test binary per interpreter (argv[1], a name of tests/pythons.h), so
 * Bazel runs the interpreters side by side.  A missing interpreter is a
 * skip with its reason, or a failure under CI=true.
 *
 * Fixtures reach their steady state and print READY, but a thread can
 * still be on its way into the wait when READY arrives, and a task that
 * is on CPU moves; so each fixture is sampled until a sample matches, up
 * to ATTEMPTS times, and the test fails with the last sample's diff.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "asyncunwind.h"
#include "expect.h"
#include "membuf.h"
#include "pythons.h"

#define ATTEMPTS 40
#define ATTEMPT_PAUSE_MS 50
#define SETTLE_MS 10000

static const char *interp_name;

typedef struct fixture {
    const char *name;        /* python_fixtures/NAME.py, expected/NAME.txt */
    const char *args[2];
    int busy;                /* a thread never sleeps: do not wait for it */
} fixture;

static const fixture FIXTURES[] = {
    {"seed", {NULL}, 0},
    {"seed_uvloop", {NULL}, 0},
    {"create_chain", {NULL}, 0},
    {"await_beats_weak", {NULL}, 0},
    {"orphan", {NULL}, 0},
    {"gather_tree", {NULL}, 0},
    {"taskgroup_tree", {NULL}, 0},
    {"waiters", {NULL}, 0},
    {"timeout_block", {NULL}, 0},
    {"wait_for_inline", {NULL}, 0},
    {"eager_tasks", {NULL}, 0},
    {"async_gen", {NULL}, 0},
    {"executor_thread", {NULL}, 0},
    {"deadlock", {NULL}, 0},
    {"two_loops", {NULL}, 0},
    {"many_tasks", {"1000", NULL}, 0},
    {"deep_chain", {NULL}, 0},
    {"on_cpu", {NULL}, 1},
    {"ties", {NULL}, 0},
    {"anyio_groups", {NULL}, 0},
};

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The modules of EX_MOD_* this interpreter imports: only sid's have them
 * (the chroot's python3-uvloop is built for 3.14; python3-anyio is pure
 * Python, for all three).  Under CI a sid interpreter without anyio is a
 * setup that failed, not a skip. */
static unsigned modules(const py_interp *p) {
    char path[PATH_MAX + 128];
    struct stat st;
    unsigned mods = 0;
    if (p->kind != PY_KIND_SID_CHROOT) return 0;
    snprintf(path, sizeof path,
             "%s/usr/lib/python3/dist-packages/uvloop/loop.cpython-3%d-x86_64-linux-gnu.so",
             p->chroot_root, p->minor);
    if (stat(path, &st) == 0) mods |= EX_MOD_UVLOOP;
    snprintf(path, sizeof path, "%s/usr/lib/python3/dist-packages/anyio/__init__.py", p->chroot_root);
    if (stat(path, &st) == 0) mods |= EX_MOD_ANYIO;
    else if (py_missing_is_fatal()) fail_msg("%s: no anyio (tools/sid_chroot.sh installs python3-anyio)", p->name);
    return mods;
}

/* ---- a sample as the matcher sees it ------------------------------------- */

typedef struct rendered {
    ex_stack *stacks;
    size_t nstacks;
    const char **entries;
    char *text;
    size_t ntext, text_cap;
} rendered;

static const char *keep(rendered *r, const char *s, size_t n) {
    if (r->ntext + n + 1 > r->text_cap) return "";
    char *at = r->text + r->ntext;
    memcpy(at, s, n);
    at[n] = 0;
    r->ntext += n + 1;
    return at;
}

static const char *keepf(rendered *r, const char *fmt, ...) {
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return keep(r, buf, n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void render_for_match(au_sampler *s, const au_sample *smp, rendered *r) {
    size_t total = 0;
    for (uint32_t k = 0; k < smp->nstacks; k++) total += au_sample_stack_entries(s, k, NULL, 0);
    r->stacks = calloc(smp->nstacks + 1, sizeof *r->stacks);
    r->entries = calloc(total + 1, sizeof *r->entries);
    r->text_cap = (total + smp->nstacks + 1) * 256 + 65536;
    r->text = malloc(r->text_cap);
    r->ntext = 0;
    r->nstacks = smp->nstacks;
    assert_non_null(r->stacks);
    assert_non_null(r->entries);
    assert_non_null(r->text);
    au_entry *e = calloc(total + 1, sizeof *e);
    assert_non_null(e);
    size_t at = 0;
    for (uint32_t k = 0; k < smp->nstacks; k++) {
        const au_sample_stack *st = &smp->stacks[k];
        const au_sample_thread *th = &smp->threads[st->thread];
        ex_stack *x = &r->stacks[k];
        x->thread = th->name ? keep(r, th->name, th->name_len) : "";
        x->leaf = st->leaf == UINT32_MAX
                      ? NULL
                      : keep(r, smp->tasks[st->leaf].name, smp->tasks[st->leaf].name_len);
        uint64_t n = au_sample_stack_entries(s, k, e, (uint32_t)total + 1);
        x->entries = r->entries + at;
        x->nentries = n;
        for (uint64_t i = 0; i < n; i++) {
            const au_entry *en = &e[i];
            const char *str = "";
            if (en->kind == AU_ENTRY_FRAME) {
                const au_sample_frame *f = &smp->frames[en->id];
                if (!f->qualname) str = "<unknown> ?:?";
                else if (f->line >= 0)
                    str = keepf(r, "%.*s %.*s:%d", (int)f->qualname_len, f->qualname,
                                (int)f->filename_len, f->filename, f->line);
                else
                    str = keepf(r, "%.*s %.*s:?", (int)f->qualname_len, f->qualname,
                                (int)f->filename_len, f->filename);
            } else if (en->kind == AU_ENTRY_TASK) {
                const au_sample_task *t = &smp->tasks[en->task];
                str = keepf(r, "[%.*s]", (int)t->name_len, t->name);
            } else if (en->kind == AU_ENTRY_CYCLE) {
                const au_sample_task *t = &smp->tasks[en->task];
                str = keepf(r, "(cycle -> %.*s)", (int)t->name_len, t->name);
            } else {
                str = "(truncated)";
            }
            r->entries[at + i] = str;
        }
        at += n;
    }
    free(e);
}

static void rendered_free(rendered *r) {
    free(r->stacks);
    free(r->entries);
    free(r->text);
    memset(r, 0, sizeof *r);
}

/* ---- snapshot round trip --------------------------------------------------- */

static char *render_text(au_sampler *s, const au_sample *smp) {
    membuf m = {0};
    assert_int_equal(au_render(s, smp, AU_FORMAT_TEXT, membuf_write, &m), AU_OK);
    assert_int_equal(membuf_write(&m, "", 1), 0);
    return (char *)m.data;
}

/* A recorded sample replays to the same text. */
static void check_round_trip(int pid, const char *what) {
    au_sampler_options opt;
    memset(&opt, 0, sizeof opt);
    opt.flags = AU_SAMPLER_RECORD;
    au_sampler *s;
    assert_int_equal(au_sampler_open_pid(NULL, pid, &opt, &s), AU_OK);
    const au_sample *smp;
    assert_int_equal(au_sampler_sample(s, &smp), AU_OK);
    char *live = render_text(s, smp);
    membuf snap = {0};
    assert_int_equal(au_sampler_write_snapshot(s, membuf_write, &snap), AU_OK);
    au_sampler_free(s);
    au_snapshot *parsed;
    assert_int_equal(au_snapshot_parse(NULL, snap.data, snap.len, &parsed), AU_OK);
    assert_int_equal(au_sampler_open_snapshot(NULL, parsed, NULL, &s), AU_OK);
    assert_int_equal(au_sampler_sample(s, &smp), AU_OK);
    char *replay = render_text(s, smp);
    if (strcmp(live, replay) != 0) {
        fprintf(stderr, "%s: replay differs from live\n--- live\n%s\n--- replay\n%s\n", what, live,
                replay);
        fail();
    }
    free(live);
    free(replay);
    au_sampler_free(s);
    au_snapshot_free(parsed);
    free(snap.data);
}

/* ---- one fixture ------------------------------------------------------------ */

static ex_file expect_buf;

static void run_fixture(const py_interp *p, const fixture *fx, int agent) {
    char err[16384], why[256], path[256];
    if (ex_load_fixture("python_fixtures/expected", fx->name, agent, &expect_buf, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        fail();
    }
    if (!ex_applies(&expect_buf, p->major, p->minor, modules(p), why, sizeof why)) {
        fprintf(stderr, "  %s: skipped: %s\n", fx->name, why);
        return;
    }
    snprintf(path, sizeof path, "python_fixtures/%s.py", fx->name);
    py_proc proc;
    /* With the agent: the directory //agent:files lands in, first on the
     * target's PYTHONPATH (made visible inside the chroot too). */
    static const char *const env[] = {"PYTHONDONTWRITEBYTECODE=1", NULL};
    py_spawn_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.env = env;
    opts.agent_dir = agent ? "agent" : NULL;
    if (py_spawn_fixture_opts(p, path, fx->args[0] ? fx->args : NULL, &opts, &proc) != 0) {
        fprintf(stderr, "%s: %s\n", fx->name, proc.error);
        fail();
    }
    if (!fx->busy && py_wait_sleeping(&proc, SETTLE_MS) != 0)
        fprintf(stderr, "  %s: not settled (%s); sampling anyway\n", fx->name, proc.error);
    au_sampler_options opt;
    memset(&opt, 0, sizeof opt);
    if (!agent) opt.flags |= AU_SAMPLER_NO_AGENT;
    au_sampler *s;
    int rc = au_sampler_open_pid(NULL, proc.pid, &opt, &s);
    if (rc) {
        py_kill(&proc);
        fprintf(stderr, "%s: au_sampler_open_pid: %s\n", fx->name, au_status_str(rc));
        fail();
    }
    int matched = 0, attempt;
    for (attempt = 0; attempt < ATTEMPTS && !matched; attempt++) {
        if (attempt) sleep_ms(ATTEMPT_PAUSE_MS);
        const au_sample *smp;
        rc = au_sampler_sample(s, &smp);
        if (rc) {
            snprintf(err, sizeof err, "au_sampler_sample: %s", au_status_str(rc));
            continue;
        }
        rendered r = {0};
        render_for_match(s, smp, &r);
        matched = ex_match_stacks(&expect_buf, r.stacks, r.nstacks, err, sizeof err) == 0;
        rendered_free(&r);
    }
    au_sampler_free(s);
    if (matched) check_round_trip(proc.pid, fx->name);
    py_kill(&proc);
    if (!matched) {
        fprintf(stderr, "%s on %s (%s): no sample matched in %d attempts; the last:\n%s\n",
                fx->name, p->name, agent ? "agent" : "no agent", ATTEMPTS, err);
        fail();
    }
    fprintf(stderr, "  %s: ok (%s, attempt %d)\n", fx->name, agent ? "agent" : "no agent", attempt);
}

static void test_fixtures_without_agent(void **state) {
    (void)state;
    const py_interp *p = py_interpreter(interp_name);
    assert_non_null(p);
    PY_REQUIRE(p);
    for (size_t i = 0; i < sizeof FIXTURES / sizeof *FIXTURES; i++) run_fixture(p, &FIXTURES[i], 0);
}

/* The same fixtures started with the agent (docs/AGENT.md): weak links
 * join, and the expectations are NAME.txt. */
static void test_fixtures_with_agent(void **state) {
    (void)state;
    const py_interp *p = py_interpreter(interp_name);
    assert_non_null(p);
    PY_REQUIRE(p);
    for (size_t i = 0; i < sizeof FIXTURES / sizeof *FIXTURES; i++) run_fixture(p, &FIXTURES[i], 1);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s INTERPRETER (a name of tests/pythons.h)\n", argv[0]);
        return 2;
    }
    interp_name = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_without_agent),
        cmocka_unit_test(test_fixtures_with_agent),
    };
    return cmocka_run_group_tests_name(interp_name, tests, NULL, NULL);
}
