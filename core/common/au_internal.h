/* Helpers shared by the core's layers; not part of the public API. */
#ifndef ASYNCUNWIND_INTERNAL_H
#define ASYNCUNWIND_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "asyncunwind.h"

/* The caller's allocator, or libc's when a is NULL or incomplete. */
au_allocator au_alloc_or_libc(const au_allocator *a);

/* A zeroed block of size bytes from alloc (libc's when alloc is NULL or
 * incomplete), or NULL when out of memory.  *used is set to the allocator
 * it came from: the object keeps it to grow and free itself with. */
void *au_alloc_zeroed(const au_allocator *alloc, size_t size, au_allocator *used);

/* Make the array *ptr of *cap elements of elem bytes hold at least need
 * elements, growing geometrically.  Counts the allocation in *counter when
 * counter is not NULL.  Contents are preserved; new elements are not
 * initialised. */
int au_grow(const au_allocator *a, uint64_t *counter, void **ptr, uint32_t *cap,
            size_t need, size_t elem);

/* Free an array that au_grow sized: cap elements of elem bytes (the
 * allocator is told the size it handed out).  A NULL p is nothing to do. */
void au_free_array(const au_allocator *a, void *p, size_t cap, size_t elem);
#define AU_FREE_ARRAY(a, p, cap) au_free_array((a), (p), (cap), sizeof *(p))

/* Sort n elements of `size` bytes in place by cmp, without allocating
 * (heapsort; not stable): qsort may allocate, which the hot paths must
 * not. */
void au_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* The status for errno value err from a failed system call on a process
 * or its /proc files: ESRCH and ENOENT -> AU_ERR_NOPROC (the process is
 * gone or never was), EPERM and EACCES -> AU_ERR_PERM, ENOMEM ->
 * AU_ERR_NOMEM, anything else `other` (AU_ERR_IO for files, AU_ERR_READ
 * for memory). */
int au_status_from_errno(int err, int other);

/* au_memsrc_live_open, optionally forcing the /proc/PID/mem fallback that is
 * otherwise used only where process_vm_readv is unavailable (for tests). */
int au_memsrc_live_open_ex(const au_allocator *alloc, int pid, int force_proc_mem,
                           au_memsrc **out);

/* Ask the CPU to bring the cache line at p in for reading: a hint, which
 * compilers without the builtin drop. */
#if defined(__GNUC__) || defined(__clang__)
#define AU_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#else
#define AU_PREFETCH(p) ((void)(p))
#endif

/* Keep a slow path out of line, so that its fast path inlines into its
 * callers (a hint, like AU_PREFETCH). */
#if defined(__GNUC__) || defined(__clang__)
#define AU_NOINLINE __attribute__((noinline))
#else
#define AU_NOINLINE
#endif

/* 64-bit mixer (the splitmix64 finaliser): ids are addresses, whose low and
 * high bits carry little entropy, so they are mixed before masking. */
static inline uint64_t au_mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* qsort order of uint64_t values (ids, page numbers), without the
 * overflow a subtraction would have. */
static inline int au_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

#endif
