/* Live tests: find an ELF symbol or section in the files a target process
 * maps, and its runtime address there.
 *
 * Every file the target maps (its offset-0 map) is opened: through
 * /proc/PID/root first (right for targets in another mount namespace),
 * then by the path as printed, because the kernel prints maps paths
 * relative to the READER's root: for a target in a chroot they are host
 * paths ("/var/lib/asyncunwind/sid/usr/bin/python3.14").  Either way the
 * file must be the mapped one (device and inode).  The first file that has
 * the name wins. */
#ifndef ASYNCUNWIND_TESTS_TARGET_ELF_H
#define ASYNCUNWIND_TESTS_TARGET_ELF_H

#include <stdint.h>
#include <sys/types.h>

typedef enum te_kind { TE_SYMBOL = 1, TE_SECTION = 2 } te_kind;

typedef struct te_hit {
  uint64_t addr; /* runtime address in the target */
  uint64_t size; /* st_size or sh_size */
  char path[4096]; /* the file, as the target's maps print it */
} te_hit;

/* 0 and *hit filled, or -1 when no mapped file has `name` (or the maps
 * cannot be read). */
int te_find(pid_t pid, te_kind kind, const char *name, te_hit *hit);

#endif
