"""probe_private.py: measure the CPython layouts no installed header has.

asyncunwind reads asyncio's objects (Modules/_asynciomodule.c), dict keys
(Objects/dict-common.h in 3.9-3.10), functools.partial, async generator
helpers and other structs that are private to a .c file, so no header of
every version describes them.  This script measures them from inside a
running interpreter: it builds objects in known states and scans their
memory (read with process_vm_readv on itself, so a wrong guess is an error,
not a crash) for pointers and values it knows, using only the standard
library (ctypes, id(), type attributes).  It runs unchanged on CPython
3.9-3.15.

It then checks the rules asyncunwind's reader will follow (docs/OFFSETS.md):
starting from raw memory only, with the header facts of au_py_offsets
(passed with --hdr) and the facts it just measured, it finds each
suspended coroutine's awaited object, each thread's running loop and
current task, the task containers, instance attributes, and compares every
answer with what Python itself says.  3.14+: it also reads the asyncio
debug section (_AsyncioDebug) from the ELF file and compares it with the
measurements.

Usage (tools/gen_private.py and tests/pyprivate_test.c run it):
    python3.X probe_private.py --hdr NAME=VALUE,NAME=VALUE,... [--serve]
--hdr gives the au_py_offsets fields of the running version's entry, as
decimal numbers; "NAME=" for a field the version lacks (AU_PYOFF_ABSENT,
AU_PY_VALUE_NONE, AU_PY_OPCODE_NONE).  --serve: after the facts, keep
running with everything alive until killed (a live test reads the process
meanwhile).

Output, one fact per line (the last line is "END"):
    version 0x030D12F0           sys.hexversion
    priv FIELD VALUE [SYMBOL]    an au_py_private field (au_pyprivate.h);
                                 VALUE is a number, ABSENT or a JSON
                                 string; SYMBOL names an enum value
    tpname ID VALUE              tp_name of type AU_PYT_<ID>: a JSON
                                 string, or ABSENT
    adbg NAME TABLE FIELD POS V  3.14+: the uint64_t at byte POS of the
                                 .AsyncioDebug section is V; it is NAME in
                                 Py_AsyncioModuleDebugOffsets and FIELD of
                                 au_py_private (TABLE priv) or au_py_offsets
                                 (TABLE hdr), whose value it equals
    adbg_file PATH               the ELF file the section was read from
    check NAME ok                a rule check that passed
    note TEXT                    information for docs
Exit status 1 with a message on stderr when a measurement is ambiguous or
a check fails.

Not part of the core: version-specific knowledge is allowed here, but the
checks use only the table values, as the reader will.
"""
import asyncio
import contextvars
import ctypes
import functools
import json
import os
import struct
import sys
import threading
import types
import weakref

import _asyncio

# ---------------------------------------------------------------------------
# Enum values of core/cpython/au_pyprivate.h and au_pyoffsets.h.  tools/gen_private.py
# compares this mirror with the headers and fails on any difference.
ENUMS = {
    # au_py_stack_kind, au_py_yf_kind, au_py_instr_kind, au_py_gen_state_kind,
    # au_py_long_kind (au_pyoffsets.h)
    "AU_PY_STACK_TOP_PTR": 1,
    "AU_PY_STACK_BASE_DEPTH": 2,
    "AU_PY_STACK_LOCALSPLUS_INDEX": 3,
    "AU_PY_YF_LASTI_OPCODE": 1,
    "AU_PY_YF_NEXT_RESUME": 2,
    "AU_PY_YF_STATE": 3,
    "AU_PY_INSTR_BYTE_LASTI": 1,
    "AU_PY_INSTR_UNIT_LASTI": 2,
    "AU_PY_INSTR_PREV_INSTR": 3,
    "AU_PY_INSTR_INSTR_PTR": 4,
    "AU_PY_GEN_STATE_RUNNING": 1,
    "AU_PY_GEN_STATE_FRAME": 2,
    "AU_PY_GEN_STATE_GEN": 3,
    "AU_PY_LONG_SIGNED_SIZE": 1,
    "AU_PY_LONG_TAG": 2,
    # au_pyprivate.h
    "AU_PY_TASK_NAME_STR": 1,
    "AU_PY_TASK_NAME_INT_OR_STR": 2,
    "AU_PY_WAKEUP_WRAPPER": 1,
    "AU_PY_WAKEUP_CFUNCTION": 2,
    "AU_PY_RLOOP_TSDICT_HOLDER": 1,
    "AU_PY_RLOOP_TSDICT": 2,
    "AU_PY_RLOOP_TSTATE": 3,
    "AU_PY_CTASK_MODULE_DICT": 1,
    "AU_PY_CTASK_TSTATE": 2,
    "AU_PY_TASKS_WEAKSET": 1,
    "AU_PY_TASKS_WEAKSET_AND_SET": 2,
    "AU_PY_TASKS_LLIST": 3,
    "AU_PY_DK_SIZE": 1,
    "AU_PY_DK_LOG2": 2,
    "AU_PY_INST_DICTOFFSET": 1,
    "AU_PY_INST_MANAGED": 2,
    "AU_PY_INST_TAGGED": 3,
    "AU_PY_INST_INLINE": 4,
}

# The type names the table records (enum au_py_type_id, AU_PYT_<ID>), in
# enum order.
TYPE_IDS = [
    "TASK", "FUTURE", "FUTURE_ITER", "GATHERING_FUTURE", "COROUTINE",
    "GENERATOR", "ASYNC_GENERATOR", "ASYNC_GEN_ASEND", "ASYNC_GEN_ATHROW",
    "CORO_WRAPPER", "WEAKREF", "SET", "DICT", "LIST", "TUPLE", "CELL",
    "FUNCTION", "METHOD", "BUILTIN_METHOD", "PARTIAL", "INT", "STR", "NONE",
    "MODULE", "WAKEUP", "WEAKSET", "TASK_GROUP", "RUNNING_LOOP_HOLDER",
    "SET_DUMMY",
]

# Header facts the checks need (au_py_offsets field names).
HDR_NEEDED = [
    "ob_type", "var_ob_size", "type_tp_name", "type_tp_flags",
    "type_tp_basicsize", "type_tp_dictoffset", "heaptype_cached_keys",
    "tpflags_managed_dict", "tpflags_inline_values", "interp_modules",
    "tstate_dict", "tstate_asyncio_running_loop", "tstate_asyncio_running_task",
    "tstate_asyncio_tasks_head", "interp_asyncio_tasks_head", "sizeof_tstate_impl",
    "llist_next", "llist_prev", "frame_code", "frame_instr", "frame_header_size",
    "frame_stacktop", "frame_valuestack", "frame_gen", "stack_kind", "yf_kind",
    "yf_stack_depth", "yf_op_yield_from", "yf_op_resume", "yf_op_resume_alt",
    "yf_resume_min_oparg", "instr_kind", "code_code", "bytes_ob_sval",
    "frame_code_tag_mask", "gen_frame", "gen_iframe", "gen_state", "gen_state_kind",
    "gen_state_suspended_min", "gen_state_suspended_max",
    "gen_state_suspended_yield_from", "gen_state_executing",
    "dict_ma_used", "dict_ma_keys", "dict_ma_values", "set_used", "set_mask",
    "set_table", "setentry_key", "setentry_hash", "sizeof_setentry",
    "weakref_wr_object", "cell_ob_ref", "func_closure", "method_im_self",
    "cfunc_m_self", "tuple_ob_item", "list_ob_item", "unicode_length",
    "unicode_state", "unicode_kind_shift", "unicode_kind_width",
    "unicode_compact_shift", "unicode_ascii_shift", "sizeof_ascii",
    "sizeof_compact", "long_kind", "long_size", "long_digit", "long_digit_bits",
    "long_tag_sign_mask", "long_tag_size_shift", "long_tag_sign_zero",
    "long_tag_sign_negative", "sizeof_interp", "sizeof_dict", "cfunc_m_ml",
    "methoddef_ml_name",
]

PTR = 8
MINOR = sys.version_info[1]


class ProbeError(Exception):
    pass


def fail(msg):
    raise ProbeError(msg)


# ---------------------------------------------------------------------------
# Reading this process's memory.  process_vm_readv on ourselves turns a bad
# address into an error instead of a crash (the sid chroot has no /proc, so
# /proc/self/mem is not an option).
_libc = ctypes.CDLL(None, use_errno=True)


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_pvr = _libc.process_vm_readv
_pvr.restype = ctypes.c_ssize_t
_pvr.argtypes = [ctypes.c_int, ctypes.POINTER(_IoVec), ctypes.c_ulong,
                 ctypes.POINTER(_IoVec), ctypes.c_ulong, ctypes.c_ulong]
_PID = os.getpid()


def mem(addr, n):
    if addr <= 0 or not 0 < n <= 1 << 26:
        fail("bad read of %d bytes at 0x%x" % (n, addr))
    buf = ctypes.create_string_buffer(n)
    local = _IoVec(ctypes.cast(buf, ctypes.c_void_p), n)
    remote = _IoVec(addr, n)
    got = _pvr(_PID, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if got != n:
        fail("cannot read %d bytes at 0x%x (errno %d)" % (n, addr, ctypes.get_errno()))
    return buf.raw


def mem_upto(addr, n):
    """Up to n bytes at addr: fewer when the mapping ends first."""
    while n >= 64:
        try:
            return mem(addr, n)
        except ProbeError:
            n //= 2
    return mem(addr, n)


def u64(a):
    return struct.unpack("<Q", mem(a, 8))[0]


def i64(a):
    return struct.unpack("<q", mem(a, 8))[0]


def i32(a):
    return struct.unpack("<i", mem(a, 4))[0]


def u16(a):
    return struct.unpack("<H", mem(a, 2))[0]


def u8(a):
    return mem(a, 1)[0]


def i8(a):
    return struct.unpack("<b", mem(a, 1))[0]


def words(addr, n):
    b = mem(addr, n)
    return struct.unpack_from("<%dQ" % (n // PTR), b)


def find_word(addr, n, value):
    """Offsets (multiples of 8) in [addr, addr + n) holding value."""
    return [PTR * i for i, w in enumerate(words(addr, n)) if w == value]


def only(found, what):
    if len(found) != 1:
        fail("%s: expected one match, found %r" % (what, found))
    return found[0]


def obj_at(addr):
    """The object at addr (which must be a live object)."""
    return ctypes.cast(addr, ctypes.py_object).value


def tp_name_of_type(t):
    return ctypes.string_at(u64(id(t) + H["type_tp_name"])).decode("utf-8")


# ---------------------------------------------------------------------------
# Output
FACTS = {}      # priv field -> (value, symbol)
OUT = []


def put(field, value, sym=None):
    if field in FACTS:
        fail("priv %s measured twice" % field)
    if sym is not None and ENUMS[sym] != value:
        fail("internal: %s is %d, not %r" % (sym, ENUMS[sym], value))
    FACTS[field] = value
    if value is None:
        OUT.append("priv %s ABSENT" % field)
    elif isinstance(value, str):
        OUT.append("priv %s %s" % (field, json.dumps(value)))
    else:
        OUT.append("priv %s %d%s" % (field, value, "" if sym is None else " " + sym))


def put_kind(field, sym):
    put(field, ENUMS[sym], sym)


def check(name):
    OUT.append("check %s ok" % name)


def note(text):
    OUT.append("note %s" % text)


# ---------------------------------------------------------------------------
# Header facts (au_py_offsets of this version), from --hdr.
H = {}


def parse_hdr(arg):
    for item in arg.split(","):
        if not item:
            continue
        k, _, v = item.partition("=")
        H[k] = None if v == "" else int(v, 0)  # "NAME=": absent
    missing = [k for k in HDR_NEEDED if k not in H]
    if missing:
        fail("--hdr lacks " + ", ".join(missing))


# ---------------------------------------------------------------------------
# Raw-memory model: the reader's rules, driven by H (header facts) and FACTS
# (measured facts) only.
def r_type(obj):
    return u64(obj + H["ob_type"])


def r_tp_name(obj):
    return ctypes.string_at(u64(r_type(obj) + H["type_tp_name"])).decode("utf-8")


def r_str(obj):
    """A str object's text (compact strings only, as every str the reader
    compares is)."""
    n = i64(obj + H["unicode_length"])
    st = struct.unpack("<I", mem(obj + H["unicode_state"], 4))[0]
    kind = (st >> H["unicode_kind_shift"]) & ((1 << H["unicode_kind_width"]) - 1)
    if not (st >> H["unicode_compact_shift"]) & 1:
        fail("not a compact str at 0x%x" % obj)
    ascii_ = (st >> H["unicode_ascii_shift"]) & 1
    data = obj + (H["sizeof_ascii"] if ascii_ else H["sizeof_compact"])
    if n == 0:
        return ""
    raw = mem(data, n * kind)
    return raw.decode({1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}[kind])


def r_int(obj):
    """An int object's value, per long_kind."""
    bits = H["long_digit_bits"]
    if H["long_kind"] == ENUMS["AU_PY_LONG_SIGNED_SIZE"]:
        size = i64(obj + H["long_size"])
        n, neg = abs(size), size < 0
    else:
        tag = u64(obj + H["long_size"])
        n = tag >> H["long_tag_size_shift"]
        sign = tag & H["long_tag_sign_mask"]
        neg = sign == H["long_tag_sign_negative"]
        if sign == H["long_tag_sign_zero"]:
            n = 0
    v = 0
    for i in range(n):
        d = struct.unpack("<I", mem(obj + H["long_digit"] + 4 * i, 4))[0]
        v |= d << (bits * i)
    return -v if neg else v


def r_dk_layout(keys):
    """(log2 size, entries address, entry size, key offset, value offset,
    hash offset or None, kind) of a dict keys object."""
    if FACTS["dk_size_kind"] == ENUMS["AU_PY_DK_SIZE"]:
        size = i64(keys + FACTS["dk_size"])
        log2 = size.bit_length() - 1
        width = 1 if size <= 0xFF else 2 if size <= 0xFFFF else 4 if size <= 0xFFFFFFFF else 8
        index_bytes = size * width
    else:
        log2 = u8(keys + FACTS["dk_size"])
        index_bytes = 1 << u8(keys + FACTS["dk_log2_index_bytes"])
    entries = keys + FACTS["dk_indices"] + index_bytes
    kind = u8(keys + FACTS["dk_kind"]) if FACTS["dk_kind"] is not None else None
    if kind is None or kind == FACTS["dk_kind_general"]:
        return (log2, entries, FACTS["dict_entry_size"], FACTS["dict_entry_key"],
                FACTS["dict_entry_value"], FACTS["dict_entry_hash"], kind)
    return (log2, entries, FACTS["dict_uentry_size"], FACTS["dict_uentry_key"],
            FACTS["dict_uentry_value"], None, kind)


def r_dict_items(d, values=None):
    """(key address, value address) of every item of dict d (or, with
    keys given directly as d=None, of a split table)."""
    keys = u64(d + H["dict_ma_keys"])
    if values is None:
        values = u64(d + H["dict_ma_values"])
    return r_keys_items(keys, values)


def r_keys_items(keys, values):
    _, entries, esize, koff, voff, _, _ = r_dk_layout(keys)
    n = i64(keys + FACTS["dk_nentries"])
    if not 0 <= n <= 1 << 20:
        fail("implausible dk_nentries %d" % n)
    out = []
    for i in range(n):
        e = entries + i * esize
        k = u64(e + koff)
        if values:
            v = u64(values + FACTS["dict_values_array"] + PTR * i)
        else:
            v = u64(e + voff)
        if k and v:
            out.append((k, v))
    return out


def r_dict_get_str(d, name, values=None):
    for k, v in r_dict_items(d, values):
        if r_tp_name(k) == "str" and r_str(k) == name:
            return v
    return 0


def r_dict_get_ptr(d, key):
    for k, v in r_dict_items(d):
        if k == key:
            return v
    return 0


def r_instance_attr(obj, name):
    """Instance attribute `name` of obj, per inst_kind.  0 if missing."""
    tp = r_type(obj)
    flags = u64(tp + H["type_tp_flags"])
    kind = FACTS["inst_kind"]
    cached = u64(tp + H["heaptype_cached_keys"])
    if kind == ENUMS["AU_PY_INST_DICTOFFSET"] or not flags & H["tpflags_managed_dict"]:
        off = i64(tp + H["type_tp_dictoffset"])
        if off <= 0:
            fail("no instance dict at a positive offset")
        d = u64(obj + off)
        return r_dict_get_str(d, name) if d else 0
    if kind == ENUMS["AU_PY_INST_MANAGED"]:
        values = u64(obj + FACTS["inst_values_ptr"])
        if values:
            return r_keys_get_str(cached, values, name)
        d = u64(obj + FACTS["inst_dict_ptr"])
        return r_dict_get_str(d, name) if d else 0
    if kind == ENUMS["AU_PY_INST_TAGGED"]:
        w = u64(obj + FACTS["inst_dict_ptr"])
        if w & FACTS["inst_values_tag"]:
            return r_keys_get_str(cached, w + FACTS["inst_values_adjust"], name)
        return r_dict_get_str(w, name) if w else 0
    # AU_PY_INST_INLINE
    d = u64(obj + FACTS["inst_dict_ptr"])
    if d:
        return r_dict_get_str(d, name)
    if flags & H["tpflags_inline_values"]:
        values = obj + u64(tp + H["type_tp_basicsize"])
        if u8(values + FACTS["dict_values_valid"]):
            return r_keys_get_str(cached, values, name)
    return 0


def r_keys_get_str(keys, values, name):
    for k, v in r_keys_items(keys, values):
        if r_tp_name(k) == "str" and r_str(k) == name:
            return v
    return 0


def r_set_keys(s):
    """Addresses of the keys of set s (skipping empty and deleted slots)."""
    table = u64(s + H["set_table"])
    mask = i64(s + H["set_mask"])
    if not 0 <= mask < 1 << 24:
        fail("implausible set mask")
    out = []
    esz = H["sizeof_setentry"]
    raw = mem(table, (mask + 1) * esz)
    for i in range(mask + 1):
        k = struct.unpack_from("<Q", raw, i * esz + H["setentry_key"])[0]
        h = struct.unpack_from("<q", raw, i * esz + H["setentry_hash"])[0]
        if k and h != -1:
            out.append(k)
    return out


def r_llist(head):
    """Node addresses of the llist whose head node is at head."""
    out, n = [], u64(head + H["llist_next"])
    while n != head:
        out.append(n)
        if len(out) > 100000:
            fail("llist does not close")
        n = u64(n + H["llist_next"])
    return out


def r_stack_slot(frame, depth):
    """The value-stack slot `depth` (1 = top of stack) of a frame."""
    kind = H["stack_kind"]
    if kind == ENUMS["AU_PY_STACK_TOP_PTR"]:
        top = u64(frame + H["frame_stacktop"])
        if top == 0:
            return 0
        slot = top - PTR * depth
    elif kind == ENUMS["AU_PY_STACK_BASE_DEPTH"]:
        slot = u64(frame + H["frame_valuestack"]) + PTR * (i32(frame + H["frame_stacktop"]) - depth)
    else:
        slot = frame + H["frame_header_size"] + PTR * (i32(frame + H["frame_stacktop"]) - depth)
    return u64(slot) & ~H["frame_code_tag_mask"]


def r_yf(gen):
    """The object generator/coroutine gen awaits (yield from), or 0."""
    depth = H["yf_stack_depth"]
    if H["gen_state_kind"] == ENUMS["AU_PY_GEN_STATE_RUNNING"]:  # 3.9
        frame = u64(gen + H["gen_frame"])
        if not frame or u8(gen + H["gen_state"]) != H["gen_state_suspended_min"]:
            return 0
        state_ok = True
    elif H["gen_state_kind"] == ENUMS["AU_PY_GEN_STATE_FRAME"]:  # 3.10
        frame = u64(gen + H["gen_frame"])
        if not frame:
            return 0
        st = i8(frame + H["gen_state"])
        state_ok = H["gen_state_suspended_min"] <= st <= H["gen_state_suspended_max"]
    else:
        frame = gen + H["gen_iframe"]
        st = i8(gen + H["gen_state"])
        state_ok = H["gen_state_suspended_min"] <= st <= H["gen_state_suspended_max"]
    if not state_ok:
        return 0
    kind = H["yf_kind"]
    if kind == ENUMS["AU_PY_YF_LASTI_OPCODE"]:
        lasti = i32(frame + H["frame_instr"])
        if lasti < 0:
            return 0
        nxt = lasti + 2 if H["instr_kind"] == ENUMS["AU_PY_INSTR_BYTE_LASTI"] else 2 * (lasti + 1)
        code = u64(frame + H["frame_code"])
        co_code = u64(code + H["code_code"])
        if u8(co_code + H["bytes_ob_sval"] + nxt) != H["yf_op_yield_from"]:
            return 0
    elif kind == ENUMS["AU_PY_YF_NEXT_RESUME"]:
        unit = u16(u64(frame + H["frame_instr"]) + 2)
        op, arg = unit & 0xFF, unit >> 8
        RESUME_SEEN.add(op)
        if op not in (H["yf_op_resume"], H["yf_op_resume_alt"]) or arg < H["yf_resume_min_oparg"]:
            return 0
    else:
        if i8(gen + H["gen_state"]) != H["gen_state_suspended_yield_from"]:
            return 0
    return r_stack_slot(frame, depth)


RESUME_SEEN = set()  # opcodes the NEXT_RESUME rule looked at


def r_ref(weakref_addr):
    return u64(weakref_addr + H["weakref_wr_object"])


# ---------------------------------------------------------------------------
# Measurements


def measure_type_names(extra):
    names = {}
    ag = _agen_fn()
    asend = ag.asend(None)
    athrow = ag.athrow(GeneratorExit)
    co = _coro_fn()
    wrapper = co.__await__()
    loop = asyncio.new_event_loop()
    fut = loop.create_future()
    it = fut.__await__()
    types_ = {
        "TASK": _asyncio.Task, "FUTURE": _asyncio.Future, "FUTURE_ITER": type(it),
        "GATHERING_FUTURE": asyncio.tasks._GatheringFuture,
        "COROUTINE": types.CoroutineType, "GENERATOR": types.GeneratorType,
        "ASYNC_GENERATOR": types.AsyncGeneratorType, "ASYNC_GEN_ASEND": type(asend),
        "ASYNC_GEN_ATHROW": type(athrow), "CORO_WRAPPER": type(wrapper),
        "WEAKREF": weakref.ref, "SET": set, "DICT": dict, "LIST": list, "TUPLE": tuple,
        "CELL": types.CellType, "FUNCTION": types.FunctionType, "METHOD": types.MethodType,
        "BUILTIN_METHOD": types.BuiltinMethodType, "PARTIAL": functools.partial,
        "INT": int, "STR": str, "NONE": type(None), "MODULE": types.ModuleType,
        "WEAKSET": weakref.WeakSet, "TASK_GROUP": getattr(asyncio, "TaskGroup", None),
    }
    types_.update(extra)
    for tid in TYPE_IDS:
        t = types_.get(tid)
        names[tid] = None if t is None else tp_name_of_type(t)
    asend.close()
    athrow.close()
    wrapper.close()
    co.close()
    fut.cancel()
    loop.close()
    return names


async def _coro_fn():
    pass


async def _agen_fn():
    yield 1


def measure_generic():
    ag = _agen_fn()
    asend = ag.asend(None)
    put("asend_gen", only(find_word(id(asend), type(asend).__basicsize__, id(ag)), "asend_gen"))
    athrow = ag.athrow(GeneratorExit)
    put("athrow_gen", only(find_word(id(athrow), type(athrow).__basicsize__, id(ag)), "athrow_gen"))
    asend.close()
    athrow.close()
    co = _coro_fn()
    w = co.__await__()
    put("coro_wrapper_coro", only(find_word(id(w), type(w).__basicsize__, id(co)), "cw_coroutine"))
    w.close()
    co.close()

    if functools.partial.__module__ != "functools" or type(functools.partial) is not type:
        fail("functools.partial is not the C type")

    def target(*a, **k):
        return a, k
    arg = object()
    p = functools.partial(target, arg, kw=arg)
    n = functools.partial.__basicsize__
    put("partial_fn", only(find_word(id(p), n, id(target)), "partial fn"))
    put("partial_args", only(find_word(id(p), n, id(p.args)), "partial args"))
    put("partial_kw", only(find_word(id(p), n, id(p.keywords)), "partial kw"))

    m = sys.modules["_asyncio"]
    put("module_md_dict", only(find_word(id(m), type(m).__basicsize__, id(m.__dict__)), "md_dict"))


class _Key:
    """A dict key with a chosen hash, compared by identity."""
    __slots__ = ("h",)

    def __init__(self, h):
        self.h = h

    def __hash__(self):
        return self.h

    def __eq__(self, other):
        return self is other


def _entries_of(keys, n_bytes, key_objs, val_objs, hashes):
    """Positions (relative to keys) of each key, value and hash."""
    w = words(keys, n_bytes)
    pos = {}
    for name, objs in (("k", key_objs), ("v", val_objs)):
        pos[name] = [only([PTR * i for i, x in enumerate(w) if x == id(o)], "dict %s" % name)
                     for o in objs]
    # Entries of str-only tables have no hash in 3.11+: a hash found
    # nowhere means "no hash field".
    found = [[PTR * i for i, x in enumerate(w) if x == h & (2**64 - 1)] for h in hashes]
    if all(len(f) == 1 for f in found):
        pos["h"] = [f[0] for f in found]
    elif any(found):
        fail("dict hashes found %r" % found)
    return pos


def _indices_fit(raw, n, width):
    vals = [int.from_bytes(raw[i:i + width], "little", signed=True)
            for i in range(0, len(raw), width)]
    used = sorted(v for v in vals if v >= 0)
    return used == list(range(n)) and all(v == -1 for v in vals if v < 0)


def _measure_keys(d, n, keys_objs, val_objs, hashes):
    """Measure one keys object: returns dict of facts about it."""
    keys = u64(id(d) + H["dict_ma_keys"])
    # dict.__sizeof__ counts the struct plus the keys object it owns.
    raw_n = (d.__sizeof__() - H["sizeof_dict"]) // PTR * PTR
    pos = _entries_of(keys, raw_n, keys_objs, val_objs, hashes)
    esize = pos["k"][1] - pos["k"][0]
    hashed = "h" in pos
    firsts = [pos["k"][0], pos["v"][0]] + ([pos["h"][0]] if hashed else [])
    start = min(firsts)
    res = {"entries": start, "esize": esize, "key": pos["k"][0] - start,
           "value": pos["v"][0] - start, "hash": pos["h"][0] - start if hashed else None}
    for i in range(n):
        if pos["k"][i] != start + res["key"] + i * esize:
            fail("dict entries are not in insertion order")
    raw = mem(keys, start)
    fits = []
    for size in (8, 16, 32, 64, 128, 256, 512, 1024):
        for width in (1, 2, 4, 8):
            if size * width <= start and _indices_fit(raw[start - size * width:start], n, width):
                fits.append((size, width))
    # The header before the indices is never a valid index array, except by
    # chance for a few bytes: keep the largest fit.
    size, width = max(fits)
    res["size"], res["width"] = size, width
    res["indices"] = start - size * width
    res["raw"] = raw
    res["keys"] = keys
    return res


def measure_dict():
    # A general table (non-str keys, with hashes) of 5 items: 8 slots.
    ks = [_Key(0x1234567800000010 + i) for i in range(5)]
    vs = [object() for _ in ks]
    d5 = {}
    for k, v in zip(ks, vs):
        d5[k] = v
    a = _measure_keys(d5, 5, ks, vs, [k.h for k in ks])
    if a["hash"] is None:
        fail("no hashes in a general dict table")
    # A large one: 2-byte indices.
    ks2 = [_Key(0x2234567800000000 + i) for i in range(200)]
    vs2 = [object() for _ in ks2]
    d200 = {}
    for k, v in zip(ks2, vs2):
        d200[k] = v
    b = _measure_keys(d200, 200, ks2, vs2, [k.h for k in ks2])
    if a["indices"] != b["indices"] or a["esize"] != b["esize"]:
        fail("dict keys layouts disagree: %r %r" % (a, b))
    if a["width"] != 1 or b["width"] != 2:
        fail("unexpected index widths %d %d" % (a["width"], b["width"]))
    note("dict sizes measured: 5 items -> %d slots (1-byte indices), 200 items -> %d slots "
         "(2-byte indices)" % (a["size"], b["size"]))
    put("dk_indices", a["indices"])
    put("dict_entry_size", a["esize"])
    put("dict_entry_hash", a["hash"])
    put("dict_entry_key", a["key"])
    put("dict_entry_value", a["value"])
    hdr_a, hdr_b = a["raw"][:a["indices"]], b["raw"][:b["indices"]]
    # dk_nentries: a Py_ssize_t equal to the number of entries in both.
    nent = [o for o in range(0, len(hdr_a) - 7, 8)
            if struct.unpack_from("<q", hdr_a, o)[0] == 5 and struct.unpack_from("<q", hdr_b, o)[0] == 200]
    put("dk_nentries", only(nent, "dk_nentries"))
    la, lb = a["size"].bit_length() - 1, b["size"].bit_length() - 1
    as_size = [o for o in range(0, len(hdr_a) - 7, 8)
               if struct.unpack_from("<q", hdr_a, o)[0] == a["size"]
               and struct.unpack_from("<q", hdr_b, o)[0] == b["size"]]
    as_log2 = [o for o in range(len(hdr_a))
               if hdr_a[o] == la and hdr_b[o] == lb and o not in range(nent[0], nent[0] + 8)]
    if as_size:
        put_kind("dk_size_kind", "AU_PY_DK_SIZE")
        put("dk_size", only(as_size, "dk_size"))
        put("dk_log2_index_bytes", None)
    else:
        put_kind("dk_size_kind", "AU_PY_DK_LOG2")
        put("dk_size", only(as_log2, "dk_log2_size"))
        ib = [o for o in range(len(hdr_a))
              if hdr_a[o] == (a["size"] * a["width"]).bit_length() - 1
              and hdr_b[o] == (b["size"] * b["width"]).bit_length() - 1 and o != FACTS["dk_size"]]
        put("dk_log2_index_bytes", only(ib, "dk_log2_index_bytes"))

    # A table of str keys: 3.11+ stores them without hashes (kind unicode).
    sk = ["au_k%d_%s" % (i, "x" * i) for i in range(5)]
    sv = [object() for _ in sk]
    ds = {}
    for k, v in zip(sk, sv):
        ds[k] = v
    c = _measure_keys(ds, 5, sk, sv, [hash(k) for k in sk])
    hashed = c["hash"] is not None
    if (c["esize"], c["key"], c["value"], c["hash"]) == (a["esize"], a["key"], a["value"], a["hash"]):
        put("dict_uentry_size", None)
        put("dict_uentry_key", None)
        put("dict_uentry_value", None)
        unicode_kind = False
    else:
        if hashed:
            fail("str table with hashes but another layout")
        put("dict_uentry_size", c["esize"])
        put("dict_uentry_key", c["key"])
        put("dict_uentry_value", c["value"])
        unicode_kind = True

    # Split tables: the keys a class shares between its instances.
    class Split:
        def __init__(self):
            self.a1 = A1
            self.a2 = A2
    A1, A2 = object(), object()
    s1, s2 = Split(), Split()
    inst = s2.__dict__  # a split dict over Split's cached keys
    values = u64(id(inst) + H["dict_ma_values"])
    if not values:
        fail("instance dict is not split")
    vpos = only(find_word(values, 64, id(A1)), "split value a1")
    if u64(values + vpos + PTR) != id(A2):
        fail("split values are not consecutive")
    put("dict_values_array", vpos)
    cached = u64(id(Split) + H["heaptype_cached_keys"])
    if u64(id(inst) + H["dict_ma_keys"]) != cached:
        fail("split dict does not use the class's cached keys")
    if unicode_kind:
        kinds = [o for o in range(a["indices"])
                 if len({a["raw"][o], c["raw"][o], mem(cached, a["indices"])[o]}) == 3
                 and max(a["raw"][o], c["raw"][o], mem(cached, a["indices"])[o]) < 8
                 and o != FACTS["dk_size"] and o != FACTS["dk_log2_index_bytes"]]
        o = only(kinds, "dk_kind")
        put("dk_kind", o)
        put("dk_kind_general", a["raw"][o])
        put("dk_kind_unicode", c["raw"][o])
        put("dk_kind_split", mem(cached, o + 1)[o])
    else:
        put("dk_kind", None)
        put("dk_kind_general", None)
        put("dk_kind_unicode", None)
        put("dk_kind_split", None)
    del s1, s2, inst

    # The rules, applied to raw memory.
    got = {k: v for k, v in r_dict_items(id(d200))}
    if got != {id(k): id(v) for k, v in d200.items()}:
        fail("raw walk of a 200-item dict differs")
    if r_dict_get_str(id(ds), sk[3]) != id(sv[3]):
        fail("raw str lookup differs")
    del d5[ks[1]]  # a deleted entry is skipped
    if len(r_dict_items(id(d5))) != 4:
        fail("deleted dict entry not skipped")
    check("dict.items_and_lookup")


def measure_instances():
    managed = H["tpflags_managed_dict"] or 0
    inline = H["tpflags_inline_values"] or 0

    class C:
        pass
    X = object()
    o1, o2 = C(), C()
    o1.x = X
    o2.x = X
    flags = C.__flags__
    if not managed or not flags & managed:
        if C.__dictoffset__ <= 0:
            fail("plain class without a positive tp_dictoffset")
        put_kind("inst_kind", "AU_PY_INST_DICTOFFSET")
        put("inst_dict_ptr", None)
        put("inst_values_ptr", None)
        put("inst_values_tag", None)
        put("inst_values_adjust", None)
        if u64(id(o1) + C.__dictoffset__) != id(o1.__dict__):
            fail("dict not at tp_dictoffset")
    else:
        # Values before materializing a dict: a pointer before the object,
        # or inline after tp_basicsize.
        # (offset, word, values address) of each word before the object
        # that is, give or take a tag, the address of a values block whose
        # first value is X.  Only without inline values: 3.13+ keeps a GC
        # header there that may point near X.
        before = []
        if not (inline and flags & inline):
            for off in range(-8, -72, -8):
                w = u64(id(o1) + off)
                for adj in range(-8, 9):
                    v = w + adj
                    if v > 4096 and v % 8 == 0:
                        try:
                            if u64(v + FACTS["dict_values_array"]) == id(X):
                                before.append((off, w, v))
                        except ProbeError:
                            pass
        inline_hit = find_word(id(o1) + C.__basicsize__, 64, id(X))
        d2 = o2.__dict__  # materializes o2's dict
        dict_off = only([off for off in range(-8, -72, -8) if u64(id(o2) + off) == id(d2)],
                        "instance dict pointer")
        put("inst_dict_ptr", dict_off)
        if inline and flags & inline:
            if before or len(inline_hit) != 1:
                fail("inline values not found: %r %r" % (before, inline_hit))
            put_kind("inst_kind", "AU_PY_INST_INLINE")
            put("inst_values_ptr", None)
            put("inst_values_tag", None)
            put("inst_values_adjust", None)
        else:
            off, w, values = only(before, "instance values pointer")
            if off != dict_off:
                if values != w:
                    fail("values pointer apart from the dict pointer, but tagged")
                put_kind("inst_kind", "AU_PY_INST_MANAGED")
                put("inst_values_ptr", off)
                put("inst_values_tag", None)
                put("inst_values_adjust", None)
            else:
                # One word holds either the dict or the values, tagged in
                # its low bit: values are stored as (address - 1).
                if not w & 1 or u64(id(o2) + off) & 1:
                    fail("dict and values share a word without a tag bit")
                put_kind("inst_kind", "AU_PY_INST_TAGGED")
                put("inst_values_ptr", off)
                put("inst_values_tag", 1)
                put("inst_values_adjust", values - w)
    # The valid flag of inline values (3.13+): cleared when the attributes
    # move to a combined dict.
    if FACTS["inst_kind"] == ENUMS["AU_PY_INST_INLINE"]:
        o3 = C()
        o3.x = X
        vals = id(o3) + C.__basicsize__
        h1 = mem(vals, FACTS["dict_values_array"])
        o3.__dict__[1] = 2  # a non-str key: the dict becomes combined
        h2 = mem(vals, FACTS["dict_values_array"])
        valid = only([i for i in range(len(h1)) if h1[i] == 1 and h2[i] == 0], "values valid")
        put("dict_values_valid", valid)
        if r_instance_attr(id(o3), "x") != id(X):
            fail("raw attribute lookup after the dict became combined")
    else:
        put("dict_values_valid", None)
    o4 = C()
    o4.x = X
    if r_instance_attr(id(o4), "x") != id(X) or r_instance_attr(id(o2), "x") != id(X):
        fail("raw instance attribute lookup differs")
    if r_instance_attr(id(o4), "missing") != 0:
        fail("raw lookup found a missing attribute")
    check("instance.attributes")


def measure_set():
    objs = [object() for _ in range(6)]
    s = set(objs)
    s.discard(objs[2])
    got = sorted(r_set_keys(id(s)))
    if got != sorted(id(o) for o in s):
        fail("raw set walk differs")
    # The dummy that marks a deleted slot, and its type's name.
    table = u64(id(s) + H["set_table"])
    dummies = []
    for i in range(i64(id(s) + H["set_mask"]) + 1):
        e = table + i * H["sizeof_setentry"]
        if i64(e + H["setentry_hash"]) == -1 and u64(e + H["setentry_key"]):
            dummies.append(u64(e + H["setentry_key"]))
    dummy = only(dummies, "set dummy")
    check("set.iteration")
    return ctypes.string_at(u64(u64(dummy + H["ob_type"]) + H["type_tp_name"])).decode()


def measure_future():
    loop = asyncio.new_event_loop()
    F = _asyncio.Future
    if F.__module__ != "_asyncio" or type(F) is not type:
        fail("_asyncio.Future is not the C type")
    n = F.__basicsize__
    put("sizeof_future", n)
    put("sizeof_task", _asyncio.Task.__basicsize__)
    put("future_dictoffset", F.__dictoffset__)
    f1 = F(loop=loop)
    put("fut_loop", only(find_word(id(f1), n, id(loop)), "fut_loop"))

    def cb_a(f):
        pass

    def cb_b(f):
        pass
    ctx_a, ctx_b = contextvars.copy_context(), contextvars.copy_context()
    f1.add_done_callback(cb_a, context=ctx_a)
    put("fut_callback0", only(find_word(id(f1), n, id(cb_a)), "fut_callback0"))
    put("fut_context0", only(find_word(id(f1), n, id(ctx_a)), "fut_context0"))
    before = words(id(f1), n)
    f1.add_done_callback(cb_b, context=ctx_b)
    after = words(id(f1), n)
    off = only([PTR * i for i in range(len(after)) if before[i] == 0 and after[i] != 0],
               "fut_callbacks")
    lst = obj_at(after[off // PTR])
    if type(lst) is not list or len(lst) != 1 or type(lst[0]) is not tuple \
            or lst[0][0] is not cb_b or lst[0][1] is not ctx_b:
        fail("fut_callbacks is not a list of (callback, context)")
    put("fut_callbacks", off)

    fp, fc, ff = F(loop=loop), F(loop=loop), F(loop=loop)
    fc.cancel()
    ff.set_result(None)
    a, b, c = (struct.unpack("<%di" % (n // 4), mem(id(x), n)) for x in (fp, fc, ff))
    cands = [i for i in range(n // 4)
             if len({a[i], b[i], c[i]}) == 3 and all(0 <= v < 8 for v in (a[i], b[i], c[i]))]
    i = only(cands, "fut_state")
    put("fut_state", 4 * i)
    put("fut_state_pending", a[i])
    put("fut_state_cancelled", b[i])
    put("fut_state_finished", c[i])
    loop.run_until_complete(asyncio.sleep(0))  # run fc's callbacks
    loop.close()


def scan_tstate(tstate, value, what):
    """The offset in the thread state that holds value."""
    size = H["sizeof_tstate_impl"] or 4096
    raw = mem_upto(tstate, size)
    return only([o for o in range(0, len(raw) - 7, 8) if struct.unpack_from("<Q", raw, o)[0] == value],
                what)


async def _hang(fut):
    return await fut


async def _await(x):
    return await x


async def probe_main(state):
    """Runs as the main task of a running loop."""
    tsz = _asyncio.Task.__basicsize__
    fsz = _asyncio.Future.__basicsize__
    lp = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    gate = lp.create_future()
    name = "".join(["au-probe-", "named"])  # a str object of our own
    coro = _hang(gate)
    t = lp.create_task(coro, name=name)
    ctx = lp._ready[-1]._context  # t's first step is scheduled in t's context
    t_default = lp.create_task(_hang(gate))  # default name
    await asyncio.sleep(0)  # both run until they wait on gate
    if coro.cr_await is None:
        fail("task did not start")
    put("task_coro", only(find_word(id(t), tsz, id(coro)), "task_coro"))
    put("task_name", only(find_word(id(t), tsz, id(name)), "task_name"))
    put("task_context", only(find_word(id(t), tsz, id(ctx)), "task_context"))
    put("task_fut_waiter", only(find_word(id(t), tsz, id(gate)), "task_fut_waiter"))
    if u64(id(t) + FACTS["fut_loop"]) != id(lp):
        fail("a task's loop is not at fut_loop")

    # The name of a task created without one.
    raw = u64(id(t_default) + FACTS["task_name"])
    if r_tp_name(raw) == "int":
        n = r_int(raw)
        if t_default.get_name() != "Task-%d" % n:
            fail("task name counter %d vs %r" % (n, t_default.get_name()))
        if r_tp_name(u64(id(t_default) + FACTS["task_name"])) != "str":
            fail("get_name() did not store the str")
        put_kind("task_name_kind", "AU_PY_TASK_NAME_INT_OR_STR")
        check("task.name_counter")
    else:
        if r_str(raw) != t_default.get_name():
            fail("task name differs")
        put_kind("task_name_kind", "AU_PY_TASK_NAME_STR")
    put("task_name_prefix", "Task-")
    if not t_default.get_name().startswith("Task-"):
        fail("default task name")

    # What a task registers on the future it awaits.
    w = gate._callbacks[0][0]
    if u64(id(gate) + FACTS["fut_callback0"]) != id(w):
        fail("wakeup callback is not callback0")
    put("wakeup_task", only(find_word(id(w), type(w).__basicsize__, id(t)), "wakeup task"))
    if type(w) is types.BuiltinMethodType:
        if w.__self__ is not t:
            fail("wakeup __self__")
        put_kind("wakeup_kind", "AU_PY_WAKEUP_CFUNCTION")
        put("wakeup_method_name", w.__name__)
        if FACTS["wakeup_task"] != H["cfunc_m_self"]:
            fail("wakeup task is not at m_self")
        ml = u64(id(w) + H["cfunc_m_ml"])
        if ctypes.string_at(u64(ml + H["methoddef_ml_name"])).decode() != w.__name__:
            fail("wakeup method name through m_ml")
    else:
        put_kind("wakeup_kind", "AU_PY_WAKEUP_WRAPPER")
        put("wakeup_method_name", None)
    state["wakeup_type"] = type(w)

    # The object a task's coroutine awaits when it awaits a future.
    it = coro.cr_await
    put("futureiter_future", only(find_word(id(it), type(it).__basicsize__, id(gate)), "FutureIter"))
    if r_yf(id(coro)) != id(it) or u64(r_yf(id(coro)) + FACTS["futureiter_future"]) != id(gate):
        fail("yf of a task awaiting a future")
    check("yf.task_awaits_future")

    # A task awaiting a task.
    tb = lp.create_task(_hang(gate))
    ta = lp.create_task(_await(tb))
    await asyncio.sleep(0)
    yf = r_yf(u64(id(ta) + FACTS["task_coro"]))
    if u64(yf + FACTS["futureiter_future"]) != id(tb) or u64(id(ta) + FACTS["task_fut_waiter"]) != id(tb):
        fail("yf of a task awaiting a task")
    check("yf.task_awaits_task")

    # 3.14+: who awaits a future.
    if MINOR >= 14:
        put("fut_awaited_by", only([o for o in find_word(id(tb), fsz, id(ta))], "fut_awaited_by"))
        tc = lp.create_task(_await(tb))
        await asyncio.sleep(0)
        aw = obj_at(u64(id(tb) + FACTS["fut_awaited_by"]))
        if type(aw) is not set or aw != {ta, tc}:
            fail("awaited_by of a twice-awaited task: %r" % (aw,))
        # More objects in each state, so that fewer bytes match by chance: a
        # task (td) and a future (gate2) with two awaiters each, a task (te)
        # and a future (gate3) with one, a future with none.
        gate2, gate3 = lp.create_future(), lp.create_future()
        td = lp.create_task(_hang(gate2))
        te = lp.create_task(_hang(gate3))
        tf = [lp.create_task(_await(td)), lp.create_task(_await(td)),
              lp.create_task(_await(te)), lp.create_task(_await(gate2))]
        await asyncio.sleep(0)
        futs = [gate, lp.create_future(), gate2, gate3, lp.create_future()]
        tasks = [t, ta, tb, tc, t_default, td, te] + tf
        rb = {x: mem(id(x), fsz) for x in futs + tasks}
        is_task = [o for o in range(fsz)
                   if all(rb[x][o] == 1 for x in tasks) and all(rb[x][o] == 0 for x in futs)]
        put("fut_is_task", only(is_task, "fut_is_task"))
        # Several awaiters (a set): tb, gate (td, gate2: two tasks await
        # each); one awaiter or none: the rest.  The flag is not a byte of
        # the header or of a pointer field already measured: with several
        # awaiters fut_callbacks turns from NULL into a list, and a byte of
        # that pointer is 1 in some runs (CI found it at 42 and 43).
        pointers = [0, 8] + [FACTS[k] for k in ("fut_loop", "fut_callback0", "fut_context0",
                                                "fut_callbacks", "fut_awaited_by")]
        with_set = [tb, gate, td, gate2]
        without = [x for x in futs + tasks if all(x is not y for y in with_set)]
        is_set = [o for o in range(fsz) if all(rb[x][o] == 1 for x in with_set)
                  and all(rb[x][o] == 0 for x in without) and o != FACTS["fut_is_task"]
                  and not any(p <= o < p + PTR for p in pointers)]
        put("fut_awaited_by_is_set", only(is_set, "fut_awaited_by_is_set"))
        # Tasks of a thread are linked through task_node, newest last.
        t1 = lp.create_task(_hang(gate))
        t2 = lp.create_task(_hang(gate))
        node = [x for x in range(fsz, tsz - 15, 8)
                if u64(id(t1) + x + H["llist_next"]) == id(t2) + x
                and u64(id(t2) + x + H["llist_prev"]) == id(t1) + x]
        put("task_node", only(node, "task_node"))
        # Kept alive; the newest task (t2) last: the thread state points at it.
        state["more_tasks"] = [tc, td, te, gate2, gate3] + tf + [t1, t2]
    else:
        put("fut_awaited_by", None)
        put("fut_is_task", None)
        put("fut_awaited_by_is_set", None)
        put("task_node", None)

    check_running_loop_and_task(lp, main_task, state)
    check_containers(lp, state)
    await check_strong_links(lp)
    state["keep"] = [t, t_default, ta, tb, gate, coro, it, w]


def r_callbacks(fut):
    """(callback, context) addresses of a future's done-callbacks."""
    out = []
    cb0 = u64(fut + FACTS["fut_callback0"])
    if cb0:
        out.append((cb0, u64(fut + FACTS["fut_context0"])))
    lst = u64(fut + FACTS["fut_callbacks"])
    if lst:
        items = u64(lst + H["list_ob_item"])
        for i in range(i64(lst + H["var_ob_size"])):
            tup = u64(items + PTR * i)
            out.append((u64(tup + H["tuple_ob_item"]), u64(tup + H["tuple_ob_item"] + PTR)))
    return out


def r_tuple(tup):
    return [u64(tup + H["tuple_ob_item"] + PTR * i) for i in range(i64(tup + H["var_ob_size"]))]


async def check_strong_links(lp):
    """The done-callbacks that tie a task to its parent, from raw memory."""
    gate = lp.create_future()
    # gather: each child calls back a closure over the outer future.
    c1, c2 = lp.create_task(_hang(gate)), lp.create_task(_hang(gate))
    outer = asyncio.gather(c1, c2)
    (fn, _), = r_callbacks(id(c1))
    if r_tp_name(fn) != "function":
        fail("gather's callback is a %s" % r_tp_name(fn))
    refs = [u64(cell + H["cell_ob_ref"]) for cell in r_tuple(u64(fn + H["func_closure"]))]
    if id(outer) not in refs:
        fail("gather's outer future is not in the callback's closure")
    # ... whose children are an instance attribute of a Future subclass.
    if r_tp_name(id(outer)) != "_GatheringFuture" or \
            r_instance_attr(id(outer), "_children") != id(outer._children):
        fail("raw _GatheringFuture._children")
    check("links.gather_closure")
    # A bound method (TaskGroup, 3.11+) and a partial, behind the first
    # callback (callback0) and in the list (callbacks).
    X = object()

    def noop(*a):
        pass
    f = lp.create_future()
    f.add_done_callback(functools.partial(noop, X))
    if hasattr(asyncio, "TaskGroup"):
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        k = tg.create_task(_hang(gate))
        (m, _), = r_callbacks(id(k))
        if r_tp_name(m) != "method" or u64(m + H["method_im_self"]) != id(tg):
            fail("TaskGroup's callback is not a method bound to it")
        if r_instance_attr(id(tg), "_tasks") != id(tg._tasks) or id(k) not in r_set_keys(id(tg._tasks)):
            fail("raw TaskGroup._tasks")
        f.add_done_callback(tg._on_task_done)
        k.cancel()
        await tg.__aexit__(None, None, None)
        check("links.taskgroup_method")
    else:
        f.add_done_callback(noop)
    (p, _), (second, ctx2) = r_callbacks(id(f))
    if r_tp_name(p) != "functools.partial" or u64(p + FACTS["partial_fn"]) != id(noop) \
            or r_tuple(u64(p + FACTS["partial_args"])) != [id(X)]:
        fail("partial callback")
    if obj_at(second) != f._callbacks[1][0] or ctx2 != id(f._callbacks[1][1]):
        fail("second callback")
    check("links.partial_and_list")
    outer.cancel()
    try:
        await outer
    except asyncio.CancelledError:
        pass


def ts_dict():
    # Returns a borrowed reference: a py_object restype would steal it.
    f = ctypes.pythonapi.PyThreadState_GetDict
    f.restype = ctypes.c_void_p
    f.argtypes = []
    return obj_at(f())


def tstate_addr():
    f = ctypes.pythonapi.PyThreadState_Get
    f.restype = ctypes.c_void_p
    f.argtypes = []
    return f()


def interp_addr():
    f = ctypes.pythonapi.PyInterpreterState_Get
    f.restype = ctypes.c_void_p
    f.argtypes = []
    return f()


def r_running_loop():
    """This thread's running loop, per rloop_kind: 0 when there is none
    (3.13+: NULL; before: no dict or no key yet, or None there)."""
    ts = tstate_addr()
    kind = FACTS["rloop_kind"]
    if kind == ENUMS["AU_PY_RLOOP_TSTATE"]:
        return u64(ts + H["tstate_asyncio_running_loop"])
    d = u64(ts + H["tstate_dict"])
    got = r_dict_get_str(d, FACTS["rloop_key"]) if d else 0
    if got and kind == ENUMS["AU_PY_RLOOP_TSDICT_HOLDER"]:
        got = u64(got + FACTS["rloop_holder_loop"])
    return 0 if got == id(None) else got


def check_running_loop_and_task(lp, main_task, state):
    ts = tstate_addr()
    d = ts_dict()
    keys = [k for k in d if isinstance(k, str) and "asyncio" in k and "loop" in k]
    if keys:
        key = only(keys, "running loop key")
        put("rloop_key", key)
        v = d[key]
        if v is lp:
            put_kind("rloop_kind", "AU_PY_RLOOP_TSDICT")
            put("rloop_holder_loop", None)
        else:
            put_kind("rloop_kind", "AU_PY_RLOOP_TSDICT_HOLDER")
            put("rloop_holder_loop", only(find_word(id(v), type(v).__basicsize__, id(lp)), "rl_loop"))
            state["holder_type"] = type(v)
    else:
        put_kind("rloop_kind", "AU_PY_RLOOP_TSTATE")
        put("rloop_key", None)
        put("rloop_holder_loop", None)
        off = scan_tstate(ts, id(lp), "running loop in the thread state")
        if off != H["tstate_asyncio_running_loop"]:
            fail("running loop at tstate+%d, header says %r" % (off, H["tstate_asyncio_running_loop"]))
    if r_running_loop() != id(lp):
        fail("raw running loop differs")
    check("running_loop")

    # The current task of the loop.
    asyncio_dict = r_dict_get_str(u64(interp_addr() + H["interp_modules"]), "_asyncio")
    md = u64(asyncio_dict + FACTS["module_md_dict"])
    state["asyncio_md"] = md
    if hasattr(_asyncio, "_current_tasks"):
        if _asyncio._current_tasks.get(lp) is not main_task:
            fail("_current_tasks")
        put_kind("ctask_kind", "AU_PY_CTASK_MODULE_DICT")
        put("ctask_dict_name", "_current_tasks")
        got = r_dict_get_ptr(r_dict_get_str(md, "_current_tasks"), id(lp))
    else:
        put_kind("ctask_kind", "AU_PY_CTASK_TSTATE")
        put("ctask_dict_name", None)
        off = scan_tstate(ts, id(main_task), "current task in the thread state")
        if off != H["tstate_asyncio_running_task"]:
            fail("current task at tstate+%d, header says %r" % (off, H["tstate_asyncio_running_task"]))
        got = u64(ts + H["tstate_asyncio_running_task"])
    if got != id(main_task):
        fail("raw current task differs")
    check("current_task")


def check_containers(lp, state):
    md = state["asyncio_md"]
    names = vars(_asyncio)
    put("asyncio_module", "_asyncio")
    put("weakset_data_attr", "data")
    derived = set()
    if "_all_tasks" in names or "_scheduled_tasks" in names:
        wname = "_all_tasks" if "_all_tasks" in names else "_scheduled_tasks"
        ws = names[wname]
        if type(ws) is not weakref.WeakSet or type(ws.data) is not set:
            fail("%s is not a WeakSet" % wname)
        put("tasks_weakset_name", wname)
        ws_addr = r_dict_get_str(md, wname)
        if ws_addr != id(ws):
            fail("raw %s" % wname)
        data = r_instance_attr(ws_addr, "data")
        if data != id(ws.data):
            fail("raw WeakSet.data")
        for ref in r_set_keys(data):
            obj = r_ref(ref)
            if r_tp_name(obj) != "NoneType":  # a dead reference
                derived.add(obj)
        truth = {id(x) for x in ws}
        if "_eager_tasks" in names:
            put_kind("tasks_kind", "AU_PY_TASKS_WEAKSET_AND_SET")
            put("tasks_eager_set_name", "_eager_tasks")
            es = r_dict_get_str(md, "_eager_tasks")
            if es != id(names["_eager_tasks"]):
                fail("raw _eager_tasks")
            derived |= set(r_set_keys(es))
            truth |= {id(x) for x in names["_eager_tasks"]}
        else:
            put_kind("tasks_kind", "AU_PY_TASKS_WEAKSET")
            put("tasks_eager_set_name", None)
        if derived != truth:
            fail("raw task containers differ from Python's")
        alltasks = {id(x) for x in asyncio.all_tasks(lp)}
        if not alltasks <= derived:
            fail("all_tasks() not in the raw containers")
    else:
        put_kind("tasks_kind", "AU_PY_TASKS_LLIST")
        put("tasks_weakset_name", None)
        put("tasks_eager_set_name", None)
        ts = tstate_addr()
        off = scan_tstate(ts, id(state["more_tasks"][-1]) + FACTS["task_node"],
                          "newest task node in the thread state")
        head = off - H["llist_prev"]
        if head != H["tstate_asyncio_tasks_head"]:
            fail("task list head at tstate+%d, header says %r" % (head, H["tstate_asyncio_tasks_head"]))
        for node in r_llist(ts + H["tstate_asyncio_tasks_head"]):
            derived.add(node - FACTS["task_node"])
        alltasks = {id(x) for x in asyncio.all_tasks(lp)}
        if not alltasks <= derived:
            fail("all_tasks() not in the thread's task list")
        # A thread that exits leaves its pending tasks to the interpreter.
        orphan = []

        def worker():
            l2 = asyncio.new_event_loop()
            tk = l2.create_task(_hang(l2.create_future()))
            l2.run_until_complete(asyncio.sleep(0))
            orphan.append((l2, tk))
        th = threading.Thread(target=worker)
        th.start()
        th.join()
        l2, tk = orphan[0]
        interp = interp_addr()
        nodes = r_llist(interp + H["interp_asyncio_tasks_head"])
        if id(tk) + FACTS["task_node"] not in nodes:
            fail("an exited thread's task is not in the interpreter's list")
        state["orphan"] = orphan
        check("tasks.interp_list")
    check("tasks.containers")


def check_yf_cases():
    class Aw:
        def __await__(self):
            yield "x"

    async def inner():
        await Aw()

    async def outer():
        await inner()

    c = outer()
    if r_yf(id(c)) != 0:
        fail("a created coroutine has a yf")
    c.send(None)
    if r_yf(id(c)) != id(c.cr_await) or r_yf(id(c.cr_await)) == 0:
        fail("yf of a coroutine in await")
    inn = c.cr_await
    if r_yf(r_yf(id(inn))) != 0:
        fail("a generator at a plain yield has a yf")
    check("yf.coroutine_await")

    def sub():
        yield 1

    def gen():
        yield from sub()
    g = gen()
    next(g)
    if r_yf(id(g)) != id(g.gi_yieldfrom):
        fail("yf of a generator in yield from")
    check("yf.generator_yield_from")

    async def agen():
        await inner()
        yield 1

    async def consumer(ag):
        async for _ in ag:
            pass
    ag = agen()
    cons = consumer(ag)
    cons.send(None)
    asend = cons.cr_await
    if type(asend).__name__ != "async_generator_asend" or r_yf(id(cons)) != id(asend):
        fail("yf of a coroutine awaiting asend")
    if u64(id(asend) + FACTS["asend_gen"]) != id(ag) or r_yf(id(ag)) != id(ag.ag_await):
        fail("asend -> async generator -> its awaited coroutine")
    check("yf.async_generator_asend")

    def via_wrapper(co):
        return (yield from co.__await__())
    co2 = outer()
    gw = via_wrapper(co2)
    next(gw)
    w = r_yf(id(gw))
    if r_tp_name(w) != "coroutine_wrapper" or u64(w + FACTS["coro_wrapper_coro"]) != id(co2) \
            or r_yf(id(co2)) != id(co2.cr_await):
        fail("yf through a coroutine_wrapper")
    check("yf.coroutine_wrapper")
    for x in (c, g, cons, gw, co2):
        x.close()

    # The forms RESUME takes: quickened (3.11, after a few runs of the
    # code) and instrumented (3.12+, while a trace function is set).
    def suspended():
        co = outer()
        co.send(None)
        ok = r_yf(id(co)) == id(co.cr_await)
        co.close()
        return ok
    for _ in range(64):
        co = outer()
        co.send(None)
        try:
            co.send(None)
        except StopIteration:
            pass
    if not suspended():
        fail("yf of a coroutine whose code was quickened")
    sys.settrace(lambda *a: None)
    try:
        ok = suspended()
    finally:
        sys.settrace(None)
    if not ok:
        fail("yf of a coroutine while tracing")
    if H["yf_kind"] == ENUMS["AU_PY_YF_NEXT_RESUME"]:
        if {H["yf_op_resume"], H["yf_op_resume_alt"]} - RESUME_SEEN:
            fail("RESUME forms seen: %r" % sorted(RESUME_SEEN))
        note("yf rule saw RESUME opcodes %s" % sorted(RESUME_SEEN))
    check("yf.quickened_and_traced")


# ---------------------------------------------------------------------------
# _AsyncioDebug (3.14+): the offsets _asyncio publishes in an ELF section.
ADBG_SECTION = ".AsyncioDebug"
# (field in the section, in order) -> where its value lives in our tables
ADBG_LAYOUT = [
    ("asyncio_task_object.size", "priv", "sizeof_task"),
    ("asyncio_task_object.task_name", "priv", "task_name"),
    ("asyncio_task_object.task_awaited_by", "priv", "fut_awaited_by"),
    ("asyncio_task_object.task_is_task", "priv", "fut_is_task"),
    ("asyncio_task_object.task_awaited_by_is_set", "priv", "fut_awaited_by_is_set"),
    ("asyncio_task_object.task_coro", "priv", "task_coro"),
    ("asyncio_task_object.task_node", "priv", "task_node"),
    ("asyncio_interpreter_state.size", "hdr", "sizeof_interp"),
    ("asyncio_interpreter_state.asyncio_tasks_head", "hdr", "interp_asyncio_tasks_head"),
    ("asyncio_thread_state.size", "hdr", "sizeof_tstate_impl"),
    ("asyncio_thread_state.asyncio_running_loop", "hdr", "tstate_asyncio_running_loop"),
    ("asyncio_thread_state.asyncio_running_task", "hdr", "tstate_asyncio_running_task"),
    ("asyncio_thread_state.asyncio_tasks_head", "hdr", "tstate_asyncio_tasks_head"),
]


def elf_section(path, name):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    def sh(i):
        return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
    stroff = sh(shstrndx)[4]
    for i in range(shnum):
        s = sh(i)
        end = data.index(b"\0", stroff + s[0])
        if data[stroff + s[0]:end].decode() == name:
            return data[s[4]:s[4] + s[5]]
    return None


def measure_asyncio_debug():
    if MINOR < 14:
        return
    cands = []
    if getattr(_asyncio, "__file__", None):
        cands.append(_asyncio.__file__)
    cands.append(os.path.realpath(sys.executable))
    found = None
    for path in cands:
        sec = elf_section(path, ADBG_SECTION)
        if sec is not None:
            found = (path, sec)
            break
    if found is None:
        fail("no %s section in %r" % (ADBG_SECTION, cands))
    path, sec = found
    if len(sec) != 8 * len(ADBG_LAYOUT):
        fail("%s is %d bytes, expected %d" % (ADBG_SECTION, len(sec), 8 * len(ADBG_LAYOUT)))
    OUT.append("adbg_file %s" % path)
    vals = struct.unpack("<%dQ" % len(ADBG_LAYOUT), sec)
    for i, ((name, where, field), v) in enumerate(zip(ADBG_LAYOUT, vals)):
        OUT.append("adbg %s %s %s %d %d" % (name, where, field, 8 * i, v))
        mine = FACTS[field] if where == "priv" else H[field]
        if mine != v:
            fail("_AsyncioDebug %s = %d, measured/header %s = %r" % (name, v, field, mine))
    check("asyncio_debug")


def main(argv):
    serve = "--serve" in argv
    hdr = None
    for i, a in enumerate(argv):
        if a == "--hdr" and i + 1 < len(argv):
            hdr = argv[i + 1]
    if hdr is None:
        fail("usage: probe_private.py --hdr NAME=VALUE,... [--serve]")
    parse_hdr(hdr)
    OUT.append("version 0x%08X" % sys.hexversion)
    if tp_name_of_type(int) != "int":
        fail("type_tp_name")
    measure_future()
    measure_generic()
    measure_dict()
    measure_instances()
    dummy_name = measure_set()
    check_yf_cases()
    state = {}
    loop = asyncio.new_event_loop()
    loop.run_until_complete(probe_main(state))
    if r_running_loop() != 0:
        fail("raw running loop after the loop stopped")
    check("running_loop.none")
    extra = {"WAKEUP": state["wakeup_type"], "RUNNING_LOOP_HOLDER": state.get("holder_type")}
    names = measure_type_names(extra)
    names["SET_DUMMY"] = dummy_name
    for tid in TYPE_IDS:
        OUT.append("tpname %s %s" % (tid, "ABSENT" if names[tid] is None else json.dumps(names[tid])))
    measure_asyncio_debug()
    OUT.append("END")
    sys.stdout.write("\n".join(OUT) + "\n")
    sys.stdout.flush()
    if serve:
        import time
        time.sleep(3600)
    # Finish quietly: cancel what is left, and let the tasks of the exited
    # thread's loop (3.14+) die without "Task was destroyed" reports.
    pending = asyncio.all_tasks(loop)
    for t in pending:
        t.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()
    for l2, _ in state.get("orphan", []):
        l2.set_exception_handler(lambda loop, context: None)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except ProbeError as e:
        sys.stdout.write("\n".join(OUT) + "\n")
        sys.stderr.write("probe_private: %s (Python %s)\n" % (e, sys.version.split()[0]))
        sys.exit(1)
