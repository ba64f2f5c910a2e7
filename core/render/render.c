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
#include "au_render_out.h"
#include "au_sampler.h"

#define NONE UINT32_MAX

/* One line (text) or one entry (collapsed) of a task marker.  In text, a
 * task under another says how: the await, strong or weak link. */
static void put_task_entry(au_out *o, const au_sample *smp, const au_sample_task *t, int collapsed,
                           int first) {
    if (collapsed) {
        au_out_puts(o, ";[");
        au_out_task_name(o, t, 1);
        au_out_puts(o, "]");
        return;
    }
    au_out_puts(o, "    [");
    au_out_task_name(o, t, 0);
    au_out_puts(o, "]");
    if (!first && t->parent != NONE && t->parent < smp->ntasks) {
        static const char *const how[] = {"", " awaited by ", " held by ", " created by "};
        au_out_puts(o, how[t->link <= AU_LINK_WEAK ? t->link : 0]);
        au_out_task_name(o, &smp->tasks[t->parent], 0);
    }
    au_out_puts(o, "\n");
}

/* The note of a thread whose stack was read in part, if any.  The frames
 * not read are the oldest (a walk goes from the innermost frame out), so
 * it comes first, on the root side, where the truncation note goes too. */
static void put_note(au_out *o, const char *note, int collapsed) {
    if (!note) return;
    au_out_puts(o, collapsed ? ";" : "    ");
    au_out_puts(o, note);
    if (!collapsed) au_out_puts(o, "\n");
}

static void render_stack(au_out *o, const au_sample *smp, uint32_t k, const au_entry *e, uint64_t n,
                         int collapsed) {
    const au_sample_stack *st = &smp->stacks[k];
    const au_sample_thread *t = &smp->threads[st->thread];
    const char *note = au_partial_note(t->flags);
    if (collapsed) {
        au_out_puts(o, "thread ");
        au_out_thread_id(o, t, 1);
    } else {
        au_out_puts(o, "\nThread ");
        au_out_thread_id(o, t, 0);
        if (st->leaf != NONE) {
            au_out_puts(o, ", task ");
            au_out_task_name(o, &smp->tasks[st->leaf], 0);
            if (st->flags & AU_STACK_RUNNING) au_out_puts(o, ", running");
        }
        au_out_puts(o, " (most recent call last):\n");
        if (t->flags & AU_THREAD_TRUNCATED) au_out_puts(o, "    ... (older frames not read)\n");
    }
    put_note(o, note, collapsed);
    int first_task = 1;
    for (uint64_t i = 0; i < n; i++) {
        const au_entry *x = &e[i];
        switch (x->kind) {
        case AU_ENTRY_FRAME:
            au_out_puts(o, collapsed ? ";" : "    ");
            if (x->id < smp->nframes) au_out_frame(o, &smp->frames[x->id], collapsed);
            if (!collapsed) au_out_puts(o, "\n");
            break;
        case AU_ENTRY_TASK:
            if (x->task < smp->ntasks) put_task_entry(o, smp, &smp->tasks[x->task], collapsed, first_task);
            first_task = 0;
            break;
        case AU_ENTRY_CYCLE:
            au_out_puts(o, collapsed ? ";[cycle -> " : "    [cycle: the chain returns to ");
            if (x->task < smp->ntasks) au_out_task_name(o, &smp->tasks[x->task], collapsed);
            au_out_puts(o, collapsed ? "]" : "]\n");
            break;
        default:
            au_out_puts(o, collapsed ? ";[truncated]" : "    [truncated]\n");
            break;
        }
    }
    if (collapsed) au_out_puts(o, " 1\n");
}

int au_render(au_sampler *s, const au_sample *smp, uint32_t format,
              int (*write)(void *ud, const void *buf, size_t len), void *ud) {
    if (!s || !smp || !write) return AU_ERR_ARG;
    if (format == AU_FORMAT_TREE) return au_render_tree(s, smp, write, ud);
    if (format == AU_FORMAT_JSON) return au_render_json(s, smp, write, ud);
    if (format > AU_FORMAT_COLLAPSED) return AU_ERR_ARG;
    int collapsed = format == AU_FORMAT_COLLAPSED;
    au_out o;
    au_out_init(&o, write, ud);
    if (!collapsed) {
        char v[32];
        au_version_str(smp->py_version_hex, (int)smp->version_exact, v, sizeof v);
        au_out_putf(&o, "Process %llu: CPython ", (unsigned long long)(smp->pid > 0 ? smp->pid : 0));
        au_out_puts(&o, v);
        au_out_puts(&o, "\n");
    }
    au_entry_buf eb;
    au_entry_buf_init(&eb, s);
    int rc = AU_OK;
    for (uint32_t t = 0; t < smp->nthreads && rc == AU_OK; t++) {
        const au_sample_thread *th = &smp->threads[t];
        if (th->nstacks == 0) { /* a thread without frames */
            au_out_puts(&o, collapsed ? "thread " : "\nThread ");
            au_out_thread_id(&o, th, collapsed);
            au_out_puts(&o, collapsed ? " 1\n" : " (most recent call last):\n");
        }
        for (uint32_t k = th->first_stack; k < th->first_stack + th->nstacks && rc == AU_OK; k++) {
            uint32_t n;
            rc = au_entry_buf_fill(&eb, s, k, &n);
            if (rc == AU_OK) render_stack(&o, smp, k, eb.e, n, collapsed);
        }
    }
    if (rc == AU_OK && !collapsed && smp->nthreads == 0) au_out_puts(&o, "\n(no Python threads)\n");
    au_entry_buf_free(&eb);
    au_out_flush(&o);
    return rc ? rc : o.rc;
}
