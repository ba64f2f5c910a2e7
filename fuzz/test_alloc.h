/* An au_allocator for fuzz harnesses: it checks that every resize and free
 * passes the size the block really has, counts the blocks outstanding (a
 * leak the sanitizers would miss shows as live != 0 once the harness has
 * freed everything), and can refuse its k-th call, to drive the code under
 * test down its out-of-memory paths.  A wrong size aborts with a message. */
#ifndef ASYNCUNWIND_FUZZ_TEST_ALLOC_H
#define ASYNCUNWIND_FUZZ_TEST_ALLOC_H

#include <stddef.h>
#include <stdint.h>

typedef struct test_alloc {
    uint64_t calls;   /* allocations and resizes */
    uint64_t fail_at; /* that call (1-based) returns NULL; 0 = never */
    int failed;       /* a call was refused */
    int64_t live;     /* blocks outstanding */
} test_alloc;

/* The au_allocator's realloc; ud is a test_alloc. */
void *ta_realloc(void *ud, void *ptr, size_t old_size, size_t new_size);

#endif
