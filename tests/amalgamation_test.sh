#!/bin/bash
# The amalgamation (//:amalgamation, tools/amalgamate.py) as a vendoring
# project receives it, compiled outside Bazel with the system's compilers:
#   - asyncunwind.c builds with gcc and clang, -std=c11 -Wall -Wextra
#     -Werror -pedantic, at -O0 and -O2 (at -O2 the compilers inline across
#     what were separate files and warn about more);
#   - asyncunwind.h compiles as C++11 with g++ and clang++ (echion and
#     dd-trace-py are C++), and a C++ program links against the C object;
#   - the object defines only au_-prefixed global symbols, has no writable
#     global data, and a program linked with it needs nothing but libc;
#   - every .c and internal header of core/ is in it, the flame graph
#     script and the layout tables included;
#   - AU_VERSION_STRING, au_version() and `asyncunwind --version` agree;
#   - tools/amalgamate.py refuses a header named like a system one.
#
# Usage (Bazel): amalgamation_test.sh ASYNCUNWIND_C ASYNCUNWIND_H TOOL
set -uo pipefail
. "$(dirname "$0")/testlib.sh"

amal_c=$(readlink -f "$1")
amal_h=$(readlink -f "$2")
tool=$3
# The vendored files sit side by side in the host's tree, nothing else.
mkdir -p "$tmp/v"
cp "$amal_c" "$amal_h" "$tmp/v/"
cd "$tmp/v" || exit 1

warn=(-std=c11 -Wall -Wextra -Werror -pedantic)

# ---- C: gcc and clang --------------------------------------------------------
for cc in gcc clang; do
  if ! command -v "$cc" >/dev/null; then skip "$cc not installed"; continue; fi
  for opt in -O0 -O2; do
    if "$cc" "${warn[@]}" "$opt" -c asyncunwind.c -o "core-$cc$opt.o" 2>"$tmp/cc.err"; then
      ok
    else
      bad "$cc $opt: $(head -c 3000 "$tmp/cc.err")"
    fi
  done
done

# ---- the public header as C++ ------------------------------------------------
cat >host.cc <<'EOF'
// A C++ host: the header's declarations must be valid C++ and have C
// linkage, so this links against the C object.
#include "asyncunwind.h"
#include <cstdio>
#include <cstring>
int main() {
    au_resolver *r = nullptr;
    if (au_resolver_new(nullptr, nullptr, &r) != AU_OK) return 1;
    au_resolver_free(r);
    std::printf("%s\n", au_version());
    return std::strcmp(au_version(), AU_VERSION_STRING) != 0;
}
EOF
for cxx in g++ clang++; do
  if ! command -v "$cxx" >/dev/null; then skip "$cxx not installed"; continue; fi
  if "$cxx" -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only host.cc 2>"$tmp/cxx.err"; then
    ok
  else
    bad "$cxx -std=c++11: $(head -c 3000 "$tmp/cxx.err")"
  fi
done
if [ -f core-gcc-O2.o ] && g++ -std=c++11 host.cc core-gcc-O2.o -o host_cxx 2>"$tmp/ld.err"; then
  if ./host_cxx >"$tmp/cxx.out"; then ok; else bad "the C++ host failed: $(cat "$tmp/cxx.out")"; fi
else
  bad "linking the C++ host: $(head -c 3000 "$tmp/ld.err" 2>/dev/null)"
fi

# ---- exported symbols: au_ only ----------------------------------------------
for o in core-gcc-O2.o core-clang-O2.o; do
  [ -f "$o" ] || continue
  nm -g --defined-only "$o" | awk '{print $3}' >"$tmp/syms"
  n=$(wc -l <"$tmp/syms")
  if [ "$n" -lt 100 ]; then bad "$o: only $n global symbols (the API has more)"; else ok; fi
  if grep -v '^au_' "$tmp/syms" >"$tmp/foreign"; then
    bad "$o exports symbols without the au_ prefix: $(head -20 "$tmp/foreign" | tr '\n' ' ')"
  else
    ok
  fi
done

# ---- no mutable globals ------------------------------------------------------
# The core keeps no global or static mutable state: every object, at every
# level and with both compilers, has empty writable data sections (.data,
# .bss and .data.rel.local; const tables of pointers land in .data.rel.ro,
# which is read-only once loaded).
for o in core-*.o; do
  size -A "$o" | awk '$1 ~ /^\.(data|bss|tbss|tdata)/ && $1 !~ /\.rel\.ro/ && $2 > 0 {print $1 " " $2}' >"$tmp/rw"
  if [ -s "$tmp/rw" ]; then bad "$o has writable data: $(tr '\n' ' ' <"$tmp/rw")"; else ok; fi
done

# ---- libc only ---------------------------------------------------------------
# A C program linked with nothing but the object and the compiler's
# defaults: it must link (no undefined symbol outside libc) and need only
# libc.so at run time.
cat >main.c <<'EOF'
#include <stdio.h>
#include "asyncunwind.h"
int main(void) { return puts(au_version()) < 0; }
EOF
if gcc "${warn[@]}" main.c core-gcc-O2.o -o host_c 2>"$tmp/ld.err"; then
  needed=$(readelf -d host_c | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  if [ "$needed" = "libc.so.6 " ]; then ok; else bad "needs more than libc: $needed"; fi
else
  bad "linking a C host: $(head -c 3000 "$tmp/ld.err")"
fi

# ---- completeness ------------------------------------------------------------
# Every file of core/ is named by a #line directive (or the include of the
# public header); a layer left out of LAYERS would fail here and in
# tools/amalgamate.py.
core=$(cd "$TEST_SRCDIR/${TEST_WORKSPACE:-__main__}/core" 2>/dev/null && pwd)
if [ -n "$core" ]; then
  while IFS= read -r f; do
    rel=${f#"$core/"}
    if [ "$rel" = asyncunwind.h ]; then continue; fi
    if grep -q "^#line 1 \"core/$rel\"$" asyncunwind.c; then ok; else bad "core/$rel is not in asyncunwind.c"; fi
  done < <(find -L "$core" -name '*.[ch]' | sort)
else
  bad "core/ not found in the runfiles"
fi
for what in "au_flamegraph_js.h" "pyoffsets_table.c" "pyprivate_table.c"; do
  if grep -q "^#line 1 \"core/.*/$what\"" asyncunwind.c; then ok; else bad "$what missing"; fi
done
# The tool refuses a header that could shadow a system one, and a folder
# that LAYERS leaves out (either would break the single file, or a host).
tool_py="$TEST_SRCDIR/${TEST_WORKSPACE:-__main__}/tools/amalgamate.py"
if [ -n "$core" ] && [ -f "$tool_py" ]; then
  cp -rL "$core" "$tmp/core-elf"
  touch "$tmp/core-elf/process/elf.h"
  if python3 "$tool_py" --core "$tmp/core-elf" "$tmp/out-elf" 2>"$tmp/elf.err"; then
    bad "amalgamate.py accepted core/process/elf.h"
  else
    want "$tmp/elf.err" "elf.h: internal headers are named au_<name>.h" "elf.h refused"
  fi
  cp -rL "$core" "$tmp/core-extra"
  mkdir "$tmp/core-extra/extra" && touch "$tmp/core-extra/extra/x.c"
  if python3 "$tool_py" --core "$tmp/core-extra" "$tmp/out-extra" 2>"$tmp/extra.err"; then
    bad "amalgamate.py left a folder out silently"
  else
    want "$tmp/extra.err" "extra holds sources but is not in LAYERS" "unlisted folder refused"
  fi
else
  bad "tools/amalgamate.py not found in the runfiles"
fi
# The public header is the core's, banner aside.
if grep -q "^#define AU_VERSION_STRING \"[0-9]*\.[0-9]*\.[0-9]*\"$" asyncunwind.h; then ok; else bad "no AU_VERSION_STRING"; fi

# ---- one version everywhere --------------------------------------------------
hv=$(sed -n 's/^#define AU_VERSION_STRING "\(.*\)"$/\1/p' asyncunwind.h)
major=$(sed -n 's/^#define AU_VERSION_MAJOR \([0-9]*\)$/\1/p' asyncunwind.h)
minor=$(sed -n 's/^#define AU_VERSION_MINOR \([0-9]*\)$/\1/p' asyncunwind.h)
patch=$(sed -n 's/^#define AU_VERSION_PATCH \([0-9]*\)$/\1/p' asyncunwind.h)
if [ "$hv" = "$major.$minor.$patch" ]; then ok; else bad "AU_VERSION_STRING $hv, parts $major.$minor.$patch"; fi
if [ -x host_c ] && [ "$(./host_c)" = "$hv" ]; then ok; else bad "au_version() is not $hv"; fi
cv=$(cd - >/dev/null && "$tool" --version)
case "$cv" in
  "asyncunwind $hv "*) ok ;;
  *) bad "asyncunwind --version says '$cv', the header $hv" ;;
esac

summary
