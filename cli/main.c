/*
 * asyncunwind: the command-line tool.
 *
 *   asyncunwind dump --pid PID [--format text|collapsed|tree|json] [--no-agent]
 *                    [--attempts N]
 *   asyncunwind tree --pid PID [--format text|json] [--no-agent] [--attempts N]
 *   asyncunwind snapshot --pid PID -o FILE [--format ...] [--no-agent]
 *   asyncunwind replay FILE [--format text|collapsed|tree|json]
 *   asyncunwind agent-path
 *   asyncunwind record [options] (--pid PID | -- COMMAND ARGS...)   (record.c)
 *   asyncunwind --version
 *
 * Exit codes are documented in docs/CLI.md and --help; each error prints
 * one line saying what failed and, where it helps, a second with a hint.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "asyncunwind.h"
#include "cli.h"

static const char usage[] =
    "usage: asyncunwind <command> [options]\n"
    "\n"
    "Read the Python stacks of a running CPython 3.9-3.15 process from outside,\n"
    "without stopping or changing it.  For threads running asyncio, one stack\n"
    "per leaf task: the thread's frames, then each task from the root task\n"
    "down to the leaf, with its coroutine frames.\n"
    "\n"
    "commands:\n"
    "  record (--pid PID | -- COMMAND [ARGS...])\n"
    "                            sample at an interval into a profile (flame graph,\n"
    "                            speedscope, collapsed); asyncunwind record --help\n"
    "  dump --pid PID            print one sample of every thread's stacks\n"
    "  tree --pid PID            print each thread's task tree: every task under\n"
    "                            its parent, edges marked [await], [strong] or\n"
    "                            [weak], a deadlock shown as a cycle\n"
    "  snapshot --pid PID -o FILE\n"
    "                            take one sample and record everything it read\n"
    "                            into FILE (docs/SNAPSHOT.md); prints the sample\n"
    "  replay FILE               print the sample recorded in FILE, offline\n"
    "  agent-path                print the directory of the in-target agent:\n"
    "                            PYTHONPATH=$(asyncunwind agent-path) python3 app.py\n"
    "                            lets asyncunwind show which task created which\n"
    "\n"
    "options:\n"
    "  -p, --pid PID             the process to read\n"
    "  -o, --output FILE         where snapshot writes (required for snapshot)\n"
    "  -f, --format FORMAT       text (default): per stack, outermost frame first;\n"
    "                            collapsed: one line per stack, root first,\n"
    "                            frames and [tasks] joined by ';', then a count of 1;\n"
    "                            tree: the task trees (what `tree` prints);\n"
    "                            json: the whole sample, tree included\n"
    "                            (docs/JSON.md)\n"
    "      --no-agent            ignore the agent's records (no 'created by' links)\n"
    "      --attempts N          dump, tree, snapshot: while a sample is partial\n"
    "                            (the process changed under the reads), take\n"
    "                            another, up to N samples (default 20) and 500 ms;\n"
    "                            1 takes exactly one\n"
    "  -h, --help                this help\n"
    "      --version             the program's version\n"
    "\n"
    "exit codes:\n"
    "  0  success\n"
    "  2  bad command line\n"
    "  3  no such process\n"
    "  4  permission denied (ptrace)\n"
    "  5  not a Python process, or an unsupported Python version\n"
    "  6  the target could not be read (it changed or exited meanwhile)\n"
    "  7  a file could not be read or written, or is not a valid snapshot\n"
    "  8  record: COMMAND could not be started\n"
    "(a sample still partial after every attempt is printed, with a warning:\n"
    "exit code 0)\n";

/* `asyncunwind COMMAND --help`: each command's own page (record's is in
 * record.c); the exit codes are the global page's. */
static const struct command_help {
    const char *command, *text;
} command_help[] = {
    {"dump",
     "usage: asyncunwind dump --pid PID [--format text|collapsed|tree|json]\n"
     "                        [--no-agent] [--attempts N]\n"
     "\n"
     "Print one sample of every thread of process PID: for a thread running\n"
     "asyncio, one stack per leaf task (the thread's frames, then each task from\n"
     "the root task down to the leaf, with its coroutine frames).\n"
     "\n"
     "  -p, --pid PID         the process to read\n"
     "  -f, --format FORMAT   text (default), collapsed (one line per stack, root\n"
     "                        first, ';'-joined, count 1), tree (the task trees),\n"
     "                        json (the whole sample, docs/JSON.md)\n"
     "      --no-agent        ignore the agent's records (no 'created by' links)\n"
     "      --attempts N      while a sample is partial (the process changed under\n"
     "                        the reads), take another, up to N (default 20) and\n"
     "                        500 ms; 1 takes exactly one\n"
     "\n"
     "exit codes: asyncunwind --help\n"},
    {"tree",
     "usage: asyncunwind tree --pid PID [--format text|json] [--no-agent]\n"
     "                        [--attempts N]\n"
     "\n"
     "Print each thread's task tree, in the spirit of python -m asyncio pstree:\n"
     "every task under its parent, each edge marked [await], [strong] or [weak]\n"
     "(docs/RESOLVER.md), a deadlock shown as a cycle.\n"
     "\n"
     "  -p, --pid PID         the process to read\n"
     "  -f, --format FORMAT   text (default) or json (docs/JSON.md)\n"
     "      --no-agent        ignore the agent's records (no weak links)\n"
     "      --attempts N      as for dump (default 20)\n"
     "\n"
     "exit codes: asyncunwind --help\n"},
    {"snapshot",
     "usage: asyncunwind snapshot --pid PID -o FILE [--format ...] [--no-agent]\n"
     "                            [--attempts N]\n"
     "\n"
     "Take one sample of process PID, print it as dump does, and record every\n"
     "byte the sample read into FILE (docs/SNAPSHOT.md), to replay offline.\n"
     "\n"
     "  -p, --pid PID         the process to read\n"
     "  -o, --output FILE     where the snapshot goes\n"
     "  -f, --format FORMAT   how the sample is printed, as for dump\n"
     "      --no-agent        ignore the agent's records\n"
     "      --attempts N      as for dump (default 20)\n"
     "\n"
     "exit codes: asyncunwind --help\n"},
    {"replay",
     "usage: asyncunwind replay FILE [--format text|collapsed|tree|json]\n"
     "\n"
     "Print the sample recorded in the snapshot FILE (asyncunwind snapshot),\n"
     "offline: the same reader runs on the recorded bytes.\n"
     "\n"
     "  -f, --format FORMAT   as for dump\n"
     "\n"
     "exit codes: asyncunwind --help\n"},
    {"agent-path",
     "usage: asyncunwind agent-path\n"
     "\n"
     "Print the directory of the in-target agent (docs/AGENT.md).  With it first\n"
     "on PYTHONPATH a Python 3.9-3.15 program records which task created which,\n"
     "and asyncunwind shows a task that nobody awaits under its creator:\n"
     "\n"
     "  PYTHONPATH=\"$(asyncunwind agent-path)\" python3 app.py\n"
     "\n"
     "(asyncunwind record -- python3 app.py does this for you.)\n"},
};

/* The help page for argv's command, or the global one. */
static const char *help_for(const char *command) {
    for (size_t i = 0; command && i < sizeof command_help / sizeof *command_help; i++)
        if (!strcmp(command, command_help[i].command)) return command_help[i].text;
    return usage;
}

const char cli_version[] = "asyncunwind " AU_VERSION_STRING " (CPython 3.9-3.15)";

static int exit_code(int status) {
    switch (status) {
    case AU_OK: return AU_EXIT_OK;
    case AU_ERR_NOPROC: return AU_EXIT_NOPROC;
    case AU_ERR_PERM: return AU_EXIT_PERM;
    case AU_ERR_NOTPYTHON:
    case AU_ERR_UNSUPPORTED: return AU_EXIT_NOTPYTHON;
    case AU_ERR_IO:
    case AU_ERR_FORMAT:
    case AU_ERR_LIMIT: return AU_EXIT_FILE;
    default: return AU_EXIT_READ;
    }
}

/* Whether this process has CAP_SYS_PTRACE in its effective set: 1, 0,
 * or -1 when /proc/self/status does not say. */
static int has_ptrace_cap(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int has = -1;
    while (has < 0 && fgets(line, sizeof line, f)) {
        unsigned long long caps;
        if (sscanf(line, "CapEff: %llx", &caps) == 1) has = (int)(caps >> 19 & 1); /* CAP_SYS_PTRACE */
    }
    fclose(f);
    return has;
}

/* The hint for a permission error: the core's names the usual ways in,
 * which say nothing to someone who is root already. */
static const char *perm_hint(void) {
    if (geteuid() != 0) return au_status_hint(AU_ERR_PERM);
    switch (has_ptrace_cap()) {
    case 0:
        return "you are root, but without CAP_SYS_PTRACE, which reading a process that holds "
               "capabilities needs: keep it (in a container: --cap-add SYS_PTRACE; with "
               "setpriv or capsh: do not drop sys_ptrace)";
    case 1:
        return "you are root with CAP_SYS_PTRACE: the process likely belongs to another user "
               "namespace, such as a container's (run asyncunwind inside it), or a security "
               "module (Yama's ptrace_scope 3, SELinux, AppArmor) forbids reading it";
    default: return au_status_hint(AU_ERR_PERM);
    }
}

/* Print "asyncunwind: WHAT: STATUS" and the status's hint, if any; returns
 * the exit code for status. */
int cli_fail(const char *what, int status) {
    fprintf(stderr, "asyncunwind: %s: %s\n", what, au_status_str(status));
    const char *hint = status == AU_ERR_PERM ? perm_hint() : au_status_hint(status);
    if (hint) fprintf(stderr, "hint: %s\n", hint);
    return exit_code(status);
}

const char *cli_bad_option(int c, int argc, char **argv, char *buf) {
    if (c == ':') return argc > 0 ? argv[argc - 1] : "?";
    if (optopt > ' ' && optopt < 127) {
        buf[0] = '-';
        buf[1] = (char)optopt;
        buf[2] = 0;
        return buf;
    }
    return optind >= 1 && optind <= argc ? argv[optind - 1] : "?";
}

int cli_parse_pid(const char *s, int *pid) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0 || v > 0x7fffffff) return -1;
    *pid = (int)v;
    return 0;
}

static int usage_error(const char *msg) {
    fprintf(stderr, "asyncunwind: %s\n(see asyncunwind --help)\n", msg);
    return AU_EXIT_USAGE;
}

/* A usage error about one argument, named. */
static int usage_error_arg(const char *msg, const char *arg) {
    fprintf(stderr, "asyncunwind: %s '%s'\n(see asyncunwind --help)\n", msg, arg);
    return AU_EXIT_USAGE;
}

typedef struct options {
    const char *command, *output, *file;
    int pid;
    int format;
    int no_agent;
    unsigned attempts;
} options;

static int parse(int argc, char **argv, options *o) {
    static const struct option longs[] = {
        {"pid", required_argument, NULL, 'p'},    {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'},
        {"no-agent", no_argument, NULL, 'A'},     {"attempts", required_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->format = CLI_FORMAT_TEXT;
    if (argc < 2) return usage_error("missing command");
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, stdout);
        return -1;
    }
    o->command = argv[1];
    optind = 2;
    opterr = 0;
    int c;
    char sb[3];
    while ((c = getopt_long(argc, argv, ":p:o:f:h", longs, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (cli_parse_pid(optarg, &o->pid)) return usage_error("--pid needs a positive process id");
            break;
        case 'o': o->output = optarg; break;
        case 'f':
            if (!strcmp(optarg, "text")) o->format = CLI_FORMAT_TEXT;
            else if (!strcmp(optarg, "collapsed")) o->format = CLI_FORMAT_COLLAPSED;
            else if (!strcmp(optarg, "tree")) o->format = CLI_FORMAT_TREE;
            else if (!strcmp(optarg, "json")) o->format = CLI_FORMAT_JSON;
            else return usage_error("--format is text, collapsed, tree or json");
            break;
        case 'A': o->no_agent = 1; break;
        case 'N': {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || *end || optarg[0] == '-' || v < 1 || v > 1000)
                return usage_error("--attempts needs a number from 1 to 1000");
            o->attempts = (unsigned)v;
            break;
        }
        case 'h': fputs(help_for(o->command), stdout); return -1;
        case ':': return usage_error_arg("a value is missing after", cli_bad_option(c, argc, argv, sb));
        default: return usage_error_arg("unknown option", cli_bad_option(c, argc, argv, sb));
        }
    }
    if (optind < argc) o->file = argv[optind++];
    if (optind < argc) return usage_error_arg("too many arguments, from", argv[optind]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        puts(cli_version);
        return AU_EXIT_OK;
    }
    /* record has options of its own, and a COMMAND after "--". */
    if (argc >= 2 && !strcmp(argv[1], "record")) return cli_record(argc - 1, argv + 1);
    options o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? AU_EXIT_OK : rc;
    if (!strcmp(o.command, "tree")) {
        /* tree is dump with the tree as its text form */
        if (o.format == CLI_FORMAT_TEXT || o.format == CLI_FORMAT_TREE) o.format = CLI_FORMAT_TREE;
        else if (o.format != CLI_FORMAT_JSON) return usage_error("tree's --format is text or json");
        o.command = "dump";
    }
    if (!strcmp(o.command, "dump") || !strcmp(o.command, "snapshot")) {
        int snap = o.command[0] == 's';
        if (!o.pid) return usage_error("--pid is required");
        if (o.file) return usage_error_arg("unexpected argument", o.file);
        if (snap && !o.output) return usage_error("snapshot needs -o FILE");
        if (!snap && o.output) return usage_error("-o is for snapshot");
        return cli_live(o.pid, o.format, snap ? o.output : NULL, o.no_agent,
                        o.attempts ? o.attempts : CLI_RETRY_ATTEMPTS);
    }
    if (!strcmp(o.command, "replay")) {
        if (!o.file) return usage_error("replay needs a snapshot FILE");
        if (o.pid || o.output || o.no_agent || o.attempts)
            return usage_error("replay takes only FILE and --format");
        return cli_replay(o.file, o.format);
    }
    if (!strcmp(o.command, "agent-path")) {
        if (o.pid || o.output || o.file || o.no_agent || o.attempts) return usage_error("agent-path takes no arguments");
        return cli_agent_path();
    }
    return usage_error("unknown command (record, dump, tree, snapshot, replay, agent-path)");
}
