#!/usr/bin/env python3
"""Check python_fixtures/expected/*.txt against the fixtures themselves.

For every available interpreter (the same list as tests/pythons.c: pyenv
3.9-3.13, Debian's static /usr/bin/python3.11, sid chroot 3.13-3.15) and
every fixture, runs the fixture under a small wrapper that installs a SIGUSR1
handler, waits for READY, sends SIGUSR1, and compares the stacks the handler
dumps (sys._current_frames, from inside) with the expectation file.  This is
the in-process oracle for the expectations that the out-of-process tests
assert, so run it after editing a fixture or an expectation.

    python3 python_fixtures/check_expected.py            # check all
    python3 python_fixtures/check_expected.py --print deep_recursion.py \
        [--python /root/.pyenv/versions/3.12.1/bin/python3]   # author

Task-aware expectations (files with "stack" blocks or directives, and the
.noagent.txt variants) belong to check_async_expected.py and are left out.
Needs root only for the chroot interpreters (missing ones are skipped).
Exit status 0 iff every check that ran passed (and, with CI=true, none was
skipped).
"""
import fnmatch
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED_DIR = os.path.join(HERE, "expected")

WRAPPER = r'''
import os, runpy, signal, sys, threading
path = sys.argv[1]
def dump(signum, frame):
    names = dict((t.ident, t.name) for t in threading.enumerate())
    me = threading.current_thread().ident
    out = []
    for ident, f in sorted(sys._current_frames().items()):
        if ident == me:
            f = frame
        stack = []
        while f is not None:
            stack.append(f)
            f = f.f_back
        stack.reverse()
        for i, f in enumerate(stack):
            if f.f_code.co_filename == path and f.f_code.co_name == "<module>":
                stack = stack[i:]
                break
        out.append("thread %s" % names.get(ident, "?"))
        for f in stack:
            out.append("%s %s:%d" % (f.f_code.co_name,
                                     os.path.basename(f.f_code.co_filename),
                                     f.f_lineno))
    out.append("END-DUMP")
    sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.flush()
signal.signal(signal.SIGUSR1, dump)
sys.argv = sys.argv[1:]
runpy.run_path(path, run_name="__main__")
'''


# --- expectation files --------------------------------------------------------

def parse_expected(text):
    """Returns [(thread_pattern, [item])], item = "..." or (func, file, line)
    with line None for "*"; "xN" repeats are expanded."""
    blocks = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0] == "thread" and len(words) == 2:
            blocks.append((words[1], []))
            continue
        if not blocks:
            raise ValueError("line %d: frame before any 'thread'" % lineno)
        items = blocks[-1][1]
        if words == ["..."]:
            items.append("...")
            continue
        count = 1
        if len(words) == 3 and words[2].startswith("x"):
            count = int(words[2][1:])
            words = words[:2]
        if len(words) != 2 or ":" not in words[1]:
            raise ValueError("line %d: bad frame line %r" % (lineno, raw))
        fname, _, ln = words[1].rpartition(":")
        frame = (words[0], fname, None if ln == "*" else int(ln))
        items.extend([frame] * count)
    for pattern, items in blocks:
        if "..." in items[1:-1]:
            raise ValueError("thread %s: '...' only first or last" % pattern)
    return blocks


def frame_matches(want, got):
    return (want[0] == got[0] and want[1] == got[1]
            and (want[2] is None or want[2] == got[2]))


def stack_matches(items, stack):
    lead = bool(items) and items[0] == "..."
    trail = len(items) > 1 and items[-1] == "..." or items == ["..."]
    core = [i for i in items if i != "..."]
    n = len(core)
    if not lead and not trail:
        starts = [0] if len(stack) == n else []
    elif lead and not trail:
        starts = [len(stack) - n] if len(stack) >= n else []
    elif trail and not lead:
        starts = [0] if len(stack) >= n else []
    else:
        starts = range(0, len(stack) - n + 1)
    return any(all(frame_matches(core[k], stack[s + k]) for k in range(n))
               for s in starts)


def check_dump(blocks, threads):
    """threads: [(name, [(func, file, line)])]; returns a list of errors."""
    errors = []
    used = set()
    for pattern, items in blocks:
        glob_pat = "*" in pattern
        hits = [i for i, (name, _) in enumerate(threads)
                if fnmatch.fnmatchcase(name, pattern)]
        if not glob_pat and len(hits) != 1:
            errors.append("thread %s: found %d times" % (pattern, len(hits)))
        for i in hits:
            used.add(i)
            if not stack_matches(items, threads[i][1]):
                errors.append("thread %s: stack mismatch" % threads[i][0])
    for i, (name, _) in enumerate(threads):
        if i not in used:
            errors.append("unexpected thread %s" % name)
    return errors


def parse_dump(lines):
    threads = []
    for line in lines:
        words = line.split(" ")
        if words[0] == "thread":
            threads.append((words[1], []))
        else:
            fname, _, ln = words[1].rpartition(":")
            threads[-1][1].append((words[0], fname, int(ln)))
    return threads


def format_dump(threads):
    """Expectation-file text for a dump, with runs compressed to "xN"."""
    out = []
    for name, stack in threads:
        out.append("thread %s" % name)
        i = 0
        while i < len(stack):
            j = i
            while j + 1 < len(stack) and stack[j + 1] == stack[i]:
                j += 1
            line = "%s %s:%d" % stack[i]
            out.append(line if j == i else "%s x%d" % (line, j - i + 1))
            i = j + 1
    return "\n".join(out)


# --- interpreters --------------------------------------------------------------

PYENV_VERSIONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
SID_VERSIONS = ["3.13", "3.14", "3.15"]


def pyenv_root():
    for cand in (os.environ.get("PYENV_ROOT"), "/root/.pyenv",
                 os.path.expanduser("~/.pyenv")):
        if cand and os.path.isdir(os.path.join(cand, "versions")):
            return cand
    return None


def interpreters():
    """[(name, argv_prefix, chroot_root or None, missing_reason or None)]"""
    res = []
    root = pyenv_root()
    for v in PYENV_VERSIONS:
        hits = sorted(glob.glob(os.path.join(root or "/nonexistent",
                                             "versions", v + ".*")))
        hits = [h for h in hits if h.rsplit("/", 1)[1][len(v) + 1:].isdigit()]
        exe = hits and os.path.join(hits[-1], "bin", "python" + v)
        if exe and os.access(exe, os.X_OK):
            res.append(("pyenv-" + v, [exe], None, None))
        else:
            res.append(("pyenv-" + v, None, None, "no pyenv %s.*" % v))
    if os.access("/usr/bin/python3.11", os.X_OK):
        res.append(("debian-3.11-static", ["/usr/bin/python3.11"], None, None))
    else:
        res.append(("debian-3.11-static", None, None, "no /usr/bin/python3.11"))
    sid = os.environ.get("ASYNCUNWIND_SID_ROOT", "/var/lib/asyncunwind/sid")
    for v in SID_VERSIONS:
        exe = sid + "/usr/bin/python" + v
        if not os.path.exists(sid + "/.asyncunwind-sid-complete"):
            reason = "no complete sid chroot at %s (run tools/sid_chroot.sh)" % sid
        elif os.geteuid() != 0:
            reason = "chroot needs root"
        elif not os.access(exe, os.X_OK):
            reason = "no %s" % exe
        else:
            reason = None
        res.append(("sid-" + v,
                    None if reason else ["/usr/sbin/chroot", sid, "/usr/bin/python" + v],
                    sid, reason))
    return res


def run_fixture(argv_prefix, chroot, fixture, timeout=20.0, args=(), wrapper=None):
    """Returns the dumped lines of a fixture run under a wrapper (this
    file's WRAPPER unless another is given: check_async_expected.py passes
    its own), with args after the fixture's path."""
    tmpdir = None
    path = os.path.join(HERE, fixture)
    if chroot:
        base = os.path.join(chroot, "tmp", "asyncunwind-fixtures")
        os.makedirs(base, exist_ok=True)
        tmpdir = tempfile.mkdtemp(prefix="check-", dir=base)
        shutil.copy(path, tmpdir)
        path = "/" + os.path.relpath(os.path.join(tmpdir, fixture), chroot)
    proc = subprocess.Popen(argv_prefix + ["-c", wrapper or WRAPPER, path] + list(args),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            universal_newlines=True, encoding="utf-8")
    try:
        deadline = time.monotonic() + timeout
        line = proc.stdout.readline()
        if not line.startswith("READY %d" % proc.pid):
            raise RuntimeError("no READY line (got %r)" % line)
        time.sleep(0.3)   # let every thread reach its blocking call
        proc.send_signal(signal.SIGUSR1)
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("fixture exited during the dump")
            line = line.rstrip("\n")
            if line == "END-DUMP":
                return lines
            lines.append(line)
        raise RuntimeError("dump timed out")
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


def main(argv):
    if len(argv) >= 2 and argv[0] == "--print":
        python = argv[argv.index("--python") + 1] if "--python" in argv else sys.executable
        print(format_dump(parse_dump(run_fixture([python], None, argv[1]))))
        return 0
    ci = os.environ.get("CI") == "true"
    failures = skips = passes = 0
    for exp in sorted(glob.glob(os.path.join(EXPECTED_DIR, "*.txt"))):
        fixture = os.path.basename(exp)[:-4] + ".py"
        with open(exp, encoding="utf-8") as f:
            text = f.read()
        if exp.endswith(".noagent.txt") or any(
                line.startswith(("stack ", "requires ")) for line in text.split("\n")):
            continue  # task-aware: check_async_expected.py checks it
        blocks = parse_expected(text)
        for name, prefix, chroot, reason in interpreters():
            tag = "%-20s %-18s" % (fixture, name)
            if reason:
                print("SKIP %s %s" % (tag, reason))
                skips += 1
                continue
            try:
                errors = check_dump(blocks, parse_dump(run_fixture(prefix, chroot, fixture)))
            except Exception as e:  # report and go on with the others
                errors = ["%s: %s" % (type(e).__name__, e)]
            if errors:
                failures += 1
                print("FAIL %s %s" % (tag, "; ".join(errors)))
            else:
                passes += 1
                print("ok   %s" % tag)
    print("%d passed, %d failed, %d skipped" % (passes, failures, skips))
    return 1 if failures or (ci and skips) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
