#!/usr/bin/env python3
"""Checks `asyncunwind ... --format json` output as its consumers read it.

  check_sample_json.py SCHEMA JSON [COLLAPSED [TREE]]
  check_sample_json.py SCHEMA --list FILE

(--list: each line of FILE holds the JSON [COLLAPSED [TREE]] arguments of
one check, separated by tabs: one Python start-up for hundreds of samples.)

- JSON parses with Python's json module (strict: no NaN, no duplicate
  keys) and validates against SCHEMA (docs/schema/sample.schema.json) with
  Debian's python3-jsonschema;
- every index points into its array, and the document is consistent with
  itself: each thread's tasks and stacks name it back, parent and children
  agree, "roots" holds exactly the parentless tasks and one member of each
  cycle of parents, and "in_cycle" is set exactly on those cycles;
- with COLLAPSED (the same sample as --format collapsed), the stacks
  rebuilt from the JSON, root first, are exactly its lines;
- with TREE (the same sample as --format tree), the task lines rebuilt
  from roots and children, depth first, with their edges, are exactly the
  tree's task lines.
Exits 1 with a message on the first difference.
"""
import json
import sys

import jsonschema


CURRENT = ""


def fail(msg):
    sys.stderr.write("check_sample_json: %s: %s\n" % (CURRENT, msg))
    sys.exit(1)


def no_dup_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        fail("duplicate key in %r" % keys)
    return dict(pairs)


def bad_constant(name):
    fail("non-standard JSON constant %s" % name)


def clean(s, semicolon):
    s = s.replace("\n", " ").replace("\r", " ")
    return s.replace(";", ":") if semicolon else s


def frame_text(f, semicolon):
    if f["qualname"] is None:
        return "<unknown> (%s)" % f["code"]
    line = "?" if f["line"] is None else str(f["line"])
    return "%s (%s:%s)" % (clean(f["qualname"], semicolon), clean(f["file"], semicolon), line)


def task_text(t, semicolon):
    return clean(t["name"], semicolon) if t["name"] is not None else "<task %s>" % t["id"]


def thread_text(th):
    s = str(th["native_id"]) if th["native_id"] is not None else th["thread_id"]
    return s + (" (%s)" % clean(th["name"], True) if th["name"] is not None else "")


def check_consistency(doc):
    threads, tasks, frames, stacks = doc["threads"], doc["tasks"], doc["frames"], doc["stacks"]

    def idx(v, arr, what):
        if not isinstance(v, int) or not 0 <= v < len(arr):
            fail("%s index %r out of range (%d)" % (what, v, len(arr)))

    for i, th in enumerate(threads):
        for f in th["frames"]:
            idx(f, frames, "thread frame")
        for t in th["tasks"]:
            idx(t, tasks, "thread task")
            if tasks[t]["thread"] != i:
                fail("task %d is listed by thread %d but names %d" % (t, i, tasks[t]["thread"]))
        for k in th["stacks"]:
            idx(k, stacks, "thread stack")
            if stacks[k]["thread"] != i:
                fail("stack %d is listed by thread %d" % (k, i))
    for i, t in enumerate(tasks):
        idx(t["thread"], threads, "task thread")
        if i not in threads[t["thread"]]["tasks"]:
            fail("task %d missing from its thread's list" % i)
        for f in t["frames"]:
            idx(f, frames, "task frame")
        if (t["parent"] is None) != (t["link"] is None):
            fail("task %d: parent and link disagree" % i)
        if t["parent"] is not None:
            idx(t["parent"], tasks, "parent")
            if i not in tasks[t["parent"]]["children"]:
                fail("task %d is not among its parent's children" % i)
        for c in t["children"]:
            idx(c, tasks, "child")
            if tasks[c]["parent"] != i:
                fail("task %d lists child %d whose parent is %r" % (i, c, tasks[c]["parent"]))
    # Cycles of parents, found independently of the renderer.
    on_cycle = set()
    for i in range(len(tasks)):
        seen, v = [], i
        while v is not None and v not in seen and v not in on_cycle:
            seen.append(v)
            v = tasks[v]["parent"]
        if v is not None and v in seen:
            on_cycle.update(seen[seen.index(v):])
    for i, t in enumerate(tasks):
        if t["in_cycle"] != (i in on_cycle):
            fail("task %d: in_cycle is %s" % (i, t["in_cycle"]))
    for i, th in enumerate(threads):
        roots = th["roots"]
        plain = [r for r in roots if tasks[r]["parent"] is None]
        want = sorted(t for t in th["tasks"] if tasks[t]["parent"] is None)
        if sorted(plain) != want:
            fail("thread %d: roots %r, parentless tasks %r" % (i, roots, want))
        cyc = [r for r in roots if tasks[r]["parent"] is not None]
        if roots[:len(plain)] != plain:
            fail("thread %d: cycle roots before plain roots" % i)
        # one root per cycle: walking each cycle from its root covers it
        covered = set()
        for r in cyc:
            if r not in on_cycle or r in covered:
                fail("thread %d: root %d is not the entry of a new cycle" % (i, r))
            v = r
            while True:
                covered.add(v)
                v = tasks[v]["parent"]
                if v == r:
                    break
        if covered != on_cycle & set(th["tasks"]):
            fail("thread %d: cycles without a root" % i)
    for k, st in enumerate(stacks):
        idx(st["thread"], threads, "stack thread")
        if st["leaf"] is not None:
            idx(st["leaf"], tasks, "leaf")
        for e in st["entries"]:
            (kind, v), = e.items()
            if kind == "frame":
                idx(v, frames, "entry frame")
            elif kind in ("task", "cycle"):
                idx(v, tasks, "entry task")


def collapsed_lines(doc):
    out = []
    threads, tasks, frames = doc["threads"], doc["tasks"], doc["frames"]
    for th in threads:
        if not th["stacks"]:
            out.append("thread %s 1" % thread_text(th))
        for k in th["stacks"]:
            st = doc["stacks"][k]
            note = ("[frame chain loops]" if th["frame_cycle"] else
                    "[partial stack]" if th["partial"] else None)
            parts, in_tasks = ["thread " + thread_text(th)], False
            for e in st["entries"]:
                (kind, v), = e.items()
                if kind != "frame" and not in_tasks:
                    in_tasks = True
                    if note:
                        parts.append(note)
                if kind == "frame":
                    parts.append(frame_text(frames[v], True))
                elif kind == "task":
                    parts.append("[%s]" % task_text(tasks[v], True))
                elif kind == "cycle":
                    parts.append("[cycle -> %s]" % task_text(tasks[v], True))
                else:
                    parts.append("[truncated]")
            if not in_tasks and note:
                parts.append(note)
            out.append(";".join(parts) + " 1")
    return out


EDGE = {"await": "[await] ", "strong": "[strong] ", "weak": "[weak] "}


def tree_task_lines(doc):
    """The tree's task lines, without their bars: depth, edge and name."""
    out, tasks = [], doc["tasks"]
    for th in doc["threads"]:
        seen = set()
        for r in th["roots"]:
            stack = [(r, 0, True)]
            while stack:
                v, depth, root = stack.pop()
                t = tasks[v]
                edge = "" if root else EDGE[t["link"]]
                if v in seen:
                    out.append((depth, edge + task_text(t, False) + " (cycle: back to the task above)"))
                    continue
                seen.add(v)
                extra = (" (running)" if t["running"] else "") + \
                        (" (in a cycle)" if root and t["in_cycle"] else "")
                out.append((depth, edge + task_text(t, False) + extra))
                for c in reversed(t["children"]):
                    stack.append((c, depth + 1, False))
    return out


def parse_tree(text):
    """(depth, label) of each task line of --format tree output."""
    out = []
    for line in text.split("\n"):
        for conn in ("\u251c\u2500\u2500 ", "\u2514\u2500\u2500 "):
            at = line.find(conn)
            if at >= 0 and at % 4 == 0 and all(c in " \u2502" for c in line[:at]):
                out.append((at // 4, line[at + 4:]))
                break
    return out


def main(argv):
    if len(argv) < 3:
        fail("usage: check_sample_json.py SCHEMA JSON [COLLAPSED [TREE]]")
    with open(argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    validator = jsonschema.Draft202012Validator(schema)
    if argv[2] == "--list":
        with open(argv[3], encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    check_one(validator, [argv[1]] + line.rstrip("\n").split("\t"))
    else:
        check_one(validator, argv[1:])


def check_one(v, argv):
    argv = [None] + argv
    global CURRENT
    CURRENT = argv[2]
    with open(argv[2], "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")  # strict: the output must be UTF-8
        doc = json.loads(text, object_pairs_hook=no_dup_keys, parse_constant=bad_constant)
    except (UnicodeDecodeError, ValueError) as e:
        fail("%s is not valid JSON: %s" % (argv[2], e))
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        fail("%s does not match the schema: %s at %s" %
             (argv[2], errors[0].message, list(errors[0].path)))
    check_consistency(doc)
    if len(argv) > 3 and argv[3] != "/dev/null":
        with open(argv[3], encoding="utf-8") as f:
            want = f.read().rstrip("\n").split("\n")
        got = collapsed_lines(doc)
        if got != want:
            for g, w in zip(got + [""] * len(want), want + [""] * len(got)):
                if g != w:
                    fail("collapsed differs:\n  json:      %s\n  collapsed: %s" % (g, w))
    if len(argv) > 4:
        with open(argv[4], encoding="utf-8") as f:
            want = parse_tree(f.read())
        got = tree_task_lines(doc)
        if got != want:
            fail("tree differs:\n  json: %r\n  tree: %r" % (got, want))


if __name__ == "__main__":
    main(sys.argv)
