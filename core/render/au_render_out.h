/* The render layer's output buffer, shared by every format (render.c,
 * tree.c, json.c, and the profile writers profile_write.c and
 * flamegraph_svg.c): bytes are gathered in a small buffer and handed to the
 * caller's write() in chunks, and the first failing write() is remembered
 * so that a renderer can write on and check once at the end.
 * Internal; the API is in asyncunwind.h. */
#ifndef ASYNCUNWIND_RENDER_OUT_H
#define ASYNCUNWIND_RENDER_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "asyncunwind.h"

typedef struct au_out {
    int (*write)(void *ud, const void *buf, size_t len);
    void *ud;
    int rc;     /* AU_OK, or AU_ERR_IO once a write() failed */
    size_t len; /* bytes waiting in buf */
    char buf[4096];
} au_out;

void au_out_init(au_out *o, int (*write)(void *ud, const void *buf, size_t len), void *ud);
/* Hand what is buffered to write(); returns o->rc. */
int au_out_flush(au_out *o);
/* Put n bytes at s: inline while they fit the buffer (a JSON sample is
 * mostly short keys and punctuation), else through the flushing path. */
void au_out_put_slow(au_out *o, const char *s, size_t n);
static inline void au_out_put(au_out *o, const char *s, size_t n) {
    if (n > sizeof o->buf - o->len) {
        au_out_put_slow(o, s, n);
    } else if (n) {
        memcpy(o->buf + o->len, s, n);
        o->len += n;
    }
}
static inline void au_out_puts(au_out *o, const char *s) { au_out_put(o, s, strlen(s)); }
/* v in decimal (what putf's "%llu" writes, without the format's cost:
 * every frame of every stack has a line number). */
void au_out_u64(au_out *o, unsigned long long v);
/* v in lowercase hexadecimal, without a prefix (what "%llx" writes). */
void au_out_hex(au_out *o, unsigned long long v);
/* fmt takes exactly one unsigned long long. */
void au_out_putf(au_out *o, const char *fmt, unsigned long long v);

/* Target text for a line-oriented format: a line break or tab would split
 * a line or a field and, when `semicolon` is set, a ';' a collapsed frame,
 * so they become a space and a ':'; other control bytes (ESC, BEL, DEL...)
 * would drive the terminal the output is printed on, and become \xNN.
 * Other bytes go out as they are. */
void au_out_clean(au_out *o, const char *s, size_t n, int semicolon);

/* Target bytes are hostile: the escapers below keep well-formed UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF) and
 * turn every other byte into U+FFFD, so the output stays valid whatever
 * the input. */
/* s inside a JSON string: quotes, backslashes and control characters
 * escaped. */
void au_out_json(au_out *o, const char *s, size_t n);
/* The same, quotes included. */
void au_out_json_string(au_out *o, const char *s, size_t n);
/* XML text or an attribute value: &, <, >, " and ' as entities, the
 * control characters XML 1.0 cannot carry as '?'. */
void au_out_xml(au_out *o, const char *s, size_t n);
/* The length of the well-formed UTF-8 sequence at s[0..n) (n > 0), or 0
 * when it is not one. */
size_t au_utf8_len(const unsigned char *s, size_t n);

/* The version PY_VERSION_HEX `hex` names ("3.12.1", "3.14.0rc2"), or only
 * "3.12" when the patch level is not known. */
void au_version_str(uint32_t hex, int exact, char *buf, size_t cap);

/* How the text formats write a sample's names (`collapsed` as for
 * au_out_clean): a frame as "qualname (file:line)", a task by its name (or
 * its address when it has none), a thread by its id and name. */
void au_out_frame(au_out *o, const au_sample_frame *f, int collapsed);
void au_out_task_name(au_out *o, const au_sample_task *t, int collapsed);
void au_out_thread_id(au_out *o, const au_sample_thread *t, int collapsed);

/* The entries of one stack at a time, in a buffer that starts on the C
 * stack and grows (through the sampler's allocator) to the longest. */
typedef struct au_entry_buf {
    au_allocator a;
    au_entry *e;
    uint32_t cap;
    au_entry local[256];
} au_entry_buf;

void au_entry_buf_init(au_entry_buf *b, const au_sampler *s);
/* Stack `stack` of s's last sample into b->e, *n entries; AU_ERR_NOMEM. */
int au_entry_buf_fill(au_entry_buf *b, const au_sampler *s, uint32_t stack, uint32_t *n);
void au_entry_buf_free(au_entry_buf *b);

/* The formats other than text and collapsed (render.c dispatches). */
int au_render_tree(au_sampler *s, const au_sample *smp,
                   int (*write)(void *ud, const void *buf, size_t len), void *ud);
int au_render_json(au_sampler *s, const au_sample *smp,
                   int (*write)(void *ud, const void *buf, size_t len), void *ud);

#endif
