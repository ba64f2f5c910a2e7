#!/bin/bash
# asyncunwind beside austin, frame-only, on the same process (issue 10 §5):
# python_fixtures/cpu_bound.py (a 40-frame recursion spinning on CPU) under
# sid's python3.13 in the chroot of tools/sid_chroot.sh, which Debian's
# austin 3.7.0 (tools/sid_austin.sh puts it there) can read.
#
# Each repetition attaches, in turn and for SECONDS each, to that one
# process:
#   austin -i 0    and  //bench:austin_stats --interval-us 0    (maximum rate)
#   austin -i 100  and  //bench:austin_stats --interval-us 100  (100 us)
# and, with --record, `asyncunwind record --pid` at both rates once the CLI
# has that subcommand (its own summary is printed as it comes).
#
# Printed: every run in austin's form (samples, samples/s, per-sample
# min/avg/max and, for asyncunwind, median; long samples; error rate), then
# the medians over the repetitions and the ratios asyncunwind / austin.
# asyncunwind keeps absolute deadlines (start + k x interval) and catches
# up after a late wake-up; austin sleeps one interval after each sample.
# austin prints no median of its own, so its column shows "-".  Timings on
# a machine shared with other work are noisy: the load average is printed
# with each run, and the medians are what to quote.
#
# With --pyenv VER (e.g. 3.12), asyncunwind alone is also measured on the
# same fixture under pyenv's python VER (austin in the chroot cannot read a
# process outside it).
#
# Usage: bench/austin_compare.sh [--seconds S] [--reps N] [--pyenv VER]
#                                [--record] [--cpu-target C] [--cpu-sampler C]
#                                [--nice N]
#   defaults: 3 s, 3 repetitions; no CPU pinning (on a machine shared with
#   other work, a pinned sampler waits for its CPU while another is idle);
#   --cpu-target and --cpu-sampler pin with taskset.
#   --nice N runs both samplers at niceness N (e.g. -10 on a machine busy
#   with other work: the same for both tools, so the comparison stays fair).
# Needs root (chroot, mount); ASYNCUNWIND_SID_ROOT overrides the chroot.
set -euo pipefail

seconds=3
reps=3
pyenv_ver=
record=
cpu_target=
cpu_sampler=
nice_n=0
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --pyenv) pyenv_ver=$2; shift 2 ;;
    --record) record=1; shift ;;
    --cpu-target) cpu_target=$2; shift 2 ;;
    --cpu-sampler) cpu_sampler=$2; shift 2 ;;
    --nice) nice_n=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "austin_compare: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

root=${ASYNCUNWIND_SID_ROOT:-/var/lib/asyncunwind/sid}
root=${root%/}
repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "austin_compare: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (chroot and mount); try: sudo $0"
[ -x "$root/usr/bin/python3.13" ] || die "no $root/usr/bin/python3.13: run tools/sid_chroot.sh"
"$repo/tools/sid_austin.sh" || die "austin is not in the chroot; tools/sid_austin.sh says why above"

cd "$repo"
bazel build -c opt //bench:austin_stats >/dev/null 2>&1 || bazel build -c opt //bench:austin_stats
bin=$(bazel info -c opt bazel-bin 2>/dev/null)
stats_bin=$bin/bench/austin_stats
[ -x "$stats_bin" ] || die "no $stats_bin"
cli_bin=
if [ -n "$record" ]; then
    bazel build -c opt //:asyncunwind >/dev/null 2>&1 || die "bazel build -c opt //:asyncunwind failed"
    cli_bin=$bin/asyncunwind
    "$cli_bin" record --help >/dev/null 2>&1 ||
        die "this asyncunwind has no 'record' subcommand yet; run without --record"
fi

work=$(mktemp -d "$root/tmp/asyncunwind-austin.XXXXXX")
inside=${work#"$root"}
cp python_fixtures/cpu_bound.py "$work/"
out=$(mktemp -d /tmp/austin_compare.XXXXXX)
pid=
pyenv_pid=
mounted=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    [ -n "$pyenv_pid" ] && kill -9 "$pyenv_pid" 2>/dev/null || true
    [ -n "$mounted" ] && umount "$root/proc" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# austin finds the process through the chroot's /proc.
if ! mountpoint -q "$root/proc"; then
    mount -t proc proc "$root/proc"
    mounted=1
fi

# taskset -c C, or nothing without C.
pin() { if [ -n "$1" ]; then echo taskset -c "$1"; fi; }

# The fixture: 37 recursions + <module>, main, spin = 40 frames.
start_fixture() { # $1: output file; then the command
    local f=$1; shift
    $(pin "$cpu_target") "$@" 37 >"$f" 2>&1 &
    local p=$!
    for _ in $(seq 1 100); do
        grep -q '^READY' "$f" 2>/dev/null && break
        sleep 0.1
    done
    [ "$(awk '/^READY/ {print $2}' "$f")" = "$p" ] || die "the fixture did not start: $(cat "$f")"
    sleep 0.5 # out of announce(), into the spin loop
    echo "$p"
}
pid=$(start_fixture "$work/fixture.out" /usr/sbin/chroot "$root" /usr/bin/python3.13 \
    "$inside/cpu_bound.py")
pyver=$(/usr/sbin/chroot "$root" /usr/bin/python3.13 -V 2>&1)
echo "cpu_bound.py (40 frames) under sid's $pyver in $root, pid $pid; $seconds s per run, $reps repetitions"
echo "target on CPU ${cpu_target:-any}, samplers on CPU ${cpu_sampler:-any} at niceness $nice_n; $(nproc) CPUs; the machine may be shared (load is printed per run)"
echo "austin: $(/usr/sbin/chroot "$root" /opt/austin/usr/bin/austin --version 2>&1 | head -n1)"

# One run of austin; its statistics (stderr, ANSI colours stripped) become
# one RESULT line like austin_stats's.
run_austin() { # $1 interval (us), $2 rep
    local f="$out/austin-i$1-r$2.txt"
    # `times` adds the subshell's children's CPU time (austin's) at the end.
    (nice -n "$nice_n" $(pin "$cpu_sampler") /usr/sbin/chroot "$root" \
        /opt/austin/usr/bin/austin -i "$1" -x "$seconds" -p "$pid" -o /dev/null 2>&1; times) |
        sed 's/\x1b\[[0-9;]*m//g' >"$f" || true
    python3 - "$f" "$1" "$(cut -d' ' -f1 /proc/loadavg)" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
def grab(pat):
    m = re.search(pat, text)
    if not m:
        sys.exit("austin_compare: austin printed no '%s':\n%s" % (pat, text[-2000:]))
    return m.groups()
dur, = grab(r"Sampling duration : ([\d.]+) s")
mn, avg, mx = grab(r"Frame sampling \(min/avg/max\) : (\d+)/(\d+)/(\d+)")
lng, n = grab(r"Long sampling rate : (\d+)/(\d+)")
err, n2 = grab(r"Error rate : (\d+)/(\d+)")
n = int(n)
cpu = re.findall(r"^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$", text, re.M)
cpu_s = sum(60 * int(a) + float(b) for a, b in (cpu[-1][0:2], cpu[-1][2:4])) if cpu else 0
print("RESULT tool=austin interval_us=%s seconds=%s samples=%d min_us=%s avg_us=%s max_us=%s "
      "median_us=-1 rate=%.1f long_pct=%.3f error_pct=%.3f load=%s cpu_pct=%.1f"
      % (sys.argv[2], dur, n, mn, avg, mx, n / float(dur), 100.0 * int(lng) / max(n, 1),
         100.0 * int(err) / max(int(n2), 1), sys.argv[3], 100.0 * cpu_s / float(dur)))
EOF
}

run_ours() { # $1 interval (us), $2 rep, $3 pid, $4 label
    local f="$out/au-$4-i$1-r$2.txt"
    nice -n "$nice_n" $(pin "$cpu_sampler") "$stats_bin" --pid "$3" --interval-us "$1" --seconds "$seconds" >"$f" ||
        die "austin_stats failed: $(cat "$f")"
    sed -n 's/^RESULT target=[^ ]* /RESULT tool=asyncunwind-'"$4"' /p' "$f"
}

run_record() { # $1 interval (us), $2 rep
    local f="$out/record-i$1-r$2.txt"
    echo "# asyncunwind record --pid $pid --interval ${1}us --duration ${seconds}s (rep $2)"
    nice -n "$nice_n" $(pin "$cpu_sampler") "$cli_bin" record --pid "$pid" --interval "${1}us" \
        --duration "${seconds}s" --format collapsed -o "$out/record.collapsed" >"$f" 2>&1 || true
    sed 's/^/#   /' "$f"
}

results="$out/results.txt"
: >"$results"
for rep in $(seq 1 "$reps"); do
    for iv in 0 100; do
        run_austin "$iv" "$rep" | tee -a "$results"
        run_ours "$iv" "$rep" "$pid" sid-3.13 | tee -a "$results"
        [ -n "$record" ] && run_record "$iv" "$rep"
    done
done

if [ -n "$pyenv_ver" ]; then
    py=$(ls -d /root/.pyenv/versions/"$pyenv_ver"*/bin/python3 2>/dev/null | head -n1)
    [ -x "$py" ] || die "no pyenv python $pyenv_ver under /root/.pyenv/versions"
    pyenv_pid=$(start_fixture "$out/pyenv-fixture.out" "$py" python_fixtures/cpu_bound.py)
    echo "asyncunwind alone on pyenv $("$py" -V 2>&1), pid $pyenv_pid"
    for rep in $(seq 1 "$reps"); do
        for iv in 0 100; do
            run_ours "$iv" "$rep" "$pyenv_pid" "pyenv-$pyenv_ver" | tee -a "$results"
        done
    done
fi

echo
python3 - "$results" <<'EOF'
import statistics, sys
rows = []
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        rows.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
def med(tool, iv, key):
    v = [float(r[key]) for r in rows if r["tool"] == tool and r["interval_us"] == iv]
    return statistics.median(v) if v else None
tools = []
for r in rows:
    if r["tool"] not in tools:
        tools.append(r["tool"])
print("Medians over the repetitions (per-sample times in us):")
print("%-26s %9s %9s %22s %8s %10s %9s %9s %9s %8s %12s" % ("tool", "interval", "samples",
      "min/avg/max", "median", "samples/s", "long %", "errors %", "late %", "CPU %",
      "samples/CPUs"))
for iv in ("0", "100"):
    for t in tools:
        if med(t, iv, "samples") is None:
            continue
        md = med(t, iv, "median_us")
        late = [100.0 * float(r["late"]) / float(r["samples"]) for r in rows
                if r["tool"] == t and r["interval_us"] == iv and "late" in r]
        late = "%.1f" % statistics.median(late) if late and iv != "0" else "-"
        cpu = med(t, iv, "cpu_pct")
        per_cpu = [float(r["samples"]) / (float(r["cpu_pct"]) / 100 * float(r["seconds"]))
                   for r in rows if r["tool"] == t and r["interval_us"] == iv
                   and float(r.get("cpu_pct", 0)) > 0]
        per_cpu = "%.0f" % statistics.median(per_cpu) if per_cpu else "-"
        print("%-26s %9s %9.0f %22s %8s %10.1f %9.2f %9.3f %9s %8.1f %12s" % (
            t, "max" if iv == "0" else iv + " us", med(t, iv, "samples"),
            "%.1f/%.1f/%.0f" % (med(t, iv, "min_us"), med(t, iv, "avg_us"), med(t, iv, "max_us")),
            "-" if md is None or md < 0 else "%.1f" % md, med(t, iv, "rate"),
            med(t, iv, "long_pct"), med(t, iv, "error_pct"), late, cpu or 0, per_cpu))
print("(late %: samples that started more than an interval after their deadline, then caught up;"
      " austin does not report it.\n CPU %: of one core, user + system; samples/CPUs: samples per"
      " CPU-second the sampler got, which depends less on other load than samples/s)")
print()
for iv in ("0", "100"):
    a = med("austin", iv, "rate")
    for t in tools:
        if t == "austin" or med(t, iv, "rate") is None or not a:
            continue
        r = med(t, iv, "rate")
        line = "%s / austin, %s: %.1fx the samples/s" % (
            t, "maximum rate" if iv == "0" else "100 us", r / a)
        if iv == "0":
            pc = {}
            for tool in ("austin", t):
                v = [float(x["samples"]) / (float(x["cpu_pct"]) / 100 * float(x["seconds"]))
                     for x in rows if x["tool"] == tool and x["interval_us"] == iv
                     and float(x.get("cpu_pct", 0)) > 0]
                pc[tool] = statistics.median(v) if v else 0
            if pc["austin"]:
                line += ", %.1fx the samples per CPU-second" % (pc[t] / pc["austin"])
        if iv == "100":
            line += " (%.1f %% of the nominal 10,000/s; austin %.1f %%)" % (r / 100.0, a / 100.0)
        print(line)
EOF
echo
echo "(raw outputs: $out)"
