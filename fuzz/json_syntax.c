/*
 * A strict JSON syntax check (json_syntax.h), recursive descent over the
 * grammar of RFC 8259.  Only the syntax: what the values mean is checked
 * by the tests, with Python's json module and the schema.
 */
#include "fuzz/json_syntax.h"

#include <string.h>

#define MAX_DEPTH 64

typedef struct cursor {
    const unsigned char *s;
    size_t n, i;
    int bad;
} cursor;

static int at(const cursor *c, unsigned char ch) { return c->i < c->n && c->s[c->i] == ch; }

static void ws(cursor *c) {
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' ||
                           c->s[c->i] == '\r'))
        c->i++;
}

static int hex(unsigned char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* One well-formed UTF-8 sequence of 2-4 bytes at c->i (RFC 3629 table). */
static int utf8(cursor *c) {
    const unsigned char *p = c->s + c->i;
    size_t left = c->n - c->i, len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) len = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        if (p[0] == 0xe0) lo = 0xa0;
        if (p[0] == 0xed) hi = 0x9f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        if (p[0] == 0xf0) lo = 0x90;
        if (p[0] == 0xf4) hi = 0x8f;
    } else return 0;
    if (left < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
        if (p[k] < 0x80 || p[k] > 0xbf) return 0;
    c->i += len;
    return 1;
}

static int string(cursor *c) {
    c->i++; /* the opening quote */
    while (c->i < c->n) {
        unsigned char ch = c->s[c->i];
        if (ch == '"') {
            c->i++;
            return 1;
        }
        if (ch < 0x20) return 0;
        if (ch == '\\') {
            if (++c->i >= c->n) return 0;
            ch = c->s[c->i];
            if (ch == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (c->i + k >= c->n || !hex(c->s[c->i + k])) return 0;
                c->i += 5;
            } else if (strchr("\"\\/bfnrt", ch) && ch) {
                c->i++;
            } else {
                return 0;
            }
        } else if (ch < 0x80) {
            c->i++;
        } else if (!utf8(c)) {
            return 0;
        }
    }
    return 0;
}

static int digits(cursor *c) {
    size_t from = c->i;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
    return c->i > from;
}

static int number(cursor *c) {
    if (at(c, '-')) c->i++;
    if (at(c, '0')) c->i++;
    else if (!digits(c)) return 0;
    if (at(c, '.')) {
        c->i++;
        if (!digits(c)) return 0;
    }
    if (at(c, 'e') || at(c, 'E')) {
        c->i++;
        if (at(c, '+') || at(c, '-')) c->i++;
        if (!digits(c)) return 0;
    }
    return 1;
}

static int word(cursor *c, const char *w) {
    size_t len = strlen(w);
    if (c->n - c->i < len || memcmp(c->s + c->i, w, len)) return 0;
    c->i += len;
    return 1;
}

static int value(cursor *c, int depth) {
    ws(c);
    if (c->i >= c->n || depth > MAX_DEPTH) return 0;
    unsigned char ch = c->s[c->i];
    if (ch == '"') return string(c);
    if (ch == 't') return word(c, "true");
    if (ch == 'f') return word(c, "false");
    if (ch == 'n') return word(c, "null");
    if (ch == '-' || (ch >= '0' && ch <= '9')) return number(c);
    if (ch != '[' && ch != '{') return 0;
    unsigned char close = ch == '[' ? ']' : '}';
    c->i++;
    ws(c);
    if (at(c, close)) {
        c->i++;
        return 1;
    }
    for (;;) {
        if (close == '}') {
            ws(c);
            if (!at(c, '"') || !string(c)) return 0;
            ws(c);
            if (!at(c, ':')) return 0;
            c->i++;
        }
        if (!value(c, depth + 1)) return 0;
        ws(c);
        if (at(c, ',')) {
            c->i++;
            continue;
        }
        if (!at(c, close)) return 0;
        c->i++;
        return 1;
    }
}

size_t json_syntax_error(const char *s, size_t n) {
    cursor c = {(const unsigned char *)s, n, 0, 0};
    if (value(&c, 0)) {
        ws(&c);
        if (c.i == n) return 0;
    }
    return c.i + 1;
}
