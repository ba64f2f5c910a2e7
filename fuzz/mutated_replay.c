/* Mutated real snapshots through `asyncunwind replay`, the way a user
 * meets a damaged or hostile file: every golden snapshot (every CPython
 * version and scenario, corpus/golden/) mutated by the pipeline target's
 * structure-aware mutator (pipeline_mutator.c, one to four changes inside
 * a valid container, some plain byte flips), and each result replayed by
 * the real binary in its own process.
 *
 *   mutated_replay TOOL GOLDEN_DIR COUNT [FIRST_SEED] [REPLAY_FORMAT]
 *
 * Input i is golden snapshot i mod n (in name order) mutated with seed
 * FIRST_SEED + i, so a failure is reproduced by its index alone.  Each
 * replay must end by itself (a watchdog of WATCHDOG_S kills it) in a
 * result or a clear error: exit 0 with something on stdout, or a documented
 * exit code (3-7, never 2, a usage error) with an "asyncunwind:" line on
 * stderr; a signal (a crash) fails.  Prints the counts per exit code, and
 * the slowest replays by CPU time with their inputs, each replayed again to
 * tell a slow input from a slow moment of the machine; a failed replay's
 * input stays in $TMPDIR.  Exit status 0 when every replay passed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fuzz/mutator.h"

#define MAX_SEEDS 4096
#define INPUT_CAP (16u << 20)
#define WATCHDOG_S 30
#define SLOWEST 5
#define RERUNS 3 /* replays more of each of the slowest */

typedef struct seed {
    char *name;
    uint8_t *data;
    size_t size;
} seed;

typedef struct slow {
    double ms; /* CPU time (user + system) of the replay */
    double wall_ms;
    long index;
    int code;
} slow;

/* Where one replay reads and writes. */
typedef struct paths {
    const char *tool, *format;
    char in[4200], out[4200], err[4200];
} paths;

static int by_name(const void *a, const void *b) {
    return strcmp(((const seed *)a)->name, ((const seed *)b)->name);
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = malloc(INPUT_CAP);
    *size = buf ? fread(buf, 1, INPUT_CAP, f) : 0;
    fclose(f);
    return buf;
}

static int write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int rc = fwrite(data, 1, size, f) == size ? 0 : -1;
    return fclose(f) || rc ? -1 : 0;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static off_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) ? -1 : st.st_size;
}

static int has_line(const char *path, const char *prefix) {
    FILE *f = fopen(path, "r");
    char line[4096];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) found = !strncmp(line, prefix, strlen(prefix));
    if (f) fclose(f);
    return found;
}

/* Replay p->in in a process of its own; its wait status, CPU time (user +
 * system) and wall time. */
static int replay(const paths *p, double *ms, double *wall) {
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(p->out, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            e = open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0) _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        alarm(WATCHDOG_S); /* SIGALRM survives exec: a hang dies of it */
        execl(p->tool, p->tool, "replay", p->in, "--format", p->format, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {}
    *wall = now_ms() - t0;
    *ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
          (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    return status;
}

/* Input i, as the loop made it, into buf; its size. */
static size_t make_input(const seed *seeds, size_t nseeds, unsigned first, long i, uint8_t *buf) {
    const seed *s = &seeds[(size_t)i % nseeds];
    memcpy(buf, s->data, s->size);
    return LLVMFuzzerCustomMutator(buf, s->size, INPUT_CAP, first + (unsigned)i);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: mutated_replay TOOL GOLDEN_DIR COUNT [FIRST_SEED] [FORMAT]\n");
        return 2;
    }
    const char *tool = argv[1], *dir = argv[2];
    long count = atol(argv[3]);
    unsigned first = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 1;
    const char *format = argc > 5 ? argv[5] : "text";

    static seed seeds[MAX_SEEDS];
    size_t nseeds = 0;
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 2;
    }
    for (struct dirent *e; (e = readdir(d)) && nseeds < MAX_SEEDS;) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".snap")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        seed *s = &seeds[nseeds];
        if (!(s->data = read_file(path, &s->size))) continue;
        s->name = strdup(e->d_name);
        nseeds++;
    }
    closedir(d);
    if (!nseeds) {
        fprintf(stderr, "no .snap files in %s\n", dir);
        return 2;
    }
    qsort(seeds, nseeds, sizeof *seeds, by_name);

    char work[] = "/tmp/mutated-replay.XXXXXX";
    const char *tmpdir = getenv("TEST_TMPDIR");
    char workbuf[4096];
    if (tmpdir) {
        snprintf(workbuf, sizeof workbuf, "%s/mutated-replay.XXXXXX", tmpdir);
    } else {
        snprintf(workbuf, sizeof workbuf, "%s", work);
    }
    if (!mkdtemp(workbuf)) {
        perror("mkdtemp");
        return 2;
    }
    paths P = {tool, format, "", "", ""};
    char *in = P.in, *out = P.out, *err = P.err;
    snprintf(P.in, sizeof P.in, "%s/input.snap", workbuf);
    snprintf(P.out, sizeof P.out, "%s/stdout", workbuf);
    snprintf(P.err, sizeof P.err, "%s/stderr", workbuf);

    uint8_t *buf = malloc(INPUT_CAP);
    if (!buf) {
        perror("malloc");
        return 2;
    }
    long codes[256] = {0}, failed = 0, signalled = 0, unchanged = 0;
    slow top[SLOWEST] = {{0, 0, -1, 0}};
    double total_ms = 0, total_wall = 0;
    for (long i = 0; i < count; i++) {
        const seed *s = &seeds[(size_t)i % nseeds];
        size_t size = make_input(seeds, nseeds, first, i, buf);
        unchanged += size == s->size && !memcmp(buf, s->data, size);
        if (write_file(in, buf, size)) {
            perror(in);
            return 2;
        }
        /* CPU time ranks the replays: wall time on a shared machine is
         * mostly the other processes'. */
        double ms, wall;
        int status = replay(&P, &ms, &wall);
        total_ms += ms;
        total_wall += wall;
        const char *why = NULL;
        int code = -1;
        if (WIFSIGNALED(status)) {
            signalled++;
            why = WTERMSIG(status) == SIGALRM ? "hung (watchdog)" : strsignal(WTERMSIG(status));
        } else {
            code = WEXITSTATUS(status);
            codes[code & 255]++;
            if (code == 0 && file_size(out) <= 0) why = "exit 0 with no output";
            else if (code != 0 && (code < 3 || code > 7)) why = "an undocumented exit code";
            else if (code != 0 && !has_line(err, "asyncunwind: ")) why = "an error without a message";
        }
        if (why) {
            failed++;
            char keep[4300];
            snprintf(keep, sizeof keep, "%s/failed-%ld.snap", workbuf, i);
            rename(in, keep);
            fprintf(stderr, "FAIL: input %ld (%s, seed %u): %s (exit %d); kept as %s\n", i, s->name,
                    first + (unsigned)i, why, code, keep);
        }
        for (int k = 0; k < SLOWEST; k++) {
            if (ms > top[k].ms) {
                memmove(&top[k + 1], &top[k], (SLOWEST - 1 - k) * sizeof *top);
                top[k] = (slow){ms, wall, i, code};
                break;
            }
        }
    }
    printf("%ld mutated snapshots of %zu golden ones replayed (--format %s), %.2f ms CPU (%.1f ms wall) "
           "on average; %ld unchanged by the mutator\n",
           count, nseeds, format, count ? total_ms / (double)count : 0, count ? total_wall / (double)count : 0,
           unchanged);
    for (int c = 0; c < 256; c++)
        if (codes[c]) printf("  exit %d: %ld\n", c, codes[c]);
    printf("  killed by a signal: %ld\n", signalled);
    /* One slow replay in a run is as often the machine (a page fault
     * storm, another process) as the input: each of the slowest is made
     * again and replayed RERUNS times more, and the least CPU time of
     * those says what the input costs. */
    printf("slowest (CPU time; then the least of %d reruns of the same input):\n", RERUNS);
    for (int k = 0; k < SLOWEST && top[k].index >= 0; k++) {
        double least = -1;
        size_t size = make_input(seeds, nseeds, first, top[k].index, buf);
        for (int r = 0; r < RERUNS && !write_file(in, buf, size); r++) {
            double ms, wall;
            replay(&P, &ms, &wall);
            if (least < 0 || ms < least) least = ms;
        }
        printf("  %.1f ms CPU, %.1f ms wall, rerun %.1f ms CPU: input %ld (%s mutated with seed %u), "
               "exit %d\n",
               top[k].ms, top[k].wall_ms, least, top[k].index, seeds[(size_t)top[k].index % nseeds].name,
               first + (unsigned)top[k].index, top[k].code);
    }
    unlink(in);
    unlink(out);
    unlink(err);
    if (!failed) rmdir(workbuf);
    printf("%ld failed\n", failed);
    free(buf);
    return failed ? 1 : 0;
}
