/* Status codes and the libc allocator, shared by every layer of the core. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "asyncunwind.h"
#include "au_internal.h"

const char *au_version(void) { return AU_VERSION_STRING; }

const char *au_status_str(int status) {
    switch (status) {
    case AU_OK: return "ok";
    case AU_ERR_ARG: return "invalid argument";
    case AU_ERR_NOMEM: return "out of memory";
    case AU_ERR_LIMIT: return "input exceeds a configured limit";
    case AU_ERR_READ: return "target memory could not be read";
    case AU_ERR_NOPROC: return "no such process";
    case AU_ERR_PERM: return "permission denied";
    case AU_ERR_IO: return "I/O error";
    case AU_ERR_FORMAT: return "malformed input";
    case AU_ERR_UNSUPPORTED: return "unsupported version or format";
    case AU_ERR_NOTPYTHON: return "not a Python process";
    case AU_ERR_CORRUPT: return "target data failed validation";
    case AU_ERR_NOT_FOUND: return "not found";
    default: return "unknown status";
    }
}

const char *au_status_hint(int status) {
    switch (status) {
    case AU_ERR_PERM:
        return "reading another process needs ptrace permission: run as the same user "
               "with /proc/sys/kernel/yama/ptrace_scope set to 0, or as root, or with "
               "CAP_SYS_PTRACE (in a container: --cap-add SYS_PTRACE)";
    case AU_ERR_NOPROC: return "check the pid: the process may have exited";
    case AU_ERR_UNSUPPORTED: return "asyncunwind reads CPython 3.9 to 3.15";
    case AU_ERR_NOTPYTHON:
        return "no CPython runtime (_PyRuntime) was found in the process's executable "
               "or libpython";
    default: return NULL;
    }
}

int au_status_from_errno(int err, int other) {
    switch (err) {
    case ESRCH:
    case ENOENT: return AU_ERR_NOPROC;
    case EPERM:
    case EACCES: return AU_ERR_PERM;
    case ENOMEM: return AU_ERR_NOMEM;
    default: return other;
    }
}

static void *libc_realloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    (void)ud;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

au_allocator au_alloc_or_libc(const au_allocator *a) {
    if (a && a->realloc) return *a;
    au_allocator libc = {libc_realloc, NULL};
    return libc;
}

void *au_alloc_zeroed(const au_allocator *alloc, size_t size, au_allocator *used) {
    *used = au_alloc_or_libc(alloc);
    void *p = used->realloc(used->ud, NULL, 0, size);
    if (p) memset(p, 0, size);
    return p;
}

int au_grow(const au_allocator *a, uint64_t *counter, void **ptr, uint32_t *cap,
            size_t need, size_t elem) {
    if (need <= *cap) return AU_OK;
    /* Grow geometrically so a series of slightly larger inputs does not
     * reallocate every time; the cap keeps it within uint32 indices. */
    size_t ncap = (size_t)*cap * 2;
    if (ncap < need + need / 2) ncap = need + need / 2;
    if (ncap < 16) ncap = 16;
    if (ncap > UINT32_MAX) ncap = UINT32_MAX;
    if (ncap < need && need <= UINT32_MAX) ncap = need;
    if (ncap < need || ncap > SIZE_MAX / elem) return AU_ERR_NOMEM;
    void *p = a->realloc(a->ud, *ptr, (size_t)*cap * elem, ncap * elem);
    if (!p) return AU_ERR_NOMEM;
    if (counter) (*counter)++;
    *ptr = p;
    *cap = (uint32_t)ncap;
    return AU_OK;
}

void au_free_array(const au_allocator *a, void *p, size_t cap, size_t elem) {
    if (p) a->realloc(a->ud, p, cap * elem, 0);
}
