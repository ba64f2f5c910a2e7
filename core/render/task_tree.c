/*
 * One thread's tasks as a tree, for the tree and JSON formats.
 *
 * The sampler gives each task at most one parent (docs/RESOLVER.md, rule
 * 1), so parents form a forest, except where they close on themselves: a
 * deadlock, tasks awaiting each other, leaves a cycle that no root
 * reaches, with perhaps more tasks hanging below it.  Such a cycle is
 * entered at one of its members, chosen by the same order as everything
 * else, and shown from there; the edge that closes it is the one child
 * already seen.
 *
 * Children are listed in order of name, then id: addresses change from one
 * run of a program to the next, names usually do not, so the same program
 * state prints the same tree.  The sampler's parents are trusted only to
 * be indices: anything out of the thread's range counts as no parent.
 */
#include <string.h>

#include "au_sampler.h"
#include "au_task_tree.h"
#include "au_internal.h"

#define NONE UINT32_MAX

typedef struct key {
    const char *name;
    uint64_t id;
    uint32_t len;
    uint32_t index; /* into the thread's tasks */
} key;

static int key_cmp(const void *pa, const void *pb) {
    const key *a = pa, *b = pb;
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->name, b->name, n) : 0;
    if (c) return c;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

static int u32_cmp(const void *pa, const void *pb) {
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return a < b ? -1 : a > b;
}

/* The parent of the thread's task i as a thread index, or NONE. */
static uint32_t parent_of(const au_task_tree *t, const au_sample *smp, uint32_t i) {
    uint32_t p = smp->tasks[t->first + i].parent;
    if (p == NONE || p < t->first || p - t->first >= t->n) return NONE;
    return p - t->first;
}

int au_task_tree_build(au_task_tree *t, const au_sampler *s, const au_sample *smp,
                       uint32_t thread) {
    memset(t, 0, sizeof *t);
    t->a = au_sampler_alloc(s);
    if (thread >= smp->nthreads) return AU_ERR_ARG;
    const au_sample_thread *th = &smp->threads[thread];
    if (th->first_task > smp->ntasks || th->ntasks > smp->ntasks - th->first_task)
        return AU_ERR_ARG;
    uint32_t n = th->ntasks;
    t->first = th->first_task;
    t->n = n;
    if (n == 0) return AU_OK;
    /* One block: nodes, children, roots, keys, ranks and walk stamps. */
    size_t sz = (size_t)n * (sizeof(au_tree_node) + 4 * sizeof(uint32_t) + sizeof(key));
    t->block = t->a.realloc(t->a.ud, NULL, 0, sz);
    if (!t->block) return AU_ERR_NOMEM;
    t->bytes = sz;
    key *keys = t->block;
    t->node = (au_tree_node *)(keys + n);
    t->child = (uint32_t *)(t->node + n);
    t->roots = t->child + n;
    uint32_t *rank = t->roots + n;
    uint32_t *stamp = rank + n;

    for (uint32_t i = 0; i < n; i++) {
        const au_sample_task *x = &smp->tasks[t->first + i];
        keys[i].name = x->name_len ? x->name : "";
        keys[i].len = x->name ? x->name_len : 0;
        keys[i].id = x->id;
        keys[i].index = i;
        t->node[i].nchildren = 0;
        t->node[i].in_cycle = 0;
        stamp[i] = NONE;
    }
    au_sort(keys, n, sizeof *keys, key_cmp);
    for (uint32_t r = 0; r < n; r++) rank[keys[r].index] = r;

    /* Children lists, filled in order, so each list comes out sorted. */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = parent_of(t, smp, i);
        if (p != NONE) t->node[p].nchildren++;
    }
    uint32_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        t->node[i].first_child = at;
        at += t->node[i].nchildren;
        t->node[i].nchildren = 0;
    }
    for (uint32_t r = 0; r < n; r++) {
        uint32_t i = keys[r].index, p = parent_of(t, smp, i);
        if (p == NONE) {
            t->roots[t->nroots++] = t->first + i;
            stamp[i] = 0; /* reached from a root (below) */
        } else {
            t->child[t->node[p].first_child + t->node[p].nchildren++] = t->first + i;
        }
    }

    /* A task reaches a root when some ancestor is a root.  Walks go up, and
     * each stamps what it passes with its start: meeting its own stamp is a
     * cycle, meeting another's (or a root's) means the rest is known.  So
     * every task is passed once or twice in all: O(n). */
    uint32_t nroots = t->nroots;
    for (uint32_t r = 0; r < n; r++) {
        uint32_t u = keys[r].index, v = u;
        while (stamp[v] == NONE) {
            stamp[v] = u + 1;
            uint32_t p = parent_of(t, smp, v);
            if (p == NONE) break; /* not reached: roots are stamped */
            v = p;
        }
        if (stamp[v] != u + 1 || t->node[v].in_cycle) continue;
        /* v is on a new cycle: mark it, and enter it at its lowest. */
        uint32_t best = v, w = v;
        for (uint32_t k = 0; k < n; k++) {
            t->node[w].in_cycle = 1;
            if (rank[w] < rank[best]) best = w;
            w = parent_of(t, smp, w);
            if (w == v || w == NONE) break;
        }
        t->roots[t->nroots++] = rank[best]; /* a rank until sorted below */
    }
    /* Cycle roots go after the true roots, in order among themselves. */
    au_sort(t->roots + nroots, t->nroots - nroots, sizeof *t->roots, u32_cmp);
    for (uint32_t i = nroots; i < t->nroots; i++) t->roots[i] = t->first + keys[t->roots[i]].index;
    return AU_OK;
}

void au_task_tree_free(au_task_tree *t) {
    if (t->block) t->a.realloc(t->a.ud, t->block, t->bytes, 0);
    t->block = NULL;
}
