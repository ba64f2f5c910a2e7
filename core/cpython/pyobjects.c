/*
 * Python objects read from outside, through a page view (au_pyobjects.h).
 *
 * The readers are small and synchronous: each reads what it needs through
 * the view, which serves it from pages already fetched (a caller that
 * reads a whole level asked for them in one batch) or fetches the missing
 * page on the spot.  Nothing is trusted: lengths and counts are bounded
 * before they size anything, pointers are checked for alignment, and a
 * value that cannot be read is an error, never a guess.
 */
#include <string.h>

#include "au_bytes.h"
#include "au_internal.h"
#include "au_pyobjects.h"

#define NONE UINT32_MAX
#define ARENA_MAX (8u << 20) /* string bytes decoded per sample */
#define CHUNK (64u << 10)    /* the arena grows by chunks that never move */
#define MAX_CHUNKS (ARENA_MAX / CHUNK + 1)

typedef struct tcache {
    uint64_t type;     /* 0: empty */
    uint64_t name_ptr; /* tp_name when classified */
    uint64_t base;     /* tp_base when classified */
    uint32_t checked;  /* the sample it was last validated in */
    uint8_t kind;      /* au_okind */
} tcache;

struct au_objects {
    au_allocator alloc;
    au_view *view;
    const au_objlayout *l;
    tcache types[AU_OBJ_TYPE_CACHE];
    uint32_t next_victim, last_type;
    uint32_t sample;      /* counts au_objects_begin calls (never 0) */
    uint64_t none_addr;   /* Py_None, once met */
    /* This sample's decoded strings, in chunks of CHUNK bytes: a string
     * handed out stays where it is until the next sample.  chunk[cur] is
     * being filled, `used` bytes of it. */
    char *chunk[MAX_CHUNKS];
    uint32_t nchunks, cur, used, total;
    uint64_t allocations;
};

static int aligned(uint64_t a) { return a >= 4096 && (a & 7) == 0; }

/* Slots a type may sit in, from its hash on: a small set-associative
 * cache (AU_OBJ_TYPE_CACHE is a power of two). */
#define TYPE_WAYS 8u

void au_objlayout_init(au_objlayout *l, const au_py_offsets *o, const au_py_private *p) {
    memset(l, 0, sizeof *l);
    l->o = o;
    l->p = p;
    static const struct {
        au_okind kind;
        uint32_t id;
    } map[] = {
        {AU_OK_NONE, AU_PYT_NONE},
        {AU_OK_STR, AU_PYT_STR},
        {AU_OK_INT, AU_PYT_INT},
        {AU_OK_TUPLE, AU_PYT_TUPLE},
        {AU_OK_LIST, AU_PYT_LIST},
        {AU_OK_DICT, AU_PYT_DICT},
        {AU_OK_SET, AU_PYT_SET},
        {AU_OK_WEAKREF, AU_PYT_WEAKREF},
        {AU_OK_MODULE, AU_PYT_MODULE},
        {AU_OK_CELL, AU_PYT_CELL},
        {AU_OK_FUNCTION, AU_PYT_FUNCTION},
        {AU_OK_METHOD, AU_PYT_METHOD},
        {AU_OK_CFUNCTION, AU_PYT_BUILTIN_METHOD},
        {AU_OK_PARTIAL, AU_PYT_PARTIAL},
        {AU_OK_COROUTINE, AU_PYT_COROUTINE},
        {AU_OK_GENERATOR, AU_PYT_GENERATOR},
        {AU_OK_ASYNC_GENERATOR, AU_PYT_ASYNC_GENERATOR},
        {AU_OK_ASEND, AU_PYT_ASYNC_GEN_ASEND},
        {AU_OK_ATHROW, AU_PYT_ASYNC_GEN_ATHROW},
        {AU_OK_CORO_WRAPPER, AU_PYT_CORO_WRAPPER},
        {AU_OK_TASK, AU_PYT_TASK},
        {AU_OK_FUTURE, AU_PYT_FUTURE},
        {AU_OK_FUTURE_ITER, AU_PYT_FUTURE_ITER},
        {AU_OK_TASK_WAKEUP, AU_PYT_WAKEUP},
        {AU_OK_GATHERING_FUTURE, AU_PYT_GATHERING_FUTURE},
        {AU_OK_TASK_GROUP, AU_PYT_TASK_GROUP},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        l->type_name[map[i].kind] = p->tp_name[map[i].id];
    /* The same on every version (Objects/descrobject.c). */
    l->type_name[AU_OK_MEMBER_DESCR] = "member_descriptor";
}

int au_objects_new(const au_allocator *alloc, au_view *view, const au_objlayout *layout,
                   au_objects **out) {
    if (!out) return AU_ERR_ARG;
    *out = NULL;
    if (!view || !layout) return AU_ERR_ARG;
    au_allocator a;
    au_objects *ob = au_alloc_zeroed(alloc, sizeof *ob, &a);
    if (!ob) return AU_ERR_NOMEM;
    ob->alloc = a;
    ob->view = view;
    ob->l = layout;
    *out = ob;
    return AU_OK;
}

void au_objects_free(au_objects *ob) {
    if (!ob) return;
    for (uint32_t i = 0; i < ob->nchunks; i++) ob->alloc.realloc(ob->alloc.ud, ob->chunk[i], CHUNK, 0);
    ob->alloc.realloc(ob->alloc.ud, ob, sizeof *ob, 0);
}

void au_objects_begin(au_objects *ob) {
    if (++ob->sample == 0) { /* wrapped: forget every validation once */
        for (uint32_t i = 0; i < AU_OBJ_TYPE_CACHE; i++) ob->types[i].checked = 0;
        ob->sample = 1;
    }
    ob->cur = ob->used = ob->total = 0;
    ob->allocations = 0;
}

uint64_t au_objects_allocations(const au_objects *ob) { return ob ? ob->allocations : 0; }

/* ---- single reads ------------------------------------------------------- */

int au_obj_read_ptr(au_objects *ob, uint64_t addr, uint32_t off, uint64_t *out) {
    uint8_t b[8];
    *out = 0;
    if (!au_pyoff_present(off) || !aligned(addr) || addr + off < addr) return AU_ERR_READ;
    int rc = au_view_read(ob->view, addr + off, b, 8);
    if (rc == AU_OK) *out = au_rd64(b);
    return rc;
}

const uint8_t *au_obj_bytes(au_objects *ob, uint64_t addr, uint32_t len, uint8_t *scratch) {
    if (!aligned(addr)) return NULL;
    return au_view_bytes(ob->view, addr, len, scratch);
}

uint64_t au_obj_ptr(au_objects *ob, uint64_t addr, uint32_t off) {
    uint64_t v;
    return au_obj_read_ptr(ob, addr, off, &v) == AU_OK ? v : 0;
}

uint64_t au_obj_type(au_objects *ob, uint64_t addr) {
    uint64_t t = au_obj_ptr(ob, addr, ob->l->o->ob_type);
    return aligned(t) ? t : 0;
}

/* Compare the NUL-terminated C string at addr in the target with s. */
static int cstr_equals(au_objects *ob, uint64_t addr, const char *s) {
    size_t n = strlen(s) + 1;
    char buf[64];
    if (n > sizeof buf || addr < 4096) return 0;
    return au_view_read(ob->view, addr, buf, (uint32_t)n) == AU_OK && memcmp(buf, s, n) == 0;
}

/* The kind a type's own name says, without looking at its bases.  The
 * name is read once per type, not every sample: its page is not one for
 * the next sample to prefetch (au_view.h, transient reads). */
static au_okind kind_by_name(au_objects *ob, uint64_t name_ptr) {
    int was = au_view_set_transient(ob->view, 1);
    au_okind kind = AU_OK_UNKNOWN;
    for (int k = 1; k < AU_OK_COUNT && kind == AU_OK_UNKNOWN; k++) {
        const char *want = ob->l->type_name[k];
        if (want && cstr_equals(ob, name_ptr, want)) kind = (au_okind)k;
    }
    au_view_set_transient(ob->view, was);
    return kind;
}

static au_okind classify(au_objects *ob, uint64_t type, uint64_t *name_ptr, uint64_t *base) {
    const au_py_offsets *o = ob->l->o;
    *name_ptr = au_obj_ptr(ob, type, o->type_tp_name);
    *base = au_obj_ptr(ob, type, o->type_tp_base);
    au_okind k = *name_ptr ? kind_by_name(ob, *name_ptr) : AU_OK_UNKNOWN;
    if (k != AU_OK_UNKNOWN) return k;
    /* Subclasses of Task and Future (uvloop's, _GatheringFuture, an app's
     * own) are what they derive from. */
    uint64_t t = *base;
    for (uint32_t i = 0; t && i < AU_OBJ_MAX_BASES; i++) {
        uint64_t np = au_obj_ptr(ob, t, o->type_tp_name);
        au_okind bk = np ? kind_by_name(ob, np) : AU_OK_UNKNOWN;
        if (bk == AU_OK_TASK || bk == AU_OK_FUTURE || bk == AU_OK_GATHERING_FUTURE) return bk;
        t = au_obj_ptr(ob, t, o->type_tp_base);
    }
    return AU_OK_UNKNOWN;
}

au_okind au_type_kind(au_objects *ob, uint64_t type) {
    if (!aligned(type)) return AU_OK_UNKNOWN;
    const au_py_offsets *o = ob->l->o;
    /* Most lookups ask for the type asked for last.  The others look in
     * the TYPE_WAYS slots from the type's hash on (a walk that alternates
     * a coroutine, a future and a str asks for three types in turn). */
    uint32_t slot = ob->types[ob->last_type].type == type ? ob->last_type : NONE;
    uint32_t h = (uint32_t)au_mix64(type) & (AU_OBJ_TYPE_CACHE - 1), empty = NONE;
    for (uint32_t i = 0; slot == NONE && i < TYPE_WAYS; i++) {
        uint32_t k = (h + i) & (AU_OBJ_TYPE_CACHE - 1);
        if (ob->types[k].type == type) slot = k;
        else if (!ob->types[k].type && empty == NONE) empty = k;
    }
    if (slot != NONE) {
        ob->last_type = slot;
        /* A type may be freed and its address reused by another: the name
         * pointer and base it was classified by must still be there.
         * Checked once a sample: a sample reads each page once (au_view.h),
         * so a second check would read the bytes the first one read. */
        tcache *c = &ob->types[slot];
        if (c->checked == ob->sample) return (au_okind)c->kind;
        if (au_obj_ptr(ob, type, o->type_tp_name) == c->name_ptr &&
            au_obj_ptr(ob, type, o->type_tp_base) == c->base) {
            c->checked = ob->sample;
            return (au_okind)c->kind;
        }
    } else if (empty != NONE) {
        slot = empty;
    } else {
        slot = (h + ob->next_victim) & (AU_OBJ_TYPE_CACHE - 1);
        ob->next_victim = (ob->next_victim + 1) % TYPE_WAYS;
    }
    ob->last_type = slot;
    tcache *c = &ob->types[slot];
    c->type = type;
    c->kind = (uint8_t)classify(ob, type, &c->name_ptr, &c->base);
    c->checked = ob->sample;
    return (au_okind)c->kind;
}

au_okind au_obj_kind(au_objects *ob, uint64_t addr) {
    uint64_t t = au_obj_type(ob, addr);
    return t ? au_type_kind(ob, t) : AU_OK_UNKNOWN;
}

int au_obj_is_none(au_objects *ob, uint64_t addr) {
    if (!addr) return 0;
    if (ob->none_addr) return addr == ob->none_addr;
    if (au_obj_kind(ob, addr) != AU_OK_NONE) return 0;
    ob->none_addr = addr; /* None is static: its address never changes */
    return 1;
}

/* ---- str ------------------------------------------------------------------ */

/* Room for n bytes (n <= CHUNK) at *at; the caller then commits what it
 * used with arena_commit. */
static int arena_room(au_objects *ob, uint32_t n, char **at) {
    if (n > CHUNK || n > ARENA_MAX - ob->total) return AU_ERR_LIMIT;
    if (ob->nchunks == 0 || CHUNK - ob->used < n) {
        if (ob->nchunks && ob->used) { /* the current chunk is full enough */
            if (ob->cur + 1 == MAX_CHUNKS) return AU_ERR_LIMIT;
            ob->cur++;
            ob->used = 0;
        }
        if (ob->cur == ob->nchunks) {
            char *c = ob->alloc.realloc(ob->alloc.ud, NULL, 0, CHUNK);
            if (!c) return AU_ERR_NOMEM;
            ob->allocations++;
            ob->chunk[ob->nchunks++] = c;
        }
    }
    *at = ob->chunk[ob->cur] + ob->used;
    return AU_OK;
}

static void arena_commit(au_objects *ob, uint32_t n) {
    ob->used += n;
    ob->total += n;
}

int au_obj_intern(au_objects *ob, const char *s, uint32_t n, const char **out, uint32_t *len) {
    char *at;
    int rc = arena_room(ob, n, &at);
    if (rc) return rc;
    memcpy(at, s, n);
    arena_commit(ob, n);
    *out = at;
    *len = n;
    return AU_OK;
}

/* Bytes of a str object au_obj_str looks at first: its header (40 to 48
 * bytes) and the characters of a short name. */
#define STR_HEAD 96u

int au_obj_str(au_objects *ob, uint64_t addr, uint32_t max, const char **s, uint32_t *len) {
    const au_py_offsets *o = ob->l->o;
    *s = NULL;
    *len = 0;
    if (!aligned(addr)) return AU_ERR_READ;
    uint8_t h[16];
    int rc;
    /* Most names are short: one look at the object's first bytes serves
     * its header and its characters.  (In exact mode the look is one read
     * of those bytes; when it fails, as in a snapshot recorded field by
     * field, the fields are read one by one.) */
    uint8_t head[STR_HEAD];
    /* Within its page: the look never touches a page the fields do not. */
    uint32_t hl = AU_VIEW_PAGE - (uint32_t)(addr % AU_VIEW_PAGE);
    if (hl > STR_HEAD) hl = STR_HEAD;
    const uint8_t *wp = o->unicode_length + 8 <= hl && o->unicode_state + 4 <= hl
                            ? au_view_bytes(ob->view, addr, hl, head)
                            : NULL;
    if (wp) {
        memcpy(h, wp + o->unicode_length, 8);
        memcpy(h + 8, wp + o->unicode_state, 4);
    } else if ((rc = au_view_read(ob->view, addr + o->unicode_length, h, 8)) ||
               (rc = au_view_read(ob->view, addr + o->unicode_state, h + 8, 4))) {
        return rc;
    }
    int64_t n = (int64_t)au_rd64(h);
    uint32_t state = au_rd32(h + 8);
    uint32_t kind = state >> o->unicode_kind_shift & ((1u << o->unicode_kind_width) - 1);
    uint32_t compact = state >> o->unicode_compact_shift & 1;
    uint32_t ascii = state >> o->unicode_ascii_shift & 1;
    if (n < 0 || n > (1 << 30) || !compact || (kind != 1 && kind != 2 && kind != 4) ||
        (ascii && kind != 1))
        return AU_ERR_CORRUPT;
    if (max > AU_OBJ_MAX_STR) max = AU_OBJ_MAX_STR;
    uint32_t count = (uint64_t)n > max ? max : (uint32_t)n;
    int cut = (uint64_t)n > max;
    uint64_t data = addr + (ascii ? o->sizeof_ascii : o->sizeof_compact);
    char *out;
    if ((rc = arena_room(ob, count * 4 + 3, &out))) return rc;
    uint32_t w = 0;
    uint32_t head_off = (uint32_t)(data - addr);
    /* The usual name: ASCII, whole, in the head already looked at.  Copied
     * as it is once a word-wise test finds no byte >= 0x80 (the general
     * loop below would copy it twice, a byte test each). */
    if (wp && ascii && !cut && head_off + count <= hl) {
        uint64_t high = 0, word;
        uint32_t j = 0;
        for (; j + 8 <= count; j += 8) {
            memcpy(&word, wp + head_off + j, 8);
            high |= word;
        }
        for (; j < count; j++) high |= wp[head_off + j];
        if (!(high & 0x8080808080808080ull)) {
            memcpy(out, wp + head_off, count);
            arena_commit(ob, count);
            *s = out;
            *len = count;
            return AU_OK;
        }
    }
    uint8_t chunk[256];
    for (uint32_t i = 0; i < count;) {
        uint32_t take = count - i;
        if (take * kind > sizeof chunk) take = sizeof chunk / kind;
        if (wp && i == 0 && head_off + take * kind <= hl)
            memcpy(chunk, wp + head_off, take * kind); /* all of it in the head */
        else if ((rc = au_view_read(ob->view, data + (uint64_t)i * kind, chunk, take * kind)))
            return rc;
        /* Names are mostly ASCII: copied as they are.  Bytes >= 0x80 (a
         * Latin-1 str, or a corrupt "ASCII" one) are encoded one by one,
         * so that the output stays UTF-8 either way. */
        uint8_t high = 0;
        for (uint32_t j = 0; kind == 1 && j < take; j++) high |= chunk[j];
        if (kind == 1 && high < 0x80) {
            memcpy(out + w, chunk, take);
            w += take;
            i += take;
            continue;
        }
        for (uint32_t j = 0; j < take; j++) {
            uint32_t c = kind == 1   ? chunk[j]
                         : kind == 2 ? au_rd16(chunk + 2 * j)
                                     : au_rd32(chunk + 4 * j);
            w += au_put_utf8(out + w, c);
        }
        i += take;
    }
    if (cut) {
        memcpy(out + w, "...", 3);
        w += 3;
    }
    arena_commit(ob, w);
    *s = out;
    *len = w;
    return AU_OK;
}

/* Compare the str at addr with name (ASCII) without decoding it. */
static int str_equals(au_objects *ob, uint64_t addr, const char *name) {
    const au_py_offsets *o = ob->l->o;
    uint8_t h[16];
    size_t n = strlen(name);
    if (!aligned(addr) || au_view_read(ob->view, addr + o->unicode_length, h, 8) ||
        au_view_read(ob->view, addr + o->unicode_state, h + 8, 4))
        return 0;
    uint32_t state = au_rd32(h + 8);
    if ((int64_t)au_rd64(h) != (int64_t)n || !(state >> o->unicode_ascii_shift & 1) ||
        !(state >> o->unicode_compact_shift & 1))
        return 0;
    char buf[128];
    if (n > sizeof buf) return 0;
    return au_view_read(ob->view, addr + o->sizeof_ascii, buf, (uint32_t)n) == AU_OK &&
           memcmp(buf, name, n) == 0;
}

/* ---- int ------------------------------------------------------------------ */

int au_obj_int(au_objects *ob, uint64_t addr, int64_t *out) {
    const au_py_offsets *o = ob->l->o;
    uint64_t size;
    int rc = au_obj_read_ptr(ob, addr, o->long_size, &size);
    if (rc) return rc;
    uint64_t ndigits;
    if (o->long_kind == AU_PY_LONG_SIGNED_SIZE) {
        if ((int64_t)size < 0) return AU_ERR_CORRUPT; /* negative */
        ndigits = size;
    } else {
        uint64_t sign = size & (uint64_t)o->long_tag_sign_mask;
        if (sign == (uint64_t)o->long_tag_sign_zero) {
            *out = 0;
            return AU_OK;
        }
        if (sign != 0) return AU_ERR_CORRUPT;
        ndigits = size >> o->long_tag_size_shift;
    }
    uint32_t bits = o->long_digit_bits;
    if (bits == 0 || bits > 32 || ndigits * bits > 63 + bits) return AU_ERR_CORRUPT;
    uint8_t d[12];
    if (ndigits > 3 || (rc = au_view_read(ob->view, addr + o->long_digit, d, (uint32_t)ndigits * 4)))
        return rc ? rc : AU_ERR_CORRUPT;
    uint64_t v = 0;
    for (uint64_t i = ndigits; i-- > 0;) {
        uint64_t digit = au_rd32(d + 4 * i);
        if (digit >> bits) return AU_ERR_CORRUPT;
        if (v >> (63 - bits)) return AU_ERR_CORRUPT; /* would not fit */
        v = v << bits | digit;
    }
    *out = (int64_t)v;
    return AU_OK;
}

/* ---- tuple, list ---------------------------------------------------------- */

int au_obj_seq(au_objects *ob, uint64_t addr, uint64_t *base, uint64_t *size) {
    const au_py_offsets *o = ob->l->o;
    *base = *size = 0;
    au_okind k = au_obj_kind(ob, addr);
    if (k != AU_OK_TUPLE && k != AU_OK_LIST) return AU_ERR_CORRUPT;
    int rc = au_obj_read_ptr(ob, addr, o->var_ob_size, size);
    if (rc) return rc;
    if (*size >> 60) return AU_ERR_CORRUPT; /* a negative Py_ssize_t */
    *base = addr + o->tuple_ob_item;
    if (k == AU_OK_LIST && (rc = au_obj_read_ptr(ob, addr, o->list_ob_item, base))) return rc;
    if (*size && !aligned(*base)) return AU_ERR_CORRUPT;
    return AU_OK;
}

int au_obj_items(au_objects *ob, uint64_t addr, uint64_t *items, uint32_t cap, uint32_t *n) {
    *n = 0;
    uint64_t base, size;
    int rc = au_obj_seq(ob, addr, &base, &size);
    if (rc) return rc;
    if (size > AU_OBJ_MAX_TUPLE) return AU_ERR_LIMIT;
    uint32_t take = size < cap ? (uint32_t)size : cap;
    for (uint32_t i = 0; i < take; i++) {
        uint8_t b[8];
        if ((rc = au_view_read(ob->view, base + 8ull * i, b, 8))) return rc;
        items[i] = au_rd64(b);
    }
    *n = (uint32_t)size;
    return AU_OK;
}

/* ---- set ------------------------------------------------------------------ */

int au_obj_set_table(au_objects *ob, uint64_t set, uint64_t *table, uint32_t *slots) {
    const au_py_offsets *o = ob->l->o;
    uint64_t mask;
    int rc;
    if ((rc = au_obj_read_ptr(ob, set, o->set_mask, &mask)) ||
        (rc = au_obj_read_ptr(ob, set, o->set_table, table)))
        return rc;
    /* A set's table has a power-of-two number of slots. */
    if (mask >= AU_OBJ_MAX_SET || ((mask + 1) & mask) || !aligned(*table)) return AU_ERR_CORRUPT;
    *slots = (uint32_t)mask + 1;
    return AU_OK;
}

int au_obj_set_keys(au_objects *ob, uint64_t set, uint64_t *keys, uint32_t cap, uint32_t *n) {
    uint64_t table;
    uint32_t slots;
    *n = 0;
    int rc = au_obj_set_table(ob, set, &table, &slots);
    return rc ? rc : au_obj_table_keys(ob, table, slots, keys, cap, n);
}

int au_obj_table_keys(au_objects *ob, uint64_t table, uint32_t slots, uint64_t *keys, uint32_t cap,
                      uint32_t *n) {
    const au_py_offsets *o = ob->l->o;
    *n = 0;
    int rc;
    uint32_t esz = o->sizeof_setentry;
    if (esz < 16 || esz > 64) return AU_ERR_CORRUPT;
    au_range r = {table, slots * esz};
    if (slots * (uint64_t)esz <= (1u << 20) && (rc = au_view_want(ob->view, &r, 1)) == AU_ERR_NOMEM)
        return rc;
    uint32_t found = 0;
    uint8_t scratch[64];
    /* The entries of one page are looked at through one pointer (run,
     * covering [run_at, run_end)); an entry across pages, or on a page
     * not fetched, is read on its own, and may fetch: run is dropped. */
    const uint8_t *run = NULL;
    uint64_t run_at = 0, run_end = 0, end = table + (uint64_t)slots * esz;
    for (uint32_t i = 0; i < slots && found <= cap; i++) {
        uint64_t at = table + (uint64_t)i * esz;
        if (!run || at < run_at || at + esz > run_end) {
            uint64_t stop = (at / AU_VIEW_PAGE + 1) * AU_VIEW_PAGE;
            if (stop > end) stop = end;
            uint32_t whole = stop > at ? (uint32_t)((stop - at) / esz * esz) : 0;
            run = whole ? au_view_peek(ob->view, at, whole) : NULL;
            run_at = at;
            run_end = at + whole;
        }
        const uint8_t *e = run ? run + (at - run_at) : au_view_bytes(ob->view, at, esz, scratch);
        if (!e && (rc = au_view_read(ob->view, at, scratch, esz))) return rc;
        if (!e) e = scratch;
        uint64_t key = au_rd64(e + o->setentry_key);
        int64_t hash = (int64_t)au_rd64(e + o->setentry_hash);
        if (!key || hash == -1) continue; /* empty, or deleted (the dummy) */
        /* One key past cap is looked for, not kept: it says the set was
         * cut, which a caller must be able to tell from a set of cap. */
        if (found == cap) {
            *n = found;
            return AU_ERR_LIMIT;
        }
        keys[found++] = key;
    }
    *n = found;
    return AU_OK;
}

/* ---- dict ----------------------------------------------------------------- */

typedef struct keysview {
    uint64_t entries;  /* address of entry 0 */
    uint32_t nentries;
    uint32_t esize;
    uint32_t key_off, value_off;
    int has_value;     /* entries carry values (not a split table) */
} keysview;

static int read_keys(au_objects *ob, uint64_t keys, int split, keysview *kv) {
    const au_py_private *p = ob->l->p;
    uint8_t h[64];
    if (!aligned(keys) || p->dk_indices > sizeof h) return AU_ERR_CORRUPT;
    int rc = au_view_read(ob->view, keys, h, p->dk_indices);
    if (rc) return rc;
    uint64_t nentries = au_rd64(h + p->dk_nentries);
    uint64_t index_bytes;
    int general = 1;
    if (p->dk_size_kind == AU_PY_DK_SIZE) {
        uint64_t size = au_rd64(h + p->dk_size);
        if (size < 8 || (size & (size - 1)) || size > AU_OBJ_MAX_DICT * 2ull) return AU_ERR_CORRUPT;
        uint64_t ix = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
        index_bytes = size * ix;
    } else {
        uint8_t log2_size = h[p->dk_size], log2_ix = h[p->dk_log2_index_bytes];
        if (log2_size < 3 || log2_size > 20 || log2_ix > 23 || log2_ix < log2_size)
            return AU_ERR_CORRUPT;
        index_bytes = 1ull << log2_ix;
        general = h[p->dk_kind] == (uint8_t)p->dk_kind_general;
    }
    if (nentries > AU_OBJ_MAX_DICT) return AU_ERR_LIMIT;
    kv->entries = keys + p->dk_indices + index_bytes;
    kv->nentries = (uint32_t)nentries;
    if (general) {
        kv->esize = p->dict_entry_size;
        kv->key_off = p->dict_entry_key;
        kv->value_off = p->dict_entry_value;
    } else {
        kv->esize = p->dict_uentry_size;
        kv->key_off = p->dict_uentry_key;
        kv->value_off = p->dict_uentry_value;
    }
    kv->has_value = !split;
    if (kv->esize < 16 || kv->esize > 32) return AU_ERR_CORRUPT;
    return AU_OK;
}

/* Entries of a keys object, with the values from `values` (a split
 * table's array, 0 for a combined one).  fn returns 1 to stop. */
typedef int (*entry_fn)(au_objects *ob, void *ud, uint64_t key, uint64_t value);

static int walk_keys(au_objects *ob, uint64_t keys, uint64_t values, entry_fn fn, void *ud) {
    keysview kv;
    int rc = read_keys(ob, keys, values != 0, &kv);
    if (rc) return rc;
    au_range r[2] = {{kv.entries, kv.nentries * kv.esize}, {values, kv.nentries * 8u}};
    if ((rc = au_view_want(ob->view, r, values ? 2 : 1)) == AU_ERR_NOMEM) return rc;
    for (uint32_t i = 0; i < kv.nentries; i++) {
        uint8_t e[32];
        if ((rc = au_view_read(ob->view, kv.entries + (uint64_t)i * kv.esize, e, kv.esize))) return rc;
        uint64_t key = au_rd64(e + kv.key_off), value = 0;
        if (!key) continue; /* deleted */
        if (kv.has_value) {
            value = au_rd64(e + kv.value_off);
        } else {
            uint8_t b[8];
            if ((rc = au_view_read(ob->view, values + 8ull * i, b, 8))) return rc;
            value = au_rd64(b);
        }
        if (!value) continue;
        if (fn(ob, ud, key, value)) return AU_OK;
    }
    return AU_OK;
}

/* The keys and (split) values array of a dict object. */
static int dict_parts(au_objects *ob, uint64_t dict, uint64_t *keys, uint64_t *values) {
    const au_py_offsets *o = ob->l->o;
    const au_py_private *p = ob->l->p;
    int rc;
    if ((rc = au_obj_read_ptr(ob, dict, o->dict_ma_keys, keys)) ||
        (rc = au_obj_read_ptr(ob, dict, o->dict_ma_values, values)))
        return rc;
    if (*values) *values += p->dict_values_array;
    return AU_OK;
}

typedef struct collect {
    au_dict_item *items;
    uint32_t cap, n;
} collect;

static int collect_fn(au_objects *ob, void *ud, uint64_t key, uint64_t value) {
    (void)ob;
    collect *c = ud;
    if (c->n < c->cap) c->items[c->n] = (au_dict_item){key, value};
    c->n++;
    return c->n >= c->cap;
}

int au_obj_dict_items(au_objects *ob, uint64_t dict, au_dict_item *items, uint32_t cap,
                      uint32_t *n) {
    *n = 0;
    if (au_obj_kind(ob, dict) != AU_OK_DICT) return AU_ERR_CORRUPT;
    uint64_t keys, values;
    int rc = dict_parts(ob, dict, &keys, &values);
    if (rc) return rc;
    collect c = {items, cap, 0};
    if (cap && (rc = walk_keys(ob, keys, values, collect_fn, &c))) return rc;
    *n = c.n < cap ? c.n : cap;
    return AU_OK;
}

typedef struct lookup {
    const char *name;
    uint64_t value;
    int found;
} lookup;

static int lookup_fn(au_objects *ob, void *ud, uint64_t key, uint64_t value) {
    lookup *l = ud;
    if (!str_equals(ob, key, l->name)) return 0;
    l->value = value;
    l->found = 1;
    return 1;
}

static int keys_get(au_objects *ob, uint64_t keys, uint64_t values, const char *name,
                    uint64_t *value) {
    lookup l = {name, 0, 0};
    int rc = walk_keys(ob, keys, values, lookup_fn, &l);
    if (rc) return rc;
    if (!l.found) return AU_ERR_NOT_FOUND;
    *value = l.value;
    return AU_OK;
}

int au_obj_dict_get(au_objects *ob, uint64_t dict, const char *name, uint64_t *value) {
    *value = 0;
    if (au_obj_kind(ob, dict) != AU_OK_DICT) return AU_ERR_CORRUPT;
    uint64_t keys, values;
    int rc = dict_parts(ob, dict, &keys, &values);
    return rc ? rc : keys_get(ob, keys, values, name, value);
}

/* ---- instance attributes --------------------------------------------------- */

int au_obj_attr(au_objects *ob, uint64_t obj, const char *name, uint64_t *value) {
    const au_py_offsets *o = ob->l->o;
    const au_py_private *p = ob->l->p;
    *value = 0;
    uint64_t type = au_obj_type(ob, obj);
    if (!type) return AU_ERR_READ;
    uint64_t flags = au_obj_ptr(ob, type, o->type_tp_flags);
    int64_t dictoffset = (int64_t)au_obj_ptr(ob, type, o->type_tp_dictoffset);
    uint64_t dict = 0;
    int rc;
    int managed = o->tpflags_managed_dict && (flags & o->tpflags_managed_dict);
    if (!managed) {
        /* A dict pointer inside the object (negative offsets are for
         * variable-size objects, which the model never asks about). */
        if (dictoffset <= 0 || dictoffset > 4096) return AU_ERR_NOT_FOUND;
        if ((rc = au_obj_read_ptr(ob, obj, (uint32_t)dictoffset, &dict))) return rc;
        return dict ? au_obj_dict_get(ob, dict, name, value) : AU_ERR_NOT_FOUND;
    }
    if (obj < 64) return AU_ERR_READ;
    uint64_t cached = au_obj_ptr(ob, type, o->heaptype_cached_keys);
    uint64_t values = 0;
    switch (p->inst_kind) {
    case AU_PY_INST_MANAGED: /* 3.11: two words before the object */
        if ((rc = au_obj_read_ptr(ob, obj + (uint64_t)(int64_t)p->inst_dict_ptr, 0, &dict)) ||
            (rc = au_obj_read_ptr(ob, obj + (uint64_t)(int64_t)p->inst_values_ptr, 0, &values)))
            return rc;
        break;
    case AU_PY_INST_TAGGED: { /* 3.12: one tagged word */
        uint64_t w;
        if ((rc = au_obj_read_ptr(ob, obj + (uint64_t)(int64_t)p->inst_dict_ptr, 0, &w))) return rc;
        if (w & (uint64_t)(uint8_t)p->inst_values_tag) values = w + (uint64_t)(int64_t)p->inst_values_adjust;
        else dict = w;
        break;
    }
    case AU_PY_INST_INLINE: { /* 3.13+: values inline, unless a dict took over */
        if ((rc = au_obj_read_ptr(ob, obj + (uint64_t)(int64_t)p->inst_dict_ptr, 0, &dict))) return rc;
        uint64_t basic = au_obj_ptr(ob, type, o->type_tp_basicsize);
        if (!dict && o->tpflags_inline_values && (flags & o->tpflags_inline_values) && basic &&
            basic < 4096) {
            uint8_t valid;
            uint64_t v = obj + basic;
            if ((rc = au_view_read(ob->view, v + p->dict_values_valid, &valid, 1))) return rc;
            if (valid) values = v;
        }
        break;
    }
    default:
        return AU_ERR_UNSUPPORTED;
    }
    if (dict) return au_obj_dict_get(ob, dict, name, value);
    if (!values || !cached) return AU_ERR_NOT_FOUND;
    /* Split attributes: the class's shared keys, this object's values. */
    values += p->dict_values_array;
    return keys_get(ob, cached, values, name, value);
}

/* Where instances of `type` keep the __slots__ attribute `name`: a member
 * descriptor of that name in the dict of the class or of one of its bases
 * (AU_OBJ_MAX_BASES), naming an object slot inside the instance's basic
 * size. */
int au_obj_slot_offset(au_objects *ob, uint64_t type, const char *name, uint32_t *offset) {
    const au_py_offsets *o = ob->l->o;
    *offset = 0;
    if (!au_pyoff_present(o->type_tp_dict) || !au_pyoff_present(o->memberdescr_member))
        return AU_ERR_UNSUPPORTED;
    uint64_t basic = au_obj_ptr(ob, type, o->type_tp_basicsize);
    uint64_t t = type, descr = 0;
    for (uint32_t i = 0; t && i < AU_OBJ_MAX_BASES && !descr; i++) {
        uint64_t dict = au_obj_ptr(ob, t, o->type_tp_dict);
        if (!dict || au_obj_kind(ob, dict) != AU_OK_DICT ||
            au_obj_dict_get(ob, dict, name, &descr) != AU_OK)
            descr = 0;
        t = au_obj_ptr(ob, t, o->type_tp_base);
    }
    if (!descr || au_obj_kind(ob, descr) != AU_OK_MEMBER_DESCR) return AU_ERR_NOT_FOUND;
    uint64_t def = au_obj_ptr(ob, descr, o->memberdescr_member);
    uint8_t b[4];
    uint64_t off;
    int rc;
    if (!def || (def & 7) || (rc = au_view_read(ob->view, def + o->memberdef_type, b, 4))) return AU_ERR_READ;
    if ((int32_t)au_rd32(b) != (int32_t)o->memberdef_object_ex) return AU_ERR_NOT_FOUND;
    if ((rc = au_obj_read_ptr(ob, def, o->memberdef_offset, &off))) return rc;
    /* The slot lies past the object header and inside the object. */
    if (off < 16 || (off & 7) || basic > 4096 || off + 8 > basic) return AU_ERR_CORRUPT;
    *offset = (uint32_t)off;
    return AU_OK;
}

/* ---- weakref --------------------------------------------------------------- */

uint64_t au_obj_weakref(au_objects *ob, uint64_t ref) {
    uint64_t target = au_obj_ptr(ob, ref, ob->l->o->weakref_wr_object);
    /* A dead ref points at None: not read here (telling None apart would
     * cost a read of every referent's type, a page each, before the
     * caller asks for the referents in one batch). */
    return aligned(target) ? target : 0;
}
