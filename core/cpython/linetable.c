/*
 * Line numbers from CPython line tables (see au_linetable.h for the API).
 *
 * Each decoder reproduces the walk CPython's PyCode_Addr2Line does for that
 * version, so that a well-formed table gives exactly CPython's answer, and
 * adds the checks CPython can skip because it trusts its own tables: the
 * bytes here come from another process and may be anything.
 *
 * Shared rules:
 *  - Positions are compared in 64-bit arithmetic.  Every walk stops at the
 *    first entry that ends past the target, so positions never grow beyond
 *    target + one entry (< 2^34) and cannot overflow.
 *  - Line numbers are accumulated in 64 bits and must stay within int32 at
 *    every step.  CPython keeps them in a C int; a table that leaves that
 *    range would overflow CPython itself, so it did not come from CPython.
 *  - A signed byte is decoded by hand (b - 256 for b >= 128): converting an
 *    out-of-range value to int8_t is implementation-defined in C.
 */
#include "au_linetable.h"

/* Add delta (|delta| <= 2^32) to the running line *acc (int32 range). */
static int line_add(int64_t *acc, int64_t delta) {
    int64_t v = *acc + delta;
    if (v < INT32_MIN || v > INT32_MAX) return AU_ERR_FORMAT;
    *acc = v;
    return AU_OK;
}

static int signed_byte(uint8_t b) { return b < 128 ? (int)b : (int)b - 256; }

/*
 * 3.9: co_lnotab (Objects/lnotab_notes.txt of 3.9).
 *
 * Byte pairs (address increment, line increment).  The address increment is
 * an unsigned byte counting BYTES of bytecode; the line increment is a
 * signed byte (signed since 3.6).  Large steps are split over several
 * pairs: the address part first, as (255, 0) pairs, then the line part, the
 * first line pair carrying the rest of the address step and the others an
 * address increment of 0 (the notes' example: 300 bytes and 200 lines are
 * (255, 0), (45, 127), (0, 73)).  So the walk applies pairs one by one and
 * no lookup sees a half-applied line step.  CPython's lookup for byte
 * address A:
 *     line = firstlineno; addr = 0
 *     for each pair: addr += incr; if addr > A: stop; line += line_incr
 * An address past the last pair keeps the last line.  CPython ignores an odd
 * trailing byte; it never writes one, so we treat it as damage.
 */
static int lnotab_line(const uint8_t *t, size_t len, int32_t first,
                       uint32_t offset, int32_t *line) {
    if (len % 2 != 0) return AU_ERR_FORMAT;
    const uint64_t target = (uint64_t)offset * 2; /* code units -> bytes */
    uint64_t addr = 0;
    int64_t cur = first;
    for (size_t i = 0; i < len; i += 2) {
        addr += t[i];
        if (addr > target) break;
        if (line_add(&cur, signed_byte(t[i + 1])) != AU_OK) return AU_ERR_FORMAT;
    }
    *line = (int32_t)cur;
    return AU_OK;
}

/*
 * 3.10: co_linetable of PEP 626 (Objects/lnotab_notes.txt of 3.10).
 *
 * Byte pairs (length, line delta): the pair covers the next `length` BYTES
 * of bytecode (unsigned byte), and its line is the previous computed line
 * plus the signed delta.  A delta of -128 means "no line": the range has no
 * line and the computed line is left unchanged for the next pair.  Long
 * ranges are split into (254, delta), (rest, 0) pairs, large line deltas
 * into leading zero-length (0, +-127) pairs.  CPython's lookup
 * (_PyCode_CheckLineNumber) finds the first non-empty range whose end is
 * past the target; none means -1.  A zero-length range can never be that
 * range (its end equals its start, which is <= the target), so only its
 * line delta matters.
 */
static int linetable310_line(const uint8_t *t, size_t len, int32_t first,
                             uint32_t offset, int32_t *line) {
    if (len % 2 != 0) return AU_ERR_FORMAT;
    const uint64_t target = (uint64_t)offset * 2; /* code units -> bytes */
    uint64_t end = 0;
    int64_t cur = first;
    for (size_t i = 0; i < len; i += 2) {
        end += t[i];
        int32_t this_line = AU_LINE_NONE;
        if (t[i + 1] != 0x80) {
            if (line_add(&cur, signed_byte(t[i + 1])) != AU_OK) return AU_ERR_FORMAT;
            this_line = (int32_t)cur;
        }
        if (end > target) {
            *line = this_line;
            return AU_OK;
        }
    }
    *line = AU_LINE_NONE;
    return AU_OK;
}

/*
 * 3.11 to 3.15: the location table (Objects/locations.md, since 3.14
 * InternalDocs/locations.md).  The format did not change over these
 * versions: the _PyCodeLocationInfoKind codes (Include/cpython/code.h) and
 * the entry and varint writers (internal/pycore_code.h) are the same in the
 * 3.11.7, 3.12.1, 3.13.0, 3.14.10 and 3.15.2 headers, and the golden data of
 * tests/linetable_test.c comes from each of those interpreters.
 *
 * A sequence of entries.  An entry is a first byte with bit 7 set, followed
 * by the bytes up to the next byte with bit 7 set:
 *     bit 7 = 1 | bits 3-6 = code | bits 0-2 = length - 1 (in code units)
 * The start line of each entry is a delta from the previous entry's start
 * line (co_firstlineno for the first):
 *     0-9    short form          delta 0
 *     10-12  one-line form       delta code - 10
 *     13     no column info      delta = svarint right after the first byte
 *     14     long form           delta = svarint right after the first byte
 *     15     no location         delta 0, and the entry has no line
 * The rest of an entry (columns, end line) does not affect the line, and is
 * skipped the way CPython skips it: up to the next entry-start byte.
 *
 * varint: 6-bit chunks, least significant first; bit 6 set on every chunk
 * but the last.  CPython writes them from an unsigned int, so more than
 * 32 bits is damage.  svarint: the varint v is (|d| << 1) | (d < 0).
 * CPython reads a varint without bounds (it trusts the table); we require
 * it to end inside its own entry.
 */

/* Decode the svarint in t[*pos, end) into *delta, advancing *pos. */
static int read_svarint(const uint8_t *t, size_t *pos, size_t end,
                        int64_t *delta) {
    uint64_t v = 0;
    for (unsigned shift = 0;; shift += 6) {
        /* 6 chunks carry 36 bits, enough for any 32-bit value; a 7th is
         * damage, and stopping here keeps the shift well defined. */
        if (*pos >= end || shift > 30) return AU_ERR_FORMAT;
        uint8_t b = t[(*pos)++];
        v |= (uint64_t)(b & 63) << shift;
        if ((b & 64) == 0) break;
    }
    if (v > UINT32_MAX) return AU_ERR_FORMAT;
    /* v >> 1 < 2^31: the negation cannot overflow. */
    *delta = (v & 1) ? -(int64_t)(v >> 1) : (int64_t)(v >> 1);
    return AU_OK;
}

static int locations_line(const uint8_t *t, size_t len, int32_t first,
                          uint32_t offset, int32_t *line) {
    /* Every later entry starts at a byte with bit 7 set by construction (we
     * cut entries there); only the first byte can break the rule. */
    if (len > 0 && (t[0] & 0x80) == 0) return AU_ERR_FORMAT;
    uint64_t end = 0; /* in code units */
    int64_t cur = first;
    size_t i = 0;
    while (i < len) {
        const uint8_t head = t[i];
        size_t next = i + 1;
        while (next < len && (t[next] & 0x80) == 0) next++;

        const unsigned code = (head >> 3) & 15u;
        int64_t delta = 0;
        if (code == 13 || code == 14) {
            size_t pos = i + 1;
            if (read_svarint(t, &pos, next, &delta) != AU_OK) return AU_ERR_FORMAT;
        } else if (code >= 10 && code <= 12) {
            delta = (int64_t)code - 10;
        }
        if (line_add(&cur, delta) != AU_OK) return AU_ERR_FORMAT;

        end += (uint64_t)(head & 7u) + 1;
        if (end > offset) {
            *line = code == 15 ? AU_LINE_NONE : (int32_t)cur;
            return AU_OK;
        }
        i = next;
    }
    *line = AU_LINE_NONE;
    return AU_OK;
}

int au_linetable_line(au_linetable_kind kind, const uint8_t *table, size_t len,
                      int32_t firstlineno, uint32_t offset, int32_t *line) {
    if (line == NULL) return AU_ERR_ARG;
    *line = AU_LINE_NONE;
    if (table == NULL && len > 0) return AU_ERR_ARG;

    int32_t result = AU_LINE_NONE;
    int rc;
    switch (kind) {
    case AU_LT_LNOTAB:
        rc = lnotab_line(table, len, firstlineno, offset, &result);
        break;
    case AU_LT_LINETABLE310:
        rc = linetable310_line(table, len, firstlineno, offset, &result);
        break;
    case AU_LT_LOCATIONS:
        rc = locations_line(table, len, firstlineno, offset, &result);
        break;
    default:
        return AU_ERR_ARG;
    }
    /* Only publish a result on success, so errors always leave NONE. */
    if (rc == AU_OK) *line = result;
    return rc;
}

int au_linetable_kind_for_version(int major, int minor) {
    if (major != 3) return AU_ERR_UNSUPPORTED;
    if (minor == 9) return AU_LT_LNOTAB;
    if (minor == 10) return AU_LT_LINETABLE310;
    if (minor >= 11 && minor <= 15) return AU_LT_LOCATIONS;
    return AU_ERR_UNSUPPORTED;
}
