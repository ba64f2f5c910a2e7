/*
 * Profiles: the stack table that many samples aggregate into.
 *
 * Three append-only tables, each found through an open-addressing hash
 * index of its own:
 *   names   every distinct frame (qualname, file, line), task name, thread
 *           and fixed note, its bytes copied once into one text arena;
 *   pool    the stacks' name indices, one run per distinct stack;
 *   stacks  one record per distinct stack: its run in the pool and count.
 * A stack seen before costs hashing and comparing only: the scratch
 * buffers, tables and arena have grown already, so adding it allocates
 * nothing (tests/profile_test.c counts this).
 *
 * Adding a sample has two phases.  The first interns every stack and
 * collects their indices; it may grow tables and fail.  The second adds
 * the weight to the counts and cannot fail.  A failure in the first
 * truncates the tables back to where they were and rebuilds the hash
 * indices, so AU_ERR_NOMEM leaves the profile as it was.
 *
 * Limits are checked before anything grows, and growth is clamped to them,
 * so memory never exceeds what the limits allow.  A stack that does not
 * fit (too many stacks, names, text or entries) is counted under one fixed
 * stack, "[dropped: profile full]", whose name, slot and entry are
 * reserved up front.
 */
#include <assert.h>
#include <string.h>

#include "asyncunwind.h"
#include "au_internal.h"
#include "au_profile.h"
#include "au_sampler.h"

#define NONE UINT32_MAX
#define DEFAULT_MAX_STACKS (1u << 18)
#define DEFAULT_MAX_NAMES (1u << 18)
#define DEFAULT_MAX_TEXT (64ull << 20)
#define DEFAULT_MAX_DEPTH 2048u
#define DEFAULT_MAX_ENTRIES (1u << 24)
/* Bounds whatever the caller asks: indices stay in uint32 and hash
 * indices (twice the table) in memory a 64-bit host can address. */
#define HARD_MAX_ENTRIES (1u << 28)
#define HARD_MAX_DEPTH (1u << 20)
#define FRAME_HINTS 1024u /* a power of two */

static const char DROPPED[] = "[dropped: profile full]";
static const char TRUNCATED[] = "[truncated]";

typedef struct name_rec {
    uint64_t id;
    uint64_t hash;
    uint64_t text_off; /* into text; file follows text */
    uint32_t text_len, file_len;
    int32_t line;
    uint8_t kind, flags, has_text, unused;
} name_rec;

typedef struct stack_rec {
    uint64_t count;
    uint64_t hash;
    uint32_t off, len; /* into pool */
} stack_rec;

/* A hash index: slots hold a table index + 1 (0 = empty), and the table's
 * record keeps the full hash, so probes compare hashes before keys. */
typedef struct hindex {
    uint32_t *slots;
    uint32_t mask; /* slots - 1; 0 when unallocated */
} hindex;

struct au_profile {
    au_allocator a;
    uint64_t allocations;
    uint32_t max_stacks, max_names, max_depth;
    uint64_t max_text;
    uint64_t max_pool; /* entries of all stacks */

    name_rec *names;
    uint32_t nnames, names_cap;
    hindex name_ix;

    char *text;
    uint64_t text_len, text_cap;

    uint32_t *pool;
    uint64_t pool_len, pool_cap;

    stack_rec *stacks;
    uint32_t nstacks, stacks_cap;
    hindex stack_ix;
    uint32_t dropped_stack; /* NONE until first used */
    uint32_t dropped_name;

    /* The last name each code location was interned as, direct-mapped by
     * (code address, line): a repeated frame then costs a compare of its
     * text instead of hashing it.  Entries are hints, always checked
     * against the name's text, so a code object freed and its address
     * reused, or a name undone by AU_ERR_NOMEM, cannot mislead. */
    struct frame_hint {
        uint64_t code_addr;
        int32_t line;
        uint32_t name; /* + 1; 0 = empty */
    } hints[FRAME_HINTS];

    /* Scratch of one au_profile_add: the entries of one stack, its name
     * indices, and the stack index of every stack of the sample.  The
     * stacks of one thread share their root side (the event loop, the
     * tasks that wait), so the previous stack's entries (prev) and, for
     * each, how many ids were built up to it (id_end) are kept: the next
     * stack starts after the prefix it shares, instead of naming the
     * whole root side again (1,000 tasks under one loop: ~10 of 13). */
    au_entry *entries, *prev;
    uint32_t entries_cap, prev_cap;
    uint32_t *ids, *id_end;
    uint32_t ids_cap, id_end_cap;
    uint32_t prev_ne; /* entries of prev whose ids are in ids; 0: none */
    uint32_t hdr_n;   /* ids before the first entry (process, thread) */
    uint32_t *hits;
    uint32_t hits_cap;

    uint64_t samples, stacks_added, dropped;
};

/* ---- hashing ------------------------------------------------------------ */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = au_mix64(h ^ w) + 0x9e3779b97f4a7c15ull;
        b += 8;
        n -= 8;
    }
    /* The tail (at most 7 bytes) and its length in the top byte, which
     * keeps "a" and "a\0" apart. */
    uint64_t w = (uint64_t)n << 56;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)b[i] << (8 * i);
    return au_mix64(h ^ w);
}

/* ---- allocation, clamped to limits -------------------------------------- */

/* Make *ptr (of *cap elements) hold `need`, growing geometrically but never
 * past `max` elements. */
static int profile_grow(au_profile *p, void **ptr, uint64_t *cap, uint64_t need, uint64_t max,
                size_t elem) {
    if (need <= *cap) return AU_OK;
    if (need > max) return AU_ERR_LIMIT;
    uint64_t ncap = *cap * 2;
    if (ncap < 64) ncap = 64;
    if (ncap < need) ncap = need;
    if (ncap > max) ncap = max;
    if (ncap > SIZE_MAX / elem) return AU_ERR_NOMEM;
    void *q = p->a.realloc(p->a.ud, *ptr, (size_t)*cap * elem, (size_t)ncap * elem);
    if (!q) return AU_ERR_NOMEM;
    p->allocations++;
    *ptr = q;
    *cap = ncap;
    return AU_OK;
}

static int grow32(au_profile *p, void **ptr, uint32_t *cap, uint64_t need, uint64_t max,
                  size_t elem) {
    uint64_t c = *cap;
    int rc = profile_grow(p, ptr, &c, need, max, elem);
    *cap = (uint32_t)c;
    return rc;
}

static void hindex_free(au_profile *p, hindex *h) {
    AU_FREE_ARRAY(&p->a, h->slots, (size_t)h->mask + 1);
    h->slots = NULL;
    h->mask = 0;
}

static void hindex_put(hindex *h, uint64_t hash, uint32_t index) {
    uint32_t i = (uint32_t)hash & h->mask;
    while (h->slots[i]) i = (i + 1) & h->mask;
    h->slots[i] = index + 1;
}

/* Make index h hold n entries with its slots at most half full, so probes
 * stay short; a table of at most `max` records never needs more than
 * 4 * max slots, which bounds the index too.  Returns 1 when it was
 * reallocated (empty: the caller refills it), 0 when it had room. */
static int hindex_reserve(au_profile *p, hindex *h, uint32_t n, int *rc) {
    uint64_t have = h->mask ? (uint64_t)h->mask + 1 : 0;
    if ((uint64_t)n * 2 <= have) return 0;
    uint64_t size = have ? have * 2 : 64;
    while (size < (uint64_t)n * 2) size *= 2;
    uint32_t *s = p->a.realloc(p->a.ud, NULL, 0, (size_t)size * sizeof *s);
    if (!s) {
        *rc = AU_ERR_NOMEM;
        return 0;
    }
    p->allocations++;
    memset(s, 0, (size_t)size * sizeof *s);
    hindex_free(p, h);
    h->slots = s;
    h->mask = (uint32_t)(size - 1);
    return 1;
}

static void rebuild_indices(au_profile *p) {
    if (p->name_ix.slots) {
        memset(p->name_ix.slots, 0, ((size_t)p->name_ix.mask + 1) * sizeof(uint32_t));
        for (uint32_t i = 0; i < p->nnames; i++) hindex_put(&p->name_ix, p->names[i].hash, i);
    }
    if (p->stack_ix.slots) {
        memset(p->stack_ix.slots, 0, ((size_t)p->stack_ix.mask + 1) * sizeof(uint32_t));
        for (uint32_t i = 0; i < p->nstacks; i++) hindex_put(&p->stack_ix, p->stacks[i].hash, i);
    }
}

/* ---- names --------------------------------------------------------------- */

/* No room for a new stack (one slot stays free for the dropped stack
 * until it exists). */
static int stacks_full(const au_profile *p) {
    return p->nstacks >= p->max_stacks - (p->dropped_stack == NONE);
}

typedef struct name_key {
    uint32_t kind, flags;
    uint64_t id; /* part of the key only where text cannot name it */
    const char *text, *file;
    uint32_t text_len, file_len;
    int32_t line;
    int has_text;
} name_key;

static uint64_t name_hash(const name_key *k) {
    uint64_t h = au_mix64(((uint64_t)k->kind << 40) ^ ((uint64_t)k->flags << 32) ^
                          (uint32_t)k->line ^ ((uint64_t)k->has_text << 48));
    h = au_mix64(h ^ k->id);
    h = hash_bytes(h, k->text, k->text_len);
    return hash_bytes(h ^ 0x5bd1e995u, k->file, k->file_len);
}

static int name_equal(const au_profile *p, const name_rec *r, const name_key *k) {
    return r->kind == k->kind && r->flags == k->flags && r->id == k->id && r->line == k->line &&
           r->has_text == (k->has_text != 0) && r->text_len == k->text_len &&
           r->file_len == k->file_len && memcmp(p->text + r->text_off, k->text, k->text_len) == 0 &&
           memcmp(p->text + r->text_off + r->text_len, k->file, k->file_len) == 0;
}

/* The index of the name k, interning it if new.  NONE when a limit is
 * reached (the stack is then dropped); *rc set on allocation failure.
 * Once the stack table is full, new names could only serve new stacks,
 * which would be dropped: they are looked up, never added. */
static uint32_t intern(au_profile *p, const name_key *k, int *rc) {
    uint64_t h = name_hash(k);
    if (p->name_ix.mask) {
        for (uint32_t i = (uint32_t)h & p->name_ix.mask;; i = (i + 1) & p->name_ix.mask) {
            uint32_t s = p->name_ix.slots[i];
            if (!s) break;
            const name_rec *r = &p->names[s - 1];
            if (r->hash == h && name_equal(p, r, k)) return s - 1;
        }
    }
    uint64_t bytes = (uint64_t)k->text_len + k->file_len;
    if (stacks_full(p)) return NONE;
    if (p->nnames >= p->max_names || p->text_len + bytes > p->max_text) return NONE;
    /* Limits were checked above, so growing fails only for want of memory. */
    if ((*rc = grow32(p, (void **)&p->names, &p->names_cap, p->nnames + 1ull, p->max_names,
                      sizeof *p->names)) != AU_OK ||
        (*rc = profile_grow(p, (void **)&p->text, &p->text_cap, p->text_len + bytes, p->max_text, 1)) !=
            AU_OK)
        return NONE;
    if (hindex_reserve(p, &p->name_ix, p->nnames + 1, rc))
        for (uint32_t i = 0; i < p->nnames; i++) hindex_put(&p->name_ix, p->names[i].hash, i);
    if (*rc != AU_OK) return NONE;
    hindex_put(&p->name_ix, h, p->nnames);
    name_rec *r = &p->names[p->nnames];
    r->id = k->id;
    r->hash = h;
    r->text_off = p->text_len;
    r->text_len = k->text_len;
    r->file_len = k->file_len;
    r->line = k->line;
    r->kind = (uint8_t)k->kind;
    r->flags = (uint8_t)k->flags;
    r->has_text = k->has_text != 0;
    r->unused = 0;
    if (k->text_len) memcpy(p->text + p->text_len, k->text, k->text_len);
    if (k->file_len) memcpy(p->text + p->text_len + k->text_len, k->file, k->file_len);
    p->text_len += bytes;
    return p->nnames++;
}

static name_key mark_key(const char *s) {
    name_key k = {AU_PNAME_MARK, 0, 0, s, "", (uint32_t)strlen(s), 0, -1, 1};
    return k;
}

static name_key thread_key(const au_sample_thread *t) {
    name_key k = {AU_PNAME_THREAD, t->native_id ? AU_PNAME_NATIVE : 0u,
                  t->native_id ? t->native_id : t->thread_id,
                  t->name ? t->name : "", "", t->name ? t->name_len : 0, 0, -1, t->name != NULL};
    return k;
}

static name_key task_key(uint32_t kind, const au_sample_task *t) {
    /* A named task is its name (tasks come and go; names repeat); an
     * unnamed one can only be told apart by its address, as dump does. */
    name_key k = {kind, 0, t->name_len ? 0 : t->id, t->name_len ? t->name : "", "",
                  t->name_len, 0, -1, 1};
    return k;
}

static name_key frame_key(const au_sample_frame *f) {
    name_key k = {AU_PNAME_FRAME, 0, 0, "", "", 0, 0, -1, 0};
    if (!f->qualname) {
        k.id = f->code_addr;
        return k;
    }
    k.text = f->qualname;
    k.text_len = f->qualname_len;
    k.file = f->filename ? f->filename : "";
    k.file_len = f->filename ? f->filename_len : 0;
    k.line = f->line < 0 ? -1 : f->line;
    k.has_text = 1;
    return k;
}

/* ---- stacks -------------------------------------------------------------- */

static uint64_t ids_hash(const uint32_t *ids, uint32_t n) {
    return hash_bytes(0x2545f4914f6cdd1dull ^ n, ids, (size_t)n * sizeof *ids);
}

/* The index of stack ids[0..n), created with count 0 if new; NONE when a
 * limit is reached. */
static uint32_t find_stack(au_profile *p, const uint32_t *ids, uint32_t n, int is_dropped,
                           int *rc) {
    uint64_t h = ids_hash(ids, n);
    if (p->stack_ix.mask) {
        for (uint32_t i = (uint32_t)h & p->stack_ix.mask;; i = (i + 1) & p->stack_ix.mask) {
            uint32_t s = p->stack_ix.slots[i];
            if (!s) break;
            const stack_rec *r = &p->stacks[s - 1];
            if (r->hash == h && r->len == n &&
                memcmp(p->pool + r->off, ids, (size_t)n * sizeof *ids) == 0)
                return s - 1;
        }
    }
    /* One slot stays free for the dropped stack until it exists. */
    uint32_t room = p->max_stacks - (p->dropped_stack == NONE && !is_dropped);
    if (p->nstacks >= room) return NONE;
    if (p->pool_len + n > p->max_pool - (p->dropped_stack == NONE && !is_dropped)) return NONE;
    if ((*rc = grow32(p, (void **)&p->stacks, &p->stacks_cap, p->nstacks + 1ull, p->max_stacks,
                      sizeof *p->stacks)) != AU_OK ||
        (*rc = profile_grow(p, (void **)&p->pool, &p->pool_cap, p->pool_len + n, p->max_pool,
                    sizeof *p->pool)) != AU_OK)
        return NONE;
    if (hindex_reserve(p, &p->stack_ix, p->nstacks + 1, rc))
        for (uint32_t i = 0; i < p->nstacks; i++) hindex_put(&p->stack_ix, p->stacks[i].hash, i);
    if (*rc != AU_OK) return NONE;
    hindex_put(&p->stack_ix, h, p->nstacks);
    stack_rec *r = &p->stacks[p->nstacks];
    r->count = 0;
    r->hash = h;
    r->off = (uint32_t)p->pool_len;
    r->len = n;
    memcpy(p->pool + p->pool_len, ids, (size_t)n * sizeof *ids);
    p->pool_len += n;
    return p->nstacks++;
}

static uint32_t dropped_stack(au_profile *p, int *rc) {
    if (p->dropped_stack != NONE) return p->dropped_stack;
    /* Its room was kept free by find_stack's check. */
    uint32_t id = p->dropped_name;
    uint32_t s = find_stack(p, &id, 1, 1, rc);
    if (s != NONE) p->dropped_stack = s;
    return s;
}

/* ---- adding a sample ------------------------------------------------------ */

static int reserve_ids(au_profile *p, uint64_t n) {
    return grow32(p, (void **)&p->ids, &p->ids_cap, n, HARD_MAX_DEPTH + 4ull, sizeof *p->ids);
}

/* The name of a frame with a known qualname: its hint when the hint's
 * text matches, else interned (and hinted). */
static uint32_t intern_frame(au_profile *p, const au_sample_frame *f, int *rc) {
    struct frame_hint *h =
        &p->hints[au_mix64(f->code_addr ^ (uint64_t)(uint32_t)f->line << 48) & (FRAME_HINTS - 1)];
    uint32_t flen = f->filename ? f->filename_len : 0;
    int32_t line = f->line < 0 ? -1 : f->line;
    if (h->name && h->code_addr == f->code_addr && h->line == line && h->name - 1 < p->nnames) {
        const name_rec *r = &p->names[h->name - 1];
        if (r->kind == AU_PNAME_FRAME && r->has_text && r->line == line && r->id == 0 &&
            r->text_len == f->qualname_len && r->file_len == flen &&
            memcmp(p->text + r->text_off, f->qualname, f->qualname_len) == 0 &&
            (!flen || memcmp(p->text + r->text_off + r->text_len, f->filename, flen) == 0))
            return h->name - 1;
    }
    name_key k = frame_key(f);
    uint32_t id = intern(p, &k, rc);
    if (id != NONE) {
        h->code_addr = f->code_addr;
        h->line = line;
        h->name = id + 1;
    }
    return id;
}

/* Append name k to the stack being built; 0 when a limit was hit. */
static int push(au_profile *p, uint32_t *n, const name_key *k, int *rc) {
    uint32_t id = intern(p, k, rc);
    if (id == NONE) return 0;
    p->ids[(*n)++] = id;
    return 1;
}

/* Intern the names of entries e[0..ne) under thread t into p->ids, in
 * the order dump's collapsed form prints them (render.c): the process
 * (AU_PROFILE_PROCESS), the thread, a partial-stack note (what was not
 * read is the thread's oldest frames, so the note goes on the root side
 * and a profile gathers such stacks under it), its frames, the tasks and
 * their frames.  Returns the length, or 0 when a limit was hit.
 * With `from` > 0, p->ids already holds the ids of e[0..from) (the prefix
 * this stack shares with the previous one of the same thread, whose
 * p->id_end is kept); with e NULL there are no entries and no id_end.
 * Within one sample an entry always names the same frame or task, so a
 * shared entry has the same id. */
static uint32_t build(au_profile *p, const au_sample *smp, const au_sample_thread *t,
                      uint32_t flags, const au_entry *e, uint32_t ne, uint32_t from, int *rc) {
    uint32_t n = 0;
    const char *note = au_partial_note(t->flags);
    name_key k;
    if (from) {
        assert(e && from <= ne && p->hdr_n);
        n = p->id_end[from - 1];
    } else if (e && p->hdr_n) {
        n = p->hdr_n; /* the same thread's header, built for the stack before */
    } else {
        k = (name_key){AU_PNAME_PROCESS, 0, (uint64_t)(uint32_t)smp->pid, "", "", 0, 0, -1, 0};
        if ((flags & AU_PROFILE_PROCESS) && !push(p, &n, &k, rc)) return 0;
        k = thread_key(t);
        if (!push(p, &n, &k, rc)) return 0;
        if (note && (k = mark_key(note), !push(p, &n, &k, rc))) return 0;
        if (e) p->hdr_n = n;
    }
    /* The last frame interned: a recursion repeats it, and within one
     * sample the same code, line and name bytes are the same name. */
    const au_sample_frame *last = NULL;
    uint32_t last_id = NONE;
    for (uint32_t i = from; i < ne; i++) {
        const au_entry *x = &e[i];
        p->id_end[i] = n; /* an entry skipped below adds no id */
        switch (x->kind) {
        case AU_ENTRY_FRAME:
            if (x->id >= smp->nframes) continue;
            if (smp->frames[x->id].qualname) {
                const au_sample_frame *f = &smp->frames[x->id];
                if (!last || f->code_addr != last->code_addr || f->line != last->line ||
                    f->qualname != last->qualname || f->qualname_len != last->qualname_len ||
                    f->filename != last->filename || f->filename_len != last->filename_len) {
                    last_id = intern_frame(p, f, rc);
                    if (last_id == NONE) return 0;
                    last = f;
                }
                p->ids[n++] = last_id;
                p->id_end[i] = n;
                continue;
            }
            k = frame_key(&smp->frames[x->id]);
            break;
        case AU_ENTRY_TASK:
        case AU_ENTRY_CYCLE:
            if (x->task >= smp->ntasks) continue;
            k = task_key(x->kind == AU_ENTRY_TASK ? AU_PNAME_TASK : AU_PNAME_CYCLE,
                         &smp->tasks[x->task]);
            break;
        default:
            k = mark_key(TRUNCATED);
            break;
        }
        if (!push(p, &n, &k, rc)) return 0;
        p->id_end[i] = n;
    }
    return n;
}

/* Entries of sample stack k, at most max_depth of them (root side kept). */
static int fetch_entries(au_profile *p, au_sampler *s, uint32_t k, uint32_t *ne) {
    uint64_t n = au_sample_stack_entries(s, k, NULL, 0);
    uint32_t cap = n < p->max_depth ? (uint32_t)n : p->max_depth;
    int rc = grow32(p, (void **)&p->entries, &p->entries_cap, cap, HARD_MAX_DEPTH,
                    sizeof *p->entries);
    /* prev as large as entries: the two are swapped after every stack. */
    if (rc == AU_OK)
        rc = grow32(p, (void **)&p->prev, &p->prev_cap, cap, HARD_MAX_DEPTH, sizeof *p->prev);
    if (rc == AU_OK)
        rc = grow32(p, (void **)&p->id_end, &p->id_end_cap, cap, HARD_MAX_DEPTH, sizeof *p->id_end);
    if (rc != AU_OK) return rc;
    /* + thread root, partial note, and slack */
    if ((rc = reserve_ids(p, (uint64_t)cap + 4)) != AU_OK) return rc;
    n = cap ? au_sample_stack_entries(s, k, p->entries, cap) : 0;
    *ne = n < cap ? (uint32_t)n : cap;
    return AU_OK;
}

/* Record one stack's index in p->hits. */
static int hit(au_profile *p, uint32_t *nhits, uint32_t stack) {
    int rc = grow32(p, (void **)&p->hits, &p->hits_cap, *nhits + 1ull, UINT32_MAX,
                    sizeof *p->hits);
    if (rc != AU_OK) return rc;
    p->hits[(*nhits)++] = stack;
    return AU_OK;
}

/* Count the stack in p->ids[0..n) (n 0: a limit was hit: dropped). */
static int count_stack(au_profile *p, uint32_t n, uint32_t *nhits) {
    int rc = AU_OK;
    uint32_t st = n ? find_stack(p, p->ids, n, 0, &rc) : NONE;
    if (rc != AU_OK) return rc;
    if (st == NONE) {
        st = dropped_stack(p, &rc);
        if (rc != AU_OK) return rc;
        if (st == NONE) return AU_ERR_NOMEM; /* unreachable: its room is kept */
    }
    return hit(p, nhits, st);
}

#define ON_CPU_STACK (AU_STACK_RUNNING | AU_STACK_THREAD_ONLY)

/* In cpu mode, which stacks of thread t count: the running task's or the
 * bare thread's.  When the thread is on CPU between tasks (the event
 * loop's own code), none is, and the loop's frames (the root side every
 * stack shares, up to the first task) count once instead, from its first
 * stack.  Returns 1 to keep stack k whole, -1 for its root side only, 0
 * to skip it. */
static int cpu_keeps(const au_sample *smp, const au_sample_thread *t, uint32_t k, int any_running) {
    if (smp->stacks[k].flags & ON_CPU_STACK) return 1;
    return !any_running && k == t->first_stack ? -1 : 0;
}

static int add_thread(au_profile *p, au_sampler *s, const au_sample *smp, uint32_t ti,
                      uint32_t flags, uint32_t *nhits) {
    const au_sample_thread *t = &smp->threads[ti];
    int rc = AU_OK;
    p->prev_ne = p->hdr_n = 0; /* nothing built yet for this thread */
    if ((flags & AU_PROFILE_CPU) && !(t->flags & AU_THREAD_ON_CPU)) return AU_OK;
    if (t->nstacks == 0) { /* a thread without Python frames, as dump shows it */
        if ((rc = reserve_ids(p, 4)) != AU_OK) return rc;
        uint32_t n = build(p, smp, t, flags, NULL, 0, 0, &rc);
        return rc != AU_OK ? rc : count_stack(p, n, nhits);
    }
    if (t->first_stack > smp->nstacks || t->nstacks > smp->nstacks - t->first_stack)
        return AU_ERR_ARG;
    int any_running = 0;
    for (uint32_t k = t->first_stack; (flags & AU_PROFILE_CPU) && k < t->first_stack + t->nstacks; k++)
        any_running |= (smp->stacks[k].flags & ON_CPU_STACK) != 0;
    for (uint32_t k = t->first_stack; k < t->first_stack + t->nstacks; k++) {
        int keep = (flags & AU_PROFILE_CPU) ? cpu_keeps(smp, t, k, any_running) : 1;
        if (!keep) continue;
        uint32_t ne = 0;
        if ((rc = fetch_entries(p, s, k, &ne)) != AU_OK) return rc;
        if (keep < 0) {
            uint32_t i = 0;
            while (i < ne && p->entries[i].kind == AU_ENTRY_FRAME) i++;
            ne = i;
        }
        /* The prefix shared with the thread's previous stack (prev). */
        uint32_t from = 0;
        while (from < ne && from < p->prev_ne && p->entries[from].id == p->prev[from].id &&
               p->entries[from].kind == p->prev[from].kind &&
               p->entries[from].task == p->prev[from].task)
            from++;
        uint32_t n = build(p, smp, t, flags, p->entries, ne, from, &rc);
        if (rc != AU_OK) return rc;
        /* This stack is the next one's prev: swap the two buffers. */
        au_entry *e = p->entries;
        uint32_t ecap = p->entries_cap;
        p->entries = p->prev;
        p->entries_cap = p->prev_cap;
        p->prev = e;
        p->prev_cap = ecap;
        p->prev_ne = n ? ne : 0; /* a stack cut short by a limit leaves no prefix */
        if ((rc = count_stack(p, n, nhits)) != AU_OK) return rc;
    }
    return AU_OK;
}

int au_profile_add(au_profile *p, au_sampler *s, const au_sample *smp, uint32_t flags,
                   uint64_t weight) {
    if (!p || !s || !smp || (smp->nthreads && !smp->threads) ||
        flags & ~(AU_PROFILE_CPU | AU_PROFILE_PROCESS))
        return AU_ERR_ARG;

    uint32_t nnames = p->nnames, nstacks = p->nstacks, dstack = p->dropped_stack;
    uint64_t text_len = p->text_len, pool_len = p->pool_len;
    uint32_t nhits = 0;
    int rc = AU_OK;
    for (uint32_t t = 0; t < smp->nthreads && rc == AU_OK; t++)
        rc = add_thread(p, s, smp, t, flags, &nhits);
    if (rc != AU_OK) {
        p->nnames = nnames;
        p->nstacks = nstacks;
        p->dropped_stack = dstack;
        p->text_len = text_len;
        p->pool_len = pool_len;
        rebuild_indices(p);
        return rc;
    }
    /* Phase two: nothing below can fail. */
    uint32_t dropped = 0;
    for (uint32_t i = 0; i < nhits; i++) {
        p->stacks[p->hits[i]].count += weight;
        if (p->hits[i] == p->dropped_stack) dropped++;
    }
    p->samples++;
    p->stacks_added += nhits;
    p->dropped += dropped;
    return AU_OK;
}

/* ---- life cycle and access ------------------------------------------------ */

static uint32_t limit32(uint32_t v, uint32_t def, uint32_t lo, uint32_t hi) {
    if (!v) v = def;
    return v < lo ? lo : v > hi ? hi : v;
}

int au_profile_new(const au_allocator *alloc, const au_profile_limits *lim, au_profile **out) {
    if (!out) return AU_ERR_ARG;
    *out = NULL;
    au_allocator a;
    au_profile *p = au_alloc_zeroed(alloc, sizeof *p, &a);
    if (!p) return AU_ERR_NOMEM;
    p->a = a;
    p->allocations = 1;
    au_profile_limits l;
    memset(&l, 0, sizeof l);
    if (lim) l = *lim;
    /* Room is kept for the dropped stack and its name, hence the minimum
     * of 2. */
    p->max_stacks = limit32(l.max_stacks, DEFAULT_MAX_STACKS, 2, HARD_MAX_ENTRIES);
    p->max_names = limit32(l.max_names, DEFAULT_MAX_NAMES, 2, HARD_MAX_ENTRIES);
    p->max_depth = limit32(l.max_depth, DEFAULT_MAX_DEPTH, 1, HARD_MAX_DEPTH);
    p->max_text = l.max_text_bytes ? l.max_text_bytes : DEFAULT_MAX_TEXT;
    /* Room for the dropped stack (one entry) at least; a pool larger than
     * every stack at its deepest could never fill. */
    p->max_pool = limit32(l.max_entries, DEFAULT_MAX_ENTRIES, 1, UINT32_MAX);
    if (p->max_pool > (uint64_t)p->max_stacks * (p->max_depth + 2))
        p->max_pool = (uint64_t)p->max_stacks * (p->max_depth + 2);
    if (p->max_text < sizeof DROPPED) p->max_text = sizeof DROPPED;
    p->dropped_stack = NONE;
    int rc = AU_OK;
    name_key k = mark_key(DROPPED);
    p->dropped_name = intern(p, &k, &rc);
    if (p->dropped_name == NONE) {
        au_profile_free(p);
        return AU_ERR_NOMEM;
    }
    *out = p;
    return AU_OK;
}

void au_profile_free(au_profile *p) {
    if (!p) return;
    au_allocator a = p->a;
    AU_FREE_ARRAY(&a, p->names, p->names_cap);
    AU_FREE_ARRAY(&a, p->text, p->text_cap);
    AU_FREE_ARRAY(&a, p->pool, p->pool_cap);
    AU_FREE_ARRAY(&a, p->stacks, p->stacks_cap);
    AU_FREE_ARRAY(&a, p->entries, p->entries_cap);
    AU_FREE_ARRAY(&a, p->prev, p->prev_cap);
    AU_FREE_ARRAY(&a, p->id_end, p->id_end_cap);
    AU_FREE_ARRAY(&a, p->ids, p->ids_cap);
    AU_FREE_ARRAY(&a, p->hits, p->hits_cap);
    hindex_free(p, &p->name_ix);
    hindex_free(p, &p->stack_ix);
    a.realloc(a.ud, p, sizeof *p, 0);
}

void au_profile_get_stats(const au_profile *p, au_profile_stats *st) {
    if (!st) return;
    memset(st, 0, sizeof *st);
    if (!p) return;
    st->samples = p->samples;
    st->stacks_added = p->stacks_added;
    st->dropped = p->dropped;
    st->stacks = p->nstacks;
    st->names = p->nnames;
    st->text_bytes = p->text_len;
    st->heap_bytes = sizeof *p + (uint64_t)p->names_cap * sizeof *p->names + p->text_cap +
                     p->pool_cap * sizeof *p->pool +
                     (uint64_t)p->stacks_cap * sizeof *p->stacks +
                     (uint64_t)p->entries_cap * sizeof *p->entries +
                     (uint64_t)p->prev_cap * sizeof *p->prev +
                     (uint64_t)p->id_end_cap * sizeof *p->id_end +
                     (uint64_t)p->ids_cap * sizeof *p->ids +
                     (uint64_t)p->hits_cap * sizeof *p->hits +
                     (p->name_ix.mask ? ((uint64_t)p->name_ix.mask + 1) * 4 : 0) +
                     (p->stack_ix.mask ? ((uint64_t)p->stack_ix.mask + 1) * 4 : 0);
}

au_allocator au_profile_alloc(const au_profile *p) { return p->a; }

uint32_t au_profile_nnames(const au_profile *p) { return p ? p->nnames : 0; }

void au_profile_name(const au_profile *p, uint32_t i, au_pname *out) {
    memset(out, 0, sizeof *out);
    if (!p || i >= p->nnames) return;
    const name_rec *r = &p->names[i];
    out->kind = r->kind;
    out->flags = r->flags;
    out->id = r->id;
    out->text = r->has_text ? p->text + r->text_off : NULL;
    out->text_len = r->text_len;
    out->file = r->kind == AU_PNAME_FRAME && r->has_text ? p->text + r->text_off + r->text_len
                                                         : NULL;
    out->file_len = r->file_len;
    out->line = r->line;
}

uint32_t au_profile_nstacks(const au_profile *p) { return p ? p->nstacks : 0; }

uint64_t au_profile_stack(const au_profile *p, uint32_t i, const uint32_t **names, uint32_t *n) {
    if (!p || i >= p->nstacks) {
        *names = NULL;
        *n = 0;
        return 0;
    }
    const stack_rec *r = &p->stacks[i];
    *names = p->pool + r->off;
    *n = r->len;
    return r->count;
}

uint64_t au_profile_allocations(const au_profile *p) { return p ? p->allocations : 0; }
