/* Little-endian loads and stores, the one place the core spells them.
 *
 * Target memory, snapshot files and ELF images are all little-endian
 * here (x86-64 and aarch64 targets; the snapshot format says so), and
 * none of their bytes is aligned for us, so every multi-byte value is
 * assembled byte by byte: no alignment traps, no host byte-order
 * assumption, and compilers turn these into single loads. */
#ifndef ASYNCUNWIND_BYTES_H
#define ASYNCUNWIND_BYTES_H

#include <stdint.h>

static inline uint16_t au_rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t au_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t au_rd64(const uint8_t *p) {
    return au_rd32(p) | (uint64_t)au_rd32(p + 4) << 32;
}

static inline void au_wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void au_wr64(uint8_t *p, uint64_t v) {
    au_wr32(p, (uint32_t)v);
    au_wr32(p + 4, (uint32_t)(v >> 32));
}

/* Code point c as UTF-8 into out (room for 4), returning the length.
 * Surrogates and values past U+10FFFF become U+FFFD: names read from a
 * target are printed, and must stay valid UTF-8 whatever the target holds. */
static inline uint32_t au_put_utf8(char *out, uint32_t c) {
    if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) c = 0xFFFD;
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | c >> 6);
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | c >> 12);
        out[1] = (char)(0x80 | (c >> 6 & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | c >> 18);
    out[1] = (char)(0x80 | (c >> 12 & 0x3F));
    out[2] = (char)(0x80 | (c >> 6 & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

#endif
