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
 * field names of au_py_offsets (core/cpython/au_pyoffsets.h).  Values are numbers,
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
#include "structmember.h" /* T_OBJECT_EX before 3.12 */
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
#if __has_include("internal/pycore_tstate.h")
#include "internal/pycore_tstate.h"
#endif
#if __has_include("internal/pycore_llist.h")
#include "internal/pycore_llist.h"
#endif
#if __has_include("internal/pycore_long.h")
#include "internal/pycore_long.h"
#endif
#if __has_include("opcode_ids.h")
#include "opcode_ids.h"
#endif
#endif
#include "opcode.h"
#if PY_VERSION_HEX < 0x030B0000
/* ≤3.10: PyLongObject is not reachable from Python.h. */
#include "longintrepr.h"
#endif

#define P(name, value) printf("%s %lld\n", #name, (long long)(value))
#define ABSENT(name) printf("%s ABSENT\n", #name)
/* An enum value of asyncunwind's own (core/cpython/au_pyoffsets.h, au_linetable.h). */
#define SYM(name, symbol) printf("%s %s\n", #name, #symbol)
/* An int8 value this version does not have (AU_PY_VALUE_NONE). */
#define NONE(name) printf("%s NONE\n", #name)
/* An opcode this version does not have (AU_PY_OPCODE_NONE). */
#define NOOP(name) printf("%s OPNONE\n", #name)
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
    /* 3.11: the byte that marks the first frame of an interpreter call. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    OFF(frame_entry, _PyInterpreterFrame, is_entry);
    _Static_assert(sizeof(((_PyInterpreterFrame *)0)->is_entry) == 1, "is_entry");
#else
    ABSENT(frame_entry);
#endif
    /* A byte of a <= 3.10 frame that says it is executing. */
#if PY_VERSION_HEX >= 0x030B0000
    ABSENT(frame_exec);
    NONE(frame_exec_value);
#elif PY_VERSION_HEX >= 0x030A0000
    OFF(frame_exec, PyFrameObject, f_state);
    P(frame_exec_value, FRAME_EXECUTING);
#else
    OFF(frame_exec, PyFrameObject, f_executing);
    _Static_assert(sizeof(((PyFrameObject *)0)->f_executing) == 1, "f_executing");
    P(frame_exec_value, 1);
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

    /* ---- interpreter / thread: what the asyncio model starts from ---- */
#if PY_VERSION_HEX >= 0x030C0000
    OFF(interp_modules, PyInterpreterState, imports.modules);
#else
    OFF(interp_modules, PyInterpreterState, modules);
#endif
    OFF(tstate_dict, PyThreadState, dict);
#if PY_VERSION_HEX >= 0x030D0000
    SZ(sizeof_tstate_impl, _PyThreadStateImpl);
    OFF(tstate_asyncio_running_loop, _PyThreadStateImpl, asyncio_running_loop);
#else
    ABSENT(sizeof_tstate_impl);
    ABSENT(tstate_asyncio_running_loop);
#endif
#if PY_VERSION_HEX >= 0x030E0000
    OFF(tstate_asyncio_running_task, _PyThreadStateImpl, asyncio_running_task);
    OFF(tstate_asyncio_tasks_head, _PyThreadStateImpl, asyncio_tasks_head);
    OFF(interp_asyncio_tasks_head, PyInterpreterState, asyncio_tasks_head);
    OFF(llist_next, struct llist_node, next);
    OFF(llist_prev, struct llist_node, prev);
#else
    ABSENT(tstate_asyncio_running_task);
    ABSENT(tstate_asyncio_tasks_head);
    ABSENT(interp_asyncio_tasks_head);
    ABSENT(llist_next);
    ABSENT(llist_prev);
#endif

    /* ---- a frame's value stack, and the awaited object ("yf") ---- */
#if PY_VERSION_HEX >= 0x030E0000
    OFF(frame_stacktop, _PyInterpreterFrame, stackpointer);
    SYM(stack_kind, AU_PY_STACK_TOP_PTR);
    ABSENT(frame_valuestack);
    ABSENT(frame_gen);
#elif PY_VERSION_HEX >= 0x030B0000
    OFF(frame_stacktop, _PyInterpreterFrame, stacktop);
    _Static_assert(sizeof(((_PyInterpreterFrame *)0)->stacktop) == 4, "stacktop");
    SYM(stack_kind, AU_PY_STACK_LOCALSPLUS_INDEX);
    ABSENT(frame_valuestack);
    ABSENT(frame_gen);
#elif PY_VERSION_HEX >= 0x030A0000
    OFF(frame_stacktop, PyFrameObject, f_stackdepth);
    _Static_assert(sizeof(((PyFrameObject *)0)->f_stackdepth) == 4, "depth");
    SYM(stack_kind, AU_PY_STACK_BASE_DEPTH);
    OFF(frame_valuestack, PyFrameObject, f_valuestack);
    OFF(frame_gen, PyFrameObject, f_gen);
#else
    OFF(frame_stacktop, PyFrameObject, f_stacktop);
    SYM(stack_kind, AU_PY_STACK_TOP_PTR);
    OFF(frame_valuestack, PyFrameObject, f_valuestack);
    OFF(frame_gen, PyFrameObject, f_gen);
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* _PyGen_yf: the generator's state is FRAME_SUSPENDED_YIELD_FROM. */
    SYM(yf_kind, AU_PY_YF_STATE);
    NOOP(yf_op_yield_from);
    NOOP(yf_op_resume);
    NOOP(yf_op_resume_alt);
    NONE(yf_resume_min_oparg);
#elif PY_VERSION_HEX >= 0x030B0000
    /* _PyGen_yf: the code unit after prev_instr is RESUME (3.11: or its
     * quickened form; 3.12: or its instrumented form) with oparg >= 2
     * (after yield from / after await). */
    SYM(yf_kind, AU_PY_YF_NEXT_RESUME);
    NOOP(yf_op_yield_from);
    P(yf_op_resume, RESUME);
#if PY_VERSION_HEX >= 0x030C0000
    P(yf_op_resume_alt, INSTRUMENTED_RESUME);
#else
    P(yf_op_resume_alt, RESUME_QUICK);
#endif
    P(yf_resume_min_oparg, 2);
#else
    /* _PyGen_yf: the instruction after f_lasti is YIELD_FROM. */
    SYM(yf_kind, AU_PY_YF_LASTI_OPCODE);
    P(yf_op_yield_from, YIELD_FROM);
    NOOP(yf_op_resume);
    NOOP(yf_op_resume_alt);
    NONE(yf_resume_min_oparg);
#endif
#if PY_VERSION_HEX >= 0x030F0000
    /* 3.15 keeps one more value above the awaited object while suspended
     * in SEND (_PyFrame_StackPeek(frame, 2) in _PyGen_yf). */
    P(yf_stack_depth, 2);
#else
    P(yf_stack_depth, 1);
#endif

    /* ---- types ---- */
    OFF(type_tp_base, PyTypeObject, tp_base);
    OFF(type_tp_basicsize, PyTypeObject, tp_basicsize);
    OFF(type_tp_dictoffset, PyTypeObject, tp_dictoffset);
    OFF(type_tp_weaklistoffset, PyTypeObject, tp_weaklistoffset);
    OFF(heaptype_cached_keys, PyHeapTypeObject, ht_cached_keys);
    OFF(type_tp_dict, PyTypeObject, tp_dict);
    OFF(memberdescr_member, PyMemberDescrObject, d_member);
    OFF(memberdef_type, PyMemberDef, type);
    OFF(memberdef_offset, PyMemberDef, offset);
#ifdef Py_T_OBJECT_EX
    P(memberdef_object_ex, Py_T_OBJECT_EX);
#else
    P(memberdef_object_ex, T_OBJECT_EX);
#endif
#ifdef Py_TPFLAGS_MANAGED_DICT
    P(tpflags_managed_dict, Py_TPFLAGS_MANAGED_DICT);
#else
    P(tpflags_managed_dict, 0);
#endif
#ifdef Py_TPFLAGS_INLINE_VALUES
    P(tpflags_inline_values, Py_TPFLAGS_INLINE_VALUES);
#else
    P(tpflags_inline_values, 0);
#endif

    /* ---- containers and small objects ---- */
    SZ(sizeof_dict, PyDictObject);
    OFF(dict_ma_used, PyDictObject, ma_used);
    OFF(dict_ma_keys, PyDictObject, ma_keys);
    OFF(dict_ma_values, PyDictObject, ma_values);
    OFF(set_used, PySetObject, used);
    OFF(set_mask, PySetObject, mask);
    OFF(set_table, PySetObject, table);
    OFF(setentry_key, setentry, key);
    OFF(setentry_hash, setentry, hash);
    SZ(sizeof_setentry, setentry);
    OFF(weakref_wr_object, PyWeakReference, wr_object);
    OFF(cell_ob_ref, PyCellObject, ob_ref);
    OFF(func_code, PyFunctionObject, func_code);
    OFF(func_closure, PyFunctionObject, func_closure);
    OFF(func_qualname, PyFunctionObject, func_qualname);
    OFF(method_im_func, PyMethodObject, im_func);
    OFF(method_im_self, PyMethodObject, im_self);
    OFF(cfunc_m_ml, PyCFunctionObject, m_ml);
    OFF(cfunc_m_self, PyCFunctionObject, m_self);
    OFF(methoddef_ml_name, PyMethodDef, ml_name);

    /* ---- int ---- */
    P(long_digit_bits, PyLong_SHIFT);
    _Static_assert(sizeof(digit) == 4, "30-bit digits in uint32_t");
#if PY_VERSION_HEX >= 0x030C0000
    SYM(long_kind, AU_PY_LONG_TAG);
    OFF(long_size, PyLongObject, long_value.lv_tag);
    OFF(long_digit, PyLongObject, long_value.ob_digit);
    P(long_tag_sign_mask, _PyLong_SIGN_MASK);
    P(long_tag_size_shift, _PyLong_NON_SIZE_BITS);
    P(long_tag_sign_zero, SIGN_ZERO);
    P(long_tag_sign_negative, SIGN_NEGATIVE);
#else
    SYM(long_kind, AU_PY_LONG_SIGNED_SIZE);
    OFF(long_size, PyVarObject, ob_size);
    OFF(long_digit, PyLongObject, ob_digit);
    NONE(long_tag_sign_mask);
    NONE(long_tag_size_shift);
    NONE(long_tag_sign_zero);
    NONE(long_tag_sign_negative);
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
    DBG(interp_modules, interpreter_state.imports_modules);
    DBG(sizeof_dict, dict_object.size);
    DBG(dict_ma_keys, dict_object.ma_keys);
    DBG(dict_ma_values, dict_object.ma_values);
    DBG(long_size, long_object.lv_tag);
    DBG(long_digit, long_object.ob_digit);
#if PY_VERSION_HEX >= 0x030F0000
    DBG(type_tp_basicsize, type_object.tp_basicsize);
    DBG(type_tp_dictoffset, type_object.tp_dictoffset);
    DBG(heaptype_cached_keys, heap_type_object.ht_cached_keys);
#endif
#if PY_VERSION_HEX >= 0x030E0000
    DBG(frame_stacktop, interpreter_frame.stackpointer);
    DBG(set_used, set_object.used);
    DBG(set_table, set_object.table);
    DBG(set_mask, set_object.mask);
    DBG(llist_next, llist_node.next);
    DBG(llist_prev, llist_node.prev);
    DBG(sizeof_gen, gen_object.size);
    DBG(gen_name, gen_object.gi_name);
    DBG(gen_iframe, gen_object.gi_iframe);
    DBG(gen_state, gen_object.gi_frame_state);
#endif
#endif
    return 0;
}
