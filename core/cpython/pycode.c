/*
 * The CPython model, part 2: code objects, their strings and line numbers.
 *
 * Code objects and the strings they point to are immutable while alive,
 * so what we decode from them is cached, keyed by address.  Addresses are
 * reused once an object is freed, which is how other profilers came to
 * show a dead function's name for a live one.  So a cache hit is not taken
 * on the address alone for long: an entry's code object header is re-read
 * (one read per distinct code object, in one batch) and compared with the
 * fields the entry was built from (type, the name, qualname, filename and
 * line-table pointers, first line) at least every code_check_every samples
 * that use it (au_pyreader_limits; 1 checks every sample).  Any difference
 * refetches.  Why not every sample: a warm frame-only sample of a 40-frame
 * stack read 10 pages, 4 of them for the headers of 4 code objects that a
 * running frame keeps alive anyway; for an address to show a wrong name, a
 * code object must die and another be allocated at its address and be
 * running, all between two checks.  The header due next sample is hinted
 * to the prefetch (au_pr_hint_next), so a check costs no system call.
 *
 * The cache is an open-addressing table with a short probe window and
 * least-recently-used eviction inside the window: bounded memory, no
 * allocation on a hit.
 */
#include <string.h>

#include "asyncunwind.h"
#include "au_internal.h"
#include "au_linetable.h"
#include "au_pyreader.h"

#define NONE UINT32_MAX
#define PREFIX 256u         /* bytes read past an object's header at first */
#define MAX_TYPE_CHECKS 4u  /* type objects verified per sample */


/* ---- the cache ----------------------------------------------------------- */

static uint32_t cache_slot(au_pyreader *r, uint64_t addr) {
    uint32_t mask = r->cache_cap - 1, h = (uint32_t)au_mix64(addr) & mask;
    uint32_t victim = NONE;
    for (uint32_t k = 0; k < AU_PR_PROBE; k++) {
        uint32_t s = (h + k) & mask;
        au_codeentry *e = &r->cache[s];
        if (e->addr == addr) return s;
        if (e->used == r->sample_no && e->addr) continue; /* in use now */
        if (victim == NONE || !e->addr ||
            (r->cache[victim].addr && e->used < r->cache[victim].used))
            victim = s;
    }
    if (victim == NONE) return NONE;
    au_codeentry *e = &r->cache[victim];
    if (e->addr) r->stats.code_evictions++;
    e->addr = addr;
    e->valid = 0;
    e->memo_ok = e->memo_next = 0;
    memset(&e->key, 0, sizeof e->key);
    return victim;
}

void au_pr_cache_free(au_pyreader *r) {
    for (uint32_t i = 0; r->cache && i < r->cache_cap; i++) {
        au_codeentry *e = &r->cache[i];
        if (e->text) r->alloc.realloc(r->alloc.ud, e->text, e->text_cap, 0);
        if (e->table) r->alloc.realloc(r->alloc.ud, e->table, e->table_cap, 0);
    }
}

const au_pycode *au_pyreader_code(const au_pyreader *r, uint32_t code) {
    if (!r || code >= r->cache_cap || !r->cache[code].valid) return NULL;
    return &r->cache[code].info;
}

/* ---- objects ------------------------------------------------------------- */

static uint32_t code_header_len(const au_py_offsets *o) {
    uint32_t f[] = {o->ob_type, o->code_name, o->code_qualname, o->code_filename,
                    o->code_linetable, o->code_firstlineno};
    uint32_t end = 0;
    for (int i = 0; i < 6; i++)
        if (au_pr_present(f[i]) && f[i] + 8 > end) end = f[i] + 8;
    return end;
}

static au_codekey parse_key(const au_py_offsets *o, const uint8_t *h) {
    au_codekey k;
    k.type = au_rd64(h + o->ob_type);
    k.name = au_rd64(h + o->code_name);
    k.qualname = au_pr_present(o->code_qualname) ? au_rd64(h + o->code_qualname) : k.name;
    k.filename = au_rd64(h + o->code_filename);
    k.linetable = au_rd64(h + o->code_linetable);
    k.firstlineno = (int32_t)au_rd32(h + o->code_firstlineno);
    return k;
}

static int same_key(const au_codekey *a, const au_codekey *b) {
    return a->type == b->type && a->name == b->name && a->qualname == b->qualname &&
           a->filename == b->filename && a->linetable == b->linetable &&
           a->firstlineno == b->firstlineno;
}

/* Is `type` PyCode_Type?  Learnt once by reading the type's tp_name. */
static int is_code_type(au_pyreader *r, uint64_t type, uint32_t *checks) {
    if (!type || (type & 7)) return 0;
    if (r->code_type) return type == r->code_type;
    if ((*checks)++ >= MAX_TYPE_CHECKS) return 0;
    uint64_t name_ptr;
    char name[5];
    r->stats.batches++;
    if (au_mem_read1(r->mem, type + r->off.type_tp_name, &name_ptr, 8) != AU_OK) return 0;
    r->stats.batches++;
    if (au_mem_read1(r->mem, name_ptr, name, 5) != AU_OK) return 0;
    if (memcmp(name, "code", 5) != 0) return 0;
    r->code_type = type;
    return 1;
}

/* ---- strings ------------------------------------------------------------ */

/* Append c as UTF-8; lone surrogates and out-of-range values become U+FFFD
 * (target data is not trusted to be valid Unicode). */
/* The layout of a str from its header: where its characters start, how
 * wide they are and how many we keep.  0 when it is not a compact str we
 * can decode. */
typedef struct strshape {
    uint32_t data_off, kind, count, cut;
} strshape;

static int str_shape(const au_pyreader *r, const uint8_t *h, strshape *s) {
    const au_py_offsets *o = &r->off;
    int64_t len = (int64_t)au_rd64(h + o->unicode_length);
    uint32_t state = au_rd32(h + o->unicode_state);
    uint32_t kind = state >> o->unicode_kind_shift & ((1u << o->unicode_kind_width) - 1);
    uint32_t compact = state >> o->unicode_compact_shift & 1;
    uint32_t ascii = state >> o->unicode_ascii_shift & 1;
    if (len < 0 || len > (1 << 30) || !compact || (kind != 1 && kind != 2 && kind != 4))
        return 0;
    if (ascii && kind != 1) return 0;
    s->data_off = ascii ? o->sizeof_ascii : o->sizeof_compact;
    s->kind = kind;
    s->count = (uint64_t)len > r->lim.max_name ? r->lim.max_name : (uint32_t)len;
    s->cut = (uint64_t)len > r->lim.max_name;
    return 1;
}

/* Decode s->count characters at p into out (room for count*4+3). */
static uint32_t decode(const strshape *s, const uint8_t *p, char *out) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->count; i++) {
        uint32_t c = s->kind == 1   ? p[i]
                     : s->kind == 2 ? (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8
                                    : au_rd32(p + 4 * i);
        n += au_put_utf8(out + n, c);
    }
    if (s->cut) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    return n;
}

/* ---- fetching what a missed entry needs ---------------------------------- */

enum { F_NAME, F_QUALNAME, F_FILENAME, F_TABLE, F_COUNT };

typedef struct code_fetch {
    uint32_t slot, what;
    uint64_t addr;
    uint32_t buf_off, got; /* bytes of the object at buf + buf_off */
    uint32_t need;         /* bytes needed from the object's start */
    int failed;
} code_fetch;

static uint32_t header_len(const au_py_offsets *o, uint32_t what);

/* Bytes of the object's start needed to hold all of it (what we keep),
 * given its header; 0 if the header is invalid. */
static uint32_t needed(const au_pyreader *r, const code_fetch *f, const uint8_t *h) {
    const au_py_offsets *o = &r->off;
    if (f->what == F_TABLE) {
        int64_t size = (int64_t)au_rd64(h + o->var_ob_size);
        if (size < 0 || size > AU_PR_MAX_TABLE) return 0;
        uint32_t need = o->bytes_ob_sval + (uint32_t)size, hl = header_len(o, f->what);
        return need < hl ? hl : need;
    }
    strshape s;
    if (!str_shape(r, h, &s)) return 0;
    /* max_name is bounded (au_pyreader_new), so this cannot wrap. */
    uint64_t need = (uint64_t)s.data_off + (uint64_t)s.count * s.kind;
    uint32_t hl = header_len(o, f->what);
    return need < hl ? hl : (uint32_t)need;
}

/* Make a code entry's buffer *pptr of *cap bytes (its text or its line
 * table) hold need bytes, keeping its contents.  Sized exactly, not
 * geometrically as au_grow does: the cache holds thousands of entries,
 * and an entry is rarely filled twice. */
static int entry_fit(au_pyreader *r, void *pptr, uint32_t *cap, size_t need) {
    if (need <= *cap) return AU_OK;
    void **p = (void **)pptr;
    void *t = r->alloc.realloc(r->alloc.ud, *p, *cap, need);
    if (!t) return AU_ERR_NOMEM;
    r->stats.allocations++;
    *p = t;
    *cap = (uint32_t)need;
    return AU_OK;
}

/* Bytes of an object's start that hold every header field we read.  The
 * offsets may come from the target (_Py_DebugOffsets), so all of them are
 * covered, whatever their order; au_pyreader_new bounds them. */
static uint32_t header_len(const au_py_offsets *o, uint32_t what) {
    uint32_t h = what == F_TABLE ? o->bytes_ob_sval : o->sizeof_compact;
    uint32_t f1 = what == F_TABLE ? o->var_ob_size + 8 : o->unicode_length + 8;
    uint32_t f2 = what == F_TABLE ? 0 : o->unicode_state + 4;
    if (f1 > h) h = f1;
    return f2 > h ? f2 : h;
}

/* Store the fetched objects into their entries. */
static int store(au_pyreader *r, code_fetch *fs, uint32_t nf) {
    for (uint32_t i = 0; i < nf; i += F_COUNT) {
        au_codeentry *e = &r->cache[fs[i].slot];
        /* Text: name, qualname, filename, at most 4 bytes per character
         * plus the "..." of a cut name. */
        size_t room = 0;
        for (uint32_t w = F_NAME; w <= F_FILENAME; w++) {
            strshape s;
            if (!fs[i + w].failed && fs[i + w].got >= fs[i + w].need &&
                str_shape(r, r->buf + fs[i + w].buf_off, &s))
                room += (size_t)s.count * 4 + 3;
        }
        if (entry_fit(r, &e->text, &e->text_cap, room)) return AU_ERR_NOMEM;
        uint32_t at = 0, lens[3] = {0, 0, 0};
        int ok = 1;
        for (uint32_t w = F_NAME; w <= F_FILENAME; w++) {
            code_fetch *f = &fs[i + w];
            strshape s;
            const uint8_t *h = r->buf + f->buf_off;
            if (f->failed || f->got < f->need || !str_shape(r, h, &s)) {
                ok = 0;
                break;
            }
            lens[w] = decode(&s, h + s.data_off, e->text + at);
            at += lens[w];
        }
        code_fetch *tf = &fs[i + F_TABLE];
        uint32_t tlen = tf->need > r->off.bytes_ob_sval ? tf->need - r->off.bytes_ob_sval : 0;
        if (ok && !tf->failed && tf->got >= tf->need && tlen) {
            if (entry_fit(r, &e->table, &e->table_cap, tlen)) return AU_ERR_NOMEM;
            memcpy(e->table, r->buf + tf->buf_off + r->off.bytes_ob_sval, tlen);
        }
        e->table_len = ok && !tf->failed ? tlen : 0;
        e->table_ok = ok && !tf->failed && tf->got >= tf->need;
        e->memo_ok = e->memo_next = 0;
        e->valid = ok;
        e->genq = 0;
        if (!ok) continue;
        e->info.name = e->text;
        e->info.name_len = lens[0];
        e->info.qualname = e->text + lens[0];
        e->info.qualname_len = lens[1];
        e->info.filename = e->text + lens[0] + lens[1];
        e->info.filename_len = lens[2];
        e->info.firstlineno = e->key.firstlineno;
    }
    return AU_OK;
}

/* Fetch names and line tables for the entries in r->pending[0..n), in at
 * most three rounds: each object's header plus a prefix, which is all of
 * most names; the header alone where that failed (an object near the end
 * of a mapping); then the whole of the longer ones. */
static int fetch_missing(au_pyreader *r, uint32_t n) {
    if (n == 0) return AU_OK;
    const au_py_offsets *o = &r->off;
    uint32_t nf = n * F_COUNT;
    uint32_t small = header_len(o, F_NAME) > header_len(o, F_TABLE) ? header_len(o, F_NAME)
                                                                    : header_len(o, F_TABLE);
    small += PREFIX;
    /* r->buf: the fetch descriptors, then a small window per object, then
     * (round 3) room for the long objects. */
    size_t base = (size_t)nf * sizeof(code_fetch);
    size_t total = base + (size_t)nf * small;
    if (au_pr_grow(r, &r->buf, &r->buf_cap, total, 1) ||
        au_pr_grow(r, &r->reads, &r->reads_cap, nf, sizeof *r->reads))
        return AU_ERR_NOMEM;
    code_fetch *fs = (code_fetch *)(void *)r->buf;
    for (uint32_t i = 0; i < n; i++) {
        const au_codekey *k = &r->cache[r->pending[i]].key;
        uint64_t addrs[F_COUNT] = {k->name, k->qualname, k->filename, k->linetable};
        for (uint32_t w = 0; w < F_COUNT; w++) {
            uint32_t j = i * F_COUNT + w;
            fs[j] = (code_fetch){r->pending[i], w, addrs[w], (uint32_t)(base + (size_t)j * small), 0, 0,
                            !addrs[w] || (addrs[w] & 7)};
        }
    }
    for (int round = 0; round < 3; round++) {
        if (round == 2) {
            /* Room for the long objects, after everything else. */
            size_t extra = total;
            for (uint32_t i = 0; i < nf; i++)
                if (!fs[i].failed && fs[i].got < fs[i].need) extra += fs[i].need;
            if (extra > UINT32_MAX) return AU_ERR_LIMIT;
            if (au_pr_grow(r, &r->buf, &r->buf_cap, extra, 1)) return AU_ERR_NOMEM;
            fs = (code_fetch *)(void *)r->buf;
            for (uint32_t i = 0; i < nf; i++) {
                if (fs[i].failed || fs[i].got >= fs[i].need) continue;
                fs[i].buf_off = (uint32_t)total;
                total += fs[i].need;
            }
        }
        uint32_t nr = 0;
        for (uint32_t i = 0; i < nf; i++) {
            code_fetch *f = &fs[i];
            uint32_t want;
            if (f->failed) continue;
            if (round == 0) want = small;
            else if (round == 1 && f->got == 0) want = header_len(o, f->what);
            else if (round == 2 && f->got < f->need) want = f->need;
            else continue;
            r->reads[nr++] = (au_read){f->addr, r->buf + f->buf_off, want, AU_OK};
        }
        if (nr == 0) continue;
        au_pr_batch(r, nr);
        for (uint32_t i = 0, k = 0; i < nf && k < nr; i++) {
            code_fetch *f = &fs[i];
            if (f->failed || r->reads[k].buf != r->buf + f->buf_off) continue;
            au_read *rd = &r->reads[k++];
            if (rd->status != AU_OK) {
                if (round != 0) f->failed = 1; /* after round 0: header alone */
                continue;
            }
            f->got = rd->len;
            if (round < 2 && f->got >= header_len(o, f->what)) {
                f->need = needed(r, f, r->buf + f->buf_off);
                if (f->need == 0) f->failed = 1;
            }
        }
    }
    return store(r, fs, nf);
}

/* ---- frames -------------------------------------------------------------- */

/* The line of a frame, CPython's way (see au_linetable.h for the units). */
static int32_t frame_line(const au_pyreader *r, au_codeentry *e, const au_rawframe *f) {
    const au_py_offsets *o = &r->off;
    int64_t units;
    switch (o->instr_kind) {
    case AU_PY_INSTR_BYTE_LASTI: units = (int64_t)f->instr < 0 ? -1 : (int64_t)f->instr / 2; break;
    case AU_PY_INSTR_UNIT_LASTI: units = (int64_t)f->instr; break;
    default: {
        uint64_t base = e->addr + o->code_code_adaptive;
        units = f->instr < base ? -1 : (int64_t)((f->instr - base) / 2);
    }
    }
    if (units < 0) return e->info.firstlineno;
    if (units > INT32_MAX || !e->table_ok) return -1;
    for (uint32_t k = 0; k < e->memo_ok; k++)
        if (e->memo_units[k] == (uint32_t)units) return e->memo_line[k];
    int32_t line;
    if (au_linetable_line((au_linetable_kind)o->linetable_kind, e->table, e->table_len,
                          e->info.firstlineno, (uint32_t)units, &line) != AU_OK)
        line = -1;
    uint32_t k = e->memo_next;
    e->memo_next = (k + 1) % AU_PR_MEMO;
    e->memo_units[k] = (uint32_t)units;
    e->memo_line[k] = line;
    if (e->memo_ok < AU_PR_MEMO) e->memo_ok++;
    return line;
}

/* ---- generator names (<= 3.10) ------------------------------------------- */

/* Replace entry e's qualname with the str whose header (and as much of its
 * data as was read, got bytes) is at h. */
static int set_qualname(au_pyreader *r, au_codeentry *e, const uint8_t *h, uint32_t got) {
    strshape s;
    if (got < header_len(&r->off, F_NAME) || !str_shape(r, h, &s) ||
        got < s.data_off + (uint64_t)s.count * s.kind)
        return AU_ERR_CORRUPT;
    uint32_t nl = e->info.name_len, fl = e->info.filename_len;
    size_t room = (size_t)nl + fl + (size_t)s.count * 4 + 3;
    if (entry_fit(r, &e->text, &e->text_cap, room)) return AU_ERR_NOMEM;
    /* name | qualname | filename (store's layout; the text may have just
     * moved, so by offset): the filename moves to after the new qualname,
     * and is copied aside first. */
    char fname[AU_PR_MAX_NAME * 4 + 3];
    memcpy(fname, e->text + nl + e->info.qualname_len, fl);
    uint32_t ql = decode(&s, h + s.data_off, e->text + nl);
    memcpy(e->text + nl + ql, fname, fl);
    e->info.name = e->text;
    e->info.qualname = e->text + nl;
    e->info.qualname_len = ql;
    e->info.filename = e->text + nl + ql;
    return AU_OK;
}

/* Before 3.11 a code object knows only its bare name, but a generator or
 * coroutine carries its function's __qualname__: name the entries of the
 * code objects whose frames belong to one (a method coroutine is then
 * Client.fetch, not code_fetch).  Every frame of a generator's code runs in a
 * generator, so the entry is renamed, once per qualname object. */
static int name_generators(au_pyreader *r, const au_rawframe *raw, uint32_t n, const au_pyframe *out) {
    const au_py_offsets *o = &r->off;
    uint32_t np = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!raw[i].gen || (raw[i].gen & 7) || out[i].code == NONE) continue;
        uint32_t k;
        for (k = 0; k < np && r->pending[k] != out[i].code; k++) continue;
        if (k < np || np == AU_PR_MAX_FETCH) continue;
        if (au_pr_grow(r, &r->pending, &r->pending_cap, (size_t)np + 1, sizeof *r->pending) ||
            au_pr_grow(r, &r->raw_gen, &r->raw_gen_cap, (size_t)np + 1, sizeof *r->raw_gen))
            return AU_ERR_NOMEM;
        r->pending[np] = out[i].code;
        r->raw_gen[np++] = raw[i].gen;
    }
    if (np == 0) return AU_OK;
    uint32_t span = header_len(o, F_NAME) + PREFIX;
    if (au_pr_grow(r, &r->buf, &r->buf_cap, (size_t)np * span, 1) ||
        au_pr_grow(r, &r->reads, &r->reads_cap, 2 * (size_t)np, sizeof *r->reads))
        return AU_ERR_NOMEM;
    /* The qualname and code pointers, then the strings that changed.  The
     * generator is read a moment after its frame, and may be another one
     * by then (the frame's f_gen is stale once the generator finished):
     * its qualname is taken only if it still runs the frame's code.  A
     * snapshot written before this check has no gi_code: then the
     * qualname is taken as it was. */
    for (uint32_t k = 0; k < np; k++) {
        r->reads[k] = (au_read){r->raw_gen[k] + o->gen_qualname, r->buf + 16 * k, 8, AU_OK};
        r->reads[np + k] = (au_read){r->raw_gen[k] + o->gen_code, r->buf + 16 * k + 8, 8, AU_OK};
    }
    au_pr_batch(r, 2 * np);
    uint32_t nr = 0;
    for (uint32_t k = 0; k < np; k++) {
        uint64_t q = r->reads[k].status == AU_OK ? au_rd64(r->buf + 16 * k) : 0;
        au_codeentry *e = &r->cache[r->pending[k]];
        int other = r->reads[np + k].status == AU_OK && au_rd64(r->buf + 16 * k + 8) != e->addr;
        r->raw_gen[k] = (!q || (q & 7) || q == e->genq || other) ? 0 : q;
    }
    for (uint32_t k = 0; k < np; k++)
        if (r->raw_gen[k])
            r->reads[nr++] = (au_read){r->raw_gen[k], r->buf + (size_t)k * span, span, AU_OK};
    if (nr == 0) return AU_OK;
    au_pr_batch(r, nr);
    for (uint32_t k = 0, j = 0; k < np && j < nr; k++) {
        if (!r->raw_gen[k]) continue;
        au_read *rd = &r->reads[j++];
        au_codeentry *e = &r->cache[r->pending[k]];
        /* A name longer than the prefix is read whole, alone: rare. */
        const uint8_t *h = r->buf + (size_t)k * span;
        uint32_t got = rd->status == AU_OK ? span : 0;
        strshape s;
        uint8_t *big = NULL;
        uint32_t need = 0;
        if (got && str_shape(r, h, &s) && (need = s.data_off + s.count * s.kind) > got) {
            big = r->alloc.realloc(r->alloc.ud, NULL, 0, need);
            if (!big) return AU_ERR_NOMEM;
            r->stats.allocations++;
            r->stats.batches++;
            got = au_mem_read1(r->mem, r->raw_gen[k], big, need) == AU_OK ? need : 0;
            h = big;
        }
        int rc = got ? set_qualname(r, e, h, got) : AU_ERR_READ;
        if (big) r->alloc.realloc(r->alloc.ud, big, need, 0);
        if (rc == AU_ERR_NOMEM) return rc;
        if (rc == AU_OK) e->genq = r->raw_gen[k];
    }
    return AU_OK;
}

#define RESOLVE_MEMO 128u /* au_pr_resolve_code's memo (a power of 2) */

int au_pr_resolve_code(au_pyreader *r, const au_rawframe *raw, uint32_t n, au_pyframe *out) {
    const au_py_offsets *o = &r->off;
    uint32_t hlen = code_header_len(o), every = r->lim.code_check_every;
    /* The slots and lines of the last few code objects and instructions
     * met in this call: a thousand idle tasks wait at a handful of places,
     * and each cache probe or line memo scan is dearer than one compare.
     * A slot given out in this call is in use and is not evicted until the
     * next, so a remembered one stays right. */
    uint64_t memo_code[RESOLVE_MEMO], memo_instr[RESOLVE_MEMO];
    uint32_t memo_slot[RESOLVE_MEMO];
    int32_t memo_line[RESOLVE_MEMO];
    memset(memo_code, 0, sizeof memo_code); /* 0 is no code's address */
    /* 1. A slot per distinct code object.  Those due for a check go to the
     * front of r->pending (ndue of them), the others after them. */
    uint32_t nd = 0, ndue = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t code = raw[i].code;
        if (i && code == raw[i - 1].code) { /* a recursion: one lookup */
            out[i].code = out[i - 1].code;
            continue;
        }
        uint32_t m = (uint32_t)au_mix64(code) & (RESOLVE_MEMO - 1);
        if (code && memo_code[m] == code) { /* met in this call: handled */
            out[i].code = memo_slot[m];
            continue;
        }
        uint32_t s = code && !(code & 7) ? cache_slot(r, code) : NONE;
        out[i].code = s;
        if (s != NONE) {
            memo_code[m] = code;
            memo_slot[m] = s;
        }
        if (s == NONE || r->cache[s].used == r->sample_no) continue;
        au_codeentry *e = &r->cache[s];
        e->used = r->sample_no;
        if (au_pr_grow(r, &r->pending, &r->pending_cap, (size_t)nd + 1, sizeof *r->pending))
            return AU_ERR_NOMEM;
        r->pending[nd++] = s;
        if (e->valid && r->sample_no - e->checked < every) {
            r->stats.code_hits++; /* checked recently enough: trusted */
            continue;
        }
        r->pending[nd - 1] = r->pending[ndue];
        r->pending[ndue++] = s;
    }
    /* 2. The due ones' headers, in one batch.  The next sample repeats
     * none of these reads unless its own checks fall due, so they are
     * served from the prefetch (an earlier sample's au_pr_hint_next) but
     * not recorded; the headers due next sample are hinted instead. */
    if (au_pr_grow(r, &r->buf, &r->buf_cap, (size_t)ndue * hlen + 1, 1) ||
        au_pr_grow(r, &r->reads, &r->reads_cap, ndue ? ndue : 1, sizeof *r->reads))
        return AU_ERR_NOMEM;
    for (uint32_t k = 0; k < ndue; k++)
        r->reads[k] = (au_read){r->cache[r->pending[k]].addr, r->buf + (size_t)k * hlen, hlen, AU_OK};
    if (ndue) {
        int was = au_pr_hints_pause(r, r->recording == AU_PR_REC_ON ? AU_PR_REC_SERVE
                                                                    : r->recording);
        au_pr_batch(r, ndue);
        au_pr_hints_pause(r, was);
    }
    for (uint32_t k = 0; k < nd; k++) {
        au_codeentry *e = &r->cache[r->pending[k]];
        if (k < ndue) e->checked = r->sample_no;
        if (r->sample_no + 1 - e->checked >= every) au_pr_hint_next(r, e->addr, hlen);
    }
    /* 3. Validate each due entry against the header just read. */
    uint32_t nmiss = 0, checks = 0;
    for (uint32_t k = 0; k < ndue; k++) {
        au_codeentry *e = &r->cache[r->pending[k]];
        if (r->reads[k].status != AU_OK) {
            e->valid = 0;
            memset(&e->key, 0, sizeof e->key);
            continue;
        }
        au_codekey key = parse_key(o, r->buf + (size_t)k * hlen);
        if (e->valid && same_key(&key, &e->key)) {
            r->stats.code_hits++;
            continue;
        }
        e->valid = 0;
        e->key = key;
        if (!is_code_type(r, key.type, &checks)) continue;
        if (nmiss == AU_PR_MAX_FETCH) {
            /* Bound the work of one sample; the rest are fetched by the
             * next samples, and show as unknown in this one. */
            memset(&e->key, 0, sizeof e->key);
            continue;
        }
        r->stats.code_misses++;
        r->pending[nmiss++] = r->pending[k];
    }
    /* A code object's names are read once, then cached: the next sample's
     * prefetch has no use for them. */
    int was = au_pr_hints_pause(r, 0);
    int rc = fetch_missing(r, nmiss);
    au_pr_hints_pause(r, was);
    if (rc) return rc;
    /* 4. Frames.  A recursion's frames mostly stand at the same
     * instruction of the same code: their line is the previous frame's;
     * other frames at a place met in this call take its line from the
     * memo (slots are final now, so the key is slot and instruction). */
    memset(memo_code, 0, sizeof memo_code);
    for (uint32_t i = 0; i < n; i++) {
        au_pyframe *f = &out[i];
        uint32_t s = f->code;
        f->addr = raw[i].addr;
        f->code_addr = raw[i].code;
        if (i && raw[i].code == raw[i - 1].code && raw[i].instr == raw[i - 1].instr) {
            f->code = out[i - 1].code;
            f->line = out[i - 1].line;
            continue;
        }
        f->line = -1;
        if (s != NONE && !r->cache[s].valid) s = NONE;
        f->code = s;
        if (s == NONE) continue;
        uint64_t key = (uint64_t)s + 1;
        uint32_t m = (uint32_t)au_mix64(key ^ au_mix64(raw[i].instr)) & (RESOLVE_MEMO - 1);
        if (memo_code[m] == key && memo_instr[m] == raw[i].instr) {
            f->line = memo_line[m];
            continue;
        }
        f->line = frame_line(r, &r->cache[s], &raw[i]);
        memo_code[m] = key;
        memo_instr[m] = raw[i].instr;
        memo_line[m] = f->line;
    }
    if (au_pr_present(r->off.gen_qualname) && !au_pr_present(r->off.code_qualname))
        return name_generators(r, raw, n, out);
    return AU_OK;
}
