/* The au_allocator of every fuzz harness.  It checks that every resize and
 * free passes the size the block really has, counts the blocks
 * outstanding (a leak the sanitizers would miss shows as live != 0 once
 * the harness has freed everything), fills fresh memory with a chosen
 * byte (two runs that differ only in it must agree: an output that
 * depends on uninitialised memory does not), and can refuse its k-th
 * call, or every call from the k-th on, to drive the code under test down
 * its out-of-memory paths.
 *
 * Requests over 1 GiB are noted in big_request (with modest limits they
 * are a bug the harness reports) and served from reserved address space,
 * backed only where touched, so a block that is under-sized or misread is
 * still caught; requests over 16 GiB are refused.  A wrong size is a
 * CHECK failure. */
#ifndef ASYNCUNWIND_FUZZ_TEST_ALLOC_H
#define ASYNCUNWIND_FUZZ_TEST_ALLOC_H

#include <stddef.h>
#include <stdint.h>

typedef struct test_alloc {
    uint64_t calls;     /* allocations and resizes */
    uint64_t fail_at;   /* that call (1-based) returns NULL; 0 = never */
    int fail_after;     /* and, when set, every call after it */
    int failed;         /* a call was refused */
    int64_t live;       /* blocks outstanding */
    uint8_t fill;       /* fresh bytes get this value (the first 64 KiB) */
    size_t big_request; /* the largest request over 1 GiB, or 0 */
} test_alloc;

/* The au_allocator's realloc; ud is a test_alloc. */
void *ta_realloc(void *ud, void *ptr, size_t old_size, size_t new_size);

#endif
