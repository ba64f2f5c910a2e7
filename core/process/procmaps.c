/* /proc/PID/maps: reading and parsing.  See au_procmaps.h. */
#define _POSIX_C_SOURCE 200809L /* open, read, stat under -std=c11 */

#include "au_procmaps.h"

#include "au_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* A line_cursor over one line: [p, end).  Parsing functions advance p on
 * success and leave it anywhere on failure (the line is then dropped). */
typedef struct line_cursor {
    const char *p, *end;
} line_cursor;

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One or more hex digits.  A value that needs more than 64 bits is an
 * error rather than silently wrapping: the line is not a kernel's. */
static int parse_hex(line_cursor *c, uint64_t *out) {
    uint64_t v = 0;
    const char *start = c->p;
    while (c->p < c->end) {
        int d = hex_digit(*c->p);
        if (d < 0) break;
        if (v > (UINT64_MAX >> 4)) return 0;
        v = (v << 4) | (uint64_t)d;
        c->p++;
    }
    *out = v;
    return c->p != start;
}

static int parse_dec(line_cursor *c, uint64_t *out) {
    uint64_t v = 0;
    const char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        uint64_t d = (uint64_t)(*c->p - '0');
        if (v > (UINT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
        c->p++;
    }
    *out = v;
    return c->p != start;
}

static int expect(line_cursor *c, char ch) {
    if (c->p >= c->end || *c->p != ch) return 0;
    c->p++;
    return 1;
}

/* One or more spaces.  The kernel uses exactly one between fields, but
 * tolerating several costs nothing and keeps hand-written inputs valid. */
static int skip_spaces(line_cursor *c) {
    const char *start = c->p;
    while (c->p < c->end && *c->p == ' ') c->p++;
    return c->p != start;
}

static int parse_perms(line_cursor *c, uint32_t *perms) {
    /* Exactly four characters: [r-][w-][x-][ps]. */
    if (c->end - c->p < 4) return 0;
    const char *s = c->p;
    uint32_t v = 0;
    if (s[0] == 'r') v |= AU_MAP_R; else if (s[0] != '-') return 0;
    if (s[1] == 'w') v |= AU_MAP_W; else if (s[1] != '-') return 0;
    if (s[2] == 'x') v |= AU_MAP_X; else if (s[2] != '-') return 0;
    if (s[3] == 'p') v |= AU_MAP_P; else if (s[3] != 's') return 0;
    c->p += 4;
    *perms = v;
    return 1;
}

/* Parse the line [line, end) (without its '\n') into *m.  base is the
 * start of the whole text, for path_off. */
static int parse_line(const char *base, const char *line, const char *end,
                      au_map *m) {
    /* The kernel never emits NUL; a NUL would silently cut a path that a
     * caller later turns into a C string. */
    if (memchr(line, '\0', (size_t)(end - line)) != NULL) return 0;

    line_cursor c = {line, end};
    uint64_t major, minor;
    memset(m, 0, sizeof *m);
    if (!parse_hex(&c, &m->start) || !expect(&c, '-') ||
        !parse_hex(&c, &m->end) || !skip_spaces(&c) ||
        !parse_perms(&c, &m->perms) || !skip_spaces(&c) ||
        !parse_hex(&c, &m->offset) || !skip_spaces(&c) ||
        !parse_hex(&c, &major) || !expect(&c, ':') ||
        !parse_hex(&c, &minor) || !skip_spaces(&c) ||
        !parse_dec(&c, &m->inode)) {
        return 0;
    }
    /* The kernel's dev_t has a 12-bit major and 20-bit minor; anything
     * wider cannot be a kernel's, and would not fit the fields. */
    if (major > 0xfffu || minor > 0xfffffu) return 0;
    m->dev_major = (uint32_t)major;
    m->dev_minor = (uint32_t)minor;
    /* Empty and inverted ranges do not exist in the kernel's view; later
     * layers divide address space by these, so reject them here. */
    if (m->start >= m->end) return 0;

    /* The inode ends the fixed fields: either the line ends, or spaces
     * (padding to a column) and then the path, which runs to the end of
     * the line and may itself contain spaces. */
    if (c.p == c.end) return 1;
    if (!skip_spaces(&c)) return 0;
    const char *path = c.p;
    size_t plen = (size_t)(c.end - c.p);
    if (plen == 0) return 1; /* trailing spaces only: anonymous */

    static const char deleted[] = " (deleted)";
    const size_t dlen = sizeof deleted - 1;
    if (plen > dlen && memcmp(path + plen - dlen, deleted, dlen) == 0) {
        plen -= dlen;
        m->flags |= AU_MAPF_DELETED;
    }
    if (path[0] != '/') m->flags |= AU_MAPF_PSEUDO;
    /* Both fit: the caller's len is at most UINT32_MAX (checked). */
    m->path_off = (uint32_t)(path - base);
    m->path_len = (uint32_t)plen;
    return 1;
}

int au_maps_parse(const char *text, size_t len, au_map *maps, uint32_t cap,
                  uint32_t *nmaps, uint32_t *bad_lines) {
    if (nmaps == NULL || (text == NULL && len > 0) ||
        (maps == NULL && cap > 0)) {
        return AU_ERR_ARG;
    }
    *nmaps = 0;
    if (bad_lines) *bad_lines = 0;
    if (len > UINT32_MAX) return AU_ERR_LIMIT;
    if (len == 0) return AU_OK;

    uint32_t n = 0, bad = 0;
    const char *p = text, *end = text + len;
    /* Each iteration consumes at least one byte (a line or its '\n'), so
     * the loop runs at most len times. */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        if (line_end != p) {
            au_map m;
            if (!parse_line(text, p, line_end, &m)) {
                if (bad < UINT32_MAX) bad++;
            } else if (n == cap) {
                *nmaps = n;
                if (bad_lines) *bad_lines = bad;
                return AU_ERR_LIMIT;
            } else {
                maps[n++] = m;
            }
        }
        p = nl ? nl + 1 : end;
    }
    *nmaps = n;
    if (bad_lines) *bad_lines = bad;
    return AU_OK;
}

const char *au_map_basename(const char *text, const au_map *m, uint32_t *len) {
    const char *path = text + m->path_off;
    uint32_t i = m->path_len;
    /* Bounded by path_len: walk back to the last '/'. */
    while (i > 0 && path[i - 1] != '/') i--;
    *len = m->path_len - i;
    return path + i;
}

uint32_t au_maps_find(const char *text, const au_map *maps, uint32_t nmaps,
                      uint32_t from, au_map_pred_fn pred, void *ud) {
    if (maps == NULL || pred == NULL) return UINT32_MAX;
    for (uint32_t i = from; i < nmaps; i++) {
        if (pred(ud, text, &maps[i])) return i;
    }
    return UINT32_MAX;
}

int au_map_pred_basename_prefix(void *ud, const char *text, const au_map *m) {
    const char *prefix = ud;
    if (prefix == NULL || m->path_len == 0 || (m->flags & AU_MAPF_PSEUDO)) {
        return 0;
    }
    uint32_t blen;
    const char *base = au_map_basename(text, m, &blen);
    size_t plen = strlen(prefix);
    return plen <= blen && memcmp(base, prefix, plen) == 0;
}

au_map_file_id au_map_file_id_of(const au_map *m) {
    au_map_file_id id = {m->dev_major, m->dev_minor, m->inode};
    return id;
}

int au_map_pred_file_id(void *ud, const char *text, const au_map *m) {
    const au_map_file_id *id = ud;
    (void)text;
    /* inode 0 is what anonymous and pseudo maps carry; never a file. */
    return id != NULL && m->inode != 0 && m->inode == id->inode &&
           m->dev_major == id->dev_major && m->dev_minor == id->dev_minor;
}


/* Consecutive EINTRs tolerated before giving up: a signal storm must not
 * turn a read into an endless loop. */
#define MAX_EINTR 1000

int au_maps_read(int pid, char *buf, size_t cap, size_t *len) {
    if (pid <= 0 || len == NULL || (buf == NULL && cap > 0)) return AU_ERR_ARG;
    *len = 0;
    char path[48];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return au_status_from_errno(errno, AU_ERR_IO);

    int status = AU_OK;
    size_t got = 0;
    unsigned eintr = 0;
    /* Each pass either adds at least one byte (bounded by cap), stops, or
     * counts an EINTR (bounded by MAX_EINTR). */
    for (;;) {
        char probe;
        /* Once buf is full, read one more byte to tell "exactly cap" from
         * "more than cap". */
        char *dst = got < cap ? buf + got : &probe;
        size_t want = got < cap ? cap - got : 1;
        ssize_t r = read(fd, dst, want);
        if (r < 0) {
            if (errno == EINTR && ++eintr < MAX_EINTR) continue;
            status = au_status_from_errno(errno, AU_ERR_IO);
            break;
        }
        eintr = 0;
        if (r == 0) break;
        if (got >= cap) {
            status = AU_ERR_LIMIT;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return status;
}

uint32_t au_proc_thread_name(int pid, uint64_t tid, char *out, uint32_t cap) {
    if (pid <= 0 || tid == 0 || tid > INT32_MAX || !out || cap == 0) return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%llu/comm", pid, (unsigned long long)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, out, cap);
    close(fd);
    if (n <= 0) return 0;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == 0)) n--;
    return (uint32_t)n;
}

int au_proc_exe_id(int pid, au_map_file_id *id) {
    if (pid <= 0 || id == NULL) return AU_ERR_ARG;
    char path[48];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    struct stat st;
    if (stat(path, &st) != 0) return au_status_from_errno(errno, AU_ERR_IO);
    id->dev_major = (uint32_t)major(st.st_dev);
    id->dev_minor = (uint32_t)minor(st.st_dev);
    id->inode = (uint64_t)st.st_ino;
    return AU_OK;
}
