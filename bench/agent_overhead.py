#!/usr/bin/env python3
"""What the asyncunwind agent costs a program: the same workloads with and
without the agent on PYTHONPATH, in fresh processes, interleaved.

Workloads (each child process runs one and prints one number):
  create  `await asyncio.create_task(noop())` in a loop: tasks per second.
          Every task is recorded, so this is the agent's per-task cost.
  steady  1,000 tasks, each `await asyncio.sleep(0)` in a loop, counted:
          steps per second over the whole run (creation included).  Nothing
          is created once they run, so the agent should cost ~nothing.
  uvloop  `create` on uvloop's loop (interpreters that have uvloop).

Time is the process's CPU time (time.process_time) unless --clock wall:
on a shared machine other tenants take the CPU away, which inflates
elapsed time but much less CPU time.  For each interpreter and workload,
--reps pairs of processes run, the order within a pair alternating, so
drift and other tenants' load land on both sides alike.  Printed: the median of each side, the ratio of the
medians (agent / plain: < 1 is slower for throughput), the slowdown in %,
and the spread (min-max) of each side.

  bazel run -c opt //bench:agent_overhead                 # every interpreter
  bazel run //bench:agent_overhead -- --python pyenv-3.12,sid-3.14 --reps 21
  python3 bench/agent_overhead.py --agent-dir agent --python /usr/bin/python3.11

Interpreters are named as in tests/pythons.h (pyenv-3.9 .. pyenv-3.13,
debian-3.11-static, sid-3.13 .. sid-3.15) or given as a path.  sid's run
in the chroot of tools/sid_chroot.sh (root needed); the script and the
agent are copied into ROOT/tmp for the run.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

SID_DEFAULT_ROOT = "/var/lib/asyncunwind/sid"
SID_STAMP = ".asyncunwind-sid-complete"
ALL = ["pyenv-3.9", "pyenv-3.10", "pyenv-3.11", "pyenv-3.12", "pyenv-3.13",
       "debian-3.11-static", "sid-3.13", "sid-3.14", "sid-3.15"]
AGENT_FILES = ("sitecustomize.py", "asyncunwind_hook.py",
               "asyncunwind_agent.py")


# --------------------------------------------------------------------------
# Child side: runs in the measured interpreter.

def child(workload, n, inner, clock):
    import asyncio
    import time
    now = time.process_time if clock == "cpu" else time.perf_counter

    async def noop():
        pass

    async def create(count):
        for _ in range(count):
            await asyncio.create_task(noop())

    async def stepper(steps, counter):
        for _ in range(steps):
            await asyncio.sleep(0)
            counter[0] += 1

    async def steady(steps):
        counter = [0]
        tasks = [asyncio.create_task(stepper(steps, counter))
                 for _ in range(1000)]
        await asyncio.gather(*tasks)
        return counter[0]

    runner = asyncio.run
    if workload == "uvloop":
        import uvloop
        runner = uvloop.run
    results = []
    if workload in ("create", "uvloop"):
        runner(create(n // 10))  # warm-up
        for _ in range(inner):
            t0 = now()
            runner(create(n))
            results.append(n / (now() - t0))
    else:
        runner(steady(10))
        for _ in range(inner):
            t0 = now()
            done = runner(steady(n))
            results.append(done / (now() - t0))
    print("%.1f" % statistics.median(results))
    print("agent" if "asyncunwind_agent" in sys.modules else "plain")


# --------------------------------------------------------------------------
# Driver side.

def pyenv_root():
    for cand in (os.environ.get("PYENV_ROOT"), "/root/.pyenv",
                 os.path.expanduser("~/.pyenv")):
        if cand and os.path.isdir(os.path.join(cand, "versions")):
            return cand
    return None


def resolve(name):
    """(argv prefix, chroot root or None, why unavailable or None)."""
    if "/" in name:
        return [name], None, None if os.access(name, os.X_OK) else "missing"
    if name.startswith("pyenv-3."):
        minor = int(name.split(".")[1])
        root = pyenv_root()
        if root is None:
            return None, None, "no pyenv root"
        best = None
        for d in os.listdir(os.path.join(root, "versions")):
            parts = d.split(".")
            if (len(parts) == 3 and parts[:2] == ["3", str(minor)]
                    and parts[2].isdigit()):
                if best is None or int(parts[2]) > int(best.split(".")[2]):
                    best = d
        if best is None:
            return None, None, "no 3.%d under %s/versions" % (minor, root)
        return ([os.path.join(root, "versions", best, "bin",
                              "python3.%d" % minor)], None, None)
    if name == "debian-3.11-static":
        exe = "/usr/bin/python3.11"
        return [exe], None, None if os.access(exe, os.X_OK) else "missing"
    if name.startswith("sid-3."):
        root = os.environ.get("ASYNCUNWIND_SID_ROOT") or SID_DEFAULT_ROOT
        exe = "/usr/bin/python3.%s" % name.split(".")[1]
        if not os.path.exists(os.path.join(root, SID_STAMP)):
            return None, None, "no sid chroot at %s" % root
        if not os.access(root + exe, os.X_OK):
            return None, None, "%s%s missing" % (root, exe)
        if os.geteuid() != 0:
            return None, None, "the chroot needs root"
        return ["/usr/sbin/chroot", root, exe], root, None
    return None, None, "unknown interpreter name"


def run_child(argv, script, agent_dir, workload, n, inner, clock):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if agent_dir is not None:
        env["PYTHONPATH"] = agent_dir
    out = subprocess.run(argv + [script, "--child", workload, str(n),
                                 str(inner), clock],
                         env=env, stdout=subprocess.PIPE, check=True,
                         universal_newlines=True).stdout.split()
    expected = "agent" if agent_dir is not None else "plain"
    if out[1] != expected:
        raise SystemExit("child ran %s, expected %s" % (out[1], expected))
    return float(out[0])


def measure(name, args, agent_src, script_src):
    argv, root, why = resolve(name)
    if argv is None:
        print("%-20s skipped: %s" % (name, why))
        return
    tmp = None
    script, agent_dir = script_src, agent_src
    if root is not None:  # copy the script and the agent into the chroot
        tmp = tempfile.mkdtemp(prefix="asyncunwind-bench-",
                               dir=os.path.join(root, "tmp"))
        inside = tmp[len(root):]
        shutil.copy(script_src, tmp)
        os.mkdir(os.path.join(tmp, "agent"))
        for f in AGENT_FILES:
            shutil.copy(os.path.join(agent_src, f), os.path.join(tmp, "agent"))
        script = os.path.join(inside, os.path.basename(script_src))
        agent_dir = os.path.join(inside, "agent")
    try:
        workloads = [w for w in args.workloads.split(",")]
        for workload in workloads:
            if workload == "uvloop":
                probe = subprocess.run(argv + ["-c", "import uvloop"],
                                       stderr=subprocess.DEVNULL)
                if probe.returncode != 0:
                    continue
            n = args.steps if workload == "steady" else args.tasks
            plain, agent = [], []
            for rep in range(args.reps):
                order = ((None, plain), (agent_dir, agent))
                if rep % 2:
                    order = order[::-1]
                for adir, acc in order:
                    acc.append(run_child(argv, script, adir, workload, n,
                                         args.inner, args.clock))
            mp, ma = statistics.median(plain), statistics.median(agent)
            unit = "steps/s" if workload == "steady" else "tasks/s"
            print("%-20s %-7s plain %10.0f  agent %10.0f %-7s ratio %.4f "
                  "slowdown %+6.2f %%   (plain %.0f-%.0f, agent %.0f-%.0f)"
                  % (name, workload, mp, ma, unit, ma / mp,
                     (mp / ma - 1) * 100, min(plain), max(plain),
                     min(agent), max(agent)))
            sys.stdout.flush()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--python", default="all",
                   help="comma-separated names or paths (default: all)")
    p.add_argument("--agent-dir",
                   default=os.path.join(os.path.dirname(here), "agent"))
    p.add_argument("--workloads", default="create,steady,uvloop")
    p.add_argument("--reps", type=int, default=11,
                   help="process pairs per workload (default 11)")
    p.add_argument("--inner", type=int, default=3,
                   help="runs per process; it prints their median")
    p.add_argument("--tasks", type=int, default=20000,
                   help="tasks per `create` run")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="cpu (default): the process's CPU time, which "
                   "other tenants of a shared machine disturb less; wall: "
                   "elapsed time")
    p.add_argument("--steps", type=int, default=100,
                   help="steps per task per `steady` run (1,000 tasks)")
    args = p.parse_args()
    agent = os.path.abspath(args.agent_dir)
    for f in AGENT_FILES:
        if not os.path.exists(os.path.join(agent, f)):
            raise SystemExit("no %s in %s" % (f, agent))
    names = ALL if args.python == "all" else args.python.split(",")
    for name in names:
        measure(name, args, agent, os.path.abspath(__file__))


if __name__ == "__main__":
    main()
