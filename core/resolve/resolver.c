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
 *
 * At 65,536 tasks nothing a call touches fits in the L2 cache: a read at a
 * random place waits on the shared cache or memory, and a branch on data
 * the predictor cannot guess (whether a task has a link, which level gives
 * its parent, how far a chain climbs) throws away what was started while
 * such a read was in flight.  Up to 4,096 tasks everything fits, and a
 * sample resolved over and over is cheaper still, because the predictor
 * learns its branches by heart: at 4,096 tasks of random_cyclic, 24-25 ns
 * a task for one sample repeated, 35.5-36.6 for 16 different samples in
 * turn, 44-47 at 65,536.  A profiler never sees the same sample twice, so
 * the benchmark resolves a fresh one each call.  Most choices below
 * (compact copies, 4-byte table slots, flag bytes, selections by mask,
 * deferred ties) come from keeping the cost per task at the large end
 * close to the small end, measured with //bench:resolver_bench; the
 * comments say which. */
#include <string.h>

#include "asyncunwind.h"
#include "au_internal.h"

#define NONE UINT32_MAX

/* Per-task state bits. */
enum {
    ST_PRESENT = 1u << 0, /* non-zero, unique id */
    ST_FLAGGED = 1u << 1, /* the caller set AU_TASK_RUNNING */
};

/* A stack-bearing task while it is sorted by id.  Only what the sort
 * needs: every pass moves every record through memory, so the name the
 * stack also needs waits in the names array instead. */
typedef struct keyed {
    uint64_t id;
    uint32_t idx, unused;
} keyed;

/* A task's name, copied in the pass that reads the caller's record, so
 * that a stack's name comes from a 16-byte entry rather than from the
 * caller's 56-byte record: the stacks are written in id order, that is at
 * random places of the caller's array, which at 65,536 tasks is 3.5 MiB,
 * far outside the L2 cache.  (Carrying the names through the sort, in
 * 24-byte records, cost more at both 256 and 65,536 tasks.) */
typedef struct task_name {
    const char *name;
    uint32_t len;
} task_name;

/* The two ids a task names, copied out of the caller's 56-byte records in
 * the one pass that reads them: later passes stream 16 bytes a task
 * instead of re-reading the records (3.5 MiB at 65,536 tasks, far outside
 * the L2 cache). */
typedef struct want {
    uint64_t awaits, creator;
} want;

/* The chain walk climbs parent links one dependent load at a time, which
 * at 65,536 tasks makes it latency-bound; so everything it reads and
 * writes for a task is in one 4-byte word of one array (256 KiB at 65,536
 * tasks, inside the L2 cache), and finishing a task touches nothing the
 * climb did not.  Before the walk reaches a task, its word is its parent
 * (UP_NONE for a root); UP_VISITING is set while it is on the path being
 * climbed; once UP_DONE, the word holds its chain length instead (clen:
 * tasks in the chain if walked without a depth bound, saturated at
 * UP_LEN) and UP_CYCLE if the chain closes on a cycle, the task it closes
 * on being then in cclose.  Task indices stay below 2^28 (MAX_TASKS). */
#define UP_DONE 0x80000000u
#define UP_VISITING 0x40000000u
#define UP_CYCLE 0x20000000u
#define UP_INDEX 0x1fffffffu
#define UP_NONE UP_INDEX
#define UP_LEN UP_INDEX

/* A candidate parent that tied with an earlier one (resolve_parents). */
typedef struct tie {
    uint32_t cand, child;
} tie;

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

    /* Per-task arrays, indexed like the caller's tasks (some with one more
     * entry, a sink: see resolve_parents). */
    want *wants;        /* the link ids of each task, copied in one pass */
    uint64_t *ids;      /* each task's id, copied in the same pass */
    task_name *names;   /* and its name */
    uint8_t *state;     /* ST_* bits */
    /* Flag bytes: "waiting" (awaits a task or is the parent of a strong
     * link) and "has a child" (someone's rule-1 parent).  They are set at
     * random places, by plain stores: a store needs no load and starts no
     * chain of dependent updates, as setting a bit in a shared word would. */
    uint8_t *waiting, *has_child;
    uint32_t *awaiter;  /* the level-1 candidate (scratch) */
    uint32_t *strong;   /* the level-2 candidate (scratch) */
    uint32_t *weak;     /* the creator's index (scratch) */
    uint32_t *parent;   /* rule-1 parent, or NONE */
    uint32_t *up;       /* parent, then chain length, and walk bits (UP_*) */
    uint32_t *cclose;   /* the task a chain closes on (UP_CYCLE only) */
    uint32_t *path;     /* walk_chain's path */
    tie *ties;          /* resolve_parents' ties, for tasks then for links */
    uint32_t wants_cap, ids_cap, names_cap, state_cap, waiting_cap, has_child_cap, awaiter_cap,
        strong_cap, weak_cap, parent_cap, up_cap, cclose_cap, path_cap, ties_cap;

    /* Stack-bearing tasks in the caller's order; radix sort buffers. */
    uint32_t *bearers;
    keyed *keys, *keys2;
    uint32_t *radix_counts; /* sort_by_id's count tables */
    uint32_t bearers_cap, keys_cap, keys2_cap, radix_counts_cap;

    /* Task id -> index (see "The task table"). */
    uint32_t *tab;
    uint32_t tab_cap, tab_mask;
    idmap running; /* outermost frame of a running candidate -> index */

    au_stack *stacks;
    uint32_t stacks_cap;

    /* The last sample, for au_stack_entries(). */
    const au_thread_sample *in;
    uint32_t running_task, boundary;
};

static int resolver_grow(au_resolver *r, void *pptr, uint32_t *cap, size_t need, size_t elem) {
    return au_grow(&r->alloc, &r->stats.allocations, (void **)pptr, cap, need, elem);
}

/* ---- id map ------------------------------------------------------------ */

/* Prepare m for n keys: a power-of-two table at most half full, cleared.
 * Only the slots used this call are cleared, so a small sample after a
 * large one costs no more than a small sample. */
static int map_reset(au_resolver *r, idmap *m, uint32_t n) {
    uint64_t slots = 16;
    while (slots < 2ull * n) slots <<= 1;
    if (slots > UINT32_MAX) return AU_ERR_LIMIT;
    if (resolver_grow(r, &m->slots, &m->cap, (size_t)slots, sizeof *m->slots)) return AU_ERR_NOMEM;
    m->mask = (uint32_t)(slots - 1);
    memset(m->slots, 0, (size_t)slots * sizeof *m->slots);
    return AU_OK;
}

/* At 65,536 tasks the id table no longer fits in cache and every probe is
 * a miss; loops over tasks announce their probes a few iterations ahead.
 * (On the 2-core VM the benchmarks ran on, this measured neither better
 * nor worse; it is kept for machines whose prefetchers lag further.) */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif
#define AHEAD 16

/* Slot holding key, or the empty slot where it would go.  Terminates
 * because the table is never more than half full.  (A branch-free probe of
 * a 64-byte bucket was tried: slower at every size measured.) */
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

/* ---- the task table ---------------------------------------------------
 *
 * Task id -> index, open addressing.  A slot holds only a task index
 * (EMPTY when free; DUPBIT set once the id turned out to be shared); the
 * key is that task's id in the compact ids array.  At 65,536 tasks every
 * probe lands at a random place far outside the L2 cache, and what costs is
 * a collision: the probe loop's branch is then mispredicted and waits on
 * the miss.  So the table is kept at most an eighth full, and four bytes a
 * slot keep that affordable (2 MiB at 65,536 tasks).  Measured against
 * sixteen-byte key/value slots, and against eight-byte slots holding the
 * id's low half, this was the fastest at every size.  The table's size
 * bound keeps task indices below 2^28, so neither DUPBIT nor the walk's
 * bits (UP_INDEX) collide with them. */
#define EMPTY UINT32_MAX
#define DUPBIT 0x80000000u
#define MAX_TASKS (1u << 28) /* 8 * MAX_TASKS slots fit DUPBIT */

/* n is at most MAX_TASKS (check_input), so the table has at most 2^31
 * slots. */
static int tab_reset(au_resolver *r, uint32_t n) {
    uint64_t slots = 16;
    while (slots < 8ull * n) slots <<= 1;
    if (resolver_grow(r, &r->tab, &r->tab_cap, (size_t)slots, sizeof *r->tab)) return AU_ERR_NOMEM;
    r->tab_mask = (uint32_t)(slots - 1);
    memset(r->tab, 0xff, (size_t)slots * sizeof *r->tab);
    return AU_OK;
}

static void tab_prefetch(const au_resolver *r, uint64_t id) {
    PREFETCH(&r->tab[(uint32_t)au_mix64(id) & r->tab_mask]);
}

/* Slot holding id, or the empty slot where it would go.  Terminates
 * because the table is never full. */
static uint32_t tab_slot(const au_resolver *r, uint64_t id) {
    uint32_t h = (uint32_t)au_mix64(id) & r->tab_mask, v;
    while ((v = r->tab[h]) != EMPTY && r->ids[v & ~DUPBIT] != id) h = (h + 1) & r->tab_mask;
    return h;
}

/* ---- rules ------------------------------------------------------------- */

/* Index of the present task with this id, or NONE. */
static uint32_t index_of(const au_resolver *r, uint64_t id) {
    if (id == 0) return NONE;
    uint32_t v = r->tab[tab_slot(r, id)];
    return (v & DUPBIT) ? NONE : v; /* EMPTY has DUPBIT set too */
}

/* The tie-break of rule 1 for task `child`: its creator first, then the
 * lowest id.  The ids are only read when there is a tie to break, and then
 * from the compact copies rather than the caller's records. */
static int better(const au_resolver *r, uint32_t cand, uint32_t best, uint32_t child) {
    if (best == NONE) return 1;
    uint64_t c = r->ids[cand], b = r->ids[best], creator = r->wants[child].creator;
    if (c == creator) return 1;
    if (b == creator) return 0;
    return c < b;
}

/* The one pass over the caller's task records: check each, index it by id
 * (tasks with id 0 or a shared id are not present), note its running flag
 * and copy its name and the ids it links to. */
static int index_tasks(au_resolver *r, const au_thread_sample *in) {
    if (tab_reset(r, in->ntasks)) return AU_ERR_NOMEM;
    memset(r->waiting, 0, (size_t)in->ntasks + 1);
    memset(r->has_child, 0, (size_t)in->ntasks + 1);
    for (uint32_t i = 0; i < in->ntasks; i++) {
        const au_task *t = &in->tasks[i];
        if ((t->nframes && !t->frames) || (t->name_len && !t->name)) return AU_ERR_ARG;
        uint64_t id = t->id;
        if (i + AHEAD < in->ntasks) tab_prefetch(r, in->tasks[i + AHEAD].id);
        r->state[i] = (t->flags & AU_TASK_RUNNING) ? ST_FLAGGED : 0;
        r->awaiter[i] = NONE;
        r->strong[i] = NONE;
        r->ids[i] = id;
        r->names[i] = (task_name){t->name, t->name_len};
        r->wants[i].awaits = t->awaits;
        r->wants[i].creator = t->creator;
        if (id == 0) {
            r->stats.tasks_ignored++;
            continue;
        }
        uint32_t s = tab_slot(r, id), v = r->tab[s];
        if (v == EMPTY) {
            r->tab[s] = i;
            r->state[i] |= ST_PRESENT;
        } else if (v & DUPBIT) {
            r->stats.tasks_ignored++;
        } else {
            /* Second copy: neither copy wins. */
            r->state[v] &= (uint8_t)~ST_PRESENT;
            r->tab[s] = v | DUPBIT;
            r->stats.tasks_ignored += 2;
        }
    }
    return AU_OK;
}

/* Resolve a link field of task i to the index of a different present task,
 * counting it as ignored when it names anything else. */
static uint32_t link_target(au_resolver *r, uint32_t i, uint64_t id) {
    if (id == 0) return NONE;
    uint32_t j = index_of(r, id);
    if (j == NONE || j == i) {
        r->stats.links_ignored++;
        return NONE;
    }
    return j;
}

/* Offer cand as the parent of child at one level of rule 1 (best[] holds
 * that level's candidates): the first offer takes the place; a later one
 * is written to *tie and the call returns 1, for settle_ties() to decide. */
static uint32_t propose(uint32_t *best, tie *tie_out, uint32_t cand, uint32_t child) {
    uint32_t first = best[child];
    best[child] = first == NONE ? cand : first;
    *tie_out = (tie){cand, child};
    return first != NONE;
}

/* Settle the ties propose() listed for the level held in best[]. */
static void settle_ties(const au_resolver *r, uint32_t *best, const tie *ties, uint32_t nties) {
    for (uint32_t k = 0; k < nties; k++) {
        uint32_t cand = ties[k].cand, child = ties[k].child;
        if (better(r, cand, best[child], child)) best[child] = cand;
    }
}

/* Rule 1 for every task, plus the "waiting" bit.
 *
 * The first candidate for a task's parent at levels 1 and 2 takes the
 * place without looking at it; any later one is a tie, listed and settled
 * after the loop.  Settling it on the spot would read the ids of the
 * candidates at random, and the loop would wait on each of those cache
 * misses behind a branch it cannot predict.  The preference is a total
 * order, so the winner does not depend on the order ties are settled in. */
static void resolve_parents(au_resolver *r, const au_thread_sample *in) {
    const want *w = r->wants;
    tie *ties = r->ties;
    uint32_t nties = 0;
    for (uint32_t i = 0; i < in->ntasks; i++) {
        if (i + AHEAD < in->ntasks) {
            tab_prefetch(r, w[i + AHEAD].awaits);
            tab_prefetch(r, w[i + AHEAD].creator);
        }
        r->weak[i] = NONE;
        if (!(r->state[i] & ST_PRESENT)) continue;
        r->weak[i] = link_target(r, i, w[i].creator);
        uint32_t j = link_target(r, i, w[i].awaits);
        if (j == NONE) continue;
        r->waiting[i] = 1;
        nties += propose(r->awaiter, &ties[nties], i, j);
    }
    settle_ties(r, r->awaiter, ties, nties);
    nties = 0;
    for (uint32_t k = 0; k < in->nlinks; k++) {
        if (k + AHEAD < in->nlinks) {
            tab_prefetch(r, in->links[k + AHEAD].child);
            tab_prefetch(r, in->links[k + AHEAD].parent);
        }
        uint32_t c = index_of(r, in->links[k].child);
        uint32_t p = index_of(r, in->links[k].parent);
        if (c == NONE || p == NONE || c == p) {
            r->stats.links_ignored++;
            continue;
        }
        r->waiting[p] = 1;
        nties += propose(r->strong, &ties[nties], p, c);
    }
    settle_ties(r, r->strong, ties, nties);
    /* Selections by mask: which level gives a task its parent is random,
     * and a branch on it is mispredicted once the sample is too large for
     * the branch predictor to learn by heart, as it does a small one.
     * has_child[ntasks] is a sink for the roots' writes. */
    for (uint32_t i = 0; i < in->ntasks; i++) {
        uint32_t p = r->awaiter[i], has = 0u - (uint32_t)(p != NONE);
        p = (p & has) | (r->strong[i] & ~has);
        has = 0u - (uint32_t)(p != NONE);
        p = (p & has) | (r->weak[i] & ~has);
        has = 0u - (uint32_t)(p != NONE);
        r->parent[i] = p;
        r->up[i] = (p & has) | (UP_NONE & ~has);
        r->has_child[(p & has) | (in->ntasks & ~has)] = 1;
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
        flagged += (r->state[i] & (ST_PRESENT | ST_FLAGGED)) == (ST_PRESENT | ST_FLAGGED);
    if (flagged == 0) return AU_OK;
    if (map_reset(r, &r->running, flagged)) return AU_ERR_NOMEM;
    idmap *m = &r->running;
    for (uint32_t i = 0; i < in->ntasks; i++) {
        if ((r->state[i] & (ST_PRESENT | ST_FLAGGED)) != (ST_PRESENT | ST_FLAGGED)) continue;
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

/* ---- rule 3: the stacks ---------------------------------------------------
 *
 * Stacks share their root side (the thread's frames, then the tasks above
 * the leaf), so they are not copied out: a stack is its leaf and the length
 * of its chain, and au_stack_entries() writes one out on demand.  All a
 * call has to work out is each chain's length and how it ends, and that is
 * memoised over the parent graph, so a call costs O(tasks + links + thread
 * frames) however deep or wide the graph is. */

/* Walk up from task i, measuring the chain of i and of every task above it
 * not yet measured, and marking them UP_DONE (covered; see UP_DONE for
 * what is measured).  Climb until a finished task, a root, or a task on
 * the current path (a cycle: its tasks all have the cycle's length and
 * close on themselves); then finish the path from the top down, each task
 * one longer than the one above it and closing where it closes, carrying
 * the values in registers.  Each task is climbed through once in the whole
 * call. */
static void walk_chain(au_resolver *r, uint32_t i) {
    uint32_t *up = r->up, *path = r->path;
    uint32_t len = 0, x = i;
    while (x != UP_NONE && !(up[x] & (UP_DONE | UP_VISITING))) {
        up[x] |= UP_VISITING;
        path[len++] = x;
        x = up[x] & UP_INDEX;
    }
    uint32_t above = 0, cyc = 0, close = NONE; /* the chain above path[len - 1] */
    if (x != UP_NONE && (up[x] & UP_VISITING)) {
        /* x is on the path: find where (the cycle is the path from there;
         * the search is as long as the cycle, walked once). */
        uint32_t from = len;
        while (from > 0 && path[from - 1] != x) from--;
        from = from > 0 ? from - 1 : 0;
        uint32_t cycle = len - from;
        for (uint32_t k = from; k < len; k++) {
            uint32_t y = path[k];
            up[y] = UP_DONE | UP_CYCLE | cycle;
            r->cclose[y] = y;
        }
        len = from;
        above = cycle;
        cyc = UP_CYCLE;
        close = x;
    } else if (x != UP_NONE) {
        above = up[x] & UP_LEN;
        cyc = up[x] & UP_CYCLE;
        if (cyc) close = r->cclose[x];
    }
    while (len-- > 0) {
        uint32_t y = path[len];
        above = above == UP_LEN ? UP_LEN : above + 1;
        up[y] = UP_DONE | cyc | above;
        if (cyc) r->cclose[y] = close;
    }
}

/* Rule 2, and the chains of rule 3.  Returns the number of stack-bearing
 * tasks, listed in bearers in the caller's order. */
static uint32_t choose_bearers(au_resolver *r, const au_task *t, uint32_t ntasks,
                               uint32_t running) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < ntasks; i++) {
        /* Without a branch: which tasks bear a stack is random. */
        uint32_t busy = r->waiting[i] & r->has_child[i];
        r->bearers[n] = i;
        n += (r->state[i] & ST_PRESENT) & ((uint32_t)(i == running) | !busy);
    }
    for (uint32_t k = 0; k < n; k++) walk_chain(r, r->bearers[k]);
    /* What is left uncovered is a set of closed cycles with nothing below
     * them (docs/RESOLVER.md, rule 2).  Each gets its lowest-id member.  The
     * search is bounded by ntasks and only considers uncovered tasks, so even
     * if that reasoning were wrong nothing would loop or bear two stacks. */
    for (uint32_t i = 0; i < ntasks; i++) {
        if (!(r->state[i] & ST_PRESENT) || (r->up[i] & UP_DONE)) continue;
        uint32_t rep = i, j = r->parent[i];
        for (uint32_t steps = 0; j != NONE && j != i && steps < ntasks; steps++) {
            if (!(r->up[j] & UP_DONE) && t[j].id < t[rep].id) rep = j;
            j = r->parent[j];
        }
        r->bearers[n++] = rep;
        walk_chain(r, rep);
        walk_chain(r, i);
    }
    return n;
}

/* Sort the n bearers by task id; returns them sorted.  An LSD radix sort
 * on (id, index) records, so the passes stream through memory, and
 * linear, unlike a comparison sort.  It sorts only on the bits where the
 * ids differ (they are addresses: high bits shared, low bits aligned),
 * with digits of RADIX_BITS_SMALL bits, or RADIX_BITS_LARGE from
 * RADIX_LARGE_FROM records on: wider digits mean fewer passes over a large
 * input (each pass moves every record through memory), and cost a larger
 * count table, which only pays off for large inputs. */
#define RADIX_BITS_SMALL 8u
#define RADIX_BITS_LARGE 11u
#define RADIX_LARGE_FROM 8192u
/* Count table entries: the most of 8 passes of 2^8 and 6 of 2^11. */
#define RADIX_COUNTS (6u << RADIX_BITS_LARGE)

static const keyed *sort_by_id(au_resolver *r, uint32_t n) {
    keyed *src = r->keys, *dst = r->keys2;
    if (n == 0) return src;
    uint64_t first = r->ids[r->bearers[0]], diff = 0;
    for (uint32_t k = 0; k < n; k++) diff |= r->ids[r->bearers[k]] ^ first;
    unsigned lo = 0, hi = 0;
    if (diff) {
        while (!((diff >> lo) & 1)) lo++;
        hi = 64;
        while (!((diff >> (hi - 1)) & 1)) hi--;
    }
    unsigned w = n >= RADIX_LARGE_FROM ? RADIX_BITS_LARGE : RADIX_BITS_SMALL;
    unsigned passes = (hi - lo + w - 1) / w, radix = 1u << w;
    uint32_t mask = radix - 1, *count = r->radix_counts;
    memset(count, 0, (size_t)passes * radix * sizeof *count);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t b = r->bearers[k];
        uint64_t id = r->ids[b];
        src[k] = (keyed){id, b, 0};
        for (unsigned p = 0; p < passes; p++) count[p * radix + ((id >> (lo + p * w)) & mask)]++;
    }
    for (unsigned p = 0; p < passes; p++) {
        uint32_t *c = count + (size_t)p * radix, pos = 0;
        unsigned shift = lo + p * w;
        for (unsigned d = 0; d < radix; d++) {
            uint32_t x = c[d];
            c[d] = pos;
            pos += x;
        }
        for (uint32_t k = 0; k < n; k++) dst[c[(src[k].id >> shift) & mask]++] = src[k];
        keyed *tmp = src;
        src = dst;
        dst = tmp;
    }
    return src;
}

static void describe_stack(au_resolver *r, const keyed *kd, au_stack *out) {
    uint32_t s = kd->idx, flags = 0, ntasks = r->up[s] & UP_LEN, closing = NONE;
    if (ntasks > r->lim.max_depth) {
        ntasks = r->lim.max_depth; /* the tasks nearest the leaf are kept */
        flags |= AU_STACK_TRUNCATED_DEPTH;
        r->stats.truncated++;
    } else if (r->up[s] & UP_CYCLE) {
        closing = r->cclose[s];
        flags |= AU_STACK_CYCLE;
        r->stats.cycles++;
    }
    if (s == r->running_task) flags |= AU_STACK_RUNNING;
    out->leaf_id = kd->id;
    out->leaf_name = r->names[s].name;
    out->leaf_name_len = r->names[s].len;
    out->leaf_task = s;
    out->flags = flags;
    out->ntasks = ntasks;
    out->closing = closing;
}

uint32_t au_resolver_parent(const au_resolver *r, uint32_t task) {
    if (!r || !r->in || task >= r->in->ntasks) return NONE;
    return r->parent[task];
}

/* The level-1 and level-2 candidates stay in place after the call, so the
 * level that gave the parent is read back rather than stored. */
uint32_t au_resolver_link(const au_resolver *r, uint32_t task) {
    if (!r || !r->in || task >= r->in->ntasks) return AU_LINK_NONE;
    uint32_t p = r->parent[task];
    if (p == NONE) return AU_LINK_NONE;
    if (r->awaiter[task] == p) return AU_LINK_AWAIT;
    return r->strong[task] == p ? AU_LINK_STRONG : AU_LINK_WEAK;
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

int au_resolver_new(const au_allocator *alloc, const au_resolver_limits *limits,
                    au_resolver **out) {
    if (!out) return AU_ERR_ARG;
    *out = NULL;
    au_allocator a;
    au_resolver *r = au_alloc_zeroed(alloc, sizeof *r, &a);
    if (!r) return AU_ERR_NOMEM;
    r->alloc = a;
    au_resolver_limits l = {0};
    if (limits) l = *limits;
    r->lim.max_tasks = or_default(l.max_tasks, AU_DEFAULT_MAX_TASKS);
    r->lim.max_links = or_default(l.max_links, AU_DEFAULT_MAX_LINKS);
    r->lim.max_depth = or_default(l.max_depth, AU_DEFAULT_MAX_DEPTH);
    *out = r;
    return AU_OK;
}

void au_resolver_free(au_resolver *r) {
    if (!r) return;
    AU_FREE_ARRAY(&r->alloc, r->wants, r->wants_cap);
    AU_FREE_ARRAY(&r->alloc, r->ids, r->ids_cap);
    AU_FREE_ARRAY(&r->alloc, r->names, r->names_cap);
    AU_FREE_ARRAY(&r->alloc, r->waiting, r->waiting_cap);
    AU_FREE_ARRAY(&r->alloc, r->has_child, r->has_child_cap);
    AU_FREE_ARRAY(&r->alloc, r->parent, r->parent_cap);
    AU_FREE_ARRAY(&r->alloc, r->cclose, r->cclose_cap);
    AU_FREE_ARRAY(&r->alloc, r->state, r->state_cap);
    AU_FREE_ARRAY(&r->alloc, r->awaiter, r->awaiter_cap);
    AU_FREE_ARRAY(&r->alloc, r->strong, r->strong_cap);
    AU_FREE_ARRAY(&r->alloc, r->weak, r->weak_cap);
    AU_FREE_ARRAY(&r->alloc, r->up, r->up_cap);
    AU_FREE_ARRAY(&r->alloc, r->path, r->path_cap);
    AU_FREE_ARRAY(&r->alloc, r->ties, r->ties_cap);
    AU_FREE_ARRAY(&r->alloc, r->bearers, r->bearers_cap);
    AU_FREE_ARRAY(&r->alloc, r->keys, r->keys_cap);
    AU_FREE_ARRAY(&r->alloc, r->keys2, r->keys2_cap);
    AU_FREE_ARRAY(&r->alloc, r->radix_counts, r->radix_counts_cap);
    AU_FREE_ARRAY(&r->alloc, r->tab, r->tab_cap);
    AU_FREE_ARRAY(&r->alloc, r->running.slots, r->running.cap);
    AU_FREE_ARRAY(&r->alloc, r->stacks, r->stacks_cap);
    au_allocator a = r->alloc;
    a.realloc(a.ud, r, sizeof *r, 0);
}

void au_resolver_get_stats(const au_resolver *r, au_resolver_stats *stats) {
    if (!stats) return;
    /* A NULL context has all-zero counters: the caller reads them either
     * way (and gcc, inlining across the amalgamation, checks that). */
    if (r)
        *stats = r->stats;
    else
        memset(stats, 0, sizeof *stats);
}

static int check_input(const au_resolver *r, const au_thread_sample *in) {
    if ((in->nframes && !in->frames) || (in->ntasks && !in->tasks) ||
        (in->nlinks && !in->links))
        return AU_ERR_ARG;
    if (in->ntasks > r->lim.max_tasks || in->nlinks > r->lim.max_links) return AU_ERR_LIMIT;
    /* The id table's bound (MAX_TASKS), checked before anything is sized. */
    if (in->ntasks > MAX_TASKS) return AU_ERR_LIMIT;
    return AU_OK; /* each task is checked by index_tasks, in its one pass */
}

/* Size the per-task arrays for n tasks (and nlinks links). */
static int reserve(au_resolver *r, uint32_t n, uint32_t nlinks) {
    if (resolver_grow(r, &r->wants, &r->wants_cap, n, sizeof *r->wants) ||
        resolver_grow(r, &r->ids, &r->ids_cap, n, sizeof *r->ids) ||
        resolver_grow(r, &r->names, &r->names_cap, n, sizeof *r->names) ||
        resolver_grow(r, &r->waiting, &r->waiting_cap, (size_t)n + 1, 1) ||
        resolver_grow(r, &r->has_child, &r->has_child_cap, (size_t)n + 1, 1) ||
        resolver_grow(r, &r->parent, &r->parent_cap, n, sizeof *r->parent) ||
        resolver_grow(r, &r->cclose, &r->cclose_cap, n, sizeof *r->cclose) ||
        resolver_grow(r, &r->state, &r->state_cap, n, sizeof *r->state) ||
        resolver_grow(r, &r->awaiter, &r->awaiter_cap, n, sizeof *r->awaiter) ||
        resolver_grow(r, &r->ties, &r->ties_cap, n > nlinks ? n : nlinks, sizeof *r->ties) ||
        resolver_grow(r, &r->strong, &r->strong_cap, n, sizeof *r->strong) ||
        resolver_grow(r, &r->weak, &r->weak_cap, n, sizeof *r->weak) ||
        resolver_grow(r, &r->up, &r->up_cap, n, sizeof *r->up) ||
        resolver_grow(r, &r->path, &r->path_cap, n, sizeof *r->path) ||
        resolver_grow(r, &r->bearers, &r->bearers_cap, n, sizeof *r->bearers) ||
        resolver_grow(r, &r->keys, &r->keys_cap, n, sizeof *r->keys) ||
        resolver_grow(r, &r->keys2, &r->keys2_cap, n, sizeof *r->keys2) ||
        resolver_grow(r, &r->radix_counts, &r->radix_counts_cap,
             RADIX_COUNTS, sizeof *r->radix_counts) ||
        resolver_grow(r, &r->stacks, &r->stacks_cap, n ? n : 1, sizeof *r->stacks))
        return AU_ERR_NOMEM;
    return AU_OK;
}

static int resolve(au_resolver *r, const au_thread_sample *in, au_stacks *out) {
    int rc = check_input(r, in);
    if (rc) return rc;
    if ((rc = reserve(r, in->ntasks, in->nlinks)) || (rc = index_tasks(r, in))) return rc;
    resolve_parents(r, in);
    uint32_t running = NONE, boundary = 0;
    if ((rc = find_running(r, in, &running, &boundary))) return rc;
    r->in = in;
    r->running_task = running;
    r->boundary = boundary;

    uint32_t n = choose_bearers(r, in->tasks, in->ntasks, running);
    const keyed *sorted = sort_by_id(r, n);
    for (uint32_t k = 0; k < n; k++) {
        /* In id order, the names are read at random: announce them. */
        if (k + AHEAD < n) PREFETCH(&r->names[sorted[k + AHEAD].idx]);
        describe_stack(r, &sorted[k], &r->stacks[k]);
    }
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
    r->in = NULL; /* the last call's stacks are gone, whatever happens */
    return resolve(r, in, out);
}
