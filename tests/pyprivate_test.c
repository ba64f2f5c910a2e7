/*
 * Tests of the runtime-measured CPython layouts (core/cpython/au_pyprivate.h,
 * generated core/cpython/pyprivate_table.c).
 *
 *  - lookup: every supported minor version has an entry, patch levels map
 *    to their minor's entry, unsupported versions give NULL;
 *  - invariants: fields exist in exactly the versions au_pyprivate.h documents,
 *    offsets fit their objects, are aligned and distinct, kinds and values
 *    are the documented ones, type names are there, the .AsyncioDebug
 *    layouts are well formed;
 *  - au_py_asyncio_debug_apply on synthetic sections (valid and hostile);
 *  - live: every interpreter of tests/pythons.h runs tools/probe_private.py
 *    (with the compiled au_py_offsets of its version as --hdr).  The probe
 *    measures every fact again and checks the reader's rules from raw
 *    memory (yf, running loop, current task, task containers, instance
 *    attributes, dicts, sets, callbacks), failing if any rule is wrong.
 *    The compiled au_py_private entry must equal what it measures, and on
 *    3.14+ the .AsyncioDebug section read from the live process (outside,
 *    with process_vm_readv) must equal the tables.
 *    A missing interpreter is skipped with a reason, or fails when the
 *    environment has CI=true (bazel test --test_env=CI=true).
 *
 * The live part runs interpreters outside the workspace: tagged `external`.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "au_pyoffsets.h"
#include "au_pyprivate.h"
#include "pythons.h"
#include "target_elf.h"

#define MINOR(v) (((v) >> 16) & 0xFFu)
#define HEX(minor) (0x03000000u | ((uint32_t)(minor) << 16) | 0xF0u)
#define PROBE_PATH "tools/probe_private.py"
#define PROBE_TIMEOUT_MS 120000

static const au_py_private *entry(unsigned minor) {
    const au_py_private *p = au_py_private_for(HEX(minor));
    assert_non_null(p);
    return p;
}

static const au_py_field_desc *field(const char *name) {
    size_t n = 0;
    const au_py_field_desc *d = au_py_private_fields(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].name, name) == 0) return &d[i];
    return NULL;
}

static int is_absent(const void *base, const au_py_field_desc *d) {
    const unsigned char *p = (const unsigned char *)base + d->offset;
    switch (d->type) {
    case AU_PY_FT_U32: return au_py_field_value(base, d) == AU_PYOFF_ABSENT;
    case AU_PY_FT_I32: return au_py_field_value(base, d) == AU_PY_SOFF_ABSENT;
    case AU_PY_FT_I8: return au_py_field_value(base, d) == AU_PY_VALUE_NONE;
    case AU_PY_FT_U16: return au_py_field_value(base, d) == AU_PY_OPCODE_NONE;
    case AU_PY_FT_STR: {
        const char *s;
        memcpy(&s, p, sizeof s);
        return s == NULL;
    }
    default: return 0; /* kinds and bytes are always present */
    }
}

static const char *str_field(const au_py_private *p, const au_py_field_desc *d) {
    const char *s;
    memcpy(&s, (const unsigned char *)p + d->offset, sizeof s);
    return s;
}

/* The names of au_py_type_id, as the probe prints them. */
static const char *const k_type_ids[AU_PYT_COUNT] = {
    "TASK",
    "FUTURE",
    "FUTURE_ITER",
    "GATHERING_FUTURE",
    "COROUTINE",
    "GENERATOR",
    "ASYNC_GENERATOR",
    "ASYNC_GEN_ASEND",
    "ASYNC_GEN_ATHROW",
    "CORO_WRAPPER",
    "WEAKREF",
    "SET",
    "DICT",
    "LIST",
    "TUPLE",
    "CELL",
    "FUNCTION",
    "METHOD",
    "BUILTIN_METHOD",
    "PARTIAL",
    "INT",
    "STR",
    "NONE",
    "MODULE",
    "WAKEUP",
    "WEAKSET",
    "TASK_GROUP",
    "RUNNING_LOOP_HOLDER",
    "SET_DUMMY",
};

/* ------------------------------------------------------------------------
 * Which fields exist in which minor versions (au_pyprivate.h says so field by
 * field; this is the same statement, checked).
 * --------------------------------------------------------------------- */
typedef struct presence {
    const char *name;
    uint8_t first, last; /* minor versions */
} presence;

static const presence k_presence[] = {
    {"sizeof_future", 9, 15},
    {"sizeof_task", 9, 15},
    {"fut_loop", 9, 15},
    {"fut_callback0", 9, 15},
    {"fut_context0", 9, 15},
    {"fut_callbacks", 9, 15},
    {"fut_state", 9, 15},
    {"fut_awaited_by", 14, 15},
    {"fut_is_task", 14, 15},
    {"fut_awaited_by_is_set", 14, 15},
    {"task_fut_waiter", 9, 15},
    {"task_coro", 9, 15},
    {"task_name", 9, 15},
    {"task_context", 9, 15},
    {"task_node", 14, 15},
    {"futureiter_future", 9, 15},
    {"wakeup_task", 9, 15},
    {"rloop_holder_loop", 9, 11},
    {"asend_gen", 9, 15},
    {"athrow_gen", 9, 15},
    {"coro_wrapper_coro", 9, 15},
    {"partial_fn", 9, 15},
    {"partial_args", 9, 15},
    {"partial_kw", 9, 15},
    {"module_md_dict", 9, 15},
    {"dk_size", 9, 15},
    {"dk_log2_index_bytes", 11, 15},
    {"dk_kind", 11, 15},
    {"dk_nentries", 9, 15},
    {"dk_indices", 9, 15},
    {"dict_entry_size", 9, 15},
    {"dict_entry_hash", 9, 15},
    {"dict_entry_key", 9, 15},
    {"dict_entry_value", 9, 15},
    {"dict_uentry_size", 11, 15},
    {"dict_uentry_key", 11, 15},
    {"dict_uentry_value", 11, 15},
    {"dict_values_array", 9, 15},
    {"dict_values_valid", 13, 15},
    {"future_dictoffset", 9, 15},
    {"inst_dict_ptr", 11, 15},
    {"inst_values_ptr", 11, 12},
    {"fut_state_pending", 9, 15},
    {"fut_state_cancelled", 9, 15},
    {"fut_state_finished", 9, 15},
    {"dk_kind_general", 11, 15},
    {"dk_kind_unicode", 11, 15},
    {"dk_kind_split", 11, 15},
    {"inst_values_tag", 12, 12},
    {"inst_values_adjust", 12, 12},
    {"task_name_kind", 9, 15},
    {"wakeup_kind", 9, 15},
    {"rloop_kind", 9, 15},
    {"ctask_kind", 9, 15},
    {"tasks_kind", 9, 15},
    {"dk_size_kind", 9, 15},
    {"inst_kind", 9, 15},
    {"asyncio_module", 9, 15},
    {"tasks_weakset_name", 9, 13},
    {"tasks_eager_set_name", 12, 13},
    {"weakset_data_attr", 9, 15},
    {"ctask_dict_name", 9, 13},
    {"rloop_key", 9, 12},
    {"task_name_prefix", 9, 15},
    {"wakeup_method_name", 10, 15},
};
#define NPRESENCE (sizeof k_presence / sizeof k_presence[0])

/* ------------------------------------------------------------------------
 * Lookup
 * --------------------------------------------------------------------- */
static void test_every_version_has_an_entry(void **state) {
    (void)state;
    size_t n = 0;
    const au_py_private *all = au_py_private_all(&n);
    /* 3.11.2/3.11.7 and 3.13.0/3.13.18 measured identically: one each. */
    assert_int_equal(n, 7);
    for (unsigned minor = 9; minor <= 15; minor++) {
        const au_py_private *p = entry(minor);
        char name[8];
        snprintf(name, sizeof name, "3.%u", minor);
        assert_string_equal(p->name, name);
        assert_int_equal(MINOR(p->version_hex), minor);
        assert_int_equal(strncmp(p->measured, name, strlen(name)), 0);
        assert_int_equal(p->measured[strlen(name)], '.');
        assert_int_equal(p->flags, AU_PY_FLAG_DEFAULT_BUILD);
        assert_ptr_equal(p, &all[minor - 9]);
    }
    for (size_t i = 1; i < n; i++)
        assert_true(all[i - 1].version_hex < all[i].version_hex);
    assert_ptr_equal(au_py_private_all(NULL), all);
}

static void test_lookup(void **state) {
    (void)state;
    assert_ptr_equal(au_py_private_for(0x030B02F0), entry(11)); /* 3.11.2 */
    assert_ptr_equal(au_py_private_for(0x030B07F0), entry(11));
    assert_ptr_equal(au_py_private_for(0x030D00F0), entry(13)); /* older than measured */
    assert_ptr_equal(au_py_private_for(0x030D12F0), entry(13));
    assert_ptr_equal(au_py_private_for(0x030E00C2), entry(14)); /* 3.14.0rc2 */
    assert_ptr_equal(au_py_private_for(0x030F63F0), entry(15));
    assert_null(au_py_private_for(0x030812F0));
    assert_null(au_py_private_for(0x031000A1));
    assert_null(au_py_private_for(0));
    assert_null(au_py_private_for(UINT32_MAX));
}

/* ------------------------------------------------------------------------
 * Invariants
 * --------------------------------------------------------------------- */
static void test_presence_matches_documentation(void **state) {
    (void)state;
    size_t nf = 0;
    const au_py_field_desc *fd = au_py_private_fields(&nf);
    /* Every field is listed exactly once. */
    assert_int_equal(nf, NPRESENCE);
    for (size_t i = 0; i < NPRESENCE; i++) {
        assert_non_null(field(k_presence[i].name));
        for (size_t j = i + 1; j < NPRESENCE; j++)
            assert_string_not_equal(k_presence[i].name, k_presence[j].name);
    }
    for (unsigned minor = 9; minor <= 15; minor++) {
        const au_py_private *p = entry(minor);
        for (size_t i = 0; i < NPRESENCE; i++) {
            const au_py_field_desc *d = field(k_presence[i].name);
            int want = minor >= k_presence[i].first && minor <= k_presence[i].last;
            if (want == is_absent(p, d))
                fail_msg("3.%u: %s is %s but should be %s", minor, d->name,
                         want ? "absent" : "present", want ? "present" : "absent");
        }
        for (unsigned t = 0; t < AU_PYT_COUNT; t++) {
            int want = !(t == AU_PYT_TASK_GROUP && minor < 11) &&
                       !(t == AU_PYT_RUNNING_LOOP_HOLDER && minor > 11);
            if (want != (p->tp_name[t] != NULL))
                fail_msg("3.%u: tp_name[%s] is %s", minor, k_type_ids[t],
                         p->tp_name[t] ? p->tp_name[t] : "NULL");
        }
        assert_int_equal(p->asyncio_debug != NULL, minor >= 14);
    }
    (void)fd;
}

static void within(unsigned minor, const char *what, uint32_t off, uint32_t width, uint32_t lo,
                   uint32_t hi) {
    if (off == AU_PYOFF_ABSENT) return;
    if (off < lo || (uint64_t)off + width > hi)
        fail_msg("3.%u: %s at %u (+%u) outside [%u, %u)", minor, what, off, width, lo, hi);
    if (width >= 8 && off % 8 != 0) fail_msg("3.%u: %s at %u not 8-aligned", minor, what, off);
}

static void distinct(unsigned minor, const char *group, const uint32_t *offs, size_t n) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (offs[i] != AU_PYOFF_ABSENT && offs[i] == offs[j])
                fail_msg("3.%u: two %s fields share offset %u", minor, group, offs[i]);
}

static void test_offsets_fit(void **state) {
    (void)state;
    for (unsigned minor = 9; minor <= 15; minor++) {
        const au_py_private *p = entry(minor);
        const au_py_offsets *o = au_py_offsets_for(p->version_hex);
        assert_non_null(o);
        assert_in_range(p->sizeof_future, 64, 512);
        assert_true(p->sizeof_task > p->sizeof_future && p->sizeof_task <= 512);
        /* Future fields follow the object header, within the FutureObj. */
        const uint32_t fut[] = {p->fut_loop, p->fut_callback0, p->fut_context0, p->fut_callbacks,
                                p->fut_awaited_by};
        for (size_t i = 0; i < sizeof fut / sizeof fut[0]; i++)
            within(minor, "future field", fut[i], 8, 16, p->sizeof_future);
        within(minor, "fut_state", p->fut_state, 4, 16, p->sizeof_future);
        within(minor, "fut_is_task", p->fut_is_task, 1, 16, p->sizeof_future);
        within(minor, "fut_awaited_by_is_set", p->fut_awaited_by_is_set, 1, 16, p->sizeof_future);
        const uint32_t f2[] = {
            p->fut_loop,  p->fut_callback0,  p->fut_context0, p->fut_callbacks,
            p->fut_state, p->fut_awaited_by, p->fut_is_task,  p->fut_awaited_by_is_set};
        distinct(minor, "FutureObj", f2, sizeof f2 / sizeof f2[0]);
        /* Task fields follow the FutureObj part. */
        const uint32_t task[] = {p->task_fut_waiter, p->task_coro, p->task_name, p->task_context,
                                 p->task_node};
        for (size_t i = 0; i < sizeof task / sizeof task[0]; i++)
            within(minor, "task field", task[i], i == 4 ? 16 : 8, p->sizeof_future, p->sizeof_task);
        distinct(minor, "TaskObj", task, sizeof task / sizeof task[0]);
        if (p->future_dictoffset > 0)
            within(minor, "future_dictoffset", (uint32_t)p->future_dictoffset, 8, 16,
                   p->sizeof_future);
        else
            assert_int_equal(p->future_dictoffset, -1);
        /* Small objects: a pointer right after the object header. */
        const uint32_t small[] = {p->futureiter_future, p->wakeup_task,  p->rloop_holder_loop,
                                  p->asend_gen,         p->athrow_gen,   p->coro_wrapper_coro,
                                  p->partial_fn,        p->partial_args, p->partial_kw,
                                  p->module_md_dict};
        for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
            within(minor, "object field", small[i], 8, 16, 128);
        const uint32_t part[] = {p->partial_fn, p->partial_args, p->partial_kw};
        distinct(minor, "partial", part, 3);
        /* Dict keys: header fields before the indices, entries in order. */
        const uint32_t dk[] = {p->dk_size, p->dk_log2_index_bytes, p->dk_kind, p->dk_nentries};
        within(minor, "dk_size", p->dk_size, p->dk_size_kind == AU_PY_DK_SIZE ? 8 : 1, 8,
               p->dk_indices);
        within(minor, "dk_log2_index_bytes", p->dk_log2_index_bytes, 1, 8, p->dk_indices);
        within(minor, "dk_kind", p->dk_kind, 1, 8, p->dk_indices);
        within(minor, "dk_nentries", p->dk_nentries, 8, 8, p->dk_indices);
        distinct(minor, "PyDictKeysObject", dk, 4);
        assert_int_equal(p->dict_entry_size, 24);
        const uint32_t ent[] = {p->dict_entry_hash, p->dict_entry_key, p->dict_entry_value};
        for (size_t i = 0; i < 3; i++)
            within(minor, "entry field", ent[i], 8, 0, p->dict_entry_size);
        distinct(minor, "entry", ent, 3);
        if (minor >= 11) {
            assert_int_equal(p->dict_uentry_size, 16);
            within(minor, "uentry key", p->dict_uentry_key, 8, 0, 16);
            within(minor, "uentry value", p->dict_uentry_value, 8, 0, 16);
            assert_int_not_equal(p->dict_uentry_key, p->dict_uentry_value);
        }
        within(minor, "dict_values_array", p->dict_values_array, 8, 0, 16);
        within(minor, "dict_values_valid", p->dict_values_valid, 1, 0, p->dict_values_array);
        /* Instance attributes live in the pre-header (before the GC
         * header's 16 bytes). */
        if (minor >= 11) assert_in_range(-p->inst_dict_ptr, 17, 64);
        if (p->inst_values_ptr != AU_PY_SOFF_ABSENT) assert_in_range(-p->inst_values_ptr, 17, 64);
        /* 3.10+: the wakeup callback is a builtin method: m_self. */
        if (p->wakeup_kind == AU_PY_WAKEUP_CFUNCTION)
            assert_int_equal(p->wakeup_task, o->cfunc_m_self);
    }
}

static void test_kinds_and_values(void **state) {
    (void)state;
    for (unsigned minor = 9; minor <= 15; minor++) {
        const au_py_private *p = entry(minor);
        assert_int_equal(p->fut_state_pending, 0);
        assert_int_equal(p->fut_state_cancelled, 1);
        assert_int_equal(p->fut_state_finished, 2);
        assert_int_equal(p->task_name_kind,
                         minor <= 11 ? AU_PY_TASK_NAME_STR : AU_PY_TASK_NAME_INT_OR_STR);
        assert_int_equal(p->wakeup_kind,
                         minor == 9 ? AU_PY_WAKEUP_WRAPPER : AU_PY_WAKEUP_CFUNCTION);
        assert_int_equal(p->rloop_kind, minor <= 11   ? AU_PY_RLOOP_TSDICT_HOLDER
                                        : minor == 12 ? AU_PY_RLOOP_TSDICT
                                                      : AU_PY_RLOOP_TSTATE);
        assert_int_equal(p->ctask_kind, minor <= 13 ? AU_PY_CTASK_MODULE_DICT : AU_PY_CTASK_TSTATE);
        assert_int_equal(p->tasks_kind, minor <= 11   ? AU_PY_TASKS_WEAKSET
                                        : minor <= 13 ? AU_PY_TASKS_WEAKSET_AND_SET
                                                      : AU_PY_TASKS_LLIST);
        assert_int_equal(p->dk_size_kind, minor <= 10 ? AU_PY_DK_SIZE : AU_PY_DK_LOG2);
        assert_int_equal(p->inst_kind, minor <= 10   ? AU_PY_INST_DICTOFFSET
                                       : minor == 11 ? AU_PY_INST_MANAGED
                                       : minor == 12 ? AU_PY_INST_TAGGED
                                                     : AU_PY_INST_INLINE);
        if (minor >= 11) {
            assert_int_equal(p->dk_kind_general, 0);
            assert_int_equal(p->dk_kind_unicode, 1);
            assert_int_equal(p->dk_kind_split, 2);
        }
        if (minor == 12) {
            assert_int_equal(p->inst_values_tag, 1);
            assert_int_equal(p->inst_values_adjust, 1);
        }
        assert_string_equal(p->asyncio_module, "_asyncio");
        assert_string_equal(p->weakset_data_attr, "data");
        assert_string_equal(p->task_name_prefix, "Task-");
        if (minor <= 11)
            assert_string_equal(p->tasks_weakset_name, "_all_tasks");
        else if (minor <= 13)
            assert_string_equal(p->tasks_weakset_name, "_scheduled_tasks");
        if (minor >= 12 && minor <= 13)
            assert_string_equal(p->tasks_eager_set_name, "_eager_tasks");
        if (minor <= 13) assert_string_equal(p->ctask_dict_name, "_current_tasks");
        if (minor <= 12) assert_string_equal(p->rloop_key, "__asyncio_running_event_loop__");
        if (minor >= 10) assert_string_equal(p->wakeup_method_name, "task_wakeup");
        assert_string_equal(p->tp_name[AU_PYT_TASK], "_asyncio.Task");
        assert_string_equal(p->tp_name[AU_PYT_FUTURE], "_asyncio.Future");
        assert_string_equal(p->tp_name[AU_PYT_WAKEUP],
                            minor == 9 ? "TaskWakeupMethWrapper" : "builtin_function_or_method");
        assert_string_equal(p->tp_name[AU_PYT_WEAKREF],
                            minor == 9 ? "weakref" : "weakref.ReferenceType");
        for (unsigned t = 0; t < AU_PYT_COUNT; t++)
            if (p->tp_name[t] != NULL) assert_in_range(strlen(p->tp_name[t]), 1, 64);
    }
}

static void test_asyncio_debug_layouts(void **state) {
    (void)state;
    size_t nf = 0;
    const au_py_field_desc *fd = au_py_private_fields(&nf);
    (void)fd;
    for (unsigned minor = 14; minor <= 15; minor++) {
        const au_py_private *p = entry(minor);
        const au_py_offsets *o = au_py_offsets_for(p->version_hex);
        const au_py_asyncio_debug_layout *d = p->asyncio_debug;
        assert_non_null(d);
        assert_string_equal(d->section, ".AsyncioDebug");
        assert_int_equal(d->nfields, 13);
        assert_int_equal(d->size, 8u * d->nfields);
        for (uint16_t i = 0; i < d->nfields; i++) {
            const au_py_adbg_field *f = &d->fields[i];
            assert_int_equal(f->pos, 8u * i); /* every uint64_t is published */
            assert_true(f->table == AU_PY_ADBG_PRIVATE || f->table == AU_PY_ADBG_OFFSETS);
            uint32_t v;
            if (f->table == AU_PY_ADBG_PRIVATE) {
                assert_true(f->field + sizeof v <= sizeof *p);
                memcpy(&v, (const unsigned char *)p + f->field, sizeof v);
            } else {
                assert_true(f->field + sizeof v <= sizeof *o);
                memcpy(&v, (const unsigned char *)o + f->field, sizeof v);
            }
            assert_int_not_equal(v, AU_PYOFF_ABSENT);
            assert_non_null(f->name);
            assert_non_null(f->published_as);
        }
        /* The published order, per Py_AsyncioModuleDebugOffsets. */
        assert_string_equal(d->fields[0].published_as, "asyncio_task_object.size");
        assert_string_equal(d->fields[6].published_as, "asyncio_task_object.task_node");
        assert_string_equal(d->fields[7].published_as, "asyncio_interpreter_state.size");
        assert_string_equal(d->fields[9].published_as, "asyncio_thread_state.size");
        assert_string_equal(d->fields[12].published_as, "asyncio_thread_state.asyncio_tasks_head");
    }
}

/* ------------------------------------------------------------------------
 * au_py_asyncio_debug_apply on synthetic sections
 * --------------------------------------------------------------------- */
static uint32_t table_value(const au_py_private *p, const au_py_offsets *o,
                            const au_py_adbg_field *f) {
    uint32_t v;
    memcpy(&v,
           (const unsigned char *)(f->table == AU_PY_ADBG_PRIVATE ? (const void *)p
                                                                  : (const void *)o) +
               f->field,
           sizeof v);
    return v;
}

static void put_u64(uint8_t *b, uint32_t pos, uint64_t v) {
    memcpy(b + pos, &v, sizeof v);
}

static void test_asyncio_debug_apply(void **state) {
    (void)state;
    for (unsigned minor = 14; minor <= 15; minor++) {
        const au_py_private *bp = entry(minor);
        const au_py_offsets *bo = au_py_offsets_for(bp->version_hex);
        const au_py_asyncio_debug_layout *d = bp->asyncio_debug;
        uint8_t blob[256] = {0};
        for (uint16_t i = 0; i < d->nfields; i++)
            put_u64(blob, d->fields[i].pos, table_value(bp, bo, &d->fields[i]));
        au_py_private p = *bp;
        au_py_offsets o = *bo;
        /* The table's own values: nothing changes but the flag. */
        assert_int_equal(au_py_asyncio_debug_apply(&p, &o, blob, d->size), 0);
        assert_int_equal(p.flags, AU_PY_FLAG_DEFAULT_BUILD | AU_PY_FLAG_FROM_DEBUG_OFFSETS);
        assert_memory_equal(&o, bo, sizeof o);
        /* A patch release moved the task name and the thread's task list
         * head: the published values win, in both tables. */
        put_u64(blob, 8, bp->task_name + 8);                  /* asyncio_task_object.task_name */
        put_u64(blob, 96, bo->tstate_asyncio_tasks_head + 8); /* thread tasks_head */
        assert_int_equal(au_py_asyncio_debug_apply(&p, &o, blob, d->size + 8), 2);
        assert_int_equal(p.task_name, bp->task_name + 8);
        assert_int_equal(o.tstate_asyncio_tasks_head, bo->tstate_asyncio_tasks_head + 8);
        assert_int_equal(p.task_coro, bp->task_coro);

        /* Hostile sections: nothing is written. */
        au_py_private p2 = *bp;
        au_py_offsets o2 = *bo;
        assert_int_equal(au_py_asyncio_debug_apply(&p2, &o2, blob, d->size - 1), AU_ERR_FORMAT);
        uint8_t bad[256];
        memcpy(bad, blob, sizeof bad);
        put_u64(bad, 40, (uint64_t)AU_PY_DEBUG_MAX_VALUE + 1); /* task_coro */
        assert_int_equal(au_py_asyncio_debug_apply(&p2, &o2, bad, d->size), AU_ERR_CORRUPT);
        memcpy(bad, blob, sizeof bad);
        put_u64(bad, 48, bp->sizeof_task); /* task_node beyond the task */
        assert_int_equal(au_py_asyncio_debug_apply(&p2, &o2, bad, d->size), AU_ERR_CORRUPT);
        memcpy(bad, blob, sizeof bad);
        put_u64(bad, 72, 64); /* thread state size smaller than its fields */
        assert_int_equal(au_py_asyncio_debug_apply(&p2, &o2, bad, d->size), AU_ERR_CORRUPT);
        memcpy(bad, blob, sizeof bad);
        put_u64(bad, 64, bo->sizeof_interp); /* interp tasks head beyond */
        assert_int_equal(au_py_asyncio_debug_apply(&p2, &o2, bad, d->size), AU_ERR_CORRUPT);
        assert_memory_equal(&p2, bp, sizeof p2);
        assert_memory_equal(&o2, bo, sizeof o2);
    }
    au_py_private p = *entry(13);
    au_py_offsets o = *au_py_offsets_for(entry(13)->version_hex);
    uint8_t blob[256] = {0};
    assert_int_equal(au_py_asyncio_debug_apply(&p, &o, blob, sizeof blob), AU_ERR_ARG);
    p = *entry(14);
    assert_int_equal(au_py_asyncio_debug_apply(NULL, &o, blob, sizeof blob), AU_ERR_ARG);
    assert_int_equal(au_py_asyncio_debug_apply(&p, NULL, blob, sizeof blob), AU_ERR_ARG);
    assert_int_equal(au_py_asyncio_debug_apply(&p, &o, NULL, sizeof blob), AU_ERR_ARG);
}

/* ------------------------------------------------------------------------
 * Live: the probe under every interpreter
 * --------------------------------------------------------------------- */

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A running child with its stdout piped. */
typedef struct child {
    pid_t pid;
    int fd;
} child;

static child spawn(const char *const *argv) {
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(fds[1], 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    return (child){pid, fds[0]};
}

static void reap(child *c) {
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
        c->pid = 0;
    }
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

/* 1 when text has a line equal to `line`. */
static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *at = text; (at = strstr(at, line)) != NULL; at++)
        if ((at == text || at[-1] == '\n') && at[n] == '\n') return 1;
    return 0;
}

/* Read c's stdout into a malloc'd string until a line equals `until`, or
 * until EOF (until == NULL); fails on timeout.  An EOF before `until`
 * fails too, unless `early` is given: then *early is set and what was read
 * is returned. */
static char *read_output(child *c, const char *until, const char *label, int *early) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    buf[0] = '\0';
    long deadline = now_ms() + PROBE_TIMEOUT_MS;
    for (;;) {
        if (until != NULL && has_line(buf, until)) break;
        long left = deadline - now_ms();
        if (left <= 0)
            fail_msg("%s: no %s from the probe in %d ms", label, until ? until : "EOF",
                     PROBE_TIMEOUT_MS);
        struct pollfd p = {c->fd, POLLIN, 0};
        int rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR) continue;
        if (rc <= 0) continue;
        if (len + 4096 + 1 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t n = read(c->fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (until != NULL && early != NULL) {
                *early = 1;
                break;
            }
            if (until != NULL)
                fail_msg("%s: the probe exited before %s; output:\n%s", label, until, buf);
            break;
        }
        len += (size_t)n;
        buf[len] = '\0';
    }
    return buf;
}

/* "NAME=VALUE,..." of every numeric au_py_offsets field; absent ones as
 * "NAME=". */
static char *hdr_arg(const au_py_offsets *o) {
    size_t n = 0;
    const au_py_field_desc *fd = au_py_offsets_fields(&n);
    size_t cap = 64 * n + 1, at = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int64_t v = au_py_field_value(o, &fd[i]);
        int absent = (fd[i].type == AU_PY_FT_U32 && v == AU_PYOFF_ABSENT) ||
                     (fd[i].type == AU_PY_FT_I8 && v == AU_PY_VALUE_NONE) ||
                     (fd[i].type == AU_PY_FT_U16 && v == AU_PY_OPCODE_NONE);
        if (absent)
            at += (size_t)snprintf(s + at, cap - at, "%s%s=", at ? "," : "", fd[i].name);
        else
            at += (size_t)snprintf(s + at, cap - at, "%s%s=%lld", at ? "," : "", fd[i].name,
                                   (long long)v);
        assert_true(at < cap);
    }
    return s;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) fail_msg("%s: %s", path, strerror(errno));
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0 && n < (1 << 17)); /* one argv string: < 128 KiB */
    rewind(f);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* A JSON string of plain ASCII as the probe prints it ("..." with \" and
 * \\ escapes only), unescaped into out. */
static void unjson(const char *in, char *out, size_t cap, const char *what) {
    size_t w = 0;
    if (*in++ != '"') fail_msg("%s: not a string: %s", what, in - 1);
    for (; *in != '"'; in++) {
        if (*in == '\0' || w + 1 >= cap) fail_msg("%s: bad string", what);
        if (*in == '\\') {
            in++;
            if (*in != '"' && *in != '\\') fail_msg("%s: escape \\%c", what, *in);
        }
        out[w++] = *in;
    }
    out[w] = '\0';
}

/* The sys.hexversion of interpreter p. */
static uint32_t query_version(const py_interp *p) {
    const char *argv[12];
    int k = 0;
    for (int i = 0; i < p->argc; i++)
        argv[k++] = p->argv[i];
    argv[k++] = "-E";
    argv[k++] = "-S";
    argv[k++] = "-c";
    argv[k++] = "import sys; print(sys.hexversion)";
    argv[k] = NULL;
    child c = spawn(argv);
    char *out = read_output(&c, NULL, p->name, NULL);
    reap(&c);
    uint32_t v = (uint32_t)strtoul(out, NULL, 10);
    free(out);
    assert_int_equal(MINOR(v), (unsigned)p->minor);
    return v;
}

static const char *const k_required_checks[] = {
    "dict.items_and_lookup",
    "instance.attributes",
    "set.iteration",
    "yf.coroutine_await",
    "yf.generator_yield_from",
    "yf.async_generator_asend",
    "yf.coroutine_wrapper",
    "yf.quickened_and_traced",
    "yf.task_awaits_future",
    "yf.task_awaits_task",
    "running_loop",
    "running_loop.none",
    "current_task",
    "tasks.containers",
    "links.gather_closure",
    "links.partial_and_list",
};

/* Compare the probe's output with the compiled tables; returns the number
 * of differences (each printed). */
static int compare(const char *label, char *out, const au_py_private *p, const au_py_offsets *o,
                   uint32_t version) {
    size_t nf = 0;
    const au_py_field_desc *fd = au_py_private_fields(&nf);
    int *seen = calloc(nf, sizeof *seen);
    int tseen[AU_PYT_COUNT] = {0};
    int checks[sizeof k_required_checks / sizeof k_required_checks[0]] = {0};
    int diffs = 0, nchecks = 0, nadbg = 0;
    assert_non_null(seen);
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char kind[16], name[64];
        int used = 0;
        if (sscanf(line, "%15s %63s %n", kind, name, &used) < 2) {
            if (strcmp(line, "END") == 0) break;
            fail_msg("%s: bad probe line %s", label, line);
        }
        const char *val = line + used;
        char text[256];
        if (strcmp(kind, "version") == 0) {
            assert_int_equal(strtoul(name, NULL, 16), version);
        } else if (strcmp(kind, "priv") == 0) {
            size_t i = 0;
            while (i < nf && strcmp(fd[i].name, name) != 0)
                i++;
            if (i == nf) fail_msg("%s: probe prints unknown field %s", label, name);
            seen[i]++;
            int same;
            if (strcmp(val, "ABSENT") == 0) {
                same = is_absent(p, &fd[i]);
            } else if (fd[i].type == AU_PY_FT_STR) {
                unjson(val, text, sizeof text, name);
                same = str_field(p, &fd[i]) != NULL && strcmp(str_field(p, &fd[i]), text) == 0;
            } else {
                same =
                    !is_absent(p, &fd[i]) && strtoll(val, NULL, 10) == au_py_field_value(p, &fd[i]);
            }
            if (!same) {
                print_message("DIFFERENCE %s (table %s): %s measured %s, compiled %lld\n", label,
                              p->measured, name, val, (long long)au_py_field_value(p, &fd[i]));
                diffs++;
            }
        } else if (strcmp(kind, "tpname") == 0) {
            unsigned t = 0;
            while (t < AU_PYT_COUNT && strcmp(k_type_ids[t], name) != 0)
                t++;
            if (t == AU_PYT_COUNT) fail_msg("%s: unknown type id %s", label, name);
            tseen[t]++;
            int same;
            if (strcmp(val, "ABSENT") == 0) {
                same = p->tp_name[t] == NULL;
            } else {
                unjson(val, text, sizeof text, name);
                same = p->tp_name[t] != NULL && strcmp(p->tp_name[t], text) == 0;
            }
            if (!same) {
                print_message("DIFFERENCE %s: tp_name %s measured %s, compiled %s\n", label, name,
                              val, p->tp_name[t] ? p->tp_name[t] : "NULL");
                diffs++;
            }
        } else if (strcmp(kind, "check") == 0) {
            nchecks++;
            for (size_t k = 0; k < sizeof checks / sizeof checks[0]; k++)
                if (strcmp(k_required_checks[k], name) == 0) checks[k] = 1;
        } else if (strcmp(kind, "adbg") == 0) {
            /* adbg PUBLISHED_AS TABLE FIELD POS VALUE: the probe read the
             * section from the ELF file; its layout must be ours. */
            char where[8], fname[64];
            unsigned pos;
            unsigned long long v;
            if (sscanf(val, "%7s %63s %u %llu", where, fname, &pos, &v) != 4)
                fail_msg("%s: bad adbg line %s", label, line);
            const au_py_asyncio_debug_layout *d = p->asyncio_debug;
            assert_non_null(d);
            assert_true(pos / 8 < d->nfields);
            const au_py_adbg_field *f = &d->fields[pos / 8];
            assert_string_equal(f->published_as, name);
            assert_string_equal(f->name, fname);
            assert_int_equal(f->table,
                             strcmp(where, "priv") == 0 ? AU_PY_ADBG_PRIVATE : AU_PY_ADBG_OFFSETS);
            assert_int_equal(v, table_value(p, o, f));
            nadbg++;
        } else if (strcmp(kind, "note") != 0 && strcmp(kind, "adbg_file") != 0) {
            fail_msg("%s: unknown probe line %s", label, line);
        }
    }
    for (size_t i = 0; i < nf; i++)
        if (seen[i] != 1) fail_msg("%s: probe printed %s %d times", label, fd[i].name, seen[i]);
    for (unsigned t = 0; t < AU_PYT_COUNT; t++)
        if (tseen[t] != 1)
            fail_msg("%s: probe printed tp_name %s %d times", label, k_type_ids[t], tseen[t]);
    for (size_t k = 0; k < sizeof checks / sizeof checks[0]; k++)
        if (!checks[k]) fail_msg("%s: the probe did not check %s", label, k_required_checks[k]);
    if (p->asyncio_debug != NULL) assert_int_equal(nadbg, p->asyncio_debug->nfields);
    print_message("%s: %zu measured facts, %d rule checks passed (tables %s / %s)\n", label, nf,
                  nchecks, p->measured, o->headers);
    free(seen);
    return diffs;
}

/* 3.14+: the .AsyncioDebug section of the live target, read from outside,
 * must hold the table's values; applying it changes nothing. */
static void check_live_asyncio_debug(const char *label, pid_t pid, const au_py_private *p,
                                     const au_py_offsets *o) {
    const au_py_asyncio_debug_layout *d = p->asyncio_debug;
    te_hit hit;
    if (te_find(pid, TE_SECTION, d->section, &hit) != 0)
        fail_msg("%s: no %s section in the target's mapped files", label, d->section);
    assert_int_equal(hit.size, d->size);
    uint8_t blob[256];
    assert_true(d->size <= sizeof blob);
    struct iovec l = {blob, d->size}, r = {(void *)(uintptr_t)hit.addr, d->size};
    assert_int_equal(process_vm_readv(pid, &l, 1, &r, 1, 0), (ssize_t)d->size);
    int diffs = 0;
    for (uint16_t i = 0; i < d->nfields; i++) {
        uint64_t v;
        memcpy(&v, blob + d->fields[i].pos, sizeof v);
        if (v != table_value(p, o, &d->fields[i])) {
            print_message("DIFFERENCE %s: %s published %llu, table %s = %u\n", label,
                          d->fields[i].published_as, (unsigned long long)v, d->fields[i].name,
                          table_value(p, o, &d->fields[i]));
            diffs++;
        }
    }
    au_py_private pc = *p;
    au_py_offsets oc = *o;
    assert_int_equal(au_py_asyncio_debug_apply(&pc, &oc, blob, d->size), diffs);
    print_message("%s: %s in %s publishes %u values; %d differ from the tables\n", label,
                  d->section, hit.path, d->nfields, diffs);
    assert_int_equal(diffs, 0);
}

static void test_live(void **state) {
    const py_interp *p = *state;
    PY_REQUIRE(p);
    uint32_t version = query_version(p);
    const au_py_offsets *o = au_py_offsets_for(version);
    const au_py_private *priv = au_py_private_for(version);
    assert_non_null(o);
    assert_non_null(priv);
    /* 3.13+: the target may publish layouts differing from the compiled
     * ones; the probe must be given what the reader would use. */
    char *source = slurp(PROBE_PATH);
    char *hdr = hdr_arg(o);
    const char *argv[16];
    int k = 0;
    for (int i = 0; i < p->argc; i++)
        argv[k++] = p->argv[i];
    argv[k++] = "-E";
    argv[k++] = "-c";
    argv[k++] = source;
    argv[k++] = "--hdr";
    argv[k++] = hdr;
    argv[k++] = "--serve";
    argv[k] = NULL;
    /* The probe is CPython poking at its own objects through ctypes; under
     * a loaded CI once (sid 3.15, ASan step) it died mid-output, before
     * any of the core ran.  One more run tells such a crash of the probe
     * from a failing layout: a second early exit fails the test. */
    child c;
    char *out = NULL;
    for (int attempt = 1;; attempt++) {
        int early = 0;
        c = spawn(argv);
        out = read_output(&c, "END", p->name, attempt < 2 ? &early : NULL);
        if (!early) break;
        print_message("%s: the probe exited before END (attempt %d), output so far:\n%s\n",
                      p->name, attempt, out);
        reap(&c);
        free(out);
    }
    int diffs = compare(p->name, out, priv, o, version);
    if (priv->asyncio_debug != NULL) check_live_asyncio_debug(p->name, c.pid, priv, o);
    reap(&c);
    free(out);
    free(hdr);
    free(source);
    assert_int_equal(diffs, 0);
}

#define NINTERP 9 /* pythons.c lists 9 interpreters, available or not */

int main(void) {
    size_t ninterp = 0;
    const py_interp *interps = py_interpreters(&ninterp);
    if (ninterp != NINTERP) {
        fprintf(stderr, "pythons.c lists %zu interpreters, expected %d\n", ninterp, NINTERP);
        return 1;
    }
    struct CMUnitTest tests[7 + NINTERP];
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(test_every_version_has_an_entry),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_presence_matches_documentation),
        cmocka_unit_test(test_offsets_fit),
        cmocka_unit_test(test_kinds_and_values),
        cmocka_unit_test(test_asyncio_debug_layouts),
        cmocka_unit_test(test_asyncio_debug_apply),
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof unit / sizeof unit[0]; i++)
        tests[n++] = unit[i];
    for (size_t i = 0; i < NINTERP; i++) {
        struct CMUnitTest u = cmocka_unit_test_prestate(test_live, (void *)&interps[i]);
        u.name = interps[i].name;
        tests[n++] = u;
    }
    if (n != sizeof tests / sizeof tests[0]) return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
