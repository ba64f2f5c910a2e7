/* The generators' promises (graph_shapes.h): determinism, address-like
 * unique ids, the running task spliced into the thread stack, and each
 * shape's structure.  Also resolves every sample once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/graph_shapes.h"
#include "core/asyncunwind.h"

static int same_sample(const gs_sample *a, const gs_sample *b) {
    const au_thread_sample *x = &a->sample, *y = &b->sample;
    if (x->ntasks != y->ntasks || x->nlinks != y->nlinks ||
        x->nframes != y->nframes || a->running_index != b->running_index)
        return 0;
    if (memcmp(x->frames, y->frames, x->nframes * sizeof *x->frames) != 0)
        return 0;
    if (x->nlinks &&
        memcmp(x->links, y->links, x->nlinks * sizeof *x->links) != 0)
        return 0;
    for (uint32_t i = 0; i < x->ntasks; i++) {
        const au_task *s = &x->tasks[i], *t = &y->tasks[i];
        if (s->id != t->id || s->awaits != t->awaits ||
            s->creator != t->creator || s->flags != t->flags ||
            s->nframes != t->nframes || s->name_len != t->name_len ||
            memcmp(s->name, t->name, s->name_len) != 0 ||
            memcmp(s->frames, t->frames, s->nframes * sizeof *s->frames))
            return 0;
    }
    return 1;
}

/* Index of the task with this id (linear: test sizes are small). */
static uint32_t find(const au_thread_sample *s, uint64_t id) {
    for (uint32_t i = 0; i < s->ntasks; i++)
        if (s->tasks[i].id == id) return i;
    return UINT32_MAX;
}

static void test_deterministic_and_seeded(void **state) {
    (void)state;
    for (int sh = 0; sh < GS_SHAPE_COUNT; sh++) {
        gs_sample a, b, c;
        assert_int_equal(gs_sample_build(&a, (gs_shape)sh, 256, 42), 0);
        assert_int_equal(gs_sample_build(&b, (gs_shape)sh, 256, 42), 0);
        assert_int_equal(gs_sample_build(&c, (gs_shape)sh, 256, 43), 0);
        assert_true(same_sample(&a, &b));
        assert_false(same_sample(&a, &c));
        gs_sample_free(&a);
        gs_sample_free(&b);
        gs_sample_free(&c);
    }
}

static void test_bad_arguments(void **state) {
    (void)state;
    gs_sample s;
    assert_int_equal(gs_sample_build(&s, GS_SHAPE_COUNT, 16, 1), -1);
    assert_int_equal(gs_sample_build(&s, GS_DEEP_CHAIN, 1, 1), -1);
    assert_null(s.tasks);
    gs_sample_free(&s);
    gs_sample_free(NULL);
    assert_null(gs_shape_name(GS_SHAPE_COUNT));
    for (int sh = 0; sh < GS_SHAPE_COUNT; sh++)
        assert_int_equal(gs_shape_from_name(gs_shape_name((gs_shape)sh)), sh);
    assert_int_equal(gs_shape_from_name("nope"), -1);
}

/* Invariants shared by every shape and size. */
static void check_common(const gs_sample *g) {
    const au_thread_sample *s = &g->sample;
    assert_int_equal(s->ntasks, g->ntasks);
    assert_int_equal(s->nframes, GS_THREAD_FRAMES);
    /* Ids: unique, on the 16-byte aligned lattice above the base. */
    uint32_t n = s->ntasks;
    uint8_t *seen = calloc(n, 1);
    assert_non_null(seen);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = s->tasks[i].id;
        assert_true(id >= GS_TASK_ID_BASE);
        assert_int_equal(id % 16, 0);
        assert_int_equal((id - GS_TASK_ID_BASE) % GS_TASK_ID_STRIDE, 0);
        uint64_t k = (id - GS_TASK_ID_BASE) / GS_TASK_ID_STRIDE;
        assert_true(k < n);
        assert_false(seen[k]);
        seen[k] = 1;
        assert_int_equal(s->tasks[i].nframes, GS_CORO_FRAMES);
        assert_true(s->tasks[i].name_len > 0);
    }
    free(seen);
    /* Ids are not in array order. */
    uint32_t ascending = 0;
    for (uint32_t i = 1; i < n; i++)
        ascending += s->tasks[i - 1].id < s->tasks[i].id;
    if (n >= 16) assert_true(ascending < n - 1);
    /* The running task: flagged, its coroutine chain spliced at the
     * boundary. */
    assert_true(g->running_index < n);
    const au_task *r = &s->tasks[g->running_index];
    assert_int_equal(r->id, g->running_id);
    assert_true(r->flags & AU_TASK_RUNNING);
    assert_int_equal(g->boundary, GS_LOOP_FRAMES);
    assert_memory_equal(&s->frames[g->boundary], r->frames,
                        GS_CORO_FRAMES * sizeof *r->frames);
    uint32_t flagged = 0;
    for (uint32_t i = 0; i < n; i++)
        flagged += (s->tasks[i].flags & AU_TASK_RUNNING) != 0;
    /* random_cyclic adds a stale flag once it has room for its specimens. */
    assert_int_equal(flagged, g->shape == GS_RANDOM_CYCLIC && n >= 5 ? 2 : 1);
}

static void check_shape(const gs_sample *g) {
    const au_thread_sample *s = &g->sample;
    uint32_t n = s->ntasks, awaiting = 0, roots = 0, self = 0, unknown = 0;
    for (uint32_t i = 0; i < n; i++) {
        const au_task *t = &s->tasks[i];
        awaiting += t->awaits != 0;
        roots += t->creator == 0;
        self += t->awaits == t->id;
        unknown += t->awaits && find(s, t->awaits) == UINT32_MAX;
    }
    switch (g->shape) {
    case GS_DEEP_CHAIN:
        assert_int_equal(awaiting, n - 1);
        assert_int_equal(roots, 1);
        assert_int_equal(s->nlinks, 0);
        assert_int_equal(g->sample.tasks[g->running_index].awaits, 0);
        break;
    case GS_WIDE_GATHER:
    case GS_TASKGROUP: {
        assert_int_equal(s->nlinks, n - 1);
        uint64_t parent = s->links[0].parent;
        for (uint32_t k = 0; k < s->nlinks; k++)
            assert_int_equal(s->links[k].parent, parent);
        assert_int_equal(roots, 1);
        assert_int_equal(s->tasks[find(s, parent)].awaits, 0);
        if (g->shape == GS_WIDE_GATHER)
            assert_int_equal(awaiting, 0);
        else if (n >= 256)
            assert_true(awaiting > 0); /* siblings awaiting siblings */
        assert_int_equal(g->sample.tasks[g->running_index].awaits, 0);
        break;
    }
    case GS_WEAK_FOREST:
        assert_int_equal(awaiting, 0);
        assert_int_equal(s->nlinks, 0);
        assert_true(roots >= 1);
        break;
    case GS_RANDOM_CYCLIC:
        assert_true(self >= 1);
        if (n >= 256) assert_true(unknown >= 1);
        assert_true(s->nlinks >= n / 4);
        break;
    default: fail();
    }
}

static void test_shapes(void **state) {
    (void)state;
    const uint32_t sizes[] = {2, 3, 5, 16, 256, 4096};
    au_resolver *r = NULL;
    assert_int_equal(au_resolver_new(NULL, NULL, &r), AU_OK);
    assert_non_null(r);
    for (int sh = 0; sh < GS_SHAPE_COUNT; sh++) {
        for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
            gs_sample g;
            assert_int_equal(
                gs_sample_build(&g, (gs_shape)sh, sizes[z], GS_DEFAULT_SEED),
                0);
            check_common(&g);
            if (sizes[z] >= 16) check_shape(&g);
            au_stacks out;
            assert_int_equal(au_resolve(r, &g.sample, &out), AU_OK);
            uint32_t running = 0;
            for (uint32_t k = 0; k < out.nstacks; k++)
                if (out.stacks[k].flags & AU_STACK_RUNNING) {
                    running++;
                    assert_int_equal(out.stacks[k].leaf_id, g.running_id);
                }
            assert_int_equal(running, 1);
            gs_sample_free(&g);
        }
    }
    au_resolver_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_and_seeded),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
