/*
 * Unit tests of the ELF reader (core/process/au_elf.h): lookups in synthetic images
 * built here byte by byte (so every expected value is known), malformed
 * and truncated files, the load-bias rule on hand-made layouts, and real
 * files: this test binary, libc and CPython, checked against the addresses
 * the running processes actually use.
 */
#define _GNU_SOURCE /* dlopen flags, process_vm_readv, fork */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "au_elf.h"
#include "au_procmaps.h"

/* --- Symbols of this binary that the tests look up. ------------------ */
__attribute__((used, noinline)) int elf_test_marker(int x) { return 3 * x + 1; }
__attribute__((used)) int elf_test_data[4] = {1, 2, 3, 4};
__attribute__((used)) int elf_test_bss[1024];

/* --- A byte-level ELF64 builder. -------------------------------------- */
static void w16(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 2; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void w32(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void w64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

typedef struct sec_spec {
    const char *name;
    uint32_t type;
    uint64_t addr;
    const void *data; /* NULL: zeros (or nothing, for NOBITS) */
    uint64_t size;
    uint32_t link;    /* section index: secs[i] is index i + 1 */
    uint64_t entsize;
} sec_spec;

typedef struct seg_spec {
    uint32_t flags;
    uint64_t offset, vaddr, filesz, memsz;
} seg_spec;

typedef struct image {
    uint8_t *b;
    size_t len;
    uint64_t sec_off[32]; /* file offset of secs[i]'s data */
    uint64_t shoff;
    uint32_t shnum, shstrndx;
} image;

#define SHT_PROGBITS 1
#define SHT_SYMTAB 2
#define SHT_STRTAB 3
#define SHT_NOBITS 8
#define SHT_DYNSYM 11

/* Layout: ELF header, program headers, each section's data (8-aligned),
 * the section name table, the section headers; then zeros up to min_len. */
static void build(image *im, const sec_spec *s, int ns, const seg_spec *g,
                  int ng, size_t min_len) {
    size_t cap = 1 << 20;
    memset(im, 0, sizeof *im);
    im->b = calloc(1, cap);
    assert_non_null(im->b);
    uint8_t *b = im->b;
    size_t pos = 64 + (size_t)ng * 56;
    for (int i = 0; i < ns; i++) {
        pos = (pos + 7) & ~(size_t)7;
        im->sec_off[i] = pos;
        if (s[i].type == SHT_NOBITS) continue;
        assert_true(pos + s[i].size < cap);
        if (s[i].data) memcpy(b + pos, s[i].data, s[i].size);
        pos += s[i].size;
    }
    /* Section names: "\0" then each name, then ".shstrtab". */
    size_t shstr = pos, nameoff[34];
    b[pos++] = 0;
    for (int i = 0; i <= ns; i++) {
        const char *n = i < ns ? s[i].name : ".shstrtab";
        nameoff[i] = pos - shstr;
        memcpy(b + pos, n, strlen(n) + 1);
        pos += strlen(n) + 1;
    }
    size_t shstr_size = pos - shstr;
    pos = (pos + 7) & ~(size_t)7;
    im->shoff = pos;
    im->shnum = (uint32_t)ns + 2;
    im->shstrndx = (uint32_t)ns + 1;
    for (int i = 0; i <= ns; i++) {
        uint8_t *h = b + pos + (size_t)(i + 1) * 64;
        if (i < ns) {
            w32(h, nameoff[i]);
            w32(h + 4, s[i].type);
            w64(h + 16, s[i].addr);
            w64(h + 24, im->sec_off[i]);
            w64(h + 32, s[i].size);
            w32(h + 40, s[i].link);
            w64(h + 56, s[i].entsize);
        } else {
            w32(h, nameoff[i]);
            w32(h + 4, SHT_STRTAB);
            w64(h + 24, shstr);
            w64(h + 32, shstr_size);
        }
    }
    pos += (size_t)im->shnum * 64;
    if (pos < min_len) pos = min_len;
    im->len = pos;

    memcpy(b, "\177ELF", 4);
    b[4] = 2; /* ELFCLASS64 */
    b[5] = 1; /* ELFDATA2LSB */
    b[6] = 1; /* EV_CURRENT */
    w16(b + 16, 3);    /* ET_DYN */
    w16(b + 18, 62);   /* EM_X86_64 */
    w32(b + 20, 1);
    w64(b + 32, ng ? 64 : 0);
    w64(b + 40, im->shoff);
    w16(b + 52, 64);
    w16(b + 54, 56);
    w16(b + 56, (uint64_t)ng);
    w16(b + 58, 64);
    w16(b + 60, im->shnum);
    w16(b + 62, im->shstrndx);
    for (int i = 0; i < ng; i++) {
        uint8_t *p = b + 64 + (size_t)i * 56;
        w32(p, 1); /* PT_LOAD */
        w32(p + 4, g[i].flags);
        w64(p + 8, g[i].offset);
        w64(p + 16, g[i].vaddr);
        w64(p + 24, g[i].vaddr);
        w64(p + 32, g[i].filesz);
        w64(p + 40, g[i].memsz);
        w64(p + 48, 0x1000);
    }
}

/* Section header i (0 = the null section). */
static uint8_t *shdr_at(image *im, uint32_t i) {
    return im->b + im->shoff + (size_t)i * 64;
}

static void put_sym(uint8_t *tab, int i, uint32_t name, int bind, int type,
                    uint16_t shndx, uint64_t value, uint64_t size) {
    uint8_t *p = tab + (size_t)i * 24;
    w32(p, name);
    p[4] = (uint8_t)((bind << 4) | type);
    p[5] = 0;
    w16(p + 6, shndx);
    w64(p + 8, value);
    w64(p + 16, size);
}

static int open_bytes(au_elf *e, au_bytes *src, const image *im, size_t len) {
    src->data = im->b;
    src->size = len;
    return au_elf_open(e, au_bytes_read_at, src, len);
}

#define LOCAL 0
#define GLOBAL 1
#define WEAK 2

static const char DYNSTR[] = "\0foo\0undef_sym\0bar\0weakling";
static const char STRTAB[] = "\0foo\0dup\0_PyRuntime\0xx_tail\0bar";

/* The reference image: sections
 *   1 .text  2 .bss  3 .dynstr  4 .dynsym  5 .strtab  6 .symtab
 *   7 .PyRuntime  8 .shstrtab
 * and two PT_LOADs. */
static void build_reference(image *im) {
    static uint8_t dynsym[5 * 24], symtab[8 * 24], text[32];
    memset(dynsym, 0, sizeof dynsym);
    memset(symtab, 0, sizeof symtab);
    put_sym(dynsym, 1, 1, LOCAL, 1, 1, 0x1111, 4);       /* foo, local */
    put_sym(dynsym, 2, 5, GLOBAL, 2, 0, 0, 0);           /* undef_sym */
    put_sym(dynsym, 3, 15, GLOBAL, 2, 1, 0x2222, 8);     /* bar */
    put_sym(dynsym, 4, 19, WEAK, 1, 7, 0x2010, 8);       /* weakling */
    put_sym(symtab, 1, 1, GLOBAL, 2, 1, 0x3333, 16);     /* foo, global */
    put_sym(symtab, 2, 5, LOCAL, 1, 2, 0x10, 4);         /* dup */
    put_sym(symtab, 3, 5, LOCAL, 1, 2, 0x20, 4);         /* dup again */
    put_sym(symtab, 4, 9, GLOBAL, 1, 7, 0x2000, 0x40);   /* _PyRuntime */
    put_sym(symtab, 5, 23, GLOBAL, 2, 1, 0x4444, 2);     /* "tail" */
    put_sym(symtab, 6, 0xfffffff0u, GLOBAL, 2, 1, 9, 9); /* name off end */
    put_sym(symtab, 7, 28, GLOBAL, 2, 0xfff2, 8, 8);     /* bar, COMMON */
    sec_spec s[] = {
        {".text", SHT_PROGBITS, 0x1000, text, sizeof text, 0, 0},
        {".bss", SHT_NOBITS, 0x3000, NULL, 0x100, 0, 0},
        {".dynstr", SHT_STRTAB, 0, DYNSTR, sizeof DYNSTR, 0, 0},
        {".dynsym", SHT_DYNSYM, 0, dynsym, sizeof dynsym, 3, 24},
        {".strtab", SHT_STRTAB, 0, STRTAB, sizeof STRTAB, 0, 0},
        {".symtab", SHT_SYMTAB, 0, symtab, sizeof symtab, 5, 24},
        {".PyRuntime", SHT_PROGBITS, 0x2000, NULL, 0x40, 0, 0},
    };
    seg_spec g[] = {
        {AU_ELF_PF_R | AU_ELF_PF_X, 0, 0, 0x100, 0x100},
        {AU_ELF_PF_R | AU_ELF_PF_W, 0x100, 0x2100, 0x80, 0x1000},
    };
    build(im, s, 7, g, 2, 0);
}

static void test_synthetic_lookups(void **state) {
    (void)state;
    image im;
    build_reference(&im);
    au_elf e;
    au_bytes src;
    assert_int_equal(open_bytes(&e, &src, &im, im.len), AU_OK);
    assert_int_equal(e.shnum, 9);
    assert_int_equal(e.nloads, 2);

    uint64_t v = 0, sz = 0, off = 1;
    assert_int_equal(au_elf_section(&e, ".text", &v, &sz, &off), AU_OK);
    assert_true(v == 0x1000 && sz == 32 && off == im.sec_off[0]);
    assert_int_equal(au_elf_section(&e, ".bss", &v, &sz, &off), AU_OK);
    assert_true(v == 0x3000 && sz == 0x100 && off == AU_ELF_NOBITS);
    assert_int_equal(au_elf_section(&e, ".PyRuntime", &v, NULL, NULL), AU_OK);
    assert_true(v == 0x2000);
    assert_int_equal(au_elf_section(&e, ".shstrtab", NULL, NULL, NULL), AU_OK);
    assert_int_equal(au_elf_section(&e, ".tex", &v, &sz, &off),
                     AU_ERR_NOT_FOUND);
    assert_int_equal(au_elf_section(&e, ".textx", &v, &sz, &off),
                     AU_ERR_NOT_FOUND);
    assert_int_equal(au_elf_section(&e, "", &v, &sz, &off), AU_ERR_ARG);
    assert_int_equal(au_elf_section(&e, NULL, &v, &sz, &off), AU_ERR_ARG);
    char longname[AU_ELF_MAX_NAME + 10];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(au_elf_section(&e, longname, &v, &sz, &off), AU_ERR_ARG);
    assert_int_equal(au_elf_symbol(&e, longname, &v, &sz), AU_ERR_ARG);

    /* .dynsym's local foo loses to .symtab's global foo. */
    assert_int_equal(au_elf_symbol(&e, "foo", &v, &sz), AU_OK);
    assert_true(v == 0x3333 && sz == 16);
    assert_int_equal(au_elf_symbol(&e, "bar", &v, &sz), AU_OK);
    assert_true(v == 0x2222 && sz == 8);
    assert_int_equal(au_elf_symbol(&e, "weakling", &v, &sz), AU_OK);
    assert_true(v == 0x2010);
    /* Imports are not definitions. */
    assert_int_equal(au_elf_symbol(&e, "undef_sym", &v, &sz),
                     AU_ERR_NOT_FOUND);
    /* Among locals, the first. */
    assert_int_equal(au_elf_symbol(&e, "dup", &v, &sz), AU_OK);
    assert_true(v == 0x10);
    /* The section and the symbol agree, as in CPython. */
    assert_int_equal(au_elf_symbol(&e, "_PyRuntime", &v, &sz), AU_OK);
    assert_true(v == 0x2000 && sz == 0x40);
    /* A name that starts inside another string (linkers merge tails). */
    assert_int_equal(au_elf_symbol(&e, "tail", &v, &sz), AU_OK);
    assert_true(v == 0x4444);
    assert_int_equal(au_elf_symbol(&e, "xx_tail", &v, &sz), AU_ERR_NOT_FOUND);
    assert_int_equal(au_elf_symbol(&e, "fo", &v, &sz), AU_ERR_NOT_FOUND);
    assert_int_equal(au_elf_symbol(&e, "foox", &v, &sz), AU_ERR_NOT_FOUND);

    au_elf_seg segs[4];
    assert_int_equal(au_elf_load_segments(&e, segs, 4), 2);
    assert_true(segs[1].vaddr == 0x2100 && segs[1].offset == 0x100 &&
                segs[1].filesz == 0x80 && segs[1].memsz == 0x1000 &&
                segs[1].flags == (AU_ELF_PF_R | AU_ELF_PF_W));
    assert_int_equal(au_elf_load_segments(&e, segs, 1), 2);
    assert_int_equal(au_elf_load_segments(&e, NULL, 0), 2);
    free(im.b);
}

/* More than 0xff00 sections' worth of header fields: e_shnum 0 and
 * e_shstrndx SHN_XINDEX send the reader to section 0. */
static void test_extended_numbering(void **state) {
    (void)state;
    image im;
    build_reference(&im);
    w16(im.b + 60, 0);
    w16(im.b + 62, 0xffff);
    w64(shdr_at(&im, 0) + 32, im.shnum);
    w32(shdr_at(&im, 0) + 40, im.shstrndx);
    au_elf e;
    au_bytes src;
    uint64_t v;
    assert_int_equal(open_bytes(&e, &src, &im, im.len), AU_OK);
    assert_int_equal(e.shnum, im.shnum);
    assert_int_equal(au_elf_section(&e, ".PyRuntime", &v, NULL, NULL), AU_OK);
    assert_true(v == 0x2000);
    assert_int_equal(au_elf_symbol(&e, "_PyRuntime", &v, NULL), AU_OK);
    assert_true(v == 0x2000);

    /* PN_XNUM: the program header count is in section 0's sh_info. */
    w16(im.b + 56, 0xffff);
    w32(shdr_at(&im, 0) + 44, 2);
    assert_int_equal(open_bytes(&e, &src, &im, im.len), AU_OK);
    assert_int_equal(e.nloads, 2);

    /* A count beyond the bound. */
    w64(shdr_at(&im, 0) + 32, AU_ELF_MAX_SECTIONS + 1);
    assert_int_equal(open_bytes(&e, &src, &im, im.len), AU_ERR_LIMIT);
    free(im.b);
}

/* Thousands of symbols (many chunks), names in reverse table order (the
 * string window reloads), and a table whose entries exceed the chunk. */
static void test_large_tables(void **state) {
    (void)state;
    enum { N = 3000 };
    uint8_t *sym = calloc(N, 24);
    char *str = calloc(N, 8);
    assert_non_null(sym);
    assert_non_null(str);
    size_t slen = 1;
    uint32_t name_at[N];
    for (int i = N - 1; i >= 1; i--) {
        name_at[i] = (uint32_t)slen;
        slen += (size_t)sprintf(str + slen, "s%04d", i) + 1;
    }
    for (int i = 1; i < N; i++) {
        put_sym(sym, i, name_at[i], GLOBAL, 1, 1, 0x100000u + (uint64_t)i, 1);
    }
    sec_spec s[] = {
        {".strtab", SHT_STRTAB, 0, str, slen, 0, 0},
        {".symtab", SHT_SYMTAB, 0, sym, (uint64_t)N * 24, 1, 24},
    };
    image im;
    build(&im, s, 2, NULL, 0, 0);
    au_elf e;
    au_bytes src;
    uint64_t v;
    assert_int_equal(open_bytes(&e, &src, &im, im.len), AU_OK);
    assert_int_equal(au_elf_symbol(&e, "s2999", &v, NULL), AU_OK);
    assert_true(v == 0x100000u + 2999);
    assert_int_equal(au_elf_symbol(&e, "s0001", &v, NULL), AU_OK);
    assert_true(v == 0x100001u);
    assert_int_equal(au_elf_symbol(&e, "s1500", &v, NULL), AU_OK);
    assert_true(v == 0x100000u + 1500);
    assert_int_equal(au_elf_symbol(&e, "s3000", &v, NULL), AU_ERR_NOT_FOUND);
    free(im.b);

    /* Entries of 5000 bytes, larger than the reader's 4 KB chunks. */
    uint8_t *big = calloc(4, 5000);
    assert_non_null(big);
    put_sym(big + 5000 * 1, 0, 1, GLOBAL, 1, 1, 0xaaa, 1);
    put_sym(big + 5000 * 3, 0, 5, GLOBAL, 1, 1, 0xccc, 1);
    static const char names[] = "\0foo\0bar";
    sec_spec s2[] = {
        {".strtab", SHT_STRTAB, 0, names, sizeof names, 0, 0},
        {".symtab", SHT_SYMTAB, 0, big, 4 * 5000, 1, 5000},
    };
    build(&im, s2, 2, NULL, 0, 0);
    assert_int_equal(open_bytes(&e, &src, &im, im.len), AU_OK);
    assert_int_equal(au_elf_symbol(&e, "bar", &v, NULL), AU_OK);
    assert_true(v == 0xccc);
    assert_int_equal(au_elf_symbol(&e, "foo", &v, NULL), AU_OK);
    assert_true(v == 0xaaa);
    free(im.b);
    free(big);
    free(sym);
    free(str);
}

/* Opens a copy of the reference image after mutate() and returns the
 * status of au_elf_open. */
static int open_mutated(void (*mutate)(image *), size_t len_cut) {
    image im;
    build_reference(&im);
    mutate(&im);
    au_elf e;
    au_bytes src;
    int r = open_bytes(&e, &src, &im, im.len - len_cut);
    free(im.b);
    return r;
}

static void m_none(image *im) { (void)im; }
static void m_magic(image *im) { im->b[1] = 'X'; }
static void m_class32(image *im) { im->b[4] = 1; }
static void m_class3(image *im) { im->b[4] = 3; }
static void m_msb(image *im) { im->b[5] = 2; }
static void m_data0(image *im) { im->b[5] = 0; }
static void m_identver(image *im) { im->b[6] = 0; }
static void m_rel(image *im) { w16(im->b + 16, 1); }
static void m_core(image *im) { w16(im->b + 16, 4); }
static void m_type0(image *im) { w16(im->b + 16, 0); }
static void m_version(image *im) { w32(im->b + 20, 2); }
static void m_shoff_far(image *im) { w64(im->b + 40, UINT64_MAX - 8); }
static void m_shentsize(image *im) { w16(im->b + 58, 10); }
static void m_shstrndx(image *im) { w16(im->b + 62, 50); }
static void m_shnum_past(image *im) { w16(im->b + 60, 200); }
static void m_phentsize(image *im) { w16(im->b + 54, 20); }
static void m_phoff_far(image *im) { w64(im->b + 32, im->len - 60); }
static void m_pt_past(image *im) { w64(im->b + 64 + 8, im->len - 0x10); }
static void m_pt_wrap(image *im) { w64(im->b + 64 + 8, UINT64_MAX); }
static void m_pt_filesz(image *im) { w64(im->b + 64 + 40, 0x10); }
static void m_pt_vaddr(image *im) { w64(im->b + 64 + 16, UINT64_MAX - 0x10); }
static void m_xnum_noshdr(image *im) {
    w16(im->b + 56, 0xffff);
    w64(im->b + 40, 0);
}
static void m_no_sections(image *im) { w64(im->b + 40, 0); }
static void m_many_phdrs(image *im) {
    w16(im->b + 56, 0xffff);
    w32(shdr_at(im, 0) + 44, AU_ELF_MAX_PHDRS + 1);
}

static void test_bad_headers(void **state) {
    (void)state;
    assert_int_equal(open_mutated(m_none, 0), AU_OK);
    assert_int_equal(open_mutated(m_magic, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_class32, 0), AU_ERR_UNSUPPORTED);
    assert_int_equal(open_mutated(m_class3, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_msb, 0), AU_ERR_UNSUPPORTED);
    assert_int_equal(open_mutated(m_data0, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_identver, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_rel, 0), AU_ERR_UNSUPPORTED);
    assert_int_equal(open_mutated(m_core, 0), AU_ERR_UNSUPPORTED);
    assert_int_equal(open_mutated(m_type0, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_version, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_shoff_far, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_shentsize, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_shstrndx, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_shnum_past, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_phentsize, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_phoff_far, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_pt_past, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_pt_wrap, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_pt_filesz, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_pt_vaddr, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_xnum_noshdr, 0), AU_ERR_FORMAT);
    assert_int_equal(open_mutated(m_many_phdrs, 0), AU_ERR_LIMIT);
    /* No section headers at all: opens, and every lookup is "absent". */
    assert_int_equal(open_mutated(m_no_sections, 0), AU_OK);
    /* The section headers end the file: one byte short is malformed. */
    assert_int_equal(open_mutated(m_none, 1), AU_ERR_FORMAT);

    /* Tiny files; a 52-byte 32-bit header is still "unsupported". */
    image im;
    build_reference(&im);
    au_elf e;
    au_bytes src;
    static const size_t sizes[] = {0, 1, 4, 15, 16, 63};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        assert_int_equal(open_bytes(&e, &src, &im, sizes[i]), AU_ERR_FORMAT);
    }
    im.b[4] = 1;
    assert_int_equal(open_bytes(&e, &src, &im, 52), AU_ERR_UNSUPPORTED);
    assert_int_equal(au_elf_open(NULL, au_bytes_read_at, &src, 64), AU_ERR_ARG);
    assert_int_equal(au_elf_open(&e, NULL, &src, 64), AU_ERR_ARG);
    free(im.b);
}

static void test_no_sections(void **state) {
    (void)state;
    image im;
    build_reference(&im);
    m_no_sections(&im);
    au_elf e;
    au_bytes src;
    uint64_t v;
    assert_int_equal(open_bytes(&e, &src, &im, im.len), AU_OK);
    assert_int_equal(au_elf_section(&e, ".text", &v, NULL, NULL),
                     AU_ERR_NOT_FOUND);
    assert_int_equal(au_elf_symbol(&e, "foo", &v, NULL), AU_ERR_NOT_FOUND);
    assert_int_equal(e.nloads, 2); /* segments still usable */
    free(im.b);
}

/* Corrupt one field of one section header of the reference image; the
 * file still opens, and the lookup that needs the field fails cleanly. */
static int lookup_after(uint32_t sec, size_t field, uint64_t value, int width,
                        int symbol, const char *name) {
    image im;
    build_reference(&im);
    uint8_t *h = shdr_at(&im, sec) + field;
    if (width == 4) w32(h, value); else w64(h, value);
    au_elf e;
    au_bytes src;
    int r = open_bytes(&e, &src, &im, im.len);
    if (r == AU_OK) {
        uint64_t v;
        r = symbol ? au_elf_symbol(&e, name, &v, NULL)
                   : au_elf_section(&e, name, &v, NULL, NULL);
    }
    free(im.b);
    return r;
}

static void test_bad_sections(void **state) {
    (void)state;
    /* .text's bytes past the end of the file. */
    assert_int_equal(lookup_after(1, 24, 1u << 30, 8, 0, ".text"),
                     AU_ERR_FORMAT);
    assert_int_equal(lookup_after(1, 32, UINT64_MAX, 8, 0, ".text"),
                     AU_ERR_FORMAT);
    /* ... but other sections are still found. */
    assert_int_equal(lookup_after(1, 24, 1u << 30, 8, 0, ".PyRuntime"), AU_OK);
    /* A NOBITS section's size is memory, not file: fine. */
    assert_int_equal(lookup_after(2, 32, UINT64_MAX, 8, 0, ".bss"), AU_OK);
    /* A section name offset outside the name table: that name is absent. */
    assert_int_equal(lookup_after(1, 0, 0xffffffffu, 4, 0, ".text"),
                     AU_ERR_NOT_FOUND);
    /* The name table itself out of the file. */
    assert_int_equal(lookup_after(8, 24, UINT64_MAX - 4, 8, 0, ".text"),
                     AU_ERR_FORMAT);
    /* Symbol tables: entsize 0, entsize too small, data out of the file,
     * link to a missing section, link to a string table out of the file,
     * a count beyond the bound. */
    assert_int_equal(lookup_after(4, 56, 0, 8, 1, "bar"), AU_ERR_FORMAT);
    assert_int_equal(lookup_after(4, 56, 16, 8, 1, "bar"), AU_ERR_FORMAT);
    assert_int_equal(lookup_after(4, 32, 1u << 30, 8, 1, "bar"),
                     AU_ERR_FORMAT);
    assert_int_equal(lookup_after(4, 40, 99, 4, 1, "bar"), AU_ERR_FORMAT);
    assert_int_equal(lookup_after(3, 32, 1u << 30, 8, 1, "bar"),
                     AU_ERR_FORMAT);
    assert_int_equal(lookup_after(6, 56, 1, 8, 1, "foo"), AU_ERR_FORMAT);
    /* .dynsym turned into NOBITS (a separate-debug-file layout): skipped,
     * so "bar" is found in .symtab... which has only a COMMON bar. */
    assert_int_equal(lookup_after(4, 4, SHT_NOBITS, 4, 1, "bar"),
                     AU_ERR_NOT_FOUND);
    assert_int_equal(lookup_after(4, 4, SHT_NOBITS, 4, 1, "_PyRuntime"),
                     AU_OK);
}

/* A symbol table with more entries than AU_ELF_MAX_SYMBOLS: only a file
 * of over 100 MB can hold one, so the file size is claimed (the reader
 * checks counts before it reads any entry). */
static void test_symbol_limit(void **state) {
    (void)state;
    image im;
    build_reference(&im);
    w64(shdr_at(&im, 6) + 32, (uint64_t)24 * (AU_ELF_MAX_SYMBOLS + 1));
    au_elf e;
    au_bytes src = {im.b, im.len};
    uint64_t v;
    assert_int_equal(au_elf_open(&e, au_bytes_read_at, &src, 1ull << 40),
                     AU_OK);
    assert_int_equal(au_elf_symbol(&e, "_PyRuntime", &v, NULL), AU_ERR_LIMIT);
    /* .dynsym is scanned first and holds bar: found before the limit. */
    assert_int_equal(au_elf_symbol(&e, "bar", &v, NULL), AU_OK);
    free(im.b);
}

/* A read callback that fails after a number of successful reads. */
typedef struct failing {
    au_bytes inner;
    int reads_left;
    int status;
} failing;

static int failing_read(void *ud, uint64_t off, void *buf, size_t len) {
    failing *f = ud;
    if (f->reads_left-- <= 0) return f->status;
    return au_bytes_read_at(&f->inner, off, buf, len);
}

static void test_read_failures(void **state) {
    (void)state;
    image im;
    build_reference(&im);
    au_elf e;
    failing f = {{im.b, im.len}, 0, AU_ERR_IO};
    assert_int_equal(au_elf_open(&e, failing_read, &f, im.len), AU_ERR_IO);
    /* A callback breaking the contract with a positive value: an error. */
    f.reads_left = 0;
    f.status = 7;
    assert_int_equal(au_elf_open(&e, failing_read, &f, im.len), AU_ERR_IO);
    /* Failures during lookups propagate. */
    f.reads_left = 1000;
    f.status = AU_ERR_READ;
    assert_int_equal(au_elf_open(&e, failing_read, &f, im.len), AU_OK);
    f.reads_left = 1;
    uint64_t v;
    assert_int_equal(au_elf_symbol(&e, "foo", &v, NULL), AU_ERR_READ);
    f.reads_left = 0;
    assert_int_equal(au_elf_section(&e, ".text", &v, NULL, NULL), AU_ERR_READ);
    free(im.b);
}

/* --- Load bias on hand-made layouts. --------------------------------- */
static au_map fmap(uint64_t start, uint64_t end, uint64_t offset,
                   uint32_t perms) {
    au_map m;
    memset(&m, 0, sizeof m);
    m.start = start;
    m.end = end;
    m.offset = offset;
    m.perms = perms | AU_MAP_P;
    m.inode = 1;
    m.path_len = 1; /* a file map; the path is not looked at */
    return m;
}

static void test_load_bias(void **state) {
    (void)state;
    /* An old (pre-separate-code) layout: text and data share a file page,
     * data sits 2 MB up, and RELRO made data's first page read-only. */
    seg_spec g[] = {
        {AU_ELF_PF_R | AU_ELF_PF_X, 0, 0, 0x1d00, 0x1d00},
        {AU_ELF_PF_R | AU_ELF_PF_W, 0x1dd8, 0x201dd8, 0x300, 0x500},
    };
    image im;
    build(&im, NULL, 0, g, 2, 0x3000);
    au_elf e;
    au_bytes src;
    assert_int_equal(open_bytes(&e, &src, &im, im.len), AU_OK);
    const uint64_t B = 0x7f0000000000ull;
    au_map maps[] = {
        fmap(B, B + 0x2000, 0, AU_MAP_R | AU_MAP_X),
        fmap(B + 0x2000, B + 0x201000, 0x2000, 0), /* ---p gap: ignored */
        fmap(B + 0x201000, B + 0x202000, 0x1000, AU_MAP_R),
        fmap(B + 0x202000, B + 0x203000, 0x2000, AU_MAP_R | AU_MAP_W),
        fmap(B + 0x203000, B + 0x204000, 0, AU_MAP_R | AU_MAP_W),
    };
    maps[4].path_len = 0; /* anonymous .bss tail: ignored */
    uint64_t bias, a;
    assert_int_equal(au_elf_load_bias(&e, maps, 5, &bias), AU_OK);
    assert_true(bias == B);
    assert_int_equal(au_elf_runtime_addr(&e, maps, 5, 0x201e00, &a), AU_OK);
    assert_true(a == B + 0x201e00);
    assert_int_equal(au_elf_runtime_addr(&e, maps, 5, 0x2022d7, &a), AU_OK);
    assert_true(a == B + 0x2022d7); /* in memsz beyond filesz (.bss) */
    assert_int_equal(au_elf_runtime_addr(&e, maps, 5, 0x2022d8, &a),
                     AU_ERR_NOT_FOUND);
    assert_int_equal(au_elf_runtime_addr(&e, maps, 5, 0x100000, &a),
                     AU_ERR_NOT_FOUND);
    /* The order of the maps does not matter. */
    au_map rev[5];
    for (int i = 0; i < 5; i++) rev[i] = maps[4 - i];
    assert_int_equal(au_elf_load_bias(&e, rev, 5, &bias), AU_OK);
    assert_true(bias == B);
    /* The RELRO page alone overlaps both segments in the file with
     * compatible permissions: two biases, one map each: ambiguous. */
    assert_int_equal(au_elf_load_bias(&e, &maps[2], 1, &bias), AU_ERR_FORMAT);
    /* The text map alone is unambiguous (r-x cannot map the RW segment). */
    assert_int_equal(au_elf_load_bias(&e, &maps[0], 1, &bias), AU_OK);
    assert_true(bias == B);
    /* Only the gap and the anonymous map: nothing to go on. */
    au_map none[] = {maps[1], maps[4]};
    assert_int_equal(au_elf_load_bias(&e, none, 2, &bias), AU_ERR_NOT_FOUND);
    assert_int_equal(au_elf_load_bias(&e, NULL, 0, &bias), AU_ERR_NOT_FOUND);
    assert_int_equal(au_elf_load_bias(&e, NULL, 3, &bias), AU_ERR_ARG);
    /* A non-PIE executable: mapped where it was linked, bias 0. */
    au_map fixed[] = {fmap(0, 0x2000, 0, AU_MAP_R | AU_MAP_X),
                      fmap(0x201000, 0x203000, 0x1000, AU_MAP_R | AU_MAP_W)};
    assert_int_equal(au_elf_load_bias(&e, fixed, 2, &bias), AU_OK);
    assert_true(bias == 0);
    /* Only the first AU_ELF_MAX_RT_MAPS maps count. */
    au_map many[AU_ELF_MAX_RT_MAPS + 1];
    for (uint32_t i = 0; i < AU_ELF_MAX_RT_MAPS; i++) many[i] = maps[1];
    many[AU_ELF_MAX_RT_MAPS] = maps[0];
    assert_int_equal(au_elf_load_bias(&e, many, AU_ELF_MAX_RT_MAPS + 1, &bias),
                     AU_ERR_NOT_FOUND);
    free(im.b);
}

/* --- Read callbacks and opening files through /proc/PID/root. -------- */
static const char *tmpdir(void) {
    const char *t = getenv("TEST_TMPDIR");
    return t && *t ? t : "/tmp";
}

static void test_file_read_at(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/elf_test_file_%d", tmpdir(), (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    uint8_t data[100];
    for (int i = 0; i < 100; i++) data[i] = (uint8_t)i;
    assert_int_equal(write(fd, data, sizeof data), 100);
    uint8_t buf[100];
    assert_int_equal(au_file_read_at(&fd, 0, buf, 100), AU_OK);
    assert_memory_equal(buf, data, 100);
    assert_int_equal(au_file_read_at(&fd, 60, buf, 40), AU_OK);
    assert_memory_equal(buf, data + 60, 40);
    assert_int_equal(au_file_read_at(&fd, 60, buf, 41), AU_ERR_IO);
    assert_int_equal(au_file_read_at(&fd, 100, buf, 1), AU_ERR_IO);
    assert_int_equal(au_file_read_at(&fd, 100, buf, 0), AU_OK);
    assert_int_equal(au_file_read_at(&fd, UINT64_MAX, buf, 1), AU_ERR_IO);
    assert_int_equal(au_file_read_at(&fd, (uint64_t)INT64_MAX, buf, 2),
                     AU_ERR_IO);
    assert_int_equal(au_file_read_at(NULL, 0, buf, 1), AU_ERR_ARG);
    int bad = -1;
    assert_int_equal(au_file_read_at(&bad, 0, buf, 1), AU_ERR_IO);

    au_bytes b = {data, sizeof data};
    assert_int_equal(au_bytes_read_at(&b, 99, buf, 1), AU_OK);
    assert_int_equal(buf[0], 99);
    assert_int_equal(au_bytes_read_at(&b, 99, buf, 2), AU_ERR_IO);
    assert_int_equal(au_bytes_read_at(&b, UINT64_MAX, buf, 2), AU_ERR_IO);
    close(fd);

    /* Through /proc/PID/root, for our own pid. */
    uint64_t size;
    assert_int_equal(au_proc_open_file(getpid(), path, strlen(path), &fd, &size),
                     AU_OK);
    assert_true(size == 100);
    assert_int_equal(au_file_read_at(&fd, 0, buf, 100), AU_OK);
    assert_memory_equal(buf, data, 100);
    close(fd);
    unlink(path);
    /* Now it is gone, but the process is not. */
    assert_int_equal(au_proc_open_file(getpid(), path, strlen(path), &fd, &size),
                     AU_ERR_NOT_FOUND);
    assert_int_equal(fd, -1);
}

static void test_proc_open_errors(void **state) {
    (void)state;
    int fd;
    uint64_t size;
    const pid_t me = getpid();
    assert_int_equal(au_proc_open_file(me, "etc/passwd", 10, &fd, &size),
                     AU_ERR_ARG);
    assert_int_equal(au_proc_open_file(me, "/etc\0/x", 7, &fd, &size),
                     AU_ERR_ARG);
    assert_int_equal(au_proc_open_file(me, "/x", 0, &fd, &size), AU_ERR_ARG);
    assert_int_equal(au_proc_open_file(0, "/x", 2, &fd, &size), AU_ERR_ARG);
    assert_int_equal(au_proc_open_file(1 << 30, "/x", 2, &fd, &size),
                     AU_ERR_NOPROC);
    assert_int_equal(au_proc_open_file(me, "/no/such/file", 13, &fd, &size),
                     AU_ERR_NOT_FOUND);
    /* Not regular files: a directory, a device, and a FIFO (which must not
     * block the caller). */
    assert_int_equal(au_proc_open_file(me, "/", 1, &fd, &size),
                     AU_ERR_UNSUPPORTED);
    assert_int_equal(au_proc_open_file(me, "/dev/null", 9, &fd, &size),
                     AU_ERR_UNSUPPORTED);
    char fifo[4096];
    snprintf(fifo, sizeof fifo, "%s/elf_test_fifo_%d", tmpdir(), (int)me);
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(au_proc_open_file(me, fifo, strlen(fifo), &fd, &size),
                     AU_ERR_UNSUPPORTED);
    unlink(fifo);
    /* Too long for PATH_MAX. */
    static char longp[5000];
    memset(longp, 'a', sizeof longp);
    longp[0] = '/';
    assert_int_equal(au_proc_open_file(me, longp, sizeof longp, &fd, &size),
                     AU_ERR_LIMIT);
}

/* --- Real files. ------------------------------------------------------ */

/* The maps of one process and the maps of one file among them. */
typedef struct proc_maps {
    char *text;
    size_t len;
    au_map maps[4096];
    uint32_t n;
    au_map file[AU_ELF_MAX_RT_MAPS];
    uint32_t nfile;
} proc_maps;

static proc_maps *load_maps(pid_t pid) {
    proc_maps *pm = calloc(1, sizeof *pm);
    assert_non_null(pm);
    size_t cap = 1 << 22;
    pm->text = malloc(cap);
    assert_non_null(pm->text);
    assert_int_equal(au_maps_read(pid, pm->text, cap, &pm->len), AU_OK);
    uint32_t bad;
    assert_int_equal(au_maps_parse(pm->text, pm->len, pm->maps, 4096, &pm->n,
                                   &bad),
                     AU_OK);
    assert_int_equal(bad, 0);
    return pm;
}

/* Select the maps of the file with this id into pm->file. */
static void select_file(proc_maps *pm, au_map_file_id id) {
    pm->nfile = 0;
    for (uint32_t i = au_maps_find(pm->text, pm->maps, pm->n, 0,
                                   au_map_pred_file_id, &id);
         i != UINT32_MAX && pm->nfile < AU_ELF_MAX_RT_MAPS;
         i = au_maps_find(pm->text, pm->maps, pm->n, i + 1,
                          au_map_pred_file_id, &id)) {
        pm->file[pm->nfile++] = pm->maps[i];
    }
    assert_true(pm->nfile > 0);
}

static void free_maps(proc_maps *pm) {
    free(pm->text);
    free(pm);
}

static void test_self_exe(void **state) {
    (void)state;
    proc_maps *pm = load_maps(getpid());
    au_map_file_id id;
    assert_int_equal(au_proc_exe_id(getpid(), &id), AU_OK);
    select_file(pm, id);

    /* Open our executable the way a target's is opened: by its path in the
     * maps, through /proc/PID/root. */
    const au_map *m0 = &pm->file[0];
    int fd;
    uint64_t size;
    assert_int_equal(au_proc_open_file(getpid(), pm->text + m0->path_off,
                                       m0->path_len, &fd, &size),
                     AU_OK);
    assert_int_equal(au_fd_matches_map(fd, m0), 1);
    au_elf e;
    assert_int_equal(au_elf_open(&e, au_file_read_at, &fd, size), AU_OK);
    assert_true(e.nloads >= 2);

    uint64_t text_addr, text_size, text_off;
    assert_int_equal(au_elf_section(&e, ".text", &text_addr, &text_size,
                                    &text_off),
                     AU_OK);
    assert_true(text_off > 0 && text_off + text_size <= size);
    uint64_t dyn_size, dyn_off;
    assert_int_equal(au_elf_section(&e, ".dynsym", NULL, &dyn_size, &dyn_off),
                     AU_OK);
    assert_true(dyn_size % 24 == 0 && dyn_off + dyn_size <= size);

    /* A function, a data object and a .bss object of this test: the
     * link-time value plus the bias is where they are right now. */
    uint64_t v, sz, a;
    assert_int_equal(au_elf_symbol(&e, "elf_test_marker", &v, &sz), AU_OK);
    assert_true(v >= text_addr && v - text_addr < text_size);
    assert_int_equal(au_elf_runtime_addr(&e, pm->file, pm->nfile, v, &a), AU_OK);
    assert_true(a == (uint64_t)(uintptr_t)&elf_test_marker);

    assert_int_equal(au_elf_symbol(&e, "elf_test_data", &v, &sz), AU_OK);
    assert_true(sz >= sizeof elf_test_data); /* ASan may add a redzone */
    assert_int_equal(au_elf_runtime_addr(&e, pm->file, pm->nfile, v, &a), AU_OK);
    assert_true(a == (uint64_t)(uintptr_t)elf_test_data);

    assert_int_equal(au_elf_symbol(&e, "elf_test_bss", &v, &sz), AU_OK);
    assert_true(sz >= sizeof elf_test_bss);
    assert_int_equal(au_elf_runtime_addr(&e, pm->file, pm->nfile, v, &a), AU_OK);
    assert_true(a == (uint64_t)(uintptr_t)elf_test_bss);

    assert_int_equal(au_elf_symbol(&e, "elf_test_no_such_symbol", &v, &sz),
                     AU_ERR_NOT_FOUND);

    /* The same file through /proc/self/exe gives the same answers. */
    int fd2 = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    assert_true(fd2 >= 0);
    struct stat st;
    assert_int_equal(fstat(fd2, &st), 0);
    assert_true((uint64_t)st.st_size == size);
    au_elf e2;
    assert_int_equal(au_elf_open(&e2, au_file_read_at, &fd2, size), AU_OK);
    uint64_t v2;
    assert_int_equal(au_elf_symbol(&e2, "elf_test_marker", &v2, NULL), AU_OK);
    assert_int_equal(au_elf_symbol(&e, "elf_test_marker", &v, NULL), AU_OK);
    assert_true(v2 == v);

    /* Truncated copies of a real file: malformed, never a crash.  The
     * section header table closes the file, so every cut loses it. */
    uint8_t *copy = malloc(size);
    assert_non_null(copy);
    assert_int_equal(au_file_read_at(&fd2, 0, copy, size), AU_OK);
    au_bytes src = {copy, size};
    assert_int_equal(au_elf_open(&e2, au_bytes_read_at, &src, size), AU_OK);
    assert_int_equal(au_elf_symbol(&e2, "elf_test_marker", &v2, NULL), AU_OK);
    assert_true(v2 == v);
    const uint64_t cuts[] = {0, 63, 64, 4096, size / 2, size - 64, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        src.size = cuts[i];
        assert_int_equal(au_elf_open(&e2, au_bytes_read_at, &src, cuts[i]),
                         AU_ERR_FORMAT);
    }
    /* Garbage over the section headers' offset field. */
    src.size = size;
    memset(copy + 40, 0xff, 8);
    assert_int_equal(au_elf_open(&e2, au_bytes_read_at, &src, size),
                     AU_ERR_FORMAT);
    free(copy);
    close(fd2);
    close(fd);
    free_maps(pm);
}

/* A shared library mapped by ld.so (with PROT_NONE gaps): libc's getpid,
 * as the dynamic linker itself resolves it. */
static void test_libc_bias(void **state) {
    (void)state;
    void *h = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_NOW);
    assert_non_null(h);
    void *want = dlsym(h, "getpid");
    assert_non_null(want);
    proc_maps *pm = load_maps(getpid());
    uint32_t i = au_maps_find(pm->text, pm->maps, pm->n, 0,
                              au_map_pred_basename_prefix, "libc.so.6");
    assert_int_not_equal(i, UINT32_MAX);
    select_file(pm, au_map_file_id_of(&pm->maps[i]));
    int fd;
    uint64_t size;
    assert_int_equal(au_proc_open_file(getpid(), pm->text + pm->maps[i].path_off,
                                       pm->maps[i].path_len, &fd, &size),
                     AU_OK);
    au_elf e;
    assert_int_equal(au_elf_open(&e, au_file_read_at, &fd, size), AU_OK);
    uint64_t v, a;
    assert_int_equal(au_elf_symbol(&e, "getpid", &v, NULL), AU_OK);
    assert_int_equal(au_elf_runtime_addr(&e, pm->file, pm->nfile, v, &a), AU_OK);
    assert_true(a == (uint64_t)(uintptr_t)want);
    close(fd);
    free_maps(pm);
    dlclose(h);
}

/* A missing interpreter skips its check, or fails it when the environment
 * has CI=true (bazel test --test_env=CI=true), as in pyoffsets_test. */
static int missing_python(const char *what) {
    const char *ci = getenv("CI");
    if (ci != NULL && strcmp(ci, "true") == 0) {
        fail_msg("%s is missing (CI=true: a missing interpreter is a failure)",
                 what);
    }
    print_message("SKIP %s: not installed\n", what);
    return 0;
}

/* CPython builds: the .PyRuntime section and the _PyRuntime symbol name
 * the same address.  Skipped when none of them is installed. */
static const char *const PYTHONS[] = {
    "/usr/bin/python3.11", /* Debian: static, _PyRuntime in the executable */
    "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0",
    "/root/.pyenv/versions/3.13.0/lib/libpython3.13.so.1.0",
};

static void test_python_runtime_symbol(void **state) {
    (void)state;
    int checked = 0;
    for (size_t i = 0; i < sizeof PYTHONS / sizeof *PYTHONS; i++) {
        int fd = open(PYTHONS[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            missing_python(PYTHONS[i]);
            continue;
        }
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        au_elf e;
        assert_int_equal(au_elf_open(&e, au_file_read_at, &fd, (uint64_t)st.st_size),
                         AU_OK);
        uint64_t sec_addr, sec_size, sec_off, sym, sym_size;
        assert_int_equal(au_elf_section(&e, ".PyRuntime", &sec_addr, &sec_size,
                                        &sec_off),
                         AU_OK);
        assert_int_equal(au_elf_symbol(&e, "_PyRuntime", &sym, &sym_size),
                         AU_OK);
        assert_true(sym == sec_addr);
        assert_true(sym_size <= sec_size && sym_size > 0);
        assert_true(sec_off + sec_size <= (uint64_t)st.st_size);
        close(fd);
        checked++;
    }
    if (checked == 0) skip();
}

/* Start python with args, wait until its maps show want_prefix, and
 * return its pid (or -1 when the interpreter is absent). */
static pid_t start_python(const char *exe, const char *want_prefix) {
    if (access(exe, X_OK) != 0) return -1;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(exe, exe, "-S", "-c", "import time; time.sleep(60)", (char *)NULL);
        _exit(127);
    }
    /* Up to 10 s for the interpreter to map its runtime. */
    for (int tries = 0; tries < 1000; tries++) {
        proc_maps *pm = load_maps(pid);
        uint32_t i = au_maps_find(pm->text, pm->maps, pm->n, 0,
                                  au_map_pred_basename_prefix,
                                  (void *)want_prefix);
        free_maps(pm);
        if (i != UINT32_MAX) return pid;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("%s never mapped %s", exe, want_prefix);
    return -1;
}

static void stop_child(pid_t pid) {
    kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
}

/* A live CPython 3.13 with libpython: the computed runtime address of
 * _PyRuntime holds the _Py_DebugOffsets cookie "xdebugpy", which 3.13
 * places first in _PyRuntime for debuggers. */
static void test_live_python(void **state) {
    (void)state;
    static const char exe[] = "/root/.pyenv/versions/3.13.0/bin/python3.13";
    pid_t pid = start_python(exe, "libpython3.13");
    if (pid < 0) {
        missing_python(exe);
        skip();
    }
    proc_maps *pm = load_maps(pid);
    uint32_t i = au_maps_find(pm->text, pm->maps, pm->n, 0,
                              au_map_pred_basename_prefix, "libpython3.13");
    assert_int_not_equal(i, UINT32_MAX);
    select_file(pm, au_map_file_id_of(&pm->maps[i]));
    int fd;
    uint64_t size;
    assert_int_equal(au_proc_open_file(pid, pm->text + pm->maps[i].path_off,
                                       pm->maps[i].path_len, &fd, &size),
                     AU_OK);
    assert_int_equal(au_fd_matches_map(fd, &pm->maps[i]), 1);
    au_elf e;
    assert_int_equal(au_elf_open(&e, au_file_read_at, &fd, size), AU_OK);
    uint64_t v, a;
    assert_int_equal(au_elf_symbol(&e, "_PyRuntime", &v, NULL), AU_OK);
    assert_int_equal(au_elf_runtime_addr(&e, pm->file, pm->nfile, v, &a), AU_OK);
    char cookie[8];
    struct iovec local = {cookie, sizeof cookie};
    struct iovec remote = {(void *)(uintptr_t)a, sizeof cookie};
    ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    int err = errno;
    stop_child(pid);
    close(fd);
    free_maps(pm);
    if (got < 0) fail_msg("process_vm_readv: %s", strerror(err));
    assert_int_equal(got, 8);
    assert_memory_equal(cookie, "xdebugpy", 8);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_lookups),
        cmocka_unit_test(test_extended_numbering),
        cmocka_unit_test(test_large_tables),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_no_sections),
        cmocka_unit_test(test_bad_sections),
        cmocka_unit_test(test_symbol_limit),
        cmocka_unit_test(test_read_failures),
        cmocka_unit_test(test_load_bias),
        cmocka_unit_test(test_file_read_at),
        cmocka_unit_test(test_proc_open_errors),
        cmocka_unit_test(test_self_exe),
        cmocka_unit_test(test_libc_bias),
        cmocka_unit_test(test_python_runtime_symbol),
        cmocka_unit_test(test_live_python),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
