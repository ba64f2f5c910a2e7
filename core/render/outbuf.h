/* Output for the writers of render/: a small buffer in front of the
 * caller's write(), and the escaping each format needs for text that comes
 * from the target (names are hostile: any byte may appear).
 * Internal; shared by render.c and the profile writers. */
#ifndef ASYNCUNWIND_OUTBUF_H
#define ASYNCUNWIND_OUTBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct au_out {
    int (*write)(void *ud, const void *buf, size_t len);
    void *ud;
    int rc;     /* AU_OK, or AU_ERR_IO once a write() failed (later output
                   is dropped) */
    size_t len;
    char buf[4096];
} au_out;

void au_out_init(au_out *o, int (*write)(void *ud, const void *buf, size_t len), void *ud);
/* Hands what is buffered to write(); returns o->rc. */
int au_out_flush(au_out *o);
void au_out_put(au_out *o, const char *s, size_t n);
void au_out_str(au_out *o, const char *s);
/* One unsigned number through printf's `fmt` ("%llu", "0x%llx"). */
void au_out_num(au_out *o, const char *fmt, unsigned long long v);

/* Target text, escaped for: */
/* a line of dump's text or collapsed form: line breaks become spaces, and
 * with `collapsed` a ';' (which would split a frame) becomes ':'. */
void au_out_clean(au_out *o, const char *s, size_t n, int collapsed);
/* a JSON string's inside: quotes, backslashes and control characters
 * escaped, invalid UTF-8 replaced by U+FFFD so the file stays valid. */
void au_out_json(au_out *o, const char *s, size_t n);
/* XML text or an attribute value: &, <, >, " and ' as entities, the
 * control characters XML 1.0 cannot carry as '?', invalid UTF-8 as U+FFFD. */
void au_out_xml(au_out *o, const char *s, size_t n);

/* The length of the valid UTF-8 sequence at s[0..n), or 0 if it is not
 * one (overlong, surrogate, past U+10FFFF or cut short). */
size_t au_utf8_len(const unsigned char *s, size_t n);

#endif
