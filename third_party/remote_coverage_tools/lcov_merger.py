#!/usr/bin/env python3
"""Bazel's per-test coverage merger, for gcc 12.

Bazel's collect_cc_coverage.sh runs `gcov -i`, which since gcc 9 writes one
*.gcov.json.gz per object into --coverage_dir.  Bazel's real merger (a Java
tool it would download) turns those into lcov; this does the same for the
parts we use: line and function counts.  Any *.dat file already in lcov form
(clang's llvm-cov path) is merged too.  Records for the same source file
(e.g. a header seen by several objects) are summed.
"""

import argparse
import collections
import gzip
import json
import os
import re
import sys


def parse_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--coverage_dir", required=True)
    p.add_argument("--output_file", required=True)
    p.add_argument("--filter_sources", action="append", default=[])
    p.add_argument("--source_file_manifest")
    # Anything newer Bazels add is ignored rather than fatal.
    args, _ = p.parse_known_args(argv)
    return args


class Cov:
    def __init__(self):
        self.lines = collections.defaultdict(lambda: collections.Counter())
        self.fns = collections.defaultdict(dict)  # file -> name -> [line, n]

    def line(self, path, num, count):
        self.lines[path][num] += count

    def fn(self, path, name, line, count):
        entry = self.fns[path].setdefault(name, [line, 0])
        entry[1] += count


def read_gcov_json(path, cov):
    with gzip.open(path, "rt") as f:
        doc = json.load(f)
    for src in doc.get("files", []):
        name = src["file"]
        for fn in src.get("functions", []):
            cov.fn(name, fn.get("demangled_name") or fn["name"],
                   fn["start_line"], fn.get("execution_count", 0))
        for ln in src.get("lines", []):
            cov.line(name, ln["line_number"], ln["count"])


def read_lcov(path, cov):
    name = None
    with open(path) as f:
        for raw in f:
            key, _, val = raw.strip().partition(":")
            if key == "SF":
                name = val
            elif key == "DA" and name:
                num, count = val.split(",")[:2]
                cov.line(name, int(num), int(count))
            elif key == "FN" and name:
                num, fname = val.split(",", 1)
                cov.fn(name, fname, int(num), 0)
            elif key == "FNDA" and name:
                count, fname = val.split(",", 1)
                cov.fn(name, fname, 0, int(count))


def manifest_sources(path):
    """Source files Bazel instrumented, or None to keep everything."""
    if not path or not os.path.exists(path):
        return None
    exts = (".c", ".h", ".cc", ".cpp", ".cxx", ".hh", ".hpp", ".inc")
    with open(path) as f:
        srcs = {l.strip() for l in f if l.strip().endswith(exts)}
    return srcs or None


def write_lcov(cov, out, keep):
    with open(out, "w") as f:
        for name in sorted(set(cov.lines) | set(cov.fns)):
            if not keep(name):
                continue
            f.write("SF:%s\n" % name)
            fns = cov.fns.get(name, {})
            for fname, (line, _) in sorted(fns.items()):
                f.write("FN:%d,%s\n" % (line, fname))
            for fname, (_, n) in sorted(fns.items()):
                f.write("FNDA:%d,%s\n" % (n, fname))
            f.write("FNF:%d\nFNH:%d\n" % (
                len(fns), sum(1 for _, n in fns.values() if n)))
            lines = cov.lines.get(name, {})
            for num in sorted(lines):
                f.write("DA:%d,%d\n" % (num, lines[num]))
            f.write("LF:%d\nLH:%d\n" % (
                len(lines), sum(1 for n in lines.values() if n)))
            f.write("end_of_record\n")


def main(argv):
    args = parse_args(argv)
    out = os.path.abspath(args.output_file)
    cov = Cov()
    for root, _, files in os.walk(args.coverage_dir):
        for fn in sorted(files):
            path = os.path.join(root, fn)
            if fn.endswith(".gcov.json.gz"):
                read_gcov_json(path, cov)
            elif fn.endswith(".dat") and os.path.abspath(path) != out:
                read_lcov(path, cov)
    filters = [re.compile(r) for r in args.filter_sources]
    srcs = manifest_sources(args.source_file_manifest)

    def keep(name):
        if any(r.match(name) for r in filters):
            return False
        return srcs is None or name in srcs

    write_lcov(cov, out, keep)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
