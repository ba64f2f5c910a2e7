/*
 * offsets_probe.c: print the layout facts asyncunwind needs about one
 * CPython minor version, as measured by this compiler against that
 * version's own headers.
 *
 * Built and run by tools/gen_offsets.sh, once per header tree:
 *
 *   cc -std=c11 -DPy_BUILD_CORE -isystem <include/python3.X>
 *      -isystem <include/python3.X/internal> [-isystem <dir of the
 *      multiarch pyconfig.h>] tools/offsets_probe.c && ./a.out
 *
 * Output: one "name value" line per fact, in any order.  Names are the
 * field names of au_py_offsets (core/cpython/pyoffsets.h).  Values are numbers,
 * asyncunwind enum names (AU_PY_INSTR_*, AU_LT_*, AU_PY_GEN_STATE_*), or
 * one of ABSENT (offset field the version lacks: AU_PYOFF_ABSENT), NONE
 * (int8 value the version lacks: AU_PY_VALUE_NONE), BITNONE (bit position
 * the version lacks: AU_PY_BIT_NONE).  Special lines:
 *   "headers X.Y.Z"                PY_VERSION of the headers
 *   "dbg_size|dbg_*_pos N"         the _Py_DebugOffsets struct (3.13+)
 *   "dbg FIELD PUBLISHED_AS POS"   FIELD is published in _Py_DebugOffsets
 *                                  as the uint64_t PUBLISHED_AS at POS
 * The probe exits non-zero if a fact cannot be measured.
 *
 * This is a build tool, not part of the core: per-version #if blocks are
 * expected here.  The core itself only ever sees the resulting numbers.
 */
#define PY_SSIZE_T_CLEAN 1
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif

#include "Python.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(Py_DEBUG) || defined(Py_TRACE_REFS) || defined(Py_GIL_DISABLED)
#error "asyncunwind tables describe default (release, GIL) builds only"
#endif

#if PY_VERSION_HEX < 0x030B0000
#include "frameobject.h"
#endif
#include "internal/pycore_runtime.h"
#include "internal/pycore_interp.h"
#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_frame.h"
#endif
#if defined(__has_include)
#if __has_include("internal/pycore_interpframe_structs.h")
#include "internal/pycore_interpframe_structs.h"
#endif
#if __has_include("internal/pycore_debug_offsets.h")
#include "internal/pycore_debug_offsets.h"
#endif
#if __has_include("internal/pycore_stackref.h")
#include "internal/pycore_stackref.h"
#endif
#if __has_include("internal/pycore_genobject.h")
#include "internal/pycore_genobject.h"
#endif
#endif

#define P(name, value) printf("%s %lld\n", #name, (long long)(value))
#define ABSENT(name) printf("%s ABSENT\n", #name)
/* An enum value of asyncunwind's own (core/cpython/pyoffsets.h, linetable.h). */
#define SYM(name, symbol) printf("%s %s\n", #name, #symbol)
/* An int8 value this version does not have (AU_PY_VALUE_NONE). */
#define NONE(name) printf("%s NONE\n", #name)
#define OFF(name, type, member) P(name, offsetof(type, member))
#define SZ(name, type) P(name, sizeof(type))
/* A field of au_py_offsets published in _Py_DebugOffsets at dbgmember. */
#define DBG(name, dbgmember)                                                  \
    printf("dbg %s %s %lld\n", #name, #dbgmember,                            \
           (long long)offsetof(_Py_DebugOffsets, dbgmember))

/* Position and width of a bitfield: set every bit of it in a zeroed copy
 * of the containing struct and look at which bits of the 32-bit word at
 * `word_off` changed.  Bit numbers count from the least significant bit of
 * that word read little-endian (x86-64 and aarch64 are little-endian). */
static void bits(const char *name, const void *obj, size_t word_off) {
    const unsigned char *b = (const unsigned char *)obj + word_off;
    unsigned long w = (unsigned long)b[0] | (unsigned long)b[1] << 8 |
                      (unsigned long)b[2] << 16 | (unsigned long)b[3] << 24;
    int lo = -1, width = 0;
    for (int i = 0; i < 32; i++) {
        if (w & (1ul << i)) {
            if (lo < 0) lo = i;
            width++;
        }
    }
    if (lo < 0 || (((w >> lo) + 1) & (w >> lo)) != 0) {
        fprintf(stderr, "probe: %s is not one contiguous bitfield\n", name);
        exit(1);
    }
    printf("%s_shift %d\n%s_width %d\n", name, lo, name, width);
}

#define STATE_BITS(name, member, value)                                       \
    do {                                                                      \
        PyASCIIObject o;                                                      \
        memset(&o, 0, sizeof o);                                              \
        o.state.member = (value);                                             \
        bits(name, &o, offsetof(PyASCIIObject, state));                       \
    } while (0)

int main(void) {
    printf("headers %s\n", PY_VERSION);
    printf("version_hex 0x%08lX\n", (unsigned long)PY_VERSION_HEX);
    _Static_assert(sizeof(void *) == 8, "LP64 only");

    /* ---- _PyRuntimeState ---- */
    SZ(sizeof_runtime, _PyRuntimeState);
    OFF(runtime_interpreters_head, _PyRuntimeState, interpreters.head);
#if PY_VERSION_HEX >= 0x030D0000
    OFF(runtime_debug_offsets, _PyRuntimeState, debug_offsets);
#else
    ABSENT(runtime_debug_offsets);
#endif

    /* ---- PyInterpreterState ---- */
    SZ(sizeof_interp, PyInterpreterState);
    OFF(interp_next, PyInterpreterState, next);
#if PY_VERSION_HEX >= 0x030B0000
    OFF(interp_threads_head, PyInterpreterState, threads.head);
#else
    OFF(interp_threads_head, PyInterpreterState, tstate_head);
#endif
    OFF(interp_id, PyInterpreterState, id);

    /* ---- PyThreadState ---- */
    SZ(sizeof_tstate, PyThreadState);
    OFF(tstate_prev, PyThreadState, prev);
    OFF(tstate_next, PyThreadState, next);
    OFF(tstate_interp, PyThreadState, interp);
#if PY_VERSION_HEX >= 0x030D0000
    OFF(tstate_frame, PyThreadState, current_frame);
    ABSENT(cframe_current_frame);
#elif PY_VERSION_HEX >= 0x030B0000
    OFF(tstate_frame, PyThreadState, cframe);
    OFF(cframe_current_frame, _PyCFrame, current_frame);
#else
    OFF(tstate_frame, PyThreadState, frame);
    ABSENT(cframe_current_frame);
#endif
    OFF(tstate_thread_id, PyThreadState, thread_id);
    _Static_assert(sizeof(((PyThreadState *)0)->thread_id) == 8, "thread_id");
#if PY_VERSION_HEX >= 0x030B0000
    OFF(tstate_native_thread_id, PyThreadState, native_thread_id);
    OFF(tstate_datastack_chunk, PyThreadState, datastack_chunk);
    OFF(tstate_datastack_top, PyThreadState, datastack_top);
    OFF(tstate_datastack_limit, PyThreadState, datastack_limit);
    OFF(chunk_previous, _PyStackChunk, previous);
    OFF(chunk_size, _PyStackChunk, size);
    OFF(chunk_top, _PyStackChunk, top);
    OFF(chunk_data, _PyStackChunk, data);
#else
    ABSENT(tstate_native_thread_id);
    ABSENT(tstate_datastack_chunk);
    ABSENT(tstate_datastack_top);
    ABSENT(tstate_datastack_limit);
    ABSENT(chunk_previous);
    ABSENT(chunk_size);
    ABSENT(chunk_top);
    ABSENT(chunk_data);
#endif

    /* ---- frames ---- */
#if PY_VERSION_HEX >= 0x030B0000
    OFF(frame_previous, _PyInterpreterFrame, previous);
#if PY_VERSION_HEX >= 0x030D0000
    OFF(frame_code, _PyInterpreterFrame, f_executable);
    OFF(frame_instr, _PyInterpreterFrame, instr_ptr);
    SYM(instr_kind, AU_PY_INSTR_INSTR_PTR);
#else
    OFF(frame_code, _PyInterpreterFrame, f_code);
    OFF(frame_instr, _PyInterpreterFrame, prev_instr);
    SYM(instr_kind, AU_PY_INSTR_PREV_INSTR);
#endif
    OFF(frame_owner, _PyInterpreterFrame, owner);
    _Static_assert(sizeof(((_PyInterpreterFrame *)0)->owner) == 1, "owner");
    OFF(frame_header_size, _PyInterpreterFrame, localsplus);
    P(frame_owner_thread, FRAME_OWNED_BY_THREAD);
    P(frame_owner_generator, FRAME_OWNED_BY_GENERATOR);
    P(frame_owner_frame_object, FRAME_OWNED_BY_FRAME_OBJECT);
#if PY_VERSION_HEX >= 0x030F0000
    /* 3.15: FRAME_OWNED_BY_CSTACK is gone; only the interpreter's entry
     * frames are to be skipped. */
    P(frame_skip_owners, 1u << FRAME_OWNED_BY_INTERPRETER);
#elif PY_VERSION_HEX >= 0x030E0000
    /* 3.14: interpreter entry frames and the C-stack shims. */
    P(frame_skip_owners,
      (1u << FRAME_OWNED_BY_INTERPRETER) | (1u << FRAME_OWNED_BY_CSTACK));
#elif PY_VERSION_HEX >= 0x030C0000
    P(frame_skip_owners, 1u << FRAME_OWNED_BY_CSTACK);
#else
    P(frame_skip_owners, 0);
#endif
#if PY_VERSION_HEX >= 0x030E0000
    P(frame_code_tag_mask, Py_TAG_BITS);
#else
    P(frame_code_tag_mask, 0);
#endif
#else /* <= 3.10: PyFrameObject */
    OFF(frame_previous, PyFrameObject, f_back);
    OFF(frame_code, PyFrameObject, f_code);
    OFF(frame_instr, PyFrameObject, f_lasti);
    _Static_assert(sizeof(((PyFrameObject *)0)->f_lasti) == 4, "f_lasti");
#if PY_VERSION_HEX >= 0x030A0000
    SYM(instr_kind, AU_PY_INSTR_UNIT_LASTI);
#else
    SYM(instr_kind, AU_PY_INSTR_BYTE_LASTI);
#endif
    ABSENT(frame_owner);
    OFF(frame_header_size, PyFrameObject, f_localsplus);
    NONE(frame_owner_thread);
    NONE(frame_owner_generator);
    NONE(frame_owner_frame_object);
    P(frame_skip_owners, 0);
    P(frame_code_tag_mask, 0);
#endif

    /* ---- PyCodeObject ---- */
    SZ(sizeof_code, PyCodeObject);
    OFF(code_name, PyCodeObject, co_name);
    OFF(code_filename, PyCodeObject, co_filename);
    OFF(code_firstlineno, PyCodeObject, co_firstlineno);
    _Static_assert(sizeof(((PyCodeObject *)0)->co_firstlineno) == 4, "lineno");
#if PY_VERSION_HEX >= 0x030B0000
    OFF(code_qualname, PyCodeObject, co_qualname);
    OFF(code_linetable, PyCodeObject, co_linetable);
    ABSENT(code_code);
    OFF(code_code_adaptive, PyCodeObject, co_code_adaptive);
    SYM(linetable_kind, AU_LT_LOCATIONS);
#elif PY_VERSION_HEX >= 0x030A0000
    ABSENT(code_qualname);
    OFF(code_linetable, PyCodeObject, co_linetable);
    OFF(code_code, PyCodeObject, co_code);
    ABSENT(code_code_adaptive);
    SYM(linetable_kind, AU_LT_LINETABLE310);
#else
    ABSENT(code_qualname);
    OFF(code_linetable, PyCodeObject, co_lnotab);
    OFF(code_code, PyCodeObject, co_code);
    ABSENT(code_code_adaptive);
    SYM(linetable_kind, AU_LT_LNOTAB);
#endif

    /* ---- generic objects ---- */
    OFF(ob_type, PyObject, ob_type);
    OFF(var_ob_size, PyVarObject, ob_size);
    OFF(type_tp_name, PyTypeObject, tp_name);
    OFF(type_tp_flags, PyTypeObject, tp_flags);
    OFF(bytes_ob_sval, PyBytesObject, ob_sval);
    OFF(tuple_ob_item, PyTupleObject, ob_item);
    OFF(list_ob_item, PyListObject, ob_item);

    /* ---- str ---- */
    OFF(unicode_length, PyASCIIObject, length);
    OFF(unicode_state, PyASCIIObject, state);
    SZ(sizeof_ascii, PyASCIIObject);
    SZ(sizeof_compact, PyCompactUnicodeObject);
    STATE_BITS("unicode_interned", interned, 3);
    STATE_BITS("unicode_kind", kind, 7);
    STATE_BITS("unicode_compact", compact, 1);
    STATE_BITS("unicode_ascii", ascii, 1);
#if PY_VERSION_HEX < 0x030C0000
    STATE_BITS("unicode_ready", ready, 1);
#else
    printf("unicode_ready_shift BITNONE\nunicode_ready_width 0\n");
#endif

    /* ---- generators / coroutines ---- */
    SZ(sizeof_gen, PyGenObject);
    OFF(gen_name, PyGenObject, gi_name);
    OFF(gen_qualname, PyGenObject, gi_qualname);
    /* PyCoroObject shares the header: check the coroutine layout agrees. */
    _Static_assert(offsetof(PyCoroObject, cr_name) ==
                       offsetof(PyGenObject, gi_name), "coro layout");
#if PY_VERSION_HEX >= 0x030B0000
    ABSENT(gen_frame);
    OFF(gen_iframe, PyGenObject, gi_iframe);
    _Static_assert(offsetof(PyCoroObject, cr_iframe) ==
                       offsetof(PyGenObject, gi_iframe), "coro layout");
    OFF(gen_state, PyGenObject, gi_frame_state);
    _Static_assert(sizeof(((PyGenObject *)0)->gi_frame_state) == 1, "state");
    SYM(gen_state_kind, AU_PY_GEN_STATE_GEN);
    P(gen_state_created, FRAME_CREATED);
    P(gen_state_executing, FRAME_EXECUTING);
    P(gen_state_cleared, FRAME_CLEARED);
#if PY_VERSION_HEX >= 0x030F0000
    /* 3.15 renumbered the states and dropped FRAME_COMPLETED: a finished
     * generator is FRAME_CLEARED. */
    P(gen_state_suspended_min, FRAME_SUSPENDED);
    P(gen_state_suspended_max, FRAME_SUSPENDED_YIELD_FROM_LOCKED);
    P(gen_state_suspended_yield_from, FRAME_SUSPENDED_YIELD_FROM);
    P(gen_state_finished_min, FRAME_CLEARED);
#elif PY_VERSION_HEX >= 0x030D0000
    P(gen_state_suspended_min, FRAME_SUSPENDED);
    P(gen_state_suspended_max, FRAME_SUSPENDED_YIELD_FROM);
    P(gen_state_suspended_yield_from, FRAME_SUSPENDED_YIELD_FROM);
    P(gen_state_finished_min, FRAME_COMPLETED);
#else
    P(gen_state_suspended_min, FRAME_SUSPENDED);
    P(gen_state_suspended_max, FRAME_SUSPENDED);
    NONE(gen_state_suspended_yield_from);
    P(gen_state_finished_min, FRAME_COMPLETED);
#endif
#else
    OFF(gen_frame, PyGenObject, gi_frame);
    ABSENT(gen_iframe);
    _Static_assert(offsetof(PyCoroObject, cr_frame) ==
                       offsetof(PyGenObject, gi_frame), "coro layout");
#if PY_VERSION_HEX >= 0x030A0000
    OFF(gen_state, PyFrameObject, f_state);
    _Static_assert(sizeof(((PyFrameObject *)0)->f_state) == 1, "state");
    SYM(gen_state_kind, AU_PY_GEN_STATE_FRAME);
    P(gen_state_created, FRAME_CREATED);
    P(gen_state_executing, FRAME_EXECUTING);
    P(gen_state_cleared, FRAME_CLEARED);
    P(gen_state_suspended_min, FRAME_SUSPENDED);
    P(gen_state_suspended_max, FRAME_SUSPENDED);
    NONE(gen_state_suspended_yield_from);
    /* _PyFrameHasCompleted(f) is f_state > FRAME_EXECUTING. */
    P(gen_state_finished_min, FRAME_RETURNED);
#else
    OFF(gen_state, PyGenObject, gi_running);
    _Static_assert(sizeof(((PyGenObject *)0)->gi_running) == 1, "running");
    SYM(gen_state_kind, AU_PY_GEN_STATE_RUNNING);
    /* gi_running is 0 or 1; "created" and "finished" are not in it. */
    NONE(gen_state_created);
    P(gen_state_executing, 1);
    NONE(gen_state_cleared);
    P(gen_state_suspended_min, 0);
    P(gen_state_suspended_max, 0);
    NONE(gen_state_suspended_yield_from);
    NONE(gen_state_finished_min);
#endif
#endif
#if PY_VERSION_HEX >= 0x030C0000
    ABSENT(gen_code);
#else
    OFF(gen_code, PyGenObject, gi_code);
#endif

    /* ---- _Py_DebugOffsets: where each published value sits ---- */
#if PY_VERSION_HEX >= 0x030D0000
    printf("dbg_size %zu\n", sizeof(_Py_DebugOffsets));
    printf("dbg_cookie_pos %zu\n", offsetof(_Py_DebugOffsets, cookie));
    printf("dbg_version_pos %zu\n", offsetof(_Py_DebugOffsets, version));
    printf("dbg_free_threaded_pos %zu\n",
           offsetof(_Py_DebugOffsets, free_threaded));
    DBG(sizeof_runtime, runtime_state.size);
    DBG(runtime_interpreters_head, runtime_state.interpreters_head);
    DBG(sizeof_interp, interpreter_state.size);
    DBG(interp_id, interpreter_state.id);
    DBG(interp_next, interpreter_state.next);
    DBG(interp_threads_head, interpreter_state.threads_head);
    DBG(sizeof_tstate, thread_state.size);
    DBG(tstate_prev, thread_state.prev);
    DBG(tstate_next, thread_state.next);
    DBG(tstate_interp, thread_state.interp);
    DBG(tstate_frame, thread_state.current_frame);
    DBG(tstate_thread_id, thread_state.thread_id);
    DBG(tstate_native_thread_id, thread_state.native_thread_id);
    DBG(tstate_datastack_chunk, thread_state.datastack_chunk);
    DBG(frame_previous, interpreter_frame.previous);
    DBG(frame_code, interpreter_frame.executable);
    DBG(frame_instr, interpreter_frame.instr_ptr);
    DBG(frame_header_size, interpreter_frame.localsplus);
    DBG(frame_owner, interpreter_frame.owner);
    DBG(sizeof_code, code_object.size);
    DBG(code_filename, code_object.filename);
    DBG(code_name, code_object.name);
    DBG(code_qualname, code_object.qualname);
    DBG(code_linetable, code_object.linetable);
    DBG(code_firstlineno, code_object.firstlineno);
    DBG(code_code_adaptive, code_object.co_code_adaptive);
    DBG(ob_type, pyobject.ob_type);
    DBG(type_tp_name, type_object.tp_name);
    DBG(type_tp_flags, type_object.tp_flags);
    DBG(tuple_ob_item, tuple_object.ob_item);
    DBG(list_ob_item, list_object.ob_item);
    DBG(var_ob_size, bytes_object.ob_size);
    DBG(bytes_ob_sval, bytes_object.ob_sval);
    DBG(unicode_state, unicode_object.state);
    DBG(unicode_length, unicode_object.length);
    DBG(sizeof_ascii, unicode_object.asciiobject_size);
#if PY_VERSION_HEX >= 0x030F0000
    DBG(sizeof_compact, unicode_object.compactunicodeobject_size);
#endif
#if PY_VERSION_HEX >= 0x030E0000
    DBG(sizeof_gen, gen_object.size);
    DBG(gen_name, gen_object.gi_name);
    DBG(gen_iframe, gen_object.gi_iframe);
    DBG(gen_state, gen_object.gi_frame_state);
#endif
#endif
    return 0;
}
