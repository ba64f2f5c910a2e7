/*
 * A consistent sample of a busy target: retry while the last one was
 * partial.
 *
 * A sample reads a process that keeps running, so a thread that exits, or
 * a stack that grows or shrinks while its frames are read, leaves a frame
 * chain that breaks half-way (AU_THREAD_PARTIAL, AU_THREAD_CYCLE); a
 * sample flagged AU_SAMPLE_PARTIAL (reserved) is retried too.  The first sample
 * of a sampler is also its slowest: it must find every code object and
 * page, which stretches the window in which the target can change under
 * it.  The next samples are warm and several times shorter, so trying
 * again at once nearly always gives a consistent one; when it does not,
 * short and growing pauses let a burst of churn (threads starting, deep
 * recursion unwinding) pass.  Both the attempts and the time are bounded
 * (docs/CLI.md): a target that never holds still still gets an answer,
 * the last sample, and the user is told it is partial.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "asyncunwind.h"
#include "cli.h"

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void pause_ms(unsigned ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int cli_sample_partial(const au_sample *smp) {
    if (smp->flags & AU_SAMPLE_PARTIAL) return 1;
    for (uint32_t i = 0; i < smp->nthreads; i++)
        if (smp->threads[i].flags & (AU_THREAD_PARTIAL | AU_THREAD_CYCLE)) return 1;
    return 0;
}

/* Writes n with thousands separators ("65,536") into buf (>= 27 bytes). */
static const char *thousands(uint64_t n, char *buf) {
    char digits[24];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    int at = 0;
    for (int i = nd - 1; i >= 0; i--) {
        buf[at++] = digits[i];
        if (i && i % 3 == 0) buf[at++] = ',';
    }
    buf[at] = 0;
    return buf;
}

const char *cli_limits_text(char *buf, size_t size) {
    char t[32], th[32], p[32];
    snprintf(buf, size,
             "a sample holds at most %s tasks, %s threads and %s pages (%u MiB) of the target "
             "(au_sampler_options' defaults)",
             thousands(AU_DEFAULT_SAMPLE_TASKS, t), thousands(AU_DEFAULT_MAX_THREADS, th),
             thousands(AU_DEFAULT_MAX_PAGES, p), AU_DEFAULT_MAX_PAGES / 256u);
    return buf;
}

/* A limit is not a race: no retry changes it, but the user must know
 * that what was printed is not everything, and which limit cut it.  The
 * CLI runs with the defaults, which the words here spell out. */
void cli_warn_truncated(const au_sampler *s, const au_sample *smp) {
    if (!(smp->flags & AU_SAMPLE_TRUNCATED)) return;
    au_sampler_stats st;
    au_sampler_get_stats(s, &st);
    static const struct {
        uint32_t bit;
        uint64_t n;
        const char *what;
    } limits[] = {{AU_LIMIT_TASKS, AU_DEFAULT_SAMPLE_TASKS, "tasks"},
                  {AU_LIMIT_THREADS, AU_DEFAULT_MAX_THREADS, "threads"},
                  {AU_LIMIT_PAGES, AU_DEFAULT_MAX_PAGES, "pages to read"},
                  {AU_LIMIT_LINKS, AU_DEFAULT_MAX_LINKS, "links in a thread"}};
    char why[256] = "", n[32];
    size_t at = 0;
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
        if (!(st.limits & limits[i].bit)) continue;
        int w = snprintf(why + at, sizeof why - at, "%smore than %s %s", at ? ", " : "",
                         thousands(limits[i].n, n), limits[i].what);
        if (w > 0 && (size_t)w < sizeof why - at) at += (size_t)w;
    }
    char hint[256];
    fprintf(stderr,
            "asyncunwind: warning: the sample was cut at a limit (%s): the rest is not shown\n"
            "hint: %s\n",
            at ? why : "a limit", cli_limits_text(hint, sizeof hint));
}

int cli_sample_consistent(au_sampler *s, unsigned max_attempts, const au_sample **out,
                          cli_retry *report) {
    uint64_t start = now_ms();
    unsigned pause = 0;
    int rc = AU_ERR_READ;
    report->attempts = 0;
    report->partial = 0;
    if (max_attempts == 0) max_attempts = 1;
    for (;;) {
        rc = au_sampler_sample(s, out);
        report->attempts++;
        /* A target that is gone will not come back; memory that could not
         * be read at all may be a race like any other. */
        report->partial = rc == AU_OK && cli_sample_partial(*out);
        if (rc == AU_OK && !report->partial) break;
        if (rc != AU_OK && rc != AU_ERR_READ) break;
        uint64_t spent = now_ms() - start;
        if (report->attempts >= max_attempts || spent + pause >= CLI_RETRY_MS) break;
        if (pause) pause_ms(pause);
        /* At once the first time (the sampler is warm now), then 1, 2, 4,
         * ... ms, up to 32. */
        pause = pause ? (pause < 32 ? pause * 2 : 32) : 1;
    }
    report->ms = (unsigned)(now_ms() - start);
    return rc;
}
