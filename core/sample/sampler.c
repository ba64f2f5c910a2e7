/*
 * The sampler: every layer joined, from a process or a snapshot to named,
 * task-aware stacks (see asyncunwind.h).
 *
 * One sample:
 *   1. the CPython model reads every thread and its frames (pythreads.c);
 *   2. the asyncio model reads the tasks of every thread's event loop,
 *      their coroutine chains and their links (core/asyncio/);
 *   3. per thread, the frames and tasks become an au_thread_sample and the
 *      resolver turns it into stacks;
 *   4. frames and tasks are named once, into flat arrays, so a caller (or
 *      au_render) walks a stack with au_sample_stack_entries and indexes.
 *
 * Frame ids given to the resolver are indices into the sample's frame
 * table plus one, which makes a stack entry name its frame directly.  The
 * resolver splices the running task into the thread's stack by frame
 * identity, so a coroutine frame that is also on the thread's stack gets
 * the id of that thread frame.
 *
 * Nothing here reads the target directly except through the layers below;
 * the only other input is the kernel's thread names (/proc), which a
 * snapshot records.
 */
#define _GNU_SOURCE
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "asyncunwind.h"
#include "au_internal.h"
#include "au_procmaps.h"
#include "au_proctask.h"
#include "au_pytasks.h"
#include "au_sampler.h"

#define NONE UINT32_MAX
#define NAME_CAP 16u /* /proc comm: 15 bytes */

/* A thread name from /proc, cached by TID: reading comm costs a system
 * call or three, and names rarely change. */
typedef struct tname {
    uint64_t tid;
    uint32_t len, seen; /* seen: sample number of the last read */
    char name[NAME_CAP];
} tname;

/* Re-read a cached thread name after this many samples: a thread may set
 * its name after it started. */
#define NAME_REFRESH 1024u
/* Look again for _AsyncioDebug and the agent's region, while one is
 * missing, after this many samples, doubling each time up to the maximum:
 * they appear once _asyncio is imported and once the agent recorded a
 * task, and a target without the agent should not pay a maps read (and
 * its allocation) every few samples for ever. */
#define ATTACH_RETRY 64u
#define ATTACH_RETRY_MAX 8192u
/* A process with no asyncio task (no tasks, no agent) is looked at by
 * the asyncio model once in IDLE_EVERY samples only: each look reads the
 * interpreter, sys.modules and the thread states (a second system call,
 * 3 pages, half of a frame-only sample's time).  asyncio imported later
 * and its first task show within IDLE_EVERY samples (64 ms at the default
 * 1 ms interval). */
#define IDLE_EVERY 64u

/* The name of the pseudo-thread that holds tasks of loops no thread runs. */
static const char no_loop_name[] = "(event loops not running)";

struct au_sampler {
    au_allocator alloc;
    au_sampler_options opt;
    au_sampler_stats stats;
    int pid;
    uint32_t version_hex;
    int exact;
    uint64_t runtime_addr;
    uint64_t asyncio_debug_addr, agent_addr; /* see au_pyruntime */
    const au_snapshot *snap;
    au_memsrc *base;  /* the live process or the snapshot */
    int borrowed;     /* base is the caller's (au_sampler_open_snapshot_via) */
    int paged;        /* a snapshot read by pages (au_sampler_open_image) */
    au_memsrc *rec;   /* the last sample's recorder (AU_SAMPLER_RECORD) */
    au_pyreader *reader;
    au_tasks *model;   /* the asyncio model; NULL with AU_SAMPLER_NO_TASKS */
    uint32_t sample_no, attach_at, attach_every;
    uint32_t seen_tasks;       /* a sample has found tasks */
    /* The asyncio model's last result while the process has no asyncio in
     * use, served until idle_until to samples whose thread states are
     * those it was taken with (idle_ts): their names stay. */
    au_tasks_result idle_tr;
    uint64_t *idle_ts;
    uint32_t idle_n, idle_cap, idle_until;

    au_sample out;
    au_sample_thread *threads;
    au_sample_task *tasks;
    au_sample_stack *stacks;
    au_sample_frame *frames;
    uint32_t threads_cap, tasks_cap, stacks_cap, frames_cap;

    /* Resolver inputs and contexts, one per thread (a resolver keeps
     * pointers into its input until its next call). */
    au_thread_sample *in;
    uint64_t *ids;        /* frame ids: ids[k] names frame k (k + 1), except
                             that a running task's outermost coroutine frame
                             takes the id of the same frame on its thread */
    au_task *rtasks;      /* every thread's tasks, laid out like tasks */
    au_link *rlinks;      /* every thread's strong links, grouped by thread */
    uint32_t *order;      /* model task index -> sample task index */
    uint32_t *fslots;     /* thread frames by address (frame index + 1) */
    uint32_t fmask;       /* fslots in use: fmask + 1, a power of two */
    uint32_t rtasks_cap, rlinks_cap, order_cap, fslots_cap;
    au_stack *rstacks;    /* each sample stack's resolver description */
    au_resolver **resolvers;
    uint32_t in_cap, ids_cap, rstacks_cap, resolvers_cap;

    tname *names;
    uint32_t names_cap, nnames;

    au_tid_map tid_map;     /* live, before 3.11: pthread -> TID */
    au_stat_cache stat_fds; /* AU_SAMPLER_CPU_STATE */
    int anchor;             /* live: the process opened (proctask.h); -1 */
};

static int sampler_grow(au_sampler *s, void *pptr, uint32_t *cap, size_t need, size_t elem) {
    return au_grow(&s->alloc, &s->stats.allocations, (void **)pptr, cap, need, elem);
}

/* ---- thread names ------------------------------------------------------ */

static const char *live_name(au_sampler *s, uint64_t tid, uint32_t *len) {
    *len = 0;
    if (!tid) return NULL;
    tname *t = NULL;
    for (uint32_t i = 0; i < s->nnames; i++)
        if (s->names[i].tid == tid) t = &s->names[i];
    if (!t) {
        /* Forget threads not seen for a while before growing. */
        uint32_t k = 0;
        for (uint32_t i = 0; i < s->nnames; i++)
            if (s->sample_no - s->names[i].seen < NAME_REFRESH) s->names[k++] = s->names[i];
        s->nnames = k;
        if (sampler_grow(s, &s->names, &s->names_cap, (size_t)s->nnames + 1, sizeof *s->names)) return NULL;
        t = &s->names[s->nnames++];
        t->tid = tid;
        t->seen = s->sample_no - NAME_REFRESH;
    }
    if (s->sample_no - t->seen >= NAME_REFRESH) {
        t->len = au_proc_thread_name(s->pid, tid, t->name, NAME_CAP);
        t->seen = s->sample_no;
    }
    *len = t->len;
    return t->len ? t->name : NULL;
}

static const char *snap_name(const au_sampler *s, uint64_t tid, uint32_t *len) {
    const au_snapshot_meta *m = au_snapshot_get_meta(s->snap);
    *len = 0;
    for (uint32_t i = 0; tid && i < m->nthreads; i++)
        if (m->threads[i].native_id == tid) {
            /* An empty name is none, as live_name has it: a recorded
             * thread without a name must replay without one. */
            *len = m->threads[i].name_len;
            return *len ? m->threads[i].name : NULL;
        }
    return NULL;
}

/* ---- thread ids and CPU state ------------------------------------------- */

/* Before 3.11 the interpreter keeps no TID, only the pthread id: map
 * the pthreads of threads [0, n) to TIDs (au_proctask.h), 64 at a time. */
static void find_tids(au_sampler *s, uint32_t n_threads) {
    uint64_t pth[64], tid[64];
    uint32_t idx[64];
    uint32_t n = 0;
    for (uint32_t i = 0; i < n_threads; i++) {
        au_sample_thread *t = &s->threads[i];
        if (t->native_id || !t->thread_id || (t->flags & AU_THREAD_NO_LOOP)) continue;
        idx[n] = i;
        pth[n++] = t->thread_id;
        if (n == 64) {
            au_tid_map_fill(&s->tid_map, s->base, s->pid, s->sample_no, pth, tid, n);
            for (uint32_t k = 0; k < n; k++) s->threads[idx[k]].native_id = tid[k];
            n = 0;
        }
    }
    if (n) {
        au_tid_map_fill(&s->tid_map, s->base, s->pid, s->sample_no, pth, tid, n);
        for (uint32_t k = 0; k < n; k++) s->threads[idx[k]].native_id = tid[k];
    }
}

/* TIDs for threads [0, n) that the interpreter names only by pthread id
 * (3.9, 3.10): live, from the pthread map; replayed, from the snapshot's
 * PTHREAD records, so that a replay shows the TIDs its live sample
 * showed (a snapshot without them shows pthread ids, as it always did). */
static void fill_tids(au_sampler *s, uint32_t n) {
    if (s->version_hex >= 0x030b0000u) return;
    if (!s->snap) {
        /* The reader reads the TIDs with the rest of its sample once the
         * descriptor's offset is known (no read of their own); until
         * then, and for threads it could not map, the map reads them. */
        find_tids(s, n);
        au_pyreader_set_tid_offset(s->reader, s->tid_map.found ? s->tid_map.offset : 0);
        return;
    }
    const au_snapshot_meta *m = au_snapshot_get_meta(s->snap);
    for (uint32_t i = 0; i < n; i++) {
        au_sample_thread *t = &s->threads[i];
        for (uint32_t k = 0; !t->native_id && t->thread_id && k < m->nthreads; k++)
            if (m->threads[k].pthread_id == t->thread_id) t->native_id = m->threads[k].native_id;
    }
}

/* AU_THREAD_ON_CPU from the kernel's state of each thread: one /proc read
 * per thread, only when asked for (a pread on a descriptor kept open). */
static void mark_on_cpu(au_sampler *s) {
    for (uint32_t i = 0; i < s->out.nthreads; i++) {
        au_sample_thread *t = &s->threads[i];
        char state;
        if (!t->native_id) continue;
        int rc = au_stat_cache_state(&s->stat_fds, s->pid, t->native_id, &state);
        if (rc == AU_OK && state == 'R') t->flags |= AU_THREAD_ON_CPU;
        /* A TID from the pthread map that is no thread of the target: the
         * map is stale (or was wrong); search again. */
        if (rc == AU_ERR_NOPROC && s->version_hex < 0x030b0000u) s->tid_map.found = 0;
    }
}

/* ---- one sample ---------------------------------------------------------- */

static void name_frame(const au_pyreader *r, const au_pyframe *f, au_sample_frame *out) {
    const au_pycode *c = au_pyreader_code(r, f->code);
    memset(out, 0, sizeof *out);
    out->addr = f->addr;
    out->code_addr = f->code_addr;
    out->line = f->line;
    if (c) {
        out->qualname = c->qualname;
        out->qualname_len = c->qualname_len;
        out->filename = c->filename;
        out->filename_len = c->filename_len;
    }
}

/* Threads and their frames into the output arrays; with tasks that no
 * thread's loop runs, one pseudo-thread more for them. */
static int take_threads(au_sampler *s, const au_pysample *ps, const au_tasks_result *tr) {
    uint32_t nframes = 0, extra = 0;
    for (uint32_t i = 0; i < ps->nthreads; i++) nframes += ps->threads[i].nframes;
    for (uint32_t k = 0; tr && k < tr->ntasks && !extra; k++) extra = tr->tasks[k].thread == NONE;
    uint32_t n = ps->nthreads + extra;
    if (sampler_grow(s, &s->threads, &s->threads_cap, n ? n : 1, sizeof *s->threads) ||
        sampler_grow(s, &s->frames, &s->frames_cap, (size_t)nframes + (tr ? tr->nframes : 0) + 1,
             sizeof *s->frames))
        return AU_ERR_NOMEM;
    uint32_t at = 0;
    for (uint32_t i = 0; i < ps->nthreads; i++) {
        const au_pythread *t = &ps->threads[i];
        au_sample_thread *o = &s->threads[i];
        memset(o, 0, sizeof *o);
        o->native_id = t->native_id;
        o->thread_id = t->thread_id;
        o->flags = t->flags;
        o->nframes = t->nframes;
        o->first_frame = at;
        for (uint32_t k = 0; k < t->nframes; k++) name_frame(s->reader, &t->frames[k], &s->frames[at + k]);
        at += t->nframes;
    }
    fill_tids(s, ps->nthreads);
    for (uint32_t i = 0; i < ps->nthreads; i++) {
        au_sample_thread *o = &s->threads[i];
        /* The name the program gave the thread, else the kernel's. */
        if (tr && tr->thread_name && tr->thread_name[i]) {
            o->name = tr->thread_name[i];
            o->name_len = tr->thread_name_len[i];
        } else {
            o->name = s->snap ? snap_name(s, o->native_id, &o->name_len)
                              : live_name(s, o->native_id, &o->name_len);
        }
    }
    if (extra) {
        au_sample_thread *o = &s->threads[ps->nthreads];
        memset(o, 0, sizeof *o);
        o->flags = AU_THREAD_NO_LOOP;
        o->name = no_loop_name;
        o->name_len = sizeof no_loop_name - 1;
        o->first_frame = at;
    }
    s->out.nthreads = n;
    s->out.nframes = at;
    return AU_OK;
}

/* Index the threads' frames (frames [0, out.nframes)) by address in an
 * open-addressed table at most half full, so that finding each task's
 * frame on its thread is O(1), not a scan of the thread's stack per task
 * (10,000 tasks under a 300-frame stack were 3M compares a sample).  A
 * frame found twice in one thread keeps its first (outermost) slot, as
 * the scan did; the same address in two threads gets a slot in each. */
static int index_thread_frames(au_sampler *s) {
    uint32_t nf = s->out.nframes, cap = 16;
    while (cap < 2 * (uint64_t)nf) cap *= 2; /* nf <= frames_cap < 2^31 */
    if (sampler_grow(s, &s->fslots, &s->fslots_cap, cap, sizeof *s->fslots)) return AU_ERR_NOMEM;
    memset(s->fslots, 0, (size_t)cap * sizeof *s->fslots);
    uint32_t mask = s->fmask = cap - 1;
    for (uint32_t th = 0; th < s->out.nthreads; th++) {
        const au_sample_thread *t = &s->threads[th];
        for (uint32_t f = t->first_frame; f < t->first_frame + t->nframes; f++) {
            uint64_t addr = s->frames[f].addr;
            uint32_t i = (uint32_t)au_mix64(addr) & mask;
            while (s->fslots[i] && !(s->frames[s->fslots[i] - 1].addr == addr &&
                                     s->fslots[i] - 1 >= t->first_frame))
                i = (i + 1) & mask;
            if (!s->fslots[i]) s->fslots[i] = f + 1;
        }
    }
    return AU_OK;
}

/* The first frame of thread t at addr, or NONE. */
static uint32_t thread_frame(const au_sampler *s, const au_sample_thread *t, uint64_t addr) {
    uint32_t mask = s->fmask;
    for (uint32_t i = (uint32_t)au_mix64(addr) & mask; s->fslots[i]; i = (i + 1) & mask) {
        uint32_t f = s->fslots[i] - 1;
        if (s->frames[f].addr == addr && f >= t->first_frame && f - t->first_frame < t->nframes)
            return f;
    }
    return NONE;
}

/* The model's tasks into the output arrays, grouped by thread, with their
 * coroutine frames after the threads' frames; and the resolver's task
 * records beside them. */
static int take_tasks(au_sampler *s, const au_tasks_result *tr) {
    uint32_t n = tr->ntasks, nth = s->out.nthreads;
    if (sampler_grow(s, &s->tasks, &s->tasks_cap, n ? n : 1, sizeof *s->tasks) ||
        sampler_grow(s, &s->rtasks, &s->rtasks_cap, n ? n : 1, sizeof *s->rtasks) ||
        sampler_grow(s, &s->order, &s->order_cap, n ? n : 1, sizeof *s->order) ||
        sampler_grow(s, &s->ids, &s->ids_cap, (size_t)s->out.nframes + tr->nframes + 1, sizeof *s->ids))
        return AU_ERR_NOMEM;
    /* Counting sort by thread (NONE goes to the pseudo-thread, last). */
    for (uint32_t i = 0; i < nth; i++) s->threads[i].ntasks = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t th = tr->tasks[k].thread == NONE ? nth - 1 : tr->tasks[k].thread;
        s->threads[th].ntasks++;
    }
    uint32_t at = 0;
    for (uint32_t i = 0; i < nth; i++) {
        s->threads[i].first_task = at;
        at += s->threads[i].ntasks;
        s->threads[i].ntasks = 0;
    }
    uint32_t fat = s->out.nframes;
    for (uint32_t k = 0; k < n; k++) {
        const au_atask *a = &tr->tasks[k];
        uint32_t th = a->thread == NONE ? nth - 1 : a->thread;
        au_sample_thread *t = &s->threads[th];
        uint32_t j = t->first_task + t->ntasks++;
        s->order[k] = j;
        au_sample_task *o = &s->tasks[j];
        memset(o, 0, sizeof *o);
        o->id = a->addr;
        o->name = a->name;
        o->name_len = a->name_len;
        o->thread = th;
        o->parent = NONE;
        o->first_frame = fat;
        o->nframes = a->nframes;
        for (uint32_t f = 0; f < a->nframes; f++)
            name_frame(s->reader, &tr->frames[a->first_frame + f], &s->frames[fat + f]);
        fat += a->nframes;
    }
    for (uint32_t i = 0; i < fat; i++) s->ids[i] = (uint64_t)i + 1;
    /* A task whose outermost coroutine frame is on its thread's stack is
     * running there: that frame takes the thread frame's id, which is how
     * the resolver splices it in. */
    if (n && s->out.nframes && index_thread_frames(s) != AU_OK) return AU_ERR_NOMEM;
    for (uint32_t j = 0; j < n && s->out.nframes; j++) {
        au_sample_task *o = &s->tasks[j];
        if (!o->nframes) continue;
        uint32_t f = thread_frame(s, &s->threads[o->thread], s->frames[o->first_frame].addr);
        if (f != NONE) {
            s->ids[o->first_frame] = (uint64_t)f + 1;
            o->flags |= AU_TASK_RUNNING;
        }
    }
    for (uint32_t k = 0; k < n; k++) {
        const au_atask *a = &tr->tasks[k];
        au_sample_task *o = &s->tasks[s->order[k]];
        au_task *r = &s->rtasks[s->order[k]];
        r->id = a->addr;
        r->name = a->name;
        r->name_len = a->name_len;
        r->nframes = o->nframes;
        r->frames = s->ids + o->first_frame;
        r->awaits = a->waiter_task != NONE ? a->waiter : 0;
        r->creator = a->creator;
        r->flags = o->flags;
    }
    /* Strong links, grouped by the child's thread; a link across threads
     * cannot be a parent in either thread's sample and is dropped. */
    if (sampler_grow(s, &s->rlinks, &s->rlinks_cap, tr->nlinks ? tr->nlinks : 1, sizeof *s->rlinks))
        return AU_ERR_NOMEM;
    uint32_t nl = 0;
    /* Likewise, more than max_links links: the rest are left out. */
    uint32_t max_links = s->opt.resolver.max_links ? s->opt.resolver.max_links : AU_DEFAULT_MAX_LINKS;
    for (uint32_t i = 0; i < nth; i++) {
        s->in[i].links = s->rlinks + nl;
        s->in[i].nlinks = 0;
        for (uint32_t l = 0; l < tr->nlinks; l++) {
            uint32_t c = tr->link_tasks[2 * l], p = tr->link_tasks[2 * l + 1];
            if (c >= n || p >= n) continue;
            if (s->tasks[s->order[c]].thread != i || s->tasks[s->order[p]].thread != i) continue;
            if (s->in[i].nlinks == max_links) {
                s->stats.limits |= AU_LIMIT_LINKS;
                break;
            }
            s->rlinks[nl++] = tr->links[l];
            s->in[i].nlinks++;
        }
    }
    s->out.ntasks = n;
    s->out.nframes = fat;
    s->stats.tasks = n;
    s->stats.links = tr->nlinks;
    s->stats.creators = tr->creators;
    return AU_OK;
}

/* Per thread: the resolver's input, then its stacks. */
static int resolve_threads(au_sampler *s) {
    uint32_t n = s->out.nthreads;
    if (n > s->resolvers_cap) {
        uint32_t old = s->resolvers_cap;
        if (sampler_grow(s, &s->resolvers, &s->resolvers_cap, n, sizeof *s->resolvers)) return AU_ERR_NOMEM;
        for (uint32_t i = old; i < s->resolvers_cap; i++) s->resolvers[i] = NULL;
    }
    uint32_t nstacks = 0;
    for (uint32_t i = 0; i < n; i++) {
        au_sample_thread *t = &s->threads[i];
        au_thread_sample *in = &s->in[i];
        in->frames = s->ids + t->first_frame;
        in->nframes = t->nframes;
        /* No arithmetic on rtasks when no sample had tasks: it is NULL. */
        in->tasks = t->ntasks ? s->rtasks + t->first_task : NULL;
        in->ntasks = t->ntasks;
        if (!s->resolvers[i]) {
            int rc = au_resolver_new(&s->alloc, &s->opt.resolver, &s->resolvers[i]);
            if (rc) return rc;
            s->stats.allocations++;
        }
        au_stacks st;
        int rc = au_resolve(s->resolvers[i], in, &st);
        if (rc) return rc;
        au_resolver_stats rs;
        au_resolver_get_stats(s->resolvers[i], &rs);
        s->stats.allocations += rs.allocations;
        for (uint32_t j = 0; j < t->ntasks; j++) {
            au_sample_task *o = &s->tasks[t->first_task + j];
            uint32_t p = au_resolver_parent(s->resolvers[i], j);
            o->parent = p == NONE ? NONE : t->first_task + p;
            o->link = au_resolver_link(s->resolvers[i], j);
        }
        if (sampler_grow(s, &s->stacks, &s->stacks_cap, (size_t)nstacks + st.nstacks + 1, sizeof *s->stacks) ||
            sampler_grow(s, &s->rstacks, &s->rstacks_cap, (size_t)nstacks + st.nstacks + 1, sizeof *s->rstacks))
            return AU_ERR_NOMEM;
        t->first_stack = nstacks;
        t->nstacks = st.nstacks;
        for (uint32_t k = 0; k < st.nstacks; k++) {
            const au_stack *rs2 = &st.stacks[k];
            s->rstacks[nstacks] = *rs2;
            s->stacks[nstacks] = (au_sample_stack){
                i, rs2->leaf_task == NONE ? NONE : t->first_task + rs2->leaf_task, rs2->flags,
                rs2->ntasks};
            nstacks++;
        }
    }
    s->out.nstacks = nstacks;
    return AU_OK;
}

/* A new model for the reader (recorded samples start cold, see below). */
static int open_tasks(au_sampler *s, au_memsrc *mem) {
    au_tasks_free(s->model);
    s->model = NULL;
    if (s->opt.flags & AU_SAMPLER_NO_TASKS) return AU_OK;
    /* A snapshot holds exactly what a recorded sample used, so recording
     * and replaying read exact ranges rather than pages (au_view.h). */
    uint32_t exact = (s->snap && !s->paged) || (s->opt.flags & AU_SAMPLER_RECORD);
    /* The resolver refuses a thread of more than its max_tasks tasks
     * (AU_ERR_LIMIT), which would fail the sample: read no more. */
    uint32_t rmax = s->opt.resolver.max_tasks ? s->opt.resolver.max_tasks : AU_DEFAULT_MAX_TASKS;
    uint32_t max_tasks = s->opt.max_tasks < rmax ? s->opt.max_tasks : rmax;
    au_tasks_limits lim = {max_tasks, s->opt.max_coro_frames, s->opt.max_pages, exact};
    int rc = au_tasks_new(&s->alloc, s->reader, mem, &lim, &s->model);
    /* A version without an asyncio layout still gets its threads. */
    return rc == AU_ERR_UNSUPPORTED ? AU_OK : rc;
}

/* Live: _AsyncioDebug and the agent's region may appear after open. */
static void refresh_attachments(au_sampler *s) {
    if (s->snap || !s->model || s->sample_no < s->attach_at) return;
    int want_debug = (s->version_hex >> 16 & 0xff) >= 14 && !s->asyncio_debug_addr;
    int want_agent = !(s->opt.flags & AU_SAMPLER_NO_AGENT) && !s->agent_addr;
    if (!want_debug && !want_agent) return;
    s->attach_every = s->attach_every ? s->attach_every * 2 : ATTACH_RETRY;
    if (s->attach_every > ATTACH_RETRY_MAX) s->attach_every = ATTACH_RETRY_MAX;
    s->attach_at = s->sample_no + s->attach_every;
    au_pyruntime rt;
    memset(&rt, 0, sizeof rt);
    rt.py_version_hex = s->version_hex;
    if (au_pyruntime_find_asyncio(&s->alloc, s->pid, &rt) == AU_OK) {
        if (want_debug) s->asyncio_debug_addr = rt.asyncio_debug_addr;
        if (want_agent) s->agent_addr = rt.agent_addr;
    }
}

/* Serve the model's last result again?  Only live, while idle, and when
 * the threads are the same thread states in the same order. */
static int still_idle(const au_sampler *s, const au_pysample *ps) {
    if (s->snap || (s->opt.flags & AU_SAMPLER_RECORD) || s->sample_no >= s->idle_until ||
        ps->nthreads != s->idle_n)
        return 0;
    for (uint32_t i = 0; i < ps->nthreads; i++)
        if (ps->threads[i].tstate != s->idle_ts[i]) return 0;
    return 1;
}

/* After the model looked: idle when it found no task and no agent (3.14+
 * always has its task lists, so asyncio is "in use" there from the start),
 * and nothing was cut short. */
static int note_idle(au_sampler *s, const au_pysample *ps, const au_tasks_result *tr) {
    s->idle_until = 0;
    if (s->snap || (s->opt.flags & AU_SAMPLER_RECORD) || tr->ntasks ||
        (tr->flags & (AU_TR_AGENT | AU_TR_LIMIT_TASKS | AU_TR_LIMIT_PAGES)))
        return AU_OK;
    if (sampler_grow(s, &s->idle_ts, &s->idle_cap, ps->nthreads ? ps->nthreads : 1, sizeof *s->idle_ts))
        return AU_ERR_NOMEM;
    for (uint32_t i = 0; i < ps->nthreads; i++) s->idle_ts[i] = ps->threads[i].tstate;
    s->idle_n = ps->nthreads;
    s->idle_tr = *tr;
    s->idle_until = s->sample_no + IDLE_EVERY;
    return AU_OK;
}

static int take_sample(au_sampler *s, const au_sample **out);

int au_sampler_sample(au_sampler *s, const au_sample **out) {
    if (!s || !out) return AU_ERR_ARG;
    int rc = take_sample(s, out);
    /* Checked after the reads: a process still there at the end was there
     * all along, so what was read was its memory.  Once it is gone, a
     * sample (or a failure) is of whatever holds the pid now, or of
     * nothing: the one answer is that the process exited. */
    if (s->anchor >= 0 && rc != AU_ERR_NOMEM && au_proc_anchor_alive(s->anchor) == AU_ERR_NOPROC) {
        *out = NULL;
        return AU_ERR_NOPROC;
    }
    return rc;
}

static int take_sample(au_sampler *s, const au_sample **out) {
    *out = NULL;
    memset(&s->stats, 0, sizeof s->stats);
    s->sample_no++;
    au_mem_stats before = s->base->stats;
    if (s->opt.flags & AU_SAMPLER_RECORD) {
        /* A snapshot must hold everything its replay reads, and a replay
         * starts cold: so a recorded sample starts cold too, with a new
         * recorder and a new reader (no cached code object, no layout read
         * at creation, is missing from the recording). */
        au_pyreader_free(s->reader);
        au_memsrc_destroy(s->rec);
        s->reader = NULL;
        s->rec = NULL;
        au_tasks_free(s->model);
        s->model = NULL;
        int rc = au_recorder_open(&s->alloc, s->base, &s->rec);
        if (rc == AU_OK)
            rc = au_pyreader_new(&s->alloc, s->rec, s->version_hex, s->runtime_addr,
                                 &s->opt.reader, &s->reader);
        if (rc == AU_OK) rc = open_tasks(s, s->rec);
        if (rc) return rc;
        s->stats.allocations += 3;
    }
    memset(&s->out, 0, sizeof s->out);
    s->out.pid = s->pid;
    s->out.py_version_hex = s->version_hex;
    s->out.version_exact = (uint32_t)s->exact;
    if (s->snap) {
        s->out.time_ns = au_snapshot_get_meta(s->snap)->time_ns;
    } else {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        s->out.time_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    }
    au_pysample ps;
    int rc = au_pyreader_sample(s->reader, &ps);
    au_pyreader_get_stats(s->reader, &s->stats.reader);
    s->stats.allocations += s->stats.reader.allocations;
    if (rc) return rc;
    if (ps.flags & AU_THREAD_TRUNCATED) s->stats.limits |= AU_LIMIT_THREADS;
    au_tasks_result tr;
    const au_tasks_result *trp = NULL;
    if (s->model && still_idle(s, &ps)) {
        tr = s->idle_tr;
        trp = &tr;
        if (tr.flags & AU_TR_ASYNCIO) s->out.flags |= AU_SAMPLE_ASYNCIO;
    } else if (s->model) {
        refresh_attachments(s);
        uint64_t agent = s->opt.flags & AU_SAMPLER_NO_AGENT ? 0 : s->agent_addr;
        if ((rc = au_tasks_sample(s->model, &ps, s->pid, s->asyncio_debug_addr, agent, &tr))) return rc;
        trp = &tr;
        /* The model has the reader's code cache name coroutine frames:
         * what that allocated is this sample's too (stats.reader stays
         * the threads' and frames' part). */
        au_pyreader_stats after;
        au_pyreader_get_stats(s->reader, &after);
        s->stats.allocations += after.allocations - s->stats.reader.allocations;
        au_view_stats vs;
        au_tasks_get_view_stats(s->model, &vs);
        s->stats.pages = vs.fetched;
        s->stats.pages_used = vs.used;
        s->stats.allocations += vs.allocations + au_tasks_allocations(s->model);
        if ((rc = note_idle(s, &ps, &tr))) return rc;
        if (tr.flags & AU_TR_ASYNCIO) s->out.flags |= AU_SAMPLE_ASYNCIO;
        if (tr.flags & AU_TR_AGENT) s->out.flags |= AU_SAMPLE_AGENT;
        if (tr.flags & AU_TR_LIMIT_TASKS) s->stats.limits |= AU_LIMIT_TASKS;
        if (tr.flags & AU_TR_LIMIT_PAGES) s->stats.limits |= AU_LIMIT_PAGES;
    }
    if ((rc = take_threads(s, &ps, trp))) return rc;
    /* The agent publishes its region when it records the first task, so
     * the first sample with tasks is when it is worth a look, for the next
     * sample: without this, a record that starts with the process would
     * wait out the backoff (hundreds of samples) with every creator
     * missing.  Looked for now, so that the cost stays in this (cold)
     * sample. */
    if (trp && tr.ntasks && !s->seen_tasks) {
        s->seen_tasks = 1;
        s->attach_every = 0;
        s->attach_at = s->sample_no;
        refresh_attachments(s);
    }
    if ((s->opt.flags & AU_SAMPLER_CPU_STATE) && !s->snap) mark_on_cpu(s);
    if (sampler_grow(s, &s->in, &s->in_cap, s->out.nthreads ? s->out.nthreads : 1, sizeof *s->in))
        return AU_ERR_NOMEM;
    memset(s->in, 0, (size_t)s->out.nthreads * sizeof *s->in);
    if (trp) {
        if ((rc = take_tasks(s, trp))) return rc;
    } else {
        if (sampler_grow(s, &s->ids, &s->ids_cap, (size_t)s->out.nframes + 1, sizeof *s->ids)) return AU_ERR_NOMEM;
        for (uint32_t i = 0; i < s->out.nframes; i++) s->ids[i] = (uint64_t)i + 1;
        for (uint32_t i = 0; i < s->out.nthreads; i++) s->threads[i].ntasks = 0;
    }
    if ((rc = resolve_threads(s))) return rc;
    if (s->stats.limits) s->out.flags |= AU_SAMPLE_TRUNCATED;
    s->out.threads = s->threads;
    s->out.tasks = s->tasks;
    s->out.stacks = s->stacks;
    s->out.frames = s->frames;
    au_mem_stats now = s->base->stats;
    s->stats.mem.requests = now.requests - before.requests;
    s->stats.mem.failures = now.failures - before.failures;
    s->stats.mem.syscalls = now.syscalls - before.syscalls;
    s->stats.mem.bytes = now.bytes - before.bytes;
    s->stats.mem.pages = now.pages - before.pages;
    *out = &s->out;
    return AU_OK;
}

uint64_t au_sample_stack_entries(const au_sampler *s, uint32_t stack, au_entry *buf,
                                 uint32_t cap) {
    if (!s || stack >= s->out.nstacks || (cap && !buf)) return 0;
    uint32_t th = s->stacks[stack].thread;
    uint64_t n = au_stack_entries(s->resolvers[th], &s->rstacks[stack], buf, cap);
    uint64_t w = n < cap ? n : cap;
    uint32_t first_task = s->threads[th].first_task;
    for (uint64_t k = 0; k < w; k++) {
        au_entry *e = &buf[k];
        if (e->kind == AU_ENTRY_FRAME) e->id -= 1;
        else if (e->task != NONE) e->task += first_task;
    }
    return n;
}

/* ---- opening ------------------------------------------------------------ */

static void apply_defaults(au_sampler_options *o, const au_sampler_options *in) {
    memset(o, 0, sizeof *o);
    if (in) *o = *in;
    if (!o->max_tasks) o->max_tasks = AU_DEFAULT_SAMPLE_TASKS;
    if (!o->max_coro_frames) o->max_coro_frames = AU_DEFAULT_MAX_CORO_FRAMES;
}

static int new_sampler(const au_allocator *alloc, const au_sampler_options *opt, au_sampler **out) {
    au_allocator a;
    au_sampler *s = au_alloc_zeroed(alloc, sizeof *s, &a);
    if (!s) return AU_ERR_NOMEM;
    s->alloc = a;
    s->anchor = -1;
    apply_defaults(&s->opt, opt);
    *out = s;
    return AU_OK;
}

static int finish_open(au_sampler *s, au_sampler **out) {
    /* Created here even when recording (each recorded sample replaces it):
     * a layout the target publishes is checked at open, where the user
     * expects errors. */
    int rc = au_pyreader_new(&s->alloc, s->base, s->version_hex, s->runtime_addr, &s->opt.reader,
                             &s->reader);
    if (rc == AU_OK) rc = open_tasks(s, s->base);
    if (rc) {
        au_sampler_free(s);
        return rc;
    }
    *out = s;
    return AU_OK;
}

int au_sampler_open_pid(const au_allocator *alloc, int pid, const au_sampler_options *opt,
                        au_sampler **out) {
    if (!out) return AU_ERR_ARG;
    *out = NULL;
    if (pid <= 0) return AU_ERR_ARG;
    au_sampler *s;
    int rc = new_sampler(alloc, opt, &s);
    if (rc) return rc;
    s->pid = pid;
    /* The anchor first: everything found below is then checked to be of
     * the process it names. */
    if ((rc = au_proc_anchor_open(pid, &s->anchor)) ||
        (rc = au_memsrc_live_open(&s->alloc, pid, &s->base))) {
        au_sampler_free(s);
        return rc;
    }
    au_pyruntime rt;
    if ((rc = au_pyruntime_find(&s->alloc, pid, s->base, &rt)) ||
        (rc = au_proc_anchor_alive(s->anchor))) {
        au_sampler_free(s);
        return rc;
    }
    s->version_hex = rt.py_version_hex;
    s->exact = rt.version_source != AU_VERSION_FROM_FILE_NAME;
    s->runtime_addr = rt.runtime_addr;
    if (!(s->opt.flags & AU_SAMPLER_NO_TASKS) && au_pyruntime_find_asyncio(&s->alloc, pid, &rt) == AU_OK) {
        s->asyncio_debug_addr = rt.asyncio_debug_addr;
        s->agent_addr = rt.agent_addr;
    }
    return finish_open(s, out);
}

int au_sampler_open_snapshot(const au_allocator *alloc, const au_snapshot *snap,
                             const au_sampler_options *opt, au_sampler **out) {
    return au_sampler_open_snapshot_via(alloc, snap, NULL, opt, out);
}

static int open_snapshot(const au_allocator *alloc, const au_snapshot *snap, au_memsrc *mem,
                         int paged, const au_sampler_options *opt, au_sampler **out) {
    if (!out) return AU_ERR_ARG;
    *out = NULL;
    if (!snap) return AU_ERR_ARG;
    au_sampler *s;
    int rc = new_sampler(alloc, opt, &s);
    if (rc) return rc;
    const au_snapshot_meta *m = au_snapshot_get_meta(snap);
    s->snap = snap;
    s->paged = paged;
    s->pid = (int)m->pid;
    s->version_hex = m->py_version_hex;
    /* A snapshot records the version hex; a patch level of 0 with no
     * release level means it came from a file name. */
    s->exact = (m->py_version_hex & 0xffff) != 0;
    s->runtime_addr = m->runtime_addr;
    s->asyncio_debug_addr = m->asyncio_debug_addr;
    s->agent_addr = m->agent_addr;
    if (mem) {
        s->base = mem;
        s->borrowed = 1;
    } else if ((rc = au_memsrc_snapshot_open(&s->alloc, snap, &s->base))) {
        au_sampler_free(s);
        return rc;
    }
    return finish_open(s, out);
}

int au_sampler_open_snapshot_via(const au_allocator *alloc, const au_snapshot *snap,
                                 au_memsrc *mem, const au_sampler_options *opt,
                                 au_sampler **out) {
    return open_snapshot(alloc, snap, mem, 0, opt, out);
}

int au_sampler_open_image(const au_allocator *alloc, const au_snapshot *snap, au_memsrc *mem,
                          const au_sampler_options *opt, au_sampler **out) {
    if (out) *out = NULL;
    if (!mem) return AU_ERR_ARG;
    return open_snapshot(alloc, snap, mem, 1, opt, out);
}

au_allocator au_sampler_alloc(const au_sampler *s) { return s->alloc; }

const au_thread_sample *au_sampler_thread_input(const au_sampler *s, uint32_t thread) {
    return s && s->in && thread < s->out.nthreads ? &s->in[thread] : NULL;
}

uint32_t au_sampler_phase(const au_sampler *s) {
    return s && s->model ? au_tasks_phase(s->model) : AU_AT_PHASE_NONE;
}

uint32_t au_sampler_version(const au_sampler *s, int *exact) {
    if (exact) *exact = s ? s->exact : 0;
    return s ? s->version_hex : 0;
}

void au_sampler_get_stats(const au_sampler *s, au_sampler_stats *stats) {
    if (!stats) return;
    /* A NULL context has all-zero counters: the caller reads them either
     * way (and gcc, inlining across the amalgamation, checks that). */
    if (s)
        *stats = s->stats;
    else
        memset(stats, 0, sizeof *stats);
}

int au_sampler_write_snapshot(au_sampler *s, int (*write)(void *ud, const void *buf, size_t len),
                              void *ud) {
    if (!s || !write || !s->rec || s->out.nthreads > s->threads_cap) return AU_ERR_ARG;
    au_snapshot_thread *th = NULL;
    uint32_t n = 0, cap = 0;
    for (uint32_t i = 0; i < s->out.nthreads; i++) {
        const au_sample_thread *t = &s->threads[i];
        if (!t->native_id) continue;
        if (au_grow(&s->alloc, NULL, (void **)&th, &cap, (size_t)n + 1, sizeof *th)) {
            AU_FREE_ARRAY(&s->alloc, th, cap);
            return AU_ERR_NOMEM;
        }
        /* Where threads are named by pthread id, the TID it was mapped
         * to, for the replay to map it alike (fill_tids). */
        uint64_t pthread = s->version_hex < 0x030b0000u ? t->thread_id : 0;
        th[n++] = (au_snapshot_thread){t->native_id, t->name, t->name_len, 0, pthread};
    }
    au_snapshot_meta meta = {(uint32_t)s->pid, s->version_hex, s->runtime_addr, s->out.time_ns, n,
                             th, s->asyncio_debug_addr, s->agent_addr};
    int rc = au_recorder_write(s->rec, &meta, write, ud);
    AU_FREE_ARRAY(&s->alloc, th, cap);
    return rc;
}

void au_sampler_free(au_sampler *s) {
    if (!s) return;
    au_allocator a = s->alloc;
    au_tasks_free(s->model);
    au_pyreader_free(s->reader);
    au_memsrc_destroy(s->rec);
    if (!s->borrowed) au_memsrc_destroy(s->base);
    au_stat_cache_close(&s->stat_fds);
    if (s->anchor >= 0) close(s->anchor);
    for (uint32_t i = 0; s->resolvers && i < s->resolvers_cap; i++) au_resolver_free(s->resolvers[i]);
    AU_FREE_ARRAY(&a, s->threads, s->threads_cap);
    AU_FREE_ARRAY(&a, s->tasks, s->tasks_cap);
    AU_FREE_ARRAY(&a, s->stacks, s->stacks_cap);
    AU_FREE_ARRAY(&a, s->frames, s->frames_cap);
    AU_FREE_ARRAY(&a, s->in, s->in_cap);
    AU_FREE_ARRAY(&a, s->ids, s->ids_cap);
    AU_FREE_ARRAY(&a, s->fslots, s->fslots_cap);
    AU_FREE_ARRAY(&a, s->rstacks, s->rstacks_cap);
    AU_FREE_ARRAY(&a, s->resolvers, s->resolvers_cap);
    AU_FREE_ARRAY(&a, s->names, s->names_cap);
    AU_FREE_ARRAY(&a, s->rtasks, s->rtasks_cap);
    AU_FREE_ARRAY(&a, s->rlinks, s->rlinks_cap);
    AU_FREE_ARRAY(&a, s->order, s->order_cap);
    AU_FREE_ARRAY(&a, s->idle_ts, s->idle_cap);
    a.realloc(a.ud, s, sizeof *s, 0);
}
