/*
 * graph_shapes: deterministic generators of au_thread_sample inputs in the
 * shapes real asyncio programs produce, for the resolver benchmarks and for
 * tests (e.g. the warm-path allocation test).
 *
 * Every shape, whatever its size, has:
 *  - task ids that look like heap addresses: a 0x7f.. base plus a 16-byte
 *    aligned stride times a seeded random permutation of the task numbers,
 *    so id order has nothing to do with creation order;
 *  - tasks in a shuffled array order, and shuffled strong links;
 *  - GS_CORO_FRAMES coroutine frames per task;
 *  - a thread stack of GS_LOOP_FRAMES event-loop frames, then the coroutine
 *    frames of the one task flagged AU_TASK_RUNNING (its outermost coroutine
 *    frame is thread frame GS_LOOP_FRAMES, so the resolver splices it), then
 *    GS_SYNC_FRAMES synchronous frames that coroutine called.
 *
 * The same (shape, ntasks, seed) always yields byte-identical arrays.
 * C11, libc only, no global mutable state.
 */
#ifndef AU_BENCH_GRAPH_SHAPES_H
#define AU_BENCH_GRAPH_SHAPES_H

#include <stddef.h>
#include <stdint.h>

#include "core/asyncunwind.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gs_shape {
    /* Task k awaits task k+1 (and created it); the innermost task runs. */
    GS_DEEP_CHAIN = 0,
    /* One parent holds N-1 children through strong links (gather); the
     * parent created them and awaits nothing itself. */
    GS_WIDE_GATHER = 1,
    /* Tasks created by earlier tasks (random recursive forest, about one
     * root per 64 tasks); only weak links, nobody awaits anybody. */
    GS_WEAK_FOREST = 2,
    /* A TaskGroup: one parent, N-1 children with a strong link to it and
     * creator = parent; about one child in 8 awaits its next sibling. */
    GS_TASKGROUP = 3,
    /* Random awaits / strong / weak links from the PRNG, with an explicit
     * await cycle (deadlock), self links, links to unknown ids, and a
     * second task wrongly flagged running (not in the thread stack). */
    GS_RANDOM_CYCLIC = 4,
    GS_SHAPE_COUNT = 5
} gs_shape;

#define GS_LOOP_FRAMES 12u /* event-loop frames at the base of the thread */
#define GS_CORO_FRAMES 3u  /* coroutine frames per task */
#define GS_SYNC_FRAMES 3u  /* sync frames the running coroutine called */

/* Thread stack length of every generated sample. */
#define GS_THREAD_FRAMES (GS_LOOP_FRAMES + GS_CORO_FRAMES + GS_SYNC_FRAMES)

#define GS_DEFAULT_SEED UINT64_C(0x5eed0fa57a5c0001)

/* The benchmark sizes: 16, 256, 4096, 65536 tasks. */
#define GS_NSIZES 4
extern const uint32_t gs_sizes[GS_NSIZES];

/* Base and stride of generated task ids.  Ids absent from the sample (for
 * "unknown id" links) are drawn from the same lattice beyond the last task. */
#define GS_TASK_ID_BASE UINT64_C(0x7f3a5c400000)
#define GS_TASK_ID_STRIDE UINT64_C(0xb0)

/* A generated sample.  `sample` points into the owned arrays below; treat
 * everything as read-only and release it with gs_sample_free(). */
typedef struct gs_sample {
    au_thread_sample sample;

    gs_shape shape;
    uint32_t ntasks;
    uint64_t seed;

    /* Index into sample.tasks (and id) of the task flagged AU_TASK_RUNNING
     * whose outermost coroutine frame is in the thread stack: the task the
     * resolver must pick as R. */
    uint32_t running_index;
    uint64_t running_id;
    /* Index in sample.frames of that task's outermost coroutine frame (the
     * event-loop boundary b of docs/RESOLVER.md). */
    uint32_t boundary;

    /* Owned storage (sample.* point here). */
    au_task *tasks;
    au_link *links;
    uint64_t *thread_frames;
    uint64_t *coro_frames;
    char *names;
} gs_sample;

/* Build a sample of `ntasks` tasks (>= 2) in `shape`.  Returns 0, or -1 if
 * an argument is out of range or malloc failed (then *out is zeroed and
 * owns nothing). */
int gs_sample_build(gs_sample *out, gs_shape shape, uint32_t ntasks,
                    uint64_t seed);

/* Release what gs_sample_build allocated; *s is zeroed.  NULL is fine. */
void gs_sample_free(gs_sample *s);

/* "deep_chain", "wide_gather", "weak_forest", "taskgroup", "random_cyclic";
 * NULL for an out-of-range shape. */
const char *gs_shape_name(gs_shape shape);

/* The shape named `name`, or -1. */
int gs_shape_from_name(const char *name);

#ifdef __cplusplus
}
#endif
#endif /* AU_BENCH_GRAPH_SHAPES_H */
