"""Checks of the asyncunwind agent (agent/), run inside the interpreter.

Run with the agent first on PYTHONPATH, by tests/agent_test.c under every
interpreter of tests/pythons.h, or by hand:

    PYTHONPATH=agent python3.12 tests/agent_checks.py checks
    PYTHONPATH=agent python3.12 tests/agent_checks.py serve

`checks` prints "READY <pid>", then one line per check, "PASS name",
"SKIP name: why" or "FAIL name: what", then "DONE passed=P failed=F
skipped=S", and exits 1 if any failed.  Each check asserts real behaviour:
the records are read back as a reader reads them (the region found in
/proc/self/maps, its header, the list it names, its items and their
weakrefs, through /proc/self/mem when /proc is there, as in the sid chroot
it is not, else through ctypes) and validated as the reader validates
them.  Checks that need a program of
their own (loading, exit, failures) run this interpreter in a subprocess,
with and without the agent, and compare.

`environ` prints PYTHONPATH and the agent's directory (agent_test.c tests
the launcher with it).  `serve` is for reading from outside (agent_test.c):
it prints "READY <pid>", "WEAKREF <address of the weakref type>", creates a
known task tree, prints "RECORD task task_ref creator creator_ref" for each
record a reader must find, forks a child that
creates one more task and prints "CHILD <pid>" and the child's record as
"CHILDRECORD ...", then "SERVING", and sleeps until killed.
"""

import asyncio
import gc
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref

HEADER = struct.Struct("<8sIIIIQQ")
VERSION = sys.version_info[:2]
# PyListObject and PyWeakReference on every default build of 3.9 to 3.15:
# PyObject_HEAD (refcount, type), then ob_size and ob_item, or wr_object.
OB_TYPE, LIST_SIZE, LIST_ITEM, WR_OBJECT = 8, 16, 24, 16

HOOK = sys.modules.get("asyncunwind_hook")
AGENT_DIR = os.path.dirname(os.path.abspath(HOOK.__file__)) if HOOK else None


class CheckFailed(Exception):
    pass


class Skip(Exception):
    pass


def expect(cond, what, *args):
    if not cond:
        raise CheckFailed(what % args if args else what)


def agent():
    import asyncunwind_agent
    return asyncunwind_agent


# --------------------------------------------------------------------------
# Reading the records as a reader does

def peek(addr, n):
    """n bytes of this process's memory at addr: through /proc/self/mem as
    a reader outside would, or ctypes where /proc is missing (the sid
    chroot)."""
    if os.path.exists("/proc/self/mem"):
        fd = os.open("/proc/self/mem", os.O_RDONLY)
        try:
            return os.pread(fd, n, addr)
        finally:
            os.close(fd)
    import ctypes
    return ctypes.string_at(addr, n)


def word(addr):
    return struct.unpack("<Q", peek(addr, 8))[0]


def region_address():
    """The address of this process's region: the mapping found in
    /proc/self/maps whose header pid is ours, else the agent's own."""
    if os.path.exists("/proc/self/maps"):
        spans = []
        with open("/proc/self/maps") as f:
            for line in f:
                if "/memfd:asyncunwind-agent" in line:
                    spans.append(int(line.split("-")[0], 16))
        for lo in spans:
            h = HEADER.unpack(peek(lo, HEADER.size))
            if h[0] == b"AUAGNT02" and h[3] == os.getpid():
                return lo
        raise CheckFailed("no region of pid %d in /proc/self/maps (%d "
                          "agent mappings)" % (os.getpid(), len(spans)))
    return state()["address"]


def header():
    keys = ("magic", "version", "header_size", "pid", "reserved",
            "generation", "list")
    return dict(zip(keys, HEADER.unpack(peek(region_address(), HEADER.size))))


def records():
    """(task, task_ref, creator, creator_ref) of every pair of the list the
    header names that a reader accepts: the list names itself first, both
    items are weakref objects, and (not checked here: the caller compares)
    their referents are the tasks."""
    for _ in range(100):
        h = header()
        lst = h["list"]
        size, items = struct.unpack("<QQ", peek(lst + LIST_SIZE, 16))
        expect(size < 1 << 24, "records list of %d items", size)
        items = struct.unpack("<%dQ" % size, peek(items, 8 * size))
        # Other threads may have compacted twice meanwhile, freeing the
        # list read: read again, as a reader's next sample would.
        if header()["generation"] == h["generation"]:
            break
    expect(items[:2] == (lst, lst), "the records list does not name itself")
    wref_type = id(weakref.ref)
    out = []
    for i in range(2, size - 1, 2):
        tr, cr = items[i], items[i + 1]
        if tr == cr:  # padding
            continue
        if word(tr + OB_TYPE) != wref_type or word(cr + OB_TYPE) != wref_type:
            continue
        out.append((word(tr + WR_OBJECT), tr, word(cr + WR_OBJECT), cr))
    return out


def valid_records_for(task, by_task=None):
    """The records a reader accepts for `task`: a weakref whose referent is
    the task.  `by_task` (from records_by_task()) saves reading them all
    again when many tasks are checked at once."""
    if by_task is not None:
        return by_task.get(id(task), [])
    return [r for r in records() if r[0] == id(task)]


def records_by_task():
    """records(), by task address."""
    out = {}
    for r in records():
        out.setdefault(r[0], []).append(r)
    return out


def creator_of(task):
    recs = valid_records_for(task)
    expect(len(set(r[2] for r in recs)) <= 1, "%d creators for one task",
           len(recs))
    return recs[0][2] if recs else None


def expect_created_by(task, creator, what, by_task=None):
    recs = valid_records_for(task, by_task)
    expect(len(recs) == 1, "%s: %d valid records for the task, want 1",
           what, len(recs))
    t, tr, c, cr = recs[0]
    expect(c == id(creator), "%s: creator 0x%x, want 0x%x", what, c,
           id(creator))


def expect_no_record(task, what):
    expect(not valid_records_for(task), "%s: recorded, want no record", what)


def state():
    return agent()._state()


# --------------------------------------------------------------------------
# Running this interpreter in a subprocess

def run_python(code, with_agent=True, extra_path=(), env=None, flags=()):
    """Runs `code` in a fresh interpreter; returns (rc, stdout, stderr)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    path = ([AGENT_DIR] if with_agent else []) + list(extra_path)
    if path:
        e["PYTHONPATH"] = os.pathsep.join(path)
    e.update(env or {})
    p = subprocess.run([sys.executable] + list(flags) + ["-c", code], env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


_scratch = []


def scratch_dir():
    """A fresh directory, removed when the checks end."""
    d = tempfile.mkdtemp(prefix="asyncunwind-agent-checks-")
    _scratch.append(d)
    return d


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------
# Loading

PROBE = """
import json, sys
print(json.dumps({
    "hook": "asyncunwind_hook" in sys.modules,
    "agent": "asyncunwind_agent" in sys.modules,
    "asyncio": [m for m in sys.modules if m.split(".")[0] in
                ("asyncio", "uvloop", "mmap")],
    "site": getattr(sys.modules.get("sitecustomize"), "__file__", None),
    "marker": getattr(sys.modules.get("sitecustomize"), "MARKER", None),
}))
"""


def check_loading_without_app_sitecustomize():
    rc, out, err = run_python(PROBE)
    expect(rc == 0 and not err, "probe failed: rc %d, stderr %r", rc, err)
    got = json.loads(out)
    rc, out0, _ = run_python(PROBE, with_agent=False)
    plain = json.loads(out0)
    expect(got["hook"], "the hook is not installed at start-up")
    expect(not got["agent"], "the recorder is loaded before asyncio is")
    expect(not got["asyncio"], "start-up imported %s", got["asyncio"])
    if plain["site"]:  # Debian's own sitecustomize: it still runs
        expect(got["site"] == plain["site"],
               "sitecustomize is %s, without the agent %s", got["site"],
               plain["site"])
    else:
        expect(os.path.dirname(got["site"]) == AGENT_DIR,
               "sitecustomize is %s", got["site"])


def check_loading_with_app_sitecustomize():
    d = scratch_dir()
    log = os.path.join(d, "runs.log")
    write(os.path.join(d, "sitecustomize.py"),
          "MARKER = 'app'\nwith open(%r, 'a') as f:\n    f.write('ran\\n')\n"
          % log)
    for with_agent in (True, False):
        if os.path.exists(log):
            os.unlink(log)
        rc, out, err = run_python(PROBE + "import sitecustomize\n"
                                  "print(sitecustomize.MARKER)\n",
                                  with_agent=with_agent, extra_path=[d])
        expect(rc == 0 and not err, "rc %d, stderr %r", rc, err)
        lines = out.splitlines()
        got = json.loads(lines[0])
        expect(lines[1] == "app" and got["marker"] == "app",
               "import sitecustomize gives %r", got["site"])
        with open(log) as f:
            runs = f.read().count("ran")
        expect(runs == 1, "the app's sitecustomize ran %d times", runs)
        expect(got["hook"] == with_agent, "hook installed: %s", got["hook"])
        expect(not got["asyncio"], "start-up imported %s", got["asyncio"])


def check_app_sitecustomize_that_raises():
    d = scratch_dir()
    write(os.path.join(d, "sitecustomize.py"),
          "raise RuntimeError('app site failed')\n")
    code = "print('after')\n"
    got = run_python(code, extra_path=[d])
    plain = run_python(code, with_agent=False, extra_path=[d])
    expect(got[0] == plain[0] == 0, "rc %d, without the agent %d", got[0],
           plain[0])
    expect(got[1] == plain[1] == "after\n", "stdout %r", got[1])
    for text in ("Error in sitecustomize", "app site failed"):
        expect(text in got[2] and text in plain[2], "stderr %r (without the "
               "agent %r)", got[2], plain[2])


def check_asyncio_imported_first():
    # A .pth file may import asyncio before sitecustomize runs: -S and an
    # explicit install play that order.
    code = ("import asyncio, asyncunwind_hook\n"
            "asyncunwind_hook.install()\n"
            "import asyncunwind_agent\n"
            "print(asyncunwind_agent._state()['patched'])\n")
    rc, out, err = run_python(code, flags=["-S"])
    expect(rc == 0 and not err, "rc %d, stderr %r", rc, err)
    expect(hooked() in out, "patched: %s", out.strip())


def hooked():
    """What the agent hooks in this version."""
    if VERSION >= (3, 14):
        return "asyncio.BaseEventLoop.create_task"
    if VERSION >= (3, 12):
        return "asyncio.tasks._scheduled_tasks.add"
    return "asyncio.tasks._all_tasks.add"


def check_patched_here():
    st = state()
    expect(st["patched"] == [hooked()], "patched: %s", st["patched"])
    expect(st["enabled"] and st["failure"] is None, "state %s", st)
    h = header()
    expect(h["magic"] == b"AUAGNT02" and h["version"] == 2 and
           h["header_size"] == 64 and h["reserved"] == 0, "header %s", h)
    expect(h["pid"] == os.getpid(), "pid %d", h["pid"])
    expect(h["list"] == st["list"] and h["generation"] == st["generation"],
           "header %s vs state %s", h, st)
    expect(peek(region_address() + 40, 24) == bytes(24),
           "reserved bytes are not zero")
    import asyncio.base_events as base_events
    wrapped = getattr(base_events.BaseEventLoop.create_task,
                      "__asyncunwind_agent__", False)
    expect(wrapped == (VERSION >= (3, 14)), "create_task wrapped: %s",
           wrapped)


# --------------------------------------------------------------------------
# What is recorded

async def _sleep_forever():
    await asyncio.sleep(3600)


async def _quick():
    await asyncio.sleep(0)


def check_creation_paths():
    async def main():
        me = asyncio.current_task()
        loop = asyncio.get_running_loop()
        made = {
            "asyncio.create_task": asyncio.create_task(_sleep_forever()),
            "loop.create_task": loop.create_task(_sleep_forever()),
            "ensure_future": asyncio.ensure_future(_sleep_forever()),
            "create_task name=": asyncio.create_task(_sleep_forever(),
                                                     name="named"),
        }
        gathered = asyncio.gather(_quick(), _quick())
        for child in gathered._children:
            made["gather's child"] = child
        for what, t in made.items():
            expect_created_by(t, me, what)
            expect(not t.done(), "%s: done", what)

        async def grandparent():
            inner = asyncio.create_task(_sleep_forever())
            expect_created_by(inner, asyncio.current_task(), "grandchild")
            inner.cancel()
            return inner
        t = asyncio.create_task(grandparent())
        inner = await t
        expect_created_by(t, me, "child")
        if VERSION >= (3, 11):
            async with asyncio.TaskGroup() as tg:
                t = tg.create_task(_quick())
                expect_created_by(t, me, "TaskGroup.create_task")
        await gathered
        for t in made.values():
            t.cancel()
        await asyncio.gather(*made.values(), inner, return_exceptions=True)
    asyncio.run(main())


def check_outside_any_task():
    loop = asyncio.new_event_loop()
    try:
        made = []
        t = loop.create_task(_quick())  # the loop is not running
        expect_no_record(t, "created before the loop runs")

        def callback():  # runs in the loop, outside any task
            made.append(loop.create_task(_quick()))
        loop.call_soon(callback)
        loop.run_until_complete(t)
        expect(made, "callback did not run")
        expect_no_record(made[0], "created from a callback")
        loop.run_until_complete(made[0])
    finally:
        loop.close()


def check_eager_tasks():
    if VERSION < (3, 12):
        raise Skip("eager tasks are 3.12+")

    async def finishes():
        return 1

    async def suspends():
        await asyncio.sleep(0)
        return 2

    async def creates():
        # Runs eagerly inside its creator's create_task call.
        inner = asyncio.create_task(suspends())
        await asyncio.sleep(0)
        return inner

    async def main():
        me = asyncio.current_task()
        done = asyncio.create_task(finishes())
        expect(done.done(), "the eager task did not finish eagerly")
        expect_no_record(done, "finished eagerly")
        pending = asyncio.create_task(suspends())
        expect_created_by(pending, me, "suspended eager task")
        outer = asyncio.create_task(creates())
        expect_created_by(outer, me, "eager creator")
        inner = await outer
        expect_created_by(inner, outer, "created during an eager step")
        await asyncio.gather(pending, inner)

    for factory in ("eager_task_factory", "custom"):
        loop = asyncio.new_event_loop()
        if factory == "custom":
            loop.set_task_factory(asyncio.create_eager_task_factory(
                asyncio.Task))
        else:
            loop.set_task_factory(asyncio.eager_task_factory)
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    if VERSION >= (3, 14):
        async def main_kwarg():
            me = asyncio.current_task()
            t = asyncio.create_task(finishes(), eager_start=True)
            expect(t.done(), "eager_start=True did not run eagerly")
            expect_no_record(t, "eager_start, finished")
            t = asyncio.create_task(suspends(), eager_start=True)
            expect_created_by(t, me, "eager_start, suspended")
            await t
        asyncio.run(main_kwarg())


def check_app_task_factory():
    calls = []

    def factory(loop, coro, **kwargs):
        calls.append(sorted(kwargs))
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def main():
        asyncio.get_running_loop().set_task_factory(factory)
        me = asyncio.current_task()
        t = asyncio.create_task(_quick(), name="via-factory")
        expect(calls, "the application's task factory was not called")
        expect(t.get_name() == "via-factory", "name %r", t.get_name())
        expect_created_by(t, me, "task from the application's factory")
        await t
    asyncio.run(main())


def check_direct_task():
    """asyncio.Task(...) built directly: recorded where the agent hooks the
    registration of every task (3.9-3.13), not where it wraps create_task
    (3.14+)."""
    async def main():
        me = asyncio.current_task()
        t = asyncio.Task(_sleep_forever())
        if VERSION < (3, 14):
            expect_created_by(t, me, "asyncio.Task(...)")
        else:
            expect_no_record(t, "asyncio.Task(...)")
        t.cancel()
        await asyncio.gather(t, return_exceptions=True)
    asyncio.run(main())


def check_uvloop():
    try:
        import uvloop
    except ImportError:
        raise Skip("no uvloop in this interpreter")
    expect("uvloop.Loop.create_task" in state()["patched"], "patched: %s",
           state()["patched"])

    async def main():
        expect(isinstance(asyncio.get_running_loop(), uvloop.Loop),
               "not a uvloop loop")
        me = asyncio.current_task()
        t = asyncio.create_task(_quick())
        u = asyncio.get_running_loop().create_task(_quick(), name="u")
        expect_created_by(t, me, "uvloop asyncio.create_task")
        expect_created_by(u, me, "uvloop loop.create_task")
        expect(u.get_name() == "u", "name %r", u.get_name())
        expect(t.get_coro().cr_code is _quick.__code__, "coroutine changed")
        await asyncio.gather(t, u)
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def check_anyio():
    """anyio's task groups (its asyncio backend) with the agent: each child
    is recorded with the task that started it, and anyio's cancel scopes,
    which find their host task through asyncio's current task (wrapping
    coroutines broke them in dd-trace-py #17035), behave as without it."""
    try:
        import anyio
    except ImportError:
        raise Skip("no anyio in this interpreter")
    events = []

    async def child(name, task_status=anyio.TASK_STATUS_IGNORED):
        task_status.started(asyncio.current_task())
        try:
            await anyio.sleep(3600)
        except BaseException:
            events.append("cancelled " + name)
            raise

    async def shielded():
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.05)
            events.append("shield held")

    async def main():
        me = asyncio.current_task()
        with anyio.move_on_after(0.02) as scope:
            await anyio.sleep(10)
        expect(scope.cancelled_caught, "move_on_after did not cancel")
        async with anyio.create_task_group() as tg:
            started = await tg.start(child, "started")
            tg.start_soon(child, "soon", name="anyio-soon")
            tg.start_soon(shielded)
            await anyio.sleep(0.01)
            by_task = records_by_task()
            soon = [t for t in asyncio.all_tasks() if t.get_name() == "anyio-soon"]
            expect(len(soon) == 1, "start_soon's task: %d found", len(soon))
            expect_created_by(started, me, "anyio tg.start", by_task)
            expect_created_by(soon[0], me, "anyio start_soon", by_task)
            tg.cancel_scope.cancel()
        expect(sorted(events) == ["cancelled soon", "cancelled started",
                                  "shield held"], "events %r", events)

    anyio.run(main)


# --------------------------------------------------------------------------
# What the agent must never do

def check_no_wrapping():
    async def main():
        coro = _quick()
        t = asyncio.create_task(coro)
        expect(t.get_coro() is coro, "task.get_coro() is not the coroutine")
        expect(type(t) is asyncio.Task, "task type %r", type(t))
        import asyncio.tasks as tasks
        if hasattr(tasks, "_CTask"):
            expect(type(t) is tasks._CTask, "not the C task type")
        await t
    asyncio.run(main())


def check_no_task_kept_alive():
    refs = []

    async def main():
        t = asyncio.create_task(_quick())
        refs.append(weakref.ref(t))
        expect(valid_records_for(t), "not recorded")
        await t
        del t
    asyncio.run(main())
    gc.collect()
    expect(refs[0]() is None, "a finished, dropped task is still alive")


def list_bound(pending):
    """The most entries the records list may hold when at most `pending`
    recorded tasks are pending at each compaction: the pairs kept (and the
    list's own first pair), twice, plus the agent's floor."""
    return 2 * (2 + 2 * pending) + agent().FLOOR


def check_bounded_after_churn():
    gc.collect()
    before = state()
    peak = 50

    async def main():
        for _ in range(100000 // peak):
            batch = [asyncio.create_task(_quick()) for _ in range(peak)]
            await asyncio.gather(*batch)
            del batch
    asyncio.run(main())
    gc.collect()
    after = state()
    # A batch's tasks are still referenced (by the loop's last callbacks)
    # while the next is created: two batches pending at most.
    bound = max(list_bound(2 * peak), before["entries"])
    expect(after["entries"] <= bound, "%d entries after 100k tasks, %d "
           "pending at most (bound %d)", after["entries"], peak, bound)
    previous = agent()._engine.ns["previous"]
    expect(len(previous) <= bound, "the previous list has %d entries",
           len(previous))
    expect(after["compactions"] >= before["compactions"] + 100,
           "%d compactions for 100k tasks", after["compactions"] -
           before["compactions"])
    expect(after["live"] == 0, "%d recorded tasks still pending",
           after["live"])
    expect(after["drops"] == before["drops"], "drops %d", after["drops"])


def outcome(fn):
    """('ok', result) or ('raise', type, str) of fn()."""
    try:
        return ("ok", fn())
    except BaseException as e:
        return ("raise", type(e), str(e))


def check_arguments_and_exceptions():
    """Every call gives what the original create_task gives."""
    import asyncio.base_events as base_events
    if VERSION >= (3, 14):
        wrapped = base_events.BaseEventLoop.create_task
        orig = wrapped.__wrapped__
        expect(getattr(wrapped, "__asyncunwind_agent__", False),
               "not patched")

        def hooked(on):
            pass
    else:
        # create_task is the original; what runs per task is the WeakSet's
        # add: compare with the class's own.
        wrapped = orig = base_events.BaseEventLoop.create_task
        ws = agent()._engine.weakset
        hook = ws.__dict__["add"]

        def hooked(on):
            if on:
                ws.add = hook
            else:
                del ws.add
    coros = []

    def coro():
        c = _quick()
        coros.append(c)
        return c

    def both(call, closed=False):
        """call(fn, loop) with the wrapper and with the original."""
        results = []
        for fn, on in ((wrapped, True), (orig, False)):
            loop = asyncio.new_event_loop()
            hooked(on)
            try:
                if closed:
                    loop.close()
                results.append(outcome(lambda: call(fn, loop)))
                if not closed:
                    pending = asyncio.all_tasks(loop)
                    if pending:
                        loop.run_until_complete(asyncio.gather(*pending))
            finally:
                hooked(True)
                loop.close()
        for c in coros:
            c.close()
        del coros[:]
        return results

    def with_context(f, loop):
        import contextvars
        ctx = contextvars.copy_context()
        t = f(loop, coro(), context=ctx)
        return t.get_context() is ctx if hasattr(t, "get_context") else True

    cases = {
        "bogus keyword": lambda f, loop: f(loop, coro(), bogus=1),
        "extra positional": lambda f, loop: f(loop, coro(), "x"),
        "no coroutine": lambda f, loop: f(loop),
        "no self": lambda f, loop: f(),
        "not a coroutine": lambda f, loop: f(loop, 42),
        "name=": lambda f, loop: f(loop, coro(), name="n").get_name(),
        "coro=, name=": lambda f, loop: f(loop, coro=coro(),
                                          name="k").get_name(),
    }
    if VERSION >= (3, 11):
        cases["context="] = with_context
    for what, call in cases.items():
        got, want = both(call)
        expect(got == want, "%s: %r, the original %r", what, got, want)

    # A closed loop, as at exit.
    got, want = both(lambda f, loop: f(loop, coro()), closed=True)
    expect(got == want and got[0] == "raise" and got[1] is RuntimeError,
           "closed loop: %r, the original %r", got, want)

    # No running loop: asyncio.create_task's own error.
    c = _quick()
    got = outcome(lambda: asyncio.create_task(c))
    c.close()
    expect(got[0] == "raise" and got[1] is RuntimeError and
           "no running event loop" in got[2], "no running loop: %r", got)

    # What an application's task factory receives.
    seen = {True: [], False: []}
    for fn, on in ((wrapped, True), (orig, False)):
        def factory(loop, coro, *args, **kwargs):
            seen[on].append((args, sorted(kwargs)))
            return asyncio.Task(coro, loop=loop)
        loop = asyncio.new_event_loop()
        loop.set_task_factory(factory)
        hooked(on)
        try:
            loop.run_until_complete(fn(loop, _quick(), name="f"))
            loop.run_until_complete(fn(loop, _quick()))
            if VERSION >= (3, 11):
                import contextvars
                loop.run_until_complete(
                    fn(loop, _quick(), context=contextvars.copy_context()))
        finally:
            hooked(True)
            loop.close()
    expect(seen[True] == seen[False],
           "the factory saw %r, with the original %r", seen[True],
           seen[False])
    if VERSION < (3, 14):
        check_weakset_add(ws, hooked)


def check_weakset_add(ws, hooked):
    """The hooked WeakSet.add does what the class's does: the same errors,
    objects that are not tasks kept (and not recorded), pending removals
    committed first."""
    class Thing(object):
        pass
    thing = Thing()

    def add(x):
        def f():
            ws.add(x)
            inside = x in ws
            ws.discard(x)
            return inside
        return f
    cases = {
        "not weak-referenceable": add(42),
        "not a task": add(thing),
        "no argument": lambda: ws.add(),
        "two arguments": lambda: ws.add(thing, thing),
    }
    for what, call in cases.items():
        got = outcome(call)
        hooked(False)
        try:
            want = outcome(call)
        finally:
            hooked(True)
        if what.endswith("argument") or what.endswith("arguments"):
            # Only the function's name in the message may differ.
            got, want = got[:2], want[:2]
        expect(got == want, "WeakSet.add, %s: %r, the original %r", what,
               got, want)
    # A removal left pending while the set was iterated is committed by
    # the next add, as WeakSet.add does.
    other = Thing()
    ws.add(other)
    dead = [r for r in ws.data if r() is other]
    del other
    gc.collect()
    ws._pending_removals.extend(dead)
    ws.data.update(dead)
    ws.add(thing)
    expect(not ws._pending_removals and not any(r in ws.data for r in dead),
           "pending removals left: %r", ws._pending_removals)
    ws.discard(thing)


def check_asyncio_run_many_times():
    gc.collect()
    before = state()

    async def main():
        ts = [asyncio.create_task(_quick()) for _ in range(10)]
        await asyncio.gather(*ts)
        return len(ts)
    for _ in range(50):
        expect(asyncio.run(main()) == 10, "asyncio.run failed")
    gc.collect()
    after = state()
    bound = max(before["entries"], list_bound(10))
    expect(after["entries"] <= bound, "%d entries (bound %d)",
           after["entries"], bound)


def check_debug_traceback():
    async def main():
        loop = asyncio.get_running_loop()
        t = loop.create_task(_quick())  # this line is the creation site
        tb = t._source_traceback
        expect(tb, "no source traceback in debug mode")
        expect(tb[-1].filename == __file__ and tb[-1].name == "main",
               "created at %s:%s in %s, want this file's main()",
               tb[-1].filename, tb[-1].lineno, tb[-1].name)
        await t
    asyncio.run(main(), debug=True)


def check_threads():
    errors = []

    def worker():
        async def main():
            me = asyncio.current_task()
            for i in range(200):
                ts = [asyncio.create_task(_quick()) for _ in range(5)]
                # Read back every 20th round: reading every pair through
                # /proc/self/mem each round made this check take a minute.
                by_task = records_by_task() if i % 20 == 0 else {}
                for t in ts:
                    if any(r[2] != id(me) for r in by_task.get(id(t), ())):
                        errors.append("wrong creator")
                await asyncio.gather(*ts)
        try:
            asyncio.run(main())
        except BaseException as e:
            errors.append(repr(e))
    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expect(not errors, "threads: %s", errors[:3])
    expect(state()["enabled"], "disabled: %s", state()["failure"])


def check_fork():
    if not hasattr(os, "fork"):
        raise Skip("no fork")
    loop = asyncio.new_event_loop()
    held = []

    async def parent():
        held.extend(asyncio.create_task(_sleep_forever()) for _ in range(3))
        await asyncio.sleep(0)
    loop.run_until_complete(parent())
    before = peek(region_address(), 64)
    parent_addr = state()["address"]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without cleanup
        try:
            os.close(r)
            problems = []
            st = state()
            if st["address"] == parent_addr:
                problems.append("the child writes the parent's region")
            h = header()
            if h["pid"] != os.getpid():
                problems.append("child header pid %d" % h["pid"])
            for t in held:
                if not valid_records_for(t):
                    problems.append("a parent's record was not copied")

            async def child():
                me = asyncio.current_task()
                t = asyncio.create_task(_quick())
                expect_created_by(t, me, "task created in the child")
                await t
            asyncio.run(child())
            if os.path.exists("/proc/self/maps"):
                with open("/proc/self/maps") as f:
                    n = f.read().count("/memfd:asyncunwind-agent")
                if n != 1:
                    problems.append("%d agent mappings in the child" % n)
            os.write(w, json.dumps(problems).encode())
        except BaseException:
            os.write(w, json.dumps([traceback.format_exc()]).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        problems = json.loads(f.read() or '["no report"]')
    os.waitpid(pid, 0)
    expect(not problems, "child: %s", problems)
    expect(peek(region_address(), 64) == before,
           "the child changed the parent's region")
    expect(state()["address"] == parent_addr, "the parent's region moved")
    for t in held:
        t.cancel()
    loop.run_until_complete(asyncio.gather(*held, return_exceptions=True))
    loop.close()


# --------------------------------------------------------------------------
# Limits and failures, in programs of their own

def check_compaction():
    """A full records list is replaced by one with the pairs whose tasks
    are pending, published in the header; the previous list stays as it
    was until the next compaction, and the one before is let go, its self
    reference cleared first."""
    ns = agent()._engine.ns

    async def main():
        me = asyncio.current_task()
        held = []

        def fill():
            """Creates pending tasks until the list is replaced; returns
            what the replaced list held just before."""
            gen = ns["generation"]
            while True:
                if len(ns["records"]) > ns["limit"]:
                    old, snap = ns["records"], ns["records"][:]
                held.append(asyncio.create_task(_sleep_forever()))
                if ns["generation"] != gen:
                    return old, snap
        first, first_items = fill()
        expect(ns["previous"] is first and first[:] == first_items,
               "the previous list changed")
        second = ns["records"]
        expect(header()["list"] == id(second) == state()["list"],
               "the header does not name the new list")
        by_task = records_by_task()
        for t in held:
            expect_created_by(t, me, "pending across a compaction", by_task)
        # Half of them finish: their pairs go at the next compaction.
        done = held[::2]
        del held[::2]
        for t in done:
            t.cancel()
        await asyncio.gather(*done, return_exceptions=True)
        del done
        gc.collect()
        _, second_items = fill()
        expect(first[0] is None and first[1] is None,
               "the list before the previous one still names itself")
        expect(ns["previous"] is second and second[:] == second_items,
               "the previous list changed")
        expect(state()["live"] == len(held), "%d live pairs, %d pending",
               state()["live"], len(held))
        by_task = records_by_task()
        for t in held:
            expect_created_by(t, me, "pending across two compactions",
                              by_task)
            t.cancel()
        await asyncio.gather(*held, return_exceptions=True)
    asyncio.run(main())


FAILING = """
import asyncio, asyncunwind_agent as a
def boom(*args): raise ValueError("internal")
a._engine.ns["new_list"] = boom
async def forever(): await asyncio.sleep(3600)
async def quick(): return 7
async def main():
    ts = [asyncio.create_task(forever()) for _ in range(a.FLOOR)]
    r = await asyncio.create_task(quick())
    for t in ts: t.cancel()
    await asyncio.gather(*ts, return_exceptions=True)
    return r, len(asyncio.all_tasks())
print(asyncio.run(main()), asyncio.run(main()))
st = a._state()
print(st["enabled"], st["failure"])
"""


def check_internal_failure_is_silent():
    rc, out, err = run_python(FAILING)
    expect(rc == 0 and err == "", "rc %d, stderr %r", rc, err)
    expect(out == "(7, 1) (7, 1)\nFalse compaction failed\n", "output %r",
           out)
    rc, out, err = run_python(FAILING,
                              env={"ASYNCUNWIND_AGENT_DEBUG": "1"})
    expect(rc == 0 and "asyncunwind agent: compaction failed" in err and
           "ValueError: internal" in err, "debug stderr %r", err)


EXIT = """
import asyncio, atexit, re, sys
async def forever(): await asyncio.sleep(3600)
async def spawn():
    asyncio.create_task(forever())
    asyncio.ensure_future(forever())
    await asyncio.sleep(0)
for _ in range(3):
    asyncio.run(spawn())
loop = asyncio.new_event_loop()
loop.run_until_complete(spawn())   # left pending: destroyed at exit
closed = asyncio.new_event_loop()
closed.close()
def at_exit():
    c = forever()
    try:
        closed.create_task(c)
    except RuntimeError as e:
        print("atexit:", e)
    c.close()
atexit.register(at_exit)
print("end")
"""


def check_exit_behaviour():
    """A program that leaves tasks pending, uses a closed loop at exit and
    runs asyncio.run several times prints the same with the agent."""
    import re

    def norm(text):
        # Addresses differ from run to run, and the order in which the
        # collector destroys pending tasks at exit may too (3.14+ collects
        # incrementally, paced by allocations, which the agent adds to).
        text = re.sub(r"0x[0-9a-f]+", "0x", text)
        return sorted(b.strip() for b in
                      re.split(r"\n(?=Task was destroyed)", text))
    got = run_python(EXIT)
    want = run_python(EXIT, with_agent=False)
    expect(got[0] == want[0], "rc %d, without the agent %d", got[0], want[0])
    expect(norm(got[1]) == norm(want[1]), "stdout %r, without %r", got[1],
           want[1])
    expect(norm(got[2]) == norm(want[2]), "stderr %r\nwithout the agent %r",
           got[2], want[2])
    expect("atexit: Event loop is closed" in got[1], "stdout %r", got[1])


CHECKS = [
    check_loading_without_app_sitecustomize,
    check_loading_with_app_sitecustomize,
    check_app_sitecustomize_that_raises,
    check_asyncio_imported_first,
    check_patched_here,
    check_creation_paths,
    check_outside_any_task,
    check_eager_tasks,
    check_app_task_factory,
    check_direct_task,
    check_uvloop,
    check_anyio,
    check_no_wrapping,
    check_no_task_kept_alive,
    check_bounded_after_churn,
    check_arguments_and_exceptions,
    check_asyncio_run_many_times,
    check_debug_traceback,
    check_threads,
    check_fork,
    check_compaction,
    check_internal_failure_is_silent,
    check_exit_behaviour,
]


def run_checks(names):
    passed = failed = skipped = 0
    for check in CHECKS:
        name = check.__name__[len("check_"):]
        if names and name not in names:
            continue
        try:
            check()
        except Skip as e:
            skipped += 1
            print("SKIP %s: %s" % (name, e), flush=True)
        except CheckFailed as e:
            failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
        except BaseException:
            failed += 1
            print("FAIL %s: %s" % (
                name, traceback.format_exc().replace("\n", " | ")),
                flush=True)
        else:
            passed += 1
            print("PASS %s" % name, flush=True)
    import shutil
    for d in _scratch:
        shutil.rmtree(d, ignore_errors=True)
    print("DONE passed=%d failed=%d skipped=%d" % (passed, failed, skipped),
          flush=True)
    return failed


# --------------------------------------------------------------------------
# serve: a known task tree for a reader outside

def serve():
    async def child_of_child():
        await asyncio.sleep(3600)

    async def child():
        gc_ = asyncio.create_task(child_of_child(), name="grandchild")
        print_record(gc_, asyncio.current_task())
        await asyncio.sleep(3600)

    def print_record(task, creator, tag="RECORD"):
        recs = valid_records_for(task)
        expect(len(recs) == 1, "no record for %r" % task)
        t, tr, c, cr = recs[0]
        expect(c == id(creator), "wrong creator")
        print("%s %x %x %x %x" % (tag, t, tr, c, cr), flush=True)

    async def main():
        print("WEAKREF %x" % id(weakref.ref), flush=True)
        me = asyncio.current_task()
        kids = [asyncio.create_task(child(), name="child%d" % i)
                for i in range(3)]
        for k in kids:
            print_record(k, me)
        await asyncio.sleep(0.05)  # the children create the grandchildren
        parent = os.getpid()
        # The child's lines come before the parent's SERVING: the parent
        # waits on this pipe, which the child writes to (or closes, by
        # exiting) once it printed, however slow the machine is.
        done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # a loop of its own (the child has no running loop)
            os.close(done_r)

            async def in_child():
                t = asyncio.create_task(child_of_child(), name="in-child")
                print_record(t, asyncio.current_task(), "CHILDRECORD")
                print("CHILDDONE", flush=True)
                os.write(done_w, b"x")
                while os.getppid() == parent:  # until the parent is killed
                    time.sleep(0.05)
            try:
                asyncio.run(in_child())
            except BaseException:
                print("CHILDERROR " + traceback.format_exc().replace(
                    "\n", " | "), flush=True)
            finally:
                os._exit(0)
        os.close(done_w)
        os.read(done_r, 1)  # blocks the loop briefly: every task is asleep
        os.close(done_r)
        print("CHILD %d" % pid, flush=True)
        print("SERVING", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())


def main():
    print("READY %d" % os.getpid(), flush=True)
    if AGENT_DIR is None:
        print("FAIL loading: the agent is not loaded (put agent/ first on "
              "PYTHONPATH)", flush=True)
        print("DONE passed=0 failed=1 skipped=0", flush=True)
        sys.exit(1)
    mode = sys.argv[1] if len(sys.argv) > 1 else "checks"
    if mode == "serve":
        serve()
    elif mode == "environ":  # for the launcher's own test
        print("PYTHONPATH=%s" % os.environ.get("PYTHONPATH"), flush=True)
        print("AGENT_DIR=%s" % AGENT_DIR, flush=True)
    else:
        sys.exit(1 if run_checks(set(sys.argv[2:])) else 0)


if __name__ == "__main__":
    main()
