/* What every fuzz harness shares, in one header (one library,
 * //fuzz:fuzz_helpers): the CHECK macro, the test allocator, NO_COV, and
 * byte order (the core's little-endian loads and stores, and a reader that
 * consumes a fuzz input as little-endian integers).  A harness includes
 * this and nothing else of its kind: a private assertion, allocator or
 * byte-order helper in a harness is a second copy to keep in step. */
#ifndef ASYNCUNWIND_FUZZ_HELPERS_H
#define ASYNCUNWIND_FUZZ_HELPERS_H

#include <stddef.h>
#include <stdint.h>

/* au_rd16/32/64, au_wr32/64: one spelling of little-endian in the
 * project, the core's. */
#include "au_bytes.h"

/* --- CHECK ------------------------------------------------------------- */

/* CHECK(cond) or CHECK(cond, fmt, ...): a harness's invariant.  When it
 * does not hold, print where (the file names the harness), the condition
 * and the message, then what the harness registered with check_on_failure
 * (the input decoded, the outputs compared, ...), and abort, which every
 * engine reports as a crash with its input.  The one CHECK of every
 * harness. */

/* Prints the failure and aborts.  fmt may be NULL (no message). */
void check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));

/* fn(ud) runs after a failure's message and before the abort, to print
 * the context of the check.  One at a time: NULL removes it. */
typedef void (*check_context_fn)(void *ud);
void check_on_failure(check_context_fn fn, void *ud);

/* With a message or without: the argument count picks the form (up to 19
 * arguments after cond), and the format is checked either way. */
#define CHECK(...)                                                                            \
    CHECK_PICK_(__VA_ARGS__, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_,      \
                CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_,       \
                CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_, CHECK_MSG_,       \
                CHECK_MSG_, CHECK_MSG_, CHECK_BARE_, unused)                                  \
    (__VA_ARGS__)
#define CHECK_PICK_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16,   \
                    _17, _18, _19, _20, name, ...)                                            \
    name
#define CHECK_BARE_(cond)                                                                     \
    do {                                                                                      \
        if (!(cond)) check_failed(__FILE__, __LINE__, #cond, NULL);                           \
    } while (0)
#define CHECK_MSG_(cond, ...)                                                                 \
    do {                                                                                      \
        if (!(cond)) check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__);                    \
    } while (0)

/* --- The test allocator ------------------------------------------------ */

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

typedef struct test_alloc {
    uint64_t calls;     /* allocations and resizes */
    uint64_t fail_at;   /* that call (1-based) returns NULL; 0 = never */
    int fail_after;     /* and, when set, every call after it */
    int failed;         /* a call was refused */
    int64_t live;       /* blocks outstanding */
    uint8_t fill;       /* fresh bytes get this value (the first 64 KiB;
                           none under MSan, which tracks them itself) */
    size_t big_request; /* the largest request over 1 GiB, or 0 */
} test_alloc;

/* The au_allocator's realloc; ud is a test_alloc. */
void *ta_realloc(void *ud, void *ptr, size_t old_size, size_t new_size);

/* --- Memory of the harness itself -------------------------------------- */

/* malloc, calloc and realloc for the harness's own data (never for the
 * code under test, which gets the test allocator): running out is not
 * what a harness tests, so it is a CHECK failure.  Size 0 is served as 1,
 * so a NULL always means failure. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size); /* zeroed */
void *xrealloc(void *p, size_t n);

/* --- NO_COV ------------------------------------------------------------ */

/* NO_COV marks a harness function that the fuzzer should not be guided
 * by: checking code and reference models loop over every byte they check,
 * and their coverage and comparison tracing would cost a large share of
 * the run time while telling the fuzzer nothing about the code under test.
 * ASan and UBSan still instrument them.
 *
 * Clang 14 spells it no_sanitize("coverage"); later clangs also know
 * no_sanitize_coverage, which __has_attribute reports false on 14, so
 * testing for that one alone silently did nothing.  gcc builds only the
 * regression replays, where it does not matter. */

#if defined(__clang__)
#define NO_COV __attribute__((no_sanitize("coverage")))
#else
#define NO_COV
#endif

/* --- Reading a fuzz input ---------------------------------------------- */

/* A fuzz input consumed front to back as little-endian integers.  Past
 * the end every byte reads as 0, so a harness decodes any input, however
 * short, without a length check at each step; pos < n tells whether input
 * is left.  p and n are the input, pos the next byte. */
typedef struct fh_input {
    const uint8_t *p;
    size_t n, pos;
} fh_input;

static inline uint8_t fh_u8(fh_input *in) {
    return in->pos < in->n ? in->p[in->pos++] : 0;
}

static inline uint16_t fh_u16(fh_input *in) {
    uint16_t lo = fh_u8(in);
    return (uint16_t)(lo | fh_u8(in) << 8);
}

static inline uint32_t fh_u32(fh_input *in) {
    uint32_t lo = fh_u16(in);
    return lo | (uint32_t)fh_u16(in) << 16;
}

static inline uint64_t fh_u64(fh_input *in) {
    uint64_t lo = fh_u32(in);
    return lo | (uint64_t)fh_u32(in) << 32;
}

/* The 32-bit little-endian value at data[at], bytes past size read as 0. */
static inline uint32_t fh_u32_at(const uint8_t *data, size_t size, size_t at) {
    fh_input in = {data, size, at < size ? at : size};
    return fh_u32(&in);
}

#endif
