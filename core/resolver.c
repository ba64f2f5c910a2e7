/*
 * The link resolver: one thread sample in, task-aware stacks out.
 *
 * docs/RESOLVER.md is the specification; this file implements it in
 * O(tasks + links + thread frames) per call, with every walk bounded and
 * every buffer owned by the context, so that a warm context never touches
 * the heap.  fuzz/ref_resolver.c implements the same page
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
    ST_VISITING = 1u << 4, /* on the path measure_chains is walking */
    ST_DONE = 1u << 5,     /* its chain is measured */
};

/* id -> task index.  Slots whose key is 0 are empty (0 is never a valid
 * id).  DUP marks an id seen more than once. */
#define DUP (UINT32_MAX - 1)

/* A stack-bearing task while it is sorted by id, carrying what its
 * au_stack needs from the caller's record, so that the caller's array is
 * read once, in its own order, rather than in id order (a cache miss per
 * stack at 65,536 tasks). */
typedef struct keyed {
    uint64_t id;
    const char *name;
    uint32_t idx, name_len;
} keyed;

/* Key and value side by side: one cache miss per probe, not two. */
typedef struct slot {
    uint64_t key;
    uint32_t val;
} slot;

typedef struct idmap {
    slot *slots;
    uint32_t cap;  /* allocated slots */
    uint32_t mask; /* slots in use this call, minus one */
} idmap;

struct au_resolver {
    au_allocator alloc;
    au_resolver_limits lim;
    au_resolver_stats stats;

    /* Per-task arrays, indexed like the caller's tasks. */
    uint32_t *parent;  /* rule-1 parent, or NONE */
    uint32_t *strong;  /* best strong-link parent (scratch) */
    uint32_t *clen;    /* chain length (measure_chains) */
    uint32_t *cclose;  /* task the chain closes on, or NONE */
    uint32_t *path;    /* measure_chains' walk */
    uint8_t *state;
    uint32_t parent_cap, strong_cap, clen_cap, cclose_cap, path_cap, state_cap;

    /* Stack-bearing tasks in the caller's order; radix sort buffers. */
    uint32_t *bearers;
    keyed *keys, *keys2;
    uint32_t bearers_cap, keys_cap, keys2_cap;

    idmap tasks;   /* task id -> index */
    idmap running; /* outermost frame of a running candidate -> index */

    au_stack *stacks;
    uint32_t stacks_cap;

    /* The last sample, for au_stack_entries(). */
    const au_thread_sample *in;
    uint32_t running_task, boundary;
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
    if (grow(r, &m->slots, &m->cap, (size_t)slots, sizeof *m->slots)) return AU_ERR_NOMEM;
    m->mask = (uint32_t)(slots - 1);
    memset(m->slots, 0, (size_t)slots * sizeof *m->slots);
    return AU_OK;
}

/* At 65,536 tasks the table no longer fits in cache and every probe is a
 * miss; loops over tasks announce the probes a few iterations ahead. */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif
#define AHEAD 16

static void map_prefetch(const idmap *m, uint64_t key) {
    PREFETCH(&m->slots[(uint32_t)au_mix64(key) & m->mask]);
}

/* Slot holding key, or the empty slot where it would go.  Terminates
 * because the table is never more than half full. */
static uint32_t map_slot(const idmap *m, uint64_t key) {
    uint32_t i = (uint32_t)au_mix64(key) & m->mask;
    while (m->slots[i].key != 0 && m->slots[i].key != key) i = (i + 1) & m->mask;
    return i;
}

static uint32_t map_get(const idmap *m, uint64_t key) {
    if (key == 0) return NONE;
    uint32_t i = map_slot(m, key);
    return m->slots[i].key == key ? m->slots[i].val : NONE;
}

/* ---- rules ------------------------------------------------------------- */

/* Index of the present task with this id, or NONE. */
static uint32_t lookup(const au_resolver *r, uint64_t id) {
    uint32_t v = map_get(&r->tasks, id);
    return v == DUP ? NONE : v;
}

/* The tie-break of rule 1 for task `child`: its creator first, then the
 * lowest id.  The child's record is only read when there is a tie to break
 * (with a single candidate, the common case, it would be a cache miss for
 * nothing at 65,536 tasks). */
static int better(const au_task *t, uint32_t cand, uint32_t best, uint32_t child) {
    if (best == NONE) return 1;
    uint64_t c = t[cand].id, b = t[best].id, creator = t[child].creator;
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
        if (i + AHEAD < in->ntasks) map_prefetch(m, in->tasks[i + AHEAD].id);
        r->state[i] = 0;
        r->parent[i] = NONE;
        r->strong[i] = NONE;
        if (id == 0) {
            r->stats.tasks_ignored++;
            continue;
        }
        uint32_t s = map_slot(m, id);
        if (m->slots[s].key == 0) {
            m->slots[s].key = id;
            m->slots[s].val = i;
            r->state[i] = ST_PRESENT;
        } else if (m->slots[s].val == DUP) {
            r->stats.tasks_ignored++;
        } else {
            /* Second copy: neither copy wins. */
            r->state[m->slots[s].val] = 0;
            m->slots[s].val = DUP;
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
        if (i + AHEAD < in->ntasks) map_prefetch(&r->tasks, t[i + AHEAD].awaits);
        if (!(r->state[i] & ST_PRESENT)) continue;
        uint32_t j = link_target(r, i, t[i].awaits);
        if (j == NONE) continue;
        r->state[i] |= ST_WAITING;
        if (better(t, i, awaiter[j], j)) awaiter[j] = i;
    }
    for (uint32_t k = 0; k < in->nlinks; k++) {
        if (k + AHEAD < in->nlinks) {
            map_prefetch(&r->tasks, in->links[k + AHEAD].child);
            map_prefetch(&r->tasks, in->links[k + AHEAD].parent);
        }
        uint32_t c = lookup(r, in->links[k].child);
        uint32_t p = lookup(r, in->links[k].parent);
        if (c == NONE || p == NONE || c == p) {
            r->stats.links_ignored++;
            continue;
        }
        r->state[p] |= ST_WAITING;
        if (better(t, p, r->strong[c], c)) r->strong[c] = p;
    }
    for (uint32_t i = 0; i < in->ntasks; i++) {
        if (i + AHEAD < in->ntasks) map_prefetch(&r->tasks, t[i + AHEAD].creator);
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
        if (m->slots[s].key == 0 || t[i].id < t[m->slots[s].val].id) {
            m->slots[s].key = t[i].frames[0];
            m->slots[s].val = i;
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
        r->bearers[n++] = rep;
        cover(r, rep);
        cover(r, i);
    }
    return n;
}

/* Sort the n bearers by task id; returns them sorted.  LSD radix sort, one byte per pass, on (id, index) pairs
 * so the passes stream through memory; passes where every id has the same
 * byte (addresses share high bytes and alignment bits) are skipped.
 * Linear, unlike a comparison sort. */
static const keyed *sort_by_id(au_resolver *r, const au_task *t, uint32_t n) {
    uint32_t count[8][256];
    memset(count, 0, sizeof count);
    keyed *src = r->keys, *dst = r->keys2;
    for (uint32_t k = 0; k < n; k++) {
        const au_task *task = &t[r->bearers[k]];
        uint64_t id = task->id;
        src[k] = (keyed){id, task->name, r->bearers[k], task->name_len};
        for (int b = 0; b < 8; b++) count[b][(id >> (8 * b)) & 0xff]++;
    }
    for (int b = 0; b < 8 && n; b++) {
        if (count[b][(src[0].id >> (8 * b)) & 0xff] == n) continue;
        uint32_t pos = 0;
        for (int d = 0; d < 256; d++) {
            uint32_t c = count[b][d];
            count[b][d] = pos;
            pos += c;
        }
        for (uint32_t k = 0; k < n; k++) dst[count[b][(src[k].id >> (8 * b)) & 0xff]++] = src[k];
        keyed *tmp = src;
        src = dst;
        dst = tmp;
    }
    return src;
}

/* ---- rule 3: the stacks ---------------------------------------------------
 *
 * Stacks share their root side (the thread's frames, then the tasks above
 * the leaf), so they are not copied out: a stack is its leaf and the length
 * of its chain, and au_stack_entries() writes one out on demand.  All a
 * call has to work out is each chain's length and how it ends, and that is
 * memoised over the parent graph in one linear pass, so a call costs
 * O(tasks + links + thread frames) however deep or wide the graph is. */

/* For every present task: clen, the number of tasks of its chain if
 * walked without a depth bound (up to a root, or until the chain closes on
 * a cycle), and cclose, the task the chain closes on (NONE for a root).
 *
 * Each task is visited once: walk up until a finished task, a root, or a
 * task on the current path (a cycle: its tasks all have the cycle's length
 * and close on themselves); then finish the path from the top down, each
 * task one longer than its parent and closing where its parent closes. */
static void measure_chains(au_resolver *r, uint32_t ntasks) {
    uint32_t *clen = r->clen, *cclose = r->cclose, *path = r->path;
    for (uint32_t i = 0; i < ntasks; i++) {
        if ((r->state[i] & (ST_PRESENT | ST_DONE)) != ST_PRESENT) continue;
        uint32_t len = 0, x = i;
        while (x != NONE && !(r->state[x] & (ST_DONE | ST_VISITING))) {
            r->state[x] |= ST_VISITING;
            clen[x] = len; /* its place on the path, while visiting */
            path[len++] = x;
            x = r->parent[x];
        }
        if (x != NONE && (r->state[x] & ST_VISITING)) {
            uint32_t from = clen[x], cycle = len - from;
            for (uint32_t k = from; k < len; k++) {
                uint32_t y = path[k];
                clen[y] = cycle;
                cclose[y] = y;
                r->state[y] = (uint8_t)((r->state[y] & ~ST_VISITING) | ST_DONE);
            }
            len = from;
        }
        while (len-- > 0) {
            uint32_t y = path[len], p = r->parent[y];
            clen[y] = p == NONE ? 1 : (clen[p] == UINT32_MAX ? UINT32_MAX : clen[p] + 1);
            cclose[y] = p == NONE ? NONE : cclose[p];
            r->state[y] = (uint8_t)((r->state[y] & ~ST_VISITING) | ST_DONE);
        }
    }
}

static void describe_stack(au_resolver *r, const keyed *kd, au_stack *out) {
    uint32_t s = kd->idx, flags = 0, ntasks = r->clen[s], closing = NONE;
    if (ntasks > r->lim.max_depth) {
        ntasks = r->lim.max_depth; /* the tasks nearest the leaf are kept */
        flags |= AU_STACK_TRUNCATED_DEPTH;
        r->stats.truncated++;
    } else if (r->cclose[s] != NONE) {
        closing = r->cclose[s];
        flags |= AU_STACK_CYCLE;
        r->stats.cycles++;
    }
    if (s == r->running_task) flags |= AU_STACK_RUNNING;
    out->leaf_id = kd->id;
    out->leaf_name = kd->name;
    out->leaf_name_len = kd->name_len;
    out->leaf_task = s;
    out->flags = flags;
    out->ntasks = ntasks;
    out->closing = closing;
}

uint32_t au_resolver_parent(const au_resolver *r, uint32_t task) {
    if (!r || !r->in || task >= r->in->ntasks) return NONE;
    return r->parent[task];
}

/* The coroutine frames a task shows in a stack: the running leaf shows
 * the thread's frames from the boundary on instead. */
static const uint64_t *task_frames(const au_resolver *r, uint32_t i, int leaf, uint32_t *n) {
    const au_thread_sample *in = r->in;
    if (leaf && i == r->running_task) {
        *n = in->nframes - r->boundary;
        return in->frames + r->boundary;
    }
    *n = in->tasks[i].nframes;
    return in->tasks[i].frames;
}

static void put_at(au_entry *buf, uint64_t lim, uint64_t pos, uint32_t kind, uint64_t id,
                   uint32_t task) {
    if (pos >= lim) return;
    buf[pos].id = id;
    buf[pos].kind = kind;
    buf[pos].task = task;
}

/* Copy frames f[0..n) to positions [pos, pos+n) of buf, those below lim. */
static void frames_at(au_entry *buf, uint64_t lim, uint64_t pos, const uint64_t *f, uint32_t n) {
    uint64_t end = pos + n < lim ? pos + n : lim;
    for (uint64_t k = pos; k < end; k++) {
        buf[k].id = f[k - pos];
        buf[k].kind = AU_ENTRY_FRAME;
        buf[k].task = NONE;
    }
}

uint64_t au_stack_entries(const au_resolver *r, const au_stack *s, au_entry *buf, uint32_t cap) {
    if (!r || !r->in || !s || (cap && !buf)) return 0;
    const au_thread_sample *in = r->in;
    const au_task *t = in->tasks;
    int thread_only = (s->flags & AU_STACK_THREAD_ONLY) != 0;
    if (!thread_only && (s->leaf_task >= in->ntasks || s->ntasks > r->lim.max_depth)) return 0;
    uint64_t prefix = thread_only || r->running_task == NONE ? in->nframes : r->boundary;
    int marker = (s->flags & (AU_STACK_CYCLE | AU_STACK_TRUNCATED_DEPTH)) != 0;
    /* The whole length first: the chain is written leaf first, backwards. */
    uint64_t total = prefix + (uint64_t)marker;
    uint32_t x = s->leaf_task;
    for (uint32_t k = 0; !thread_only && k < s->ntasks && x != NONE; k++) {
        uint32_t nf;
        task_frames(r, x, k == 0, &nf);
        total += 1 + (uint64_t)nf;
        x = r->parent[x];
    }
    if (cap == 0) return total;
    /* Keep the root side: a stack longer than cap ends in the marker. */
    uint64_t lim = total <= cap ? total : cap - 1;
    uint64_t pos = total;
    x = s->leaf_task;
    for (uint32_t k = 0; !thread_only && k < s->ntasks && x != NONE; k++) {
        uint32_t nf;
        const uint64_t *f = task_frames(r, x, k == 0, &nf);
        pos -= nf;
        frames_at(buf, lim, pos, f, nf);
        pos -= 1;
        put_at(buf, lim, pos, AU_ENTRY_TASK, t[x].id, x);
        x = r->parent[x];
    }
    if (s->flags & AU_STACK_CYCLE)
        put_at(buf, lim, prefix, AU_ENTRY_CYCLE, t[s->closing].id, s->closing);
    else if (s->flags & AU_STACK_TRUNCATED_DEPTH)
        put_at(buf, lim, prefix, AU_ENTRY_TRUNCATED, 0, NONE);
    frames_at(buf, lim, 0, in->frames, (uint32_t)prefix);
    if (total > cap) put_at(buf, cap, cap - 1, AU_ENTRY_TRUNCATED, 0, NONE);
    return total;
}

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
    return r;
}

void au_resolver_free(au_resolver *r) {
    if (!r) return;
    release(r, r->parent, r->parent_cap, sizeof *r->parent);
    release(r, r->strong, r->strong_cap, sizeof *r->strong);
    release(r, r->clen, r->clen_cap, sizeof *r->clen);
    release(r, r->cclose, r->cclose_cap, sizeof *r->cclose);
    release(r, r->path, r->path_cap, sizeof *r->path);
    release(r, r->state, r->state_cap, sizeof *r->state);
    release(r, r->bearers, r->bearers_cap, sizeof *r->bearers);
    release(r, r->keys, r->keys_cap, sizeof *r->keys);
    release(r, r->keys2, r->keys2_cap, sizeof *r->keys2);
    release(r, r->tasks.slots, r->tasks.cap, sizeof *r->tasks.slots);
    release(r, r->running.slots, r->running.cap, sizeof *r->running.slots);
    release(r, r->stacks, r->stacks_cap, sizeof *r->stacks);
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

/* Size the per-task arrays for n tasks. */
static int reserve(au_resolver *r, uint32_t n) {
    if (grow(r, &r->parent, &r->parent_cap, n, sizeof *r->parent) ||
        grow(r, &r->strong, &r->strong_cap, n, sizeof *r->strong) ||
        grow(r, &r->clen, &r->clen_cap, n, sizeof *r->clen) ||
        grow(r, &r->cclose, &r->cclose_cap, n, sizeof *r->cclose) ||
        grow(r, &r->path, &r->path_cap, n, sizeof *r->path) ||
        grow(r, &r->state, &r->state_cap, n, sizeof *r->state) ||
        grow(r, &r->bearers, &r->bearers_cap, n, sizeof *r->bearers) ||
        grow(r, &r->keys, &r->keys_cap, n, sizeof *r->keys) ||
        grow(r, &r->keys2, &r->keys2_cap, n, sizeof *r->keys2) ||
        grow(r, &r->stacks, &r->stacks_cap, n ? n : 1, sizeof *r->stacks))
        return AU_ERR_NOMEM;
    return AU_OK;
}

static int resolve(au_resolver *r, const au_thread_sample *in, au_stacks *out) {
    int rc = check_input(r, in);
    if (rc) return rc;
    if ((rc = reserve(r, in->ntasks)) || (rc = index_tasks(r, in))) return rc;
    resolve_parents(r, in);
    uint32_t running = NONE, boundary = 0;
    if ((rc = find_running(r, in, &running, &boundary))) return rc;
    r->in = in;
    r->running_task = running;
    r->boundary = boundary;

    uint32_t n = choose_bearers(r, in->tasks, in->ntasks, running);
    measure_chains(r, in->ntasks);
    const keyed *sorted = sort_by_id(r, in->tasks, n);
    for (uint32_t k = 0; k < n; k++) describe_stack(r, &sorted[k], &r->stacks[k]);
    uint32_t nstacks = n;
    if (n == 0 && in->nframes) {
        au_stack *st = &r->stacks[0];
        memset(st, 0, sizeof *st);
        st->leaf_task = NONE;
        st->closing = NONE;
        st->flags = AU_STACK_THREAD_ONLY;
        nstacks = 1;
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
