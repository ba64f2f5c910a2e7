/*
 * Rendering a sample as text or collapsed stacks (docs/CLI.md).
 *
 * Works from the sampler's public results only (au_sample and
 * au_sample_stack_entries), so a vendoring profiler that renders its own
 * way sees exactly what this file sees.
 *
 * Names come from the target and are not trusted to be printable: a
 * newline would split a line and a ';' a collapsed frame, so both are
 * replaced (outbuf.h).
 */
#include <stdio.h>
#include <string.h>

#include "asyncunwind.h"
#include "outbuf.h"
#include "sampler.h"

#define NONE UINT32_MAX

static void put_frame(au_out *o, const au_sample_frame *f, int collapsed) {
    if (!f->qualname) {
        au_out_num(o, "<unknown> (0x%llx)", (unsigned long long)f->code_addr);
        return;
    }
    au_out_clean(o, f->qualname, f->qualname_len, collapsed);
    au_out_str(o, " (");
    au_out_clean(o, f->filename, f->filename_len, collapsed);
    if (f->line >= 0) au_out_num(o, ":%llu)", (unsigned long long)f->line);
    else au_out_str(o, ":?)");
}

static void put_task_name(au_out *o, const au_sample_task *t, int collapsed) {
    if (t->name_len) au_out_clean(o, t->name, t->name_len, collapsed);
    else au_out_num(o, "<task 0x%llx>", (unsigned long long)t->id);
}

static void put_thread_id(au_out *o, const au_sample_thread *t, int collapsed) {
    if (t->native_id) au_out_num(o, "%llu", (unsigned long long)t->native_id);
    else au_out_num(o, "0x%llx", (unsigned long long)t->thread_id);
    if (t->name) {
        au_out_str(o, collapsed ? " (" : " \"");
        au_out_clean(o, t->name, t->name_len, collapsed);
        au_out_str(o, collapsed ? ")" : "\"");
    }
}

static const char *partial_note(uint32_t flags) {
    if (flags & AU_THREAD_CYCLE) return "[frame chain loops]";
    if (flags & AU_THREAD_PARTIAL) return "[partial stack]";
    return NULL;
}

/* One line (text) or one entry (collapsed) of a task marker.  In text, a
 * task under another says how: the await, strong or weak link. */
static void put_task_entry(au_out *o, const au_sample *smp, const au_sample_task *t, int collapsed,
                           int first) {
    if (collapsed) {
        au_out_str(o, ";[");
        put_task_name(o, t, 1);
        au_out_str(o, "]");
        return;
    }
    au_out_str(o, "    [");
    put_task_name(o, t, 0);
    au_out_str(o, "]");
    if (!first && t->parent != NONE && t->parent < smp->ntasks) {
        static const char *const how[] = {"", " awaited by ", " held by ", " created by "};
        au_out_str(o, how[t->link <= AU_LINK_WEAK ? t->link : 0]);
        put_task_name(o, &smp->tasks[t->parent], 0);
    }
    au_out_str(o, "\n");
}

static void render_stack(au_out *o, const au_sample *smp, uint32_t k, const au_entry *e, uint64_t n,
                         int collapsed) {
    const au_sample_stack *st = &smp->stacks[k];
    const au_sample_thread *t = &smp->threads[st->thread];
    const char *note = partial_note(t->flags);
    if (collapsed) {
        au_out_str(o, "thread ");
        put_thread_id(o, t, 1);
    } else {
        au_out_str(o, "\nThread ");
        put_thread_id(o, t, 0);
        if (st->leaf != NONE) {
            au_out_str(o, ", task ");
            put_task_name(o, &smp->tasks[st->leaf], 0);
            if (st->flags & AU_STACK_RUNNING) au_out_str(o, ", running");
        }
        au_out_str(o, " (most recent call last):\n");
        if (t->flags & AU_THREAD_TRUNCATED) au_out_str(o, "    ... (older frames not read)\n");
    }
    int in_tasks = 0, first_task = 1;
    for (uint64_t i = 0; i < n; i++) {
        const au_entry *x = &e[i];
        if (x->kind != AU_ENTRY_FRAME && !in_tasks) {
            in_tasks = 1;
            if (note) {
                if (collapsed) {
                    au_out_str(o, ";");
                    au_out_str(o, note);
                } else {
                    au_out_str(o, "    ");
                    au_out_str(o, note);
                    au_out_str(o, "\n");
                }
            }
        }
        switch (x->kind) {
        case AU_ENTRY_FRAME:
            au_out_str(o, collapsed ? ";" : "    ");
            if (x->id < smp->nframes) put_frame(o, &smp->frames[x->id], collapsed);
            if (!collapsed) au_out_str(o, "\n");
            break;
        case AU_ENTRY_TASK:
            if (x->task < smp->ntasks) put_task_entry(o, smp, &smp->tasks[x->task], collapsed, first_task);
            first_task = 0;
            break;
        case AU_ENTRY_CYCLE:
            au_out_str(o, collapsed ? ";[cycle -> " : "    [cycle: the chain returns to ");
            if (x->task < smp->ntasks) put_task_name(o, &smp->tasks[x->task], collapsed);
            au_out_str(o, collapsed ? "]" : "]\n");
            break;
        default:
            au_out_str(o, collapsed ? ";[truncated]" : "    [truncated]\n");
            break;
        }
    }
    if (!in_tasks && note) {
        if (collapsed) {
            au_out_str(o, ";");
            au_out_str(o, note);
        } else {
            au_out_str(o, "    ");
            au_out_str(o, note);
            au_out_str(o, "\n");
        }
    }
    if (collapsed) au_out_str(o, " 1\n");
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
    au_out o;
    au_out_init(&o, write, ud);
    if (!collapsed) {
        char v[32];
        version_str(smp->py_version_hex, (int)smp->version_exact, v, sizeof v);
        au_out_num(&o, "Process %llu: CPython ", (unsigned long long)(smp->pid > 0 ? smp->pid : 0));
        au_out_str(&o, v);
        au_out_str(&o, "\n");
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
            au_out_str(&o, collapsed ? "thread " : "\nThread ");
            put_thread_id(&o, th, collapsed);
            au_out_str(&o, collapsed ? " 1\n" : " (most recent call last):\n");
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
    if (rc == AU_OK && !collapsed && smp->nthreads == 0) au_out_str(&o, "\n(no Python threads)\n");
    if (e != stackbuf) a.realloc(a.ud, e, (size_t)cap * sizeof *e, 0);
    au_out_flush(&o);
    return rc ? rc : o.rc;
}
