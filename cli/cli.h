/* The asyncunwind CLI's parts: main.c parses the command line, sample.c
 * takes and prints samples. */
#ifndef ASYNCUNWIND_CLI_H
#define ASYNCUNWIND_CLI_H

enum { CLI_FORMAT_TEXT, CLI_FORMAT_COLLAPSED };

/* Exit codes (docs/CLI.md). */
enum {
    AU_EXIT_OK = 0,
    AU_EXIT_USAGE = 2,
    AU_EXIT_NOPROC = 3,
    AU_EXIT_PERM = 4,
    AU_EXIT_NOTPYTHON = 5,
    AU_EXIT_READ = 6,
    AU_EXIT_FILE = 7,
};

int cli_fail(const char *what, int status);
/* dump (output == NULL) or snapshot to output. */
int cli_live(int pid, int format, const char *output);
int cli_replay(const char *file, int format);

#endif
