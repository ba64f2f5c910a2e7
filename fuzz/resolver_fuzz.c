/*
 * Fuzz target `resolver`: au_resolve() against docs/RESOLVER.md.
 *
 * Every input is decoded into one au_thread_sample plus resolver limits,
 * resolved by the core (one context per limits, reused across inputs) and
 * by the naive reference resolver (fuzz/ref_resolver.c), and then checked:
 *
 *   status   core status == reference status (also on the permuted copy);
 *   on AU_OK:
 *   order    stacks sorted by leaf_id, strictly ascending (no leaf twice);
 *   shape    each stack is: thread frames [0..b) (or the whole thread stack
 *            when there is no running task), then at most one TRUNCATED
 *            (iff AU_STACK_TRUNCATED_DEPTH) or CYCLE (iff AU_STACK_CYCLE)
 *            entry, then for each task a TASK marker followed by exactly
 *            that task's coroutine frames (the thread's frames [b..) for the
 *            running task in its own stack); a frame-truncated stack is a
 *            prefix of that shape ending in one TRUNCATED entry;
 *            no task twice in a stack; at most one RUNNING stack, and it is
 *            the running task R computed here independently;
 *   rule 1   every consecutive pair of TASK markers (P, C) has P = parent(C)
 *            computed here independently; the top task is a root unless the
 *            stack closed on a cycle (CYCLE names parent(top), which is in
 *            the chain) or was depth-cut (max_depth tasks, parent outside);
 *   rule 2   R, every present non-waiting task and every waiting task that
 *            is nobody's parent has a stack; any other leaf is a cycle
 *            representative (its chain closes on itself);
 *   bounds   nentries <= max_frames, total <= max_total_entries, output
 *            linear in input size x limits;
 *   cover    without any truncated stack, every present task is in a stack;
 *   stats    cycles / truncated match the flags, tasks_ignored matches;
 *   diff     identical to the reference: leaf ids, names, leaf task
 *            indices, flags, entry kinds and ids, TASK/CYCLE task indices,
 *            stats (all but allocations);
 *   warm     resolving the same input again gives a byte-identical result
 *            with 0 allocations (both stats.allocations and a counting
 *            au_allocator);
 *   perm     resolving a copy with tasks and links shuffled (PRNG seeded
 *            from the data) gives the same result up to task indices.
 * Any violation prints what failed and both results to stderr and aborts.
 *
 * ---------------------------------------------------------------------------
 * Input format.  Every byte string is valid: reads past the end yield 0.
 * Multi-byte integers are little-endian.
 *
 *   byte 0  H0  bits 0-2 max_depth          {0,1,2,3,4,7,16,100}
 *               bits 3-5 max_frames         {0,1,2,3,5,9,32,300}
 *               bits 6-7 max_tasks/max_links {0/0,0/0,3/5,40/80}
 *   byte 1  H1  bits 0-2 max_total_entries  {0,1,2,3,6,20,200,5000}
 *               bit 3    keep the library defaults for big samples
 *               bits 4-7 unused
 *           0 means the library default, except that, to keep the fuzzer
 *           fast, a sample of more than 256 tasks without H1 bit 3 gets
 *           max_total_entries 8192 and max_depth 128 in place of 0.
 *   then opcodes until the end.  Opcode byte o: op = o & 15, a = o >> 4.
 *
 *   ID  (task id, 1 byte + maybe 8):
 *     00        0 (none)
 *     01..3f    that small id (the pool: links often hit tasks)
 *     40..7f    id of the k-th most recent task, k = v & 63 (k if none)
 *     80..bf    ((v & 63) << 40) | 0x2a  (equal low bits: hash stress)
 *     c0..fd    id of task number (v - 0xc0) * ntasks / 62 (v if none)
 *     fe        UINT64_MAX
 *     ff        a raw 8-byte id follows
 *   FID (frame id, 1 byte + maybe 8):
 *     00        0
 *     01..7f    0xf000 + v
 *     80..bf    thread frame number (v & 63) % nthread (0xf000+v if none)
 *     c0..fe    ((v & 63) << 40) | 0xf000
 *     ff        a raw 8-byte frame id follows
 *   SEL (1 byte): the (SEL % ntasks)-th most recent task (no-op if none).
 *   Generated tasks get fresh ids 0x100000, 0x100040, ... and fresh frame
 *   ids 0x200000, 0x200040, ...
 *
 *   op 0,11,15 TASK    FL ID(id) ID(awaits) ID(creator) FID x (FL >> 3)
 *                      FL bit 0: AU_TASK_RUNNING; bits 1-2: name length
 *                      (name bytes point into the input); bits 3-7: frames
 *   op 1,12  LINK      (a & 7) + 1 times: ID(child) ID(parent)
 *   op 2,14  THREAD    a + 1 times FID: appended to the thread stack
 *   N8 (generator size): N = 1 + N8 % 16 if N8 < 0xf0, else
 *                      (N8 - 0xef) << (4 + (a & 3)), i.e. 16 .. 2048.
 *   op 3     CHAIN     N8 SHAPE [ID(top) if SHAPE & 4]
 *                      N fresh tasks with a >> 2
 *                      frames each, root first; each links to the next:
 *                      SHAPE & 3: 0 awaits, 1 strong link, 2 creator,
 *                      3 mixed (i % 3).  4: attach the root under top
 *                      (top's awaits if top is a task and kind is 0, else
 *                      strong link; creator for kind 2).  8: close a cycle
 *                      deepest -> root.  16: creator also set along the
 *                      chain.  32: deepest task RUNNING.  64: ids descend
 *                      along the chain.  128: append the deepest task's
 *                      frames (+1 fresh sync frame) to the thread stack.
 *   op 4     FANOUT    N8 SHAPE ID(P) [ID(Q) if SHAPE & 32] [FID if & 128]
 *                      N fresh children, a >> 2
 *                      frames each.  SHAPE & 3: 0 strong link child->P,
 *                      1 creator P, 2 child awaits P (fan-in), 3 mixed.
 *                      4: creator P as well.  8: the task P (if any)
 *                      awaits the first child.  16: children share ids in
 *                      pairs (duplicates).  32: also a strong link to Q.
 *                      64: children RUNNING.  128: every child's first
 *                      frame is FID (ties for the running task).
 *   op 5,13  SET       SEL ID(v): field a & 3 of that task: 0 awaits = v,
 *                      1 creator = v, 2 id = v, 3 toggle RUNNING (v unused)
 *   op 6     SPLICE    SEL K: flag that task RUNNING; a & 1: append its
 *                      frames (at least one) and a >> 1 fresh sync frames
 *                      to the thread stack; else its first frame becomes
 *                      thread frame K % nthread.
 *   op 7     DUP       SEL: append a copy of that task (same id).
 *   op 8     BULK      N8, then N8 + 1 links of 2 bytes: small ids b & 63.
 *   op 9     POOL      4 * (a + 1) tasks with ids 1, 2, ... (skipping ids
 *                      already used), one byte B each: awaits = B & 63,
 *                      creator = id - 1 if B & 64, RUNNING if B & 128;
 *                      frame 0xf000 + id.
 *   op 10    NULL      bit (a & 3) of the NULL mode: 1 thread frames, 2
 *                      tasks, 4 links, 8 the last task with frames gets a
 *                      NULL frame array (AU_ERR_ARG when the count is > 0).
 * Caps: 4096 tasks, 8192 links, 256 thread frames, 64 frames per task,
 * 32768 coroutine frames in all; what does not fit is dropped.
 *
 * Example: 00 00 | 02 05 | 00 07 01 00 00 05 — a thread stack [0xf005] and
 * task 1 (running, name 3 bytes, no links) whose outermost frame is 0xf005.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncunwind.h"
#include "fuzz/ref_resolver.h"
#include "fuzz/run_from_workspace.h"

/* The checking code below is not what the fuzzer should explore, and its
 * comparison tracing would cost a quarter of the run time: no coverage
 * instrumentation for it (the core and the decoder keep theirs). */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize_coverage)
#define NO_COV __attribute__((no_sanitize_coverage))
#endif
#endif
#ifndef NO_COV
#define NO_COV
#endif

#define NONE UINT32_MAX
#define CAP_TASKS 4096u
#define CAP_LINKS 8192u
#define CAP_THREAD 256u
#define CAP_TASK_FRAMES 64u
#define CAP_POOL 32768u
#define BIG_TASKS 256u  /* above this many tasks (unless H1 bit 3) ... */
#define BIG_TOTAL 8192u /* ... the default max_total_entries becomes this */
#define BIG_DEPTH 128u  /* ... and the default max_depth this */

/* ========================================================================
 * Decoding
 * ===================================================================== */

typedef struct reader {
    const uint8_t *p;
    size_t n, pos;
} reader;

static uint8_t rd8(reader *r) { return r->pos < r->n ? r->p[r->pos++] : 0; }

static uint64_t rd64(reader *r) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)rd8(r) << (8 * i);
    return v;
}

typedef struct sample {
    au_task tasks[CAP_TASKS];
    uint64_t *wframes[CAP_TASKS]; /* writable view of tasks[i].frames */
    au_link links[CAP_LINKS];
    uint64_t thread[CAP_THREAD];
    uint64_t pool[CAP_POOL];
    uint32_t ntasks, nlinks, nthread, npool;
    uint64_t fresh_task, fresh_frame;
    unsigned null_mode;
    au_resolver_limits limits;
    unsigned limits_key;
} sample;

static sample S;                     /* decoded input */
static au_task perm_tasks[CAP_TASKS]; /* shuffled copies */
static au_link perm_links[CAP_LINKS];

static uint64_t rd_id(reader *r) {
    uint8_t v = rd8(r);
    if (v < 0x40) return v;
    if (v < 0x80) {
        uint32_t k = v & 63u;
        return k < S.ntasks ? S.tasks[S.ntasks - 1 - k].id : k;
    }
    if (v < 0xc0) return ((uint64_t)(v & 63u) << 40) | 0x2a;
    if (v < 0xfe) {
        if (!S.ntasks) return v;
        return S.tasks[(uint64_t)(v - 0xc0) * S.ntasks / 62].id;
    }
    if (v == 0xfe) return UINT64_MAX;
    return rd64(r);
}

static uint64_t rd_fid(reader *r) {
    uint8_t v = rd8(r);
    if (v == 0) return 0;
    if (v < 0x80) return 0xf000 + v;
    if (v < 0xc0)
        return S.nthread ? S.thread[(v & 63u) % S.nthread] : 0xf000u + v;
    if (v < 0xff) return ((uint64_t)(v & 63u) << 40) | 0xf000;
    return rd64(r);
}

static au_task *sel_task(reader *r) {
    uint8_t v = rd8(r);
    if (!S.ntasks) return NULL;
    return &S.tasks[S.ntasks - 1 - v % S.ntasks];
}

static uint64_t fresh_task_id(void) {
    uint64_t id = S.fresh_task;
    S.fresh_task += 0x40;
    return id;
}

static uint64_t fresh_frame_id(void) {
    uint64_t id = S.fresh_frame;
    S.fresh_frame += 0x40;
    return id;
}

/* A new task with no fields set, its frame array at the end of the pool;
 * NULL when full. */
static au_task *new_task(uint64_t id) {
    if (S.ntasks >= CAP_TASKS) return NULL;
    au_task *t = &S.tasks[S.ntasks];
    memset(t, 0, sizeof *t);
    t->id = id;
    t->frames = &S.pool[S.npool];
    S.wframes[S.ntasks] = &S.pool[S.npool];
    S.ntasks++;
    return t;
}

/* Appends a frame to the task just created by new_task. */
static void add_frame(au_task *t, uint64_t fid) {
    if (t->nframes >= CAP_TASK_FRAMES || S.npool >= CAP_POOL) return;
    S.pool[S.npool++] = fid;
    t->nframes++;
}

static uint64_t *writable_frames(const au_task *t) {
    return S.wframes[t - S.tasks];
}

/* Gives an existing task a first frame if it has none (a fresh array). */
static void ensure_frame(au_task *t) {
    if (t->nframes || S.npool >= CAP_POOL) return;
    S.pool[S.npool] = fresh_frame_id();
    t->frames = &S.pool[S.npool];
    S.wframes[t - S.tasks] = &S.pool[S.npool];
    S.npool++;
    t->nframes = 1;
}

static void add_link(uint64_t child, uint64_t parent) {
    if (S.nlinks >= CAP_LINKS) return;
    S.links[S.nlinks].child = child;
    S.links[S.nlinks].parent = parent;
    S.nlinks++;
}

static void add_thread(uint64_t fid) {
    if (S.nthread < CAP_THREAD) S.thread[S.nthread++] = fid;
}

static au_task *find_task(uint64_t id) {
    for (uint32_t i = S.ntasks; i-- > 0;)
        if (S.tasks[i].id == id) return &S.tasks[i];
    return NULL;
}

static void op_task(reader *r) {
    uint8_t fl = rd8(r);
    uint64_t id = rd_id(r), aw = rd_id(r), cr = rd_id(r);
    size_t name_len = (fl >> 1) & 3u;
    const char *name = NULL;
    if (name_len && r->pos + name_len <= r->n)
        name = (const char *)r->p + r->pos;
    else
        name_len = 0;
    au_task *t = new_task(id);
    unsigned nf = fl >> 3;
    for (unsigned i = 0; i < nf; i++) {
        uint64_t f = rd_fid(r);
        if (t) add_frame(t, f);
    }
    if (!t) return;
    t->awaits = aw;
    t->creator = cr;
    t->flags = (fl & 1u) ? AU_TASK_RUNNING : 0;
    t->name = name;
    t->name_len = (uint32_t)name_len;
}

static void op_link(reader *r, unsigned a) {
    for (unsigned i = 0; i <= (a & 7u); i++) {
        uint64_t c = rd_id(r), p = rd_id(r);
        add_link(c, p);
    }
}

static void op_thread(reader *r, unsigned a) {
    for (unsigned i = 0; i <= a; i++) add_thread(rd_fid(r));
}

static const char gen_name[] = "generated";

static au_task *gen_task(uint64_t id, unsigned nf) {
    au_task *t = new_task(id);
    if (!t) return NULL;
    for (unsigned f = 0; f < nf; f++) add_frame(t, fresh_frame_id());
    t->name = gen_name;
    t->name_len = sizeof gen_name - 1;
    return t;
}

/* How many tasks a generator makes: mostly a few, sometimes thousands. */
static uint32_t gen_count(uint32_t n8, unsigned a) {
    if (n8 < 0xf0) return 1 + n8 % 16;
    return (n8 - 0xef) << (4 + (a & 3u));
}

/* parent -> child by one of the three kinds of link. */
static void connect(au_task *parent, au_task *child, unsigned kind) {
    switch (kind) {
    case 0: parent->awaits = child->id; break;
    case 1: add_link(child->id, parent->id); break;
    default: child->creator = parent->id; break;
    }
}

static void op_chain(reader *r, unsigned a) {
    uint32_t n8 = rd8(r);
    uint8_t shape = rd8(r);
    uint64_t top = (shape & 4u) ? rd_id(r) : 0;
    uint32_t n = gen_count(n8, a);
    unsigned nf = a >> 2, kind = shape & 3u;
    if (n > CAP_TASKS - S.ntasks) n = CAP_TASKS - S.ntasks;
    if (!n) return;
    uint32_t first = S.ntasks;
    uint64_t base = S.fresh_task;
    S.fresh_task += (uint64_t)n * 0x40;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = (shape & 64u) ? n - 1 - i : i;
        gen_task(base + (uint64_t)k * 0x40, nf);
    }
    au_task *c = &S.tasks[first];
    for (uint32_t i = 1; i < n; i++) {
        connect(&c[i - 1], &c[i], kind == 3 ? i % 3 : kind);
        if (shape & 16u) c[i].creator = c[i - 1].id;
    }
    if (shape & 4u) {
        au_task *t = find_task(top);
        unsigned k = kind == 3 ? 0 : kind;
        if (k == 0 && t)
            t->awaits = c[0].id;
        else if (k == 2)
            c[0].creator = top;
        else
            add_link(c[0].id, top);
    }
    if (shape & 8u) connect(&c[n - 1], &c[0], kind == 3 ? n % 3 : kind);
    if (shape & 32u) c[n - 1].flags |= AU_TASK_RUNNING;
    if (shape & 128u) {
        ensure_frame(&c[n - 1]);
        for (uint32_t f = 0; f < c[n - 1].nframes; f++)
            add_thread(c[n - 1].frames[f]);
        add_thread(fresh_frame_id());
    }
}

static void op_fanout(reader *r, unsigned a) {
    uint32_t n8 = rd8(r);
    uint8_t shape = rd8(r);
    uint64_t p = rd_id(r);
    uint64_t q = (shape & 32u) ? rd_id(r) : 0;
    uint64_t shared = (shape & 128u) ? rd_fid(r) : 0;
    uint32_t n = gen_count(n8, a);
    unsigned nf = a >> 2, kind = shape & 3u;
    au_task *pt = find_task(p);
    uint32_t first = S.ntasks;
    uint64_t id = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!(shape & 16u) || i % 2 == 0) id = fresh_task_id();
        au_task *c = gen_task(id, (shape & 128u) && nf == 0 ? 0 : nf);
        if (!c) break;
        if (shape & 128u) {
            if (c->nframes == 0) add_frame(c, shared);
            else writable_frames(c)[0] = shared;
        }
        switch (kind == 3 ? i % 3 : kind) {
        case 0: add_link(c->id, p); break;
        case 1: c->creator = p; break;
        default: c->awaits = p; break;
        }
        if (shape & 4u) c->creator = p;
        if (shape & 32u) add_link(c->id, q);
        if (shape & 64u) c->flags |= AU_TASK_RUNNING;
    }
    if ((shape & 8u) && pt && first < S.ntasks)
        pt->awaits = S.tasks[first].id;
}

static void op_set(reader *r, unsigned a) {
    au_task *t = sel_task(r);
    uint64_t v = rd_id(r);
    if (!t) return;
    switch (a & 3u) {
    case 0: t->awaits = v; break;
    case 1: t->creator = v; break;
    case 2: t->id = v; break;
    default: t->flags ^= AU_TASK_RUNNING; break;
    }
}

static void op_splice(reader *r, unsigned a) {
    au_task *t = sel_task(r);
    uint8_t k = rd8(r);
    if (!t) return;
    t->flags |= AU_TASK_RUNNING;
    ensure_frame(t);
    if (a & 1u) {
        for (uint32_t f = 0; f < t->nframes; f++) add_thread(t->frames[f]);
        for (unsigned i = 0; i < (a >> 1); i++) add_thread(fresh_frame_id());
    } else {
        if (!S.nthread) add_thread(fresh_frame_id());
        if (t->nframes) writable_frames(t)[0] = S.thread[k % S.nthread];
    }
}

static void op_dup(reader *r) {
    au_task *t = sel_task(r);
    if (!t || S.ntasks >= CAP_TASKS) return;
    S.wframes[S.ntasks] = writable_frames(t);
    S.tasks[S.ntasks++] = *t;
}

static void op_bulk(reader *r) {
    uint32_t n = rd8(r) + 1u;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t c = rd8(r) & 63u, p = rd8(r) & 63u;
        add_link(c, p);
    }
}

static void op_pool(reader *r, unsigned a) {
    uint64_t id = 1;
    for (unsigned i = 0; i < 4 * (a + 1); i++) {
        while (find_task(id)) id++;
        uint8_t b = rd8(r);
        au_task *t = new_task(id);
        if (!t) return;
        add_frame(t, 0xf000 + id);
        t->awaits = b & 63u;
        t->creator = (b & 64u) ? id - 1 : 0;
        t->flags = (b & 128u) ? AU_TASK_RUNNING : 0;
        id++;
    }
}

static const uint32_t depth_v[8] = {0, 1, 2, 3, 4, 7, 16, 100};
static const uint32_t frames_v[8] = {0, 1, 2, 3, 5, 9, 32, 300};
static const uint32_t tasks_v[4] = {0, 0, 3, 40};
static const uint32_t links_v[4] = {0, 0, 5, 80};
static const uint32_t total_v[8] = {0, 1, 2, 3, 6, 20, 200, 5000};

static void decode(const uint8_t *data, size_t size) {
    S.ntasks = S.nlinks = S.nthread = S.npool = 0;
    S.fresh_task = 0x100000;
    S.fresh_frame = 0x200000;
    S.null_mode = 0;
    reader r = {data, size, 0};
    uint8_t h0 = rd8(&r), h1 = rd8(&r);
    memset(&S.limits, 0, sizeof S.limits);
    S.limits.max_depth = depth_v[h0 & 7u];
    S.limits.max_frames = frames_v[(h0 >> 3) & 7u];
    S.limits.max_tasks = tasks_v[h0 >> 6];
    S.limits.max_links = links_v[h0 >> 6];
    S.limits.max_total_entries = total_v[h1 & 7u];
    S.limits_key = h0 | (unsigned)(h1 & 7u) << 8;
    while (r.pos < r.n) {
        uint8_t o = rd8(&r);
        unsigned a = o >> 4;
        switch (o & 15u) {
        case 0: case 11: case 15: op_task(&r); break;
        case 1: case 12: op_link(&r, a); break;
        case 2: case 14: op_thread(&r, a); break;
        case 3: op_chain(&r, a); break;
        case 4: op_fanout(&r, a); break;
        case 5: case 13: op_set(&r, a); break;
        case 6: op_splice(&r, a); break;
        case 7: op_dup(&r); break;
        case 8: op_bulk(&r); break;
        case 9: op_pool(&r, a); break;
        default: S.null_mode |= 1u << (a & 3u); break;
        }
    }
    /* Keep the fuzzer fast: many leaves under a long chain would cost
     * millions of steps and entries under the default depth and budget. */
    if (S.ntasks > BIG_TASKS && !(h1 & 8u)) {
        if (S.limits.max_total_entries == 0)
            S.limits.max_total_entries = BIG_TOTAL;
        if (S.limits.max_depth == 0) S.limits.max_depth = BIG_DEPTH;
        S.limits_key |= 1u << 12;
    }
}

/* Builds the sample the resolver sees from a task and a link array. */
static au_thread_sample make_sample(au_task *tasks, const au_link *links) {
    au_thread_sample s;
    s.frames = (S.null_mode & 1u) ? NULL : S.thread;
    s.nframes = S.nthread;
    s.tasks = (S.null_mode & 2u) ? NULL : tasks;
    s.ntasks = S.ntasks;
    s.links = (S.null_mode & 4u) ? NULL : links;
    s.nlinks = S.nlinks;
    if (S.null_mode & 8u) {
        for (uint32_t i = S.ntasks; i-- > 0;)
            if (tasks[i].nframes) {
                tasks[i].frames = NULL;
                break;
            }
    }
    return s;
}

/* ========================================================================
 * Resolver contexts (one per limits, a small cache) and allocation counting
 * ===================================================================== */

static unsigned long n_allocs;

static void *counting_realloc(void *ud, void *ptr, size_t old_size,
                              size_t new_size) {
    (void)ud;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    n_allocs++;
    return realloc(ptr, new_size);
}

static const au_allocator counting_alloc = {counting_realloc, NULL};

#define NSLOTS 16
static struct {
    au_resolver *r;
    unsigned key;
} slots[NSLOTS];

static au_resolver *get_resolver(void) {
    unsigned i = (S.limits_key * 2654435761u >> 16) % NSLOTS;
    if (slots[i].r && slots[i].key == S.limits_key) return slots[i].r;
    if (slots[i].r) au_resolver_free(slots[i].r);
    slots[i].r = au_resolver_new(&counting_alloc, &S.limits);
    slots[i].key = S.limits_key;
    if (!slots[i].r) {
        fprintf(stderr, "resolver_fuzz: au_resolver_new failed\n");
        abort();
    }
    return slots[i].r;
}

/* ========================================================================
 * Results: a deep copy of au_resolve's output, in the reference's type
 * ===================================================================== */

NO_COV static void copy_out(int status, const au_stacks *out, const au_resolver *r,
                     ref_result *dst) {
    memset(dst, 0, sizeof *dst);
    dst->status = status;
    au_resolver_get_stats(r, &dst->stats);
    if (status != AU_OK) return;
    dst->nstacks = out->nstacks;
    dst->stacks = calloc(out->nstacks ? out->nstacks : 1, sizeof *dst->stacks);
    if (!dst->stacks) abort();
    for (uint32_t k = 0; k < out->nstacks; k++) {
        const au_stack *s = &out->stacks[k];
        ref_stack *d = &dst->stacks[k];
        d->leaf_id = s->leaf_id;
        d->leaf_name = s->leaf_name;
        d->leaf_name_len = s->leaf_name_len;
        d->leaf_task = s->leaf_task;
        d->flags = s->flags;
        d->nentries = s->nentries;
        d->entries = malloc((s->nentries ? s->nentries : 1) * sizeof *d->entries);
        if (!d->entries) abort();
        if (s->nentries) memcpy(d->entries, s->entries, s->nentries * sizeof *d->entries);
    }
}

NO_COV static const char *kind_str(uint32_t k) {
    switch (k) {
    case AU_ENTRY_FRAME: return "F";
    case AU_ENTRY_TASK: return "T";
    case AU_ENTRY_CYCLE: return "C";
    case AU_ENTRY_TRUNCATED: return "X";
    default: return "?";
    }
}

NO_COV static void dump(const char *title, const ref_result *res) {
    fprintf(stderr, "--- %s: status %d", title, res->status);
    if (res->status != AU_OK) {
        fprintf(stderr, "\n");
        return;
    }
    fprintf(stderr,
            ", %u stacks, stats: tasks_ignored %u links_ignored %u cycles %u "
            "truncated %u running_ignored %u allocations %llu\n",
            res->nstacks, res->stats.tasks_ignored, res->stats.links_ignored,
            res->stats.cycles, res->stats.truncated,
            res->stats.running_ignored,
            (unsigned long long)res->stats.allocations);
    for (uint32_t k = 0; k < res->nstacks && k < 64; k++) {
        const ref_stack *s = &res->stacks[k];
        fprintf(stderr, "  leaf %#llx task %d flags %#x n %u:",
                (unsigned long long)s->leaf_id, (int)s->leaf_task, s->flags,
                s->nentries);
        for (uint32_t e = 0; e < s->nentries && e < 48; e++)
            fprintf(stderr, " %s%#llx", kind_str(s->entries[e].kind),
                    (unsigned long long)s->entries[e].id);
        fprintf(stderr, s->nentries > 48 ? " ...\n" : "\n");
    }
}

NO_COV static void dump_sample(const au_thread_sample *in) {
    fprintf(stderr, "--- sample: limits depth %u frames %u tasks %u links %u "
                    "total %u; null mode %#x\n  thread (%u):",
            S.limits.max_depth, S.limits.max_frames, S.limits.max_tasks,
            S.limits.max_links, S.limits.max_total_entries, S.null_mode,
            in->nframes);
    for (uint32_t j = 0; j < in->nframes && in->frames && j < 64; j++)
        fprintf(stderr, " %#llx", (unsigned long long)in->frames[j]);
    fprintf(stderr, "\n");
    for (uint32_t i = 0; i < in->ntasks && in->tasks && i < 64; i++) {
        const au_task *t = &in->tasks[i];
        fprintf(stderr, "  task[%u] id %#llx awaits %#llx creator %#llx "
                        "flags %u frames:",
                i, (unsigned long long)t->id, (unsigned long long)t->awaits,
                (unsigned long long)t->creator, t->flags);
        if (t->nframes && !t->frames) fprintf(stderr, " NULL");
        for (uint32_t f = 0; f < t->nframes && t->frames && f < 16; f++)
            fprintf(stderr, " %#llx", (unsigned long long)t->frames[f]);
        fprintf(stderr, "\n");
    }
    for (uint32_t k = 0; k < in->nlinks && in->links && k < 64; k++)
        fprintf(stderr, "  link child %#llx parent %#llx\n",
                (unsigned long long)in->links[k].child,
                (unsigned long long)in->links[k].parent);
}

/* Context for failure reports. */
static const au_thread_sample *cur_in;
static const ref_result *cur_core, *cur_ref;

NO_COV static void fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "\n*** resolver_fuzz: INVARIANT VIOLATED: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    if (cur_in) dump_sample(cur_in);
    if (cur_core) dump("au_resolve", cur_core);
    if (cur_ref) dump("reference", cur_ref);
    abort();
}

#define CHECK(cond, ...)                  \
    do {                                  \
        if (!(cond)) fail(__VA_ARGS__);   \
    } while (0)

NO_COV static void compare_stats(const char *what, const au_resolver_stats *a,
                          const au_resolver_stats *b) {
    CHECK(a->tasks_ignored == b->tasks_ignored &&
              a->links_ignored == b->links_ignored && a->cycles == b->cycles &&
              a->truncated == b->truncated &&
              a->running_ignored == b->running_ignored,
          "%s: stats differ (tasks_ignored %u/%u links_ignored %u/%u cycles "
          "%u/%u truncated %u/%u running_ignored %u/%u)",
          what, a->tasks_ignored, b->tasks_ignored, a->links_ignored,
          b->links_ignored, a->cycles, b->cycles, a->truncated, b->truncated,
          a->running_ignored, b->running_ignored);
}

enum { CMP_MARKER_TASKS = 1, CMP_ALL_TASKS = 2, CMP_NAMES = 4 };

NO_COV static void compare(const char *what, const ref_result *a,
                    const ref_result *b, unsigned mode) {
    CHECK(a->status == b->status, "%s: status %d vs %d", what, a->status,
          b->status);
    if (a->status != AU_OK) return;
    CHECK(a->nstacks == b->nstacks, "%s: %u stacks vs %u", what, a->nstacks,
          b->nstacks);
    for (uint32_t k = 0; k < a->nstacks; k++) {
        const ref_stack *x = &a->stacks[k], *y = &b->stacks[k];
        CHECK(x->leaf_id == y->leaf_id, "%s: stack %u leaf %#llx vs %#llx",
              what, k, (unsigned long long)x->leaf_id,
              (unsigned long long)y->leaf_id);
        CHECK(x->flags == y->flags, "%s: stack %u flags %#x vs %#x", what, k,
              x->flags, y->flags);
        CHECK(x->nentries == y->nentries, "%s: stack %u has %u vs %u entries",
              what, k, x->nentries, y->nentries);
        if (mode & (CMP_MARKER_TASKS | CMP_ALL_TASKS))
            CHECK(x->leaf_task == y->leaf_task,
                  "%s: stack %u leaf_task %u vs %u", what, k, x->leaf_task,
                  y->leaf_task);
        if (mode & CMP_NAMES)
            CHECK(x->leaf_name == y->leaf_name &&
                      x->leaf_name_len == y->leaf_name_len,
                  "%s: stack %u leaf names differ", what, k);
        for (uint32_t e = 0; e < x->nentries; e++) {
            const au_entry *p = &x->entries[e], *q = &y->entries[e];
            CHECK(p->kind == q->kind && p->id == q->id,
                  "%s: stack %u entry %u: %s%#llx vs %s%#llx", what, k, e,
                  kind_str(p->kind), (unsigned long long)p->id,
                  kind_str(q->kind), (unsigned long long)q->id);
            int marker = p->kind == AU_ENTRY_TASK || p->kind == AU_ENTRY_CYCLE;
            if ((mode & CMP_ALL_TASKS) || ((mode & CMP_MARKER_TASKS) && marker))
                CHECK(p->task == q->task, "%s: stack %u entry %u task %u vs %u",
                      what, k, e, p->task, q->task);
        }
    }
    compare_stats(what, &a->stats, &b->stats);
}

/* ========================================================================
 * Independent checks of the core's output against the specification
 * ===================================================================== */

typedef struct pair {
    uint64_t key;
    uint32_t a, b;
} pair;

NO_COV static int cmp_pair(const void *x, const void *y) {
    const pair *p = x, *q = y;
    if (p->key != q->key) return p->key < q->key ? -1 : 1;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    return p->b < q->b ? -1 : p->b > q->b;
}

/* first index with key >= k */
NO_COV static uint32_t lower(const pair *v, uint32_t n, uint64_t k) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t m = lo + (hi - lo) / 2;
        if (v[m].key < k) lo = m + 1;
        else hi = m;
    }
    return lo;
}

typedef struct model {
    const au_thread_sample *in;
    uint32_t n, npresent;
    pair *ids;        /* (id, index) sorted */
    unsigned char *present;
    pair *awaiters;   /* (awaited index, awaiter index) of valid awaits */
    uint32_t nawaiters;
    pair *strong;     /* (child index, parent index) of valid strong links */
    uint32_t nstrong;
    uint32_t *parent; /* rule 1, NONE for roots and absent tasks */
    unsigned char *waiting, *is_parent;
    uint32_t R, b;
} model;

NO_COV static uint32_t m_find(const model *m, uint64_t id) {
    if (id == 0) return NONE;
    uint32_t i = lower(m->ids, m->n, id);
    if (i >= m->n || m->ids[i].key != id) return NONE;
    if (i + 1 < m->n && m->ids[i + 1].key == id) return NONE;
    return m->ids[i].a;
}

/* Valid link from task index `from` to id `to`: the target index or NONE. */
NO_COV static uint32_t m_valid(const model *m, uint32_t from, uint64_t to) {
    uint32_t t = m_find(m, to);
    return t == from ? NONE : t;
}

/* Rule 1, directly: the candidates at the first non-empty level, then the
 * creator if it is among them, else the lowest id. */
NO_COV static uint32_t m_parent(const model *m, uint32_t c) {
    const au_task *T = m->in->tasks;
    uint32_t creator = m_valid(m, c, T[c].creator);
    const pair *lists[2] = {m->awaiters, m->strong};
    uint32_t counts[2] = {m->nawaiters, m->nstrong};
    for (int level = 0; level < 2; level++) {
        uint32_t i = lower(lists[level], counts[level], c), best = NONE;
        for (; i < counts[level] && lists[level][i].key == c; i++) {
            uint32_t p = lists[level][i].b;
            if (p == creator) return p;
            if (best == NONE || T[p].id < T[best].id) best = p;
        }
        if (best != NONE) return best;
    }
    return creator;
}

NO_COV static void *xmalloc(size_t n) {
    void *p = calloc(n ? n : 1, 1);
    if (!p) abort();
    return p;
}

NO_COV static void model_build(model *m, const au_thread_sample *in) {
    memset(m, 0, sizeof *m);
    m->in = in;
    uint32_t n = m->n = in->ntasks;
    const au_task *T = in->tasks;
    m->ids = xmalloc(n * sizeof *m->ids);
    for (uint32_t i = 0; i < n; i++) m->ids[i] = (pair){T[i].id, i, 0};
    qsort(m->ids, n, sizeof *m->ids, cmp_pair);
    m->present = xmalloc(n);
    for (uint32_t i = 0; i < n; i++) {
        m->present[i] = m_find(m, T[i].id) == i;
        m->npresent += m->present[i];
    }
    m->waiting = xmalloc(n);
    m->awaiters = xmalloc(n * sizeof *m->awaiters);
    for (uint32_t i = 0; i < n; i++) {
        if (!m->present[i]) continue;
        uint32_t t = m_valid(m, i, T[i].awaits);
        if (t == NONE) continue;
        m->awaiters[m->nawaiters++] = (pair){t, 0, i};
        m->waiting[i] = 1;
    }
    qsort(m->awaiters, m->nawaiters, sizeof *m->awaiters, cmp_pair);
    m->strong = xmalloc(in->nlinks * sizeof *m->strong);
    for (uint32_t k = 0; k < in->nlinks; k++) {
        uint32_t c = m_find(m, in->links[k].child);
        uint32_t p = m_find(m, in->links[k].parent);
        if (c == NONE || p == NONE || c == p) continue;
        m->strong[m->nstrong++] = (pair){c, 0, p};
        m->waiting[p] = 1;
    }
    qsort(m->strong, m->nstrong, sizeof *m->strong, cmp_pair);
    m->parent = xmalloc(n * sizeof *m->parent);
    m->is_parent = xmalloc(n);
    for (uint32_t i = 0; i < n; i++) {
        m->parent[i] = m->present[i] ? m_parent(m, i) : NONE;
        if (m->parent[i] != NONE) m->is_parent[m->parent[i]] = 1;
    }
    /* R: flagged, present, with frames; earliest outermost frame, then id. */
    m->R = NONE;
    m->b = in->nframes;
    for (uint32_t i = 0; i < n; i++) {
        if (!m->present[i] || !(T[i].flags & AU_TASK_RUNNING) ||
            !T[i].nframes || T[i].frames[0] == 0) /* 0: no frame */
            continue;
        for (uint32_t j = 0; j < in->nframes && j <= m->b; j++) {
            if (in->frames[j] != T[i].frames[0]) continue;
            if (m->R == NONE || j < m->b || T[i].id < T[m->R].id) {
                m->R = i;
                m->b = j;
            }
            break;
        }
    }
}

NO_COV static void model_free(model *m) {
    free(m->ids);
    free(m->present);
    free(m->awaiters);
    free(m->strong);
    free(m->parent);
    free(m->waiting);
    free(m->is_parent);
}

NO_COV static uint32_t eff(uint32_t v, uint32_t def) { return v ? v : def; }

NO_COV static void check_invariants(const au_thread_sample *in, const ref_result *res) {
    model m;
    model_build(&m, in);
    const au_task *T = in->tasks;
    const uint32_t max_depth = eff(S.limits.max_depth, AU_DEFAULT_MAX_DEPTH);
    const uint32_t max_frames = eff(S.limits.max_frames, AU_DEFAULT_MAX_FRAMES);
    const uint32_t max_total =
        eff(S.limits.max_total_entries, AU_DEFAULT_MAX_TOTAL_ENTRIES);

    CHECK(res->stats.tasks_ignored == m.n - m.npresent,
          "tasks_ignored %u, expected %u", res->stats.tasks_ignored,
          m.n - m.npresent);
    /* Zero stacks only for no present task and an empty thread stack. */
    CHECK(res->nstacks >= 1 || (m.npresent == 0 && in->nframes == 0),
          "no stack at all");
    CHECK(res->nstacks <= (m.npresent ? m.npresent : 1),
          "%u stacks for %u present tasks", res->nstacks, m.npresent);

    uint64_t total = 0;
    uint32_t nrunning = 0, ncycles = 0, ntrunc = 0, any_trunc = 0;
    uint32_t *seen = xmalloc(m.n * sizeof *seen);  /* stamp: stack k + 1 */
    unsigned char *covered = xmalloc(m.n);
    unsigned char *has_stack = xmalloc(m.n);
    uint32_t *markers = xmalloc((m.n + 1) * sizeof *markers);

    if (m.npresent == 0 && in->nframes == 0) {
        CHECK(res->nstacks == 0, "no task, no thread frame: %u stacks",
              res->nstacks);
    } else if (m.npresent == 0) {
        const ref_stack *s = &res->stacks[0];
        CHECK(res->nstacks == 1 && s->leaf_id == 0 && s->leaf_task == NONE &&
                  s->leaf_name == NULL &&
                  (s->flags & ~(uint32_t)AU_STACK_TRUNCATED_FRAMES) ==
                      AU_STACK_THREAD_ONLY,
              "no present task: expected one THREAD_ONLY stack");
    }

    for (uint32_t k = 0; k < res->nstacks; k++) {
        const ref_stack *s = &res->stacks[k];
        const au_entry *E = s->entries;
        const uint32_t ne = s->nentries;
        total += ne;
        CHECK(ne <= max_frames, "stack %u: %u entries > max_frames %u", k, ne,
              max_frames);
        CHECK(k == 0 || res->stacks[k - 1].leaf_id < s->leaf_id,
              "stack %u: leaf ids not strictly ascending", k);
        const int ftrunc = (s->flags & AU_STACK_TRUNCATED_FRAMES) != 0;
        const int dtrunc = (s->flags & AU_STACK_TRUNCATED_DEPTH) != 0;
        const int cyc = (s->flags & AU_STACK_CYCLE) != 0;
        if (s->flags & AU_STACK_RUNNING) nrunning++;
        if (cyc) ncycles++;
        if (ftrunc || dtrunc) ntrunc++;
        if (ftrunc || dtrunc) any_trunc = 1;
        if (ftrunc)
            CHECK(ne >= 1 && E[ne - 1].kind == AU_ENTRY_TRUNCATED,
                  "stack %u: frame-truncated but does not end in TRUNCATED", k);
        /* A frame-truncated stack is checked as a prefix of its full
         * shape: everything up to the final TRUNCATED entry. */
        const uint32_t nchk = ftrunc ? ne - 1 : ne;

        if (m.npresent == 0) {
            CHECK(nchk == (ftrunc ? nchk : in->nframes),
                  "thread-only stack: %u entries for %u thread frames", ne,
                  in->nframes);
            for (uint32_t e = 0; e < nchk; e++)
                CHECK(E[e].kind == AU_ENTRY_FRAME &&
                          E[e].id == in->frames[e],
                      "thread-only stack: entry %u is not thread frame %u", e,
                      e);
            continue;
        }

        /* The leaf. */
        CHECK(s->leaf_task < m.n && m.present[s->leaf_task] &&
                  T[s->leaf_task].id == s->leaf_id &&
                  s->leaf_name == T[s->leaf_task].name &&
                  s->leaf_name_len == T[s->leaf_task].name_len,
              "stack %u: leaf_task/leaf_name do not match leaf %#llx", k,
              (unsigned long long)s->leaf_id);
        const uint32_t S_ = s->leaf_task;
        has_stack[S_] = 1;
        CHECK(!(s->flags & AU_STACK_THREAD_ONLY),
              "stack %u: THREAD_ONLY with present tasks", k);
        CHECK(((s->flags & AU_STACK_RUNNING) != 0) == (S_ == m.R),
              "stack %u: RUNNING flag %d but running task is %#llx", k,
              (s->flags & AU_STACK_RUNNING) != 0,
              (unsigned long long)(m.R == NONE ? 0 : T[m.R].id));

        /* Shape: thread prefix. */
        const uint32_t b = m.R != NONE ? m.b : in->nframes;
        uint32_t e = 0;
        for (; e < b && e < nchk; e++)
            CHECK(E[e].kind == AU_ENTRY_FRAME && E[e].id == in->frames[e],
                  "stack %u: entry %u is not thread frame %u", k, e, e);
        /* Optional TRUNCATED / CYCLE entry. */
        uint64_t cycle_id = 0;
        int cycle_seen = 0;
        if (e < nchk && dtrunc) {
            CHECK(E[e].kind == AU_ENTRY_TRUNCATED,
                  "stack %u: depth-truncated, entry %u is not TRUNCATED", k, e);
            e++;
        } else if (e < nchk && cyc) {
            CHECK(E[e].kind == AU_ENTRY_CYCLE,
                  "stack %u: cycle, entry %u is not CYCLE", k, e);
            CHECK(E[e].task < m.n && T[E[e].task].id == E[e].id,
                  "stack %u: CYCLE entry task index wrong", k);
            cycle_id = E[e].id;
            cycle_seen = 1;
            e++;
        }
        CHECK(!(dtrunc && cyc), "stack %u: both CYCLE and TRUNCATED_DEPTH", k);
        /* Markers, each followed by exactly its task's frames. */
        uint32_t nm = 0;
        while (e < nchk) {
            CHECK(E[e].kind == AU_ENTRY_TASK,
                  "stack %u: entry %u: expected a TASK marker, got %s", k, e,
                  kind_str(E[e].kind));
            uint32_t t = E[e].task;
            CHECK(t < m.n && m.present[t] && T[t].id == E[e].id,
                  "stack %u: TASK entry %u names task index %u wrongly", k, e,
                  t);
            CHECK(seen[t] != k + 1, "stack %u: task %#llx appears twice", k,
                  (unsigned long long)T[t].id);
            seen[t] = k + 1;
            covered[t] = 1;
            markers[nm++] = t;
            e++;
            const uint64_t *fr;
            uint32_t nf;
            if (t == m.R && S_ == m.R) {
                fr = in->frames + b;
                nf = in->nframes - b;
            } else {
                fr = T[t].frames;
                nf = T[t].nframes;
            }
            for (uint32_t f = 0; f < nf && e < nchk; f++, e++)
                CHECK(E[e].kind == AU_ENTRY_FRAME && E[e].id == fr[f],
                      "stack %u: entry %u: expected frame %u of task %#llx", k,
                      e, f, (unsigned long long)T[t].id);
        }
        /* Rule 1 along the chain. */
        for (uint32_t i = 0; i + 1 < nm; i++) {
            uint32_t want = m.parent[markers[i + 1]];
            CHECK(want == markers[i],
                  "stack %u: parent of %#llx is %#llx, expected %#llx", k,
                  (unsigned long long)T[markers[i + 1]].id,
                  (unsigned long long)T[markers[i]].id,
                  (unsigned long long)(want == NONE ? 0 : T[want].id));
        }
        CHECK(nm <= max_depth, "stack %u: %u tasks > max_depth", k, nm);
        if (!ftrunc) {
            CHECK(nm >= 1 && markers[nm - 1] == S_,
                  "stack %u: last marker is not the leaf", k);
            uint32_t top = markers[0], p = m.parent[top];
            if (cyc) {
                CHECK(cycle_seen && p != NONE && T[p].id == cycle_id &&
                          seen[p] == k + 1,
                      "stack %u: CYCLE entry does not name the top's parent "
                      "in the chain",
                      k);
            } else if (dtrunc) {
                CHECK(nm == max_depth && p != NONE && seen[p] != k + 1,
                      "stack %u: depth cut with %u tasks, parent %s", k, nm,
                      p == NONE ? "none" : "in chain");
            } else {
                CHECK(p == NONE, "stack %u: top task %#llx has parent %#llx", k,
                      (unsigned long long)T[top].id,
                      (unsigned long long)(p == NONE ? 0 : T[p].id));
            }
        }
        /* Rule 2: why does this leaf have a stack? */
        if (!(S_ == m.R || !m.waiting[S_] || !m.is_parent[S_]))
            CHECK(dtrunc || ftrunc ||
                      (cyc && cycle_id == s->leaf_id),
                  "stack %u: leaf %#llx is waiting, a parent and not on a "
                  "cycle",
                  k, (unsigned long long)s->leaf_id);
    }

    CHECK(total <= max_total, "%llu entries > max_total_entries %u",
          (unsigned long long)total, max_total);
    CHECK(total <= (uint64_t)res->nstacks *
                       ((uint64_t)in->nframes + 2 +
                        (uint64_t)(max_depth < m.n ? max_depth : m.n) *
                            (1 + CAP_TASK_FRAMES)),
          "output larger than linear bound");
    CHECK(nrunning <= 1, "%u RUNNING stacks", nrunning);
    CHECK(ncycles == res->stats.cycles, "stats.cycles %u, %u stacks flagged",
          res->stats.cycles, ncycles);
    CHECK(ntrunc == res->stats.truncated,
          "stats.truncated %u, %u stacks flagged", res->stats.truncated,
          ntrunc);
    for (uint32_t i = 0; i < m.n; i++) {
        if (!m.present[i]) continue;
        if (i == m.R || !m.waiting[i] || !m.is_parent[i])
            CHECK(has_stack[i], "task %#llx (%s) has no stack",
                  (unsigned long long)T[i].id,
                  i == m.R ? "running" : !m.waiting[i] ? "not waiting"
                                                       : "stranded waiter");
        if (!any_trunc)
            CHECK(covered[i], "task %#llx appears in no stack",
                  (unsigned long long)T[i].id);
    }
    free(seen);
    free(covered);
    free(has_stack);
    free(markers);
    model_free(&m);
}

/* The task indices of a result point at the tasks they name (the rest of
 * check_invariants is implied by equality with an already checked result
 * up to indices). */
NO_COV static void check_indices(const au_thread_sample *in,
                                 const ref_result *res) {
    const au_task *T = in->tasks;
    for (uint32_t k = 0; k < res->nstacks; k++) {
        const ref_stack *s = &res->stacks[k];
        if (s->flags & AU_STACK_THREAD_ONLY)
            CHECK(s->leaf_task == NONE, "stack %u: THREAD_ONLY has a task", k);
        else
            CHECK(s->leaf_task < in->ntasks && T[s->leaf_task].id == s->leaf_id,
                  "stack %u: leaf_task %u does not hold leaf %#llx", k,
                  s->leaf_task, (unsigned long long)s->leaf_id);
        for (uint32_t e = 0; e < s->nentries; e++) {
            const au_entry *x = &s->entries[e];
            if (x->kind == AU_ENTRY_TASK || x->kind == AU_ENTRY_CYCLE)
                CHECK(x->task < in->ntasks && T[x->task].id == x->id,
                      "stack %u entry %u: task index %u does not hold %#llx",
                      k, e, x->task, (unsigned long long)x->id);
        }
    }
}

/* ========================================================================
 * Permutation
 * ===================================================================== */

static uint64_t rng;

NO_COV static uint64_t next_rand(void) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

NO_COV static void shuffle_tasks(void) {
    memcpy(perm_tasks, S.tasks, S.ntasks * sizeof *perm_tasks);
    memcpy(perm_links, S.links, S.nlinks * sizeof *perm_links);
    for (uint32_t i = S.ntasks; i > 1; i--) {
        uint32_t j = (uint32_t)(next_rand() % i);
        au_task t = perm_tasks[i - 1];
        perm_tasks[i - 1] = perm_tasks[j];
        perm_tasks[j] = t;
    }
    for (uint32_t i = S.nlinks; i > 1; i--) {
        uint32_t j = (uint32_t)(next_rand() % i);
        au_link l = perm_links[i - 1];
        perm_links[i - 1] = perm_links[j];
        perm_links[j] = l;
    }
}

/* ========================================================================
 * Entry points
 * ===================================================================== */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    au_fuzz_run_from_workspace();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    decode(data, size);
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: the shuffle's seed */
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001b3ull;
    rng = h;

    au_thread_sample in = make_sample(S.tasks, S.links);
    au_resolver *r = get_resolver();
    ref_result ref, core, again, perm;
    cur_in = &in;
    cur_core = cur_ref = NULL;

    ref_resolve(&in, &S.limits, &ref);
    cur_ref = &ref;

    au_stacks out;
    int st = au_resolve(r, &in, &out);
    copy_out(st, &out, r, &core);
    cur_core = &core;
    CHECK(st == ref.status, "status %d (%s), reference says %d (%s)", st,
          au_status_str(st), ref.status, au_status_str(ref.status));

    if (st == AU_OK) {
        check_invariants(&in, &core);
        compare("core vs reference", &core, &ref,
                CMP_MARKER_TASKS | CMP_NAMES);

        /* Warm repeat: identical, no allocation. */
        n_allocs = 0;
        int st2 = au_resolve(r, &in, &out);
        unsigned long allocs = n_allocs;
        copy_out(st2, &out, r, &again);
        CHECK(allocs == 0 && again.stats.allocations == 0,
              "warm repeat allocated (%lu realloc calls, stats %llu)", allocs,
              (unsigned long long)again.stats.allocations);
        compare("repeat vs first", &again, &core,
                CMP_ALL_TASKS | CMP_NAMES);
        ref_result_free(&again);
    }

    /* Permuted copy: same result up to task indices. */
    shuffle_tasks();
    au_thread_sample pin = make_sample(perm_tasks, perm_links);
    int st3 = au_resolve(r, &pin, &out);
    copy_out(st3, &out, r, &perm);
    cur_in = &pin;
    compare("permuted vs first", &perm, &core, CMP_NAMES);
    if (st3 == AU_OK) check_indices(&pin, &perm);
    ref_result_free(&perm);

    ref_result_free(&core);
    ref_result_free(&ref);
    cur_in = NULL;
    cur_core = cur_ref = NULL;
    return 0;
}
