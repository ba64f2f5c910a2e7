/*
 * Threads, their states and children from /proc; the pthread -> TID map
 * for interpreters that keep no TID (see au_proctask.h).
 *
 * Directories are listed with getdents64 into a stack buffer rather than
 * opendir, which allocates behind the caller's allocator.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "asyncunwind.h"
#include "au_internal.h"
#include "au_proctask.h"

/* Consecutive EINTRs tolerated before giving up, as in procmaps.c. */
#define MAX_EINTR 1000
/* Directory entries examined per listing, whatever the directory holds. */
#define MAX_DIRENTS (1u << 16)

/* A decimal number made of the whole of s, in (0, INT32_MAX], or 0. */
static uint64_t parse_id(const char *s, size_t len) {
    uint64_t v = 0;
    if (len == 0 || len > 10) return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v <= INT32_MAX ? v : 0;
}

int au_proc_tasks(int pid, uint64_t *tids, uint32_t cap, uint32_t *n) {
    if (pid <= 0 || !n || (!tids && cap)) return AU_ERR_ARG;
    *n = 0;
    char path[48];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return au_status_from_errno(errno, AU_ERR_IO);
    int status = AU_OK;
    uint32_t seen = 0, eintr = 0;
    /* Aligned for the kernel's struct linux_dirent64 records. */
    _Alignas(8) char buf[4096];
    while (seen < MAX_DIRENTS && status == AU_OK) {
        ssize_t got = getdents64(fd, buf, sizeof buf);
        if (got < 0) {
            if (errno == EINTR && ++eintr < MAX_EINTR) continue;
            status = au_status_from_errno(errno, AU_ERR_IO);
            break;
        }
        if (got == 0) break;
        eintr = 0;
        for (ssize_t at = 0; at < got && seen < MAX_DIRENTS; seen++) {
            struct dirent64 *d = (struct dirent64 *)(buf + at);
            /* A record that would not advance, or runs past what was read,
             * ends the listing rather than looping or overreading. */
            if (d->d_reclen == 0 || at + d->d_reclen > got) {
                at = got;
                break;
            }
            at += d->d_reclen;
            size_t len = strnlen(d->d_name, d->d_reclen - offsetof(struct dirent64, d_name));
            uint64_t tid = parse_id(d->d_name, len);
            if (!tid) continue;
            if (*n == cap) {
                status = AU_ERR_LIMIT;
                break;
            }
            tids[(*n)++] = tid;
        }
    }
    close(fd);
    return status;
}

/* Read a small /proc file whole into buf (NUL-terminated); its length. */
static int read_small(const char *path, char *buf, size_t cap, size_t *len) {
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return au_status_from_errno(errno, AU_ERR_IO);
    int status = AU_OK;
    uint32_t eintr = 0;
    while (*len + 1 < cap) {
        ssize_t r = read(fd, buf + *len, cap - 1 - *len);
        if (r < 0) {
            if (errno == EINTR && ++eintr < MAX_EINTR) continue;
            status = au_status_from_errno(errno, AU_ERR_IO);
            break;
        }
        if (r == 0) break;
        *len += (size_t)r;
    }
    close(fd);
    buf[*len] = 0;
    return status;
}

/* The state (and field 28) of stat text. */
static int parse_stat(const char *text, size_t len, char *state, uint64_t *startstack) {
    const char *close_paren = NULL;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ')') close_paren = text + i;
    /* ") S ...": the state is the character after the space. */
    if (!close_paren || close_paren + 2 >= text + len || close_paren[1] != ' ' ||
        close_paren[2] < 'A' || close_paren[2] > 'z')
        return AU_ERR_FORMAT;
    *state = close_paren[2];
    if (!startstack) return AU_OK;
    /* Field 28 is the 26th after the name; fields are decimal numbers
     * (some signed) separated by single spaces. */
    const char *p = close_paren + 2, *end = text + len;
    for (int field = 3; field < 28 && p < end; p++)
        if (*p == ' ') field++;
    uint64_t v = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 20) {
        v = v * 10 + (uint64_t)(*p++ - '0');
        digits++;
    }
    if (!digits) return AU_ERR_FORMAT;
    *startstack = v;
    return AU_OK;
}

static void stat_path(char *path, size_t cap, int pid, uint64_t tid) {
    snprintf(path, cap, "/proc/%d/task/%llu/stat", pid, (unsigned long long)tid);
}

int au_proc_stat(int pid, uint64_t tid, char *state, uint64_t *startstack) {
    if (pid <= 0 || tid == 0 || tid > INT32_MAX || !state) return AU_ERR_ARG;
    char path[64], text[1024];
    size_t len;
    stat_path(path, sizeof path, pid, tid);
    int rc = read_small(path, text, sizeof text, &len);
    return rc ? rc : parse_stat(text, len, state, startstack);
}

/* pread of a whole small file at offset 0: the kernel generates a /proc
 * stat file anew for each read from its start. */
static int pread_small(int fd, char *buf, size_t cap, size_t *len) {
    *len = 0;
    uint32_t eintr = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, cap - 1, 0);
        if (r >= 0) {
            *len = (size_t)r;
            buf[r] = 0;
            return AU_OK;
        }
        if (errno != EINTR || ++eintr >= MAX_EINTR) return au_status_from_errno(errno, AU_ERR_IO);
    }
}

int au_stat_cache_state(au_stat_cache *c, int pid, uint64_t tid, char *state) {
    if (!c || pid <= 0 || tid == 0 || tid > INT32_MAX || !state) return AU_ERR_ARG;
    char text[1024];
    size_t len;
    c->clock++;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->e[i].tid != tid) continue;
        if (pread_small(c->e[i].fd, text, sizeof text, &len) == AU_OK) {
            c->e[i].used = c->clock;
            return parse_stat(text, len, state, NULL);
        }
        /* The thread ended (the file now fails, ESRCH), even if a new
         * thread took its TID: open again below. */
        close(c->e[i].fd);
        c->e[i] = c->e[--c->n];
        break;
    }
    char path[64];
    stat_path(path, sizeof path, pid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return au_status_from_errno(errno, AU_ERR_IO);
    int rc = pread_small(fd, text, sizeof text, &len);
    if (rc) {
        close(fd);
        return rc;
    }
    /* Keep the descriptor, in place of the least recently used one when
     * the cache is full. */
    uint32_t slot = c->n;
    if (slot == AU_STAT_FDS) {
        slot = 0;
        for (uint32_t i = 1; i < c->n; i++)
            if (c->clock - c->e[i].used > c->clock - c->e[slot].used) slot = i;
        close(c->e[slot].fd);
    } else {
        c->n++;
    }
    c->e[slot] = (au_stat_fd){tid, fd, c->clock};
    return parse_stat(text, len, state, NULL);
}

void au_stat_cache_close(au_stat_cache *c) {
    if (!c) return;
    for (uint32_t i = 0; i < c->n; i++) close(c->e[i].fd);
    c->n = 0;
}

int au_proc_thread_state(int pid, uint64_t tid, char *state) {
    return au_proc_stat(pid, tid, state, NULL);
}

int au_proc_children(int pid, int *out, uint32_t cap, uint32_t *n) {
    if (pid <= 0 || !n || (!out && cap)) return AU_ERR_ARG;
    uint64_t tids[256];
    uint32_t ntids;
    int rc = au_proc_tasks(pid, tids, 256, &ntids);
    if (rc && rc != AU_ERR_LIMIT) return rc;
    int status = rc;
    uint32_t read_any = 0;
    for (uint32_t t = 0; t < ntids; t++) {
        char path[72], text[4096];
        size_t len;
        snprintf(path, sizeof path, "/proc/%d/task/%llu/children", pid, (unsigned long long)tids[t]);
        rc = read_small(path, text, sizeof text, &len);
        if (rc == AU_ERR_NOPROC) {
            /* The thread ended since the listing: nothing of it to read.
             * But a kernel without children files fails the same way for
             * every thread, which tells the two apart below. */
            continue;
        }
        if (rc) return rc;
        read_any = 1;
        /* A list cut at the buffer's end loses its last, partial, pid. */
        if (len == sizeof text - 1) {
            while (len && text[len - 1] != ' ') len--;
            status = AU_ERR_LIMIT;
        }
        for (size_t i = 0; i < len;) {
            size_t j = i;
            while (j < len && text[j] >= '0' && text[j] <= '9') j++;
            uint64_t child = parse_id(text + i, j - i);
            if (child) {
                if (*n == cap) return AU_ERR_LIMIT;
                out[(*n)++] = (int)child;
            }
            i = j + 1;
        }
    }
    if (!read_any && ntids) {
        /* Every thread's file was missing: either no children files in
         * this kernel, or the process is gone. */
        char path[48];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        return access(path, F_OK) == 0 ? AU_ERR_UNSUPPORTED : AU_ERR_NOPROC;
    }
    return status;
}

/* ---- pthread -> TID ------------------------------------------------------ */

/* Threads whose descriptors the offset search reads, and the offsets that
 * may survive its first pass before it gives up as ambiguous. */
#define SEARCH_THREADS 64u
#define MAX_CANDIDATES 8u
#define MAX_TIDS 1024u
/* Samples between searches that found nothing, doubling up to the max. */
#define SEARCH_RETRY 64u
#define SEARCH_RETRY_MAX 8192u

static int listed(const uint64_t *tids, uint32_t n, uint64_t v) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (tids[mid] == v) return 1;
        if (tids[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

static uint32_t read_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The offset at which each searched thread's descriptor holds a distinct
 * listed TID; 0 when none or several that disagree. */
static int search_offset(au_memsrc *mem, int pid, const uint64_t *pthreads, uint32_t n,
                         uint32_t *offset) {
    uint64_t tids[MAX_TIDS];
    uint32_t ntids;
    int rc = au_proc_tasks(pid, tids, MAX_TIDS, &ntids);
    if (rc && rc != AU_ERR_LIMIT) return rc;
    au_sort(tids, ntids, sizeof *tids, au_cmp_u64);
    enum { WORDS = AU_TID_SEARCH_BYTES / 4 };
    uint8_t alive[WORDS];
    memset(alive, 1, sizeof alive);
    uint32_t used = 0;
    _Alignas(8) uint8_t desc[AU_TID_SEARCH_BYTES];
    for (uint32_t i = 0; i < n && used < SEARCH_THREADS; i++) {
        /* A descriptor is at least pointer-aligned; anything else is not
         * a pthread_t of glibc's. */
        if (!pthreads[i] || pthreads[i] % 8) continue;
        if (au_mem_read1(mem, pthreads[i], desc, sizeof desc) != AU_OK) continue;
        used++;
        for (uint32_t w = 0; w < WORDS; w++)
            if (alive[w] && !listed(tids, ntids, read_u32(desc + 4 * w))) alive[w] = 0;
    }
    if (!used) return AU_ERR_NOT_FOUND;
    uint32_t cand[MAX_CANDIDATES], ncand = 0;
    for (uint32_t w = 0; w < WORDS; w++)
        if (alive[w]) {
            if (ncand == MAX_CANDIDATES) return AU_ERR_NOT_FOUND;
            cand[ncand++] = 4 * w;
        }
    if (!ncand) return AU_ERR_NOT_FOUND;
    /* Distinct TIDs per thread at the first candidate, and every other
     * candidate giving the very same: then which one is glibc's field
     * does not matter for these threads. */
    for (uint32_t i = 0; i < n && i < SEARCH_THREADS; i++) {
        uint32_t v[MAX_CANDIDATES];
        for (uint32_t c = 0; c < ncand; c++)
            if (au_mem_read1(mem, pthreads[i] + cand[c], &v[c], 4) != AU_OK) v[c] = 0;
        for (uint32_t c = 1; c < ncand; c++)
            if (v[c] != v[0]) return AU_ERR_NOT_FOUND;
        for (uint32_t j = 0; j < i; j++) {
            uint32_t u;
            if (pthreads[j] != pthreads[i] && v[0] &&
                au_mem_read1(mem, pthreads[j] + cand[0], &u, 4) == AU_OK && u == v[0])
                return AU_ERR_NOT_FOUND;
        }
    }
    *offset = cand[0];
    return AU_OK;
}

int au_tid_map_fill(au_tid_map *m, au_memsrc *mem, int pid, uint32_t sample_no,
                    const uint64_t *pthreads, uint64_t *tids, uint32_t n) {
    if (!m || !mem || pid <= 0 || (n && (!pthreads || !tids))) return AU_ERR_ARG;
    for (uint32_t i = 0; i < n; i++) tids[i] = 0;
    if (!n) return AU_OK;
    if (!m->found) {
        if ((int32_t)(sample_no - m->retry_at) < 0) return AU_OK;
        uint32_t every = SEARCH_RETRY << (m->tries < 7 ? m->tries : 7);
        m->tries++;
        m->retry_at = sample_no + (every < SEARCH_RETRY_MAX ? every : SEARCH_RETRY_MAX);
        if (search_offset(mem, pid, pthreads, n, &m->offset) != AU_OK) return AU_OK;
        m->found = 1;
    }
    au_read reads[64];
    uint32_t vals[64];
    for (uint32_t at = 0; at < n; at += 64) {
        uint32_t k = n - at < 64 ? n - at : 64, nr = 0;
        for (uint32_t i = 0; i < k; i++) {
            if (!pthreads[at + i] || pthreads[at + i] % 8) continue;
            reads[nr] = (au_read){pthreads[at + i] + m->offset, &vals[i], 4, 0};
            nr++;
        }
        if (nr) mem->read(mem, reads, nr);
        nr = 0;
        for (uint32_t i = 0; i < k; i++) {
            if (!pthreads[at + i] || pthreads[at + i] % 8) continue;
            if (reads[nr++].status == AU_OK && vals[i] > 0 && vals[i] <= INT32_MAX)
                tids[at + i] = vals[i];
        }
    }
    return AU_OK;
}

/* ---- the process behind a pid ------------------------------------------- */

int au_proc_anchor_open(int pid, int *fd) {
    if (pid <= 0 || !fd) return AU_ERR_ARG;
    char path[48];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    return *fd < 0 ? au_status_from_errno(errno, AU_ERR_IO) : AU_OK;
}

int au_proc_anchor_alive(int fd) {
    if (fd < 0) return AU_ERR_ARG;
    /* comm: the cheapest file the kernel still ties to the process. */
    char buf[32];
    for (uint32_t eintr = 0;; eintr++) {
        if (pread(fd, buf, sizeof buf, 0) >= 0) return AU_OK;
        if (errno != EINTR || eintr + 1 >= MAX_EINTR) break;
    }
    return au_status_from_errno(errno, AU_ERR_IO);
}
