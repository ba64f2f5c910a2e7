/*
 * Tests of the CPython layout tables (core/cpython/au_pyoffsets.h, generated
 * core/cpython/pyoffsets_table.c).
 *
 *  - lookup: every supported minor version has an entry, patch levels map
 *    to their minor's entry, unsupported versions give NULL;
 *  - invariants: offsets fit their structs, are aligned and distinct,
 *    fields exist in exactly the versions au_pyoffsets.h documents, the enum
 *    and state values are consistent, the _Py_DebugOffsets layouts are
 *    well-formed;
 *  - au_py_offsets_apply_debug on synthetic blobs (valid and hostile);
 *  - live: start each interpreter (pyenv 3.9-3.13, Debian's static 3.11,
 *    3.13, 3.14 and 3.15 in the sid chroot), find _PyRuntime in it, and
 *      * for 3.13+, read its _Py_DebugOffsets and check that every
 *        published value equals the compiled-in one;
 *      * for every version, walk interpreter -> thread -> frames -> code
 *        objects -> strings -> generator with the table alone and check
 *        the names, files, lines, string kinds, owners and states that the
 *        script guarantees.
 *    A missing interpreter is skipped with a reason, or fails when the
 *    environment has CI=true (bazel test --test_env=CI=true).
 *
 * The live part reads other processes, so the target is tagged `external`.
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "au_pyoffsets.h"
#include "target_elf.h"

#define MINOR(v) (((v) >> 16) & 0xFFu)
#define HEX(minor) (0x03000000u | ((uint32_t)(minor) << 16) | 0xF0u)
#define PRESENT(x) ((x) != AU_PYOFF_ABSENT)

/* ------------------------------------------------------------------------
 * Which offset fields exist in which minor versions (au_pyoffsets.h says so
 * field by field; this is the same statement, checked).
 * --------------------------------------------------------------------- */
typedef struct presence {
    uint16_t field;
    const char *name;
    uint8_t first, last; /* minor versions */
} presence;

#define ALL(f) {offsetof(au_py_offsets, f), #f, 9, 15}
#define SPAN(f, a, b) {offsetof(au_py_offsets, f), #f, a, b}

static const presence k_presence[] = {
    ALL(sizeof_runtime),
    ALL(runtime_interpreters_head),
    SPAN(runtime_debug_offsets, 13, 15),
    ALL(sizeof_interp),
    ALL(interp_next),
    ALL(interp_threads_head),
    ALL(interp_id),
    ALL(interp_modules),
    SPAN(interp_asyncio_tasks_head, 14, 15),
    ALL(sizeof_tstate),
    ALL(tstate_prev),
    ALL(tstate_next),
    ALL(tstate_interp),
    ALL(tstate_frame),
    SPAN(cframe_current_frame, 11, 12),
    ALL(tstate_thread_id),
    SPAN(tstate_native_thread_id, 11, 15),
    SPAN(tstate_datastack_chunk, 11, 15),
    SPAN(tstate_datastack_top, 11, 15),
    SPAN(tstate_datastack_limit, 11, 15),
    ALL(tstate_dict),
    SPAN(sizeof_tstate_impl, 13, 15),
    SPAN(tstate_asyncio_running_loop, 13, 15),
    SPAN(tstate_asyncio_running_task, 14, 15),
    SPAN(tstate_asyncio_tasks_head, 14, 15),
    SPAN(llist_next, 14, 15),
    SPAN(llist_prev, 14, 15),
    SPAN(chunk_previous, 11, 15),
    SPAN(chunk_size, 11, 15),
    SPAN(chunk_top, 11, 15),
    SPAN(chunk_data, 11, 15),
    ALL(frame_previous),
    ALL(frame_code),
    ALL(frame_instr),
    SPAN(frame_owner, 11, 15),
    ALL(frame_header_size),
    ALL(frame_stacktop),
    SPAN(frame_valuestack, 9, 10),
    SPAN(frame_gen, 9, 10),
    SPAN(frame_entry, 11, 11),
    SPAN(frame_exec, 9, 10),
    ALL(sizeof_code),
    ALL(code_name),
    SPAN(code_qualname, 11, 15),
    ALL(code_filename),
    ALL(code_firstlineno),
    ALL(code_linetable),
    SPAN(code_code, 9, 10),
    SPAN(code_code_adaptive, 11, 15),
    ALL(ob_type),
    ALL(var_ob_size),
    ALL(type_tp_name),
    ALL(type_tp_flags),
    ALL(type_tp_base),
    ALL(type_tp_basicsize),
    ALL(type_tp_dictoffset),
    ALL(type_tp_weaklistoffset),
    ALL(heaptype_cached_keys),
    ALL(type_tp_dict),
    ALL(memberdescr_member),
    ALL(memberdef_type),
    ALL(memberdef_offset),
    ALL(memberdef_object_ex),
    ALL(bytes_ob_sval),
    ALL(tuple_ob_item),
    ALL(list_ob_item),
    ALL(unicode_length),
    ALL(unicode_state),
    ALL(sizeof_ascii),
    ALL(sizeof_compact),
    ALL(sizeof_gen),
    ALL(gen_name),
    ALL(gen_qualname),
    SPAN(gen_code, 9, 11),
    SPAN(gen_frame, 9, 10),
    SPAN(gen_iframe, 11, 15),
    ALL(gen_state),
    ALL(sizeof_dict),
    ALL(dict_ma_used),
    ALL(dict_ma_keys),
    ALL(dict_ma_values),
    ALL(set_used),
    ALL(set_mask),
    ALL(set_table),
    ALL(setentry_key),
    ALL(setentry_hash),
    ALL(sizeof_setentry),
    ALL(weakref_wr_object),
    ALL(cell_ob_ref),
    ALL(func_code),
    ALL(func_closure),
    ALL(func_qualname),
    ALL(method_im_func),
    ALL(method_im_self),
    ALL(cfunc_m_ml),
    ALL(cfunc_m_self),
    ALL(methoddef_ml_name),
    ALL(long_size),
    ALL(long_digit),
};
#define NPRESENCE (sizeof k_presence / sizeof k_presence[0])

/* The uint32_t offset fields run from sizeof_runtime to long_digit. */
#define FIRST_OFF offsetof(au_py_offsets, sizeof_runtime)
#define END_OFF (offsetof(au_py_offsets, long_digit) + sizeof(uint32_t))

static const au_py_offsets *entry(unsigned minor) {
    const au_py_offsets *o = au_py_offsets_for(HEX(minor));
    assert_non_null(o);
    return o;
}

/* ------------------------------------------------------------------------
 * Lookup
 * --------------------------------------------------------------------- */
static void test_every_version_has_an_entry(void **state) {
    (void)state;
    size_t n = 0;
    const au_py_offsets *all = au_py_offsets_all(&n);
    /* One per minor version, two for 3.13 (3.13.0 and 3.13.18 differ). */
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++) {
        const au_py_offsets *o = &all[i];
        unsigned minor = MINOR(o->version_hex);
        char name[8];
        snprintf(name, sizeof name, "3.%u", minor);
        assert_string_equal(o->name, name);
        assert_in_range(minor, 9, 15);
        /* headers "3.X.Y": the exact version the entry was measured on */
        assert_int_equal(strncmp(o->headers, name, strlen(name)), 0);
        assert_int_equal(o->headers[strlen(name)], '.');
        assert_int_equal(o->flags, AU_PY_FLAG_DEFAULT_BUILD);
        assert_ptr_equal(au_py_offsets_for(o->version_hex), o);
    }
    for (unsigned minor = 9; minor <= 15; minor++) {
        char name[8];
        snprintf(name, sizeof name, "3.%u", minor);
        assert_string_equal(entry(minor)->name, name);
    }
    assert_string_equal(all[4].headers, "3.13.0");
    assert_string_equal(all[5].headers, "3.13.18");
    for (size_t i = 1; i < n; i++) assert_true(all[i - 1].version_hex < all[i].version_hex);
    assert_int_equal(all[0].version_hex >> 16, AU_PY_MIN_VERSION >> 16);
    assert_int_equal(all[n - 1].version_hex >> 16, AU_PY_MAX_VERSION >> 16);
    assert_ptr_equal(au_py_offsets_all(NULL), all);
}

static void test_lookup_by_patch_level(void **state) {
    (void)state;
    /* Debian bookworm's 3.11.2 and pyenv's 3.11.7 share one entry (the
     * generator found no difference between their headers). */
    assert_ptr_equal(au_py_offsets_for(0x030B02F0), entry(11));
    assert_ptr_equal(au_py_offsets_for(0x030B07F0), entry(11));
    assert_ptr_equal(au_py_offsets_for(0x030B00A1), entry(11)); /* 3.11.0a1 */
    /* 3.13.0 and 3.13.18 differ (PyThreadState grew): patch levels from
     * 3.13.18 on get the 3.13.18 entry, earlier ones 3.13.0's. */
    assert_string_equal(au_py_offsets_for(0x030D00F0)->headers, "3.13.0");
    assert_string_equal(au_py_offsets_for(0x030D0AF0)->headers, "3.13.0");  /* 3.13.10 */
    assert_string_equal(au_py_offsets_for(0x030D00A1)->headers, "3.13.0");  /* 3.13.0a1 */
    assert_string_equal(au_py_offsets_for(0x030D12F0)->headers, "3.13.18");
    assert_string_equal(au_py_offsets_for(0x030D20F0)->headers, "3.13.18"); /* 3.13.32 */
    assert_ptr_equal(au_py_offsets_for(0x030E00C2), entry(14)); /* 3.14.0rc2 */
    assert_ptr_equal(au_py_offsets_for(0x030F02F0), entry(15));
    assert_ptr_equal(au_py_offsets_for(0x030F63F0), entry(15)); /* 3.15.99 */
    assert_ptr_equal(au_py_offsets_for(0x0309FFFF), entry(9));
    assert_string_equal(au_py_offsets_for(0x030B02F0)->name, "3.11");
}

static void test_unsupported_versions(void **state) {
    (void)state;
    assert_null(au_py_offsets_for(0x030812F0)); /* 3.8.18 */
    assert_null(au_py_offsets_for(0x0308FFFF));
    assert_null(au_py_offsets_for(0x031000A1)); /* 3.16.0a1 */
    assert_null(au_py_offsets_for(0x031002F0));
    assert_null(au_py_offsets_for(0x02071200)); /* 2.7.18 */
    assert_null(au_py_offsets_for(0x040900F0)); /* 4.9 */
    assert_null(au_py_offsets_for(0));
    assert_null(au_py_offsets_for(UINT32_MAX));
}

/* ------------------------------------------------------------------------
 * Invariants
 * --------------------------------------------------------------------- */
static void test_presence_matches_documentation(void **state) {
    (void)state;
    /* Every uint32_t offset field is listed exactly once. */
    assert_int_equal(NPRESENCE * sizeof(uint32_t), END_OFF - FIRST_OFF);
    for (size_t i = 0; i < NPRESENCE; i++)
        for (size_t j = i + 1; j < NPRESENCE; j++)
            assert_int_not_equal(k_presence[i].field, k_presence[j].field);
    size_t nall = 0;
    const au_py_offsets *all = au_py_offsets_all(&nall);
    for (size_t e = 0; e < nall; e++) { /* 3.13: 3.13.0 and 3.13.18 */
        const au_py_offsets *o = &all[e];
        unsigned minor = MINOR(o->version_hex);
        for (size_t i = 0; i < NPRESENCE; i++) {
            const presence *p = &k_presence[i];
            int want = minor >= p->first && minor <= p->last;
            uint32_t v = au_py_offsets_field(o, p->field);
            if (want != PRESENT(v))
                fail_msg("3.%u: %s is %s but should be %s", minor, p->name,
                         PRESENT(v) ? "present" : "absent", want ? "present" : "absent");
        }
    }
}

/* Each present field + width must fit within limit. */
static void fits(unsigned minor, const char *what, uint32_t off, uint32_t width,
                 uint32_t limit) {
    if (!PRESENT(off)) return;
    if ((uint64_t)off + width > limit)
        fail_msg("3.%u: %s at %u (+%u) exceeds %u", minor, what, off, width, limit);
}

static void aligned(unsigned minor, const char *what, uint32_t off, uint32_t a) {
    if (PRESENT(off) && off % a != 0) fail_msg("3.%u: %s at %u not %u-aligned", minor, what, off, a);
}

static void distinct(unsigned minor, const char *group, const uint32_t *offs, size_t n) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (PRESENT(offs[i]) && offs[i] == offs[j])
                fail_msg("3.%u: two %s fields share offset %u", minor, group, offs[i]);
}

static void test_offsets_fit_their_structs(void **state) {
    (void)state;
    size_t nall = 0;
    const au_py_offsets *all = au_py_offsets_all(&nall);
    for (size_t e = 0; e < nall; e++) { /* 3.13: 3.13.0 and 3.13.18 */
        const au_py_offsets *o = &all[e];
        unsigned minor = MINOR(o->version_hex);
        /* Sizes are plausible (bytes). */
        assert_in_range(o->sizeof_runtime, 512, 1u << 20);
        assert_in_range(o->sizeof_interp, 4096, 1u << 20);
        assert_in_range(o->sizeof_tstate, 200, 4096);
        assert_in_range(o->sizeof_code, 128, 512);
        assert_in_range(o->sizeof_gen, 64, 512);
        assert_in_range(o->frame_header_size, 48, 512);

        fits(minor, "runtime_interpreters_head", o->runtime_interpreters_head, 8, o->sizeof_runtime);
        if (minor >= 13) assert_int_equal(o->runtime_debug_offsets, 0);

        const uint32_t interp[] = {o->interp_next, o->interp_threads_head, o->interp_id};
        for (size_t i = 0; i < 3; i++) {
            fits(minor, "interp field", interp[i], 8, o->sizeof_interp);
            aligned(minor, "interp field", interp[i], 8);
        }
        distinct(minor, "PyInterpreterState", interp, 3);

        const uint32_t ts[] = {o->tstate_prev, o->tstate_next, o->tstate_interp,
                               o->tstate_frame, o->tstate_thread_id,
                               o->tstate_native_thread_id, o->tstate_datastack_chunk,
                               o->tstate_datastack_top, o->tstate_datastack_limit};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
            fits(minor, "tstate field", ts[i], 8, o->sizeof_tstate);
            aligned(minor, "tstate field", ts[i], 8);
        }
        distinct(minor, "PyThreadState", ts, sizeof ts / sizeof ts[0]);
        if (PRESENT(o->cframe_current_frame)) assert_true(o->cframe_current_frame <= 16);

        if (minor >= 11) {
            const uint32_t ch[] = {o->chunk_previous, o->chunk_size, o->chunk_top, o->chunk_data};
            distinct(minor, "_PyStackChunk", ch, 4);
            for (size_t i = 0; i < 3; i++) assert_true(ch[i] + 8 <= o->chunk_data);
            aligned(minor, "chunk_data", o->chunk_data, 8);
        }

        /* Frame fields lie in the part of the frame the walker reads. */
        uint32_t iw = o->instr_kind <= AU_PY_INSTR_UNIT_LASTI ? 4 : 8;
        fits(minor, "frame_previous", o->frame_previous, 8, o->frame_header_size);
        fits(minor, "frame_code", o->frame_code, 8, o->frame_header_size);
        fits(minor, "frame_instr", o->frame_instr, iw, o->frame_header_size);
        fits(minor, "frame_owner", o->frame_owner, 1, o->frame_header_size);
        aligned(minor, "frame_previous", o->frame_previous, 8);
        aligned(minor, "frame_code", o->frame_code, 8);
        aligned(minor, "frame_instr", o->frame_instr, iw);
        aligned(minor, "frame_header_size", o->frame_header_size, 8);
        const uint32_t fr[] = {o->frame_previous, o->frame_code, o->frame_instr, o->frame_owner};
        distinct(minor, "frame", fr, 4);

        const uint32_t co[] = {o->code_name, o->code_qualname, o->code_filename,
                               o->code_linetable, o->code_code, o->code_firstlineno,
                               o->code_code_adaptive};
        for (size_t i = 0; i < 5; i++) {
            fits(minor, "code field", co[i], 8, o->sizeof_code);
            aligned(minor, "code field", co[i], 8);
        }
        fits(minor, "code_firstlineno", o->code_firstlineno, 4, o->sizeof_code);
        aligned(minor, "code_firstlineno", o->code_firstlineno, 4);
        distinct(minor, "PyCodeObject", co, sizeof co / sizeof co[0]);
        if (minor >= 11) {
            /* char co_code_adaptive[1] closes the struct. */
            assert_true(o->code_code_adaptive < o->sizeof_code);
            assert_true(o->code_code_adaptive + 8 >= o->sizeof_code);
        }

        assert_int_equal(o->ob_type, 8);
        assert_int_equal(o->var_ob_size, 16);
        assert_int_equal(o->type_tp_name, 24);
        assert_in_range(o->type_tp_flags, 32, 400);
        aligned(minor, "type_tp_flags", o->type_tp_flags, 8);
        assert_in_range(o->bytes_ob_sval, 24, 40);
        assert_in_range(o->tuple_ob_item, 24, 40);
        assert_int_equal(o->list_ob_item, 24);

        assert_int_equal(o->unicode_length, 16);
        aligned(minor, "unicode_state", o->unicode_state, 4);
        fits(minor, "unicode_state", o->unicode_state, 4, o->sizeof_ascii);
        assert_true(o->sizeof_ascii < o->sizeof_compact);
        assert_true(o->sizeof_compact <= 80);
        aligned(minor, "sizeof_ascii", o->sizeof_ascii, 8);
        aligned(minor, "sizeof_compact", o->sizeof_compact, 8);

        const uint32_t gen[] = {o->gen_name, o->gen_qualname, o->gen_code, o->gen_frame,
                                o->gen_iframe, o->gen_state};
        for (size_t i = 0; i < 5; i++) {
            fits(minor, "gen field", gen[i], 8, o->sizeof_gen);
            aligned(minor, "gen field", gen[i], 8);
        }
        distinct(minor, "PyGenObject", gen, sizeof gen / sizeof gen[0]);
        if (o->gen_state_kind == AU_PY_GEN_STATE_FRAME) {
            /* 3.10: f_state lives in the PyFrameObject. */
            fits(minor, "gen_state", o->gen_state, 1, o->frame_header_size);
        } else {
            fits(minor, "gen_state", o->gen_state, 1, o->sizeof_gen);
        }
        if (minor >= 11) assert_true(o->gen_state < o->gen_iframe);

        /* What the asyncio model starts from. */
        fits(minor, "interp_modules", o->interp_modules, 8, o->sizeof_interp);
        fits(minor, "interp_asyncio_tasks_head", o->interp_asyncio_tasks_head, 16,
             o->sizeof_interp);
        aligned(minor, "interp_modules", o->interp_modules, 8);
        aligned(minor, "interp_asyncio_tasks_head", o->interp_asyncio_tasks_head, 8);
        fits(minor, "tstate_dict", o->tstate_dict, 8, o->sizeof_tstate);
        aligned(minor, "tstate_dict", o->tstate_dict, 8);
        if (minor >= 13) {
            /* _PyThreadStateImpl extends PyThreadState: its own fields come
             * after the whole PyThreadState (apply_debug relies on it). */
            assert_true(o->sizeof_tstate_impl > o->sizeof_tstate);
            const uint32_t impl[] = {o->tstate_asyncio_running_loop,
                                     o->tstate_asyncio_running_task,
                                     o->tstate_asyncio_tasks_head};
            for (size_t i = 0; i < 3; i++) {
                if (!PRESENT(impl[i])) continue;
                assert_true(impl[i] >= o->sizeof_tstate);
                fits(minor, "tstate impl field", impl[i], i == 2 ? 16 : 8, o->sizeof_tstate_impl);
                aligned(minor, "tstate impl field", impl[i], 8);
            }
            distinct(minor, "_PyThreadStateImpl", impl, 3);
        }
        if (minor >= 14) {
            assert_int_equal(o->llist_next, 0);
            assert_int_equal(o->llist_prev, 8);
        }

        /* The value stack. */
        fits(minor, "frame_stacktop", o->frame_stacktop,
             o->stack_kind == AU_PY_STACK_TOP_PTR ? 8 : 4, o->frame_header_size);
        fits(minor, "frame_valuestack", o->frame_valuestack, 8, o->frame_header_size);
        fits(minor, "frame_gen", o->frame_gen, 8, o->frame_header_size);
        fits(minor, "frame_entry", o->frame_entry, 1, o->frame_header_size);
        fits(minor, "frame_exec", o->frame_exec, 1, o->frame_header_size);
        const uint32_t fr2[] = {o->frame_previous, o->frame_code,  o->frame_instr,
                                o->frame_owner,    o->frame_stacktop, o->frame_valuestack,
                                o->frame_gen,      o->frame_entry,  o->frame_exec};
        distinct(minor, "frame", fr2, sizeof fr2 / sizeof fr2[0]);

        /* Types, containers, small objects. */
        const uint32_t tp[] = {o->type_tp_name, o->type_tp_flags, o->type_tp_base,
                               o->type_tp_basicsize, o->type_tp_dictoffset,
                               o->type_tp_weaklistoffset, o->type_tp_dict};
        for (size_t i = 0; i < sizeof tp / sizeof tp[0]; i++) {
            aligned(minor, "type field", tp[i], 8);
            assert_true(tp[i] < 416); /* within PyTypeObject */
        }
        distinct(minor, "PyTypeObject", tp, sizeof tp / sizeof tp[0]);
        assert_in_range(o->heaptype_cached_keys, 416, 1024); /* after the PyTypeObject */
        aligned(minor, "heaptype_cached_keys", o->heaptype_cached_keys, 8);
        /* After PyDescr_COMMON (a header and three pointers). */
        assert_int_equal(o->memberdescr_member, 40);
        /* PyMemberDef: name, then int type, then Py_ssize_t offset. */
        assert_int_equal(o->memberdef_type, 8);
        assert_int_equal(o->memberdef_offset, 16);
        assert_int_equal(o->memberdef_object_ex, 16);
        const uint32_t di[] = {o->dict_ma_used, o->dict_ma_keys, o->dict_ma_values};
        for (size_t i = 0; i < 3; i++) fits(minor, "dict field", di[i], 8, o->sizeof_dict);
        distinct(minor, "PyDictObject", di, 3);
        const uint32_t se[] = {o->set_used, o->set_mask, o->set_table};
        for (size_t i = 0; i < 3; i++) {
            assert_in_range(se[i], 16, 64);
            aligned(minor, "set field", se[i], 8);
        }
        distinct(minor, "PySetObject", se, 3);
        assert_int_equal(o->sizeof_setentry, 16);
        fits(minor, "setentry_key", o->setentry_key, 8, o->sizeof_setentry);
        fits(minor, "setentry_hash", o->setentry_hash, 8, o->sizeof_setentry);
        assert_int_not_equal(o->setentry_key, o->setentry_hash);
        const uint32_t small[] = {o->weakref_wr_object, o->cell_ob_ref, o->func_code,
                                  o->func_closure, o->func_qualname, o->method_im_func,
                                  o->method_im_self, o->cfunc_m_ml, o->cfunc_m_self};
        for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
            assert_in_range(small[i], 16, 256);
            aligned(minor, "object field", small[i], 8);
        }
        assert_int_equal(o->methoddef_ml_name, 0);
        assert_int_equal(o->long_size, 16);
        assert_int_equal(o->long_digit, 24);
    }
}

static void test_kinds_and_values(void **state) {
    (void)state;
    size_t nall = 0;
    const au_py_offsets *all = au_py_offsets_all(&nall);
    for (size_t e = 0; e < nall; e++) { /* 3.13: 3.13.0 and 3.13.18 */
        const au_py_offsets *o = &all[e];
        unsigned minor = MINOR(o->version_hex);
        uint8_t instr = minor == 9    ? AU_PY_INSTR_BYTE_LASTI
                        : minor == 10 ? AU_PY_INSTR_UNIT_LASTI
                        : minor <= 12 ? AU_PY_INSTR_PREV_INSTR
                                      : AU_PY_INSTR_INSTR_PTR;
        assert_int_equal(o->instr_kind, instr);
        uint8_t lt = minor == 9 ? AU_LT_LNOTAB : minor == 10 ? AU_LT_LINETABLE310 : AU_LT_LOCATIONS;
        assert_int_equal(o->linetable_kind, lt);
        uint8_t gs = minor == 9    ? AU_PY_GEN_STATE_RUNNING
                     : minor == 10 ? AU_PY_GEN_STATE_FRAME
                                   : AU_PY_GEN_STATE_GEN;
        assert_int_equal(o->gen_state_kind, gs);

        /* Stack-ref tag bits: 3.14+ only, and only low bits. */
        if (minor >= 14) assert_in_range(o->frame_code_tag_mask, 1, 7);
        else assert_int_equal(o->frame_code_tag_mask, 0);

        /* Owners */
        if (minor <= 10) {
            assert_int_equal(o->frame_owner_thread, AU_PY_VALUE_NONE);
            assert_int_equal(o->frame_owner_generator, AU_PY_VALUE_NONE);
            assert_int_equal(o->frame_owner_frame_object, AU_PY_VALUE_NONE);
        } else {
            assert_int_equal(o->frame_owner_thread, 0);
            assert_int_equal(o->frame_owner_generator, 1);
            assert_int_equal(o->frame_owner_frame_object, 2);
        }
        uint32_t skip = minor <= 11 ? 0 : minor <= 13 ? 1u << 3 : minor == 14 ? 3u << 3 : 1u << 3;
        assert_int_equal(o->frame_skip_owners, skip);
        if (minor >= 11) {
            /* Python frames are never skipped. */
            assert_int_equal(o->frame_skip_owners >> o->frame_owner_thread & 1, 0);
            assert_int_equal(o->frame_skip_owners >> o->frame_owner_generator & 1, 0);
            assert_int_equal(o->frame_skip_owners >> o->frame_owner_frame_object & 1, 0);
        }

        /* Generator states: created < suspended < executing < finished. */
        if (minor == 9) {
            assert_int_equal(o->gen_state_suspended_min, 0);
            assert_int_equal(o->gen_state_suspended_max, 0);
            assert_int_equal(o->gen_state_executing, 1);
            assert_int_equal(o->gen_state_created, AU_PY_VALUE_NONE);
            assert_int_equal(o->gen_state_finished_min, AU_PY_VALUE_NONE);
            assert_int_equal(o->gen_state_cleared, AU_PY_VALUE_NONE);
            assert_int_equal(o->gen_state_suspended_yield_from, AU_PY_VALUE_NONE);
        } else {
            assert_true(o->gen_state_created < o->gen_state_suspended_min);
            assert_true(o->gen_state_suspended_min <= o->gen_state_suspended_max);
            assert_true(o->gen_state_suspended_max < o->gen_state_executing);
            assert_true(o->gen_state_executing < o->gen_state_finished_min);
            assert_true(o->gen_state_finished_min <= o->gen_state_cleared);
            if (minor >= 13) {
                assert_true(o->gen_state_suspended_yield_from >= o->gen_state_suspended_min);
                assert_true(o->gen_state_suspended_yield_from <= o->gen_state_suspended_max);
            } else {
                assert_int_equal(o->gen_state_suspended_yield_from, AU_PY_VALUE_NONE);
            }
        }
        if (minor == 15) {
            /* 3.15 renumbered and has no FRAME_COMPLETED. */
            assert_int_equal(o->gen_state_created, 0);
            assert_int_equal(o->gen_state_finished_min, o->gen_state_cleared);
        }

        /* Unicode state bits: in range, disjoint, the documented widths. */
        assert_int_equal(o->unicode_kind_width, 3);
        assert_int_equal(o->unicode_compact_width, 1);
        assert_int_equal(o->unicode_ascii_width, 1);
        assert_int_equal(o->unicode_interned_width, 2);
        uint32_t used = 0;
        const uint8_t bits[][2] = {{o->unicode_interned_shift, o->unicode_interned_width},
                                   {o->unicode_kind_shift, o->unicode_kind_width},
                                   {o->unicode_compact_shift, o->unicode_compact_width},
                                   {o->unicode_ascii_shift, o->unicode_ascii_width},
                                   {o->unicode_ready_shift, o->unicode_ready_width}};
        for (size_t i = 0; i < 5; i++) {
            if (bits[i][0] == AU_PY_BIT_NONE) {
                assert_int_equal(bits[i][1], 0);
                continue;
            }
            assert_true(bits[i][0] + bits[i][1] <= 32);
            uint32_t m = ((1u << bits[i][1]) - 1) << bits[i][0];
            assert_int_equal(used & m, 0);
            used |= m;
        }
        if (minor <= 11) assert_int_equal(o->unicode_ready_width, 1);
        else assert_int_equal(o->unicode_ready_shift, AU_PY_BIT_NONE);

        /* Value stack and yf (verified live by tools/probe_private.py). */
        uint8_t sk = minor == 10   ? AU_PY_STACK_BASE_DEPTH
                     : minor <= 9  ? AU_PY_STACK_TOP_PTR
                     : minor <= 13 ? AU_PY_STACK_LOCALSPLUS_INDEX
                                   : AU_PY_STACK_TOP_PTR;
        assert_int_equal(o->stack_kind, sk);
        uint8_t yk = minor <= 10 ? AU_PY_YF_LASTI_OPCODE
                     : minor <= 12 ? AU_PY_YF_NEXT_RESUME
                                   : AU_PY_YF_STATE;
        assert_int_equal(o->yf_kind, yk);
        assert_int_equal(o->yf_stack_depth, minor >= 15 ? 2 : 1);
        if (yk == AU_PY_YF_LASTI_OPCODE) {
            assert_int_equal(o->yf_op_yield_from, 72); /* YIELD_FROM */
            assert_int_equal(o->yf_op_resume, AU_PY_OPCODE_NONE);
        } else {
            assert_int_equal(o->yf_op_yield_from, AU_PY_OPCODE_NONE);
        }
        if (yk == AU_PY_YF_NEXT_RESUME) {
            assert_true(o->yf_op_resume < 256 && o->yf_op_resume_alt < 256);
            assert_int_not_equal(o->yf_op_resume, o->yf_op_resume_alt);
            assert_int_equal(o->yf_resume_min_oparg, 2);
        } else {
            assert_int_equal(o->yf_op_resume, AU_PY_OPCODE_NONE);
            assert_int_equal(o->yf_op_resume_alt, AU_PY_OPCODE_NONE);
            assert_int_equal(o->yf_resume_min_oparg, AU_PY_VALUE_NONE);
        }
        if (yk == AU_PY_YF_STATE)
            assert_int_not_equal(o->gen_state_suspended_yield_from, AU_PY_VALUE_NONE);

        /* Type flags. */
        assert_int_equal(o->tpflags_managed_dict, minor >= 11 ? 1u << 4 : 0);
        assert_int_equal(o->tpflags_inline_values, minor >= 13 ? 1u << 2 : 0);

        /* int */
        assert_int_equal(o->long_digit_bits, 30);
        if (minor <= 11) {
            assert_int_equal(o->long_kind, AU_PY_LONG_SIGNED_SIZE);
            assert_int_equal(o->long_size, o->var_ob_size);
            assert_int_equal(o->long_tag_sign_mask, AU_PY_VALUE_NONE);
            assert_int_equal(o->long_tag_size_shift, AU_PY_VALUE_NONE);
            assert_int_equal(o->long_tag_sign_zero, AU_PY_VALUE_NONE);
            assert_int_equal(o->long_tag_sign_negative, AU_PY_VALUE_NONE);
        } else {
            assert_int_equal(o->long_kind, AU_PY_LONG_TAG);
            assert_int_equal(o->long_tag_sign_mask, 3);
            assert_int_equal(o->long_tag_size_shift, 3);
            assert_int_equal(o->long_tag_sign_zero, 1);
            assert_int_equal(o->long_tag_sign_negative, 2);
        }
    }
}

static void test_debug_layouts(void **state) {
    (void)state;
    size_t nall = 0;
    const au_py_offsets *all = au_py_offsets_all(&nall);
    for (size_t e = 0; e < nall; e++) { /* 3.13: 3.13.0 and 3.13.18 */
        const au_py_offsets *o = &all[e];
        unsigned minor = MINOR(o->version_hex);
        const au_py_debug_layout *d = o->debug;
        if (minor <= 12) {
            assert_null(d);
            continue;
        }
        assert_non_null(d);
        assert_in_range(d->size, 256, 4096);
        assert_int_equal(d->cookie_pos, 0);
        assert_int_equal(d->version_pos, 8);
        assert_int_equal(d->free_threaded_pos, 16);
        assert_true(d->nfields >= 30);
        for (uint16_t i = 0; i < d->nfields; i++) {
            const au_py_debug_field *f = &d->fields[i];
            assert_true(f->pos >= 24);
            assert_int_equal(f->pos % 8, 0);
            assert_true(f->pos + 8u <= d->size);
            if (i > 0) assert_true(d->fields[i - 1].pos < f->pos);
            /* Target: a uint32_t offset field that this version has. */
            assert_true(f->field >= FIRST_OFF && f->field < END_OFF);
            assert_int_equal(f->field % 4, 0);
            assert_true(PRESENT(au_py_offsets_field(o, f->field)));
            assert_non_null(f->name);
            assert_non_null(f->published_as);
            for (uint16_t j = 0; j < i; j++) assert_int_not_equal(d->fields[j].field, f->field);
        }
    }
    /* Layouts grew: 3.14 added gen_object, 3.15 compactunicodeobject_size. */
    assert_true(entry(14)->debug->nfields > entry(13)->debug->nfields);
    assert_true(entry(15)->debug->nfields > entry(14)->debug->nfields);
}

/* ------------------------------------------------------------------------
 * au_py_offsets_apply_debug on synthetic blobs
 * --------------------------------------------------------------------- */
static void put_u64(uint8_t *b, uint32_t pos, uint64_t v) { memcpy(b + pos, &v, sizeof v); }

/* The blob the target would publish if it matched the table exactly. */
static uint8_t *make_blob(const au_py_offsets *o, uint64_t version) {
    const au_py_debug_layout *d = o->debug;
    uint8_t *b = calloc(1, d->size);
    assert_non_null(b);
    memcpy(b + d->cookie_pos, AU_PY_DEBUG_COOKIE, AU_PY_DEBUG_COOKIE_LEN);
    put_u64(b, d->version_pos, version);
    put_u64(b, d->free_threaded_pos, 0);
    for (uint16_t i = 0; i < d->nfields; i++)
        put_u64(b, d->fields[i].pos, au_py_offsets_field(o, d->fields[i].field));
    return b;
}

static void test_apply_debug(void **state) {
    (void)state;
    for (unsigned minor = 13; minor <= 15; minor++) {
        const au_py_offsets *base = entry(minor);
        const au_py_debug_layout *d = base->debug;
        uint32_t target = (base->version_hex & 0xFFFF0000u) | 0x07F0u; /* 3.X.7 */
        uint8_t *b = make_blob(base, target);
        au_py_offsets out;

        /* Identical values: nothing changes but the version and flag. */
        assert_int_equal(au_py_offsets_apply_debug(&out, base, b, d->size), 0);
        assert_int_equal(out.version_hex, target);
        assert_int_equal(out.flags, AU_PY_FLAG_DEFAULT_BUILD | AU_PY_FLAG_FROM_DEBUG_OFFSETS);
        au_py_offsets expect = *base;
        expect.version_hex = target;
        expect.flags = out.flags;
        assert_memory_equal(&out, &expect, sizeof out);

        /* A patch release moved two fields: the published values win. */
        put_u64(b, d->fields[0].pos, au_py_offsets_field(base, d->fields[0].field) + 8);
        put_u64(b, d->fields[d->nfields - 1].pos, 12345);
        assert_int_equal(au_py_offsets_apply_debug(&out, base, b, d->size + 100), 2);
        assert_int_equal(au_py_offsets_field(&out, d->fields[0].field),
                         au_py_offsets_field(base, d->fields[0].field) + 8);
        assert_int_equal(au_py_offsets_field(&out, d->fields[d->nfields - 1].field), 12345);
        /* Unpublished facts keep their compiled values. */
        assert_int_equal(out.tstate_datastack_top, base->tstate_datastack_top);
        assert_int_equal(out.frame_skip_owners, base->frame_skip_owners);
        assert_int_equal(out.gen_state_executing, base->gen_state_executing);

        /* Hostile blobs: out is left untouched. */
        au_py_offsets before;
        memset(&before, 0xA5, sizeof before);
        out = before;
        assert_int_equal(au_py_offsets_apply_debug(&out, base, b, d->size - 1), AU_ERR_FORMAT);
        b[3] ^= 0x20; /* cookie */
        assert_int_equal(au_py_offsets_apply_debug(&out, base, b, d->size), AU_ERR_FORMAT);
        b[3] ^= 0x20;
        put_u64(b, d->version_pos, base->version_hex + 0x10000u); /* next minor */
        assert_int_equal(au_py_offsets_apply_debug(&out, base, b, d->size), AU_ERR_UNSUPPORTED);
        put_u64(b, d->version_pos, target);
        put_u64(b, d->free_threaded_pos, 1);
        assert_int_equal(au_py_offsets_apply_debug(&out, base, b, d->size), AU_ERR_UNSUPPORTED);
        put_u64(b, d->free_threaded_pos, 0);
        put_u64(b, d->fields[5].pos, (uint64_t)AU_PY_DEBUG_MAX_VALUE + 1);
        assert_int_equal(au_py_offsets_apply_debug(&out, base, b, d->size), AU_ERR_CORRUPT);
        put_u64(b, d->fields[5].pos, UINT64_MAX);
        assert_int_equal(au_py_offsets_apply_debug(&out, base, b, d->size), AU_ERR_CORRUPT);
        assert_memory_equal(&out, &before, sizeof out);

        /* In place (out == base copy). */
        put_u64(b, d->fields[5].pos, au_py_offsets_field(base, d->fields[5].field));
        au_py_offsets inplace = *base;
        assert_true(au_py_offsets_apply_debug(&inplace, &inplace, b, d->size) >= 0);
        assert_int_equal(inplace.version_hex, target);
        free(b);
    }
    /* 3.13.18 appended a pointer to PyThreadState.  Applied to the 3.13.0
     * entry, 3.13.18's published values (sizeof(PyThreadState) among them)
     * must move the unpublished _PyThreadStateImpl fields too: the result
     * is the 3.13.18 entry. */
    const au_py_offsets *e0 = au_py_offsets_for(0x030D00F0), *e18 = au_py_offsets_for(0x030D12F0);
    assert_string_equal(e0->headers, "3.13.0");
    assert_string_equal(e18->headers, "3.13.18");
    assert_int_equal(e18->sizeof_tstate, e0->sizeof_tstate + 8);
    assert_int_equal(e18->tstate_asyncio_running_loop, e0->tstate_asyncio_running_loop + 8);
    uint8_t *b18 = make_blob(e18, 0x030D12F0);
    au_py_offsets moved;
    assert_true(au_py_offsets_apply_debug(&moved, e0, b18, e18->debug->size) >= 5);
    size_t nf = 0;
    const au_py_field_desc *fd = au_py_offsets_fields(&nf);
    assert_true(nf > 100);
    for (size_t i = 0; i < nf; i++) {
        if (au_py_field_value(&moved, &fd[i]) != au_py_field_value(e18, &fd[i]))
            fail_msg("3.13.0 + 3.13.18's debug offsets: %s = %lld, 3.13.18 has %lld", fd[i].name,
                     (long long)au_py_field_value(&moved, &fd[i]),
                     (long long)au_py_field_value(e18, &fd[i]));
    }
    free(b18);

    au_py_offsets out;
    uint8_t blob[1024] = {0};
    assert_int_equal(au_py_offsets_apply_debug(&out, entry(12), blob, sizeof blob), AU_ERR_ARG);
    assert_int_equal(au_py_offsets_apply_debug(NULL, entry(13), blob, sizeof blob), AU_ERR_ARG);
    assert_int_equal(au_py_offsets_apply_debug(&out, NULL, blob, sizeof blob), AU_ERR_ARG);
    assert_int_equal(au_py_offsets_apply_debug(&out, entry(13), NULL, sizeof blob), AU_ERR_ARG);
    assert_int_equal(au_py_offsets_field(NULL, 0), AU_PYOFF_ABSENT);
    assert_int_equal(au_py_offsets_field(entry(13), UINT16_MAX), AU_PYOFF_ABSENT);
}

/* ------------------------------------------------------------------------
 * Live interpreters
 * --------------------------------------------------------------------- */

/* The frames the script guarantees while it sleeps, innermost first:
 *   au_gen_probe   a running generator (line 2, ASCII name),
 *   au_outer_Ω     defined by exec (line 1), a name of kind 2 (UCS-2),
 *   <module>. */
static const char k_script[] =
    "import sys, time\n"
    "def au_gen_probe():\n"
    "    sys.stdout.write('READY\\n'); sys.stdout.flush()\n"
    "    time.sleep(60)\n"
    "    yield 1\n"
    "exec('def au_outer_\\u03a9():\\n    for _ in au_gen_probe():\\n        pass\\n')\n"
    "globals()['au_outer_\\u03a9']()\n";

typedef struct live_target {
    const char *label;
    unsigned minor;
    int chroot;          /* run in the sid chroot */
    const char *python;  /* pyenv version dir, or absolute path */
    pid_t pid;           /* running child, for the teardown */
} live_target;

static live_target k_live[] = {
    {"pyenv 3.9", 9, 0, "3.9.18", 0},
    {"pyenv 3.10", 10, 0, "3.10.13", 0},
    {"pyenv 3.11", 11, 0, "3.11.7", 0},
    {"Debian /usr/bin/python3.11 (static)", 11, 0, "/usr/bin/python3.11", 0},
    {"pyenv 3.12", 12, 0, "3.12.1", 0},
    {"pyenv 3.13", 13, 0, "3.13.0", 0},
    {"sid chroot 3.13", 13, 1, "/usr/bin/python3.13", 0},
    {"sid chroot 3.14", 14, 1, "/usr/bin/python3.14", 0},
    {"sid chroot 3.15", 15, 1, "/usr/bin/python3.15", 0},
};

static void skip_or_fail(const char *label, const char *why) {
    const char *ci = getenv("CI");
    if (ci != NULL && strcmp(ci, "true") == 0)
        fail_msg("%s: %s (CI=true: a missing interpreter is a failure)", label, why);
    print_message("SKIP %s: %s\n", label, why);
    skip();
}

static const char *env_or(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

/* Start the target; on success t->pid is set and the script is sleeping
 * inside au_gen_probe.  Returns 0, or 1 after skip_or_fail. */
static int start_target(live_target *t) {
    char exe[512], probe_path[512], sid[256];
    const char *argv[10];
    int argc = 0;
    snprintf(sid, sizeof sid, "%s", env_or("AU_SID_ROOT", "/var/lib/asyncunwind/sid"));
    if (t->chroot) {
        snprintf(exe, sizeof exe, "/usr/sbin/chroot");
        snprintf(probe_path, sizeof probe_path, "%s%s", sid, t->python);
        argv[argc++] = exe;
        argv[argc++] = sid;
        argv[argc++] = t->python;
    } else if (t->python[0] == '/') {
        snprintf(exe, sizeof exe, "%s", t->python);
        snprintf(probe_path, sizeof probe_path, "%s", exe);
        argv[argc++] = exe;
    } else {
        snprintf(exe, sizeof exe, "%s/versions/%s/bin/python3.%u",
                 env_or("PYENV_ROOT", "/root/.pyenv"), t->python, t->minor);
        snprintf(probe_path, sizeof probe_path, "%s", exe);
        argv[argc++] = exe;
    }
    if (access(probe_path, X_OK) != 0) {
        char why[700];
        snprintf(why, sizeof why, "%s not found", probe_path);
        skip_or_fail(t->label, why);
        return 1;
    }
    if (t->chroot && access(exe, X_OK) != 0) {
        skip_or_fail(t->label, "/usr/sbin/chroot not found");
        return 1;
    }
    argv[argc++] = "-E"; /* ignore PYTHON* variables */
    argv[argc++] = "-S"; /* no site: faster, fewer threads or imports */
    argv[argc++] = "-c";
    argv[argc++] = k_script;
    argv[argc] = NULL;

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    t->pid = pid;
    char buf[256];
    size_t have = 0;
    int ready = 0;
    for (int waited = 0; !ready && waited < 30000;) {
        struct pollfd p = {fds[0], POLLIN, 0};
        int rc = poll(&p, 1, 100);
        if (rc < 0 && errno == EINTR) continue;
        waited += 100;
        if (rc <= 0) continue;
        ssize_t n = read(fds[0], buf + have, sizeof buf - 1 - have);
        if (n <= 0) break;
        have += (size_t)n;
        buf[have] = '\0';
        ready = strstr(buf, "READY\n") != NULL;
    }
    close(fds[0]);
    if (!ready) fail_msg("%s: the interpreter did not print READY", t->label);
    return 0;
}

static int kill_target(void **state) {
    live_target *t = *state;
    if (t->pid > 0) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
        t->pid = 0;
    }
    return 0;
}

static void rd(pid_t pid, uint64_t addr, void *buf, size_t len) {
    struct iovec l = {buf, len}, r = {(void *)(uintptr_t)addr, len};
    ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
    if (n != (ssize_t)len)
        fail_msg("process_vm_readv(%d, 0x%llx, %zu): %s", (int)pid, (unsigned long long)addr,
                 len, n < 0 ? strerror(errno) : "short read");
}

static uint64_t rd64(pid_t pid, uint64_t addr) {
    uint64_t v;
    rd(pid, addr, &v, sizeof v);
    return v;
}

static uint32_t rd32(pid_t pid, uint64_t addr) {
    uint32_t v;
    rd(pid, addr, &v, sizeof v);
    return v;
}

static uint8_t rd8(pid_t pid, uint64_t addr) {
    uint8_t v;
    rd(pid, addr, &v, sizeof v);
    return v;
}

/* _PyRuntime: the first file mapped by the target whose symbols define it
 * (libpython3.X.so for pyenv's shared builds, the executable for Debian's
 * static ones), relocated by the file's load bias. */
static void find_runtime(pid_t pid, uint64_t *addr, uint64_t *size) {
    te_hit hit;
    if (te_find(pid, TE_SYMBOL, "_PyRuntime", &hit) != 0)
        fail_msg("no _PyRuntime in the target's mapped files");
    *addr = hit.addr;
    *size = hit.size;
}

/* A str object as UTF-8; *kind and *ascii report its representation. */
static void rd_str(pid_t pid, const au_py_offsets *o, uint64_t obj, char *out, size_t cap,
                   unsigned *kind, int *ascii) {
    assert_true(obj != 0);
    int64_t n = (int64_t)rd64(pid, obj + o->unicode_length);
    uint32_t st = rd32(pid, obj + o->unicode_state);
    *kind = (st >> o->unicode_kind_shift) & ((1u << o->unicode_kind_width) - 1);
    *ascii = (int)(st >> o->unicode_ascii_shift & 1);
    int compact = (int)(st >> o->unicode_compact_shift & 1);
    assert_true(compact);
    if (o->unicode_ready_shift != AU_PY_BIT_NONE) assert_true(st >> o->unicode_ready_shift & 1);
    assert_true(*kind == 1 || *kind == 2 || *kind == 4);
    assert_in_range(n, 0, 200);
    uint8_t raw[800];
    uint64_t data = obj + (*ascii ? o->sizeof_ascii : o->sizeof_compact);
    if (n > 0) rd(pid, data, raw, (size_t)n * *kind);
    size_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t c = *kind == 1 ? raw[i]
                     : *kind == 2 ? (uint32_t)(raw[2 * i] | raw[2 * i + 1] << 8)
                                  : (uint32_t)(raw[4 * i] | raw[4 * i + 1] << 8 |
                                               raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24);
        assert_true(w + 5 < cap);
        if (c < 0x80) {
            out[w++] = (char)c;
        } else if (c < 0x800) {
            out[w++] = (char)(0xC0 | c >> 6);
            out[w++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out[w++] = (char)(0xE0 | c >> 12);
            out[w++] = (char)(0x80 | (c >> 6 & 0x3F));
            out[w++] = (char)(0x80 | (c & 0x3F));
        } else {
            out[w++] = (char)(0xF0 | c >> 18);
            out[w++] = (char)(0x80 | (c >> 12 & 0x3F));
            out[w++] = (char)(0x80 | (c >> 6 & 0x3F));
            out[w++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[w] = '\0';
}

static void rd_ascii_str(pid_t pid, const au_py_offsets *o, uint64_t obj, char *out, size_t cap) {
    unsigned kind;
    int ascii;
    rd_str(pid, o, obj, out, cap, &kind, &ascii);
}

/* The tp_name of obj's type. */
static void type_name(pid_t pid, const au_py_offsets *o, uint64_t obj, char *out, size_t cap) {
    uint64_t type = rd64(pid, obj + o->ob_type);
    uint64_t name = rd64(pid, type + o->type_tp_name);
    rd(pid, name, out, cap - 1);
    out[cap - 1] = '\0';
}

/* Compare every value the target publishes with the compiled table;
 * returns the number of differences (each printed).  *applied gets the
 * table with the published values applied. */
static int check_debug_offsets(const live_target *t, const au_py_offsets *o, uint64_t runtime,
                               au_py_offsets *applied) {
    const au_py_debug_layout *d = o->debug;
    uint8_t *blob = malloc(d->size);
    assert_non_null(blob);
    rd(t->pid, runtime + o->runtime_debug_offsets, blob, d->size);
    assert_memory_equal(blob + d->cookie_pos, AU_PY_DEBUG_COOKIE, AU_PY_DEBUG_COOKIE_LEN);
    uint64_t version, ft;
    memcpy(&version, blob + d->version_pos, sizeof version);
    memcpy(&ft, blob + d->free_threaded_pos, sizeof ft);
    assert_int_equal(version >> 16, o->version_hex >> 16);
    assert_int_equal(ft, 0);
    int diffs = 0;
    for (uint16_t i = 0; i < d->nfields; i++) {
        const au_py_debug_field *f = &d->fields[i];
        uint64_t pub;
        memcpy(&pub, blob + f->pos, sizeof pub);
        uint32_t mine = au_py_offsets_field(o, f->field);
        if (pub != mine) {
            print_message("DIFFERENCE %s (target 0x%08llX, table from %s): %s = %llu published "
                          "as %s, compiled %u\n",
                          t->label, (unsigned long long)version, o->headers, f->name,
                          (unsigned long long)pub, f->published_as, mine);
            diffs++;
        }
    }
    int rc = au_py_offsets_apply_debug(applied, o, blob, d->size);
    assert_int_equal(rc, diffs);
    print_message("%s: target 0x%08llX publishes %u offsets; %d differ from the table (%s)\n",
                  t->label, (unsigned long long)version, d->nfields, diffs, o->headers);
    free(blob);
    return diffs;
}

static void test_live(void **state) {
    live_target *t = *state;
    if (start_target(t)) return;
    pid_t pid = t->pid;
    uint64_t runtime = 0, rsize = 0;
    find_runtime(pid, &runtime, &rsize);

    /* 3.13+: the entry for the target's exact version, which it publishes
     * (3.13.0 and 3.13.18 have entries of their own). */
    const au_py_offsets *compiled = entry(t->minor);
    if (compiled->debug != NULL) {
        compiled = au_py_offsets_for((uint32_t)rd64(pid, runtime + compiled->debug->version_pos));
        assert_non_null(compiled);
    }
    au_py_offsets off = *compiled;
    const au_py_offsets *o = &off;

    int diffs = 0;
    if (compiled->debug) diffs = check_debug_offsets(t, compiled, runtime, &off);
    /* The symbol's size is sizeof(_PyRuntimeState). */
    if (rsize != o->sizeof_runtime)
        print_message("DIFFERENCE %s: _PyRuntime symbol size %llu, table sizeof_runtime %u\n",
                      t->label, (unsigned long long)rsize, o->sizeof_runtime);
    assert_int_equal(rsize, o->sizeof_runtime);

    /* interpreter -> thread */
    uint64_t interp = rd64(pid, runtime + o->runtime_interpreters_head);
    assert_true(interp != 0 && interp % 8 == 0);
    assert_int_equal(rd64(pid, interp + o->interp_id), 0); /* the main interpreter */
    assert_int_equal(rd64(pid, interp + o->interp_next), 0);
    uint64_t ts = rd64(pid, interp + o->interp_threads_head);
    assert_true(ts != 0);
    assert_int_equal(rd64(pid, ts + o->tstate_interp), interp);
    assert_int_equal(rd64(pid, ts + o->tstate_prev), 0); /* the newest thread */
    assert_true(rd64(pid, ts + o->tstate_thread_id) != 0);
    if (PRESENT(o->tstate_native_thread_id))
        assert_int_equal(rd64(pid, ts + o->tstate_native_thread_id), (uint64_t)pid);
    if (PRESENT(o->tstate_datastack_chunk)) {
        uint64_t chunk = rd64(pid, ts + o->tstate_datastack_chunk);
        uint64_t top = rd64(pid, ts + o->tstate_datastack_top);
        uint64_t limit = rd64(pid, ts + o->tstate_datastack_limit);
        uint64_t csize = rd64(pid, chunk + o->chunk_size);
        assert_true(chunk + o->chunk_data <= top && top <= limit && limit <= chunk + csize);
    }

    /* thread -> frames */
    uint64_t f = rd64(pid, ts + o->tstate_frame);
    if (PRESENT(o->cframe_current_frame)) f = rd64(pid, f + o->cframe_current_frame);
    static const char *const names[3] = {"au_gen_probe", "au_outer_\xce\xa9", "<module>"};
    static const int firstline[3] = {2, 1, 1};
    uint64_t frames[3] = {0, 0, 0};
    int nfr = 0, hops = 0;
    while (f != 0 && nfr < 3) {
        assert_true(++hops < 64);
        if (PRESENT(o->frame_owner)) {
            uint8_t owner = rd8(pid, f + o->frame_owner);
            assert_true(owner < 32);
            if (o->frame_skip_owners >> owner & 1) {
                f = rd64(pid, f + o->frame_previous);
                continue;
            }
            int8_t want = nfr == 0 ? o->frame_owner_generator : o->frame_owner_thread;
            assert_int_equal(owner, want);
        }
        uint64_t code = rd64(pid, f + o->frame_code) & ~o->frame_code_tag_mask;
        char buf[256];
        unsigned kind;
        int ascii;
        type_name(pid, o, code, buf, 16);
        assert_string_equal(buf, "code");
        rd_str(pid, o, rd64(pid, code + o->code_name), buf, sizeof buf, &kind, &ascii);
        assert_string_equal(buf, names[nfr]);
        if (nfr == 1) { /* au_outer_Ω: UCS-2, not ASCII: data after the compact header */
            assert_int_equal(kind, 2);
            assert_false(ascii);
        } else {
            assert_int_equal(kind, 1);
            assert_true(ascii);
        }
        if (PRESENT(o->code_qualname)) {
            rd_str(pid, o, rd64(pid, code + o->code_qualname), buf, sizeof buf, &kind, &ascii);
            assert_string_equal(buf, names[nfr]);
        }
        rd_ascii_str(pid, o, rd64(pid, code + o->code_filename), buf, sizeof buf);
        assert_string_equal(buf, "<string>");
        assert_int_equal((int32_t)rd32(pid, code + o->code_firstlineno), firstline[nfr]);
        /* <= 3.10: every frame on the stack executes (the reader's test of
         * a chain's last frame); 3.11: <module> began an interpreter call. */
        if (PRESENT(o->frame_exec))
            assert_int_equal((int8_t)rd8(pid, f + o->frame_exec), o->frame_exec_value);
        if (PRESENT(o->frame_entry) && nfr == 2) assert_int_equal(rd8(pid, f + o->frame_entry), 1);
        type_name(pid, o, rd64(pid, code + o->code_linetable), buf, 16);
        assert_string_equal(buf, "bytes");

        /* The instruction position lies inside the bytecode. */
        if (o->instr_kind <= AU_PY_INSTR_UNIT_LASTI) {
            uint64_t co_code = rd64(pid, code + o->code_code);
            type_name(pid, o, co_code, buf, 16);
            assert_string_equal(buf, "bytes");
            int64_t nbytes = (int64_t)rd64(pid, co_code + o->var_ob_size);
            int32_t lasti = (int32_t)rd32(pid, f + o->frame_instr);
            int64_t at = o->instr_kind == AU_PY_INSTR_BYTE_LASTI ? lasti : 2 * (int64_t)lasti;
            assert_true(at >= 0 && at < nbytes);
        } else {
            uint64_t start = code + o->code_code_adaptive;
            uint64_t units = rd64(pid, code + o->var_ob_size); /* code is a PyVarObject */
            uint64_t ip = rd64(pid, f + o->frame_instr);
            assert_true(ip >= start && ip < start + 2 * units);
        }
        frames[nfr++] = f;
        f = rd64(pid, f + o->frame_previous);
    }
    assert_int_equal(nfr, 3);

    /* The innermost frame is a running generator's. */
    if (PRESENT(o->gen_iframe)) {
        uint64_t gen = frames[0] - o->gen_iframe;
        char buf[64];
        type_name(pid, o, gen, buf, 16);
        assert_string_equal(buf, "generator");
        rd_ascii_str(pid, o, rd64(pid, gen + o->gen_name), buf, sizeof buf);
        assert_string_equal(buf, "au_gen_probe");
        rd_ascii_str(pid, o, rd64(pid, gen + o->gen_qualname), buf, sizeof buf);
        assert_string_equal(buf, "au_gen_probe");
        assert_int_equal((int8_t)rd8(pid, gen + o->gen_state), o->gen_state_executing);
        if (PRESENT(o->gen_code))
            assert_int_equal(rd64(pid, gen + o->gen_code), rd64(pid, frames[0] + o->frame_code));
    } else if (o->gen_state_kind == AU_PY_GEN_STATE_FRAME) {
        /* 3.10: the state lives in the frame. */
        assert_int_equal((int8_t)rd8(pid, frames[0] + o->gen_state), o->gen_state_executing);
    }
    print_message("%s: walked 3 frames with the %s table%s\n", t->label, o->name,
                  compiled->debug ? " (+ published offsets)" : "");
    assert_int_equal(diffs, 0);
}

int main(void) {
    struct CMUnitTest tests[8 + sizeof k_live / sizeof k_live[0]] = {
        cmocka_unit_test(test_every_version_has_an_entry),
        cmocka_unit_test(test_lookup_by_patch_level),
        cmocka_unit_test(test_unsupported_versions),
        cmocka_unit_test(test_presence_matches_documentation),
        cmocka_unit_test(test_offsets_fit_their_structs),
        cmocka_unit_test(test_kinds_and_values),
        cmocka_unit_test(test_debug_layouts),
        cmocka_unit_test(test_apply_debug),
    };
    size_t n = 8;
    for (size_t i = 0; i < sizeof k_live / sizeof k_live[0]; i++) {
        struct CMUnitTest u = cmocka_unit_test_prestate_setup_teardown(test_live, NULL,
                                                                       kill_target, &k_live[i]);
        u.name = k_live[i].label;
        tests[n++] = u;
    }
    assert_int_equal(n, sizeof tests / sizeof tests[0]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
