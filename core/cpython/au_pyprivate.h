/*
 * CPython layouts no installed header describes, as data.
 *
 * au_py_offsets (au_pyoffsets.h) holds what each version's own headers say.
 * The asyncio model also reads structs that are private to a .c file:
 * asyncio's FutureObj/TaskObj and helpers (Modules/_asynciomodule.c), the
 * dict keys object (Objects/dict-common.h in 3.9-3.10), functools.partial,
 * the async generator helpers, the module object (3.9), and it depends on
 * where asyncio keeps things (the running loop, the current task, the task
 * containers).  None of that is in a header of every version, so it is
 * MEASURED: tools/probe_private.py runs inside every supported interpreter,
 * builds objects in known states and scans their memory for known
 * pointers and values, then checks the rules below from raw memory against
 * what Python itself reports.  tools/gen_private.py turns its output into
 * pyprivate_table.c (generated: do not edit; see docs/OFFSETS.md).
 *
 * One au_py_private per minor version (per patch level when two measured
 * patch levels of one minor differ; none do today).
 *
 * Precedence.  3.14+ publishes part of this (and part of au_py_offsets) in
 * the _asyncio module's own ELF section ".AsyncioDebug"
 * (Py_AsyncioModuleDebugOffsets); a reader attached to a 3.14+ target reads
 * it and calls au_py_asyncio_debug_apply(): published values win.  Unlike
 * _Py_DebugOffsets it has no cookie or version: find it by section name in
 * the file that holds the _asyncio module (its lib-dynload/_asyncio*.so,
 * or the executable or libpython when the module is built in, as in
 * Debian's 3.15).  Its layout is au_py_asyncio_debug_layout below.
 *
 * Conventions (as in au_pyoffsets.h): offsets are uint32_t bytes from the
 * start of the named struct, AU_PYOFF_ABSENT where the version lacks the
 * field; signed offsets (from an object's start, may be negative) are
 * int32_t, AU_PY_SOFF_ABSENT when absent; small values are int8_t,
 * AU_PY_VALUE_NONE when absent; strings are NULL when absent.  "≤3.11"
 * etc. give the versions in which a field is present.
 *
 * Pure data: no allocation, no state.
 */
#ifndef ASYNCUNWIND_PYPRIVATE_H
#define ASYNCUNWIND_PYPRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "asyncunwind.h"
#include "au_pyoffsets.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A signed offset the version does not have. */
#define AU_PY_SOFF_ABSENT INT32_MIN

/* The name of a task created without one (field task_name). */
typedef enum au_py_task_name_kind {
    /* ≤3.11: always a str ("Task-<n>" unless given). */
    AU_PY_TASK_NAME_STR = 1,
    /* 3.12+: an int n until the name is first asked for (get_name(),
     * repr()), which replaces it with the str task_name_prefix + n; a name
     * given at creation is a str from the start. */
    AU_PY_TASK_NAME_INT_OR_STR = 2,
} au_py_task_name_kind;

/* The done-callback a task registers on the future it awaits (so that the
 * future wakes it).  Found in the future's callback0 or callbacks. */
typedef enum au_py_wakeup_kind {
    /* 3.9: a TaskWakeupMethWrapper object (tp_name AU_PYT_WAKEUP); the
     * task is at wakeup_task. */
    AU_PY_WAKEUP_WRAPPER = 1,
    /* 3.10+: a builtin method (builtin_function_or_method) bound to the
     * task: m_self (wakeup_task == au_py_offsets.cfunc_m_self) is the task
     * and its PyMethodDef's ml_name is wakeup_method_name. */
    AU_PY_WAKEUP_CFUNCTION = 2,
} au_py_wakeup_kind;

/* Where a thread's running event loop is. */
typedef enum au_py_rloop_kind {
    /* ≤3.11: the thread's dict (au_py_offsets.tstate_dict) maps the str
     * rloop_key to a holder object (AU_PYT_RUNNING_LOOP_HOLDER) whose
     * rloop_holder_loop is the loop. */
    AU_PY_RLOOP_TSDICT_HOLDER = 1,
    /* 3.12: the thread's dict maps rloop_key to the loop itself. */
    AU_PY_RLOOP_TSDICT = 2,
    /* 3.13+: au_py_offsets.tstate_asyncio_running_loop. */
    AU_PY_RLOOP_TSTATE = 3,
} au_py_rloop_kind;

/* Where the task currently running on a loop is. */
typedef enum au_py_ctask_kind {
    /* ≤3.13: the dict named ctask_dict_name in the asyncio module's dict
     * maps the loop (by identity) to its running task. */
    AU_PY_CTASK_MODULE_DICT = 1,
    /* 3.14+: au_py_offsets.tstate_asyncio_running_task of the thread
     * running the loop. */
    AU_PY_CTASK_TSTATE = 2,
} au_py_ctask_kind;

/* Where the tasks are. */
typedef enum au_py_tasks_kind {
    /* ≤3.11: the WeakSet named tasks_weakset_name in the asyncio module's
     * dict holds every task: its instance attribute weakset_data_attr is a
     * set of weakrefs to them (a dead one refers to None). */
    AU_PY_TASKS_WEAKSET = 1,
    /* 3.12-3.13: the same WeakSet (tasks_weakset_name) holds the scheduled
     * tasks, and the set named tasks_eager_set_name holds (strongly) the
     * tasks that started eagerly and have not yet yielded. */
    AU_PY_TASKS_WEAKSET_AND_SET = 2,
    /* 3.14+: linked lists of TaskObj through task_node: one per thread
     * (au_py_offsets.tstate_asyncio_tasks_head) for the tasks it created,
     * plus the interpreter's (interp_asyncio_tasks_head) for the pending
     * tasks of threads that exited. */
    AU_PY_TASKS_LLIST = 3,
} au_py_tasks_kind;

/* How a dict keys object stores its size (field dk_size). */
typedef enum au_py_dk_size_kind {
    /* 3.9-3.10: Py_ssize_t dk_size: the number of index slots.  The index
     * array holds dk_size indices of 1 byte when dk_size <= 0xff, 2 when
     * <= 0xffff, 4 when <= 0xffffffff, else 8; the entries follow it. */
    AU_PY_DK_SIZE = 1,
    /* 3.11+: uint8_t dk_log2_size (slots = 1 << it); the index array is
     * (1 << dk_log2_index_bytes) bytes; the entries follow it. */
    AU_PY_DK_LOG2 = 2,
} au_py_dk_size_kind;

/*
 * How to find an instance attribute (e.g. WeakSet.data).  Read the type's
 * tp_flags first: without au_py_offsets.tpflags_managed_dict (always so
 * in ≤3.10, and for C types with their own dict slot such as Future in
 * 3.11-3.12), the dict pointer is at obj + tp_dictoffset (when > 0).  With
 * it, by kind (offsets from the object's start, negative = before it):
 *
 * A split table's keys are the class's shared keys
 * (PyHeapTypeObject.ht_cached_keys); value i of the values block (at
 * dict_values_array + 8 * i) belongs to key entry i.
 */
typedef enum au_py_inst_kind {
    /* ≤3.10: the dict at tp_dictoffset only. */
    AU_PY_INST_DICTOFFSET = 1,
    /* 3.11: a values pointer at inst_values_ptr (non-NULL: the attributes
     * are those values, keyed by the class's shared keys) and a dict
     * pointer at inst_dict_ptr (used when values is NULL; NULL if the
     * object has no attributes dict yet). */
    AU_PY_INST_MANAGED = 2,
    /* 3.12: one word at inst_dict_ptr: if (word & inst_values_tag) it is a
     * values block at word + inst_values_adjust, else a dict pointer (or
     * NULL). */
    AU_PY_INST_TAGGED = 3,
    /* 3.13+: a dict pointer at inst_dict_ptr, authoritative when non-NULL.
     * Else, if the type has au_py_offsets.tpflags_inline_values, the
     * values block is inline at obj + tp_basicsize, valid when its byte at
     * dict_values_valid is non-zero. */
    AU_PY_INST_INLINE = 4,
} au_py_inst_kind;

/* Types the asyncio model identifies by name: tp_name[AU_PYT_*] is the
 * exact tp_name string of the version (NULL when the version has no such
 * type).  Compare type NAMES (cache the answer per type address): a
 * target may load several interpreters' worth of types, and subclasses
 * have their own names (walk tp_base for "is a Future"). */
typedef enum au_py_type_id {
    AU_PYT_TASK = 0,          /* "_asyncio.Task" */
    AU_PYT_FUTURE,            /* "_asyncio.Future" */
    AU_PYT_FUTURE_ITER,       /* what awaiting a Future/Task yields from */
    AU_PYT_GATHERING_FUTURE,  /* asyncio.gather's outer future (Python) */
    AU_PYT_COROUTINE,
    AU_PYT_GENERATOR,
    AU_PYT_ASYNC_GENERATOR,
    AU_PYT_ASYNC_GEN_ASEND,   /* awaitable of agen.asend()/__anext__() */
    AU_PYT_ASYNC_GEN_ATHROW,  /* awaitable of agen.athrow()/aclose() */
    AU_PYT_CORO_WRAPPER,      /* coro.__await__() */
    AU_PYT_WEAKREF,           /* weakref.ref ("weakref" in 3.9) */
    AU_PYT_SET,
    AU_PYT_DICT,
    AU_PYT_LIST,
    AU_PYT_TUPLE,
    AU_PYT_CELL,
    AU_PYT_FUNCTION,
    AU_PYT_METHOD,            /* bound Python method */
    AU_PYT_BUILTIN_METHOD,    /* builtin_function_or_method */
    AU_PYT_PARTIAL,           /* functools.partial */
    AU_PYT_INT,
    AU_PYT_STR,
    AU_PYT_NONE,              /* NoneType */
    AU_PYT_MODULE,
    AU_PYT_WAKEUP,            /* type of the wakeup callback, see wakeup_kind */
    AU_PYT_WEAKSET,           /* weakref.WeakSet (Python class) */
    AU_PYT_TASK_GROUP,        /* asyncio.TaskGroup (Python class), 3.11+ */
    AU_PYT_RUNNING_LOOP_HOLDER, /* ≤3.11, see AU_PY_RLOOP_TSDICT_HOLDER */
    AU_PYT_SET_DUMMY,         /* type of the key of a deleted set slot */
    AU_PYT_COUNT
} au_py_type_id;

/* One value of the 3.14+ .AsyncioDebug section: a uint64_t at pos that
 * overrides the uint32_t field at byte offset `field` of au_py_private
 * (table AU_PY_ADBG_PRIVATE) or of au_py_offsets (AU_PY_ADBG_OFFSETS). */
#define AU_PY_ADBG_PRIVATE 0u
#define AU_PY_ADBG_OFFSETS 1u
typedef struct au_py_adbg_field {
    uint8_t table;     /* AU_PY_ADBG_* */
    uint16_t field;    /* offsetof(au_py_private or au_py_offsets, field) */
    uint16_t pos;      /* byte offset of the uint64_t in the section */
    const char *name;  /* "<field>" of our table, for diagnostics */
    const char *published_as; /* e.g. "asyncio_task_object.task_node" */
} au_py_adbg_field;

/* Layout of Py_AsyncioModuleDebugOffsets (3.14+): uint64_t values only,
 * no cookie, no version. */
typedef struct au_py_asyncio_debug_layout {
    const char *section; /* ELF section name: ".AsyncioDebug" */
    uint32_t size;       /* bytes: 8 * nfields */
    uint16_t nfields;
    const au_py_adbg_field *fields; /* ascending pos */
} au_py_asyncio_debug_layout;

typedef struct au_py_private {
    /* ---- identity ------------------------------------------------------ */
    uint32_t version_hex; /* sys.hexversion of the interpreter measured
                           * (the newest of its minor when several agree) */
    uint32_t flags;       /* AU_PY_FLAG_* of au_pyoffsets.h */
    const char *name;     /* "3.13" */
    const char *measured; /* exact version measured: "3.13.18" */

    /* ---- FutureObj and TaskObj (Modules/_asynciomodule.c) --------------
     * A TaskObj starts with the FutureObj fields, so every fut_* offset
     * applies to tasks too. */
    uint32_t sizeof_future;    /* tp_basicsize of _asyncio.Future, all */
    uint32_t sizeof_task;      /* tp_basicsize of _asyncio.Task, all */
    uint32_t fut_loop;         /* the loop the future belongs to, all */
    uint32_t fut_callback0;    /* first done-callback, or NULL, all */
    uint32_t fut_context0;     /* its context, all */
    uint32_t fut_callbacks;    /* list of further (callback, context) 2-
                                * tuples, or NULL, all */
    uint32_t fut_state;        /* int: fut_state_* values, all */
    uint32_t fut_awaited_by;   /* NULL, the one task awaiting it, or a set
                                * of them (see fut_awaited_by_is_set),
                                * 3.14+ */
    uint32_t fut_is_task;      /* char: 1 for a Task, 3.14+ */
    uint32_t fut_awaited_by_is_set; /* char: 1 when fut_awaited_by is a
                                * set, 3.14+ */
    uint32_t task_fut_waiter;  /* the future the task waits on, or NULL,
                                * all */
    uint32_t task_coro;        /* the task's coroutine, all */
    uint32_t task_name;        /* see task_name_kind, all */
    uint32_t task_context;     /* the context its steps run in, all */
    uint32_t task_node;        /* struct llist_node linking the task into
                                * a thread's (or the interpreter's) list,
                                * 3.14+ */
    uint32_t futureiter_future; /* FutureIter (what awaiting a future
                                * yields from): the future, all */
    uint32_t wakeup_task;      /* the task, in the wakeup callback object,
                                * all (see wakeup_kind) */
    uint32_t rloop_holder_loop; /* the loop, in the running-loop holder,
                                * ≤3.11 */

    /* ---- other private objects ---------------------------------------- */
    uint32_t asend_gen;        /* async_generator_asend: its async
                                * generator, all */
    uint32_t athrow_gen;       /* async_generator_athrow: its async
                                * generator, all */
    uint32_t coro_wrapper_coro; /* coroutine_wrapper: its coroutine, all */
    uint32_t partial_fn;       /* functools.partial: func, all */
    uint32_t partial_args;     /* args (a tuple), all */
    uint32_t partial_kw;       /* keywords (a dict), all */
    uint32_t module_md_dict;   /* PyModuleObject.md_dict, all */

    /* ---- dict keys and split values (PyDictKeysObject, PyDictValues) ---
     * Items: entries[0 .. dk_nentries) of the keys object, in insertion
     * order; an entry whose key (or, in a split table, value) is NULL was
     * deleted.  In a combined table the value is in the entry; in a split
     * table (au_py_offsets.dict_ma_values non-NULL) value i is in the values
     * block.  Entry layout: general kind (and every table in ≤3.10):
     * dict_entry_*; unicode and split kinds (3.11+, str keys only):
     * dict_uentry_* (no stored hash). */
    uint32_t dk_size;             /* see dk_size_kind, all */
    uint32_t dk_log2_index_bytes; /* uint8_t, 3.11+ */
    uint32_t dk_kind;             /* uint8_t: dk_kind_* values, 3.11+ */
    uint32_t dk_nentries;         /* Py_ssize_t: entries used, all */
    uint32_t dk_indices;          /* the index array, all */
    uint32_t dict_entry_size;     /* general entry: 24, all */
    uint32_t dict_entry_hash;
    uint32_t dict_entry_key;
    uint32_t dict_entry_value;
    uint32_t dict_uentry_size;    /* unicode/split entry: 16, 3.11+ */
    uint32_t dict_uentry_key;
    uint32_t dict_uentry_value;
    uint32_t dict_values_array;   /* values[] in a values block: 0 (≤3.12),
                                   * 8 (3.13+, after capacity, size,
                                   * embedded and valid bytes), all */
    uint32_t dict_values_valid;   /* uint8_t valid of a values block, 3.13+ */

    /* ---- signed offsets ------------------------------------------------ */
    int32_t future_dictoffset;    /* tp_dictoffset of _asyncio.Future: the
                                   * dict pointer's offset in ≤3.12 (96 in
                                   * 3.9, 104 in 3.10-3.12); -1 in 3.13+
                                   * (managed dict), all */
    /* instance attributes, see inst_kind */
    int32_t inst_dict_ptr;        /* -24, 3.11+ */
    int32_t inst_values_ptr;      /* -32 (3.11), -24 (3.12, tagged) */

    /* ---- values -------------------------------------------------------- */
    int8_t fut_state_pending;     /* 0, all */
    int8_t fut_state_cancelled;   /* 1, all */
    int8_t fut_state_finished;    /* 2, all */
    int8_t dk_kind_general;       /* 3.11+: DICT_KEYS_GENERAL (0) */
    int8_t dk_kind_unicode;       /* DICT_KEYS_UNICODE (1) */
    int8_t dk_kind_split;         /* DICT_KEYS_SPLIT (2) */
    int8_t inst_values_tag;       /* 3.12: 1 (bit set = values) */
    int8_t inst_values_adjust;    /* 3.12: +1 (values = word + 1) */
    uint8_t task_name_kind;       /* au_py_task_name_kind */
    uint8_t wakeup_kind;          /* au_py_wakeup_kind */
    uint8_t rloop_kind;           /* au_py_rloop_kind */
    uint8_t ctask_kind;           /* au_py_ctask_kind */
    uint8_t tasks_kind;           /* au_py_tasks_kind */
    uint8_t dk_size_kind;         /* au_py_dk_size_kind */
    uint8_t inst_kind;            /* au_py_inst_kind */

    /* ---- names (compared with str objects of the target) --------------- */
    const char *asyncio_module;       /* "_asyncio": sys.modules key of the
                                       * C module whose dict holds the task
                                       * containers, all */
    const char *tasks_weakset_name;   /* "_all_tasks" (≤3.11),
                                       * "_scheduled_tasks" (3.12-3.13) */
    const char *tasks_eager_set_name; /* "_eager_tasks", 3.12-3.13 */
    const char *weakset_data_attr;    /* "data", all */
    const char *ctask_dict_name;      /* "_current_tasks", ≤3.13 */
    const char *rloop_key;            /* "__asyncio_running_event_loop__",
                                       * ≤3.12 */
    const char *task_name_prefix;     /* "Task-", all */
    const char *wakeup_method_name;   /* "task_wakeup", 3.10+ */
    const char *tp_name[AU_PYT_COUNT];

    /* Layout of the .AsyncioDebug section (3.14+), NULL before. */
    const au_py_asyncio_debug_layout *asyncio_debug;
} au_py_private;

/* The compiled-in entry for version_hex's major.minor: the newest entry
 * not newer than the target, or the oldest of its minor when all are
 * newer; NULL for unsupported versions (as au_py_offsets_for). */
const au_py_private *au_py_private_for(uint32_t version_hex);

/* The compiled-in entries in ascending version order; *n gets the count. */
const au_py_private *au_py_private_all(size_t *n);

/* The fields of au_py_private (identity and tp_name excepted), by name,
 * for tests and diagnostics (e.g. comparing with a probe's output). */
const au_py_field_desc *au_py_private_fields(size_t *n);

/*
 * Override fields of priv and off with a target's .AsyncioDebug section.
 *
 * blob/len: the section's bytes read from the target (at least
 * priv->asyncio_debug->size).  Untrusted: validated as a whole before
 * anything is written:
 *   - NULL arguments, or priv has no asyncio_debug layout (≤3.13):
 *     AU_ERR_ARG;
 *   - len too short: AU_ERR_FORMAT;
 *   - a value above AU_PY_DEBUG_MAX_VALUE, or an implausible layout (a
 *     task field beyond the published task size, a thread or interpreter
 *     field beyond the published sizes): AU_ERR_CORRUPT.
 * On success every published field is replaced (priv in place, off in
 * place), AU_PY_FLAG_FROM_DEBUG_OFFSETS is set in priv->flags, and the
 * number of values that changed is returned (>= 0).  On error nothing is
 * written.  Apply _Py_DebugOffsets (au_py_offsets_apply_debug) first:
 * this section is more specific.
 */
int au_py_asyncio_debug_apply(au_py_private *priv, au_py_offsets *off,
                              const void *blob, size_t len);

#ifdef __cplusplus
}
#endif

#endif
