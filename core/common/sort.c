/* An in-place sort for the hot paths (heapsort: O(n log n), no memory).
 *
 * glibc's qsort allocates a copy of arrays over a kilobyte or so (a merge
 * sort), a heap allocation the au_allocator hook cannot see; a warm sample
 * must make none, so the paths a sample takes sort with this instead. */
#include <stdint.h>
#include <string.h>

#include "au_internal.h"

/* Swap two elements of size n, in chunks (elements are small records).
 * The sizes sorted most (8-byte addresses, 16-byte pairs) are copied as
 * words: a memcpy of a size known here is inlined, one of size n is a call
 * (which made a sort of 36,000 pairs cost 50 million instructions). */
static void swap(unsigned char *a, unsigned char *b, size_t n) {
    if (n == 8 || n == 16) {
        uint64_t x[2], y[2];
        memcpy(x, a, 8);
        memcpy(y, b, 8);
        memcpy(a, y, 8);
        memcpy(b, x, 8);
        if (n == 16) {
            memcpy(x + 1, a + 8, 8);
            memcpy(y + 1, b + 8, 8);
            memcpy(a + 8, y + 1, 8);
            memcpy(b + 8, x + 1, 8);
        }
        return;
    }
    unsigned char t[64];
    while (n) {
        size_t k = n < sizeof t ? n : sizeof t;
        memcpy(t, a, k);
        memcpy(a, b, k);
        memcpy(b, t, k);
        a += k;
        b += k;
        n -= k;
    }
}

static void sift(unsigned char *base, size_t root, size_t n, size_t size,
                 int (*cmp)(const void *, const void *)) {
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && cmp(base + child * size, base + (child + 1) * size) < 0) child++;
        if (cmp(base + root * size, base + child * size) >= 0) return;
        swap(base + root * size, base + child * size, size);
        root = child;
    }
}

void au_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
    unsigned char *b = base;
    if (n < 2) return;
    /* Input that is in order already (a prefetch of pages listed in
     * order) costs one pass. */
    size_t i = 1;
    while (i < n && cmp(b + (i - 1) * size, b + i * size) <= 0) i++;
    if (i == n) return;
    for (i = n / 2; i-- > 0;) sift(b, i, n, size, cmp);
    for (size_t end = n - 1; end > 0; end--) {
        swap(b, b + end * size, size);
        sift(b, 0, end, size, cmp);
    }
}
