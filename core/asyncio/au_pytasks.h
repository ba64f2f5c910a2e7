/*
 * The asyncio model: from the target's memory, every pending task of every
 * thread's event loop, with its name, its coroutine chain and its links.
 *
 * Internal to the core; the sampler (core/sample/) is its only user.  The
 * parts, each in its own file, in the order one sample uses them:
 *
 *   pytasks.c   where the tasks are (per version), reading them, names,
 *               which thread runs which loop, the sample as a whole
 *   pycoro.c    each task's coroutine chain, level by level
 *   pylinks.c   strong links, from the done-callbacks asyncio installs and
 *               (3.14+) awaited_by
 *   agent_region.c + pyagent.c  weak links: the agent's records, parsed
 *               and validated against the live tasks
 *
 * Every object is read through one page view per sample, a level of the
 * task graph at a time (all tasks, then all their coroutines, then all the
 * frames they await, ...), so a sample costs a few batched reads however
 * many tasks there are.
 */
#ifndef ASYNCUNWIND_PYTASKS_H
#define ASYNCUNWIND_PYTASKS_H

#include <stdint.h>

#include "asyncunwind.h"
#include "au_pyobjects.h"
#include "au_pyreader.h"
#include "au_view.h"

/* au_atask.flags */
#define AU_AT_PENDING 0x1u  /* fut_state is PENDING (the others are skipped) */
#define AU_AT_CHAIN_CUT 0x2u /* the coroutine chain was cut (bound or error) */

/* A task as read from memory. */
typedef struct au_atask {
    uint64_t addr;        /* the Task object: its id */
    uint64_t loop;        /* fut_loop */
    uint64_t waiter;      /* fut_waiter: the future it waits on, or 0 */
    uint64_t coro;        /* task_coro */
    uint64_t name_obj;    /* task_name (a str, or an int counter) */
    uint64_t cb0, cbs;    /* fut_callback0, fut_callbacks */
    uint64_t awaited_by;  /* 3.14+: an awaiter, or a set of them */
    uint64_t creator;     /* the weak link, once validated (else 0) */
    const char *name;     /* UTF-8 in the objects' arena */
    uint32_t name_len;
    uint32_t flags;       /* AU_AT_* */
    uint32_t thread;      /* index into the pysample's threads, or NONE */
    uint32_t first_frame; /* its coroutine frames in au_tasks_result.frames, */
    uint32_t nframes;     /*   outermost first */
    uint32_t waiter_task; /* the index of the task `waiter` is, or
                             UINT32_MAX: the sampler's await links */
    uint8_t awaited_by_is_set;
    uint8_t unused[3];
} au_atask;

/* au_tasks_result.flags */
#define AU_TR_ASYNCIO 0x1u  /* asyncio's task containers were found */
#define AU_TR_AGENT 0x2u    /* the agent's region was read */
#define AU_TR_LIMIT_TASKS 0x8u  /* max_tasks left tasks out */
#define AU_TR_LIMIT_PAGES 0x10u /* the view's max_pages left objects out */

/* Strong links kept per child task: distinct holders, the first found. */
#define AU_AT_MAX_PARENTS 16u

typedef struct au_tasks_result {
    uint32_t flags;
    uint32_t ntasks;
    au_atask *tasks;
    uint32_t nlinks;         /* strong links, by task address: at most
                                AU_AT_MAX_PARENTS per task */
    au_link *links;
    const uint32_t *link_tasks; /* per link: its child's and its parent's
                                index in tasks (2 * nlinks) */
    uint32_t nframes;
    au_pyframe *frames;      /* coroutine frames, resolved (code, line) */
    uint64_t *thread_loop;   /* per pysample thread: its running loop, 0 */
    const char **thread_name; /* per pysample thread: its threading name
                                (threading.Thread.name), or NULL */
    uint32_t *thread_name_len;
    uint32_t nthreads;
    uint32_t creators;       /* weak links the agent supplied */
} au_tasks_result;

typedef struct au_tasks_limits {
    uint32_t max_tasks;       /* tasks kept per sample */
    uint32_t max_coro_frames; /* coroutine frames per task */
    uint32_t max_pages;       /* the view's page limit */
    uint32_t exact;           /* read exact ranges, not pages: for
                                 recording and replaying snapshots */
} au_tasks_limits;

typedef struct au_tasks au_tasks;

/* A model reading through mem (borrowed) with reader's layout and code
 * cache (borrowed; both must outlive it).  AU_ERR_UNSUPPORTED when the
 * version has no layout for asyncio. */
int au_tasks_new(const au_allocator *alloc, au_pyreader *reader, au_memsrc *mem,
                 const au_tasks_limits *limits, au_tasks **out);
void au_tasks_free(au_tasks *t);

/* One sample of the tasks, after reader's sample ps (same target state as
 * far as possible).  asyncio_debug and agent are the addresses of the
 * target's _AsyncioDebug and of the agent's region (0: none).  The result
 * stays valid until the next call.  Fails only on AU_ERR_NOMEM; whatever
 * could not be read is left out and flagged. */
int au_tasks_sample(au_tasks *t, const au_pysample *ps, int pid, uint64_t asyncio_debug,
                    uint64_t agent, au_tasks_result *out);

/* Pages the view fetched and used this sample, and its allocations. */
void au_tasks_get_view_stats(const au_tasks *t, au_view_stats *out);

/* What a sample is reading, a step at a time (au_tasks_phase).  Nothing in
 * the core looks at it: it lets a memory source under the model (a
 * fuzzer's, a test's) tell which reads were for what, e.g. the links. */
typedef enum au_at_phase {
    AU_AT_PHASE_NONE = 0,  /* outside au_tasks_sample */
    AU_AT_PHASE_DEBUG,     /* 3.14+: the target's _AsyncioDebug */
    AU_AT_PHASE_FIND,      /* the task containers and their entries */
    AU_AT_PHASE_TASKS,     /* the tasks' own fields and names */
    AU_AT_PHASE_THREADS,   /* running loops, threading names */
    AU_AT_PHASE_CHAINS,    /* coroutine chains (pycoro.c) */
    AU_AT_PHASE_CODE,      /* code objects of coroutine frames */
    AU_AT_PHASE_LINKS,     /* what links are made of: a task's fut_waiter
                              and awaited_by, then pylinks.c */
    AU_AT_PHASE_AGENT,     /* the agent's records (pyagent.c) */
} au_at_phase;

uint32_t au_tasks_phase(const au_tasks *t);

/* Heap allocations the model made in its last sample (the view's are in
 * its stats). */
uint64_t au_tasks_allocations(const au_tasks *t);

#endif
