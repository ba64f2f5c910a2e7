/*
 * The render layer's output buffer and the text helpers every format
 * shares (au_render_out.h).
 */
#include <stdio.h>
#include <string.h>

#include "au_render_out.h"
#include "au_sampler.h"

void au_out_init(au_out *o, int (*write)(void *ud, const void *buf, size_t len), void *ud) {
    o->write = write;
    o->ud = ud;
    o->rc = AU_OK;
    o->len = 0;
}

int au_out_flush(au_out *o) {
    if (o->rc == AU_OK && o->len && o->write(o->ud, o->buf, o->len) != 0) o->rc = AU_ERR_IO;
    o->len = 0;
    return o->rc;
}

void au_out_put_slow(au_out *o, const char *s, size_t n) {
    while (n) {
        if (o->len == sizeof o->buf) au_out_flush(o);
        size_t k = sizeof o->buf - o->len < n ? sizeof o->buf - o->len : n;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

void au_out_u64(au_out *o, unsigned long long v) {
    char tmp[20]; /* 2^64 - 1 has 20 digits */
    size_t at = sizeof tmp;
    do {
        tmp[--at] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    au_out_put(o, tmp + at, sizeof tmp - at);
}

void au_out_hex(au_out *o, unsigned long long v) {
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t at = sizeof tmp;
    do {
        tmp[--at] = hex[v & 15];
        v >>= 4;
    } while (v);
    au_out_put(o, tmp + at, sizeof tmp - at);
}

void au_out_putf(au_out *o, const char *fmt, unsigned long long v) {
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    if (n > 0) au_out_put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* The high bit of every byte of w that is below 0x20, DEL, or one of the
 * nspecial bytes of special, and maybe of bytes above such a byte: zero
 * exactly when there is none.  The classic SWAR tests: (x - 0x01..) & ~x
 * & 0x80.. is non-zero exactly when some byte of x is 0, and (w - 0x20..)
 * & ~w & 0x80.. when some byte of w is below 0x20 (bytes of 0x80 and up
 * never count: their ~w has the high bit clear). */
static inline uint64_t care_bits(uint64_t w, const char *special, int nspecial) {
    const uint64_t ones = 0x0101010101010101ull;
    uint64_t del = w ^ (ones * 0x7f), t = ((w - ones * 0x20) & ~w) | ((del - ones) & ~del);
    for (int k = 0; k < nspecial; k++) {
        uint64_t x = w ^ (ones * (unsigned char)special[k]);
        t |= (x - ones) & ~x;
    }
    return t & (ones << 7);
}

/* Runs of ordinary bytes go out whole: a stack is mostly file names,
 * looked at eight bytes at a time (rendering 1,000 stacks wrote 1.26 MB
 * and spent over half its instructions here a byte at a time). */
void au_out_clean(au_out *o, const char *s, size_t n, int semicolon) {
    static const char hex[] = "0123456789abcdef";
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            /* constant arguments each way, for the compiler to unroll */
            if (!(semicolon ? care_bits(w, ";", 1) : care_bits(w, "", 0))) {
                i += 7; /* and the loop's own step */
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i];
        if ((c >= 0x20 && c != 0x7f && !(semicolon && c == ';'))) continue;
        au_out_put(o, s + from, i - from);
        from = i + 1;
        if (c == '\n' || c == '\r' || c == '\t') {
            au_out_put(o, " ", 1);
        } else if (c == ';') {
            au_out_put(o, ":", 1);
        } else { /* ESC and the rest would drive the terminal */
            char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            au_out_put(o, esc, 4);
        }
    }
    au_out_put(o, s + from, n - from);
}

/* The ranges of the second byte are RFC 3629's table: they rule out
 * overlong forms (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code
 * points above U+10FFFF (F4 90..BF, F5..FF). */
size_t au_utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else return 0;
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return len;
}

/* The walk both escapers share: ASCII bytes that `plain` accepts and
 * well-formed multi-byte sequences go out in runs; other ASCII bytes
 * through esc(); any other byte as U+FFFD.  `special` lists the printable
 * ASCII bytes that `plain` refuses: words of eight bytes that hold none of
 * them and nothing outside printable ASCII are passed over at once. */
static void escape_utf8(au_out *o, const char *str, size_t n, int (*plain)(unsigned char),
                        void (*esc)(au_out *, unsigned char), const char *special) {
    const unsigned char *s = (const unsigned char *)str;
    int nspecial = (int)strlen(special);
    size_t from = 0, i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            /* printable ASCII only (w's high bits), none of special */
            if (!((care_bits(w, special, nspecial) | w) & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        size_t k = s[i] < 0x80 ? (size_t)(plain(s[i]) != 0) : au_utf8_len(s + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        au_out_put(o, str + from, i - from);
        if (s[i] < 0x80) esc(o, s[i]);
        else au_out_put(o, "\xef\xbf\xbd", 3); /* U+FFFD for a stray byte */
        from = ++i;
    }
    au_out_put(o, str + from, n - from);
}

static int json_plain(unsigned char c) { return c >= 0x20 && c != '"' && c != '\\'; }

static void json_esc(au_out *o, unsigned char c) {
    if (c == '"') au_out_put(o, "\\\"", 2);
    else if (c == '\\') au_out_put(o, "\\\\", 2);
    else if (c == '\n') au_out_put(o, "\\n", 2);
    else if (c == '\t') au_out_put(o, "\\t", 2);
    else au_out_putf(o, "\\u%04llx", c);
}

void au_out_json(au_out *o, const char *s, size_t n) {
    escape_utf8(o, s, n, json_plain, json_esc, "\"\\");
}

void au_out_json_string(au_out *o, const char *s, size_t n) {
    au_out_put(o, "\"", 1);
    au_out_json(o, s, n);
    au_out_put(o, "\"", 1);
}

static int xml_plain(unsigned char c) {
    return c >= 0x20 && c != '&' && c != '<' && c != '>' && c != '"' && c != '\'' && c != 0x7f;
}

static void xml_esc(au_out *o, unsigned char c) {
    switch (c) {
    case '&': au_out_puts(o, "&amp;"); break;
    case '<': au_out_puts(o, "&lt;"); break;
    case '>': au_out_puts(o, "&gt;"); break;
    case '"': au_out_puts(o, "&quot;"); break;
    case '\'': au_out_puts(o, "&#39;"); break;
    case '\t': au_out_puts(o, "&#9;"); break;
    case 0x7f: au_out_puts(o, "&#127;"); break;
    default: au_out_put(o, "?", 1); break; /* not representable in XML 1.0 */
    }
}

void au_out_xml(au_out *o, const char *s, size_t n) {
    escape_utf8(o, s, n, xml_plain, xml_esc, "&<>\"'");
}

void au_version_str(uint32_t hex, int exact, char *buf, size_t cap) {
    unsigned major = hex >> 24, minor = hex >> 16 & 0xff, micro = hex >> 8 & 0xff;
    unsigned level = hex >> 4 & 0xf, serial = hex & 0xf;
    if (!exact) {
        snprintf(buf, cap, "%u.%u", major, minor);
        return;
    }
    const char *lv = level == 0xa ? "a" : level == 0xb ? "b" : level == 0xc ? "rc" : "";
    if (*lv) snprintf(buf, cap, "%u.%u.%u%s%u", major, minor, micro, lv, serial);
    else snprintf(buf, cap, "%u.%u.%u", major, minor, micro);
}

void au_out_frame(au_out *o, const au_sample_frame *f, int collapsed) {
    if (!f->qualname) {
        au_out_putf(o, "<unknown> (0x%llx)", (unsigned long long)f->code_addr);
        return;
    }
    au_out_clean(o, f->qualname, f->qualname_len, collapsed);
    au_out_puts(o, " (");
    au_out_clean(o, f->filename, f->filename_len, collapsed);
    if (f->line >= 0) {
        au_out_put(o, ":", 1);
        au_out_u64(o, (unsigned long long)f->line);
        au_out_put(o, ")", 1);
    } else {
        au_out_put(o, ":?)", 3);
    }
}

void au_out_task_name(au_out *o, const au_sample_task *t, int collapsed) {
    if (t->name_len) au_out_clean(o, t->name, t->name_len, collapsed);
    else au_out_putf(o, "<task 0x%llx>", (unsigned long long)t->id);
}

void au_out_thread_id(au_out *o, const au_sample_thread *t, int collapsed) {
    if (t->native_id) au_out_u64(o, (unsigned long long)t->native_id);
    else au_out_putf(o, "0x%llx", (unsigned long long)t->thread_id);
    if (t->name) {
        au_out_puts(o, collapsed ? " (" : " \"");
        au_out_clean(o, t->name, t->name_len, collapsed);
        au_out_puts(o, collapsed ? ")" : "\"");
    }
}

void au_entry_buf_init(au_entry_buf *b, const au_sampler *s) {
    b->a = au_sampler_alloc(s);
    b->e = b->local;
    b->cap = sizeof b->local / sizeof b->local[0];
}

int au_entry_buf_fill(au_entry_buf *b, const au_sampler *s, uint32_t stack, uint32_t *n) {
    uint64_t need = au_sample_stack_entries(s, stack, NULL, 0);
    if (need > b->cap) {
        /* A stack longer than UINT32_MAX entries keeps its root side and
         * ends in a TRUNCATED entry (au_sample_stack_entries). */
        uint32_t want = need > UINT32_MAX ? UINT32_MAX : (uint32_t)need;
        int local = b->e == b->local;
        au_entry *ne = b->a.realloc(b->a.ud, local ? NULL : b->e,
                                    local ? 0 : (size_t)b->cap * sizeof *ne,
                                    (size_t)want * sizeof *ne);
        if (!ne) return AU_ERR_NOMEM;
        b->e = ne;
        b->cap = want;
    }
    uint64_t got = au_sample_stack_entries(s, stack, b->e, b->cap);
    *n = got < b->cap ? (uint32_t)got : b->cap;
    return AU_OK;
}

void au_entry_buf_free(au_entry_buf *b) {
    if (b->e != b->local) b->a.realloc(b->a.ud, b->e, (size_t)b->cap * sizeof *b->e, 0);
    b->e = b->local;
}
