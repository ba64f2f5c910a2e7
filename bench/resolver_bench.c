/*
 * resolver_bench: au_resolve() on every graph shape x size of
 * bench/graph_shapes.h, and writing every resulting stack out.
 *
 * Per benchmark "resolve/<shape>/<ntasks>":
 *   time            per au_resolve call (CPU time, microseconds)
 *   ns_per_task     that time divided by the number of tasks
 *   ns_per_entry    that time divided by the entries the stacks hold when
 *                   written out (au_resolve itself writes none)
 * Per benchmark "write/<shape>/<ntasks>": the same input resolved once,
 * then the timed loop writes every stack with au_stack_entries() into one
 * reused 4,096-entry buffer, as a profiler that materialises every stack
 * would; ns_per_entry there is the cost of an output entry.
 *   allocs          heap allocations per resolve once warm, counted by the
 *                   au_allocator given to au_resolver_new, averaged over the
 *                   timed iterations (one warm-up resolve precedes them)
 *   stat_allocs     stats.allocations of the last call (the core's own count)
 *   stacks, entries stacks and entries (all stacks) produced by one resolve
 *   cycles, truncated  from au_resolver_get_stats
 *
 * After the report, a scaling table of resolve/: ns per task for every
 * shape and size (the median of the repetitions' runs), and the ratio of
 * 65,536 tasks to 256, the target being 2 at most: the ratio of
 * the medians, and of the best runs (the least disturbed by whatever else
 * the machine runs; run with --benchmark_repetitions=N for it to mean
 * something).
 *
 * Own flag (removed before the benchmark flags are parsed):
 *   --au_strict     fail a benchmark whose warm resolves allocate, or whose
 *                   output lacks the running task's stack (used by the smoke
 *                   test; timings are never asserted)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_shim.h"
#include "bench/counting_alloc.h"
#include "bench/graph_shapes.h"
#include "core/asyncunwind.h"

/* ---- one shape x size ---------------------------------------------------- */

typedef struct bench_case {
    gs_shape shape;
    uint32_t ntasks;
    int strict;
    int built;
    gs_sample sample; /* built on first use, kept until exit */
} bench_case;

typedef struct fixture {
    bench_case *bc;
    counting_alloc alloc;
    au_allocator allocator;
    au_resolver *r;
    au_stacks out;
    uint64_t allocs_before_loop;
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

static int setup_resolve(void *arg, void **out, bench_ctx *ctx) {
    bench_case *bc = arg;
    char msg[160];
    if (!bc->built) {
        if (gs_sample_build(&bc->sample, bc->shape, bc->ntasks,
                            GS_DEFAULT_SEED) != 0) {
            bench_error(ctx, "gs_sample_build failed");
            return -1;
        }
        bc->built = 1;
    }
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        bench_error(ctx, "out of memory");
        return -1;
    }
    f->bc = bc;
    f->allocator = counting_allocator(&f->alloc);
    f->r = au_resolver_new(&f->allocator, NULL);
    if (f->r == NULL) {
        free(f);
        bench_error(ctx, "au_resolver_new failed");
        return -1;
    }
    /* Warm-up: grows the context to this input's size; the second call is
     * warm, so stats.allocations describes a warm call even for the write
     * benchmarks, whose loop does not resolve. */
    int st = au_resolve(f->r, &bc->sample.sample, &f->out);
    if (st == AU_OK) st = au_resolve(f->r, &bc->sample.sample, &f->out);
    if (st != AU_OK) {
        snprintf(msg, sizeof msg, "warm-up au_resolve: %s",
                 au_status_str(st));
        au_resolver_free(f->r);
        free(f);
        bench_error(ctx, msg);
        return -1;
    }
    if (bc->strict && !has_running_stack(&f->out, bc->sample.running_id)) {
        au_resolver_free(f->r);
        free(f);
        bench_error(ctx, "no AU_STACK_RUNNING stack for the running task");
        return -1;
    }
    f->allocs_before_loop = f->alloc.allocations;
    *out = f;
    return 0;
}

static int run_resolve(void *fx, bench_ctx *ctx) {
    fixture *f = fx;
    (void)ctx;
    int st = au_resolve(f->r, &f->bc->sample.sample, &f->out);
    g_sink = f->out.nstacks;
    return st != AU_OK;
}

static void teardown_resolve(void *fx, bench_ctx *ctx) {
    fixture *f = fx;
    au_resolver_stats stats;
    memset(&stats, 0, sizeof stats);
    au_resolver_get_stats(f->r, &stats);
    uint64_t warm_allocs = f->alloc.allocations - f->allocs_before_loop;

    uint64_t entries = count_entries(f->r, &f->out);
    bench_counter_ns_per_item(ctx, "ns_per_task", (double)f->bc->ntasks);
    bench_counter_ns_per_item(ctx, "ns_per_entry",
                              (double)(entries ? entries : 1));
    bench_counter(ctx, "allocs", (double)warm_allocs,
                  BENCH_COUNTER_AVG_ITERATIONS);
    bench_counter(ctx, "stat_allocs", (double)stats.allocations, 0);
    bench_counter(ctx, "tasks", (double)f->bc->ntasks, 0);
    bench_counter(ctx, "stacks", (double)f->out.nstacks, 0);
    bench_counter(ctx, "entries", (double)entries, 0);
    bench_counter(ctx, "cycles", (double)stats.cycles, 0);
    bench_counter(ctx, "truncated", (double)stats.truncated, 0);

    if (f->bc->strict && (warm_allocs != 0 || stats.allocations != 0)) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "warm resolves allocated: %llu through the allocator, "
                 "stats.allocations=%llu",
                 (unsigned long long)warm_allocs,
                 (unsigned long long)stats.allocations);
        bench_error(ctx, msg);
    }
    au_resolver_free(f->r);
    free(f);
}

/* ---- the scaling table ---------------------------------------------------- */

#define MAX_RESULTS 64

typedef struct results {
    /* ns per task of resolve/<shape>/<size>, one per repetition */
    double v[GS_SHAPE_COUNT][GS_NSIZES][MAX_RESULTS];
    int n[GS_SHAPE_COUNT][GS_NSIZES];
    /* The reported medians of the repetitions, used when the runs
     * themselves are not reported (--benchmark_report_aggregates_only):
     * then there is no best run. */
    double median[GS_SHAPE_COUNT][GS_NSIZES];
    int has_median[GS_SHAPE_COUNT][GS_NSIZES];
} results;

static void on_result(void *ud, const char *name, int median, double value) {
    results *res = ud;
    char shape[32];
    unsigned size;
    if (sscanf(name, "resolve/%31[a-z_]/%u", shape, &size) != 2) return;
    int s = gs_shape_from_name(shape);
    for (int z = 0; s >= 0 && z < GS_NSIZES; z++) {
        if (gs_sizes[z] != size) continue;
        if (median) {
            res->median[s][z] = value;
            res->has_median[s][z] = 1;
        } else if (res->n[s][z] < MAX_RESULTS) {
            res->v[s][z][res->n[s][z]++] = value;
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

static void print_scaling(results *res) {
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
            if (res->n[s][z]) {
                med[s][z] = median_of(res->v[s][z], res->n[s][z]);
                best[s][z] = res->v[s][z][0]; /* sorted by median_of */
            } else if (res->has_median[s][z]) {
                med[s][z] = res->median[s][z];
            }
            any |= med[s][z] > 0;
        }
    }
    if (!any) return;
    printf("\nScaling of au_resolve, ns per task (median of the runs):\n%-14s", "shape");
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
    static bench_case cases[GS_SHAPE_COUNT * GS_NSIZES];
    int strict = bench_take_flag(&argc, argv, "--au_strict");
    size_t nc = 0;
    for (int s = 0; s < GS_SHAPE_COUNT; s++) {
        for (int z = 0; z < GS_NSIZES; z++) {
            bench_case *bc = &cases[nc++];
            bc->shape = (gs_shape)s;
            bc->ntasks = gs_sizes[z];
            bc->strict = strict;
        }
    }
    for (int w = 0; w < 2; w++) {
        for (size_t i = 0; i < nc; i++) {
            bench_case *bc = &cases[i];
            char name[96];
            snprintf(name, sizeof name, "%s/%s/%u", w ? "write" : "resolve",
                     gs_shape_name(bc->shape), (unsigned)bc->ntasks);
            bench_spec spec;
            memset(&spec, 0, sizeof spec);
            spec.name = name;
            spec.arg = bc;
            spec.setup = setup_resolve;
            spec.run = w ? run_write : run_resolve;
            spec.teardown = teardown_resolve;
            spec.unit = BENCH_UNIT_US;
            if (bench_register(&spec) != 0) {
                fprintf(stderr, "bench_register(%s) failed\n", name);
                return 1;
            }
        }
    }
    static results res;
    int rc = bench_main_results(argc, argv, "ns_per_task", on_result, &res);
    if (rc == 0) print_scaling(&res);
    for (size_t i = 0; i < nc; i++) gs_sample_free(&cases[i].sample);
    return rc;
}
