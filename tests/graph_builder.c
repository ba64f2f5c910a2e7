#include "graph_builder.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void gb_init(gb_graph *g) {
    memset(g, 0, sizeof *g);
    g->sample.tasks = g->tasks;
    g->sample.links = g->links;
}

uint64_t gb_frame(gb_graph *g, const char *name) {
    for (uint32_t k = 0; k < g->nnames; k++)
        if (strcmp(g->names[k], name) == 0) return k + 1;
    assert(g->nnames < GB_MAX_NAMES);
    g->names[g->nnames++] = name;
    return g->nnames;
}

/* Append the frames of "a;b;c" to the pool; returns the first one. */
static const uint64_t *parse_frames(gb_graph *g, const char *spec, uint32_t *n) {
    uint64_t *first = &g->frame_pool[g->npool];
    *n = 0;
    while (*spec) {
        const char *end = strchr(spec, ';');
        size_t len = end ? (size_t)(end - spec) : strlen(spec);
        char tmp[48];
        assert(len < sizeof tmp);
        memcpy(tmp, spec, len);
        tmp[len] = 0;
        uint64_t id = 0;
        for (uint32_t k = 0; k < g->nnames && !id; k++)
            if (strcmp(g->names[k], tmp) == 0) id = k + 1;
        if (!id) {
            assert(g->nnames < GB_MAX_NAMES);
            memcpy(g->store[g->nnames], tmp, len + 1);
            id = gb_frame(g, g->store[g->nnames]);
        }
        assert(g->npool < GB_MAX_FRAMES);
        g->frame_pool[g->npool++] = id;
        (*n)++;
        spec += len;
        if (*spec == ';') spec++;
    }
    return first;
}

void gb_thread(gb_graph *g, const char *frames) {
    g->sample.frames = parse_frames(g, frames, &g->sample.nframes);
}

au_task *gb_task(gb_graph *g, uint64_t id, const char *name, const char *frames) {
    assert(g->sample.ntasks < GB_MAX_TASKS);
    au_task *t = &g->tasks[g->sample.ntasks++];
    memset(t, 0, sizeof *t);
    t->id = id;
    t->name = name;
    t->name_len = (uint32_t)strlen(name);
    t->frames = parse_frames(g, frames, &t->nframes);
    return t;
}

void gb_link(gb_graph *g, uint64_t child, uint64_t parent) {
    assert(g->sample.nlinks < GB_MAX_TASKS * 2);
    au_link *l = &g->links[g->sample.nlinks++];
    l->child = child;
    l->parent = parent;
}

static const char *task_name(const gb_graph *g, uint32_t index) {
    if (index >= g->sample.ntasks) return "?";
    return g->tasks[index].name;
}

const char *gb_render(const gb_graph *g, const au_resolver *r, const au_stacks *st, uint32_t cap,
                      char *buf, size_t size) {
    size_t at = 0;
    buf[0] = 0;
    static au_entry entries[4096]; /* test-only scratch */
    assert(cap <= 4096);
#define OUT(...)                                                              \
    do {                                                                      \
        int w_ = snprintf(buf + at, size - at, __VA_ARGS__);                  \
        assert(w_ >= 0 && (size_t)w_ < size - at);                            \
        at += (size_t)w_;                                                     \
    } while (0)
    for (uint32_t k = 0; k < st->nstacks; k++) {
        const au_stack *s = &st->stacks[k];
        uint64_t total = au_stack_entries(r, s, entries, cap);
        uint32_t n = total < cap ? (uint32_t)total : cap;
        if (k) OUT("\n");
        OUT("%.*s", (int)s->leaf_name_len, s->leaf_name ? s->leaf_name : "");
        if (s->flags & AU_STACK_RUNNING) OUT(" (running)");
        if (s->flags & AU_STACK_CYCLE) OUT(" (cycle)");
        if (s->flags & AU_STACK_TRUNCATED_DEPTH) OUT(" (depth)");
        if (total > cap) OUT(" (frames)");
        if (s->flags & AU_STACK_THREAD_ONLY) OUT("(thread)");
        OUT(":");
        for (uint32_t e = 0; e < n; e++) {
            const au_entry *x = &entries[e];
            OUT(e ? ";" : " ");
            switch (x->kind) {
            case AU_ENTRY_FRAME:
                if (x->id >= 1 && x->id <= g->nnames) OUT("%s", g->names[x->id - 1]);
                else OUT("#%llu", (unsigned long long)x->id);
                break;
            case AU_ENTRY_TASK: OUT("[%s]", task_name(g, x->task)); break;
            case AU_ENTRY_CYCLE: OUT("<cycle:%s>", task_name(g, x->task)); break;
            case AU_ENTRY_TRUNCATED: OUT("..."); break;
            default: OUT("?kind%u", x->kind);
            }
        }
    }
#undef OUT
    return buf;
}
