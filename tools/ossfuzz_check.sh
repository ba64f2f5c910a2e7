#!/bin/bash
# Runs oss-fuzz/build.sh as OSS-Fuzz does, for each engine and sanitizer
# of oss-fuzz/project.yaml, then every built target on its seed corpus.
# CI runs it; so can you:
#
#   tools/ossfuzz_check.sh [-t SECONDS] [-k DIR] [-B] [CONFIG ...]
#
#   CONFIG      libfuzzer-address, libfuzzer-undefined, libfuzzer-memory,
#               afl-address (default: all four, in that order)
#   -t SECONDS  fuzzing time per target after its seeds ran (default 3)
#   -k DIR      keep OUT, WORK and the logs of each config in DIR/CONFIG
#               (default: a temporary directory, removed when all passed)
#   -B          skip the comparison of build.sh's targets and sources with
#               `bazel query` (for machines without Bazel)
#
# What it checks, failing loudly on the first problem of each config:
#   - build.sh builds exactly the targets Bazel builds (tag au_fuzzer),
#     each from the same C sources (`bazel query deps(...)`);
#   - build.sh succeeds with OSS-Fuzz's environment: CC, CXX, CFLAGS,
#     CXXFLAGS (base-builder's flags for the sanitizer), LIB_FUZZING_ENGINE,
#     SRC, OUT, WORK, SANITIZER, FUZZING_ENGINE, FUZZING_LANGUAGE;
#   - each target has its <target>_seed_corpus.zip, and runs every seed and
#     then fuzzes for SECONDS with its .dict and .options (libFuzzer), or
#     runs every seed through the AFL++ driver and then fuzzes under
#     afl-fuzz for SECONDS; any crash, leak, timeout or sanitizer report
#     fails the check.
# Differences from OSS-Fuzz's images: Debian's clang 14 and AFL++ 4.04c
# instead of OSS-Fuzz's pinned builds, and no -stdlib=libc++ (Debian has
# no MSan-built libc++; nothing here is C++ but libFuzzer itself, which
# carries its own).
set -euo pipefail

seconds=3 keep="" query=1
usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "t:k:Bh" opt; do
  case "$opt" in
    t) seconds="$OPTARG" ;;
    k) keep="$OPTARG" ;;
    B) query=0 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
configs=("$@")
[[ ${#configs[@]} -gt 0 ]] ||
  configs=(libfuzzer-address libfuzzer-undefined libfuzzer-memory afl-address)

cd "$(dirname "$0")/.."
root="$(pwd)"

if [[ -n "$keep" ]]; then
  mkdir -p "$keep"
  top="$(cd "$keep" && pwd)"
else
  top="$(mktemp -d "${TMPDIR:-/tmp}/ossfuzz.XXXXXX")"
fi

die() {
  echo "ossfuzz_check: FAIL: $*" >&2
  echo "ossfuzz_check: logs and outputs kept in $top" >&2
  exit 1
}

# --- build.sh's targets and sources against Bazel's ------------------------
manifest="$top/targets.txt"
python3 oss-fuzz/fuzz_targets.py "$root" >"$manifest"
mapfile -t targets < <(sed -n 's/^target //p' "$manifest")
echo "ossfuzz_check: build.sh builds ${#targets[@]} targets: ${targets[*]}"
if [[ "$query" == 1 ]]; then
  # Assigned first, so that a failing query fails the check.
  bazel_targets="$(bazel query 'attr(tags, au_fuzzer, //...)' 2>/dev/null)"
  want="$(sed 's/^\/\/fuzz://' <<<"$bazel_targets" | sort)"
  have="$(printf '%s\n' "${targets[@]}" | sort)"
  if [[ "$want" != "$have" ]]; then
    diff <(echo "$want") <(echo "$have") | sed 's/^/  /' >&2 || true
    die "build.sh's targets (>) differ from bazel query 'attr(tags, au_fuzzer, //...)' (<)"
  fi
  for t in "${targets[@]}"; do
    # Source files of the workspace in the target's closure, as paths.
    want="$(bazel query "kind('source file', deps(//fuzz:$t))" 2>/dev/null |
      sed -n 's#^//\([^:]*\):\(.*\.c\)$#\1/\2#p' | sort -u)"
    have="$(awk -v t="$t" '$1 == "target" { on = ($2 == t) }
                          on && $1 == "src" { print $2 }' "$manifest" | sort -u)"
    if [[ "$want" != "$have" ]]; then
      diff <(echo "$want") <(echo "$have") | sed 's/^/  /' >&2 || true
      die "$t: build.sh's C sources (>) differ from Bazel's (<)"
    fi
  done
  echo "ossfuzz_check: targets and their C sources match bazel query"
fi

# --- OSS-Fuzz's environment for one engine and sanitizer -------------------
# The flags are base-builder's for clang: its common CFLAGS, then
# SANITIZER_FLAGS_<sanitizer>, then the coverage flags of libFuzzer builds
# (AFL++ instruments through its compiler wrapper instead).
common_flags="-O1 -fno-omit-frame-pointer -gline-tables-only -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"
ubsan_checks="array-bounds,bool,builtin,enum,float-divide-by-zero,function,integer-divide-by-zero,null,object-size,return,returns-nonnull-attribute,shift,signed-integer-overflow,unreachable,vla-bound,vptr"
sanitizer_flags() {
  case "$1" in
    address) echo "-fsanitize=address -fsanitize-address-use-after-scope" ;;
    # unsigned-integer-overflow is a coverage signal, not an error: it is
    # not in the no-recover list, and silenced at run time.
    undefined) echo "-fsanitize=$ubsan_checks,unsigned-integer-overflow -fno-sanitize-recover=$ubsan_checks" ;;
    memory) echo "-fsanitize=memory -fsanitize-memory-track-origins" ;;
  esac
}

set_env() {  # ENGINE SANITIZER DIR
  local engine="$1" sanitizer="$2" dir="$3"
  export SANITIZER="$sanitizer" FUZZING_ENGINE="$engine" FUZZING_LANGUAGE=c
  export OUT="$dir/out" WORK="$dir/work" SRC="$dir/src"
  # OSS-Fuzz clones the project to $SRC/asyncunwind.
  mkdir -p "$OUT" "$WORK" "$SRC"
  ln -sfn "$root" "$SRC/asyncunwind"
  local flags="$common_flags $(sanitizer_flags "$sanitizer")"
  case "$engine" in
    libfuzzer)
      export CC=clang CXX=clang++ LIB_FUZZING_ENGINE=-fsanitize=fuzzer
      flags="$flags -fsanitize=fuzzer-no-link"
      ;;
    afl)
      export CC=afl-clang-fast CXX=afl-clang-fast++
      export LIB_FUZZING_ENGINE=/usr/lib/afl/libAFLDriver.a AFL_QUIET=1
      ;;
  esac
  export CFLAGS="$flags" CXXFLAGS="$flags"
  # base-runner's run-time options.
  export UBSAN_OPTIONS="print_stacktrace=1:print_summary=1:silence_unsigned_overflow=1:symbolize=1:dedup_token_length=3"
  export MSAN_OPTIONS="print_stats=1:symbolize=1:dedup_token_length=3"
  export ASAN_OPTIONS="alloc_dealloc_mismatch=0:allocator_may_return_null=1:allocator_release_to_os_interval_ms=500:check_malloc_usable_size=0:detect_container_overflow=1:detect_odr_violation=0:detect_leaks=1:detect_stack_use_after_return=1:fast_unwind_on_fatal=0:handle_abort=1:handle_segv=1:handle_sigill=1:max_uar_stack_size_log=16:print_scariness=1:quarantine_size_mb=10:strict_memcmp=1:symbolize=1:use_sigaltstack=1:dedup_token_length=3"
}

# libFuzzer flags from <target>.options' [libfuzzer] section, as ClusterFuzz
# passes them.
options_flags() {  # OPTIONS_FILE
  [[ -f "$1" ]] || return 0
  awk '/^[#;]/ { next }
       /^\[/ { on = ($0 == "[libfuzzer]"); next }
       on && /=/ { gsub(/[ \t]/, ""); split($0, kv, "="); print "-" kv[1] "=" kv[2] }' "$1"
}

run_libfuzzer() {  # TARGET DIR -> 0 or 1
  local t="$1" dir="$2" flags=()
  mapfile -t flags < <(options_flags "$OUT/$t.options")
  [[ -f "$OUT/$t.dict" ]] && flags+=("-dict=$OUT/$t.dict")
  mkdir -p "$dir/new" "$dir/artifacts"
  # Seeds second: libFuzzer writes new inputs into its first directory.
  # Every seed runs first; -max_total_time then bounds the fuzzing only.
  local rc=0
  timeout $((seconds + 600)) "$OUT/$t" -max_total_time="$seconds" -timeout=25 \
    -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
    "${flags[@]}" "$dir/new" "$dir/seeds" >"$dir/log" 2>&1 || rc=$?
  # INITED: every seed ran (libFuzzer prints it once its corpus is read).
  if [[ "$rc" != 0 || -n "$(ls -A "$dir/artifacts")" ]] ||
     ! grep -q '^#[0-9]*[[:space:]]*INITED' "$dir/log"; then
    tail -n 60 "$dir/log" | sed 's/^/    /'
    echo "  $t: libFuzzer exited with $rc; artifacts: $(ls "$dir/artifacts")"
    return 1
  fi
  local runs speed
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")"
  speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log")"
  printf '  %-22s ok: %s seeds, %s runs, %s exec/s\n' "$t" \
    "$(ls "$dir/seeds" | wc -l)" "${runs:-?}" "${speed:-?}"
}

run_afl() {  # TARGET DIR -> 0 or 1
  local t="$1" dir="$2" rc=0 seeds=()
  mapfile -t seeds < <(find "$dir/seeds" -type f | sort)
  # 1. Every seed, once, through the driver (no afl-fuzz: its calibration
  #    runs each seed several times, minutes on the snapshot corpora).
  timeout 900 "$OUT/$t" "${seeds[@]}" >"$dir/replay.log" 2>&1 || rc=$?
  local ran
  ran="$(grep -c '^Execution successful' "$dir/replay.log" || true)"
  if [[ "$rc" != 0 || "$ran" != "${#seeds[@]}" ]]; then
    tail -n 60 "$dir/replay.log" | sed 's/^/    /'
    echo "  $t: the AFL++ build exited with $rc after $ran of ${#seeds[@]} seeds"
    return 1
  fi
  # 2. afl-fuzz for SECONDS from the smallest seeds (a dozen calibrate in
  #    well under the time).
  mkdir -p "$dir/afl_in"
  find "$dir/seeds" -type f -printf '%s %p\n' | sort -n | head -n 12 |
    cut -d' ' -f2- | xargs -d '\n' cp -t "$dir/afl_in"
  local dict=()
  [[ -f "$OUT/$t.dict" ]] && dict=(-x "$OUT/$t.dict")
  # afl-fuzz refuses sanitizer options under which a report would not end
  # in a signal or exit code it recognizes.
  ASAN_OPTIONS="$ASAN_OPTIONS:abort_on_error=1:symbolize=0" \
    MSAN_OPTIONS="$MSAN_OPTIONS:exit_code=86:symbolize=0" \
    AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
    AFL_FAST_CAL=1 timeout $((seconds + 300)) afl-fuzz -V "$seconds" -t 25000 \
    -i "$dir/afl_in" -o "$dir/afl_out" "${dict[@]}" -- "$OUT/$t" >"$dir/log" 2>&1 || rc=$?
  local stats="$dir/afl_out/default/fuzzer_stats" crashes=""
  [[ -d "$dir/afl_out/default/crashes" ]] &&
    crashes="$(find "$dir/afl_out/default/crashes" -type f ! -name README.txt)"
  if [[ "$rc" != 0 || ! -f "$stats" || -n "$crashes" ]] ||
     grep -q "results in a crash" "$dir/log"; then
    tail -n 60 "$dir/log" | sed 's/^/    /'
    echo "  $t: afl-fuzz exited with $rc; crashes: ${crashes:-none}"
    return 1
  fi
  printf '  %-22s ok: %s seeds replayed, afl-fuzz %s execs, %s exec/s\n' "$t" \
    "${#seeds[@]}" "$(sed -n 's/^execs_done *: *//p' "$stats")" \
    "$(sed -n 's/^execs_per_sec *: *//p' "$stats")"
}

# --- Each config: build, then every target -----------------------------------
failed=()
for config in "${configs[@]}"; do
  engine="${config%%-*}" sanitizer="${config#*-}"
  case "$config" in
    libfuzzer-address | libfuzzer-undefined | libfuzzer-memory | afl-address) ;;
    *) die "unknown config $config (see -h)" ;;
  esac
  dir="$top/$config"
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "ossfuzz_check: [$config] building with oss-fuzz/build.sh"
  start=$SECONDS
  if ! (set_env "$engine" "$sanitizer" "$dir" && bash oss-fuzz/build.sh) >"$dir/build.log" 2>&1; then
    tail -n 40 "$dir/build.log" | sed 's/^/    /'
    failed+=("$config (build)")
    continue
  fi
  echo "ossfuzz_check: [$config] built in $((SECONDS - start))s; running each target"
  (
    set_env "$engine" "$sanitizer" "$dir"
    bad=0
    for t in "${targets[@]}"; do
      [[ -x "$OUT/$t" ]] || { echo "  $t: not built"; bad=1; continue; }
      zip="$OUT/${t}_seed_corpus.zip"
      [[ -f "$zip" ]] || { echo "  $t: no $zip"; bad=1; continue; }
      tdir="$dir/run/$t"
      mkdir -p "$tdir/seeds"
      python3 -m zipfile -e "$zip" "$tdir/seeds"
      "run_$engine" "$t" "$tdir" || bad=1
    done
    exit "$bad"
  ) || failed+=("$config (run)")
  echo "ossfuzz_check: [$config] done in $((SECONDS - start))s"
done

if [[ ${#failed[@]} -gt 0 ]]; then
  die "${failed[*]}"
fi
echo "ossfuzz_check: OK: ${configs[*]}"
[[ -n "$keep" ]] || rm -rf "$top"
