/*
 * Rendering a sample as text or collapsed stacks (docs/CLI.md).
 *
 * Works from the sampler's public results only (au_sample and
 * au_sample_stack_entries), so a vendoring profiler that renders its own
 * way sees exactly what this file sees.
 *
 * Names come from the target and are not trusted to be printable: a
 * newline would split a line and a ';' a collapsed frame, so both are
 * replaced.  Output goes through a small buffer to the caller's write().
 */
#include <stdio.h>
#include <string.h>

#include "asyncunwind.h"
#include "sampler.h"

#define NONE UINT32_MAX

typedef struct out {
    int (*write)(void *ud, const void *buf, size_t len);
    void *ud;
    int rc;
    size_t len;
    char buf[4096];
} out;

static void flush(out *o) {
    if (o->rc == AU_OK && o->len && o->write(o->ud, o->buf, o->len) != 0) o->rc = AU_ERR_IO;
    o->len = 0;
}

static void put(out *o, const char *s, size_t n) {
    while (n) {
        if (o->len == sizeof o->buf) flush(o);
        size_t k = sizeof o->buf - o->len < n ? sizeof o->buf - o->len : n;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

/* Target text: ';' would split a collapsed frame, a line break a line.
 * Runs of other bytes go out whole (a stack is mostly file names). */
static void put_clean(out *o, const char *s, uint32_t n, int collapsed) {
    uint32_t from = 0;
    for (uint32_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\n' && c != '\r' && !(collapsed && c == ';')) continue;
        put(o, s + from, i - from);
        put(o, c == ';' ? ":" : " ", 1);
        from = i + 1;
    }
    put(o, s + from, n - from);
}

static void putf(out *o, const char *fmt, unsigned long long v) {
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    if (n > 0) put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void put_frame(out *o, const au_sample_frame *f, int collapsed) {
    if (!f->qualname) {
        putf(o, "<unknown> (0x%llx)", (unsigned long long)f->code_addr);
        return;
    }
    put_clean(o, f->qualname, f->qualname_len, collapsed);
    puts_(o, " (");
    put_clean(o, f->filename, f->filename_len, collapsed);
    if (f->line >= 0) putf(o, ":%llu)", (unsigned long long)f->line);
    else puts_(o, ":?)");
}

static void put_task_name(out *o, const au_sample_task *t, int collapsed) {
    if (t->name_len) put_clean(o, t->name, t->name_len, collapsed);
    else putf(o, "<task 0x%llx>", (unsigned long long)t->id);
}

static void put_thread_id(out *o, const au_sample_thread *t, int collapsed) {
    if (t->native_id) putf(o, "%llu", (unsigned long long)t->native_id);
    else putf(o, "0x%llx", (unsigned long long)t->thread_id);
    if (t->name) {
        puts_(o, collapsed ? " (" : " \"");
        put_clean(o, t->name, t->name_len, collapsed);
        puts_(o, collapsed ? ")" : "\"");
    }
}

static const char *partial_note(uint32_t flags) {
    if (flags & AU_THREAD_CYCLE) return "[frame chain loops]";
    if (flags & AU_THREAD_PARTIAL) return "[partial stack]";
    return NULL;
}

/* One line (text) or one entry (collapsed) of a task marker.  In text, a
 * task under another says how: the await, strong or weak link. */
static void put_task_entry(out *o, const au_sample *smp, const au_sample_task *t, int collapsed,
                           int first) {
    if (collapsed) {
        puts_(o, ";[");
        put_task_name(o, t, 1);
        puts_(o, "]");
        return;
    }
    puts_(o, "    [");
    put_task_name(o, t, 0);
    puts_(o, "]");
    if (!first && t->parent != NONE && t->parent < smp->ntasks) {
        static const char *const how[] = {"", " awaited by ", " held by ", " created by "};
        puts_(o, how[t->link <= AU_LINK_WEAK ? t->link : 0]);
        put_task_name(o, &smp->tasks[t->parent], 0);
    }
    puts_(o, "\n");
}

static void render_stack(out *o, const au_sample *smp, uint32_t k, const au_entry *e, uint64_t n,
                         int collapsed) {
    const au_sample_stack *st = &smp->stacks[k];
    const au_sample_thread *t = &smp->threads[st->thread];
    const char *note = partial_note(t->flags);
    if (collapsed) {
        puts_(o, "thread ");
        put_thread_id(o, t, 1);
    } else {
        puts_(o, "\nThread ");
        put_thread_id(o, t, 0);
        if (st->leaf != NONE) {
            puts_(o, ", task ");
            put_task_name(o, &smp->tasks[st->leaf], 0);
            if (st->flags & AU_STACK_RUNNING) puts_(o, ", running");
        }
        puts_(o, " (most recent call last):\n");
        if (t->flags & AU_THREAD_TRUNCATED) puts_(o, "    ... (older frames not read)\n");
    }
    int in_tasks = 0, first_task = 1;
    for (uint64_t i = 0; i < n; i++) {
        const au_entry *x = &e[i];
        if (x->kind != AU_ENTRY_FRAME && !in_tasks) {
            in_tasks = 1;
            if (note) {
                if (collapsed) {
                    puts_(o, ";");
                    puts_(o, note);
                } else {
                    puts_(o, "    ");
                    puts_(o, note);
                    puts_(o, "\n");
                }
            }
        }
        switch (x->kind) {
        case AU_ENTRY_FRAME:
            puts_(o, collapsed ? ";" : "    ");
            if (x->id < smp->nframes) put_frame(o, &smp->frames[x->id], collapsed);
            if (!collapsed) puts_(o, "\n");
            break;
        case AU_ENTRY_TASK:
            if (x->task < smp->ntasks) put_task_entry(o, smp, &smp->tasks[x->task], collapsed, first_task);
            first_task = 0;
            break;
        case AU_ENTRY_CYCLE:
            puts_(o, collapsed ? ";[cycle -> " : "    [cycle: the chain returns to ");
            if (x->task < smp->ntasks) put_task_name(o, &smp->tasks[x->task], collapsed);
            puts_(o, collapsed ? "]" : "]\n");
            break;
        default:
            puts_(o, collapsed ? ";[truncated]" : "    [truncated]\n");
            break;
        }
    }
    if (!in_tasks && note) {
        if (collapsed) {
            puts_(o, ";");
            puts_(o, note);
        } else {
            puts_(o, "    ");
            puts_(o, note);
            puts_(o, "\n");
        }
    }
    if (collapsed) puts_(o, " 1\n");
}

static void version_str(uint32_t hex, int exact, char *buf, size_t cap) {
    unsigned major = hex >> 24, minor = hex >> 16 & 0xff, micro = hex >> 8 & 0xff;
    unsigned level = hex >> 4 & 0xf, serial = hex & 0xf;
    if (!exact) {
        snprintf(buf, cap, "%u.%u", major, minor);
        return;
    }
    const char *lv = level == 0xa ? "a" : level == 0xb ? "b" : level == 0xc ? "rc" : "";
    if (*lv) snprintf(buf, cap, "%u.%u.%u%s%u", major, minor, micro, lv, serial);
    else snprintf(buf, cap, "%u.%u.%u", major, minor, micro);
}

int au_render(au_sampler *s, const au_sample *smp, uint32_t format,
              int (*write)(void *ud, const void *buf, size_t len), void *ud) {
    if (!s || !smp || !write || format > AU_FORMAT_COLLAPSED) return AU_ERR_ARG;
    int collapsed = format == AU_FORMAT_COLLAPSED;
    out o;
    o.write = write;
    o.ud = ud;
    o.rc = AU_OK;
    o.len = 0;
    if (!collapsed) {
        char v[32];
        version_str(smp->py_version_hex, (int)smp->version_exact, v, sizeof v);
        putf(&o, "Process %llu: CPython ", (unsigned long long)(smp->pid > 0 ? smp->pid : 0));
        puts_(&o, v);
        puts_(&o, "\n");
    }
    /* Entries go through one buffer, grown to the longest stack. */
    au_allocator a = au_sampler_alloc(s);
    au_entry stackbuf[256];
    au_entry *e = stackbuf;
    uint32_t cap = 256;
    int rc = AU_OK;
    for (uint32_t t = 0; t < smp->nthreads && rc == AU_OK; t++) {
        const au_sample_thread *th = &smp->threads[t];
        if (th->nstacks == 0) { /* a thread without frames */
            puts_(&o, collapsed ? "thread " : "\nThread ");
            put_thread_id(&o, th, collapsed);
            puts_(&o, collapsed ? " 1\n" : " (most recent call last):\n");
        }
        for (uint32_t k = th->first_stack; k < th->first_stack + th->nstacks; k++) {
            uint64_t n = au_sample_stack_entries(s, k, NULL, 0);
            if (n > cap) {
                uint32_t want = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
                au_entry *ne = a.realloc(a.ud, e == stackbuf ? NULL : e,
                                         e == stackbuf ? 0 : (size_t)cap * sizeof *e,
                                         (size_t)want * sizeof *e);
                if (!ne) {
                    rc = AU_ERR_NOMEM;
                    break;
                }
                e = ne;
                cap = want;
            }
            n = au_sample_stack_entries(s, k, e, cap);
            render_stack(&o, smp, k, e, n < cap ? n : cap, collapsed);
        }
    }
    if (rc == AU_OK && !collapsed && smp->nthreads == 0) puts_(&o, "\n(no Python threads)\n");
    if (e != stackbuf) a.realloc(a.ud, e, (size_t)cap * sizeof *e, 0);
    flush(&o);
    return rc ? rc : o.rc;
}
