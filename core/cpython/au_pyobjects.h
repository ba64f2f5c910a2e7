/*
 * Python objects read from outside: types, str, int, tuple, list, set,
 * dict, instance attributes, weakrefs, cells, functions and methods, on
 * CPython 3.9-3.15, through a page view (au_view.h).
 *
 * Every object comes from the target and is hostile.  Each reader checks
 * what it can (the type of the object where it matters, sizes against
 * bounds, pointers for alignment) and returns an error instead of
 * guessing; every loop is bounded by a count the caller gives or by the
 * AU_OBJ_MAX_* bounds below.
 *
 * Layout differences are data: au_objlayout is filled once per target
 * from the header-derived table (au_pyoffsets.h) and the runtime-measured
 * one (au_pyprivate.h), and the code below has one path for every version,
 * with a small enum where versions differ in more than numbers (dict keys,
 * instance attributes, int sign and size).
 *
 * Reads go through the view, one object at a time; callers that read many
 * objects of one level ask the view for all of them first (au_view_want),
 * so the level costs one batch.  Internal; used by the asyncio model.
 */
#ifndef ASYNCUNWIND_PYOBJECTS_H
#define ASYNCUNWIND_PYOBJECTS_H

#include <stdint.h>

#include "asyncunwind.h"
#include "au_pyoffsets.h"
#include "au_pyprivate.h"
#include "au_view.h"

/* Bounds on what one object may make a reader do. */
#define AU_OBJ_MAX_STR 4096u         /* code points kept of a str */
#define AU_OBJ_MAX_DICT (1u << 16)   /* entries scanned in a dict */
#define AU_OBJ_MAX_SET (1u << 22)    /* slots of a set's table */
#define AU_OBJ_MAX_TUPLE (1u << 16)  /* items of a tuple or a list */
#define AU_OBJ_MAX_BASES 8u          /* tp_base links followed */
#define AU_OBJ_TYPE_CACHE 64u        /* types remembered */

/* Kinds of object the asyncio model tells apart, by the type's tp_name
 * (and its bases, for subclasses of Task and Future). */
typedef enum au_okind {
    AU_OK_UNKNOWN = 0,
    AU_OK_NONE,
    AU_OK_STR,
    AU_OK_INT,
    AU_OK_TUPLE,
    AU_OK_LIST,
    AU_OK_DICT,
    AU_OK_SET,
    AU_OK_WEAKREF,
    AU_OK_MODULE,
    AU_OK_CELL,
    AU_OK_FUNCTION,
    AU_OK_METHOD,         /* a bound method of a Python function */
    AU_OK_CFUNCTION,      /* builtin_function_or_method (m_self) */
    AU_OK_PARTIAL,        /* functools.partial */
    AU_OK_COROUTINE,
    AU_OK_GENERATOR,
    AU_OK_ASYNC_GENERATOR,
    AU_OK_ASEND,          /* async_generator_asend */
    AU_OK_ATHROW,         /* async_generator_athrow */
    AU_OK_CORO_WRAPPER,   /* coroutine_wrapper (coro.__await__()) */
    AU_OK_TASK,           /* _asyncio.Task or a subclass */
    AU_OK_FUTURE,         /* _asyncio.Future or a subclass (not a Task) */
    AU_OK_FUTURE_ITER,    /* _asyncio.FutureIter */
    AU_OK_TASK_WAKEUP,    /* the object a Task hangs on a future it awaits
                             (<= 3.11: TaskWakeupMethWrapper) */
    AU_OK_GATHERING_FUTURE, /* asyncio.gather's outer future (a Future) */
    AU_OK_TASK_GROUP,     /* asyncio.TaskGroup (3.11+), or a class of the
                             same name (anyio's) */
    AU_OK_MEMBER_DESCR,   /* member_descriptor: a __slots__ name */
    AU_OK_COUNT
} au_okind;

/* How the instance attributes of a Python class's objects are kept. */
typedef enum au_inst_kind {
    AU_INST_DICTOFFSET = 1, /* a dict pointer at tp_dictoffset (<= 3.10) */
    AU_INST_MANAGED = 2,    /* 3.11: dict pointer and values pointer before
                               the object (inst_dict, inst_values) */
    AU_INST_TAGGED = 3,     /* 3.12: one word before the object: values
                               pointer | 1, or a dict pointer */
    AU_INST_INLINE = 4,     /* 3.13+: values inline at tp_basicsize (with a
                               `valid` byte), dict pointer before */
} au_inst_kind;

/* How a dict's keys object is laid out. */
typedef enum au_dk_kind {
    AU_DK_SIZE = 1,  /* <= 3.10: Py_ssize_t dk_size; 1/2/4/8-byte indices
                        by size; entries {hash, key, value} */
    AU_DK_LOG2 = 2,  /* 3.11+: uint8 log2 size and log2 index bytes;
                        entries {hash, key, value}, or {key, value} when
                        the keys are all str (dk_kind != general) */
} au_dk_kind;

typedef struct au_objlayout {
    const au_py_offsets *o;   /* the header-derived layout */
    const au_py_private *p;   /* the runtime-measured one */
    /* Type names, per kind (NULL: the version has no such type). */
    const char *type_name[AU_OK_COUNT];
} au_objlayout;

/* Fill l for a target; o and p must outlive it. */
void au_objlayout_init(au_objlayout *l, const au_py_offsets *o, const au_py_private *p);

typedef struct au_objects au_objects;

int au_objects_new(const au_allocator *alloc, au_view *view, const au_objlayout *layout,
                   au_objects **out);
void au_objects_free(au_objects *ob);

/* Start a sample: strings decoded by the previous sample are dropped. */
void au_objects_begin(au_objects *ob);

/* Heap allocations since au_objects_begin. */
uint64_t au_objects_allocations(const au_objects *ob);

/* ---- single reads ------------------------------------------------------- */

/* The first len bytes of the object at addr, to decode several fields
 * from one lookup: a pointer into the view, or a copy in scratch (len
 * bytes); NULL when unreadable (see au_view_bytes). */
const uint8_t *au_obj_bytes(au_objects *ob, uint64_t addr, uint32_t len, uint8_t *scratch);

/* The pointer-sized field at addr + off; 0 when unreadable. */
uint64_t au_obj_ptr(au_objects *ob, uint64_t addr, uint32_t off);
/* Same, with an error status. */
int au_obj_read_ptr(au_objects *ob, uint64_t addr, uint32_t off, uint64_t *out);

/* The type of the object at addr (its ob_type), 0 when unreadable. */
uint64_t au_obj_type(au_objects *ob, uint64_t addr);

/* The kind of the object at addr (reads its type; types are cached across
 * samples and revalidated: a cached type whose tp_name pointer or base
 * changed is classified again). */
au_okind au_obj_kind(au_objects *ob, uint64_t addr);
au_okind au_type_kind(au_objects *ob, uint64_t type);

/* ---- str and int -------------------------------------------------------- */

/* Decode the str at addr into the sample's string arena: *s points to its
 * UTF-8 bytes (valid until au_objects_begin), *len their number.  Names
 * longer than max code points are cut and end in "...".  AU_ERR_CORRUPT
 * when it is not a compact str. */
int au_obj_str(au_objects *ob, uint64_t addr, uint32_t max, const char **s, uint32_t *len);

/* A copy of s[0..n) in the sample's string arena. */
int au_obj_intern(au_objects *ob, const char *s, uint32_t n, const char **out, uint32_t *len);

/* The value of a non-negative int that fits in 63 bits. */
int au_obj_int(au_objects *ob, uint64_t addr, int64_t *out);

/* ---- containers --------------------------------------------------------- */

/* Where the items of a tuple or list are (*base, an array of *size
 * pointers), for callers that batch the read of a long one themselves and
 * bound *size by their own limit. */
int au_obj_seq(au_objects *ob, uint64_t addr, uint64_t *base, uint64_t *size);

/* Items of a tuple or list: at most cap written to items, *n = how many
 * the object has (bounded by AU_OBJ_MAX_TUPLE). */
int au_obj_items(au_objects *ob, uint64_t addr, uint64_t *items, uint32_t cap, uint32_t *n);

/* The live keys of a set (empty and deleted slots skipped), in table
 * order, at most cap; *n = how many were found (bounded by cap).  Returns
 * AU_ERR_LIMIT, with the first cap keys, when the set holds more. */
int au_obj_set_keys(au_objects *ob, uint64_t set, uint64_t *keys, uint32_t cap, uint32_t *n);

/* A set's table: where it is and how many slots (for callers that batch
 * the table read themselves, or size their keys' room by it). */
int au_obj_set_table(au_objects *ob, uint64_t set, uint64_t *table, uint32_t *slots);

/* au_obj_set_keys over a table au_obj_set_table gave. */
int au_obj_table_keys(au_objects *ob, uint64_t table, uint32_t slots, uint64_t *keys, uint32_t cap,
                      uint32_t *n);

/* One dict entry. */
typedef struct au_dict_item {
    uint64_t key, value;
} au_dict_item;

/* The items of the dict at addr (combined or split), at most cap;
 * *n = how many were found. */
int au_obj_dict_items(au_objects *ob, uint64_t dict, au_dict_item *items, uint32_t cap,
                      uint32_t *n);

/* The value for the str key `name` in the dict at addr: AU_OK with *value,
 * AU_ERR_NOT_FOUND, or a read error.  Reads every key string (bounded):
 * meant for discovery, whose result the caller caches. */
int au_obj_dict_get(au_objects *ob, uint64_t dict, const char *name, uint64_t *value);

/* The attribute `name` of an instance of a Python class (its __dict__, in
 * whichever form this version keeps it). */
int au_obj_attr(au_objects *ob, uint64_t obj, const char *name, uint64_t *value);

/* Where instances of the class `type` keep the __slots__ attribute `name`
 * (an offset into the instance, past its header and inside its basic
 * size): AU_OK, AU_ERR_NOT_FOUND, or a read error.  Reads the key strings
 * of the class dicts, as au_obj_dict_get does: the caller caches it. */
int au_obj_slot_offset(au_objects *ob, uint64_t type, const char *name, uint32_t *offset);

/* The referent of a weakref, 0 when unreadable.  A dead ref's referent is
 * None: the caller checks the referent's kind. */
uint64_t au_obj_weakref(au_objects *ob, uint64_t ref);

/* Is addr the None object (learnt from the first one met)? */
int au_obj_is_none(au_objects *ob, uint64_t addr);

#endif
