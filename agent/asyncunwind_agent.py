"""asyncunwind agent: records which asyncio task created which.

asyncunwind rebuilds task-aware stacks by reading a Python process from
outside.  Await links and gather/TaskGroup links live in CPython's own
objects, but no CPython version records which task *created* a task (the
weak link).  This agent records it in a shared-memory region that the
reader finds in /proc/PID/maps and reads with one read call.  The region's
format and the guarantees are in docs/AGENT.md.

Loading: `sitecustomize.py` beside this file installs the import hook of
`asyncunwind_hook.py` at start-up; this module is imported, and patch()
called, only when asyncio.base_events (or uvloop) is imported, so a program
that never uses asyncio never loads it.

Patched: BaseEventLoop.create_task and uvloop.Loop.create_task, which every
creation path goes through (asyncio.create_task, TaskGroup.create_task,
ensure_future, eager task factories, an application's own task factory).
The wrapper captures the current task before calling the original, calls
it with the caller's arguments untouched, and records the pair if the new
task is still pending.  Coroutines are never wrapped; the agent holds weak
references only; nothing it does raises into the application.
"""

import sys

FORMAT_VERSION = 1
MAGIC = b"AUAGNT01"
HEADER_SIZE = 64
RECORD_SIZE = 40
MEMFD_NAME = "asyncunwind-agent"
# Record slots in the mapping: 40 MiB of sparse memfd, of which a page is
# backed only once a record lands on it.  ASYNCUNWIND_AGENT_CAPACITY
# overrides it (1 .. MAX_CAPACITY).
DEFAULT_CAPACITY = 1 << 20
MAX_CAPACITY = 1 << 24
# Slots checked for finished-but-referenced tasks, per record, once the
# region is full.
SWEEP = 8

_OFF_USED = 24
_OFF_GENERATION = 32

_debug = False
_engine = None
_patched = []  # "module.Class" whose create_task is wrapped
_failure = None  # why recording stopped, for _state()
# The file name of the wrapper's code, as tracebacks show it.
_WRAPPER_FILE = "<asyncunwind agent>"


def _log(what):
    """Reports an internal failure on stderr, only when debugging."""
    if _debug:
        try:
            import traceback
            sys.stderr.write("asyncunwind agent: %s\n" % (what,))
            if sys.exc_info()[0] is not None:
                traceback.print_exc()
        except Exception:
            pass


def _disable(what):
    """Stops recording for good (records already written stay valid)."""
    global _failure
    if _engine is not None:
        _engine.disable()
    if _failure is None:
        _failure = what
    _log(what)


def _drop_own_frames(task):
    """In debug mode asyncio records where a task was created, and drops
    the create_task frame itself; drop the wrapper's frame too, so the
    traceback reads as it does without the agent."""
    tb = task._source_traceback
    while tb and tb[-1].filename == _WRAPPER_FILE:
        del tb[-1]


# --------------------------------------------------------------------------
# The shared region

def _capacity():
    import os
    try:
        n = int(os.environ.get("ASYNCUNWIND_AGENT_CAPACITY", ""))
    except ValueError:  # unset, or not a number: the default
        return DEFAULT_CAPACITY
    return n if 1 <= n <= MAX_CAPACITY else DEFAULT_CAPACITY


def _new_region(capacity, content=b""):
    """A fresh shared mapping of a memfd with its header written, after
    copying `content` (a previous region's bytes, header included) in."""
    import mmap
    import os
    import struct
    size = HEADER_SIZE + RECORD_SIZE * capacity
    fd = os.memfd_create(MEMFD_NAME, os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        kwargs = {}
        if sys.version_info >= (3, 13):
            kwargs["trackfd"] = False  # keep no duplicate of the fd open
        region = mmap.mmap(fd, size, mmap.MAP_SHARED,
                           mmap.PROT_READ | mmap.PROT_WRITE, **kwargs)
    finally:
        os.close(fd)
    region[:len(content)] = content
    used, = struct.unpack_from("<I", region, _OFF_USED)
    generation, = struct.unpack_from("<Q", region, _OFF_GENERATION)
    struct.pack_into("<8sIIIIIIQ", region, 0, MAGIC, FORMAT_VERSION,
                     HEADER_SIZE, RECORD_SIZE, capacity, used, os.getpid(),
                     generation)
    return region


# --------------------------------------------------------------------------
# The recorder

# The recorder's code: the slow path, and a factory of create_task
# wrappers.  It runs with an _Engine's namespace as its globals, which
# holds the state (a global lookup costs CPython about what a local one
# does).  The wrapper's parameters and its call of the original are filled
# in to mirror the original's own signature (see _signature_form): a call
# then costs no extra packing of arguments, and a wrong call raises the
# same TypeError, from a function of the same qualified name.  This runs
# for every task created: it spends as few bytecodes and calls as it can.
_RECORDER = '''
def new_slot():
    """The slow path, when no slot is freed: grow the region; once it is
    full, free the slots of finished (but still referenced) tasks among
    the next SWEEP instead.  Returns a slot, or -1: full, or another
    thread is here (the record is dropped)."""
    global used, hand, drops
    try:
        token.pop()
    except IndexError:
        drops += 1
        return -1
    try:
        if used < capacity:
            task_refs.append(dead_ref)
            creator_refs.append(dead_ref)
            on_death.append(partial(freed_setdefault, used))
            used += 1
            words32[USED_INDEX] = used
            return used - 1
        h = hand
        for _ in range(SWEEP):
            t = task_refs[h]()
            if t is not None and t.done():
                # While t is held the task cannot die: empty the record,
                # then drop the refs it named; no callback can free this
                # slot a second time.
                region[HS + RS * h:HS + RS * (h + 1)] = ZERO_RECORD
                words[GEN_INDEX] = next_generation()
                task_refs[h] = creator_refs[h] = dead_ref
                freed_setdefault(h, None)
            h = (h + 1) % used
        t = None
        hand = h
        if freed:
            return freed_popitem()[0]
        drops += 1
        return -1
    finally:
        token.append(None)


def make_wrapper(orig, debug_loop):
    def create_task({params}):
        global creator_cache, drops
        try:
            creator = current_task({loop})  # None once disabled
        except Exception:
            creator = None
        task = {call}
        if creator is not None:
            try:
                if not task.done():  # else it finished eagerly
                    try:
                        i = freed_popitem()[0] if freed else new_slot()
                    except KeyError:  # another thread took the last one
                        i = new_slot()
                    if i >= 0:
                        try:
                            task_ref = wref(task, on_death[i])
                        except TypeError:  # a task factory's odd future
                            freed_setdefault(i, None)
                            drops += 1
                            i = -1
                    if i >= 0:
                        creator_ref, c, d = creator_cache
                        if creator_ref() is not creator:
                            creator_ref = wref(creator)
                            c = _id(creator)
                            d = _id(creator_ref)
                            creator_cache = (creator_ref, c, d)
                        a = _id(task)
                        b = _id(task_ref)
                        # One write: a reader racing it sees a check that
                        # fails.
                        pack_record(region, HS + RS * i, a, b, c, d,
                                    _hash((a, b, c, d)))
                        words[GEN_INDEX] = next_generation()
                        # The old refs go only now that no record names
                        # them.
                        task_refs[i] = task_ref
                        if creator_refs[i] is not creator_ref:
                            creator_refs[i] = creator_ref
            except Exception:
                disable("recording failed")
        if debug_loop:
            try:
                if {loop}._debug:
                    drop_own_frames(task)
            except Exception:
                pass
        try:
            return task
        finally:
            # As CPython 3.14 does (gh-128552): no frame of ours keeps the
            # task alive through its exception's traceback.
            del task
    return create_task
'''

_GENERIC_FORM = ("*args, **kwargs", "orig(*args, **kwargs)", "args[0]")


def _signature_form(orig):
    """(params, call, loop) for _RECORDER: the original's own parameters
    when it is a Python function `(self, coro, *, kw=None, ...)` or
    `(self, coro, **kwargs)`, else `(*args, **kwargs)`."""
    import types
    if type(orig) is not types.FunctionType:
        return _GENERIC_FORM
    code = orig.__code__
    n, k = code.co_argcount, code.co_kwonlyargcount
    names = code.co_varnames[:n + k]
    star_args, star_kwargs = code.co_flags & 0x04, code.co_flags & 0x08
    if (n != 2 or names[:2] != ("self", "coro") or star_args or
            getattr(code, "co_posonlyargcount", 0) or orig.__defaults__ or
            (orig.__kwdefaults__ or {}) != dict.fromkeys(names[2:])):
        return _GENERIC_FORM
    if star_kwargs:
        if k:
            return _GENERIC_FORM
        kwargs = code.co_varnames[n]
        return ("self, coro, **%s" % kwargs,
                "orig(self, coro, **%s) if %s else orig(self, coro)"
                % (kwargs, kwargs), "self")
    params, call = "self, coro", "orig(self, coro"
    if k:
        params += ", *, " + ", ".join("%s=None" % x for x in names[2:])
        call += ", " + ", ".join("%s=%s" % (x, x) for x in names[2:])
    return params, call + ")", "self"


class _Engine(object):
    """The recorder's state, in the namespace _RECORDER runs in.

    Slot i of the region has, beside its record, task_refs[i] and
    creator_refs[i]: the weakref objects whose ids the record carries.
    They live as long as the record, so no other object can take their
    addresses and make a stale record pass the reader's checks.  The task
    weakref has a callback, made once per slot, that puts the slot into
    `freed` when the task dies.  The region grows only when `freed` is
    empty, that is when every used slot holds a task that is still alive
    (docs/AGENT.md, "Bounds").
    """

    def __init__(self):
        import _weakref
        import functools
        import itertools
        import os
        import struct

        if sys.byteorder != "little":
            raise OSError("the region format is little-endian")
        self.capacity = capacity = _capacity()
        region = _new_region(capacity)
        wref = _weakref.ref
        freed = {}  # reusable slot -> anything; each dict call is atomic
        dead_ref = wref(set())  # dead at once: what empty slots hold
        self.ns = {
            "__builtins__": __builtins__,
            "on": True,
            "capacity": capacity,
            "GEN_INDEX": _OFF_GENERATION // 8,
            "USED_INDEX": _OFF_USED // 4,
            "HS": HEADER_SIZE,
            "RS": RECORD_SIZE,
            "SWEEP": SWEEP,
            "ZERO_RECORD": bytes(RECORD_SIZE),
            # 'q' for the check: Python's hash is signed, and its
            # two's-complement bytes are those of hash & (2**64 - 1).
            "pack_record": struct.Struct("<QQQQq").pack_into,
            "next_generation": itertools.count(1).__next__,
            "wref": wref,
            "partial": functools.partial,
            "_id": id,
            "_hash": hash,
            "dead_ref": dead_ref,
            "task_refs": [],
            "creator_refs": [],
            "on_death": [],  # per slot: the task weakref's callback
            "freed": freed,
            "freed_popitem": freed.popitem,
            # setdefault: a fast C call, made by every recorded task that
            # dies.
            "freed_setdefault": freed.setdefault,
            "used": 0,  # slots [0, used) handed out; never decreases
            "hand": 0,  # where the sweep for finished tasks resumes
            "drops": 0,
            # Most tasks are created by the same task as the one before:
            # its weakref and both ids, in one tuple so that a thread
            # switch never mixes two creators.
            "creator_cache": (dead_ref, 0, 0),
            # A non-blocking lock for the slow path: an empty list means
            # held (list.pop and list.append are each one atomic call).
            "token": [None],
            # asyncio.tasks.current_task once asyncio is patched; a
            # function that gives None for any loop until then, and once
            # disabled.
            "current_task": {}.get,
            "disable": _disable,
            "drop_own_frames": _drop_own_frames,
        }
        self._set_region(region)
        os.register_at_fork(after_in_child=self._after_fork_in_child)

    def _set_region(self, region):
        """The region, and the views of it the recorder writes through
        (native order, which the format's little-endian is here)."""
        ns = self.ns
        ns["region"] = region
        ns["words"] = memoryview(region).cast("Q")  # for the generation
        ns["words32"] = memoryview(region).cast("I")  # for used

    @property
    def enabled(self):
        return self.ns["on"]

    def disable(self):
        self.ns["on"] = False
        # The wrapper then finds no creator, and records nothing.
        self.ns["current_task"] = {}.get

    def wrap(self, orig, debug_loop):
        """A create_task that records the creator around `orig`."""
        import functools
        params, call, loop = _signature_form(orig)
        source = _RECORDER.format(params=params, call=call, loop=loop)
        exec(compile(source, _WRAPPER_FILE, "exec"), self.ns)
        create_task = self.ns.pop("make_wrapper")(orig, debug_loop)
        functools.update_wrapper(create_task, orig)
        create_task.__asyncunwind_agent__ = True
        return create_task

    def state(self):
        ns = self.ns
        live = 0
        for ref in ns["task_refs"]:
            t = ref()
            if t is not None and not t.done():
                live += 1
        region = ns["region"]
        return {
            "region": region,
            "used": ns["used"],
            "drops": ns["drops"],
            "generation": (ns["words"][ns["GEN_INDEX"]]
                           if region is not None else None),
            "freed": len(ns["freed"]),
            "live": live,
        }

    def _after_fork_in_child(self):
        """The child must never write into the parent's region: it gets its
        own, with a copy of the records (the same objects at the same
        addresses), and a fresh lock (the parent's may be held)."""
        ns = self.ns
        ns["token"] = [None]
        old = ns["region"]
        if old is None:
            return
        ns["region"] = None  # until the child has its own
        try:
            for view in ("words", "words32"):
                ns[view].release()  # mmap.close() refuses while exported
            self._set_region(_new_region(
                self.capacity, old[:HEADER_SIZE + RECORD_SIZE * ns["used"]]))
        except Exception:
            ns["region"] = None
            _disable("no region after fork")
        try:
            old.close()  # unmaps the parent's region, in the child only
        except Exception:
            pass


# --------------------------------------------------------------------------
# Patching

def _get_engine():
    global _engine
    if _engine is None and _failure is None:
        try:
            _engine = _Engine()
        except Exception:
            _disable("no region")
    return _engine


def _patch_class(cls, label, debug_loop):
    engine = _get_engine()
    if engine is None:
        return
    orig = cls.__dict__.get("create_task")
    if orig is None:
        orig = cls.create_task  # inherited (uvloop: the Cython base's)
    if getattr(orig, "__asyncunwind_agent__", False):
        return
    cls.create_task = engine.wrap(orig, debug_loop)
    _patched.append(label)


def _patch_asyncio(module):
    engine = _get_engine()
    if engine is None:
        return
    # base_events imports asyncio.tasks, which ends with the C current_task.
    if engine.enabled:
        engine.ns["current_task"] = sys.modules["asyncio.tasks"].current_task
    _patch_class(module.BaseEventLoop, "asyncio.BaseEventLoop", True)


def _patch_uvloop(module):
    # uvloop imports asyncio first, so BaseEventLoop is patched already,
    # unless asyncio was imported before the agent.
    _safe_patch("asyncio.base_events")
    if _engine is not None:
        _patch_class(module.Loop, "uvloop.Loop", False)


_PATCHES = {
    "asyncio.base_events": _patch_asyncio,
    "uvloop": _patch_uvloop,
}
WATCHED = tuple(_PATCHES)


def _safe_patch(name):
    module = sys.modules.get(name)
    if module is None:
        return
    try:
        _PATCHES[name](module)
    except Exception:
        _disable("patching %s failed" % name)


def patch(name):
    """Patches the module `name` (one of WATCHED) if it is imported.  Called
    by the import hook (asyncunwind_hook) once the module has run.  Never
    raises."""
    global _debug
    try:
        import os
        _debug = os.environ.get("ASYNCUNWIND_AGENT_DEBUG") == "1"
        _safe_patch(name)
    except Exception:
        _disable("patch failed")


# --------------------------------------------------------------------------
# Debug API (tests; the reader never runs code in the target)

def _state():
    """The agent's state: what is patched, the region's address, size and
    counters, and how many recorded tasks are pending now."""
    engine = _engine
    out = {
        "patched": list(_patched),
        "failure": _failure,
        "enabled": bool(engine is not None and engine.enabled),
    }
    if engine is None:
        return out
    st = engine.state()
    region = st.pop("region")
    address = None
    if region is not None:
        try:
            import ctypes
            view = ctypes.c_char.from_buffer(region)
            address = ctypes.addressof(view)
            del view
        except Exception:
            address = None
    out.update(address=address,
               size=HEADER_SIZE + RECORD_SIZE * engine.capacity,
               capacity=engine.capacity)
    out.update(st)
    return out
