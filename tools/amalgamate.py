#!/usr/bin/env python3
"""amalgamate.py: the core as two files, asyncunwind.c and asyncunwind.h.

    tools/amalgamate.py [--core DIR] [--no-line] OUT_DIR

A host that vendors the core copies these two files and compiles one .c
with any C11 compiler: no build system, no include paths, no generated
files to regenerate (the layout tables and the flame graph script are
committed sources of core/ and come along).  docs/VENDORING.md is the
user's side of this; this is how the files are made.

  asyncunwind.h  core/asyncunwind.h with a banner: the public API, which
                 includes nothing but <stddef.h> and <stdint.h>.
  asyncunwind.c  every .c of core/, layer by layer in the order of
                 core/BUILD's LAYERS (a file calls only downward, so this
                 is also the order a reader wants), each internal header
                 inlined once, where it is first included.  It includes
                 "asyncunwind.h" rather than inlining it, so the
                 declarations a host sees and the ones the core is
                 compiled against are the same file.

#line directives (on by default) keep compiler messages, debuggers and
sanitizer reports pointing at core/<layer>/<file> lines; --no-line leaves
banners only.

Rules the single translation unit needs, checked here so that breaking one
is an error from this tool rather than a puzzle in a host's build:
  - every internal header is au_<name>.h and the names are unique across
    folders (includes are by bare name; see core/BUILD);
  - feature-test macros (_GNU_SOURCE, _POSIX_C_SOURCE, ...) act only before
    the first system header, so they are hoisted to the top of the file;
  - macros a .c file defines are private to it: each is #undef'd after the
    file, so two files may both define, say, NONE or CHUNK;
  - file-scope names of different .c files share one scope: static
    functions, static data and local types must not collide.  The compiler
    finds collisions; the amalgamation test compiles the output with gcc
    and clang.

Python 3 standard library only.
"""
import argparse
import os
import re
import sys

# The order data flows from the target up; core/BUILD says why.  Read from
# there, so that a new layer cannot be forgotten here.
LAYERS_RE = re.compile(r"^LAYERS = \[(.*?)\]", re.S | re.M)
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
SYS_INCLUDE_RE = re.compile(r"^\s*#\s*include\s+<")
DEFINE_RE = re.compile(r"^\s*#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)")
FEATURE_MACROS = ("_GNU_SOURCE", "_POSIX_C_SOURCE", "_DEFAULT_SOURCE",
                  "_XOPEN_SOURCE", "_BSD_SOURCE")
PUBLIC = "asyncunwind.h"


def die(msg):
    sys.stderr.write("amalgamate.py: %s\n" % msg)
    sys.exit(1)


def read_layers(core):
    with open(os.path.join(core, "BUILD")) as f:
        m = LAYERS_RE.search(f.read())
    if not m:
        die("no LAYERS list in %s/BUILD" % core)
    return re.findall(r'"([^"]+)"', m.group(1))


def scan(core, layers):
    """The .c files in amalgamation order, and every header by name."""
    sources, headers = [], {}
    for layer in layers:
        d = os.path.join(core, layer)
        if not os.path.isdir(d):
            die("layer %s has no folder" % layer)
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if name.endswith(".c"):
                sources.append(path)
            elif name.endswith(".h"):
                if not name.startswith("au_"):
                    die("%s: internal headers are named au_<name>.h, so that "
                        "none can shadow a system header (core/BUILD)" % path)
                if name in headers:
                    die("%s and %s: header names must be unique across "
                        "folders" % (headers[name], path))
                headers[name] = path
    # Folders not in LAYERS would be silently left out: refuse instead.
    for dirpath, _, files in os.walk(core):
        rel = os.path.relpath(dirpath, core)
        if rel == "." or rel.split(os.sep)[0] in layers:
            continue
        if any(f.endswith((".c", ".h")) for f in files):
            die("%s holds sources but is not in LAYERS" % dirpath)
    return sources, headers


class Amalgamation:
    def __init__(self, core, headers, lines):
        self.core = core
        self.headers = headers
        self.lines = lines        # emit #line directives
        self.out = []
        self.inlined = set()
        self.features = {}        # feature macro -> its definition line
        self.nbytes_in = 0

    def rel(self, path):
        return os.path.join("core", os.path.relpath(path, self.core))

    def mark(self, path, lineno):
        if self.lines:
            self.out.append('#line %d "%s"\n' % (lineno, self.rel(path)))

    def emit_file(self, path, private_macros=None):
        with open(path) as f:
            text = f.read()
        self.nbytes_in += len(text.encode())
        if not text.endswith("\n"):
            text += "\n"
        self.mark(path, 1)
        for lineno, line in enumerate(text.splitlines(True), 1):
            m = INCLUDE_RE.match(line)
            if m:
                name = m.group(1)
                if name == PUBLIC:
                    # Included once, at the top of the amalgamation.
                    self.out.append("/* %s: above */\n" % name)
                    continue
                if name not in self.headers:
                    die('%s:%d: "%s" is not a header of the core'
                        % (path, lineno, name))
                if name in self.inlined:
                    self.out.append("/* %s: above */\n" % name)
                    continue
                self.inlined.add(name)
                self.out.append("/* ---- %s, inlined ---- */\n"
                                % self.rel(self.headers[name]))
                self.emit_file(self.headers[name])
                self.mark(path, lineno + 1)
                continue
            d = DEFINE_RE.match(line)
            if d and d.group(1) in FEATURE_MACROS:
                # Hoisted (see the module comment); a blank line keeps the
                # numbering without a #line.
                prev = self.features.setdefault(d.group(1), line.split("/*")[0].strip())
                if prev != line.split("/*")[0].strip():
                    die("%s:%d: %s defined differently elsewhere (%s)"
                        % (path, lineno, d.group(1), prev))
                self.out.append("\n")
                continue
            if d and private_macros is not None:
                private_macros.append(d.group(1))
            self.out.append(line)

    def build(self, sources):
        body_start = len(self.out)
        for src in sources:
            macros = []
            self.out.append("\n/* ==== %s ==== */\n" % self.rel(src))
            self.emit_file(src, macros)
            # A .c file's macros end with it, as they would in its own
            # translation unit.  Header macros are shared and stay.
            for name in sorted(set(macros)):
                self.out.append("#undef %s\n" % name)
        body = self.out[body_start:]
        top = ["/* Feature-test macros of the core's files, hoisted: they act\n"
               " * only before the first system header. */\n"]
        for name in sorted(self.features):
            top.append("#ifndef %s\n%s\n#endif\n" % (name, self.features[name]))
        top.append('#include "%s"\n' % PUBLIC)
        return top + body


BANNER = """/*
 * %(file)s: the asyncunwind core as one file (an amalgamation).
 *
 * Generated by tools/amalgamate.py from core/; do not edit: change core/
 * and generate again.  %(what)s
 * See docs/VENDORING.md for how to vendor and configure it.
 */
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--core", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "core"))
    ap.add_argument("--no-line", action="store_true",
                    help="file banners only, no #line directives")
    ap.add_argument("out_dir")
    args = ap.parse_args()
    core = os.path.normpath(args.core)
    layers = read_layers(core)
    sources, headers = scan(core, layers)
    if not sources:
        die("no sources under %s" % core)

    am = Amalgamation(core, headers, not args.no_line)
    body = am.build(sources)
    unused = sorted(set(headers) - am.inlined)
    if unused:
        # Tests and fuzzers may use a header the core does not; the
        # amalgamation only needs what the core's .c files include.
        sys.stderr.write("amalgamate.py: not needed by the core, left out: %s\n"
                         % ", ".join(unused))

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(core, PUBLIC)) as f:
        public = f.read()
    with open(os.path.join(args.out_dir, "asyncunwind.h"), "w") as f:
        f.write(BANNER % {"file": "asyncunwind.h",
                          "what": "The public API, as core/asyncunwind.h."})
        f.write(public)
    with open(os.path.join(args.out_dir, "asyncunwind.c"), "w") as f:
        f.write(BANNER % {"file": "asyncunwind.c",
                          "what": "%d source files and %d internal headers."
                          % (len(sources), len(am.inlined))})
        f.writelines(body)


if __name__ == "__main__":
    main()
