/* The writers' output buffer and escaping (outbuf.h). */
#include <stdio.h>
#include <string.h>

#include "asyncunwind.h"
#include "outbuf.h"

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

void au_out_put(au_out *o, const char *s, size_t n) {
    while (n) {
        if (o->len == sizeof o->buf) au_out_flush(o);
        size_t k = sizeof o->buf - o->len < n ? sizeof o->buf - o->len : n;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

void au_out_str(au_out *o, const char *s) { au_out_put(o, s, strlen(s)); }

void au_out_num(au_out *o, const char *fmt, unsigned long long v) {
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    if (n > 0) au_out_put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Runs of bytes that need no escaping go out whole: a stack is mostly file
 * names. */
void au_out_clean(au_out *o, const char *s, size_t n, int collapsed) {
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\n' && c != '\r' && !(collapsed && c == ';')) continue;
        au_out_put(o, s + from, i - from);
        au_out_put(o, c == ';' ? ":" : " ", 1);
        from = i + 1;
    }
    au_out_put(o, s + from, n - from);
}

size_t au_utf8_len(const unsigned char *s, size_t n) {
    if (!n) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

static const char REPLACEMENT[] = "\xef\xbf\xbd"; /* U+FFFD */

/* Shared walk of the JSON and XML escapers: bytes that pass `plain` go out
 * in runs; valid multi-byte UTF-8 as is; everything else through esc(). */
typedef void (*escape_fn)(au_out *o, unsigned char c);

static void escape_utf8(au_out *o, const char *s, size_t n, int (*plain)(unsigned char),
                        escape_fn esc) {
    const unsigned char *u = (const unsigned char *)s;
    size_t from = 0, i = 0;
    while (i < n) {
        if (u[i] < 0x80 && plain(u[i])) {
            i++;
            continue;
        }
        size_t k = u[i] < 0x80 ? 1 : au_utf8_len(u + i, n - i);
        if (k > 1) {
            i += k;
            continue;
        }
        au_out_put(o, s + from, i - from);
        if (k == 1) esc(o, u[i]);
        else au_out_put(o, REPLACEMENT, 3);
        from = ++i;
    }
    au_out_put(o, s + from, n - from);
}

static int json_plain(unsigned char c) { return c >= 0x20 && c != '"' && c != '\\' && c != 0x7f; }

static void json_esc(au_out *o, unsigned char c) {
    switch (c) {
    case '"': au_out_put(o, "\\\"", 2); break;
    case '\\': au_out_put(o, "\\\\", 2); break;
    case '\n': au_out_put(o, "\\n", 2); break;
    case '\t': au_out_put(o, "\\t", 2); break;
    case '\r': au_out_put(o, "\\r", 2); break;
    default: au_out_num(o, "\\u%04llx", c); break;
    }
}

void au_out_json(au_out *o, const char *s, size_t n) { escape_utf8(o, s, n, json_plain, json_esc); }

static int xml_plain(unsigned char c) {
    return c >= 0x20 && c != '&' && c != '<' && c != '>' && c != '"' && c != '\'' && c != 0x7f;
}

static void xml_esc(au_out *o, unsigned char c) {
    switch (c) {
    case '&': au_out_str(o, "&amp;"); break;
    case '<': au_out_str(o, "&lt;"); break;
    case '>': au_out_str(o, "&gt;"); break;
    case '"': au_out_str(o, "&quot;"); break;
    case '\'': au_out_str(o, "&#39;"); break;
    case '\t': au_out_str(o, "&#9;"); break;
    case 0x7f: au_out_str(o, "&#127;"); break;
    default: au_out_put(o, "?", 1); break; /* not representable in XML 1.0 */
    }
}

void au_out_xml(au_out *o, const char *s, size_t n) { escape_utf8(o, s, n, xml_plain, xml_esc); }
