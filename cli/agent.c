/*
 * `asyncunwind agent-path`: write the in-target agent (the Python files of
 * agent/, carried in this binary by tools/embed.c) to a directory and print
 * it, so that
 *     PYTHONPATH=$(asyncunwind agent-path) python3 app.py
 *
 * loads it (docs/AGENT.md).  The binary is all a user installs; the files
 * come out of it, so they always match the reader that will read their
 * records.
 *
 * The directory is named after a digest of the files, under the user's
 * cache directory ($XDG_CACHE_HOME/asyncunwind, else ~/.cache/asyncunwind,
 * else /tmp/asyncunwind-UID, created 0700 and checked to be the user's
 * own): a build with different files gets a new directory, and two runs at
 * once are safe (each writes a private temporary directory and renames it
 * into place; the loser keeps the winner's, which is identical).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define MARKER ".complete"

static int write_file(const char *dir, const cli_embedded_file *f) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, f->name) >= (int)sizeof path) return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    size_t at = 0;
    while (at < f->len) {
        ssize_t n = write(fd, f->data + at, f->len - at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        at += (size_t)n;
    }
    return close(fd);
}

/* A directory that is ours: created if missing (0700), refused if it is a
 * symlink or another user's. */
static int own_dir(const char *path) {
    if (mkdir(path, 0700) != 0 && errno != EEXIST) return -1;
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) return -1;
    return 0;
}

/* The parent of the agent's directories, into base. */
static int cache_base(char *base, size_t cap) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char tmp[PATH_MAX];
    if (xdg && xdg[0] == '/') {
        mkdir(xdg, 0700);
        if (snprintf(base, cap, "%s/asyncunwind", xdg) < (int)cap && own_dir(base) == 0) return 0;
    }
    if (home && home[0] == '/') {
        snprintf(tmp, sizeof tmp, "%s/.cache", home);
        mkdir(tmp, 0700);
        if (snprintf(base, cap, "%s/asyncunwind", tmp) < (int)cap && own_dir(base) == 0) return 0;
    }
    if (snprintf(base, cap, "/tmp/asyncunwind-%u", (unsigned)geteuid()) < (int)cap && own_dir(base) == 0)
        return 0;
    return -1;
}

static void remove_dir(const char *dir) {
    char path[PATH_MAX + 64];
    for (const cli_embedded_file *f = cli_agent_files; f->name; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, f->name);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/%s", dir, MARKER);
    unlink(path);
    rmdir(dir);
}

int cli_agent_dir(char *dir, size_t cap) {
    /* base is at most PATH_MAX - 64 bytes (cache_base checks), so every
     * name below fits. */
    char base[PATH_MAX - 64], tmp[PATH_MAX], marker[PATH_MAX + 16];
    if (cache_base(base, sizeof base) != 0) {
        fprintf(stderr, "asyncunwind: no directory to write the agent to\n"
                        "hint: set XDG_CACHE_HOME or HOME to a directory you own\n");
        return AU_EXIT_FILE;
    }
    if (snprintf(dir, cap, "%s/agent-%s", base, cli_agent_files_hash) >= (int)cap ||
        snprintf(marker, sizeof marker, "%s/%s", dir, MARKER) >= (int)sizeof marker) {
        fprintf(stderr, "asyncunwind: the cache path is too long: %s\n", base);
        return AU_EXIT_FILE;
    }
    struct stat st;
    if (stat(marker, &st) != 0) {
        /* Write everything into a private directory, then rename it. */
        snprintf(tmp, sizeof tmp, "%s/.agent-%s.%ld", base, cli_agent_files_hash, (long)getpid());
        remove_dir(tmp);
        int ok = mkdir(tmp, 0755) == 0;
        for (const cli_embedded_file *f = cli_agent_files; ok && f->name; f++) ok = write_file(tmp, f) == 0;
        char m[PATH_MAX + 16];
        snprintf(m, sizeof m, "%s/%s", tmp, MARKER);
        int fd = ok ? open(m, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
        ok = fd >= 0 && close(fd) == 0;
        if (ok && rename(tmp, dir) != 0 && stat(marker, &st) != 0) ok = 0;
        if (!ok) {
            int e = errno;
            remove_dir(tmp);
            fprintf(stderr, "asyncunwind: cannot write the agent to %s: %s\n", dir, strerror(e));
            return AU_EXIT_FILE;
        }
        remove_dir(tmp); /* when another run renamed its copy first */
    }
    return AU_EXIT_OK;
}

int cli_agent_path(void) {
    char dir[PATH_MAX];
    int rc = cli_agent_dir(dir, sizeof dir);
    if (rc) return rc;
    printf("%s\n", dir);
    return fflush(stdout) == 0 ? AU_EXIT_OK : AU_EXIT_FILE;
}
