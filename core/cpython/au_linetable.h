/*
 * Line numbers from CPython line tables.
 *
 * A sampled frame gives us a code object and the position of the
 * instruction it is executing.  CPython turns that pair into frame.f_lineno
 * by walking the code object's line table; this layer does the same walk on
 * table bytes copied out of the target, so that the line we report is the
 * line CPython itself would report for that frame.
 *
 * Three table formats exist among the versions we support:
 *
 *   AU_LT_LNOTAB        3.9    co_lnotab: (byte-offset increment, signed line
 *                              increment) byte pairs, Objects/lnotab_notes.txt
 *                              of 3.9.
 *   AU_LT_LINETABLE310  3.10   co_linetable of PEP 626: (byte-length, signed
 *                              line delta) byte pairs, line delta -128 = "no
 *                              line", Objects/lnotab_notes.txt of 3.10.
 *   AU_LT_LOCATIONS     3.11+  co_linetable location entries (3.11 through
 *                              3.15 share one format), Objects/locations.md
 *                              (3.11-3.13), InternalDocs/locations.md (3.14+).
 *
 * The byte-level rules of each format are described in linetable.c.
 *
 * Everything here is pure: no allocation, no state, and the table bytes are
 * treated as hostile (any byte string gives AU_OK or AU_ERR_FORMAT, never a
 * read outside [table, table + len) and never undefined behaviour).
 */
#ifndef ASYNCUNWIND_LINETABLE_H
#define ASYNCUNWIND_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

#include "asyncunwind.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum au_linetable_kind {
    AU_LT_LNOTAB = 1,       /* CPython 3.9: code.co_lnotab */
    AU_LT_LINETABLE310 = 2, /* CPython 3.10: code.co_linetable */
    AU_LT_LOCATIONS = 3,    /* CPython 3.11 to 3.15: code.co_linetable */
} au_linetable_kind;

/* The line reported for an instruction that has none.  It is CPython's own
 * sentinel: PyCode_Addr2Line returns -1 there and frame.f_lineno is None. */
#define AU_LINE_NONE (-1)

/*
 * The line number CPython reports for the instruction at `offset`.
 *
 * offset: the instruction's position in CODE UNITS (2-byte units, i.e.
 *   sizeof(_Py_CODEUNIT)) from the start of the bytecode, for every kind.
 *   What to pass, per version:
 *     3.9    the frame's f_lasti counts BYTES: pass f_lasti / 2.
 *     3.10   the frame's f_lasti counts code units: pass it as is.
 *     3.11+  what CPython's _PyInterpreterFrame_LASTI computes, a
 *            _Py_CODEUNIT pointer difference (internal/pycore_frame.h,
 *            3.14+ internal/pycore_interpframe.h):
 *              3.11, 3.12  prev_instr - _PyCode_CODE(f_code)
 *              3.13        instr_ptr - _PyCode_CODE(code)
 *              3.14, 3.15  instr_ptr - _PyFrame_GetBytecode(frame) (the
 *                          thread's copy of the bytecode when free-threaded)
 *   (The Python-level attribute frame.f_lasti is in bytes in every one of
 *   these versions: divide it by 2.)
 *   A negative f_lasti / LASTI (a frame that has not run an instruction yet)
 *   has no offset: CPython reports code.co_firstlineno for it, and so should
 *   the caller, without calling this function.
 *
 * firstlineno: the code object's co_firstlineno.
 *
 * On AU_OK, *line is what CPython's PyCode_Addr2Line(code, 2 * offset)
 * returns, which is frame.f_lineno of a frame at that instruction (unless a
 * tracer has set f_lineno):
 *   - LNOTAB: an offset past the last pair gets the line of the last pair
 *     (3.9 has no "no line" marker, so the result is never AU_LINE_NONE
 *     unless the line arithmetic itself gives -1, as it would in CPython).
 *   - LINETABLE310 and LOCATIONS: an offset not covered by any entry (past
 *     the end of the table, or an empty table) and an offset covered by a
 *     "no line" entry both give AU_LINE_NONE.
 *
 * Errors (*line is then set to AU_LINE_NONE when line is not NULL):
 *   AU_ERR_ARG     line is NULL, table is NULL with len > 0, unknown kind.
 *   AU_ERR_FORMAT  the table cannot have come from CPython: an odd length
 *                  (LNOTAB, LINETABLE310); a first byte without its entry-
 *                  start bit, or a line-delta varint that is truncated, runs
 *                  into the next entry, or exceeds 32 bits (LOCATIONS); a
 *                  running line number that leaves the int32 range (all).
 *   Only the part of the table up to the entry that covers `offset` is
 *   decoded (as CPython does), so damage after that entry is not noticed.
 *
 * Cost: one pass over at most `len` bytes; no allocation.
 */
int au_linetable_line(au_linetable_kind kind, const uint8_t *table, size_t len,
                      int32_t firstlineno, uint32_t offset, int32_t *line);

/*
 * The table kind of CPython major.minor: AU_LT_LNOTAB for 3.9,
 * AU_LT_LINETABLE310 for 3.10, AU_LT_LOCATIONS for 3.11 to 3.15.  Any other
 * version gives AU_ERR_UNSUPPORTED (a future version may change the format,
 * so it is refused rather than guessed).
 */
int au_linetable_kind_for_version(int major, int minor);

#ifdef __cplusplus
}
#endif
#endif /* ASYNCUNWIND_LINETABLE_H */
