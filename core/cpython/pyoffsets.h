/*
 * CPython data layouts, as data.
 *
 * Everything the walker needs to know about where CPython keeps a thing
 * (an offset inside a private struct, a struct size, an enum value, a
 * bitfield position) for CPython 3.9 through 3.15, one au_py_offsets per
 * minor version.  The walker has ONE code path for every version; where
 * versions differ in more than numbers (the instruction position, the
 * generator state, the current-frame indirection) a small enum or an
 * optional offset in this struct says which variant applies.
 *
 * The tables live in pyoffsets_table.c, which tools/gen_offsets.sh
 * generates by compiling tools/offsets_probe.c against each version's own
 * headers (including the private ones, Include/internal/).  Do not edit it
 * by hand; see docs/OFFSETS.md.
 *
 * Precedence.  CPython 3.13+ publishes most of these offsets in the target
 * itself: _Py_DebugOffsets, at offset 0 of _PyRuntime (cookie "xdebugpy").
 * Private layouts can change in a patch release (3.14 patch releases did),
 * so a reader attached to a 3.13+ target reads that blob and calls
 * au_py_offsets_apply_debug(): published values win over compiled ones.
 * Facts that are not published (enum values, bitfields, the stack-ref tag,
 * the datastack fields, ...) come from the compiled table only.
 *
 * Build assumptions (AU_PY_FLAG_* below): x86-64 / aarch64 LP64
 * little-endian, and the default CPython build only: no Py_DEBUG, no
 * Py_TRACE_REFS (which adds two pointers to every object header), no free
 * threading (Py_GIL_DISABLED, 3.13t+, changes object headers, the unicode
 * state bits and _PyInterpreterFrame).  A free-threaded 3.13+ target is
 * recognised through _Py_DebugOffsets.free_threaded and refused.
 *
 * Conventions for every field below:
 *  - Offsets are in bytes from the start of the named C struct and are
 *    uint32_t; AU_PYOFF_ABSENT (not 0: 0 is a valid offset) marks a field
 *    the version does not have.  "≤3.10" etc. give the versions in which a
 *    field is present; outside them it is AU_PYOFF_ABSENT.
 *  - Small signed enum values are int8_t; AU_PY_VALUE_NONE marks "no such
 *    value in this version".
 *  - Bit positions are uint8_t; AU_PY_BIT_NONE marks "no such bit".
 *
 * Pure data: no allocation, no state.
 */
#ifndef ASYNCUNWIND_PYOFFSETS_H
#define ASYNCUNWIND_PYOFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "asyncunwind.h"
#include "linetable.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AU_PYOFF_ABSENT UINT32_MAX /* offset: the field does not exist */
#define AU_PY_VALUE_NONE (-128)    /* int8 enum value: does not exist */
#define AU_PY_BIT_NONE 0xFFu       /* bit position: does not exist */

/* Debug-offset values larger than this are refused as implausible (the
 * largest real value, sizeof(_PyRuntimeState) in 3.15, is ~340 KiB). */
#define AU_PY_DEBUG_MAX_VALUE (1u << 24)

/* How the frame's instruction position is stored (field frame_instr). */
typedef enum au_py_instr_kind {
    /* 3.9: int f_lasti of the PyFrameObject, in BYTES from the start of
     * the bytecode (co_code's bytes); -1 before the first instruction. */
    AU_PY_INSTR_BYTE_LASTI = 1,
    /* 3.10: int f_lasti, in 2-byte CODE UNITS; -1 before the first. */
    AU_PY_INSTR_UNIT_LASTI = 2,
    /* 3.11-3.12: _Py_CODEUNIT *prev_instr: the address of the last
     * instruction started (the code unit before the first instruction,
     * code + code_code_adaptive - 2, when none has run).
     * Code units = (prev_instr - (code + code_code_adaptive)) / 2. */
    AU_PY_INSTR_PREV_INSTR = 3,
    /* 3.13+: _Py_CODEUNIT *instr_ptr: the instruction executing or about
     * to begin.  Code units = (instr_ptr - (code + code_code_adaptive))/2. */
    AU_PY_INSTR_INSTR_PTR = 4,
} au_py_instr_kind;

/* Where a generator/coroutine keeps its state (field gen_state). */
typedef enum au_py_gen_state_kind {
    /* 3.9: char gi_running in the generator: 1 while executing, else 0.
     * A finished generator has gi_frame == NULL; a created one has a frame
     * whose f_lasti is -1. */
    AU_PY_GEN_STATE_RUNNING = 1,
    /* 3.10: signed char f_state in the generator's PyFrameObject (gen_frame
     * points to it; NULL once finished), values gen_state_* below. */
    AU_PY_GEN_STATE_FRAME = 2,
    /* 3.11+: int8_t gi_frame_state in the generator, values gen_state_*. */
    AU_PY_GEN_STATE_GEN = 3,
} au_py_gen_state_kind;

/* flags */
/* Describes a default build (release, GIL, no Py_TRACE_REFS, LP64 little-
 * endian).  Every compiled table has it; it is the only build supported. */
#define AU_PY_FLAG_DEFAULT_BUILD 0x1u
/* The entry was patched from the target's _Py_DebugOffsets. */
#define AU_PY_FLAG_FROM_DEBUG_OFFSETS 0x2u

/* One value of _Py_DebugOffsets that overrides a field of au_py_offsets. */
typedef struct au_py_debug_field {
    uint16_t field;   /* offsetof(au_py_offsets, <field>); a uint32_t field */
    uint16_t pos;     /* byte offset of the uint64_t in _Py_DebugOffsets */
    const char *name;         /* "<field>", for diagnostics */
    const char *published_as; /* e.g. "thread_state.current_frame" */
} au_py_debug_field;

/* The layout of one minor version's _Py_DebugOffsets (3.13+).  Stable
 * within a minor version (CPython's promise, pycore_runtime.h / 3.14's
 * pycore_debug_offsets.h); it changes between minor versions. */
typedef struct au_py_debug_layout {
    uint32_t size;              /* sizeof(_Py_DebugOffsets) */
    uint16_t cookie_pos;        /* char cookie[8] == "xdebugpy" (no NUL) */
    uint16_t version_pos;       /* uint64_t version: PY_VERSION_HEX */
    uint16_t free_threaded_pos; /* uint64_t free_threaded: 0 or 1 */
    uint16_t nfields;
    const au_py_debug_field *fields; /* ascending pos */
} au_py_debug_layout;

/* The _Py_DebugOffsets cookie (8 bytes, not NUL-terminated in the target). */
#define AU_PY_DEBUG_COOKIE "xdebugpy"
#define AU_PY_DEBUG_COOKIE_LEN 8u

typedef struct au_py_offsets {
    /* ---- identity ------------------------------------------------------ */
    uint32_t version_hex;  /* PY_VERSION_HEX of the headers the entry was
                            * generated from, or of the target once
                            * au_py_offsets_apply_debug() has run */
    uint32_t flags;        /* AU_PY_FLAG_* */
    const char *name;      /* "3.13" */
    const char *headers;   /* exact version of the generating headers */

    /* ---- _PyRuntimeState (the _PyRuntime symbol) ----------------------- */
    uint32_t sizeof_runtime;             /* sizeof(_PyRuntimeState), all */
    uint32_t runtime_interpreters_head;  /* interpreters.head, all */
    uint32_t runtime_debug_offsets;      /* debug_offsets (_Py_DebugOffsets);
                                          * 0 in 3.13+, absent ≤3.12 */

    /* ---- PyInterpreterState -------------------------------------------- */
    uint32_t sizeof_interp;        /* sizeof(PyInterpreterState), all */
    uint32_t interp_next;          /* next, all */
    uint32_t interp_threads_head;  /* newest PyThreadState: tstate_head in
                                    * 3.9-3.10, threads.head in 3.11+ */
    uint32_t interp_id;            /* int64_t id, all */

    /* ---- PyThreadState ------------------------------------------------- */
    uint32_t sizeof_tstate;        /* sizeof(PyThreadState), all */
    uint32_t tstate_prev;          /* prev, all */
    uint32_t tstate_next;          /* next, all */
    uint32_t tstate_interp;        /* interp, all */
    /* The thread's current frame, read as: p = *(tstate + tstate_frame);
     * then, when cframe_current_frame is present,
     * p = *(p + cframe_current_frame).  p is a PyFrameObject * (≤3.10,
     * field `frame`) or a _PyInterpreterFrame * (3.11-3.12 via the
     * `cframe` pointer to a _PyCFrame; 3.13+ field `current_frame`). */
    uint32_t tstate_frame;         /* frame / cframe / current_frame, all */
    uint32_t cframe_current_frame; /* _PyCFrame.current_frame, 3.11-3.12
                                    * only (3.10's CFrame holds no frame) */
    uint32_t tstate_thread_id;     /* unsigned long thread_id
                                    * (pthread_self()), all */
    uint32_t tstate_native_thread_id; /* unsigned long native_thread_id
                                       * (the Linux TID), 3.11+ */
    uint32_t tstate_datastack_chunk;  /* _PyStackChunk *, 3.11+ */
    uint32_t tstate_datastack_top;    /* PyObject **: first free slot of
                                       * the current chunk, 3.11+ */
    uint32_t tstate_datastack_limit;  /* end of the chunk's usable space,
                                       * 3.11+ */

    /* ---- _PyStackChunk (frames of 3.11+ live in these) ------------------ */
    uint32_t chunk_previous;   /* previous, 3.11+ */
    uint32_t chunk_size;       /* size_t size: total bytes incl. header */
    uint32_t chunk_top;        /* size_t top: slots in use, saved when a
                                * newer chunk becomes current */
    uint32_t chunk_data;       /* data[]: first frame's bytes */

    /* ---- frames --------------------------------------------------------
     * "frame" is what the thread's frame chain links: PyFrameObject in
     * ≤3.10, _PyInterpreterFrame in 3.11+. */
    uint32_t frame_previous;    /* f_back (≤3.10) / previous (3.11+), all */
    uint32_t frame_code;        /* PyCodeObject *: f_code (≤3.12); 3.13+
                                 * f_executable (a code object, or something
                                 * else for non-Python frames: check type);
                                 * 3.14+ a _PyStackRef: strip
                                 * frame_code_tag_mask first.  All. */
    uint32_t frame_instr;       /* instruction position, see instr_kind:
                                 * int f_lasti (≤3.10), prev_instr
                                 * (3.11-3.12), instr_ptr (3.13+).  All. */
    uint32_t frame_owner;       /* char owner, 3.11+ */
    uint32_t frame_header_size; /* bytes before the first local:
                                 * offsetof(localsplus) in 3.11+ (read this
                                 * much to get every field above);
                                 * offsetof(PyFrameObject, f_localsplus)
                                 * in ≤3.10 */

    /* ---- PyCodeObject --------------------------------------------------- */
    uint32_t sizeof_code;        /* sizeof(PyCodeObject): in 3.11+ the
                                  * bytecode starts within it (see below) */
    uint32_t code_name;          /* co_name (str), all */
    uint32_t code_qualname;      /* co_qualname (str), 3.11+ */
    uint32_t code_filename;      /* co_filename (str), all */
    uint32_t code_firstlineno;   /* int co_firstlineno, all */
    uint32_t code_linetable;     /* bytes: co_lnotab (3.9), co_linetable
                                  * (3.10+); format per linetable_kind */
    uint32_t code_code;          /* co_code (a bytes object; the bytecode is
                                  * at its bytes_ob_sval), 3.9-3.10 only */
    uint32_t code_code_adaptive; /* co_code_adaptive: the bytecode, inline
                                  * in the code object, 3.11+ */

    /* ---- generic objects ---------------------------------------------- */
    uint32_t ob_type;        /* PyObject.ob_type, all */
    uint32_t var_ob_size;    /* PyVarObject.ob_size, all */
    uint32_t type_tp_name;   /* PyTypeObject.tp_name (const char *), all */
    uint32_t type_tp_flags;  /* unsigned long tp_flags, all */
    uint32_t bytes_ob_sval;  /* PyBytesObject.ob_sval, all */
    uint32_t tuple_ob_item;  /* PyTupleObject.ob_item, all (3.14+ has a
                              * cached hash before it) */
    uint32_t list_ob_item;   /* PyListObject.ob_item (PyObject **), all */

    /* ---- str (PyASCIIObject / PyCompactUnicodeObject) ------------------ */
    uint32_t unicode_length; /* Py_ssize_t length in code points, all */
    uint32_t unicode_state;  /* the state bitfield word: read 32 bits
                              * little-endian there; see unicode_*_shift */
    uint32_t sizeof_ascii;   /* sizeof(PyASCIIObject): the characters of a
                              * compact ASCII string follow it */
    uint32_t sizeof_compact; /* sizeof(PyCompactUnicodeObject): the
                              * characters of other compact strings follow */

    /* ---- generators / coroutines (PyGenObject == PyCoroObject layout) -- */
    uint32_t sizeof_gen;     /* sizeof(PyGenObject): in 3.11+ it includes
                              * the frame header and one local slot */
    uint32_t gen_name;       /* gi_name / cr_name (str), all */
    uint32_t gen_qualname;   /* gi_qualname / cr_qualname (str), all */
    uint32_t gen_code;       /* gi_code, 3.9-3.11 (3.12+: take the code
                              * from the embedded frame) */
    uint32_t gen_frame;      /* PyFrameObject *gi_frame, 3.9-3.10 (NULL
                              * once the generator has finished) */
    uint32_t gen_iframe;     /* the embedded _PyInterpreterFrame gi_iframe,
                              * 3.11+: a frame with owner
                              * frame_owner_generator lives at gen +
                              * gen_iframe, so gen = frame - gen_iframe */
    uint32_t gen_state;      /* 1-byte state, see gen_state_kind: gi_running
                              * in the generator (3.9), f_state in the
                              * PyFrameObject at gen_frame (3.10),
                              * gi_frame_state in the generator (3.11+) */

    /* ---- facts that are not offsets ------------------------------------ */
    /* Mask of tag bits to clear from frame_code's value (3.14+ stores a
     * _PyStackRef there: Py_TAG_BITS of the GIL build); 0 before. */
    uint64_t frame_code_tag_mask;
    /* Bit (1 << owner) set = frames with that owner are not Python frames
     * and are skipped by the walker: 0 in ≤3.11; FRAME_OWNED_BY_CSTACK (3)
     * in 3.12-3.13; FRAME_OWNED_BY_INTERPRETER (3) and FRAME_OWNED_BY_CSTACK
     * (4) in 3.14; FRAME_OWNED_BY_INTERPRETER (3) in 3.15, which dropped
     * CSTACK. */
    uint32_t frame_skip_owners;
    uint8_t instr_kind;          /* au_py_instr_kind */
    uint8_t linetable_kind;      /* au_linetable_kind (linetable.h) */
    uint8_t gen_state_kind;      /* au_py_gen_state_kind */
    /* enum _frameowner values, 3.11+ (AU_PY_VALUE_NONE before) */
    int8_t frame_owner_thread;        /* FRAME_OWNED_BY_THREAD */
    int8_t frame_owner_generator;     /* FRAME_OWNED_BY_GENERATOR */
    int8_t frame_owner_frame_object;  /* FRAME_OWNED_BY_FRAME_OBJECT */
    /* Generator states (values of the gen_state byte).  For
     * AU_PY_GEN_STATE_FRAME (3.10) and AU_PY_GEN_STATE_GEN (3.11+):
     *   created      FRAME_CREATED (never run)
     *   suspended    gen_state_suspended_min <= s <= gen_state_suspended_max
     *   yield-from   gen_state_suspended_yield_from (suspended in an
     *                await/yield from; 3.13+, AU_PY_VALUE_NONE before)
     *   executing    FRAME_EXECUTING
     *   finished     s >= gen_state_finished_min (FRAME_COMPLETED = 1 in
     *                3.11-3.14; FRAME_RETURNED = 1 in 3.10, where 2 and 3,
     *                UNWINDING and RAISED, count as finished too, as in
     *                _PyFrameHasCompleted; 3.15 has no COMPLETED state and
     *                a finished generator is FRAME_CLEARED)
     *   cleared      FRAME_CLEARED
     * The values were renumbered in 3.13 (CREATED -2 -> -3) and in 3.15
     * (all non-negative).  For AU_PY_GEN_STATE_RUNNING (3.9) only
     * suspended (0) and executing (1) exist; the rest are NONE. */
    int8_t gen_state_created;
    int8_t gen_state_suspended_min;
    int8_t gen_state_suspended_max;
    int8_t gen_state_suspended_yield_from;
    int8_t gen_state_executing;
    int8_t gen_state_finished_min;
    int8_t gen_state_cleared;
    /* Bitfields of the unicode state word (bit 0 = least significant bit
     * of the 32-bit little-endian word at unicode_state), measured by the
     * probe.  The same in every supported default build: interned bits
     * 0-1, kind 2-4 (1, 2 or 4 bytes per character), compact 5, ascii 6,
     * ready 7 in ≤3.11 (3.12 removed it: AU_PY_BIT_NONE).  Only
     * free-threaded 3.14+ builds differ (interned becomes a whole byte). */
    uint8_t unicode_interned_shift, unicode_interned_width;
    uint8_t unicode_kind_shift, unicode_kind_width;
    uint8_t unicode_compact_shift, unicode_compact_width;
    uint8_t unicode_ascii_shift, unicode_ascii_width;
    uint8_t unicode_ready_shift, unicode_ready_width;

    /* Layout of _Py_DebugOffsets (3.13+), NULL before. */
    const au_py_debug_layout *debug;
} au_py_offsets;

/* Supported range, as PY_VERSION_HEX major.minor. */
#define AU_PY_MIN_VERSION 0x03090000u
#define AU_PY_MAX_VERSION 0x030F0000u /* 3.15 */

/* The compiled-in entry for version_hex's major.minor (patch level, release
 * level and serial are ignored), or NULL for unsupported versions. */
const au_py_offsets *au_py_offsets_for(uint32_t version_hex);

/* The compiled-in entries in ascending version order; *n gets the count. */
const au_py_offsets *au_py_offsets_all(size_t *n);

/* The value of the uint32_t field at byte offset `field` of o (an
 * au_py_debug_field.field).  For tests and diagnostics. */
uint32_t au_py_offsets_field(const au_py_offsets *o, uint16_t field);

/*
 * Override base's published fields with a target's _Py_DebugOffsets.
 *
 * blob/len: the bytes at the target's _PyRuntime + runtime_debug_offsets;
 * at least base->debug->size of them.  The blob is untrusted: it is
 * validated as a whole before anything is written:
 *   - base has no debug layout (≤3.12) or NULL args: AU_ERR_ARG;
 *   - len < base->debug->size, or the cookie is not "xdebugpy":
 *     AU_ERR_FORMAT;
 *   - the version's major.minor differs from base's, or free_threaded is
 *     not 0: AU_ERR_UNSUPPORTED;
 *   - a value above AU_PY_DEBUG_MAX_VALUE: AU_ERR_CORRUPT.
 * On success *out = *base with every published field replaced, version_hex
 * set to the target's exact version and AU_PY_FLAG_FROM_DEBUG_OFFSETS set;
 * the return value is the number of fields whose value changed (>= 0).
 * On error *out is untouched.  out may equal base.
 */
int au_py_offsets_apply_debug(au_py_offsets *out, const au_py_offsets *base,
                              const void *blob, size_t len);

#ifdef __cplusplus
}
#endif

#endif
