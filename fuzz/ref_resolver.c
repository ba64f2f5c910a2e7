/*
 * The reference link resolver.  See ref_resolver.h.
 *
 * Every step below is one paragraph of docs/RESOLVER.md, in the order the
 * page gives them.  Tasks are referred to by their index in the input array;
 * NONE means "no task".  Where the page leaves something open, the choice
 * made here is marked "INTERPRETATION".
 */
#include "ref_resolver.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_helpers.h"

#define NONE UINT32_MAX

/* ---- id lookup: (id, index) pairs sorted by id --------------------------- */

typedef struct id_index {
    uint64_t id;
    uint32_t idx;
} id_index;

static int cmp_id_index(const void *a, const void *b) {
    const id_index *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    if (x->idx != y->idx) return x->idx < y->idx ? -1 : 1;
    return 0;
}

/* The index of the present task whose id is `id`, or NONE.  Present: id not
 * 0 and carried by exactly one task. */
static uint32_t find_present(const id_index *sorted, uint32_t n, uint64_t id) {
    if (id == 0) return NONE;
    uint32_t lo = 0, hi = n; /* first position with sorted[pos].id >= id */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sorted[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= n || sorted[lo].id != id) return NONE;
    if (lo + 1 < n && sorted[lo + 1].id == id) return NONE; /* duplicated */
    return sorted[lo].idx;
}

typedef struct state {
    const au_thread_sample *in;
    uint32_t n;           /* in->ntasks */
    id_index *sorted;     /* ids of all tasks, sorted */
    unsigned char *present;
    uint32_t *awaits;     /* valid await target, or NONE */
    uint32_t *creator;    /* valid creator, or NONE */
} state;

/* A link from task `from` to id `to` is valid when both ends are present
 * and different.  Returns the target index or NONE. */
static uint32_t valid_target(const state *s, uint32_t from, uint64_t to) {
    if (from == NONE || !s->present[from]) return NONE;
    uint32_t t = find_present(s->sorted, s->n, to);
    if (t == NONE || t == from) return NONE;
    return t;
}

/* Rule 1 tie-break: among several candidates at one level, the one that is
 * also T's creator wins, else the one with the lowest id.  Called once per
 * candidate; `best` is the winner so far. */
static uint32_t better(const state *s, uint32_t best, uint32_t cand,
                       uint32_t creator_of_t) {
    if (best == NONE) return cand;
    if (best == creator_of_t) return best;
    if (cand == creator_of_t) return cand;
    return s->in->tasks[cand].id < s->in->tasks[best].id ? cand : best;
}

/* qsort has no context argument; keep the task array for the comparator in
 * a variable of this file for the duration of one sort.  (The reference is
 * only called from the single-threaded fuzzer.) */
static const au_task *sort_tasks;
static int cmp_by_task_id(const void *a, const void *b) {
    uint64_t x = sort_tasks[*(const uint32_t *)a].id;
    uint64_t y = sort_tasks[*(const uint32_t *)b].id;
    return x < y ? -1 : x > y ? 1 : 0;
}

static void build_stacks(const state *s, const uint32_t *parent,
                         const unsigned char *bearer, uint32_t nbearers,
                         uint32_t npresent, uint32_t max_depth,
                         ref_result *res);

static uint32_t eff(uint32_t v, uint32_t def) { return v ? v : def; }

int ref_resolve(const au_thread_sample *in, const au_resolver_limits *limits,
                ref_result *res) {
    memset(res, 0, sizeof *res);
    res->in = in;
    res->running = NONE;
    au_resolver_limits lim = {0};
    if (limits) lim = *limits;
    const uint32_t max_tasks = eff(lim.max_tasks, AU_DEFAULT_MAX_TASKS);
    const uint32_t max_links = eff(lim.max_links, AU_DEFAULT_MAX_LINKS);
    const uint32_t max_depth = eff(lim.max_depth, AU_DEFAULT_MAX_DEPTH);

    /* ---- Input: a NULL array with a non-zero count is AU_ERR_ARG.
     * INTERPRETATION: the sample's own arrays are checked first, then the
     * task and link counts (AU_ERR_LIMIT), then each task's coroutine frame
     * array (every task, present or not).  Names are not checked: the
     * resolver only passes them on. */
    if (!in) return res->status = AU_ERR_ARG;
    if ((!in->frames && in->nframes) || (!in->tasks && in->ntasks) ||
        (!in->links && in->nlinks))
        return res->status = AU_ERR_ARG;
    if (in->ntasks > max_tasks || in->nlinks > max_links)
        return res->status = AU_ERR_LIMIT;
    for (uint32_t i = 0; i < in->ntasks; i++)
        if (!in->tasks[i].frames && in->tasks[i].nframes)
            return res->status = AU_ERR_ARG;

    const uint32_t n = in->ntasks;
    const au_task *tasks = in->tasks;
    state s = {0};
    s.in = in;
    s.n = n;

    /* ---- Present tasks. */
    s.sorted = xcalloc(n, sizeof *s.sorted);
    for (uint32_t i = 0; i < n; i++) {
        s.sorted[i].id = tasks[i].id;
        s.sorted[i].idx = i;
    }
    if (n) qsort(s.sorted, n, sizeof *s.sorted, cmp_id_index);
    s.present = xcalloc(n, 1);
    uint32_t npresent = 0;
    for (uint32_t i = 0; i < n; i++) {
        s.present[i] = find_present(s.sorted, n, tasks[i].id) == i;
        if (s.present[i])
            npresent++;
        else
            res->stats.tasks_ignored++;
    }

    /* ---- Valid links.  INTERPRETATION: an ignored task behaves exactly as
     * if absent, so its own awaits/creator fields are not links at all and
     * are not counted; a strong link is always a link, so every invalid
     * strong link is counted, even {0, 0}. */
    s.awaits = xcalloc(n, sizeof *s.awaits);
    s.creator = xcalloc(n, sizeof *s.creator);
    for (uint32_t i = 0; i < n; i++) {
        s.awaits[i] = s.creator[i] = NONE;
        if (!s.present[i]) continue;
        s.awaits[i] = valid_target(&s, i, tasks[i].awaits);
        if (tasks[i].awaits && s.awaits[i] == NONE) res->stats.links_ignored++;
        s.creator[i] = valid_target(&s, i, tasks[i].creator);
        if (tasks[i].creator && s.creator[i] == NONE)
            res->stats.links_ignored++;
    }
    uint32_t *lchild = xcalloc(in->nlinks, sizeof *lchild);
    uint32_t *lparent = xcalloc(in->nlinks, sizeof *lparent);
    for (uint32_t k = 0; k < in->nlinks; k++) {
        uint32_t c = find_present(s.sorted, n, in->links[k].child);
        uint32_t p = find_present(s.sorted, n, in->links[k].parent);
        if (c == NONE || p == NONE || c == p) {
            lchild[k] = lparent[k] = NONE;
            res->stats.links_ignored++;
        } else {
            lchild[k] = c;
            lparent[k] = p;
        }
    }

    /* ---- Waiting. */
    unsigned char *waiting = xcalloc(n, 1);
    for (uint32_t i = 0; i < n; i++)
        if (s.present[i] && s.awaits[i] != NONE) waiting[i] = 1;
    for (uint32_t k = 0; k < in->nlinks; k++)
        if (lparent[k] != NONE) waiting[lparent[k]] = 1;

    /* ---- The running task R and its boundary b: candidates are flagged
     * present tasks whose outermost coroutine frame id is not 0 and occurs
     * in the thread stack; b is the first index at which it occurs.
     * INTERPRETATION: only present tasks count towards running_ignored (an
     * ignored task behaves as if absent). */
    uint32_t R = NONE, b = in->nframes, nflagged = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!s.present[i] || !(tasks[i].flags & AU_TASK_RUNNING)) continue;
        nflagged++;
        if (tasks[i].nframes == 0 || tasks[i].frames[0] == 0) continue;
        uint32_t at = NONE;
        for (uint32_t j = 0; j < in->nframes; j++)
            if (in->frames[j] == tasks[i].frames[0]) {
                at = j;
                break;
            }
        if (at == NONE) continue;
        if (R == NONE || at < b || (at == b && tasks[i].id < tasks[R].id)) {
            R = i;
            b = at;
        }
    }
    res->stats.running_ignored = nflagged - (R != NONE ? 1 : 0);
    res->running = R;
    res->boundary = R != NONE ? b : in->nframes;

    /* ---- Rule 1: the parent of every present task. */
    uint32_t *by_await = xcalloc(n, sizeof *by_await);
    uint32_t *by_strong = xcalloc(n, sizeof *by_strong);
    for (uint32_t i = 0; i < n; i++) by_await[i] = by_strong[i] = NONE;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t t = s.awaits[j]; /* j awaits t: j is a level-1 candidate */
        if (t != NONE) by_await[t] = better(&s, by_await[t], j, s.creator[t]);
    }
    for (uint32_t k = 0; k < in->nlinks; k++) {
        uint32_t t = lchild[k];
        if (t != NONE)
            by_strong[t] = better(&s, by_strong[t], lparent[k], s.creator[t]);
    }
    uint32_t *parent = res->parent = xcalloc(n, sizeof *parent);
    uint32_t *link = res->link = xcalloc(n, sizeof *link);
    res->ntasks = n;
    for (uint32_t i = 0; i < n; i++) {
        parent[i] = NONE;
        link[i] = AU_LINK_NONE;
        if (!s.present[i]) continue;
        if (by_await[i] != NONE) {
            parent[i] = by_await[i];
            link[i] = AU_LINK_AWAIT;
        } else if (by_strong[i] != NONE) {
            parent[i] = by_strong[i];
            link[i] = AU_LINK_STRONG;
        } else {
            parent[i] = s.creator[i]; /* NONE when invalid: a root */
            if (parent[i] != NONE) link[i] = AU_LINK_WEAK;
        }
    }
    uint32_t *nchildren = xcalloc(n, sizeof *nchildren);
    for (uint32_t i = 0; i < n; i++)
        if (parent[i] != NONE) nchildren[parent[i]]++;

    /* ---- Rule 2: who gets a stack. */
    unsigned char *bearer = xcalloc(n, 1);
    for (uint32_t i = 0; i < n; i++) {
        if (!s.present[i]) continue;
        if (i == R) bearer[i] = 1;               /* the running task */
        if (!waiting[i]) bearer[i] = 1;          /* leaves */
        if (waiting[i] && nchildren[i] == 0) bearer[i] = 1; /* stranded */
    }
    /* Cycle representatives.  Find every cycle of the parent graph (each task
     * has at most one parent) by walking up from each task; colour 1 = on
     * the current walk, 2 = finished.  A cycle has nothing hanging below it
     * when each member's only child is its successor in the cycle.
     * INTERPRETATION: the rule is for a cycle that "would have no stack at
     * all": when a member already has one (R, or a member that is not
     * waiting, e.g. on a cycle closed by a weak link), that stack shows the
     * whole cycle and no representative is added. */
    unsigned char *colour = xcalloc(n, 1);
    for (uint32_t i = 0; i < n; i++) {
        if (!s.present[i] || colour[i]) continue;
        uint32_t t = i;
        while (t != NONE && colour[t] == 0) {
            colour[t] = 1;
            t = parent[t];
        }
        if (t != NONE && colour[t] == 1) {
            /* t is on a new cycle: t -> parent[t] -> ... -> t */
            int has_stack = 0; /* something below, or a member with a stack */
            uint32_t lowest = t, m = t;
            do {
                if (nchildren[m] != 1) has_stack = 1; /* a task hangs below */
                if (bearer[m]) has_stack = 1;
                if (tasks[m].id < tasks[lowest].id) lowest = m;
                m = parent[m];
            } while (m != t);
            if (!has_stack) bearer[lowest] = 1;
        }
        for (t = i; t != NONE && colour[t] == 1; t = parent[t]) colour[t] = 2;
    }

    uint32_t nbearers = 0;
    for (uint32_t i = 0; i < n; i++) nbearers += bearer[i];
    build_stacks(&s, parent, bearer, nbearers, npresent, max_depth, res);
    res->status = AU_OK;

    free(s.sorted);
    free(s.present);
    free(s.awaits);
    free(s.creator);
    free(lchild);
    free(lparent);
    free(waiting);
    free(by_await);
    free(by_strong);
    free(nchildren);
    free(bearer);
    free(colour);
    return res->status;
}

/* Rules 3 and 4: one stack per bearer, by leaf id; each chain from its leaf
 * upwards, stored root side first. */
static void build_stacks(const state *s, const uint32_t *parent,
                         const unsigned char *bearer, uint32_t nbearers,
                         uint32_t npresent, uint32_t max_depth,
                         ref_result *res) {
    const uint32_t n = s->n;
    const au_task *tasks = s->in->tasks;

    /* No present task: the bare thread stack, or no stack at all when the
     * thread stack is empty too. */
    if (npresent == 0) {
        if (s->in->nframes == 0) return;
        res->nstacks = 1;
        res->stacks = xcalloc(1, sizeof *res->stacks);
        res->stacks[0].leaf_task = NONE;
        res->stacks[0].closing = NONE;
        res->stacks[0].flags = AU_STACK_THREAD_ONLY;
        return;
    }

    /* Rule 4 order: by leaf id (ids of present tasks are unique). */
    uint32_t *order = xcalloc(nbearers, sizeof *order);
    uint32_t no = 0;
    for (uint32_t i = 0; i < n; i++)
        if (bearer[i]) order[no++] = i;
    sort_tasks = tasks;
    qsort(order, no, sizeof *order, cmp_by_task_id);

    res->nstacks = nbearers;
    res->stacks = xcalloc(nbearers, sizeof *res->stacks);
    uint32_t *walk = xcalloc(max_depth < n ? max_depth : n, sizeof *walk);
    unsigned char *in_chain = xcalloc(n, 1);
    for (uint32_t k = 0; k < nbearers; k++) {
        ref_stack *st = &res->stacks[k];
        uint32_t S = order[k];
        st->leaf_id = tasks[S].id;
        st->leaf_name = tasks[S].name;
        st->leaf_name_len = tasks[S].name_len;
        st->leaf_task = S;
        st->flags = S == res->running ? AU_STACK_RUNNING : 0;
        st->closing = NONE;
        /* Rule 3: start with [S]; take the parent of the last task until
         * a root, a task already in the chain, or max_depth tasks. */
        uint32_t len = 0;
        walk[len++] = S;
        in_chain[S] = 1;
        for (;;) {
            uint32_t P = parent[walk[len - 1]];
            if (P == NONE) break;
            if (in_chain[P]) { /* the cycle test comes first */
                st->flags |= AU_STACK_CYCLE;
                st->closing = P;
                break;
            }
            if (len == max_depth) {
                st->flags |= AU_STACK_TRUNCATED_DEPTH;
                break;
            }
            walk[len++] = P;
            in_chain[P] = 1;
        }
        st->ntasks = len;
        st->chain = xcalloc(len, sizeof *st->chain);
        for (uint32_t j = 0; j < len; j++) {
            st->chain[j] = walk[len - 1 - j]; /* root side first */
            in_chain[walk[j]] = 0;
        }
        if (st->flags & AU_STACK_CYCLE) res->stats.cycles++;
        if (st->flags & AU_STACK_TRUNCATED_DEPTH) res->stats.truncated++;
    }
    free(order);
    free(walk);
    free(in_chain);
}

/* ---- Entries ------------------------------------------------------------- */

/* Writes entries into buf[0..cap) and counts them all. */
typedef struct writer {
    au_entry *buf;
    uint32_t cap;
    uint64_t len;
} writer;

static void put(writer *w, uint64_t id, uint32_t kind, uint32_t task) {
    if (w->len < w->cap) {
        w->buf[w->len].id = id;
        w->buf[w->len].kind = kind;
        w->buf[w->len].task = task;
    }
    w->len++;
}

static void put_frames(writer *w, const uint64_t *ids, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        if (w->len >= w->cap) { /* nothing more is written: just count */
            w->len += n - i;
            return;
        }
        put(w, ids[i], AU_ENTRY_FRAME, NONE);
    }
}

uint64_t ref_stack_entries(const ref_result *res, uint32_t k, au_entry *buf,
                           uint32_t cap) {
    const ref_stack *st = &res->stacks[k];
    const au_thread_sample *in = res->in;
    writer w = {buf, cap, 0};
    if (st->flags & AU_STACK_THREAD_ONLY) {
        put_frames(&w, in->frames, in->nframes);
    } else {
        /* 1. the thread's frames up to the boundary; 2. the cut or cycle
         * marker; 3. each task of the chain, root side first. */
        put_frames(&w, in->frames, res->boundary);
        if (st->flags & AU_STACK_TRUNCATED_DEPTH)
            put(&w, 0, AU_ENTRY_TRUNCATED, NONE);
        if (st->flags & AU_STACK_CYCLE)
            put(&w, in->tasks[st->closing].id, AU_ENTRY_CYCLE, st->closing);
        for (uint32_t j = 0; j < st->ntasks; j++) {
            uint32_t t = st->chain[j];
            put(&w, in->tasks[t].id, AU_ENTRY_TASK, t);
            if (t == res->running && t == st->leaf_task)
                put_frames(&w, in->frames + res->boundary,
                           in->nframes - res->boundary);
            else
                put_frames(&w, in->tasks[t].frames, in->tasks[t].nframes);
        }
    }
    /* A stack longer than cap keeps its root side and ends in a TRUNCATED
     * entry at position cap - 1. */
    if (w.len > cap && cap > 0) {
        buf[cap - 1].id = 0;
        buf[cap - 1].kind = AU_ENTRY_TRUNCATED;
        buf[cap - 1].task = NONE;
    }
    return w.len;
}

void ref_result_free(ref_result *res) {
    if (!res) return;
    for (uint32_t k = 0; k < res->nstacks; k++) free(res->stacks[k].chain);
    free(res->stacks);
    free(res->parent);
    free(res->link);
    res->stacks = NULL;
    res->parent = NULL;
    res->link = NULL;
    res->nstacks = 0;
}
