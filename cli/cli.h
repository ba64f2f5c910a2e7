/* The asyncunwind CLI's parts: main.c parses the command line, sample.c
 * takes and prints samples, record.c records a profile. */
#ifndef ASYNCUNWIND_CLI_H
#define ASYNCUNWIND_CLI_H

enum { CLI_FORMAT_TEXT, CLI_FORMAT_COLLAPSED, CLI_FORMAT_TREE, CLI_FORMAT_JSON };

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
/* --pid's value: a decimal process id from 1 to INT_MAX, nothing after it.
 * 0 with *pid set, or -1 (*pid untouched); the caller says what failed. */
int cli_parse_pid(const char *s, int *pid);

/* The option getopt_long just refused (c: its '?' or ':', with opterr 0),
 * as the user wrote it: a value is missing only after the last argument;
 * an unknown short option is "-x" (buf, 3 bytes), a long one its
 * argument. */
const char *cli_bad_option(int c, int argc, char **argv, char *buf);
/* dump (output == NULL) or snapshot to output; no_agent ignores the
 * agent's records; up to `attempts` samples until one is not partial
 * (cli_sample_consistent). */
int cli_live(int pid, int format, const char *output, int no_agent, unsigned attempts);
int cli_replay(const char *file, int format);
int cli_agent_path(void);
/* Write the agent out if needed and put its directory in dir (cap bytes,
 * PATH_MAX is enough); an exit code, having said what failed. */
int cli_agent_dir(char *dir, size_t cap);
/* `asyncunwind record ...`: argv[0] is "record". */
int cli_record(int argc, char **argv);
/* The program's version, for --version. */
extern const char cli_version[];

/* Retrying a partial sample (consistent.c): at most `attempts` samples
 * (CLI_RETRY_ATTEMPTS by default) within CLI_RETRY_MS milliseconds,
 * pauses included; docs/CLI.md. */
#define CLI_RETRY_ATTEMPTS 20u
#define CLI_RETRY_MS 500u

#include "asyncunwind.h"

typedef struct cli_retry {
    unsigned attempts; /* samples taken */
    unsigned ms;       /* time they took, pauses included */
    int partial;       /* the last one was still partial */
} cli_retry;

/* A thread's frames or the tasks could not all be read (torn by the
 * target changing under the reads). */
int cli_sample_partial(const au_sample *smp);
/* Warns on stderr that s's last sample, smp, was cut at a limit, naming
 * the limits (AU_LIMIT_*); nothing when it was not. */
void cli_warn_truncated(const au_sampler *s, const au_sample *smp);

/* The limits the CLI samples with (the defaults of au_sampler_options and
 * au_pyreader_limits), in words, for a sample they cut (docs/CLI.md,
 * "Limits"); returns buf. */
const char *cli_limits_text(char *buf, size_t size);
/* Sample s until a sample is not partial, or the bounds are reached; *out
 * is the last sample.  Returns au_sampler_sample's status (only
 * AU_ERR_READ is retried among errors). */
int cli_sample_consistent(au_sampler *s, unsigned attempts, const au_sample **out,
                          cli_retry *report);

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
