/*
 * /proc/PID/maps: reading and parsing the memory map of a target process.
 *
 * Internal to the core (not part of the public API).  The map text comes
 * from the target's kernel view and is treated as hostile input anyway:
 * every line is validated, malformed lines are skipped and counted, and
 * nothing here can read outside the caller's buffer.
 *
 * Paths are not copied: each au_map refers to its path by offset and length
 * into the caller's text, so the text must outlive the maps.
 */
#ifndef ASYNCUNWIND_PROCMAPS_H
#define ASYNCUNWIND_PROCMAPS_H

#include <stddef.h>
#include <stdint.h>

#include "asyncunwind.h"

/* au_map.perms: the four permission characters of a maps line. */
#define AU_MAP_R 0x1u /* 'r' */
#define AU_MAP_W 0x2u /* 'w' */
#define AU_MAP_X 0x4u /* 'x' */
#define AU_MAP_P 0x8u /* 'p' (private, copy-on-write); clear for 's' */

/* au_map.flags */
/* The path ended in " (deleted)": the file was unlinked (or replaced, e.g.
 * by a package upgrade) after it was mapped.  The suffix is not part of
 * path_len.  The file can no longer be opened by that path.  (A file whose
 * real name ends in " (deleted)" is indistinguishable; the kernel gives no
 * way to tell.) */
#define AU_MAPF_DELETED 0x1u
/* The path does not start with '/': a kernel pseudo-path such as [heap],
 * [stack], [vdso], [vvar] or [anon:name], not a file. */
#define AU_MAPF_PSEUDO 0x2u

typedef struct au_map {
    uint64_t start, end;  /* [start, end) in the target; start < end */
    uint64_t offset;      /* file offset mapped at start */
    uint64_t inode;       /* 0 for anonymous and pseudo maps */
    uint32_t dev_major, dev_minor; /* device of the mapped file */
    uint32_t perms;       /* AU_MAP_* */
    uint32_t flags;       /* AU_MAPF_* */
    /* The path, as bytes of the caller's text: text[path_off, +path_len).
     * path_len 0 = anonymous.  Not NUL-terminated.  The kernel escapes a
     * newline in a path as the four characters "\012"; it is left as is. */
    uint32_t path_off, path_len;
} au_map;

/*
 * Parse the text of a /proc/PID/maps file.
 *
 * Each line is `start-end perms offset major:minor inode [path]`, with
 * hexadecimal start, end, offset, major and minor, decimal inode, and a
 * path that may be absent, may contain spaces and may end in " (deleted)".
 * The last line need not end in '\n'.
 *
 * Lines that do not have that shape (or contain a NUL byte, or have
 * start >= end, or numbers that overflow 64 bits) are skipped and counted
 * in *bad_lines; empty lines are ignored.  Maps are stored in text order
 * (the kernel's is ascending and non-overlapping, but that is not checked:
 * callers must not rely on it).
 *
 * Returns AU_OK; or AU_ERR_LIMIT when the text holds more than cap maps:
 * then the first cap maps are stored, *nmaps == cap, and *bad_lines counts
 * the lines before the first map that did not fit; or AU_ERR_LIMIT when len
 * exceeds UINT32_MAX (path_off could not express it; nothing is parsed);
 * AU_ERR_ARG on NULL arguments (text may be NULL when len is 0; maps may be
 * NULL when cap is 0).  bad_lines may be NULL.
 */
int au_maps_parse(const char *text, size_t len, au_map *maps, uint32_t cap,
                  uint32_t *nmaps, uint32_t *bad_lines);

/* The basename of a map's path: the bytes after its last '/' (the whole
 * path when it has none).  *len 0 for anonymous maps.  The map must come
 * from au_maps_parse over the same text. */
const char *au_map_basename(const char *text, const au_map *m, uint32_t *len);

/* A predicate over one map, given the text it was parsed from. */
typedef int (*au_map_pred_fn)(void *ud, const char *text, const au_map *m);

/* Index of the first map at index >= from that satisfies pred, or
 * UINT32_MAX when none does.  Iterate with from = previous result + 1. */
uint32_t au_maps_find(const char *text, const au_map *maps, uint32_t nmaps,
                      uint32_t from, au_map_pred_fn pred, void *ud);

/* Ready-made predicates. */

/* ud: const char * (NUL-terminated).  True for file maps whose basename
 * starts with it, e.g. "libpython3." matches libpython3.12.so.1.0. */
int au_map_pred_basename_prefix(void *ud, const char *text, const au_map *m);

/* ud: const au_map_file_id *.  True for file maps of exactly that file
 * (device and inode), whatever its path: how to find the executable (see
 * au_proc_exe_id) and every map of a file once one map of it is known. */
typedef struct au_map_file_id {
    uint32_t dev_major, dev_minor;
    uint64_t inode;
} au_map_file_id;
int au_map_pred_file_id(void *ud, const char *text, const au_map *m);

/* The file id of a map (meaningful for file maps: inode != 0). */
au_map_file_id au_map_file_id_of(const au_map *m);

/*
 * Read the whole /proc/PID/maps of pid into buf (no NUL is appended).
 *
 * The kernel generates the file as it is read, so the text is a snapshot
 * only line by line; a map can change while it is read.  Returns AU_OK with
 * *len bytes; AU_ERR_LIMIT when the file is larger than cap (buf then holds
 * the first cap bytes, *len == cap, and its last line may be cut: parse it
 * only if a partial view is acceptable); AU_ERR_NOPROC, AU_ERR_PERM or
 * AU_ERR_IO as au_status_from_errno (au_internal.h); AU_ERR_ARG for pid <= 0 or NULL
 * pointers.
 */
int au_maps_read(int pid, char *buf, size_t cap, size_t *len);

/*
 * Device and inode of the executable of pid (stat of /proc/PID/exe, which
 * the kernel resolves to the very file, even inside a chroot or container,
 * or after the file was deleted).  Feed it to au_map_pred_file_id to find
 * the executable's maps.  (On overlayfs, stat and maps may report
 * different devices for the same file; match the path as a fallback.)
 * Errors as au_maps_read.
 */
int au_proc_exe_id(int pid, au_map_file_id *id);

/*
 * The kernel's name of thread tid of pid (/proc/PID/task/TID/comm, at most
 * 15 bytes; CPython 3.14+ sets it from threading.Thread.name) into out,
 * without the newline and not NUL-terminated.  Returns its length, 0 when
 * it cannot be read.
 */
uint32_t au_proc_thread_name(int pid, uint64_t tid, char *out, uint32_t cap);

#endif
