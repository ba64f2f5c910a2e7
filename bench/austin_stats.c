/*
 * austin_stats: sampling statistics in the form austin reports them, so the
 * core's sampler can be compared with austin side by side.
 *
 * Runs python_fixtures/cpu_bound.py (a recursion --frames deep in total,
 * spinning on CPU in its innermost frame) under an interpreter of
 * tests/pythons.h, or attaches to --pid, then samples every thread with
 * au_pyreader_sample() at a fixed interval for a fixed duration, timing
 * each sample with CLOCK_MONOTONIC.  Sample k is due at start + k x
 * interval (clock_nanosleep, TIMER_ABSTIME), the sampler's timing rule of
 * issue 10: a sample that overruns starts the next one at once (late
 * samples are caught up back to back; only deadlines more than 1 s late
 * are dropped, and counted); the sleep uses the thread's timer slack, as austin's does (see
 * --timer-slack-ns).  Interval 0 samples back to back.
 *
 * Printed per target: interval, duration, number of samples, per-sample time
 * min/avg/max and median/p99 (us), samples per second achieved, the share of
 * samples slower than the interval ("long sampling rate"), the error rate
 * (samples that failed or held a thread flagged AU_THREAD_PARTIAL), the mean
 * syscalls/pages/bytes/reads per sample, and, for a spawned fixture, how
 * many samples showed exactly the expected stack (one thread, --frames
 * frames, no flag), with the shapes of the others.  A last "RESULT" line
 * carries the same numbers as key=value for scripts.
 *
 * Usage:
 *   austin_stats [--python NAME[,NAME...]] [--pid PID] [--interval-us N]
 *                [--seconds S] [--frames N] [--timer-slack-ns N]
 *
 *   --python NAME    interpreter of tests/pythons.h (pyenv-3.12, sid-3.14,
 *                    ...); several may be given; default pyenv-3.12 and
 *                    pyenv-3.13, one after the other
 *   --pid PID        attach to a running CPython process instead
 *   --interval-us N  sampling interval (default 100)
 *   --seconds S      duration of each measurement (default 10)
 *   --frames N       stack depth of the spawned fixture, in frames from
 *                    <module> to spin() (default 40: cpu_bound.py N-3)
 *   --timer-slack-ns N  set the thread's timer slack (default: leave the
 *                    kernel's, 50 us for normal threads, as austin does)
 *
 *   bazel run -c opt //bench:austin_stats -- --python pyenv-3.12
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/asyncunwind.h"
#include "tests/pythons.h"

#define FIXTURE "python_fixtures/cpu_bound.py"
#define DEFAULT_PYTHONS "pyenv-3.12,pyenv-3.13"
#define FIXTURE_FRAMES_ABOVE 3 /* <module>, main(), spin() around recurse() */
#define SETTLE_NS 100000000L    /* after READY, before the first sample */
#define MAX_LAG_NS 1000000000ull /* a longer stall drops its deadlines */

typedef struct options {
    const char *pythons;
    int pid;
    uint64_t interval_ns;
    double seconds;
    int frames;
    long timer_slack_ns; /* -1: leave as is */
} options;

typedef struct result {
    uint64_t nsamples, errors, partial, long_samples, expected_ok;
    uint64_t missed; /* deadlines dropped after a stall */
    uint64_t late;   /* samples started more than an interval late */
    uint64_t syscalls, pages, bytes, requests;
    uint64_t first_ns;
    uint32_t min_depth, max_depth;
    /* Samples without the expected stack, by shape (first few shapes). */
    struct { uint32_t nthreads, nframes, flags; uint64_t count; } odd[4];
    uint32_t nodd;
    double elapsed_s;
    double cpu_s, user_s; /* user_s: of cpu_s, in user space */
    long nivcsw;
    uint64_t *dur; /* ns per sample */
    size_t dur_cap;
} result;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

static double loadavg1(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "re");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(FILE *out) {
    fputs("usage: austin_stats [--python NAME[,NAME...]] [--pid PID] [--interval-us N]\n"
          "                    [--seconds S] [--frames N] [--timer-slack-ns N]\n",
          out);
}

/* "--name VALUE" or "--name=VALUE"; advances *i past what it used. */
static const char *opt_value(int argc, char **argv, int *i, const char *name) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "austin_stats: %s needs a value\n", name);
        exit(1);
    }
    return argv[++*i];
}

static double parse_num(const char *s, const char *name, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "austin_stats: bad value for %s: '%s'\n", name, s);
        exit(1);
    }
    return v;
}

static void parse_args(int argc, char **argv, options *o) {
    *o = (options){NULL, 0, 100000, 10.0, 40, -1};
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            exit(0);
        } else if ((v = opt_value(argc, argv, &i, "--python"))) {
            /* Several --python flags accumulate into one list. */
            if (o->pythons) {
                size_t n = strlen(o->pythons) + strlen(v) + 2;
                char *l = malloc(n);
                if (!l) exit(1);
                snprintf(l, n, "%s,%s", o->pythons, v);
                o->pythons = l; /* lives until exit */
            } else {
                o->pythons = v;
            }
        } else if ((v = opt_value(argc, argv, &i, "--pid"))) {
            o->pid = (int)parse_num(v, "--pid", 1, 4194304);
        } else if ((v = opt_value(argc, argv, &i, "--interval-us"))) {
            o->interval_ns = (uint64_t)(parse_num(v, "--interval-us", 0, 60e6) * 1000);
        } else if ((v = opt_value(argc, argv, &i, "--seconds"))) {
            o->seconds = parse_num(v, "--seconds", 0.001, 86400);
        } else if ((v = opt_value(argc, argv, &i, "--frames"))) {
            o->frames = (int)parse_num(v, "--frames", FIXTURE_FRAMES_ABOVE + 1, 900);
        } else if ((v = opt_value(argc, argv, &i, "--timer-slack-ns"))) {
            o->timer_slack_ns = (long)parse_num(v, "--timer-slack-ns", 1, 1e9);
        } else {
            fprintf(stderr, "austin_stats: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            exit(1);
        }
    }
    if (o->pid && o->pythons) {
        fprintf(stderr, "austin_stats: --pid and --python exclude each other\n");
        exit(1);
    }
    if (!o->pid && !o->pythons) o->pythons = DEFAULT_PYTHONS;
}

/* The fixture, relative to the cwd (bazel run: the runfiles tree), else in
 * the binary's own runfiles. */
static const char *fixture_path(const char *argv0, char *buf, size_t cap) {
    if (access(FIXTURE, R_OK) == 0) return FIXTURE;
    const char *dir = getenv("RUNFILES_DIR");
    if (dir) snprintf(buf, cap, "%s/asyncunwind/%s", dir, FIXTURE);
    else snprintf(buf, cap, "%s.runfiles/asyncunwind/%s", argv0, FIXTURE);
    return access(buf, R_OK) == 0 ? buf : FIXTURE;
}

static int push_dur(result *res, uint64_t ns) {
    if (res->nsamples == res->dur_cap) {
        size_t cap = res->dur_cap ? res->dur_cap * 2 : 65536;
        uint64_t *p = realloc(res->dur, cap * sizeof *p);
        if (!p) return -1;
        res->dur = p;
        res->dur_cap = cap;
    }
    res->dur[res->nsamples] = ns;
    return 0;
}

/* Sample pid for o->seconds.  expect_frames > 0: count samples whose first
 * thread has exactly that many frames. */
static int measure(int pid, const options *o, uint32_t expect_frames, au_pyruntime *rt,
                   result *res) {
    au_memsrc *mem = NULL;
    au_pyreader *r = NULL;
    int rc = au_memsrc_live_open(NULL, pid, &mem);
    if (rc == AU_OK) rc = au_pyruntime_find(NULL, pid, mem, rt);
    if (rc == AU_OK)
        rc = au_pyreader_new(NULL, mem, rt->py_version_hex, rt->runtime_addr, NULL, &r);
    if (rc != AU_OK) {
        const char *hint = au_status_hint(rc);
        fprintf(stderr, "austin_stats: pid %d: %s%s%s\n", pid, au_status_str(rc),
                hint ? ": " : "", hint ? hint : "");
        if (mem) au_memsrc_destroy(mem);
        return -1;
    }
    res->min_depth = UINT32_MAX;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    const uint64_t start = mono_ns();
    const uint64_t stop = start + (uint64_t)(o->seconds * 1e9);
    uint64_t last_end = start;
    uint64_t deadline = start; /* of the sample being taken */
    int lost = 0;
    while (!g_stop) {
        uint64_t t0 = mono_ns();
        if (t0 >= stop) break;
        if (o->interval_ns && t0 > deadline + o->interval_ns) res->late++;
        au_pysample s;
        int src = au_pyreader_sample(r, &s);
        uint64_t t1 = mono_ns();
        last_end = t1;
        uint64_t d = t1 - t0;
        if (push_dur(res, d) != 0) {
            fprintf(stderr, "austin_stats: out of memory\n");
            break;
        }
        if (res->nsamples == 0) res->first_ns = d;
        res->nsamples++;
        if (d > o->interval_ns) res->long_samples++;
        au_pyreader_stats st;
        au_pyreader_get_stats(r, &st);
        res->syscalls += st.mem.syscalls;
        res->pages += st.mem.pages;
        res->bytes += st.mem.bytes;
        res->requests += st.mem.requests;
        if (src != AU_OK) {
            res->errors++;
            if (src == AU_ERR_NOPROC) {
                lost = 1;
                break;
            }
        } else {
            int partial = 0;
            uint32_t depth = 0;
            for (uint32_t i = 0; i < s.nthreads; i++) {
                partial |= (s.threads[i].flags & AU_THREAD_PARTIAL) != 0;
                if (s.threads[i].nframes > depth) depth = s.threads[i].nframes;
            }
            if (partial) {
                res->errors++;
                res->partial++;
            }
            if (depth < res->min_depth) res->min_depth = depth;
            if (depth > res->max_depth) res->max_depth = depth;
            if (expect_frames) {
                uint32_t nf = s.nthreads ? s.threads[0].nframes : 0;
                uint32_t fl = s.nthreads ? s.threads[0].flags : 0;
                if (s.nthreads == 1 && nf == expect_frames && fl == 0) {
                    res->expected_ok++;
                } else {
                    uint32_t k = 0;
                    while (k < res->nodd && (res->odd[k].nthreads != s.nthreads ||
                                             res->odd[k].nframes != nf || res->odd[k].flags != fl))
                        k++;
                    if (k == res->nodd && k < 4) {
                        res->odd[k].nthreads = s.nthreads;
                        res->odd[k].nframes = nf;
                        res->odd[k].flags = fl;
                        res->nodd++;
                    }
                    if (k < res->nodd) res->odd[k].count++;
                }
            }
        }
        /* Sample k is due at start + k x interval, an absolute deadline,
         * so sleep overshoot and timer slack do not add up over samples.
         * A sample that ends past its successor's deadline starts that one
         * at once, and so on until the sampler has caught up (py-spy's
         * timer does the same).  Only a stall longer than MAX_LAG_NS (the
         * sampler stopped, not merely descheduled) drops the deadlines it
         * missed instead of sampling them back to back. */
        if (o->interval_ns == 0) continue;
        deadline += o->interval_ns;
        uint64_t now = mono_ns();
        if (now > deadline + MAX_LAG_NS) {
            uint64_t behind = (now - deadline) / o->interval_ns;
            res->missed += behind;
            deadline += behind * o->interval_ns;
        }
        uint64_t next = deadline;
        if (next > stop) next = stop;
        if (next > now) {
            struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
                   !g_stop) {
            }
        }
    }
    getrusage(RUSAGE_SELF, &ru1);
    res->elapsed_s = (double)(last_end - start) / 1e9;
    res->cpu_s = tv_s(ru1.ru_utime) + tv_s(ru1.ru_stime) - tv_s(ru0.ru_utime) -
                 tv_s(ru0.ru_stime);
    res->user_s = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
    res->nivcsw = ru1.ru_nivcsw - ru0.ru_nivcsw;
    if (res->min_depth == UINT32_MAX) res->min_depth = 0;
    au_pyreader_free(r);
    au_memsrc_destroy(mem);
    if (lost) fprintf(stderr, "austin_stats: pid %d exited during the measurement\n", pid);
    return 0;
}

static void version_str(uint32_t hex, char *out, size_t cap) {
    snprintf(out, cap, "%u.%u.%u", hex >> 24, hex >> 16 & 0xff, hex >> 8 & 0xff);
}

static void report(const char *label, int pid, const au_pyruntime *rt, const options *o,
                   uint32_t expect_frames, double load0, double load1, result *res) {
    uint64_t n = res->nsamples;
    char ver[32];
    version_str(rt->py_version_hex, ver, sizeof ver);
    long slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    printf("austin_stats: %s (CPython %s), pid %d", label, ver, pid);
    if (expect_frames) printf(", %s, %u frames", FIXTURE, expect_frames);
    printf("\n");
    if (n == 0) {
        printf("  no samples\n");
        return;
    }
    uint64_t sum = 0, mn = UINT64_MAX, mx = 0;
    for (uint64_t i = 0; i < n; i++) {
        sum += res->dur[i];
        if (res->dur[i] < mn) mn = res->dur[i];
        if (res->dur[i] > mx) mx = res->dur[i];
    }
    qsort(res->dur, n, sizeof *res->dur, cmp_u64);
    double med = n % 2 ? (double)res->dur[n / 2]
                       : ((double)res->dur[n / 2 - 1] + (double)res->dur[n / 2]) / 2;
    uint64_t k99 = (uint64_t)((double)n * 0.99 + 0.999999);
    double p99 = (double)res->dur[(k99 ? k99 : 1) - 1];
    double avg = (double)sum / (double)n;
    double rate = res->elapsed_s > 0 ? (double)n / res->elapsed_s : 0;
    double target = o->interval_ns ? 1e9 / (double)o->interval_ns : 0;
    double dn = (double)n;
    printf("  Sampling interval           : %.0f us (timer slack %ld ns)\n",
           (double)o->interval_ns / 1e3, slack);
    printf("  Duration                    : %.3f s\n", res->elapsed_s);
    printf("  Samples                     : %llu\n", (unsigned long long)n);
    printf("  Sampling time (min/avg/max) : %.1f/%.1f/%.1f us\n", (double)mn / 1e3, avg / 1e3,
           (double)mx / 1e3);
    printf("  Sampling time (median/p99)  : %.1f/%.1f us\n", med / 1e3, p99 / 1e3);
    printf("  Samples per second          : %.1f (target %.1f)\n", rate, target);
    if (o->interval_ns)
        printf("  Nominal rate reached        : %.1f %% (%llu samples started over an interval "
               "late, %llu deadlines dropped after stalls)\n",
               target > 0 ? 100.0 * rate / target : 0.0, (unsigned long long)res->late,
               (unsigned long long)res->missed);
    printf("  Long sampling rate          : %llu/%llu (%.2f %%) samples took longer than the "
           "sampling interval to collect\n",
           (unsigned long long)res->long_samples, (unsigned long long)n,
           100.0 * (double)res->long_samples / dn);
    printf("  Error rate                  : %llu/%llu (%.2f %%) invalid samples (%llu with a "
           "partial thread)\n",
           (unsigned long long)res->errors, (unsigned long long)n,
           100.0 * (double)res->errors / dn, (unsigned long long)res->partial);
    if (expect_frames)
        printf("  Expected stack              : %llu/%llu (%.2f %%) samples had exactly %u "
               "frames\n",
               (unsigned long long)res->expected_ok, (unsigned long long)n,
               100.0 * (double)res->expected_ok / dn, expect_frames);
    for (uint32_t k = 0; k < res->nodd; k++)
        printf("    other: %llu samples with %u thread(s), first thread %u frames, flags 0x%x\n",
               (unsigned long long)res->odd[k].count, res->odd[k].nthreads, res->odd[k].nframes,
               res->odd[k].flags);
    printf("  Stack depth (min/max)       : %u/%u frames\n", res->min_depth, res->max_depth);
    printf("  Per sample (mean)           : %.2f syscalls, %.2f pages, %.0f bytes, %.2f reads\n",
           (double)res->syscalls / dn, (double)res->pages / dn, (double)res->bytes / dn,
           (double)res->requests / dn);
    printf("  First sample (cold cache)   : %.1f us\n", (double)res->first_ns / 1e3);
    printf("  Sampler CPU                 : %.1f %% of one core (%.0f %% of it in user space), "
           "%ld involuntary context switches\n",
           res->elapsed_s > 0 ? 100.0 * res->cpu_s / res->elapsed_s : 0.0,
           res->cpu_s > 0 ? 100.0 * res->user_s / res->cpu_s : 0.0, res->nivcsw);
    printf("  Load average (1 min)        : %.2f at start, %.2f at end\n", load0, load1);
    printf("RESULT target=%s version=%s interval_us=%.0f seconds=%.3f samples=%llu "
           "min_us=%.2f avg_us=%.2f max_us=%.2f median_us=%.2f p99_us=%.2f rate=%.1f "
           "long_pct=%.3f error_pct=%.3f expected_pct=%.3f syscalls=%.2f pages=%.2f "
           "bytes=%.0f reads=%.2f cpu_pct=%.1f nivcsw=%ld load=%.2f missed=%llu late=%llu\n",
           label, ver, (double)o->interval_ns / 1e3, res->elapsed_s, (unsigned long long)n,
           (double)mn / 1e3, avg / 1e3, (double)mx / 1e3, med / 1e3, p99 / 1e3, rate,
           100.0 * (double)res->long_samples / dn, 100.0 * (double)res->errors / dn,
           expect_frames ? 100.0 * (double)res->expected_ok / dn : -1.0,
           (double)res->syscalls / dn, (double)res->pages / dn, (double)res->bytes / dn,
           (double)res->requests / dn,
           res->elapsed_s > 0 ? 100.0 * res->cpu_s / res->elapsed_s : 0.0, res->nivcsw,
           load0, (unsigned long long)res->missed, (unsigned long long)res->late);
    fflush(stdout);
}

static int run_target(const char *label, int pid, const options *o, uint32_t expect_frames) {
    result res;
    memset(&res, 0, sizeof res);
    au_pyruntime rt;
    double load0 = loadavg1();
    int rc = measure(pid, o, expect_frames, &rt, &res);
    double load1 = loadavg1();
    if (rc == 0) report(label, pid, &rt, o, expect_frames, load0, load1, &res);
    free(res.dur);
    return rc;
}

int main(int argc, char **argv) {
    options o;
    parse_args(argc, argv, &o);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (o.timer_slack_ns > 0 && prctl(PR_SET_TIMERSLACK, (unsigned long)o.timer_slack_ns, 0, 0,
                                      0) != 0) {
        perror("austin_stats: PR_SET_TIMERSLACK");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (o.pid) {
        char label[32];
        snprintf(label, sizeof label, "pid-%d", o.pid);
        return run_target(label, o.pid, &o, 0) ? 2 : 0;
    }

    char buf[4096];
    const char *fixture = fixture_path(argv[0], buf, sizeof buf);
    char depth[16];
    snprintf(depth, sizeof depth, "%d", o.frames - FIXTURE_FRAMES_ABOVE);
    const char *const args[] = {depth, NULL};
    int status = 0;
    for (const char *p = o.pythons; *p && !g_stop;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), p);
        p += len + (e != NULL);
        const py_interp *interp = py_interpreter(name);
        if (!interp) {
            fprintf(stderr, "austin_stats: unknown interpreter '%s' (see tests/pythons.h)\n",
                    name);
            status = 2;
            continue;
        }
        if (!interp->available) {
            fprintf(stderr, "austin_stats: %s is unavailable: %s\n", name, interp->reason);
            status = 2;
            continue;
        }
        py_proc proc;
        if (py_spawn_fixture(interp, fixture, args, &proc) != 0) {
            fprintf(stderr, "austin_stats: %s: %s\n", name, proc.error);
            status = 2;
            continue;
        }
        /* READY is printed from announce(), called by spin(): let the
         * fixture return from it and settle into its loop first. */
        struct timespec settle = {0, SETTLE_NS};
        nanosleep(&settle, NULL);
        if (run_target(name, proc.pid, &o, (uint32_t)o.frames) != 0) status = 2;
        py_kill(&proc);
    }
    return status;
}
