/*
 * The link resolver: one thread sample in, task-aware stacks out.
 *
 * docs/RESOLVER.md is the specification; this file implements it in
 * O(tasks + links + thread frames + output) per call, with every walk
 * bounded and every buffer owned by the context, so that a warm context
 * never touches the heap.  fuzz/ref_resolver.c implements the same page
 * naively and the fuzzer compares the two.
 *
 * Tasks are referred to by their index in the caller's array throughout;
 * ids are only looked up once, through an open-addressing hash table.
 */
#include <string.h>

#include "asyncunwind.h"
#include "internal.h"

#define NONE UINT32_MAX

/* Per-task state bits. */
enum {
    ST_PRESENT = 1u << 0,  /* non-zero, unique id */
    ST_WAITING = 1u << 1,  /* awaits a task, or is the parent of a strong link */
    ST_HAS_CHILD = 1u << 2,/* someone's parent under rule 1 */
    ST_COVERED = 1u << 3,  /* appears in the chain of some stack-bearing task */
    ST_BEARS = 1u << 4,    /* gets a stack of its own */
};

/* id -> task index.  Slots whose key is 0 are empty (0 is never a valid
 * id).  DUP marks an id seen more than once. */
#define DUP (UINT32_MAX - 1)

typedef struct idmap {
    uint64_t *keys;
    uint32_t *vals;
    uint32_t kcap, vcap; /* allocated slots */
    uint32_t mask;       /* slots in use this call, minus one */
} idmap;

struct au_resolver {
    au_allocator alloc;
    au_resolver_limits lim;
    au_resolver_stats stats;

    /* Per-task arrays, indexed like the caller's tasks. */
    uint32_t *parent;  /* rule-1 parent, or NONE */
    uint32_t *strong;  /* best strong-link parent (scratch) */
    uint32_t *stamp;   /* last chain walk that visited the task */
    uint8_t *state;
    uint32_t parent_cap, strong_cap, stamp_cap, state_cap;
    uint32_t walk;     /* current chain-walk stamp */

    /* Stack-bearing tasks, then sorted by id (radix sort ping-pong). */
    uint32_t *bearers, *sorted;
    uint32_t bearers_cap, sorted_cap;

    uint32_t *chain;
    uint32_t chain_cap;

    idmap tasks;   /* task id -> index */
    idmap running; /* outermost frame of a running candidate -> index */

    au_stack *stacks;
    au_entry *entries;
    uint32_t stacks_cap, entries_cap;
};

static int grow(au_resolver *r, void *pptr, uint32_t *cap, size_t need, size_t elem) {
    return au_grow(&r->alloc, &r->stats.allocations, (void **)pptr, cap, need, elem);
}

static void release(au_resolver *r, void *p, uint32_t cap, size_t elem) {
    if (p) r->alloc.realloc(r->alloc.ud, p, (size_t)cap * elem, 0);
}

/* ---- id map ------------------------------------------------------------ */

/* Prepare m for n keys: a power-of-two table at most half full, cleared.
 * Only the slots used this call are cleared, so a small sample after a
 * large one costs no more than a small sample. */
static int map_reset(au_resolver *r, idmap *m, uint32_t n) {
    uint64_t slots = 16;
    while (slots < 2ull * n) slots <<= 1;
    if (slots > UINT32_MAX) return AU_ERR_LIMIT;
    if (grow(r, &m->keys, &m->kcap, (size_t)slots, sizeof *m->keys)) return AU_ERR_NOMEM;
    if (grow(r, &m->vals, &m->vcap, (size_t)slots, sizeof *m->vals)) return AU_ERR_NOMEM;
    m->mask = (uint32_t)(slots - 1);
    memset(m->keys, 0, (size_t)slots * sizeof *m->keys);
    return AU_OK;
}

/* Slot holding key, or the empty slot where it would go.  Terminates
 * because the table is never more than half full. */
static uint32_t map_slot(const idmap *m, uint64_t key) {
    uint32_t i = (uint32_t)au_mix64(key) & m->mask;
    while (m->keys[i] != 0 && m->keys[i] != key) i = (i + 1) & m->mask;
    return i;
}

static uint32_t map_get(const idmap *m, uint64_t key) {
    if (key == 0) return NONE;
    uint32_t i = map_slot(m, key);
    return m->keys[i] == key ? m->vals[i] : NONE;
}

/* ---- rules ------------------------------------------------------------- */

/* Index of the present task with this id, or NONE. */
static uint32_t lookup(const au_resolver *r, uint64_t id) {
    uint32_t v = map_get(&r->tasks, id);
    return v == DUP ? NONE : v;
}

/* The tie-break of rule 1: T's creator first, then the lowest id. */
static int better(const au_task *t, uint32_t cand, uint32_t best, uint64_t creator) {
    if (best == NONE) return 1;
    uint64_t c = t[cand].id, b = t[best].id;
    if (c == creator) return 1;
    if (b == creator) return 0;
    return c < b;
}

/* Index every task by id; tasks with id 0 or a shared id are not present. */
static int index_tasks(au_resolver *r, const au_thread_sample *in) {
    if (map_reset(r, &r->tasks, in->ntasks)) return AU_ERR_NOMEM;
    idmap *m = &r->tasks;
    for (uint32_t i = 0; i < in->ntasks; i++) {
        uint64_t id = in->tasks[i].id;
        r->state[i] = 0;
        r->parent[i] = NONE;
        r->strong[i] = NONE;
        if (id == 0) {
            r->stats.tasks_ignored++;
            continue;
        }
        uint32_t s = map_slot(m, id);
        if (m->keys[s] == 0) {
            m->keys[s] = id;
            m->vals[s] = i;
            r->state[i] = ST_PRESENT;
        } else if (m->vals[s] == DUP) {
            r->stats.tasks_ignored++;
        } else {
            /* Second copy: neither copy wins. */
            r->state[m->vals[s]] = 0;
            m->vals[s] = DUP;
            r->stats.tasks_ignored += 2;
        }
    }
    return AU_OK;
}

/* Resolve a link field of task i to the index of a different present task,
 * counting it as ignored when it names anything else. */
static uint32_t link_target(au_resolver *r, uint32_t i, uint64_t id) {
    if (id == 0) return NONE;
    uint32_t j = lookup(r, id);
    if (j == NONE || j == i) {
        r->stats.links_ignored++;
        return NONE;
    }
    return j;
}

/* Rule 1 for every task, plus the "waiting" bit. */
static void resolve_parents(au_resolver *r, const au_thread_sample *in) {
    const au_task *t = in->tasks;
    uint32_t *awaiter = r->parent; /* level 1 candidates, in place */
    for (uint32_t i = 0; i < in->ntasks; i++) {
        if (!(r->state[i] & ST_PRESENT)) continue;
        uint32_t j = link_target(r, i, t[i].awaits);
        if (j == NONE) continue;
        r->state[i] |= ST_WAITING;
        if (better(t, i, awaiter[j], t[j].creator)) awaiter[j] = i;
    }
    for (uint32_t k = 0; k < in->nlinks; k++) {
        uint32_t c = lookup(r, in->links[k].child);
        uint32_t p = lookup(r, in->links[k].parent);
        if (c == NONE || p == NONE || c == p) {
            r->stats.links_ignored++;
            continue;
        }
        r->state[p] |= ST_WAITING;
        if (better(t, p, r->strong[c], t[c].creator)) r->strong[c] = p;
    }
    for (uint32_t i = 0; i < in->ntasks; i++) {
        if (!(r->state[i] & ST_PRESENT)) continue;
        uint32_t weak = link_target(r, i, t[i].creator);
        if (r->parent[i] == NONE) r->parent[i] = r->strong[i];
        if (r->parent[i] == NONE) r->parent[i] = weak;
        if (r->parent[i] != NONE) r->state[r->parent[i]] |= ST_HAS_CHILD;
    }
}

/* Pick the running task R by frame identity: *running gets its index (NONE
 * when no flagged task is confirmed by the thread stack) and *boundary the
 * index of its outermost coroutine frame in the thread stack. */
static int find_running(au_resolver *r, const au_thread_sample *in, uint32_t *running,
                        uint32_t *boundary) {
    const au_task *t = in->tasks;
    uint32_t flagged = 0;
    *running = NONE;
    for (uint32_t i = 0; i < in->ntasks; i++)
        if ((r->state[i] & ST_PRESENT) && (t[i].flags & AU_TASK_RUNNING)) flagged++;
    if (flagged == 0) return AU_OK;
    if (map_reset(r, &r->running, flagged)) return AU_ERR_NOMEM;
    idmap *m = &r->running;
    for (uint32_t i = 0; i < in->ntasks; i++) {
        if (!(r->state[i] & ST_PRESENT) || !(t[i].flags & AU_TASK_RUNNING)) continue;
        if (t[i].nframes == 0 || t[i].frames[0] == 0) continue;
        uint32_t s = map_slot(m, t[i].frames[0]);
        if (m->keys[s] == 0 || t[i].id < t[m->vals[s]].id) {
            m->keys[s] = t[i].frames[0];
            m->vals[s] = i;
        }
    }
    for (uint32_t f = 0; f < in->nframes; f++) {
        uint32_t i = map_get(m, in->frames[f]);
        if (i != NONE) {
            *running = i;
            *boundary = f;
            break;
        }
    }
    r->stats.running_ignored = flagged - (*running != NONE);
    return AU_OK;
}

/* Mark i and its ancestors covered, stopping at the first covered one. */
static void cover(au_resolver *r, uint32_t i) {
    while (i != NONE && !(r->state[i] & ST_COVERED)) {
        r->state[i] |= ST_COVERED;
        i = r->parent[i];
    }
}

/* Rule 2.  Returns the number of stack-bearing tasks, listed in bearers. */
static uint32_t choose_bearers(au_resolver *r, const au_task *t, uint32_t ntasks,
                               uint32_t running) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < ntasks; i++) {
        uint8_t s = r->state[i];
        if (!(s & ST_PRESENT)) continue;
        if (i == running || !(s & ST_WAITING) || !(s & ST_HAS_CHILD)) {
            r->state[i] |= ST_BEARS;
            r->bearers[n++] = i;
        }
    }
    for (uint32_t k = 0; k < n; k++) cover(r, r->bearers[k]);
    /* What is left uncovered is a set of closed cycles with nothing below
     * them (docs/RESOLVER.md, rule 2).  Each gets its lowest-id member.  The
     * walk is bounded by ntasks and only considers uncovered tasks, so even
     * if that reasoning were wrong nothing would loop or bear two stacks. */
    for (uint32_t i = 0; i < ntasks; i++) {
        if (!(r->state[i] & ST_PRESENT) || (r->state[i] & ST_COVERED)) continue;
        uint32_t rep = i, j = r->parent[i];
        for (uint32_t steps = 0; j != NONE && j != i && steps < ntasks; steps++) {
            if (!(r->state[j] & ST_COVERED) && t[j].id < t[rep].id) rep = j;
            j = r->parent[j];
        }
        r->state[rep] |= ST_BEARS;
        r->bearers[n++] = rep;
        cover(r, rep);
        cover(r, i);
    }
    return n;
}

/* Sort the n bearers by task id: LSD radix sort, one byte per pass, with
 * passes skipped where every id has the same byte (addresses share their
 * high bytes and alignment bits).  Linear, unlike a comparison sort.
 * Returns the array that holds the result. */
static uint32_t *sort_by_id(au_resolver *r, const au_task *t, uint32_t n) {
    uint32_t count[8][256];
    memset(count, 0, sizeof count);
    for (uint32_t k = 0; k < n; k++) {
        uint64_t id = t[r->bearers[k]].id;
        for (int b = 0; b < 8; b++) count[b][(id >> (8 * b)) & 0xff]++;
    }
    uint32_t *src = r->bearers, *dst = r->sorted;
    for (int b = 0; b < 8; b++) {
        uint64_t first = n ? (t[src[0]].id >> (8 * b)) & 0xff : 0;
        if (count[b][first] == n) continue; /* every id has this byte */
        uint32_t pos = 0;
        for (int d = 0; d < 256; d++) {
            uint32_t c = count[b][d];
            count[b][d] = pos;
            pos += c;
        }
        for (uint32_t k = 0; k < n; k++)
            dst[count[b][(t[src[k]].id >> (8 * b)) & 0xff]++] = src[k];
        uint32_t *tmp = src;
        src = dst;
        dst = tmp;
    }
    return src;
}

/* ---- rule 3: building one stack ---------------------------------------- */

typedef struct emitter {
    au_resolver *r;
    const au_thread_sample *in;
    uint32_t running, boundary;
    uint32_t used;     /* entries written so far this call */
    uint32_t cap;      /* entries allowed in the current stack */
    uint32_t start;    /* first entry of the current stack */
    int overflow;      /* the current stack hit cap */
    int err;
} emitter;

static void put(emitter *e, uint32_t kind, uint64_t id, uint32_t task) {
    if (e->used - e->start >= e->cap) {
        e->overflow = 1;
        return;
    }
    au_resolver *r = e->r;
    if (e->used >= r->entries_cap &&
        grow(r, &r->entries, &r->entries_cap, (size_t)e->used + 1, sizeof *r->entries)) {
        e->err = AU_ERR_NOMEM;
        e->overflow = 1;
        return;
    }
    au_entry *x = &r->entries[e->used++];
    x->id = id;
    x->kind = kind;
    x->task = task;
}

static void put_frames(emitter *e, const uint64_t *f, uint32_t from, uint32_t to) {
    for (uint32_t k = from; k < to && !e->overflow; k++) put(e, AU_ENTRY_FRAME, f[k], NONE);
}

/* Walk up from s into r->chain.  Returns the chain length; *flags gets the
 * cycle / depth flags and *closing the task a cycle returns to. */
static uint32_t walk_chain(au_resolver *r, uint32_t s, uint32_t *flags, uint32_t *closing) {
    if (++r->walk == 0) { /* stamps wrapped: start afresh */
        memset(r->stamp, 0, (size_t)r->stamp_cap * sizeof *r->stamp);
        r->walk = 1;
    }
    uint32_t max = r->lim.max_depth, n = 0, cur = s;
    r->chain[n++] = s;
    r->stamp[s] = r->walk;
    for (;;) {
        uint32_t p = r->parent[cur];
        if (p == NONE) break;
        if (r->stamp[p] == r->walk) {
            *flags |= AU_STACK_CYCLE;
            *closing = p;
            break;
        }
        if (n == max) {
            *flags |= AU_STACK_TRUNCATED_DEPTH;
            break;
        }
        r->chain[n++] = p;
        r->stamp[p] = r->walk;
        cur = p;
    }
    return n;
}

static void emit_stack(emitter *e, uint32_t s, au_stack *out) {
    au_resolver *r = e->r;
    const au_thread_sample *in = e->in;
    const au_task *t = in->tasks;
    uint32_t flags = 0, closing = NONE;
    uint32_t n = s == NONE ? 0 : walk_chain(r, s, &flags, &closing);

    e->start = e->used;
    e->overflow = 0;
    put_frames(e, in->frames, 0, e->running != NONE ? e->boundary : in->nframes);
    if (flags & AU_STACK_TRUNCATED_DEPTH) put(e, AU_ENTRY_TRUNCATED, 0, NONE);
    if (flags & AU_STACK_CYCLE) put(e, AU_ENTRY_CYCLE, t[closing].id, closing);
    for (uint32_t k = n; k-- > 0 && !e->overflow;) {
        uint32_t i = r->chain[k];
        put(e, AU_ENTRY_TASK, t[i].id, i);
        if (k == 0 && i == e->running)
            put_frames(e, in->frames, e->boundary, in->nframes);
        else
            put_frames(e, t[i].frames, 0, t[i].nframes);
    }
    if (e->overflow && !e->err) {
        /* Keep the root side: overwrite the last slot with the marker. */
        e->used = e->start + e->cap - 1;
        e->overflow = 0;
        put(e, AU_ENTRY_TRUNCATED, 0, NONE);
        flags |= AU_STACK_TRUNCATED_FRAMES;
    }
    if (s != NONE && s == e->running) flags |= AU_STACK_RUNNING;
    if (flags & AU_STACK_CYCLE) r->stats.cycles++;
    if (flags & (AU_STACK_TRUNCATED_DEPTH | AU_STACK_TRUNCATED_FRAMES)) r->stats.truncated++;

    out->leaf_id = s == NONE ? 0 : t[s].id;
    out->leaf_name = s == NONE ? NULL : t[s].name;
    out->leaf_name_len = s == NONE ? 0 : t[s].name_len;
    out->leaf_task = s;
    out->flags = flags;
    out->nentries = e->used - e->start;
    out->entries = NULL; /* fixed up once the entry buffer stops moving */
}

/* ---- the API ----------------------------------------------------------- */

static uint32_t or_default(uint32_t v, uint32_t d) { return v ? v : d; }

au_resolver *au_resolver_new(const au_allocator *alloc, const au_resolver_limits *limits) {
    au_allocator a = au_alloc_or_libc(alloc);
    au_resolver *r = a.realloc(a.ud, NULL, 0, sizeof *r);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->alloc = a;
    au_resolver_limits l = {0};
    if (limits) l = *limits;
    r->lim.max_tasks = or_default(l.max_tasks, AU_DEFAULT_MAX_TASKS);
    r->lim.max_links = or_default(l.max_links, AU_DEFAULT_MAX_LINKS);
    r->lim.max_depth = or_default(l.max_depth, AU_DEFAULT_MAX_DEPTH);
    r->lim.max_frames = or_default(l.max_frames, AU_DEFAULT_MAX_FRAMES);
    r->lim.max_total_entries = or_default(l.max_total_entries, AU_DEFAULT_MAX_TOTAL_ENTRIES);
    return r;
}

void au_resolver_free(au_resolver *r) {
    if (!r) return;
    release(r, r->parent, r->parent_cap, sizeof *r->parent);
    release(r, r->strong, r->strong_cap, sizeof *r->strong);
    release(r, r->stamp, r->stamp_cap, sizeof *r->stamp);
    release(r, r->state, r->state_cap, sizeof *r->state);
    release(r, r->bearers, r->bearers_cap, sizeof *r->bearers);
    release(r, r->sorted, r->sorted_cap, sizeof *r->sorted);
    release(r, r->chain, r->chain_cap, sizeof *r->chain);
    release(r, r->tasks.keys, r->tasks.kcap, sizeof *r->tasks.keys);
    release(r, r->tasks.vals, r->tasks.vcap, sizeof *r->tasks.vals);
    release(r, r->running.keys, r->running.kcap, sizeof *r->running.keys);
    release(r, r->running.vals, r->running.vcap, sizeof *r->running.vals);
    release(r, r->stacks, r->stacks_cap, sizeof *r->stacks);
    release(r, r->entries, r->entries_cap, sizeof *r->entries);
    au_allocator a = r->alloc;
    a.realloc(a.ud, r, sizeof *r, 0);
}

void au_resolver_get_stats(const au_resolver *r, au_resolver_stats *stats) {
    if (r && stats) *stats = r->stats;
}

static int check_input(const au_resolver *r, const au_thread_sample *in) {
    if ((in->nframes && !in->frames) || (in->ntasks && !in->tasks) ||
        (in->nlinks && !in->links))
        return AU_ERR_ARG;
    if (in->ntasks > r->lim.max_tasks || in->nlinks > r->lim.max_links) return AU_ERR_LIMIT;
    for (uint32_t i = 0; i < in->ntasks; i++) {
        const au_task *t = &in->tasks[i];
        if ((t->nframes && !t->frames) || (t->name_len && !t->name)) return AU_ERR_ARG;
    }
    return AU_OK;
}

/* Size the per-task arrays for n tasks.  The stamp array is zeroed when it
 * grows, since stale garbage could match the current walk's stamp. */
static int reserve(au_resolver *r, uint32_t n) {
    uint32_t old_stamp_cap = r->stamp_cap;
    if (grow(r, &r->parent, &r->parent_cap, n, sizeof *r->parent) ||
        grow(r, &r->strong, &r->strong_cap, n, sizeof *r->strong) ||
        grow(r, &r->stamp, &r->stamp_cap, n, sizeof *r->stamp) ||
        grow(r, &r->state, &r->state_cap, n, sizeof *r->state) ||
        grow(r, &r->bearers, &r->bearers_cap, n, sizeof *r->bearers) ||
        grow(r, &r->sorted, &r->sorted_cap, n, sizeof *r->sorted) ||
        grow(r, &r->chain, &r->chain_cap, r->lim.max_depth, sizeof *r->chain) ||
        grow(r, &r->stacks, &r->stacks_cap, n ? n : 1, sizeof *r->stacks))
        return AU_ERR_NOMEM;
    if (r->stamp_cap != old_stamp_cap) {
        memset(r->stamp, 0, (size_t)r->stamp_cap * sizeof *r->stamp);
        r->walk = 0;
    }
    return AU_OK;
}

static int resolve(au_resolver *r, const au_thread_sample *in, au_stacks *out) {
    int rc = check_input(r, in);
    if (rc) return rc;
    if ((rc = reserve(r, in->ntasks)) || (rc = index_tasks(r, in))) return rc;
    resolve_parents(r, in);
    uint32_t running = NONE, boundary = 0;
    if ((rc = find_running(r, in, &running, &boundary))) return rc;

    uint32_t n = choose_bearers(r, in->tasks, in->ntasks, running);
    uint32_t *order = sort_by_id(r, in->tasks, n);
    uint32_t nstacks = n ? n : (in->nframes ? 1 : 0);
    if (nstacks > r->lim.max_total_entries) return AU_ERR_LIMIT;

    emitter e = {r, in, running, boundary, 0, 0, 0, 0, AU_OK};
    for (uint32_t k = 0; k < nstacks && !e.err; k++) {
        /* Leave at least one entry for every stack still to come. */
        uint32_t budget = r->lim.max_total_entries - e.used - (nstacks - k - 1);
        e.cap = budget < r->lim.max_frames ? budget : r->lim.max_frames;
        if (n) {
            emit_stack(&e, order[k], &r->stacks[k]);
        } else {
            emit_stack(&e, NONE, &r->stacks[k]);
            r->stacks[k].flags |= AU_STACK_THREAD_ONLY;
        }
    }
    if (e.err) return e.err;
    uint32_t offset = 0;
    for (uint32_t k = 0; k < nstacks; k++) {
        r->stacks[k].entries = r->entries + offset;
        offset += r->stacks[k].nentries;
    }
    out->nstacks = nstacks;
    out->stacks = r->stacks;
    return AU_OK;
}

int au_resolve(au_resolver *r, const au_thread_sample *in, au_stacks *out) {
    if (!r || !in || !out) return AU_ERR_ARG;
    out->nstacks = 0;
    out->stacks = NULL;
    memset(&r->stats, 0, sizeof r->stats);
    return resolve(r, in, out);
}
