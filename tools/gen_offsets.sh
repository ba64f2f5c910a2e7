#!/usr/bin/env bash
# Generate core/cpython/pyoffsets_table.c: one au_py_offsets entry per supported
# CPython minor version, measured by compiling tools/offsets_probe.c against
# each version's own headers (public and Include/internal/).
#
# Usage: tools/gen_offsets.sh [--check] [-o OUTPUT]
#   (default)  write core/cpython/pyoffsets_table.c
#   --check    write nothing; exit 1 if core/cpython/pyoffsets_table.c differs from
#              what would be generated
#
# Header trees (every one is required; a missing one is an error, so the
# table never silently loses a version):
#   pyenv        $PYENV_ROOT/versions/3.X.Y/include/python3.X (+ internal/)
#   Debian       /usr/include/python3.11 (bookworm's libpython3.11-dev):
#                a second patch level of 3.11, compared with pyenv's
#   Debian sid   $AU_SID_ROOT/usr/include/python3.1X (3.13: a second patch
#                level of 3.13, compared with pyenv's), whose pyconfig.h
#                includes <x86_64-linux-gnu/python3.1X/pyconfig.h>: that
#                multiarch directory is made visible through a temporary
#                include root, so the host's libc headers are still used.
#
# Several trees of one minor version: if their facts are identical only the
# newest becomes an entry (its comment lists the others); if they differ,
# each becomes an entry and au_py_offsets_for() picks the newest entry not
# newer than the target (see docs/OFFSETS.md).
#
# Environment: CC (default gcc), PYENV_ROOT (default /root/.pyenv),
# AU_SID_ROOT (default /var/lib/asyncunwind/sid).
# Deterministic: the output depends only on the headers and the compiler's
# ABI (run it twice and diff).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-gcc}
PYENV_ROOT=${PYENV_ROOT:-/root/.pyenv}
SID=${AU_SID_ROOT:-/var/lib/asyncunwind/sid}
OUT=$ROOT/core/cpython/pyoffsets_table.c
HDR=$ROOT/core/cpython/au_pyoffsets.h
PROBE=$ROOT/tools/offsets_probe.c
CHECK=0

while [ $# -gt 0 ]; do
    case $1 in
    --check) CHECK=1 ;;
    -o) OUT=$2; shift ;;
    *) echo "usage: $0 [--check] [-o OUTPUT]" >&2; exit 2 ;;
    esac
    shift
done

die() { echo "gen_offsets: $*" >&2; exit 1; }

MULTIARCH=$($CC -dumpmachine)
case $MULTIARCH in
x86_64-*linux-gnu) MULTIARCH=x86_64-linux-gnu ;;
aarch64-*linux-gnu) MULTIARCH=aarch64-linux-gnu ;;
esac

# label | include dir | multiarch pyconfig dir ("" when pyconfig.h is in the
# include dir itself or reachable through the host's /usr/include) | the
# interpreter's stdlib dir, whose _sysconfigdata_*.py gives the -D flags the
# interpreter's core was compiled with (PY_CORE_CFLAGS): configure options
# such as --enable-experimental-jit add -D_Py_TIER2/-D_Py_JIT there, not in
# pyconfig.h, and they change private struct sizes.
TREES=(
    "pyenv|$PYENV_ROOT/versions/3.9.18/include/python3.9||$PYENV_ROOT/versions/3.9.18/lib/python3.9"
    "pyenv|$PYENV_ROOT/versions/3.10.13/include/python3.10||$PYENV_ROOT/versions/3.10.13/lib/python3.10"
    "pyenv|$PYENV_ROOT/versions/3.11.7/include/python3.11||$PYENV_ROOT/versions/3.11.7/lib/python3.11"
    "Debian bookworm libpython3.11-dev|/usr/include/python3.11||/usr/lib/python3.11"
    "pyenv|$PYENV_ROOT/versions/3.12.1/include/python3.12||$PYENV_ROOT/versions/3.12.1/lib/python3.12"
    "pyenv|$PYENV_ROOT/versions/3.13.0/include/python3.13||$PYENV_ROOT/versions/3.13.0/lib/python3.13"
    "Debian sid libpython3.13-dev|$SID/usr/include/python3.13|$SID/usr/include/$MULTIARCH/python3.13|$SID/usr/lib/python3.13"
    "Debian sid libpython3.14-dev|$SID/usr/include/python3.14|$SID/usr/include/$MULTIARCH/python3.14|$SID/usr/lib/python3.14"
    "Debian sid libpython3.15-dev|$SID/usr/include/python3.15|$SID/usr/include/$MULTIARCH/python3.15|$SID/usr/lib/python3.15"
)

# The -D flags of PY_CORE_CFLAGS in the _sysconfigdata of stdlib dir $1,
# minus _FORTIFY_SOURCE (it only matters with optimisation, and warns
# without it).
core_defines() {
    local f
    f=$(ls "$1"/_sysconfigdata_*.py 2>/dev/null | LC_ALL=C sort | head -n 1)
    [ -n "$f" ] || die "no _sysconfigdata_*.py in $1"
    grep -o "'PY_CORE_CFLAGS': '[^']*'" "$f" | head -n 1 |
        sed "s/^'PY_CORE_CFLAGS': '//; s/'\$//" | tr ' \t' '\n\n' |
        grep '^-D' | grep -v '^-D_FORTIFY_SOURCE' | LC_ALL=C sort -u | tr '\n' ' ' |
        sed 's/ $//'
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ---- 1. run the probe against every tree ---------------------------------
n=0
for t in "${TREES[@]}"; do
    IFS='|' read -r label inc cfg lib <<<"$t"
    [ -d "$inc/internal" ] ||
        die "missing $inc/internal (pyenv install / apt-get install libpython3.X-dev / tools/sid_chroot.sh)"
    defs=$(core_defines "$lib")
    # shellcheck disable=SC2206  # the defines are single words
    flags=(-std=c11 -O0 -Wall -Wextra -Werror -DPy_BUILD_CORE $defs
           -isystem "$inc" -isystem "$inc/internal")
    if [ -n "$cfg" ]; then
        [ -f "$cfg/pyconfig.h" ] || die "missing $cfg/pyconfig.h"
        m=$(basename "$cfg")
        mkdir -p "$TMP/cfg$n/$MULTIARCH"
        ln -s "$cfg" "$TMP/cfg$n/$MULTIARCH/$m"
        flags+=(-isystem "$TMP/cfg$n")
    fi
    "$CC" "${flags[@]}" -o "$TMP/probe$n" "$PROBE" ||
        die "probe does not compile against $inc"
    "$TMP/probe$n" >"$TMP/raw$n" || die "probe failed for $inc"
    echo "label $label" >>"$TMP/raw$n"
    echo "cflags $defs" >>"$TMP/raw$n"
    n=$((n + 1))
done

# ---- 2. the field list of au_py_offsets, in declaration order -------------
awk '
    /^typedef struct au_py_offsets \{/ { on = 1; next }
    /^\} au_py_offsets;/ { on = 0 }
    on { body = body " " $0 }
    END {
        gsub(/\/\*([^*]|\*+[^*\/])*\*+\//, " ", body)   # comments
        n = split(body, st, ";")
        for (i = 1; i <= n; i++) {
            s = st[i]
            gsub(/const [A-Za-z_0-9]+ \*/, "", s)
            gsub(/(uint8_t|int8_t|uint16_t|uint32_t|uint64_t)/, "", s)
            gsub(/[ *]/, "", s)
            if (s == "") continue
            m = split(s, d, ",")
            for (j = 1; j <= m; j++) print d[j]
        }
    }' "$HDR" >"$TMP/fields"
grep -qx unicode_ready_width "$TMP/fields" || die "cannot parse $HDR"

# ---- 3. emit ---------------------------------------------------------------
# Identity fields are written by the generator; all others must come from
# the probe, exactly once each.
ls "$TMP"/raw* | sort -V >"$TMP/probe_outputs"

awk -v fieldsfile="$TMP/fields" -v rawlist="$TMP/probe_outputs" '
function die(msg) { print "gen_offsets: " msg > "/dev/stderr"; exit 1 }
function hexv(s) {  # "0x030B07F0" -> number
    s = toupper(substr(s, 3)); v = 0
    for (k = 1; k <= length(s); k++) v = v * 16 + index("0123456789ABCDEF", substr(s, k, 1)) - 1
    return v
}
function cval(f, v) {
    if (v == "ABSENT") return "AU_PYOFF_ABSENT"
    if (v == "NONE") return "AU_PY_VALUE_NONE"
    if (v == "BITNONE") return "AU_PY_BIT_NONE"
    if (v == "OPNONE") return "AU_PY_OPCODE_NONE"
    if (f == "frame_code_tag_mask") return v "u"
    return v
}
BEGIN {
    nf = 0
    while ((getline line < fieldsfile) > 0) {
        if (line ~ /^(version_hex|flags|name|headers|debug)$/) continue
        field[++nf] = line
    }
    nt = 0
    while ((getline file < rawlist) > 0) {
        t = ++nt; ndbg[t] = 0; facts[t] = ""
        while ((getline line < file) > 0) {
            split(line, w, " ")
            if (w[1] == "label") { label[t] = substr(line, 7); continue }
            if (w[1] == "cflags") { cflags[t] = substr(line, 8); continue }
            if (w[1] == "headers") { hdrs[t] = w[2]; continue }
            if (w[1] == "version_hex") { vhex[t] = w[2]; continue }
            if (w[1] == "dbg") {
                d = ++ndbg[t]; dfield[t, d] = w[2]; dpub[t, d] = w[3]; dpos[t, d] = w[4]
                facts[t] = facts[t] "|" line
                continue
            }
            if (w[1] ~ /^dbg_/) { dmeta[t, w[1]] = w[2]; facts[t] = facts[t] "|" line; continue }
            if ((t, w[1]) in val) die(file ": " w[1] " printed twice")
            val[t, w[1]] = w[2]
        }
        close(file)
        for (i = 1; i <= nf; i++) {
            if (!((t, field[i]) in val)) die(hdrs[t] ": probe does not print " field[i])
            facts[t] = facts[t] "|" field[i] "=" val[t, field[i]]
        }
        for (k in val) {
            split(k, kk, SUBSEP)
            if (kk[1] != t) continue
            ok = 0
            for (i = 1; i <= nf; i++) if (field[i] == kk[2]) ok = 1
            if (!ok) die(hdrs[t] ": probe prints unknown field " kk[2])
        }
        split(hdrs[t], hv, ".")
        minor[t] = hv[1] "." hv[2]
        num[t] = hexv(vhex[t])
    }
    # Order by version, then keep, per minor version, only trees whose facts
    # differ from the next newer kept tree of the same minor.
    for (i = 1; i <= nt; i++) ord[i] = i
    for (i = 2; i <= nt; i++)
        for (j = i; j > 1 && num[ord[j - 1]] > num[ord[j]]; j--) {
            x = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = x
        }
    for (i = nt; i >= 1; i--) {
        t = ord[i]; keep[t] = 1; also[t] = ""
        for (j = i + 1; j <= nt; j++) {
            u = ord[j]
            if (minor[u] != minor[t] || !keep[u]) continue
            if (facts[u] == facts[t]) {
                keep[t] = 0
                also[u] = also[u] (also[u] == "" ? "" : ", ") hdrs[t] " (" label[t] ")"
            }
            break
        }
    }

    printf "/*\n"
    printf " * GENERATED by tools/gen_offsets.sh from CPython headers"
    sep = " "
    for (i = 1; i <= nt; i++) { printf "%s%s", sep, hdrs[ord[i]]; sep = ", " }
    printf "\n * (compiled with tools/offsets_probe.c) -- DO NOT EDIT.\n"
    printf " * Regenerate with tools/gen_offsets.sh; see docs/OFFSETS.md.\n */\n"
    printf "#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n"
    printf "#include \"au_bytes.h\"\n#include \"au_pyoffsets.h\"\n\n"
    printf "/* An au_py_debug_field; fails to compile unless FIELD is a uint32_t. */\n"
    printf "#define AU_DBG(FIELD, POS, PUB)                                          \\\n"
    printf "    {(uint16_t)(offsetof(au_py_offsets, FIELD) +                         \\\n"
    printf "                0 * sizeof(char[sizeof(((au_py_offsets *)0)->FIELD) ==  \\\n"
    printf "                                        sizeof(uint32_t)                \\\n"
    printf "                                    ? 1                                 \\\n"
    printf "                                    : -1])),                            \\\n"
    printf "     (POS), #FIELD, PUB}\n"

    for (i = 1; i <= nt; i++) {
        t = ord[i]
        if (!keep[t] || ndbg[t] == 0) continue
        id = hdrs[t]; gsub(/\./, "_", id)
        printf "\n/* _Py_DebugOffsets of %s (headers %s) */\n", minor[t], hdrs[t]
        printf "static const au_py_debug_field au_dbg_fields_%s[] = {\n", id
        for (d = 1; d <= ndbg[t]; d++) dord[d] = d
        for (d = 2; d <= ndbg[t]; d++)  # ascending position
            for (e = d; e > 1 && dpos[t, dord[e - 1]] + 0 > dpos[t, dord[e]] + 0; e--) {
                x = dord[e]; dord[e] = dord[e - 1]; dord[e - 1] = x
            }
        for (d = 1; d <= ndbg[t]; d++) {
            e = dord[d]
            printf "    AU_DBG(%s, %d, \"%s\"),\n", dfield[t, e], dpos[t, e], dpub[t, e]
        }
        printf "};\n"
        printf "static const au_py_debug_layout au_dbg_%s = {\n", id
        printf "    .size = %d,\n", dmeta[t, "dbg_size"]
        printf "    .cookie_pos = %d,\n", dmeta[t, "dbg_cookie_pos"]
        printf "    .version_pos = %d,\n", dmeta[t, "dbg_version_pos"]
        printf "    .free_threaded_pos = %d,\n", dmeta[t, "dbg_free_threaded_pos"]
        printf "    .nfields = (uint16_t)(sizeof au_dbg_fields_%s / sizeof au_dbg_fields_%s[0]),\n", id, id
        printf "    .fields = au_dbg_fields_%s,\n", id
        printf "};\n"
    }

    printf "\n/* au_py_field_type of FIELD, from its C type. */\n"
    printf "#define AU_FT(FIELD)                                                     \\\n"
    printf "    _Generic((((au_py_offsets *)0)->FIELD), uint32_t: AU_PY_FT_U32,     \\\n"
    printf "             int32_t: AU_PY_FT_I32, int8_t: AU_PY_FT_I8,                 \\\n"
    printf "             uint8_t: AU_PY_FT_U8, uint16_t: AU_PY_FT_U16,               \\\n"
    printf "             uint64_t: AU_PY_FT_U64)\n"
    printf "#define AU_FIELD(FIELD) {#FIELD, (uint16_t)offsetof(au_py_offsets, FIELD), (uint8_t)AU_FT(FIELD)}\n"
    printf "\nstatic const au_py_field_desc au_py_fields[] = {\n"
    for (f = 1; f <= nf; f++) printf "    AU_FIELD(%s),\n", field[f]
    printf "};\n"
    printf "\nstatic const au_py_offsets au_py_tables[] = {\n"
    for (i = 1; i <= nt; i++) {
        t = ord[i]
        if (!keep[t]) continue
        id = hdrs[t]; gsub(/\./, "_", id)
        printf "    /* %s: headers %s (%s), core built with %s", minor[t], hdrs[t], label[t], cflags[t]
        if (also[t] != "") printf ";\n     * identical facts measured from %s", also[t]
        printf " */\n    {\n"
        printf "        .version_hex = %s,\n", vhex[t]
        printf "        .flags = AU_PY_FLAG_DEFAULT_BUILD,\n"
        printf "        .name = \"%s\",\n", minor[t]
        printf "        .headers = \"%s\",\n", hdrs[t]
        for (f = 1; f <= nf; f++)
            printf "        .%s = %s,\n", field[f], cval(field[f], val[t, field[f]])
        if (ndbg[t] > 0) printf "        .debug = &au_dbg_%s,\n", id
        else printf "        .debug = NULL,\n"
        printf "    },\n"
    }
    printf "};\n"
}' >"$TMP/table.c"

cat >>"$TMP/table.c" <<'EOF'

#define AU_PY_NTABLES (sizeof au_py_tables / sizeof au_py_tables[0])

const au_py_field_desc *au_py_offsets_fields(size_t *n) {
    if (n != NULL) *n = sizeof au_py_fields / sizeof au_py_fields[0];
    return au_py_fields;
}

int64_t au_py_field_value(const void *base, const au_py_field_desc *d) {
    const unsigned char *p = (const unsigned char *)base + d->offset;
    switch (d->type) {
    case AU_PY_FT_U32: { uint32_t v; memcpy(&v, p, sizeof v); return v; }
    case AU_PY_FT_I32: { int32_t v; memcpy(&v, p, sizeof v); return v; }
    case AU_PY_FT_I8: { int8_t v; memcpy(&v, p, sizeof v); return v; }
    case AU_PY_FT_U8: return *p;
    case AU_PY_FT_U16: { uint16_t v; memcpy(&v, p, sizeof v); return v; }
    case AU_PY_FT_U64: { uint64_t v; memcpy(&v, p, sizeof v); return (int64_t)v; }
    default: return 0;
    }
}

const au_py_offsets *au_py_offsets_all(size_t *n) {
    if (n != NULL) *n = AU_PY_NTABLES;
    return au_py_tables;
}

/* Entries are in ascending version order.  Among the entries of the
 * target's major.minor, take the newest one not newer than the target,
 * or the oldest one when all are newer. */
const au_py_offsets *au_py_offsets_for(uint32_t version_hex) {
    const au_py_offsets *best = NULL;
    for (size_t i = 0; i < AU_PY_NTABLES; i++) {
        const au_py_offsets *e = &au_py_tables[i];
        if ((e->version_hex >> 16) != (version_hex >> 16)) continue;
        if (best == NULL || e->version_hex <= version_hex) best = e;
    }
    return best;
}

uint32_t au_py_offsets_field(const au_py_offsets *o, uint16_t field) {
    uint32_t v = AU_PYOFF_ABSENT;
    if (o != NULL && (size_t)field + sizeof v <= sizeof *o)
        memcpy(&v, (const unsigned char *)o + field, sizeof v);
    return v;
}

int au_py_offsets_apply_debug(au_py_offsets *out, const au_py_offsets *base,
                              const void *blob, size_t len) {
    if (out == NULL || base == NULL || blob == NULL || base->debug == NULL)
        return AU_ERR_ARG;
    const au_py_debug_layout *d = base->debug;
    const unsigned char *b = (const unsigned char *)blob;
    if (len < d->size) return AU_ERR_FORMAT;
    if (memcmp(b + d->cookie_pos, AU_PY_DEBUG_COOKIE,
               AU_PY_DEBUG_COOKIE_LEN) != 0)
        return AU_ERR_FORMAT;
    uint64_t version = au_rd64(b + d->version_pos);
    if ((version >> 16) != (uint64_t)(base->version_hex >> 16))
        return AU_ERR_UNSUPPORTED;
    if (au_rd64(b + d->free_threaded_pos) != 0)
        return AU_ERR_UNSUPPORTED;
    for (uint16_t i = 0; i < d->nfields; i++) {
        if (au_rd64(b + d->fields[i].pos) > AU_PY_DEBUG_MAX_VALUE)
            return AU_ERR_CORRUPT;
    }
    au_py_offsets tmp = *base;
    int changed = 0;
    for (uint16_t i = 0; i < d->nfields; i++) {
        uint32_t v = (uint32_t)au_rd64(b + d->fields[i].pos);
        unsigned char *slot = (unsigned char *)&tmp + d->fields[i].field;
        uint32_t cur;
        memcpy(&cur, slot, sizeof cur);
        if (cur != v) {
            memcpy(slot, &v, sizeof v);
            changed++;
        }
    }
    /* A _PyThreadStateImpl (3.13+) starts with a whole PyThreadState, so
     * its own fields, which nothing publishes in 3.13, move with the
     * published sizeof(PyThreadState): 3.13 patch releases appended a
     * pointer to PyThreadState (gh-142183), moving asyncio_running_loop
     * from 304 (3.13.0) to 312 (3.13.18). */
    if (base->sizeof_tstate_impl != AU_PYOFF_ABSENT &&
        tmp.sizeof_tstate != base->sizeof_tstate) {
        int64_t delta = (int64_t)tmp.sizeof_tstate - (int64_t)base->sizeof_tstate;
        uint32_t *tail[] = {&tmp.sizeof_tstate_impl, &tmp.tstate_asyncio_running_loop,
                            &tmp.tstate_asyncio_running_task,
                            &tmp.tstate_asyncio_tasks_head};
        for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++) {
            if (*tail[i] == AU_PYOFF_ABSENT) continue;
            /* Each lies after the PyThreadState: >= base->sizeof_tstate. */
            *tail[i] = (uint32_t)((int64_t)*tail[i] + delta);
            changed++;
        }
    }
    tmp.version_hex = (uint32_t)version;
    tmp.flags |= AU_PY_FLAG_FROM_DEBUG_OFFSETS;
    *out = tmp;
    return changed;
}
EOF

if [ "$CHECK" = 1 ]; then
    if ! diff -u "$OUT" "$TMP/table.c"; then
        die "$OUT is out of date: run tools/gen_offsets.sh"
    fi
    echo "gen_offsets: $OUT is up to date"
else
    cp "$TMP/table.c" "$OUT"
    echo "gen_offsets: wrote $OUT"
fi
