/*
 * resolver_bench: au_resolve() on every graph shape x size of
 * bench/graph_shapes.h, and writing every resulting stack out.
 *
 * A profiler resolves a different sample every time, which it has just
 * read into the same buffers.  So "resolve/<shape>/<ntasks>" does the same:
 * each iteration copies the next of a pool of distinct samples of that
 * shape and size (built from successive seeds) into one set of input
 * arrays, untimed, and times the au_resolve call alone.  The pool holds at
 * least POOL_TASKS tasks in all (at most POOL_MAX samples), far more than
 * a branch predictor can learn: resolving one sample over and over lets
 * the CPU learn its branches by heart up to a few thousand tasks, which
 * makes small samples look cheaper than a profiler will ever see them.
 * "resolve_repeat/<shape>/<ntasks>" measures exactly that case, the same
 * way but always with the first sample of the pool, for comparison.
 *
 * Per benchmark "resolve/..." and "resolve_repeat/...":
 *   time            per au_resolve call (wall clock of the call alone,
 *                   microseconds; one clock read, about 25 ns, included)
 *   ns_per_task     that time divided by the number of tasks
 *   ns_per_entry    that time divided by the entries the stacks hold when
 *                   written out (au_resolve itself writes none), averaged
 *                   over the samples resolved in turn
 * Per benchmark "write/<shape>/<ntasks>": the first sample resolved once,
 * then the timed loop writes every stack with au_stack_entries() into one
 * reused 4,096-entry buffer, as a profiler that materialises every stack
 * would; ns_per_entry there is the cost of an output entry.
 *   allocs          heap allocations per resolve once warm, counted by the
 *                   au_allocator given to au_resolver_new, averaged over the
 *                   timed iterations (one warm-up resolve of every sample in
 *                   turn precedes them)
 *   stat_allocs     stats.allocations of the last call (the core's own count)
 *   stacks, entries stacks and entries (all stacks) produced by one resolve,
 *                   averaged over the samples resolved in turn
 *   cycles, truncated  from au_resolver_get_stats, averaged the same way
 *   samples         distinct samples resolved in turn
 *
 * After the report, a scaling table per kind of resolve benchmark: ns per
 * task for every shape and size (the median of the repetitions' runs), and
 * the ratio of 65,536 tasks to 256, the target being 2 at most for
 * resolve/: the ratio of the medians, and of the best runs (the least
 * disturbed by whatever else the machine runs; run with
 * --benchmark_repetitions=N for it to mean something).
 *
 * Own flag (removed before the benchmark flags are parsed):
 *   --au_strict     fail a benchmark whose warm resolves allocate, or whose
 *                   output lacks the running task's stack for any sample
 *                   (used by the smoke test; timings are never asserted)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_shim.h"
#include "bench/counting_alloc.h"
#include "bench/graph_shapes.h"
#include "core/asyncunwind.h"

/* ---- the pool of samples ------------------------------------------------- */

#define POOL_TASKS (1u << 18)
#define POOL_MAX 1024u

/* The distinct samples of one shape and size, built from successive
 * seeds.  One pool is kept at a time: the benchmarks of one shape and size
 * run one after another, and a pool takes up to about 30 MiB. */
typedef struct pool {
    gs_shape shape;
    uint32_t ntasks, nsamples; /* nsamples 0: nothing built */
    uint32_t max_links;
    gs_sample *s;
} pool;

static void pool_free(pool *p) {
    for (uint32_t v = 0; v < p->nsamples; v++) gs_sample_free(&p->s[v]);
    free(p->s);
    memset(p, 0, sizeof *p);
}

static uint32_t pool_size(uint32_t ntasks) {
    uint32_t k = POOL_TASKS / ntasks;
    return k < 4 ? 4 : k > POOL_MAX ? POOL_MAX : k;
}

/* Make p the pool of (shape, ntasks); 0 or -1. */
static int pool_get(pool *p, gs_shape shape, uint32_t ntasks) {
    if (p->nsamples && p->shape == shape && p->ntasks == ntasks) return 0;
    pool_free(p);
    uint32_t k = pool_size(ntasks);
    p->s = calloc(k, sizeof *p->s);
    if (p->s == NULL) return -1;
    p->shape = shape;
    p->ntasks = ntasks;
    for (uint32_t v = 0; v < k; v++) {
        if (gs_sample_build(&p->s[v], shape, ntasks, GS_DEFAULT_SEED + v) != 0) {
            pool_free(p);
            return -1;
        }
        p->nsamples = v + 1;
        if (p->s[v].sample.nlinks > p->max_links) p->max_links = p->s[v].sample.nlinks;
    }
    return 0;
}

/* ---- one shape x size ---------------------------------------------------- */

typedef enum bench_kind { KIND_RESOLVE, KIND_REPEAT, KIND_WRITE, KIND_COUNT } bench_kind;

static const char *const kind_names[KIND_COUNT] = {"resolve", "resolve_repeat", "write"};

typedef struct bench_case {
    gs_shape shape;
    uint32_t ntasks;
    bench_kind kind;
    int strict;
    pool *pool;
} bench_case;

typedef struct fixture {
    bench_case *bc;
    counting_alloc alloc;
    au_allocator allocator;
    au_resolver *r;
    au_stacks out;
    uint64_t allocs_before_loop;
    uint32_t nsamples, next; /* samples in turn; the next one */
    /* The input arrays every sample is copied into, as a reader fills the
     * same buffers every sample. */
    au_thread_sample in;
    au_task *tasks;
    au_link *links;
    uint64_t *coro; /* the tasks' coroutine frames, GS_CORO_FRAMES each */
    uint64_t frames[GS_THREAD_FRAMES];
    /* Per resolve, averaged over the samples in turn. */
    double stacks, entries, cycles, truncated;
} fixture;

static volatile uint32_t g_sink;

#define WRITE_CAP 4096u

static uint64_t count_entries(const au_resolver *r, const au_stacks *s) {
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->nstacks; i++) {
        uint64_t len = au_stack_entries(r, &s->stacks[i], NULL, 0);
        n += len < WRITE_CAP ? len : WRITE_CAP;
    }
    return n;
}

static au_entry g_buf[WRITE_CAP];

static int run_write(void *fx, bench_ctx *ctx) {
    fixture *f = fx;
    (void)ctx;
    uint64_t n = 0;
    for (uint32_t i = 0; i < f->out.nstacks; i++)
        n += au_stack_entries(f->r, &f->out.stacks[i], g_buf, WRITE_CAP);
    g_sink = (uint32_t)n;
    return 0;
}

static int has_running_stack(const au_stacks *s, uint64_t running_id) {
    for (uint32_t i = 0; i < s->nstacks; i++)
        if ((s->stacks[i].flags & AU_STACK_RUNNING) &&
            s->stacks[i].leaf_id == running_id)
            return 1;
    return 0;
}

/* Copy sample v of the pool into the fixture's input arrays, coroutine
 * frames included (the resolver reads those of the running candidates).
 * Only the names stay where the pool has them: the resolver passes their
 * pointers on without reading them. */
static void load_sample(fixture *f, uint32_t v) {
    const au_thread_sample *src = &f->bc->pool->s[v].sample;
    memcpy(f->tasks, src->tasks, (size_t)src->ntasks * sizeof *src->tasks);
    for (uint32_t i = 0; i < src->ntasks; i++) {
        uint64_t *dst = f->coro + (size_t)i * GS_CORO_FRAMES;
        uint32_t nf = src->tasks[i].nframes < GS_CORO_FRAMES ? src->tasks[i].nframes
                                                               : GS_CORO_FRAMES;
        memcpy(dst, src->tasks[i].frames, (size_t)nf * sizeof *dst);
        f->tasks[i].frames = dst;
        f->tasks[i].nframes = nf;
    }
    if (src->nlinks) memcpy(f->links, src->links, (size_t)src->nlinks * sizeof *src->links);
    memcpy(f->frames, src->frames, (size_t)src->nframes * sizeof *src->frames);
    f->in.tasks = f->tasks;
    f->in.ntasks = src->ntasks;
    f->in.links = src->nlinks ? f->links : NULL;
    f->in.nlinks = src->nlinks;
    f->in.frames = f->frames;
    f->in.nframes = src->nframes;
}

static void fixture_free(fixture *f) {
    au_resolver_free(f->r);
    free(f->tasks);
    free(f->links);
    free(f->coro);
    free(f);
}

static int setup_fail(fixture *f, bench_ctx *ctx, const char *msg) {
    if (f) fixture_free(f);
    bench_error(ctx, msg);
    return -1;
}

static int setup_resolve(void *arg, void **out, bench_ctx *ctx) {
    bench_case *bc = arg;
    char msg[160];
    if (pool_get(bc->pool, bc->shape, bc->ntasks) != 0)
        return setup_fail(NULL, ctx, "building the samples failed");
    const pool *p = bc->pool;
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) return setup_fail(NULL, ctx, "out of memory");
    f->bc = bc;
    f->nsamples = bc->kind == KIND_RESOLVE ? p->nsamples : 1;
    f->tasks = calloc(p->ntasks, sizeof *f->tasks);
    f->links = calloc(p->max_links ? p->max_links : 1, sizeof *f->links);
    f->coro = calloc((size_t)p->ntasks * GS_CORO_FRAMES, sizeof *f->coro);
    f->allocator = counting_allocator(&f->alloc);
    f->r = NULL;
    int rc = au_resolver_new(&f->allocator, NULL, &f->r);
    if (f->tasks == NULL || f->links == NULL || f->coro == NULL || rc != AU_OK)
        return setup_fail(f, ctx, "out of memory");
    /* Warm-up: every sample in turn (which grows the context to the
     * largest), checked, and what one resolve produces averaged.  Then the
     * first sample again, left resolved for the write benchmarks, and warm,
     * so that stats.allocations describes a warm call even for those. */
    au_resolver_stats stats;
    for (uint32_t v = 0; v <= f->nsamples; v++) {
        uint32_t w = v < f->nsamples ? v : 0;
        load_sample(f, w);
        int st = au_resolve(f->r, &f->in, &f->out);
        if (st != AU_OK) {
            snprintf(msg, sizeof msg, "warm-up au_resolve: %s", au_status_str(st));
            return setup_fail(f, ctx, msg);
        }
        if (bc->strict && !has_running_stack(&f->out, p->s[w].running_id))
            return setup_fail(f, ctx, "no AU_STACK_RUNNING stack for the running task");
        if (v == f->nsamples) break;
        memset(&stats, 0, sizeof stats);
        au_resolver_get_stats(f->r, &stats);
        f->stacks += f->out.nstacks;
        f->entries += (double)count_entries(f->r, &f->out);
        f->cycles += stats.cycles;
        f->truncated += stats.truncated;
    }
    f->stacks /= f->nsamples;
    f->entries /= f->nsamples;
    f->cycles /= f->nsamples;
    f->truncated /= f->nsamples;
    f->allocs_before_loop = f->alloc.allocations;
    *out = f;
    return 0;
}

static int run_resolve(void *fx, bench_ctx *ctx) {
    fixture *f = fx;
    load_sample(f, f->next);
    f->next = f->next + 1 < f->nsamples ? f->next + 1 : 0;
    bench_timed_begin(ctx);
    int st = au_resolve(f->r, &f->in, &f->out);
    bench_timed_end(ctx);
    g_sink = f->out.nstacks;
    return st != AU_OK;
}

static void teardown_resolve(void *fx, bench_ctx *ctx) {
    fixture *f = fx;
    au_resolver_stats stats;
    memset(&stats, 0, sizeof stats);
    au_resolver_get_stats(f->r, &stats);
    uint64_t warm_allocs = f->alloc.allocations - f->allocs_before_loop;
    /* For write/, the entries written per iteration; for the resolves, per
     * resolve on average. */
    double entries = f->bc->kind == KIND_WRITE ? (double)count_entries(f->r, &f->out)
                                               : f->entries;

    bench_counter_ns_per_item(ctx, "ns_per_task", (double)f->bc->ntasks);
    bench_counter_ns_per_item(ctx, "ns_per_entry", entries > 0 ? entries : 1);
    bench_counter(ctx, "allocs", (double)warm_allocs,
                  BENCH_COUNTER_AVG_ITERATIONS);
    bench_counter(ctx, "stat_allocs", (double)stats.allocations, 0);
    bench_counter(ctx, "tasks", (double)f->bc->ntasks, 0);
    bench_counter(ctx, "stacks", f->stacks, 0);
    bench_counter(ctx, "entries", entries, 0);
    bench_counter(ctx, "cycles", f->cycles, 0);
    bench_counter(ctx, "truncated", f->truncated, 0);
    bench_counter(ctx, "samples", (double)f->nsamples, 0);

    if (f->bc->strict && (warm_allocs != 0 || stats.allocations != 0)) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "warm resolves allocated: %llu through the allocator, "
                 "stats.allocations=%llu",
                 (unsigned long long)warm_allocs,
                 (unsigned long long)stats.allocations);
        bench_error(ctx, msg);
    }
    fixture_free(f);
}

/* ---- the scaling tables --------------------------------------------------- */

#define MAX_RESULTS 64
#define NTABLES 2 /* resolve/ and resolve_repeat/ (KIND_RESOLVE, KIND_REPEAT) */

typedef struct results {
    /* ns per task of <kind>/<shape>/<size>, one per repetition */
    double v[NTABLES][GS_SHAPE_COUNT][GS_NSIZES][MAX_RESULTS];
    int n[NTABLES][GS_SHAPE_COUNT][GS_NSIZES];
    /* The reported medians of the repetitions, used when the runs
     * themselves are not reported (--benchmark_report_aggregates_only):
     * then there is no best run. */
    double median[NTABLES][GS_SHAPE_COUNT][GS_NSIZES];
    int has_median[NTABLES][GS_SHAPE_COUNT][GS_NSIZES];
} results;

static void on_result(void *ud, const char *name, int median, double value) {
    results *res = ud;
    char kind[32], shape[32];
    unsigned size;
    if (sscanf(name, "%31[a-z_]/%31[a-z_]/%u", kind, shape, &size) != 3) return;
    int k = -1;
    for (int i = 0; i < NTABLES; i++)
        if (strcmp(kind, kind_names[i]) == 0) k = i;
    int s = gs_shape_from_name(shape);
    for (int z = 0; k >= 0 && s >= 0 && z < GS_NSIZES; z++) {
        if (gs_sizes[z] != size) continue;
        if (median) {
            res->median[k][s][z] = value;
            res->has_median[k][s][z] = 1;
        } else if (res->n[k][s][z] < MAX_RESULTS) {
            res->v[k][s][z][res->n[k][s][z]++] = value;
        }
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void print_scaling(results *res, int k, const char *title) {
    int z256 = -1, zbig = -1, any = 0;
    for (int z = 0; z < GS_NSIZES; z++) {
        if (gs_sizes[z] == 256) z256 = z;
        if (gs_sizes[z] == 65536) zbig = z;
    }
    /* Per shape and size: the median of the runs and the best run, or the
     * reported median alone (best 0: unknown). */
    double med[GS_SHAPE_COUNT][GS_NSIZES] = {{0}}, best[GS_SHAPE_COUNT][GS_NSIZES] = {{0}};
    for (int s = 0; s < GS_SHAPE_COUNT; s++) {
        for (int z = 0; z < GS_NSIZES; z++) {
            if (res->n[k][s][z]) {
                med[s][z] = median_of(res->v[k][s][z], res->n[k][s][z]);
                best[s][z] = res->v[k][s][z][0]; /* sorted by median_of */
            } else if (res->has_median[k][s][z]) {
                med[s][z] = res->median[k][s][z];
            }
            any |= med[s][z] > 0;
        }
    }
    if (!any) return;
    printf("\n%s, ns per task (median of the runs):\n%-14s", title, "shape");
    for (int z = 0; z < GS_NSIZES; z++) printf(" %8u", (unsigned)gs_sizes[z]);
    printf("   65536/256: median  best\n");
    for (int s = 0; s < GS_SHAPE_COUNT; s++) {
        int row = 0;
        for (int z = 0; z < GS_NSIZES; z++) row |= med[s][z] > 0;
        if (!row) continue;
        printf("%-14s", gs_shape_name((gs_shape)s));
        for (int z = 0; z < GS_NSIZES; z++)
            if (med[s][z] > 0) printf(" %8.1f", med[s][z]);
            else printf(" %8s", "-");
        if (z256 >= 0 && zbig >= 0 && med[s][z256] > 0 && med[s][zbig] > 0) {
            printf("   %15.2f", med[s][zbig] / med[s][z256]);
            if (best[s][z256] > 0 && best[s][zbig] > 0)
                printf(" %5.2f", best[s][zbig] / best[s][z256]);
            else
                printf(" %5s", "-");
        }
        printf("\n");
    }
}

int main(int argc, char **argv) {
    static bench_case cases[GS_SHAPE_COUNT * GS_NSIZES * KIND_COUNT];
    static pool the_pool;
    int strict = bench_take_flag(&argc, argv, "--au_strict");
    size_t nc = 0;
    /* The kinds of one shape and size side by side: they share a pool. */
    for (int s = 0; s < GS_SHAPE_COUNT; s++) {
        for (int z = 0; z < GS_NSIZES; z++) {
            for (int k = 0; k < KIND_COUNT; k++) {
                bench_case *bc = &cases[nc++];
                bc->shape = (gs_shape)s;
                bc->ntasks = gs_sizes[z];
                bc->kind = (bench_kind)k;
                bc->strict = strict;
                bc->pool = &the_pool;
                char name[96];
                snprintf(name, sizeof name, "%s/%s/%u", kind_names[k],
                         gs_shape_name(bc->shape), (unsigned)bc->ntasks);
                if (bench_register(&(bench_spec){.name = name, .arg = bc, .setup = setup_resolve,
                                                 .run = k == KIND_WRITE ? run_write : run_resolve,
                                                 .teardown = teardown_resolve,
                                                 .unit = BENCH_UNIT_US,
                                                 .manual_time = k != KIND_WRITE}))
                    return 1;
            }
        }
    }
    static results res;
    int rc = bench_main_results(argc, argv, "ns_per_task", on_result, &res);
    if (rc == 0) {
        print_scaling(&res, KIND_RESOLVE,
                      "Scaling of au_resolve, a fresh sample each call (resolve/)");
        print_scaling(&res, KIND_REPEAT,
                      "The same, one sample resolved over and over (resolve_repeat/)");
    }
    pool_free(&the_pool);
    return rc;
}
