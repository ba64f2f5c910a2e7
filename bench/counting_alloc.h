/*
 * counting_alloc: an au_allocator over libc that counts the allocations
 * made through it, so a benchmark can report (and its smoke test fail on)
 * heap allocations in a warm loop.
 */
#ifndef AU_BENCH_COUNTING_ALLOC_H
#define AU_BENCH_COUNTING_ALLOC_H

#include <stdint.h>

#include "core/asyncunwind.h"

typedef struct counting_alloc {
    uint64_t allocations; /* malloc-like and resizing reallocs */
} counting_alloc;

/* An allocator counting into *c, which must outlive its use. */
au_allocator counting_allocator(counting_alloc *c);

#endif /* AU_BENCH_COUNTING_ALLOC_H */
