/* ELF64 little-endian lookups through a read callback.  See au_elf.h.
 *
 * Field offsets and constants are those of the System V gABI (as spelled
 * in <elf.h>), decoded byte by byte so the host's endianness and the
 * struct layout of the host's <elf.h> do not matter. */
#define _GNU_SOURCE /* O_PATH (Linux), pread, fstat under -std=c11 */
#define _FILE_OFFSET_BITS 64

#include "au_elf.h"

#include "au_bytes.h"
#include "au_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

_Static_assert(sizeof(off_t) == 8, "pread needs 64-bit file offsets");

/* Sizes of the ELF64 structures this file reads. */
#define EHDR_SIZE 64u
#define PHDR_SIZE 56u
#define SHDR_SIZE 64u
#define SYM_SIZE 24u

#define ET_EXEC 2u
#define ET_DYN 3u
#define PT_LOAD 1u
#define PN_XNUM 0xffffu
#define SHN_UNDEF 0u
#define SHN_COMMON 0xfff2u
#define SHN_XINDEX 0xffffu
#define SHT_SYMTAB 2u
#define SHT_NOBITS 8u
#define SHT_DYNSYM 11u
#define STB_LOCAL 0u

/* Table entries and string bytes are read in chunks of this size, on the
 * stack: a symbol table is scanned with one read per ~170 symbols. */
#define CHUNK 4096u

/* Consecutive EINTRs tolerated by au_file_read_at. */
#define MAX_EINTR 1000


/* [off, off + size) lies within [0, limit), without overflowing. */
static int range_ok(uint64_t off, uint64_t size, uint64_t limit) {
    return size <= limit && off <= limit - size;
}

/* Every read goes through here: the range is checked against the file
 * size first, so a lying header becomes AU_ERR_FORMAT, not a read of
 * whatever the callback would return past the end. */
static int read_at(const au_elf *e, uint64_t off, void *buf, size_t len) {
    if (!range_ok(off, len, e->file_size)) return AU_ERR_FORMAT;
    int r = e->read(e->ud, off, buf, len);
    if (r > 0) r = AU_ERR_IO; /* not the callback contract: treat as failure */
    return r;
}

/* --- Tables of fixed-size entries (program headers, section headers,
 * symbols), read a chunk at a time. ------------------------------------ */
typedef struct table {
    const au_elf *e;
    uint64_t off;      /* validated: off + count * entsize <= file_size */
    uint32_t entsize;  /* >= need */
    uint32_t count;
    uint32_t need;     /* bytes of each entry the caller looks at */
    uint32_t first, n; /* entries [first, first + n) are in buf */
    uint8_t buf[CHUNK];
} table;

/* Prepare t over count entries of entsize bytes at off, of which the
 * caller reads the first need bytes.  need <= CHUNK. */
static int table_init(table *t, const au_elf *e, uint64_t off,
                      uint64_t entsize, uint64_t count, uint32_t need) {
    if (entsize < need || entsize > UINT32_MAX || count > UINT32_MAX) {
        return AU_ERR_FORMAT;
    }
    /* count <= 2^32 and entsize <= 2^32: the product may need 64 bits but
     * cannot overflow them. */
    if (!range_ok(off, count * entsize, e->file_size)) return AU_ERR_FORMAT;
    t->e = e;
    t->off = off;
    t->entsize = (uint32_t)entsize;
    t->count = (uint32_t)count;
    t->need = need;
    t->first = 0;
    t->n = 0;
    return AU_OK;
}

/* Point *ent at the first need bytes of entry i (< count). */
static int table_get(table *t, uint32_t i, const uint8_t **ent) {
    if (i >= t->first && i - t->first < t->n) {
        *ent = t->buf + (size_t)(i - t->first) * t->entsize;
        return AU_OK;
    }
    uint64_t pos = t->off + (uint64_t)i * t->entsize;
    if (t->entsize > CHUNK) {
        /* Entries larger than the buffer (legal, if odd): read just the
         * part we use.  The cached run is this one entry. */
        int r = read_at(t->e, pos, t->buf, t->need);
        if (r != AU_OK) return r;
        t->first = i;
        t->n = 1;
        *ent = t->buf;
        return AU_OK;
    }
    uint32_t per = CHUNK / t->entsize;
    uint32_t left = t->count - i;
    uint32_t k = left < per ? left : per;
    int r = read_at(t->e, pos, t->buf, (size_t)k * t->entsize);
    if (r != AU_OK) return r;
    t->first = i;
    t->n = k;
    *ent = t->buf;
    return AU_OK;
}

/* --- Strings in a string table, through a window of CHUNK bytes. -------- */
typedef struct strwin {
    const au_elf *e;
    uint64_t tab_off, tab_size; /* validated against file_size */
    uint64_t wstart;            /* table offset of buf[0] */
    uint32_t wlen;              /* valid bytes in buf */
    uint8_t buf[CHUNK];
} strwin;

static void strwin_init(strwin *w, const au_elf *e, uint64_t off,
                        uint64_t size) {
    w->e = e;
    w->tab_off = off;
    w->tab_size = size;
    w->wstart = 0;
    w->wlen = 0;
}

/* 1 when the string at table offset at is exactly name (nlen bytes, then
 * a NUL inside the table), 0 when not, < 0 on a read error.
 * nlen < AU_ELF_MAX_NAME < CHUNK. */
static int strwin_eq(strwin *w, uint64_t at, const char *name, size_t nlen) {
    if (at >= w->tab_size || w->tab_size - at < nlen + 1) return 0;
    if (!(at >= w->wstart && at - w->wstart <= w->wlen &&
          w->wlen - (at - w->wstart) >= nlen + 1)) {
        /* Names are mostly laid out in table order, so a window starting
         * here usually serves the next lookups too. */
        uint64_t avail = w->tab_size - at;
        uint32_t len = avail < CHUNK ? (uint32_t)avail : CHUNK;
        int r = read_at(w->e, w->tab_off + at, w->buf, len);
        if (r != AU_OK) {
            w->wlen = 0;
            return r;
        }
        w->wstart = at;
        w->wlen = len;
    }
    const uint8_t *s = w->buf + (at - w->wstart);
    return memcmp(s, name, nlen) == 0 && s[nlen] == 0;
}

/* --- Section headers. ------------------------------------------------- */
typedef struct shdr {
    uint32_t name, type, link;
    uint64_t addr, offset, size, entsize;
} shdr;

static void parse_shdr(const uint8_t *p, shdr *s) {
    s->name = au_rd32(p + 0);
    s->type = au_rd32(p + 4);
    s->addr = au_rd64(p + 16);
    s->offset = au_rd64(p + 24);
    s->size = au_rd64(p + 32);
    s->link = au_rd32(p + 40);
    s->entsize = au_rd64(p + 56);
}

static int get_shdr(const au_elf *e, uint32_t i, shdr *s) {
    uint8_t b[SHDR_SIZE];
    if (i >= e->shnum) return AU_ERR_FORMAT;
    int r = read_at(e, e->shoff + (uint64_t)i * e->shentsize, b, sizeof b);
    if (r != AU_OK) return r;
    parse_shdr(b, s);
    return AU_OK;
}

/* A section whose bytes we read: must lie in the file. */
static int section_in_file(const au_elf *e, const shdr *s) {
    return s->type != SHT_NOBITS && range_ok(s->offset, s->size, e->file_size);
}

/* Name length, bounded so a name never exceeds a string window. */
static int name_len(const char *name, size_t *len) {
    if (name == NULL) return AU_ERR_ARG;
    *len = strnlen(name, AU_ELF_MAX_NAME);
    return *len > 0 && *len < AU_ELF_MAX_NAME ? AU_OK : AU_ERR_ARG;
}

/* ---------------------------------------------------------------------- */

int au_elf_open(au_elf *e, au_read_at_fn read, void *ud, uint64_t file_size) {
    if (e == NULL || read == NULL) return AU_ERR_ARG;
    memset(e, 0, sizeof *e);
    e->read = read;
    e->ud = ud;
    e->file_size = file_size;

    /* e_ident first, so that a small 32-bit file (whose header is 52
     * bytes) is reported as unsupported rather than malformed. */
    uint8_t h[EHDR_SIZE];
    if (file_size < 16) return AU_ERR_FORMAT;
    int r = read_at(e, 0, h, 16);
    if (r != AU_OK) return r;
    if (h[0] != 0x7f || h[1] != 'E' || h[2] != 'L' || h[3] != 'F') {
        return AU_ERR_FORMAT;
    }
    if (h[4] == 1) return AU_ERR_UNSUPPORTED; /* ELFCLASS32 */
    if (h[4] != 2) return AU_ERR_FORMAT;      /* not ELFCLASS64 either */
    if (h[5] == 2) return AU_ERR_UNSUPPORTED; /* ELFDATA2MSB */
    if (h[5] != 1) return AU_ERR_FORMAT;      /* not ELFDATA2LSB either */
    if (h[6] != 1) return AU_ERR_FORMAT;      /* EV_CURRENT */
    r = read_at(e, 0, h, sizeof h);
    if (r != AU_OK) return r;

    e->type = au_rd16(h + 16);
    if (e->type == 0) return AU_ERR_FORMAT;
    /* Relocatable objects and core dumps are ELF, but their symbol values
     * are not link-time addresses of a loaded image. */
    if (e->type != ET_EXEC && e->type != ET_DYN) return AU_ERR_UNSUPPORTED;
    e->machine = au_rd16(h + 18);
    if (au_rd32(h + 20) != 1) return AU_ERR_FORMAT; /* e_version */
    uint64_t phoff = au_rd64(h + 32);
    uint64_t shoff = au_rd64(h + 40);
    uint32_t phentsize = au_rd16(h + 54);
    uint32_t phnum = au_rd16(h + 56);
    uint32_t shentsize = au_rd16(h + 58);
    uint32_t shnum = au_rd16(h + 60);
    uint32_t shstrndx = au_rd16(h + 62);

    /* Section header table.  With 0xffff or more sections, e_shnum is 0
     * and the count is in section 0's sh_size; likewise the name table
     * index (SHN_XINDEX -> sh_link) and the program header count (PN_XNUM
     * -> sh_info). */
    if (shoff != 0) {
        if (shentsize < SHDR_SIZE) return AU_ERR_FORMAT;
        uint8_t s0[SHDR_SIZE];
        r = read_at(e, shoff, s0, sizeof s0);
        if (r != AU_OK) return r;
        uint64_t n = shnum ? shnum : au_rd64(s0 + 32);
        if (shstrndx == SHN_XINDEX) shstrndx = au_rd32(s0 + 40);
        if (phnum == PN_XNUM) phnum = au_rd32(s0 + 44);
        if (n > AU_ELF_MAX_SECTIONS) return AU_ERR_LIMIT;
        /* n <= 2^16 and shentsize < 2^16: no overflow. */
        if (!range_ok(shoff, n * shentsize, file_size)) return AU_ERR_FORMAT;
        if (n > 0 && shstrndx >= n) return AU_ERR_FORMAT;
        e->shoff = shoff;
        e->shnum = (uint32_t)n;
        e->shentsize = shentsize;
        e->shstrndx = n > 0 ? shstrndx : 0;
    } else if (phnum == PN_XNUM) {
        return AU_ERR_FORMAT; /* the real count would be in section 0 */
    }

    /* Program headers: keep the PT_LOADs. */
    if (phoff == 0 || phnum == 0) return AU_OK;
    if (phnum > AU_ELF_MAX_PHDRS) return AU_ERR_LIMIT;
    table t;
    r = table_init(&t, e, phoff, phentsize, phnum, PHDR_SIZE);
    if (r != AU_OK) return r;
    for (uint32_t i = 0; i < phnum; i++) {
        const uint8_t *p;
        r = table_get(&t, i, &p);
        if (r != AU_OK) return r;
        if (au_rd32(p) != PT_LOAD) continue;
        au_elf_seg s;
        s.flags = au_rd32(p + 4);
        s.offset = au_rd64(p + 8);
        s.vaddr = au_rd64(p + 16);
        s.filesz = au_rd64(p + 32);
        s.memsz = au_rd64(p + 40);
        /* A loader would fail (or fault) on these; so do we, loudly,
         * rather than compute addresses from them. */
        if (!range_ok(s.offset, s.filesz, file_size) || s.filesz > s.memsz ||
            s.vaddr > UINT64_MAX - s.memsz) {
            return AU_ERR_FORMAT;
        }
        if (e->nloads < AU_ELF_MAX_LOADS) {
            e->loads[e->nloads++] = s;
        } else {
            e->loads_dropped++;
        }
    }
    return AU_OK;
}

int au_elf_section(const au_elf *e, const char *name, uint64_t *addr,
                   uint64_t *size, uint64_t *file_off) {
    size_t nlen;
    if (e == NULL) return AU_ERR_ARG;
    int r = name_len(name, &nlen);
    if (r != AU_OK) return r;
    if (e->shnum == 0 || e->shstrndx == 0) return AU_ERR_NOT_FOUND;

    shdr strs;
    r = get_shdr(e, e->shstrndx, &strs);
    if (r != AU_OK) return r;
    if (!section_in_file(e, &strs)) return AU_ERR_FORMAT;

    /* 8 KB of stack in all: the chunk buffers live here, not in e, so
     * that lookups can take e as const (and threads can share it). */
    struct {
        table t;
        strwin w;
    } s;
    r = table_init(&s.t, e, e->shoff, e->shentsize, e->shnum, SHDR_SIZE);
    if (r != AU_OK) return r;
    strwin_init(&s.w, e, strs.offset, strs.size);
    for (uint32_t i = 0; i < e->shnum; i++) {
        const uint8_t *p;
        r = table_get(&s.t, i, &p);
        if (r != AU_OK) return r;
        shdr sh;
        parse_shdr(p, &sh);
        r = strwin_eq(&s.w, sh.name, name, nlen);
        if (r < 0) return r;
        if (r == 0) continue;
        if (sh.type != SHT_NOBITS && !section_in_file(e, &sh)) {
            return AU_ERR_FORMAT; /* the name matched; its bytes lie */
        }
        if (addr) *addr = sh.addr;
        if (size) *size = sh.size;
        if (file_off) {
            *file_off = sh.type == SHT_NOBITS ? AU_ELF_NOBITS : sh.offset;
        }
        return AU_OK;
    }
    return AU_ERR_NOT_FOUND;
}

/* The first section of the given type, or AU_ERR_NOT_FOUND. */
static int find_section_by_type(const au_elf *e, uint32_t type, shdr *out) {
    table t;
    int r = table_init(&t, e, e->shoff, e->shentsize, e->shnum, SHDR_SIZE);
    if (r != AU_OK) return r;
    for (uint32_t i = 0; i < e->shnum; i++) {
        const uint8_t *p;
        r = table_get(&t, i, &p);
        if (r != AU_OK) return r;
        if (au_rd32(p + 4) == type) {
            parse_shdr(p, out);
            return AU_OK;
        }
    }
    return AU_ERR_NOT_FOUND;
}

typedef struct sym_hit {
    int found;      /* 0 none, 1 local, 2 global/weak/unique */
    uint64_t value, size;
} sym_hit;

/* Scan the symbol table of the given type for name; update *hit when a
 * better match than it holds is found. */
static int scan_symtab(const au_elf *e, uint32_t type, const char *name,
                       size_t nlen, sym_hit *hit) {
    shdr sec, str;
    int r = find_section_by_type(e, type, &sec);
    if (r == AU_ERR_NOT_FOUND) return AU_OK; /* stripped: nothing to scan */
    if (r != AU_OK) return r;
    /* Separate debug files keep the tables' headers as NOBITS. */
    if (sec.type == SHT_NOBITS) return AU_OK;
    if (!section_in_file(e, &sec) || sec.entsize < SYM_SIZE) {
        return AU_ERR_FORMAT;
    }
    uint64_t count = sec.size / sec.entsize;
    if (count > AU_ELF_MAX_SYMBOLS) return AU_ERR_LIMIT;
    r = get_shdr(e, sec.link, &str);
    if (r != AU_OK) return r;
    if (!section_in_file(e, &str)) return AU_ERR_FORMAT;

    struct {
        table t;
        strwin w;
    } s;
    r = table_init(&s.t, e, sec.offset, sec.entsize, count, SYM_SIZE);
    if (r != AU_OK) return r;
    strwin_init(&s.w, e, str.offset, str.size);
    /* Entry 0 is the reserved null symbol. */
    for (uint32_t i = 1; i < (uint32_t)count; i++) {
        const uint8_t *p;
        r = table_get(&s.t, i, &p);
        if (r != AU_OK) return r;
        uint32_t st_name = au_rd32(p);
        uint16_t shndx = au_rd16(p + 6);
        /* Imports and common blocks have no address of their own. */
        if (st_name == 0 || shndx == SHN_UNDEF || shndx == SHN_COMMON) {
            continue;
        }
        int rank = (p[4] >> 4) == STB_LOCAL ? 1 : 2;
        if (rank <= hit->found) continue;
        r = strwin_eq(&s.w, st_name, name, nlen);
        if (r < 0) return r;
        if (r == 0) continue;
        hit->found = rank;
        hit->value = au_rd64(p + 8);
        hit->size = au_rd64(p + 16);
        if (rank == 2) return AU_OK;
    }
    return AU_OK;
}

int au_elf_symbol(const au_elf *e, const char *name, uint64_t *value,
                  uint64_t *size) {
    size_t nlen;
    if (e == NULL) return AU_ERR_ARG;
    int r = name_len(name, &nlen);
    if (r != AU_OK) return r;
    if (e->shnum == 0) return AU_ERR_NOT_FOUND;
    sym_hit hit = {0, 0, 0};
    r = scan_symtab(e, SHT_DYNSYM, name, nlen, &hit);
    if (r != AU_OK) return r;
    if (hit.found < 2) {
        r = scan_symtab(e, SHT_SYMTAB, name, nlen, &hit);
        if (r != AU_OK) return r;
    }
    if (!hit.found) return AU_ERR_NOT_FOUND;
    if (value) *value = hit.value;
    if (size) *size = hit.size;
    return AU_OK;
}

uint32_t au_elf_load_segments(const au_elf *e, au_elf_seg *out, uint32_t cap) {
    if (e == NULL) return 0;
    uint32_t n = e->nloads < cap ? e->nloads : cap;
    if (out != NULL) memcpy(out, e->loads, (size_t)n * sizeof *out);
    return e->nloads;
}

typedef struct bias_cand {
    uint64_t bias;
    uint32_t map;
} bias_cand;

static int cand_cmp(const void *a, const void *b) {
    const bias_cand *x = a, *y = b;
    if (x->bias != y->bias) return x->bias < y->bias ? -1 : 1;
    return x->map < y->map ? -1 : x->map > y->map;
}

/* Map permissions allowed by segment flags (see au_elf_load_bias). */
static int perms_within(uint32_t perms, uint32_t pflags) {
    if ((perms & AU_MAP_R) && !(pflags & AU_ELF_PF_R)) return 0;
    if ((perms & AU_MAP_W) && !(pflags & AU_ELF_PF_W)) return 0;
    if ((perms & AU_MAP_X) && !(pflags & AU_ELF_PF_X)) return 0;
    return 1;
}

int au_elf_load_bias(const au_elf *e, const au_map *maps, uint32_t nmaps,
                     uint64_t *bias) {
    if (e == NULL || bias == NULL || (maps == NULL && nmaps > 0)) {
        return AU_ERR_ARG;
    }
    if (nmaps > AU_ELF_MAX_RT_MAPS) nmaps = AU_ELF_MAX_RT_MAPS;
    bias_cand c[AU_ELF_MAX_RT_MAPS * AU_ELF_MAX_LOADS];
    uint32_t nc = 0;
    for (uint32_t i = 0; i < nmaps; i++) {
        const au_map *m = &maps[i];
        if (m->path_len == 0 || (m->perms & (AU_MAP_R | AU_MAP_W | AU_MAP_X)) == 0 ||
            m->start >= m->end) {
            continue;
        }
        uint64_t mlen = m->end - m->start;
        for (uint32_t j = 0; j < e->nloads; j++) {
            const au_elf_seg *s = &e->loads[j];
            if (s->filesz == 0 || !perms_within(m->perms, s->flags)) continue;
            /* Overlap of [m->offset, +mlen) and [s->offset, +filesz);
             * written as differences so neither end can overflow. */
            int overlap = m->offset <= s->offset
                              ? s->offset - m->offset < mlen
                              : m->offset - s->offset < s->filesz;
            if (!overlap) continue;
            c[nc].bias = (m->start - m->offset) - (s->vaddr - s->offset);
            c[nc].map = i;
            nc++;
        }
    }
    if (nc == 0) return AU_ERR_NOT_FOUND;
    qsort(c, nc, sizeof *c, cand_cmp);

    /* Runs of equal bias; count the distinct maps in each. */
    uint32_t best_score = 0, ties = 0;
    uint64_t best = 0;
    for (uint32_t i = 0; i < nc;) {
        uint32_t j = i, score = 0;
        for (; j < nc && c[j].bias == c[i].bias; j++) {
            if (j == i || c[j].map != c[j - 1].map) score++;
        }
        if (score > best_score) {
            best_score = score;
            best = c[i].bias;
            ties = 0;
        } else if (score == best_score) {
            ties++;
        }
        i = j;
    }
    if (ties) return AU_ERR_FORMAT;
    *bias = best;
    return AU_OK;
}

int au_elf_runtime_addr(const au_elf *e, const au_map *maps, uint32_t nmaps,
                        uint64_t vaddr, uint64_t *addr) {
    if (e == NULL || addr == NULL) return AU_ERR_ARG;
    int inside = 0;
    for (uint32_t j = 0; j < e->nloads && !inside; j++) {
        const au_elf_seg *s = &e->loads[j];
        inside = vaddr >= s->vaddr && vaddr - s->vaddr < s->memsz;
    }
    if (!inside) return AU_ERR_NOT_FOUND;
    uint64_t bias;
    int r = au_elf_load_bias(e, maps, nmaps, &bias);
    if (r != AU_OK) return r;
    *addr = vaddr + bias;
    return AU_OK;
}

/* --- Read callbacks. -------------------------------------------------- */

int au_file_read_at(void *ud, uint64_t off, void *buf, size_t len) {
    if (ud == NULL || (buf == NULL && len > 0)) return AU_ERR_ARG;
    int fd = *(const int *)ud;
    if (off > INT64_MAX || len > INT64_MAX - off) return AU_ERR_IO;
    size_t done = 0;
    unsigned eintr = 0;
    /* Each pass reads at least one byte, fails, or counts an EINTR. */
    while (done < len) {
        ssize_t r = pread(fd, (char *)buf + done, len - done,
                          (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR && ++eintr < MAX_EINTR) continue;
            return AU_ERR_IO;
        }
        if (r == 0) return AU_ERR_IO; /* end of file: a short read */
        eintr = 0;
        done += (size_t)r;
    }
    return AU_OK;
}

int au_bytes_read_at(void *ud, uint64_t off, void *buf, size_t len) {
    const au_bytes *b = ud;
    if (b == NULL || (buf == NULL && len > 0)) return AU_ERR_ARG;
    if (!range_ok(off, len, b->size)) return AU_ERR_IO;
    if (len > 0) memcpy(buf, (const char *)b->data + off, len);
    return AU_OK;
}

/* --- Opening a target's files. ---------------------------------------- */

int au_proc_open_file(int pid, const char *path, size_t path_len, int *fd,
                      uint64_t *size) {
    if (pid <= 0 || path == NULL || fd == NULL || size == NULL ||
        path_len == 0 || path[0] != '/' || memchr(path, '\0', path_len)) {
        return AU_ERR_ARG;
    }
    *fd = -1;
    *size = 0;
    char full[PATH_MAX];
    int plen = snprintf(full, sizeof full, "/proc/%d/root", pid);
    if (plen < 0 || (size_t)plen >= sizeof full) return AU_ERR_LIMIT;
    if (path_len >= sizeof full - (size_t)plen) return AU_ERR_LIMIT;
    memcpy(full + plen, path, path_len);
    full[(size_t)plen + path_len] = '\0';

    /* The target chooses the path: it may name a FIFO (open would block)
     * or a device (open has side effects).  O_PATH resolves the name
     * without opening the object; only a regular file is then opened for
     * reading, through /proc/self/fd (the same inode, no second lookup). */
    int pfd = open(full, O_PATH | O_CLOEXEC);
    if (pfd < 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR) {
            char proc[32];
            struct stat st;
            snprintf(proc, sizeof proc, "/proc/%d", pid);
            return stat(proc, &st) == 0 ? AU_ERR_NOT_FOUND : AU_ERR_NOPROC;
        }
        return au_status_from_errno(err, AU_ERR_IO);
    }
    struct stat st;
    if (fstat(pfd, &st) != 0) {
        int err = errno;
        close(pfd);
        return au_status_from_errno(err, AU_ERR_IO);
    }
    if (!S_ISREG(st.st_mode)) {
        close(pfd);
        return AU_ERR_UNSUPPORTED;
    }
    char self[48];
    snprintf(self, sizeof self, "/proc/self/fd/%d", pfd);
    int rfd = open(self, O_RDONLY | O_CLOEXEC);
    int err = errno;
    close(pfd);
    if (rfd < 0) return au_status_from_errno(err, AU_ERR_IO);
    *fd = rfd;
    *size = (uint64_t)st.st_size;
    return AU_OK;
}

int au_fd_matches_map(int fd, const au_map *m) {
    if (m == NULL) return AU_ERR_ARG;
    struct stat st;
    if (fstat(fd, &st) != 0) return au_status_from_errno(errno, AU_ERR_IO);
    return (uint64_t)st.st_ino == m->inode &&
           major(st.st_dev) == m->dev_major &&
           minor(st.st_dev) == m->dev_minor;
}
