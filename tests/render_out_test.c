/*
 * The render layer's output helpers (core/render/render_out.c).  Target
 * bytes are hostile: every JSON string must come out as valid JSON, with
 * well-formed UTF-8 kept as it is and each stray byte replaced by U+FFFD.
 * The cases follow RFC 3629's table of well-formed sequences.  Text for
 * line formats (au_out_clean) must keep lines whole and carry no control
 * byte to the terminal.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "au_render_out.h"

typedef struct sink {
    char buf[16384];
    size_t len;
    int fail_after; /* writes that succeed before one fails; -1: never */
} sink;

static int sink_write(void *ud, const void *buf, size_t len) {
    sink *s = ud;
    if (s->fail_after == 0) return -1;
    if (s->fail_after > 0) s->fail_after--;
    assert_true(s->len + len < sizeof s->buf);
    memcpy(s->buf + s->len, buf, len);
    s->len += len;
    s->buf[s->len] = 0;
    return 0;
}

/* in (n bytes) as a JSON string must be exactly want. */
static void check(const char *in, size_t n, const char *want) {
    sink s = {.len = 0, .fail_after = -1};
    au_out o;
    au_out_init(&o, sink_write, &s);
    au_out_json_string(&o, in, n);
    assert_int_equal(au_out_flush(&o), AU_OK);
    assert_string_equal(s.buf, want);
}

static void test_plain_and_escapes(void **state) {
    (void)state;
    check("", 0, "\"\"");
    check("Task-1", 6, "\"Task-1\"");
    check("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    check("l1\nl2\tx\r", 8, "\"l1\\nl2\\tx\\u000d\"");
    check("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\""); /* DEL is legal JSON */
    check("nul\0in", 6, "\"nul\\u0000in\"");
}

static void test_utf8_kept(void **state) {
    (void)state;
    check("m\xc3\xa9todo_\xc3\xb1", 10, "\"m\xc3\xa9todo_\xc3\xb1\"");     /* 2 bytes */
    check("\xe2\x82\xac", 3, "\"\xe2\x82\xac\"");                          /* U+20AC */
    check("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"");                  /* U+1F600 */
    check("\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\"");                  /* U+10FFFF */
    check("\xed\x9f\xbf", 3, "\"\xed\x9f\xbf\"");                          /* U+D7FF */
}

#define FFFD "\xef\xbf\xbd"

static void test_invalid_bytes_replaced(void **state) {
    (void)state;
    check("a\xff" "b", 3, "\"a" FFFD "b\"");
    check("\x80", 1, "\"" FFFD "\"");                       /* lone continuation */
    check("\xc0\xaf", 2, "\"" FFFD FFFD "\"");              /* overlong '/' */
    check("\xe0\x80\xaf", 3, "\"" FFFD FFFD FFFD "\"");     /* overlong, 3 bytes */
    check("\xed\xa0\x80", 3, "\"" FFFD FFFD FFFD "\"");     /* surrogate U+D800 */
    check("\xf4\x90\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\""); /* > U+10FFFF */
    check("\xe2\x82", 2, "\"" FFFD FFFD "\"");              /* cut at the end */
    check("\xe2\x82" "x", 3, "\"" FFFD FFFD "x\"");         /* cut mid-string */
    check("\xc3\"", 2, "\"" FFFD "\\\"\"");                  /* quote after a lead */
}

/* in (n bytes) through au_out_clean must be exactly want. */
static void check_clean(const char *in, size_t n, int semicolon, const char *want) {
    sink s = {.len = 0, .fail_after = -1};
    au_out o;
    au_out_init(&o, sink_write, &s);
    au_out_clean(&o, in, n, semicolon);
    assert_int_equal(au_out_flush(&o), AU_OK);
    assert_string_equal(s.buf, want);
}

/* Text and collapsed lines: no byte of a target's name may split a line
 * or a frame, or drive the terminal (an ESC sequence retitling it, BEL). */
static void test_clean_for_lines(void **state) {
    (void)state;
    check_clean("main.py", 7, 1, "main.py");
    check_clean("a;b", 3, 1, "a:b");
    check_clean("a;b", 3, 0, "a;b");
    check_clean("l1\nl2\r\tx", 8, 1, "l1 l2  x");
    check_clean("\x1b]0;pwned\x07", 10, 0, "\\x1b]0;pwned\\x07");
    check_clean("\x1b[2J", 4, 1, "\\x1b[2J");
    check_clean("nul\0del\x7f", 8, 1, "nul\\x00del\\x7f");
    check_clean("m\xc3\xa9", 3, 1, "m\xc3\xa9"); /* UTF-8 stays */
}

/* The byte-at-a-time rule, to check the eight-at-a-time walk against. */
static size_t clean_ref(const unsigned char *in, size_t n, int semicolon, char *out) {
    static const char hex[] = "0123456789abcdef";
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = in[i];
        if (c >= 0x20 && c != 0x7f && !(semicolon && c == ';')) out[w++] = (char)c;
        else if (c == '\n' || c == '\r' || c == '\t') out[w++] = ' ';
        else if (c == ';') out[w++] = ':';
        else {
            out[w++] = '\\';
            out[w++] = 'x';
            out[w++] = hex[c >> 4];
            out[w++] = hex[c & 15];
        }
    }
    out[w] = 0;
    return w;
}

/* Every byte value at every place of strings of 0 to 40 bytes (words
 * whole, split, and the tail after the last word), among plain bytes on
 * both sides of the ranges the word test looks for (0x1f/0x20, 0x7e-0x80,
 * ':'/';'/'<', 0xff). */
static void test_clean_word_walk(void **state) {
    (void)state;
    static const unsigned char fill[] = {'a', 0x20, 0x7e, 0x80, 0xff, ':', '<', 0xc3};
    unsigned char in[40];
    char want[40 * 4 + 1];
    for (size_t n = 0; n <= sizeof in; n++)
        for (size_t f = 0; f < sizeof fill; f++)
            for (size_t at = 0; at < (n ? n : 1); at++)
                for (unsigned v = 0; v < 256; v += (n > 17 ? 7 : 1)) {
                    memset(in, fill[f], n);
                    if (n) in[at] = (unsigned char)v;
                    for (int semicolon = 0; semicolon < 2; semicolon++) {
                        clean_ref(in, n, semicolon, want);
                        check_clean((const char *)in, n, semicolon, want);
                    }
                }
}

/* One byte c as au_out_json and au_out_xml must write it, alone. */
static size_t json_ref(unsigned char c, char *out) {
    static const char hex[] = "0123456789abcdef";
    if (c >= 0x80) return (size_t)sprintf(out, "\xef\xbf\xbd"); /* alone: never UTF-8 */
    if (c == '"' || c == '\\') return (size_t)sprintf(out, "\\%c", c);
    if (c == '\n') return (size_t)sprintf(out, "\\n");
    if (c == '\t') return (size_t)sprintf(out, "\\t");
    if (c < 0x20) return (size_t)sprintf(out, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
    out[0] = (char)c;
    out[1] = 0;
    return 1;
}

static size_t xml_ref(unsigned char c, char *out) {
    static const char *const ent[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#9;", "&#127;"};
    static const char chars[] = "&<>\"'\t\x7f";
    if (c >= 0x80) return (size_t)sprintf(out, "\xef\xbf\xbd");
    for (int k = 0; k < 7; k++)
        if (c == (unsigned char)chars[k]) return (size_t)sprintf(out, "%s", ent[k]);
    if (c < 0x20) return (size_t)sprintf(out, "?");
    out[0] = (char)c;
    out[1] = 0;
    return 1;
}

/* The JSON and XML escapers pass plain words over eight bytes at a time:
 * every byte value at every place of strings of 0 to 40 printable bytes
 * (the escapers' own specials among them as fill too) must come out as
 * the byte-at-a-time rules say. */
static void test_escape_word_walk(void **state) {
    (void)state;
    static const unsigned char fill[] = {'a', ' ', '~', '&', '"', '\\'};
    unsigned char in[40];
    static char want[40 * 8 + 1];
    for (int xml = 0; xml < 2; xml++)
        for (size_t n = 1; n <= sizeof in; n++)
            for (size_t f = 0; f < sizeof fill; f++)
                for (size_t at = 0; at < n; at++)
                    for (unsigned v = 0; v < 256; v += (n > 17 ? 5 : 1)) {
                        memset(in, fill[f], n);
                        in[at] = (unsigned char)v;
                        size_t w = 0;
                        for (size_t i = 0; i < n; i++)
                            w += xml ? xml_ref(in[i], want + w) : json_ref(in[i], want + w);
                        want[w] = 0;
                        sink s = {.len = 0, .fail_after = -1};
                        au_out o;
                        au_out_init(&o, sink_write, &s);
                        if (xml) au_out_xml(&o, (const char *)in, n);
                        else au_out_json(&o, (const char *)in, n);
                        assert_int_equal(au_out_flush(&o), AU_OK);
                        assert_string_equal(s.buf, want);
                    }
}

/* Longer than the buffer: flushed in chunks, nothing lost or doubled. */
static void test_long_string_chunks(void **state) {
    (void)state;
    static char in[600], want[1024];
    for (size_t i = 0; i < sizeof in; i++) in[i] = i % 3 == 0 ? '"' : 'x';
    size_t w = 0;
    want[w++] = '"';
    for (size_t i = 0; i < sizeof in; i++) {
        if (in[i] == '"') want[w++] = '\\';
        want[w++] = in[i];
    }
    want[w++] = '"';
    want[w] = 0;
    check(in, sizeof in, want);
}

static void test_write_failure_reported(void **state) {
    (void)state;
    sink s = {.len = 0, .fail_after = 1};
    au_out o;
    au_out_init(&o, sink_write, &s);
    char big[5000];
    memset(big, 'y', sizeof big);
    au_out_put(&o, big, sizeof big); /* one full buffer written */
    assert_int_equal(o.rc, AU_OK);
    au_out_put(&o, big, sizeof big); /* the next write fails */
    assert_int_equal(au_out_flush(&o), AU_ERR_IO);
    assert_int_equal(s.len, sizeof o.buf);
}

static void test_version_str(void **state) {
    (void)state;
    char v[32];
    au_version_str(0x030c01f0u, 1, v, sizeof v);
    assert_string_equal(v, "3.12.1");
    au_version_str(0x030e00c2u, 1, v, sizeof v);
    assert_string_equal(v, "3.14.0rc2");
    au_version_str(0x030900f0u, 0, v, sizeof v);
    assert_string_equal(v, "3.9");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_escapes),
        cmocka_unit_test(test_utf8_kept),
        cmocka_unit_test(test_invalid_bytes_replaced),
        cmocka_unit_test(test_clean_for_lines),
        cmocka_unit_test(test_clean_word_walk),
        cmocka_unit_test(test_escape_word_walk),
        cmocka_unit_test(test_long_string_chunks),
        cmocka_unit_test(test_write_failure_reported),
        cmocka_unit_test(test_version_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
