/* au_sort (core/common/sort.c), the allocation-free sort of the hot
 * paths: the same order as qsort's on random records of several sizes
 * (4, 8 and 16 bytes, which it swaps as words, and 24), including ties,
 * sorted and reversed input, and n = 0, 1, 2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "au_internal.h"

typedef struct rec24 {
    uint64_t key, a, b;
} rec24;

static int by_key(const void *x, const void *y) {
    const rec24 *p = x, *q = y;
    return p->key < q->key ? -1 : p->key > q->key;
}

typedef struct rec16 {
    uint64_t key, tag;
} rec16;

static int by_key16(const void *x, const void *y) {
    const rec16 *p = x, *q = y;
    return p->key < q->key ? -1 : p->key > q->key;
}

static int by_u64(const void *x, const void *y) {
    uint64_t p, q;
    memcpy(&p, x, 8);
    memcpy(&q, y, 8);
    return p < q ? -1 : p > q;
}

static int by_u32(const void *x, const void *y) {
    uint32_t p, q;
    memcpy(&p, x, 4);
    memcpy(&q, y, 4);
    return p < q ? -1 : p > q;
}

static uint64_t next(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void test_matches_qsort(void **state) {
    (void)state;
    uint64_t seed = 42;
    static const size_t sizes[] = {0, 1, 2, 3, 7, 64, 1000, 4097};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        for (int shape = 0; shape < 4; shape++) {
            rec24 *a = calloc(n + 1, sizeof *a), *b = calloc(n + 1, sizeof *b);
            uint32_t *c = calloc(n + 1, sizeof *c), *d = calloc(n + 1, sizeof *d);
            rec16 *e = calloc(n + 1, sizeof *e), *f = calloc(n + 1, sizeof *f);
            uint64_t *g = calloc(n + 1, sizeof *g), *h = calloc(n + 1, sizeof *h);
            assert_non_null(a);
            assert_non_null(b);
            assert_non_null(c);
            assert_non_null(d);
            assert_non_null(e);
            assert_non_null(f);
            assert_non_null(g);
            assert_non_null(h);
            for (size_t i = 0; i < n; i++) {
                uint64_t v = shape == 0 ? next(&seed) : shape == 1 ? next(&seed) % 5
                             : shape == 2 ? i : n - i;
                a[i] = (rec24){v, i, ~i};
                c[i] = (uint32_t)v;
                e[i] = (rec16){v, ~v};
                g[i] = v << 20 | i; /* distinct values with the same order */
            }
            memcpy(b, a, n * sizeof *a);
            memcpy(d, c, n * sizeof *c);
            memcpy(f, e, n * sizeof *e);
            memcpy(h, g, n * sizeof *g);
            au_sort(a, n, sizeof *a, by_key);
            qsort(b, n, sizeof *b, by_key);
            au_sort(c, n, sizeof *c, by_u32);
            qsort(d, n, sizeof *d, by_u32);
            au_sort(e, n, sizeof *e, by_key16);
            qsort(f, n, sizeof *f, by_key16);
            au_sort(g, n, sizeof *g, by_u64);
            qsort(h, n, sizeof *h, by_u64);
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(a[i].key, b[i].key); /* ties may differ in order */
                assert_int_equal(a[i].b, ~a[i].a);    /* records moved whole */
                assert_int_equal(c[i], d[i]);
                assert_int_equal(e[i].key, f[i].key);
                assert_int_equal(e[i].tag, ~e[i].key); /* both words moved */
                assert_int_equal(g[i], h[i]);
            }
            free(a);
            free(b);
            free(c);
            free(d);
            free(e);
            free(f);
            free(g);
            free(h);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_qsort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
