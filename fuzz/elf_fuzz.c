/*
 * Fuzz target `elf`: the ELF reader (core/process/au_elf.h) over arbitrary bytes (the
 * input is the whole file, read through au_bytes_read_at).
 *
 * Exercised on every input: au_elf_open; au_elf_section for a few names;
 * au_elf_symbol for a few names; au_elf_load_bias and au_elf_runtime_addr
 * against maps synthesised from the file's PT_LOADs at a known bias.
 *
 * Checked:
 *   open     the header fields it keeps are within their bounds: section
 *            table inside the file, at most AU_ELF_MAX_LOADS loads, each
 *            load inside the file with filesz <= memsz and no vaddr wrap;
 *   section  a section found has its bytes inside the file (or is NOBITS);
 *   status   every status is AU_OK or one of the documented errors;
 *   reads    every read the reader makes lies inside the file (the read
 *            callback checks; the reader must never ask for more);
 *   bias     when the synthesised maps are unambiguous (every load's
 *            vaddr and offset agree modulo the page, and the loads' page
 *            ranges in the file are pairwise disjoint), the bias found is
 *            exactly the one used, and runtime addresses of symbols inside
 *            a load are value + bias;
 *   determinism  the same lookup twice gives the same answer.
 * A violation prints what failed and aborts.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "au_elf.h"
#include "fuzz/fuzz_helpers.h"
#include "fuzz/run_from_workspace.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    au_fuzz_run_from_workspace();
    return 0;
}

#define PAGE 4096u

static int range_ok(uint64_t off, uint64_t size, uint64_t limit) {
    return size <= limit && off <= limit - size;
}

/* The read callback: the bytes, and a check that the reader never asks
 * for anything outside them (it must check offsets itself first). */
static int checked_read(void *ud, uint64_t off, void *buf, size_t len) {
    const au_bytes *b = ud;
    CHECK(range_ok(off, len, b->size));
    return au_bytes_read_at(ud, off, buf, len);
}

static int known_status(int r) {
    return r == AU_OK || r == AU_ERR_FORMAT || r == AU_ERR_UNSUPPORTED ||
           r == AU_ERR_NOT_FOUND || r == AU_ERR_LIMIT;
}

static const char *const SECTIONS[] = {
    ".text", ".PyRuntime", ".dynsym", ".symtab", ".bss",
    ".data", ".dynstr", ".shstrtab", ".gnu.hash",
};

static const char *const SYMBOLS[] = {
    "_PyRuntime", "main", "_start", "Py_Version", "a",
};

/* Synthesise the maps a loader would create for the PT_LOADs at bias;
 * returns how many, and whether they are unambiguous (see the top). */
static uint32_t make_maps(const au_elf_seg *s, uint32_t ns, uint64_t bias,
                          au_map *maps, int *unambiguous) {
    uint32_t n = 0;
    *unambiguous = 1;
    for (uint32_t i = 0; i < ns; i++) {
        if (s[i].filesz == 0) continue;
        uint64_t vstart = s[i].vaddr & ~(uint64_t)(PAGE - 1);
        uint64_t vend = s[i].vaddr + s[i].filesz; /* no wrap: checked */
        if (vend > UINT64_MAX - (PAGE - 1)) {
            *unambiguous = 0;
            continue;
        }
        vend = (vend + PAGE - 1) & ~(uint64_t)(PAGE - 1);
        if ((s[i].vaddr ^ s[i].offset) & (PAGE - 1)) *unambiguous = 0;
        au_map m;
        memset(&m, 0, sizeof m);
        m.start = bias + vstart;
        m.end = bias + vend;
        m.offset = s[i].offset & ~(uint64_t)(PAGE - 1);
        m.perms = AU_MAP_P | ((s[i].flags & AU_ELF_PF_R) ? AU_MAP_R : 0) |
                  ((s[i].flags & AU_ELF_PF_W) ? AU_MAP_W : 0) |
                  ((s[i].flags & AU_ELF_PF_X) ? AU_MAP_X : 0);
        m.inode = 1;
        m.path_len = 1;
        if (m.start >= m.end || (m.perms & ~AU_MAP_P) == 0) {
            *unambiguous = 0; /* wrapped, or a map the reader ignores */
            continue;
        }
        maps[n++] = m;
    }
    if (n == 0) *unambiguous = 0;
    /* Pairwise disjoint page ranges in the file. */
    for (uint32_t i = 0; i < n && *unambiguous; i++) {
        for (uint32_t j = i + 1; j < n; j++) {
            uint64_t ai = maps[i].offset, li = maps[i].end - maps[i].start;
            uint64_t aj = maps[j].offset, lj = maps[j].end - maps[j].start;
            int overlap = ai <= aj ? aj - ai < li : ai - aj < lj;
            if (overlap) *unambiguous = 0;
        }
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    au_bytes src = {data, size};
    au_elf e;
    int r = au_elf_open(&e, checked_read, &src, size);
    CHECK(known_status(r));
    if (r != AU_OK) return 0;

    CHECK(e.shnum <= AU_ELF_MAX_SECTIONS);
    if (e.shnum > 0) {
        CHECK(e.shentsize >= 64);
        CHECK(range_ok(e.shoff, (uint64_t)e.shnum * e.shentsize, size));
        CHECK(e.shstrndx < e.shnum);
    }
    au_elf_seg segs[AU_ELF_MAX_LOADS];
    uint32_t ns = au_elf_load_segments(&e, segs, AU_ELF_MAX_LOADS);
    CHECK(ns == e.nloads && ns <= AU_ELF_MAX_LOADS);
    for (uint32_t i = 0; i < ns; i++) {
        CHECK(range_ok(segs[i].offset, segs[i].filesz, size));
        CHECK(segs[i].filesz <= segs[i].memsz);
        CHECK(segs[i].vaddr <= UINT64_MAX - segs[i].memsz);
    }

    for (size_t i = 0; i < sizeof SECTIONS / sizeof *SECTIONS; i++) {
        uint64_t addr = 0, sz = 0, off = 0;
        r = au_elf_section(&e, SECTIONS[i], &addr, &sz, &off);
        CHECK(known_status(r));
        if (r != AU_OK) continue;
        CHECK(off == AU_ELF_NOBITS || range_ok(off, sz, size));
        uint64_t addr2 = 0, sz2 = 0, off2 = 0;
        CHECK(au_elf_section(&e, SECTIONS[i], &addr2, &sz2, &off2) == AU_OK);
        CHECK(addr == addr2 && sz == sz2 && off == off2);
    }

    /* A bias from the input, page-aligned, in the user half. */
    uint64_t bias = 0;
    for (size_t i = 0; i < size && i < 64; i++) bias = bias * 131 + data[i];
    bias = (bias & 0x00007ffffffff000ull);
    au_map maps[AU_ELF_MAX_LOADS];
    int unambiguous;
    uint32_t nm = make_maps(segs, ns, bias, maps, &unambiguous);
    uint64_t found_bias = 0;
    r = au_elf_load_bias(&e, maps, nm, &found_bias);
    CHECK(known_status(r));
    if (unambiguous) {
        CHECK(r == AU_OK && found_bias == bias);
    }

    for (size_t i = 0; i < sizeof SYMBOLS / sizeof *SYMBOLS; i++) {
        uint64_t v = 0, sz = 0;
        r = au_elf_symbol(&e, SYMBOLS[i], &v, &sz);
        CHECK(known_status(r));
        if (r != AU_OK) continue;
        uint64_t v2 = 0, sz2 = 0;
        CHECK(au_elf_symbol(&e, SYMBOLS[i], &v2, &sz2) == AU_OK);
        CHECK(v == v2 && sz == sz2);
        uint64_t a = 0;
        r = au_elf_runtime_addr(&e, maps, nm, v, &a);
        CHECK(known_status(r));
        int inside = 0;
        for (uint32_t j = 0; j < ns; j++) {
            inside |= v >= segs[j].vaddr && v - segs[j].vaddr < segs[j].memsz;
        }
        if (!inside) CHECK(r == AU_ERR_NOT_FOUND);
        if (inside && unambiguous) CHECK(r == AU_OK && a == v + bias);
    }
    return 0;
}
