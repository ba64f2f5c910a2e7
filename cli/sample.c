/*
 * Taking one sample (live, recorded, or replayed) and printing it.
 *
 * Live and replay share everything after the memory source, so a replay
 * prints exactly what the live sample printed: that is what the snapshot
 * round-trip tests compare.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "asyncunwind.h"
#include "cli.h"

#define MAX_SNAPSHOT (1ull << 30)
#define NAME_MAX_LEN 64

typedef struct thread_name {
    uint64_t native_id;
    char name[NAME_MAX_LEN];
    uint32_t len;
} thread_name;

/* The kernel's name of a thread (its comm: CPython 3.14+ sets it from
 * threading.Thread.name, truncated to 15 bytes). */
static uint32_t read_comm(int pid, uint64_t tid, char *out, uint32_t cap) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%llu/comm", pid, (unsigned long long)tid);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    size_t n = fread(out, 1, cap, f);
    fclose(f);
    while (n && (out[n - 1] == '\n' || out[n - 1] == 0)) n--;
    return (uint32_t)n;
}

static const char *find_name(const au_snapshot_thread *names, uint32_t n, uint64_t id,
                             uint32_t *len) {
    for (uint32_t i = 0; id && i < n; i++)
        if (names[i].native_id == id) {
            *len = names[i].name_len;
            return names[i].name;
        }
    *len = 0;
    return NULL;
}

static void version_str(uint32_t hex, uint32_t source, char *out, size_t cap) {
    unsigned major = hex >> 24, minor = hex >> 16 & 0xff, micro = hex >> 8 & 0xff;
    unsigned level = hex >> 4 & 0xf, serial = hex & 0xf;
    if (source == AU_VERSION_FROM_FILE_NAME) {
        snprintf(out, cap, "%u.%u", major, minor);
        return;
    }
    const char *lv = level == 0xa ? "a" : level == 0xb ? "b" : level == 0xc ? "rc" : "";
    if (*lv) snprintf(out, cap, "%u.%u.%u%s%u", major, minor, micro, lv, serial);
    else snprintf(out, cap, "%u.%u.%u", major, minor, micro);
}

/* Write s[0..n) for a collapsed line: ';' separates frames and a newline
 * ends the line, so neither may appear inside a frame. */
static void put_clean(FILE *out, const char *s, uint32_t n, int collapsed) {
    for (uint32_t i = 0; i < n; i++) {
        char c = s[i];
        if (collapsed && c == ';') c = ':';
        if (c == '\n' || c == '\r') c = ' ';
        fputc(c, out);
    }
}

static void put_frame(FILE *out, const au_pyreader *r, const au_pyframe *f, int collapsed) {
    const au_pycode *c = au_pyreader_code(r, f->code);
    if (!c) {
        fprintf(out, "<unknown> (0x%llx)", (unsigned long long)f->code_addr);
        return;
    }
    put_clean(out, c->qualname, c->qualname_len, collapsed);
    fputs(" (", out);
    put_clean(out, c->filename, c->filename_len, collapsed);
    if (f->line >= 0) fprintf(out, ":%d)", f->line);
    else fputs(":?)", out);
}

static void print_sample(FILE *out, const au_pyreader *r, const au_pysample *s, int pid,
                         const char *version, const au_snapshot_thread *names,
                         uint32_t nnames, int format) {
    int collapsed = format == CLI_FORMAT_COLLAPSED;
    if (!collapsed) fprintf(out, "Process %d: CPython %s\n", pid, version);
    for (uint32_t i = 0; i < s->nthreads; i++) {
        const au_pythread *t = &s->threads[i];
        uint32_t nlen;
        const char *name = find_name(names, nnames, t->native_id, &nlen);
        if (collapsed) {
            fputs("thread ", out);
        } else {
            fputs(i ? "\nThread " : "\nThread ", out);
        }
        if (t->native_id) fprintf(out, "%llu", (unsigned long long)t->native_id);
        else fprintf(out, "0x%llx", (unsigned long long)t->thread_id);
        if (name) {
            fputs(collapsed ? " (" : " \"", out);
            put_clean(out, name, nlen, collapsed);
            fputs(collapsed ? ")" : "\"", out);
        }
        if (!collapsed) {
            fputs(" (most recent call last):\n", out);
            if (t->flags & AU_THREAD_TRUNCATED) fputs("    ... (older frames not read)\n", out);
        }
        for (uint32_t k = 0; k < t->nframes; k++) {
            fputs(collapsed ? ";" : "    ", out);
            put_frame(out, r, &t->frames[k], collapsed);
            if (!collapsed) fputc('\n', out);
        }
        if (t->flags & (AU_THREAD_PARTIAL | AU_THREAD_CYCLE)) {
            const char *why = t->flags & AU_THREAD_CYCLE ? "[frame chain loops]" : "[partial stack]";
            fprintf(out, collapsed ? ";%s" : "    %s\n", why);
        }
        if (collapsed) fputs(" 1\n", out);
    }
    if (!collapsed && s->nthreads == 0) fputs("\n(no Python threads)\n", out);
}

static int file_write(void *ud, const void *buf, size_t len) {
    return fwrite(buf, 1, len, (FILE *)ud) == len ? 0 : -1;
}

int cli_live(int pid, int format, const char *output) {
    au_memsrc *live = NULL, *rec = NULL;
    au_pyreader *reader = NULL;
    au_pyruntime rt;
    int rc = au_memsrc_live_open(NULL, pid, &live);
    if (rc) return cli_fail("cannot read the process", rc);
    rc = au_pyruntime_find(NULL, pid, live, &rt);
    if (rc) {
        au_memsrc_destroy(live);
        if (rc == AU_ERR_UNSUPPORTED && rt.py_version_hex >> 24 == 3) {
            char what[96];
            snprintf(what, sizeof what, "the process runs CPython %u.%u",
                     rt.py_version_hex >> 24, rt.py_version_hex >> 16 & 0xff);
            return cli_fail(what, rc);
        }
        return cli_fail("cannot find a Python runtime in the process", rc);
    }
    au_memsrc *src = live;
    if (output && (rc = au_recorder_open(NULL, live, &rec)) == AU_OK) src = rec;
    if (rc == AU_OK) rc = au_pyreader_new(NULL, src, rt.py_version_hex, rt.runtime_addr, NULL, &reader);
    au_pysample s;
    if (rc == AU_OK) rc = au_pyreader_sample(reader, &s);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int exit = AU_EXIT_OK;
    if (rc) {
        exit = cli_fail("cannot take a sample", rc);
    } else {
        /* Thread names are not in memory: read them now, keep them in the
         * snapshot. */
        thread_name *tn = calloc(s.nthreads ? s.nthreads : 1, sizeof *tn);
        au_snapshot_thread *st = calloc(s.nthreads ? s.nthreads : 1, sizeof *st);
        uint32_t nn = 0;
        for (uint32_t i = 0; tn && st && i < s.nthreads; i++) {
            if (!s.threads[i].native_id) continue;
            tn[nn].native_id = s.threads[i].native_id;
            tn[nn].len = read_comm(pid, tn[nn].native_id, tn[nn].name, NAME_MAX_LEN);
            st[nn] = (au_snapshot_thread){tn[nn].native_id, tn[nn].name, tn[nn].len};
            nn++;
        }
        char version[32];
        version_str(rt.py_version_hex, rt.version_source, version, sizeof version);
        print_sample(stdout, reader, &s, pid, version, st, nn, format);
        if (output) {
            au_snapshot_meta meta = {(uint32_t)pid, rt.py_version_hex, rt.runtime_addr,
                                     (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec,
                                     nn, st};
            FILE *f = fopen(output, "wbe");
            int wrc = f ? au_recorder_write(rec, &meta, file_write, f) : AU_ERR_IO;
            if (f && fclose(f) != 0 && wrc == AU_OK) wrc = AU_ERR_IO;
            if (wrc) {
                fprintf(stderr, "asyncunwind: cannot write %s: %s\n", output,
                        f ? au_status_str(wrc) : strerror(errno));
                exit = AU_EXIT_FILE;
            } else {
                fprintf(stderr, "asyncunwind: snapshot written to %s\n", output);
            }
        }
        free(tn);
        free(st);
    }
    au_pyreader_free(reader);
    au_memsrc_destroy(rec);
    au_memsrc_destroy(live);
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
    au_memsrc *src = NULL;
    au_pyreader *reader = NULL;
    int rc = au_snapshot_parse(NULL, data, len, &snap);
    if (rc) {
        free(data);
        fprintf(stderr, "asyncunwind: %s is not a valid snapshot: %s\n", file, au_status_str(rc));
        return AU_EXIT_FILE;
    }
    const au_snapshot_meta *m = au_snapshot_get_meta(snap);
    rc = au_memsrc_snapshot_open(NULL, snap, &src);
    if (rc == AU_OK) rc = au_pyreader_new(NULL, src, m->py_version_hex, m->runtime_addr, NULL, &reader);
    au_pysample s;
    if (rc == AU_OK) rc = au_pyreader_sample(reader, &s);
    int exit = AU_EXIT_OK;
    if (rc) {
        exit = cli_fail("cannot replay the snapshot", rc);
    } else {
        char version[32];
        /* A snapshot records the version hex; a patch level of 0 with no
         * release level means it came from a file name. */
        uint32_t source = (m->py_version_hex & 0xffff) == 0 ? AU_VERSION_FROM_FILE_NAME : 0;
        version_str(m->py_version_hex, source, version, sizeof version);
        print_sample(stdout, reader, &s, (int)m->pid, version, m->threads, m->nthreads, format);
    }
    au_pyreader_free(reader);
    au_memsrc_destroy(src);
    au_snapshot_free(snap);
    free(data);
    return exit;
}
