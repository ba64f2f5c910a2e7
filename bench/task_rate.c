/*
 * task_rate: task-aware samples of a running process for a fixed time, as
 * a sampling profiler takes them, with the rate achieved and the time per
 * sample: the asyncunwind side of bench/compare_cpython315.sh.
 *
 * Opens the process with au_sampler_open_pid, takes one untimed warm-up
 * sample, then samples for --seconds: back to back by default, like a
 * profiler asked for more than it can do (CPython 3.15's sampler at its
 * default 1 kHz on a thousand tasks), or every --interval-us, sleeping
 * until the next tick when a sample finishes early.  With --render each
 * sample is also rendered (au_render, collapsed) to a sink, as a
 * profiler that prints or aggregates stacks pays for.  Each sample is
 * timed with CLOCK_MONOTONIC.
 *
 * Prints samples, samples per second, per-sample time (median, mean, p90,
 * max, in us), tasks and stacks of the last sample, the mean read syscalls
 * and pages per sample, failed samples, and a last line "RESULT key=value
 * ..." for scripts.
 *
 *   task_rate --pid PID [--seconds S] [--interval-us N] [--render]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/asyncunwind.h"

typedef struct options {
    int pid;
    double seconds;
    uint64_t interval_ns;
    int render;
} options;

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int sink(void *ud, const void *buf, size_t len) {
    (void)buf;
    *(uint64_t *)ud += len;
    return 0;
}

static void usage(FILE *out) {
    fputs("usage: task_rate --pid PID [--seconds S] [--interval-us N] [--render]\n", out);
}

static double parse_num(const char *s, const char *name, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "task_rate: bad value for %s: '%s'\n", name, s);
        exit(1);
    }
    return v;
}

static void parse_args(int argc, char **argv, options *o) {
    *o = (options){0, 5.0, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--render")) {
            o->render = 1;
        } else if (v && !strcmp(a, "--pid")) {
            o->pid = (int)parse_num(v, a, 1, 4194304), i++;
        } else if (v && !strcmp(a, "--seconds")) {
            o->seconds = parse_num(v, a, 0.01, 3600), i++;
        } else if (v && !strcmp(a, "--interval-us")) {
            o->interval_ns = (uint64_t)(parse_num(v, a, 0, 10e6) * 1000), i++;
        } else {
            usage(stderr);
            exit(1);
        }
    }
    if (!o->pid) {
        usage(stderr);
        exit(1);
    }
}

int main(int argc, char **argv) {
    options o;
    parse_args(argc, argv, &o);
    au_sampler *s;
    int rc = au_sampler_open_pid(NULL, o.pid, NULL, &s);
    if (rc != AU_OK) {
        const char *hint = au_status_hint(rc);
        fprintf(stderr, "task_rate: pid %d: %s%s%s\n", o.pid, au_status_str(rc),
                hint ? ": " : "", hint ? hint : "");
        return 1;
    }
    const au_sample *smp = NULL;
    uint64_t out_bytes = 0;
    if ((rc = au_sampler_sample(s, &smp)) != AU_OK) { /* warm-up */
        fprintf(stderr, "task_rate: warm-up sample: %s\n", au_status_str(rc));
        au_sampler_free(s);
        return 1;
    }
    size_t cap = 1 << 16, n = 0;
    uint64_t *dur = malloc(cap * sizeof *dur);
    if (!dur) return 1;
    uint64_t failed = 0, syscalls = 0, pages = 0, sum = 0;
    uint64_t start = mono_ns(), end = start + (uint64_t)(o.seconds * 1e9), next = start;
    uint64_t now = start;
    while (now < end) {
        if (o.interval_ns && now < next) {
            uint64_t d = next - now;
            struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
            nanosleep(&ts, NULL);
        }
        uint64_t t0 = mono_ns();
        rc = au_sampler_sample(s, &smp);
        if (rc == AU_OK && o.render) rc = au_render(s, smp, AU_FORMAT_COLLAPSED, sink, &out_bytes);
        uint64_t t1 = mono_ns();
        if (rc != AU_OK) {
            failed++;
        } else {
            au_sampler_stats st;
            au_sampler_get_stats(s, &st);
            syscalls += st.mem.syscalls;
            pages += st.mem.pages;
        }
        if (n == cap) {
            uint64_t *p = realloc(dur, 2 * cap * sizeof *dur);
            if (!p) break;
            dur = p;
            cap *= 2;
        }
        dur[n++] = t1 - t0;
        sum += t1 - t0;
        next = t0 + o.interval_ns;
        now = t1;
    }
    double elapsed = (double)(now - start) / 1e9;
    qsort(dur, n, sizeof *dur, cmp_u64);
    double med = n ? (double)dur[n / 2] / 1e3 : 0, mean = n ? (double)sum / (double)n / 1e3 : 0;
    double p90 = n ? (double)dur[(size_t)(0.9 * (double)(n - 1))] / 1e3 : 0;
    double max = n ? (double)dur[n - 1] / 1e3 : 0;
    uint64_t ok = n - failed;
    printf("asyncunwind %s pid %d: %zu samples in %.2f s: %.1f samples/s\n",
           o.render ? "sample + au_render (collapsed)" : "au_sampler_sample", o.pid, n, elapsed,
           elapsed > 0 ? (double)n / elapsed : 0);
    printf("  per sample: median %.1f us, mean %.1f us, p90 %.1f us, max %.1f us\n", med, mean, p90,
           max);
    printf("  last sample: %u tasks, %u stacks; per sample %.1f read syscalls, %.1f pages; %llu "
           "failed\n",
           smp ? smp->ntasks : 0, smp ? smp->nstacks : 0,
           ok ? (double)syscalls / (double)ok : 0, ok ? (double)pages / (double)ok : 0,
           (unsigned long long)failed);
    printf("RESULT samples=%zu seconds=%.3f rate=%.2f median_us=%.1f mean_us=%.1f p90_us=%.1f "
           "max_us=%.1f tasks=%u failed=%llu\n",
           n, elapsed, elapsed > 0 ? (double)n / elapsed : 0, med, mean, p90, max,
           smp ? smp->ntasks : 0, (unsigned long long)failed);
    free(dur);
    au_sampler_free(s);
    return failed == n ? 1 : 0;
}
