#!/usr/bin/env python3
"""The note that a thread's stack was read only in part comes first, on
the root side, in every output of a sample (core/render/render.c; the
frames not read are always the oldest: a walk goes from the newest frame
out).  `[partial stack]` right after the thread in the collapsed format,
and as the first entry of the stack in the text format.

A live process tears a read only now and then, and more rarely the busier
the machine, so this test makes the snapshot do it: from the golden
snapshot of python_fixtures/seed.py on each version it drops one recorded
region at a time until a replay is partial (the thread's frames, or the
C stack that leads to them, can no longer be read), then checks where the
note is.  Regions are tried from both ends of the address space: 3.11+
keep frames in chunks high in it, 3.9 and 3.10 in heap objects low in it.

usage: partial_note_test.py ASYNCUNWIND
"""
import os
import subprocess
import sys
import tempfile

from snapshot_records import REGION, records

GOLDENS = ["pyenv-3.9-seed", "pyenv-3.10-seed", "pyenv-3.11-seed", "pyenv-3.12-seed",
           "pyenv-3.13-seed", "sid-3.14-seed", "sid-3.15-seed"]
NOTES = ("[partial stack]", "[frame chain loops]")
MAX_TRIES = 40


def replay(tool, path, fmt):
    p = subprocess.run([tool, "replay", path, "-f", fmt], capture_output=True, text=True)
    return p.returncode, p.stdout


def misplaced_collapsed(out):
    """Lines where a note is not the entry right after the thread's."""
    bad = []
    for line in out.splitlines():
        if not any(n in line for n in NOTES):
            continue
        entries = line.rsplit(" ", 1)[0].split(";")
        at = 1 + (entries[0].startswith("process "))
        if entries[at] not in NOTES or any(n in e for e in entries[at + 1:] for n in NOTES):
            bad.append(line)
    return bad


def misplaced_text(out):
    """Stacks (blocks after a 'Thread ...' header) where a note is not the
    first entry."""
    bad, block = [], []
    for line in out.splitlines() + [""]:
        if line.startswith("Thread "):
            block = [line]
            continue
        if block and line.strip():
            block.append(line.strip())
            continue
        if len(block) > 1 and any(n in e for e in block[1:] for n in NOTES):
            if block[1] not in NOTES or any(n in e for e in block[2:] for n in NOTES):
                bad.append("\n".join(block))
        block = []
    return bad


def check(tool, name, tmp):
    snap = os.path.join("corpus/golden", name + ".snap")
    data = open(snap, "rb").read()
    rc, base = replay(tool, snap, "collapsed")
    if rc != 0 or any(n in base for n in NOTES):
        return f"{name}: the unchanged snapshot should replay whole (exit {rc})"
    regs = [r for r in records(data) if r[0] == REGION]
    order = []
    for i in range(len(regs)):
        order.append(regs[len(regs) - 1 - i // 2] if i % 2 == 0 else regs[i // 2])
    path = os.path.join(tmp, name + ".snap")
    for tries, (_, off, size) in enumerate(order[:MAX_TRIES], 1):
        with open(path, "wb") as f:
            f.write(data[:off] + data[off + size:])
        rc, collapsed = replay(tool, path, "collapsed")
        if rc != 0 or not any(n in collapsed for n in NOTES):
            continue
        rc, text = replay(tool, path, "text")
        bad = misplaced_collapsed(collapsed) + misplaced_text(text)
        if rc != 0 or bad:
            return f"{name}: a note that does not come first (exit {rc}):\n" + "\n".join(bad[:3])
        marked = sum(any(n in line for n in NOTES) for line in collapsed.splitlines())
        print(f"PASS: {name}: one region dropped (try {tries}), {marked} stacks "
              "marked, the note first in collapsed and text")
        return None
    return f"{name}: no partial replay after dropping each of {MAX_TRIES} regions"


def main():
    tool = sys.argv[1]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in GOLDENS:
            why = check(tool, name, tmp)
            if why:
                print("FAIL: " + why)
                failed += 1
    print(f"{len(GOLDENS) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
