/* See fuzz_helpers.h. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE under -std=c11 */

#include "fuzz/fuzz_helpers.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* --- CHECK ------------------------------------------------------------- */

/* The harness's context printer (one harness per process). */
static check_context_fn context_fn;
static void *context_ud;

void check_on_failure(check_context_fn fn, void *ud) {
    context_fn = fn;
    context_ud = ud;
}

void check_failed(const char *file, int line, const char *cond, const char *fmt, ...) {
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, cond);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "  ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    if (context_fn) {
        check_context_fn fn = context_fn;
        context_fn = NULL; /* a check failing inside it must not loop */
        fn(context_ud);
    }
    fflush(stderr);
    abort();
}

/* --- Memory of the harness itself -------------------------------------- */

/* NO_COV: plumbing, which should not guide the fuzzer. */
NO_COV void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    CHECK(p != NULL, "out of memory (%zu bytes)", n);
    return p;
}

NO_COV void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    CHECK(p != NULL, "out of memory (%zu x %zu bytes)", n, size);
    return p;
}

NO_COV void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    CHECK(q != NULL, "out of memory (%zu bytes)", n);
    return q;
}

/* --- The test allocator ------------------------------------------------ */

/* Under MemorySanitizer fresh bytes stay uninitialised: MSan then reports
 * the first use of one, with where it was allocated, which is sharper than
 * comparing the outputs of two fills.  Elsewhere the fill stands in. */
#if defined(__has_feature)
#if __has_feature(memory_sanitizer)
#define FILL_FRESH 0
#endif
#endif
#ifndef FILL_FRESH
#define FILL_FRESH 1
#endif

#define MAGIC 0x5eedf00dull
#define BIG_MAGIC 0xb16b10c5ull
#define BIG ((size_t)1 << 30)
#define HUGE ((size_t)16 << 30)
#define FILL_MAX ((size_t)1 << 16)

/* Each block carries its size and a magic word in a 16-byte header; a
 * big one sits in its own mapping, a page of header before it. */
static size_t *big_map(size_t size) {
    size_t total = size + 4096;
    uint8_t *p = mmap(NULL, total, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    size_t *h = (size_t *)(p + 4096) - 2;
    h[0] = size;
    h[1] = BIG_MAGIC;
    ((size_t *)p)[0] = total;
    return h;
}

static void free_block(size_t *h) {
    if (h[1] == BIG_MAGIC) {
        uint8_t *base = (uint8_t *)(h + 2) - 4096;
        munmap(base, ((size_t *)base)[0]);
    } else {
        free(h);
    }
}

void *ta_realloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    test_alloc *a = ud;
    size_t *old = ptr ? (size_t *)ptr - 2 : NULL;
    if (old) {
        CHECK(old[1] == MAGIC || old[1] == BIG_MAGIC, "test_alloc: not a block of this allocator");
        CHECK(old[0] == old_size, "test_alloc: old_size %zu, the block has %zu", old_size, old[0]);
    } else {
        CHECK(old_size == 0, "test_alloc: old_size %zu for a new block", old_size);
    }
    if (new_size == 0) {
        if (old) {
            a->live--;
            free_block(old);
        }
        return NULL;
    }
    a->calls++;
    if (a->fail_at && (a->calls == a->fail_at || (a->fail_after && a->calls > a->fail_at))) {
        a->failed = 1;
        return NULL;
    }
    size_t *h;
    if (new_size > BIG || (old && old[1] == BIG_MAGIC)) {
        if (new_size > BIG && new_size > a->big_request) a->big_request = new_size;
        if (new_size > HUGE || !(h = big_map(new_size))) return NULL;
        if (old) {
            memcpy(h + 2, ptr, old_size < new_size ? old_size : new_size);
            free_block(old);
        }
    } else {
        h = realloc(old, new_size + 2 * sizeof(size_t));
        if (!h) return NULL;
        h[0] = new_size;
        h[1] = MAGIC;
    }
    if (!old) a->live++;
    if (FILL_FRESH && new_size > old_size) {
        size_t n = new_size - old_size;
        memset((uint8_t *)(h + 2) + old_size, a->fill, n < FILL_MAX ? n : FILL_MAX);
    }
    return h + 2;
}
