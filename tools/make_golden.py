#!/usr/bin/env python3
"""Record the golden snapshots in corpus/golden/.

For every supported interpreter and fixture (the thread fixtures and every
asyncio scenario), start the fixture, wait until it is blocked at its
documented lines, and run

    asyncunwind snapshot --pid PID -o corpus/golden/<interp>-<fixture>.snap

keeping what it printed as corpus/golden/<interp>-<fixture>.txt, and the
same sample replayed in the collapsed format as .collapsed.  The golden
test (tests/golden_replay_test.sh) replays every .snap offline and requires
exactly both, so the reader's behaviour on every CPython version stays
covered without any interpreter installed.  The .snap files also seed the
pipeline fuzzer (corpus/pipeline/).

Fixtures whose stacks differ with the agent (those with an expected
.noagent.txt) are also recorded started with it (PYTHONPATH=$(asyncunwind
agent-path)), as <interp>-<fixture>.agent.snap: those snapshots hold the
agent's region, and replay its weak links.

Usage: python3 tools/make_golden.py [--agent-only] [--interp NAME ...] [FIXTURE ...]
(default: every fixture on every interpreter)

--agent-only records only the .agent.snap of each fixture (after a change
of the agent's format, the other snapshots stay as they are).
--interp NAME (repeatable: pyenv-3.9, sid-3.15, ...) records only on those
interpreters (after a change that only some versions' snapshots show).

Run from the workspace root after `bazel build //:asyncunwind`, as root
(the sid chroot needs it):

    python3 tools/make_golden.py
"""
import glob
import re
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SID = os.environ.get("ASYNCUNWIND_SID_ROOT", "/var/lib/asyncunwind/sid")
# fixture -> (arguments, minimum minor version, module it needs, busy).  Busy
# fixtures keep a thread on CPU: they are recorded without waiting for
# every thread to block.
FIXTURES = {
    "threads": ([], 9, None, False),
    "generators": ([], 9, None, False),
    "unicode_names": ([], 9, None, False),
    "lambdas": ([], 9, None, False),
    "seed": ([], 9, None, False),
    "seed_uvloop": ([], 11, "uvloop", False),
    "create_chain": ([], 9, None, False),
    "await_beats_weak": ([], 9, None, False),
    "orphan": ([], 9, None, False),
    "gather_tree": ([], 9, None, False),
    "taskgroup_tree": ([], 11, None, False),
    "waiters": ([], 9, None, False),
    "timeout_block": ([], 11, None, False),
    "wait_for_inline": ([], 12, None, False),
    "eager_tasks": ([], 12, None, False),
    "async_gen": ([], 9, None, False),
    "executor_thread": ([], 9, None, False),
    "deadlock": ([], 9, None, False),
    "two_loops": ([], 9, None, False),
    "many_tasks": (["100"], 9, None, False),
    "deep_chain": ([], 9, None, False),
    "on_cpu": ([], 9, None, True),
    "ties": ([], 9, None, False),
    "anyio_groups": ([], 11, "anyio", False),
}
TOOL = os.path.join(ROOT, "bazel-bin", "asyncunwind")
OUT = os.path.join(ROOT, "corpus", "golden")


def interpreters():
    pyenv = os.environ.get("PYENV_ROOT", "/root/.pyenv")
    for minor in range(9, 14):
        found = sorted(glob.glob("%s/versions/3.%d.*/bin/python3.%d" % (pyenv, minor, minor)))
        if found:
            yield "pyenv-3.%d" % minor, [found[-1]], None
    if os.path.exists("/usr/bin/python3.11"):
        yield "debian-3.11-static", ["/usr/bin/python3.11"], None
    for minor in (13, 14, 15):
        exe = "%s/usr/bin/python3.%d" % (SID, minor)
        if os.path.exists(exe):
            yield "sid-3.%d" % minor, ["/usr/sbin/chroot", SID, "/usr/bin/python3.%d" % minor], SID


def sleeping(pid):
    """Every thread blocked (sleeping, in epoll, on a futex)."""
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/wchan" % (pid, task)) as f:
                wchan = f.read()
            with open("/proc/%d/task/%s/stat" % (pid, task)) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if state != "S" or not wchan or wchan == "0":
            return False
    return True


def agent_dir(chroot):
    """The agent's directory as the interpreter sees it."""
    host = subprocess.run([TOOL, "agent-path"], stdout=subprocess.PIPE, check=True,
                          universal_newlines=True).stdout.strip()
    if not chroot:
        return host
    inside = "/tmp/asyncunwind-golden-agent"
    os.makedirs(chroot + inside, exist_ok=True)
    for f in glob.glob(host + "/*.py"):
        shutil.copy(f, chroot + inside)
    return inside


def record(name, argv, chroot, fixture, args, busy, agent):
    src = os.path.join(ROOT, "python_fixtures", fixture + ".py")
    if chroot:
        inside = "/tmp/asyncunwind-golden"
        os.makedirs(chroot + inside, exist_ok=True)
        shutil.copy(src, chroot + inside)
        script = inside + "/" + fixture + ".py"
    else:
        script = src
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if agent:
        env["PYTHONPATH"] = agent_dir(chroot)
    proc = subprocess.Popen(argv + [script] + args, stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env)
    try:
        line = proc.stdout.readline().decode()
        if not line.startswith("READY"):
            raise SystemExit("%s %s: no READY line" % (name, fixture))
        deadline = time.time() + 10
        while not busy and not sleeping(proc.pid):
            if time.time() > deadline:
                raise SystemExit("%s %s: never blocked" % (name, fixture))
            time.sleep(0.05)
        time.sleep(0.2)
        base = os.path.join(OUT, "%s-%s%s" % (name, fixture, ".agent" if agent else ""))
        with open(base + ".txt", "wb") as out:
            subprocess.run([TOOL, "snapshot", "--pid", str(proc.pid), "-o", base + ".snap"],
                           stdout=out, stderr=subprocess.DEVNULL, check=True)
        with open(base + ".collapsed", "wb") as out:
            subprocess.run([TOOL, "replay", base + ".snap", "--format", "collapsed"],
                           stdout=out, check=True)
        print("%s.snap: %d bytes" % (base, os.path.getsize(base + ".snap")))
    finally:
        proc.kill()
        proc.wait()


def has_module(chroot, minor, module):
    """Only sid's chroot has them: uvloop built for one version, anyio
    pure Python."""
    if not chroot:
        return False
    if module == "uvloop":
        return bool(glob.glob(
            "%s/usr/lib/python3/dist-packages/uvloop/loop.cpython-3%d-*.so" % (chroot, minor)))
    return os.path.exists("%s/usr/lib/python3/dist-packages/%s/__init__.py" % (chroot, module))


def main():
    if not os.path.exists(TOOL):
        sys.exit("build it first: bazel build //:asyncunwind")
    opts = sys.argv[1:]
    agent_only = "--agent-only" in opts
    opts = [a for a in opts if a != "--agent-only"]
    interps = []
    while "--interp" in opts:
        i = opts.index("--interp")
        if i + 1 == len(opts):
            sys.exit("--interp needs a name, such as pyenv-3.9")
        interps.append(opts[i + 1])
        del opts[i:i + 2]
    wanted = opts or list(FIXTURES)
    for f in wanted:
        if f not in FIXTURES:
            sys.exit("unknown fixture %s" % f)
    os.makedirs(OUT, exist_ok=True)
    found = list(interpreters())
    for want in interps:
        if want not in [n for n, _, _ in found]:
            sys.exit("unknown or missing interpreter %s (have: %s)" %
                     (want, " ".join(n for n, _, _ in found)))
    for name, argv, chroot in found:
        if interps and name not in interps:
            continue
        minor = int(re.search(r"3\.(\d+)", name).group(1))
        for fixture in wanted:
            args, min_minor, module, busy = FIXTURES[fixture]
            if minor < min_minor or (module and not has_module(chroot, minor, module)):
                continue
            if not agent_only:
                record(name, argv, chroot, fixture, args, busy, False)
            noagent = os.path.join(ROOT, "python_fixtures", "expected", fixture + ".noagent.txt")
            if os.path.exists(noagent):
                record(name, argv, chroot, fixture, args, busy, True)


if __name__ == "__main__":
    main()
