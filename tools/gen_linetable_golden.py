#!/usr/bin/env python3
"""Golden line-table data from a real CPython, for tests/linetable_test.c.

Run it with each interpreter whose line-table format asyncunwind decodes:

    for py in ~/.pyenv/versions/3.{9.18,10.13,11.7,12.1,13.0}/bin/python3 \
              /usr/bin/python3.11; do
        $py tools/gen_linetable_golden.py --out tests/data/linetable \
            --corpus corpus
    done
    # 3.14 and 3.15 from the sid chroot of tools/sid_chroot.sh
    # (ROOT=/var/lib/asyncunwind/sid): the script needs nothing but itself,
    #   cp tools/gen_linetable_golden.py $ROOT/tmp/
    #   chroot $ROOT /usr/bin/python3.14 /tmp/gen_linetable_golden.py \
    #       --out /tmp/lt --corpus /tmp/corpus
    # then copy $ROOT/tmp/lt/* and $ROOT/tmp/corpus/* back into the tree.

It compiles a set of tricky functions (long bodies with jumps over more than
255 lines, large negative line deltas, lines more than 2^16 apart, multi-line
expressions, comprehensions, try/except/finally, with, generators, async
code, huge co_firstlineno, ...), and asks CPython itself for the line of
every instruction: PyCode_Addr2Line(code, byte_offset) through ctypes, the
very function behind frame.f_lineno.  Each answer is cross-checked against
the public API (co_lines() on 3.10+, dis.findlinestarts() on 3.9).  It then
runs some of the functions and records (f_lasti, f_lineno) of real frames,
suspended generators and coroutines included.

Output: <out>/<python version>/golden.txt, a text file of records:

    python <version>
    kind <1|2|3>            # au_linetable_kind
    code <label> <firstlineno> <ncodeunits> <nquery> <table as hex, or ->
    lines <RLE>             # expected line of offsets 0 .. nquery-1, in code
                            # units; RLE tokens are LINE or LINE*COUNT;
                            # nquery - ncodeunits offsets lie past the end
    probe <offset> <line>   # an extra offset (far past the end)
    frame <offset> <line>   # a live frame of this code: f_lasti // 2, and
                            # frame.f_lineno as CPython reported it

`lines`, `probe` and `frame` records refer to the latest `code` record.

With --corpus DIR it also writes fuzz seeds to DIR/<kind name>/: the input
layout of fuzz/linetable_fuzz.c (int32 LE firstlineno, uint32 LE offset,
then the table bytes).

With --stdlib it also adds every code object of the standard library's
top-level modules (a much larger check; meant for --out outside the tree).
"""

import argparse
import ctypes
import dis
import hashlib
import os
import platform
import struct
import sys
import sysconfig
import types
import warnings

V = sys.version_info[:2]
if (3, 6) <= V < (3, 10):
    KIND, KIND_NAME = 1, "lnotab"
elif V == (3, 10):
    KIND, KIND_NAME = 2, "linetable310"
elif V >= (3, 11):
    KIND, KIND_NAME = 3, "locations"
else:
    sys.exit("unsupported Python %d.%d" % V)

# PyCode_Addr2Line(code, byte_offset): the C function frame.f_lineno uses
# (3.9: f_lasti is a byte offset; 3.10: f_lasti * 2; 3.11+: LASTI * 2).
_a2l = ctypes.pythonapi.PyCode_Addr2Line
_a2l.argtypes = [ctypes.py_object, ctypes.c_int]
_a2l.restype = ctypes.c_int

# How many offsets past the end of the bytecode to ask about.  CPython's
# release builds walk the table for them like for any other offset (only a
# debug build asserts), and the answer pins down our boundary semantics.
PAST_END = 3 if not sysconfig.get_config_var("Py_DEBUG") else 0
FAR_PROBE = 0x3FFFFFFF  # 2 * FAR_PROBE still fits CPython's int argument


def table_of(code):
    return code.co_lnotab if KIND == 1 else code.co_linetable


def label_of(code):
    name = getattr(code, "co_qualname", code.co_name)
    return "".join(c if c.isalnum() or c in "._<>" else "_" for c in name)


def walk_codes(code):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from walk_codes(c)


def expected_lines(code, nquery):
    return [_a2l(code, 2 * u) for u in range(nquery)]


def cross_check(code, lines):
    """The public API must agree with PyCode_Addr2Line on every unit."""
    nunits = len(code.co_code) // 2
    if KIND == 1:
        starts = dict(dis.findlinestarts(code))
        cur = code.co_firstlineno
        for u in range(nunits):
            cur = starts.get(2 * u, cur)
            if cur != lines[u]:
                raise SystemExit("%s: findlinestarts says %d at unit %d, "
                                 "Addr2Line %d" % (label_of(code), cur, u,
                                                   lines[u]))
        return
    seen = [None] * nunits
    for start, end, line in code.co_lines():
        for b in range(start, end, 2):
            if b // 2 < nunits:
                seen[b // 2] = -1 if line is None else line
    for u in range(nunits):
        want = -1 if seen[u] is None else seen[u]
        if want != lines[u]:
            raise SystemExit("%s: co_lines says %d at unit %d, Addr2Line %d"
                             % (label_of(code), want, u, lines[u]))


def rle(values):
    out, i = [], 0
    while i < len(values):
        j = i
        while j < len(values) and values[j] == values[i]:
            j += 1
        out.append(str(values[i]) if j - i == 1 else "%d*%d" % (values[i], j - i))
        i = j
    return " ".join(out)


# --- The tricky functions ---------------------------------------------------

def indent(lines, n):
    return "\n".join(" " * n + l if l else l for l in lines)


def sparse_body():
    """A block that spans more than 255 lines and holds one line of more than
    255 bytes of bytecode, in few bytes of table: line deltas > 127 and
    address deltas > 255 (split over several pairs in 3.9 and 3.10).  From
    3.11 on an entry covers at most 8 code units whatever the line, and each
    instruction of the tuple gets an entry of its own (columns differ), so a
    short tuple keeps the golden files small there."""
    width = 140 if KIND < 3 else 12
    return ([""] * 150 + ["x0 = (" + ", ".join(["i"] * width) + ")"]
            + [""] * 150 + ["x1 = x0[0] + 1"])


def src_long_jumps():
    """Loops, with and try/finally around bodies longer than 255 lines:
    forward and backward jumps over them, large negative line deltas (the
    with-exit and finally copies point back to their header line)."""
    body = sparse_body()
    return "\n".join([
        "def long_jumps(n):",
        "    total = 0",
        "    for i in range(n):",
        "        if i % 3 == 0:",
        "            continue",
        indent(body, 8),
        "        total += x1",
        "    with open(__file__) as fh:",
        indent(body, 8),
        "        total += len(fh.read(1))",
        "    try:",
        indent(body, 8),
        "    finally:",
        "        total -= 1",
        "    while total < n:",
        indent(body, 8),
        "        if x1 > 5:",
        "            break",
        "        total += 1",
        "    return total",
        "",
    ])


def src_far_lines():
    """Lines more than 2^16 apart, both directions, inside one function."""
    gap = "\n" * 66000
    return (
        "def far_apart(a, b):\n"
        "    x = a\n" + gap +
        "    return max(x,\n" + gap +
        "               b)\n")


def src_multiline():
    return '''
def multiline(a, b, c):
    result = (
        a
        + b
        * c
    )
    value = dict(
        a=a,
        b=[
            x
            for x in c
        ],
        c={k: v
           for k, v in
           zip(a, b)},
    )
    s = f"""{a}
{b!r:>{
    c}}"""
    return result if (
        a
    ) else value, s


def comprehensions(rows):
    flat = [c for r in rows for c in r if c]
    uniq = {c
            for c in flat}
    index = {c: i for i, c in enumerate(flat)}
    lazy = (c * 2 for c in flat
            if c > 1)
    nested = [[y for y in range(x)] for x in range(3)]
    return flat, uniq, index, list(lazy), nested


lam = lambda a, b=(
    1): (a,
         b)


class Klass:
    attr = [i for i in range(3)]

    def method(self):
        return super().method()

    @staticmethod
    @property
    def deco():
        pass
'''


def src_exceptions():
    return '''
def exceptions(f):
    try:
        f()
    except ValueError as e:
        print(e)
    except (KeyError,
            IndexError):
        raise
    except Exception:
        try:
            f()
        finally:
            print("inner")
    else:
        return 1
    finally:
        print("outer")
    try:
        pass
    finally:
        with open(f) as a, \\
                open(f) as b:
            return a, b
'''


def src_generators():
    return '''
def gen(n):
    yield 1
    x = yield from range(n)
    for i in range(
            n):
        yield (i,
               x)
    return x


async def coro(session, urls):
    async with session as s:
        async for u in s.iter(urls):
            await s.get(
                u)
    r = [await s.get(u) for u in urls]
    return await asyncio.gather(*[
        s.get(u) for u in urls
    ])


async def agen(n):
    for i in range(n):
        yield i
        await asyncio.sleep(0)
'''


def src_new_syntax():
    parts = []
    if V >= (3, 10):
        parts.append('''
def matcher(cmd):
    match cmd.split():
        case ["go", direction]:
            return direction
        case ["drop", *objs] if objs:
            return objs
        case {"x": x,
              "y": y}:
            return x + y
        case Point(x=0, y=0) | None:
            return 0
        case _:
            return None
''')
    if V >= (3, 11):
        parts.append('''
def star_except(f):
    try:
        f()
    except* ValueError as eg:
        print(eg)
    except* (KeyError, OSError):
        pass
''')
    if V >= (3, 12):
        parts.append('''
def generic[T: int, *Ts, **P](x: T) -> T:
    type Alias[U] = list[U]
    return x


class Box[T]:
    def get(self) -> T:
        return self.v
''')
    return "\n".join(parts) or "pass\n"


def src_big_firstlineno():
    """co_firstlineno of 100000, from real source padding."""
    return "\n" * 99999 + '''def big_first(a):
    b = a + 1
    for i in range(b):
        b -= i
    return b
'''


SOURCES = [
    ("long_jumps", src_long_jumps),
    ("far_lines", src_far_lines),
    ("multiline", src_multiline),
    ("exceptions", src_exceptions),
    ("generators", src_generators),
    ("new_syntax", src_new_syntax),
    ("big_firstlineno", src_big_firstlineno),
]

# --- Live frames -------------------------------------------------------------
# Run code and record (code, f_lasti, f_lineno) of real frames: the caller of
# snap(), and suspended generator / coroutine frames.

LIVE = '''
import sys

def snap():
    f = sys._getframe(1)
    FRAMES.append((f.f_code, f.f_lasti, f.f_lineno))
    return 0

def live_long(n):
    total = 0
    for i in range(n):
%(body)s
        total += snap()
    with Ctx():
%(body)s
        snap()
    try:
        raise KeyError(n)
    except KeyError:
%(body)s
        snap()
    finally:
        snap()
    return total

class Ctx:
    def __enter__(self):
        snap()
        return self
    def __exit__(self, *a):
        snap()

def live_far(a):
    x = snap()
%(gap)s
    return max(x,
%(gap)s
               snap(), a)

def live_multiline(a):
    return [
        a,
        snap(),
        {
            "k": snap() +
                 snap(),
        },
    ]

def live_comprehension(n):
    return [snap() for _ in range(n)], {k: snap() for k in range(n)}

def live_gen(n):
    yield 1
    for i in range(n):
        yield (i,
               snap())
    try:
        yield "try"
    finally:
        yield "finally"

class Sleep:
    def __await__(self):
        yield

async def live_inner():
    await Sleep()
    snap()
    await Sleep()
    return 1

async def live_coro():
    await Sleep()
    x = await live_inner()
    async with ACtx():
        await Sleep()
    return [await live_inner()
            for _ in range(2)]

class ACtx:
    async def __aenter__(self):
        await Sleep()
    async def __aexit__(self, *a):
        await Sleep()

def live_big_first(n):
    snap()
    for i in range(n):
        snap()
    return n
'''


def run_live():
    body = indent(sparse_body(), 8)
    src = LIVE % {"body": body, "gap": "\n" * 66000}
    ns = {"FRAMES": []}
    exec(compile(src, "<live>", "exec"), ns)
    frames = ns["FRAMES"]
    suspended = []

    def note(frame):
        if frame is not None and frame.f_lasti >= 0:
            suspended.append((frame.f_code, frame.f_lasti, frame.f_lineno))

    ns["live_long"](4)
    ns["live_far"](1)
    ns["live_multiline"](1)
    ns["live_comprehension"](2)
    g = ns["live_gen"](2)
    note(g.gi_frame)  # fresh: f_lasti is -1 before 3.11 (skipped)
    for _ in g:
        note(g.gi_frame)
    c = ns["live_coro"]()
    while True:
        note(c.cr_frame)
        inner = c.cr_await
        # The awaited chain: live_inner's own frame when it is suspended.
        while inner is not None and hasattr(inner, "cr_frame"):
            note(inner.cr_frame)
            inner = inner.cr_await
        try:
            c.send(None)
        except StopIteration:
            break
    # co_firstlineno near INT32_MAX: lines CPython reports stay below it.
    code = ns["live_big_first"].__code__
    big = code.replace(co_firstlineno=2**31 - 1 - 100)
    types.FunctionType(big, ns)(2)
    return frames + suspended


# --- Output -----------------------------------------------------------------

def code_record(out, code, label_prefix, frames=()):
    nunits = len(code.co_code) // 2
    nquery = nunits + PAST_END
    lines = expected_lines(code, nquery)
    cross_check(code, lines)
    table = table_of(code)
    out.append("code %s%s %d %d %d %s" % (
        label_prefix, label_of(code), code.co_firstlineno, nunits, nquery,
        table.hex() or "-"))
    out.append("lines " + rle(lines))
    if PAST_END:
        out.append("probe %d %d" % (FAR_PROBE, _a2l(code, 2 * FAR_PROBE)))
    for lasti, lineno in frames:
        if lasti % 2:
            raise SystemExit("odd f_lasti %d" % lasti)
        # frame.f_lineno is None for "no line" in 3.10+; tracing is off, so
        # it must be PyCode_Addr2Line's answer.
        want = -1 if lineno is None else lineno
        if _a2l(code, lasti) != want:
            raise SystemExit("%s: f_lineno %r but Addr2Line %d at %d" % (
                label_of(code), lineno, _a2l(code, lasti), lasti))
        out.append("frame %d %d" % (lasti // 2, want))


def write_seed(corpus, code, version):
    table = table_of(code)
    nunits = len(code.co_code) // 2
    first = code.co_firstlineno
    # An offset in the middle: the walk then reads about half the table.
    seed = struct.pack("<iI", first, nunits // 2) + table
    d = os.path.join(corpus, KIND_NAME)
    os.makedirs(d, exist_ok=True)
    digest = hashlib.sha1(seed).hexdigest()[:12]
    if any(n.endswith(digest) for n in os.listdir(d)):
        return  # the same seed from another interpreter of the same format
    name = "%s-%s" % (version, digest)
    with open(os.path.join(d, name), "wb") as f:
        f.write(seed)


def stdlib_codes():
    base = sysconfig.get_paths()["stdlib"]
    for name in sorted(os.listdir(base)):
        if not name.endswith(".py"):
            continue
        path = os.path.join(base, name)
        try:
            with open(path, "rb") as f:
                yield name, compile(f.read(), path, "exec")
        except (SyntaxError, ValueError, OSError):
            continue


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--corpus")
    ap.add_argument("--stdlib", action="store_true")
    args = ap.parse_args()

    version = platform.python_version()
    out = [
        "# Generated by tools/gen_linetable_golden.py; do not edit.",
        "# %s" % sys.version.replace("\n", " "),
        "python %s" % version,
        "kind %d" % KIND,
    ]
    # 3.14+ warns about `return` in `finally` (PEP 765); we compile it on
    # purpose.
    warnings.simplefilter("ignore", SyntaxWarning)
    compiled = []  # (label, code, whether to include nested code objects)
    for name, make in SOURCES:
        compiled.append((name, compile(make(), "<%s>" % name, "exec"), True))
    # co_firstlineno near INT32_MAX with a real table (the lines it gives
    # stay below INT32_MAX, as they must in CPython's int arithmetic).
    small = compile(src_exceptions(), "<big>", "exec")
    for c in small.co_consts:
        if isinstance(c, types.CodeType):
            compiled.append(("int32max",
                             c.replace(co_firstlineno=2**31 - 1000), False))
    if args.stdlib:
        compiled.extend((n, c, True) for n, c in stdlib_codes())

    live = {}
    for code, lasti, lineno in run_live():
        live.setdefault(code, []).append((lasti, lineno))

    seen = set()
    for name, module, nested in compiled:
        for code in (walk_codes(module) if nested else [module]):
            if id(code) in seen:
                continue
            seen.add(id(code))
            code_record(out, code, name + ":")
            if args.corpus and not args.stdlib:
                write_seed(args.corpus, code, version)
    for code, frames in live.items():
        code_record(out, code, "live:", frames)
        if args.corpus:
            write_seed(args.corpus, code, version)

    d = os.path.join(args.out, version)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "golden.txt")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    nframes = sum(len(v) for v in live.values())
    print("%s: %d code objects, %d live frames -> %s (%d bytes)" % (
        version, len(seen) + len(live), nframes, path, os.path.getsize(path)))


if __name__ == "__main__":
    main()
