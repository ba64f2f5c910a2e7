/*
 * Unit tests of tests/expect.{h,c}: the expectation format (thread and stack
 * blocks, directives, variants) and the stack matcher, on inline texts.
 * Every test asserts exact results, messages included.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "expect.h"

static ex_file ex;
static char err[16384];

static void parse_ok(const char *text) {
    int rc = ex_parse(text, strlen(text), "t.txt", &ex, err, sizeof err);
    if (rc) fail_msg("%s", err);
}

static const char *parse_err(const char *text) {
    assert_int_equal(ex_parse(text, strlen(text), "t.txt", &ex, err, sizeof err), -1);
    return err;
}

static const ex_line *line_of(uint32_t block, uint32_t k) {
    assert_true(block < ex.nblocks);
    assert_true(k < ex.blocks[block].nlines);
    return &ex.lines[ex.blocks[block].first + k];
}

/* A stack literal: entries separated by '|'. */
typedef struct lit {
    ex_stack s;
    const char *ptrs[512];
    char store[8192];
} lit;

static lit lits[16];

static ex_stack mk(int slot, const char *thread, const char *leaf, const char *entries) {
    lit *l = &lits[slot];
    snprintf(l->store, sizeof l->store, "%s", entries);
    size_t n = 0;
    char *p = l->store;
    while (*p && n < 512) {
        l->ptrs[n++] = p;
        char *bar = strchr(p, '|');
        if (!bar) break;
        *bar = 0;
        p = bar + 1;
    }
    l->s.thread = thread;
    l->s.leaf = leaf;
    l->s.entries = l->ptrs;
    l->s.nentries = n;
    return l->s;
}

static int match(const ex_stack *st, size_t n) { return ex_match_stacks(&ex, st, n, err, sizeof err); }

/* --- parsing ------------------------------------------------------------- */

/* The thread-only format of the existing fixtures parses as before. */
static void test_parse_thread_blocks(void **state) {
    (void)state;
    parse_ok("# comment\n"
             "thread MainThread\n"
             "<module> deep_recursion.py:40\n"
             "descend deep_recursion.py:29 x499\n"
             "\n"
             "  # indented comment\n"
             "thread spawned-*\n"
             "...\n"
             "spin cpu_bound.py:*\n");
    assert_int_equal(ex.nblocks, 2);
    assert_int_equal(ex.nlines, 4);
    assert_int_equal(ex.blocks[0].kind, EX_BLOCK_THREAD);
    assert_string_equal(ex_str(&ex, ex.blocks[0].name), "MainThread");
    assert_int_equal(ex.blocks[0].srcline, 2);
    assert_int_equal(ex.blocks[0].nlines, 2);
    const ex_line *l = line_of(0, 1);
    assert_int_equal(l->kind, EX_FRAME);
    assert_string_equal(ex_str(&ex, l->name), "descend");
    assert_string_equal(ex_str(&ex, l->file), "deep_recursion.py");
    assert_int_equal(l->line, 29);
    assert_int_equal(l->repeat, 499);
    assert_int_equal(l->srcline, 4);
    assert_string_equal(ex_str(&ex, ex.blocks[1].name), "spawned-*");
    assert_int_equal(line_of(1, 0)->kind, EX_ANY);
    assert_int_equal(line_of(1, 1)->line, -1);
    assert_int_equal(line_of(1, 1)->repeat, 1);
    assert_int_equal(ex.requires_major, 0);
    assert_int_equal(ex.requires_mods, 0);
    assert_string_equal(ex.source, "t.txt");
}

static void test_parse_stack_block(void **state) {
    (void)state;
    parse_ok("stack Task-not_awaited\n"
             "on Main*\n"
             "<module> seed.py:44\n"
             "...\n"
             "(cycle -> dead-low)\n"
             "(truncated)\n"
             "[Task-1]\n"
             "outer.<locals>.inner my file.py:12 x2\r\n"
             "[idle-*]\n"
             "stack next leaf with spaces\n"
             "[a]\n");
    assert_int_equal(ex.nblocks, 2);
    const ex_block *b = &ex.blocks[0];
    assert_int_equal(b->kind, EX_BLOCK_STACK);
    assert_string_equal(ex_str(&ex, b->name), "Task-not_awaited");
    assert_string_equal(ex_str(&ex, b->on), "Main*");
    assert_int_equal(b->nlines, 7);
    assert_int_equal(line_of(0, 0)->kind, EX_FRAME);
    assert_int_equal(line_of(0, 1)->kind, EX_ANY);
    assert_int_equal(line_of(0, 2)->kind, EX_CYCLE);
    assert_string_equal(ex_str(&ex, line_of(0, 2)->name), "dead-low");
    assert_int_equal(line_of(0, 3)->kind, EX_TRUNCATED);
    assert_int_equal(line_of(0, 4)->kind, EX_TASK);
    assert_string_equal(ex_str(&ex, line_of(0, 4)->name), "Task-1");
    const ex_line *f = line_of(0, 5);
    assert_string_equal(ex_str(&ex, f->name), "outer.<locals>.inner");
    assert_string_equal(ex_str(&ex, f->file), "my file.py");
    assert_int_equal(f->line, 12);
    assert_int_equal(f->repeat, 2);
    assert_string_equal(ex_str(&ex, line_of(0, 6)->name), "idle-*");
    /* A header starts a block without a blank line; names run to the end. */
    assert_string_equal(ex_str(&ex, ex.blocks[1].name), "next leaf with spaces");
    assert_int_equal(ex.blocks[1].on, 0);
}

static void test_parse_directives(void **state) {
    (void)state;
    char why[128];
    parse_ok("# c\nrequires 3.11\nrequires uvloop\n\nstack x\n[x]\n");
    assert_int_equal(ex.requires_major, 3);
    assert_int_equal(ex.requires_minor, 11);
    assert_int_equal(ex.requires_mods, EX_MOD_UVLOOP);
    assert_int_equal(ex_applies(&ex, 3, 9, EX_MOD_UVLOOP, why, sizeof why), 0);
    assert_string_equal(why, "needs Python 3.11+ (this is 3.9)");
    assert_int_equal(ex_applies(&ex, 3, 14, EX_MOD_ANYIO, why, sizeof why), 0);
    assert_string_equal(why, "needs uvloop");
    assert_int_equal(ex_applies(&ex, 3, 11, EX_MOD_UVLOOP, why, sizeof why), 1);
    assert_string_equal(why, "");
    assert_int_equal(ex_applies(&ex, 4, 0, EX_MOD_UVLOOP | EX_MOD_ANYIO, why, sizeof why), 1);
    parse_ok("requires anyio\nrequires 3.13\nstack x\n[x]\n");
    assert_int_equal(ex.requires_mods, EX_MOD_ANYIO);
    assert_int_equal(ex_applies(&ex, 3, 14, EX_MOD_UVLOOP, why, sizeof why), 0);
    assert_string_equal(why, "needs anyio");
    assert_int_equal(ex_applies(&ex, 3, 13, EX_MOD_ANYIO, why, sizeof why), 1);
    parse_ok("requires 3.12\nstack x\n[x]\n");
    assert_int_equal(ex.requires_mods, 0);
    assert_int_equal(ex_applies(&ex, 3, 12, 0, why, sizeof why), 1);
    assert_int_equal(ex_applies(&ex, 3, 11, EX_MOD_UVLOOP, why, sizeof why), 0);
    assert_string_equal(why, "needs Python 3.12+ (this is 3.11)");
}

static void test_parse_errors(void **state) {
    (void)state;
    assert_string_equal(parse_err("requires 2.7\n"), "t.txt:1: bad directive: requires 2.7");
    assert_string_equal(parse_err("requires\n"), "t.txt:1: bad directive: requires");
    assert_string_equal(parse_err("stack a\n[a]\n\nrequires 3.11\n"),
                        "t.txt:4: directive after a block: requires 3.11");
    assert_string_equal(parse_err("# c\nf a.py:1\n"), "t.txt:2: entry outside a block: f a.py:1");
    assert_string_equal(parse_err("stack a\n[a]\n\n[b]\n"), "t.txt:4: entry outside a block: [b]");
    assert_string_equal(parse_err("stack\n"), "t.txt:1: bad block header: stack");
    assert_string_equal(parse_err("thread \n"), "t.txt:1: bad block header: thread");
    assert_string_equal(parse_err("thread T\non T\n"),
                        "t.txt:2: 'on THREAD' only right after 'stack LEAF': on T");
    assert_string_equal(parse_err("stack a\n[a]\non T\n"),
                        "t.txt:3: 'on THREAD' only right after 'stack LEAF': on T");
    assert_string_equal(parse_err("stack a\non T\non U\n"),
                        "t.txt:3: 'on THREAD' only right after 'stack LEAF': on U");
    assert_string_equal(parse_err("thread T\n[a]\n"),
                        "t.txt:2: a thread block holds frames and '...' only: [a]");
    assert_string_equal(parse_err("thread T\n(truncated)\n"),
                        "t.txt:2: a thread block holds frames and '...' only: (truncated)");
    assert_string_equal(parse_err("stack a\n\tf a.py:1\n"), "t.txt:1: stack a has no task marker");
    assert_string_equal(parse_err("stack a\n[a]\nf\n"), "t.txt:3: bad entry: f");
    assert_string_equal(parse_err("stack a\n[a]\nf a.py\n"), "t.txt:3: bad entry: f a.py");
    assert_string_equal(parse_err("stack a\n[a]\nf a.py:x\n"), "t.txt:3: bad entry: f a.py:x");
    assert_string_equal(parse_err("stack a\n[a]\nf a.py:-1\n"), "t.txt:3: bad entry: f a.py:-1");
    assert_string_equal(parse_err("stack a\n[a]\nf a.py:3 x0\n"), "t.txt:3: bad entry: f a.py:3 x0");
    assert_string_equal(parse_err("stack a\n[a]\n a.py:3\n"), "t.txt:3: bad entry: a.py:3");
    assert_string_equal(parse_err("stack a\n[]\n"), "t.txt:2: bad entry: []");
    assert_string_equal(parse_err("stack a\n[a]\n(cycle -> )\n"), "t.txt:3: bad entry: (cycle -> )");
    /* Limits. */
    static char big[EX_MAX_BLOCKS * 12 + 64];
    size_t at = 0;
    for (int k = 0; k <= EX_MAX_BLOCKS; k++) at += (size_t)sprintf(big + at, "stack a\n[a]\n");
    assert_string_equal(parse_err(big), "t.txt:513: too many blocks: stack a");
}

static void test_parse_limits(void **state) {
    (void)state;
    size_t cap = (EX_MAX_LINES + 2) * 4 + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t at = (size_t)sprintf(text, "thread T\n");
    for (int k = 0; k < EX_MAX_LINES; k++) at += (size_t)sprintf(text + at, "...\n");
    assert_int_equal(ex_parse(text, at, "t.txt", &ex, err, sizeof err), 0);
    assert_int_equal(ex.nlines, EX_MAX_LINES);
    at += (size_t)sprintf(text + at, "...\n");
    assert_int_equal(ex_parse(text, at, "t.txt", &ex, err, sizeof err), -1);
    assert_string_equal(err, "t.txt:4098: too many entries: ...");
    free(text);
    /* Names fill the text pool. */
    size_t name = EX_MAX_TEXT;
    text = malloc(name + 64);
    assert_non_null(text);
    memcpy(text, "thread ", 7);
    memset(text + 7, 'n', name);
    assert_int_equal(ex_parse(text, name + 7, "t.txt", &ex, err, 64), -1);
    assert_int_equal(strlen(err), 63); /* cut to the buffer */
    assert_memory_equal(err, "t.txt:1: too much text: thread nnnnnnnn", 39);
    free(text);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* NAME.noagent.txt when asked and present, else NAME.txt; ".py" is
 * dropped. */
static void test_load_fixture_variants(void **state) {
    (void)state;
    char dir[] = "/tmp/expect_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char a[256], b[256], c[256];
    snprintf(a, sizeof a, "%s/both.txt", dir);
    snprintf(b, sizeof b, "%s/both.noagent.txt", dir);
    snprintf(c, sizeof c, "%s/one.txt", dir);
    write_file(a, "stack agent\n[agent]\n");
    write_file(b, "stack noagent\n[noagent]\n");
    write_file(c, "requires 3.12\nstack one\n[one]\n");
    assert_int_equal(ex_load_fixture(dir, "both.py", 1, &ex, err, sizeof err), 0);
    assert_string_equal(ex_str(&ex, ex.blocks[0].name), "agent");
    assert_string_equal(ex.source, a);
    assert_int_equal(ex.noagent, 0);
    assert_int_equal(ex_load_fixture(dir, "both", 0, &ex, err, sizeof err), 0);
    assert_string_equal(ex_str(&ex, ex.blocks[0].name), "noagent");
    assert_string_equal(ex.source, b);
    assert_int_equal(ex.noagent, 1);
    assert_int_equal(ex_load_fixture(dir, "one", 0, &ex, err, sizeof err), 0);
    assert_string_equal(ex_str(&ex, ex.blocks[0].name), "one");
    assert_int_equal(ex.noagent, 0);
    assert_int_equal(ex.requires_minor, 12);
    assert_int_equal(ex_load_fixture(dir, "none", 1, &ex, err, sizeof err), -1);
    char want[300];
    snprintf(want, sizeof want, "cannot open %s/none.txt", dir);
    assert_string_equal(err, want);
    /* ex_load reports errors with the path. */
    write_file(c, "stack one\n");
    assert_int_equal(ex_load(c, &ex, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: stack one has no task marker", c);
    assert_string_equal(err, want);
    unlink(a);
    unlink(b);
    unlink(c);
    rmdir(dir);
}

/* --- matching ------------------------------------------------------------ */

#define SEED_HEAD "<module> /x/seed.py:44|main /x/seed.py:40|run /py/asyncio/runners.py:44|select /py/selectors.py:469"

static const char *const kSeed =
    "stack Task-not_awaited\n"
    "on MainThread\n"
    "<module> seed.py:44\n"
    "main seed.py:40\n"
    "...\n"
    "[Task-1]\n"
    "parent seed.py:35\n"
    "[Task-not_awaited]\n"
    "func_not_awaited seed.py:24\n"
    "sleep tasks.py:*\n"
    "\n"
    "stack Task-awaited\n"
    "<module> seed.py:44\n"
    "main seed.py:40\n"
    "...\n"
    "[Task-1]\n"
    "parent seed.py:35\n"
    "[Task-awaited]\n"
    "func_awaited seed.py:28\n"
    "sleep tasks.py:*\n";

static void test_match_seed(void **state) {
    (void)state;
    parse_ok(kSeed);
    ex_stack st[2];
    st[0] = mk(0, "MainThread", "Task-awaited",
               SEED_HEAD "|[Task-1]|parent /x/seed.py:35|[Task-awaited]|func_awaited /x/seed.py:28|"
                         "sleep /py/asyncio/tasks.py:652");
    st[1] = mk(1, "MainThread", "Task-not_awaited",
               SEED_HEAD "|[Task-1]|parent /x/seed.py:35|[Task-not_awaited]|func_not_awaited /x/seed.py:24|"
                         "sleep /py/asyncio/tasks.py:652");
    assert_int_equal(match(st, 2), 0);
    assert_string_equal(err, "");
    /* Order does not matter. */
    ex_stack rev[2] = {st[1], st[0]};
    assert_int_equal(match(rev, 2), 0);
}

/* "..." stands for frames only: the stack without weak links does not
 * match the block with them, nor the other way round. */
static void test_match_ellipsis_frames_only(void **state) {
    (void)state;
    parse_ok("stack L\n<module> m.py:1\n...\n[L]\nf m.py:2\n");
    ex_stack st = mk(0, "T", "L", "<module> m.py:1|[Task-1]|parent m.py:9|[L]|f m.py:2");
    assert_int_equal(match(&st, 1), -1);
    st = mk(0, "T", "L", "<module> m.py:1|a b.py:1|b b.py:2|[L]|f m.py:2");
    assert_int_equal(match(&st, 1), 0);
    st = mk(0, "T", "L", "<module> m.py:1|[L]|f m.py:2");
    assert_int_equal(match(&st, 1), 0); /* zero frames */
    st = mk(0, "T", "L", "<module> m.py:1|(truncated)|[L]|f m.py:2");
    assert_int_equal(match(&st, 1), -1);
    st = mk(0, "T", "L", "<module> m.py:1|(cycle -> L)|[L]|f m.py:2");
    assert_int_equal(match(&st, 1), -1);
    /* Leading, trailing, alone. */
    parse_ok("stack L\n...\n[L]\n...\n");
    st = mk(0, "T", "L", "a a.py:1|b a.py:2|[L]|c a.py:3");
    assert_int_equal(match(&st, 1), 0);
    st = mk(0, "T", "L", "[L]");
    assert_int_equal(match(&st, 1), 0);
    st = mk(0, "T", "L", "[L]|[M]");
    assert_int_equal(match(&st, 1), -1);
    parse_ok("thread T\n...\n");
    st = mk(0, "T", NULL, "");
    st.nentries = 0;
    assert_int_equal(match(&st, 1), 0);
}

/* Files compare by basename, lines by number or '*' ("?" only by '*'),
 * names exactly. */
static void test_match_frames(void **state) {
    (void)state;
    parse_ok("stack L\n[L]\nf a.py:7\n");
    ex_stack st = mk(0, "T", "L", "[L]|f /deep/dir/a.py:7");
    assert_int_equal(match(&st, 1), 0);
    st = mk(0, "T", "L", "[L]|f a.py:7");
    assert_int_equal(match(&st, 1), 0);
    st = mk(0, "T", "L", "[L]|f /d/xa.py:7");
    assert_int_equal(match(&st, 1), -1);
    st = mk(0, "T", "L", "[L]|f /d/a.py:70");
    assert_int_equal(match(&st, 1), -1);
    st = mk(0, "T", "L", "[L]|f /d/a.py:07");
    assert_int_equal(match(&st, 1), -1);
    st = mk(0, "T", "L", "[L]|f /d/a.py:?");
    assert_int_equal(match(&st, 1), -1);
    st = mk(0, "T", "L", "[L]|g.f /d/a.py:7");
    assert_int_equal(match(&st, 1), -1);
    st = mk(0, "T", "L", "[L]|f");
    assert_int_equal(match(&st, 1), -1);
    parse_ok("stack L\n[L]\nf a.py:*\n");
    st = mk(0, "T", "L", "[L]|f /d/a.py:?");
    assert_int_equal(match(&st, 1), 0);
    st = mk(0, "T", "L", "[L]|f /my dir/a.py:3");
    assert_int_equal(match(&st, 1), 0);
    /* An entry is a marker only when brackets enclose all of it. */
    parse_ok("stack L\n[L]\n[x] a.py:1\n");
    st = mk(0, "T", "L", "[L]|[x] a.py:1");
    assert_int_equal(match(&st, 1), 0);
}

/* " xN" stands for exactly N identical frames. */
static void test_match_repeat(void **state) {
    (void)state;
    parse_ok("stack deep\n[deep]\ndescend d.py:33 x3\ndescend d.py:35\n");
    ex_stack st = mk(0, "T", "deep", "[deep]|descend d.py:33|descend d.py:33|descend d.py:33|descend d.py:35");
    assert_int_equal(match(&st, 1), 0);
    st = mk(0, "T", "deep", "[deep]|descend d.py:33|descend d.py:33|descend d.py:35");
    assert_int_equal(match(&st, 1), -1);
    st = mk(0, "T", "deep",
            "[deep]|descend d.py:33|descend d.py:33|descend d.py:33|descend d.py:33|descend d.py:35");
    assert_int_equal(match(&st, 1), -1);
    /* Against a 300-deep chain. */
    parse_ok("stack deep\n[deep]\ndescend d.py:33 x299\ndescend d.py:35\n");
    static char chain[300 * 20 + 16];
    size_t at = (size_t)sprintf(chain, "[deep]");
    for (int k = 0; k < 299; k++) at += (size_t)sprintf(chain + at, "|descend d.py:33");
    sprintf(chain + at, "|descend d.py:35");
    st = mk(0, "T", "deep", chain);
    assert_int_equal(st.nentries, 301);
    assert_int_equal(match(&st, 1), 0);
}

/* '*' in leaves, markers, thread names and cycles. */
static void test_match_globs(void **state) {
    (void)state;
    parse_ok("stack idle-*-0\non loop-*\n[Task-1]\n[idle-*-0]\nf a.py:1\n\n"
             "stack c\n(cycle -> *-low)\n[c]\n");
    ex_stack st[3];
    st[0] = mk(0, "loop-alpha", "idle-sleep-0", "[Task-1]|[idle-sleep-0]|f a.py:1");
    st[1] = mk(1, "loop-beta", "idle--0", "[Task-1]|[idle--0]|f a.py:1");
    st[2] = mk(2, "", "c", "(cycle -> dead-low)|[c]");
    assert_int_equal(match(st, 3), 0);
    st[1] = mk(1, "other", "idle-x-0", "[Task-1]|[idle-x-0]|f a.py:1");
    assert_int_equal(match(st, 3), -1);
    st[1] = mk(1, "loop-beta", "idle-x-01", "[Task-1]|[idle-x-01]|f a.py:1");
    assert_int_equal(match(st, 3), -1);
    st[1] = mk(1, "loop-beta", "idle-x-0", "[Task-1]|[idle-y-1]|f a.py:1");
    assert_int_equal(match(st, 3), -1);
    /* A wildcard block may match nothing. */
    assert_int_equal(match(&st[2], 1), 0);
    /* Glob corner cases. */
    parse_ok("stack **a*b*\n[*]\n");
    st[0] = mk(0, "T", "ab", "[]");
    st[1] = mk(1, "T", "xaxxbx", "[anything]");
    st[2] = mk(2, "T", "ba", "[x]");
    assert_int_equal(match(st, 2), 0);
    assert_int_equal(match(st, 3), -1);
}

/* Thread blocks take stacks without tasks; stack blocks stacks with a leaf. */
static void test_match_thread_blocks(void **state) {
    (void)state;
    parse_ok("thread blocker_*\n...\nblocking_work e.py:31\n\nstack w\n[w]\n");
    ex_stack st[3];
    st[0] = mk(0, "blocker_0", NULL, "_bootstrap /t/threading.py:1|blocking_work /x/e.py:31");
    st[1] = mk(1, "blocker_1", NULL, "blocking_work /x/e.py:31");
    st[2] = mk(2, "MainThread", "w", "[w]");
    assert_int_equal(match(st, 3), 0);
    st[2] = mk(2, "blocker_2", "w2", "blocking_work /x/e.py:31");
    assert_int_equal(match(st, 3), -1);
    /* No stack has leaf w: the nearest of all; no block takes leaf w2: the
     * nearest of all (here a thread block, whose frames match). */
    assert_string_equal(err,
                        "stack w (line 5) matches no stack; nearest of all stacks:\n"
                        "  expected (stack w, line 5):\n"
                        "    >    6  [w]\n"
                        "  actual (thread blocker_0 (no tasks)):\n"
                        "    >    0  _bootstrap /t/threading.py:1\n"
                        "         1  blocking_work /x/e.py:31\n"
                        "stack w2 on blocker_2 matches no block; nearest of all blocks:\n"
                        "  expected (thread blocker_*, line 1):\n"
                        "         2  ...\n"
                        "         3  blocking_work e.py:31\n"
                        "    > (end)\n"
                        "  actual (stack w2 on blocker_2):\n"
                        "         0  blocking_work /x/e.py:31\n"
                        "    > (end)\n");
}

/* An exact block matches exactly one stack. */
static void test_match_exact_counts(void **state) {
    (void)state;
    parse_ok("stack L\n[L]\n");
    ex_stack st[6];
    for (int k = 0; k < 6; k++) st[k] = mk(k, "T", "L", "[L]");
    assert_int_equal(match(st, 1), 0);
    assert_int_equal(match(st, 2), -1);
    assert_string_equal(err, "stack L (line 1) matches 2 stacks: stack L on T; stack L on T\n");
    assert_int_equal(match(st, 6), -1);
    assert_string_equal(err,
                        "stack L (line 1) matches 6 stacks: stack L on T; stack L on T; stack L on T; "
                        "stack L on T; and 2 more\n");
    assert_int_equal(match(st, 0), -1);
    assert_string_equal(err, "stack L (line 1) matches no stack\n");
    /* A stack may match several blocks. */
    parse_ok("stack L\n[L]\n\nstack *\n[*]\n");
    assert_int_equal(match(st, 1), 0);
}

/* A stack that no block matches: the diff shows the nearest block (the one
 * with its leaf) and where they part. */
static void test_match_error_diff(void **state) {
    (void)state;
    parse_ok(kSeed);
    ex_stack st[2];
    st[0] = mk(0, "MainThread", "Task-awaited",
               SEED_HEAD "|[Task-1]|parent /x/seed.py:35|[Task-awaited]|func_awaited /x/seed.py:28|"
                         "sleep /py/asyncio/tasks.py:652");
    st[1] = mk(1, "MainThread", "Task-not_awaited",
               SEED_HEAD "|[Task-not_awaited]|func_not_awaited /x/seed.py:24|sleep /py/asyncio/tasks.py:652");
    assert_int_equal(match(st, 2), -1);
    assert_string_equal(err,
                        "stack Task-not_awaited (line 1) matches no stack; nearest:\n"
                        "  expected (stack Task-not_awaited, line 1):\n"
                        "         3  <module> seed.py:44\n"
                        "         4  main seed.py:40\n"
                        "         5  ...\n"
                        "    >    6  [Task-1]\n"
                        "         7  parent seed.py:35\n"
                        "         8  [Task-not_awaited]\n"
                        "         9  func_not_awaited seed.py:24\n"
                        "        10  sleep tasks.py:*\n"
                        "  actual (stack Task-not_awaited on MainThread):\n"
                        "         0  <module> /x/seed.py:44\n"
                        "         1  main /x/seed.py:40\n"
                        "         2  run /py/asyncio/runners.py:44\n"
                        "         3  select /py/selectors.py:469\n"
                        "    >    4  [Task-not_awaited]\n"
                        "         5  func_not_awaited /x/seed.py:24\n"
                        "         6  sleep /py/asyncio/tasks.py:652\n"
                        "stack Task-not_awaited on MainThread matches no block; nearest:\n"
                        "  expected (stack Task-not_awaited, line 1):\n"
                        "         3  <module> seed.py:44\n"
                        "         4  main seed.py:40\n"
                        "         5  ...\n"
                        "    >    6  [Task-1]\n"
                        "         7  parent seed.py:35\n"
                        "         8  [Task-not_awaited]\n"
                        "         9  func_not_awaited seed.py:24\n"
                        "        10  sleep tasks.py:*\n"
                        "  actual (stack Task-not_awaited on MainThread):\n"
                        "         0  <module> /x/seed.py:44\n"
                        "         1  main /x/seed.py:40\n"
                        "         2  run /py/asyncio/runners.py:44\n"
                        "         3  select /py/selectors.py:469\n"
                        "    >    4  [Task-not_awaited]\n"
                        "         5  func_not_awaited /x/seed.py:24\n"
                        "         6  sleep /py/asyncio/tasks.py:652\n");
}

/* The stack runs past the block's end, or ends before it; a stack whose
 * leaf no block names is compared with every block; a nameless thread. */
static void test_match_error_ends(void **state) {
    (void)state;
    parse_ok("stack L\n[L]\nf a.py:1\n\nstack M\n[M]\ng a.py:2\n");
    ex_stack st[2];
    st[0] = mk(0, "T", "L", "[L]|f a.py:1|extra a.py:9");
    st[1] = mk(1, "", "M", "[M]");
    assert_int_equal(match(st, 2), -1);
    assert_string_equal(err,
                        "stack L (line 1) matches no stack; nearest:\n"
                        "  expected (stack L, line 1):\n"
                        "         2  [L]\n"
                        "         3  f a.py:1\n"
                        "    > (end)\n"
                        "  actual (stack L on T):\n"
                        "         0  [L]\n"
                        "         1  f a.py:1\n"
                        "    >    2  extra a.py:9\n"
                        "stack M (line 5) matches no stack; nearest:\n"
                        "  expected (stack M, line 5):\n"
                        "         6  [M]\n"
                        "    >    7  g a.py:2\n"
                        "  actual (stack M on (unknown thread)):\n"
                        "         0  [M]\n"
                        "    > (end)\n"
                        "stack L on T matches no block; nearest:\n"
                        "  expected (stack L, line 1):\n"
                        "         2  [L]\n"
                        "         3  f a.py:1\n"
                        "    > (end)\n"
                        "  actual (stack L on T):\n"
                        "         0  [L]\n"
                        "         1  f a.py:1\n"
                        "    >    2  extra a.py:9\n"
                        "stack M on (unknown thread) matches no block; nearest:\n"
                        "  expected (stack M, line 5):\n"
                        "         6  [M]\n"
                        "    >    7  g a.py:2\n"
                        "  actual (stack M on (unknown thread)):\n"
                        "         0  [M]\n"
                        "    > (end)\n");
    /* No block has its leaf: the nearest of all. */
    st[0] = mk(0, "T", "Z", "[M]|g a.py:2");
    assert_int_equal(match(st, 1), -1);
    assert_string_equal(err,
                        "stack L (line 1) matches no stack; nearest of all stacks:\n"
                        "  expected (stack L, line 1):\n"
                        "    >    2  [L]\n"
                        "         3  f a.py:1\n"
                        "  actual (stack Z on T):\n"
                        "    >    0  [M]\n"
                        "         1  g a.py:2\n"
                        "stack M (line 5) matches no stack; nearest of all stacks:\n"
                        "  expected (stack M, line 5):\n"
                        "         6  [M]\n"
                        "         7  g a.py:2\n"
                        "    > (end)\n"
                        "  actual (stack Z on T):\n"
                        "         0  [M]\n"
                        "         1  g a.py:2\n"
                        "    > (end)\n"
                        "stack Z on T matches no block; nearest of all blocks:\n"
                        "  expected (stack M, line 5):\n"
                        "         6  [M]\n"
                        "         7  g a.py:2\n"
                        "    > (end)\n"
                        "  actual (stack Z on T):\n"
                        "         0  [M]\n"
                        "         1  g a.py:2\n"
                        "    > (end)\n");
}

/* Cycles, truncation, a file without blocks, a small error buffer. */
static void test_match_cycle_truncated_and_edges(void **state) {
    (void)state;
    parse_ok("stack dead-low\n...\n(cycle -> dead-low)\n[dead-high]\naw d.py:55\n[dead-low]\naw d.py:55\n\n"
             "stack cut\n(truncated)\n[cut]\n\n"
             "stack tail\n[tail]\n(truncated)\n");
    ex_stack st[3];
    st[0] = mk(0, "MainThread", "dead-low",
               "run r.py:1|(cycle -> dead-low)|[dead-high]|aw /x/d.py:55|[dead-low]|aw /x/d.py:55");
    st[1] = mk(1, "MainThread", "cut", "(truncated)|[cut]");
    st[2] = mk(2, "MainThread", "tail", "[tail]|(truncated)");
    assert_int_equal(match(st, 3), 0);
    st[0] = mk(0, "MainThread", "dead-low",
               "run r.py:1|(cycle -> dead-high)|[dead-high]|aw /x/d.py:55|[dead-low]|aw /x/d.py:55");
    assert_int_equal(match(st, 1), -1);
    st[1] = mk(1, "MainThread", "cut", "[cut]");
    st[2] = mk(2, "MainThread", "tail", "[tail]");
    assert_int_equal(match(&st[1], 2), -1);
    /* No blocks at all. */
    parse_ok("# nothing\n");
    st[0] = mk(0, "T", NULL, "a a.py:1|b a.py:2");
    assert_int_equal(match(st, 1), -1);
    assert_string_equal(err, "thread T (no tasks) matches no block:\n    a a.py:1\n    b a.py:2\n");
    assert_int_equal(match(st, 0), 0);
    /* A small buffer holds the start of the message, NUL-terminated. */
    char small[20];
    memset(small, 'z', sizeof small);
    assert_int_equal(ex_match_stacks(&ex, st, 1, small, sizeof small), -1);
    assert_string_equal(small, "thread T (no tasks)");
    assert_int_equal(ex_match_stacks(&ex, st, 1, NULL, 0), -1);
}

/* --- the real files ------------------------------------------------------ */

/* Every file of python_fixtures/expected/ parses; the task-aware ones (the
 * .noagent variants, and the files beside them) hold stack blocks, the
 * thread-only ones none, and each .noagent file has its .txt. */
static void test_expected_files_parse(void **state) {
    (void)state;
    const char *dir = "python_fixtures/expected";
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int files = 0, with_stacks = 0, noagent = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".txt")) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (ex_load(path, &ex, err, sizeof err)) fail_msg("%s", err);
        files++;
        int stacks = 0;
        for (uint32_t b = 0; b < ex.nblocks; b++) stacks += ex.blocks[b].kind == EX_BLOCK_STACK;
        assert_true(ex.nblocks > 0);
        with_stacks += stacks > 0;
        if (n > 12 && !strcmp(e->d_name + n - 12, ".noagent.txt")) {
            noagent++;
            assert_true(stacks > 0);
            char agent[512];
            snprintf(agent, sizeof agent, "%s/%.*s.txt", dir, (int)(n - 12), e->d_name);
            ex_file *other = malloc(sizeof *other);
            assert_non_null(other);
            if (ex_load(agent, other, err, sizeof err)) fail_msg("%s", err);
            /* Both variants need the same modules; without the agent a
             * fixture may need a later version (links that memory shows
             * only from there: anyio_groups), never an earlier one. */
            assert_true(ex.requires_minor >= other->requires_minor);
            assert_int_equal(other->requires_mods, ex.requires_mods);
            free(other);
        }
    }
    closedir(d);
    print_message("%d files, %d with stack blocks, %d .noagent\n", files, with_stacks, noagent);
    assert_true(files >= 36);
    assert_true(noagent >= 10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_thread_blocks),
        cmocka_unit_test(test_parse_stack_block),
        cmocka_unit_test(test_parse_directives),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_load_fixture_variants),
        cmocka_unit_test(test_match_seed),
        cmocka_unit_test(test_match_ellipsis_frames_only),
        cmocka_unit_test(test_match_frames),
        cmocka_unit_test(test_match_repeat),
        cmocka_unit_test(test_match_globs),
        cmocka_unit_test(test_match_thread_blocks),
        cmocka_unit_test(test_match_exact_counts),
        cmocka_unit_test(test_match_error_diff),
        cmocka_unit_test(test_match_error_ends),
        cmocka_unit_test(test_match_cycle_truncated_and_edges),
        cmocka_unit_test(test_expected_files_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
