/*
 * Rendering a sample as one JSON document (AU_FORMAT_JSON).  The schema
 * is docs/schema/sample.schema.json, described in docs/JSON.md; a change
 * here that a reader could notice bumps its "schema" string.
 *
 * Objects refer to each other by index (a stack's entries to frames and
 * tasks, a task to its parent, children and thread) rather than nesting
 * copies: a frame is written once however many stacks share it, and a
 * deadlocked task graph, which has no root, needs no special form.  The
 * tree order of the tree format comes along (threads' "roots", tasks'
 * "children", task_tree.c), so a reader can print the same tree.
 *
 * Addresses are strings ("0x7f..."): 64-bit values do not survive
 * JavaScript's doubles.  Every string from the target goes through
 * au_out_json_string, which turns any bytes into valid JSON.
 */
#include <string.h>

#include "au_render_out.h"
#include "au_sampler.h"
#include "au_task_tree.h"

#define NONE UINT32_MAX

static void put_key(au_out *o, const char *k) {
    au_out_puts(o, "\"");
    au_out_puts(o, k);
    au_out_puts(o, "\":");
}

static void put_bool(au_out *o, const char *k, int v) {
    put_key(o, k);
    au_out_puts(o, v ? "true," : "false,");
}

static void put_index(au_out *o, uint32_t v, uint32_t n) {
    if (v == NONE || v >= n) au_out_puts(o, "null");
    else au_out_u64(o, v);
}

static void put_addr(au_out *o, uint64_t v) {
    au_out_put(o, "\"0x", 3);
    au_out_hex(o, v);
    au_out_put(o, "\"", 1);
}

static void put_text(au_out *o, const char *s, uint32_t n) {
    if (s) au_out_json_string(o, s, n);
    else au_out_puts(o, "null");
}

/* [first, first + n) as a list of indices, clamped to the sample's `max`. */
static void put_range(au_out *o, uint32_t first, uint32_t n, uint32_t max) {
    au_out_puts(o, "[");
    if (first <= max && n <= max - first)
        for (uint32_t i = 0; i < n; i++) {
            if (i) au_out_put(o, ",", 1);
            au_out_u64(o, (unsigned long long)first + i);
        }
    au_out_puts(o, "]");
}

static void put_list(au_out *o, const uint32_t *v, uint32_t n) {
    au_out_puts(o, "[");
    for (uint32_t i = 0; i < n; i++) {
        if (i) au_out_put(o, ",", 1);
        au_out_u64(o, v[i]);
    }
    au_out_puts(o, "]");
}

static void put_sample_frame(au_out *o, const au_sample_frame *f) {
    au_out_puts(o, "{\"qualname\":");
    put_text(o, f->qualname, f->qualname_len);
    au_out_puts(o, ",\"file\":");
    put_text(o, f->qualname ? f->filename : NULL, f->filename_len);
    au_out_puts(o, ",\"line\":");
    if (f->line >= 0) au_out_u64(o, (unsigned long long)f->line);
    else au_out_puts(o, "null");
    au_out_puts(o, ",\"code\":");
    put_addr(o, f->code_addr);
    au_out_puts(o, "}");
}

static void put_thread(au_out *o, const au_sample *smp, uint32_t i, const au_task_tree *t) {
    const au_sample_thread *x = &smp->threads[i];
    au_out_puts(o, "{\"native_id\":");
    if (x->native_id) au_out_u64(o, (unsigned long long)x->native_id);
    else au_out_puts(o, "null");
    au_out_puts(o, ",\"thread_id\":");
    put_addr(o, x->thread_id);
    au_out_puts(o, ",\"name\":");
    put_text(o, x->name, x->name_len);
    au_out_puts(o, ",");
    put_bool(o, "partial", (x->flags & AU_THREAD_PARTIAL) != 0);
    put_bool(o, "truncated", (x->flags & AU_THREAD_TRUNCATED) != 0);
    put_bool(o, "frame_cycle", (x->flags & AU_THREAD_CYCLE) != 0);
    put_bool(o, "loops_not_running", (x->flags & AU_THREAD_NO_LOOP) != 0);
    put_key(o, "frames");
    put_range(o, x->first_frame, x->nframes, smp->nframes);
    au_out_puts(o, ",\"tasks\":");
    put_range(o, x->first_task, x->ntasks, smp->ntasks);
    au_out_puts(o, ",\"roots\":");
    put_list(o, t->roots, t->nroots);
    au_out_puts(o, ",\"stacks\":");
    put_range(o, x->first_stack, x->nstacks, smp->nstacks);
    au_out_puts(o, "}");
}

static void put_task(au_out *o, const au_sample *smp, uint32_t i, const au_task_tree *t) {
    static const char *const link[] = {"null", "\"await\"", "\"strong\"", "\"weak\""};
    const au_sample_task *x = &smp->tasks[i];
    const au_tree_node *nd = &t->node[i - t->first];
    au_out_puts(o, "{\"id\":");
    put_addr(o, x->id);
    au_out_puts(o, ",\"name\":");
    put_text(o, x->name_len ? x->name : NULL, x->name_len);
    au_out_puts(o, ",\"thread\":");
    put_index(o, x->thread, smp->nthreads);
    au_out_puts(o, ",");
    put_bool(o, "running", (x->flags & AU_TASK_RUNNING) != 0);
    put_key(o, "parent");
    put_index(o, x->parent, smp->ntasks);
    au_out_puts(o, ",\"link\":");
    au_out_puts(o, x->parent != NONE && x->link <= AU_LINK_WEAK ? link[x->link] : "null");
    au_out_puts(o, ",");
    put_bool(o, "in_cycle", nd->in_cycle != 0);
    put_key(o, "children");
    put_list(o, t->child + nd->first_child, nd->nchildren);
    au_out_puts(o, ",\"frames\":");
    put_range(o, x->first_frame, x->nframes, smp->nframes);
    au_out_puts(o, "}");
}

static void put_entries(au_out *o, const au_sample *smp, const au_entry *e, uint32_t n) {
    au_out_puts(o, "[");
    for (uint32_t i = 0; i < n; i++) {
        if (i) au_out_puts(o, ",");
        switch (e[i].kind) {
        case AU_ENTRY_FRAME:
            au_out_puts(o, "{\"frame\":");
            put_index(o, e[i].id > NONE ? NONE : (uint32_t)e[i].id, smp->nframes);
            break;
        case AU_ENTRY_TASK:
            au_out_puts(o, "{\"task\":");
            put_index(o, e[i].task, smp->ntasks);
            break;
        case AU_ENTRY_CYCLE:
            au_out_puts(o, "{\"cycle\":");
            put_index(o, e[i].task, smp->ntasks);
            break;
        default:
            au_out_puts(o, "{\"truncated\":true");
            break;
        }
        au_out_puts(o, "}");
    }
    au_out_puts(o, "]");
}

static void put_stack(au_out *o, const au_sample *smp, uint32_t k, const au_entry *e, uint32_t n) {
    const au_sample_stack *st = &smp->stacks[k];
    au_out_puts(o, "{\"thread\":");
    put_index(o, st->thread, smp->nthreads);
    au_out_puts(o, ",\"leaf\":");
    put_index(o, st->leaf, smp->ntasks);
    au_out_puts(o, ",");
    put_bool(o, "running", (st->flags & AU_STACK_RUNNING) != 0);
    put_bool(o, "cycle", (st->flags & AU_STACK_CYCLE) != 0);
    put_bool(o, "truncated", (st->flags & AU_STACK_TRUNCATED_DEPTH) != 0);
    put_key(o, "entries");
    put_entries(o, smp, e, n);
    au_out_puts(o, "}");
}

int au_render_json(au_sampler *s, const au_sample *smp,
                   int (*write)(void *ud, const void *buf, size_t len), void *ud) {
    au_out o;
    au_out_init(&o, write, ud);
    char v[32];
    au_version_str(smp->py_version_hex, (int)smp->version_exact, v, sizeof v);
    au_out_puts(&o, "{\"schema\":\"asyncunwind-sample/1\",\"pid\":");
    au_out_putf(&o, "%llu", (unsigned long long)(smp->pid > 0 ? smp->pid : 0));
    au_out_puts(&o, ",\"python\":\"");
    au_out_puts(&o, v);
    au_out_puts(&o, "\",\"python_version_hex\":");
    au_out_putf(&o, "%llu", smp->py_version_hex);
    au_out_puts(&o, ",\"time_ns\":");
    au_out_putf(&o, "%llu", (unsigned long long)smp->time_ns);
    au_out_puts(&o, ",");
    put_bool(&o, "partial", (smp->flags & AU_SAMPLE_PARTIAL) != 0);
    put_bool(&o, "truncated", (smp->flags & AU_SAMPLE_TRUNCATED) != 0);
    put_bool(&o, "asyncio", (smp->flags & AU_SAMPLE_ASYNCIO) != 0);
    put_bool(&o, "agent", (smp->flags & AU_SAMPLE_AGENT) != 0);

    /* Threads and tasks both want their thread's tree: build it once per
     * thread, and write the thread and its tasks from it. */
    int rc = AU_OK;
    put_key(&o, "threads");
    au_out_puts(&o, "[");
    for (uint32_t th = 0; th < smp->nthreads && rc == AU_OK; th++) {
        au_task_tree t;
        rc = au_task_tree_build(&t, s, smp, th);
        if (rc == AU_OK) {
            if (th) au_out_puts(&o, ",");
            put_thread(&o, smp, th, &t);
        }
        au_task_tree_free(&t);
    }
    au_out_puts(&o, "],\"tasks\":[");
    /* Tasks are grouped by thread (au_sample_thread.first_task). */
    uint32_t written = 0;
    for (uint32_t th = 0; th < smp->nthreads && rc == AU_OK; th++) {
        au_task_tree t;
        rc = au_task_tree_build(&t, s, smp, th);
        for (uint32_t i = t.first; rc == AU_OK && i < t.first + t.n; i++) {
            if (i != written) { /* not a sample of this sampler's: refuse */
                rc = AU_ERR_ARG;
                break;
            }
            if (written++) au_out_puts(&o, ",");
            put_task(&o, smp, i, &t);
        }
        au_task_tree_free(&t);
    }
    if (rc == AU_OK && written != smp->ntasks) rc = AU_ERR_ARG;
    au_out_puts(&o, "],\"frames\":[");
    for (uint32_t f = 0; f < smp->nframes; f++) {
        if (f) au_out_puts(&o, ",");
        put_sample_frame(&o, &smp->frames[f]);
    }
    au_out_puts(&o, "],\"stacks\":[");
    au_entry_buf eb;
    au_entry_buf_init(&eb, s);
    for (uint32_t k = 0; k < smp->nstacks && rc == AU_OK; k++) {
        uint32_t n;
        rc = au_entry_buf_fill(&eb, s, k, &n);
        if (rc) break;
        if (k) au_out_puts(&o, ",");
        put_stack(&o, smp, k, eb.e, n);
    }
    au_entry_buf_free(&eb);
    au_out_puts(&o, "]}\n");
    au_out_flush(&o);
    return rc ? rc : o.rc;
}
