#include "fuzz/test_alloc.h"

#include <stdio.h>
#include <stdlib.h>

#define MAGIC 0x5eedf00dull

static void wrong(const char *what, size_t a, size_t b) {
    fprintf(stderr, "test_alloc: %s (%zu, %zu)\n", what, a, b);
    abort();
}

/* Each block carries its size and a magic word in a 16-byte header. */
void *ta_realloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    test_alloc *a = ud;
    if (ptr) {
        size_t *h = (size_t *)ptr - 2;
        if (h[0] != old_size) wrong("old_size differs from the block's size", old_size, h[0]);
        if (h[1] != MAGIC) wrong("not a block of this allocator", old_size, 0);
    } else if (old_size != 0) {
        wrong("old_size given for a new block", old_size, 0);
    }
    if (new_size == 0) {
        if (ptr) {
            a->live--;
            free((size_t *)ptr - 2);
        }
        return NULL;
    }
    if (++a->calls == a->fail_at) {
        a->failed = 1;
        return NULL;
    }
    size_t *h = realloc(ptr ? (size_t *)ptr - 2 : NULL, new_size + 2 * sizeof(size_t));
    if (!h) return NULL;
    if (!ptr) a->live++;
    h[0] = new_size;
    h[1] = MAGIC;
    return h + 2;
}
