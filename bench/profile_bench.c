/*
 * profile_bench: the cost of aggregating samples into a profile and of
 * writing it, on golden snapshots of real processes (corpus/golden/,
 * replayed, so no interpreter runs and results are reproducible).
 *
 *   add/NAME      au_profile_add of one sample into a warm profile, where
 *                 every stack is already counted: the steady state of a
 *                 long record.  Counters: ns per stack and per entry, and
 *                 allocations in the timed loop (must be 0).
 *   write/FORMAT  writing a profile of every golden snapshot, to a sink
 *                 that discards.
 *
 *   bazel run -c opt //bench:profile_bench
 *
 * --au_strict (the smoke test) fails a benchmark that allocates in its
 * warm loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_shim.h"
#include "bench/counting_alloc.h"
#include "core/asyncunwind.h"

#define GOLDEN "corpus/golden/"

static int strict;

typedef struct replay {
    uint8_t *data;
    au_snapshot *snap;
    au_sampler *s;
    const au_sample *smp;
} replay;

static int replay_open(replay *r, const char *path) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 20, n = 0, k;
    r->data = malloc(cap);
    while (r->data && (k = fread(r->data + n, 1, cap - n, f)) > 0)
        if ((n += k) == cap) r->data = realloc(r->data, cap *= 2);
    fclose(f);
    if (!r->data || au_snapshot_parse(NULL, r->data, n, &r->snap) != AU_OK ||
        au_sampler_open_snapshot(NULL, r->snap, NULL, &r->s) != AU_OK ||
        au_sampler_sample(r->s, &r->smp) != AU_OK)
        return -1;
    return 0;
}

static void replay_close(replay *r) {
    au_sampler_free(r->s);
    au_snapshot_free(r->snap);
    free(r->data);
}

typedef struct add_fixture {
    replay r;
    counting_alloc c;
    au_profile *p;
    uint64_t warm_allocs;
    uint64_t entries;
} add_fixture;

static int add_setup(void *arg, void **fixture, bench_ctx *ctx) {
    add_fixture *f = calloc(1, sizeof *f);
    *fixture = f;
    char path[256];
    snprintf(path, sizeof path, GOLDEN "%s.snap", (const char *)arg);
    if (!f || replay_open(&f->r, path) != 0) {
        bench_error(ctx, "cannot replay the snapshot (run from the workspace root)");
        return 1;
    }
    au_allocator a = counting_allocator(&f->c);
    if (au_profile_new(&a, NULL, &f->p) != AU_OK ||
        au_profile_add(f->p, f->r.s, f->r.smp, 0, 1) != AU_OK) {
        bench_error(ctx, "au_profile_add failed");
        return 1;
    }
    for (uint32_t k = 0; k < f->r.smp->nstacks; k++)
        f->entries += au_sample_stack_entries(f->r.s, k, NULL, 0) + 1;
    f->warm_allocs = f->c.allocations;
    return 0;
}

static int add_run(void *fixture, bench_ctx *ctx) {
    add_fixture *f = fixture;
    (void)ctx;
    return au_profile_add(f->p, f->r.s, f->r.smp, 0, 1) != AU_OK;
}

static void add_teardown(void *fixture, bench_ctx *ctx) {
    add_fixture *f = fixture;
    if (!f) return;
    if (f->p) {
        uint64_t allocs = f->c.allocations - f->warm_allocs;
        bench_counter_ns_per_item(ctx, "ns/stack", f->r.smp->nstacks);
        bench_counter_ns_per_item(ctx, "ns/entry", (double)f->entries);
        bench_counter(ctx, "stacks", f->r.smp->nstacks, BENCH_COUNTER_DEFAULT);
        bench_counter(ctx, "allocs", (double)allocs, BENCH_COUNTER_DEFAULT);
        if (strict && allocs) bench_error(ctx, "a warm au_profile_add allocated");
        au_profile_free(f->p);
    }
    if (f->r.data) replay_close(&f->r);
    free(f);
}

static int discard(void *ud, const void *buf, size_t len) {
    (void)buf;
    *(uint64_t *)ud += len;
    return 0;
}

typedef struct write_fixture {
    au_profile *p;
    uint32_t format;
    uint64_t bytes;
} write_fixture;

static const char *const WRITE_SNAPS[] = {
    "pyenv-3.12-seed.agent", "pyenv-3.12-many_tasks.agent", "pyenv-3.12-gather_tree",
    "pyenv-3.12-threads", "sid-3.14-taskgroup_tree", "pyenv-3.13-deadlock.agent",
    "pyenv-3.9-deep_chain", "sid-3.15-unicode_names",
};

static int write_setup(void *arg, void **fixture, bench_ctx *ctx) {
    write_fixture *f = calloc(1, sizeof *f);
    *fixture = f;
    f->format = (uint32_t)(uintptr_t)arg;
    if (au_profile_new(NULL, NULL, &f->p) != AU_OK) return 1;
    for (size_t i = 0; i < sizeof WRITE_SNAPS / sizeof *WRITE_SNAPS; i++) {
        char path[256];
        replay r;
        snprintf(path, sizeof path, GOLDEN "%s.snap", WRITE_SNAPS[i]);
        int bad = replay_open(&r, path) != 0 || au_profile_add(f->p, r.s, r.smp, 0, 1) != AU_OK;
        if (r.data) replay_close(&r);
        if (bad) {
            bench_error(ctx, "cannot replay a snapshot (run from the workspace root)");
            return 1;
        }
    }
    return 0;
}

static int write_run(void *fixture, bench_ctx *ctx) {
    write_fixture *f = fixture;
    (void)ctx;
    f->bytes = 0;
    return au_profile_write(f->p, f->format, "bench", discard, &f->bytes) != AU_OK;
}

static void write_teardown(void *fixture, bench_ctx *ctx) {
    write_fixture *f = fixture;
    if (!f) return;
    if (f->p) {
        au_profile_stats st;
        au_profile_get_stats(f->p, &st);
        bench_counter(ctx, "bytes", (double)f->bytes, BENCH_COUNTER_DEFAULT);
        bench_counter(ctx, "stacks", st.stacks, BENCH_COUNTER_DEFAULT);
        au_profile_free(f->p);
    }
    free(f);
}

int main(int argc, char **argv) {
    strict = bench_take_flag(&argc, argv, "--au_strict");
    static const char *const adds[] = {"pyenv-3.12-seed.agent", "pyenv-3.12-many_tasks.agent",
                                       "pyenv-3.12-deep_chain", "sid-3.14-gather_tree"};
    char name[128];
    for (size_t i = 0; i < sizeof adds / sizeof *adds; i++) {
        snprintf(name, sizeof name, "add/%s", adds[i]);
        bench_register(&(bench_spec){.name = name, .arg = (void *)adds[i], .setup = add_setup,
                                     .run = add_run, .teardown = add_teardown});
    }
    static const struct {
        const char *name;
        uint32_t format;
    } formats[] = {{"write/collapsed", AU_FORMAT_COLLAPSED},
                   {"write/speedscope", AU_FORMAT_SPEEDSCOPE},
                   {"write/svg", AU_FORMAT_SVG}};
    for (size_t i = 0; i < 3; i++)
        bench_register(&(bench_spec){.name = formats[i].name,
                                     .arg = (void *)(uintptr_t)formats[i].format,
                                     .setup = write_setup, .run = write_run,
                                     .teardown = write_teardown});
    return bench_main(argc, argv);
}
