/*
 * A new task at a dead task's address never inherits the dead task's
 * creator (docs/AGENT.md, "Validation"), on every interpreter.
 *
 * python_fixtures/address_reuse.py, started with the agent, leaves in the
 * agent's region a record, whole and with a valid check, that names the
 * address of a live task ("reused") and a creator (Task-1) that is live
 * too: the record of a task that died at that address (3.9-3.13 really
 * reuse the memory; 3.14+ do not, and the fixture writes the record such a
 * reuse leaves).  Only the record's weakref, which refers to None since
 * its task died, tells it apart from a true one.  The test checks that the
 * record is there and would have given Task-1, and that the sampler shows
 * "reused" as a root.
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

#include <cmocka.h>

#include "agent_region.h"
#include "asyncunwind.h"
#include "pythons.h"

static const au_sample_task *task_named(const au_sample *smp, const char *name) {
    for (uint32_t i = 0; i < smp->ntasks; i++)
        if (smp->tasks[i].name_len == strlen(name) &&
            memcmp(smp->tasks[i].name, name, smp->tasks[i].name_len) == 0)
            return &smp->tasks[i];
    return NULL;
}

/* The records of the live process's agent region. */
static size_t read_records(int pid, au_agent_record *out, size_t cap) {
    au_memsrc *m;
    au_pyruntime rt;
    assert_int_equal(au_memsrc_live_open(NULL, pid, &m), AU_OK);
    assert_int_equal(au_pyruntime_find(NULL, pid, m, &rt), AU_OK);
    assert_int_equal(au_pyruntime_find_asyncio(NULL, pid, &rt), AU_OK);
    assert_true(rt.agent_addr != 0);
    uint8_t head[AU_AGENT_HEADER_SIZE];
    au_agent_header hdr;
    assert_int_equal(au_mem_read1(m, rt.agent_addr, head, sizeof head), AU_OK);
    assert_int_equal(au_agent_parse_header(head, sizeof head, &hdr), AU_OK);
    size_t span = au_agent_region_span(&hdr);
    uint8_t *bytes = malloc(span);
    assert_non_null(bytes);
    assert_int_equal(au_mem_read1(m, rt.agent_addr, bytes, (uint32_t)span), AU_OK);
    size_t n = 0;
    int rc = au_agent_parse(bytes, span, NULL, out, cap, &n, NULL);
    assert_true(rc == AU_OK || rc == AU_ERR_LIMIT);
    free(bytes);
    au_memsrc_destroy(m);
    return n;
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
    py_wait_sleeping(&proc, 10000);
    au_sampler *s;
    const au_sample *smp;
    assert_int_equal(au_sampler_open_pid(NULL, proc.pid, NULL, &s), AU_OK);
    assert_int_equal(au_sampler_sample(s, &smp), AU_OK);
    assert_true(smp->flags & AU_SAMPLE_AGENT);
    const au_sample_task *reused = task_named(smp, "reused");
    const au_sample_task *main_task = task_named(smp, "Task-1");
    assert_non_null(reused);
    assert_non_null(main_task);
    /* The stale record is there, whole, and names both live tasks. */
    static au_agent_record recs[4096];
    size_t n = read_records(proc.pid, recs, 4096);
    int stale = 0;
    for (size_t i = 0; i < n; i++)
        if (recs[i].task == reused->id && recs[i].creator == main_task->id) stale = 1;
    if (!stale) {
        fprintf(stderr, "%s: no record names \"reused\" (0x%llx) and Task-1\n", p->name,
                (unsigned long long)reused->id);
        fail();
    }
    /* It is not believed: "reused" is a root. */
    if (reused->parent != UINT32_MAX || reused->link != AU_LINK_NONE) {
        fprintf(stderr, "%s: \"reused\" inherited a parent (link %u)\n", p->name, reused->link);
        fail();
    }
    au_sampler_free(s);
    py_kill(&proc);
    fprintf(stderr, "  %s: the stale record was refused\n", p->name);
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
