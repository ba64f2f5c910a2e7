/* The asyncunwind CLI's parts: main.c parses the command line, sample.c
 * takes and prints samples, record.c records a profile. */
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
    AU_EXIT_COMMAND = 8,
};

#include <stddef.h>

int cli_fail(const char *what, int status);
/* dump (output == NULL) or snapshot to output; no_agent ignores the
 * agent's records. */
int cli_live(int pid, int format, const char *output, int no_agent);
int cli_replay(const char *file, int format);
int cli_agent_path(void);
/* Write the agent out if needed and put its directory in dir (cap bytes,
 * PATH_MAX is enough); an exit code, having said what failed. */
int cli_agent_dir(char *dir, size_t cap);
/* `asyncunwind record ...`: argv[0] is "record". */
int cli_record(int argc, char **argv);
/* The program's version, for --version. */
extern const char cli_version[];

/* A file carried in the binary (tools/embed.c). */
typedef struct cli_embedded_file {
    const char *name;
    const unsigned char *data;
    size_t len;
} cli_embedded_file;

/* The agent's files (the .py files of agent/), and a digest of them. */
extern const cli_embedded_file cli_agent_files[];
extern const char cli_agent_files_hash[];

#endif
