/*
 * bench_shim: a small C API over Google Benchmark, so benchmark bodies stay
 * plain C.  bench_shim.cc is the only C++; it owns the timing loop.
 *
 * A benchmark is three callbacks:
 *
 *   setup(arg, &fixture, ctx)   untimed, before the loop; returns 0 or sets
 *                               an error (bench_error) and returns non-zero
 *   run(fixture, ctx)           timed, once per iteration; returns 0, or
 *                               non-zero to stop with an error
 *   teardown(fixture, ctx)      untimed, after the loop (also after errors
 *                               in run); report counters here and free
 *
 * Google Benchmark calls the benchmark function several times while it
 * picks an iteration count, so setup/teardown run more than once; cache
 * expensive inputs in `arg` if needed.
 *
 * Typical main:
 *
 *   int main(int argc, char **argv) {
 *       bench_register(&(bench_spec){.name = "x", .setup = s, .run = r});
 *       return bench_main(argc, argv);
 *   }
 */
#ifndef AU_BENCH_SHIM_H
#define AU_BENCH_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The running benchmark (wraps benchmark::State).  Valid only inside the
 * callbacks it is passed to. */
typedef struct bench_ctx bench_ctx;

typedef int (*bench_setup_fn)(void *arg, void **fixture, bench_ctx *ctx);
typedef int (*bench_run_fn)(void *fixture, bench_ctx *ctx);
typedef void (*bench_teardown_fn)(void *fixture, bench_ctx *ctx);

typedef enum bench_unit {
    BENCH_UNIT_DEFAULT = 0, /* the library's default (ns) */
    BENCH_UNIT_NS,
    BENCH_UNIT_US,
    BENCH_UNIT_MS,
    BENCH_UNIT_S,
} bench_unit;

typedef struct bench_spec {
    const char *name;           /* copied */
    void *arg;                  /* passed to setup; must outlive bench_main */
    bench_setup_fn setup;       /* optional; fixture = arg when NULL */
    bench_run_fn run;           /* required */
    bench_teardown_fn teardown; /* optional */
    bench_unit unit;            /* unit of the time columns */
    int use_real_time;          /* wall clock instead of CPU time (e.g. for
                                   benchmarks that sleep or do I/O) */
    int manual_time;            /* time only the spans run() brackets with
                                   bench_timed_begin/end, on the wall clock
                                   (for a body that must prepare each
                                   iteration's input untimed) */
    double min_time;            /* seconds; 0 = --benchmark_min_time */
} bench_spec;

/* Register a benchmark (call before bench_main).  Returns 0, or -1 when the
 * spec is invalid (said on stderr, with the benchmark's name). */
int bench_register(const bench_spec *spec);

/* Counter flags, mirroring benchmark::Counter::Flags. */
enum {
    BENCH_COUNTER_DEFAULT = 0,
    BENCH_COUNTER_RATE = 1 << 0,       /* divided by the measured time */
    BENCH_COUNTER_ITER_INVARIANT = 1 << 2, /* multiplied by the iterations */
    BENCH_COUNTER_AVG_ITERATIONS = 1 << 3, /* divided by the iterations */
    BENCH_COUNTER_INVERT = 1 << 30,    /* inverted last */
};

/* Set a user counter (from teardown, i.e. after the loop). */
void bench_counter(bench_ctx *ctx, const char *name, double value,
                   unsigned flags);

/* Set counter `name` to the time per iteration divided by
 * `items_per_iteration`, in nanoseconds (e.g. ns per task): a plain number
 * in the console and the JSON.  The shim times the loop itself on the clock
 * of the time column (the thread's CPU time, or the wall clock with
 * use_real_time), excluding bench_pause()d spans; with manual_time it adds
 * up the bench_timed_begin/end spans instead.  Call from teardown. */
void bench_counter_ns_per_item(bench_ctx *ctx, const char *name,
                               double items_per_iteration);

/* Iterations of the timed loop (valid in teardown). */
int64_t bench_iterations(const bench_ctx *ctx);

/* With manual_time: time the span from begin to end of this iteration
 * (once per run() call).  Costs one clock read at each end, about 25 ns on
 * the machine the benchmarks were measured on, far cheaper than
 * bench_pause/bench_resume. */
void bench_timed_begin(bench_ctx *ctx);
void bench_timed_end(bench_ctx *ctx);

/* Stop timing / restart timing inside run (expensive: avoid per iteration
 * when the body is short). */
void bench_pause(bench_ctx *ctx);
void bench_resume(bench_ctx *ctx);

/* Report the benchmark as failed with `msg` (copied).  bench_main then
 * returns non-zero. */
void bench_error(bench_ctx *ctx, const char *msg);

/* A label printed next to the result (copied). */
void bench_label(bench_ctx *ctx, const char *label);

/* Remove a boolean flag (exact match, e.g. "--strict") from argv, for a
 * program's own flags; call before bench_main.  Returns 1 if present. */
int bench_take_flag(int *argc, char **argv, const char *flag);

/* Remove "--name=value" from argv and return value (pointing into argv), or
 * NULL when absent. */
const char *bench_take_value(int *argc, char **argv, const char *name);

/* Parse the benchmark flags, run the selected benchmarks, print the report.
 * Returns 0, 1 for unrecognised arguments, 2 if any benchmark failed. */
int bench_main(int argc, char **argv);

/* A reported result of one counter: the run of one repetition (median 0)
 * or, when only aggregates are reported, the median of the repetitions
 * (median 1).  name is the benchmark's name, without suffix. */
typedef void (*bench_result_fn)(void *ud, const char *name, int median, double value);

/* bench_main, also calling fn with every reported result of `counter` once
 * the console report has printed it.  With a --benchmark_format other than
 * console, this is bench_main and fn is not called. */
int bench_main_results(int argc, char **argv, const char *counter, bench_result_fn fn,
                       void *ud);

#ifdef __cplusplus
}
#endif
#endif /* AU_BENCH_SHIM_H */
