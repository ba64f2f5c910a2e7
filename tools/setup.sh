#!/bin/bash
# Installs everything asyncunwind builds, tests and fuzzes with, on Debian
# bookworm (or Ubuntu with the same package names).  Idempotent: when all
# packages are already installed it touches nothing and takes well under a
# second, so .ci/run calls it every time.
set -euo pipefail

# Why each package is here:
packages=(
  bazel-bootstrap     # Bazel 4.2.3, works offline with the stubs in WORKSPACE
  gcc g++ libc6-dev   # the default toolchain (C11, and C++ benchmark shims)
  libcmocka-dev       # //third_party:cmocka
  libbenchmark-dev    # //third_party:benchmark (Google Benchmark)
  clang               # --config=clang, --config=fuzz, asan with clang
  libclang-rt-14-dev  # libFuzzer and clang's ASan/UBSan runtimes (clang-14
                      # does not depend on it)
  lld                 # the linker of --config=fuzz and --config=asan
  llvm                # llvm-symbolizer: file:line in sanitizer reports;
                      # llvm-profdata, llvm-cov: tools/coverage.sh
  afl++               # --config=afl: afl-clang-fast, afl-fuzz, libAFLDriver.a
  python3             # third_party/remote_coverage_tools/lcov_merger.py,
                      # tools/make_golden.py, python_fixtures/check_expected.py
  python3-jsonschema  # tests/check_sample_json.py: --format json against
                      # docs/schema/sample.schema.json
  debootstrap         # tools/sid_chroot.sh: sid chroot with CPython 3.14/3.15
  valgrind            # tests/faults_test.sh: memcheck of dump, record, replay
  util-linux          # unshare, setpriv, chroot: the live and CLI tests
  chromium            # tests/profile_outputs_test.sh: opens the SVG flame
                      # graph and speedscope's app headless
  nodejs              # tools/node_tools.sh: speedscope, ajv, playwright-core
  git
)

as_root() {
  if [[ "$(id -u)" == 0 ]]; then
    "$@"
  else
    sudo "$@"
  fi
}

missing=()
for p in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -gt 0 ]]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup.sh: all ${#packages[@]} packages already installed"
fi

# Debian sid chroot with CPython 3.14 and 3.15 (+ -dev headers, uvloop, anyio) for
# the live tests (tests/pythons.c): bookworm cannot run sid's interpreters
# (glibc >= 2.38), a chroot can.  Idempotent: ~0.4 s when complete, ~40-95 s
# to build.  Shared by all checkouts: /var/lib/asyncunwind/sid or
# $ASYNCUNWIND_SID_ROOT.
as_root env ASYNCUNWIND_SID_ROOT="${ASYNCUNWIND_SID_ROOT:-/var/lib/asyncunwind/sid}" \
  "$(cd "$(dirname "$0")" && pwd)/sid_chroot.sh"

# Debian's austin in that chroot, for the side-by-side benchmark
# (bench/austin_compare.sh); idempotent, ~0.1 s when present.
as_root env ASYNCUNWIND_SID_ROOT="${ASYNCUNWIND_SID_ROOT:-/var/lib/asyncunwind/sid}" \
  "$(cd "$(dirname "$0")" && pwd)/sid_austin.sh"

# Debian's nodejs comes without npm, which is its own package; a nodejs
# built elsewhere (NodeSource's) ships npm and conflicts with Debian's.
if ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends npm
fi

# npm packages the output tests use as real consumers (speedscope's importer
# and schema, ajv, playwright-core for chromium).  Shared by all checkouts:
# /var/lib/asyncunwind/node or $ASYNCUNWIND_NODE_ROOT.  Idempotent.
as_root env ASYNCUNWIND_NODE_ROOT="${ASYNCUNWIND_NODE_ROOT:-/var/lib/asyncunwind/node}" \
  "$(cd "$(dirname "$0")" && pwd)/node_tools.sh"
