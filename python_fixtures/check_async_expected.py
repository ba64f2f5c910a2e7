#!/usr/bin/env python3
"""Check the task-aware expectations (python_fixtures/expected/*.txt with
"stack" blocks) against the fixtures themselves, from inside.

For every interpreter of check_expected.py's list (pyenv 3.9-3.13, Debian's
static 3.11, sid 3.13-3.15) and every async fixture, runs the fixture under a
wrapper that records each task's creator (as the in-target agent does: a
wrapper around the loops' create_task) and installs a SIGUSR1 handler.  After
READY it sends SIGUSR1; the handler builds the task-aware stacks in-process
from Python-level truth (asyncio.all_tasks, Task._fut_waiter, the futures that
gather, TaskGroup, wait, as_completed, shield and wait_for wake through done
callbacks, cr_await / gi_yieldfrom / ag_await, sys._current_frames) with
docs/RESOLVER.md's rules, and this script matches them against
expected/<fixture>.txt (with weak links) and expected/<fixture>.noagent.txt
(without; the .txt when there is no .noagent.txt), with the rules of
tests/expect.c.  It is the independent oracle for the files that the C tests
compare the real reader's output with.

    python3 python_fixtures/check_async_expected.py            # check all
    python3 python_fixtures/check_async_expected.py seed ties  # some
    python3 python_fixtures/check_async_expected.py --no-agent # .noagent only
    python3 python_fixtures/check_async_expected.py --self-test  # the matcher
    python3 python_fixtures/check_async_expected.py --print seed.py \\
        [--python /root/.pyenv/versions/3.12.1/bin/python3.12 | --interp sid-3.14] \\
        [--no-agent] [--raw] [-- ARGS...]     # draft a file (--raw: as dumped)

Needs root for the chroot interpreters (missing ones are skipped, except
under CI=true, where a skip fails).  Exit status 0 iff every check that ran
passed.
"""
import glob
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED_DIR = os.path.join(HERE, "expected")
sys.path.insert(0, HERE)
import check_expected  # noqa: E402  (the interpreter list and the runner, shared)

# Extra runs with arguments, besides the default one: the expectation file
# holds for these too.
EXTRA_ARGS = {"many_tasks.py": [["10000"]]}

# ---------------------------------------------------------------------------
# The in-process part.  Runs under every interpreter (3.9 syntax), as
# `python -c WRAPPER FIXTURE [ARGS]`.
# ---------------------------------------------------------------------------
WRAPPER = r'''
import asyncio, functools, gc, inspect, json, os, runpy, signal, sys, threading
import traceback, weakref

PATH = sys.argv[1]
QUALNAME_FROM_CODE = sys.version_info >= (3, 11)
GEN_FLAGS = 0x20 | 0x80 | 0x100 | 0x200  # generator, coroutine, iterable coro, async gen
MAX_DEPTH = 1024  # au_resolver's default max_depth

# --- the agent's part: who created each task --------------------------------
CREATORS = weakref.WeakKeyDictionary()  # task -> weakref to its creator task


def wrap_create_task(orig):
    if getattr(orig, "_au_records_creator", False):
        return orig

    def create_task(self, coro, *args, **kwargs):
        try:
            creator = asyncio.current_task(self)
        except RuntimeError:
            creator = None
        task = orig(self, coro, *args, **kwargs)
        if creator is not None and creator is not task:
            CREATORS[task] = weakref.ref(creator)
        return task

    create_task._au_records_creator = True
    return create_task


asyncio.BaseEventLoop.create_task = wrap_create_task(asyncio.BaseEventLoop.create_task)


def _init_subclass(cls, **kwargs):
    # Loops defined later (uvloop.Loop) get the same wrapper.
    super(asyncio.AbstractEventLoop, cls).__init_subclass__(**kwargs)
    orig = getattr(cls, "create_task", None)
    if orig is not None and not getattr(orig, "_au_records_creator", False):
        cls.create_task = wrap_create_task(orig)


asyncio.AbstractEventLoop.__init_subclass__ = classmethod(_init_subclass)


# --- frames ---------------------------------------------------------------
def owner_of(frame):
    for o in gc.get_referrers(frame):
        for attr in ("cr_frame", "gi_frame", "ag_frame"):
            if getattr(o, attr, None) is frame:
                return o
    return None


_qualname_cache = {}


def thread_frame_qualname(f):
    """What the reader shows for a frame of a thread's stack."""
    code = f.f_code
    if QUALNAME_FROM_CODE:
        return code.co_qualname
    if not code.co_flags & GEN_FLAGS:
        return code.co_name  # 3.9/3.10: a plain function has its bare name
    key = id(f)
    if key not in _qualname_cache:
        o = owner_of(f)
        _qualname_cache[key] = o.__qualname__ if o is not None else code.co_name
    return _qualname_cache[key]


def render(f, qualname):
    return "%s %s:%d" % (qualname, f.f_code.co_filename, f.f_lineno)


def coro_frames(obj):
    """[(frame, qualname)] of a task's coroutine chain, outermost first."""
    out = []
    seen = set()
    while obj is not None and id(obj) not in seen:
        seen.add(id(obj))
        if type(obj).__name__ in ("async_generator_asend", "async_generator_athrow"):
            gens = [r for r in gc.get_referents(obj) if hasattr(r, "ag_frame")]
            obj = gens[0] if gens else None
            continue
        for fattr, nattr in (("cr_frame", "cr_await"), ("gi_frame", "gi_yieldfrom"),
                             ("ag_frame", "ag_await")):
            if hasattr(obj, fattr):
                f = getattr(obj, fattr)
                if f is None:
                    return out
                q = f.f_code.co_qualname if QUALNAME_FROM_CODE else obj.__qualname__
                out.append((f, q))
                obj = getattr(obj, nattr)
                break
        else:
            return out
    return out


def not_started(coro):
    f = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
    if f is None:
        return False
    if sys.version_info >= (3, 11):
        state = inspect.getcoroutinestate(coro) if hasattr(coro, "cr_frame") \
            else inspect.getgeneratorstate(coro)
        return state.endswith("CREATED")
    return f.f_lasti == -1


# --- links ----------------------------------------------------------------
def callbacks(fut):
    try:
        cbs = fut._callbacks or []
    except AttributeError:
        return []
    return [cb[0] if isinstance(cb, tuple) else cb for cb in cbs]


def callback_refs(cb):
    """Objects a done callback will reach: a TaskGroup (via a bound method),
    futures and queues in its closure, its bound object or partial args."""
    if isinstance(cb, functools.partial):
        return list(cb.args) + list((cb.keywords or {}).values())
    owner = getattr(cb, "__self__", None)
    if owner is not None and not isinstance(owner, type):
        if isinstance(owner, asyncio.Future):
            return []  # a task's wakeup: an await link, not a strong one
        if hasattr(owner, "_parent_task") and hasattr(owner, "_tasks"):
            return [owner]  # TaskGroup
        return list(getattr(owner, "__dict__", {}).values())
    cells = getattr(cb, "__closure__", None) or ()
    out = []
    for c in cells:
        try:
            out.append(c.cell_contents)
        except ValueError:
            pass
    return out


def anyio_group(obj):
    return (sys.version_info >= (3, 11) and type(obj).__name__ == "TaskGroup" and
            type(obj).__module__.startswith("anyio.") and hasattr(obj, "cancel_scope"))


def holders(task, waiters):
    """Tasks that hold `task` through gather, a TaskGroup (asyncio's or
    anyio's), wait, as_completed, shield or wait_for: the tasks waiting on a future that the task's
    completion resolves (following non-task futures: nested gathers)."""
    found = []
    seen = set([id(task)])

    def visit(fut):
        for cb in callbacks(fut):
            for ref in callback_refs(cb):
                if hasattr(ref, "_parent_task") and hasattr(ref, "_tasks"):
                    if ref._parent_task is not None:
                        found.append(ref._parent_task)
                elif anyio_group(ref):
                    # anyio's TaskGroup: its cancel scope's host task (the
                    # reader knows a class named TaskGroup from 3.11 on).
                    host = getattr(ref.cancel_scope, "_host_task", None)
                    if host is not None:
                        found.append(host)
                elif isinstance(ref, asyncio.Queue):
                    for g in list(getattr(ref, "_getters", ())):
                        consider(g)
                elif isinstance(ref, asyncio.Future) and not isinstance(ref, asyncio.Task):
                    consider(ref)

    def consider(fut):
        if id(fut) in seen:
            return
        seen.add(id(fut))
        found.extend(waiters.get(id(fut), ()))
        visit(fut)

    visit(task)
    return found


# --- docs/RESOLVER.md, naively --------------------------------------------
def resolve(frames, tasks, awaits, creators, links, running):
    """frames: [frame] outermost first.  tasks: {id: task}.  awaits,
    creators: {id: id}.  links: [(child, parent)].  running: set of ids.
    Returns [(leaf id or None, [entry])] sorted by leaf id."""
    frame_ids = [id(f) for f in frames]
    if not tasks:
        return [(None, [render(f, thread_frame_qualname(f)) for f in frames])] if frames else []

    def valid(a, b):
        return a in tasks and b in tasks and a != b

    aw = dict((t, a) for t, a in awaits.items() if valid(t, a))
    cr = dict((t, c) for t, c in creators.items() if valid(t, c))
    strong = [(c, p) for c, p in links if valid(c, p)]

    # The running task: by frame identity.
    best = None
    for t in running:
        fs = coro_frames(tasks[t].get_coro())
        if fs and id(fs[0][0]) in frame_ids:
            b = frame_ids.index(id(fs[0][0]))
            if best is None or (b, t) < best:
                best = (b, t)
    r_id, boundary = (best[1], best[0]) if best else (None, len(frames))

    def pick(t, cands):
        if not cands:
            return None
        if cr.get(t) in cands:
            return cr[t]
        return min(cands)

    awaited_by, held_by = {}, {}
    for t, a in aw.items():
        awaited_by.setdefault(a, []).append(t)
    for c, p in strong:
        held_by.setdefault(c, []).append(p)
    parent = {}
    for t in tasks:
        p = pick(t, awaited_by.get(t)) or pick(t, held_by.get(t)) or cr.get(t)
        parent[t] = p
    waiting = set(aw) | set(p for _, p in strong)
    waiting.discard(r_id)
    parents = set(p for p in parent.values() if p is not None)
    bearing = set(t for t in tasks if t not in waiting)
    bearing |= set(t for t in waiting if t not in parents)
    # Closed cycles that no stack shows: the lowest id gets one.
    hangs = set()
    for t, p in parent.items():
        if p is not None:
            hangs.add((p, t))
    seen_cycles = set()
    for start in tasks:
        path, t = [], start
        while t is not None and t not in path:
            path.append(t)
            t = parent[t]
        if t is None:
            continue
        cyc = path[path.index(t):]
        if min(cyc) in seen_cycles:
            continue
        seen_cycles.add(min(cyc))
        members = set(cyc)
        below = any(p in members and c not in members for p, c in hangs)
        if not below and not members & bearing:
            bearing.add(min(cyc))

    def frames_of(t, own):
        if own and t == r_id:
            return [render(f, thread_frame_qualname(f)) for f in frames[boundary:]]
        return [render(f, q) for f, q in coro_frames(tasks[t].get_coro())]

    head = [render(f, thread_frame_qualname(f)) for f in frames[:boundary]]
    out = []
    for s in sorted(bearing):
        chain, mark = [s], []
        while True:
            p = parent[chain[-1]]
            if p is None:
                break
            if p in chain:
                mark = ["(cycle -> %s)" % tasks[p].get_name()]
                break
            if len(chain) == MAX_DEPTH:
                mark = ["(truncated)"]
                break
            chain.append(p)
        entries = head + mark
        for t in reversed(chain):
            entries.append("[%s]" % tasks[t].get_name())
            entries.extend(frames_of(t, t == s))
        out.append((s, entries))
    return out


# --- one sample -----------------------------------------------------------
def thread_stacks(handler_frame):
    me = threading.get_ident()
    names = dict((t.ident, t.name) for t in threading.enumerate())
    res = []
    for ident, f in sorted(sys._current_frames().items()):
        if ident == me:
            f = handler_frame
        stack = []
        while f is not None:
            stack.append(f)
            f = f.f_back
        stack.reverse()
        for i, f in enumerate(stack):
            if f.f_code.co_filename == PATH and f.f_code.co_name == "<module>":
                stack = stack[i:]
                break
        res.append((ident, names.get(ident, "?"), stack))
    return res


def sample(handler_frame):
    errors = []
    threads = thread_stacks(handler_frame)
    main_ident = threading.main_thread().ident
    loops = {}
    for o in gc.get_objects():
        if isinstance(o, asyncio.AbstractEventLoop) and o.is_running():
            ident = getattr(o, "_thread_id", None) or main_ident
            loops.setdefault(ident, []).append(o)
    result = {"agent": [], "noagent": [], "errors": errors}
    for ident, tname, frames in threads:
        tasks, running = {}, set()
        for loop in loops.get(ident, []):
            for t in asyncio.all_tasks(loop):
                tasks[id(t)] = t
            cur = asyncio.current_task(loop)
            if cur is not None:
                running.add(id(cur))
        for t in tasks.values():
            if not_started(t.get_coro()):
                errors.append("task %s has not started: READY came too early" % t.get_name())
        waiters = {}
        for t in tasks.values():
            w = t._fut_waiter
            if w is not None:
                waiters.setdefault(id(w), []).append(t)
        awaits, creators, links = {}, {}, []
        for t in tasks.values():
            w = t._fut_waiter
            if isinstance(w, asyncio.Task):
                awaits[id(t)] = id(w)
            ref = CREATORS.get(t)
            c = ref() if ref is not None else None
            if c is not None:
                creators[id(t)] = id(c)
            for p in holders(t, waiters):
                links.append((id(t), id(p)))
            # 3.14+: tasks a library declared as awaiting this one
            # (asyncio.future_add_to_awaited_by; anyio's task groups do).
            for p in getattr(t, "_asyncio_awaited_by", None) or ():
                if isinstance(p, asyncio.Task):
                    links.append((id(t), id(p)))
        for mode, crs in (("agent", creators), ("noagent", {})):
            for leaf, entries in resolve(frames, tasks, awaits, crs, links, running):
                result[mode].append({
                    "thread": tname,
                    "leaf": tasks[leaf].get_name() if leaf is not None else None,
                    "entries": entries,
                })
    return result


def on_sigusr1(signum, frame):
    try:
        out = sample(frame)
    except Exception:
        out = {"agent": [], "noagent": [], "errors": [traceback.format_exc()]}
    sys.stdout.write(json.dumps(out) + "\nEND-DUMP\n")
    sys.stdout.flush()


signal.signal(signal.SIGUSR1, on_sigusr1)
sys.argv = sys.argv[1:]
runpy.run_path(PATH, run_name="__main__")
'''


# ---------------------------------------------------------------------------
# Expectation files: the format of python_fixtures/README.md, the rules of
# tests/expect.c.
# ---------------------------------------------------------------------------
class Block(object):
    def __init__(self, kind, name, lineno):
        self.kind = kind        # "thread" or "stack"
        self.name = name        # thread name or leaf pattern
        self.on = None          # stack blocks: thread pattern or None
        self.items = []         # (item, lineno); item: see parse_item
        self.lineno = lineno

    def wildcard(self):
        return "*" in self.name

    def header(self):
        return "%s %s" % (self.kind, self.name)


class Expected(object):
    def __init__(self):
        self.requires_version = None   # (3, 11) or None
        self.requires_modules = []     # "uvloop", "anyio"
        self.blocks = []


FRAME_RE = re.compile(r"^([^ ]+) (.+):(\d{1,9}|\*)( x(\d{1,9}))?$")


def parse_item(line):
    """("any",) | ("frame", qualname, file, line or None, repeat) |
    ("task", pattern) | ("cycle", pattern) | ("truncated",) or None."""
    if line == "...":
        return ("any",)
    if line == "(truncated)":
        return ("truncated",)
    if line.startswith("(cycle -> ") and line.endswith(")") and len(line) > 11:
        return ("cycle", line[10:-1])
    if line.startswith("[") and line.endswith("]") and len(line) > 2:
        return ("task", line[1:-1])
    m = FRAME_RE.match(line)
    if not m:
        return None
    repeat = int(m.group(5)) if m.group(5) else 1
    if repeat < 1 or repeat > 1000000:
        return None
    return ("frame", m.group(1), m.group(2),
            None if m.group(3) == "*" else int(m.group(3)), repeat)


def keyword(line, kw):
    """What follows keyword kw (the first word of line), or None."""
    if line == kw:
        return ""
    if line.startswith(kw + " "):
        return line[len(kw) + 1:]
    return None


def parse_expected(text, where="<text>"):
    ex = Expected()
    block = None
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(" \t\r")
        if line.startswith("#"):
            continue
        if not line:
            block = None
            continue

        def bad(why):
            raise ValueError("%s:%d: %s: %s" % (where, lineno, why, line))

        rest = keyword(line, "requires")
        if rest is not None:
            if ex.blocks:
                bad("directive after a block")
            if rest in ("uvloop", "anyio"):
                ex.requires_modules.append(rest)
            elif re.match(r"^3\.\d{1,9}$", rest):
                ex.requires_version = (3, int(rest[2:]))
            else:
                bad("bad directive")
            continue
        kind = "thread" if keyword(line, "thread") is not None else (
            "stack" if keyword(line, "stack") is not None else None)
        if kind:
            rest = keyword(line, kind)
            if not rest:
                bad("bad block header")
            block = Block(kind, rest, lineno)
            ex.blocks.append(block)
            continue
        if block is None:
            bad("entry outside a block")
        rest = keyword(line, "on")
        if rest is not None:
            if block.kind != "stack" or block.on is not None or block.items or not rest:
                bad("'on THREAD' only right after 'stack LEAF'")
            block.on = rest
            continue
        item = parse_item(line)
        if item is None:
            bad("bad entry")
        if block.kind == "thread" and item[0] not in ("frame", "any"):
            bad("a thread block holds frames and '...' only")
        block.items.append((item, lineno))
    for b in ex.blocks:
        if b.kind == "stack" and not any(i[0][0] == "task" for i in b.items):
            raise ValueError("%s:%d: stack %s has no task marker" % (where, b.lineno, b.name))
    return ex


def glob_match(pattern, text):
    """'*' matches any run of characters; everything else is literal."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == text
    if not text.startswith(parts[0]) or len(text) < len(parts[0]) + len(parts[-1]):
        return False
    if not text.endswith(parts[-1]):
        return False
    pos, end = len(parts[0]), len(text) - len(parts[-1])
    for p in parts[1:-1]:
        k = text.find(p, pos, end)
        if k < 0:
            return False
        pos = k + len(p)
    return True


def parse_entry(e):
    if e == "(truncated)":
        return ("truncated",)
    if e.startswith("(cycle -> ") and e.endswith(")"):
        return ("cycle", e[10:-1])
    if e.startswith("[") and e.endswith("]"):
        return ("task", e[1:-1])
    q, _, rest = e.partition(" ")
    path, _, ln = rest.rpartition(":")
    return ("frame", q, os.path.basename(path), ln)


def item_matches(item, entry):
    if item[0] == "frame":
        return (entry[0] == "frame" and entry[1] == item[1] and entry[2] == item[2]
                and (item[3] is None or entry[3] == str(item[3])))
    if item[0] in ("task", "cycle"):
        return entry[0] == item[0] and glob_match(item[1], entry[1])
    return entry[0] == item[0]  # truncated


def match_progress(items, entries):
    """(matched, best_i, best_j): whether items match all of entries, and
    the furthest entry i reached with items[:j] matched (for the diff).
    '...' stands for any run of frames (never a marker)."""
    n = len(entries)
    reach = [False] * (n + 1)
    reach[0] = True
    best = (0, 0)
    for j, (item, _) in enumerate(items):
        for i in range(n, -1, -1):
            if reach[i] and (i, j) > best:
                best = (i, j)
                break
        nxt = [False] * (n + 1)
        if item[0] == "any":
            on = False
            for i in range(n + 1):
                on = reach[i] or (on and entries[i - 1][0] == "frame")
                nxt[i] = on
        else:
            r = item[4] if item[0] == "frame" else 1
            for i in range(n - r + 1):
                if reach[i] and all(item_matches(item, entries[i + k]) for k in range(r)):
                    nxt[i + r] = True
        reach = nxt
    for i in range(n, -1, -1):
        if reach[i] and (i, len(items)) > best:
            best = (i, len(items))
            break
    return reach[n], best[0], best[1]


def header_matches(block, stack):
    if block.kind == "thread":
        return stack["leaf"] is None and glob_match(block.name, stack["thread"])
    return (stack["leaf"] is not None and glob_match(block.name, stack["leaf"])
            and (block.on is None or glob_match(block.on, stack["thread"])))


def block_matches(block, stack, parsed):
    return header_matches(block, stack) and match_progress(block.items, parsed)[0]


def format_item(item):
    k = item[0]
    if k == "any":
        return "..."
    if k == "task":
        return "[%s]" % item[1]
    if k == "cycle":
        return "(cycle -> %s)" % item[1]
    if k == "truncated":
        return "(truncated)"
    s = "%s %s:%s" % (item[1], item[2], "*" if item[3] is None else item[3])
    return s + (" x%d" % item[4] if item[4] > 1 else "")


def describe(stack):
    thread = stack["thread"] or "(unknown thread)"
    if stack["leaf"] is None:
        return "thread %s (no tasks)" % thread
    return "stack %s on %s" % (stack["leaf"], thread)


def diff(block, stack, parsed):
    ok, i, j = match_progress(block.items, parsed)
    lines = ["  expected (%s, line %d):" % (block.header(), block.lineno)]
    for k, (item, lineno) in enumerate(block.items):
        lines.append("    %s %4d  %s" % (">" if k == j else " ", lineno, format_item(item)))
    if j == len(block.items):
        lines.append("    > (end)")
    lines.append("  actual (%s):" % describe(stack))
    for k, e in enumerate(stack["entries"]):
        lines.append("    %s %4d  %s" % (">" if k == i else " ", k, e))
    if i == len(stack["entries"]):
        lines.append("    > (end)")
    return "\n".join(lines)


def nearest(cands, score):
    best = None
    for c in cands:
        s = score(c)
        if best is None or s > best[0]:
            best = (s, c)
    return best[1] if best else None


LIST_HITS = 4  # matches named in a "matches K stacks" message


def check_stacks(ex, stacks):
    """Every block without '*' matches exactly one stack, a block with '*'
    any number, every stack is matched by some block.  Returns errors (the
    messages of tests/expect.c)."""
    errors = []
    parsed = [[parse_entry(e) for e in s["entries"]] for s in stacks]
    used = [False] * len(stacks)
    for b in ex.blocks:
        hits = [k for k, s in enumerate(stacks) if block_matches(b, s, parsed[k])]
        for k in hits:
            used[k] = True
        if b.wildcard() or len(hits) == 1:
            continue
        if hits:
            msg = "%s (line %d) matches %d stacks: %s" % (
                b.header(), b.lineno, len(hits),
                "; ".join(describe(stacks[k]) for k in hits[:LIST_HITS]))
            if len(hits) > LIST_HITS:
                msg += "; and %d more" % (len(hits) - LIST_HITS)
            errors.append(msg)
            continue
        same = [k for k, s in enumerate(stacks) if header_matches(b, s)]
        k = nearest(same or range(len(stacks)), lambda k: match_progress(b.items, parsed[k])[1:])
        msg = "%s (line %d) matches no stack" % (b.header(), b.lineno)
        if k is not None:
            msg += ("; nearest:\n" if same else "; nearest of all stacks:\n")
            msg += diff(b, stacks[k], parsed[k])
        errors.append(msg)
    for k, s in enumerate(stacks):
        if used[k]:
            continue
        same = [b for b in ex.blocks if header_matches(b, s)]
        b = nearest(same or ex.blocks, lambda b: match_progress(b.items, parsed[k])[1:])
        msg = "%s matches no block" % describe(s)
        if b:
            msg += ("; nearest:\n" if same else "; nearest of all blocks:\n")
            msg += diff(b, s, parsed[k])
        else:
            msg += ":\n" + "\n".join("    " + e for e in s["entries"])
        errors.append(msg)
    return errors


# ---------------------------------------------------------------------------
# Running fixtures.
# ---------------------------------------------------------------------------
def is_async_expectation(path):
    with open(path, encoding="utf-8") as f:
        return any(line.startswith("stack ") for line in f)


def run_fixture(argv_prefix, chroot, fixture, args=(), timeout=120.0):
    """The dump (JSON) of a fixture run under WRAPPER."""
    lines = check_expected.run_fixture(argv_prefix, chroot, fixture, timeout=timeout,
                                       args=args, wrapper=WRAPPER)
    return json.loads("\n".join(lines))


_imports = {}


def has_module(prefix, module):
    key = (tuple(prefix), module)
    if key not in _imports:
        r = subprocess.run(prefix + ["-c", "import " + module], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        _imports[key] = r.returncode == 0
    return _imports[key]


def interp_version(name):
    m = re.search(r"(\d+)\.(\d+)", name)
    return int(m.group(1)), int(m.group(2))


def requirement_unmet(ex, name, prefix):
    if ex.requires_version and interp_version(name) < ex.requires_version:
        return "needs Python %d.%d+" % ex.requires_version
    for module in ex.requires_modules:
        if not has_module(prefix, module):
            return "needs " + module
    return None


def load(fixture_base, agent):
    path = os.path.join(EXPECTED_DIR, fixture_base + ".txt")
    if not agent and os.path.exists(os.path.join(EXPECTED_DIR, fixture_base + ".noagent.txt")):
        path = os.path.join(EXPECTED_DIR, fixture_base + ".noagent.txt")
    with open(path, encoding="utf-8") as f:
        return parse_expected(f.read(), os.path.relpath(path, HERE)), os.path.basename(path)


# ---------------------------------------------------------------------------
# Drafting an expectation file.
# ---------------------------------------------------------------------------
def draft(stacks, fixture):
    """Expectation text: fixture frames exact, other frames with '*' lines,
    the thread part's runs of other files as '...'."""
    out = []
    order = sorted(stacks, key=lambda s: (s["leaf"] is not None, s["thread"], s["leaf"] or ""))
    for s in order:
        if s["leaf"] is None:
            out.append("thread %s" % s["thread"])
        else:
            out.append("stack %s" % s["leaf"])
            out.append("on %s" % s["thread"])
        items, in_tasks = [], False
        for e in s["entries"]:
            p = parse_entry(e)
            if p[0] != "frame":
                in_tasks = True
                items.append(e)
                continue
            if p[2] == fixture:
                items.append("%s %s:%s" % (p[1], p[2], p[3]))
            elif not in_tasks:
                if not items or items[-1] != "...":
                    items.append("...")
            else:
                items.append("%s %s:*" % (p[1], p[2]))
        k = 0
        while k < len(items):
            m = k
            while m + 1 < len(items) and items[m + 1] == items[k] and items[k] != "...":
                m += 1
            out.append(items[k] if m == k else "%s x%d" % (items[k], m - k + 1))
            k = m + 1
        out.append("")
    return "\n".join(out)


def self_test():
    """Cases of tests/expect_test.c, so that both matchers keep one set of
    rules and messages."""
    def st(thread, leaf, entries):
        return {"thread": thread, "leaf": leaf, "entries": entries.split("|") if entries else []}

    def run(text, stacks):
        return check_stacks(parse_expected(text, "t.txt"), stacks)

    head = ("<module> /x/seed.py:44|main /x/seed.py:40|run /py/asyncio/runners.py:44|"
            "select /py/selectors.py:469")
    seed = ("stack Task-not_awaited\non MainThread\n<module> seed.py:44\nmain seed.py:40\n...\n"
            "[Task-1]\nparent seed.py:35\n[Task-not_awaited]\nfunc_not_awaited seed.py:24\n"
            "sleep tasks.py:*\n\nstack Task-awaited\n<module> seed.py:44\nmain seed.py:40\n...\n"
            "[Task-1]\nparent seed.py:35\n[Task-awaited]\nfunc_awaited seed.py:28\nsleep tasks.py:*\n")
    awaited = st("MainThread", "Task-awaited", head + "|[Task-1]|parent /x/seed.py:35|[Task-awaited]|"
                 "func_awaited /x/seed.py:28|sleep /py/asyncio/tasks.py:652")
    weak = st("MainThread", "Task-not_awaited", head + "|[Task-1]|parent /x/seed.py:35|"
              "[Task-not_awaited]|func_not_awaited /x/seed.py:24|sleep /py/asyncio/tasks.py:652")
    root = st("MainThread", "Task-not_awaited", head + "|[Task-not_awaited]|"
              "func_not_awaited /x/seed.py:24|sleep /py/asyncio/tasks.py:652")
    assert run(seed, [awaited, weak]) == []
    errors = run(seed, [awaited, root])
    want = "\n".join([
        "  expected (stack Task-not_awaited, line 1):",
        "         3  <module> seed.py:44", "         4  main seed.py:40", "         5  ...",
        "    >    6  [Task-1]", "         7  parent seed.py:35", "         8  [Task-not_awaited]",
        "         9  func_not_awaited seed.py:24", "        10  sleep tasks.py:*",
        "  actual (stack Task-not_awaited on MainThread):",
        "         0  <module> /x/seed.py:44", "         1  main /x/seed.py:40",
        "         2  run /py/asyncio/runners.py:44", "         3  select /py/selectors.py:469",
        "    >    4  [Task-not_awaited]", "         5  func_not_awaited /x/seed.py:24",
        "         6  sleep /py/asyncio/tasks.py:652"])
    assert errors == ["stack Task-not_awaited (line 1) matches no stack; nearest:\n" + want,
                      "stack Task-not_awaited on MainThread matches no block; nearest:\n" + want], errors
    # "..." stands for frames only.
    block = "stack L\n<module> m.py:1\n...\n[L]\nf m.py:2\n"
    assert run(block, [st("T", "L", "<module> m.py:1|[Task-1]|parent m.py:9|[L]|f m.py:2")])
    assert not run(block, [st("T", "L", "<module> m.py:1|a b.py:1|[L]|f m.py:2")])
    assert run(block, [st("T", "L", "<module> m.py:1|(truncated)|[L]|f m.py:2")])
    # Basenames, '*' and '?', exact repeats.
    assert not run("stack L\n[L]\nf a.py:7\n", [st("T", "L", "[L]|f /deep/dir/a.py:7")])
    assert run("stack L\n[L]\nf a.py:7\n", [st("T", "L", "[L]|f /d/a.py:07")])
    assert run("stack L\n[L]\nf a.py:7\n", [st("T", "L", "[L]|f /d/a.py:?")])
    assert not run("stack L\n[L]\nf a.py:*\n", [st("T", "L", "[L]|f /my dir/a.py:?")])
    rep = "stack d\n[d]\nx d.py:3 x2\n"
    assert not run(rep, [st("T", "d", "[d]|x d.py:3|x d.py:3")])
    assert run(rep, [st("T", "d", "[d]|x d.py:3")])
    assert run(rep, [st("T", "d", "[d]|x d.py:3|x d.py:3|x d.py:3")])
    # Globs; thread blocks take stacks without tasks only; counts.
    assert not run("stack **a*b*\n[*]\n", [st("T", "ab", "[]"), st("T", "xaxxbx", "[q]")])
    assert run("stack **a*b*\n[*]\n", [st("T", "ba", "[x]")])
    assert run("thread T\n...\n", [st("T", "L", "")])
    assert not run("thread T*\n...\n", [st("T1", None, ""), st("T2", None, "a a.py:1")])
    six = [st("T", "L", "[L]")] * 6
    assert run("stack L\n[L]\n", six) == [
        "stack L (line 1) matches 6 stacks: stack L on T; stack L on T; stack L on T; "
        "stack L on T; and 2 more"]
    assert run("stack L\n[L]\n", []) == ["stack L (line 1) matches no stack"]
    assert run("# nothing\n", [st("T", None, "a a.py:1|b a.py:2")]) == [
        "thread T (no tasks) matches no block:\n    a a.py:1\n    b a.py:2"]
    # Parse errors read as tests/expect.c's.
    for text, msg in (("requires 2.7\n", "t.txt:1: bad directive: requires 2.7"),
                      ("thread T\n[a]\n", "t.txt:2: a thread block holds frames and '...' only: [a]"),
                      ("stack a\non T\non U\n", "t.txt:3: 'on THREAD' only right after 'stack LEAF': on U"),
                      ("stack a\n[a]\nf a.py:3 x0\n", "t.txt:3: bad entry: f a.py:3 x0"),
                      ("stack a\n\tf a.py:1\n", "t.txt:1: stack a has no task marker")):
        try:
            parse_expected(text, "t.txt")
        except ValueError as e:
            assert str(e) == msg, (str(e), msg)
        else:
            raise AssertionError("no error for %r" % text)
    print("self-test passed")
    return 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    agent_modes = ["agent", "noagent"]
    if "--no-agent" in argv:
        argv = [a for a in argv if a != "--no-agent"]
        agent_modes = ["noagent"]
    args = []
    if "--" in argv:
        args = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    if argv and argv[0] == "--print":
        prefix, chroot = [sys.executable], None
        if "--python" in argv:
            prefix = [argv[argv.index("--python") + 1]]
        if "--interp" in argv:
            want = argv[argv.index("--interp") + 1]
            found = [i for i in check_expected.interpreters() if i[0] == want]
            if not found or found[0][3]:
                sys.exit("%s: %s" % (want, found[0][3] if found else "no such interpreter"))
            prefix, chroot = found[0][1], found[0][2]
        fixture = argv[1]
        dump = run_fixture(prefix, chroot, fixture, args)
        for e in dump["errors"]:
            print("# ERROR: %s" % e)
        if "--raw" in argv:
            for st in dump[agent_modes[0]]:
                print("%s | %s" % (st["thread"], st["leaf"]))
                print("\n".join("    " + e for e in st["entries"]))
        else:
            print(draft(dump[agent_modes[0]], fixture))
        return 0
    only = set(a[:-3] if a.endswith(".py") else a for a in argv)
    self_test()
    ci = os.environ.get("CI") == "true"
    failures = skips = passes = not_applicable = 0
    per_interp = {}
    files = sorted(p for p in glob.glob(os.path.join(EXPECTED_DIR, "*.txt"))
                   if not p.endswith(".noagent.txt") and is_async_expectation(p))
    for exp in files:
        base = os.path.basename(exp)[:-4]
        if only and base not in only:
            continue
        fixture = base + ".py"
        variants = dict((m, load(base, m == "agent")) for m in agent_modes)
        for name, prefix, chroot, reason in check_expected.interpreters():
            stats = per_interp.setdefault(name, [0, 0, 0])
            for run_args in [[]] + EXTRA_ARGS.get(fixture, []):
                tag = "%-22s %-18s %-6s" % (fixture, name, " ".join(run_args))
                why = reason or requirement_unmet(variants[agent_modes[0]][0], name, prefix)
                if why:
                    # A requirement the interpreter does not meet is no
                    # failure; a missing interpreter is one under CI.
                    print("SKIP %s %s" % (tag, why))
                    skips += bool(reason)
                    not_applicable += not reason
                    stats[2] += 1
                    continue
                try:
                    dump = run_fixture(prefix, chroot, fixture, run_args)
                    errors = list(dump["errors"])
                    for m in agent_modes:
                        ex, fname = variants[m]
                        errors += ["%s: %s" % (fname, e) for e in check_stacks(ex, dump[m])]
                except Exception as e:  # report and go on with the others
                    errors = ["%s: %s" % (type(e).__name__, e)]
                if errors:
                    failures += 1
                    stats[1] += 1
                    print("FAIL %s\n%s" % (tag, "\n".join(errors)))
                else:
                    passes += 1
                    stats[0] += 1
                    print("ok   %s %s" % (tag, "+".join(agent_modes)))
    for name, (p, f, s) in per_interp.items():
        print("  %-20s %3d passed, %d failed, %d skipped" % (name, p, f, s))
    print("%d passed, %d failed, %d not applicable (requires), %d skipped (interpreter missing)"
          % (passes, failures, not_applicable, skips))
    return 1 if failures or (ci and skips) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
