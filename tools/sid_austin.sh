#!/usr/bin/env bash
# Put Debian's austin (sid's package, 3.7.x) into the sid chroot that
# tools/sid_chroot.sh builds, for bench/austin_compare.sh.
#
# Why not "apt-get install austin": sid's austin package depends on
# python3 < 3.14, which sid no longer has, so apt refuses it.  The binary
# itself needs only libsframe3 and libunwind8 and runs fine, so the package
# is downloaded and unpacked under /opt/austin in the chroot; the bench runs
# it as
#     chroot "$ROOT" /opt/austin/usr/bin/austin ...
# It reads processes of the chroot only with /proc mounted there
# (bench/austin_compare.sh mounts it for the run).  austin supports CPython
# up to 3.13, which is why the comparison uses sid's python3.13.
#
# Idempotent: a no-op (~0.1 s) when the binary is there and runs.  Needs
# root and a complete chroot (tools/sid_chroot.sh; this script runs it
# first).  Location: $ASYNCUNWIND_SID_ROOT, default /var/lib/asyncunwind/sid.
set -euo pipefail

ROOT="${ASYNCUNWIND_SID_ROOT:-/var/lib/asyncunwind/sid}"
ROOT="${ROOT%/}"
BIN=/opt/austin/usr/bin/austin

log() { printf 'sid_austin: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ "$(id -u)" -eq 0 ]] || die "must run as root (chroot needs it)"
command -v chroot >/dev/null || export PATH="$PATH:/usr/sbin:/sbin"

in_chroot() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"
}

austin_runs() { in_chroot "$BIN" --version >/dev/null 2>&1; }

if [[ -x "$ROOT$BIN" ]] && austin_runs; then
    log "ready: $(in_chroot "$BIN" --version 2>&1 | head -n1)"
    exit 0
fi

"$(cd "$(dirname "$0")" && pwd)/sid_chroot.sh"

# The same lock as sid_chroot.sh: apt in the shared chroot, one at a time.
exec 9>"$ROOT.lock"
flock -w 900 9 || die "timed out waiting for $ROOT.lock"

# apt's maintainer scripts like /proc; mount it unless someone already has.
MOUNTED=""
if ! awk -v p="$ROOT/proc" '$2 == p { f = 1 } END { exit !f }' /proc/mounts; then
    mount -t proc proc "$ROOT/proc"
    MOUNTED=1
fi
cleanup() { [[ -n "$MOUNTED" ]] && umount "$ROOT/proc" 2>/dev/null || true; }
trap cleanup EXIT

APT_OPTS=(-y -q --no-install-recommends -o Dpkg::Use-Pty=0)
log "apt-get install libsframe3 libunwind8 (austin's libraries)"
in_chroot apt-get install "${APT_OPTS[@]}" libsframe3 libunwind8 >/dev/null ||
    die "apt-get install libsframe3 libunwind8 failed in the chroot"
log "apt-get download austin, unpacked into /opt/austin"
in_chroot sh -c 'set -e; d=$(mktemp -d); chmod 755 "$d"; cd "$d"; apt-get download -q austin >/dev/null;
                 rm -rf /opt/austin; dpkg -x austin_*.deb /opt/austin; rm -rf "$d"' ||
    die "could not download or unpack sid's austin package"
austin_runs || die "$BIN does not run in the chroot"
log "ready: $(in_chroot "$BIN" --version 2>&1 | head -n1)"
