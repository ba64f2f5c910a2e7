/*
 * asyncunwind: task-aware stacks for Python asyncio programs, rebuilt from
 * outside the process.
 *
 * This is the public header.  It is the only header a program that vendors
 * the core needs.  The core is C11, uses nothing beyond libc, keeps no
 * global or static mutable state, and every entry point takes an explicit
 * context, so any number of independent contexts may live in one process
 * (one per sampled process, one per thread, ...).
 *
 * Conventions
 *  - Functions that can fail return an au_status (0 = AU_OK, < 0 = error).
 *  - Ids (task ids, frame ids) are opaque 64-bit values chosen by the
 *    caller; in practice they are target addresses.  0 always means "none".
 *  - Memory the core returns stays owned by the context that returned it and
 *    stays valid until the next call on that context.
 *  - Every constructor has one shape, so a host wraps them all alike:
 *      int au_X_new(const au_allocator *alloc, ..., au_X **out);
 *    (au_X_open when it attaches to something outside the core: a pid, a
 *    snapshot, another memory source; au_snapshot_parse for a snapshot
 *    held in memory).  It returns an au_status; *out is
 *    the new context on AU_OK and NULL on any error (out itself NULL is
 *    AU_ERR_ARG).  The matching au_X_free (au_memsrc_destroy for memory
 *    sources) accepts NULL.
 */
#ifndef ASYNCUNWIND_H
#define ASYNCUNWIND_H

#include <stddef.h>
#include <stdint.h>

/* The core's version.  A host compiled against this header can test it
 * with the preprocessor (AU_VERSION_NUMBER >= 10002 for 0.10.2 and later),
 * and compare au_version() with AU_VERSION_STRING to catch a header and an
 * object file from different copies.  `asyncunwind --version` prints the
 * same string.  docs/VENDORING.md says what a version change promises. */
#define AU_VERSION_MAJOR 0
#define AU_VERSION_MINOR 10
#define AU_VERSION_PATCH 0
#define AU_VERSION_STRING "0.10.0"
#define AU_VERSION_NUMBER (AU_VERSION_MAJOR * 1000000 + AU_VERSION_MINOR * 1000 + AU_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Status codes shared by every layer.
 * ------------------------------------------------------------------------ */
typedef enum au_status {
    AU_OK = 0,
    AU_ERR_ARG = -1,    /* a NULL or inconsistent argument from the caller */
    AU_ERR_NOMEM = -2,  /* the allocator refused */
    AU_ERR_LIMIT = -3,  /* input larger than the context's configured limit */
    AU_ERR_READ = -4,   /* target memory could not be read (unmapped, raced) */
    AU_ERR_NOPROC = -5, /* the process does not exist (or is gone) */
    AU_ERR_PERM = -6,   /* not allowed to read the process (ptrace rules) */
    AU_ERR_IO = -7,     /* a file or system call failed */
    AU_ERR_FORMAT = -8, /* malformed input: snapshot, ELF file, table, ... */
    AU_ERR_UNSUPPORTED = -9, /* a version or file kind we do not handle */
    AU_ERR_NOTPYTHON = -10,  /* the process holds no CPython runtime */
    AU_ERR_CORRUPT = -11,    /* target data failed validation */
    AU_ERR_NOT_FOUND = -12,  /* a looked-up item (ELF section, symbol, map) is absent */
} au_status;

/* A short, static, human-readable description of a status code. */
const char *au_status_str(int status);

/* AU_VERSION_STRING of the core this was compiled from. */
const char *au_version(void);

/* ---------------------------------------------------------------------------
 * Allocation.
 *
 * Every heap allocation the core makes goes through one function, in the
 * style of Lua's lua_Alloc: realloc(ud, ptr, old_size, new_size) allocates
 * when ptr is NULL, frees and returns NULL when new_size is 0, and resizes
 * otherwise.  Passing NULL where an allocator is expected selects libc.
 * Profilers embedding the core can route allocations to their own arenas
 * and count them; the tests use this to prove the hot path allocates
 * nothing once warm.
 * ------------------------------------------------------------------------ */
typedef struct au_allocator {
    void *(*realloc)(void *ud, void *ptr, size_t old_size, size_t new_size);
    void *ud;
} au_allocator;

/* ---------------------------------------------------------------------------
 * The link resolver.
 *
 * Input: one sample's view of one thread: its Python stack and the asyncio
 * tasks of the event loop(s) that run on it, with the links between them.
 * Output: one stack per leaf task (see docs/RESOLVER.md for the exact rules),
 * each made of the thread's frames up to the event-loop boundary, then a
 * marker and the coroutine frames of every task from the root task down to
 * the leaf, then, for the task on CPU, the synchronous frames it called.
 *
 * The resolver does not care where links come from (target memory, an
 * in-target agent, or a host profiler that records them itself).
 * ------------------------------------------------------------------------ */

/* au_task.flags */
#define AU_TASK_RUNNING 0x1u /* the task is executing on this thread now */

typedef struct au_task {
    uint64_t id;             /* unique, non-zero (in practice: its address) */
    const char *name;        /* caller-owned bytes, not NUL-terminated */
    uint32_t name_len;
    uint32_t nframes;        /* number of coroutine frames */
    const uint64_t *frames;  /* coroutine frame ids, outermost first */
    uint64_t awaits;         /* id of the task it awaits directly, 0 = none */
    uint64_t creator;        /* weak link: id of the task that created it */
    uint32_t flags;          /* AU_TASK_* */
} au_task;

/* A strong link: `parent` holds `child` through gather, a TaskGroup, wait,
 * as_completed or shield.  Several may name the same child. */
typedef struct au_link {
    uint64_t child;
    uint64_t parent;
} au_link;

typedef struct au_thread_sample {
    const uint64_t *frames;  /* the thread's Python frames, outermost first */
    uint32_t nframes;
    uint32_t ntasks;
    const au_task *tasks;
    const au_link *links;    /* strong links */
    uint32_t nlinks;
} au_thread_sample;

/* Kinds of entries in an output stack. */
typedef enum au_entry_kind {
    AU_ENTRY_FRAME = 0,     /* a thread or coroutine frame: id = frame id */
    AU_ENTRY_TASK = 1,      /* task marker: id = task id, task = its index */
    AU_ENTRY_CYCLE = 2,     /* the task chain closed on itself here: id and
                               task name the task the cycle returns to */
    AU_ENTRY_TRUNCATED = 3, /* something was cut here (see au_stack.flags) */
} au_entry_kind;

typedef struct au_entry {
    uint64_t id;
    uint32_t kind;  /* au_entry_kind */
    uint32_t task;  /* index into au_thread_sample.tasks, or UINT32_MAX */
} au_entry;

/* au_stack.flags */
#define AU_STACK_RUNNING 0x1u         /* the leaf is the task on CPU */
#define AU_STACK_CYCLE 0x2u           /* the task chain ends in a cycle */
#define AU_STACK_TRUNCATED_DEPTH 0x4u /* chain longer than max_depth */
#define AU_STACK_THREAD_ONLY 0x10u    /* no tasks: the bare thread stack */

/* One stack.  Stacks share their root side, so they are described, not
 * copied: a leaf and the length of its chain.  au_stack_entries() writes a
 * stack's entries out. */
typedef struct au_stack {
    uint64_t leaf_id;       /* 0 for AU_STACK_THREAD_ONLY */
    const char *leaf_name;  /* the leaf task's name bytes, NULL if none */
    uint32_t leaf_name_len;
    uint32_t leaf_task;     /* index into the input tasks, or UINT32_MAX */
    uint32_t flags;         /* AU_STACK_* */
    uint32_t ntasks;        /* tasks in the chain, the leaf included */
    uint32_t closing;       /* AU_STACK_CYCLE: index of the task the cycle
                               returns to; else UINT32_MAX */
} au_stack;

typedef struct au_stacks {
    uint32_t nstacks;
    const au_stack *stacks;  /* ordered by leaf_id, ascending */
} au_stacks;

/* Bounds.  Every walk the resolver makes is bounded by one of these, and
 * its memory by input size.  Zero fields take the defaults. */
typedef struct au_resolver_limits {
    uint32_t max_tasks;  /* more tasks: AU_ERR_LIMIT (default 1<<20; at most
                            2^28 whatever the limit) */
    uint32_t max_links;  /* more links: AU_ERR_LIMIT (default 1<<22) */
    uint32_t max_depth;  /* tasks per chain (default 1024) */
} au_resolver_limits;

#define AU_DEFAULT_MAX_TASKS (1u << 20)
#define AU_DEFAULT_MAX_LINKS (1u << 22)
#define AU_DEFAULT_MAX_DEPTH 1024u

/* Counters of the last au_resolve call (deterministic for a given input). */
typedef struct au_resolver_stats {
    uint64_t allocations;      /* heap allocations made by this call */
    uint32_t tasks_ignored;    /* id 0 or an id shared by several tasks */
    uint32_t links_ignored;    /* self links and links to absent tasks */
    uint32_t cycles;           /* stacks whose chain closed on a cycle */
    uint32_t truncated;        /* stacks cut at max_depth */
    uint32_t running_ignored;  /* tasks flagged running that were not chosen
                                  as the running task (docs/RESOLVER.md) */
} au_resolver_stats;

typedef struct au_resolver au_resolver;

/* Create a resolver context.  alloc and limits may be NULL (libc, defaults).
 * AU_ERR_NOMEM when the allocator fails. */
int au_resolver_new(const au_allocator *alloc, const au_resolver_limits *limits,
                    au_resolver **out);
void au_resolver_free(au_resolver *r);

/* Resolve one thread sample.  On AU_OK, *out describes the stacks.  They
 * stay valid until the next call on r, and so does everything they point
 * to, provided the caller keeps the sample (and what it points to)
 * unchanged meanwhile: stacks refer to its tasks and frames rather than
 * copying them.  The input is only read, and never needs to be sorted.
 * Buffers only grow (with headroom), so once a context has resolved a
 * sample, a call whose input is no larger makes no heap allocation
 * (stats.allocations). */
int au_resolve(au_resolver *r, const au_thread_sample *in, au_stacks *out);

/* Write stack s of the last au_resolve call on r into buf, root first:
 * the thread's frames up to the event-loop boundary, a cycle or truncation
 * marker if the chain has one, then each task's marker and frames down to
 * the leaf (the running leaf's frames being the thread's from the boundary
 * on).  Returns the stack's whole length in entries and writes at most cap
 * of them; a stack longer than cap keeps its root side and its entry
 * cap - 1 is an AU_ENTRY_TRUNCATED marker.  cap 0 just measures (buf may
 * then be NULL).  Costs
 * O(tasks in the chain + entries written). */
uint64_t au_stack_entries(const au_resolver *r, const au_stack *s, au_entry *buf, uint32_t cap);

/* The resolved parent of task index `task` in the last call (rule 1), or
 * UINT32_MAX for a root, an ignored task or an index out of range.  With
 * it, a profiler can aggregate per task instead of per stack. */
uint32_t au_resolver_parent(const au_resolver *r, uint32_t task);

/* Which rule-1 level gave task `task` its parent in the last call. */
typedef enum au_link_kind {
    AU_LINK_NONE = 0,   /* a root, an ignored task, or an index out of range */
    AU_LINK_AWAIT = 1,  /* the parent awaits it directly */
    AU_LINK_STRONG = 2, /* the parent holds it (gather, TaskGroup, ...) */
    AU_LINK_WEAK = 3,   /* the parent created it */
} au_link_kind;

uint32_t au_resolver_link(const au_resolver *r, uint32_t task);

/* Counters of the most recent au_resolve call. */
void au_resolver_get_stats(const au_resolver *r, au_resolver_stats *stats);

/* ---------------------------------------------------------------------------
 * Memory sources.
 *
 * Every byte the core reads from a target comes through an au_memsrc, in
 * batches: the caller gathers the reads one step needs and issues them
 * together, so a live source can coalesce them into a few page-spanning
 * system calls (on this project's reference VM a process_vm_readv costs
 * about 0.5 us per iovec and 0.5 us per page touched).
 *
 * Three sources ship with the core: a live process (process_vm_readv, with
 * /proc/PID/mem as the fallback), a snapshot file, and a recorder that wraps
 * another source and keeps everything it read so it can be written out as a
 * snapshot.  A host profiler can supply its own by filling in the struct.
 * ------------------------------------------------------------------------ */

/* One read of a batch.  The source fills status: AU_OK when all len bytes
 * were read into buf, an error otherwise (the buffer is then unspecified). */
typedef struct au_read {
    uint64_t addr;
    void *buf;
    uint32_t len;
    int32_t status;
} au_read;

/* Counters, cumulative since the source was created; callers take
 * differences around a sample.  All are deterministic for a given target
 * layout, so tests may assert them. */
typedef struct au_mem_stats {
    uint64_t requests; /* au_read entries served */
    uint64_t failures; /* entries that ended in an error */
    uint64_t syscalls; /* system calls made (0 for snapshots) */
    uint64_t bytes;    /* bytes transferred from the target, gaps included */
    uint64_t pages;    /* distinct pages touched, summed over calls */
} au_mem_stats;

typedef struct au_memsrc au_memsrc;
struct au_memsrc {
    /* Serve n reads.  Returns AU_OK when every read succeeded, otherwise the
     * first failing read's status; each au_read carries its own status. */
    int (*read)(au_memsrc *self, au_read *reads, uint32_t n);
    void (*destroy)(au_memsrc *self);
    au_mem_stats stats;
};

/* Convenience: one read. */
int au_mem_read1(au_memsrc *m, uint64_t addr, void *buf, uint32_t len);
void au_memsrc_destroy(au_memsrc *m);

/* A live process.  Fails with AU_ERR_NOPROC, AU_ERR_PERM (see the ptrace
 * hint in au_status_hint) or AU_ERR_NOMEM. */
int au_memsrc_live_open(const au_allocator *alloc, int pid, au_memsrc **out);

/* A snapshot (see docs/SNAPSHOT.md).  au_snapshot_parse validates a whole
 * file held in memory; the snapshot keeps pointers into data, which must
 * outlive it. */
typedef struct au_snapshot au_snapshot;

typedef struct au_snapshot_thread {
    uint64_t native_id;
    const char *name; /* not NUL-terminated */
    uint32_t name_len;
    uint32_t unused;
    uint64_t pthread_id; /* its pthread id, where the interpreter names
                            threads only by it (3.9, 3.10); else 0 */
} au_snapshot_thread;

typedef struct au_snapshot_meta {
    uint32_t pid;
    uint32_t py_version_hex; /* PY_VERSION_HEX of the target */
    uint64_t runtime_addr;   /* address of _PyRuntime in the target */
    uint64_t time_ns;        /* CLOCK_REALTIME when the sample was taken */
    uint32_t nthreads;
    const au_snapshot_thread *threads;
    uint64_t asyncio_debug_addr; /* the target's _AsyncioDebug (3.14+), or 0 */
    uint64_t agent_addr;     /* the agent's record region (docs/AGENT.md), or 0 */
} au_snapshot_meta;

int au_snapshot_parse(const au_allocator *alloc, const uint8_t *data, size_t len,
                      au_snapshot **out);
void au_snapshot_free(au_snapshot *s);
const au_snapshot_meta *au_snapshot_get_meta(const au_snapshot *s);
/* A memory source serving reads from the snapshot's regions.  It borrows s. */
int au_memsrc_snapshot_open(const au_allocator *alloc, const au_snapshot *s,
                            au_memsrc **out);

/* A recorder around inner (which it borrows), for one sample.  Every read
 * goes through to inner, and the reader sees one consistent view of the
 * target, the one the snapshot will hold: each byte keeps the value of its
 * first successful read, and a read that failed fails again when repeated.
 * A replay of the snapshot gives exactly what the live reads gave, even
 * when the target changed under them (docs/SNAPSHOT.md).  The stats are
 * inner's. */
int au_recorder_open(const au_allocator *alloc, au_memsrc *inner, au_memsrc **out);
/* Write the recorded reads and meta as a snapshot through write(), which
 * returns 0 on success. */
int au_recorder_write(au_memsrc *recorder, const au_snapshot_meta *meta,
                      int (*write)(void *ud, const void *buf, size_t len), void *ud);

/* A hint for the user about how to fix an error, or NULL. */
const char *au_status_hint(int status);

/* ---------------------------------------------------------------------------
 * Finding the interpreter in a live process.
 * ------------------------------------------------------------------------ */

/* au_pyruntime.version_source: the evidence the version came from. */
#define AU_VERSION_FROM_DEBUG_OFFSETS 1 /* _Py_DebugOffsets (3.13+) */
#define AU_VERSION_FROM_PY_VERSION 2    /* the Py_Version symbol (3.11+) */
#define AU_VERSION_FROM_FILE_NAME 3     /* libpython3.X / python3.X: X only */

typedef struct au_pyruntime {
    int pid;
    uint32_t py_version_hex;  /* PY_VERSION_HEX; patch 0 from a file name */
    uint32_t version_source;  /* AU_VERSION_FROM_* */
    uint64_t runtime_addr;    /* _PyRuntime in the target */
    uint64_t py_version_addr; /* Py_Version in the target, or 0 */
    char path[512];           /* the file holding the runtime, as the target
                                 names it (relative to its root) */
    /* Set by au_pyruntime_find_asyncio: */
    uint64_t asyncio_debug_addr; /* the _AsyncioDebug offsets (3.14+), or 0 */
    uint64_t agent_addr;      /* the agent's record region, or 0 */
} au_pyruntime;

/* The name of the memfd in which the agent keeps its records
 * (docs/AGENT.md); /proc/PID/maps shows it as "/memfd:NAME (deleted)". */
#define AU_AGENT_MEMFD_NAME "asyncunwind-agent"

/* Locate _PyRuntime and the version of process pid.  Reads /proc/PID/maps,
 * the mapped ELF files (through /proc/PID/root) and a few bytes of target
 * memory through mem.  Errors: AU_ERR_NOPROC, AU_ERR_PERM, AU_ERR_NOTPYTHON,
 * AU_ERR_UNSUPPORTED (a Python outside 3.9-3.15), AU_ERR_IO, AU_ERR_NOMEM. */
int au_pyruntime_find(const au_allocator *alloc, int pid, au_memsrc *mem, au_pyruntime *out);

/* Find what the asyncio model reads beside the runtime, in rt (found by
 * au_pyruntime_find): the _AsyncioDebug section (3.14+; present once
 * _asyncio is imported, unless it is built in) and the agent's region
 * (present once the agent recorded a task).  Either may appear later:
 * call again then.  Reads /proc/PID/maps and ELF files, not memory. */
int au_pyruntime_find_asyncio(const au_allocator *alloc, int pid, au_pyruntime *rt);

/* ---------------------------------------------------------------------------
 * Reading Python threads and stacks (the CPython model).
 *
 * An au_pyreader reads, from a memory source, every thread of every
 * interpreter of a CPython 3.9-3.15 process and each thread's frames, with
 * the function's (qualified) name, file and line.  Layout differences are
 * data (core/cpython/au_pyoffsets.h); on 3.13+ the target's own _Py_DebugOffsets take
 * precedence over the compiled-in tables.  All reads are batched; code
 * objects and their strings are cached, and every cache hit is validated
 * against the object's current header, read in the same batch, so a freed
 * and reused address never yields a stale name.
 * ------------------------------------------------------------------------ */

typedef struct au_pyreader au_pyreader;

/* Zero fields take the defaults; larger values are clamped to the maxima
 * in brackets. */
#define AU_DEFAULT_MAX_THREADS 1024u
typedef struct au_pyreader_limits {
    uint32_t max_threads;   /* per sample (default 1024) [65536] */
    uint32_t max_frames;    /* per thread (default 4096) [1<<20] */
    uint32_t max_name;      /* code points kept of a name (default 1024) [4096] */
    uint32_t cache_entries; /* code objects cached (default 4096) [1<<20] */
    uint32_t code_check_every; /* a cached code object's header is re-read
                                  and compared at least every this many
                                  samples that use it, so that a freed and
                                  reused address is noticed (default 16;
                                  1: every sample) [1024] */
} au_pyreader_limits;

/* A function: names are UTF-8, not NUL-terminated; a name longer than
 * max_name code points is cut and ends in "...". */
typedef struct au_pycode {
    const char *name;
    const char *qualname;  /* the name itself before 3.11 (no co_qualname) */
    const char *filename;
    uint32_t name_len, qualname_len, filename_len;
    int32_t firstlineno;
} au_pycode;

typedef struct au_pyframe {
    uint64_t addr;      /* the frame's address: its identity */
    uint64_t code_addr; /* its code object */
    int32_t line;       /* -1 when unknown */
    uint32_t code;      /* for au_pyreader_code() */
} au_pyframe;

/* au_pythread.flags */
#define AU_THREAD_TRUNCATED 0x1u /* more than max_frames frames, or more
                                    than 2 x max_frames counting C frames */
#define AU_THREAD_PARTIAL 0x2u   /* a read failed or a frame was invalid:
                                    the frames are those read before */
#define AU_THREAD_CYCLE 0x4u     /* the frame chain came back on itself */
#define AU_THREAD_NO_LOOP 0x8u   /* (samples only) not a thread: the tasks of
                                    event loops no thread is running */

typedef struct au_pythread {
    uint64_t tstate;     /* PyThreadState address */
    uint64_t thread_id;  /* pthread id */
    uint64_t native_id;  /* Linux TID (0 before 3.11 unless found) */
    int64_t interp_id;   /* owning interpreter */
    uint32_t flags;      /* AU_THREAD_* */
    uint32_t nframes;
    const au_pyframe *frames; /* outermost first */
} au_pythread;

typedef struct au_pysample {
    uint32_t nthreads;
    uint32_t flags;       /* AU_THREAD_TRUNCATED: more threads than max */
    const au_pythread *threads;
} au_pysample;

/* Counters of the last sample (deterministic for a given target state). */
typedef struct au_pyreader_stats {
    au_mem_stats mem;       /* the memory source's counters, this sample */
    uint32_t batches;       /* read batches issued */
    uint32_t code_hits, code_misses, code_evictions;
    uint64_t allocations;   /* heap allocations made by this sample */
} au_pyreader_stats;

/* Create a reader for a target whose runtime is at runtime_addr and whose
 * version is py_version_hex (see au_pyruntime_find).  mem is borrowed.
 * For 3.13+, reads the target's _Py_DebugOffsets (AU_ERR_UNSUPPORTED for a
 * free-threaded build, AU_ERR_CORRUPT for an invalid blob). */
int au_pyreader_new(const au_allocator *alloc, au_memsrc *mem, uint32_t py_version_hex,
                    uint64_t runtime_addr, const au_pyreader_limits *limits,
                    au_pyreader **out);
void au_pyreader_free(au_pyreader *r);

/* One sample of every thread.  The result stays valid until the next call.
 * Fails only when nothing at all could be read (AU_ERR_READ, AU_ERR_NOPROC)
 * or the allocator refused (AU_ERR_NOMEM); a thread whose chain breaks is
 * returned with AU_THREAD_PARTIAL.  At most 1,024 code objects are fetched
 * per sample; frames of further new ones show as unknown until the next. */
int au_pyreader_sample(au_pyreader *r, au_pysample *out);
const au_pycode *au_pyreader_code(const au_pyreader *r, uint32_t code);
void au_pyreader_get_stats(const au_pyreader *r, au_pyreader_stats *stats);

/* Where the interpreter names threads only by pthread id (3.9, 3.10):
 * read each thread's TID (au_pythread.native_id) at this offset in its
 * glibc thread descriptor, whose address the pthread id is, as part of
 * the sample's reads.  The sampler finds the offset (docs/CLI.md) and
 * sets it; 0, the default, reads none.  No effect on 3.11+. */
void au_pyreader_set_tid_offset(au_pyreader *r, uint32_t offset);

/* ---------------------------------------------------------------------------
 * The sampler: one call from a process (or a snapshot) to task-aware stacks.
 *
 * It joins every layer: it finds the interpreter, reads every thread and
 * its frames, the asyncio tasks of every thread's event loop with their
 * coroutine chains and links (and the in-target agent's records of which
 * task created which, docs/AGENT.md), resolves each thread's task graph
 * (docs/RESOLVER.md) and hands out stacks whose frames and tasks are
 * already named.  A profiler that vendors the core calls
 * au_sampler_sample() in its loop and walks the result, or renders it with
 * au_render().
 *
 * A sample and everything it points to stay valid until the next call on
 * the sampler.
 * ------------------------------------------------------------------------ */

typedef struct au_sampler au_sampler;

/* au_sampler_options.flags */
#define AU_SAMPLER_NO_TASKS 0x1u /* threads and frames only: no asyncio */
#define AU_SAMPLER_NO_AGENT 0x2u /* ignore the agent's records (no weak links) */
#define AU_SAMPLER_RECORD 0x4u   /* keep what each sample reads, so that
                                    au_sampler_write_snapshot can write it */
#define AU_SAMPLER_CPU_STATE 0x8u /* flag threads on CPU (AU_THREAD_ON_CPU)
                                     from /proc/PID/task/TID/stat */

/* Zero fields take the defaults: these (AU_DEFAULT_SAMPLE_TASKS is the
 * tasks a sample reads; AU_DEFAULT_MAX_TASKS above is the resolver's). */
#define AU_DEFAULT_SAMPLE_TASKS 65536u
#define AU_DEFAULT_MAX_CORO_FRAMES 1024u
#define AU_DEFAULT_MAX_PAGES 40960u /* 160 MiB */
typedef struct au_sampler_options {
    uint32_t flags;              /* AU_SAMPLER_* */
    uint32_t max_tasks;          /* tasks read per sample (default 65536) */
    uint32_t max_coro_frames;    /* coroutine frames per task (default 1024) */
    uint32_t max_pages;          /* pages the asyncio model may read per
                                    sample (default 40960: 160 MiB) */
    au_pyreader_limits reader;
    au_resolver_limits resolver;
} au_sampler_options;

/* A frame, named.  Strings are UTF-8, not NUL-terminated. */
typedef struct au_sample_frame {
    const char *qualname;  /* NULL when the code object could not be read */
    const char *filename;
    uint32_t qualname_len, filename_len;
    int32_t line;          /* -1 when unknown */
    uint32_t unused;
    uint64_t addr;         /* the frame (its identity in the target) */
    uint64_t code_addr;    /* its code object */
} au_sample_frame;

/* au_sample_task.flags: AU_TASK_RUNNING (asyncunwind.h, the resolver) */

typedef struct au_sample_task {
    uint64_t id;           /* the task's address */
    const char *name;      /* UTF-8, not NUL-terminated */
    uint32_t name_len;
    uint32_t flags;        /* AU_TASK_* */
    uint32_t thread;       /* index into au_sample.threads */
    uint32_t parent;       /* index into au_sample.tasks, or UINT32_MAX */
    uint32_t link;         /* au_link_kind: how it hangs under parent */
    uint32_t nframes;      /* its coroutine frames, outermost first: */
    uint32_t first_frame;  /*   au_sample.frames[first_frame ...] */
    uint32_t unused;
} au_sample_task;

typedef struct au_sample_thread {
    uint64_t native_id;    /* Linux TID; 0 when not known: 3.9/3.10
                              name threads by pthread id only, and the
                              TID is then found in glibc's thread
                              descriptor (docs/CLI.md), or in a
                              snapshot's PTHREAD records */
    uint64_t thread_id;    /* pthread id */
    const char *name;      /* its threading.Thread name, else the
                              kernel's name of the thread, or NULL */
    uint32_t name_len;
    uint32_t flags;        /* AU_THREAD_* */
    uint32_t nframes, first_frame; /* its Python stack, outermost first */
    uint32_t ntasks, first_task;   /* the tasks of the loop it runs */
    uint32_t nstacks, first_stack; /* its stacks in au_sample.stacks */
} au_sample_thread;

typedef struct au_sample_stack {
    uint32_t thread;       /* index into au_sample.threads */
    uint32_t leaf;         /* index into au_sample.tasks, or UINT32_MAX */
    uint32_t flags;        /* AU_STACK_* */
    uint32_t ntasks;       /* tasks in its chain */
} au_sample_stack;

/* au_sample.flags */
#define AU_SAMPLE_TRUNCATED 0x1u /* a limit left things out: more threads
                                    than max_threads, tasks than max_tasks,
                                    links than max_links, or pages than
                                    max_pages (au_sampler_options) */
#define AU_SAMPLE_ASYNCIO 0x2u   /* asyncio was found and its tasks read */
#define AU_SAMPLE_AGENT 0x4u     /* the agent's records were found */
#define AU_SAMPLE_PARTIAL 0x8u   /* reserved: the asyncio model could not
                                    read everything.  Not set today: an
                                    object it cannot read is left out on
                                    its own, and a cut at a limit is
                                    AU_SAMPLE_TRUNCATED (which set this
                                    flag before 2026-12-05) */

typedef struct au_sample {
    int pid;
    uint32_t py_version_hex;
    uint32_t version_exact;  /* 0: only major.minor is known */
    uint32_t flags;          /* AU_SAMPLE_* */
    uint64_t time_ns;        /* CLOCK_REALTIME of the sample (a snapshot's
                                recorded time on replay) */
    uint32_t nthreads, ntasks, nstacks, nframes;
    const au_sample_thread *threads;
    const au_sample_task *tasks;
    const au_sample_stack *stacks;
    const au_sample_frame *frames;
} au_sample;

/* Counters of the last sample, deterministic for a given target state. */
/* au_sampler_stats.limits: which limit left something out. */
#define AU_LIMIT_THREADS 0x1u /* max_threads (au_pyreader_limits) */
#define AU_LIMIT_TASKS 0x2u   /* max_tasks */
#define AU_LIMIT_PAGES 0x4u   /* max_pages */
#define AU_LIMIT_LINKS 0x8u   /* max_links (au_resolver_limits), per thread */

typedef struct au_sampler_stats {
    au_pyreader_stats reader;  /* threads and frames */
    au_mem_stats mem;          /* every read of the sample */
    uint32_t tasks;            /* tasks read */
    uint32_t links;            /* strong links found */
    uint32_t creators;         /* weak links the agent supplied */
    uint32_t pages;            /* pages the asyncio model fetched */
    uint32_t pages_used;       /* of which some read used */
    uint32_t limits;           /* AU_LIMIT_*: the limits that cut this
                                  sample (AU_SAMPLE_TRUNCATED iff any) */
    uint64_t allocations;      /* heap allocations this sample made (with
                                  AU_SAMPLER_RECORD, not counting the
                                  recording's own and those that re-create
                                  the reader and the model) */
} au_sampler_stats;

/* A live process.  Errors as au_memsrc_live_open and au_pyruntime_find
 * (au_pyruntime_find tells which version an AU_ERR_UNSUPPORTED target
 * runs). */
int au_sampler_open_pid(const au_allocator *alloc, int pid, const au_sampler_options *opt,
                        au_sampler **out);
/* A parsed snapshot (borrowed: it must outlive the sampler).  Each sample
 * replays it. */
int au_sampler_open_snapshot(const au_allocator *alloc, const au_snapshot *snap,
                             const au_sampler_options *opt, au_sampler **out);
void au_sampler_free(au_sampler *s);

/* The version of the target, once open (PY_VERSION_HEX; and whether the
 * patch level is known). */
uint32_t au_sampler_version(const au_sampler *s, int *exact);

/* Take a sample.  Fails only when nothing could be read (AU_ERR_READ,
 * AU_ERR_NOPROC) or on AU_ERR_NOMEM; whatever could be read is returned,
 * with flags saying what is partial. */
int au_sampler_sample(au_sampler *s, const au_sample **out);

/* Stack `stack` of the last sample, root first, as au_stack_entries lays
 * it out (docs/RESOLVER.md): returns its whole length, writes at most cap
 * entries (a longer stack keeps its root side and ends in a TRUNCATED
 * entry); cap 0 measures.  In the entries, a FRAME's id is its index in
 * au_sample.frames; a TASK's or CYCLE's task is its index in
 * au_sample.tasks (and id its address). */
uint64_t au_sample_stack_entries(const au_sampler *s, uint32_t stack, au_entry *buf,
                                 uint32_t cap);

void au_sampler_get_stats(const au_sampler *s, au_sampler_stats *stats);

/* With AU_SAMPLER_RECORD: write everything the last sample read, and its
 * thread names, as a snapshot (docs/SNAPSHOT.md). */
int au_sampler_write_snapshot(au_sampler *s, int (*write)(void *ud, const void *buf, size_t len),
                              void *ud);

/* ---------------------------------------------------------------------------
 * Rendering a sample.
 *
 * AU_FORMAT_TEXT: per stack, a header naming the thread (and the leaf
 * task), then its entries root first, one per line, like a traceback.
 * AU_FORMAT_COLLAPSED: one line per stack, entries joined by ';', then a
 * count of 1: what flame-graph tools read.  Tasks appear as "[name]"
 * entries.  docs/CLI.md shows both.
 * ------------------------------------------------------------------------ */
#define AU_FORMAT_TEXT 0u
#define AU_FORMAT_COLLAPSED 1u
/* AU_FORMAT_TREE: per thread, its task tree in the spirit of Python
 * 3.14's `python -m asyncio pstree`: each task under its parent, the edge
 * marked await, strong (gather, TaskGroup, wait, ...) or weak (created
 * by), with the task's coroutine frames; tasks that await each other in a
 * cycle (a deadlock) are printed as a cycle, not refused.  Depth is
 * bounded (AU_TREE_MAX_DEPTH levels; deeper tasks are counted, not
 * printed).  AU_FORMAT_JSON: the whole sample (threads, frames, tasks with
 * their parent and link, stacks) as one JSON document whose schema is
 * docs/schema/sample.schema.json (docs/JSON.md); it holds the tree too.
 * Names from the target are escaped so that the output is valid UTF-8
 * JSON whatever bytes they hold.  (2 and 3 are profile formats, below.) */
#define AU_FORMAT_TREE 4u
#define AU_FORMAT_JSON 5u
#define AU_TREE_MAX_DEPTH 256u

/* Returns AU_OK, AU_ERR_IO when write() fails (non-zero), AU_ERR_ARG or
 * AU_ERR_NOMEM. */
int au_render(au_sampler *s, const au_sample *sample, uint32_t format,
              int (*write)(void *ud, const void *buf, size_t len), void *ud);

/* ---------------------------------------------------------------------------
 * Profiles: many samples aggregated into one stack table.
 *
 * A profile interns each distinct frame (qualified name, file, line), task
 * name and thread once, and each distinct stack once with its count, so a
 * long record costs memory in proportion to what it saw, not to how long it
 * ran.  Its limits bound that too: once a table is full, further new stacks
 * are counted under one "[dropped: profile full]" stack and in
 * au_profile_stats.dropped, never by growing.
 *
 * Stacks are the sampler's (au_sample_stack_entries), root first, under a
 * root entry naming their thread.  Writers turn a profile into the formats
 * flame-graph tools open (docs/OUTPUTS.md).
 * ------------------------------------------------------------------------ */
typedef struct au_profile au_profile;

/* Zero fields take the defaults. */
typedef struct au_profile_limits {
    uint32_t max_stacks;       /* distinct stacks (default 1 << 18) */
    uint32_t max_names;        /* distinct frames, tasks and threads
                                  (default 1 << 18) */
    uint64_t max_text_bytes;   /* interned text (default 64 MiB) */
    uint32_t max_depth;        /* entries kept per stack; a deeper stack
                                  keeps its root side (default 2048) */
    uint32_t max_entries;      /* entries of all distinct stacks together
                                  (default 1 << 24, 4 bytes each) */
} au_profile_limits;

/* au_profile_add flags */
#define AU_PROFILE_CPU 0x1u /* cpu mode: only threads flagged
                               AU_THREAD_ON_CPU in the sample, and of their
                               stacks only the running task's (or the bare
                               thread stack) */
#define AU_PROFILE_PROCESS 0x2u /* a root entry "process PID" above the
                                   thread: samples of several processes
                                   (record --subprocesses) stay apart */

/* au_sample_thread.flags, set by the sampler with AU_SAMPLER_CPU_STATE:
 * the kernel reported the thread running or runnable (state R in
 * /proc/PID/task/TID/stat) when the sample was taken. */
#define AU_THREAD_ON_CPU 0x100u

int au_profile_new(const au_allocator *alloc, const au_profile_limits *lim, au_profile **out);
void au_profile_free(au_profile *p);

/* Count every stack of `sample` (taken by `s`, whose last sample it must
 * be) `weight` times.  AU_ERR_NOMEM leaves the profile as it was before
 * the call. */
int au_profile_add(au_profile *p, au_sampler *s, const au_sample *sample, uint32_t flags,
                   uint64_t weight);

typedef struct au_profile_stats {
    uint64_t samples;          /* au_profile_add calls that succeeded */
    uint64_t stacks_added;     /* stacks counted (before weights) */
    uint64_t dropped;          /* of those, counted under "[dropped]" */
    uint32_t stacks;           /* distinct stacks held */
    uint32_t names;            /* distinct names held */
    uint64_t text_bytes;       /* interned text held */
    uint64_t heap_bytes;       /* everything the profile holds */
} au_profile_stats;
void au_profile_get_stats(const au_profile *p, au_profile_stats *st);

/* Output formats of a profile (AU_FORMAT_COLLAPSED as for a sample, with
 * each stack's count). */
#define AU_FORMAT_SPEEDSCOPE 2u /* speedscope's file format, one "sampled"
                                   profile per thread */
#define AU_FORMAT_SVG 3u        /* a self-contained interactive flame graph */

/* `title` (may be NULL) names the profile in the output: the command
 * line, say.  Returns AU_OK, AU_ERR_IO when write() fails, AU_ERR_ARG or
 * AU_ERR_NOMEM. */
int au_profile_write(const au_profile *p, uint32_t format, const char *title,
                     int (*write)(void *ud, const void *buf, size_t len), void *ud);

/* ---------------------------------------------------------------------------
 * Recording: the sampler in a loop, into a profile.
 *
 * A session samples one or more processes at a fixed interval until a
 * stop condition, and counts every sample into a profile.  Sample k is due
 * at start + k x interval (CLOCK_MONOTONIC, slept to with an absolute
 * deadline, so sleep overshoot never accumulates).  A sample that ends past
 * the next deadline is "long": the next one starts at once, due at the
 * next deadline still ahead, so missed deadlines are skipped rather than
 * caught up in a burst.  Linux lets a sleep end up to the thread's timer
 * slack late (50 us by default): a host that samples at short intervals
 * should lower it (prctl(PR_SET_TIMERSLACK)), as the CLI does; the core
 * does not change its caller's thread settings.
 *
 * It survives what a target does: a target that exits ends (and the
 * session with the last one); a target that exec's is opened again; a
 * sample that fails is counted as an error and the next one is taken.
 * With AU_SESSION_CHILDREN it also follows every descendant process that
 * appears, each with its own sampler, into the same profile.
 * docs/CLI.md (record) describes the choices.
 * ------------------------------------------------------------------------ */
typedef struct au_session au_session;

/* au_session_options.flags */
#define AU_SESSION_CPU 0x1u      /* cpu mode: AU_SAMPLER_CPU_STATE, and
                                    AU_PROFILE_CPU into the profile */
#define AU_SESSION_CHILDREN 0x2u /* follow descendants of the targets */
#define AU_SESSION_ADOPTED 0x4u  /* with CHILDREN: follow the calling
                                    process's own children too.  A caller
                                    that started its targets and made itself
                                    a child subreaper (PR_SET_CHILD_SUBREAPER)
                                    adopts their descendants whose parent
                                    exited (a daemon's double fork): they
                                    are found there.  The caller reaps them. */

/* Why au_session_run returned (au_session_stats.end). */
#define AU_SESSION_END_DURATION 1u /* the duration elapsed */
#define AU_SESSION_END_STOPPED 2u  /* the stop callback said so */
#define AU_SESSION_END_GONE 3u     /* every process added is gone, and no
                                      child found is sampled any more */

typedef struct au_session_stats {
    uint64_t samples;       /* samples taken (one per process per tick) */
    uint64_t errors;        /* of which failed: nothing counted */
    uint64_t ticks;         /* sampling rounds over every process */
    uint64_t long_ticks;    /* rounds that ended past the next deadline */
    uint64_t time_min_ns, time_median_ns, time_max_ns; /* per sample, taken
                               and counted; the median within 1/32 */
    uint64_t time_total_ns;
    uint64_t tasks_min, tasks_max, tasks_total; /* tasks per good sample */
    uint64_t truncated;     /* good samples a limit cut short
                               (AU_SAMPLE_TRUNCATED) */
    uint64_t elapsed_ns;    /* since the run started */
    uint32_t processes;     /* processes being sampled now */
    uint32_t processes_seen;/* processes sampled at least once */
    uint32_t end;           /* AU_SESSION_END_*, 0 while running */
    uint32_t unused;
} au_session_stats;

/* Zero fields take the defaults. */
typedef struct au_session_options {
    uint64_t interval_ns;   /* between sample deadlines (default 1 ms) */
    uint64_t duration_ns;   /* 0: until stopped or every target is gone */
    uint64_t scan_ns;       /* how often to look for new children, and for
                               targets that exec'd or are not Python yet
                               (default 100 ms) */
    uint64_t progress_ns;   /* how often to call progress (default 250 ms) */
    uint32_t flags;         /* AU_SESSION_* */
    uint32_t max_processes; /* sampled at once (default 64) */
    au_sampler_options sampler; /* for every process's sampler */
    /* Polled before every tick and after an interrupted sleep; non-zero
     * ends the run (a signal handler's flag, say).  May be NULL. */
    int (*stop)(void *ud);
    /* Called every progress_ns with the statistics so far.  May be NULL. */
    void (*progress)(void *ud, const au_session_stats *st);
    void *ud;
} au_session_options;

/* The session borrows profile (it must outlive the session). */
int au_session_new(const au_allocator *alloc, const au_session_options *opt,
                   au_profile *profile, au_session **out);
void au_session_free(au_session *s);

/* au_session_add_pid flags */
#define AU_SESSION_WAIT 0x1u /* the process may not run Python yet (just
                                launched): keep trying to open it each
                                scan instead of failing */

/* Add a process to sample.  Without AU_SESSION_WAIT, errors as
 * au_sampler_open_pid; AU_ERR_LIMIT past max_processes. */
int au_session_add_pid(au_session *s, int pid, uint32_t flags);

/* Sample until the duration elapses, stop() says so, or no target is
 * left.  Returns AU_OK, or AU_ERR_NOMEM when the profile or a sampler
 * could not allocate (what was counted stays in the profile). */
int au_session_run(au_session *s);

void au_session_get_stats(const au_session *s, au_session_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* ASYNCUNWIND_H */
