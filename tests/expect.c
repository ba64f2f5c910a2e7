#include "expect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) s[--n] = 0;
    return s;
}

static int parse_frame(char *s, ex_line *l) {
    memset(l, 0, sizeof *l);
    l->repeat = 1;
    if (!strcmp(s, "...")) {
        l->any = 1;
        return 0;
    }
    char *rep = strrchr(s, ' ');
    if (rep && rep[1] == 'x' && rep[2] >= '0' && rep[2] <= '9') {
        l->repeat = (uint32_t)strtoul(rep + 2, NULL, 10);
        *rep = 0;
    }
    char *sp = strrchr(s, ' ');
    if (!sp) return -1;
    *sp = 0;
    char *colon = strrchr(sp + 1, ':');
    if (!colon) return -1;
    *colon = 0;
    if (strlen(s) >= sizeof l->func || strlen(sp + 1) >= sizeof l->file) return -1;
    strcpy(l->func, s);
    strcpy(l->file, sp + 1);
    l->line = colon[1] == '*' ? -1 : (int32_t)strtol(colon + 1, NULL, 10);
    return 0;
}

int ex_load(const char *path, ex_file *out, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }
    memset(out, 0, sizeof *out);
    static char buf[16384];
    ex_block *b = NULL;
    int rc = 0;
    while (fgets(buf, sizeof buf, f)) {
        if (buf[0] == '#') continue;
        char *s = trim(buf);
        if (!*s) {
            b = NULL;
            continue;
        }
        if (!strncmp(s, "thread ", 7)) {
            if (out->nblocks == EX_MAX_BLOCKS) { rc = -1; break; }
            b = &out->blocks[out->nblocks++];
            snprintf(b->name, sizeof b->name, "%s", s + 7);
            continue;
        }
        if (!b || b->nlines == EX_MAX_LINES || parse_frame(s, &b->lines[b->nlines++])) {
            snprintf(err, errlen, "%s: bad line: %s", path, s);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static const char *base(const char *p, uint32_t n, uint32_t *len) {
    uint32_t k = n;
    while (k && p[k - 1] != '/') k--;
    *len = n - k;
    return p + k;
}

static int frame_is(const au_pyreader *r, const au_pyframe *f, const ex_line *l) {
    const au_pycode *c = au_pyreader_code(r, f->code);
    if (!c) return 0;
    uint32_t blen;
    const char *b = base(c->filename, c->filename_len, &blen);
    size_t want = strlen(l->func);
    int name_ok = c->name_len == want && !memcmp(c->name, l->func, want);
    /* A name longer than the reader's max_name is cut and ends in "...":
     * it matches an expectation that starts with what was kept. */
    if (!name_ok && c->name_len > 3 && !memcmp(c->name + c->name_len - 3, "...", 3))
        name_ok = want > c->name_len - 3 && !memcmp(c->name, l->func, c->name_len - 3);
    return name_ok && blen == strlen(l->file) && !memcmp(b, l->file, blen) &&
           (l->line < 0 || l->line == f->line);
}

/* Does frames[i..n) match lines[j..m)?  Backtracks on "...". */
static int match_from(const au_pyreader *r, const au_pythread *t, uint32_t i, const ex_block *b,
                      uint32_t j) {
    if (j == b->nlines) return i == t->nframes;
    const ex_line *l = &b->lines[j];
    if (l->any) {
        for (uint32_t k = i; k <= t->nframes; k++)
            if (match_from(r, t, k, b, j + 1)) return 1;
        return 0;
    }
    for (uint32_t k = 0; k < l->repeat; k++)
        if (i + k >= t->nframes || !frame_is(r, &t->frames[i + k], l)) return 0;
    return match_from(r, t, i + l->repeat, b, j + 1);
}

/* A thread whose walk was cut short matches only a wildcard block (a
 * thread that exits while it is read, as the spawner's do). */
static int block_matches(const au_pyreader *r, const au_pythread *t, const ex_block *b) {
    int cut = (t->flags & (AU_THREAD_PARTIAL | AU_THREAD_CYCLE | AU_THREAD_TRUNCATED)) != 0;
    if (cut && !strchr(b->name, '*')) return 0;
    return match_from(r, t, 0, b, 0);
}

void ex_render_thread(const au_pyreader *r, const au_pythread *t, char *buf, size_t len) {
    size_t at = 0;
    buf[0] = 0;
    for (uint32_t k = 0; k < t->nframes && at < len; k++) {
        const au_pycode *c = au_pyreader_code(r, t->frames[k].code);
        uint32_t blen = 0;
        const char *b = c ? base(c->filename, c->filename_len, &blen) : "";
        int w = snprintf(buf + at, len - at, "  %.*s %.*s:%d\n", c ? (int)(c->name_len > 80 ? 80 : c->name_len) : 1,
                         c ? c->name : "?", (int)blen, b, t->frames[k].line);
        if (w < 0) break;
        at += (size_t)w;
    }
    if (t->flags && at < len) snprintf(buf + at, len - at, "  [flags %u]\n", t->flags);
}

int ex_match(const ex_file *ex, const au_pyreader *r, const au_pysample *s, char *err,
             size_t errlen) {
    uint8_t used[1024] = {0};
    if (s->nthreads > 1024) return -1;
    for (uint32_t bi = 0; bi < ex->nblocks; bi++) {
        const ex_block *b = &ex->blocks[bi];
        int wildcard = strchr(b->name, '*') != NULL;
        uint32_t hits = 0;
        for (uint32_t ti = 0; ti < s->nthreads; ti++) {
            if (used[ti] || !block_matches(r, &s->threads[ti], b)) continue;
            used[ti] = 1;
            hits++;
            if (!wildcard) break;
        }
        if (!wildcard && hits != 1) {
            size_t at = (size_t)snprintf(err, errlen, "no thread matches block '%s'; threads:\n", b->name);
            for (uint32_t ti = 0; ti < s->nthreads && at < errlen; ti++) {
                at += (size_t)snprintf(err + at, errlen - at, "thread %u:\n", ti);
                if (at < errlen) ex_render_thread(r, &s->threads[ti], err + at, errlen - at);
                at += strlen(err + at);
            }
            return -1;
        }
    }
    for (uint32_t ti = 0; ti < s->nthreads; ti++) {
        if (used[ti]) continue;
        size_t at = (size_t)snprintf(err, errlen, "thread %u matches no block:\n", ti);
        ex_render_thread(r, &s->threads[ti], err + at, errlen - at);
        return -1;
    }
    return 0;
}
