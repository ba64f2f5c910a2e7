#include "expect.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Bounded output: appends stop quietly when the buffer is full.
 * ------------------------------------------------------------------------ */
typedef struct outbuf {
    char *p;
    size_t cap, len;
} outbuf;

static void out_init(outbuf *o, char *p, size_t cap) {
    o->p = p;
    o->cap = cap;
    o->len = 0;
    if (cap) p[0] = 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void out_printf(outbuf *o, const char *fmt, ...) {
    if (o->len + 1 >= o->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (w < 0) return;
    o->len += (size_t)w;
    if (o->len >= o->cap) o->len = o->cap - 1;
}

/* ---------------------------------------------------------------------------
 * Parsing.
 * ------------------------------------------------------------------------ */
const char *ex_str(const ex_file *ex, uint32_t off) { return off < ex->ntext ? ex->text + off : ""; }

static int add_text(ex_file *ex, const char *s, size_t n, uint32_t *off) {
    if (n >= EX_MAX_TEXT - ex->ntext) return -1;
    *off = ex->ntext;
    memcpy(ex->text + ex->ntext, s, n);
    ex->text[ex->ntext + n] = 0;
    ex->ntext += (uint32_t)n + 1;
    return 0;
}

static int all_digits(const char *s, size_t n) {
    if (n == 0 || n > 9) return 0;
    for (size_t k = 0; k < n; k++)
        if (s[k] < '0' || s[k] > '9') return 0;
    return 1;
}

/* s: one trimmed, NUL-terminated line (modified).  Returns 0, -1 for a bad
 * entry, -2 when the text pool is full. */
static int parse_item(ex_file *ex, char *s, ex_line *l) {
    size_t n = strlen(s);
    memset(l, 0, sizeof *l);
    l->repeat = 1;
    if (!strcmp(s, "...")) {
        l->kind = EX_ANY;
        return 0;
    }
    if (!strcmp(s, "(truncated)")) {
        l->kind = EX_TRUNCATED;
        return 0;
    }
    if (n > 11 && !strncmp(s, "(cycle -> ", 10) && s[n - 1] == ')') {
        l->kind = EX_CYCLE;
        return add_text(ex, s + 10, n - 11, &l->name) ? -2 : 0;
    }
    if (n > 2 && s[0] == '[' && s[n - 1] == ']') {
        l->kind = EX_TASK;
        return add_text(ex, s + 1, n - 2, &l->name) ? -2 : 0;
    }
    /* QUALNAME FILE:LINE [xN] */
    l->kind = EX_FRAME;
    char *rep = strrchr(s, ' ');
    if (rep && rep[1] == 'x' && all_digits(rep + 2, strlen(rep + 2))) {
        long v = strtol(rep + 2, NULL, 10);
        if (v < 1 || v > 1000000) return -1;
        l->repeat = (uint32_t)v;
        *rep = 0;
    }
    char *colon = strrchr(s, ':');
    if (!colon) return -1;
    *colon = 0;
    const char *ln = colon + 1;
    if (!strcmp(ln, "*"))
        l->line = -1;
    else if (all_digits(ln, strlen(ln)))
        l->line = (int32_t)strtol(ln, NULL, 10);
    else
        return -1;
    char *sp = strchr(s, ' ');
    if (!sp || sp == s || !sp[1]) return -1;
    *sp = 0;
    if (add_text(ex, s, (size_t)(sp - s), &l->name) || add_text(ex, sp + 1, strlen(sp + 1), &l->file))
        return -2;
    return 0;
}

/* The word before the first space is a keyword: *rest is what follows it
 * ("" when nothing does). */
static int keyword(char *s, const char *kw, char **rest) {
    size_t n = strlen(kw);
    if (strncmp(s, kw, n) || (s[n] != ' ' && s[n] != 0)) return 0;
    *rest = s[n] ? s + n + 1 : s + n;
    return 1;
}

int ex_parse(const char *text, size_t len, const char *source, ex_file *out, char *err,
             size_t errlen) {
    memset(out, 0, offsetof(ex_file, blocks));
    snprintf(out->source, sizeof out->source, "%s", source);
    out->text[0] = 0;
    out->ntext = 1;
    outbuf eo;
    out_init(&eo, err, errlen);
    char *buf = malloc(len + 1);
    if (!buf) {
        out_printf(&eo, "%s: out of memory", source);
        return -1;
    }
    ex_block *b = NULL;
    uint32_t lineno = 0;
    const char *why = NULL;
    size_t at = 0, a = 0, z = 0; /* the current line, trimmed: text[a..z) */
    while (at < len && !why) {
        size_t end = at;
        while (end < len && text[end] != '\n') end++;
        lineno++;
        a = at;
        z = end;
        at = end + 1;
        while (a < z && (text[a] == ' ' || text[a] == '\t')) a++;
        while (z > a && (text[z - 1] == ' ' || text[z - 1] == '\t' || text[z - 1] == '\r')) z--;
        memcpy(buf, text + a, z - a);
        buf[z - a] = 0;
        char *s = buf, *rest;
        if (s[0] == '#') continue;
        if (!s[0]) {
            b = NULL;
            continue;
        }
        if (keyword(s, "requires", &rest)) {
            if (out->nblocks) {
                why = "directive after a block";
            } else if (!strcmp(rest, "uvloop")) {
                out->requires_mods |= EX_MOD_UVLOOP;
            } else if (!strcmp(rest, "anyio")) {
                out->requires_mods |= EX_MOD_ANYIO;
            } else if (rest[0] == '3' && rest[1] == '.' && all_digits(rest + 2, strlen(rest + 2))) {
                out->requires_major = 3;
                out->requires_minor = (int)strtol(rest + 2, NULL, 10);
            } else {
                why = "bad directive";
            }
            continue;
        }
        int is_thread = keyword(s, "thread", &rest);
        if (is_thread || keyword(s, "stack", &rest)) {
            if (!rest[0]) {
                why = "bad block header";
            } else if (out->nblocks == EX_MAX_BLOCKS) {
                why = "too many blocks";
            } else {
                b = &out->blocks[out->nblocks++];
                memset(b, 0, sizeof *b);
                b->kind = is_thread ? EX_BLOCK_THREAD : EX_BLOCK_STACK;
                b->first = out->nlines;
                b->srcline = lineno;
                if (add_text(out, rest, strlen(rest), &b->name)) why = "too much text";
            }
            continue;
        }
        if (!b) {
            why = "entry outside a block";
            continue;
        }
        if (keyword(s, "on", &rest)) {
            if (b->kind != EX_BLOCK_STACK || b->on || b->nlines || !rest[0])
                why = "'on THREAD' only right after 'stack LEAF'";
            else if (add_text(out, rest, strlen(rest), &b->on))
                why = "too much text";
            continue;
        }
        if (out->nlines == EX_MAX_LINES) {
            why = "too many entries";
            continue;
        }
        ex_line *l = &out->lines[out->nlines];
        int rc = parse_item(out, s, l);
        if (rc == -2) {
            why = "too much text";
        } else if (rc) {
            why = "bad entry";
        } else if (b->kind == EX_BLOCK_THREAD && l->kind != EX_ANY && l->kind != EX_FRAME) {
            why = "a thread block holds frames and '...' only";
        } else {
            l->srcline = lineno;
            out->nlines++;
            b->nlines++;
        }
    }
    if (why) {
        out_printf(&eo, "%s:%u: %s: %.*s", source, lineno, why, (int)(z - a), text + a);
        free(buf);
        return -1;
    }
    free(buf);
    for (uint32_t bi = 0; bi < out->nblocks; bi++) {
        const ex_block *blk = &out->blocks[bi];
        if (blk->kind != EX_BLOCK_STACK) continue;
        int has_task = 0;
        for (uint32_t k = 0; k < blk->nlines; k++) has_task |= out->lines[blk->first + k].kind == EX_TASK;
        if (!has_task) {
            out_printf(&eo, "%s:%u: stack %s has no task marker", source, blk->srcline,
                       ex_str(out, blk->name));
            return -1;
        }
    }
    return 0;
}

int ex_load(const char *path, ex_file *out, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    while (text) {
        len += fread(text + len, 1, cap - len, f);
        if (len < cap) break;
        char *bigger = realloc(text, cap * 2);
        if (!bigger) {
            free(text);
            text = NULL;
            break;
        }
        text = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!text || bad) {
        free(text);
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    int rc = ex_parse(text, len, path, out, err, errlen);
    free(text);
    return rc;
}

int ex_load_fixture(const char *dir, const char *fixture, int agent, ex_file *out, char *err,
                    size_t errlen) {
    size_t n = strlen(fixture);
    if (n > 3 && !strcmp(fixture + n - 3, ".py")) n -= 3;
    char path[1024];
    if (!agent) {
        snprintf(path, sizeof path, "%s/%.*s.noagent.txt", dir, (int)n, fixture);
        FILE *f = fopen(path, "rb");
        if (f) {
            fclose(f);
            int rc = ex_load(path, out, err, errlen);
            out->noagent = 1;
            return rc;
        }
    }
    snprintf(path, sizeof path, "%s/%.*s.txt", dir, (int)n, fixture);
    return ex_load(path, out, err, errlen);
}

int ex_applies(const ex_file *ex, int major, int minor, unsigned mods, char *why, size_t whylen) {
    if (whylen) why[0] = 0;
    if (ex->requires_major &&
        (major < ex->requires_major || (major == ex->requires_major && minor < ex->requires_minor))) {
        snprintf(why, whylen, "needs Python %d.%d+ (this is %d.%d)", ex->requires_major,
                 ex->requires_minor, major, minor);
        return 0;
    }
    unsigned missing = ex->requires_mods & ~mods;
    if (missing) {
        snprintf(why, whylen, "needs %s", missing & EX_MOD_UVLOOP ? "uvloop" : "anyio");
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------------------
 * Matching one block against one sequence, frames-only "..." included.
 *
 * reach[i]: the block's items so far match entries[0..i).  Item by item the
 * reachable set moves on; the furthest point reached (entry i, item j) is
 * where a diff shows the two part.
 * ------------------------------------------------------------------------ */
typedef struct seq {
    size_t n;
    const void *ctx;
    int (*eq)(const ex_file *ex, const ex_line *l, const void *ctx, size_t i);
    int (*is_frame)(const void *ctx, size_t i);
} seq;

static int match_seq(const ex_file *ex, const ex_block *b, const seq *s, size_t *best_i,
                     uint32_t *best_j) {
    size_t n = s->n;
    unsigned char *reach = calloc(2 * (n + 1), 1);
    if (!reach) return 0;
    unsigned char *next = reach + n + 1;
    reach[0] = 1;
    size_t bi = 0;
    uint32_t bj = 0;
    for (uint32_t j = 0; j <= b->nlines; j++) {
        size_t top = n + 1;
        for (size_t i = n + 1; i-- > 0;)
            if (reach[i]) {
                top = i;
                break;
            }
        if (top <= n && (top > bi || (top == bi && j > bj))) {
            bi = top;
            bj = j;
        }
        if (j == b->nlines) break;
        const ex_line *l = &ex->lines[b->first + j];
        memset(next, 0, n + 1);
        if (l->kind == EX_ANY) {
            int on = 0;
            for (size_t i = 0; i <= n; i++) {
                on = reach[i] || (on && s->is_frame(s->ctx, i - 1));
                next[i] = (unsigned char)on;
            }
        } else {
            size_t r = l->kind == EX_FRAME ? l->repeat : 1;
            for (size_t i = 0; i + r <= n; i++) {
                if (!reach[i]) continue;
                size_t k = 0;
                while (k < r && s->eq(ex, l, s->ctx, i + k)) k++;
                if (k == r) next[i + r] = 1;
            }
        }
        memcpy(reach, next, n + 1);
    }
    int ok = reach[n];
    free(reach);
    if (best_i) *best_i = bi;
    if (best_j) *best_j = bj;
    return ok;
}

/* '*' matches any run of characters; the rest is literal. */
static int glob_match(const char *pat, const char *s, size_t n) {
    const char *star = NULL;
    size_t i = 0, mark = 0;
    while (i < n) {
        if (*pat == '*') {
            star = pat++;
            mark = i;
        } else if (*pat && *pat == s[i]) {
            pat++;
            i++;
        } else if (star) {
            pat = star + 1;
            i = ++mark;
        } else {
            return 0;
        }
    }
    while (*pat == '*') pat++;
    return *pat == 0;
}

static int glob_cstr(const char *pat, const char *s) { return glob_match(pat, s, strlen(s)); }

static const char *base(const char *p, uint32_t n, uint32_t *len) {
    uint32_t k = n;
    while (k && p[k - 1] != '/') k--;
    *len = n - k;
    return p + k;
}

/* ---------------------------------------------------------------------------
 * Thread blocks against a live sample (au_pysample).
 * ------------------------------------------------------------------------ */
typedef struct thread_ctx {
    const au_pyreader *r;
    const au_pythread *t;
} thread_ctx;

static int frame_is(const ex_file *ex, const ex_line *l, const void *ctx, size_t i) {
    const thread_ctx *tc = ctx;
    const au_pyframe *f = &tc->t->frames[i];
    if (l->kind != EX_FRAME) return 0;
    const au_pycode *c = au_pyreader_code(tc->r, f->code);
    if (!c) return 0;
    uint32_t blen;
    const char *b = base(c->filename, c->filename_len, &blen);
    const char *func = ex_str(ex, l->name), *file = ex_str(ex, l->file);
    size_t want = strlen(func);
    int name_ok = c->name_len == want && !memcmp(c->name, func, want);
    /* A name longer than the reader's max_name is cut and ends in "...":
     * it matches an expectation that starts with what was kept. */
    if (!name_ok && c->name_len > 3 && !memcmp(c->name + c->name_len - 3, "...", 3))
        name_ok = want > c->name_len - 3 && !memcmp(c->name, func, c->name_len - 3);
    return name_ok && blen == strlen(file) && !memcmp(b, file, blen) &&
           (l->line < 0 || l->line == f->line);
}

static int always_frame(const void *ctx, size_t i) {
    (void)ctx;
    (void)i;
    return 1;
}

/* A thread whose walk was cut short matches only a wildcard block (a
 * thread that exits while it is read, as the spawner's do). */
static int block_matches(const ex_file *ex, const au_pyreader *r, const au_pythread *t,
                         const ex_block *b) {
    int cut = (t->flags & (AU_THREAD_PARTIAL | AU_THREAD_CYCLE | AU_THREAD_TRUNCATED)) != 0;
    if (cut && !strchr(ex_str(ex, b->name), '*')) return 0;
    thread_ctx tc = {r, t};
    seq s = {t->nframes, &tc, frame_is, always_frame};
    return match_seq(ex, b, &s, NULL, NULL);
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
        if (b->kind != EX_BLOCK_THREAD) continue;
        int wildcard = strchr(ex_str(ex, b->name), '*') != NULL;
        uint32_t hits = 0;
        for (uint32_t ti = 0; ti < s->nthreads; ti++) {
            if (used[ti] || !block_matches(ex, r, &s->threads[ti], b)) continue;
            used[ti] = 1;
            hits++;
            if (!wildcard) break;
        }
        if (!wildcard && hits != 1) {
            size_t at = (size_t)snprintf(err, errlen, "no thread matches block '%s'; threads:\n",
                                         ex_str(ex, b->name));
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

/* ---------------------------------------------------------------------------
 * Stack blocks against rendered stacks (ex_stack).
 * ------------------------------------------------------------------------ */
typedef struct entry {
    uint8_t kind;           /* ex_kind: EX_FRAME, EX_TASK, EX_CYCLE, EX_TRUNCATED */
    const char *name;       /* qualname or task name */
    uint32_t name_len;
    const char *file;       /* basename */
    uint32_t file_len;
    const char *line;       /* as written: digits, "?", ... */
    uint32_t line_len;
} entry;

static void parse_entry(const char *e, entry *o) {
    size_t n = strlen(e);
    memset(o, 0, sizeof *o);
    if (!strcmp(e, "(truncated)")) {
        o->kind = EX_TRUNCATED;
    } else if (n >= 11 && !strncmp(e, "(cycle -> ", 10) && e[n - 1] == ')') {
        o->kind = EX_CYCLE;
        o->name = e + 10;
        o->name_len = (uint32_t)(n - 11);
    } else if (n >= 2 && e[0] == '[' && e[n - 1] == ']') {
        o->kind = EX_TASK;
        o->name = e + 1;
        o->name_len = (uint32_t)(n - 2);
    } else {
        /* "QUALNAME PATH:LINE": the qualname has no space, the path may. */
        o->kind = EX_FRAME;
        const char *sp = strchr(e, ' ');
        o->name = e;
        o->name_len = (uint32_t)(sp ? (size_t)(sp - e) : n);
        const char *rest = sp ? sp + 1 : e + n;
        const char *colon = strrchr(rest, ':');
        uint32_t plen = (uint32_t)(colon ? (size_t)(colon - rest) : 0);
        o->file = base(rest, plen, &o->file_len);
        o->line = colon ? colon + 1 : rest;
        o->line_len = (uint32_t)strlen(o->line);
    }
}

static int str_is(const char *a, uint32_t alen, const char *b) {
    return strlen(b) == alen && !memcmp(a, b, alen);
}

static int entry_is(const ex_file *ex, const ex_line *l, const void *ctx, size_t i) {
    const entry *e = (const entry *)ctx + i;
    if (e->kind != l->kind) return 0;
    switch (l->kind) {
        case EX_FRAME: {
            if (!str_is(e->name, e->name_len, ex_str(ex, l->name)) ||
                !str_is(e->file, e->file_len, ex_str(ex, l->file)))
                return 0;
            if (l->line < 0) return 1;
            char num[16];
            snprintf(num, sizeof num, "%d", (int)l->line);
            return str_is(e->line, e->line_len, num);
        }
        case EX_TASK:
        case EX_CYCLE:
            return glob_match(ex_str(ex, l->name), e->name, e->name_len);
        default:
            return 1;
    }
}

static int entry_is_frame(const void *ctx, size_t i) { return ((const entry *)ctx)[i].kind == EX_FRAME; }

static int header_matches(const ex_file *ex, const ex_block *b, const ex_stack *s) {
    const char *thread = s->thread ? s->thread : "";
    if (b->kind == EX_BLOCK_THREAD) return s->leaf == NULL && glob_cstr(ex_str(ex, b->name), thread);
    return s->leaf != NULL && glob_cstr(ex_str(ex, b->name), s->leaf) &&
           (!b->on || glob_cstr(ex_str(ex, b->on), thread));
}

/* Parsed entries of one stack; the caller frees. */
static entry *parse_stack(const ex_stack *s) {
    entry *e = malloc((s->nentries ? s->nentries : 1) * sizeof *e);
    if (e)
        for (size_t k = 0; k < s->nentries; k++) parse_entry(s->entries[k], &e[k]);
    return e;
}

/* Whether block b matches stack s; *bi, *bj: how far it got. */
static int stack_progress(const ex_file *ex, const ex_block *b, const ex_stack *s, size_t *bi,
                          uint32_t *bj) {
    entry *e = parse_stack(s);
    if (!e) return 0;
    seq q = {s->nentries, e, entry_is, entry_is_frame};
    int ok = match_seq(ex, b, &q, bi, bj);
    free(e);
    return ok;
}

static const char *block_kind_name(const ex_block *b) {
    return b->kind == EX_BLOCK_THREAD ? "thread" : "stack";
}

static void describe(outbuf *o, const ex_stack *s) {
    const char *thread = s->thread && s->thread[0] ? s->thread : "(unknown thread)";
    if (s->leaf)
        out_printf(o, "stack %s on %s", s->leaf, thread);
    else
        out_printf(o, "thread %s (no tasks)", thread);
}

static void format_line(outbuf *o, const ex_file *ex, const ex_line *l) {
    switch (l->kind) {
        case EX_ANY: out_printf(o, "..."); break;
        case EX_TASK: out_printf(o, "[%s]", ex_str(ex, l->name)); break;
        case EX_CYCLE: out_printf(o, "(cycle -> %s)", ex_str(ex, l->name)); break;
        case EX_TRUNCATED: out_printf(o, "(truncated)"); break;
        default:
            out_printf(o, "%s %s:", ex_str(ex, l->name), ex_str(ex, l->file));
            if (l->line < 0)
                out_printf(o, "*");
            else
                out_printf(o, "%d", (int)l->line);
            if (l->repeat > 1) out_printf(o, " x%u", l->repeat);
    }
}

static void diff(outbuf *o, const ex_file *ex, const ex_block *b, const ex_stack *s) {
    size_t bi = 0;
    uint32_t bj = 0;
    stack_progress(ex, b, s, &bi, &bj);
    out_printf(o, "  expected (%s %s, line %u):\n", block_kind_name(b), ex_str(ex, b->name), b->srcline);
    for (uint32_t j = 0; j < b->nlines; j++) {
        const ex_line *l = &ex->lines[b->first + j];
        out_printf(o, "    %c %4u  ", j == bj ? '>' : ' ', l->srcline);
        format_line(o, ex, l);
        out_printf(o, "\n");
    }
    if (bj == b->nlines) out_printf(o, "    > (end)\n");
    out_printf(o, "  actual (");
    describe(o, s);
    out_printf(o, "):\n");
    for (size_t i = 0; i < s->nentries; i++)
        out_printf(o, "    %c %4zu  %s\n", i == bi ? '>' : ' ', i, s->entries[i]);
    if (bi == s->nentries) out_printf(o, "    > (end)\n");
}

#define EX_LIST_HITS 4 /* matches named in a "matches K stacks" message */

int ex_match_stacks(const ex_file *ex, const ex_stack *stacks, size_t n, char *err, size_t errlen) {
    outbuf o;
    out_init(&o, err, errlen);
    uint32_t nb = ex->nblocks;
    size_t *hits = calloc(nb ? nb : 1, sizeof *hits);
    size_t *first = calloc((nb ? nb : 1) * EX_LIST_HITS, sizeof *first);
    unsigned char *used = calloc(n ? n : 1, 1);
    if (!hits || !first || !used) {
        free(hits);
        free(first);
        free(used);
        out_printf(&o, "out of memory\n");
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        entry *e = NULL;
        for (uint32_t b = 0; b < nb; b++) {
            if (!header_matches(ex, &ex->blocks[b], &stacks[k])) continue;
            if (!e && !(e = parse_stack(&stacks[k]))) break;
            seq q = {stacks[k].nentries, e, entry_is, entry_is_frame};
            if (!match_seq(ex, &ex->blocks[b], &q, NULL, NULL)) continue;
            if (hits[b] < EX_LIST_HITS) first[b * EX_LIST_HITS + hits[b]] = k;
            hits[b]++;
            used[k] = 1;
        }
        free(e);
    }
    int bad = 0;
    for (uint32_t b = 0; b < nb; b++) {
        const ex_block *blk = &ex->blocks[b];
        if (strchr(ex_str(ex, blk->name), '*') || hits[b] == 1) continue;
        bad = 1;
        out_printf(&o, "%s %s (line %u) matches ", block_kind_name(blk), ex_str(ex, blk->name),
                   blk->srcline);
        if (hits[b]) {
            out_printf(&o, "%zu stacks: ", hits[b]);
            for (size_t h = 0; h < hits[b] && h < EX_LIST_HITS; h++) {
                if (h) out_printf(&o, "; ");
                describe(&o, &stacks[first[b * EX_LIST_HITS + h]]);
            }
            if (hits[b] > EX_LIST_HITS) out_printf(&o, "; and %zu more", hits[b] - EX_LIST_HITS);
            out_printf(&o, "\n");
            continue;
        }
        out_printf(&o, "no stack");
        /* The nearest stack: among those the header fits, else all. */
        int any_header = 0;
        for (size_t k = 0; k < n && !any_header; k++) any_header = header_matches(ex, blk, &stacks[k]);
        size_t best = n, bi_best = 0;
        uint32_t bj_best = 0;
        for (size_t k = 0; k < n; k++) {
            if (any_header && !header_matches(ex, blk, &stacks[k])) continue;
            size_t bi;
            uint32_t bj;
            stack_progress(ex, blk, &stacks[k], &bi, &bj);
            if (best == n || bi > bi_best || (bi == bi_best && bj > bj_best)) {
                best = k;
                bi_best = bi;
                bj_best = bj;
            }
        }
        if (best < n) {
            out_printf(&o, any_header ? "; nearest:\n" : "; nearest of all stacks:\n");
            diff(&o, ex, blk, &stacks[best]);
        } else {
            out_printf(&o, "\n");
        }
    }
    for (size_t k = 0; k < n; k++) {
        if (used[k]) continue;
        bad = 1;
        describe(&o, &stacks[k]);
        out_printf(&o, " matches no block");
        int any_header = 0;
        for (uint32_t b = 0; b < nb && !any_header; b++) any_header = header_matches(ex, &ex->blocks[b], &stacks[k]);
        uint32_t best = nb, bj_best = 0;
        size_t bi_best = 0;
        for (uint32_t b = 0; b < nb; b++) {
            if (any_header && !header_matches(ex, &ex->blocks[b], &stacks[k])) continue;
            size_t bi;
            uint32_t bj;
            stack_progress(ex, &ex->blocks[b], &stacks[k], &bi, &bj);
            if (best == nb || bi > bi_best || (bi == bi_best && bj > bj_best)) {
                best = b;
                bi_best = bi;
                bj_best = bj;
            }
        }
        if (best < nb) {
            out_printf(&o, any_header ? "; nearest:\n" : "; nearest of all blocks:\n");
            diff(&o, ex, &ex->blocks[best], &stacks[k]);
        } else {
            out_printf(&o, ":\n");
            for (size_t i = 0; i < stacks[k].nentries; i++) out_printf(&o, "    %s\n", stacks[k].entries[i]);
        }
    }
    free(hits);
    free(first);
    free(used);
    return bad ? -1 : 0;
}
