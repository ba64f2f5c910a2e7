/*
 * Unit tests of the /proc/PID/maps reader and parser (core/process/au_procmaps.h):
 * exact fields of real-world lines, malformed input, the map limit, the
 * find helpers, and reading live maps (this process's and a child's).
 */
#define _GNU_SOURCE /* fork, kill, readlink under -std=c11 */

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "au_internal.h"
#include "au_procmaps.h"

/* Lines as this machine's kernel prints them (padding included). */
static const char REAL[] =
    "55afd4608000-55afd460a000 r--p 00000000 fe:00 247134                     /usr/bin/cat\n"
    "55afd460a000-55afd460f000 r-xp 00002000 fe:00 247134                     /usr/bin/cat\n"
    "55afeba92000-55afebab3000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f1a8d060000-7f1a8d082000 rw-p 00000000 00:00 0 \n"
    "7f1a8d0e3000-7f1a8d109000 r--p 00000000 fe:00 332835                     /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "7f1a8d2c8000-7f1a8d2cf000 r--s 00000000 fe:00 332280                     /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache\n"
    "7f1a8d300000-7f1a8d301000 r-xp 00001000 103:02 9876543210                /opt/My App/lib/libpython3.12.so.1.0 (deleted)\n"
    "7f1a8d400000-7f1a8d401000 rw-p 00000000 00:00 0                          [anon:py arena]\n"
    "7ffd2c9b1000-7ffd2c9d2000 rw-p 00000000 00:00 0                          [stack]\n"
    "7ffd2c9f6000-7ffd2c9f8000 r-xp 00000000 00:00 0                          [vdso]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
    "7f1a8d500000-7f1a8d501000 ---p 00000000 00:00 0";

static int path_is(const char *text, const au_map *m, const char *want) {
    return m->path_len == strlen(want) &&
           memcmp(text + m->path_off, want, m->path_len) == 0;
}

static void test_real_lines(void **state) {
    (void)state;
    au_map maps[16];
    uint32_t n = 99, bad = 99;
    assert_int_equal(au_maps_parse(REAL, sizeof REAL - 1, maps, 16, &n, &bad),
                     AU_OK);
    assert_int_equal(n, 12);
    assert_int_equal(bad, 0);

    /* A file map: every field. */
    assert_true(maps[0].start == 0x55afd4608000ull);
    assert_true(maps[0].end == 0x55afd460a000ull);
    assert_int_equal(maps[0].perms, AU_MAP_R | AU_MAP_P);
    assert_true(maps[0].offset == 0);
    assert_int_equal(maps[0].dev_major, 0xfe);
    assert_int_equal(maps[0].dev_minor, 0);
    assert_true(maps[0].inode == 247134);
    assert_int_equal(maps[0].flags, 0);
    assert_true(path_is(REAL, &maps[0], "/usr/bin/cat"));

    assert_int_equal(maps[1].perms, AU_MAP_R | AU_MAP_X | AU_MAP_P);
    assert_true(maps[1].offset == 0x2000);

    /* Pseudo-paths. */
    assert_true(path_is(REAL, &maps[2], "[heap]"));
    assert_int_equal(maps[2].flags, AU_MAPF_PSEUDO);
    assert_int_equal(maps[2].perms, AU_MAP_R | AU_MAP_W | AU_MAP_P);

    /* Anonymous, with the kernel's trailing space. */
    assert_int_equal(maps[3].path_len, 0);
    assert_int_equal(maps[3].flags, 0);
    assert_true(maps[3].inode == 0);

    /* Shared mapping: no P bit. */
    assert_int_equal(maps[5].perms, AU_MAP_R);

    /* Deleted file with spaces in its path, 3-digit major, 10-digit inode:
     * the suffix is stripped and flagged. */
    assert_true(path_is(REAL, &maps[6], "/opt/My App/lib/libpython3.12.so.1.0"));
    assert_int_equal(maps[6].flags, AU_MAPF_DELETED);
    assert_int_equal(maps[6].dev_major, 0x103);
    assert_int_equal(maps[6].dev_minor, 2);
    assert_true(maps[6].inode == 9876543210ull);

    assert_true(path_is(REAL, &maps[7], "[anon:py arena]"));
    assert_true(path_is(REAL, &maps[8], "[stack]"));
    assert_true(path_is(REAL, &maps[9], "[vdso]"));
    assert_int_equal(maps[9].flags, AU_MAPF_PSEUDO);

    /* The top of the address space. */
    assert_true(maps[10].start == 0xffffffffff600000ull);
    assert_true(maps[10].end == 0xffffffffff601000ull);
    assert_int_equal(maps[10].perms, AU_MAP_X | AU_MAP_P);

    /* Last line: no newline, no trailing space, no path, no permissions. */
    assert_int_equal(maps[11].path_len, 0);
    assert_int_equal(maps[11].perms, AU_MAP_P);
    assert_true(maps[11].end == 0x7f1a8d501000ull);
}

static void test_malformed_lines(void **state) {
    (void)state;
    static const char text[] =
        "garbage\n"
        "1000-2000 r-xp 00000000 08:01 42 /ok/one\n"          /* good */
        "1000-\n"
        "2000-1000 r-xp 00000000 08:01 42 /inverted\n"       /* start > end */
        "1000-1000 r-xp 00000000 08:01 42 /empty\n"          /* start == end */
        "1000-2000 rwzp 00000000 08:01 42 /bad/perms\n"
        "1000-2000 r-x 00000000 08:01 42 /short/perms\n"
        "1000-2000 r-xq 00000000 08:01 42 /bad/share\n"
        "10000000000000000-10000000000000001 r--p 0 08:01 1 /overflow\n"
        "1000-2000 r--p 00000000 08:01 99999999999999999999 /inode/overflow\n"
        "1000-2000 r--p 00000000 0801 42 /no/colon\n"
        "1000-2000 r--p 00000000 1000:01 42 /major/too/wide\n"
        "1000-2000 r--p 00000000 08:01 /no/inode\n"
        "1000-2000 r--p 00000000 08:01 42/glued\n"
        "1000-2000\tr--p 00000000 08:01 42 /tab\n"
        "\n"                                                 /* ignored */
        "3000-4000 rw-p 00001000 08:01 43 /ok/two\n"          /* good */
        "5000-6000 rw-p 00000000 08:01 44 /nul\0inside\n"
        "\r\n"
        "7000-8000 r--p 00000000 00:00 0";                   /* good */
    au_map maps[8];
    uint32_t n, bad;
    assert_int_equal(au_maps_parse(text, sizeof text - 1, maps, 8, &n, &bad),
                     AU_OK);
    assert_int_equal(n, 3);
    assert_int_equal(bad, 16);
    assert_true(path_is(text, &maps[0], "/ok/one"));
    assert_true(path_is(text, &maps[1], "/ok/two"));
    assert_true(maps[1].offset == 0x1000);
    assert_true(maps[2].start == 0x7000 && maps[2].path_len == 0);
}

static void test_edge_inputs(void **state) {
    (void)state;
    au_map maps[4];
    uint32_t n, bad;
    /* Empty text, NULL text with len 0, NULL bad_lines. */
    assert_int_equal(au_maps_parse("", 0, maps, 4, &n, &bad), AU_OK);
    assert_int_equal(n, 0);
    assert_int_equal(au_maps_parse(NULL, 0, NULL, 0, &n, NULL), AU_OK);
    assert_int_equal(au_maps_parse(NULL, 1, maps, 4, &n, &bad), AU_ERR_ARG);
    assert_int_equal(au_maps_parse("x", 1, NULL, 4, &n, &bad), AU_ERR_ARG);
    assert_int_equal(au_maps_parse("x", 1, maps, 4, NULL, &bad), AU_ERR_ARG);
    /* Only newlines. */
    assert_int_equal(au_maps_parse("\n\n\n", 3, maps, 4, &n, &bad), AU_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bad, 0);
    /* " (deleted)" alone is a path, not a suffix of an empty one. */
    static const char del[] = "1000-2000 r--p 0 08:01 5  (deleted)\n";
    assert_int_equal(au_maps_parse(del, sizeof del - 1, maps, 4, &n, &bad),
                     AU_OK);
    assert_int_equal(n, 1);
    assert_true(path_is(del, &maps[0], "(deleted)"));
    assert_int_equal(maps[0].flags, AU_MAPF_PSEUDO);
    /* Uppercase hex and trailing spaces without a path. */
    static const char up[] = "ABC000-ABD000 r--p 0000F000 FE:0A 7    \n";
    assert_int_equal(au_maps_parse(up, sizeof up - 1, maps, 4, &n, &bad),
                     AU_OK);
    assert_int_equal(n, 1);
    assert_true(maps[0].start == 0xabc000 && maps[0].offset == 0xf000);
    assert_int_equal(maps[0].dev_minor, 0xa);
    assert_int_equal(maps[0].path_len, 0);
}

static void test_limit(void **state) {
    (void)state;
    au_map maps[3];
    uint32_t n, bad;
    /* 12 maps into 3 slots: the first 3 are kept and reported. */
    assert_int_equal(au_maps_parse(REAL, sizeof REAL - 1, maps, 3, &n, &bad),
                     AU_ERR_LIMIT);
    assert_int_equal(n, 3);
    assert_true(path_is(REAL, &maps[2], "[heap]"));
    /* Exactly cap maps is not a limit. */
    static const char two[] = "1000-2000 r--p 0 0:0 0\nx\n3000-4000 r--p 0 0:0 0\n";
    assert_int_equal(au_maps_parse(two, sizeof two - 1, maps, 2, &n, &bad),
                     AU_OK);
    assert_int_equal(n, 2);
    assert_int_equal(bad, 1);
    /* cap 0: the first map already does not fit. */
    assert_int_equal(au_maps_parse(two, sizeof two - 1, NULL, 0, &n, &bad),
                     AU_ERR_LIMIT);
    assert_int_equal(n, 0);
    /* Bad lines only: no map needs a slot. */
    assert_int_equal(au_maps_parse("x\ny", 3, NULL, 0, &n, &bad), AU_OK);
    assert_int_equal(bad, 2);
}

static void test_find(void **state) {
    (void)state;
    au_map maps[16];
    uint32_t n, bad;
    assert_int_equal(au_maps_parse(REAL, sizeof REAL - 1, maps, 16, &n, &bad),
                     AU_OK);
    uint32_t blen;
    const char *base = au_map_basename(REAL, &maps[6], &blen);
    assert_int_equal(blen, strlen("libpython3.12.so.1.0"));
    assert_memory_equal(base, "libpython3.12.so.1.0", blen);
    base = au_map_basename(REAL, &maps[2], &blen); /* no slash */
    assert_int_equal(blen, 6);
    base = au_map_basename(REAL, &maps[3], &blen); /* anonymous */
    assert_int_equal(blen, 0);

    assert_int_equal(au_maps_find(REAL, maps, n, 0, au_map_pred_basename_prefix,
                                  "libpython3."),
                     6);
    assert_int_equal(au_maps_find(REAL, maps, n, 7, au_map_pred_basename_prefix,
                                  "libpython3."),
                     UINT32_MAX);
    /* Pseudo-paths never match, even when the prefix does. */
    assert_int_equal(au_maps_find(REAL, maps, n, 0, au_map_pred_basename_prefix,
                                  "[heap"),
                     UINT32_MAX);
    /* Iterate every map of /usr/bin/cat by its file id. */
    au_map_file_id id = au_map_file_id_of(&maps[0]);
    uint32_t seen = 0;
    for (uint32_t i = au_maps_find(REAL, maps, n, 0, au_map_pred_file_id, &id);
         i != UINT32_MAX;
         i = au_maps_find(REAL, maps, n, i + 1, au_map_pred_file_id, &id)) {
        assert_true(path_is(REAL, &maps[i], "/usr/bin/cat"));
        seen++;
    }
    assert_int_equal(seen, 2);
    /* Anonymous maps have inode 0 and never match, even an id of 0:0:0. */
    au_map_file_id zero = {0, 0, 0};
    assert_int_equal(au_maps_find(REAL, maps, n, 0, au_map_pred_file_id, &zero),
                     UINT32_MAX);
}

/* A whole maps file, read with a generous buffer. */
static char *read_all_maps(int pid, size_t *len) {
    size_t cap = 1 << 22;
    char *buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(au_maps_read(pid, buf, cap, len), AU_OK);
    assert_true(*len > 0 && *len < cap);
    return buf;
}

__attribute__((noinline)) int procmaps_test_marker(void) { return 42; }

static void test_self_maps(void **state) {
    (void)state;
    size_t len;
    char *text = read_all_maps(getpid(), &len);
    uint32_t cap = 4096, n, bad;
    au_map *maps = calloc(cap, sizeof *maps);
    assert_non_null(maps);
    assert_int_equal(au_maps_parse(text, len, maps, cap, &n, &bad), AU_OK);
    assert_int_equal(bad, 0);
    assert_true(n > 3);

    /* Find our executable by device and inode and check that the code of
     * this very test lies in one of its executable maps. */
    au_map_file_id id;
    assert_int_equal(au_proc_exe_id(getpid(), &id), AU_OK);
    uint64_t pc = (uint64_t)(uintptr_t)&procmaps_test_marker;
    uint32_t found = 0, covering = 0;
    for (uint32_t i = au_maps_find(text, maps, n, 0, au_map_pred_file_id, &id);
         i != UINT32_MAX;
         i = au_maps_find(text, maps, n, i + 1, au_map_pred_file_id, &id)) {
        found++;
        if ((maps[i].perms & AU_MAP_X) && pc >= maps[i].start &&
            pc < maps[i].end) {
            covering++;
        }
    }
    assert_true(found >= 1);
    assert_int_equal(covering, 1);

    /* Its path in the maps is the one /proc/self/exe names. */
    char exe[4096];
    ssize_t elen = readlink("/proc/self/exe", exe, sizeof exe);
    assert_true(elen > 0 && (size_t)elen < sizeof exe);
    uint32_t first = au_maps_find(text, maps, n, 0, au_map_pred_file_id, &id);
    assert_int_equal(maps[first].path_len, (uint32_t)elen);
    assert_memory_equal(text + maps[first].path_off, exe, (size_t)elen);

    /* libc is mapped, found by its basename. */
    assert_int_not_equal(
        au_maps_find(text, maps, n, 0, au_map_pred_basename_prefix, "libc."),
        UINT32_MAX);
    free(maps);
    free(text);
}

/* A child that only waits, so its maps do not change while we read. */
static pid_t spawn_sleeper(void) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (;;) pause();
    }
    return pid;
}

static void reap(pid_t pid) {
    kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
}

static void test_read_bounds(void **state) {
    (void)state;
    pid_t child = spawn_sleeper();
    size_t len;
    char *full = read_all_maps(child, &len);
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    size_t got;

    /* Exactly the file's size fits; one byte less does not. */
    assert_int_equal(au_maps_read(child, buf, len, &got), AU_OK);
    assert_int_equal(got, len);
    assert_memory_equal(buf, full, len);
    assert_int_equal(au_maps_read(child, buf, len - 1, &got), AU_ERR_LIMIT);
    assert_int_equal(got, len - 1);
    assert_memory_equal(buf, full, len - 1);
    /* A tiny buffer: still bounded, still the file's first bytes. */
    assert_int_equal(au_maps_read(child, buf, 7, &got), AU_ERR_LIMIT);
    assert_int_equal(got, 7);
    assert_memory_equal(buf, full, 7);
    assert_int_equal(au_maps_read(child, NULL, 0, &got), AU_ERR_LIMIT);
    assert_int_equal(got, 0);

    /* The child's executable is ours (fork), and findable the same way. */
    au_map_file_id mine, its;
    assert_int_equal(au_proc_exe_id(getpid(), &mine), AU_OK);
    assert_int_equal(au_proc_exe_id(child, &its), AU_OK);
    assert_true(mine.inode == its.inode && mine.dev_major == its.dev_major &&
                mine.dev_minor == its.dev_minor);

    reap(child);
    /* Reaped: the process is gone (its pid is not reused this quickly). */
    assert_int_equal(au_maps_read(child, buf, len, &got), AU_ERR_NOPROC);
    assert_int_equal(au_proc_exe_id(child, &its), AU_ERR_NOPROC);
    free(buf);
    free(full);
}

static void test_read_errors(void **state) {
    (void)state;
    char buf[16];
    size_t got;
    au_map_file_id id;
    assert_int_equal(au_maps_read(0, buf, sizeof buf, &got), AU_ERR_ARG);
    assert_int_equal(au_maps_read(-5, buf, sizeof buf, &got), AU_ERR_ARG);
    assert_int_equal(au_maps_read(getpid(), buf, sizeof buf, NULL), AU_ERR_ARG);
    assert_int_equal(au_maps_read(getpid(), NULL, 5, &got), AU_ERR_ARG);
    assert_int_equal(au_proc_exe_id(0, &id), AU_ERR_ARG);
    assert_int_equal(au_proc_exe_id(getpid(), NULL), AU_ERR_ARG);
    /* Larger than any pid_max (2^22). */
    assert_int_equal(au_maps_read(1 << 30, buf, sizeof buf, &got),
                     AU_ERR_NOPROC);

    assert_int_equal(au_status_from_errno(ESRCH, AU_ERR_IO), AU_ERR_NOPROC);
    assert_int_equal(au_status_from_errno(ENOENT, AU_ERR_IO), AU_ERR_NOPROC);
    assert_int_equal(au_status_from_errno(EPERM, AU_ERR_IO), AU_ERR_PERM);
    assert_int_equal(au_status_from_errno(EACCES, AU_ERR_IO), AU_ERR_PERM);
    assert_int_equal(au_status_from_errno(EIO, AU_ERR_IO), AU_ERR_IO);
    assert_int_equal(au_status_from_errno(EMFILE, AU_ERR_IO), AU_ERR_IO);
    assert_int_equal(au_status_from_errno(EFAULT, AU_ERR_READ), AU_ERR_READ);
    assert_int_equal(au_status_from_errno(ENOMEM, AU_ERR_IO), AU_ERR_NOMEM);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_lines),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_edge_inputs),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_self_maps),
        cmocka_unit_test(test_read_bounds),
        cmocka_unit_test(test_read_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
