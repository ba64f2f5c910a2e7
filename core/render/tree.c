/*
 * Rendering a sample as task trees (AU_FORMAT_TREE, docs/CLI.md): per
 * thread, each task under its parent, in the spirit of 3.14's
 * `python -m asyncio pstree`:
 *
 *   Thread 4242 "MainThread"
 *   └── Task-1
 *       │ parent (/srv/seed.py:35)
 *       ├── [await] Task-awaited
 *       │     func_awaited (/srv/seed.py:29)
 *       └── [weak] Task-not_awaited
 *             func_not_awaited (/srv/seed.py:24)
 *
 * The edge says how a task hangs under its parent: await (the parent
 * awaits it), strong (the parent holds it: gather, TaskGroup, wait, ...)
 * or weak (the parent created it).  A cycle of tasks (a deadlock) is
 * entered at one member, marked "(in a cycle)", and the edge that closes
 * it is printed as "(cycle: back to the task above)" instead of followed.
 *
 * The walk is iterative (a chain of 10,000 tasks must not exhaust the C
 * stack), every task is printed at most once, and lines deeper than
 * AU_TREE_MAX_DEPTH are counted instead of printed, so the output is
 * bounded by tasks x (depth bound + frames).
 */
#include <string.h>

#include "au_render_out.h"
#include "au_sampler.h"
#include "au_task_tree.h"

#define NONE UINT32_MAX

typedef struct level {
    uint32_t task;   /* index into au_sample.tasks */
    uint32_t cursor; /* its next child to visit */
    uint32_t last;   /* the last of its siblings */
} level;

static const char *const edge_name[] = {"", "[await] ", "[strong] ", "[weak] "};

/* The bars of levels [0, depth) of the walk, then a connector. */
static void put_prefix(au_out *o, const level *lv, uint32_t depth) {
    for (uint32_t i = 0; i < depth; i++) au_out_puts(o, lv[i].last ? "    " : "\xe2\x94\x82   ");
}

static void put_node(au_out *o, const au_sample *smp, const au_task_tree *t, const level *lv,
                     uint32_t depth, int is_root) {
    const au_sample_task *x = &smp->tasks[lv[depth].task];
    const au_tree_node *nd = &t->node[lv[depth].task - t->first];
    put_prefix(o, lv, depth);
    au_out_puts(o, lv[depth].last ? "\xe2\x94\x94\xe2\x94\x80\xe2\x94\x80 "
                                  : "\xe2\x94\x9c\xe2\x94\x80\xe2\x94\x80 ");
    if (!is_root) au_out_puts(o, edge_name[x->link <= AU_LINK_WEAK ? x->link : 0]);
    au_out_task_name(o, x, 0);
    if (x->flags & AU_TASK_RUNNING) au_out_puts(o, " (running)");
    if (is_root && nd->in_cycle) au_out_puts(o, " (in a cycle)");
    au_out_puts(o, "\n");
    /* Its frames, with a bar down to its children when it has some. */
    if (x->first_frame > smp->nframes || x->nframes > smp->nframes - x->first_frame) return;
    for (uint32_t f = 0; f < x->nframes; f++) {
        put_prefix(o, lv, depth + 1);
        au_out_puts(o, nd->nchildren ? "\xe2\x94\x82 " : "  ");
        au_out_frame(o, &smp->frames[x->first_frame + f], 0);
        au_out_puts(o, "\n");
    }
}

/* The subtree of root r (an index into au_sample.tasks).  lv has room for
 * every task of the thread plus one. */
static void walk_tree(au_out *o, const au_sample *smp, const au_task_tree *t, level *lv, uint32_t r,
                 int last_root, uint8_t *seen) {
    uint32_t depth = 0;
    uint64_t hidden = 0;
    lv[0].task = r;
    lv[0].cursor = 0;
    lv[0].last = (uint32_t)last_root;
    seen[r - t->first] = 1;
    put_node(o, smp, t, lv, 0, 1);
    for (;;) {
        level *cur = &lv[depth];
        const au_tree_node *nd = &t->node[cur->task - t->first];
        if (cur->cursor == nd->nchildren) {
            if (depth == AU_TREE_MAX_DEPTH - 1 && hidden) {
                put_prefix(o, lv, depth + 1);
                au_out_putf(o, "... %llu tasks deeper, not shown\n", hidden);
                hidden = 0;
            }
            if (depth == 0) return;
            depth--;
            continue;
        }
        uint32_t c = t->child[nd->first_child + cur->cursor++];
        int last = cur->cursor == nd->nchildren;
        if (seen[c - t->first]) {
            /* Only the entry of a cycle is reached twice: the closing edge. */
            if (depth + 1 < AU_TREE_MAX_DEPTH) {
                const au_sample_task *x = &smp->tasks[c];
                put_prefix(o, lv, depth + 1);
                au_out_puts(o, last ? "\xe2\x94\x94\xe2\x94\x80\xe2\x94\x80 "
                                    : "\xe2\x94\x9c\xe2\x94\x80\xe2\x94\x80 ");
                au_out_puts(o, edge_name[x->link <= AU_LINK_WEAK ? x->link : 0]);
                au_out_task_name(o, x, 0);
                au_out_puts(o, " (cycle: back to the task above)\n");
            }
            continue;
        }
        seen[c - t->first] = 1;
        depth++;
        lv[depth].task = c;
        lv[depth].cursor = 0;
        lv[depth].last = (uint32_t)last;
        if (depth < AU_TREE_MAX_DEPTH) put_node(o, smp, t, lv, depth, 0);
        else hidden++;
    }
}

int au_render_tree(au_sampler *s, const au_sample *smp,
                   int (*write)(void *ud, const void *buf, size_t len), void *ud) {
    au_out o;
    au_out_init(&o, write, ud);
    char v[32];
    au_version_str(smp->py_version_hex, (int)smp->version_exact, v, sizeof v);
    au_out_putf(&o, "Process %llu: CPython ", (unsigned long long)(smp->pid > 0 ? smp->pid : 0));
    au_out_puts(&o, v);
    au_out_puts(&o, "\n");
    if (smp->flags & AU_SAMPLE_PARTIAL)
        au_out_puts(&o, "(the tasks could not all be read: some may be missing)\n");
    au_allocator a = au_sampler_alloc(s);
    int rc = AU_OK;
    for (uint32_t th = 0; th < smp->nthreads && rc == AU_OK; th++) {
        const au_sample_thread *x = &smp->threads[th];
        au_out_puts(&o, "\nThread ");
        au_out_thread_id(&o, x, 0);
        if (x->ntasks == 0) {
            au_out_puts(&o, " (no tasks)\n");
            continue;
        }
        au_out_puts(&o, "\n");
        au_task_tree t;
        rc = au_task_tree_build(&t, s, smp, th);
        size_t sz = ((size_t)t.n + 1) * sizeof(level) + t.n;
        level *lv = rc ? NULL : a.realloc(a.ud, NULL, 0, sz);
        if (!rc && !lv) rc = AU_ERR_NOMEM;
        if (rc == AU_OK) {
            uint8_t *seen = (uint8_t *)(lv + t.n + 1);
            memset(seen, 0, t.n);
            for (uint32_t k = 0; k < t.nroots; k++)
                walk_tree(&o, smp, &t, lv, t.roots[k], k + 1 == t.nroots, seen);
        }
        if (lv) a.realloc(a.ud, lv, sz, 0);
        au_task_tree_free(&t);
    }
    if (rc == AU_OK && smp->nthreads == 0) au_out_puts(&o, "\n(no Python threads)\n");
    au_out_flush(&o);
    return rc ? rc : o.rc;
}
