/*
 * Tests of core/asyncio/agent_region.c: the agent's region header and
 * records list (format 2, docs/AGENT.md).
 *
 *  - Exact parsing of hand-built headers, every field and every error.
 *  - The records of hand-built item arrays: the list's own first pair,
 *    padding, invalid items, half a pair, the output limit.
 *  - What a reader can meet instead of the agent's current list: a list at
 *    an address torn between two published ones, memory reused by another
 *    list, a list freed and its self reference cleared.
 *  - Hostile items: random arrays behind a random address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "au_agent_region.h"
#include "asyncunwind.h"
#include "au_bytes.h"

/* ------------------------------------------------------------------------ */
/* The header                                                                */
/* ------------------------------------------------------------------------ */

static void put_header(uint8_t *b, uint32_t pid, uint64_t generation, uint64_t list) {
    memset(b, 0, AU_AGENT_HEADER_SIZE);
    memcpy(b, AU_AGENT_MAGIC, 8);
    au_wr32(b + 8, AU_AGENT_VERSION);
    au_wr32(b + 12, AU_AGENT_HEADER_SIZE);
    au_wr32(b + 16, pid);
    au_wr64(b + 24, generation);
    au_wr64(b + 32, list);
}

static void test_header(void **state) {
    (void)state;
    uint8_t b[128];
    memset(b, 0xee, sizeof b);
    put_header(b, 4242, UINT64_C(0x1122334455667788), UINT64_C(0x7f1234567890));
    au_agent_header h;
    assert_int_equal(au_agent_parse_header(b, sizeof b, &h), AU_OK);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.header_size, 64);
    assert_int_equal(h.pid, 4242);
    assert_true(h.generation == UINT64_C(0x1122334455667788));
    assert_true(h.list == UINT64_C(0x7f1234567890));
    /* The header alone is enough. */
    assert_int_equal(au_agent_parse_header(b, 64, &h), AU_OK);
}

static void test_header_errors(void **state) {
    (void)state;
    uint8_t b[64];
    au_agent_header h;
    put_header(b, 1, 1, 0x10000);
    assert_int_equal(au_agent_parse_header(NULL, sizeof b, &h), AU_ERR_ARG);
    assert_int_equal(au_agent_parse_header(b, sizeof b, NULL), AU_ERR_ARG);
    assert_int_equal(au_agent_parse_header(b, 63, &h), AU_ERR_FORMAT);
    assert_int_equal(au_agent_parse_header(b, 0, &h), AU_ERR_FORMAT);

    static const struct {
        const char *magic;
        int want;
    } magics[] = {
        {"AUAGNT01", AU_ERR_UNSUPPORTED}, /* format 1: another agent */
        {"AUAGNT03", AU_ERR_UNSUPPORTED},
        {"AUAGNX02", AU_ERR_FORMAT},      /* not an agent region */
        {"auagnt02", AU_ERR_FORMAT},
        {"\0\0\0\0\0\0\0\0", AU_ERR_FORMAT},
        {"AUAGNT02", AU_OK},
    };
    for (size_t k = 0; k < sizeof magics / sizeof magics[0]; k++) {
        put_header(b, 1, 1, 0x10000);
        memcpy(b, magics[k].magic, 8);
        int rc = au_agent_parse_header(b, sizeof b, &h);
        if (rc != magics[k].want) fail_msg("magic %zu: got %d, want %d", k, rc, magics[k].want);
    }

    static const struct {
        size_t off;
        int width; /* 4 or 8 bytes */
        uint64_t value;
        int want;
    } cases[] = {
        {8, 4, 1, AU_ERR_UNSUPPORTED}, /* version */
        {8, 4, 3, AU_ERR_UNSUPPORTED},
        {8, 4, 0, AU_ERR_UNSUPPORTED},
        {12, 4, 63, AU_ERR_CORRUPT},   /* header size */
        {12, 4, 128, AU_ERR_CORRUPT},
        {32, 8, 0, AU_ERR_CORRUPT},    /* the list's address */
        {32, 8, 8, AU_ERR_CORRUPT},
        {32, 8, 4088, AU_ERR_CORRUPT},
        {32, 8, 0x10004, AU_ERR_CORRUPT},
        {32, 8, 0x10001, AU_ERR_CORRUPT},
        {32, 8, 4096, AU_OK},
        {32, 8, UINT64_C(0xfffffffffffffff8), AU_OK}, /* only a read can say */
        {16, 4, 0, AU_OK},             /* pid, generation: anything */
        {24, 8, 0, AU_OK},
        {20, 4, 7, AU_OK},             /* reserved: ignored */
        {40, 8, 7, AU_OK},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        put_header(b, 1, 1, 0x10000);
        if (cases[k].width == 4) {
            au_wr32(b + cases[k].off, (uint32_t)cases[k].value);
        } else {
            au_wr64(b + cases[k].off, cases[k].value);
        }
        int rc = au_agent_parse_header(b, sizeof b, &h);
        if (rc != cases[k].want) {
            fail_msg("field at %zu = %llx: got %d, want %d", cases[k].off,
                     (unsigned long long)cases[k].value, rc, cases[k].want);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* The records list                                                          */
/* ------------------------------------------------------------------------ */

#define LIST UINT64_C(0x7f0000100000)
#define NONE_OBJ UINT64_C(0x55550000a0c0) /* Py_None */

static void test_pairs(void **state) {
    (void)state;
    const uint64_t items[] = {
        LIST, LIST,                                  /* the list itself */
        0x7f0000001000, 0x7f0000002000,              /* a record */
        NONE_OBJ, NONE_OBJ,                          /* padding */
        NONE_OBJ, NONE_OBJ,
        0x7f0000003000, 0x7f0000002000,              /* same creator */
        0, 0x7f0000002000,                           /* invalid items */
        0x7f0000004000, 0x7f0000004004,
        0x7f0000004000, 0x0000000000000ff8,
        0x7f0000005000, 0x7f0000005000,              /* one object twice */
        0x7f0000006000, 0x7f0000007000,              /* a record */
        0x7f0000008000,                              /* half a pair */
    };
    const size_t n = sizeof items / sizeof items[0];
    au_agent_pair out[8];
    size_t nout = 99;
    au_agent_stats st;
    assert_int_equal(au_agent_pairs(items, n, LIST, out, 8, &nout, &st), AU_OK);
    assert_int_equal(nout, 3);
    assert_true(out[0].task_ref == 0x7f0000001000 && out[0].creator_ref == 0x7f0000002000);
    assert_true(out[1].task_ref == 0x7f0000003000 && out[1].creator_ref == 0x7f0000002000);
    assert_true(out[2].task_ref == 0x7f0000006000 && out[2].creator_ref == 0x7f0000007000);
    assert_int_equal(st.pairs, 9);
    assert_int_equal(st.padding, 3);
    assert_int_equal(st.invalid, 3);
    assert_int_equal(st.odd, 1);

    /* The same without the half pair. */
    assert_int_equal(au_agent_pairs(items, n - 1, LIST, out, 8, &nout, &st), AU_OK);
    assert_int_equal(nout, 3);
    assert_int_equal(st.odd, 0);

    /* A list of the first pair alone (a fresh agent) has no records. */
    assert_int_equal(au_agent_pairs(items, 2, LIST, out, 8, &nout, &st), AU_OK);
    assert_int_equal(nout, 0);
    assert_int_equal(st.pairs, 0);
    assert_int_equal(au_agent_pairs(items, 3, LIST, out, 8, &nout, &st), AU_OK);
    assert_int_equal(nout, 0);
    assert_int_equal(st.odd, 1);

    /* The limit: the first records, and AU_ERR_LIMIT. */
    assert_int_equal(au_agent_pairs(items, n, LIST, out, 2, &nout, &st), AU_ERR_LIMIT);
    assert_int_equal(nout, 2);
    assert_true(out[1].task_ref == 0x7f0000003000);
    /* No room at all (and no array): AU_ERR_LIMIT. */
    assert_int_equal(au_agent_pairs(items, n, LIST, NULL, 0, &nout, NULL), AU_ERR_LIMIT);
    assert_int_equal(nout, 0);

    /* Arguments. */
    assert_int_equal(au_agent_pairs(NULL, n, LIST, out, 8, &nout, &st), AU_ERR_ARG);
    assert_int_equal(au_agent_pairs(items, n, LIST, out, 8, NULL, &st), AU_ERR_ARG);
    assert_int_equal(au_agent_pairs(items, n, LIST, NULL, 8, &nout, &st), AU_ERR_ARG);
}

/* Memory that is not the agent's current list, reached through an address
 * the reader read: never a record. */
static void test_not_the_agents_list(void **state) {
    (void)state;
    au_agent_pair out[8];
    size_t nout;
    au_agent_stats st;
    /* Too short to name itself. */
    const uint64_t one[] = {LIST};
    assert_int_equal(au_agent_pairs(one, 1, LIST, out, 8, &nout, &st), AU_ERR_CORRUPT);
    assert_int_equal(au_agent_pairs(one, 0, LIST, out, 8, &nout, &st), AU_ERR_CORRUPT);
    assert_int_equal(nout, 0);

    /* A list the program made where the agent's was freed: weakrefs to
     * tasks, side by side, but not naming itself. */
    const uint64_t app[] = {0x7f0000001000, 0x7f0000002000, 0x7f0000003000, 0x7f0000004000};
    assert_int_equal(au_agent_pairs(app, 4, LIST, out, 8, &nout, &st), AU_ERR_CORRUPT);
    assert_int_equal(nout, 0);

    /* The agent's list as it frees it: the self reference goes first. */
    const uint64_t freed[] = {NONE_OBJ, NONE_OBJ, 0x7f0000001000, 0x7f0000002000};
    assert_int_equal(au_agent_pairs(freed, 4, LIST, out, 8, &nout, &st), AU_ERR_CORRUPT);
    const uint64_t half[] = {NONE_OBJ, LIST, 0x7f0000001000, 0x7f0000002000};
    assert_int_equal(au_agent_pairs(half, 4, LIST, out, 8, &nout, &st), AU_ERR_CORRUPT);
    const uint64_t half2[] = {LIST, NONE_OBJ, 0x7f0000001000, 0x7f0000002000};
    assert_int_equal(au_agent_pairs(half2, 4, LIST, out, 8, &nout, &st), AU_ERR_CORRUPT);

    /* An item array freed by a reallocation: its first word is the
     * allocator's link now. */
    const uint64_t realloced[] = {0x7f00000ff000, LIST, 0x7f0000001000, 0x7f0000002000};
    assert_int_equal(au_agent_pairs(realloced, 4, LIST, out, 8, &nout, &st), AU_ERR_CORRUPT);

    /* The header's address torn between two lists the agent published (a
     * byte-wise copy racing the 8-byte store): whatever the mixed address
     * holds, it is only accepted if that memory names the mixed address,
     * i.e. never when it holds either list (or anything else). */
    const uint64_t a = UINT64_C(0x7f12a0b4c0d8), b = UINT64_C(0x55e1f2031048);
    const uint64_t list_a[] = {a, a, 0x7f0000001000, 0x7f0000002000};
    const uint64_t list_b[] = {b, b, 0x7f0000003000, 0x7f0000004000};
    unsigned mixes = 0;
    for (unsigned k = 1; k < 8; k++) {
        for (int way = 0; way < 2; way++) {
            uint8_t x[8], y[8], m[8];
            au_wr64(x, way ? a : b);
            au_wr64(y, way ? b : a);
            memcpy(m, x, 8);
            memcpy(m, y, k); /* the first k bytes from the other */
            uint64_t torn = au_rd64(m);
            if (torn == a || torn == b) continue;
            assert_int_equal(au_agent_pairs(list_a, 4, torn, out, 8, &nout, &st), AU_ERR_CORRUPT);
            assert_int_equal(au_agent_pairs(list_b, 4, torn, out, 8, &nout, &st), AU_ERR_CORRUPT);
            mixes++;
        }
    }
    assert_true(mixes >= 10);
    /* Either whole address is fine. */
    assert_int_equal(au_agent_pairs(list_a, 4, a, out, 8, &nout, &st), AU_OK);
    assert_int_equal(nout, 1);
    assert_int_equal(au_agent_pairs(list_b, 4, b, out, 8, &nout, &st), AU_OK);
    assert_int_equal(nout, 1);
}

/* splitmix64: deterministic pseudo-random values. */
static uint64_t next_rand(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

#define HOSTILE_ITEMS 64

static void test_hostile_items(void **state) {
    (void)state;
    uint64_t seed = 1;
    for (int round = 0; round < 5000; round++) {
        uint64_t items[HOSTILE_ITEMS];
        for (size_t i = 0; i < HOSTILE_ITEMS; i++) {
            uint64_t r = next_rand(&seed);
            /* Aligned heap-like addresses, small values and repeats. */
            switch (r & 3) {
            case 0: items[i] = r >> 2; break;
            case 1: items[i] = (r >> 2) & UINT64_C(0x7ffffffffff8); break;
            case 2: items[i] = (r >> 2) % 8192; break;
            default: items[i] = i ? items[i - 1] : 0; break;
            }
        }
        uint64_t list = next_rand(&seed) & UINT64_C(0x7ffffffffff8);
        if (round % 2) items[0] = items[1] = list;
        size_t n = (size_t)(next_rand(&seed) % (HOSTILE_ITEMS + 1));
        size_t cap = (size_t)(next_rand(&seed) % 40);
        au_agent_pair out[40];
        size_t nout = 0;
        au_agent_stats st;
        int rc = au_agent_pairs(items, n, list, out, cap, &nout, &st);
        if (n < 2 || items[0] != list || items[1] != list) {
            assert_int_equal(rc, AU_ERR_CORRUPT);
            assert_int_equal(nout, 0);
            continue;
        }
        assert_true(rc == AU_OK || rc == AU_ERR_LIMIT);
        assert_int_equal(st.pairs, (n - 2) / 2);
        assert_int_equal(st.odd, n & 1);
        size_t records = st.pairs - st.padding - st.invalid;
        assert_true(nout == (records < cap ? records : cap));
        assert_int_equal(rc, records > cap ? AU_ERR_LIMIT : AU_OK);
        for (size_t i = 0; i < nout; i++) {
            assert_true(out[i].task_ref != out[i].creator_ref);
            assert_true(out[i].task_ref >= 4096 && !(out[i].task_ref & 7));
            assert_true(out[i].creator_ref >= 4096 && !(out[i].creator_ref & 7));
        }
    }
}

static void test_region_path(void **state) {
    (void)state;
    static const struct {
        const char *path;
        int want;
    } cases[] = {
        {"/memfd:asyncunwind-agent (deleted)", 1},
        {"/memfd:asyncunwind-agent", 1},
        {"/memfd:asyncunwind-agent2 (deleted)", 0},
        {"/memfd:asyncunwind-agen (deleted)", 0},
        {"/memfd:asyncunwind-agent (deleted) ", 0},
        {"/memfd:asyncunwind-agent (del", 0},
        {"/dev/shm/asyncunwind-agent", 0},
        {"memfd:asyncunwind-agent", 0},
        {"", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int got = au_agent_is_region_path(cases[k].path, strlen(cases[k].path));
        if (got != cases[k].want) {
            fail_msg("\"%s\": got %d", cases[k].path, got);
        }
    }
    assert_int_equal(au_agent_is_region_path(NULL, 0), 0);
    /* Only path_len bytes count: a maps line goes on after the path. */
    const char *line = "/memfd:asyncunwind-agent (deleted)\n7f00-7f01 r--p";
    assert_int_equal(au_agent_is_region_path(line, 34), 1);
    assert_int_equal(au_agent_is_region_path(line, 24), 1);
    assert_int_equal(au_agent_is_region_path(line, 35), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_pairs),
        cmocka_unit_test(test_not_the_agents_list),
        cmocka_unit_test(test_hostile_items),
        cmocka_unit_test(test_region_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
