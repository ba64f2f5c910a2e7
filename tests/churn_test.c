/* Task churn soak: python_fixtures/task_churn.py creates and finishes
 * 10,000 tasks a second, with the agent, while the sampler samples it
 * without pause (1 ms apart) for AU_CHURN_SECONDS (default 10; the long
 * run is tools/soak.sh, 60 s).  Required, on each interpreter:
 *   - no crash, and fewer than 1% of the samples fail;
 *   - the sampler's memory is flat: the heap it holds (counted through
 *     the public allocator hook) and this process's RSS grow by at most
 *     a bound between the end of the first fifth and the end;
 *   - the agent's records do not grow: its records list, read from
 *     outside once a second through its region's header (docs/AGENT.md),
 *     stays within a bound that is far below the pairs of all the tasks
 *     recorded, and compactions happen (the generation moves).
 * Counters only: the fixture's rate on a loaded machine is reported, and
 * asserted only to be churn at all (MIN_CREATED); the run takes at least
 * MIN_SAMPLES samples however slow the machine.  `external`. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "au_agent_region.h"
#include "asyncunwind.h"
#include "pythons.h"

/* Entries the records list may hold: the agent sizes a list at twice the
 * live pairs plus 1,024 entries (docs/AGENT.md, Bounded), and the fixture
 * keeps at most a batch (~150 tasks) plus a second's catch-up pending. */
#define MAX_LIST_ENTRIES 65536
/* Heap the sampler may gain after warm-up, and RSS (the heap plus what
 * libc keeps).  Its buffers follow the largest sample: on a loaded machine
 * the fixture falls behind and a later sample may hold more pending tasks
 * than any before, which may take up to PER_TASK more each (pages of the
 * view, resolver room); growth without such a sample is a leak. */
#define MAX_HEAP_GROWTH (256u << 10)
#define PER_TASK (64u << 10)
#define MAX_RSS_GROWTH_KB 4096
/* Far fewer tasks than the fixture makes on an idle machine (~10,000/s):
 * only proof that it churned while sampled. */
#define MIN_CREATED 10000
/* Samples the run takes at least, however slow the machine: the loop goes
 * on past the duration (up to three times it) until it has them, so the
 * error rate is always a rate over many samples. */
#define MIN_SAMPLES 500

typedef struct counting {
    size_t live, peak;
} counting;

static void *count_realloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    counting *c = ud;
    if (!new_size) {
        free(ptr);
        c->live -= old_size;
        return NULL;
    }
    void *p = realloc(ptr, new_size);
    if (!p) return NULL;
    c->live = c->live - old_size + new_size;
    if (c->live > c->peak) c->peak = c->live;
    return p;
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The agent's records list: its entry count (ob_size, after the object
 * header's refcount and type) and the header's generation; 0 when the
 * region is not there yet. */
static int agent_list(int pid, uint64_t *entries, uint64_t *generation) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    uint64_t lo = 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *name = strchr(line, '/');
        if (!name) continue;
        size_t len = strcspn(name, "\n");
        if (au_agent_is_region_path(name, len)) found = sscanf(line, "%llx", (unsigned long long *)&lo) == 1;
    }
    fclose(f);
    if (!found) return 0;
    uint8_t hdr[64];
    struct iovec l = {hdr, sizeof hdr}, r = {(void *)(uintptr_t)lo, sizeof hdr};
    if (process_vm_readv(pid, &l, 1, &r, 1, 0) != (ssize_t)sizeof hdr) return 0;
    au_agent_header h;
    if (au_agent_parse_header(hdr, sizeof hdr, &h) != AU_OK) return 0;
    int64_t size;
    l = (struct iovec){&size, sizeof size};
    r = (struct iovec){(void *)(uintptr_t)(h.list + 16), sizeof size};
    if (process_vm_readv(pid, &l, 1, &r, 1, 0) != (ssize_t)sizeof size || size < 0) return 0;
    *entries = (uint64_t)size;
    *generation = h.generation;
    return 1;
}

/* The last "CREATED n" the fixture printed. */
static long last_created(int fd) {
    static char buf[1 << 16];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
        if (len == sizeof buf - 1) len = 0; /* only the tail matters */
    }
    buf[len] = 0;
    long n = -1;
    for (char *p = strstr(buf, "CREATED "); p; p = strstr(p + 1, "CREATED ")) n = strtol(p + 8, NULL, 10);
    return n;
}

static void churn(const char *name) {
    const char *only = getenv("AU_CHURN_ONLY");
    if (only && *only && strcmp(only, name)) skip();
    const py_interp *p = py_interpreter(name);
    assert_non_null(p);
    PY_REQUIRE(p);
    const char *sec = getenv("AU_CHURN_SECONDS");
    int seconds = sec && atoi(sec) > 0 ? atoi(sec) : 10;
    const char *env[] = {"PYTHONDONTWRITEBYTECODE=1", NULL};
    py_spawn_opts opts = {.env = env, .agent_dir = "agent"};
    py_proc proc;
    if (py_spawn_fixture_opts(p, "python_fixtures/task_churn.py", NULL, &opts, &proc))
        fail_msg("%s: %s", name, proc.error);

    counting c = {0, 0};
    au_allocator alloc = {count_realloc, &c};
    au_sampler *s;
    assert_int_equal(au_sampler_open_pid(&alloc, proc.pid, NULL, &s), AU_OK);
    uint64_t samples = 0, errors = 0, partial = 0, tasks = 0, weak = 0, max_tasks = 0, max_tasks_warm = 0;
    uint64_t max_entries = 0, gen_first = 0, gen_last = 0, checks = 0;
    size_t heap_warm = 0, heap_peak_warm = 0;
    long rss_warm = 0;
    uint64_t t0 = now_ms(), end = t0 + (uint64_t)seconds * 1000u, warm = t0 + (uint64_t)seconds * 200u;
    uint64_t next_check = t0;
    int warmed = 0;
    uint64_t hard_end = t0 + (uint64_t)seconds * 3000u;
    for (uint64_t t = t0; t < end || (samples < MIN_SAMPLES && t < hard_end); t = now_ms()) {
        const au_sample *smp;
        int rc = au_sampler_sample(s, &smp);
        samples++;
        if (rc != AU_OK) {
            errors++;
        } else {
            tasks += smp->ntasks;
            if (smp->ntasks > max_tasks) max_tasks = smp->ntasks;
            partial += (smp->flags & AU_SAMPLE_PARTIAL) != 0;
            au_sampler_stats st;
            au_sampler_get_stats(s, &st);
            weak += st.creators;
        }
        if (getenv("AU_CHURN_TRACE") && samples % 500 == 0) {
            au_sampler_stats st;
            au_sampler_get_stats(s, &st);
            print_message("  %llu samples: heap %zu B, RSS %ld kB, code evictions %llu misses %u\n",
                          (unsigned long long)samples, c.live, rss_kb(),
                          (unsigned long long)st.reader.code_evictions, st.reader.code_misses);
        }
        if (!warmed && t >= warm) {
            warmed = 1;
            heap_warm = c.live;
            heap_peak_warm = c.peak;
            max_tasks_warm = max_tasks;
            rss_warm = rss_kb();
        }
        if (t >= next_check) {
            uint64_t entries, gen;
            if (agent_list(proc.pid, &entries, &gen)) {
                if (!checks++) gen_first = gen;
                gen_last = gen;
                if (entries > max_entries) max_entries = entries;
            }
            next_check = t + 1000;
        }
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
    }
    double elapsed_s = (double)(now_ms() - t0) / 1000.0;
    long rss_end = rss_kb();
    size_t heap_end = c.live, heap_peak = c.peak;
    au_sampler_free(s);
    assert_int_equal(c.live, 0);
    kill(proc.pid, SIGTERM);
    long created = last_created(proc.out_fd);
    py_kill(&proc);

    double err_pct = samples ? 100.0 * (double)errors / (double)samples : 0;
    print_message("%s: %.1f s, %ld tasks created (%.0f/s); %llu samples, %llu errors (%.3f%%), %llu partial, "
                  "%.1f tasks (max %llu, %llu at warm-up) and %.1f weak links a sample; sampler heap %zu -> %zu B (peak %zu -> %zu), "
                  "RSS %ld -> %ld kB; agent list <= %llu entries, generation %llu -> %llu\n",
                  name, elapsed_s, created, (double)created / elapsed_s, (unsigned long long)samples,
                  (unsigned long long)errors, err_pct, (unsigned long long)partial,
                  samples ? (double)tasks / (double)samples : 0, (unsigned long long)max_tasks,
                  (unsigned long long)max_tasks_warm, samples ? (double)weak / (double)samples : 0,
                  heap_warm, heap_end, heap_peak_warm, heap_peak, rss_warm, rss_end,
                  (unsigned long long)max_entries, (unsigned long long)gen_first, (unsigned long long)gen_last);
    if (created < MIN_CREATED) fail_msg("%s: only %ld tasks created", name, created);
    if (samples < MIN_SAMPLES) fail_msg("%s: only %llu samples", name, (unsigned long long)samples);
    if (errors * 100 >= samples) fail_msg("%s: error rate %.3f%% >= 1%%", name, err_pct);
    size_t allowed = MAX_HEAP_GROWTH + (size_t)(max_tasks - max_tasks_warm) * PER_TASK;
    if (heap_peak > heap_peak_warm + allowed) fail_msg("%s: the sampler's heap grew", name);
    /* RSS may grow into what the heap already held at warm-up: the view
     * reserves room it touches only as samples need it (3.14 here: RSS
     * 9 -> 17 MB under a flat 16 MB heap peak).  Beyond that it is growth. */
    long rss_cap = rss_warm + (long)(heap_peak_warm >> 10) + MAX_RSS_GROWTH_KB + (long)(allowed >> 10);
    if (rss_end > rss_cap) fail_msg("%s: RSS grew", name);
    if (checks < 2) fail_msg("%s: the agent's region was never read", name);
    if (max_entries > MAX_LIST_ENTRIES) fail_msg("%s: the agent's records grew", name);
    /* The list was replaced (compacted) while tasks came and went: the
     * records were being bounded, not merely small by chance. */
    if (gen_last <= gen_first) fail_msg("%s: no compaction in %d s", name, seconds);
    if (!weak) fail_msg("%s: no weak link in any sample", name);
}

/* One interpreter before 3.11 (the agent's WeakSet hook), one after (C
 * tasks), and 3.14's create_task path when the sid chroot is there. */
static void test_churn_39(void **state) { (void)state; churn("pyenv-3.9"); }
static void test_churn_312(void **state) { (void)state; churn("pyenv-3.12"); }
static void test_churn_314(void **state) { (void)state; churn("sid-3.14"); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_churn_39),
        cmocka_unit_test(test_churn_312),
        cmocka_unit_test(test_churn_314),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
