#!/usr/bin/env bash
# Build (once) the Debian sid chroot that holds CPython 3.14 and 3.15.
#
# Bookworm cannot run sid's python3.14/python3.15 (they need glibc >= 2.38),
# so the live tests run them inside a chroot:
#     /usr/sbin/chroot "$ROOT" /usr/bin/python3.14 fixture.py
#
# Location: $ASYNCUNWIND_SID_ROOT, default /var/lib/asyncunwind/sid.  It lives
# outside the work tree on purpose: every clone and CI run on the machine
# shares one chroot, and Bazel's globs never see it.  tests/pythons.c looks in
# the same place (same variable, same default).
#
# Contents: debootstrap --variant=minbase sid, plus python3.13 (a second
# 3.13 patch level beside pyenv's), python3.14, python3.15,
# libpython3.13-dev, libpython3.14-dev, libpython3.15-dev (CPython's internal headers) and, when
# sid can install them, python3-uvloop (built for 3.14 only) and
# python3-anyio (pure Python: 3.13, 3.14 and 3.15).  A complete chroot that
# lacks an optional package (built before it was added) gets it in place.
#
# Idempotent: when "$ROOT/.asyncunwind-sid-complete" exists (written last) and
# both interpreters run, the script prints their versions and exits (~0.1 s).
# Otherwise it builds into "$ROOT.tmp.XXXXXX" next to the final path and
# renames it into place, so an interrupted build never leaves a tree that
# looks complete.  A lock ("$ROOT.lock") serialises concurrent runs.  /proc is
# mounted inside the build tree only while apt runs, and a trap unmounts it.
#
# Mirror: the first Debian archive URI configured in /etc/apt/sources.list or
# /etc/apt/sources.list.d/*.{list,sources} (not -security, not disabled
# files); override with ASYNCUNWIND_DEBIAN_MIRROR.
#
# Needs root (debootstrap, chroot).  Cold build ~1-2 min, ~0.5 GB; warm run
# is a no-op.
set -euo pipefail

ROOT="${ASYNCUNWIND_SID_ROOT:-/var/lib/asyncunwind/sid}"
ROOT="${ROOT%/}"
STAMP_NAME=".asyncunwind-sid-complete"
REQUIRED_PKGS=(python3.13 python3.14 python3.15 libpython3.13-dev libpython3.14-dev libpython3.15-dev)
OPTIONAL_PKGS=(python3-uvloop python3-anyio)

log() { printf 'sid_chroot: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Prints "3.14.x ... | 3.15.x ..." and succeeds iff both interpreters run.
interp_versions() {
    local dir="$1" v13 v14 v15
    v14="$(chroot "$dir" /usr/bin/python3.14 -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)" || return 1
    v15="$(chroot "$dir" /usr/bin/python3.15 -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)" || return 1
    v13="$(chroot "$dir" /usr/bin/python3.13 -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)" || return 1
    case "$v13" in 3.13.*) ;; *) return 1 ;; esac
    case "$v14" in 3.14.*) ;; *) return 1 ;; esac
    case "$v15" in 3.15.*) ;; *) return 1 ;; esac
    printf 'python3.13 %s, python3.14 %s, python3.15 %s' "$v13" "$v14" "$v15"
}

# Every required package installed (a chroot built before a package was
# added to REQUIRED_PKGS counts as incomplete and is rebuilt).
pkgs_installed() {
    local p st
    for p in "${REQUIRED_PKGS[@]}"; do
        st="$(chroot "$1" /usr/bin/dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" || return 1
        [[ "$st" == "install ok installed" ]] || return 1
    done
}

is_complete() {
    [[ -f "$1/$STAMP_NAME" ]] && interp_versions "$1" >/dev/null && pkgs_installed "$1"
}

report_ready() {
    local uv="no" ai="no"
    if chroot "$ROOT" /usr/bin/python3.14 -c 'import uvloop' 2>/dev/null; then
        uv="yes (python3.14)"
    fi
    if chroot "$ROOT" /usr/bin/python3.14 -c 'import anyio' 2>/dev/null; then
        ai="yes"
    fi
    log "ready: $ROOT ($(interp_versions "$ROOT"); uvloop: $uv; anyio: $ai)"
}

APT_OPTS=(-y -q --no-install-recommends -o Dpkg::Use-Pty=0)  # no /dev/pts here

# Run a command in chroot DIR, in a clean non-interactive environment.
chroot_run() {
    local dir="$1"
    shift
    chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"
}

# Install into chroot DIR each optional package it lacks; one that sid
# cannot install today is skipped, not an error.
install_optional() {
    local dir="$1" pkg st
    for pkg in "${OPTIONAL_PKGS[@]}"; do
        st="$(chroot "$dir" /usr/bin/dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" || st=""
        [[ "$st" == "install ok installed" ]] && continue
        if chroot_run "$dir" apt-get install "${APT_OPTS[@]}" "$pkg" >/dev/null 2>&1; then
            log "installed optional $pkg"
        else
            log "optional $pkg is not installable in sid today; skipped"
        fi
    done
}

[[ "$(id -u)" -eq 0 ]] || die "must run as root (debootstrap and chroot need it)"
command -v chroot >/dev/null || export PATH="$PATH:/usr/sbin:/sbin"

# Fast path, without the lock: nothing to do.
if is_complete "$ROOT"; then
    log "already complete"
    install_optional "$ROOT"
    report_ready
    exit 0
fi

find_mirror() {
    if [[ -n "${ASYNCUNWIND_DEBIAN_MIRROR:-}" ]]; then
        printf '%s\n' "$ASYNCUNWIND_DEBIAN_MIRROR"; return 0
    fi
    local f uris=()
    shopt -s nullglob
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        # One-line format: deb [opts] URI suite components
        while read -r u; do uris+=("$u"); done < <(
            sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
            awk '$1 == "deb" && NF >= 3 { print $2 }')
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        # deb822 format: "URIs: a b" lines (skip stanzas with Enabled: no).
        while read -r u; do uris+=("$u"); done < <(
            awk 'BEGIN { RS = ""; FS = "\n" }
                 { en = 1; u = ""
                   for (i = 1; i <= NF; i++) {
                       if ($i ~ /^#/) continue
                       if (tolower($i) ~ /^enabled:[ \t]*no/) en = 0
                       if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); u = $i } }
                   if (en && u != "") { n = split(u, a, /[ \t]+/); for (j = 1; j <= n; j++) print a[j] } }' "$f")
    done
    shopt -u nullglob
    for f in "${uris[@]}"; do
        # The main archive: a path ending in /debian (not debian-security).
        if [[ "$f" =~ ^(https?|file):// && "${f%/}" =~ /debian$ ]]; then
            printf '%s\n' "${f%/}"; return 0
        fi
    done
    return 1
}

PARENT="$(dirname "$ROOT")"
mkdir -p "$PARENT"
exec 9>"$ROOT.lock"
if ! flock -n 9; then
    log "another build holds $ROOT.lock; waiting (up to 15 min)"
    flock -w 900 9 || die "timed out waiting for $ROOT.lock"
fi
# Someone else may have finished while we waited.
if is_complete "$ROOT"; then
    log "completed by a concurrent run"
    report_ready
    exit 0
fi

MIRROR="$(find_mirror)" || die "no Debian mirror found in /etc/apt/sources.list*; set ASYNCUNWIND_DEBIAN_MIRROR"
log "mirror: $MIRROR"

if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends debootstrap >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y --no-install-recommends debootstrap >/dev/null; }
fi

unmount_under() {  # Unmount everything mounted at or below $1, deepest first.
    local m
    while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
        awk -v p="$1" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts | sort -r)
}

remove_tree() {
    unmount_under "$1"
    if awk -v p="$1" '$2 == p || index($2, p "/") == 1 { f = 1 } END { exit !f }' /proc/mounts; then
        die "refusing to delete $1: something is still mounted below it"
    fi
    rm -rf --one-file-system "$1"
}

START=$SECONDS
TMP="$(mktemp -d "$ROOT.tmp.XXXXXX")"
chmod 755 "$TMP"   # mktemp makes it 0700; apt's _apt user must traverse it
cleanup() {
    local rc=$?
    if [[ -n "${TMP:-}" && -d "$TMP" ]]; then
        log "cleaning up $TMP"
        remove_tree "$TMP" || true
    fi
    rm -f "${BOOTLOG:-}"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of interrupted runs (we hold the lock, so none is in use).
shopt -s nullglob
for old in "$ROOT".tmp.*; do
    [[ "$old" == "$TMP" ]] && continue
    [[ -f "$old" ]] && { rm -f "$old"; continue; }  # a stray debootstrap log
    log "removing leftover $old"
    remove_tree "$old"
done
shopt -u nullglob

log "debootstrap sid into $TMP (minbase + python3.14)"
BOOTLOG="$TMP.debootstrap.log"
debootstrap --variant=minbase --include=python3.14 sid "$TMP" "$MIRROR" \
    >"$BOOTLOG" 2>&1 || { tail -n 30 "$BOOTLOG" >&2; die "debootstrap failed"; }
rm -f "$BOOTLOG"
log "debootstrap done after $((SECONDS - START)) s"

# apt/dpkg maintainer scripts like having /proc; mount it only for this step.
mount -t proc proc "$TMP/proc"
log "apt-get install ${REQUIRED_PKGS[*]}"
chroot_run "$TMP" apt-get install "${APT_OPTS[@]}" "${REQUIRED_PKGS[@]}" >/dev/null ||
    die "apt-get install ${REQUIRED_PKGS[*]} failed in the chroot"
install_optional "$TMP"
chroot_run "$TMP" apt-get clean
umount "$TMP/proc"

VERSIONS="$(interp_versions "$TMP")" || die "the new chroot's interpreters do not run"
{
    echo "# Written last by tools/sid_chroot.sh; its presence means complete."
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "mirror: $MIRROR"
    echo "versions: $VERSIONS"
    chroot_run "$TMP" dpkg-query -W "${REQUIRED_PKGS[@]}" "${OPTIONAL_PKGS[@]}" 2>/dev/null || true
} >"$TMP/$STAMP_NAME"

# Commit: replace whatever incomplete tree is at $ROOT with the new one.
if [[ -e "$ROOT" || -L "$ROOT" ]]; then
    log "replacing incomplete $ROOT"
    STALE="$(mktemp -d "$ROOT.tmp.XXXXXX")"
    rmdir "$STALE"
    mv -T "$ROOT" "$STALE"
    mv -T "$TMP" "$ROOT"
    TMP="$STALE"   # the EXIT trap deletes the stale tree
else
    mv -T "$TMP" "$ROOT"
    TMP=""
fi
log "built $ROOT in $((SECONDS - START)) s ($(du -sh --one-file-system "$ROOT" | cut -f1))"
report_ready
