/* Deterministic generators of resolver inputs; see graph_shapes.h. */
#include "bench/graph_shapes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint32_t gs_sizes[GS_NSIZES] = {16u, 256u, 4096u, 65536u};

static const char *const shape_names[GS_SHAPE_COUNT] = {
    "deep_chain", "wide_gather", "weak_forest", "taskgroup", "random_cyclic",
};

/* Frame ids live in their own address ranges, 16-byte aligned. */
#define CORO_FRAME_BASE UINT64_C(0x7f3a60000000)
#define CORO_FRAME_STRIDE UINT64_C(0x60)
#define LOOP_FRAME_BASE UINT64_C(0x7f3a58a01000)
#define SYNC_FRAME_BASE UINT64_C(0x7f3a58a02000)
#define THREAD_FRAME_STRIDE UINT64_C(0x50)

#define NAME_SLOT 16u /* "Task-4294967296" fits */

/* splitmix64: small, fast, good enough, fully deterministic. */
typedef struct gs_rng {
    uint64_t s;
} gs_rng;

static uint64_t rng_next(gs_rng *r) {
    uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n <= 2^32 (multiply-shift; bias is negligible here). */
static uint32_t rng_below(gs_rng *r, uint32_t n) {
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* True with probability num/den. */
static int rng_chance(gs_rng *r, uint32_t num, uint32_t den) {
    return rng_below(r, den) < num;
}

const char *gs_shape_name(gs_shape shape) {
    if ((int)shape < 0 || (int)shape >= GS_SHAPE_COUNT) return NULL;
    return shape_names[shape];
}

int gs_shape_from_name(const char *name) {
    if (name == NULL) return -1;
    for (int i = 0; i < GS_SHAPE_COUNT; i++)
        if (strcmp(name, shape_names[i]) == 0) return i;
    return -1;
}

void gs_sample_free(gs_sample *s) {
    if (s == NULL) return;
    free(s->tasks);
    free(s->links);
    free(s->thread_frames);
    free(s->coro_frames);
    free(s->names);
    memset(s, 0, sizeof *s);
}

/* Working state of one build.  Tasks are built in "logical" order (the
 * order of the shape's description: 0 is the root/parent, ...), then the
 * array is shuffled at the end. */
typedef struct builder {
    gs_rng rng;
    uint32_t n;
    uint64_t *ids; /* ids[logical] */
    au_task *tasks;
    au_link *links;
    uint32_t nlinks;
    uint32_t cap_links;
    uint32_t running; /* logical index of R */
} builder;

static uint64_t unknown_id(builder *b) {
    /* On the id lattice but beyond every task: looks real, is absent. */
    return GS_TASK_ID_BASE +
           GS_TASK_ID_STRIDE * ((uint64_t)b->n + 1u + rng_below(&b->rng, b->n));
}

static void add_link(builder *b, uint64_t child, uint64_t parent) {
    if (b->nlinks < b->cap_links) {
        b->links[b->nlinks].child = child;
        b->links[b->nlinks].parent = parent;
        b->nlinks++;
    }
}

static void shape_deep_chain(builder *b) {
    for (uint32_t k = 0; k + 1 < b->n; k++) {
        b->tasks[k].awaits = b->ids[k + 1];
        b->tasks[k + 1].creator = b->ids[k];
    }
    b->running = b->n - 1;
}

static void shape_wide_gather(builder *b) {
    for (uint32_t k = 1; k < b->n; k++) {
        b->tasks[k].creator = b->ids[0];
        add_link(b, b->ids[k], b->ids[0]);
    }
    b->running = 1 + rng_below(&b->rng, b->n - 1);
}

static void shape_weak_forest(builder *b) {
    for (uint32_t k = 1; k < b->n; k++) {
        if (rng_chance(&b->rng, 1, 64)) continue; /* a new root */
        b->tasks[k].creator = b->ids[rng_below(&b->rng, k)];
    }
    b->running = rng_below(&b->rng, b->n);
}

static void shape_taskgroup(builder *b) {
    for (uint32_t k = 1; k < b->n; k++) {
        b->tasks[k].creator = b->ids[0];
        add_link(b, b->ids[k], b->ids[0]);
    }
    for (uint32_t k = 1; k + 1 < b->n; k++)
        if (rng_chance(&b->rng, 1, 8)) b->tasks[k].awaits = b->ids[k + 1];
    /* The running task is a child that awaits nothing (the last child never
     * awaits, so the fallback always qualifies). */
    b->running = b->n - 1;
    for (int tries = 0; tries < 64; tries++) {
        uint32_t k = 1 + rng_below(&b->rng, b->n - 1);
        if (b->tasks[k].awaits == 0) {
            b->running = k;
            break;
        }
    }
}

static void shape_random_cyclic(builder *b) {
    uint32_t n = b->n;
    for (uint32_t k = 0; k < n; k++) {
        au_task *t = &b->tasks[k];
        uint32_t u = rng_below(&b->rng, 100);
        if (u < 2)
            t->creator = unknown_id(b);
        else if (u < 82 && k > 0)
            t->creator = b->ids[rng_below(&b->rng, k)];
        u = rng_below(&b->rng, 100);
        if (u < 2)
            t->awaits = unknown_id(b);
        else if (u < 32)
            t->awaits = b->ids[rng_below(&b->rng, n)]; /* may be itself */
    }
    for (uint32_t i = 0; i < n / 4; i++) {
        uint64_t child = b->ids[rng_below(&b->rng, n)];
        uint64_t parent = rng_chance(&b->rng, 1, 32)
                              ? unknown_id(b)
                              : b->ids[rng_below(&b->rng, n)];
        add_link(b, child, parent);
    }
    /* Guaranteed specimens: an await cycle a -> b -> c -> a (a deadlock), a
     * task awaiting itself, a strong self link and a strong link to an
     * unknown id. */
    uint32_t pick[5];
    uint32_t npick = n < 5 ? n : 5;
    for (uint32_t i = 0; i < npick; i++) {
        for (;;) {
            uint32_t k = rng_below(&b->rng, n), dup = 0;
            for (uint32_t j = 0; j < i; j++) dup |= pick[j] == k;
            if (!dup) {
                pick[i] = k;
                break;
            }
        }
    }
    if (npick >= 3) {
        b->tasks[pick[0]].awaits = b->ids[pick[1]];
        b->tasks[pick[1]].awaits = b->ids[pick[2]];
        b->tasks[pick[2]].awaits = b->ids[pick[0]];
    }
    if (npick >= 4) b->tasks[pick[3]].awaits = b->ids[pick[3]];
    add_link(b, b->ids[pick[0]], b->ids[pick[0]]);
    add_link(b, b->ids[pick[npick - 1]], unknown_id(b));
    /* R is outside the specimens when there is room; a second task carries
     * a stale running flag that the thread stack does not confirm. */
    b->running = pick[npick - 1];
    if (npick == 5) {
        uint32_t stale = pick[0];
        b->tasks[stale].flags |= AU_TASK_RUNNING;
    }
}

int gs_sample_build(gs_sample *out, gs_shape shape, uint32_t ntasks,
                    uint64_t seed) {
    if (out == NULL) return -1;
    memset(out, 0, sizeof *out);
    if ((int)shape < 0 || (int)shape >= GS_SHAPE_COUNT || ntasks < 2 ||
        ntasks > (UINT32_C(1) << 26))
        return -1;

    builder b;
    memset(&b, 0, sizeof b);
    b.n = ntasks;
    b.rng.s = seed ^ (UINT64_C(0x100000001b3) * ((uint64_t)shape + 1)) ^
              ((uint64_t)ntasks << 40);
    b.cap_links = ntasks + 8;

    uint32_t *perm = malloc((size_t)ntasks * sizeof *perm);
    b.ids = malloc((size_t)ntasks * sizeof *b.ids);
    out->tasks = calloc(ntasks, sizeof *out->tasks);
    out->links = calloc(b.cap_links, sizeof *out->links);
    out->thread_frames = calloc(GS_THREAD_FRAMES, sizeof *out->thread_frames);
    out->coro_frames =
        calloc((size_t)ntasks * GS_CORO_FRAMES, sizeof *out->coro_frames);
    out->names = calloc(ntasks, NAME_SLOT);
    if (perm == NULL || b.ids == NULL || out->tasks == NULL ||
        out->links == NULL || out->thread_frames == NULL ||
        out->coro_frames == NULL || out->names == NULL) {
        free(perm);
        free(b.ids);
        gs_sample_free(out);
        return -1;
    }
    b.tasks = out->tasks;
    b.links = out->links;

    /* Ids: base + stride * (a random permutation of 0..n-1). */
    for (uint32_t i = 0; i < ntasks; i++) perm[i] = i;
    for (uint32_t i = ntasks - 1; i > 0; i--) {
        uint32_t j = rng_below(&b.rng, i + 1);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint32_t k = 0; k < ntasks; k++) {
        au_task *t = &b.tasks[k];
        b.ids[k] = GS_TASK_ID_BASE + GS_TASK_ID_STRIDE * perm[k];
        t->id = b.ids[k];
        /* Coroutine frames, also scattered by the permutation. */
        uint64_t *fr = out->coro_frames + (size_t)k * GS_CORO_FRAMES;
        for (uint32_t j = 0; j < GS_CORO_FRAMES; j++)
            fr[j] = CORO_FRAME_BASE +
                    CORO_FRAME_STRIDE * ((uint64_t)perm[k] * GS_CORO_FRAMES + j);
        t->frames = fr;
        t->nframes = GS_CORO_FRAMES;
        char *name = out->names + (size_t)k * NAME_SLOT;
        int len = snprintf(name, NAME_SLOT, "Task-%u", (unsigned)(k + 1));
        t->name = name;
        t->name_len = (uint32_t)(len > 0 ? len : 0);
    }
    free(perm);

    switch (shape) {
    case GS_DEEP_CHAIN: shape_deep_chain(&b); break;
    case GS_WIDE_GATHER: shape_wide_gather(&b); break;
    case GS_WEAK_FOREST: shape_weak_forest(&b); break;
    case GS_TASKGROUP: shape_taskgroup(&b); break;
    case GS_RANDOM_CYCLIC: shape_random_cyclic(&b); break;
    default: break;
    }

    /* The running task: flagged, and its coroutine chain (plus the sync
     * frames it called) on top of the event loop in the thread stack. */
    au_task *run = &b.tasks[b.running];
    run->flags |= AU_TASK_RUNNING;
    uint64_t *tf = out->thread_frames;
    uint32_t nf = 0;
    for (uint32_t i = 0; i < GS_LOOP_FRAMES; i++)
        tf[nf++] = LOOP_FRAME_BASE + THREAD_FRAME_STRIDE * i;
    for (uint32_t j = 0; j < GS_CORO_FRAMES; j++) tf[nf++] = run->frames[j];
    for (uint32_t i = 0; i < GS_SYNC_FRAMES; i++)
        tf[nf++] = SYNC_FRAME_BASE + THREAD_FRAME_STRIDE * i;
    uint64_t running_id = run->id;
    free(b.ids);

    /* Input order must not matter: shuffle tasks and links. */
    for (uint32_t i = ntasks - 1; i > 0; i--) {
        uint32_t j = rng_below(&b.rng, i + 1);
        au_task t = b.tasks[i];
        b.tasks[i] = b.tasks[j];
        b.tasks[j] = t;
    }
    for (uint32_t i = b.nlinks; i > 1; i--) {
        uint32_t j = rng_below(&b.rng, i);
        au_link l = b.links[i - 1];
        b.links[i - 1] = b.links[j];
        b.links[j] = l;
    }

    out->running_index = UINT32_MAX;
    for (uint32_t i = 0; i < ntasks; i++)
        if (b.tasks[i].id == running_id) out->running_index = i;

    out->shape = shape;
    out->ntasks = ntasks;
    out->seed = seed;
    out->running_id = running_id;
    out->boundary = GS_LOOP_FRAMES;
    out->sample.frames = out->thread_frames;
    out->sample.nframes = nf;
    out->sample.tasks = out->tasks;
    out->sample.ntasks = ntasks;
    out->sample.links = b.nlinks ? out->links : NULL;
    out->sample.nlinks = b.nlinks;
    return 0;
}
