#!/usr/bin/env python3
"""Record the golden snapshots in corpus/golden/.

For every supported interpreter and a few fixtures, start the fixture, wait
until it is blocked at its documented lines, and run

    asyncunwind snapshot --pid PID -o corpus/golden/<interp>-<fixture>.snap

keeping what it printed as corpus/golden/<interp>-<fixture>.txt.  The golden
test (tests/golden_replay_test.sh) replays every .snap offline and requires
exactly the .txt, so the reader's behaviour on every CPython version stays
covered without any interpreter installed.  The .snap files also seed the
pipeline fuzzer (corpus/pipeline/).

Run from the workspace root after `bazel build //:asyncunwind`, as root
(the sid chroot needs it):

    python3 tools/make_golden.py
"""
import glob
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SID = os.environ.get("ASYNCUNWIND_SID_ROOT", "/var/lib/asyncunwind/sid")
FIXTURES = ["threads", "generators", "unicode_names"]
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
    for minor in (14, 15):
        exe = "%s/usr/bin/python3.%d" % (SID, minor)
        if os.path.exists(exe):
            yield "sid-3.%d" % minor, ["/usr/sbin/chroot", SID, "/usr/bin/python3.%d" % minor], SID


def sleeping(pid):
    """Every thread blocked in a sleep system call."""
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


def record(name, argv, chroot, fixture):
    src = os.path.join(ROOT, "python_fixtures", fixture + ".py")
    if chroot:
        inside = "/tmp/asyncunwind-golden"
        os.makedirs(chroot + inside, exist_ok=True)
        shutil.copy(src, chroot + inside)
        script = inside + "/" + fixture + ".py"
    else:
        script = src
    proc = subprocess.Popen(argv + [script], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline().decode()
        if not line.startswith("READY"):
            raise SystemExit("%s %s: no READY line" % (name, fixture))
        deadline = time.time() + 10
        while not sleeping(proc.pid):
            if time.time() > deadline:
                raise SystemExit("%s %s: never blocked" % (name, fixture))
            time.sleep(0.05)
        time.sleep(0.2)
        base = os.path.join(OUT, "%s-%s" % (name, fixture))
        with open(base + ".txt", "wb") as out:
            subprocess.run([TOOL, "snapshot", "--pid", str(proc.pid), "-o", base + ".snap"],
                           stdout=out, check=True)
        print("%s.snap: %d bytes" % (base, os.path.getsize(base + ".snap")))
    finally:
        proc.kill()
        proc.wait()


def main():
    if not os.path.exists(TOOL):
        sys.exit("build it first: bazel build //:asyncunwind")
    os.makedirs(OUT, exist_ok=True)
    for name, argv, chroot in interpreters():
        for fixture in FIXTURES:
            record(name, argv, chroot, fixture)


if __name__ == "__main__":
    main()
