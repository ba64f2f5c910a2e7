#!/usr/bin/env python3
"""Summarize resolver_bench JSON output as a markdown table.

    bazel run -c opt //bench:resolver_bench -- --benchmark_repetitions=5 \
        --benchmark_report_aggregates_only=true \
        --benchmark_out=/tmp/rb.json --benchmark_out_format=json
    python3 bench/summarize_resolver.py /tmp/rb.json [more.json ...]

With repetitions, the median aggregate of each benchmark is used; with
several files (plain runs), the median across files.  Prints, for resolve/
(a fresh sample each call) and then resolve_repeat/ (one sample repeated),
per shape x size: ns/task, us/resolve (the timed call alone), allocs/resolve,
stacks, entries and ns/entry; then, for resolve/, the ns/task ratio
65536/256 per shape against the issue's targets.  write/ is left out.
"""
import json
import statistics
import sys
from collections import defaultdict

TO_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


def load(paths):
    runs = defaultdict(list)  # run_name -> [benchmark dict]
    for p in paths:
        with open(p) as f:
            data = json.load(f)
        for b in data["benchmarks"]:
            if b.get("error_occurred"):
                sys.exit(f"{p}: {b['name']} failed: {b.get('error_message')}")
            if b.get("run_type") == "aggregate":
                if b.get("aggregate_name") != "median":
                    continue
            runs[b["run_name"]].append(b)
    return runs


def med(bs, key):
    return statistics.median(float(b[key]) for b in bs)


KINDS = ("resolve", "resolve_repeat")


def main(paths):
    runs = load(paths)
    for kind in KINDS:
        table(kind, runs)


def table(kind, runs):
    rows = {}
    for name, bs in runs.items():
        # "<kind>/<shape>/<size>", plus "/manual_time" for the resolves
        parts = name.split("/")
        if len(parts) < 3 or parts[0] != kind:
            continue
        shape, size = parts[1], parts[2]
        rows[(shape, int(size))] = {
            "ns_task": med(bs, "ns_per_task"),
            "ns_entry": med(bs, "ns_per_entry"),
            "us": statistics.median(
                float(b["real_time"]) * TO_US[b["time_unit"]] for b in bs),
            "allocs": med(bs, "allocs"),
            "stacks": med(bs, "stacks"),
            "entries": med(bs, "entries"),
        }
    if not rows:
        return
    print(f"## {kind}/")
    print()
    shapes = []
    for shape, _ in rows:
        if shape not in shapes:
            shapes.append(shape)
    print("| shape | tasks | ns/task | us/resolve | allocs/resolve | stacks "
          "| entries | ns/entry |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for shape in shapes:
        for size in sorted(s for (sh, s) in rows if sh == shape):
            r = rows[(shape, size)]
            print(f"| {shape} | {size} | {r['ns_task']:.1f} | {r['us']:.2f} "
                  f"| {r['allocs']:g} | {r['stacks']:.0f} "
                  f"| {r['entries']:.0f} | {r['ns_entry']:.2f} |")
    print()
    if kind != "resolve":
        return  # the targets are about a fresh sample each call
    print("| shape | ns/task @4096 (<= 100) | ratio 65536/256 (<= 2) "
          "| max allocs/resolve (0) |")
    print("|---|---:|---:|---:|")
    for shape in shapes:
        at = {s: rows[(sh, s)] for (sh, s) in rows if sh == shape}
        a4096 = at.get(4096, {}).get("ns_task")
        ratio = (at[65536]["ns_task"] / at[256]["ns_task"]
                 if 65536 in at and 256 in at else None)
        allocs = max(r["allocs"] for r in at.values())

        def mark(ok):
            return "met" if ok else "MISSED"
        c1 = f"{a4096:.1f} {mark(a4096 <= 100)}" if a4096 else "-"
        c2 = f"{ratio:.2f} {mark(ratio <= 2)}" if ratio else "-"
        print(f"| {shape} | {c1} | {c2} | {allocs:g} {mark(allocs == 0)} |")
    print()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
