/*
 * Strong links: which task holds a task through gather, a TaskGroup,
 * wait, as_completed, shield or wait_for, read from memory.
 *
 * None of these records its children in a field of the task.  What they
 * all do is hang a done-callback on each child, defined in asyncio's own
 * tasks.py or taskgroups.py, that reaches the holder when the child ends:
 *
 *   gather         a closure over `outer`, the _GatheringFuture the holder
 *                  awaits (a nested gather's future hangs the outer one's
 *                  callback in turn)
 *   wait           a closure over `waiter`, the future the holder awaits
 *   shield         a closure over `outer`, the future the holder awaits
 *   wait_for       (<= 3.11) partial(_release_waiter, waiter)
 *   TaskGroup      the bound method TaskGroup._on_task_done: its `self` is
 *                  the `self` of the holder's __aexit__ frame while the
 *                  holder waits there
 *   as_completed   a closure whose cells the holder's _wait_for_one frame
 *                  holds too (<= 3.12), or a bound method of the iterator
 *                  that is `self` of that frame (3.13+)
 *   anyio's group  (anyio 4, its asyncio backend, 3.11+) a closure over
 *                  the group, a class also named TaskGroup, whose cancel
 *                  scope names the holder: cancel_scope._host_task, a
 *                  __slots__ member
 *
 * So a link child -> holder is found in one of two ways, from the objects
 * a child's asyncio-defined callbacks hold:
 *   S1  a future that a task awaits (its fut_waiter), directly or through
 *       the callbacks of futures in between (bounded);
 *   S2  a TaskGroup's parent (asyncio's _parent_task, anyio's
 *       cancel_scope._host_task), which holds its tasks from creation,
 *       not only while it waits in __aexit__; and, for a child that
 *       neither S1 nor a group gave a holder, a cell or a bound method's
 *       self of asyncio's that is also in one of the first local slots of
 *       a frame of a task's coroutine chain (as_completed's cells).  The
 *       slots are compared last because they are costly (every task's
 *       slots read once a sample, then a pass over them per object asked
 *       for, or an index past SCAN_KEYS objects) and say less: a gather's
 *       cells add nothing to the future that names its holder, and a frame
 *       that merely holds a group (a sibling handed the group) holds none
 *       of its tasks.
 * What a callback leads to does not depend on the child it hangs on, so
 * it is looked into once a sample (one_callback): gather's, wait's and
 * as_completed's closures are shared by all their children, and a
 * TaskGroup's bound methods by their function and group.
 * Callbacks the program defines itself are never followed: what they hold
 * says nothing about asyncio's structure (anyio's backend is the one
 * library whose callbacks are read, by its file name, as asyncio's are).
 * From the holder's side too: a task waiting on a _GatheringFuture holds
 * its _children (nested gathers followed, bounded), the list gather keeps,
 * which names children whose callbacks could not be read or were not yet
 * hung.  A gathering future is looked into once S1 or awaited_by has met
 * it, not by reading the type of every future a task waits on: at 1,000
 * idle tasks that read was 41 of a sample's 311 pages, and a gather whose
 * children are all unreadable has nothing else to show either.  3.14+ also
 * records, in each task's awaited_by, who gathers it or runs it in a
 * TaskGroup: those are links too.  A child is linked to each holder once,
 * to AU_AT_MAX_PARENTS of them at most (a real one has one or two; the
 * resolver picks one).
 */
#include <string.h>

#include "au_asyncctx.h"
#include "au_bytes.h"
#include "au_internal.h"

#define NONE AU_AT_NONE
#define MAX_CALLBACKS 64u   /* callbacks looked at per future */
#define MAX_CLOSURE 16u     /* cells per closure, items per partial */
#define MAX_HOLDERS 256u    /* objects collected per future */
#define MAX_DEPTH 4u        /* futures between a child and its holder */
#define MAX_FUTURES 16u     /* futures looked into per child */
#define GROUP_CACHE 64u     /* task groups remembered per sample (a power of 2) */
#define GATHER_CACHE 64u    /* futures judged gathering or not, per sample (a power of 2) */
#define MAX_GATHERS 16u     /* gathering futures met per child, looked into after it */
#define CB_MEMO 64u         /* callbacks whose outcome is remembered per sample (a power of 2) */
#define CB_MEMO_ITEMS 32u   /* holders, objects and gathers one remembered outcome keeps, at most */
#define MAX_CANDIDATES 64u  /* holders one callback names, at most */
#define SCAN_KEYS 8u        /* objects S2 looks for by a pass over the slots, per sample */

/* Whose callback held an object. */
#define LIB_ASYNCIO 1
#define LIB_ANYIO 2

typedef struct held {
    uint64_t obj;
    uint8_t s2;  /* compare with frame slots (a cell, a method's self) */
    uint8_t lib; /* LIB_*: how a task group it is names its parent */
} held;

/* What one callback leads to, whichever child it hangs on: the holders
 * (task indices), the objects for S2, and the gathering futures met.
 * Built while it is looked into (links_ctx.collect), then applied to the
 * child; a callback shared by many children (gather's, wait's and
 * as_completed's closures) is looked into once a sample. */
typedef struct outcome {
    uint32_t ncand, ndef, ngat;
    uint64_t cand[MAX_CANDIDATES]; /* task indices, kept as the pool keeps them */
    uint64_t def[MAX_HOLDERS];
    uint64_t gat[MAX_GATHERS];
} outcome;

/* A remembered outcome: its items in t->memo_pool, CB_MEMO_ITEMS from
 * its entry's index on (the pool is allocated once, and a new outcome
 * takes its entry's place), holders first, then objects, then gathers. */
typedef struct memo_entry {
    uint64_t key[2];
    uint8_t ncand, ndef, ngat;
} memo_entry;

#define INDEX_PROBES 64u  /* table entries probed per key, at most */
#define INDEX_STEPS 4096u /* pairs of one key looked at per lookup, at most: a
                             hostile target can give every task one waiter,
                             or fill every frame slot with one object */

/* future -> the tasks waiting on it, and object -> the tasks holding it
 * in a frame slot: (key, task) pairs in the context's buffers, found by
 * key through an au_at_index (sorting them, as was done before, cost more
 * than the rest of a sample of 5,000 gathered tasks). */
typedef struct links_ctx {
    au_tasks *t;
    uint32_t nwaiters, nslots;
    int waiters_built, slots_built, slots_indexed;
    /* S2's first SCAN_KEYS distinct objects, each looked for by one pass
     * over the slots, and the tasks that pass found (in t->slot_hits). */
    struct {
        uint64_t key;
        uint32_t first, n;
    } scan[SCAN_KEYS];
    uint32_t nscan, nhits;
    uint64_t seen[MAX_FUTURES]; /* futures looked into for this child */
    uint32_t nseen;
    uint32_t first;             /* this child's first link in t->links */
    /* The objects met for this child that S2 would compare with frame
     * slots, kept for when nothing else gives it a holder (the first
     * MAX_HOLDERS of them). */
    uint64_t deferred[MAX_HOLDERS];
    uint32_t ndeferred;
    /* Task groups met this sample and their parents (NONE: none found),
     * direct-mapped: every child of a group asks, and each answer takes
     * two or three attribute lookups. */
    uint64_t group[GROUP_CACHE];
    uint32_t group_parent[GROUP_CACHE];
    /* Where anyio's cancel scope class keeps _host_task (a __slots__
     * member), found once a sample: finding it reads its class's dict. */
    uint64_t scope_type;
    uint32_t host_offset; /* 0: not there */
    /* Futures a child's links went through, judged gathering or not, and
     * whether their _children were looked into (direct-mapped: a gather's
     * every child meets its future). */
    uint64_t gfut[GATHER_CACHE];
    uint8_t gstate[GATHER_CACHE]; /* G_* */
    /* Gathering futures this child met, looked into once it is done: the
     * links they add are other children's, and must not count among its
     * own (add_link). */
    uint64_t gathers[MAX_GATHERS];
    uint32_t ngathers;
    /* While a callback is looked into: where its outcome goes, instead
     * of the child's links. */
    outcome *collect;
    memo_entry memo[CB_MEMO];
} links_ctx;

enum { G_OTHER = 1, G_GATHER, G_DONE };


/* Index n pairs by key (au_at_index).  A key that finds no free entry
 * within INDEX_PROBES is left out: only keys made to collide do.
 * Inserted from the last, so that a key's pairs come in task order. */
static int index_build(au_tasks *t, au_at_index *ix, const au_at_pair *p, uint32_t n) {
    uint32_t buckets = 64;
    while (buckets < 2ull * n) buckets *= 2;
    if (au_at_grow(t, &ix->head, &ix->head_cap, buckets, sizeof *ix->head) ||
        au_at_grow(t, &ix->next, &ix->next_cap, n ? n : 1, sizeof *ix->next))
        return AU_ERR_NOMEM;
    memset(ix->head, 0, (size_t)buckets * sizeof *ix->head);
    ix->mask = buckets - 1;
    for (uint32_t i = n; i-- > 0;) {
        uint32_t h = (uint32_t)au_mix64(p[i].key) & ix->mask;
        ix->next[i] = 0;
        for (uint32_t probe = 0; probe < INDEX_PROBES; probe++, h = (h + 1) & ix->mask) {
            uint32_t head = ix->head[h];
            if (head && p[head - 1].key != p[i].key) continue;
            ix->next[i] = head;
            ix->head[h] = i + 1;
            break;
        }
    }
    return AU_OK;
}

/* 1 + the first pair whose key is key, or 0. */
static uint32_t index_find(const au_at_index *ix, const au_at_pair *p, uint32_t n, uint64_t key) {
    if (!n) return 0;
    uint32_t h = (uint32_t)au_mix64(key) & ix->mask;
    for (uint32_t probe = 0; probe < INDEX_PROBES; probe++, h = (h + 1) & ix->mask) {
        uint32_t head = ix->head[h];
        if (!head || p[head - 1].key == key) return head;
    }
    return 0;
}

/* Does code object `code` come from asyncio's tasks.py or taskgroups.py
 * (LIB_ASYNCIO), or from anyio's asyncio backend (LIB_ANYIO)?  Decided by
 * the last path components of its co_filename: 0 if neither, or
 * AU_ERR_NOMEM. */
static int asyncio_code(au_tasks *t, uint64_t code) {
    static const struct {
        const char *file;
        uint8_t lib;
    } files[] = {{"asyncio/tasks.py", LIB_ASYNCIO},
                 {"asyncio/taskgroups.py", LIB_ASYNCIO},
                 {"anyio/_backends/_asyncio.py", LIB_ANYIO}};
    const au_py_offsets *o = t->layout.o;
    uint64_t fn = au_obj_ptr(t->objects, code, o->code_filename);
    if (!code || !fn) return 0;
    /* Judged once per code object (asyncio's live as long as the module);
     * a code object at a reused address has another filename object. */
    for (uint32_t i = 0; i < AU_AT_CODE_CACHE; i++)
        if (t->codes[i].code == code && t->codes[i].filename == fn) return t->codes[i].asyncio;
    const char *s;
    uint32_t n;
    int yes = 0;
    int rc = au_obj_str(t->objects, fn, 512, &s, &n);
    if (rc == AU_OK) {
        for (size_t i = 0; i < sizeof files / sizeof *files && !yes; i++) {
            size_t m = strlen(files[i].file);
            if (n >= m && memcmp(s + n - m, files[i].file, m) == 0 && (n == m || s[n - m - 1] == '/'))
                yes = files[i].lib;
        }
    }
    if (rc == AU_ERR_NOMEM) return rc;
    /* Only a verdict on the string itself is kept: a read that failed, or
     * a sample's string arena that was full, says nothing about later
     * samples. */
    if (rc != AU_OK && rc != AU_ERR_CORRUPT) return 0;
    au_at_code *e = &t->codes[t->codes_next];
    t->codes_next = (t->codes_next + 1) % AU_AT_CODE_CACHE;
    *e = (au_at_code){code, fn, (uint8_t)yes};
    return yes;
}

static int add_held(held *h, uint32_t *n, uint64_t obj, int s2, int lib) {
    if (!obj || (obj & 7) || *n == MAX_HOLDERS) return 0;
    h[(*n)++] = (held){obj, (uint8_t)s2, (uint8_t)lib};
    return 1;
}

/* What one callback holds, if asyncio (or anyio) defined it.  Only
 * asyncio's cells and bound selves are compared with frame slots (S2):
 * anyio's groups are found through the group itself (group_parent), and
 * comparing costs reading and indexing every task's slots.  AU_OK or
 * AU_ERR_NOMEM. */
static int callback_holds(au_tasks *t, uint64_t cb, held *h, uint32_t *n) {
    const au_py_offsets *o = t->layout.o;
    const au_py_private *p = &t->priv;
    au_objects *ob = t->objects;
    uint64_t items[MAX_CLOSURE];
    uint32_t k;
    int yes;
    switch (au_obj_kind(ob, cb)) {
    case AU_OK_FUNCTION: {
        if ((yes = asyncio_code(t, au_obj_ptr(ob, cb, o->func_code))) <= 0) return yes;
        uint64_t closure = au_obj_ptr(ob, cb, o->func_closure);
        if (!closure || au_obj_items(ob, closure, items, MAX_CLOSURE, &k)) return AU_OK;
        for (uint32_t i = 0; i < k && i < MAX_CLOSURE; i++) {
            if (yes == LIB_ASYNCIO) add_held(h, n, items[i], 1, yes);       /* the cell */
            add_held(h, n, au_obj_ptr(ob, items[i], o->cell_ob_ref), 0, yes); /* its value */
        }
        return AU_OK;
    }
    case AU_OK_METHOD: {
        uint64_t fn = au_obj_ptr(ob, cb, o->method_im_func);
        if (au_obj_kind(ob, fn) != AU_OK_FUNCTION) return AU_OK;
        if ((yes = asyncio_code(t, au_obj_ptr(ob, fn, o->func_code))) <= 0) return yes;
        add_held(h, n, au_obj_ptr(ob, cb, o->method_im_self), yes == LIB_ASYNCIO, yes);
        return AU_OK;
    }
    case AU_OK_PARTIAL: {
        uint64_t fn = au_obj_ptr(ob, cb, p->partial_fn);
        if (au_obj_kind(ob, fn) != AU_OK_FUNCTION) return AU_OK;
        if ((yes = asyncio_code(t, au_obj_ptr(ob, fn, o->func_code))) <= 0) return yes;
        uint64_t args = au_obj_ptr(ob, cb, p->partial_args);
        if (!args || au_obj_items(ob, args, items, MAX_CLOSURE, &k)) return AU_OK;
        for (uint32_t i = 0; i < k && i < MAX_CLOSURE; i++) add_held(h, n, items[i], 0, yes);
        return AU_OK;
    }
    default:
        return AU_OK; /* a task's wakeup, the program's own callbacks, ... */
    }
}

/* The callbacks of a future, given its callback0 and callbacks list (of
 * (callback, context) tuples): into out, which has room for
 * 1 + MAX_CALLBACKS; returns how many. */
static uint32_t future_callbacks(au_objects *ob, uint64_t cb0, uint64_t list, uint64_t *out) {
    uint32_t n = 0, k;
    if (cb0) out[n++] = cb0;
    uint64_t items[MAX_CALLBACKS];
    if (!list || au_obj_items(ob, list, items, MAX_CALLBACKS, &k)) return n;
    for (uint32_t i = 0; i < k && i < MAX_CALLBACKS; i++) {
        uint64_t pair[2];
        uint32_t m;
        if (au_obj_items(ob, items[i], pair, 2, &m) == AU_OK && m >= 1) out[n++] = pair[0];
    }
    return n;
}

/* Everything the asyncio-defined callbacks of a future hold, given its
 * callback0 and callbacks list.  AU_OK or AU_ERR_NOMEM. */
static int callbacks_hold(au_tasks *t, uint64_t cb0, uint64_t list, held *h, uint32_t *n) {
    uint64_t cbs[1 + MAX_CALLBACKS];
    uint32_t k = future_callbacks(t->objects, cb0, list, cbs);
    int rc;
    *n = 0;
    for (uint32_t i = 0; i < k; i++)
        if ((rc = callback_holds(t, cbs[i], h, n))) return rc;
    return AU_OK;
}

static int holds_of(au_tasks *t, uint64_t fut, held *h, uint32_t *n) {
    const au_py_private *p = &t->priv;
    return callbacks_hold(t, au_obj_ptr(t->objects, fut, p->fut_callback0),
                          au_obj_ptr(t->objects, fut, p->fut_callbacks), h, n);
}

/* Append the link child -> parent (task indices), with its addresses
 * for the resolver and its indices for the sampler. */
static int push_link(au_tasks *t, uint32_t child, uint32_t parent) {
    if (au_at_grow(t, &t->links, &t->links_cap, (size_t)t->nlinks + 1, sizeof *t->links) ||
        au_at_grow(t, &t->link_tasks, &t->link_tasks_cap, 2 * ((size_t)t->nlinks + 1),
                   sizeof *t->link_tasks))
        return AU_ERR_NOMEM;
    t->link_tasks[2 * t->nlinks] = child;
    t->link_tasks[2 * t->nlinks + 1] = parent;
    t->links[t->nlinks++] = (au_link){t->tasks[child].addr, t->tasks[parent].addr};
    return AU_OK;
}

static int add_link(links_ctx *c, uint32_t child, uint32_t parent) {
    au_tasks *t = c->t;
    if (c->collect) {
        outcome *r = c->collect;
        for (uint32_t i = 0; i < r->ncand; i++)
            if (r->cand[i] == parent) return AU_OK;
        if (r->ncand < MAX_CANDIDATES) r->cand[r->ncand++] = parent;
        return AU_OK;
    }
    if (child == parent) return AU_OK;
    /* Each holder once, and AU_AT_MAX_PARENTS at most: a child's links
     * are made while it is looked at, so they are the last ones.  Without
     * this, a held object found many times (a closure of 16 equal cells,
     * 64 callbacks, in every frame slot of every task) gave a link per
     * finding: 90,000 links for 10 tasks from a 38 KB snapshot, growing
     * with the square of the tasks. */
    for (uint32_t i = c->first; i < t->nlinks; i++)
        if (t->links[i].parent == t->tasks[parent].addr) return AU_OK;
    if (t->nlinks - c->first == AU_AT_MAX_PARENTS) return AU_OK;
    return push_link(t, child, parent);
}

/* future -> its waiting tasks, built when a first link needs it (a sample
 * of idle tasks needs none). */
static int build_waiters(links_ctx *c) {
    au_tasks *t = c->t;
    c->waiters_built = 1;
    for (uint32_t i = 0; i < t->ntasks; i++) {
        if (!t->tasks[i].waiter) continue;
        if (au_at_grow(t, &t->waiters, &t->waiters_cap, (size_t)c->nwaiters + 1, sizeof *t->waiters))
            return AU_ERR_NOMEM;
        t->waiters[c->nwaiters++] = (au_at_pair){t->tasks[i].waiter, i};
    }
    return index_build(t, &t->waiters_ix, t->waiters, c->nwaiters);
}

/* Every task waiting on future `fut` is a holder of child. */
static int link_waiters(links_ctx *c, uint32_t child, uint64_t fut, int *found) {
    int rc;
    if (!c->waiters_built && (rc = build_waiters(c))) return rc;
    au_tasks *t = c->t;
    uint32_t j = index_find(&t->waiters_ix, t->waiters, c->nwaiters, fut);
    for (uint32_t steps = 0; j && steps < INDEX_STEPS; steps++, j = t->waiters_ix.next[j - 1]) {
        *found = 1;
        if ((rc = add_link(c, child, (uint32_t)t->waiters[j - 1].task))) return rc;
    }
    return AU_OK;
}

/* The first local slots of every frame of every chain (S2), as pairs;
 * indexed only when SCAN_KEYS objects were looked for (link_slots). */
static int build_slots(links_ctx *c) {
    au_tasks *t = c->t;
    const au_py_offsets *o = t->layout.o;
    c->slots_built = 1;
    for (uint32_t i = 0; i < t->ntasks; i++) {
        const au_atask *a = &t->tasks[i];
        for (uint32_t f = a->first_frame; f < a->first_frame + a->nframes; f++) {
            uint8_t b[8 * AU_AT_LOCAL_SLOTS];
            if (au_view_read(t->view, t->raw[f].addr + o->frame_header_size, b, sizeof b)) continue;
            if (au_at_grow(t, &t->slots, &t->slots_cap, (size_t)c->nslots + AU_AT_LOCAL_SLOTS,
                           sizeof *t->slots))
                return AU_ERR_NOMEM;
            for (uint32_t s = 0; s < AU_AT_LOCAL_SLOTS; s++) {
                uint64_t v = au_rd64(b + 8 * s) & ~o->frame_code_tag_mask;
                if (v && !(v & 7)) t->slots[c->nslots++] = (au_at_pair){v, i};
            }
        }
    }
    return AU_OK;
}

/* Where the tasks holding obj are: *hits (n of them, in pair order, at
 * most INDEX_STEPS) from a pass over the slots, or, once SCAN_KEYS objects
 * have been looked for, *j (1 + the first pair, chained by slots_ix).
 * Every child of one as_completed asks for the same few cells, so a pass
 * each (a compare per slot) costs less than indexing every slot, which
 * was most of such a sample's links. */
static int slot_holders(links_ctx *c, uint64_t obj, const uint32_t **hits, uint32_t *n,
                        uint32_t *j) {
    au_tasks *t = c->t;
    int rc;
    *hits = NULL;
    *n = *j = 0;
    if (!c->slots_built && (rc = build_slots(c))) return rc;
    for (uint32_t k = 0; k < c->nscan; k++)
        if (c->scan[k].key == obj) {
            *n = c->scan[k].n;
            if (*n) *hits = t->slot_hits + c->scan[k].first; /* none: slot_hits may be NULL */
            return AU_OK;
        }
    if (c->nscan == SCAN_KEYS) {
        if (!c->slots_indexed) {
            c->slots_indexed = 1;
            if ((rc = index_build(t, &t->slots_ix, t->slots, c->nslots))) return rc;
        }
        *j = index_find(&t->slots_ix, t->slots, c->nslots, obj);
        return AU_OK;
    }
    uint32_t first = c->nhits, found = 0;
    for (uint32_t k = 0; k < c->nslots && found < INDEX_STEPS; k++) {
        if (t->slots[k].key != obj) continue;
        if (au_at_grow(t, &t->slot_hits, &t->slot_hits_cap, (size_t)c->nhits + 1, sizeof *t->slot_hits))
            return AU_ERR_NOMEM;
        t->slot_hits[c->nhits++] = (uint32_t)t->slots[k].task;
        found++;
    }
    c->scan[c->nscan].key = obj;
    c->scan[c->nscan].first = first;
    c->scan[c->nscan++].n = found;
    if (found) *hits = t->slot_hits + first;
    *n = found;
    return AU_OK;
}

static int link_holder(links_ctx *c, uint32_t child, const held *h, uint32_t depth);

/* anyio's cancel scope's _host_task, a __slots__ member; 0 if none. */
static uint64_t host_task(links_ctx *c, uint64_t scope) {
    au_objects *ob = c->t->objects;
    uint64_t type = au_obj_type(ob, scope), task = 0;
    if (!type) return 0;
    if (type != c->scope_type) {
        c->scope_type = type;
        if (au_obj_slot_offset(ob, type, "_host_task", &c->host_offset) != AU_OK) c->host_offset = 0;
    }
    if (c->host_offset) au_obj_read_ptr(ob, scope, c->host_offset, &task);
    return task;
}

/* A task group holds its tasks from their creation on, not only while its
 * parent waits in __aexit__: asyncio's names that parent _parent_task,
 * anyio's (a class of the same name, whose done-callback closes over the
 * group: lib) cancel_scope._host_task.  AU_OK or AU_ERR_NOMEM. */
static int group_parent(links_ctx *c, uint32_t child, uint64_t group, int lib) {
    au_tasks *t = c->t;
    uint32_t p = NONE, i = (uint32_t)au_mix64(group) & (GROUP_CACHE - 1);
    if (c->group[i] == group) {
        p = c->group_parent[i];
    } else {
        uint64_t parent = 0, scope;
        if (lib == LIB_ANYIO ? au_obj_attr(t->objects, group, "cancel_scope", &scope) == AU_OK &&
                                   (parent = host_task(c, scope)) != 0
                             : au_obj_attr(t->objects, group, "_parent_task", &parent) == AU_OK)
            p = au_at_find(t, parent);
        c->group[i] = group;
        c->group_parent[i] = p;
    }
    return p != NONE ? add_link(c, child, p) : AU_OK;
}

/* fut has waiting tasks: if it is a _GatheringFuture not yet looked
 * into, queue it for expand_gathers. */
static void note_gather(links_ctx *c, uint64_t fut) {
    uint32_t i = (uint32_t)au_mix64(fut) & (GATHER_CACHE - 1);
    if (c->gfut[i] != fut) {
        c->gfut[i] = fut;
        c->gstate[i] =
            au_obj_kind(c->t->objects, fut) == AU_OK_GATHERING_FUTURE ? G_GATHER : G_OTHER;
    }
    if (c->gstate[i] != G_GATHER) return;
    uint64_t *list = c->collect ? c->collect->gat : c->gathers;
    uint32_t *n = c->collect ? &c->collect->ngat : &c->ngathers;
    if (*n == MAX_GATHERS) return;
    for (uint32_t k = 0; k < *n; k++)
        if (list[k] == fut) return;
    list[(*n)++] = fut;
}

/* S1 through a future: its waiters, else the futures its own callbacks
 * reach. */
static int via_future(links_ctx *c, uint32_t child, uint64_t fut, uint32_t depth) {
    /* Each future once per child, and MAX_FUTURES of them at most: futures
     * whose callbacks lead back to themselves, or to one another many
     * times over, made a walk of up to MAX_HOLDERS^MAX_DEPTH steps (a
     * crafted 38 KB snapshot took seconds a sample, a worse one hours). */
    for (uint32_t i = 0; i < c->nseen; i++)
        if (c->seen[i] == fut) return AU_OK;
    if (c->nseen == MAX_FUTURES) return AU_OK;
    c->seen[c->nseen++] = fut;
    int found = 0;
    int rc = link_waiters(c, child, fut, &found);
    if (rc) return rc;
    if (found) {
        note_gather(c, fut);
        return AU_OK;
    }
    if (depth >= MAX_DEPTH) return AU_OK;
    held h[MAX_HOLDERS];
    uint32_t n;
    if ((rc = holds_of(c->t, fut, h, &n))) return rc;
    for (uint32_t i = 0; i < n; i++)
        if ((rc = link_holder(c, child, &h[i], depth + 1))) return rc;
    return AU_OK;
}

static int link_holder(links_ctx *c, uint32_t child, const held *h, uint32_t depth) {
    au_tasks *t = c->t;
    au_okind k = au_obj_kind(t->objects, h->obj);
    if (k == AU_OK_TASK) return AU_OK; /* a wakeup, or the child itself */
    if (k == AU_OK_FUTURE || k == AU_OK_GATHERING_FUTURE) return via_future(c, child, h->obj, depth);
    int rc;
    if (k == AU_OK_TASK_GROUP && (rc = group_parent(c, child, h->obj, h->lib))) return rc;
    /* Compared with frame slots later, if at all (S2). */
    if (!h->s2) return AU_OK;
    if (c->collect) {
        if (c->collect->ndef < MAX_HOLDERS) c->collect->def[c->collect->ndef++] = h->obj;
    } else if (c->ndeferred < MAX_HOLDERS) {
        c->deferred[c->ndeferred++] = h->obj;
    }
    return AU_OK;
}

/* S2: every task one of whose first frame slots holds obj. */
static int link_slots(links_ctx *c, uint32_t child, uint64_t obj) {
    au_tasks *t = c->t;
    const uint32_t *hits;
    uint32_t n, j;
    int rc = slot_holders(c, obj, &hits, &n, &j);
    if (rc) return rc;
    for (uint32_t k = 0; k < n; k++)
        if ((rc = add_link(c, child, hits[k]))) return rc;
    for (uint32_t steps = 0; j && steps < INDEX_STEPS; steps++, j = t->slots_ix.next[j - 1])
        if ((rc = add_link(c, child, (uint32_t)t->slots[j - 1].task))) return rc;
    return AU_OK;
}

/* The children of the _GatheringFuture `fut` (and of gathers nested in
 * it), as strong links to `holder`, the task waiting on it.  `budget`
 * bounds the list items looked at over the whole walk: nested gathers
 * otherwise make MAX_HOLDERS^MAX_DEPTH steps.  These links are for other
 * children than the one add_link() counts, so they go in directly; a
 * duplicate (a list naming one task twice) is harmless. */
static int gather_children(links_ctx *c, uint32_t holder, uint64_t fut, uint32_t depth, uint32_t *budget) {
    au_tasks *t = c->t;
    uint64_t list, items[MAX_HOLDERS];
    uint32_t n;
    if (au_obj_attr(t->objects, fut, "_children", &list) != AU_OK ||
        au_obj_items(t->objects, list, items, MAX_HOLDERS, &n) != AU_OK)
        return AU_OK;
    for (uint32_t i = 0; i < n && i < MAX_HOLDERS && *budget; i++, (*budget)--) {
        uint32_t k = au_at_find(t, items[i]);
        if (k != NONE) {
            if (k == holder) continue;
            int rc = push_link(t, k, holder);
            if (rc) return rc;
        } else if (depth < MAX_DEPTH && au_obj_kind(t->objects, items[i]) == AU_OK_GATHERING_FUTURE) {
            int rc = gather_children(c, holder, items[i], depth + 1, budget);
            if (rc) return rc;
        }
    }
    return AU_OK;
}

/* Apply an outcome to child: its links, its objects for S2, its
 * gathers. */
static int apply_outcome(links_ctx *c, uint32_t child, const uint64_t *cand, uint32_t ncand,
                         const uint64_t *def, uint32_t ndef, const uint64_t *gat, uint32_t ngat) {
    int rc;
    for (uint32_t k = 0; k < ncand; k++)
        if ((rc = add_link(c, child, (uint32_t)cand[k]))) return rc;
    for (uint32_t k = 0; k < ndef && c->ndeferred < MAX_HOLDERS; k++) c->deferred[c->ndeferred++] = def[k];
    for (uint32_t k = 0; k < ngat; k++) note_gather(c, gat[k]);
    return AU_OK;
}

/* The memo entry for key (k0, k1). */
static memo_entry *memo_slot(links_ctx *c, uint64_t k0, uint64_t k1) {
    return &c->memo[(uint32_t)au_mix64(k0 ^ au_mix64(k1)) & (CB_MEMO - 1)];
}

/* One callback of child: its remembered outcome, or what it holds looked
 * into now (and remembered when it is small and may be met again).  AU_OK
 * or AU_ERR_NOMEM. */
static int one_callback(links_ctx *c, uint32_t child, uint64_t cb) {
    au_tasks *t = c->t;
    au_objects *ob = t->objects;
    /* What the outcome depends on: a function (gather's, wait's and
     * as_completed's closures are shared by their children), or a bound
     * method's function and self (a TaskGroup makes one for each child,
     * of one function and one group).  Anything else (wait_for's
     * partial, made for its one child) is looked into every time. */
    uint64_t key[2] = {cb, 0};
    /* A function met before is known by its address alone: the common
     * case (a gather's children) reads nothing of it again. */
    memo_entry *e = memo_slot(c, cb, 0);
    if (!cb || e->key[0] != cb || e->key[1] != 0) {
        au_okind kind = au_obj_kind(ob, cb);
        if (kind == AU_OK_METHOD) {
            key[0] = au_obj_ptr(ob, cb, t->layout.o->method_im_func);
            key[1] = au_obj_ptr(ob, cb, t->layout.o->method_im_self);
            if (!key[1]) key[0] = 0;
        } else if (kind != AU_OK_FUNCTION) {
            key[0] = 0;
        }
        e = memo_slot(c, key[0], key[1]);
    }
    const size_t at = (size_t)(e - c->memo) * CB_MEMO_ITEMS;
    if (key[0] && e->key[0] == key[0] && e->key[1] == key[1]) {
        const uint64_t *p = t->memo_pool + at;
        return apply_outcome(c, child, p, e->ncand, p + e->ncand, e->ndef, p + e->ncand + e->ndef,
                             e->ngat);
    }
    held h[MAX_HOLDERS];
    uint32_t n = 0;
    int rc = callback_holds(t, cb, h, &n);
    if (rc) return rc;
    /* Each callback's futures are its own: the outcome must not depend on
     * which child, or which of its callbacks, came first. */
    c->nseen = 0;
    if (!key[0]) {
        for (uint32_t k = 0; k < n && !rc; k++) rc = link_holder(c, child, &h[k], 0);
        return rc;
    }
    outcome r;
    r.ncand = r.ndef = r.ngat = 0;
    c->collect = &r;
    for (uint32_t k = 0; k < n && !rc; k++) rc = link_holder(c, child, &h[k], 0);
    c->collect = NULL;
    if (rc) return rc;
    uint32_t items = r.ncand + r.ndef + r.ngat;
    if (items <= CB_MEMO_ITEMS) {
        if (au_at_grow(t, &t->memo_pool, &t->memo_pool_cap, CB_MEMO * CB_MEMO_ITEMS,
                       sizeof *t->memo_pool))
            return AU_ERR_NOMEM;
        uint64_t *p = t->memo_pool + at;
        memcpy(p, r.cand, (size_t)r.ncand * sizeof *p);
        memcpy(p + r.ncand, r.def, (size_t)r.ndef * sizeof *p);
        memcpy(p + r.ncand + r.ndef, r.gat, (size_t)r.ngat * sizeof *p);
        *e = (memo_entry){{key[0], key[1]}, (uint8_t)r.ncand, (uint8_t)r.ndef, (uint8_t)r.ngat};
    }
    return apply_outcome(c, child, r.cand, r.ncand, r.def, r.ndef, r.gat, r.ngat);
}

/* Every callback of child, in order.  AU_OK or AU_ERR_NOMEM. */
static int child_callbacks(links_ctx *c, uint32_t child, uint64_t cb0, uint64_t list) {
    uint64_t cbs[1 + MAX_CALLBACKS];
    uint32_t k = future_callbacks(c->t->objects, cb0, list, cbs);
    int rc;
    for (uint32_t i = 0; i < k; i++)
        if ((rc = one_callback(c, child, cbs[i]))) return rc;
    return AU_OK;
}

/* The gathering futures the last child met: each one's _children go
 * under every task waiting on it, once a sample per future (a cache
 * collision may look into one again: its links are only repeated). */
static int expand_gathers(links_ctx *c) {
    au_tasks *t = c->t;
    int rc;
    for (uint32_t g = 0; g < c->ngathers; g++) {
        uint64_t fut = c->gathers[g];
        uint32_t slot = (uint32_t)au_mix64(fut) & (GATHER_CACHE - 1);
        if (c->gfut[slot] == fut) {
            if (c->gstate[slot] == G_DONE) continue;
            c->gstate[slot] = G_DONE;
        }
        uint32_t j = index_find(&t->waiters_ix, t->waiters, c->nwaiters, fut);
        for (uint32_t steps = 0; j && steps < INDEX_STEPS; steps++, j = t->waiters_ix.next[j - 1]) {
            uint32_t budget = MAX_HOLDERS;
            if ((rc = gather_children(c, (uint32_t)t->waiters[j - 1].task, fut, 0, &budget))) return rc;
        }
    }
    c->ngathers = 0;
    return AU_OK;
}

/* 3.14+: the awaiters a task records (one object, or a set of them). */
static int awaited_by(links_ctx *c, uint32_t child) {
    au_tasks *t = c->t;
    const au_atask *a = &t->tasks[child];
    uint64_t objs[MAX_HOLDERS];
    uint32_t n = 0;
    if (!a->awaited_by) return AU_OK;
    if (a->awaited_by_is_set) {
        /* More awaiters than MAX_HOLDERS: the first ones (a child keeps
         * at most AU_AT_MAX_PARENTS holders anyway). */
        int rc;
        if (au_obj_kind(t->objects, a->awaited_by) != AU_OK_SET ||
            ((rc = au_obj_set_keys(t->objects, a->awaited_by, objs, MAX_HOLDERS, &n)) &&
             rc != AU_ERR_LIMIT))
            return AU_OK;
    } else {
        objs[n++] = a->awaited_by;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = au_at_find(t, objs[i]);
        int rc = p != NONE ? add_link(c, child, p) : via_future(c, child, objs[i], 1);
        if (rc) return rc;
    }
    return AU_OK;
}

int au_at_links(au_tasks *t) {
    links_ctx c;
    memset(&c, 0, sizeof c);
    c.t = t;
    int rc;
    t->nlinks = 0;
    for (uint32_t i = 0; i < t->ntasks; i++) {
        if (t->ahead && i + t->ahead < t->ntasks) au_at_tprefetch(t, t->tasks[i + t->ahead].waiter);
        /* Whether it awaits a task, once here, for the sampler. */
        t->tasks[i].waiter_task = au_at_find(t, t->tasks[i].waiter);
        c.first = t->nlinks;
        c.ndeferred = 0;
        /* Most tasks have no callback but their awaiter's wakeup. */
        if ((t->tasks[i].cb0 || t->tasks[i].cbs) &&
            (rc = child_callbacks(&c, i, t->tasks[i].cb0, t->tasks[i].cbs)))
            return rc;
        /* Frame slots only for a child that its futures and groups gave
         * no holder: see S2 above. */
        if (t->nlinks == c.first)
            for (uint32_t k = 0; k < c.ndeferred; k++)
                if ((rc = link_slots(&c, i, c.deferred[k]))) return rc;
        c.nseen = 0; /* what a callback looked into before is its own (one_callback) */
        if (au_pyoff_present(t->priv.fut_awaited_by) && (rc = awaited_by(&c, i))) return rc;
        if (c.ngathers && (rc = expand_gathers(&c))) return rc;
    }
    return AU_OK;
}
