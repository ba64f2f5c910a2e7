/*
 * The asyncio model's shared context: what pytasks.c, pycoro.c, pylinks.c
 * and pyagent.c read and fill during one sample.  Internal.
 */
#ifndef ASYNCUNWIND_ASYNCCTX_H
#define ASYNCUNWIND_ASYNCCTX_H

#include <stdint.h>
#include <string.h>

#include "au_agent_region.h"
#include "au_bytes.h"
#include "au_pyobjects.h"
#include "au_pyprivate.h"
#include "au_pytasks.h"

#define AU_AT_NONE UINT32_MAX
/* Local slots of a coroutine frame compared with what callbacks hold
 * (pylinks.c): `self` and the first locals and cells. */
#define AU_AT_LOCAL_SLOTS 4u

/* pycoro.c: a chain being followed, and a frame found. */
typedef struct au_at_cursor {
    uint32_t task;
    uint32_t depth; /* frames so far */
    uint64_t obj;   /* the object to look at next */
} au_at_cursor;

typedef struct au_at_found {
    uint32_t task, depth;
    au_rawframe f;
    uint64_t gen;
} au_at_found;

/* pylinks.c: an (object, task) pair, sorted by object for bisection. */
typedef struct au_at_pair {
    uint64_t key;
    uint64_t task;
} au_at_pair;

/* (key, task) pairs found by key, open addressing over the distinct keys
 * (pylinks.c): head[h] is 1 + the first pair of a key, next[i] 1 + the
 * pair after pair i with the same key (0 ends). */
typedef struct au_at_index {
    uint32_t *head, *next;
    uint32_t head_cap, next_cap;
    uint32_t mask;
} au_at_index;

/* pylinks.c: code objects known to come from asyncio's own files (or not),
 * by address and the co_filename pointer they were judged by. */
#define AU_AT_CODE_CACHE 64u
typedef struct au_at_code {
    uint64_t code, filename;
    uint8_t asyncio;
} au_at_code;

/* A slot of the task table.  Key, index and stamp side by side: at
 * 10,000 tasks the table outgrows the cache, and a probe then costs one
 * miss instead of one per array. */
typedef struct au_at_tslot {
    uint64_t key;   /* task address */
    uint32_t val;   /* index in the sample's tasks */
    uint32_t stamp; /* live when equal to tstamp_now */
} au_at_tslot;

/* Where a sample's tasks came from, cached across samples (3.9-3.13):
 * found once through sys.modules, revalidated by type every sample. */
typedef struct au_anchors {
    uint64_t interp;       /* the main interpreter */
    uint64_t modules;      /* its sys.modules dict */
    uint64_t modules_used; /* ma_used when the search last failed */
    uint64_t weakset_data; /* the set of weakrefs behind the tasks WeakSet */
    uint64_t eager_set;    /* 3.12-3.13: the set of eager tasks */
    uint64_t threads_active; /* threading._active: ident -> Thread */
    uint64_t threads_used;   /* sys.modules' ma_used when it was searched */
    uint64_t set_type;     /* type of both sets, to revalidate them */
    uint32_t fails;        /* consecutive failed searches */
} au_anchors;

struct au_tasks {
    au_allocator alloc;
    au_pyreader *reader;     /* layout and code cache */
    au_py_offsets off;       /* the reader's layout, then 3.14+'s
                                _AsyncioDebug values over it */
    au_memsrc *mem;
    au_view *view;
    au_objects *objects;
    au_objlayout layout;
    const au_py_private *table; /* the compiled layout */
    au_py_private priv;      /* this target's: the table, then 3.14+'s
                                _AsyncioDebug values over it */
    au_tasks_limits lim;
    au_anchors anchors;
    uint64_t allocations;
    uint32_t phase;          /* au_at_phase: a store per step, for observers */

    /* The sample being built. */
    au_tasks_result *out;
    au_atask *tasks;
    uint32_t ntasks, tasks_cap;
    au_rawframe *raw;        /* coroutine frames as read */
    uint64_t *raw_gen;       /* and the generator each belongs to */
    au_pyframe *frames;      /* resolved */
    uint32_t nraw, raw_cap, raw_gen_cap, frames_cap;
    au_link *links;
    uint32_t nlinks, links_cap;
    uint32_t *link_tasks;    /* per link: child and parent task indices */
    uint32_t link_tasks_cap;
    uint64_t *thread_loop;
    uint32_t thread_loop_cap;
    const char **thread_name;
    uint32_t *thread_name_len;
    uint32_t thread_name_cap, thread_name_len_cap;
    au_dict_item *items;     /* a dict's items */
    uint32_t items_cap;
    uint64_t *scratch;       /* addresses, per level */
    uint32_t scratch_cap;
    au_range *ranges;        /* a level's reads */
    uint32_t ranges_cap;
    au_at_cursor *cur;       /* pycoro.c */
    au_at_found *found;
    uint32_t cur_cap, found_cap;
    au_at_pair *waiters, *slots; /* pylinks.c */
    uint32_t waiters_cap, slots_cap;
    au_at_index waiters_ix, slots_ix; /* pylinks.c: the pairs by key */
    uint32_t *slot_hits;     /* pylinks.c: tasks found by a scan of slots */
    uint32_t slot_hits_cap;
    uint64_t *memo_pool; /* pylinks.c: remembered callback outcomes */
    uint32_t memo_pool_cap;
    au_at_code codes[AU_AT_CODE_CACHE];
    uint32_t codes_next;
    uint32_t ahead;          /* AU_AT_AHEAD when hints pay this sample, or 0 */
    uint32_t prev_ntasks;    /* tasks the previous sample kept (their
                                addresses guide a list walk's hints) */
    uint8_t window[1024];     /* an object's bytes, when they cross a page */
    uint64_t *agent_items;   /* pyagent.c: the records list's items */
    au_agent_pair *agent_pairs;
    uint32_t agent_items_cap, agent_pairs_cap;

    /* Task address -> index, open addressing; slots stamped per sample. */
    au_at_tslot *ttab;
    uint32_t ttab_cap;
    uint32_t ttab_slots, tstamp_now; /* slots in use: a power of two */
};

/* A window on an object's first bytes, read with one page lookup (the
 * view's pointer, or a copy when the object crosses a page).  Decoding is
 * done from it before anything else is read: a read that fetches a page
 * may move the view's pages, and the pointer with them. */
typedef struct au_win {
    uint64_t base;
    uint32_t len;
    const uint8_t *p; /* NULL: no window, read through the view */
} au_win;

/* A span longer than t->window (offsets the target's _AsyncioDebug
 * published, say) gets no window: its fields are read one by one. */
static inline void au_win_open(au_tasks *t, au_win *w, uint64_t addr, uint32_t len) {
    w->base = addr;
    w->len = len;
    w->p = len <= sizeof t->window ? au_obj_bytes(t->objects, addr, len, t->window) : NULL;
}

/* n bytes at addr, from the window when they are in it. */
static inline int au_win_read(au_tasks *t, const au_win *w, uint64_t addr, void *out, uint32_t n) {
    if (w->p && addr >= w->base && addr - w->base <= w->len && n <= w->len - (addr - w->base)) {
        memcpy(out, w->p + (addr - w->base), n);
        return AU_OK;
    }
    return au_view_read(t->view, addr, out, n);
}

static inline uint64_t au_win_ptr(au_tasks *t, const au_win *w, uint64_t addr) {
    uint8_t b[8];
    return au_win_read(t, w, addr, b, 8) == AU_OK ? au_rd64(b) : 0;
}

/* The kind of the object the window is on, from its type pointer at
 * type_field.  A type not met before is named by reading it, and that
 * read may move the view's pages and the window's pointer with them
 * (ASan found the window read after such a move): then the window is
 * opened again, on pages the view already holds.  A window copied into
 * t->window is opened again whatever happened: naming may use it. */
static inline au_okind au_win_type_kind(au_tasks *t, au_win *w, uint64_t type_field) {
    uint32_t moves = au_view_moves(t->view);
    au_okind k = au_type_kind(t->objects, au_win_ptr(t, w, type_field));
    if (w->p && (w->p == t->window || au_view_moves(t->view) != moves))
        au_win_open(t, w, w->base, w->len);
    return k;
}


/* How many objects ahead of the one being decoded a level's loop hints
 * to the view (au_view_prefetch): enough for several misses to be in
 * flight, few enough that the lines are still cached when reached. */
#define AU_AT_AHEAD 8u
/* Hints pay only when a sample's pages are far beyond the CPU's cache:
 * below this many pages prefetched (4 MiB), each hint's page lookup
 * costs more than the miss it hides (task_bench: 5% slower at 1,000
 * tasks with hints, 10-20% faster at 10,000). */
#define AU_AT_HINT_PAGES 1024u

/* Hint that the object at addr (0: none) is read soon. */
static inline void au_at_prefetch(au_tasks *t, uint64_t addr, uint32_t len) {
    if (addr) au_view_prefetch(t->view, addr, len);
}

/* Hint that the task table is about to be probed for addr. */
void au_at_tprefetch(const au_tasks *t, uint64_t addr);

/* Grow helper counting allocations. */
int au_at_grow(au_tasks *t, void *pptr, uint32_t *cap, size_t need, size_t elem);

/* The index of the task at addr in this sample, or AU_AT_NONE. */
uint32_t au_at_find(const au_tasks *t, uint64_t addr);

/* Ask the view for [addrs[i], addrs[i] + len) for every non-zero addrs[i],
 * in one batch. */
int au_at_want(au_tasks *t, const uint64_t *addrs, uint32_t n, uint32_t len);

/* pycoro.c: every task's coroutine chain into t->raw (and the tasks'
 * first_frame/nframes).  AU_OK or AU_ERR_NOMEM. */
int au_at_chains(au_tasks *t);

/* pylinks.c: strong links into t->links.  AU_OK or AU_ERR_NOMEM. */
int au_at_links(au_tasks *t);

/* pyagent.c: the agent's weak links into the tasks' creator fields, from
 * the records list that the region at addr names.  Returns the number of
 * links (>= 0), or AU_ERR_NOMEM; any other failure just yields none. */
int au_at_agent(au_tasks *t, uint64_t region, int pid);

#endif
