#!/bin/bash -eu
# OSS-Fuzz build script for asyncunwind: builds every fuzz target of
# fuzz/BUILD (the au_fuzz_target rules) with $CC $CFLAGS, links each with
# $LIB_FUZZING_ENGINE, and installs its seed corpus, dictionary and options
# into $OUT.  No Bazel: OSS-Fuzz's Bazel support needs rules_fuzzing, which
# this project's offline Bazel 4.2.3 cannot fetch.
#
# The targets, their sources, copts and include paths are not listed here:
# oss-fuzz/fuzz_targets.py reads them from fuzz/BUILD and fuzz/fuzz.bzl, so
# build.sh follows every target added there.  tools/ossfuzz_check.sh runs
# this script the way OSS-Fuzz does for each engine and sanitizer, and
# checks the list against `bazel query`.
#
# Environment (set by OSS-Fuzz's base-builder): CC, CXX, CFLAGS, CXXFLAGS,
# LIB_FUZZING_ENGINE, SRC, OUT, WORK.  Optional: ASYNCUNWIND_SRC (the
# checkout; default $SRC/asyncunwind), JOBS (parallel compiles).

root="${ASYNCUNWIND_SRC:-$SRC/asyncunwind}"
jobs="${JOBS:-$(nproc)}"
objdir="$WORK/asyncunwind-obj"
rm -rf "$objdir"
mkdir -p "$objdir" "$OUT"
cd "$root"

manifest="$WORK/asyncunwind-targets.txt"
python3 oss-fuzz/fuzz_targets.py "$root" >"$manifest"

# The C dialect fuzz/BUILD's libraries are built with (.bazelrc's
# --conlyopt).  No -Werror: a newer clang on OSS-Fuzz must not fail the
# build over a new warning; CI's own builds keep -Werror.
c_flags=(-std=c11)

# Compiles SRC [COPT...] into an object named after the path and copts,
# once per build even when several targets use it (the whole core is in
# every target).  Prints the object's path.
object_of() {
  local key="$*"
  key="${key//\//_}"
  key="${key// /}"
  echo "$objdir/${key}.o"
}

compile() {  # OBJ SRC [COPT...] -- then include flags come from $incs
  local obj="$1" src="$2"
  shift 2
  # $CFLAGS unquoted: it is a list of flags.
  # shellcheck disable=SC2086
  $CC $CFLAGS "${c_flags[@]}" "${incs[@]}" "$@" -c "$src" -o "$obj"
}

# Jobs run in the background, at most $jobs at a time; a failed compile
# fails the build at the next wait.
pids=()
wait_all() {
  local pid status=0
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  pids=()
  [[ "$status" == 0 ]] || { echo "build.sh: a compile failed" >&2; exit 1; }
}
spawn() {
  "$@" </dev/null &
  pids+=("$!")
  [[ ${#pids[@]} -lt "$jobs" ]] || wait_all
}

# First pass: compile every object; second pass: link and install.  Each
# object's include paths are those of the target it first appears in:
# the same for every target here (the repository root and core/'s
# folders), as under Bazel.
declare -A compiled=()
incs=()
while read -r kind rest; do
  case "$kind" in
    target) incs=() ;;
    include) incs+=("-I$root/$rest") ;;
    src)
      read -r -a words <<<"$rest"
      obj="$(object_of "$rest")"
      if [[ -z "${compiled[$obj]:-}" ]]; then
        compiled[$obj]=1
        spawn compile "$obj" "${words[@]}"
      fi
      ;;
  esac
done <"$manifest"
wait_all

# Seed corpora are zipped flat (one file per input), as OSS-Fuzz expects;
# python3's zipfile needs no zip package in the image.
zip_corpus() {  # DIR ZIP
  local files=()
  mapfile -t files < <(find "$1" -maxdepth 1 -type f ! -name '.*' | sort)
  rm -f "$2"
  [[ ${#files[@]} -gt 0 ]] || return 0
  python3 -m zipfile -c "$2" "${files[@]}"
}

built=()
while read -r kind rest; do
  case "$kind" in
    target) name="$rest" objs=() corpus="" dict="" ;;
    corpus) corpus="$rest" ;;
    dict) dict="$rest" ;;
    src) objs+=("$(object_of "$rest")") ;;
    end)
      # Linked by $CXX: libFuzzer itself is C++.
      # shellcheck disable=SC2086
      $CXX $CXXFLAGS "${objs[@]}" $LIB_FUZZING_ENGINE -o "$OUT/$name"
      [[ -z "$corpus" ]] || zip_corpus "$corpus" "$OUT/${name}_seed_corpus.zip"
      [[ -z "$dict" ]] || cp "$dict" "$OUT/$name.dict"
      if [[ -f "oss-fuzz/$name.options" ]]; then
        cp "oss-fuzz/$name.options" "$OUT/$name.options"
      fi
      built+=("$name")
      ;;
  esac
done <"$manifest"

# An options file for a target that no longer exists is a mistake to hear
# about, not to ship.
for opts in oss-fuzz/*.options; do
  [[ -e "$opts" ]] || continue
  name="$(basename "$opts" .options)"
  [[ -f "$OUT/$name" ]] || { echo "build.sh: $opts names no fuzz target" >&2; exit 1; }
done
echo "build.sh: built ${#built[@]} fuzz targets into $OUT: ${built[*]}"
