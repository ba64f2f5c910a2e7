"""asyncunwind agent: records which asyncio task created which.

asyncunwind rebuilds task-aware stacks by reading a Python process from
outside.  Await links and gather/TaskGroup links live in CPython's own
objects, but no CPython version records which task *created* a task (the
weak link).  This agent records it in a Python list of weakref pairs, whose
address it publishes in a small shared-memory region that the reader finds
in /proc/PID/maps.  The format and the guarantees are in docs/AGENT.md.

Loading: `sitecustomize.py` beside this file installs the import hook of
`asyncunwind_hook.py` at start-up; this module is imported, and patch()
called, only when asyncio.base_events (or uvloop) is imported, so a program
that never uses asyncio never loads it.

Hooked:
  3.9-3.13  the `add` of the WeakSet in which the C Task's __init__
            registers every task (_asyncio._all_tasks, 3.12+:
            _scheduled_tasks): an instance attribute that does what
            WeakSet.add does, then appends (the task's weakref from the set,
            a weakref to the task current on the task's loop).  It runs for
            every task however it is made (create_task of any loop, a task
            factory, asyncio.Task(...), an eager task once it suspends).
  3.14+     tasks are registered in C: BaseEventLoop.create_task and
            uvloop.Loop.create_task are wrapped instead.
Coroutines are never wrapped; the agent holds weak references only;
nothing it does raises into the application.
"""

import sys

FORMAT_VERSION = 2
MAGIC = b"AUAGNT02"
HEADER_SIZE = 64
MEMFD_NAME = "asyncunwind-agent"
# The header's 64-bit words that change (index = offset / 8).
_GEN_WORD = 3  # offset 24: generation
_LIST_WORD = 4  # offset 32: address of the records list
# Room a new records list has beyond twice its live entries (entries, even).
FLOOR = 1024

_debug = False
_engine = None
_patched = []  # what is hooked, e.g. "asyncio.BaseEventLoop.create_task"
_failure = None  # why recording stopped, for _state()
# The file name of the agent's generated code, as tracebacks show it.
_CODE_FILE = "<asyncunwind agent>"


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
    """Stops recording for good (the pairs already recorded stay valid)."""
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
    while tb and tb[-1].filename == _CODE_FILE:
        del tb[-1]


# --------------------------------------------------------------------------
# The shared region: a header naming the records list

def _new_region(generation, records):
    """A fresh shared mapping of a memfd, one page, with the header written:
    its pid, `generation` and the address of `records`.  Returns the mapping
    and a view of its 64-bit words (native order, which is the format's
    little-endian here)."""
    import mmap
    import os
    import struct
    size = mmap.PAGESIZE  # a reader fetching whole pages reads it whole
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
    struct.pack_into("<8sIIIIQQ", region, 0, MAGIC, FORMAT_VERSION,
                     HEADER_SIZE, os.getpid(), 0, generation, id(records))
    return region, memoryview(region).cast("Q")


# --------------------------------------------------------------------------
# The recorder

# The recorder's code.  It runs with an _Engine's namespace as its globals,
# which holds the state (a global lookup costs CPython about what a local
# one does): `records`, the current list, `extend`, its bound extend, and
# `limit`, the length beyond which an extend would reallocate its items.
# The hot paths (add, create_task) run for every task created: they spend
# as few bytecodes and calls as they can.
_RECORDER = '''
def new_list(live):
    """A records list holding the pairs `live` (a flat list), allocated so
    that extends never reallocate its items until it holds `limit` + 2
    entries, and the items beyond its length are None: (list, end of the
    live pairs, where the appended ones start, limit)."""
    n = 2 + len(live)
    cap = 2 * n + FLOOR
    lst = [None] * cap
    # The first pair names the list itself: a reader that read the address
    # of a list since freed, whose memory now holds something else, sees
    # it is not ours.
    lst[0] = lst[1] = lst
    lst[2:n] = live
    # Keeping at least half of the allocation: CPython shrinks it only
    # below half.  The padding between n and keep stays None.
    keep = max(n, cap // 2)
    keep += keep & 1
    del lst[keep:]
    return lst, n, keep, cap - 2


def compact():
    """The slow path, when the records list is full: a new list with the
    pairs whose task and creator are both alive and pending, published in
    the header; the previous list is kept alive and unchanged until the
    next compaction (a reader may have read its address).  Returns whether
    there is room now (no: another thread is compacting, or recording
    stopped)."""
    global records, extend, limit, kept_end, fresh, previous, generation
    global compactions
    try:
        token.pop()
    except IndexError:  # another thread, or a reentrant call, is here
        return False
    try:
        old = records
        items = old[:]  # other threads may append to old meanwhile
        live = []
        for start, stop in ((2, kept_end), (fresh, len(items) - 1)):
            for i in range(start, stop, 2):
                t = items[i]()
                if t is None:
                    continue
                c = items[i + 1]()
                if c is None:
                    continue
                try:
                    if t.done() or c.done():
                        continue
                except Exception:  # not a Future: kept while alive
                    pass
                live.append(items[i])
                live.append(items[i + 1])
        t = c = None
        lst, n, keep, lim = new_list(live)
        # What other threads appended since the copy (lists never shrink).
        tail = old[len(items):]
        if len(tail) <= lim - keep:
            lst.extend(tail)
        dropped = previous
        previous = old
        records, extend, limit, kept_end, fresh = lst, lst.extend, lim, n, keep
        generation += 1
        # The address first (one aligned 8-byte store), then the generation.
        words[LIST_WORD] = id(lst)
        words[GEN_WORD] = generation
        compactions += 1
        if dropped is not None:
            # The list before the previous one is freed now: the self
            # reference goes first (it would only be collected later).
            dropped[0] = dropped[1] = None
        return True
    except Exception:
        disable("compaction failed")
        return False
    finally:
        token.append(None)


def creator_ref(creator):
    """The slow path for a creator other than the last one: its weakref,
    remembered (most tasks are created by the same task as the one
    before)."""
    global last
    last = cr = ref(creator)
    return cr


def record_unless_done(task, creator):
    """An application's task factory made the task: its pair, unless the
    task is done already (an eager task that finished at once)."""
    try:
        if not task.done() and (len(records) <= limit or compact()):
            cr = last
            if cr() is not creator:
                cr = creator_ref(creator)
            extend((ref(task), cr))
    except Exception:
        skipped()


def skipped():
    """A task whose pair could not be recorded (an object that is not a
    task, a creator without weakrefs)."""
    global drops
    drops += 1
'''

# 3.9-3.13: the `add` of the WeakSet of all tasks, as an instance attribute
# of that set.  WeakSet.add's own work (pending removals, then
# data.add(ref(item, self._remove))) comes first, unchanged, its bound
# pieces taken from the set; the weakref it adds is the pair's task weakref.
_ADD = '''
def add(item):
    if pending:
        commit()
    r = ref(item, remove)
    data_add(r)
    try:
        creator = current_get(item._loop)
        if creator is not None:
            if len(records) > limit and not compact():
                return
            cr = last
            if cr() is not creator:
                cr = creator_ref(creator)
            extend((r, cr))
    except Exception:
        skipped()
'''

# 3.14+, asyncio's loops: BaseEventLoop.create_task itself, replaced by
# one that does what the original does (the original's names are checked
# first, see _inlinable) and records the pair in the same frame.  A wrapper
# around the original would cost a second Python frame per task.  The
# creator is taken before the task is made: an eager task runs inside
# Task() as the current task.  In debug mode the source traceback's last
# frame is this function's, which is dropped as the original drops its own.
_INLINE = '''
def make_create_task(tasks):
    def create_task(self, coro, **kwargs):
        self._check_closed()
        try:
            creator = current_task(self)
        except Exception:
            creator = None
        if self._task_factory is not None:
            task = self._task_factory(self, coro, **kwargs)
            if creator is not None:
                record_unless_done(task, creator)
            try:
                return task
            finally:
                del task
        task = tasks.Task(coro, loop=self, **kwargs)
        if task._source_traceback:
            del task._source_traceback[-1]
        if creator is not None:
            try:
                # Without keywords (eager_start=) the task cannot be done.
                if kwargs and task.done():
                    pass
                elif len(records) <= limit or compact():
                    cr = last
                    if cr() is not creator:
                        cr = creator_ref(creator)
                    extend((ref(task), cr))
            except Exception:
                skipped()
        try:
            return task
        finally:
            # As CPython 3.14 does (gh-128552): no frame of ours keeps the
            # task alive through its exception's traceback.
            del task
    return create_task
'''

# 3.14+, other loops (uvloop's, whose create_task is Cython) and an asyncio
# whose create_task is not the one _INLINE mirrors: a wrapper.  Its
# parameters and its call of the original are filled in to mirror the
# original's own signature (see _signature_form): a call then costs no
# extra packing of arguments, and a wrong call raises the same TypeError,
# from a function of the same qualified name.
_WRAPPER = '''
def make_wrapper(orig, debug_loop):
    def create_task({params}):
        try:
            creator = current_task({loop})
        except Exception:
            creator = None
        task = {call}
        if creator is not None:
            try:
                # An eager task that finished at once is left out.
                if not task.done() and (len(records) <= limit or compact()):
                    cr = last
                    if cr() is not creator:
                        cr = creator_ref(creator)
                    extend((ref(task), cr))
            except Exception:
                skipped()
        if debug_loop:
            try:
                if {loop}._debug:
                    drop_own_frames(task)
            except Exception:
                pass
        try:
            return task
        finally:
            del task
    return create_task
'''

# The names BaseEventLoop.create_task uses on 3.14 and 3.15, in order: the
# function _INLINE mirrors.  Another original is wrapped instead.
_INLINED_NAMES = ("_check_closed", "_task_factory", "tasks", "Task",
                  "_source_traceback")


def _inlinable(orig):
    """Whether orig is the `(self, coro, **kwargs)` create_task, using
    exactly the names of the one _INLINE does the work of."""
    import types
    if type(orig) is not types.FunctionType:
        return False
    code = orig.__code__
    return (code.co_names == _INLINED_NAMES and code.co_argcount == 2 and
            code.co_kwonlyargcount == 0 and
            code.co_varnames[:3] == ("self", "coro", "kwargs") and
            code.co_flags & 0x0C == 0x08 and not orig.__defaults__ and
            not getattr(code, "co_posonlyargcount", 0) and
            "tasks" in orig.__globals__)


_GENERIC_FORM = ("*args, **kwargs", "orig(*args, **kwargs)", "args[0]")


def _signature_form(orig):
    """(params, call, loop) for _WRAPPER: the original's own parameters
    when it is a function, in Python or compiled by Cython (uvloop's),
    `(self, coro, *, kw=None, ...)` or `(self, coro, **kwargs)`, else
    `(*args, **kwargs)`.  Keywords left at None are not passed on: the
    original then takes the cheaper positional call."""
    code = getattr(orig, "__code__", None)
    try:
        n, k = code.co_argcount, code.co_kwonlyargcount
        names = tuple(code.co_varnames[:n + k])
        flags = code.co_flags
        plain = (n == 2 and names[:2] == ("self", "coro") and
                 not flags & 0x04 and
                 not getattr(code, "co_posonlyargcount", 0) and
                 not orig.__defaults__ and
                 (orig.__kwdefaults__ or {}) == dict.fromkeys(names[2:]))
    except Exception:  # not a function, or an unusual one
        return _GENERIC_FORM
    if not plain:
        return _GENERIC_FORM
    if flags & 0x08:
        if k:
            return _GENERIC_FORM
        kwargs = code.co_varnames[n]
        return ("self, coro, **%s" % kwargs,
                "orig(self, coro, **%s) if %s else orig(self, coro)"
                % (kwargs, kwargs), "self")
    if not k:
        return "self, coro", "orig(self, coro)", "self"
    kw = names[2:]
    return ("self, coro, *, " + ", ".join("%s=None" % x for x in kw),
            "orig(self, coro) if %s else orig(self, coro, %s)"
            % (" and ".join("%s is None" % x for x in kw),
               ", ".join("%s=%s" % (x, x) for x in kw)), "self")


class _Engine(object):
    """The recorder's state, in the namespace its code runs in.

    `records` is a list: [itself, itself, task_ref, creator_ref, ...].  Each
    pair holds a weakref to a task and one to the task that created it; the
    list keeps both weakref objects alive, so no other object can take
    their addresses while a reader may find them there, and a task's
    weakref refers to None once the task dies, before its memory can be
    reused.  Pairs are only ever appended (one list.extend, atomic for
    other threads); compact() replaces the list when it is full.
    """

    def __init__(self):
        import _weakref
        import os

        if sys.byteorder != "little":
            raise OSError("the region format is little-endian")
        ns = self.ns = {
            "__builtins__": __builtins__,
            "FLOOR": FLOOR,
            "LIST_WORD": _LIST_WORD,
            "GEN_WORD": _GEN_WORD,
            "ref": _weakref.ref,
            "previous": None,
            # A weakref to the last creator (dead at first).
            "last": _weakref.ref(set()),
            "generation": 1,
            "compactions": 0,
            "drops": 0,
            # A non-blocking lock for compact(): an empty list means held
            # (list.pop and list.append are each one atomic call).
            "token": [None],
            "disable": _disable,
            "drop_own_frames": _drop_own_frames,
            # Set by hook_weakset (3.9-3.13) or patch_class (3.14+).
            "current_get": None,
            "current_task": None,
        }
        exec(compile(_RECORDER, _CODE_FILE, "exec"), ns)
        lst, n, keep, lim = ns["new_list"]([])
        ns.update(records=lst, extend=lst.extend, limit=lim, kept_end=n,
                  fresh=keep)
        ns["region"], ns["words"] = _new_region(1, lst)
        self.weakset = None  # the hooked WeakSet (3.9-3.13)
        self.wrapped = []  # (class, original, inherited) (3.14+)
        self.enabled = True
        os.register_at_fork(after_in_child=self._after_fork_in_child)

    def hook_weakset(self, ws, current_tasks):
        """Sets `add` on the WeakSet ws, in which every task is registered,
        to one that records its pair; current_tasks maps a loop to the task
        it runs."""
        ns = self.ns
        ns.update(pending=ws._pending_removals, commit=ws._commit_removals,
                  remove=ws._remove, data_add=ws.data.add,
                  current_get=current_tasks.get)
        exec(compile(_ADD, _CODE_FILE, "exec"), ns)
        add = ns.pop("add")
        add.__qualname__ = "WeakSet.add"
        ws.add = add  # an instance attribute: found before the class's
        self.weakset = ws

    def wrap(self, cls, orig, base_loop):
        """Sets on cls a create_task that records its pair: for asyncio's
        BaseEventLoop (base_loop), one that does the original's work itself
        if orig is the one _INLINE mirrors, else a wrapper around orig."""
        import functools
        inherited = "create_task" not in cls.__dict__
        if base_loop and _inlinable(orig):
            exec(compile(_INLINE, _CODE_FILE, "exec"), self.ns)
            create_task = self.ns.pop("make_create_task")(
                orig.__globals__["tasks"])
        else:
            params, call, loop = _signature_form(orig)
            source = _WRAPPER.format(params=params, call=call, loop=loop)
            exec(compile(source, _CODE_FILE, "exec"), self.ns)
            create_task = self.ns.pop("make_wrapper")(orig, base_loop)
        functools.update_wrapper(create_task, orig)
        create_task.__asyncunwind_agent__ = True
        cls.create_task = create_task
        self.wrapped.append((cls, orig, inherited))

    def disable(self):
        """Puts back what was hooked: nothing more is recorded."""
        if not self.enabled:
            return
        self.enabled = False
        ws, self.weakset = self.weakset, None
        if ws is not None:
            try:
                del ws.add
            except Exception:
                pass
        for cls, orig, inherited in self.wrapped:
            try:
                if inherited:
                    del cls.create_task
                else:
                    cls.create_task = orig
            except Exception:
                pass
        # What still calls a wrapper or the hook finds no creator.
        self.ns["current_task"] = self.ns["current_get"] = {}.get

    def state(self):
        ns = self.ns
        records = ns["records"]
        live = pairs = 0
        it = iter(records[2:])
        for r, cr in zip(it, it):
            if r is None:
                continue
            pairs += 1
            t, c = r(), cr()
            if (t is not None and c is not None and not t.done() and
                    not c.done()):
                live += 1
        region = ns["region"]
        return {
            "region": region,
            "generation": (ns["words"][_GEN_WORD]
                           if region is not None else None),
            "list": id(records),
            "entries": len(records),
            "limit": ns["limit"],
            "pairs": pairs,
            "live": live,
            "compactions": ns["compactions"],
            "drops": ns["drops"],
        }

    def _after_fork_in_child(self):
        """The child must never write into the parent's region: it gets its
        own, naming its own copy of the records list (the same objects live
        at the same addresses in the child), and a fresh lock (the parent's
        may be held)."""
        ns = self.ns
        ns["token"] = [None]
        old = ns["region"]
        if old is None:
            return
        ns["region"] = None  # until the child has its own
        try:
            ns["words"].release()  # mmap.close() refuses while exported
            ns["region"], ns["words"] = _new_region(ns["generation"],
                                                    ns["records"])
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


def _patch_class(cls, label, base_loop):
    engine = _get_engine()
    if engine is None or not engine.enabled:
        return
    orig = cls.__dict__.get("create_task")
    if orig is None:
        orig = cls.create_task  # inherited (uvloop: the Cython base's)
    if getattr(orig, "__asyncunwind_agent__", False):
        return
    engine.wrap(cls, orig, base_loop)
    _patched.append(label + ".create_task")


def _patch_asyncio(module):
    engine = _get_engine()
    if engine is None or not engine.enabled:
        return
    # base_events imports asyncio.tasks, which ends with the C module's
    # containers and functions (the pure-Python ones without _asyncio).
    tasks = sys.modules["asyncio.tasks"]
    if sys.version_info >= (3, 14):
        engine.ns["current_task"] = tasks.current_task
        _patch_class(module.BaseEventLoop, "asyncio.BaseEventLoop", True)
        return
    if engine.weakset is not None:
        return
    name = "_scheduled_tasks" if sys.version_info >= (3, 12) else "_all_tasks"
    engine.hook_weakset(getattr(tasks, name), tasks._current_tasks)
    _patched.append("asyncio.tasks.%s.add" % name)


def _patch_uvloop(module):
    # uvloop imports asyncio first, so asyncio is patched already, unless
    # asyncio was imported before the agent.  Before 3.14 uvloop's tasks
    # are asyncio's, registered in the hooked WeakSet: nothing more to do.
    _safe_patch("asyncio.base_events")
    if _engine is not None and sys.version_info >= (3, 14):
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
    """The agent's state: what is hooked, the region's address, the records
    list and its counters, and how many recorded pairs have both tasks
    pending now."""
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
    out.update(address=address, size=len(region) if region else None)
    out.update(st)
    return out
