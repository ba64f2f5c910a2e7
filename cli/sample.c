/*
 * Taking one sample (live, recorded, or replayed) and printing it.
 *
 * Everything goes through the core's sampler and renderer, the same calls
 * a vendoring profiler makes.  Live and replay share everything after the
 * memory source, so a replay prints exactly what the live sample printed:
 * that is what the snapshot round-trip tests compare.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncunwind.h"
#include "cli.h"

#define MAX_SNAPSHOT (1ull << 30)

static int file_write(void *ud, const void *buf, size_t len) {
    return fwrite(buf, 1, len, (FILE *)ud) == len ? 0 : -1;
}

static uint32_t render_format(int format) {
    switch (format) {
    case CLI_FORMAT_COLLAPSED: return AU_FORMAT_COLLAPSED;
    case CLI_FORMAT_TREE: return AU_FORMAT_TREE;
    case CLI_FORMAT_JSON: return AU_FORMAT_JSON;
    default: return AU_FORMAT_TEXT;
    }
}

/* Why the process cannot be sampled, as the user should read it. */
static int open_failed(int pid, int rc) {
    if (rc == AU_ERR_UNSUPPORTED) {
        /* Name the version the target runs, when it can be told. */
        au_memsrc *m = NULL;
        au_pyruntime rt;
        memset(&rt, 0, sizeof rt);
        if (au_memsrc_live_open(NULL, pid, &m) == AU_OK &&
            au_pyruntime_find(NULL, pid, m, &rt) == AU_ERR_UNSUPPORTED &&
            rt.py_version_hex >> 24 == 3) {
            char what[96];
            snprintf(what, sizeof what, "the process runs CPython %u.%u", rt.py_version_hex >> 24,
                     rt.py_version_hex >> 16 & 0xff);
            au_memsrc_destroy(m);
            return cli_fail(what, rc);
        }
        au_memsrc_destroy(m);
    }
    if (rc == AU_ERR_NOPROC || rc == AU_ERR_PERM) return cli_fail("cannot read the process", rc);
    return cli_fail("cannot find a Python runtime in the process", rc);
}

static int print_sample(au_sampler *s, const au_sample *smp, int format) {
    int rc = au_render(s, smp, render_format(format), file_write, stdout);
    if (rc == AU_OK && fflush(stdout) != 0) rc = AU_ERR_IO;
    if (rc) return cli_fail("cannot print the sample", rc);
    cli_warn_truncated(s, smp);
    return AU_EXIT_OK;
}

int cli_live(int pid, int format, const char *output, int no_agent, unsigned attempts) {
    au_sampler_options opt;
    memset(&opt, 0, sizeof opt);
    if (output) opt.flags |= AU_SAMPLER_RECORD;
    if (no_agent) opt.flags |= AU_SAMPLER_NO_AGENT;
    au_sampler *s = NULL;
    int rc = au_sampler_open_pid(NULL, pid, &opt, &s);
    if (rc) return open_failed(pid, rc);
    const au_sample *smp;
    cli_retry retry;
    rc = cli_sample_consistent(s, attempts, &smp, &retry);
    int exit = AU_EXIT_OK;
    /* For bench/dump_retry.sh: how many attempts this dump took. */
    const char *stats = getenv("ASYNCUNWIND_RETRY_STATS");
    if (stats && *stats == '1')
        fprintf(stderr, "asyncunwind: retry stats: attempts %u, %u ms, partial %d\n",
                retry.attempts, retry.ms, retry.partial);
    if (rc == AU_OK && retry.partial)
        fprintf(stderr,
                "asyncunwind: warning: the process changed while it was read: every sample "
                "was partial (%u attempts in %u ms); printing the last one\n"
                "hint: parts that could not be read are marked; try again, or raise "
                "--attempts\n",
                retry.attempts, retry.ms);
    if (rc) {
        exit = cli_fail("cannot take a sample", rc);
    } else {
        exit = print_sample(s, smp, format);
        if (output) {
            FILE *f = fopen(output, "wbe");
            int wrc = f ? au_sampler_write_snapshot(s, file_write, f) : AU_ERR_IO;
            if (f && fclose(f) != 0 && wrc == AU_OK) wrc = AU_ERR_IO;
            if (wrc) {
                fprintf(stderr, "asyncunwind: cannot write %s: %s\n", output,
                        f ? au_status_str(wrc) : strerror(errno));
                exit = AU_EXIT_FILE;
            } else {
                fprintf(stderr, "asyncunwind: snapshot written to %s\n", output);
            }
        }
    }
    au_sampler_free(s);
    return exit;
}

int cli_replay(const char *file, int format) {
    FILE *f = fopen(file, "rbe");
    if (!f) {
        fprintf(stderr, "asyncunwind: cannot open %s: %s\n", file, strerror(errno));
        return AU_EXIT_FILE;
    }
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            if (cap > MAX_SNAPSHOT) break;
            uint8_t *p = realloc(data, cap);
            if (!p) break;
            data = p;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int too_big = !feof(f);
    fclose(f);
    if (too_big) {
        free(data);
        fprintf(stderr, "asyncunwind: %s: larger than 1 GiB or unreadable\n", file);
        return AU_EXIT_FILE;
    }
    au_snapshot *snap = NULL;
    int rc = au_snapshot_parse(NULL, data, len, &snap);
    if (rc) {
        free(data);
        fprintf(stderr, "asyncunwind: %s is not a valid snapshot: %s\n", file, au_status_str(rc));
        return AU_EXIT_FILE;
    }
    au_sampler *s = NULL;
    const au_sample *smp;
    rc = au_sampler_open_snapshot(NULL, snap, NULL, &s);
    if (rc == AU_OK) rc = au_sampler_sample(s, &smp);
    int exit = rc ? cli_fail("cannot replay the snapshot", rc) : print_sample(s, smp, format);
    au_sampler_free(s);
    au_snapshot_free(snap);
    free(data);
    return exit;
}
