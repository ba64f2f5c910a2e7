/*
 * Finding the interpreter: where _PyRuntime lives in a target process and
 * which CPython it is, without executing anything in the target.
 *
 * The runtime is in libpython3.X.so for shared builds (pyenv's) and in the
 * executable for static ones (Debian's /usr/bin/python3.11).  Its address
 * is the `.PyRuntime` section where the build has one (3.10+), else the
 * `_PyRuntime` dynamic symbol, plus the file's load bias from the maps.
 * Files are opened through /proc/PID/root so that a target in a chroot or
 * container is read from its own root.
 *
 * The version comes from the best evidence available, in order:
 *   1. `_Py_DebugOffsets` at the start of _PyRuntime (3.13+): the cookie
 *      "xdebugpy" followed by PY_VERSION_HEX;
 *   2. the `Py_Version` symbol (3.11+): PY_VERSION_HEX as data;
 *   3. the file name: libpython3.X.so / python3.X gives major.minor.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asyncunwind.h"
#include "au_elf.h"
#include "au_internal.h"
#include "au_procmaps.h"

#define MAPS_START (256u << 10)
#define MAPS_MAX (64u << 20)
#define MAX_MAPS (1u << 18)
#define DEBUG_COOKIE "xdebugpy"

typedef struct maps_buf {
    au_allocator alloc;
    char *text;
    size_t len, cap;
    au_map *maps;
    uint32_t nmaps;
} maps_buf;

static void maps_free(maps_buf *m) {
    if (m->text) m->alloc.realloc(m->alloc.ud, m->text, m->cap, 0);
    if (m->maps) m->alloc.realloc(m->alloc.ud, m->maps, (size_t)MAX_MAPS * sizeof *m->maps, 0);
}

/* Read and parse the maps, growing the buffer until the file fits. */
static int maps_load(int pid, maps_buf *m) {
    for (size_t cap = MAPS_START; cap <= MAPS_MAX; cap *= 2) {
        char *t = m->alloc.realloc(m->alloc.ud, m->text, m->cap, cap);
        if (!t) return AU_ERR_NOMEM;
        m->text = t;
        m->cap = cap;
        int rc = au_maps_read(pid, m->text, m->cap, &m->len);
        if (rc == AU_ERR_LIMIT) continue;
        if (rc) return rc;
        m->maps = m->alloc.realloc(m->alloc.ud, NULL, 0, (size_t)MAX_MAPS * sizeof *m->maps);
        if (!m->maps) return AU_ERR_NOMEM;
        rc = au_maps_parse(m->text, m->len, m->maps, MAX_MAPS, &m->nmaps, NULL);
        return rc == AU_ERR_LIMIT ? AU_OK : rc; /* the runtime is early */
    }
    return AU_ERR_LIMIT;
}

/* The major.minor a file name announces: "libpython3.12.so.1.0" or
 * "python3.12" -> 0x030c0000; 0 when it announces none. */
static uint32_t version_from_name(const char *name, uint32_t len) {
    static const char *const prefixes[] = {"libpython3.", "python3."};
    for (int p = 0; p < 2; p++) {
        size_t pl = strlen(prefixes[p]);
        if (len <= pl || memcmp(name, prefixes[p], pl) != 0) continue;
        uint32_t minor = 0, k = (uint32_t)pl, digits = 0;
        while (k < len && name[k] >= '0' && name[k] <= '9' && digits < 3) {
            minor = minor * 10 + (uint32_t)(name[k++] - '0');
            digits++;
        }
        if (digits) return 0x03000000u | minor << 16;
    }
    return 0;
}

/* Open the file that map k maps, and make sure it is that very file (same
 * device and inode).  Paths in /proc/PID/maps are relative to the root of
 * whoever reads them when both share a mount namespace (a plain chroot),
 * and to the target's root otherwise (a container), so both readings are
 * tried, through /proc/PID/root first; /proc/PID/map_files, which names the
 * mapped file itself, comes next. */
static int open_mapped(int pid, const maps_buf *m, const au_map *map, int *fd, uint64_t *size) {
    const char *path = m->text + map->path_off;
    int rc = au_proc_open_file(pid, path, map->path_len, fd, size);
    if (rc == AU_OK && au_fd_matches_map(*fd, map) == 1) return AU_OK;
    if (rc == AU_OK) close(*fd);
    if (rc == AU_ERR_NOPROC || rc == AU_ERR_PERM) return rc;
    char alt[600];
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt == 0)
            snprintf(alt, sizeof alt, "/proc/%d/map_files/%llx-%llx", pid,
                     (unsigned long long)map->start, (unsigned long long)map->end);
        else if (map->path_len < sizeof alt)
            memcpy(alt, path, map->path_len), alt[map->path_len] = 0;
        else
            break;
        int f = open(alt, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        if (f < 0) continue;
        if (fstat(f, &st) == 0 && S_ISREG(st.st_mode) && au_fd_matches_map(f, map) == 1) {
            *fd = f;
            *size = (uint64_t)st.st_size;
            return AU_OK;
        }
        close(f);
    }
    return AU_ERR_NOT_FOUND;
}

typedef struct candidate {
    uint64_t runtime_vaddr, py_version_vaddr;
    int has_runtime, has_py_version;
} candidate;

/* The load bias of the ELF file `map` maps: the maps of this very file
 * (same device and inode) against its program headers. */
static int load_bias(const maps_buf *m, const au_map *map, const au_elf *elf, uint64_t *bias) {
    au_map_file_id id = au_map_file_id_of(map);
    au_map mine[AU_ELF_MAX_RT_MAPS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nmaps && n < AU_ELF_MAX_RT_MAPS; i++)
        if (au_map_pred_file_id(&id, m->text, &m->maps[i])) mine[n++] = m->maps[i];
    return au_elf_load_bias(elf, mine, n, bias);
}

/* Look for the runtime in the file of map index k. */
static int probe_file(int pid, const maps_buf *m, uint32_t k, au_pyruntime *out) {
    const au_map *map = &m->maps[k];
    int fd;
    uint64_t size;
    int rc = open_mapped(pid, m, map, &fd, &size);
    if (rc) return rc;
    au_elf elf;
    candidate c = {0, 0, 0, 0};
    rc = au_elf_open(&elf, au_file_read_at, &fd, size);
    if (rc == AU_OK) {
        c.has_runtime = au_elf_section(&elf, ".PyRuntime", &c.runtime_vaddr, NULL, NULL) == AU_OK ||
                        au_elf_symbol(&elf, "_PyRuntime", &c.runtime_vaddr, NULL) == AU_OK;
        c.has_py_version = au_elf_symbol(&elf, "Py_Version", &c.py_version_vaddr, NULL) == AU_OK;
    }
    if (rc == AU_OK && !c.has_runtime) rc = AU_ERR_NOTPYTHON;
    if (rc == AU_OK) {
        uint64_t bias;
        rc = load_bias(m, map, &elf, &bias);
        if (rc == AU_OK) {
            out->runtime_addr = c.runtime_vaddr + bias;
            out->py_version_addr = c.has_py_version ? c.py_version_vaddr + bias : 0;
            uint32_t plen = map->path_len < sizeof out->path - 1 ? map->path_len
                                                                 : (uint32_t)sizeof out->path - 1;
            memcpy(out->path, m->text + map->path_off, plen);
            out->path[plen] = 0;
            uint32_t blen;
            const char *base = au_map_basename(m->text, map, &blen);
            out->py_version_hex = version_from_name(base, blen);
            out->version_source = out->py_version_hex ? AU_VERSION_FROM_FILE_NAME : 0;
        }
    }
    close(fd);
    return rc;
}

/* The runtime address of section `name` of the file that map k maps. */
static int section_addr(int pid, const maps_buf *m, uint32_t k, const char *name, uint64_t *out) {
    const au_map *map = &m->maps[k];
    int fd;
    uint64_t size, vaddr;
    int rc = open_mapped(pid, m, map, &fd, &size);
    if (rc) return rc;
    au_elf elf;
    rc = au_elf_open(&elf, au_file_read_at, &fd, size);
    if (rc == AU_OK) rc = au_elf_section(&elf, name, &vaddr, NULL, NULL);
    if (rc == AU_OK) {
        uint64_t bias;
        rc = load_bias(m, map, &elf, &bias);
        if (rc == AU_OK) *out = vaddr + bias;
    }
    close(fd);
    return rc;
}

/* Maps whose path starts with `prefix` (pseudo paths included). */
static int pred_path_prefix(void *ud, const char *text, const au_map *m) {
    const char *p = ud;
    size_t n = strlen(p);
    return m->path_len >= n && memcmp(text + m->path_off, p, n) == 0;
}

int au_pyruntime_find_asyncio(const au_allocator *alloc, int pid, au_pyruntime *rt) {
    if (pid <= 0 || !rt) return AU_ERR_ARG;
    maps_buf m = {au_alloc_or_libc(alloc), NULL, 0, 0, NULL, 0};
    int rc = maps_load(pid, &m);
    if (rc) {
        maps_free(&m);
        return rc;
    }
    /* The agent's region: a memfd the agent names (docs/AGENT.md). */
    static const char agent[] = "/memfd:" AU_AGENT_MEMFD_NAME " ";
    static const char agent_end[] = "/memfd:" AU_AGENT_MEMFD_NAME;
    uint32_t k = au_maps_find(m.text, m.maps, m.nmaps, 0, pred_path_prefix, (void *)agent);
    if (k == UINT32_MAX) {
        /* No " (deleted)" suffix: the name is the whole path. */
        for (k = 0; k < m.nmaps; k++)
            if (m.maps[k].path_len == sizeof agent_end - 1 &&
                memcmp(m.text + m.maps[k].path_off, agent_end, sizeof agent_end - 1) == 0)
                break;
        if (k == m.nmaps) k = UINT32_MAX;
    }
    rt->agent_addr = k == UINT32_MAX ? 0 : m.maps[k].start;
    /* _AsyncioDebug (3.14+): in the _asyncio extension module once it is
     * imported, or in the executable or libpython where _asyncio is built
     * in (Debian's 3.15). */
    rt->asyncio_debug_addr = 0;
    if ((rt->py_version_hex >> 16 & 0xff) >= 14) {
        static const char ext[] = "_asyncio.";
        uint64_t addr = 0;
        k = au_maps_find(m.text, m.maps, m.nmaps, 0, au_map_pred_basename_prefix, (void *)ext);
        if (k != UINT32_MAX && section_addr(pid, &m, k, ".AsyncioDebug", &addr) == AU_OK)
            rt->asyncio_debug_addr = addr;
        static const char lib[] = "libpython3.";
        k = au_maps_find(m.text, m.maps, m.nmaps, 0, au_map_pred_basename_prefix, (void *)lib);
        if (!rt->asyncio_debug_addr && k != UINT32_MAX &&
            section_addr(pid, &m, k, ".AsyncioDebug", &addr) == AU_OK)
            rt->asyncio_debug_addr = addr;
        au_map_file_id exe;
        if (!rt->asyncio_debug_addr && au_proc_exe_id(pid, &exe) == AU_OK) {
            k = au_maps_find(m.text, m.maps, m.nmaps, 0, au_map_pred_file_id, &exe);
            if (k != UINT32_MAX && section_addr(pid, &m, k, ".AsyncioDebug", &addr) == AU_OK)
                rt->asyncio_debug_addr = addr;
        }
    }
    maps_free(&m);
    return AU_OK;
}

/* Refine the version from the target's memory. */
static void read_version(au_memsrc *mem, au_pyruntime *out) {
    uint8_t head[16];
    if (au_mem_read1(mem, out->runtime_addr, head, sizeof head) == AU_OK &&
        memcmp(head, DEBUG_COOKIE, 8) == 0) {
        uint64_t v;
        memcpy(&v, head + 8, 8);
        if (v >> 32 == 0 && (v >> 24) == 3) {
            out->py_version_hex = (uint32_t)v;
            out->version_source = AU_VERSION_FROM_DEBUG_OFFSETS;
            return;
        }
    }
    uint32_t v;
    if (out->py_version_addr && au_mem_read1(mem, out->py_version_addr, &v, 4) == AU_OK &&
        (v >> 24) == 3) {
        out->py_version_hex = v;
        out->version_source = AU_VERSION_FROM_PY_VERSION;
    }
}

int au_pyruntime_find(const au_allocator *alloc, int pid, au_memsrc *mem, au_pyruntime *out) {
    if (pid <= 0 || !mem || !out) return AU_ERR_ARG;
    memset(out, 0, sizeof *out);
    out->pid = pid;
    maps_buf m = {au_alloc_or_libc(alloc), NULL, 0, 0, NULL, 0};
    int rc = maps_load(pid, &m);
    if (rc) {
        maps_free(&m);
        return rc;
    }
    /* libpython first (shared builds), then the executable. */
    static const char prefix[] = "libpython3.";
    uint32_t k = au_maps_find(m.text, m.maps, m.nmaps, 0, au_map_pred_basename_prefix,
                              (void *)prefix);
    rc = AU_ERR_NOTPYTHON;
    if (k != UINT32_MAX) rc = probe_file(pid, &m, k, out);
    if (rc != AU_OK) {
        au_map_file_id exe;
        int erc = au_proc_exe_id(pid, &exe);
        k = erc ? UINT32_MAX : au_maps_find(m.text, m.maps, m.nmaps, 0, au_map_pred_file_id, &exe);
        if (erc) rc = erc;
        else if (k != UINT32_MAX) rc = probe_file(pid, &m, k, out);
    }
    maps_free(&m);
    if (rc == AU_ERR_NOT_FOUND || rc == AU_ERR_FORMAT) rc = AU_ERR_NOTPYTHON;
    if (rc) return rc;
    read_version(mem, out);
    uint32_t minor = out->py_version_hex >> 16 & 0xff;
    if (out->py_version_hex >> 24 != 3 || minor < 9 || minor > 15) return AU_ERR_UNSUPPORTED;
    return AU_OK;
}
