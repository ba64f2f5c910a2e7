/* The sample layer's interface to the layers above it (render/), and to
 * the tests and fuzzers that check a sample against its inputs.
 * Internal; the API is in asyncunwind.h. */
#ifndef ASYNCUNWIND_SAMPLER_H
#define ASYNCUNWIND_SAMPLER_H

#include "asyncunwind.h"
#include "au_pytasks.h"

/* The allocator the sampler was opened with (libc's when it was NULL). */
au_allocator au_sampler_alloc(const au_sampler *s);

/* au_sampler_open_snapshot, with every read going through mem (borrowed:
 * it must outlive the sampler) instead of a source the sampler opens on
 * snap; mem NULL is au_sampler_open_snapshot.  The snapshot still gives
 * the META and the thread names.  For fuzzers and tests that watch, count
 * or fail the reads of a replay. */
int au_sampler_open_snapshot_via(const au_allocator *alloc, const au_snapshot *snap,
                                 au_memsrc *mem, const au_sampler_options *opt,
                                 au_sampler **out);

/* au_sampler_open_snapshot_via, except that the asyncio model reads mem
 * as it reads a live process, by whole pages through its view (with the
 * next sample's prefetch, windows and hints), not by the exact ranges a
 * replay reads.  mem (required, borrowed) must serve those pages: a
 * memory image.  For fuzzers that hold the live path's decoding to the
 * exact path's over the same memory. */
int au_sampler_open_image(const au_allocator *alloc, const au_snapshot *snap, au_memsrc *mem,
                          const au_sampler_options *opt, au_sampler **out);

/* Thread `thread`'s resolver input in the last successful sample (frame
 * ids are indices into au_sample.frames plus one, task i is au_sample task
 * threads[thread].first_task + i), or NULL out of range.  Valid until the
 * next call on s.  Lets a checker resolve the same input independently. */
const au_thread_sample *au_sampler_thread_input(const au_sampler *s, uint32_t thread);

/* What the asyncio model is reading at this instant (AU_AT_PHASE_*), for a
 * memory source that wants to know what each read is for; NONE outside
 * the model (threads, frames, code of thread frames). */
uint32_t au_sampler_phase(const au_sampler *s);

/* The note a thread's stack ends with when the walk could not finish it;
 * the text and profile outputs print the same words. */
static inline const char *au_partial_note(uint32_t flags) {
    if (flags & AU_THREAD_CYCLE) return "[frame chain loops]";
    if (flags & AU_THREAD_PARTIAL) return "[partial stack]";
    return NULL;
}

#endif
