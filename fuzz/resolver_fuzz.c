/*
 * Fuzz target `resolver`: au_resolve(), au_stack_entries() and
 * au_resolver_parent() against docs/RESOLVER.md.
 *
 * Every input is decoded into one au_thread_sample plus resolver limits,
 * resolved by the core (one context per limits, kept across inputs) and by
 * the naive reference resolver (fuzz/ref_resolver.c).  Each stack is
 * measured (au_stack_entries with cap 0) and fetched whole into an
 * exact-size buffer (so ASan sees any write past cap) while the entries
 * fetched for one result stay within 16384; later stacks are fetched cut
 * to what is left, then only measured; each stack is also fetched with the
 * input's small "probe" cap.  Then:
 *
 *   status   core status == reference status (also on the permuted copy);
 *   on AU_OK:
 *   order    stacks sorted by leaf_id, strictly ascending (no leaf twice);
 *   shape    each stack is: thread frames [0..b) (or the whole thread stack
 *            when there is no running task), then at most one TRUNCATED
 *            (iff AU_STACK_TRUNCATED_DEPTH) or CYCLE entry (iff
 *            AU_STACK_CYCLE; it names `closing`), then for each task a TASK
 *            marker followed by exactly that task's coroutine frames (the
 *            thread's frames [b..) for the running task in its own stack);
 *            ntasks markers, the last one the leaf; no task twice in a
 *            stack; at most one RUNNING stack, and it is the running task R
 *            computed here independently;
 *   caps     a stack fetched with a cap below its length is its first
 *            cap - 1 entries, then one TRUNCATED entry; every fetch returns
 *            the same whole length as the cap-0 measure;
 *   rule 1   every consecutive pair of TASK markers (P, C) has P = parent(C)
 *            computed here independently, and au_resolver_parent() agrees
 *            for every task index (UINT32_MAX past the end);
 *   rule 3   walking ntasks tasks up from the leaf with those parents: the
 *            top is a root, or its parent is in the chain (CYCLE, closing =
 *            that parent), or max_depth tasks were taken
 *            (TRUNCATED_DEPTH); the length is b + marker + sum of
 *            (1 + frames) over the chain;
 *   rule 2   R, every present non-waiting task and every waiting task that
 *            is nobody's parent has a stack; any other leaf is a cycle
 *            representative (its chain closes on itself, or is depth-cut);
 *   bounds   total length linear in thread frames + tasks x max_depth x
 *            frames per task;
 *   cover    without a depth-cut stack, every present task is in a stack;
 *   stats    cycles / truncated match the flags, tasks_ignored matches;
 *   diff     identical to the reference: leaf ids, names, leaf task
 *            indices, flags, ntasks, closing, lengths, entry kinds, ids and
 *            TASK/CYCLE task indices (whole and capped), parents, stats (all
 *            but allocations);
 *   warm     resolving the same input again gives an identical result, and
 *            neither au_resolve nor au_stack_entries allocates (both
 *            stats.allocations and a counting au_allocator);
 *   perm     resolving a copy with tasks and links shuffled (PRNG seeded
 *            from the data) gives the same result up to task indices, and
 *            its indices point at the right tasks.
 * Any violation prints what failed, the sample and both results to stderr
 * and aborts.
 *
 * ---------------------------------------------------------------------------
 * Input format.  Every byte string is valid: reads past the end yield 0.
 * Multi-byte integers are little-endian.
 *
 *   byte 0  H0  bits 0-2 max_depth           {0,1,2,3,4,7,16,2^32-1}
 *               bits 3-5 probe cap           {none,1,2,3,5,9,32,300}
 *               bits 6-7 max_tasks/max_links {0/0,max/max,3/5,40/80}
 *   byte 1  H1  bit 3    keep max_depth as it is for 257..1536 tasks
 *               bit 4    allocation failures: for up to 256 tasks, also
 *                        resolve in a fresh context whose allocator fails
 *                        after 3 * (H1 >> 5) allocations: AU_ERR_NOMEM or
 *                        the reference's result; then again with memory:
 *                        the reference's result
 *           0 means the library default, except that, to keep the fuzzer
 *           fast, a max_depth of 0 or above 32 becomes 32 for a sample of
 *           more than 1536 tasks, or of more than 256 without H1 bit 3.
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
 *   N8 (generator size): N = 1 + N8 % 16 if N8 < 0xf8, else
 *                      (N8 - 0xf7) << (5 + (a & 3)), i.e. 32 .. 2048.
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
 * Example: 00 00 | 02 05 | 00 0f 01 00 00 05: a thread stack [0xf005] and
 * task 1 (running, name 3 bytes, no links) whose outermost frame is 0xf005.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncunwind.h"
#include "fuzz/fuzz_helpers.h"
#include "fuzz/ref_resolver.h"
#include "fuzz/run_from_workspace.h"

/* The checking code below is not what the fuzzer should explore: NO_COV. */

#define NONE UINT32_MAX
#define CAP_TASKS 4096u
#define CAP_LINKS 8192u
#define CAP_THREAD 256u
#define CAP_TASK_FRAMES 64u
#define CAP_POOL 32768u
#define BIG_TASKS 256u  /* above this many tasks (unless H1 bit 3) ... */
#define BIG_TASKS_ALWAYS 1536u /* ... or this many (whatever H1 says) ... */
#define BIG_DEPTH 32u   /* ... max_depth 0 or > 32 becomes 32 */
#define FETCH_BUDGET (1u << 14) /* entries fetched whole per result */

/* ========================================================================
 * Decoding
 * ===================================================================== */

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
    uint32_t probe_cap; /* 0: no capped au_stack_entries call */
    unsigned nomem;     /* > 0: also resolve in a fresh context whose
                           allocator fails after nomem - 1 allocations */
} sample;

static sample S;                     /* decoded input */
static au_task perm_tasks[CAP_TASKS]; /* shuffled copies */
static au_link perm_links[CAP_LINKS];

static uint64_t rd_id(fh_input *r) {
    uint8_t v = fh_u8(r);
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
    return fh_u64(r);
}

static uint64_t rd_fid(fh_input *r) {
    uint8_t v = fh_u8(r);
    if (v == 0) return 0;
    if (v < 0x80) return 0xf000 + v;
    if (v < 0xc0)
        return S.nthread ? S.thread[(v & 63u) % S.nthread] : 0xf000u + v;
    if (v < 0xff) return ((uint64_t)(v & 63u) << 40) | 0xf000;
    return fh_u64(r);
}

static au_task *sel_task(fh_input *r) {
    uint8_t v = fh_u8(r);
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

static void op_task(fh_input *r) {
    uint8_t fl = fh_u8(r);
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

static void op_link(fh_input *r, unsigned a) {
    for (unsigned i = 0; i <= (a & 7u); i++) {
        uint64_t c = rd_id(r), p = rd_id(r);
        add_link(c, p);
    }
}

static void op_thread(fh_input *r, unsigned a) {
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
    if (n8 < 0xf8) return 1 + n8 % 16;
    return (n8 - 0xf7) << (5 + (a & 3u));
}

/* parent -> child by one of the three kinds of link. */
static void connect(au_task *parent, au_task *child, unsigned kind) {
    switch (kind) {
    case 0: parent->awaits = child->id; break;
    case 1: add_link(child->id, parent->id); break;
    default: child->creator = parent->id; break;
    }
}

static void op_chain(fh_input *r, unsigned a) {
    uint32_t n8 = fh_u8(r);
    uint8_t shape = fh_u8(r);
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

static void op_fanout(fh_input *r, unsigned a) {
    uint32_t n8 = fh_u8(r);
    uint8_t shape = fh_u8(r);
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

static void op_set(fh_input *r, unsigned a) {
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

static void op_splice(fh_input *r, unsigned a) {
    au_task *t = sel_task(r);
    uint8_t k = fh_u8(r);
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

static void op_dup(fh_input *r) {
    au_task *t = sel_task(r);
    if (!t || S.ntasks >= CAP_TASKS) return;
    S.wframes[S.ntasks] = writable_frames(t);
    S.tasks[S.ntasks++] = *t;
}

static void op_bulk(fh_input *r) {
    uint32_t n = fh_u8(r) + 1u;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t c = fh_u8(r) & 63u, p = fh_u8(r) & 63u;
        add_link(c, p);
    }
}

static void op_pool(fh_input *r, unsigned a) {
    uint64_t id = 1;
    for (unsigned i = 0; i < 4 * (a + 1); i++) {
        while (find_task(id)) id++;
        uint8_t b = fh_u8(r);
        au_task *t = new_task(id);
        if (!t) return;
        add_frame(t, 0xf000 + id);
        t->awaits = b & 63u;
        t->creator = (b & 64u) ? id - 1 : 0;
        t->flags = (b & 128u) ? AU_TASK_RUNNING : 0;
        id++;
    }
}

static const uint32_t depth_v[8] = {0, 1, 2, 3, 4, 7, 16, UINT32_MAX};
static const uint32_t probe_v[8] = {0, 1, 2, 3, 5, 9, 32, 300};
static const uint32_t tasks_v[4] = {0, UINT32_MAX, 3, 40};
static const uint32_t links_v[4] = {0, UINT32_MAX, 5, 80};

static void decode(const uint8_t *data, size_t size) {
    S.ntasks = S.nlinks = S.nthread = S.npool = 0;
    S.fresh_task = 0x100000;
    S.fresh_frame = 0x200000;
    S.null_mode = 0;
    fh_input r = {data, size, 0};
    uint8_t h0 = fh_u8(&r), h1 = fh_u8(&r);
    memset(&S.limits, 0, sizeof S.limits);
    S.limits.max_depth = depth_v[h0 & 7u];
    S.limits.max_tasks = tasks_v[h0 >> 6];
    S.limits.max_links = links_v[h0 >> 6];
    S.probe_cap = probe_v[(h0 >> 3) & 7u];
    S.limits_key = (h0 & 7u) | (unsigned)(h0 >> 6) << 3;
    while (r.pos < r.n) {
        uint8_t o = fh_u8(&r);
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
     * millions of steps under the default depth. */
    S.nomem = (h1 & 0x10u) ? 1 + (h1 >> 5) * 3u : 0;
    if ((S.limits.max_depth == 0 || S.limits.max_depth > BIG_DEPTH) &&
        (S.ntasks > BIG_TASKS_ALWAYS || (S.ntasks > BIG_TASKS && !(h1 & 8u)))) {
        S.limits.max_depth = BIG_DEPTH;
        S.limits_key |= 1u << 5;
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

/* The cached contexts allocate through `counting`; check_nomem's through
 * `failing`, which refuses every call from a chosen one on. */
static test_alloc counting, failing;
static const au_allocator counting_alloc = {ta_realloc, &counting};
static const au_allocator failing_alloc = {ta_realloc, &failing};

#define NSLOTS 16
static struct {
    au_resolver *r;
    unsigned key;
} slots[NSLOTS];

static au_resolver *get_resolver(void) {
    unsigned i = (S.limits_key * 2654435761u >> 16) % NSLOTS;
    if (slots[i].r && slots[i].key == S.limits_key) return slots[i].r;
    if (slots[i].r) au_resolver_free(slots[i].r);
    int rc = au_resolver_new(&counting_alloc, &S.limits, &slots[i].r);
    slots[i].key = S.limits_key;
    if (rc != AU_OK || !slots[i].r) {
        fprintf(stderr, "resolver_fuzz: au_resolver_new failed\n");
        abort();
    }
    return slots[i].r;
}

/* ========================================================================
 * Results, materialised: the description of every stack plus its entries,
 * fetched the same way from the core (au_stack_entries) and from the
 * reference (ref_stack_entries), so that the two can be compared.
 * ===================================================================== */

typedef struct mstack {
    uint64_t leaf_id;
    const char *leaf_name;
    uint32_t leaf_name_len, leaf_task, flags, ntasks;
    uint32_t closing;    /* index, or NONE */
    uint64_t closing_id; /* its id, or 0 */
    uint64_t length;     /* whole length (measured with cap 0) */
    uint32_t nentries;   /* fetched: length, or less when over the budget,
                            0 when not fetched at all */
    int cut;             /* 0 < nentries < length: the last entry is
                            TRUNCATED */
    au_entry *entries;
    uint32_t nprobe;     /* fetched with the input's probe cap, if smaller */
    au_entry *probe;
} mstack;

typedef struct mresult {
    int status;
    uint32_t nstacks;
    mstack *stacks;
    au_resolver_stats stats;
    uint32_t ntasks;
    uint32_t *parent; /* per task index; ntasks + 1 with the out-of-range
                         probe at [ntasks] */
    uint32_t *link;   /* au_resolver_link, likewise */
} mresult;

/* Stack k's entries (returns the whole length; writes at most cap). */
typedef uint64_t (*entries_fn)(const void *ctx, uint32_t k, au_entry *buf,
                               uint32_t cap);

typedef struct core_ctx {
    const au_resolver *r;
    const au_stacks *out;
} core_ctx;

static uint64_t core_entries(const void *ctx, uint32_t k, au_entry *buf,
                             uint32_t cap) {
    const core_ctx *c = ctx;
    return au_stack_entries(c->r, &c->out->stacks[k], buf, cap);
}

NO_COV static uint64_t ref_entries(const void *ctx, uint32_t k, au_entry *buf,
                                   uint32_t cap) {
    return ref_stack_entries(ctx, k, buf, cap);
}

static const au_thread_sample *cur_in; /* for failure reports */
static const mresult *cur_core, *cur_ref;

NO_COV static void dump_context(void *ud);

/* Measures every stack (cap 0) and fetches its entries: whole while the
 * running total stays within FETCH_BUDGET, then cut to what is left of it,
 * then not at all (nentries 0); and once more with the probe cap when that
 * is smaller than the stack. */
NO_COV static void fetch_entries(mresult *m, entries_fn fn, const void *ctx) {
    uint64_t budget = FETCH_BUDGET;
    for (uint32_t k = 0; k < m->nstacks; k++) {
        mstack *s = &m->stacks[k];
        s->length = fn(ctx, k, NULL, 0);
        if (budget == 0) continue; /* measured only */
        uint64_t want = s->length <= budget ? s->length : budget;
        uint32_t cap = (uint32_t)want;
        /* Exact-size buffers: ASan catches a write past cap. */
        s->entries = xcalloc(1, (size_t)cap * sizeof *s->entries);
        uint64_t len = fn(ctx, k, s->entries, cap);
        CHECK(len == s->length,
              "stack %u: length %llu with cap %u, %llu with cap 0", k,
              (unsigned long long)len, cap, (unsigned long long)s->length);
        s->nentries = cap < s->length ? cap : (uint32_t)s->length;
        s->cut = s->nentries < s->length;
        budget -= s->nentries < budget ? s->nentries : budget;
        if (S.probe_cap && S.probe_cap < s->length) {
            s->nprobe = S.probe_cap;
            s->probe = xcalloc(1, (size_t)s->nprobe * sizeof *s->probe);
            len = fn(ctx, k, s->probe, s->nprobe);
            CHECK(len == s->length, "stack %u: length %llu with cap %u", k,
                  (unsigned long long)len, s->nprobe);
        }
    }
}

NO_COV static void from_core(mresult *m, int status, const au_resolver *r,
                             const au_thread_sample *in, const au_stacks *out) {
    memset(m, 0, sizeof *m);
    m->status = status;
    au_resolver_get_stats(r, &m->stats);
    if (status != AU_OK) return;
    m->nstacks = out->nstacks;
    m->stacks = xcalloc(1, out->nstacks * sizeof *m->stacks);
    for (uint32_t k = 0; k < out->nstacks; k++) {
        const au_stack *s = &out->stacks[k];
        mstack *d = &m->stacks[k];
        d->leaf_id = s->leaf_id;
        d->leaf_name = s->leaf_name;
        d->leaf_name_len = s->leaf_name_len;
        d->leaf_task = s->leaf_task;
        d->flags = s->flags;
        d->ntasks = s->ntasks;
        d->closing = s->closing;
        CHECK(s->closing == NONE || s->closing < in->ntasks,
              "stack %u: closing index %u out of range", k, s->closing);
        d->closing_id = s->closing == NONE ? 0 : in->tasks[s->closing].id;
    }
    m->ntasks = in->ntasks;
    m->parent = xcalloc(1, (in->ntasks + 1) * sizeof *m->parent);
    m->link = xcalloc(1, (in->ntasks + 1) * sizeof *m->link);
    for (uint32_t i = 0; i <= in->ntasks; i++) {
        m->parent[i] = au_resolver_parent(r, i);
        m->link[i] = au_resolver_link(r, i);
    }
    CHECK(au_resolver_link(r, UINT32_MAX) == AU_LINK_NONE,
          "au_resolver_link(UINT32_MAX) is not AU_LINK_NONE");
    CHECK(au_resolver_parent(r, UINT32_MAX) == NONE,
          "au_resolver_parent(UINT32_MAX) is not UINT32_MAX");
    core_ctx c = {r, out};
    fetch_entries(m, core_entries, &c);
}

NO_COV static void from_ref(mresult *m, const ref_result *ref) {
    memset(m, 0, sizeof *m);
    m->status = ref->status;
    m->stats = ref->stats;
    if (ref->status != AU_OK) return;
    m->nstacks = ref->nstacks;
    m->stacks = xcalloc(1, ref->nstacks * sizeof *m->stacks);
    for (uint32_t k = 0; k < ref->nstacks; k++) {
        const ref_stack *s = &ref->stacks[k];
        mstack *d = &m->stacks[k];
        d->leaf_id = s->leaf_id;
        d->leaf_name = s->leaf_name;
        d->leaf_name_len = s->leaf_name_len;
        d->leaf_task = s->leaf_task;
        d->flags = s->flags;
        d->ntasks = s->ntasks;
        d->closing = s->closing;
        d->closing_id =
            s->closing == NONE ? 0 : ref->in->tasks[s->closing].id;
    }
    m->ntasks = ref->ntasks;
    m->parent = xcalloc(1, (ref->ntasks + 1) * sizeof *m->parent);
    memcpy(m->parent, ref->parent, ref->ntasks * sizeof *m->parent);
    m->parent[ref->ntasks] = NONE;
    m->link = xcalloc(1, (ref->ntasks + 1) * sizeof *m->link);
    memcpy(m->link, ref->link, ref->ntasks * sizeof *m->link);
    m->link[ref->ntasks] = AU_LINK_NONE;
    fetch_entries(m, ref_entries, ref);
}

NO_COV static void mresult_free(mresult *m) {
    for (uint32_t k = 0; k < m->nstacks; k++) {
        free(m->stacks[k].entries);
        free(m->stacks[k].probe);
    }
    free(m->stacks);
    free(m->parent);
    free(m->link);
    memset(m, 0, sizeof *m);
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

NO_COV static void dump(const char *title, const mresult *res) {
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
    for (uint32_t k = 0; k < res->nstacks && k < 24; k++) {
        const mstack *s = &res->stacks[k];
        fprintf(stderr,
                "  leaf %#llx task %d flags %#x ntasks %u closing %#llx "
                "length %llu:",
                (unsigned long long)s->leaf_id, (int)s->leaf_task, s->flags,
                s->ntasks, (unsigned long long)s->closing_id,
                (unsigned long long)s->length);
        for (uint32_t e = 0; e < s->nentries && e < 32; e++)
            fprintf(stderr, " %s%#llx", kind_str(s->entries[e].kind),
                    (unsigned long long)s->entries[e].id);
        fprintf(stderr, s->nentries > 32 ? " ...\n" : "\n");
        if (s->nprobe) {
            fprintf(stderr, "    with cap %u:", s->nprobe);
            for (uint32_t e = 0; e < s->nprobe && e < 32; e++)
                fprintf(stderr, " %s%#llx", kind_str(s->probe[e].kind),
                        (unsigned long long)s->probe[e].id);
            fprintf(stderr, "\n");
        }
    }
    fprintf(stderr, "  parents:");
    for (uint32_t i = 0; i < res->ntasks && i < 64; i++)
        fprintf(stderr, " %d", (int)res->parent[i]);
    fprintf(stderr, "\n");
}

NO_COV static void dump_sample(const au_thread_sample *in) {
    fprintf(stderr,
            "--- sample: limits depth %u tasks %u links %u; probe cap %u; "
            "null mode %#x\n  thread (%u):",
            S.limits.max_depth, S.limits.max_tasks, S.limits.max_links,
            S.probe_cap, S.null_mode, in->nframes);
    for (uint32_t j = 0; j < in->nframes && in->frames && j < 32; j++)
        fprintf(stderr, " %#llx", (unsigned long long)in->frames[j]);
    fprintf(stderr, "\n");
    for (uint32_t i = 0; i < in->ntasks && in->tasks && i < 32; i++) {
        const au_task *t = &in->tasks[i];
        fprintf(stderr,
                "  task[%u] id %#llx awaits %#llx creator %#llx flags %u "
                "frames:",
                i, (unsigned long long)t->id, (unsigned long long)t->awaits,
                (unsigned long long)t->creator, t->flags);
        if (t->nframes && !t->frames) fprintf(stderr, " NULL");
        for (uint32_t f = 0; f < t->nframes && t->frames && f < 16; f++)
            fprintf(stderr, " %#llx", (unsigned long long)t->frames[f]);
        fprintf(stderr, "\n");
    }
    for (uint32_t k = 0; k < in->nlinks && in->links && k < 32; k++)
        fprintf(stderr, "  link child %#llx parent %#llx\n",
                (unsigned long long)in->links[k].child,
                (unsigned long long)in->links[k].parent);
}

/* What a failed CHECK prints after its message (check_on_failure). */
NO_COV static void dump_context(void *ud) {
    (void)ud;
    if (cur_in) dump_sample(cur_in);
    if (cur_core) dump("au_resolve", cur_core);
    if (cur_ref) dump("reference", cur_ref);
}

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

/* CMP_INDICES: leaf_task, closing, TASK/CYCLE entry tasks and parents too
 * (not across a permutation); CMP_EXACT: every entry field. */
enum { CMP_INDICES = 1, CMP_EXACT = 2 };

NO_COV static void compare_entries(const char *what, uint32_t k,
                                   const char *which, const au_entry *x,
                                   const au_entry *y, uint32_t n,
                                   unsigned mode) {
    for (uint32_t e = 0; e < n; e++) {
        const au_entry *p = &x[e], *q = &y[e];
        CHECK(p->kind == q->kind && p->id == q->id,
              "%s: stack %u %s entry %u: %s%#llx vs %s%#llx", what, k, which,
              e, kind_str(p->kind), (unsigned long long)p->id,
              kind_str(q->kind), (unsigned long long)q->id);
        int marker = p->kind == AU_ENTRY_TASK || p->kind == AU_ENTRY_CYCLE;
        if ((mode & CMP_EXACT) || ((mode & CMP_INDICES) && marker))
            CHECK(p->task == q->task,
                  "%s: stack %u %s entry %u: task %u vs %u", what, k, which,
                  e, p->task, q->task);
    }
}

NO_COV static void compare(const char *what, const mresult *a,
                           const mresult *b, unsigned mode) {
    CHECK(a->status == b->status, "%s: status %d vs %d", what, a->status,
          b->status);
    if (a->status != AU_OK) return;
    CHECK(a->nstacks == b->nstacks, "%s: %u stacks vs %u", what, a->nstacks,
          b->nstacks);
    for (uint32_t k = 0; k < a->nstacks; k++) {
        const mstack *x = &a->stacks[k], *y = &b->stacks[k];
        CHECK(x->leaf_id == y->leaf_id, "%s: stack %u leaf %#llx vs %#llx",
              what, k, (unsigned long long)x->leaf_id,
              (unsigned long long)y->leaf_id);
        CHECK(x->flags == y->flags, "%s: stack %u flags %#x vs %#x", what, k,
              x->flags, y->flags);
        CHECK(x->ntasks == y->ntasks, "%s: stack %u ntasks %u vs %u", what, k,
              x->ntasks, y->ntasks);
        CHECK(x->closing_id == y->closing_id,
              "%s: stack %u closing %#llx vs %#llx", what, k,
              (unsigned long long)x->closing_id,
              (unsigned long long)y->closing_id);
        CHECK(x->leaf_name == y->leaf_name &&
                  x->leaf_name_len == y->leaf_name_len,
              "%s: stack %u leaf names differ", what, k);
        CHECK(x->length == y->length, "%s: stack %u length %llu vs %llu", what,
              k, (unsigned long long)x->length, (unsigned long long)y->length);
        if (mode & (CMP_INDICES | CMP_EXACT)) {
            CHECK(x->leaf_task == y->leaf_task,
                  "%s: stack %u leaf_task %u vs %u", what, k, x->leaf_task,
                  y->leaf_task);
            CHECK(x->closing == y->closing, "%s: stack %u closing %u vs %u",
                  what, k, x->closing, y->closing);
        }
        CHECK(x->nentries == y->nentries && x->nprobe == y->nprobe,
              "%s: stack %u fetched %u/%u vs %u/%u entries", what, k,
              x->nentries, x->nprobe, y->nentries, y->nprobe);
        compare_entries(what, k, "", x->entries, y->entries, x->nentries,
                        mode);
        compare_entries(what, k, "(capped)", x->probe, y->probe, x->nprobe,
                        mode);
    }
    if (mode & (CMP_INDICES | CMP_EXACT)) {
        CHECK(a->ntasks == b->ntasks, "%s: ntasks differ", what);
        for (uint32_t i = 0; i <= a->ntasks; i++)
        {
            CHECK(a->parent[i] == b->parent[i],
                  "%s: parent of task index %u: %d vs %d", what, i,
                  (int)a->parent[i], (int)b->parent[i]);
            CHECK(a->link[i] == b->link[i],
                  "%s: link kind of task index %u: %u vs %u", what, i,
                  a->link[i], b->link[i]);
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

NO_COV static void model_build(model *m, const au_thread_sample *in) {
    memset(m, 0, sizeof *m);
    m->in = in;
    uint32_t n = m->n = in->ntasks;
    const au_task *T = in->tasks;
    m->ids = xcalloc(1, n * sizeof *m->ids);
    for (uint32_t i = 0; i < n; i++) m->ids[i] = (pair){T[i].id, i, 0};
    qsort(m->ids, n, sizeof *m->ids, cmp_pair);
    m->present = xcalloc(1, n);
    for (uint32_t i = 0; i < n; i++) {
        m->present[i] = m_find(m, T[i].id) == i;
        m->npresent += m->present[i];
    }
    m->waiting = xcalloc(1, n);
    m->awaiters = xcalloc(1, n * sizeof *m->awaiters);
    for (uint32_t i = 0; i < n; i++) {
        if (!m->present[i]) continue;
        uint32_t t = m_valid(m, i, T[i].awaits);
        if (t == NONE) continue;
        m->awaiters[m->nawaiters++] = (pair){t, 0, i};
        m->waiting[i] = 1;
    }
    qsort(m->awaiters, m->nawaiters, sizeof *m->awaiters, cmp_pair);
    m->strong = xcalloc(1, in->nlinks * sizeof *m->strong);
    for (uint32_t k = 0; k < in->nlinks; k++) {
        uint32_t c = m_find(m, in->links[k].child);
        uint32_t p = m_find(m, in->links[k].parent);
        if (c == NONE || p == NONE || c == p) continue;
        m->strong[m->nstrong++] = (pair){c, 0, p};
        m->waiting[p] = 1;
    }
    qsort(m->strong, m->nstrong, sizeof *m->strong, cmp_pair);
    m->parent = xcalloc(1, n * sizeof *m->parent);
    m->is_parent = xcalloc(1, n);
    for (uint32_t i = 0; i < n; i++) {
        m->parent[i] = m->present[i] ? m_parent(m, i) : NONE;
        if (m->parent[i] != NONE) m->is_parent[m->parent[i]] = 1;
    }
    /* R: flagged, present, outermost frame not 0 and on the thread stack;
     * the earliest there, then the lowest id. */
    m->R = NONE;
    m->b = in->nframes;
    for (uint32_t i = 0; i < n; i++) {
        if (!m->present[i] || !(T[i].flags & AU_TASK_RUNNING) ||
            !T[i].nframes || T[i].frames[0] == 0)
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

/* Checks one stack's fetched entries (a prefix of the whole stack when it
 * was cut; then its last entry is TRUNCATED) against the shape of rule 3:
 * thread frames [0..b), then at most one TRUNCATED (depth) or CYCLE entry,
 * then TASK markers each followed by exactly that task's frames.  Returns
 * the number of markers, stored in markers[]. */
NO_COV static uint32_t check_shape(const model *m, uint32_t k,
                                   const mstack *s, const au_entry *E,
                                   uint32_t ne, int cut, uint32_t *markers,
                                   uint32_t *seen) {
    const au_thread_sample *in = m->in;
    const au_task *T = in->tasks;
    if (cut)
        CHECK(ne >= 1 && E[ne - 1].kind == AU_ENTRY_TRUNCATED,
              "stack %u: cut at %u entries but not ending in TRUNCATED", k,
              ne);
    const uint32_t nchk = cut ? ne - 1 : ne;
    if (s->flags & AU_STACK_THREAD_ONLY) {
        CHECK(cut || ne == in->nframes,
              "thread-only stack: %u entries for %u thread frames", ne,
              in->nframes);
        for (uint32_t e = 0; e < nchk; e++)
            CHECK(E[e].kind == AU_ENTRY_FRAME && E[e].id == in->frames[e],
                  "thread-only stack: entry %u is not thread frame %u", e, e);
        return 0;
    }
    const uint32_t S_ = s->leaf_task;
    const uint32_t b = m->R != NONE ? m->b : in->nframes;
    uint32_t e = 0;
    for (; e < b && e < nchk; e++)
        CHECK(E[e].kind == AU_ENTRY_FRAME && E[e].id == in->frames[e],
              "stack %u: entry %u is not thread frame %u", k, e, e);
    if (e < nchk && (s->flags & AU_STACK_TRUNCATED_DEPTH)) {
        CHECK(E[e].kind == AU_ENTRY_TRUNCATED,
              "stack %u: depth-truncated, entry %u is not TRUNCATED", k, e);
        e++;
    } else if (e < nchk && (s->flags & AU_STACK_CYCLE)) {
        CHECK(E[e].kind == AU_ENTRY_CYCLE && E[e].task == s->closing &&
                  E[e].id == s->closing_id,
              "stack %u: entry %u is not the CYCLE entry naming closing", k,
              e);
        e++;
    }
    uint32_t nm = 0;
    while (e < nchk) {
        CHECK(E[e].kind == AU_ENTRY_TASK,
              "stack %u: entry %u: expected a TASK marker, got %s", k, e,
              kind_str(E[e].kind));
        uint32_t t = E[e].task;
        CHECK(t < m->n && m->present[t] && T[t].id == E[e].id,
              "stack %u: TASK entry %u names task index %u wrongly", k, e, t);
        CHECK(seen[t] != k + 1, "stack %u: task %#llx appears twice", k,
              (unsigned long long)T[t].id);
        seen[t] = k + 1;
        markers[nm++] = t;
        e++;
        const uint64_t *fr;
        uint32_t nf;
        if (t == m->R && S_ == m->R) {
            fr = in->frames + b;
            nf = in->nframes - b;
        } else {
            fr = T[t].frames;
            nf = T[t].nframes;
        }
        for (uint32_t f = 0; f < nf && e < nchk; f++, e++)
            CHECK(E[e].kind == AU_ENTRY_FRAME && E[e].id == fr[f],
                  "stack %u: entry %u: expected frame %u of task %#llx", k, e,
                  f, (unsigned long long)T[t].id);
    }
    /* Rule 1 along the chain. */
    for (uint32_t i = 0; i + 1 < nm; i++) {
        uint32_t want = m->parent[markers[i + 1]];
        CHECK(want == markers[i],
              "stack %u: parent of %#llx is %#llx, expected %#llx", k,
              (unsigned long long)T[markers[i + 1]].id,
              (unsigned long long)T[markers[i]].id,
              (unsigned long long)(want == NONE ? 0 : T[want].id));
    }
    if (!cut)
        CHECK(nm == s->ntasks && nm >= 1 && markers[nm - 1] == S_,
              "stack %u: %u markers, ntasks %u, last marker not the leaf", k,
              nm, s->ntasks);
    return nm;
}

NO_COV static void check_invariants(const au_thread_sample *in,
                                    const mresult *res) {
    model m;
    model_build(&m, in);
    const au_task *T = in->tasks;
    const uint32_t max_depth = eff(S.limits.max_depth, AU_DEFAULT_MAX_DEPTH);

    CHECK(res->stats.tasks_ignored == m.n - m.npresent,
          "tasks_ignored %u, expected %u", res->stats.tasks_ignored,
          m.n - m.npresent);
    if (m.npresent == 0 && in->nframes == 0) {
        CHECK(res->nstacks == 0, "no task, no thread frame: %u stacks",
              res->nstacks);
    } else if (m.npresent == 0) {
        const mstack *s = &res->stacks[0];
        CHECK(res->nstacks == 1 && s->leaf_id == 0 && s->leaf_task == NONE &&
                  s->leaf_name == NULL && s->ntasks == 0 &&
                  s->closing == NONE && s->flags == AU_STACK_THREAD_ONLY,
              "no present task: expected one THREAD_ONLY stack");
    } else {
        CHECK(res->nstacks >= 1 && res->nstacks <= m.npresent,
              "%u stacks for %u present tasks", res->nstacks, m.npresent);
    }
    /* Parents (au_resolver_parent) against rule 1 computed here. */
    for (uint32_t i = 0; i < m.n; i++)
        CHECK(res->parent[i] == m.parent[i],
              "au_resolver_parent(%u) = %d, rule 1 says %d", i,
              (int)res->parent[i], (int)m.parent[i]);
    CHECK(res->parent[m.n] == NONE, "au_resolver_parent(ntasks) != NONE");

    uint64_t total = 0;
    uint32_t nrunning = 0, ncycles = 0, ntrunc = 0, any_depth_cut = 0;
    uint32_t *seen = xcalloc(1, m.n * sizeof *seen); /* stamp: stack k + 1 */
    uint32_t *pseen = xcalloc(1, m.n * sizeof *pseen);
    uint32_t *cseen = xcalloc(1, m.n * sizeof *cseen); /* chain walk stamps */
    unsigned char *covered = xcalloc(1, m.n);
    unsigned char *has_stack = xcalloc(1, m.n);
    uint32_t *markers = xcalloc(1, (m.n + 1) * sizeof *markers);
    uint32_t *chain = xcalloc(1, (m.n + 1) * sizeof *chain);

    for (uint32_t k = 0; k < res->nstacks; k++) {
        const mstack *s = &res->stacks[k];
        total += s->length;
        CHECK(s->length >= 1, "stack %u is empty", k);
        CHECK(k == 0 || res->stacks[k - 1].leaf_id < s->leaf_id,
              "stack %u: leaf ids not strictly ascending", k);
        const int dtrunc = (s->flags & AU_STACK_TRUNCATED_DEPTH) != 0;
        const int cyc = (s->flags & AU_STACK_CYCLE) != 0;
        CHECK(!(s->flags & ~(uint32_t)(AU_STACK_RUNNING | AU_STACK_CYCLE |
                                       AU_STACK_TRUNCATED_DEPTH |
                                       AU_STACK_THREAD_ONLY)),
              "stack %u: unknown flags %#x", k, s->flags);
        if (s->flags & AU_STACK_RUNNING) nrunning++;
        if (cyc) ncycles++;
        if (dtrunc) ntrunc++, any_depth_cut = 1;
        CHECK(!(dtrunc && cyc), "stack %u: both CYCLE and TRUNCATED_DEPTH", k);
        CHECK(cyc == (s->closing != NONE),
              "stack %u: CYCLE flag %d, closing %u", k, cyc, s->closing);
        if (s->nentries)
            check_shape(&m, k, s, s->entries, s->nentries, s->cut, markers,
                        seen);
        if (s->nprobe) {
            /* The capped copy: the root side of the stack, then TRUNCATED
             * at cap - 1. */
            check_shape(&m, k, s, s->probe, s->nprobe, 1, markers, pseen);
            uint32_t whole = s->cut ? s->nentries - 1 : s->nentries;
            for (uint32_t e = 0; e + 1 < s->nprobe && e < whole; e++)
                CHECK(s->probe[e].kind == s->entries[e].kind &&
                          s->probe[e].id == s->entries[e].id &&
                          s->probe[e].task == s->entries[e].task,
                      "stack %u: capped entry %u differs from the whole", k, e);
            memset(pseen, 0, m.n * sizeof *pseen);
        }
        if (s->flags & AU_STACK_THREAD_ONLY) {
            CHECK(s->length == in->nframes,
                  "thread-only stack: length %llu for %u thread frames",
                  (unsigned long long)s->length, in->nframes);
            continue;
        }

        /* The leaf. */
        const uint32_t S_ = s->leaf_task;
        CHECK(S_ < m.n && m.present[S_] && T[S_].id == s->leaf_id &&
                  s->leaf_name == T[S_].name &&
                  s->leaf_name_len == T[S_].name_len,
              "stack %u: leaf_task/leaf_name do not match leaf %#llx", k,
              (unsigned long long)s->leaf_id);
        has_stack[S_] = 1;
        CHECK(((s->flags & AU_STACK_RUNNING) != 0) == (S_ == m.R),
              "stack %u: RUNNING flag %d but the running task is %#llx", k,
              (s->flags & AU_STACK_RUNNING) != 0,
              (unsigned long long)(m.R == NONE ? 0 : T[m.R].id));

        /* The description against rule 3, walked here from the leaf with
         * the parents computed here: ntasks, flags, closing, length. */
        CHECK(s->ntasks >= 1 && s->ntasks <= max_depth && s->ntasks <= m.n,
              "stack %u: ntasks %u", k, s->ntasks);
        uint32_t len = 0, t = S_;
        const uint32_t b = m.R != NONE ? m.b : in->nframes;
        uint64_t want = b + (dtrunc || cyc ? 1 : 0);
        for (;;) {
            CHECK(t != NONE && cseen[t] != k + 1,
                  "stack %u: ntasks %u is longer than the chain", k,
                  s->ntasks);
            cseen[t] = k + 1;
            chain[len++] = t;
            covered[t] = 1;
            want += 1 + (t == m.R && S_ == m.R ? in->nframes - b
                                               : T[t].nframes);
            if (len == s->ntasks) break;
            t = m.parent[t];
        }
        uint32_t P = m.parent[chain[len - 1]];
        if (P == NONE)
            CHECK(!cyc && !dtrunc, "stack %u: top task is a root but flags %#x",
                  k, s->flags);
        else if (cseen[P] == k + 1)
            CHECK(cyc && s->closing == P,
                  "stack %u: chain closes on %#llx but flags %#x closing %d", k,
                  (unsigned long long)T[P].id, s->flags, (int)s->closing);
        else
            CHECK(dtrunc && len == max_depth,
                  "stack %u: top task has a parent outside the chain, flags "
                  "%#x, %u tasks",
                  k, s->flags, len);
        CHECK(s->length == want, "stack %u: length %llu, rule 3 gives %llu", k,
              (unsigned long long)s->length, (unsigned long long)want);

        /* Rule 2: why does this leaf have a stack? */
        if (!(S_ == m.R || !m.waiting[S_] || !m.is_parent[S_]))
            CHECK((cyc && s->closing == S_) || dtrunc, /* or a long cycle */
                  "stack %u: leaf %#llx is waiting, a parent and not a cycle "
                  "representative",
                  k, (unsigned long long)s->leaf_id);
    }

    CHECK(total <= (uint64_t)res->nstacks *
                       ((uint64_t)in->nframes + 1 +
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
        if (!any_depth_cut)
            CHECK(covered[i], "task %#llx appears in no stack",
                  (unsigned long long)T[i].id);
    }
    free(seen);
    free(pseen);
    free(cseen);
    free(covered);
    free(has_stack);
    free(markers);
    free(chain);
    model_free(&m);
}

/* The task indices of a result point at the tasks they name (the rest of
 * check_invariants is implied by equality with an already checked result
 * up to indices). */
NO_COV static void check_indices(const au_thread_sample *in,
                                 const mresult *res) {
    const au_task *T = in->tasks;
    for (uint32_t k = 0; k < res->nstacks; k++) {
        const mstack *s = &res->stacks[k];
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
    for (uint32_t i = 0; i < res->ntasks; i++) {
        uint32_t p = res->parent[i];
        CHECK(p == NONE || p < in->ntasks, "parent of %u out of range", i);
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

NO_COV static void check_nomem(const au_thread_sample *in,
                               const mresult *mref) {
    failing.fail_at = 0;
    au_resolver *r = NULL;
    CHECK(au_resolver_new(&failing_alloc, &S.limits, &r) == AU_OK && r != NULL,
          "au_resolver_new failed with memory available");
    au_stacks out;
    mresult m;
    failing.fail_at = failing.calls + S.nomem; /* that call and every later */
    failing.fail_after = 1;
    int st = au_resolve(r, in, &out);
    failing.fail_at = 0;
    if (st != AU_ERR_NOMEM) {
        from_core(&m, st, r, in, &out);
        compare("allocation failures allowed vs reference", &m, mref,
                CMP_INDICES);
        mresult_free(&m);
    }
    st = au_resolve(r, in, &out);
    from_core(&m, st, r, in, &out);
    compare("after allocation failures vs reference", &m, mref, CMP_INDICES);
    mresult_free(&m);
    au_resolver_free(r);
    CHECK(failing.live == 0, "%lld blocks leaked after allocation failures",
          (long long)failing.live);
}

/* Calls with NULL arguments, once. */
NO_COV static void check_null_args(au_resolver *r) {
    au_thread_sample empty;
    au_stacks out;
    memset(&empty, 0, sizeof empty);
    CHECK(au_resolve(r, NULL, &out) == AU_ERR_ARG,
          "au_resolve(r, NULL, out) is not AU_ERR_ARG");
    CHECK(au_resolve(r, &empty, NULL) == AU_ERR_ARG,
          "au_resolve(r, in, NULL) is not AU_ERR_ARG");
    CHECK(au_resolve(NULL, &empty, &out) == AU_ERR_ARG,
          "au_resolve(NULL, in, out) is not AU_ERR_ARG");
}

/* ========================================================================
 * Entry points
 * ===================================================================== */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    au_fuzz_run_from_workspace();
    check_on_failure(dump_context, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    decode(data, size);
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: the shuffle's seed */
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001b3ull;
    rng = h;

    au_thread_sample in = make_sample(S.tasks, S.links);
    au_resolver *r = get_resolver();
    static int null_args_checked;
    if (!null_args_checked) {
        null_args_checked = 1;
        check_null_args(r);
    }
    ref_result ref;
    mresult mref, core, again, perm;
    au_stacks out;
    cur_in = &in;
    cur_core = cur_ref = NULL;

    ref_resolve(&in, &S.limits, &ref);
    from_ref(&mref, &ref);
    cur_ref = &mref;

    int st = au_resolve(r, &in, &out);
    from_core(&core, st, r, &in, &out);
    cur_core = &core;
    CHECK(st == ref.status, "status %d (%s), reference says %d (%s)", st,
          au_status_str(st), ref.status, au_status_str(ref.status));

    if (st == AU_OK) {
        check_invariants(&in, &core);
        compare("core vs reference", &core, &mref, CMP_INDICES);

        /* Warm repeat: identical, and no allocation at all, neither in
         * au_resolve nor in au_stack_entries. */
        uint64_t calls0 = counting.calls;
        int st2 = au_resolve(r, &in, &out);
        uint64_t allocs = counting.calls - calls0;
        from_core(&again, st2, r, &in, &out);
        CHECK(allocs == 0 && again.stats.allocations == 0,
              "warm repeat allocated (%llu realloc calls, stats %llu)",
              (unsigned long long)allocs,
              (unsigned long long)again.stats.allocations);
        CHECK(counting.calls == calls0, "au_stack_entries allocated (%llu calls)",
              (unsigned long long)(counting.calls - calls0));
        compare("repeat vs first", &again, &core, CMP_EXACT);
        mresult_free(&again);
    }

    /* Allocation failure: AU_ERR_NOMEM or the right answer, and the
     * context still works once memory is back. */
    if (S.nomem && S.ntasks <= BIG_TASKS) check_nomem(&in, &mref);

    /* Permuted copy: the same result up to task indices. */
    shuffle_tasks();
    au_thread_sample pin = make_sample(perm_tasks, perm_links);
    int st3 = au_resolve(r, &pin, &out);
    from_core(&perm, st3, r, &pin, &out);
    cur_in = &pin;
    compare("permuted vs first", &perm, &core, 0);
    if (st3 == AU_OK) check_indices(&pin, &perm);
    mresult_free(&perm);

    mresult_free(&core);
    mresult_free(&mref);
    ref_result_free(&ref);
    cur_in = NULL;
    cur_core = cur_ref = NULL;
    return 0;
}
