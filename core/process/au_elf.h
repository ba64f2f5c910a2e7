/*
 * ELF64 little-endian: section and symbol lookup, PT_LOAD segments, and
 * turning a link-time address into a runtime address in a target process.
 *
 * Internal to the core.  The file is hostile input: every count is bounded,
 * every offset+size is checked against the file size (without overflow)
 * before it is read, and malformed files give an error status, never a
 * crash.  All reads go through a callback, so the same code works on a
 * file (au_file_read_at) and on bytes in memory (au_bytes_read_at, used by
 * the fuzzer and tests).  Nothing here allocates.
 *
 * Statuses: AU_ERR_FORMAT for malformed files, AU_ERR_UNSUPPORTED for
 * well-formed ELF files this code does not read (32-bit, big-endian,
 * relocatable objects, core dumps), AU_ERR_NOT_FOUND when a section,
 * symbol or segment does not exist, AU_ERR_LIMIT when a bound below is
 * exceeded, and whatever the read callback returned when it failed.
 */
#ifndef ASYNCUNWIND_ELF_H
#define ASYNCUNWIND_ELF_H

#include <stddef.h>
#include <stdint.h>

#include "asyncunwind.h"
#include "au_procmaps.h"

/* Read exactly len bytes at offset off into buf.  Returns 0, or a negative
 * au_status (a short read is an error). */
typedef int (*au_read_at_fn)(void *ud, uint64_t off, void *buf, size_t len);

/* Bounds.  Real executables and libraries have tens of sections, under 16
 * PT_LOAD segments and up to a few hundred thousand symbols. */
#define AU_ELF_MAX_SECTIONS (1u << 16)
#define AU_ELF_MAX_SYMBOLS (1u << 22)  /* per symbol table */
#define AU_ELF_MAX_LOADS 16u           /* PT_LOAD segments kept */
#define AU_ELF_MAX_PHDRS (1u << 16)
#define AU_ELF_MAX_NAME 1024u          /* names looked up are shorter */
#define AU_ELF_MAX_RT_MAPS 64u         /* maps au_elf_load_bias considers */

/* p_flags */
#define AU_ELF_PF_X 0x1u
#define AU_ELF_PF_W 0x2u
#define AU_ELF_PF_R 0x4u

typedef struct au_elf_seg {
    uint64_t vaddr, offset, filesz, memsz;
    uint32_t flags; /* AU_ELF_PF_* */
} au_elf_seg;

typedef struct au_elf {
    au_read_at_fn read;
    void *ud;
    uint64_t file_size;
    uint16_t type;      /* ET_EXEC (2) or ET_DYN (3) */
    uint16_t machine;
    uint64_t shoff;     /* section header table, validated against file */
    uint32_t shnum;     /* 0 when the file has no section headers */
    uint32_t shentsize;
    uint32_t shstrndx;  /* < shnum, or 0 when there are no section names */
    uint32_t nloads;    /* PT_LOAD segments in loads, in file order */
    uint32_t loads_dropped; /* PT_LOADs beyond AU_ELF_MAX_LOADS, ignored */
    au_elf_seg loads[AU_ELF_MAX_LOADS];
} au_elf;

/*
 * Read and validate the ELF header and the program headers.  Section
 * headers are validated as a table (position, entry size, count) here and
 * entry by entry when used.  Every PT_LOAD must lie within the file
 * (offset + filesz <= file_size) and have filesz <= memsz, or the file is
 * AU_ERR_FORMAT.  e keeps read and ud: they must stay valid while e is
 * used.  Lookups do not modify e, so several threads may share it (when
 * the callback allows).  After an error, e must not be used.
 */
int au_elf_open(au_elf *e, au_read_at_fn read, void *ud, uint64_t file_size);

/*
 * Find the first section called name (e.g. ".PyRuntime", ".text").
 * addr: its link-time address (sh_addr); size: sh_size; file_off: its
 * offset in the file, with [file_off, file_off + size) checked to lie in
 * the file, or AU_ELF_NOBITS for SHT_NOBITS sections (.bss and the like),
 * which occupy no file bytes (their size is a memory size).  Any output
 * pointer may be NULL.  An empty name, or one of AU_ELF_MAX_NAME bytes or
 * more, is AU_ERR_ARG (as in au_elf_symbol).
 */
#define AU_ELF_NOBITS UINT64_MAX
int au_elf_section(const au_elf *e, const char *name, uint64_t *addr,
                   uint64_t *size, uint64_t *file_off);

/*
 * Find the defined symbol called name: .dynsym (SHT_DYNSYM) first, then
 * .symtab (SHT_SYMTAB), which stripped files lack.  Undefined symbols
 * (imports) are skipped; a global or weak definition wins over a local one
 * (static symbols of the same name may exist in several objects); among
 * equals the first wins.  value: st_value, a link-time address for
 * executables and shared objects; size: st_size.  Either may be NULL.
 * The scan is linear, in chunks; it is meant for attach time.
 */
int au_elf_symbol(const au_elf *e, const char *name, uint64_t *value,
                  uint64_t *size);

/* Copy up to cap PT_LOAD segments (file order, which the ELF spec makes
 * ascending vaddr order) to out; returns how many the file has (at most
 * AU_ELF_MAX_LOADS). */
uint32_t au_elf_load_segments(const au_elf *e, au_elf_seg *out, uint32_t cap);

/*
 * The load bias of this file in a target: the amount added to every
 * link-time address (0 for a non-PIE executable).
 *
 * maps must be the target's maps of this very file (same device and inode,
 * e.g. selected with au_map_pred_file_id); anonymous maps, maps with no
 * permissions (the PROT_NONE gaps ld.so leaves between segments) and maps
 * beyond the first AU_ELF_MAX_RT_MAPS are ignored.
 *
 * A map M that maps part of segment S (their file ranges overlap, and M's
 * permissions are a subset of S's flags: mprotect, e.g. for RELRO, only
 * removes permissions) gives the candidate
 *
 *     bias = (M.start - M.offset) - (S.vaddr - S.offset)
 *
 * because M maps file offset f at M.start + (f - M.offset) and S puts it
 * at link-time address S.vaddr + (f - S.offset).  One map can overlap two
 * segments in the file (when they share a page), so each candidate is
 * scored by how many maps it explains and the best one wins; a tie between
 * different biases is AU_ERR_FORMAT (ambiguous), no candidate at all is
 * AU_ERR_NOT_FOUND.  Arithmetic is modulo 2^64, as address arithmetic is.
 */
int au_elf_load_bias(const au_elf *e, const au_map *maps, uint32_t nmaps,
                     uint64_t *bias);

/*
 * The runtime address of link-time address vaddr (a symbol value or a
 * section address): vaddr + bias, with bias from au_elf_load_bias.  vaddr
 * must lie in a PT_LOAD segment ([S.vaddr, S.vaddr + S.memsz)), or
 * AU_ERR_NOT_FOUND.  Callers converting many addresses should compute the
 * bias once.
 */
int au_elf_runtime_addr(const au_elf *e, const au_map *maps, uint32_t nmaps,
                        uint64_t vaddr, uint64_t *addr);

/* ---------------------------------------------------------------------------
 * Read callbacks.
 * ------------------------------------------------------------------------ */

/* au_read_at_fn over a file descriptor: ud points to an int holding the
 * fd.  pread, retried on EINTR and on partial reads; end of file before
 * len bytes is AU_ERR_IO, as is an offset beyond what off_t holds. */
int au_file_read_at(void *ud, uint64_t off, void *buf, size_t len);

/* au_read_at_fn over bytes in memory: ud points to an au_bytes.  A
 * range outside [0, size) is AU_ERR_IO. */
typedef struct au_bytes {
    const void *data;
    size_t size;
} au_bytes;
int au_bytes_read_at(void *ud, uint64_t off, void *buf, size_t len);

/* ---------------------------------------------------------------------------
 * Opening a target's files.
 * ------------------------------------------------------------------------ */

/*
 * Open a file mapped by process pid, read-only, through /proc/PID/root:
 * the paths in /proc/PID/maps are relative to the target's root directory
 * (a chroot, or a container's mount namespace), and /proc/PID/root is that
 * directory as seen from here, so "/proc/PID/root" + path names the
 * target's file even when ours differs or does not exist.  (Needs the same
 * ptrace access as reading the target's memory.)
 *
 * path: path_len bytes, not NUL-terminated (e.g. straight from the maps
 * text), must start with '/', contain no NUL and fit in PATH_MAX with the
 * prefix (else AU_ERR_ARG / AU_ERR_LIMIT).  On AU_OK, *fd is the open
 * descriptor (O_CLOEXEC) and *size its size (the file_size for
 * au_elf_open).  ENOENT is AU_ERR_NOT_FOUND when /proc/PID still exists
 * (the file is gone), AU_ERR_NOPROC when it does not; other errors as
 * au_status_from_errno.
 *
 * The target controls the path, and could make it name a FIFO (opening it
 * would block) or a device (opening it can have side effects): the name is
 * resolved with O_PATH first, which opens nothing, and only a regular file
 * is then opened for reading; anything else is AU_ERR_UNSUPPORTED.  The
 * file may have been replaced since it was mapped; check with
 * au_fd_matches_map.
 */
int au_proc_open_file(int pid, const char *path, size_t path_len, int *fd,
                      uint64_t *size);

/* Whether the open file fd is the file that map m maps (same device and
 * inode).  1 yes, 0 no, negative status when fstat fails.  (See the
 * overlayfs caveat at au_proc_exe_id.) */
int au_fd_matches_map(int fd, const au_map *m);

#endif
