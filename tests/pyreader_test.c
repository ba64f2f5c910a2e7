/*
 * The CPython reader against a synthetic target (tests/fake_target.c),
 * where memory can be changed between samples: freed and reused code
 * object addresses must never yield a stale name, and corrupted chains must
 * end with a flag, bounded, never crash.  Live processes are covered by
 * live_stacks_test.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "asyncunwind.h"
#include "fake_target.h"

#define V312 0x030c01f0u

typedef struct fixture {
    fake_target *t;
    au_pyreader *r;
    uint64_t code_main, code_work, f_main, f_work;
} fixture;

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    fx->t = ft_new(V312);
    if (!fx->t) return -1;
    fx->code_main = ft_code(fx->t, "main", "/app/main.py", 10);
    fx->code_work = ft_code(fx->t, "alpha", "/app/work.py", 20);
    fx->f_main = ft_frame(fx->t, fx->code_main, 0);
    fx->f_work = ft_frame(fx->t, fx->code_work, fx->f_main);
    ft_set_current(fx->t, fx->f_work);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    au_pyreader_free(fx->r);
    ft_free(fx->t);
    free(fx);
    return 0;
}

static au_pyreader *reader(fixture *fx, const au_pyreader_limits *lim) {
    au_pyreader_free(fx->r);
    assert_int_equal(au_pyreader_new(NULL, &fx->t->base, V312, fx->t->runtime, lim, &fx->r), AU_OK);
    return fx->r;
}

static const au_pythread *one_thread(au_pyreader *r, au_pysample *s) {
    assert_int_equal(au_pyreader_sample(r, s), AU_OK);
    assert_int_equal(s->nthreads, 1);
    return &s->threads[0];
}

static void assert_frame(au_pyreader *r, const au_pyframe *f, const char *name, const char *file,
                         int32_t line) {
    const au_pycode *c = au_pyreader_code(r, f->code);
    assert_non_null(c);
    assert_int_equal(c->name_len, strlen(name));
    assert_memory_equal(c->name, name, c->name_len);
    assert_int_equal(c->filename_len, strlen(file));
    assert_memory_equal(c->filename, file, c->filename_len);
    assert_int_equal(f->line, line);
}

static void test_reads_stack(void **state) {
    fixture *fx = *state;
    au_pyreader *r = reader(fx, NULL);
    au_pysample s;
    const au_pythread *t = one_thread(r, &s);
    assert_int_equal(t->flags, 0);
    assert_int_equal(t->native_id, 4242);
    assert_int_equal(t->thread_id, 0x7f0000001111ull);
    assert_int_equal(t->nframes, 2);
    assert_int_equal(t->frames[0].addr, fx->f_main);
    assert_frame(r, &t->frames[0], "main", "/app/main.py", 10);
    assert_frame(r, &t->frames[1], "alpha", "/app/work.py", 20);
}

/* The code object at an address is freed and another one allocated there:
 * its header differs, so the cached name must not be used once the entry
 * is checked (here every sample). */
static void test_reused_code_address(void **state) {
    fixture *fx = *state;
    au_pyreader_limits lim = {0, 0, 0, 0, 1};
    au_pyreader *r = reader(fx, &lim);
    au_pysample s;
    au_pyreader_stats st;
    one_thread(r, &s);
    au_pyreader_get_stats(r, &st);
    assert_int_equal(st.code_misses, 2);
    one_thread(r, &s); /* warm: validated hits, nothing allocated */
    au_pyreader_get_stats(r, &st);
    assert_int_equal(st.code_hits, 2);
    assert_int_equal(st.code_misses, 0);
    assert_int_equal(st.allocations, 0);

    /* Reuse: same address, a different function (new name, new file). */
    const au_py_offsets *o = fx->t->off;
    ft_put64(fx->t, fx->code_work + o->code_name, ft_str(fx->t, "beta"));
    ft_put64(fx->t, fx->code_work + o->code_qualname, ft_str(fx->t, "beta"));
    ft_put64(fx->t, fx->code_work + o->code_filename, ft_str(fx->t, "/app/other.py"));
    const au_pythread *t = one_thread(r, &s);
    assert_frame(r, &t->frames[1], "beta", "/app/other.py", 20);
    au_pyreader_get_stats(r, &st);
    assert_int_equal(st.code_misses, 1);
    assert_int_equal(st.code_hits, 1);

    /* Reuse keeping every string: only the first line differs. */
    ft_put32(fx->t, fx->code_work + o->code_firstlineno, 77);
    t = one_thread(r, &s);
    assert_frame(r, &t->frames[1], "beta", "/app/other.py", 77);
}

/* With the default limits a cached entry is trusted for 15 samples after
 * its check, without reading its header; the 16th checks it again.  So a
 * reused address shows its new name at most 16 samples late, and a warm
 * sample between checks reads no code object at all. */
static void test_code_checked_every_16(void **state) {
    fixture *fx = *state;
    au_pyreader *r = reader(fx, NULL);
    au_pysample s;
    au_pyreader_stats st;
    one_thread(r, &s); /* sample 1: both fetched, checked */
    au_pyreader_get_stats(r, &st);
    assert_int_equal(st.code_misses, 2);
    const au_py_offsets *o = fx->t->off;
    /* Sample 2 reads no code object header: what every sample reads
     * until the check falls due. */
    one_thread(r, &s);
    au_pyreader_get_stats(r, &st);
    uint64_t trusted_reads = st.mem.requests;
    for (int k = 3; k <= 16; k++) {
        one_thread(r, &s);
        au_pyreader_get_stats(r, &st);
        assert_int_equal(st.code_hits, 2);
        assert_int_equal(st.mem.requests, trusted_reads);
    }
    /* Sample 17: due.  Both headers are read and compared, and that costs
     * no batch of its own: sample 16 hinted them to the prefetch. */
    const au_pythread *t = one_thread(r, &s);
    au_pyreader_get_stats(r, &st);
    assert_int_equal(st.code_hits, 2);
    assert_int_equal(st.code_misses, 0);
    assert_int_equal(st.mem.syscalls, 1);

    ft_put64(fx->t, fx->code_work + o->code_name, ft_str(fx->t, "gamma"));
    ft_put64(fx->t, fx->code_work + o->code_qualname, ft_str(fx->t, "gamma"));
    ft_put64(fx->t, fx->code_work + o->code_filename, ft_str(fx->t, "/app/third.py"));
    for (int k = 18; k <= 32; k++) { /* trusted since sample 17 */
        t = one_thread(r, &s);
        assert_frame(r, &t->frames[1], "alpha", "/app/work.py", 20);
        au_pyreader_get_stats(r, &st);
        assert_int_equal(st.mem.syscalls, 1);
    }
    t = one_thread(r, &s); /* sample 33: checked */
    assert_frame(r, &t->frames[1], "gamma", "/app/third.py", 20);
    au_pyreader_get_stats(r, &st);
    assert_int_equal(st.code_misses, 1);
}

/* A frame whose "code" is some other object: no name, never a guess. */
static void test_not_a_code_object(void **state) {
    fixture *fx = *state;
    uint64_t str = ft_str(fx->t, "not code");
    ft_put64(fx->t, fx->f_work + fx->t->off->frame_code, str);
    au_pyreader *r = reader(fx, NULL);
    au_pysample s;
    const au_pythread *t = one_thread(r, &s);
    assert_int_equal(t->nframes, 2);
    assert_null(au_pyreader_code(r, t->frames[1].code));
    assert_int_equal(t->frames[1].line, -1);
    assert_frame(r, &t->frames[0], "main", "/app/main.py", 10);
}

static void test_frame_cycle(void **state) {
    fixture *fx = *state;
    ft_put64(fx->t, fx->f_main + fx->t->off->frame_previous, fx->f_work);
    au_pyreader *r = reader(fx, NULL);
    au_pysample s;
    const au_pythread *t = one_thread(r, &s);
    assert_int_equal(t->flags, AU_THREAD_CYCLE);
    assert_int_equal(t->nframes, 2);
}

/* A chain of heap frames longer than a new reader's seen set (64 slots)
 * whose outermost frame links back into its middle: the set grows during
 * the walk (64 -> 1,024 slots) and keeps what it had seen, so the loop is
 * still caught.  A second sample of the same chain allocates nothing. */
static void test_long_cycle_grows_seen_set(void **state) {
    fixture *fx = *state;
    uint64_t prev = fx->f_work, middle = 0;
    for (int i = 0; i < 300; i++) {
        prev = ft_frame(fx->t, fx->code_work, prev);
        if (i == 150) middle = prev;
    }
    ft_set_current(fx->t, prev);
    ft_put64(fx->t, fx->f_main + fx->t->off->frame_previous, middle);
    au_pyreader *r = reader(fx, NULL);
    au_pysample s;
    const au_pythread *t = one_thread(r, &s);
    assert_int_equal(t->flags, AU_THREAD_CYCLE);
    assert_int_equal(t->nframes, 302);
    au_pyreader_stats st;
    au_pyreader_get_stats(r, &st);
    assert_true(st.allocations >= 8); /* four doublings, two arrays each, and buffers */
    t = one_thread(r, &s);
    assert_int_equal(t->flags, AU_THREAD_CYCLE);
    assert_int_equal(t->nframes, 302);
    au_pyreader_get_stats(r, &st);
    assert_int_equal(st.allocations, 0);
}

/* Frames in a datastack chunk: their chain must go down the chunk.  One
 * that comes back into the range already walked is a cycle; one that goes
 * above it is a broken link; both end the walk with what was read. */
static void test_chunk_chain(void **state) {
    fixture *fx = *state;
    fake_target *t = fx->t;
    uint64_t slot = t->off->frame_header_size + 16;
    uint64_t base = ft_chunk(t, 4);
    uint64_t f0 = ft_frame_at(t, base, fx->code_main, 0);
    uint64_t f1 = ft_frame_at(t, base + slot, fx->code_work, f0);
    uint64_t f2 = ft_frame_at(t, base + 2 * slot, fx->code_work, f1);
    uint64_t f3 = ft_frame_at(t, base + 3 * slot, fx->code_main, 0);
    ft_set_current(t, f2);
    au_pyreader *r = reader(fx, NULL);
    au_pysample s;
    const au_pythread *th = one_thread(r, &s);
    assert_int_equal(th->flags, 0);
    assert_int_equal(th->nframes, 3);
    assert_int_equal(th->frames[0].addr, f0);
    assert_frame(r, &th->frames[2], "alpha", "/app/work.py", 20);

    ft_put64(t, f0 + t->off->frame_previous, f1); /* back into the walk */
    th = one_thread(r, &s);
    assert_int_equal(th->flags, AU_THREAD_CYCLE);
    assert_int_equal(th->nframes, 3);

    ft_put64(t, f0 + t->off->frame_previous, f3); /* up, past the walk */
    th = one_thread(r, &s);
    assert_int_equal(th->flags, AU_THREAD_PARTIAL);
    assert_int_equal(th->nframes, 3);
}

static void test_broken_previous(void **state) {
    fixture *fx = *state;
    ft_put64(fx->t, fx->f_main + fx->t->off->frame_previous, 0xdead0000ull);
    au_pyreader *r = reader(fx, NULL);
    au_pysample s;
    const au_pythread *t = one_thread(r, &s);
    assert_int_equal(t->flags, AU_THREAD_PARTIAL);
    assert_int_equal(t->nframes, 2); /* what was read stays */
    ft_put64(fx->t, fx->f_main + fx->t->off->frame_previous, 0xdead0003ull); /* misaligned */
    t = one_thread(r, &s);
    assert_int_equal(t->flags, AU_THREAD_PARTIAL);
}

/* Links that were true a moment ago (the target runs while it is read):
 * each shape below is no running thread's stack, so the thread is flagged
 * partial, and what was read before the bad frame stays. */
static void test_torn_chain_shapes(void **state) {
    fixture *fx = *state;
    fake_target *t = fx->t;
    const au_py_offsets *o = t->off;
    uint8_t *owner = &t->mem[fx->f_main + o->frame_owner - FT_BASE];
    au_pyreader *r = reader(fx, NULL);
    au_pysample s;
    assert_int_equal(one_thread(r, &s)->flags, 0);

    /* The outermost frame is a coroutine's, with no caller: it suspended
     * between the reads of its callee and of itself.  (3.12: a stack ends
     * at an entry frame, so any other end is torn.) */
    *owner = (uint8_t)o->frame_owner_generator;
    ft_put64(t, fx->f_main + o->frame_previous, 0);
    const au_pythread *th = one_thread(r, &s);
    assert_int_equal(th->flags, AU_THREAD_PARTIAL);
    assert_int_equal(th->nframes, 2);
    *owner = (uint8_t)o->frame_owner_thread;
    assert_int_equal(one_thread(r, &s)->flags, AU_THREAD_PARTIAL); /* still no entry frame */
    ft_put64(t, fx->f_main + o->frame_previous, ft_entry(t));
    assert_int_equal(one_thread(r, &s)->flags, 0);

    /* A frame whose function returned (its frame object owns it now), an
     * owner byte no CPython writes, a code pointer that is no pointer: the
     * walk stops before the frame. */
    uint8_t bad_owner[] = {(uint8_t)o->frame_owner_frame_object, 9, 0x80};
    for (size_t i = 0; i < sizeof bad_owner; i++) {
        *owner = bad_owner[i];
        th = one_thread(r, &s);
        assert_int_equal(th->flags, AU_THREAD_PARTIAL);
        assert_int_equal(th->nframes, 1);
        assert_int_equal(th->frames[0].addr, fx->f_work);
    }
    *owner = (uint8_t)o->frame_owner_thread;
    uint64_t bad_code[] = {0, 0xffffffffull, fx->code_main + 2};
    for (size_t i = 0; i < 3; i++) {
        ft_put64(t, fx->f_main + o->frame_code, bad_code[i]);
        th = one_thread(r, &s);
        assert_int_equal(th->flags, AU_THREAD_PARTIAL);
        assert_int_equal(th->nframes, 1);
    }
    ft_put64(t, fx->f_main + o->frame_code, fx->code_main);
    assert_int_equal(one_thread(r, &s)->flags, 0);
}

/* 3.11 and 3.12 make a new C-level frame (cframe) current before they set
 * its frame: a cframe on the C stack without a frame is that moment.  The
 * thread state's own root cframe without one is a thread that runs no
 * Python. */
static void test_cframe_without_frame(void **state) {
    fixture *fx = *state;
    fake_target *t = fx->t;
    const au_py_offsets *o = t->off;
    ft_set_current(t, 0); /* a cframe of its own, outside the thread state */
    au_pyreader *r = reader(fx, NULL);
    au_pysample s;
    const au_pythread *th = one_thread(r, &s);
    assert_int_equal(th->flags, AU_THREAD_PARTIAL);
    assert_int_equal(th->nframes, 0);
    /* A cframe inside the thread state (the root one) with no frame. */
    uint64_t root = t->tstate + o->sizeof_tstate - 8 - o->cframe_current_frame;
    ft_put64(t, t->tstate + o->tstate_frame, root);
    th = one_thread(r, &s);
    assert_int_equal(th->flags, 0);
    assert_int_equal(th->nframes, 0);
}

/* 3.11 has no entry frames: the first frame of each interpreter call is
 * marked is_entry, and a stack ends at such a frame, never at a
 * generator's. */
static void test_entry_mark_311(void **state) {
    (void)state;
    fake_target *t = ft_new(0x030b07f0u);
    assert_non_null(t);
    const au_py_offsets *o = t->off;
    assert_true(o->frame_entry != AU_PYOFF_ABSENT);
    uint64_t code = ft_code(t, "main", "/app/main.py", 10);
    uint64_t f0 = ft_frame(t, code, 0);
    uint64_t f1 = ft_frame(t, code, f0);
    ft_set_current(t, f1);
    au_pyreader *r;
    assert_int_equal(au_pyreader_new(NULL, &t->base, 0x030b07f0u, t->runtime, NULL, &r), AU_OK);
    au_pysample s;
    const au_pythread *th = one_thread(r, &s);
    assert_int_equal(th->flags, 0);
    assert_int_equal(th->nframes, 2);
    t->mem[f0 + o->frame_entry - FT_BASE] = 0; /* a callee's frame, its caller gone */
    assert_int_equal(one_thread(r, &s)->flags, AU_THREAD_PARTIAL);
    t->mem[f0 + o->frame_entry - FT_BASE] = 1;
    t->mem[f0 + o->frame_owner - FT_BASE] = (uint8_t)o->frame_owner_generator;
    th = one_thread(r, &s);
    assert_int_equal(th->flags, AU_THREAD_PARTIAL);
    assert_int_equal(th->nframes, 2);
    au_pyreader_free(r);
    ft_free(t);
}

/* A thread not started yet: its state, made by the thread starting it,
 * comes first in the list and has no frame and no ids of its own (its
 * starter's before 3.12, 0 since): left out, not shown as a second, empty
 * MainThread.  A frameless thread with ids of its own stays. */
static void test_unstarted_thread(void **state) {
    fixture *fx = *state;
    fake_target *t = fx->t;
    const au_py_offsets *o = t->off;
    uint64_t born = ft_alloc(t, o->sizeof_tstate);
    ft_put64(t, born + o->tstate_next, t->tstate);
    ft_put64(t, t->interp + o->interp_threads_head, born);
    /* its root cframe, inside its state, with no frame */
    ft_put64(t, born + o->tstate_frame, born + o->sizeof_tstate - 8 - o->cframe_current_frame);
    uint64_t ids[] = {0x7f0000001111ull, 0}; /* the starter's (3.11), none (3.12+) */
    au_pyreader *r = reader(fx, NULL);
    au_pysample s;
    for (size_t i = 0; i < 2; i++) {
        ft_put64(t, born + o->tstate_thread_id, ids[i]);
        const au_pythread *th = one_thread(r, &s);
        assert_int_equal(th->tstate, t->tstate);
        assert_int_equal(th->nframes, 2);
    }
    ft_put64(t, born + o->tstate_thread_id, 0x7f0000002222ull); /* started, in C */
    assert_int_equal(au_pyreader_sample(r, &s), AU_OK);
    assert_int_equal(s.nthreads, 2);
    assert_int_equal(s.threads[0].nframes, 0);
    assert_int_equal(s.threads[0].flags, 0);
    assert_int_equal(s.threads[1].nframes, 2);
}

static void test_frame_limit(void **state) {
    fixture *fx = *state;
    uint64_t prev = fx->f_work;
    for (int i = 0; i < 100; i++) prev = ft_frame(fx->t, fx->code_work, prev);
    ft_set_current(fx->t, prev);
    au_pyreader_limits lim = {0, 10, 0, 0, 0};
    au_pyreader *r = reader(fx, &lim);
    au_pysample s;
    const au_pythread *t = one_thread(r, &s);
    assert_int_equal(t->flags, AU_THREAD_TRUNCATED);
    assert_int_equal(t->nframes, 10);
    /* Outermost first: the kept frames are the innermost ten. */
    assert_int_equal(t->frames[9].addr, prev);
}

static void test_name_cut(void **state) {
    fixture *fx = *state;
    const au_py_offsets *o = fx->t->off;
    ft_put64(fx->t, fx->code_work + o->code_name, ft_str(fx->t, "abcdefghijklmnopqrstuvwxyz"));
    au_pyreader_limits lim = {0, 0, 10, 0, 0};
    au_pyreader *r = reader(fx, &lim);
    au_pysample s;
    const au_pythread *t = one_thread(r, &s);
    const au_pycode *c = au_pyreader_code(r, t->frames[1].code);
    assert_non_null(c);
    assert_int_equal(c->name_len, 13);
    assert_memory_equal(c->name, "abcdefghij...", 13);
}

static void test_thread_list_cycle(void **state) {
    fixture *fx = *state;
    ft_put64(fx->t, fx->t->tstate + fx->t->off->tstate_next, fx->t->tstate);
    au_pyreader *r = reader(fx, NULL);
    au_pysample s;
    one_thread(r, &s);
}

/* The warm path serves a sample from the ranges the previous one read:
 * a stack that grows, shrinks or breaks between samples must read as it
 * is now, never as it was. */
static void test_warm_stack_changes(void **state) {
    fixture *fx = *state;
    const au_py_offsets *o = fx->t->off;
    au_pyreader *r = reader(fx, NULL);
    au_pysample s;
    au_pyreader_stats st;
    one_thread(r, &s);
    one_thread(r, &s);
    au_pyreader_get_stats(r, &st);
    assert_int_equal(st.batches, 1); /* warm: the prefetch alone */

    /* A call: a new innermost frame, far from what was prefetched. */
    uint64_t code_gamma = ft_code(fx->t, "gamma", "/app/gamma.py", 30);
    uint64_t f_gamma = ft_frame(fx->t, code_gamma, fx->f_work);
    ft_set_current(fx->t, f_gamma);
    const au_pythread *t = one_thread(r, &s);
    assert_int_equal(t->flags, 0);
    assert_int_equal(t->nframes, 3);
    assert_frame(r, &t->frames[2], "gamma", "/app/gamma.py", 30);
    au_pyreader_get_stats(r, &st);
    assert_true(st.batches > 1); /* gamma's frame and code were not prefetched */
    t = one_thread(r, &s);
    assert_int_equal(t->nframes, 3);
    au_pyreader_get_stats(r, &st);
    assert_int_equal(st.batches, 1);

    /* The return: the old innermost frame again. */
    ft_set_current(fx->t, fx->f_work);
    t = one_thread(r, &s);
    assert_int_equal(t->flags, 0);
    assert_int_equal(t->nframes, 2);
    assert_frame(r, &t->frames[1], "alpha", "/app/work.py", 20);

    /* A link that breaks after the warm-up: read now, not remembered. */
    ft_put64(fx->t, fx->f_main + o->frame_previous, 0xdead0000ull);
    t = one_thread(r, &s);
    assert_int_equal(t->flags, AU_THREAD_PARTIAL);
    assert_int_equal(t->nframes, 2);
    ft_put64(fx->t, fx->f_main + o->frame_previous, ft_entry(fx->t)); /* mended */
    t = one_thread(r, &s);
    assert_int_equal(t->flags, 0);
    assert_int_equal(t->nframes, 2);

    /* The thread's frame pointer, changed in place: the prefetched bytes
     * hold the new value, since they are read when the sample starts. */
    ft_set_current(fx->t, fx->f_main);
    t = one_thread(r, &s);
    assert_int_equal(t->nframes, 1);
    assert_frame(r, &t->frames[0], "main", "/app/main.py", 10);
}

static void test_unreadable_runtime(void **state) {
    fixture *fx = *state;
    au_pyreader *r;
    assert_int_equal(au_pyreader_new(NULL, &fx->t->base, V312, 0xdead0000ull, NULL, &r), AU_OK);
    au_pysample s;
    assert_int_equal(au_pyreader_sample(r, &s), AU_ERR_READ);
    assert_int_equal(s.nthreads, 0);
    au_pyreader_free(r);
    assert_int_equal(au_pyreader_new(NULL, &fx->t->base, 0x03080000, fx->t->runtime, NULL, &r),
                     AU_ERR_UNSUPPORTED);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_stack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reused_code_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_code_checked_every_16, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_code_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_cycle_grows_seen_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_previous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_chain_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cframe_without_frame, setup, teardown),
        cmocka_unit_test(test_entry_mark_311),
        cmocka_unit_test_setup_teardown(test_unstarted_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_list_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warm_stack_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_runtime, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
