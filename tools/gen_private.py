#!/usr/bin/env python3
"""gen_private.py: generate core/cpython/pyprivate_table.c.

Runs tools/probe_private.py under every supported interpreter and writes
what it measured as one au_py_private entry per minor version (see
core/cpython/au_pyprivate.h and docs/OFFSETS.md).

    tools/gen_private.py            write core/cpython/pyprivate_table.c
    tools/gen_private.py --check    write nothing; exit 1 if the committed
                                    file differs from what would be written
    tools/gen_private.py -o FILE    write FILE instead

Interpreters (every one is required; a missing one is an error, so the
table never silently loses a version):
    pyenv       $PYENV_ROOT/versions/3.X.Y/bin/python3.X for 3.9-3.13
    Debian      /usr/bin/python3.11 (bookworm): a second patch level of
                3.11, compared with pyenv's
    Debian sid  /usr/sbin/chroot $AU_SID_ROOT /usr/bin/python3.1X for 3.13
                (a second patch level, compared with pyenv's), 3.14, 3.15;
                needs root

The probe also checks the reader's rules from raw memory, using the
header facts of core/cpython/pyoffsets_table.c for its version (passed with
--hdr): regenerate that table first (tools/gen_offsets.sh) when headers
change.  Any failed measurement or check fails the generation.

Several patch levels of one minor version: if everything they measure is
identical only the newest becomes an entry (its comment lists the
others); otherwise each becomes an entry and au_py_private_for() picks the
newest one not newer than the target.

Deterministic: the output depends only on the interpreters (run it twice
and diff).  Runs under the host's python3 (3.9+).
"""
import ast
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYENV_ROOT = os.environ.get("PYENV_ROOT", "/root/.pyenv")
SID = os.environ.get("AU_SID_ROOT", "/var/lib/asyncunwind/sid")
PROBE = os.path.join(ROOT, "tools", "probe_private.py")
HDR_PRIV = os.path.join(ROOT, "core", "cpython", "au_pyprivate.h")
HDR_OFF = os.path.join(ROOT, "core", "cpython", "au_pyoffsets.h")
HDR_LT = os.path.join(ROOT, "core", "cpython", "au_linetable.h")
TABLE_OFF = os.path.join(ROOT, "core", "cpython", "pyoffsets_table.c")
OUT = os.path.join(ROOT, "core", "cpython", "pyprivate_table.c")

# (label, argv prefix, exact version it must be)
INTERPRETERS = [
    ("pyenv", [PYENV_ROOT + "/versions/3.9.18/bin/python3.9"], "3.9.18"),
    ("pyenv", [PYENV_ROOT + "/versions/3.10.13/bin/python3.10"], "3.10.13"),
    ("pyenv", [PYENV_ROOT + "/versions/3.11.7/bin/python3.11"], "3.11.7"),
    ("Debian bookworm python3.11", ["/usr/bin/python3.11"], "3.11.2"),
    ("pyenv", [PYENV_ROOT + "/versions/3.12.1/bin/python3.12"], "3.12.1"),
    ("pyenv", [PYENV_ROOT + "/versions/3.13.0/bin/python3.13"], "3.13.0"),
    ("Debian sid python3.13", ["/usr/sbin/chroot", SID, "/usr/bin/python3.13"], "3.13.18"),
    ("Debian sid python3.14", ["/usr/sbin/chroot", SID, "/usr/bin/python3.14"], "3.14.10"),
    ("Debian sid python3.15", ["/usr/sbin/chroot", SID, "/usr/bin/python3.15"], "3.15.2"),
]

# Checks the probe must report on every version (more exist on some).
REQUIRED_CHECKS = [
    "dict.items_and_lookup", "instance.attributes", "set.iteration",
    "yf.coroutine_await", "yf.generator_yield_from", "yf.async_generator_asend",
    "yf.coroutine_wrapper", "yf.quickened_and_traced", "yf.task_awaits_future",
    "yf.task_awaits_task",
    "running_loop", "running_loop.none", "current_task", "tasks.containers",
    "links.gather_closure",
    "links.partial_and_list",
]


def die(msg):
    sys.stderr.write("gen_private: %s\n" % msg)
    sys.exit(1)


def strip_comments(text):
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.S)


def enums_of(*paths):
    """NAME -> value of every explicitly numbered enumerator in the files."""
    out = {}
    for p in paths:
        text = strip_comments(open(p).read())
        for name, val in re.findall(r"\b(AU_[A-Z0-9_]+)\s*=\s*(0x[0-9A-Fa-f]+|\d+)\s*[,}]", text):
            out[name] = int(val, 0)
    return out


def enum_members(path, enum):
    """Member names of `typedef enum enum {...}` in declaration order."""
    text = strip_comments(open(path).read())
    m = re.search(r"typedef enum %s \{(.*?)\}" % enum, text, re.S)
    if not m:
        die("no enum %s in %s" % (enum, path))
    return [x.split("=")[0].strip() for x in m.group(1).split(",") if x.strip()]


def struct_fields(path, struct):
    """[(name, ctype)] of `typedef struct struct {...} struct;`."""
    text = strip_comments(open(path).read())
    m = re.search(r"typedef struct %s \{(.*?)\} %s;" % (struct, struct), text, re.S)
    if not m:
        die("cannot parse %s in %s" % (struct, path))
    fields = []
    for decl in m.group(1).split(";"):
        decl = " ".join(decl.split())
        if not decl:
            continue
        tm = re.match(r"(const char \*|const au_py_asyncio_debug_layout \*|uint32_t|int32_t|"
                      r"int8_t|uint8_t|uint16_t|uint64_t)\s*(.*)$", decl)
        if not tm:
            die("cannot parse declaration %r" % decl)
        ctype = tm.group(1).strip()
        for name in tm.group(2).split(","):
            name = name.strip().lstrip("*")
            if "[" in name:
                name, ctype_ = name.split("[")[0], ctype + "[]"
                fields.append((name, ctype_))
            else:
                fields.append((name, ctype))
    return fields


def probe_literal(name):
    """The value of the top-level assignment `name = ...` in the probe."""
    tree = ast.parse(open(PROBE).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    die("no %s in %s" % (name, PROBE))


def version_key(v):
    return tuple(int(x) for x in v.split("."))


def header_args(version, enums):
    """--hdr NAME=VALUE,... for `version` from pyoffsets_table.c (the entry
    au_py_offsets_for() would pick)."""
    text = open(TABLE_OFF).read()
    entries = re.findall(r'\.headers = "([\d.]+)",(.*?)\n    \}', text, re.S)
    minor = version_key(version)[:2]
    mine = sorted((h for h, _ in entries if version_key(h)[:2] == minor), key=version_key)
    if not mine:
        die("pyoffsets_table.c has no entry for %s" % version)
    pick = mine[0]
    for h in mine:
        if version_key(h) <= version_key(version):
            pick = h
    body = dict(entries)[pick]
    out = []
    for k, v in re.findall(r"\.(\w+) = ([^,\n]+),", body):
        if k in ("debug", "name", "headers"):
            continue
        v = v.strip()
        if v in ("AU_PYOFF_ABSENT", "AU_PY_VALUE_NONE", "AU_PY_OPCODE_NONE"):
            v = ""
        elif v == "AU_PY_BIT_NONE":
            v = "255"
        elif v in enums:
            v = str(enums[v])
        else:
            v = str(int(v.rstrip("u"), 0))
        out.append("%s=%s" % (k, v))
    return ",".join(out)


def run_probe(label, argv, version, enums):
    exe = argv[-1] if argv[0] != "/usr/sbin/chroot" else argv[1] + argv[2]
    if argv[0] == "/usr/sbin/chroot":
        if os.geteuid() != 0:
            die("%s: running the sid chroot needs root" % label)
        if not os.path.exists(os.path.join(SID, ".asyncunwind-sid-complete")):
            die("%s: no complete sid chroot at %s (tools/sid_chroot.sh)" % (label, SID))
    if not os.access(exe, os.X_OK):
        die("%s %s: %s not found" % (label, version, exe))
    cmd = argv + ["-E", "-", "--hdr", header_args(version, enums)]
    with open(PROBE, "rb") as src:
        r = subprocess.run(cmd, stdin=src, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=300)
    if r.returncode != 0:
        die("probe failed under %s %s:\n%s" % (label, version, r.stderr.decode(errors="replace")))
    return r.stdout.decode()


def parse(text, version):
    res = {"priv": {}, "tpname": {}, "adbg": [], "checks": set(), "notes": []}
    lines = text.splitlines()
    if not lines or lines[-1] != "END":
        die("%s: probe output does not end with END" % version)
    for line in lines[:-1]:
        kind, _, rest = line.partition(" ")
        if kind == "version":
            res["version_hex"] = int(rest, 16)
        elif kind in ("priv", "tpname"):
            name, _, val = rest.partition(" ")
            if name in res[kind]:
                die("%s: %s %s printed twice" % (version, kind, name))
            res[kind][name] = val
        elif kind == "adbg":
            res["adbg"].append(rest.split(" "))
        elif kind == "adbg_file":
            res["adbg_file"] = rest
        elif kind == "check":
            res["checks"].add(rest.split(" ")[0])
        elif kind == "note":
            res["notes"].append(rest)
        else:
            die("%s: unknown probe line %r" % (version, line))
    hexv = res.get("version_hex", 0)
    got = "%d.%d.%d" % (hexv >> 24, (hexv >> 16) & 0xFF, (hexv >> 8) & 0xFF)
    if got != version:
        die("interpreter is %s, expected %s" % (got, version))
    missing = [c for c in REQUIRED_CHECKS if c not in res["checks"]]
    if missing:
        die("%s: probe did not report checks %s" % (version, ", ".join(missing)))
    return res


def c_value(field, ctype, raw, enums, version):
    if raw == "ABSENT":
        return {"uint32_t": "AU_PYOFF_ABSENT", "int32_t": "AU_PY_SOFF_ABSENT",
                "int8_t": "AU_PY_VALUE_NONE", "const char *": "NULL"}.get(ctype) or \
            die("%s: %s (%s) cannot be absent" % (version, field, ctype))
    if raw.startswith('"'):
        if ctype != "const char *":
            die("%s: %s is a string" % (version, field))
        s = json.loads(raw)
        if not all(0x20 <= ord(c) < 0x7F and c not in '"\\' for c in s):
            die("%s: %s = %r is not plain ASCII" % (version, field, s))
        return '"%s"' % s
    parts = raw.split(" ")
    val = int(parts[0])
    if len(parts) == 2:
        sym = parts[1]
        if enums.get(sym) != val:
            die("%s: %s = %d but %s is %r in the headers" % (version, field, val, sym, enums.get(sym)))
        return sym
    lim = {"uint32_t": (0, 2**32 - 2), "int32_t": (-2**31 + 1, 2**31 - 1),
           "int8_t": (-127, 127), "uint8_t": (0, 255)}[ctype]
    if not lim[0] <= val <= lim[1]:
        die("%s: %s = %d does not fit %s" % (version, field, val, ctype))
    return str(val)


def facts_of(res):
    """Everything an entry records, for comparing patch levels."""
    return (sorted(res["priv"].items()), sorted(res["tpname"].items()),
            [tuple(a) for a in res["adbg"]])


def generate(results, fields, type_ids, enums):
    # Per minor version, keep only the trees whose facts differ from the
    # next newer kept one.
    order = sorted(results, key=lambda r: version_key(r["version"]))
    keep = {}
    also = {}
    for i in range(len(order) - 1, -1, -1):
        r = order[i]
        keep[r["version"]] = True
        also.setdefault(r["version"], [])
        for u in order[i + 1:]:
            if version_key(u["version"])[:2] != version_key(r["version"])[:2] or not keep[u["version"]]:
                continue
            if facts_of(u) == facts_of(r):
                keep[r["version"]] = False
                also[u["version"]].append("%s (%s)" % (r["version"], r["label"]))
            break

    o = []
    o.append("/*")
    o.append(" * GENERATED by tools/gen_private.py from tools/probe_private.py run under")
    o.append(" * CPython %s -- DO NOT EDIT." % ", ".join(r["version"] for r in order))
    o.append(" * Regenerate with tools/gen_private.py; see docs/OFFSETS.md.")
    o.append(" */")
    o.append("#include <stddef.h>")
    o.append("#include <stdint.h>")
    o.append("#include <string.h>")
    o.append("")
    o.append('#include "au_bytes.h"')
    o.append('#include "au_pyprivate.h"')
    o.append("")
    o.append("/* An au_py_adbg_field; fails to compile unless FIELD is a uint32_t. */")
    o.append("#define AU_ADBG(TABLE, STRUCT, FIELD, POS, PUB)                          \\")
    o.append("    {TABLE,                                                              \\")
    o.append("     (uint16_t)(offsetof(STRUCT, FIELD) +                                \\")
    o.append("                0 * sizeof(char[sizeof(((STRUCT *)0)->FIELD) ==           \\")
    o.append("                                        sizeof(uint32_t)                  \\")
    o.append("                                    ? 1                                   \\")
    o.append("                                    : -1])),                              \\")
    o.append("     (POS), #FIELD, PUB}")
    for r in order:
        if not keep[r["version"]] or not r["adbg"]:
            continue
        ident = r["version"].replace(".", "_")
        o.append("")
        o.append("/* .AsyncioDebug of %s (measured on %s, read from %s) */"
                 % (r["minor"], r["version"], os.path.basename(r.get("adbg_file", "?"))))
        o.append("static const au_py_adbg_field au_adbg_fields_%s[] = {" % ident)
        for name, where, field, pos, _val in r["adbg"]:
            table, struct = (("AU_PY_ADBG_PRIVATE", "au_py_private") if where == "priv"
                             else ("AU_PY_ADBG_OFFSETS", "au_py_offsets"))
            o.append('    AU_ADBG(%s, %s, %s, %s, "%s"),' % (table, struct, field, pos, name))
        o.append("};")
        o.append("static const au_py_asyncio_debug_layout au_adbg_%s = {" % ident)
        o.append('    .section = ".AsyncioDebug",')
        o.append("    .size = %d," % (8 * len(r["adbg"])))
        o.append("    .nfields = (uint16_t)(sizeof au_adbg_fields_%s / sizeof au_adbg_fields_%s[0]),"
                 % (ident, ident))
        o.append("    .fields = au_adbg_fields_%s," % ident)
        o.append("};")

    o.append("")
    o.append("/* au_py_field_type of FIELD, from its C type. */")
    o.append("#define AU_FT(FIELD)                                                     \\")
    o.append("    _Generic((((au_py_private *)0)->FIELD), uint32_t: AU_PY_FT_U32,     \\")
    o.append("             int32_t: AU_PY_FT_I32, int8_t: AU_PY_FT_I8,                 \\")
    o.append("             uint8_t: AU_PY_FT_U8, const char *: AU_PY_FT_STR)")
    o.append("#define AU_FIELD(FIELD) {#FIELD, (uint16_t)offsetof(au_py_private, FIELD), (uint8_t)AU_FT(FIELD)}")
    o.append("")
    o.append("static const au_py_field_desc au_priv_fields[] = {")
    for name, _ in fields:
        o.append("    AU_FIELD(%s)," % name)
    o.append("};")

    o.append("")
    o.append("static const au_py_private au_priv_tables[] = {")
    for r in order:
        if not keep[r["version"]]:
            continue
        comment = "    /* %s: measured on %s (%s)" % (r["minor"], r["version"], r["label"])
        if also[r["version"]]:
            comment += ";\n     * identical facts measured on %s" % ", ".join(also[r["version"]])
        o.append(comment + " */")
        o.append("    {")
        o.append("        .version_hex = 0x%08X," % r["version_hex"])
        o.append("        .flags = AU_PY_FLAG_DEFAULT_BUILD,")
        o.append('        .name = "%s",' % r["minor"])
        o.append('        .measured = "%s",' % r["version"])
        for name, ctype in fields:
            o.append("        .%s = %s," % (name, c_value(name, ctype, r["priv"][name], enums, r["version"])))
        o.append("        .tp_name = {")
        for tid in type_ids:
            raw = r["tpname"][tid]
            o.append("            [AU_PYT_%s] = %s," % (tid, c_value(tid, "const char *", raw, enums, r["version"])))
        o.append("        },")
        if r["adbg"]:
            o.append("        .asyncio_debug = &au_adbg_%s," % r["version"].replace(".", "_"))
        else:
            o.append("        .asyncio_debug = NULL,")
        o.append("    },")
    o.append("};")
    o.append(TEMPLATE)
    return "\n".join(o) + "\n"


TEMPLATE = r'''
#define AU_PRIV_NTABLES (sizeof au_priv_tables / sizeof au_priv_tables[0])

const au_py_private *au_py_private_all(size_t *n) {
    if (n != NULL) *n = AU_PRIV_NTABLES;
    return au_priv_tables;
}

/* Entries are in ascending version order.  Among the entries of the
 * target's major.minor, take the newest one not newer than the target,
 * or the oldest one when all are newer. */
const au_py_private *au_py_private_for(uint32_t version_hex) {
    const au_py_private *best = NULL;
    for (size_t i = 0; i < AU_PRIV_NTABLES; i++) {
        const au_py_private *e = &au_priv_tables[i];
        if ((e->version_hex >> 16) != (version_hex >> 16)) continue;
        if (best == NULL || e->version_hex <= version_hex) best = e;
    }
    return best;
}

const au_py_field_desc *au_py_private_fields(size_t *n) {
    if (n != NULL) *n = sizeof au_priv_fields / sizeof au_priv_fields[0];
    return au_priv_fields;
}

/* The published value of the field at byte offset `field` of `table`, or
 * UINT64_MAX when the section does not publish it. */
static uint64_t adbg_value(const au_py_asyncio_debug_layout *d, const unsigned char *b,
                           unsigned table, size_t field) {
    for (uint16_t i = 0; i < d->nfields; i++) {
        if (d->fields[i].table == table && d->fields[i].field == field)
            return au_rd64(b + d->fields[i].pos);
    }
    return UINT64_MAX;
}

/* 1 when [off, off + width) lies within size (both published or, when
 * unpublished, UINT64_MAX: then not checked). */
static int adbg_within(uint64_t off, uint64_t width, uint64_t size) {
    if (off == UINT64_MAX || size == UINT64_MAX) return 1;
    return off + width <= size;
}

int au_py_asyncio_debug_apply(au_py_private *priv, au_py_offsets *off,
                              const void *blob, size_t len) {
    if (priv == NULL || off == NULL || blob == NULL || priv->asyncio_debug == NULL)
        return AU_ERR_ARG;
    const au_py_asyncio_debug_layout *d = priv->asyncio_debug;
    const unsigned char *b = (const unsigned char *)blob;
    if (len < d->size) return AU_ERR_FORMAT;
    for (uint16_t i = 0; i < d->nfields; i++) {
        if (au_rd64(b + d->fields[i].pos) > AU_PY_DEBUG_MAX_VALUE) return AU_ERR_CORRUPT;
    }
    /* The section is untrusted: every published offset must lie within
     * the published size of its struct. */
    const unsigned P = AU_PY_ADBG_PRIVATE, O = AU_PY_ADBG_OFFSETS;
    uint64_t task = adbg_value(d, b, P, offsetof(au_py_private, sizeof_task));
    uint64_t interp = adbg_value(d, b, O, offsetof(au_py_offsets, sizeof_interp));
    uint64_t ts = adbg_value(d, b, O, offsetof(au_py_offsets, sizeof_tstate_impl));
    if (!adbg_within(adbg_value(d, b, P, offsetof(au_py_private, task_name)), 8, task) ||
        !adbg_within(adbg_value(d, b, P, offsetof(au_py_private, task_coro)), 8, task) ||
        !adbg_within(adbg_value(d, b, P, offsetof(au_py_private, task_node)), 16, task) ||
        !adbg_within(adbg_value(d, b, P, offsetof(au_py_private, fut_awaited_by)), 8, task) ||
        !adbg_within(adbg_value(d, b, P, offsetof(au_py_private, fut_is_task)), 1, task) ||
        !adbg_within(adbg_value(d, b, P, offsetof(au_py_private, fut_awaited_by_is_set)), 1,
                     task) ||
        !adbg_within(adbg_value(d, b, O, offsetof(au_py_offsets, interp_asyncio_tasks_head)), 16,
                     interp) ||
        !adbg_within(adbg_value(d, b, O, offsetof(au_py_offsets, tstate_asyncio_running_loop)), 8,
                     ts) ||
        !adbg_within(adbg_value(d, b, O, offsetof(au_py_offsets, tstate_asyncio_running_task)), 8,
                     ts) ||
        !adbg_within(adbg_value(d, b, O, offsetof(au_py_offsets, tstate_asyncio_tasks_head)), 16,
                     ts))
        return AU_ERR_CORRUPT;
    int changed = 0;
    for (uint16_t i = 0; i < d->nfields; i++) {
        uint32_t v = (uint32_t)au_rd64(b + d->fields[i].pos);
        unsigned char *slot = d->fields[i].table == AU_PY_ADBG_PRIVATE
                                  ? (unsigned char *)priv + d->fields[i].field
                                  : (unsigned char *)off + d->fields[i].field;
        uint32_t cur;
        memcpy(&cur, slot, sizeof cur);
        if (cur != v) {
            memcpy(slot, &v, sizeof v);
            changed++;
        }
    }
    priv->flags |= AU_PY_FLAG_FROM_DEBUG_OFFSETS;
    return changed;
}'''


def main(argv):
    check = False
    out = OUT
    i = 0
    while i < len(argv):
        if argv[i] == "--check":
            check = True
        elif argv[i] == "-o" and i + 1 < len(argv):
            out = argv[i + 1]
            i += 1
        else:
            die("usage: gen_private.py [--check] [-o OUTPUT]")
        i += 1

    enums = enums_of(HDR_OFF, HDR_PRIV, HDR_LT)
    mirror = probe_literal("ENUMS")
    for name, val in mirror.items():
        if enums.get(name) != val:
            die("probe_private.py ENUMS[%s] = %d, headers say %r" % (name, val, enums.get(name)))
    type_ids = [m[len("AU_PYT_"):] for m in enum_members(HDR_PRIV, "au_py_type_id")
                if m != "AU_PYT_COUNT"]
    if type_ids != probe_literal("TYPE_IDS"):
        die("probe_private.py TYPE_IDS differ from enum au_py_type_id")
    fields = [(n, t) for n, t in struct_fields(HDR_PRIV, "au_py_private")
              if n not in ("version_hex", "flags", "name", "measured", "tp_name", "asyncio_debug")]

    results = []
    for label, argv_, version in INTERPRETERS:
        res = parse(run_probe(label, argv_, version, enums), version)
        res.update(label=label, version=version,
                   minor=".".join(version.split(".")[:2]))
        names = {n for n, _ in fields}
        extra = set(res["priv"]) - names
        lacking = names - set(res["priv"])
        if extra or lacking:
            die("%s: probe prints unknown fields %s, misses %s" % (version, sorted(extra), sorted(lacking)))
        if set(res["tpname"]) != set(type_ids):
            die("%s: probe type names differ from au_py_type_id" % version)
        results.append(res)

    text = generate(results, fields, type_ids, enums)
    if check:
        cur = open(out).read() if os.path.exists(out) else ""
        if cur != text:
            sys.stdout.writelines(difflib.unified_diff(
                cur.splitlines(True), text.splitlines(True), out, "generated"))
            die("%s is out of date: run tools/gen_private.py" % out)
        print("gen_private: %s is up to date" % out)
    else:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(out))
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, out)
        print("gen_private: wrote %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
