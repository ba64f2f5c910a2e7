/*
 * Shared body of the fuzz targets `lnotab`, `linetable310` and `locations`:
 * each runs one decoder of core/cpython/linetable.c on arbitrary table bytes.
 *
 * Input layout (every byte string is valid; missing header bytes are 0):
 *   bytes 0-3   firstlineno, int32 little-endian
 *   bytes 4-7   offset, uint32 little-endian (code units)
 *   bytes 8-    the table
 * The seed corpora (corpus/<target>/) are real tables of real code objects,
 * written by tools/gen_linetable_golden.py --corpus.
 *
 * Invariants checked for the input's offset, offset 0 and UINT32_MAX:
 *   status   AU_OK or AU_ERR_FORMAT, nothing else; on error the line is
 *            AU_LINE_NONE;
 *   bounds   the table is passed as an exact-size heap copy, so ASan reports
 *            any read outside it (before or after);
 *   determ   a second call gives the same status and line;
 *   diff     status and line equal those of a naive reference decoder,
 *            written separately below from the format documents (not from
 *            core/cpython/linetable.c): the lnotab_notes.txt pseudo-code, a
 *            range-list walk for 3.10, and a split-then-decode walk over the
 *            location entries;
 *   order    entries are visited in address order, and decoding stops at
 *            the entry that answers, so for offsets 0 <= o <= UINT32_MAX:
 *            a smaller offset is answered by the same or an earlier entry,
 *            and if a smaller offset fails (damage found on the way) every
 *            larger one fails too; UINT32_MAX is past the end of any table
 *            a fuzz input can hold (LINETABLE310 and LOCATIONS).
 * Any violation prints the case and aborts.
 */
#include "fuzz/fuzz_helpers.h"
#include "fuzz/linetable_fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/run_from_workspace.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    au_fuzz_run_from_workspace();
    return 0;
}

/* --- Reference decoders ------------------------------------------------- */
/* Deliberately naive and independent of core/cpython/linetable.c.  Each reports the
 * index of the entry (pair) that answered, or -1 when the walk ran off the
 * table, for the monotonicity check. */

typedef struct ref_result {
    int status;
    int32_t line;
    long entry; /* index of the answering entry, -1 = ran off the table */
} ref_result;

static ref_result ref_fail(void) {
    ref_result r = {AU_ERR_FORMAT, AU_LINE_NONE, -1};
    return r;
}

static int fits32(long long v) { return v >= INT32_MIN && v <= INT32_MAX; }

/* Objects/lnotab_notes.txt (3.9), literally:
 *   lineno = addr = 0   (lineno starts at co_firstlineno)
 *   for addr_incr, line_incr in co_lnotab:
 *       addr += addr_incr
 *       if addr > A: return lineno
 *       if line_incr >= 0x80: line_incr -= 0x100
 *       lineno += line_incr                                              */
static ref_result ref_lnotab(const uint8_t *t, size_t len, int32_t first,
                             uint32_t offset) {
    if (len & 1) return ref_fail();
    long long lineno = first, addr = 0, a = 2LL * offset;
    ref_result r = {AU_OK, 0, -1};
    for (size_t k = 0; k < len / 2; k++) {
        addr += t[2 * k];
        if (addr > a) {
            r.entry = (long)k;
            break;
        }
        long long incr = t[2 * k + 1];
        if (incr >= 0x80) incr -= 0x100;
        lineno += incr;
        if (!fits32(lineno)) return ref_fail();
    }
    r.line = (int32_t)lineno;
    return r;
}

/* PEP 626 (3.10): build the list of non-empty ranges [start, end) in bytes
 * with their lines, then look the byte address up in it. */
static ref_result ref_linetable310(const uint8_t *t, size_t len,
                                   int32_t first, uint32_t offset) {
    if (len & 1) return ref_fail();
    long long computed = first, start = 0, a = 2LL * offset;
    for (size_t k = 0; k < len / 2; k++) {
        long long end = start + t[2 * k];
        int no_line = t[2 * k + 1] == 128;
        if (!no_line) {
            computed += t[2 * k + 1] < 128 ? t[2 * k + 1] : t[2 * k + 1] - 256;
            if (!fits32(computed)) return ref_fail();
        }
        if (end > start && start <= a && a < end) {
            ref_result r = {AU_OK, no_line ? -1 : (int32_t)computed, (long)k};
            return r;
        }
        start = end;
    }
    ref_result r = {AU_OK, AU_LINE_NONE, -1};
    return r;
}

/* Location table (Objects/locations.md): first find where every entry
 * starts (bytes with bit 7), then decode entry after entry. */
static ref_result ref_locations(const uint8_t *t, size_t len, int32_t first,
                                uint32_t offset) {
    if (len == 0) {
        ref_result r = {AU_OK, AU_LINE_NONE, -1};
        return r;
    }
    if (t[0] < 128) return ref_fail();
    long long line = first, unit = 0;
    long entry = 0;
    for (size_t s = 0; s < len; entry++) {
        size_t e = s + 1; /* one past the entry's last byte */
        while (e < len && t[e] < 128) e++;
        int code = (t[s] >> 3) & 15;
        long long delta = 0;
        if (code == 13 || code == 14) {
            /* Collect the chunks first, then assemble them. */
            unsigned chunks[8];
            size_t n = 0, p = s + 1;
            for (;;) {
                if (p >= e || n == 6) return ref_fail();
                chunks[n++] = t[p] & 63;
                if (!(t[p++] & 64)) break;
            }
            unsigned long long v = 0;
            while (n > 0) v = v * 64 + chunks[--n];
            if (v > 0xffffffffULL) return ref_fail();
            delta = (long long)(v / 2);
            if (v % 2) delta = -delta;
        } else if (code >= 10 && code <= 12) {
            delta = code - 10;
        }
        line += delta;
        if (!fits32(line)) return ref_fail();
        long long next = unit + (t[s] & 7) + 1;
        if (offset >= unit && offset < next) {
            ref_result r = {AU_OK, code == 15 ? -1 : (int32_t)line, entry};
            return r;
        }
        unit = next;
        s = e;
    }
    ref_result r = {AU_OK, AU_LINE_NONE, -1};
    return r;
}

static ref_result ref_line(au_linetable_kind kind, const uint8_t *t,
                           size_t len, int32_t first, uint32_t offset) {
    switch (kind) {
    case AU_LT_LNOTAB: return ref_lnotab(t, len, first, offset);
    case AU_LT_LINETABLE310: return ref_linetable310(t, len, first, offset);
    default: return ref_locations(t, len, first, offset);
    }
}

/* --- The harness ---------------------------------------------------------- */

static void die(const char *what, au_linetable_kind kind, int32_t first,
                uint32_t offset, size_t len, int rc, int32_t line,
                ref_result ref) {
    fprintf(stderr,
            "linetable_fuzz: %s (kind %d, firstlineno %d, offset %u, len %zu):"
            " core rc %d line %d, reference rc %d line %d entry %ld\n",
            what, (int)kind, first, offset, len, rc, line, ref.status,
            ref.line, ref.entry);
    abort();
}

/* One offset: status, determinism, differential.  Returns the reference. */
static ref_result check(au_linetable_kind kind, const uint8_t *t, size_t len,
                        int32_t first, uint32_t offset) {
    int32_t line = 777, again = 888;
    int rc = au_linetable_line(kind, t, len, first, offset, &line);
    int rc2 = au_linetable_line(kind, t, len, first, offset, &again);
    ref_result ref = ref_line(kind, t, len, first, offset);
    if (rc != AU_OK && rc != AU_ERR_FORMAT)
        die("unexpected status", kind, first, offset, len, rc, line, ref);
    if (rc != AU_OK && line != AU_LINE_NONE)
        die("error left a line", kind, first, offset, len, rc, line, ref);
    if (rc2 != rc || again != line)
        die("not deterministic", kind, first, offset, len, rc, line, ref);
    if (rc != ref.status || line != ref.line)
        die("differs from the reference", kind, first, offset, len, rc, line,
            ref);
    return ref;
}

int au_linetable_fuzz_one(au_linetable_kind kind, const uint8_t *data,
                          size_t size) {
    /* Two's complement conversion done by hand: out-of-range unsigned to
     * signed is implementation-defined. */
    uint32_t ufirst = fh_u32_at(data, size, 0);
    int32_t first = ufirst <= INT32_MAX ? (int32_t)ufirst
                                        : (int32_t)(ufirst - 0x80000000u) + INT32_MIN;
    uint32_t offset = fh_u32_at(data, size, 4);
    size_t len = size > 8 ? size - 8 : 0;

    /* An exact-size copy: ASan then sees reads on either side of it. */
    uint8_t *t = malloc(len ? len : 1);
    if (t == NULL) return 0;
    if (len) memcpy(t, data + 8, len);

    ref_result at = check(kind, t, len, first, offset);
    ref_result at0 = check(kind, t, len, first, 0);
    ref_result far = check(kind, t, len, first, UINT32_MAX);

    /* order (see the top of the file). */
    if (at0.status == AU_OK && at.status == AU_OK && at.entry >= 0 &&
        (at0.entry < 0 || at0.entry > at.entry))
        die("offset 0 answered after a larger offset", kind, first, offset,
            len, at0.status, at0.line, at);
    if ((at.status == AU_OK && at0.status != AU_OK) ||
        (far.status == AU_OK && at.status != AU_OK))
        die("a larger offset succeeded where a smaller failed", kind, first,
            offset, len, at.status, at.line, far);
    if (far.status == AU_OK && far.entry >= 0 && kind != AU_LT_LNOTAB)
        die("UINT32_MAX answered by an entry", kind, first, offset, len,
            far.status, far.line, far);
    free(t);
    return 0;
}
