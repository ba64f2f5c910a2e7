"""Checks of the asyncunwind agent (agent/), run inside the interpreter.

Run with the agent first on PYTHONPATH, by tests/agent_test.c under every
interpreter of tests/pythons.h, or by hand:

    PYTHONPATH=agent python3.12 tests/agent_checks.py checks
    PYTHONPATH=agent python3.12 tests/agent_checks.py serve

`checks` prints "READY <pid>", then one line per check, "PASS name",
"SKIP name: why" or "FAIL name: what", then "DONE passed=P failed=F
skipped=S", and exits 1 if any failed.  Each check asserts real behaviour:
the region's records are read back as a reader reads them (the mapping
found in /proc/self/maps and read through /proc/self/mem when /proc is
there, as in the sid chroot it is not, else the agent's own mapping) and
validated as the reader validates them.  Checks that need a program of
their own (loading, exit, failures) run this interpreter in a subprocess,
with and without the agent, and compare.

`environ` prints PYTHONPATH and the agent's directory (agent_test.c tests
the launcher with it).  `serve` is for reading from outside (agent_test.c): it prints "READY
<pid>", creates a known task tree, prints "RECORD task task_ref creator
creator_ref" for each record a reader must find, forks a child that
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

HEADER = struct.Struct("<8sIIIIIIQ")
RECORD = struct.Struct("<QQQQQ")
M64 = (1 << 64) - 1
VERSION = sys.version_info[:2]

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
# Reading the region as a reader does

def region_bytes():
    """The bytes of this process's region: [header, used slots]."""
    if os.path.exists("/proc/self/maps"):
        spans = []
        with open("/proc/self/maps") as f:
            for line in f:
                if "/memfd:asyncunwind-agent" in line:
                    lo, hi = line.split()[0].split("-")
                    spans.append((int(lo, 16), int(hi, 16)))
        fd = os.open("/proc/self/mem", os.O_RDONLY)
        try:
            for lo, hi in spans:
                head = os.pread(fd, 64, lo)
                magic, version, hs, rs, cap, used, pid, gen = \
                    HEADER.unpack_from(head)
                if magic == b"AUAGNT01" and pid == os.getpid():
                    return os.pread(fd, 64 + 40 * used, lo)
        finally:
            os.close(fd)
        raise CheckFailed("no region of pid %d in /proc/self/maps (%d "
                          "agent mappings)" % (os.getpid(), len(spans)))
    region = agent()._engine.ns["region"]
    used = struct.unpack_from("<I", region, 24)[0]
    return bytes(region[:64 + 40 * used])


def header():
    keys = ("magic", "version", "header_size", "record_size", "capacity",
            "used", "pid", "generation")
    return dict(zip(keys, HEADER.unpack_from(region_bytes())))


def records():
    """Records whose check matches: (slot, task, task_ref, creator,
    creator_ref)."""
    data = region_bytes()
    out = []
    for slot in range((len(data) - 64) // 40):
        t, tr, c, cr, check = RECORD.unpack_from(data, 64 + 40 * slot)
        if t and hash((t, tr, c, cr)) & M64 == check:
            out.append((slot, t, tr, c, cr))
    return out


def valid_records_for(task):
    """The records a reader would accept for `task`: task_ref is a live
    weakref to it (among the task's weakrefs)."""
    refs = {id(r) for r in weakref.getweakrefs(task)}
    return [r for r in records() if r[1] == id(task) and r[2] in refs]


def creator_of(task):
    recs = valid_records_for(task)
    expect(len(recs) <= 1, "%d valid records for one task", len(recs))
    return recs[0][3] if recs else None


def expect_created_by(task, creator, what):
    recs = valid_records_for(task)
    expect(len(recs) == 1, "%s: %d valid records for the task, want 1",
           what, len(recs))
    slot, t, tr, c, cr = recs[0]
    expect(c == id(creator), "%s: creator 0x%x, want 0x%x", what, c,
           id(creator))
    expect(cr in {id(r) for r in weakref.getweakrefs(creator)},
           "%s: creator_ref 0x%x is not a weakref to the creator", what, cr)


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
    expect("asyncio.BaseEventLoop" in out, "patched: %s", out.strip())


def check_patched_here():
    st = state()
    expect("asyncio.BaseEventLoop" in st["patched"], "patched: %s",
           st["patched"])
    expect(st["enabled"] and st["failure"] is None, "state %s", st)
    h = header()
    expect(h["magic"] == b"AUAGNT01" and h["version"] == 1 and
           h["header_size"] == 64 and h["record_size"] == 40,
           "header %s", h)
    expect(h["pid"] == os.getpid(), "pid %d", h["pid"])
    expect(h["capacity"] == st["capacity"] and h["used"] == st["used"],
           "header %s vs state %s", h, st)


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


def check_uvloop():
    try:
        import uvloop
    except ImportError:
        raise Skip("no uvloop in this interpreter")
    expect("uvloop.Loop" in state()["patched"], "patched: %s",
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
    # while the next is created: two batches of objects alive at most.
    expect(after["used"] <= max(before["used"], 2 * peak + 4),
           "used %d after 100k tasks, %d pending at most (was %d)",
           after["used"], peak, before["used"])
    expect(after["live"] == 0, "%d recorded tasks still pending",
           after["live"])
    expect(after["freed"] >= min(after["used"], peak),
           "freed %d of %d: dead tasks' slots not freed", after["freed"],
           after["used"])
    ns = agent()._engine.ns
    expect(len(ns["task_refs"]) == len(ns["creator_refs"]) ==
           len(ns["on_death"]) == after["used"], "bookkeeping grew")
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
    wrapped = base_events.BaseEventLoop.create_task
    orig = wrapped.__wrapped__
    expect(getattr(wrapped, "__asyncunwind_agent__", False), "not patched")
    coros = []

    def coro():
        c = _quick()
        coros.append(c)
        return c

    def both(call, closed=False):
        """call(fn, loop) with the wrapper and with the original."""
        results = []
        for fn in (wrapped, orig):
            loop = asyncio.new_event_loop()
            try:
                if closed:
                    loop.close()
                results.append(outcome(lambda: call(fn, loop)))
                if not closed:
                    pending = asyncio.all_tasks(loop)
                    if pending:
                        loop.run_until_complete(asyncio.gather(*pending))
            finally:
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
    seen = {wrapped: [], orig: []}
    for fn in (wrapped, orig):
        def factory(loop, coro, *args, **kwargs):
            seen[fn].append((args, sorted(kwargs)))
            return asyncio.Task(coro, loop=loop)
        loop = asyncio.new_event_loop()
        loop.set_task_factory(factory)
        try:
            loop.run_until_complete(fn(loop, _quick(), name="f"))
            loop.run_until_complete(fn(loop, _quick()))
            if VERSION >= (3, 11):
                import contextvars
                loop.run_until_complete(
                    fn(loop, _quick(), context=contextvars.copy_context()))
        finally:
            loop.close()
    expect(seen[wrapped] == seen[orig],
           "the factory saw %r, with the original %r", seen[wrapped],
           seen[orig])


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
    expect(after["used"] <= max(before["used"], 12), "used %d (was %d)",
           after["used"], before["used"])


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
            for _ in range(200):
                ts = [asyncio.create_task(_quick()) for _ in range(5)]
                for t in ts:
                    if creator_of(t) not in (id(me), None):
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
    before = region_bytes()
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
    expect(region_bytes() == before, "the child changed the parent's region")
    expect(state()["address"] == parent_addr, "the parent's region moved")
    for t in held:
        t.cancel()
    loop.run_until_complete(asyncio.gather(*held, return_exceptions=True))
    loop.close()


# --------------------------------------------------------------------------
# Limits and failures, in programs of their own

FULL = """
import asyncio, gc, asyncunwind_agent as a
async def forever(): await asyncio.sleep(3600)
async def quick(): await asyncio.sleep(0)
async def main():
    ts = [asyncio.create_task(forever()) for _ in range(20)]
    await asyncio.sleep(0)
    st = a._state()
    print(st["used"], st["drops"], st["live"])
    for t in ts: t.cancel()
    await asyncio.gather(*ts, return_exceptions=True)
    del ts
    gc.collect()
    # finished but still referenced: freed when the region is full
    keep = [asyncio.create_task(quick()) for _ in range(8)]
    await asyncio.gather(*keep)
    more = [asyncio.create_task(forever()) for _ in range(4)]
    st = a._state()
    print(st["used"], st["drops"], st["live"])
    for t in more: t.cancel()
    await asyncio.gather(*more, return_exceptions=True)
asyncio.run(main())
print("ok")
"""


def check_full_region():
    rc, out, err = run_python(FULL, env={"ASYNCUNWIND_AGENT_CAPACITY": "8"})
    expect(rc == 0 and not err, "rc %d, stderr %r", rc, err)
    lines = out.split("\n")
    used, drops, live = map(int, lines[0].split())
    expect(used == 8 and drops == 12 and live == 8,
           "20 pending tasks, 8 slots: used %d drops %d live %d", used, drops,
           live)
    used, drops2, live = map(int, lines[1].split())
    expect(used == 8 and drops2 == drops and live == 4,
           "finished tasks' slots not reused: used %d drops %d live %d",
           used, drops2, live)
    expect(lines[2] == "ok", "output %r", out)


FAILING = """
import asyncio, asyncunwind_agent as a
def boom(*args): raise ValueError("internal")
a._engine.ns["pack_record"] = boom
async def quick(): return 7
async def main():
    t = asyncio.create_task(quick())
    return await t
print(asyncio.run(main()), asyncio.run(main()))
st = a._state()
print(st["enabled"], st["failure"])
"""


def check_internal_failure_is_silent():
    rc, out, err = run_python(FAILING)
    expect(rc == 0 and err == "", "rc %d, stderr %r", rc, err)
    expect(out == "7 7\nFalse recording failed\n", "output %r", out)
    rc, out, err = run_python(FAILING,
                              env={"ASYNCUNWIND_AGENT_DEBUG": "1"})
    expect(rc == 0 and "asyncunwind agent: recording failed" in err and
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
    check_uvloop,
    check_no_wrapping,
    check_no_task_kept_alive,
    check_bounded_after_churn,
    check_arguments_and_exceptions,
    check_asyncio_run_many_times,
    check_debug_traceback,
    check_threads,
    check_fork,
    check_full_region,
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
        slot, t, tr, c, cr = recs[0]
        expect(c == id(creator), "wrong creator")
        print("%s %x %x %x %x" % (tag, t, tr, c, cr), flush=True)

    async def main():
        me = asyncio.current_task()
        kids = [asyncio.create_task(child(), name="child%d" % i)
                for i in range(3)]
        for k in kids:
            print_record(k, me)
        await asyncio.sleep(0.05)  # the children create the grandchildren
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # a loop of its own (the child has no running loop)
            async def in_child():
                t = asyncio.create_task(child_of_child(), name="in-child")
                print_record(t, asyncio.current_task(), "CHILDRECORD")
                print("CHILDDONE", flush=True)
                while os.getppid() == parent:  # until the parent is killed
                    time.sleep(0.05)
            try:
                asyncio.run(in_child())
            except BaseException:
                print("CHILDERROR " + traceback.format_exc().replace(
                    "\n", " | "), flush=True)
            finally:
                os._exit(0)
        await asyncio.sleep(0.2)  # let the child print first
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
