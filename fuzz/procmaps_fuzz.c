/*
 * Fuzz target `procmaps`: au_maps_parse() and the find helpers over
 * arbitrary text (the input is the text of a /proc/PID/maps file).
 *
 * Checked on every input:
 *   fields   every map has start < end, perms within AU_MAP_R|W|X|P, flags
 *            within AU_MAPF_*, dev within 12:20 bits; a path lies inside
 *            the text, holds no '\n' or NUL, does not start with a space;
 *            an anonymous map has no flags; PSEUDO iff the path does not
 *            start with '/'; DELETED iff " (deleted)" follows the path;
 *   order    paths appear in text order (each map comes from a later line);
 *   count    maps + bad lines <= lines;
 *   round    rendering a map back in the kernel's format and parsing it
 *            gives the same map (same fields, same path bytes);
 *   limit    parsing with a smaller cap returns AU_ERR_LIMIT with exactly
 *            cap maps, equal to the prefix of the full parse;
 *   find     au_maps_find returns only maps that satisfy the predicate,
 *            and the first one there is; basenames lie in their path and
 *            hold no '/'.
 * A violation prints what failed and aborts.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_helpers.h"
#include "fuzz/run_from_workspace.h"
#include "au_procmaps.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    au_fuzz_run_from_workspace();
    return 0;
}

static const char DELETED[] = " (deleted)";

static void check_map(const char *text, size_t len, const au_map *m) {
    CHECK(m->start < m->end);
    CHECK((m->perms & ~(AU_MAP_R | AU_MAP_W | AU_MAP_X | AU_MAP_P)) == 0);
    CHECK((m->flags & ~(AU_MAPF_DELETED | AU_MAPF_PSEUDO)) == 0);
    CHECK(m->dev_major <= 0xfff && m->dev_minor <= 0xfffff);
    if (m->path_len == 0) {
        CHECK(m->flags == 0);
        return;
    }
    CHECK(m->path_off <= len && m->path_len <= len - m->path_off);
    const char *p = text + m->path_off;
    CHECK(memchr(p, '\n', m->path_len) == NULL);
    CHECK(memchr(p, '\0', m->path_len) == NULL);
    CHECK(p[0] != ' ');
    CHECK(!!(m->flags & AU_MAPF_PSEUDO) == (p[0] != '/'));
    size_t after = len - m->path_off - m->path_len;
    size_t dl = sizeof DELETED - 1;
    int suffix = after >= dl && memcmp(p + m->path_len, DELETED, dl) == 0 &&
                 (after == dl || p[m->path_len + dl] == '\n');
    CHECK(!!(m->flags & AU_MAPF_DELETED) == suffix);
    uint32_t blen;
    const char *base = au_map_basename(text, m, &blen);
    CHECK(base >= p && base + blen == p + m->path_len);
    CHECK(memchr(base, '/', blen) == NULL);
}

/* Render m as the kernel would and parse it back. */
static void check_round_trip(const char *text, const au_map *m) {
    size_t cap = 128 + (size_t)m->path_len + sizeof DELETED;
    char *line = malloc(cap);
    CHECK(line != NULL);
    int n = snprintf(line, cap, "%08" PRIx64 "-%08" PRIx64 " %c%c%c%c %08" PRIx64
                     " %02x:%02x %" PRIu64 " ",
                     m->start, m->end, (m->perms & AU_MAP_R) ? 'r' : '-',
                     (m->perms & AU_MAP_W) ? 'w' : '-',
                     (m->perms & AU_MAP_X) ? 'x' : '-',
                     (m->perms & AU_MAP_P) ? 'p' : 's', m->offset,
                     (unsigned)m->dev_major, (unsigned)m->dev_minor, m->inode);
    CHECK(n > 0 && (size_t)n < 128);
    size_t len = (size_t)n;
    memcpy(line + len, text + m->path_off, m->path_len);
    len += m->path_len;
    if (m->flags & AU_MAPF_DELETED) {
        memcpy(line + len, DELETED, sizeof DELETED - 1);
        len += sizeof DELETED - 1;
    }
    au_map back;
    uint32_t nb, bad;
    CHECK(au_maps_parse(line, len, &back, 1, &nb, &bad) == AU_OK);
    CHECK(nb == 1 && bad == 0);
    CHECK(back.start == m->start && back.end == m->end);
    CHECK(back.offset == m->offset && back.inode == m->inode);
    CHECK(back.dev_major == m->dev_major && back.dev_minor == m->dev_minor);
    CHECK(back.perms == m->perms && back.flags == m->flags);
    CHECK(back.path_len == m->path_len);
    CHECK(memcmp(line + back.path_off, text + m->path_off, m->path_len) == 0);
    free(line);
}

static int always(void *ud, const char *text, const au_map *m) {
    (void)ud;
    (void)text;
    (void)m;
    return 1;
}

static void check_find(const char *text, const au_map *maps, uint32_t n,
                       au_map_pred_fn pred, void *ud) {
    uint32_t first = UINT32_MAX;
    for (uint32_t i = 0; i < n && first == UINT32_MAX; i++) {
        if (pred(ud, text, &maps[i])) first = i;
    }
    uint32_t got = au_maps_find(text, maps, n, 0, pred, ud);
    CHECK(got == first);
    uint32_t steps = 0;
    for (; got != UINT32_MAX; got = au_maps_find(text, maps, n, got + 1, pred, ud)) {
        CHECK(got < n && pred(ud, text, &maps[got]));
        CHECK(++steps <= n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    size_t lines = 0;
    for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
    if (size > 0 && data[size - 1] != '\n') lines++;

    /* The shortest valid line ("0-1 ---p 0 0:0 0") has 16 bytes, so this
     * holds every map; exact-size heap arrays let ASan see overruns. */
    uint32_t cap = (uint32_t)(size / 8 + 1);
    au_map *maps = malloc(cap * sizeof *maps);
    CHECK(maps != NULL);
    uint32_t n, bad;
    CHECK(au_maps_parse(text, size, maps, cap, &n, &bad) == AU_OK);
    CHECK(n <= cap && (size_t)n + bad <= lines);

    uint32_t last_path = 0;
    int have_path = 0;
    for (uint32_t i = 0; i < n; i++) {
        check_map(text, size, &maps[i]);
        check_round_trip(text, &maps[i]);
        if (maps[i].path_len > 0) {
            CHECK(!have_path || maps[i].path_off > last_path);
            last_path = maps[i].path_off;
            have_path = 1;
        }
    }

    if (n > 0) {
        uint32_t small = n / 2;
        au_map *part = malloc((small ? small : 1) * sizeof *part);
        CHECK(part != NULL);
        uint32_t pn, pbad;
        CHECK(au_maps_parse(text, size, small ? part : NULL, small, &pn,
                            &pbad) == AU_ERR_LIMIT);
        CHECK(pn == small && pbad <= bad);
        CHECK(small == 0 || memcmp(part, maps, small * sizeof *part) == 0);
        free(part);

        check_find(text, maps, n, always, NULL);
        check_find(text, maps, n, au_map_pred_basename_prefix, "libpython3.");
        check_find(text, maps, n, au_map_pred_basename_prefix, "");
        au_map_file_id id = au_map_file_id_of(&maps[n - 1]);
        check_find(text, maps, n, au_map_pred_file_id, &id);
    }
    free(maps);
    return 0;
}
