/*
 * The page view (core/memory/view.c) over a scripted memory source: which
 * pages it fetches, in how many batches, what it does with failures, the
 * page limit, prefetching the previous sample's pages, and that a warm
 * view allocates nothing.  Deterministic counters only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "asyncunwind.h"
#include "au_view.h"

#define PG AU_VIEW_PAGE
#define BASE 0x40000000ull
#define NPG 64u

/* NPG pages at BASE; page k holds bytes pattern(addr); pages in `holes`
 * fail.  Counts batches and page reads. */
typedef struct src {
    au_memsrc base;
    uint64_t holes; /* bit k: page k is unmapped */
    uint32_t batches, reads;
    uint8_t salt;   /* changes the bytes, as a running target would */
    uint64_t last[NPG]; /* the addresses of the last batch, in its order */
    uint32_t nlast;
} src;

static uint8_t pattern(uint64_t addr, uint8_t salt) { return (uint8_t)(addr * 31u + addr / PG + salt); }

static int src_read(au_memsrc *self, au_read *reads, uint32_t n) {
    src *s = (src *)self;
    s->batches++;
    s->nlast = 0;
    int first = AU_OK;
    for (uint32_t i = 0; i < n; i++) {
        au_read *r = &reads[i];
        s->reads++;
        if (s->nlast < NPG) s->last[s->nlast++] = r->addr;
        uint64_t k = (r->addr - BASE) / PG;
        int ok = r->addr >= BASE && r->addr + r->len <= BASE + (uint64_t)NPG * PG &&
                 !((s->holes >> k) & 1) && !((s->holes >> ((r->addr + r->len - 1 - BASE) / PG)) & 1);
        r->status = ok ? AU_OK : AU_ERR_READ;
        if (ok)
            for (uint32_t b = 0; b < r->len; b++) ((uint8_t *)r->buf)[b] = pattern(r->addr + b, s->salt);
        else if (first == AU_OK)
            first = AU_ERR_READ;
    }
    return first;
}

static void src_init(src *s) {
    memset(s, 0, sizeof *s);
    s->base.read = src_read;
}

static void check(const uint8_t *buf, uint64_t addr, uint32_t len, uint8_t salt) {
    for (uint32_t i = 0; i < len; i++) assert_int_equal(buf[i], pattern(addr + i, salt));
}

/* A level of objects asked for at once costs one batch; reads then hit. */
static void test_want_batches_then_reads_hit(void **state) {
    (void)state;
    src s;
    src_init(&s);
    au_view *v;
    assert_int_equal(au_view_new(NULL, &s.base, 0, &v), AU_OK);
    assert_int_equal(au_view_begin(v, 1), AU_OK);
    au_range rs[5] = {{BASE + 10, 100},       {BASE + 3 * PG + 5, 200},
                      {BASE + 3 * PG + 900, 8}, {BASE + 7 * PG - 4, 8}, /* spans 6 and 7 */
                      {BASE + 10, 100}};
    assert_int_equal(au_view_want(v, rs, 5), AU_OK);
    assert_int_equal(s.batches, 1);
    assert_int_equal(s.reads, 4); /* pages 0, 3, 6, 7 */
    uint8_t buf[256];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(au_view_read(v, rs[i].addr, buf, rs[i].len), AU_OK);
        check(buf, rs[i].addr, rs[i].len, 0);
    }
    assert_int_equal(s.batches, 1);
    const uint8_t *p = au_view_peek(v, BASE + 3 * PG + 5, 16);
    assert_non_null(p);
    check(p, BASE + 3 * PG + 5, 16, 0);
    assert_null(au_view_peek(v, BASE + 7 * PG - 4, 8)); /* two pages */
    assert_null(au_view_peek(v, BASE + 9 * PG, 8));     /* not fetched: no read */
    assert_int_equal(s.batches, 1);
    au_view_stats st;
    au_view_get_stats(v, &st);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.fetched, 4);
    assert_int_equal(st.used, 4);
    assert_int_equal(st.failed, 0);
    au_view_free(v);
}

/* A read of a page nobody asked for fetches it on the spot (one batch);
 * a failed page stays failed for the sample, without another read. */
static void test_miss_and_sticky_failure(void **state) {
    (void)state;
    src s;
    src_init(&s);
    s.holes = 1ull << 5;
    au_view *v;
    assert_int_equal(au_view_new(NULL, &s.base, 0, &v), AU_OK);
    assert_int_equal(au_view_begin(v, 0), AU_OK);
    uint8_t buf[64];
    assert_int_equal(au_view_read(v, BASE + 2 * PG + 7, buf, 64), AU_OK);
    check(buf, BASE + 2 * PG + 7, 64, 0);
    assert_int_equal(s.batches, 1);
    assert_int_equal(au_view_read(v, BASE + 5 * PG + 7, buf, 8), AU_ERR_READ);
    assert_int_equal(s.batches, 2);
    assert_int_equal(au_view_read(v, BASE + 5 * PG + 100, buf, 8), AU_ERR_READ);
    assert_int_equal(au_view_read(v, BASE + 5 * PG - 4, buf, 8), AU_ERR_READ); /* spans 4, 5 */
    assert_int_equal(s.batches, 3); /* page 4 was new; 5 was not read again */
    assert_int_equal(s.reads, 3);
    /* Ranges that cannot be valid never reach the source. */
    assert_int_equal(au_view_read(v, 8, buf, 8), AU_ERR_READ);
    assert_int_equal(au_view_read(v, UINT64_MAX - 4, buf, 8), AU_ERR_READ);
    assert_int_equal(s.batches, 3);
    au_view_free(v);
}

/* max_pages bounds a sample: pages beyond it are refused, not fetched. */
static void test_page_limit(void **state) {
    (void)state;
    src s;
    src_init(&s);
    au_view *v;
    assert_int_equal(au_view_new(NULL, &s.base, 3, &v), AU_OK);
    assert_int_equal(au_view_begin(v, 0), AU_OK);
    au_range r = {BASE, 5 * PG};
    assert_int_equal(au_view_want(v, &r, 1), AU_ERR_LIMIT);
    assert_int_equal(s.reads, 3);
    uint8_t buf[8];
    assert_int_equal(au_view_read(v, BASE + 2 * PG, buf, 8), AU_OK);
    assert_int_equal(au_view_read(v, BASE + 4 * PG, buf, 8), AU_ERR_LIMIT);
    au_view_stats st;
    au_view_get_stats(v, &st);
    assert_true(st.limited >= 2);
    /* The next sample starts afresh. */
    assert_int_equal(au_view_begin(v, 0), AU_OK);
    assert_int_equal(au_view_read(v, BASE + 4 * PG, buf, 8), AU_OK);
    au_view_free(v);
}

/* Prefetch: the pages the previous sample used (and only those) come back
 * in one batch, with this sample's bytes; then the same reads cost
 * nothing more. */
static void test_prefetch_previous(void **state) {
    (void)state;
    src s;
    src_init(&s);
    au_view *v;
    assert_int_equal(au_view_new(NULL, &s.base, 0, &v), AU_OK);
    assert_int_equal(au_view_begin(v, 1), AU_OK);
    uint8_t buf[32];
    au_range want[3] = {{BASE + 1 * PG, 8}, {BASE + 9 * PG, 8}, {BASE + 20 * PG, 8}};
    assert_int_equal(au_view_want(v, want, 3), AU_OK);
    /* Use pages 1 and 9 only; 20 was fetched but not used. */
    assert_int_equal(au_view_read(v, BASE + 1 * PG, buf, 8), AU_OK);
    assert_int_equal(au_view_read(v, BASE + 9 * PG, buf, 8), AU_OK);
    s.batches = s.reads = 0;
    s.salt = 9;
    assert_int_equal(au_view_begin(v, 1), AU_OK);
    assert_int_equal(s.batches, 1);
    assert_int_equal(s.reads, 2);
    assert_int_equal(au_view_read(v, BASE + 9 * PG + 3, buf, 20), AU_OK);
    check(buf, BASE + 9 * PG + 3, 20, 9);
    assert_int_equal(au_view_read(v, BASE + 1 * PG, buf, 8), AU_OK);
    assert_int_equal(s.batches, 1);
    au_view_stats st;
    au_view_get_stats(v, &st);
    assert_int_equal(st.prefetched, 2);
    assert_int_equal(st.used, 2);
    /* Without prefetch, nothing is read up front. */
    s.batches = 0;
    assert_int_equal(au_view_begin(v, 0), AU_OK);
    assert_int_equal(s.batches, 0);
    au_view_free(v);
}

/* A prefetch reaches the source in address order, whatever order the
 * pages were first fetched in, and when a sample adds pages to those it
 * prefetched (the sorted run and the added ones are merged). */
static void test_prefetch_in_address_order(void **state) {
    (void)state;
    src s;
    src_init(&s);
    au_view *v;
    assert_int_equal(au_view_new(NULL, &s.base, 0, &v), AU_OK);
    uint8_t buf[8];
    static const uint32_t first[] = {30, 2, 17, 9, 40, 5};
    static const uint32_t added[] = {33, 1, 12};
    assert_int_equal(au_view_begin(v, 1), AU_OK);
    for (uint32_t i = 0; i < 6; i++) assert_int_equal(au_view_read(v, BASE + first[i] * PG, buf, 8), AU_OK);
    /* Sample 2 prefetches those six, then reads three pages more. */
    assert_int_equal(au_view_begin(v, 1), AU_OK);
    assert_int_equal(s.nlast, 6);
    for (uint32_t i = 1; i < s.nlast; i++) assert_true(s.last[i - 1] < s.last[i]);
    for (uint32_t i = 0; i < 6; i++) assert_int_equal(au_view_read(v, BASE + first[i] * PG, buf, 8), AU_OK);
    for (uint32_t i = 0; i < 3; i++) assert_int_equal(au_view_read(v, BASE + added[i] * PG, buf, 8), AU_OK);
    /* Sample 3 prefetches all nine, in order. */
    assert_int_equal(au_view_begin(v, 1), AU_OK);
    static const uint32_t want[] = {1, 2, 5, 9, 12, 17, 30, 33, 40};
    assert_int_equal(s.nlast, 9);
    for (uint32_t i = 0; i < 9; i++) assert_int_equal(s.last[i], BASE + want[i] * PG);
    au_view_stats st;
    au_view_get_stats(v, &st);
    assert_int_equal(st.prefetched, 9);
    au_view_free(v);
}

/* A prefetch hint never reads the target, fetches, or counts a page as
 * used: a hint on a page not fetched, or on an invalid range, does
 * nothing. */
static void test_prefetch_hint_reads_nothing(void **state) {
    (void)state;
    src s;
    src_init(&s);
    au_view *v;
    assert_int_equal(au_view_new(NULL, &s.base, 0, &v), AU_OK);
    assert_int_equal(au_view_begin(v, 1), AU_OK);
    au_range want = {BASE + 3 * PG, 8};
    assert_int_equal(au_view_want(v, &want, 1), AU_OK);
    s.batches = s.reads = 0;
    au_view_prefetch(v, BASE + 3 * PG + 4000, 4096); /* fetched; runs off its page */
    au_view_prefetch(v, BASE + 4 * PG, 64);          /* not fetched */
    au_view_prefetch(v, 0, 64);
    au_view_prefetch(v, UINT64_MAX - 10, 64);
    au_view_prefetch(v, BASE, 0);
    au_view_prefetch(NULL, BASE, 8);
    assert_int_equal(s.batches, 0);
    assert_int_equal(s.reads, 0);
    au_view_stats st;
    au_view_get_stats(v, &st);
    assert_int_equal(st.used, 0);
    assert_int_equal(st.fetched, 1);
    /* The next sample prefetches nothing: no page was used. */
    assert_int_equal(au_view_begin(v, 1), AU_OK);
    assert_int_equal(s.batches, 0);
    au_view_free(v);
}

/* Counting allocator: once a view has held a sample of some size, samples
 * no larger allocate nothing. */
typedef struct counter {
    uint64_t n;
} counter;

static void *count_realloc(void *ud, void *p, size_t old, size_t size) {
    (void)old;
    if (size == 0) {
        free(p);
        return NULL;
    }
    ((counter *)ud)->n++;
    return realloc(p, size);
}

static void test_warm_view_allocates_nothing(void **state) {
    (void)state;
    src s;
    src_init(&s);
    counter c = {0};
    au_allocator a = {count_realloc, &c};
    au_view *v;
    assert_int_equal(au_view_new(&a, &s.base, 0, &v), AU_OK);
    au_range rs[40];
    for (int i = 0; i < 40; i++) rs[i] = (au_range){BASE + (uint64_t)i * PG + 100, 64};
    uint8_t buf[64];
    for (int round = 0; round < 3; round++) {
        if (round == 2) c.n = 0;
        assert_int_equal(au_view_begin(v, 1), AU_OK);
        assert_int_equal(au_view_want(v, rs, 40), AU_OK);
        for (int i = 0; i < 40; i++) assert_int_equal(au_view_read(v, rs[i].addr, buf, 64), AU_OK);
    }
    assert_int_equal(c.n, 0);
    au_view_stats st;
    au_view_get_stats(v, &st);
    assert_int_equal(st.allocations, 0);
    assert_int_equal(st.batches, 1); /* the prefetch; the want found all */
    au_view_free(v);
}

/* The sample after a single warm-up allocates nothing either, although its
 * prefetch asks in one batch for pages the warm-up fetched a few at a
 * time (a task graph read level by level). */
static void test_second_sample_allocates_nothing(void **state) {
    (void)state;
    src s;
    src_init(&s);
    counter c = {0};
    au_allocator a = {count_realloc, &c};
    au_view *v;
    assert_int_equal(au_view_new(&a, &s.base, 0, &v), AU_OK);
    au_range rs[40];
    for (int i = 0; i < 40; i++) rs[i] = (au_range){BASE + (uint64_t)i * PG + 100, 64};
    uint8_t buf[64];
    for (int round = 0; round < 2; round++) {
        if (round == 1) c.n = 0;
        assert_int_equal(au_view_begin(v, 1), AU_OK);
        for (int level = 0; level < 8; level++) {
            assert_int_equal(au_view_want(v, rs + 5 * level, 5), AU_OK);
            for (int i = 5 * level; i < 5 * level + 5; i++)
                assert_int_equal(au_view_read(v, rs[i].addr, buf, 64), AU_OK);
        }
    }
    assert_int_equal(c.n, 0);
    au_view_stats st;
    au_view_get_stats(v, &st);
    assert_int_equal(st.allocations, 0);
    assert_int_equal(st.prefetched, 40);
    assert_int_equal(st.batches, 1);
    au_view_free(v);
}

/* Pages that only transient reads used (a one-off search) are not
 * prefetched by the next sample; a page also read normally is. */
static void test_transient_pages_not_prefetched(void **state) {
    (void)state;
    src s;
    src_init(&s);
    au_view *v;
    assert_int_equal(au_view_new(NULL, &s.base, 0, &v), AU_OK);
    uint8_t buf[8];
    assert_int_equal(au_view_begin(v, 1), AU_OK);
    assert_int_equal(au_view_read(v, BASE + 0 * PG, buf, 8), AU_OK); /* normal */
    assert_int_equal(au_view_set_transient(v, 1), 0);
    assert_int_equal(au_view_read(v, BASE + 1 * PG, buf, 8), AU_OK); /* transient only */
    assert_int_equal(au_view_read(v, BASE + 2 * PG, buf, 8), AU_OK); /* both */
    assert_null(au_view_peek(v, BASE + 3 * PG, 8)); /* never fetched: peek does not fetch */
    assert_int_equal(au_view_set_transient(v, 0), 1);
    assert_int_equal(au_view_read(v, BASE + 2 * PG + 16, buf, 8), AU_OK);
    au_view_stats st;
    au_view_get_stats(v, &st);
    assert_int_equal(st.used, 3); /* transient reads count as used */
    assert_int_equal(au_view_begin(v, 1), AU_OK);
    au_view_get_stats(v, &st);
    assert_int_equal(st.prefetched, 2); /* pages 0 and 2 */
    assert_non_null(au_view_peek(v, BASE + 0 * PG, 8));
    assert_null(au_view_peek(v, BASE + 1 * PG, 8));
    assert_non_null(au_view_peek(v, BASE + 2 * PG, 8));
    au_view_free(v);
}

/* Exact mode: every read is its own read of exactly its bytes, nothing is
 * kept, want and peek do nothing. */
static void test_exact_mode(void **state) {
    (void)state;
    src s;
    src_init(&s);
    s.holes = 1ull << 5;
    au_view *v;
    assert_int_equal(au_view_new(NULL, &s.base, 0, &v), AU_OK);
    au_view_set_exact(v, 1);
    assert_int_equal(au_view_begin(v, 1), AU_OK);
    au_range r = {BASE + 100, 50};
    assert_int_equal(au_view_want(v, &r, 1), AU_OK);
    assert_int_equal(s.batches, 0);
    uint8_t buf[64];
    assert_int_equal(au_view_read(v, BASE + 100, buf, 50), AU_OK);
    check(buf, BASE + 100, 50, 0);
    assert_int_equal(au_view_read(v, BASE + 110, buf, 8), AU_OK);
    assert_int_equal(s.batches, 2); /* not served from the first read */
    assert_int_equal(s.reads, 2);
    assert_null(au_view_peek(v, BASE + 100, 8));
    assert_int_equal(au_view_read(v, BASE + 5 * PG, buf, 8), AU_ERR_READ);
    au_view_stats st;
    au_view_get_stats(v, &st);
    assert_int_equal(st.fetched, 0);
    au_view_free(v);
}

static void test_arguments(void **state) {
    (void)state;
    src s;
    src_init(&s);
    au_view *v = (au_view *)1;
    assert_int_equal(au_view_new(NULL, NULL, 0, &v), AU_ERR_ARG);
    assert_int_equal(au_view_new(NULL, &s.base, 0, NULL), AU_ERR_ARG);
    assert_int_equal(au_view_new(NULL, &s.base, 0, &v), AU_OK);
    uint8_t b;
    assert_int_equal(au_view_read(v, BASE, NULL, 1), AU_ERR_ARG);
    assert_int_equal(au_view_read(v, BASE, &b, 0), AU_OK);
    assert_int_equal(au_view_want(v, NULL, 1), AU_ERR_ARG);
    assert_int_equal(au_view_want(v, NULL, 0), AU_OK);
    assert_int_equal(au_view_begin(NULL, 0), AU_ERR_ARG);
    au_view_free(v);
    au_view_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_want_batches_then_reads_hit),
        cmocka_unit_test(test_miss_and_sticky_failure),
        cmocka_unit_test(test_page_limit),
        cmocka_unit_test(test_prefetch_previous),
        cmocka_unit_test(test_prefetch_in_address_order),
        cmocka_unit_test(test_prefetch_hint_reads_nothing),
        cmocka_unit_test(test_warm_view_allocates_nothing),
        cmocka_unit_test(test_second_sample_allocates_nothing),
        cmocka_unit_test(test_transient_pages_not_prefetched),
        cmocka_unit_test(test_exact_mode),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
