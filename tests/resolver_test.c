/*
 * Unit tests of the link resolver against docs/RESOLVER.md.  Every test
 * builds a graph, resolves it and asserts the exact stacks produced.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "asyncunwind.h"
#include "graph_builder.h"

/* The event loop as a thread sees it while idle, and the prefix of it that
 * sits below any task. */
#define LOOP "main;run;run_until_complete;run_forever;_run_once"
#define IDLE LOOP ";select"

static char out_buf[16384];

/* A fresh resolver with libc's allocator; construction must succeed. */
static au_resolver *new_resolver(const au_resolver_limits *lim) {
    au_resolver *r = NULL;
    assert_int_equal(au_resolver_new(NULL, lim, &r), AU_OK);
    assert_non_null(r);
    return r;
}

/* Resolve g with a fresh resolver (limits may be NULL) and render each
 * stack at most cap entries long. */
static const char *resolve_cap(gb_graph *g, const au_resolver_limits *lim, uint32_t cap,
                               au_resolver_stats *stats) {
    au_resolver *r = new_resolver(lim);
    au_stacks st;
    assert_int_equal(au_resolve(r, &g->sample, &st), AU_OK);
    gb_render(g, r, &st, cap, out_buf, sizeof out_buf);
    if (stats) au_resolver_get_stats(r, stats);
    au_resolver_free(r);
    return out_buf;
}

static const char *resolve_with(gb_graph *g, const au_resolver_limits *lim,
                                au_resolver_stats *stats) {
    return resolve_cap(g, lim, 4096, stats);
}

static const char *resolve(gb_graph *g) { return resolve_with(g, NULL, NULL); }

/* The motivating program: parent() creates two tasks and awaits
 * only one of them. */
static void seed_graph(gb_graph *g, int weak_links) {
    gb_init(g);
    gb_thread(g, IDLE);
    gb_task(g, 0x10, "Task-1", "parent")->awaits = 0x30;
    au_task *na = gb_task(g, 0x20, "Task-not_awaited", "func_not_awaited;sleep");
    au_task *aw = gb_task(g, 0x30, "Task-awaited", "func_awaited;sleep");
    if (weak_links) na->creator = aw->creator = 0x10;
}

static void test_seed_without_weak_links(void **state) {
    (void)state;
    gb_graph g;
    seed_graph(&g, 0);
    assert_string_equal(resolve(&g),
        "Task-not_awaited: " IDLE ";[Task-not_awaited];func_not_awaited;sleep\n"
        "Task-awaited: " IDLE ";[Task-1];parent;[Task-awaited];func_awaited;sleep");
}

static void test_seed_with_weak_links(void **state) {
    (void)state;
    gb_graph g;
    seed_graph(&g, 1);
    assert_string_equal(resolve(&g),
        "Task-not_awaited: " IDLE ";[Task-1];parent;[Task-not_awaited];func_not_awaited;sleep\n"
        "Task-awaited: " IDLE ";[Task-1];parent;[Task-awaited];func_awaited;sleep");
}

/* Created by A, awaited by B: the await link wins. */
static void test_created_by_a_awaited_by_b(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, IDLE);
    gb_task(&g, 1, "A", "a_main;a_sleep");
    gb_task(&g, 2, "B", "b_main")->awaits = 3;
    gb_task(&g, 3, "C", "c_work")->creator = 1;
    assert_string_equal(resolve(&g),
        "A: " IDLE ";[A];a_main;a_sleep\n"
        "C: " IDLE ";[B];b_main;[C];c_work");
}

/* A creator that finished is absent from the sample: the task is a root. */
static void test_creator_finished(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, IDLE);
    gb_task(&g, 5, "orphan", "work")->creator = 99;
    au_resolver_stats st;
    assert_string_equal(resolve_with(&g, NULL, &st), "orphan: " IDLE ";[orphan];work");
    assert_int_equal(st.links_ignored, 1);
}

/* Strong (gather) beats weak (creator). */
static void test_strong_beats_weak(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, IDLE);
    gb_task(&g, 1, "creator", "spawner");
    gb_task(&g, 2, "gatherer", "gather_main");
    gb_task(&g, 3, "child", "child_work")->creator = 1;
    gb_link(&g, 3, 2);
    assert_string_equal(resolve(&g),
        "creator: " IDLE ";[creator];spawner\n"
        "child: " IDLE ";[gatherer];gather_main;[child];child_work");
}

/* Await beats strong. */
static void test_await_beats_strong(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, IDLE);
    gb_task(&g, 1, "gatherer", "g");
    gb_task(&g, 2, "awaiter", "w")->awaits = 3;
    gb_task(&g, 3, "child", "c");
    gb_link(&g, 3, 1);
    /* The gatherer waits on a child that went under the awaiter: it is a
     * stranded waiter and keeps a stack of its own. */
    assert_string_equal(resolve(&g),
        "gatherer: " IDLE ";[gatherer];g\n"
        "child: " IDLE ";[awaiter];w;[child];c");
}

/* au_resolver_link names the level that gave each parent: an await link
 * over a strong and a weak one on the same child, a strong link over a
 * weak one, a weak link alone, and none for roots, ignored tasks and
 * indices out of range. */
static void test_link_kinds(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, IDLE);
    gb_task(&g, 1, "root", "r");                    /* 0 */
    gb_task(&g, 2, "awaiter", "w")->awaits = 4;     /* 1 */
    gb_task(&g, 3, "holder", "h");                  /* 2 */
    gb_task(&g, 4, "awaited", "a")->creator = 3;    /* 3: await > strong > weak */
    gb_task(&g, 5, "held", "x")->creator = 1;       /* 4: strong > weak */
    gb_task(&g, 6, "created", "c")->creator = 1;    /* 5: weak */
    gb_task(&g, 7, "dup", "d");                     /* 6 and 7: ignored */
    gb_task(&g, 7, "dup", "d")->creator = 1;
    gb_link(&g, 4, 3);
    gb_link(&g, 5, 3);
    au_resolver *r = new_resolver(NULL);
    au_stacks st;
    assert_int_equal(au_resolve(r, &g.sample, &st), AU_OK);
    const uint32_t want[] = {AU_LINK_NONE, AU_LINK_NONE, AU_LINK_NONE, AU_LINK_AWAIT,
                             AU_LINK_STRONG, AU_LINK_WEAK, AU_LINK_NONE, AU_LINK_NONE};
    for (uint32_t i = 0; i < 8; i++) assert_int_equal(au_resolver_link(r, i), want[i]);
    assert_int_equal(au_resolver_parent(r, 3), 1);
    assert_int_equal(au_resolver_parent(r, 4), 2);
    assert_int_equal(au_resolver_parent(r, 5), 0);
    assert_int_equal(au_resolver_link(r, 8), AU_LINK_NONE);
    assert_int_equal(au_resolver_link(r, UINT32_MAX), AU_LINK_NONE);
    assert_int_equal(au_resolver_link(NULL, 0), AU_LINK_NONE);
    au_resolver_free(r);
}

/* Several awaiters: the creator wins, else the lowest id. */
static void test_await_tie_break(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, "select");
    gb_task(&g, 9, "w9", "f9")->awaits = 1;
    gb_task(&g, 7, "w7", "f7")->awaits = 1;
    gb_task(&g, 8, "w8", "f8")->awaits = 1;
    gb_task(&g, 1, "t", "ft");
    assert_string_equal(resolve(&g),
        "t: select;[w7];f7;[t];ft\n"
        "w8: select;[w8];f8\n"
        "w9: select;[w9];f9");
    g.tasks[3].creator = 9;
    assert_string_equal(resolve(&g),
        "t: select;[w9];f9;[t];ft\n"
        "w7: select;[w7];f7\n"
        "w8: select;[w8];f8");
}

static void test_strong_tie_break(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, "select");
    gb_task(&g, 4, "t", "ft");
    gb_task(&g, 30, "p30", "f30");
    gb_task(&g, 20, "p20", "f20");
    gb_link(&g, 4, 30);
    gb_link(&g, 4, 20);
    assert_string_equal(resolve(&g),
        "t: select;[p20];f20;[t];ft\n"
        "p30: select;[p30];f30");
    g.tasks[0].creator = 30;
    assert_string_equal(resolve(&g),
        "t: select;[p30];f30;[t];ft\n"
        "p20: select;[p20];f20");
}

/* A creator that is not waiting is a leaf for its own frames too. */
static void test_creator_is_still_a_leaf(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, IDLE);
    gb_task(&g, 1, "server", "serve;accept");
    gb_task(&g, 2, "conn", "handle;recv")->creator = 1;
    assert_string_equal(resolve(&g),
        "server: " IDLE ";[server];serve;accept\n"
        "conn: " IDLE ";[server];serve;accept;[conn];handle;recv");
}

/* The running task is spliced by frame identity; its synchronous frames
 * belong to it alone and idle leaves sit on the loop below the boundary. */
static void test_running_splice(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, LOOP ";_run;coro_a;coro_b;compute;hash");
    au_task *a = gb_task(&g, 1, "A", "coro_a;coro_b");
    a->flags = AU_TASK_RUNNING;
    gb_task(&g, 2, "idle", "coro_i;sleep");
    au_resolver_stats st;
    assert_string_equal(resolve_with(&g, NULL, &st),
        "A (running): " LOOP ";_run;[A];coro_a;coro_b;compute;hash\n"
        "idle: " LOOP ";_run;[idle];coro_i;sleep");
    assert_int_equal(st.running_ignored, 0);
}

/* The splice uses the thread's frames from the boundary on, even when the
 * task's own chain (read at another moment) says something else. */
static void test_running_uses_thread_frames(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, LOOP ";coro_a;coro_c;sync");
    gb_task(&g, 1, "A", "coro_a;coro_b_stale")->flags = AU_TASK_RUNNING;
    assert_string_equal(resolve(&g), "A (running): " LOOP ";[A];coro_a;coro_c;sync");
}

/* A running flag the thread stack does not confirm is ignored. */
static void test_running_flag_unconfirmed(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, IDLE);
    gb_task(&g, 1, "A", "coro_a")->flags = AU_TASK_RUNNING;
    gb_task(&g, 2, "B", "")->flags = AU_TASK_RUNNING;
    au_resolver_stats st;
    assert_string_equal(resolve_with(&g, NULL, &st),
        "A: " IDLE ";[A];coro_a\n"
        "B: " IDLE ";[B]");
    assert_int_equal(st.running_ignored, 2);
}

/* Two confirmed running tasks (a nested loop): the outermost splice wins. */
static void test_two_running_outermost_wins(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, "main;outer_coro;run_until_complete;inner_coro;sync");
    gb_task(&g, 1, "inner", "inner_coro")->flags = AU_TASK_RUNNING;
    gb_task(&g, 2, "outer", "outer_coro")->flags = AU_TASK_RUNNING;
    au_resolver_stats st;
    assert_string_equal(resolve_with(&g, NULL, &st),
        "inner: main;[inner];inner_coro\n"
        "outer (running): main;[outer];outer_coro;run_until_complete;inner_coro;sync");
    assert_int_equal(st.running_ignored, 1);
}

/* A running TaskGroup parent with children: the parent still gets its own
 * (running) stack, and the children sit under its coroutine frames. */
static void test_running_parent_with_children(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, LOOP ";tg_main;spawn_more");
    gb_task(&g, 1, "tg", "tg_main")->flags = AU_TASK_RUNNING;
    gb_task(&g, 2, "c1", "work");
    gb_task(&g, 3, "c2", "work");
    gb_link(&g, 2, 1);
    gb_link(&g, 3, 1);
    assert_string_equal(resolve(&g),
        "tg (running): " LOOP ";[tg];tg_main;spawn_more\n"
        "c1: " LOOP ";[tg];tg_main;[c1];work\n"
        "c2: " LOOP ";[tg];tg_main;[c2];work");
}

/* A awaits B awaits A: a deadlock.  Neither is a leaf, yet it shows. */
static void test_pure_cycle_shows(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, IDLE);
    gb_task(&g, 2, "B", "fb")->awaits = 1;
    gb_task(&g, 1, "A", "fa")->awaits = 2;
    au_resolver_stats st;
    assert_string_equal(resolve_with(&g, NULL, &st),
        "A (cycle): " IDLE ";<cycle:A>;[B];fb;[A];fa");
    assert_int_equal(st.cycles, 1);
}

/* A cycle with a task hanging below it: the chain is cut where it closes. */
static void test_cycle_with_tail(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, "select");
    gb_task(&g, 1, "A", "fa")->awaits = 2;
    gb_task(&g, 2, "B", "fb")->awaits = 1;
    gb_task(&g, 3, "C", "fc")->creator = 1;
    assert_string_equal(resolve(&g), "C (cycle): select;<cycle:A>;[B];fb;[A];fa;[C];fc");
}

static void test_self_links_unknown_and_duplicate_ids(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, "select");
    au_task *a = gb_task(&g, 1, "A", "fa");
    a->awaits = 1;  /* self */
    a->creator = 77; /* unknown */
    gb_link(&g, 1, 1);
    gb_task(&g, 5, "dup1", "x")->awaits = 1;
    gb_task(&g, 5, "dup2", "y");
    gb_task(&g, 0, "zero", "z");
    gb_task(&g, 6, "C", "fc")->creator = 5; /* names an ambiguous id */
    au_resolver_stats st;
    assert_string_equal(resolve_with(&g, NULL, &st),
        "A: select;[A];fa\n"
        "C: select;[C];fc");
    assert_int_equal(st.tasks_ignored, 3);
    assert_int_equal(st.links_ignored, 4);
}

static void test_no_tasks_thread_only(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, "main;worker;compute");
    assert_string_equal(resolve(&g), "(thread): main;worker;compute");
    gb_thread(&g, "");
    assert_string_equal(resolve(&g), "");
}

static void test_depth_bound(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, "select");
    static const char *names[] = {"t0", "t1", "t2", "t3", "t4", "t5"};
    for (uint64_t i = 0; i < 6; i++) gb_task(&g, i + 1, names[i], "f")->awaits = i + 2;
    g.tasks[5].awaits = 0;
    au_resolver_limits lim = {.max_depth = 3};
    au_resolver_stats st;
    /* t5 is the leaf (awaited by t4, which is awaited by t3, ...). */
    assert_string_equal(resolve_with(&g, &lim, &st), "t5 (depth): select;...;[t3];f;[t4];f;[t5];f");
    assert_int_equal(st.truncated, 1);
}

/* Writing a stack out: longer than the buffer, it keeps its root side and
 * ends in the marker; cap 0 measures it. */
static void test_entries_cap_keeps_root_side(void **state) {
    (void)state;
    gb_graph g;
    gb_init(&g);
    gb_thread(&g, "m;r;s");
    gb_task(&g, 1, "A", "a1;a2;a3;a4");
    assert_string_equal(resolve_cap(&g, NULL, 6, NULL), "A (frames): m;r;s;[A];a1;...");
    assert_string_equal(resolve_cap(&g, NULL, 8, NULL), "A: m;r;s;[A];a1;a2;a3;a4");
    assert_string_equal(resolve_cap(&g, NULL, 7, NULL), "A (frames): m;r;s;[A];a1;a2;...");
    assert_string_equal(resolve_cap(&g, NULL, 1, NULL), "A (frames): ...");
    au_resolver *r = new_resolver(NULL);
    au_stacks st;
    assert_int_equal(au_resolve(r, &g.sample, &st), AU_OK);
    assert_int_equal(au_stack_entries(r, &st.stacks[0], NULL, 0), 8);
    au_entry buf[8];
    memset(buf, 0xab, sizeof buf);
    assert_int_equal(au_stack_entries(r, &st.stacks[0], buf, 2), 8);
    assert_int_equal(buf[0].kind, AU_ENTRY_FRAME);
    assert_int_equal(buf[1].kind, AU_ENTRY_TRUNCATED);
    assert_int_equal(buf[2].kind, 0xabababab); /* nothing past cap */
    assert_int_equal(au_resolver_parent(r, 0), UINT32_MAX);
    assert_int_equal(au_resolver_parent(r, 7), UINT32_MAX);
    au_resolver_free(r);
}

/* An allocator that always refuses. */
static void *refusing_realloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    (void)ud, (void)ptr, (void)old_size, (void)new_size;
    return NULL;
}

/* The constructor contract every au_*_new shares: a status, and *out NULL
 * on any error, so a host can free unconditionally. */
static void test_constructor_contract(void **state) {
    (void)state;
    assert_int_equal(au_resolver_new(NULL, NULL, NULL), AU_ERR_ARG);
    au_allocator refuse = {refusing_realloc, NULL};
    au_resolver *r = (au_resolver *)&refuse; /* anything but NULL */
    assert_int_equal(au_resolver_new(&refuse, NULL, &r), AU_ERR_NOMEM);
    assert_null(r);
    au_resolver_free(r);
}

static void test_invalid_arguments(void **state) {
    (void)state;
    au_resolver *r = new_resolver(NULL);
    au_stacks st;
    au_thread_sample s = {0};
    assert_int_equal(au_resolve(NULL, &s, &st), AU_ERR_ARG);
    assert_int_equal(au_resolve(r, NULL, &st), AU_ERR_ARG);
    assert_int_equal(au_resolve(r, &s, NULL), AU_ERR_ARG);
    s.ntasks = 1;
    assert_int_equal(au_resolve(r, &s, &st), AU_ERR_ARG);
    au_task t = {.id = 1, .nframes = 2};
    s.tasks = &t;
    assert_int_equal(au_resolve(r, &s, &st), AU_ERR_ARG);
    t.nframes = 0;
    assert_int_equal(au_resolve(r, &s, &st), AU_OK);
    assert_int_equal(st.nstacks, 1);
    au_resolver_free(r);
    au_resolver_limits lim = {.max_tasks = 1};
    r = new_resolver(&lim);
    au_task two[2] = {{.id = 1}, {.id = 2}};
    s.tasks = two;
    s.ntasks = 2;
    assert_int_equal(au_resolve(r, &s, &st), AU_ERR_LIMIT);
    au_resolver_free(r);
    /* Whatever the limit, 2^28 tasks is the most (the id table's bound),
     * refused before anything is read or sized. */
    lim.max_tasks = UINT32_MAX;
    r = new_resolver(&lim);
    s.ntasks = (1u << 28) + 1; /* s.tasks is too short: it must not be read */
    assert_int_equal(au_resolve(r, &s, &st), AU_ERR_LIMIT);
    au_resolver_stats stats;
    au_resolver_get_stats(r, &stats);
    assert_int_equal(stats.allocations, 0);
    au_resolver_free(r);
    assert_string_equal(au_status_str(AU_ERR_LIMIT), "input exceeds a configured limit");
}

/* ---- large shapes: bounded, linear, and determinism under permutation --- */

typedef struct big {
    au_task *tasks;
    au_link *links;
    uint64_t frames[4];
    au_thread_sample s;
} big;

static void big_alloc(big *b, uint32_t n, uint32_t nlinks) {
    memset(b, 0, sizeof *b);
    b->tasks = calloc(n, sizeof *b->tasks);
    b->links = calloc(nlinks ? nlinks : 1, sizeof *b->links);
    assert_non_null(b->tasks);
    for (int k = 0; k < 4; k++) b->frames[k] = 1000 + (uint64_t)k;
    b->s = (au_thread_sample){b->frames, 4, n, b->tasks, b->links, nlinks};
    for (uint32_t i = 0; i < n; i++) {
        b->tasks[i].id = 0x7f0000000000ull + 64ull * (i + 1);
        b->tasks[i].frames = &b->frames[3];
        b->tasks[i].nframes = 1;
    }
}

static void big_free(big *b) {
    free(b->tasks);
    free(b->links);
}

static void test_chain_of_100k(void **state) {
    (void)state;
    big b;
    big_alloc(&b, 100000, 0);
    for (uint32_t i = 0; i + 1 < 100000; i++) b.tasks[i].awaits = b.tasks[i + 1].id;
    au_resolver *r = new_resolver(NULL);
    au_stacks st;
    assert_int_equal(au_resolve(r, &b.s, &st), AU_OK);
    assert_int_equal(st.nstacks, 1);
    assert_int_equal(st.stacks[0].leaf_id, b.tasks[99999].id);
    assert_int_equal(st.stacks[0].flags, AU_STACK_TRUNCATED_DEPTH);
    assert_int_equal(st.stacks[0].ntasks, AU_DEFAULT_MAX_DEPTH);
    /* 4 thread frames, the depth marker, then the 1024 tasks nearest the
     * leaf, each a marker and one frame. */
    static au_entry e[4 + 1 + 2 * AU_DEFAULT_MAX_DEPTH];
    assert_int_equal(au_stack_entries(r, &st.stacks[0], e, 4 + 1 + 2 * AU_DEFAULT_MAX_DEPTH),
                     4 + 1 + 2 * AU_DEFAULT_MAX_DEPTH);
    assert_int_equal(e[4].kind, AU_ENTRY_TRUNCATED);
    assert_int_equal(e[5].id, b.tasks[99999 - 1023].id);
    assert_int_equal(e[4 + 2 * AU_DEFAULT_MAX_DEPTH - 1].id, b.tasks[99999].id);
    /* Close the chain into a 100k cycle: one stack, the deadlock shows. */
    b.tasks[99999].awaits = b.tasks[0].id;
    assert_int_equal(au_resolve(r, &b.s, &st), AU_OK);
    assert_int_equal(st.nstacks, 1);
    assert_int_equal(st.stacks[0].leaf_id, b.tasks[0].id);
    au_resolver_free(r);
    big_free(&b);
}

static void test_fan_out_of_100k(void **state) {
    (void)state;
    big b;
    big_alloc(&b, 100001, 100000);
    for (uint32_t i = 0; i < 100000; i++) b.links[i] = (au_link){b.tasks[i + 1].id, b.tasks[0].id};
    au_resolver *r = new_resolver(NULL);
    au_stacks st;
    assert_int_equal(au_resolve(r, &b.s, &st), AU_OK);
    assert_int_equal(st.nstacks, 100000);
    size_t total = 0;
    au_entry e[16];
    for (uint32_t k = 0; k < st.nstacks; k++) {
        total += au_stack_entries(r, &st.stacks[k], e, 16);
        if (k) assert_true(st.stacks[k].leaf_id > st.stacks[k - 1].leaf_id);
        assert_int_equal(e[4].id, b.tasks[0].id);
        assert_int_equal(e[6].id, st.stacks[k].leaf_id);
    }
    assert_int_equal(total, 100000u * 8); /* 4 thread + 2 x (marker + frame) */
    au_resolver_free(r);
    big_free(&b);
}

/* Allocation counting through the public allocator hook. */
typedef struct counter { uint64_t allocs, live; } counter;

static void *counting_realloc(void *ud, void *p, size_t old, size_t n) {
    counter *c = ud;
    (void)old;
    if (n == 0) {
        c->live--;
        free(p);
        return NULL;
    }
    c->allocs++;
    if (!p) c->live++;
    return realloc(p, n);
}

static void fill_random(big *b, uint32_t n, uint32_t seed) {
    uint32_t x = seed;
    for (uint32_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        uint32_t a = (x >> 8) % n, c = (x >> 4) % (n + 5);
        b->tasks[i].awaits = (x & 3) == 0 ? b->tasks[a].id : 0;
        b->tasks[i].creator = c < n ? b->tasks[c].id : 12345;
        b->tasks[i].flags = i == n / 2 ? AU_TASK_RUNNING : 0;
        b->links[i] = (au_link){b->tasks[(x >> 12) % n].id, b->tasks[(x >> 20) % n].id};
    }
    b->tasks[n / 2].frames = &b->frames[2]; /* running: spliced at frame 2 */
}

static void test_zero_allocations_when_warm(void **state) {
    (void)state;
    big b;
    big_alloc(&b, 4096, 4096);
    fill_random(&b, 4096, 7);
    counter c = {0, 0};
    au_allocator alloc = {counting_realloc, &c};
    au_resolver *r = NULL;
    assert_int_equal(au_resolver_new(&alloc, NULL, &r), AU_OK);
    au_stacks st;
    au_resolver_stats stats;
    assert_int_equal(au_resolve(r, &b.s, &st), AU_OK);
    au_resolver_get_stats(r, &stats);
    assert_true(stats.allocations > 0);
    /* Warm up on a set of graphs of this size; then resolving any of them
     * again allocates nothing. */
    for (uint32_t seed = 8; seed < 16; seed++) {
        fill_random(&b, 4096, seed);
        assert_int_equal(au_resolve(r, &b.s, &st), AU_OK);
    }
    uint64_t before = c.allocs;
    for (uint32_t seed = 15; seed >= 8; seed--) {
        fill_random(&b, 4096, seed);
        assert_int_equal(au_resolve(r, &b.s, &st), AU_OK);
        au_resolver_get_stats(r, &stats);
        assert_int_equal(stats.allocations, 0);
    }
    /* A smaller sample after a large one: still none. */
    b.s.ntasks = 100;
    b.s.nlinks = 0;
    assert_int_equal(au_resolve(r, &b.s, &st), AU_OK);
    assert_int_equal(c.allocs, before);
    au_resolver_free(r);
    assert_int_equal(c.live, 0); /* everything given back */
    big_free(&b);
}

/* Render stacks by ids only (indices differ between permutations). */
static uint64_t digest(const au_resolver *r, const au_stacks *st) {
    uint64_t h = 1469598103934665603ull;
    static au_entry buf[8192];
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
    for (uint32_t k = 0; k < st->nstacks; k++) {
        MIX(st->stacks[k].leaf_id);
        MIX(st->stacks[k].flags);
        uint64_t n = au_stack_entries(r, &st->stacks[k], buf, 8192);
        MIX(n);
        for (uint32_t e = 0; e < n && e < 8192; e++) {
            MIX(buf[e].kind);
            MIX(buf[e].id);
        }
    }
#undef MIX
    return h;
}

static void test_determinism_under_permutation(void **state) {
    (void)state;
    big b;
    big_alloc(&b, 2000, 2000);
    au_resolver *r = new_resolver(NULL);
    au_stacks st;
    for (uint32_t seed = 1; seed <= 5; seed++) {
        fill_random(&b, 2000, seed);
        assert_int_equal(au_resolve(r, &b.s, &st), AU_OK);
        uint64_t want = digest(r, &st);
        au_resolver_stats s0;
        au_resolver_get_stats(r, &s0);
        uint32_t x = seed * 2654435761u;
        for (int round = 0; round < 3; round++) {
            for (uint32_t i = 1999; i > 0; i--) { /* Fisher-Yates */
                x = x * 1664525u + 1013904223u;
                uint32_t j = (x >> 8) % (i + 1);
                au_task t = b.tasks[i];
                b.tasks[i] = b.tasks[j];
                b.tasks[j] = t;
                au_link l = b.links[i];
                b.links[i] = b.links[j];
                b.links[j] = l;
            }
            assert_int_equal(au_resolve(r, &b.s, &st), AU_OK);
            assert_int_equal(digest(r, &st), want);
            au_resolver_stats s1;
            au_resolver_get_stats(r, &s1);
            assert_memory_equal(&s0.tasks_ignored, &s1.tasks_ignored,
                                sizeof s0 - offsetof(au_resolver_stats, tasks_ignored));
        }
    }
    au_resolver_free(r);
    big_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_without_weak_links),
        cmocka_unit_test(test_link_kinds),
        cmocka_unit_test(test_seed_with_weak_links),
        cmocka_unit_test(test_created_by_a_awaited_by_b),
        cmocka_unit_test(test_creator_finished),
        cmocka_unit_test(test_strong_beats_weak),
        cmocka_unit_test(test_await_beats_strong),
        cmocka_unit_test(test_await_tie_break),
        cmocka_unit_test(test_strong_tie_break),
        cmocka_unit_test(test_creator_is_still_a_leaf),
        cmocka_unit_test(test_running_splice),
        cmocka_unit_test(test_running_uses_thread_frames),
        cmocka_unit_test(test_running_flag_unconfirmed),
        cmocka_unit_test(test_two_running_outermost_wins),
        cmocka_unit_test(test_running_parent_with_children),
        cmocka_unit_test(test_pure_cycle_shows),
        cmocka_unit_test(test_cycle_with_tail),
        cmocka_unit_test(test_self_links_unknown_and_duplicate_ids),
        cmocka_unit_test(test_no_tasks_thread_only),
        cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_entries_cap_keeps_root_side),
        cmocka_unit_test(test_constructor_contract),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_chain_of_100k),
        cmocka_unit_test(test_fan_out_of_100k),
        cmocka_unit_test(test_zero_allocations_when_warm),
        cmocka_unit_test(test_determinism_under_permutation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
