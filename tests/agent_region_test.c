/*
 * Tests of core/asyncio/agent_region.c: the agent's region format.
 *
 *  - The check against CPython itself: tests/data/agent_check/<version>.txt
 *    (written by tools/gen_agent_check_vectors.py under every interpreter
 *    the agent supports) holds tuples and the hash CPython gave them.
 *  - Exact parsing of hand-built regions: header fields, records with their
 *    slots, empty, torn and invalid slots, the limits, and torn reads made
 *    by mixing two records byte by byte.
 *  - Hostile bytes: random regions behind a valid header, and headers that
 *    claim more than they hold.
 */
#define _POSIX_C_SOURCE 200809L /* getline, opendir under -std=c11 */

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_region.h"
#include "asyncunwind.h"
#include "bytes.h"

#define VECTOR_DIR "tests/data/agent_check"

/* ------------------------------------------------------------------------ */
/* The check against CPython                                                 */
/* ------------------------------------------------------------------------ */

static void test_check_vectors(void **state) {
    (void)state;
    DIR *d = opendir(VECTOR_DIR);
    assert_non_null(d);
    unsigned files = 0, vectors = 0;
    unsigned minors = 0; /* bit m: a file of 3.m was replayed */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".txt") != 0) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", VECTOR_DIR, e->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char *line = NULL;
        size_t cap = 0;
        unsigned lineno = 0, here = 0;
        while (getline(&line, &cap, f) > 0) {
            lineno++;
            if (lineno == 1) {
                int major, minor, patch;
                assert_int_equal(
                    sscanf(line, "python %d.%d.%d", &major, &minor, &patch),
                    3);
                assert_int_equal(major, 3);
                assert_true(minor >= 9 && minor <= 15);
                minors |= 1u << minor;
                continue;
            }
            unsigned long long t, tr, c, cr, check;
            if (sscanf(line, "%llx %llx %llx %llx %llx", &t, &tr, &c, &cr,
                       &check) != 5) {
                fail_msg("%s:%u: malformed line", path, lineno);
            }
            uint64_t got = au_agent_check(t, tr, c, cr);
            if (got != check) {
                fail_msg("%s:%u: au_agent_check(%llx, %llx, %llx, %llx) = "
                         "%llx, CPython says %llx",
                         path, lineno, t, tr, c, cr, (unsigned long long)got,
                         check);
            }
            here++;
        }
        free(line);
        fclose(f);
        assert_true(here >= 256);
        vectors += here;
        files++;
    }
    closedir(d);
    /* Every minor version the agent supports has its vectors. */
    for (int m = 9; m <= 15; m++) {
        if (!(minors & (1u << m))) fail_msg("no vectors from CPython 3.%d", m);
    }
    print_message("%u vectors in %u files\n", vectors, files);
}

/* ------------------------------------------------------------------------ */
/* Hand-built regions                                                        */
/* ------------------------------------------------------------------------ */

#define SLOTS 16
#define REGION_BYTES (AU_AGENT_HEADER_SIZE + AU_AGENT_RECORD_SIZE * SLOTS)

static void put_header(uint8_t *b, uint32_t capacity, uint32_t used,
                       uint32_t pid, uint64_t generation) {
    memset(b, 0, AU_AGENT_HEADER_SIZE);
    memcpy(b, AU_AGENT_MAGIC, 8);
    au_wr32(b + 8, AU_AGENT_VERSION);
    au_wr32(b + 12, AU_AGENT_HEADER_SIZE);
    au_wr32(b + 16, AU_AGENT_RECORD_SIZE);
    au_wr32(b + 20, capacity);
    au_wr32(b + 24, used);
    au_wr32(b + 28, pid);
    au_wr64(b + 32, generation);
}

static uint8_t *slot_at(uint8_t *b, uint32_t i) {
    return b + AU_AGENT_HEADER_SIZE + (size_t)AU_AGENT_RECORD_SIZE * i;
}

/* A record whose check is the one the agent writes. */
static void put_record(uint8_t *b, uint32_t i, uint64_t task, uint64_t tref,
                       uint64_t creator, uint64_t cref) {
    uint8_t *r = slot_at(b, i);
    au_wr64(r, task);
    au_wr64(r + 8, tref);
    au_wr64(r + 16, creator);
    au_wr64(r + 24, cref);
    au_wr64(r + 32, au_agent_check(task, tref, creator, cref));
}

static void test_header(void **state) {
    (void)state;
    uint8_t b[REGION_BYTES] = {0};
    put_header(b, SLOTS, 3, 4242, UINT64_C(0x1122334455667788));
    au_agent_header h;
    assert_int_equal(au_agent_parse_header(b, sizeof b, &h), AU_OK);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.header_size, 64);
    assert_int_equal(h.record_size, 40);
    assert_int_equal(h.capacity, SLOTS);
    assert_int_equal(h.used, 3);
    assert_int_equal(h.pid, 4242);
    assert_true(h.generation == UINT64_C(0x1122334455667788));
    assert_int_equal(au_agent_region_span(&h), 64 + 40 * 3);
    /* The header alone is enough. */
    assert_int_equal(au_agent_parse_header(b, 64, &h), AU_OK);
}

static void test_header_errors(void **state) {
    (void)state;
    uint8_t b[REGION_BYTES];
    au_agent_header h;
    put_header(b, SLOTS, 3, 1, 0);
    assert_int_equal(au_agent_parse_header(NULL, sizeof b, &h), AU_ERR_ARG);
    assert_int_equal(au_agent_parse_header(b, sizeof b, NULL), AU_ERR_ARG);
    assert_int_equal(au_agent_parse_header(b, 63, &h), AU_ERR_FORMAT);
    assert_int_equal(au_agent_parse_header(b, 0, &h), AU_ERR_FORMAT);

    b[7] = '2'; /* AUAGNT02: not ours */
    assert_int_equal(au_agent_parse_header(b, sizeof b, &h), AU_ERR_FORMAT);

    static const struct {
        size_t off;
        uint32_t value;
        int want;
    } cases[] = {
        {8, 2, AU_ERR_UNSUPPORTED},  /* version */
        {8, 0, AU_ERR_UNSUPPORTED},
        {12, 63, AU_ERR_CORRUPT},    /* header size */
        {12, 128, AU_ERR_CORRUPT},
        {16, 32, AU_ERR_CORRUPT},    /* record size */
        {16, 48, AU_ERR_CORRUPT},
        {20, 0, AU_ERR_CORRUPT},     /* capacity */
        {20, AU_AGENT_MAX_CAPACITY + 1, AU_ERR_CORRUPT},
        {20, UINT32_MAX, AU_ERR_CORRUPT},
        {24, SLOTS + 1, AU_ERR_CORRUPT}, /* used > capacity */
        {24, UINT32_MAX, AU_ERR_CORRUPT},
        {20, AU_AGENT_MAX_CAPACITY, AU_OK},
        {24, SLOTS, AU_OK},
        {24, 0, AU_OK},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        put_header(b, SLOTS, 3, 1, 0);
        au_wr32(b + cases[k].off, cases[k].value);
        int rc = au_agent_parse_header(b, sizeof b, &h);
        if (rc != cases[k].want) {
            fail_msg("field at %zu = %u: got %d, want %d", cases[k].off,
                     cases[k].value, rc, cases[k].want);
        }
    }
}

static void test_parse_records(void **state) {
    (void)state;
    uint8_t b[REGION_BYTES] = {0};
    put_header(b, SLOTS, 8, 7, 9);
    put_record(b, 0, 0x7f0000001000, 0x7f0000002000, 0x7f0000003000,
               0x7f0000004000);
    /* slot 1: empty (all zero) */
    put_record(b, 2, 0x7f0000005000, 0x7f0000006000, 0x7f0000003000,
               0x7f0000004000);
    put_record(b, 3, 0x7f0000007000, 0x7f0000008000, 0x7f0000003000,
               0x7f0000004000);
    slot_at(b, 3)[32] ^= 1; /* torn: check mismatch */
    put_record(b, 4, 0x7f0000009000, 0x7f000000a000, 0, 0x7f0000004000);
    put_record(b, 5, 0x7f000000b000, 0x7f000000c000, 0x7f000000b000,
               0x7f000000c000); /* its own creator */
    /* slot 6: task 0 with other fields set: empty whatever follows */
    put_record(b, 6, 0, 0x7f0000001000, 0x7f0000003000, 0x7f0000004000);
    put_record(b, 7, UINT64_MAX, UINT64_C(1) << 61, (UINT64_C(1) << 61) - 1,
               1);
    /* slot 8: beyond used; never looked at */
    put_record(b, 8, 0x7f000000d000, 0x7f000000e000, 0x7f0000003000,
               0x7f0000004000);

    au_agent_header h;
    au_agent_record out[SLOTS];
    au_agent_stats st;
    size_t n = 99;
    assert_int_equal(au_agent_parse(b, sizeof b, &h, out, SLOTS, &n, &st),
                     AU_OK);
    assert_int_equal(h.used, 8);
    assert_int_equal(h.pid, 7);
    assert_int_equal(n, 3);
    const au_agent_record want[3] = {
        {0x7f0000001000, 0x7f0000002000, 0x7f0000003000, 0x7f0000004000, 0},
        {0x7f0000005000, 0x7f0000006000, 0x7f0000003000, 0x7f0000004000, 2},
        {UINT64_MAX, UINT64_C(1) << 61, (UINT64_C(1) << 61) - 1, 1, 7},
    };
    for (size_t k = 0; k < 3; k++) {
        assert_true(out[k].task == want[k].task);
        assert_true(out[k].task_ref == want[k].task_ref);
        assert_true(out[k].creator == want[k].creator);
        assert_true(out[k].creator_ref == want[k].creator_ref);
        assert_int_equal(out[k].slot, want[k].slot);
    }
    assert_int_equal(st.slots, 8);
    assert_int_equal(st.valid, 3);
    assert_int_equal(st.empty, 2);
    assert_int_equal(st.torn, 1);
    assert_int_equal(st.invalid, 2);
    assert_int_equal(st.truncated, 0);

    /* hdr and stats are optional. */
    assert_int_equal(au_agent_parse(b, sizeof b, NULL, out, SLOTS, &n, NULL),
                     AU_OK);
    assert_int_equal(n, 3);

    /* Counting only. */
    assert_int_equal(au_agent_parse(b, sizeof b, NULL, NULL, 0, &n, &st),
                     AU_ERR_LIMIT);
    assert_int_equal(n, 0);
    assert_int_equal(st.valid, 3);

    /* Arguments. */
    assert_int_equal(au_agent_parse(NULL, sizeof b, NULL, out, 1, &n, NULL),
                     AU_ERR_ARG);
    assert_int_equal(au_agent_parse(b, sizeof b, NULL, out, 1, NULL, NULL),
                     AU_ERR_ARG);
    assert_int_equal(au_agent_parse(b, sizeof b, NULL, NULL, 1, &n, NULL),
                     AU_ERR_ARG);
    /* Header errors come through, with n = 0. */
    n = 5;
    assert_int_equal(au_agent_parse(b, 10, NULL, out, SLOTS, &n, NULL),
                     AU_ERR_FORMAT);
    assert_int_equal(n, 0);
}

static void test_parse_limit(void **state) {
    (void)state;
    uint8_t b[REGION_BYTES] = {0};
    put_header(b, SLOTS, SLOTS, 1, 0);
    for (uint32_t i = 0; i < SLOTS; i++) {
        put_record(b, i, 0x1000 + i, 0x2000 + i, 0x3000, 0x4000);
    }
    au_agent_record out[SLOTS];
    size_t n;
    au_agent_stats st;
    assert_int_equal(au_agent_parse(b, sizeof b, NULL, out, 5, &n, &st),
                     AU_ERR_LIMIT);
    assert_int_equal(n, 5);
    for (uint32_t k = 0; k < 5; k++) {
        assert_int_equal(out[k].slot, k);
        assert_true(out[k].task == 0x1000 + k);
    }
    assert_int_equal(st.slots, SLOTS); /* still counted to the end */
    assert_int_equal(st.valid, SLOTS);
    assert_int_equal(au_agent_parse(b, sizeof b, NULL, out, SLOTS, &n, &st),
                     AU_OK);
    assert_int_equal(n, SLOTS);
}

static void test_parse_truncated(void **state) {
    (void)state;
    uint8_t b[REGION_BYTES] = {0};
    put_header(b, SLOTS, 6, 1, 0);
    for (uint32_t i = 0; i < 6; i++) {
        put_record(b, i, 0x1000 + i, 0x2000 + i, 0x3000, 0x4000);
    }
    au_agent_record out[SLOTS];
    size_t n;
    au_agent_stats st;
    /* Four whole slots and most of a fifth: the partial one is skipped. */
    size_t len = AU_AGENT_HEADER_SIZE + 4 * AU_AGENT_RECORD_SIZE + 39;
    assert_int_equal(au_agent_parse(b, len, NULL, out, SLOTS, &n, &st), AU_OK);
    assert_int_equal(n, 4);
    assert_int_equal(st.slots, 4);
    assert_int_equal(st.truncated, 2);
    /* The header alone. */
    assert_int_equal(au_agent_parse(b, 64, NULL, out, SLOTS, &n, &st), AU_OK);
    assert_int_equal(n, 0);
    assert_int_equal(st.truncated, 6);
    /* A header claiming the maximum over a few bytes stays in them. */
    put_header(b, AU_AGENT_MAX_CAPACITY, AU_AGENT_MAX_CAPACITY, 1, 0);
    assert_int_equal(au_agent_parse(b, sizeof b, NULL, out, SLOTS, &n, &st),
                     AU_OK);
    assert_int_equal(st.slots, SLOTS);
    assert_int_equal(st.truncated, AU_AGENT_MAX_CAPACITY - SLOTS);
    au_agent_header h;
    assert_int_equal(au_agent_parse_header(b, sizeof b, &h), AU_OK);
    assert_true(au_agent_region_span(&h) ==
                64 + (size_t)40 * AU_AGENT_MAX_CAPACITY);
}

/* A read racing a write sees part of the old record and part of the new:
 * every such mix must be rejected (at 8-byte boundaries, as a 64-bit copy
 * tears, and at every byte boundary, as a byte-wise one may). */
static void test_torn_reads(void **state) {
    (void)state;
    static const uint64_t recs[][4] = {
        {0x7f1200001000, 0x7f1200002000, 0x7f1200003000, 0x7f1200004000},
        {0x7f1200005000, 0x7f1200006000, 0x7f1200007000, 0x7f1200008000},
        /* same creator, new task: the common reuse of a slot */
        {0x7f1200009000, 0x7f120000a000, 0x7f1200003000, 0x7f1200004000},
        /* a new task at the old task's address */
        {0x7f1200001000, 0x7f120000b000, 0x7f1200007000, 0x7f1200008000},
    };
    const size_t nrec = sizeof recs / sizeof recs[0];
    unsigned mixes = 0;
    for (size_t x = 0; x < nrec; x++) {
        for (size_t y = 0; y < nrec; y++) {
            if (x == y) continue;
            uint8_t old[REGION_BYTES] = {0}, new_[REGION_BYTES] = {0};
            put_header(old, SLOTS, 1, 1, 0);
            put_header(new_, SLOTS, 1, 1, 0);
            put_record(old, 0, recs[x][0], recs[x][1], recs[x][2], recs[x][3]);
            put_record(new_, 0, recs[y][0], recs[y][1], recs[y][2],
                       recs[y][3]);
            /* The first k bytes from one record, the rest from the other,
             * both ways round. */
            for (unsigned k = 1; k < AU_AGENT_RECORD_SIZE; k++) {
                for (int way = 0; way < 2; way++) {
                    uint8_t mix[REGION_BYTES];
                    memcpy(mix, way ? new_ : old, sizeof mix);
                    memcpy(slot_at(mix, 0), slot_at(way ? old : new_, 0), k);
                    if (memcmp(slot_at(mix, 0), slot_at(old, 0), 40) == 0 ||
                        memcmp(slot_at(mix, 0), slot_at(new_, 0), 40) == 0) {
                        continue; /* the records share those bytes */
                    }
                    size_t n;
                    au_agent_record out[1];
                    au_agent_stats st;
                    assert_int_equal(
                        au_agent_parse(mix, sizeof mix, NULL, out, 1, &n, &st),
                        AU_OK);
                    if (n != 0) {
                        fail_msg("records %zu/%zu torn at byte %u accepted", x,
                                 y, k);
                    }
                    assert_int_equal(st.torn, 1);
                    mixes++;
                }
            }
        }
    }
    assert_true(mixes > 300);
}

/* splitmix64: deterministic pseudo-random bytes. */
static uint64_t next_rand(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static void test_hostile_bytes(void **state) {
    (void)state;
    uint64_t seed = 1;
    for (int round = 0; round < 2000; round++) {
        uint8_t b[REGION_BYTES];
        for (size_t i = 0; i < sizeof b; i += 8) {
            au_wr64(b + i, next_rand(&seed));
        }
        uint32_t used = (uint32_t)(next_rand(&seed) % (SLOTS * 2));
        put_header(b, SLOTS * 2, used, 1, 0);
        /* Now and then a valid record among the noise. */
        if (used > 0 && round % 3 == 0) {
            put_record(b, 0, 0x10, 0x20, 0x30, 0x40);
        }
        size_t len = (size_t)(next_rand(&seed) % (sizeof b + 1));
        au_agent_record out[SLOTS];
        size_t n = 0;
        au_agent_stats st = {0};
        int rc = au_agent_parse(b, len, NULL, out, SLOTS, &n, &st);
        if (len < AU_AGENT_HEADER_SIZE) {
            assert_int_equal(rc, AU_ERR_FORMAT);
            continue;
        }
        assert_true(rc == AU_OK || rc == AU_ERR_LIMIT);
        assert_true(n <= used && n <= SLOTS);
        assert_int_equal(st.slots + st.truncated, used);
        assert_true((size_t)st.slots * 40 + 64 <= len);
        assert_int_equal(st.empty + st.torn + st.invalid + st.valid, st.slots);
        assert_true(n == (st.valid < SLOTS ? st.valid : SLOTS));
        assert_int_equal(rc, st.valid > SLOTS ? AU_ERR_LIMIT : AU_OK);
        if (used > 0 && round % 3 == 0 && len >= 104) {
            assert_true(n >= 1 && out[0].slot == 0 && out[0].task == 0x10);
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
        cmocka_unit_test(test_check_vectors),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_parse_records),
        cmocka_unit_test(test_parse_limit),
        cmocka_unit_test(test_parse_truncated),
        cmocka_unit_test(test_torn_reads),
        cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_region_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
