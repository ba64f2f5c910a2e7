/* See target_elf.h. */
#define _GNU_SOURCE 1

#include "tests/target_elf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "au_elf.h"
#include "au_procmaps.h"

/* Open the file behind map m (see target_elf.h for why two tries). */
static int open_mapped_file(pid_t pid, const char *text, const au_map *m, int *fd,
                            uint64_t *size) {
  if (au_proc_open_file(pid, text + m->path_off, m->path_len, fd, size) == AU_OK) {
    if (au_fd_matches_map(*fd, m) == 1) return 0;
    close(*fd);
  }
  char path[4096];
  if (m->path_len >= sizeof path) return -1;
  memcpy(path, text + m->path_off, m->path_len);
  path[m->path_len] = '\0';
  *fd = open(path, O_RDONLY | O_CLOEXEC);
  if (*fd < 0) return -1;
  off_t end = lseek(*fd, 0, SEEK_END);
  if (end <= 0 || au_fd_matches_map(*fd, m) != 1) {
    close(*fd);
    return -1;
  }
  *size = (uint64_t)end;
  return 0;
}

int te_find(pid_t pid, te_kind kind, const char *name, te_hit *hit) {
  size_t cap = 1u << 20, len = 0;
  uint32_t mcap = 8192, nmaps = 0;
  char *text = malloc(cap);
  au_map *maps = calloc(mcap, sizeof *maps);
  au_map *mine = calloc(AU_ELF_MAX_RT_MAPS, sizeof *mine);
  int found = 0;
  if (text == NULL || maps == NULL || mine == NULL ||
      au_maps_read(pid, text, cap, &len) != AU_OK ||
      au_maps_parse(text, len, maps, mcap, &nmaps, NULL) != AU_OK)
    nmaps = 0;
  for (uint32_t i = 0; i < nmaps && !found; i++) {
    const au_map *m = &maps[i];
    if (m->offset != 0 || m->path_len == 0 || (m->flags & AU_MAPF_PSEUDO)) continue;
    int fd = -1;
    uint64_t fsize = 0;
    if (open_mapped_file(pid, text, m, &fd, &fsize) != 0) continue;
    au_elf e;
    uint64_t value = 0, size = 0;
    if (au_elf_open(&e, au_file_read_at, &fd, fsize) == AU_OK &&
        (kind == TE_SYMBOL ? au_elf_symbol(&e, name, &value, &size)
                           : au_elf_section(&e, name, &value, &size, NULL)) == AU_OK) {
      au_map_file_id id = au_map_file_id_of(m);
      uint32_t n = 0;
      for (uint32_t j = au_maps_find(text, maps, nmaps, 0, au_map_pred_file_id, &id);
           j != UINT32_MAX && n < AU_ELF_MAX_RT_MAPS;
           j = au_maps_find(text, maps, nmaps, j + 1, au_map_pred_file_id, &id))
        mine[n++] = maps[j];
      if (au_elf_runtime_addr(&e, mine, n, value, &hit->addr) == AU_OK) {
        hit->size = size;
        snprintf(hit->path, sizeof hit->path, "%.*s", (int)m->path_len, text + m->path_off);
        found = 1;
      }
    }
    close(fd);
  }
  free(mine);
  free(maps);
  free(text);
  return found ? 0 : -1;
}
