/*
 * CPython data layouts, as data.
 *
 * Everything the walker needs to know about where CPython keeps a thing
 * (an offset inside a private struct, a struct size, an enum value, a
 * bitfield position) for CPython 3.9 through 3.15, one au_py_offsets per
 * minor version (per patch level where two measured patch levels differ:
 * 3.13.0 and 3.13.18).  The walker has ONE code path for every version;
 * where versions differ in more than numbers (the instruction position,
 * the generator state, the current-frame indirection, the value stack)
 * a small enum or an optional offset in this struct says which variant
 * applies.  What no header of every version describes (asyncio's objects,
 * dict keys, ...) is in au_pyprivate.h, measured at run time.
 *
 * The tables live in pyoffsets_table.c, which tools/gen_offsets.sh
 * generates by compiling tools/offsets_probe.c against each version's own
 * headers (including the private ones, Include/internal/).  Do not edit it
 * by hand; see docs/OFFSETS.md.
 *
 * Precedence.  CPython 3.13+ publishes most of these offsets in the target
 * itself: _Py_DebugOffsets, at offset 0 of _PyRuntime (cookie "xdebugpy").
 * Private layouts can change in a patch release (3.13 and 3.14 patch
 * releases did), so a reader attached to a 3.13+ target reads that blob
 * and calls au_py_offsets_apply_debug(): published values win over
 * compiled ones.  Facts that are not published (enum values, bitfields,
 * the stack-ref tag, the datastack fields, ...) come from the compiled
 * table only, except the _PyThreadStateImpl fields, which move with the
 * published sizeof(PyThreadState).
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
#include "au_linetable.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AU_PYOFF_ABSENT UINT32_MAX /* offset: the field does not exist */
#define AU_PY_VALUE_NONE (-128)    /* int8 enum value: does not exist */
#define AU_PY_BIT_NONE 0xFFu       /* bit position: does not exist */

/* Whether a field exists in the target's version. */
static inline int au_pyoff_present(uint32_t off) { return off != AU_PYOFF_ABSENT; }

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

/* Where a frame keeps the top of its value stack (field frame_stacktop).
 * Slot i below the top (i = 1 is the top of stack, TOS) is read as: */
typedef enum au_py_stack_kind {
    /* 3.9: PyObject **f_stacktop of the PyFrameObject, one past TOS, NULL
     * while the frame executes.  3.14+: _PyStackRef *stackpointer of the
     * _PyInterpreterFrame, one past TOS; slots are _PyStackRefs: clear
     * frame_code_tag_mask from them.  Slot i is at *(frame + frame_stacktop)
     * - 8 * i. */
    AU_PY_STACK_TOP_PTR = 1,
    /* 3.10: PyObject **f_valuestack (first slot) and int f_stackdepth
     * (number of slots in use) of the PyFrameObject.  Slot i is at
     * *(frame + frame_valuestack) + 8 * (depth - i). */
    AU_PY_STACK_BASE_DEPTH = 2,
    /* 3.11-3.13: int stacktop of the _PyInterpreterFrame: the index of the
     * first free slot of localsplus[], which starts at frame +
     * frame_header_size.  Slot i is at frame + frame_header_size +
     * 8 * (stacktop - i). */
    AU_PY_STACK_LOCALSPLUS_INDEX = 3,
} au_py_stack_kind;

/* How to tell that a suspended generator/coroutine is delegating (yield
 * from / await) and find the object it waits on, "yf" (field yf_kind).
 * When the test passes, yf is stack slot yf_stack_depth (see
 * au_py_stack_kind).  Every kind first requires the generator to be
 * suspended (gen_state_* values; 3.9: gi_running == 0 and a non-NULL
 * gen_frame and f_stacktop).  Verified against live interpreters by
 * tools/probe_private.py (docs/OFFSETS.md). */
typedef enum au_py_yf_kind {
    /* 3.9-3.10: f_lasti >= 0 and the opcode of the NEXT instruction is
     * yf_op_yield_from.  The next instruction is at byte f_lasti + 2 (3.9,
     * instr_kind BYTE_LASTI) or 2 * (f_lasti + 1) (3.10, UNIT_LASTI) of
     * the co_code bytes. */
    AU_PY_YF_LASTI_OPCODE = 1,
    /* 3.11-3.12: the code unit after prev_instr (the little-endian 16-bit
     * word at prev_instr + 2: opcode in its low byte, oparg in its high
     * byte) has opcode yf_op_resume or yf_op_resume_alt and oparg >=
     * yf_resume_min_oparg. */
    AU_PY_YF_NEXT_RESUME = 2,
    /* 3.13+: the generator's state byte equals
     * gen_state_suspended_yield_from. */
    AU_PY_YF_STATE = 3,
} au_py_yf_kind;

/* How an int stores its sign and number of digits (field long_size). */
typedef enum au_py_long_kind {
    /* ≤3.11: Py_ssize_t ob_size: number of digits, negative for negative
     * numbers, 0 for zero. */
    AU_PY_LONG_SIGNED_SIZE = 1,
    /* 3.12+: uintptr_t lv_tag: number of digits << long_tag_size_shift,
     * sign in (lv_tag & long_tag_sign_mask): 0 positive,
     * long_tag_sign_zero, long_tag_sign_negative. */
    AU_PY_LONG_TAG = 2,
} au_py_long_kind;

/* An opcode value this version does not have. */
#define AU_PY_OPCODE_NONE 0xFFFFu

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
    uint32_t interp_modules;       /* sys.modules (a dict): modules in
                                    * ≤3.11, imports.modules in 3.12+ */
    uint32_t interp_asyncio_tasks_head; /* struct llist_node: asyncio tasks
                                    * left behind by threads that exited
                                    * (see tstate_asyncio_tasks_head), 3.14+ */

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
    uint32_t tstate_dict;          /* PyObject *dict: the thread's dict
                                    * (PyThreadState_GetDict), NULL until
                                    * first used; all.  ≤3.12 asyncio keeps
                                    * the running loop in it (au_pyprivate.h) */
    /* 3.13+ allocates every thread state as a _PyThreadStateImpl, which
     * starts with the PyThreadState and adds private fields; offsets below
     * are from the start of both. */
    uint32_t sizeof_tstate_impl;          /* sizeof(_PyThreadStateImpl),
                                           * 3.13+ */
    uint32_t tstate_asyncio_running_loop; /* PyObject *: the thread's
                                           * running event loop or NULL,
                                           * 3.13+ */
    uint32_t tstate_asyncio_running_task; /* PyObject *: the task running
                                           * on it, or NULL, 3.14+ */
    uint32_t tstate_asyncio_tasks_head;   /* struct llist_node: head of the
                                           * list of the thread's native
                                           * asyncio tasks (linked through
                                           * TaskObj.task_node, au_pyprivate.h),
                                           * 3.14+ */

    /* ---- struct llist_node (pycore_llist.h), 3.14+ ---------------------
     * A circular doubly-linked list: the head is a node embedded in the
     * owner; an empty list's head points to itself.  Members point to the
     * NODE embedded in the member (subtract the node's offset). */
    uint32_t llist_next;       /* struct llist_node *next */
    uint32_t llist_prev;       /* struct llist_node *prev */

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
    uint32_t frame_stacktop;    /* top of the value stack, see stack_kind:
                                 * f_stacktop (3.9), f_stackdepth (3.10),
                                 * stacktop (3.11-3.13), stackpointer
                                 * (3.14+).  All. */
    uint32_t frame_valuestack;  /* PyObject **f_valuestack: the first
                                 * value-stack slot, 3.9-3.10 */
    uint32_t frame_gen;         /* PyObject *f_gen: the generator owning
                                 * the frame, or NULL, 3.9-3.10 (3.11+:
                                 * frame - gen_iframe, see gen_iframe) */
    uint32_t frame_entry;       /* bool is_entry, 3.11 only: set on the
                                 * first frame of each interpreter call
                                 * (3.12+ put an entry frame there, one
                                 * of frame_skip_owners) */
    uint32_t frame_exec;        /* the byte that says a frame executes,
                                 * 3.9-3.10: f_executing (3.9), f_state
                                 * (3.10); its value then is
                                 * frame_exec_value */

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
    uint32_t type_tp_base;          /* PyTypeObject *tp_base, all */
    uint32_t type_tp_basicsize;     /* Py_ssize_t tp_basicsize, all */
    uint32_t type_tp_dictoffset;    /* Py_ssize_t tp_dictoffset: > 0: the
                                     * instance dict pointer is there; -1
                                     * with tpflags_managed_dict (3.11+):
                                     * see au_py_private.inst_kind; all */
    uint32_t type_tp_weaklistoffset; /* Py_ssize_t tp_weaklistoffset, all */
    uint32_t heaptype_cached_keys;  /* PyHeapTypeObject.ht_cached_keys: the
                                     * keys shared by the split instance
                                     * dicts / inline values of a class,
                                     * all */
    uint32_t type_tp_dict;          /* PyObject *tp_dict: a class's own
                                     * attributes (set for every class
                                     * defined in Python), all */
    uint32_t memberdescr_member;    /* PyMemberDescrObject.d_member
                                     * (PyMemberDef *): what a __slots__
                                     * name in a class's dict describes,
                                     * all */
    uint32_t memberdef_type;        /* int PyMemberDef.type, all */
    uint32_t memberdef_offset;      /* Py_ssize_t PyMemberDef.offset: where
                                     * the slot is in the instance, all */
    uint32_t memberdef_object_ex;   /* the type of a __slots__ member:
                                     * T_OBJECT_EX (Py_T_OBJECT_EX), all */
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

    /* ---- dict (PyDictObject; the keys object is in au_pyprivate.h) -------- */
    uint32_t sizeof_dict;    /* sizeof(PyDictObject), all */
    uint32_t dict_ma_used;   /* Py_ssize_t ma_used: number of items, all */
    uint32_t dict_ma_keys;   /* PyDictKeysObject *ma_keys, all */
    uint32_t dict_ma_values; /* ma_values: NULL for a combined table, else
                              * the split table's values (layout in
                              * au_pyprivate.h), all */

    /* ---- set (PySetObject) --------------------------------------------- */
    uint32_t set_used;       /* Py_ssize_t used: number of keys, all */
    uint32_t set_mask;       /* Py_ssize_t mask: table size - 1, all */
    uint32_t set_table;      /* setentry *table: mask + 1 entries, all.  An
                              * entry whose key is NULL is empty; one whose
                              * hash is -1 is a deleted slot (its key is the
                              * set's dummy object), skip both */
    uint32_t setentry_key;   /* setentry.key, all */
    uint32_t setentry_hash;  /* Py_hash_t setentry.hash, all */
    uint32_t sizeof_setentry;

    /* ---- small objects the asyncio model follows ------------------------ */
    uint32_t weakref_wr_object; /* PyWeakReference.wr_object: the referent;
                                 * Py_None once it died, all */
    uint32_t cell_ob_ref;       /* PyCellObject.ob_ref (NULL: empty), all */
    uint32_t func_code;         /* PyFunctionObject.func_code, all */
    uint32_t func_closure;      /* func_closure: NULL or a tuple of cells,
                                 * all */
    uint32_t func_qualname;     /* func_qualname (str), all */
    uint32_t method_im_func;    /* PyMethodObject (bound method) im_func,
                                 * all */
    uint32_t method_im_self;    /* PyMethodObject im_self, all */
    uint32_t cfunc_m_ml;        /* PyCFunctionObject.m_ml (PyMethodDef *),
                                 * all */
    uint32_t cfunc_m_self;      /* PyCFunctionObject.m_self: the bound
                                 * object of a builtin method, all */
    uint32_t methoddef_ml_name; /* PyMethodDef.ml_name (const char *), all */

    /* ---- int (PyLongObject), see long_kind ------------------------------ */
    uint32_t long_size;      /* ob_size (≤3.11) / long_value.lv_tag (3.12+),
                              * all */
    uint32_t long_digit;     /* ob_digit[] (≤3.11) / long_value.ob_digit[]
                              * (3.12+): uint32_t digits of long_digit_bits
                              * bits, least significant first, all */

    /* ---- facts that are not offsets ------------------------------------ */
    /* Mask of tag bits to clear from frame_code's value (3.14+ stores a
     * _PyStackRef there: Py_TAG_BITS of the GIL build); 0 before.  The
     * value-stack slots of 3.14+ are _PyStackRefs too: clear it from them. */
    uint64_t frame_code_tag_mask;
    /* Py_TPFLAGS_* bits (tp_flags), 0 in versions without them.
     * MANAGED_DICT (3.11+): the instance dict lives before the object;
     * INLINE_VALUES (3.13+): the instance attributes live after
     * tp_basicsize (see au_py_private.inst_kind). */
    uint32_t tpflags_managed_dict;
    uint32_t tpflags_inline_values;
    /* Opcodes of the yf test (yf_kind), AU_PY_OPCODE_NONE where unused:
     * YIELD_FROM (3.9-3.10); RESUME (3.11-3.12) and its alternative form:
     * RESUME_QUICK (3.11, quickened), INSTRUMENTED_RESUME (3.12). */
    uint16_t yf_op_yield_from;
    uint16_t yf_op_resume;
    uint16_t yf_op_resume_alt;
    uint8_t stack_kind;          /* au_py_stack_kind */
    uint8_t yf_kind;             /* au_py_yf_kind */
    /* Which value-stack slot holds yf: 1 = TOS in ≤3.14; 2 in 3.15, which
     * keeps one more value above it (_PyFrame_StackPeek(frame, 2)). */
    uint8_t yf_stack_depth;
    int8_t yf_resume_min_oparg;  /* 2 (3.11-3.12), else AU_PY_VALUE_NONE */
    uint8_t long_kind;           /* au_py_long_kind */
    uint8_t long_digit_bits;     /* PyLong_SHIFT: 30 */
    /* lv_tag fields, 3.12+ (AU_PY_VALUE_NONE before): sign mask 3, size
     * shift 3, sign values zero 1 and negative 2. */
    int8_t long_tag_sign_mask;
    int8_t long_tag_size_shift;
    int8_t long_tag_sign_zero;
    int8_t long_tag_sign_negative;
    /* Bit (1 << owner) set = frames with that owner are not Python frames
     * and are skipped by the walker: 0 in ≤3.11; FRAME_OWNED_BY_CSTACK (3)
     * in 3.12-3.13; FRAME_OWNED_BY_INTERPRETER (3) and FRAME_OWNED_BY_CSTACK
     * (4) in 3.14; FRAME_OWNED_BY_INTERPRETER (3) in 3.15, which dropped
     * CSTACK. */
    uint32_t frame_skip_owners;
    uint8_t instr_kind;          /* au_py_instr_kind */
    uint8_t linetable_kind;      /* au_linetable_kind (au_linetable.h) */
    uint8_t gen_state_kind;      /* au_py_gen_state_kind */
    /* enum _frameowner values, 3.11+ (AU_PY_VALUE_NONE before) */
    int8_t frame_owner_thread;        /* FRAME_OWNED_BY_THREAD */
    int8_t frame_owner_generator;     /* FRAME_OWNED_BY_GENERATOR */
    int8_t frame_owner_frame_object;  /* FRAME_OWNED_BY_FRAME_OBJECT */
    int8_t frame_exec_value;          /* see frame_exec (3.9: 1; 3.10:
                                       * FRAME_EXECUTING) */
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

/* A field of a layout table, by name, for tests and diagnostics (e.g.
 * comparing a table with a probe's output, printing it). */
typedef enum au_py_field_type {
    AU_PY_FT_U32 = 1, /* uint32_t offset/size/value (AU_PYOFF_ABSENT) */
    AU_PY_FT_I32,     /* int32_t signed offset (AU_PY_SOFF_ABSENT) */
    AU_PY_FT_I8,      /* int8_t value (AU_PY_VALUE_NONE) */
    AU_PY_FT_U8,      /* uint8_t kind, bit position or value */
    AU_PY_FT_U16,     /* uint16_t opcode (AU_PY_OPCODE_NONE) */
    AU_PY_FT_U64,     /* uint64_t mask */
    AU_PY_FT_STR,     /* const char * (NULL) */
} au_py_field_type;

typedef struct au_py_field_desc {
    const char *name;
    uint16_t offset; /* offsetof in its struct */
    uint8_t type;    /* au_py_field_type */
} au_py_field_desc;

/* The numeric fields of au_py_offsets (identity and debug excepted), in
 * declaration order; *n gets the count. */
const au_py_field_desc *au_py_offsets_fields(size_t *n);

/* A numeric field's value, widened; absent values come out as stored
 * (AU_PYOFF_ABSENT, AU_PY_VALUE_NONE, ...).  base points to the struct
 * the descriptor describes.  AU_PY_FT_STR gives 0. */
int64_t au_py_field_value(const void *base, const au_py_field_desc *d);

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
 * On success *out = *base with every published field replaced, the
 * _PyThreadStateImpl fields (sizeof_tstate_impl, tstate_asyncio_*) moved
 * by the published minus the compiled sizeof(PyThreadState) (a
 * _PyThreadStateImpl starts with a whole PyThreadState), version_hex set
 * to the target's exact version and AU_PY_FLAG_FROM_DEBUG_OFFSETS set;
 * the return value is the number of fields whose value changed (>= 0).
 * On error *out is untouched.  out may equal base.
 */
int au_py_offsets_apply_debug(au_py_offsets *out, const au_py_offsets *base,
                              const void *blob, size_t len);

#ifdef __cplusplus
}
#endif

#endif
