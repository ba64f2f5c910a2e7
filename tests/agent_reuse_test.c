/*
 * A new task at a dead task's address never inherits the dead task's
 * creator, and a list that is not the agent's gives no creator
 * (docs/AGENT.md, "Reading it"), on every interpreter.
 *
 * python_fixtures/address_reuse.py, started with the agent, leaves in the
 * agent's records list the pair of a task that died ("first": its weakref,
 * now referring to None, and a weakref to its creator Task-1, alive), while
 * a live task, "reused", sits at the address "first" had and has no pair
 * of its own.  The test checks that state from outside (the pair is in the
 * list the header names, its task weakref no longer refers to the task
 * there) and that the sampler shows "reused" as a root.  Then, on SIGUSR1,
 * the fixture points the header at a list that does not name itself and
 * holds weakrefs to "reused" and Task-1 side by side (the memory of a
 * freed records list, taken by another list): "reused" must stay a root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "au_agent_region.h"
#include "asyncunwind.h"
#include "pythons.h"

/* PyListObject and PyWeakReference on every default build of 3.9 to 3.15:
 * PyObject_HEAD, then ob_size and ob_item, or wr_object. */
#define LIST_SIZE_OFFSET 16
#define LIST_ITEM_OFFSET 24
#define WR_OBJECT_OFFSET 16
#define MAX_ITEMS 65536
#define LINE_TIMEOUT_MS 30000

static const au_sample_task *task_named(const au_sample *smp, const char *name) {
    for (uint32_t i = 0; i < smp->ntasks; i++)
        if (smp->tasks[i].name_len == strlen(name) &&
            memcmp(smp->tasks[i].name, name, smp->tasks[i].name_len) == 0)
            return &smp->tasks[i];
    return NULL;
}

/* The next line of the fixture's output (without '\n'), read a byte at a
 * time; fails the test after LINE_TIMEOUT_MS. */
static void read_line(const py_proc *proc, char *out, size_t cap) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long deadline = (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + LINE_TIMEOUT_MS;
    size_t len = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long left = deadline - ((long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        if (left <= 0) fail_msg("no line from the fixture in time (got \"%.*s\")", (int)len, out);
        struct pollfd pfd = {proc->out_fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        char c;
        ssize_t n = read(proc->out_fd, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail_msg("the fixture exited (got \"%.*s\")", (int)len, out);
        if (c == '\n') break;
        if (len + 1 < cap) out[len++] = c;
    }
    out[len] = '\0';
}

static uint64_t word(au_memsrc *m, uint64_t addr) {
    uint64_t v = 0;
    assert_int_equal(au_mem_read1(m, addr, &v, 8), AU_OK);
    return v;
}

/* The header of the live process's agent region, and the pairs of the
 * list it names (n of them; the list may not be the agent's: then 0). */
static size_t read_pairs(int pid, au_agent_header *hdr, au_agent_pair *out, size_t cap) {
    au_memsrc *m;
    au_pyruntime rt;
    static uint64_t items[MAX_ITEMS];
    assert_int_equal(au_memsrc_live_open(NULL, pid, &m), AU_OK);
    assert_int_equal(au_pyruntime_find(NULL, pid, m, &rt), AU_OK);
    assert_int_equal(au_pyruntime_find_asyncio(NULL, pid, &rt), AU_OK);
    assert_true(rt.agent_addr != 0);
    uint8_t head[AU_AGENT_HEADER_SIZE];
    assert_int_equal(au_mem_read1(m, rt.agent_addr, head, sizeof head), AU_OK);
    assert_int_equal(au_agent_parse_header(head, sizeof head, hdr), AU_OK);
    uint64_t size = word(m, hdr->list + LIST_SIZE_OFFSET);
    uint64_t base = word(m, hdr->list + LIST_ITEM_OFFSET);
    assert_true(size <= MAX_ITEMS);
    assert_int_equal(au_mem_read1(m, base, items, (uint32_t)(8 * size)), AU_OK);
    size_t n = 0;
    int rc = au_agent_pairs(items, size, hdr->list, out, cap, &n, NULL);
    assert_true(rc == AU_OK || rc == AU_ERR_CORRUPT);
    au_memsrc_destroy(m);
    return n;
}

/* The referent of the weakref at ref. */
static uint64_t referent(int pid, uint64_t ref) {
    au_memsrc *m;
    assert_int_equal(au_memsrc_live_open(NULL, pid, &m), AU_OK);
    uint64_t v = word(m, ref + WR_OBJECT_OFFSET);
    au_memsrc_destroy(m);
    return v;
}

/* A sample of the fixture: "reused" must be a root.  Returns its address
 * and Task-1's. */
static void expect_root(const py_interp *p, au_sampler *s, const char *state, uint64_t *reused_id,
                        uint64_t *main_id) {
    const au_sample *smp;
    assert_int_equal(au_sampler_sample(s, &smp), AU_OK);
    const au_sample_task *reused = task_named(smp, "reused");
    const au_sample_task *main_task = task_named(smp, "Task-1");
    assert_non_null(reused);
    assert_non_null(main_task);
    if (reused->parent != UINT32_MAX || reused->link != AU_LINK_NONE) {
        fprintf(stderr, "%s: %s: \"reused\" inherited a parent (link %u)\n", p->name, state,
                reused->link);
        fail();
    }
    *reused_id = reused->id;
    *main_id = main_task->id;
}

static void run(const py_interp *p) {
    static const char *const env[] = {"PYTHONDONTWRITEBYTECODE=1", NULL};
    py_spawn_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.env = env;
    opts.agent_dir = "agent";
    py_proc proc;
    if (py_spawn_fixture_opts(p, "python_fixtures/address_reuse.py", NULL, &opts, &proc) != 0) {
        fprintf(stderr, "%s: %s\n", p->name, proc.error);
        fail();
    }
    char line[256];
    unsigned long long task_ref, creator_ref, dead;
    read_line(&proc, line, sizeof line);
    if (sscanf(line, "STALE %llx %llx %llx", &task_ref, &creator_ref, &dead) != 3)
        fail_msg("%s: expected STALE, got \"%s\"", p->name, line);
    py_wait_sleeping(&proc, 10000);
    au_sampler *s;
    assert_int_equal(au_sampler_open_pid(NULL, proc.pid, NULL, &s), AU_OK);

    /* 1. A pair whose task weakref is dead, a new task at its address. */
    uint64_t reused_id, main_id;
    expect_root(p, s, "stale pair", &reused_id, &main_id);
    assert_true(reused_id == dead);
    static au_agent_pair pairs[MAX_ITEMS / 2];
    au_agent_header hdr;
    size_t n = read_pairs(proc.pid, &hdr, pairs, MAX_ITEMS / 2);
    int stale = 0;
    for (size_t i = 0; i < n; i++)
        if (pairs[i].task_ref == task_ref && pairs[i].creator_ref == creator_ref) stale = 1;
    if (!stale) fail_msg("%s: the stale pair is not in the list the header names", p->name);
    assert_true(referent(proc.pid, creator_ref) == main_id);
    assert_true(referent(proc.pid, task_ref) != reused_id); /* None */

    /* 2. The header names memory that is not the agent's list. */
    assert_int_equal(kill(proc.pid, SIGUSR1), 0);
    unsigned long long foreign;
    read_line(&proc, line, sizeof line);
    if (sscanf(line, "FOREIGN %llx", &foreign) != 1)
        fail_msg("%s: expected FOREIGN, got \"%s\"", p->name, line);
    py_wait_sleeping(&proc, 10000);
    expect_root(p, s, "foreign list", &reused_id, &main_id);
    n = read_pairs(proc.pid, &hdr, pairs, MAX_ITEMS / 2);
    assert_true(hdr.list == foreign);
    assert_int_equal(n, 0);
    au_sampler_free(s);
    py_kill(&proc);
    fprintf(stderr, "  %s: the stale pair and the foreign list were refused\n", p->name);
}

static void test_reused_address_gets_no_creator(void **state) {
    (void)state;
    size_t n;
    const py_interp *all = py_interpreters(&n);
    for (size_t i = 0; i < n; i++) {
        if (py_require_status(&all[i]) == PY_SKIP) continue;
        if (py_require_status(&all[i]) == PY_FAIL) fail_msg("%s is missing and CI=true", all[i].name);
        run(&all[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reused_address_gets_no_creator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
