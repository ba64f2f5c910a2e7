/*
 * Tests of core/cpython/linetable.c.
 *
 * Two halves:
 *  - Golden data (tests/data/linetable/<version>/golden.txt, written by
 *    tools/gen_linetable_golden.py from the real interpreters): for every
 *    code object in it, every instruction offset (and a few past the end)
 *    must give the line CPython's own PyCode_Addr2Line gave, and every
 *    recorded live frame must give the f_lineno CPython reported.
 *  - Hand-built tables for what CPython never writes but a hostile or
 *    misread table may hold: each malformation must give AU_ERR_FORMAT, and
 *    the documented boundary rules must hold.
 *
 * AU_LINETABLE_GOLDEN_DIR overrides the golden directory (e.g. to replay a
 * --stdlib run of the generator kept outside the tree).
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
#include <sys/stat.h>

#include <cmocka.h>

#include "asyncunwind.h"
#include "au_linetable.h"

/* ------------------------------------------------------------------------ */
/* Golden data                                                               */
/* ------------------------------------------------------------------------ */

#define GOLDEN_DIR "tests/data/linetable"

typedef struct golden_stats {
    unsigned files, codes, offsets, past_end, frames, probes, no_line;
    unsigned kinds_seen; /* bit k: a file of kind k was replayed */
    unsigned mismatches;
} golden_stats;

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Parses "-" or lowercase hex into a malloc'd buffer. */
static uint8_t *parse_hex(const char *s, size_t *len) {
    size_t n = strcmp(s, "-") == 0 ? 0 : strlen(s);
    assert_int_equal(n % 2, 0);
    uint8_t *buf = malloc(n / 2 + 1); /* +1: a valid pointer when empty */
    assert_non_null(buf);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        assert_true(hi >= 0 && lo >= 0);
        buf[i] = (uint8_t)(hi * 16 + lo);
    }
    *len = n / 2;
    return buf;
}

typedef struct golden_code {
    char label[256];
    int32_t first;
    uint32_t nunits, nquery;
    uint8_t *table;
    size_t len;
} golden_code;

static void check_one(const char *path, unsigned lineno, au_linetable_kind kind,
                      const golden_code *c, uint32_t offset, int32_t want,
                      const char *what, golden_stats *st) {
    int32_t got = 12345;
    int rc = au_linetable_line(kind, c->table, c->len, c->first, offset, &got);
    if (rc != AU_OK || got != want) {
        if (st->mismatches++ < 20) {
            print_error("%s:%u: %s %s offset %u: want line %d, got rc %d line %d\n",
                        path, lineno, what, c->label, offset, want, rc, got);
        }
    }
}

/* Replays one golden file; every expectation is counted in *st. */
static void replay_golden(const char *path, golden_stats *st) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    int kind = 0;
    char version[32] = "";
    golden_code c = {.table = NULL};
    int have_code = 0;

    while (getline(&line, &cap, f) > 0) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0') continue;
        if (strncmp(line, "python ", 7) == 0) {
            assert_true(strlen(line + 7) < sizeof version);
            strcpy(version, line + 7);
            int major = 0, minor = 0;
            assert_int_equal(sscanf(version, "%d.%d", &major, &minor), 2);
            int want_kind = au_linetable_kind_for_version(major, minor);
            assert_true(want_kind > 0);
            kind = want_kind;
        } else if (strncmp(line, "kind ", 5) == 0) {
            /* The generator's idea of the format must match ours. */
            assert_int_equal(atoi(line + 5), kind);
        } else if (strncmp(line, "code ", 5) == 0) {
            free(c.table);
            char *hex = malloc(strlen(line));
            assert_non_null(hex);
            /* %255s: c.label holds 256 bytes. */
            assert_int_equal(sscanf(line, "code %255s %d %u %u %s", c.label,
                                    &c.first, &c.nunits, &c.nquery, hex), 5);
            assert_true(c.nquery >= c.nunits);
            c.table = parse_hex(hex, &c.len);
            free(hex);
            have_code = 1;
            st->codes++;
        } else if (strncmp(line, "lines ", 6) == 0) {
            assert_true(have_code);
            /* RLE: LINE or LINE*COUNT, covering offsets 0 .. nquery-1. */
            char *p = line + 6;
            uint32_t off = 0;
            while (*p != '\0') {
                char *end;
                long v = strtol(p, &end, 10);
                assert_true(end != p);
                long count = 1;
                if (*end == '*') {
                    p = end + 1;
                    count = strtol(p, &end, 10);
                    assert_true(end != p && count > 0);
                }
                for (long k = 0; k < count; k++, off++) {
                    assert_true(off < c.nquery);
                    check_one(path, lineno, (au_linetable_kind)kind, &c, off,
                              (int32_t)v, off < c.nunits ? "code" : "past-end",
                              st);
                    if (off >= c.nunits) {
                        st->past_end++;
                    } else {
                        st->offsets++;
                        if (v == AU_LINE_NONE) st->no_line++;
                    }
                }
                p = end;
                while (*p == ' ') p++;
            }
            assert_int_equal(off, c.nquery);
        } else if (strncmp(line, "probe ", 6) == 0 ||
                   strncmp(line, "frame ", 6) == 0) {
            assert_true(have_code);
            unsigned long off;
            long want;
            assert_int_equal(sscanf(line + 6, "%lu %ld", &off, &want), 2);
            int is_frame = line[0] == 'f';
            check_one(path, lineno, (au_linetable_kind)kind, &c, (uint32_t)off,
                      (int32_t)want, is_frame ? "frame" : "probe", st);
            if (is_frame) st->frames++; else st->probes++;
        } else {
            fail_msg("%s:%u: unknown record: %.40s", path, lineno, line);
        }
    }
    assert_true(kind > 0);
    st->kinds_seen |= 1u << kind;
    st->files++;
    free(c.table);
    free(line);
    fclose(f);
}

static int is_dir(const char *path) {
    struct stat sb;
    /* stat(), not d_type: runfiles are symlinks. */
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void test_golden(void **state) {
    (void)state;
    const char *dir = getenv("AU_LINETABLE_GOLDEN_DIR");
    if (dir == NULL || dir[0] == '\0') dir = GOLDEN_DIR;
    DIR *d = opendir(dir);
    assert_non_null(d);
    golden_stats st;
    memset(&st, 0, sizeof st);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char sub[1024], file[1100];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        if (!is_dir(sub)) continue;
        snprintf(file, sizeof file, "%s/golden.txt", sub);
        golden_stats one;
        memset(&one, 0, sizeof one);
        replay_golden(file, &one);
        print_message("  %-8s %4u code objects, %6u offsets (+%u past the end,"
                      " %u far), %3u live frames, %5u without a line\n",
                      e->d_name, one.codes, one.offsets, one.past_end,
                      one.probes, one.frames, one.no_line);
        st.files += one.files;
        st.codes += one.codes;
        st.offsets += one.offsets;
        st.frames += one.frames;
        st.kinds_seen |= one.kinds_seen;
        st.mismatches += one.mismatches;
    }
    closedir(d);
    print_message("  total: %u files, %u code objects, %u offsets, %u frames,"
                  " %u mismatches\n", st.files, st.codes, st.offsets,
                  st.frames, st.mismatches);
    assert_int_equal(st.mismatches, 0);
    /* An empty or partial data set must not pass: all three formats, real
     * frames, and a non-trivial number of offsets. */
    assert_int_equal(st.kinds_seen, (1u << AU_LT_LNOTAB) |
                                        (1u << AU_LT_LINETABLE310) |
                                        (1u << AU_LT_LOCATIONS));
    assert_true(st.files >= 3);
    assert_true(st.frames > 0);
    assert_true(st.offsets > 1000);
}

/* ------------------------------------------------------------------------ */
/* Hand-built tables                                                         */
/* ------------------------------------------------------------------------ */

static int32_t line_at(au_linetable_kind kind, const uint8_t *t, size_t len,
                       int32_t first, uint32_t offset) {
    int32_t line = 12345;
    assert_int_equal(au_linetable_line(kind, t, len, first, offset, &line), AU_OK);
    return line;
}

static void assert_format_error(au_linetable_kind kind, const uint8_t *t,
                                size_t len, int32_t first, uint32_t offset) {
    int32_t line = 12345;
    assert_int_equal(au_linetable_line(kind, t, len, first, offset, &line),
                     AU_ERR_FORMAT);
    assert_int_equal(line, AU_LINE_NONE); /* errors never leave a line */
}

static void test_arguments(void **state) {
    (void)state;
    static const uint8_t t[] = {0x80};
    int32_t line = 7;
    assert_int_equal(au_linetable_line(AU_LT_LOCATIONS, t, 1, 1, 0, NULL), AU_ERR_ARG);
    assert_int_equal(au_linetable_line(AU_LT_LOCATIONS, NULL, 1, 1, 0, &line), AU_ERR_ARG);
    assert_int_equal(line, AU_LINE_NONE);
    line = 7;
    assert_int_equal(au_linetable_line((au_linetable_kind)0, t, 1, 1, 0, &line), AU_ERR_ARG);
    assert_int_equal(line, AU_LINE_NONE);
    assert_int_equal(au_linetable_line((au_linetable_kind)4, t, 1, 1, 0, &line), AU_ERR_ARG);
    /* NULL with length 0 is an empty table. */
    assert_int_equal(line_at(AU_LT_LNOTAB, NULL, 0, 42, 0), 42);
    assert_int_equal(line_at(AU_LT_LINETABLE310, NULL, 0, 42, 0), AU_LINE_NONE);
    assert_int_equal(line_at(AU_LT_LOCATIONS, NULL, 0, 42, 0), AU_LINE_NONE);
}

static void test_kind_for_version(void **state) {
    (void)state;
    assert_int_equal(au_linetable_kind_for_version(3, 9), AU_LT_LNOTAB);
    assert_int_equal(au_linetable_kind_for_version(3, 10), AU_LT_LINETABLE310);
    for (int minor = 11; minor <= 15; minor++) {
        assert_int_equal(au_linetable_kind_for_version(3, minor), AU_LT_LOCATIONS);
    }
    assert_int_equal(au_linetable_kind_for_version(3, 8), AU_ERR_UNSUPPORTED);
    assert_int_equal(au_linetable_kind_for_version(3, 16), AU_ERR_UNSUPPORTED);
    assert_int_equal(au_linetable_kind_for_version(2, 7), AU_ERR_UNSUPPORTED);
    assert_int_equal(au_linetable_kind_for_version(4, 0), AU_ERR_UNSUPPORTED);
}

/* The worked example of Objects/lnotab_notes.txt (3.9): byte offsets 0, 6,
 * 50, 350, 361 start lines 1, 2, 7, 207, 208; the 300-byte / 200-line step
 * is split as (255, 0), (45, 127), (0, 73). */
static void test_lnotab_documented_example(void **state) {
    (void)state;
    static const uint8_t t[] = {6, 1, 44, 5, 255, 0, 45, 127, 0, 73, 11, 1};
    const size_t n = sizeof t;
    /* offsets are code units: byte offset / 2 */
    assert_int_equal(line_at(AU_LT_LNOTAB, t, n, 1, 0), 1);
    assert_int_equal(line_at(AU_LT_LNOTAB, t, n, 1, 2), 1);   /* byte 4 */
    assert_int_equal(line_at(AU_LT_LNOTAB, t, n, 1, 3), 2);   /* byte 6 */
    assert_int_equal(line_at(AU_LT_LNOTAB, t, n, 1, 24), 2);  /* byte 48 */
    assert_int_equal(line_at(AU_LT_LNOTAB, t, n, 1, 25), 7);  /* byte 50 */
    /* Inside the split: byte 305 is past the (255, 0) pair but before the
     * (45, +127): still line 7; no offset ever sees the half-applied 134. */
    assert_int_equal(line_at(AU_LT_LNOTAB, t, n, 1, 152), 7); /* byte 304 */
    assert_int_equal(line_at(AU_LT_LNOTAB, t, n, 1, 174), 7); /* byte 348 */
    assert_int_equal(line_at(AU_LT_LNOTAB, t, n, 1, 175), 207); /* byte 350 */
    assert_int_equal(line_at(AU_LT_LNOTAB, t, n, 1, 180), 207); /* byte 360 */
    assert_int_equal(line_at(AU_LT_LNOTAB, t, n, 1, 181), 208); /* byte 362 */
    /* Past the last pair: the last line, as CPython 3.9 reports. */
    assert_int_equal(line_at(AU_LT_LNOTAB, t, n, 1, 182), 208);
    assert_int_equal(line_at(AU_LT_LNOTAB, t, n, 1, UINT32_MAX), 208);
}

static void test_lnotab_signed_and_bounds(void **state) {
    (void)state;
    /* Signed increments: 0xff is -1, 0x80 is -128 (no "no line" in 3.9). */
    static const uint8_t neg[] = {0, 0x80 + 72 /* -56 */, 2, 0xff, 2, 0x80};
    assert_int_equal(line_at(AU_LT_LNOTAB, neg, sizeof neg, 1000, 0), 944);
    assert_int_equal(line_at(AU_LT_LNOTAB, neg, sizeof neg, 1000, 1), 943);
    assert_int_equal(line_at(AU_LT_LNOTAB, neg, sizeof neg, 1000, 2), 815);
    /* An empty table: every offset is on co_firstlineno. */
    static const uint8_t none[1] = {0};
    assert_int_equal(line_at(AU_LT_LNOTAB, none, 0, 17, 0), 17);
    assert_int_equal(line_at(AU_LT_LNOTAB, none, 0, 17, 9999), 17);
    /* An odd length is damage, whatever the offset. */
    static const uint8_t odd[] = {2, 1, 2};
    assert_format_error(AU_LT_LNOTAB, odd, sizeof odd, 1, 0);
    /* The running line must stay in int32. */
    static const uint8_t up[] = {0, 1, 2, 1};
    assert_int_equal(line_at(AU_LT_LNOTAB, up, sizeof up, INT32_MAX - 2, 5), INT32_MAX);
    assert_format_error(AU_LT_LNOTAB, up, sizeof up, INT32_MAX - 1, 5);
    /* ... but only the pairs the lookup applies are checked (as CPython,
     * which stops there too). */
    assert_int_equal(line_at(AU_LT_LNOTAB, up, sizeof up, INT32_MAX - 1, 0), INT32_MAX);
    static const uint8_t down[] = {0, 0x80};
    assert_int_equal(line_at(AU_LT_LNOTAB, down, sizeof down, INT32_MIN + 128, 0), INT32_MIN);
    assert_format_error(AU_LT_LNOTAB, down, sizeof down, INT32_MIN + 127, 0);
    /* Odd byte increments never happen (instructions are 2 bytes), but the
     * comparison is still done in bytes, like CPython's. */
    static const uint8_t oddinc[] = {3, 1};
    assert_int_equal(line_at(AU_LT_LNOTAB, oddinc, 2, 1, 1), 1); /* byte 2 < 3 */
    assert_int_equal(line_at(AU_LT_LNOTAB, oddinc, 2, 1, 2), 2); /* byte 4 >= 3 */
}

static void test_linetable310(void **state) {
    (void)state;
    /* firstlineno 10:
     *   (0, +127) (0, +3)  zero-length: only move the line to 140
     *   (6, 0)             bytes 0-5    line 140
     *   (4, -128)          bytes 6-9    no line (140 kept)
     *   (254, -2)          bytes 10-263 line 138
     *   (10, 0)            bytes 264-273 line 138 (rest of a split range)
     *   (2, -128) (0, 5)   bytes 274-275 no line; then +5 in a zero range
     *   (2, 0)             bytes 276-277 line 143 */
    static const uint8_t t[] = {0, 127, 0, 3, 6, 0, 4, 0x80, 254, 0xfe,
                                10, 0, 2, 0x80, 0, 5, 2, 0};
    const size_t n = sizeof t;
    assert_int_equal(line_at(AU_LT_LINETABLE310, t, n, 10, 0), 140);
    assert_int_equal(line_at(AU_LT_LINETABLE310, t, n, 10, 2), 140);
    assert_int_equal(line_at(AU_LT_LINETABLE310, t, n, 10, 3), AU_LINE_NONE);
    assert_int_equal(line_at(AU_LT_LINETABLE310, t, n, 10, 4), AU_LINE_NONE);
    assert_int_equal(line_at(AU_LT_LINETABLE310, t, n, 10, 5), 138);
    assert_int_equal(line_at(AU_LT_LINETABLE310, t, n, 10, 131), 138);
    assert_int_equal(line_at(AU_LT_LINETABLE310, t, n, 10, 132), 138);
    assert_int_equal(line_at(AU_LT_LINETABLE310, t, n, 10, 136), 138);
    assert_int_equal(line_at(AU_LT_LINETABLE310, t, n, 10, 137), AU_LINE_NONE);
    assert_int_equal(line_at(AU_LT_LINETABLE310, t, n, 10, 138), 143);
    /* Past the last range: no line (CPython returns -1, f_lineno None). */
    assert_int_equal(line_at(AU_LT_LINETABLE310, t, n, 10, 139), AU_LINE_NONE);
    assert_int_equal(line_at(AU_LT_LINETABLE310, t, n, 10, UINT32_MAX), AU_LINE_NONE);
    /* A table ending in zero-length pairs covers nothing more. */
    static const uint8_t tail[] = {2, 1, 0, 5};
    assert_int_equal(line_at(AU_LT_LINETABLE310, tail, 4, 1, 0), 2);
    assert_int_equal(line_at(AU_LT_LINETABLE310, tail, 4, 1, 1), AU_LINE_NONE);
    /* Odd length; int32 overflow only when the pair is applied. */
    assert_format_error(AU_LT_LINETABLE310, t, n - 1, 10, 0);
    static const uint8_t up[] = {2, 1, 2, 1};
    assert_int_equal(line_at(AU_LT_LINETABLE310, up, 4, INT32_MAX - 1, 0), INT32_MAX);
    assert_format_error(AU_LT_LINETABLE310, up, 4, INT32_MAX - 1, 1);
    /* -128 never moves the line, so it cannot overflow. */
    static const uint8_t nl[] = {2, 0x80};
    assert_int_equal(line_at(AU_LT_LINETABLE310, nl, 2, INT32_MIN, 0), AU_LINE_NONE);
}

/* --- location table encoders (written from InternalDocs/locations.md) --- */

typedef struct loc_buf {
    uint8_t b[256];
    size_t n;
} loc_buf;

static void put(loc_buf *lb, uint8_t v) {
    assert_true(lb->n < sizeof lb->b);
    lb->b[lb->n++] = v;
}

static void put_varint(loc_buf *lb, uint32_t v) {
    while (v >= 64) {
        put(lb, (uint8_t)(64 | (v & 63)));
        v >>= 6;
    }
    put(lb, (uint8_t)v);
}

static void put_svarint(loc_buf *lb, int64_t d) {
    put_varint(lb, d < 0 ? (uint32_t)((uint64_t)(-d) << 1 | 1) : (uint32_t)((uint64_t)d << 1));
}

static void head(loc_buf *lb, unsigned code, unsigned units) {
    put(lb, (uint8_t)(0x80 | code << 3 | (units - 1)));
}

static void test_locations_forms(void **state) {
    (void)state;
    loc_buf lb = {.n = 0};
    head(&lb, 0, 3); put(&lb, 0x12);        /* 0-2:   short, same line (50) */
    head(&lb, 11, 2); put(&lb, 4); put(&lb, 9); /* 3-4: one-line +1 -> 51 */
    head(&lb, 12, 1); put(&lb, 0); put(&lb, 1); /* 5:   one-line +2 -> 53 */
    head(&lb, 10, 8); put(&lb, 0); put(&lb, 1); /* 6-13: one-line +0 -> 53 */
    head(&lb, 13, 1); put_svarint(&lb, -40); /* 14:    no column -> 13 */
    head(&lb, 15, 4);                        /* 15-18: no location */
    head(&lb, 14, 2); put_svarint(&lb, 100000); put_varint(&lb, 3);
    put_varint(&lb, 4); put_varint(&lb, 500); /* 19-20: long -> 100013 */
    head(&lb, 9, 1); put(&lb, 0x7f);         /* 21:    short, col 72+ */
    head(&lb, 13, 5); put_svarint(&lb, 0);   /* 22-26: no column, +0 */
    head(&lb, 15, 1);                        /* 27:    no location */
    head(&lb, 14, 1); put_svarint(&lb, -100012); put_varint(&lb, 0);
    put_varint(&lb, 0); put_varint(&lb, 0);  /* 28:    long -> 1 */
    static const int32_t want[] = {
        50, 50, 50, 51, 51, 53, 53, 53, 53, 53, 53, 53, 53, 53, 13,
        -1, -1, -1, -1, 100013, 100013, 100013, 100013, 100013, 100013,
        100013, 100013, -1, 1, -1, -1};
    for (uint32_t off = 0; off < sizeof want / sizeof *want; off++) {
        int32_t got = line_at(AU_LT_LOCATIONS, lb.b, lb.n, 50, off);
        if (got != want[off]) fail_msg("offset %u: want %d got %d", off, want[off], got);
    }
    assert_int_equal(line_at(AU_LT_LOCATIONS, lb.b, lb.n, 50, UINT32_MAX), AU_LINE_NONE);
}

static void test_locations_no_location_keeps_line(void **state) {
    (void)state;
    /* A "no location" entry carries no delta: the next entry's delta counts
     * from the line before it (CPython's computed_line). */
    loc_buf lb = {.n = 0};
    head(&lb, 11, 1); put(&lb, 0); put(&lb, 0); /* +1 -> 8 */
    head(&lb, 15, 1);
    head(&lb, 12, 1); put(&lb, 0); put(&lb, 0); /* +2 -> 10 */
    assert_int_equal(line_at(AU_LT_LOCATIONS, lb.b, lb.n, 7, 0), 8);
    assert_int_equal(line_at(AU_LT_LOCATIONS, lb.b, lb.n, 7, 1), AU_LINE_NONE);
    assert_int_equal(line_at(AU_LT_LOCATIONS, lb.b, lb.n, 7, 2), 10);
}

static void test_locations_varints(void **state) {
    (void)state;
    /* The largest deltas a 32-bit svarint holds: +-(2^31 - 1). */
    loc_buf lb = {.n = 0};
    head(&lb, 13, 1); put_svarint(&lb, INT32_MAX);
    assert_int_equal(lb.n, 7); /* 1 + 6 chunks */
    assert_int_equal(line_at(AU_LT_LOCATIONS, lb.b, lb.n, 0, 0), INT32_MAX);
    assert_format_error(AU_LT_LOCATIONS, lb.b, lb.n, 1, 0); /* overflow */
    lb.n = 0;
    head(&lb, 14, 1); put_svarint(&lb, -(int64_t)INT32_MAX);
    put_varint(&lb, 0); put_varint(&lb, 0); put_varint(&lb, 0);
    assert_int_equal(line_at(AU_LT_LOCATIONS, lb.b, lb.n, -1, 0), INT32_MIN);
    assert_format_error(AU_LT_LOCATIONS, lb.b, lb.n, -2, 0);

    /* Non-canonical but in range (a zero top chunk): accepted, as CPython. */
    static const uint8_t padded[] = {0x80 | 13 << 3, 0x40 | 6, 0x40, 0};
    assert_int_equal(line_at(AU_LT_LOCATIONS, padded, sizeof padded, 10, 0), 13);
    /* Six chunks worth more than 32 bits. */
    static const uint8_t big[] = {0x80 | 13 << 3, 0x40, 0x40, 0x40, 0x40, 0x40, 0x04};
    assert_format_error(AU_LT_LOCATIONS, big, sizeof big, 0, 0);
    static const uint8_t max32[] = {0x80 | 13 << 3, 0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0x03};
    assert_int_equal(line_at(AU_LT_LOCATIONS, max32, sizeof max32, 0, 0), INT32_MAX);
    /* Seven chunks: more than any unsigned int, even if all zero. */
    static const uint8_t seven[] = {0x80 | 13 << 3, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0};
    assert_format_error(AU_LT_LOCATIONS, seven, sizeof seven, 0, 0);
    /* Truncated at the end of the table. */
    static const uint8_t trunc[] = {0x80 | 14 << 3, 0x41};
    assert_format_error(AU_LT_LOCATIONS, trunc, sizeof trunc, 0, 0);
    static const uint8_t missing[] = {0x80 | 13 << 3};
    assert_format_error(AU_LT_LOCATIONS, missing, sizeof missing, 0, 0);
    /* Running into the next entry (a byte with bit 7 set). */
    static const uint8_t runs[] = {0x80 | 13 << 3, 0x41, 0x80 | 15 << 3};
    assert_format_error(AU_LT_LOCATIONS, runs, sizeof runs, 0, 0);
    static const uint8_t empty_delta[] = {0x80 | 14 << 3, 0x80 | 15 << 3};
    assert_format_error(AU_LT_LOCATIONS, empty_delta, sizeof empty_delta, 0, 0);
}

static void test_locations_structure(void **state) {
    (void)state;
    /* The first byte must start an entry. */
    static const uint8_t nostart[] = {0x12, 0x80};
    assert_format_error(AU_LT_LOCATIONS, nostart, sizeof nostart, 1, 0);
    assert_format_error(AU_LT_LOCATIONS, nostart, sizeof nostart, 1, 100);
    /* Extra bytes inside an entry are skipped, like CPython does. */
    static const uint8_t extra[] = {0x80 | 11 << 3, 1, 2, 3, 4, 5, 0x80 | 11 << 3, 0, 0};
    assert_int_equal(line_at(AU_LT_LOCATIONS, extra, sizeof extra, 1, 0), 2);
    assert_int_equal(line_at(AU_LT_LOCATIONS, extra, sizeof extra, 1, 1), 3);
    assert_int_equal(line_at(AU_LT_LOCATIONS, extra, sizeof extra, 1, 2), AU_LINE_NONE);
    /* Only entries up to the one covering the offset are decoded. */
    static const uint8_t bad_tail[] = {0x80 | 10 << 3 | 7, 0, 0, 0x80 | 13 << 3};
    assert_int_equal(line_at(AU_LT_LOCATIONS, bad_tail, sizeof bad_tail, 5, 7), 5);
    assert_format_error(AU_LT_LOCATIONS, bad_tail, sizeof bad_tail, 5, 8);
    /* Every entry length 1..8 counts in code units. */
    loc_buf lb = {.n = 0};
    for (unsigned units = 1; units <= 8; units++) {
        head(&lb, 13, units);
        put_svarint(&lb, 1);
    }
    uint32_t off = 0;
    for (unsigned units = 1; units <= 8; units++) {
        for (unsigned k = 0; k < units; k++, off++) {
            assert_int_equal(line_at(AU_LT_LOCATIONS, lb.b, lb.n, 0, off), (int32_t)units);
        }
    }
    assert_int_equal(off, 36);
    assert_int_equal(line_at(AU_LT_LOCATIONS, lb.b, lb.n, 0, 36), AU_LINE_NONE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_kind_for_version),
        cmocka_unit_test(test_lnotab_documented_example),
        cmocka_unit_test(test_lnotab_signed_and_bounds),
        cmocka_unit_test(test_linetable310),
        cmocka_unit_test(test_locations_forms),
        cmocka_unit_test(test_locations_no_location_keeps_line),
        cmocka_unit_test(test_locations_varints),
        cmocka_unit_test(test_locations_structure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
