/*
 * One sample's view of target memory, kept by whole pages.
 *
 * The asyncio model reads thousands of small objects a sample, each found
 * through the one before (set -> weakref -> task -> coroutine -> frame ->
 * awaited coroutine ...).  Read one object at a time, that is a system
 * call per object: echion spends 51-54 ms on 2,000 tasks that way.  A view
 * turns it into a few batched calls per sample:
 *
 *  - it fetches whole 4 KiB pages, so every later read that falls on a
 *    page already fetched costs nothing, and objects allocated side by
 *    side (tasks, their coroutines) share pages;
 *  - a caller that knows what the next level needs asks for all of it at
 *    once (au_view_want), and the missing pages go out as one batch, which
 *    the live source scatters into the view in a call per 1,024 pages;
 *  - a sample may start by fetching, in one batch, the pages the previous
 *    sample used (au_view_begin(v, 1)): in a steady program the objects
 *    are where they were, so most levels then find their pages present
 *    (pages only a one-off search used are left out: au_view_set_transient).
 *
 * Within a sample each page is read once, so the view is one consistent
 * picture of each page, and a recording of it (core/memory/recorder.c)
 * replays exactly: a replay asks for the pages it needs, which the live
 * sample fetched too.  A page that failed stays failed for the sample.
 *
 * Bounds: at most max_pages pages per sample (reads beyond fail with
 * AU_ERR_LIMIT); memory grows to the largest sample and is then reused, so
 * a warm view allocates nothing.
 *
 * Exact mode (au_view_set_exact) reads exactly the bytes asked for, one
 * read each, and keeps nothing: for recording a snapshot, which then holds
 * the bytes the sample used and not the 4 KiB around each of them (a
 * search of sys.modules touches a page per key; the snapshot of a small
 * program is 20 times smaller), and for replaying one.  It costs a system
 * call per read, which a one-off snapshot can afford.
 */
#ifndef ASYNCUNWIND_VIEW_H
#define ASYNCUNWIND_VIEW_H

#include <stdint.h>

#include "asyncunwind.h"

#define AU_VIEW_PAGE 4096u
/* 160 MiB: enough for the objects of max_tasks (65,536) tasks on every
 * version (3.9 reads the most, ~0.53 pages a task), so that a sample cut
 * for its size is cut by the task limit, which keeps whole tasks. */
#define AU_VIEW_DEFAULT_MAX_PAGES AU_DEFAULT_MAX_PAGES
#define AU_VIEW_MAX_PAGES (1u << 20)    /* 4 GiB: larger limits are clamped */

typedef struct au_view au_view;

typedef struct au_range {
    uint64_t addr;
    uint32_t len;
} au_range;

/* Counters of the current sample (since au_view_begin). */
typedef struct au_view_stats {
    uint32_t batches;    /* read batches issued to the source */
    uint32_t fetched;    /* pages fetched successfully */
    uint32_t failed;     /* pages whose read failed */
    uint32_t prefetched; /* of the fetched, fetched ahead for the previous
                            sample's sake */
    uint32_t used;       /* distinct pages that served a read */
    uint32_t limited;    /* pages refused by max_pages */
    uint64_t allocations;
} au_view_stats;

/* A view over src (borrowed).  max_pages 0 takes the default. */
int au_view_new(const au_allocator *alloc, au_memsrc *src, uint32_t max_pages, au_view **out);
void au_view_free(au_view *v);

/* Start a sample: every page is forgotten.  With prefetch, the pages the
 * previous sample used are fetched again, in one batch (their failures are
 * not errors).  Returns AU_OK or AU_ERR_NOMEM. */
int au_view_begin(au_view *v, int prefetch);

/* Fetch, in one batch, every missing page of the n ranges.  Ranges that
 * wrap, touch page 0 or are longer than 1 MiB are skipped (a read of them
 * fails).  Returns AU_OK, AU_ERR_NOMEM, or AU_ERR_LIMIT when max_pages
 * refused some page.  Read failures are not errors here: they show when
 * the bytes are read. */
int au_view_want(au_view *v, const au_range *ranges, uint32_t n);

/* Copy len bytes at addr into out, fetching missing pages first (one
 * batch).  AU_OK, AU_ERR_READ (a page failed or the range is invalid),
 * AU_ERR_LIMIT or AU_ERR_NOMEM. */
int au_view_read(au_view *v, uint64_t addr, void *out, uint32_t len);

/* The len bytes at addr: a pointer into the view when they lie on one page
 * already fetched, else read (as au_view_read) into scratch, which must
 * hold len bytes; NULL when they cannot be read.  Valid until the next
 * call that may fetch.  A caller that decodes several fields of an object
 * asks once for the object.  In exact mode the span is one exact read into
 * scratch; when it fails (a snapshot recorded with shorter spans, or field
 * by field as before 2026-12-06), the caller reads the fields it uses one
 * by one, which lie inside whatever the recording read. */
const uint8_t *au_view_bytes(au_view *v, uint64_t addr, uint32_t len, uint8_t *scratch);

/* Pages fetched are added to the view, never replaced, during a sample;
 * they move only when the view grows.  This counts those growths: a
 * pointer from au_view_bytes or au_view_peek is still valid while it is
 * unchanged (and until au_view_begin). */
uint32_t au_view_moves(const au_view *v);

/* The bytes at addr when all len of them lie on one page already fetched,
 * else NULL; never reads.  Valid until the next call that may fetch. */
const uint8_t *au_view_peek(au_view *v, uint64_t addr, uint32_t len);

/* A hint that the len bytes at addr will be read soon: when their page is
 * fetched, the CPU is asked to bring up to 512 of them into its cache.
 * Never reads the target, fetches or fails.  At 10,000 tasks a sample's
 * pages are some 10 MiB, far beyond the cache, so each object read is a
 * cache miss; a loop over the objects of a level hints a few objects
 * ahead, and the misses overlap instead of following one another. */
void au_view_prefetch(au_view *v, uint64_t addr, uint32_t len);

void au_view_get_stats(const au_view *v, au_view_stats *out);

/* Transient reads on (1) or off (0, the default); returns the previous
 * setting, for the caller to restore.  A page that only transient reads
 * used this sample is left out of the next sample's prefetch: for one-off
 * searches (sys.modules, a new type's name) whose pages the next sample
 * will not read, and would otherwise fetch for nothing. */
int au_view_set_transient(au_view *v, int on);

/* Exact mode on (1) or off (0): see above.  au_view_want does nothing and
 * au_view_peek returns NULL in exact mode. */
void au_view_set_exact(au_view *v, int exact);

#endif
