/*
 * profile_write: aggregate snapshots into one profile and write it out,
 * so the output tests need no live process.
 *
 *   profile_write FORMAT [--cpu] [--stats] [--title T] [--repeat N] SNAPSHOT...
 *   profile_write FORMAT [--title T] --pid PID --samples N
 *
 * FORMAT is collapsed, speedscope or svg; the result goes to stdout.  Each
 * snapshot is replayed N times (default 1) and added with weight 1; a live
 * process is sampled N times, back to back (a test driver, not a
 * profiler: `asyncunwind record` is that).  --stats prints the profile's
 * au_profile_stats to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncunwind.h"

static int to_stdout(void *ud, const void *buf, size_t len) {
    (void)ud;
    return fwrite(buf, 1, len, stdout) == len ? 0 : -1;
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        if (!k) break;
        n += k;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int add_snapshot(au_profile *p, const char *path, uint32_t flags, unsigned repeat) {
    size_t len;
    uint8_t *data = read_file(path, &len);
    if (!data) {
        fprintf(stderr, "profile_write: cannot read %s\n", path);
        return 1;
    }
    au_snapshot *snap = NULL;
    au_sampler *s = NULL;
    int rc = au_snapshot_parse(NULL, data, len, &snap);
    if (rc == AU_OK) rc = au_sampler_open_snapshot(NULL, snap, NULL, &s);
    for (unsigned i = 0; rc == AU_OK && i < repeat; i++) {
        const au_sample *smp;
        rc = au_sampler_sample(s, &smp);
        if (rc == AU_OK) rc = au_profile_add(p, s, smp, flags, 1);
    }
    if (rc != AU_OK) fprintf(stderr, "profile_write: %s: %s\n", path, au_status_str(rc));
    au_sampler_free(s);
    au_snapshot_free(snap);
    free(data);
    return rc != AU_OK;
}

static int add_live(au_profile *p, int pid, unsigned samples) {
    au_sampler *s = NULL;
    int rc = au_sampler_open_pid(NULL, pid, NULL, &s);
    for (unsigned i = 0; rc == AU_OK && i < samples; i++) {
        const au_sample *smp;
        rc = au_sampler_sample(s, &smp);
        if (rc == AU_OK) rc = au_profile_add(p, s, smp, 0, 1);
    }
    if (rc != AU_OK) fprintf(stderr, "profile_write: pid %d: %s\n", pid, au_status_str(rc));
    au_sampler_free(s);
    return rc != AU_OK;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: profile_write collapsed|speedscope|svg [--cpu] [--title T] "
                        "[--repeat N] SNAPSHOT...\n");
        return 2;
    }
    uint32_t format;
    if (!strcmp(argv[1], "collapsed")) format = AU_FORMAT_COLLAPSED;
    else if (!strcmp(argv[1], "speedscope")) format = AU_FORMAT_SPEEDSCOPE;
    else if (!strcmp(argv[1], "svg")) format = AU_FORMAT_SVG;
    else {
        fprintf(stderr, "profile_write: unknown format %s\n", argv[1]);
        return 2;
    }
    uint32_t flags = 0;
    unsigned repeat = 1;
    int stats = 0;
    const char *title = NULL;
    au_profile *p;
    if (au_profile_new(NULL, NULL, &p) != AU_OK) return 1;
    int failed = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--cpu")) flags |= AU_PROFILE_CPU;
        else if (!strcmp(argv[i], "--stats")) stats = 1;
        else if (!strcmp(argv[i], "--title") && i + 1 < argc) title = argv[++i];
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pid") && i + 3 < argc && !strcmp(argv[i + 2], "--samples")) {
            failed |= add_live(p, atoi(argv[i + 1]), (unsigned)atoi(argv[i + 3]));
            i += 3;
        }
        else failed |= add_snapshot(p, argv[i], flags, repeat);
    }
    int rc = failed ? AU_OK : au_profile_write(p, format, title, to_stdout, NULL);
    if (stats) {
        au_profile_stats st;
        au_profile_get_stats(p, &st);
        fprintf(stderr,
                "samples %llu, stacks added %llu, dropped %llu, distinct stacks %u, names %u, "
                "text %llu bytes, heap %llu bytes\n",
                (unsigned long long)st.samples, (unsigned long long)st.stacks_added,
                (unsigned long long)st.dropped, st.stacks, st.names,
                (unsigned long long)st.text_bytes, (unsigned long long)st.heap_bytes);
    }
    if (rc != AU_OK) fprintf(stderr, "profile_write: %s\n", au_status_str(rc));
    au_profile_free(p);
    return failed || rc != AU_OK || fflush(stdout) != 0;
}
