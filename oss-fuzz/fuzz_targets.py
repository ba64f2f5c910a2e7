#!/usr/bin/env python3
"""Prints what oss-fuzz/build.sh compiles, read from the Bazel files.

The fuzz targets are declared once, in fuzz/BUILD through fuzz/fuzz.bzl's
au_fuzz_target, and OSS-Fuzz cannot run this project's Bazel (offline
Bazel 4.2.3 has no rules_fuzzing).  So this script evaluates those files
themselves, the way Bazel would for a clang build: fuzz.bzl's macro runs
unchanged against stand-ins for `native.*`, select() takes its clang
branch, glob() lists files.  A target added to fuzz/BUILD is therefore
built by build.sh with no edit there, with the same sources, copts and
include paths.  tools/ossfuzz_check.sh compares the result with
`bazel query`, so an evaluation that went wrong cannot go unnoticed.

    oss-fuzz/fuzz_targets.py [ROOT]

Output, one record a line, fields separated by single spaces:

    target NAME
    corpus DIR              (relative to ROOT)
    dict FILE               (only when the target has one)
    mutator FILE            (a source defining LLVMFuzzerCustomMutator)
    include DIR             (-I, relative to ROOT; "." is ROOT itself)
    src FILE [COPT ...]     (every C source of the target's closure)
    end

Only what Starlark shares with Python is needed; BUILD files here use
nothing else.  Python 3.6+ (OSS-Fuzz's base-builder has python3).
"""
import glob as _glob
import os
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), ".."))

# The config_setting fuzz/BUILD keys its clang-only copts on: OSS-Fuzz
# always builds with clang.
CLANG_KEYS = ("//fuzz:compiler_clang", ":compiler_clang")


class Select(object):
    def __init__(self, branches):
        self.branches = branches

    def pick(self):
        for key in CLANG_KEYS:
            if key in self.branches:
                return self.branches[key]
        # Engine selects (linkopts) never reach here: build.sh links with
        # $LIB_FUZZING_ENGINE instead.
        return self.branches["//conditions:default"]


def flat(value):
    """A list attribute, with any select() resolved."""
    if value is None:
        return []
    if isinstance(value, Select):
        return list(value.pick())
    return list(value)


class Package(object):
    """Evaluates one BUILD file and records its cc rules."""

    def __init__(self, repo, name):
        self.repo, self.name, self.rules = repo, name, {}
        self.dir = os.path.join(ROOT, name)

    def label(self, ref):
        if ref.startswith("//"):
            pkg, _, target = ref[2:].partition(":")
            return pkg, target or os.path.basename(pkg)
        return self.name, ref.lstrip(":")

    def rule(self, kind):
        def record(name, **attrs):
            attrs["kind"] = kind
            self.rules[name] = attrs
        return record

    def glob_(self, include, exclude=(), exclude_directories=1):
        found = set()
        for pattern in include:
            for path in _glob.glob(os.path.join(self.dir, pattern), recursive=True):
                if exclude_directories and os.path.isdir(path):
                    continue
                found.add(os.path.relpath(path, self.dir))
        for pattern in exclude:
            for path in _glob.glob(os.path.join(self.dir, pattern), recursive=True):
                found.discard(os.path.relpath(path, self.dir))
        return sorted(found)

    def native(self):
        pkg = self
        ignored = lambda *a, **k: None

        class Native(object):
            cc_library = staticmethod(pkg.rule("cc_library"))
            cc_binary = staticmethod(pkg.rule("cc_binary"))
            cc_test = staticmethod(ignored)
            filegroup = staticmethod(ignored)
            config_setting = staticmethod(ignored)
            constraint_setting = staticmethod(ignored)
            constraint_value = staticmethod(ignored)
            glob = staticmethod(pkg.glob_)

            @staticmethod
            def package_name():
                return pkg.name
        return Native

    def env(self):
        native = self.native()
        env = {
            "native": native, "select": Select, "glob": self.glob_,
            "package": lambda **k: None,
        }
        for name in dir(native):
            if not name.startswith("_"):
                env.setdefault(name, getattr(native, name))

        def load(bzl, *symbols):
            pkg, target = self.label(bzl)
            module = {"native": native, "select": Select}
            path = os.path.join(ROOT, pkg, target)
            exec(compile(open(path).read(), path, "exec"), module)
            for s in symbols:
                env[s] = module[s]
        env["load"] = load
        return env

    def evaluate(self):
        path = os.path.join(self.dir, "BUILD")
        exec(compile(open(path).read(), path, "exec"), self.env())
        return self


class Repo(object):
    def __init__(self):
        self.packages = {}

    def package(self, name):
        if name not in self.packages:
            self.packages[name] = Package(self, name).evaluate()
        return self.packages[name]

    def closure(self, pkg_name, target, seen=None):
        """Every cc rule target needs, itself first, each once."""
        seen = [] if seen is None else seen
        key = (pkg_name, target)
        if key in seen:
            return seen
        pkg = self.package(pkg_name)
        if target not in pkg.rules:
            sys.exit("fuzz_targets.py: //%s:%s is not a cc rule of %s/BUILD"
                     % (pkg_name, target, pkg_name))
        seen.append(key)
        for dep in flat(pkg.rules[target].get("deps")):
            if dep.startswith("@"):
                sys.exit("fuzz_targets.py: external dependency %s: build.sh"
                         " cannot build it without Bazel" % dep)
            self.closure(*pkg.label(dep), seen=seen)
        return seen


def main():
    repo = Repo()
    fuzz = repo.package("fuzz")
    fuzzers = sorted(n for n, r in fuzz.rules.items()
                     if r["kind"] == "cc_binary" and "au_fuzzer" in flat(r.get("tags")))
    if not fuzzers:
        sys.exit("fuzz_targets.py: no target tagged au_fuzzer in fuzz/BUILD")
    out = []
    for binary in fuzzers:
        tags = dict(t.partition("=")[::2] for t in flat(fuzz.rules[binary].get("tags")))
        out.append("target " + binary)
        out.append("corpus " + tags["au_corpus"])
        if tags.get("au_dict"):
            out.append("dict " + tags["au_dict"])
        includes, sources = ["."], []
        for pkg_name, target in repo.closure("fuzz", binary):
            rule = repo.package(pkg_name).rules[target]
            for inc in flat(rule.get("includes")):
                path = os.path.normpath(os.path.join(pkg_name, inc))
                if path not in includes:
                    includes.append(path)
            copts = flat(rule.get("copts"))
            for src in flat(rule.get("srcs")):
                if src.endswith(".c"):
                    sources.append(" ".join([os.path.join(pkg_name, src)] + copts))
        harness = fuzz.rules.get(binary[:-len("_fuzzer")] + "_harness", {})
        mutator_so = tags.get("au_afl_mutator")
        if mutator_so:
            # The mutator source is the one the .so adds to afl_mutator.c.
            so = fuzz.rules[os.path.basename(mutator_so)]
            for src in flat(so.get("srcs")):
                if src != "afl_mutator.c" and src in flat(harness.get("srcs")):
                    out.append("mutator fuzz/" + src)
        out += ["include " + i for i in includes]
        out += ["src " + s for s in sources]
        out.append("end")
    print("\n".join(out))


if __name__ == "__main__":
    main()
