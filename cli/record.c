/*
 * `asyncunwind record`: sample a process (or a command it starts, and with
 * --subprocesses every process under it) at a fixed interval into one
 * profile, and write the profile when the record ends.
 *
 * The loop itself is the core's (au_session); this file is what only a
 * command line needs: options, starting the command with the agent on its
 * PYTHONPATH, signals, the status line and the statistics.  Choices the
 * issue left open are in docs/CLI.md ("record").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asyncunwind.h"
#include "cli.h"

/* 1 ms: ten times py-spy's 100 Hz for the same run length, a tenth of
 * austin's 100 us rate, and a sample costs a few percent of it. */
#define DEFAULT_INTERVAL_NS 1000000ull
/* How long a started command has to end after SIGTERM, once the record is
 * over, before SIGKILL. */
#define TERM_GRACE_MS 2000

static const char record_usage[] =
    "usage: asyncunwind record [options] (--pid PID | -- COMMAND [ARGS...])\n"
    "\n"
    "Sample a Python process at a fixed interval and write a profile of its\n"
    "task-aware stacks: every leaf task's stack gets each sample (wall time),\n"
    "or with --cpu only what runs on a CPU.  With -- COMMAND, start it with the\n"
    "agent on PYTHONPATH (so tasks show under the task that created them) and\n"
    "record until it exits.  Ctrl-C (SIGINT) or SIGTERM ends the record; the\n"
    "profile is written either way, and statistics go to stderr.\n"
    "\n"
    "options:\n"
    "  -p, --pid PID          record a running process\n"
    "  -o, --output FILE      where the profile goes (default: stdout, collapsed);\n"
    "                         '-' is stdout.  Up to 4 times: the same profile in\n"
    "                         each file, in the format of its extension\n"
    "  -f, --format FORMAT    collapsed: one line per stack with its count, for\n"
    "                         flamegraph.pl, inferno, speedscope;\n"
    "                         speedscope: speedscope's JSON;\n"
    "                         svg: an interactive flame graph.\n"
    "                         Default: from FILE's extension (.svg, .json), else\n"
    "                         collapsed\n"
    "  -i, --interval TIME    between samples (default 1ms); a number with ns, us,\n"
    "                         ms or s, microseconds without a unit; 0: as fast as\n"
    "                         possible\n"
    "  -d, --duration TIME    stop after TIME (seconds without a unit)\n"
    "      --cpu              only threads on a CPU, and of their tasks the\n"
    "                         running one\n"
    "      --no-agent         do not load the agent into COMMAND, and ignore its\n"
    "                         records in PID\n"
    "  -s, --subprocesses     also record every process started under the target\n"
    "                         (one root per process in the profile); with\n"
    "                         COMMAND, daemons it leaves (double fork) too\n"
    "  -h, --help             this help\n"
    "\n"
    "exit codes:\n"
    "  0  the profile was written (also when the target exited)\n"
    "  2  bad command line\n"
    "  3  no such process (--pid)\n"
    "  4  permission denied (ptrace)\n"
    "  5  not a Python process, an unsupported version, or no Python was sampled\n"
    "  6  the target could not be read\n"
    "  7  the output file could not be written\n"
    "  8  COMMAND could not be started\n";

/* Set by SIGINT and SIGTERM, read by the session's stop callback. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* With --subprocesses and a COMMAND, the recorder is the child subreaper
 * of the command's tree (a daemon's double fork leaves its process to
 * us, where the session finds it): SIGCHLD says one of our children
 * ended, and the session's stop callback reaps them.  The command itself
 * may be reaped there too: then end_command leaves its pid alone. */
static volatile sig_atomic_t child_ended;
static pid_t command_pid;
static int command_reaped;

static void on_sigchld(int sig) {
    (void)sig;
    child_ended = 1;
}

static void reap_children(void) {
    if (!child_ended) return;
    child_ended = 0;
    pid_t p;
    while ((p = waitpid(-1, NULL, WNOHANG)) > 0)
        if (p == command_pid) command_reaped = 1;
}

static void catch_signal(int sig, void (*handler)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static int should_stop(void *ud) {
    (void)ud;
    reap_children();
    return stop_requested != 0;
}

/* One record, several files: a flame graph to open and collapsed stacks to
 * read in the terminal, say (the quick start does both). */
#define MAX_OUTPUTS 4

typedef struct record_opts {
    int pid;
    const char *outputs[MAX_OUTPUTS]; /* "-": stdout */
    int noutputs;
    int format; /* -1: guess */
    uint64_t interval_ns, duration_ns;
    int cpu, no_agent, subprocesses;
    char **cmd;
} record_opts;

static int usage_error(const char *msg) {
    fprintf(stderr, "asyncunwind record: %s\n(see asyncunwind record --help)\n", msg);
    return AU_EXIT_USAGE;
}

/* A usage error about one argument, named. */
static int usage_error_arg(const char *msg, const char *arg) {
    fprintf(stderr, "asyncunwind record: %s '%s'\n(see asyncunwind record --help)\n", msg, arg);
    return AU_EXIT_USAGE;
}

/* "1.5ms", "100us", "2s", "250ns"; a bare number is in unit_ns.  Bounded
 * to a day. */
static int parse_time(const char *s, uint64_t unit_ns, uint64_t *ns) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0)) return -1;
    double mul = (double)unit_ns;
    if (!strcmp(end, "ns")) mul = 1;
    else if (!strcmp(end, "us") || !strcmp(end, "\xc2\xb5s")) mul = 1e3;
    else if (!strcmp(end, "ms")) mul = 1e6;
    else if (!strcmp(end, "s")) mul = 1e9;
    else if (*end) return -1;
    double t = v * mul;
    if (t > 86400e9) return -1;
    *ns = (uint64_t)(t + 0.5);
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

static uint32_t guess_format(const char *output) {
    if (output && ends_with(output, ".svg")) return AU_FORMAT_SVG;
    if (output && ends_with(output, ".json")) return AU_FORMAT_SPEEDSCOPE;
    return AU_FORMAT_COLLAPSED;
}

static const char *format_name(uint32_t f) {
    return f == AU_FORMAT_SVG ? "svg" : f == AU_FORMAT_SPEEDSCOPE ? "speedscope" : "collapsed";
}

static int parse(int argc, char **argv, record_opts *o) {
    static const struct option longs[] = {
        {"pid", required_argument, NULL, 'p'},      {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},   {"interval", required_argument, NULL, 'i'},
        {"duration", required_argument, NULL, 'd'}, {"cpu", no_argument, NULL, 'C'},
        {"no-agent", no_argument, NULL, 'A'},       {"subprocesses", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->format = -1;
    o->interval_ns = DEFAULT_INTERVAL_NS;
    optind = 1;
    opterr = 0;
    int c;
    char sb[3];
    /* '+': stop at the first non-option, so COMMAND's own options are its. */
    while ((c = getopt_long(argc, argv, "+:p:o:f:i:d:sh", longs, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (cli_parse_pid(optarg, &o->pid)) return usage_error("--pid needs a positive process id");
            break;
        case 'o':
            if (o->noutputs == MAX_OUTPUTS) return usage_error("-o is given at most 4 times");
            o->outputs[o->noutputs++] = optarg;
            break;
        case 'f':
            if (!strcmp(optarg, "collapsed")) o->format = AU_FORMAT_COLLAPSED;
            else if (!strcmp(optarg, "speedscope")) o->format = AU_FORMAT_SPEEDSCOPE;
            else if (!strcmp(optarg, "svg")) o->format = AU_FORMAT_SVG;
            else return usage_error("--format is collapsed, speedscope or svg");
            break;
        case 'i':
            if (parse_time(optarg, 1000, &o->interval_ns))
                return usage_error("--interval takes a time such as 1ms, 100us or 0");
            break;
        case 'd':
            if (parse_time(optarg, 1000000000ull, &o->duration_ns) || !o->duration_ns)
                return usage_error("--duration takes a positive time such as 10s or 500ms");
            break;
        case 'C': o->cpu = 1; break;
        case 'A': o->no_agent = 1; break;
        case 's': o->subprocesses = 1; break;
        case 'h': fputs(record_usage, stdout); return -1;
        case ':': return usage_error_arg("a value is missing after", cli_bad_option(c, argc, argv, sb));
        default: return usage_error_arg("unknown option", cli_bad_option(c, argc, argv, sb));
        }
    }
    if (optind < argc) o->cmd = argv + optind;
    if (o->pid && o->cmd) return usage_error("give --pid PID or -- COMMAND, not both");
    if (!o->pid && !o->cmd) return usage_error("what to record: --pid PID or -- COMMAND [ARGS...]");
    if (o->noutputs > 1 && o->format >= 0)
        return usage_error("with several -o, each file's extension chooses its format, not --format");
    int stdouts = 0;
    for (int i = 0; i < o->noutputs; i++) stdouts += !strcmp(o->outputs[i], "-");
    if (stdouts > 1) return usage_error("-o - (stdout) is given once");
    if (!o->noutputs) o->outputs[o->noutputs++] = "-";
    return 0;
}

/* ---- starting the command ------------------------------------------------- */

/* Fork and exec cmd, with agent (if not NULL) first on PYTHONPATH.  An exec
 * that fails is reported through a close-on-exec pipe, so the caller tells
 * "could not start" from "started and exited". */
static int launch(char **cmd, const char *agent, pid_t *out) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return e;
    }
    if (pid == 0) {
        close(fds[0]);
        if (agent) {
            const char *old = getenv("PYTHONPATH");
            char *path = NULL;
            if (old && *old) {
                size_t n = strlen(agent) + strlen(old) + 2;
                path = malloc(n);
                if (path) snprintf(path, n, "%s:%s", agent, old);
            }
            setenv("PYTHONPATH", path ? path : agent, 1);
        }
        /* The record's own signals stay the record's: a Ctrl-C reaches the
         * command through the terminal's process group anyway. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execvp(cmd[0], cmd);
        int e = errno;
        if (write(fds[1], &e, sizeof e) < 0) _exit(127);
        _exit(127);
    }
    close(fds[1]);
    int e = 0;
    ssize_t n;
    do n = read(fds[0], &e, sizeof e);
    while (n < 0 && errno == EINTR);
    close(fds[0]);
    if (n == (ssize_t)sizeof e) {
        waitpid(pid, NULL, 0);
        return e;
    }
    *out = pid;
    return 0;
}

/* The record is over: a command still running is asked to end, then made
 * to. */
static void end_command(pid_t pid) {
    reap_children();
    if (command_reaped || waitpid(pid, NULL, WNOHANG) == pid) return;
    kill(pid, SIGTERM);
    for (int ms = 0; ms < TERM_GRACE_MS; ms += 10) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* ---- status line and statistics ------------------------------------------- */

static double pct(uint64_t a, uint64_t b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

static void print_time(FILE *f, uint64_t ns) {
    if (ns < 1000) fprintf(f, "%llu ns", (unsigned long long)ns);
    else if (ns < 1000000) fprintf(f, "%.1f us", (double)ns / 1e3);
    else fprintf(f, "%.2f ms", (double)ns / 1e6);
}

static void status_line(void *ud, const au_session_stats *st) {
    (void)ud;
    fprintf(stderr, "\r\033[Krecording: %.1f s, %llu samples, %llu errors, %u process%s",
            (double)st->elapsed_ns / 1e9, (unsigned long long)st->samples,
            (unsigned long long)st->errors, st->processes, st->processes == 1 ? "" : "es");
    fflush(stderr);
}

static void print_stats(const au_session_stats *st, const au_profile_stats *ps, uint64_t interval_ns) {
    static const char *why[] = {"", "the duration elapsed", "stopped by a signal",
                                "the target exited"};
    double secs = (double)st->elapsed_ns / 1e9;
    fprintf(stderr, "asyncunwind record: %.2f s, %s; %u process%s sampled\n", secs,
            st->end < 4 ? why[st->end] : "", st->processes_seen, st->processes_seen == 1 ? "" : "es");
    fprintf(stderr, "  samples       %llu (%.0f/s)\n", (unsigned long long)st->samples,
            secs > 0 ? (double)st->samples / secs : 0.0);
    fprintf(stderr, "  errors        %llu of %llu (%.2f%%)\n", (unsigned long long)st->errors,
            (unsigned long long)st->samples, pct(st->errors, st->samples));
    fprintf(stderr, "  sample time   min ");
    print_time(stderr, st->time_min_ns);
    fprintf(stderr, ", avg ");
    print_time(stderr, st->samples ? st->time_total_ns / st->samples : 0);
    fprintf(stderr, ", median ");
    print_time(stderr, st->time_median_ns);
    fprintf(stderr, ", max ");
    print_time(stderr, st->time_max_ns);
    fprintf(stderr, "\n  long          %llu of %llu rounds (%.2f%%) ended past the next deadline (interval ",
            (unsigned long long)st->long_ticks, (unsigned long long)st->ticks,
            pct(st->long_ticks, st->ticks));
    print_time(stderr, interval_ns);
    uint64_t good = st->samples - st->errors;
    fprintf(stderr, ")\n  tasks/sample  min %llu, avg %.1f, max %llu\n", (unsigned long long)st->tasks_min,
            good ? (double)st->tasks_total / (double)good : 0.0, (unsigned long long)st->tasks_max);
    fprintf(stderr, "  profile       %u distinct stacks, %llu dropped, %.1f MiB\n", ps->stacks,
            (unsigned long long)ps->dropped, (double)ps->heap_bytes / (1 << 20));
    char limits[256];
    if (st->truncated)
        fprintf(stderr, "  truncated     %llu of %llu samples cut at a limit (%s)\n",
                (unsigned long long)st->truncated, (unsigned long long)good,
                cli_limits_text(limits, sizeof limits));
}

/* ---- the command ------------------------------------------------------------- */

static int file_write(void *ud, const void *buf, size_t len) {
    return fwrite(buf, 1, len, (FILE *)ud) == len ? 0 : -1;
}

/* Closes the files among out[0..n) (not stdout); non-zero when one failed
 * (a full disk shows at the last flush). */
static int close_outputs(FILE **out, int n) {
    int failed = 0;
    for (int i = 0; i < n; i++)
        if (out[i] && out[i] != stdout && fclose(out[i]) != 0) failed = 1;
    return failed;
}

/* "asyncunwind record ARGS" as one line: the profile's title. */
static void make_title(char *buf, size_t cap, int argc, char **argv) {
    size_t at = (size_t)snprintf(buf, cap, "asyncunwind");
    for (int i = 0; i < argc && at < cap; i++) at += (size_t)snprintf(buf + at, cap - at, " %s", argv[i]);
}

int cli_record(int argc, char **argv) {
    record_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? AU_EXIT_OK : rc;
    /* The outputs first: a path that cannot be written fails before the
     * record, not after it. */
    FILE *out[MAX_OUTPUTS] = {NULL};
    uint32_t format[MAX_OUTPUTS];
    for (int i = 0; i < o.noutputs; i++) {
        int std = !strcmp(o.outputs[i], "-");
        format[i] = o.format >= 0 ? (uint32_t)o.format : guess_format(std ? NULL : o.outputs[i]);
        out[i] = std ? stdout : fopen(o.outputs[i], "we");
        if (!out[i]) {
            fprintf(stderr, "asyncunwind: cannot write %s: %s\n", o.outputs[i], strerror(errno));
            close_outputs(out, o.noutputs);
            return AU_EXIT_FILE;
        }
    }

    au_profile *profile = NULL;
    if ((rc = au_profile_new(NULL, NULL, &profile))) {
        close_outputs(out, o.noutputs);
        return cli_fail("cannot create the profile", rc);
    }
    au_session_options so;
    memset(&so, 0, sizeof so);
    /* 0 is "as fast as possible": every deadline is already due. */
    so.interval_ns = o.interval_ns ? o.interval_ns : 1;
    so.duration_ns = o.duration_ns;
    so.flags = (o.cpu ? AU_SESSION_CPU : 0) | (o.subprocesses ? AU_SESSION_CHILDREN : 0);
    /* Descendants of COMMAND whose parent exits come to us (a daemon's
     * double fork), to be followed (AU_SESSION_ADOPTED) and reaped. */
    if (o.subprocesses && o.cmd && prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0, 0, 0) == 0)
        so.flags |= AU_SESSION_ADOPTED;
    if (o.no_agent) so.sampler.flags |= AU_SAMPLER_NO_AGENT;
    so.stop = should_stop;
    if (isatty(STDERR_FILENO)) so.progress = status_line;
    au_session *session = NULL;
    if ((rc = au_session_new(NULL, &so, profile, &session))) {
        au_profile_free(profile);
        close_outputs(out, o.noutputs);
        return cli_fail("cannot start the record", rc);
    }

    /* Linux lets a sleep of a normal thread end up to 50 us late (timer
     * slack), half of a 100 us interval: ask for 1 us.  The core leaves
     * this to its host; it is the calling thread's setting. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

    /* Signals before the command starts: one that comes while it starts
     * must still end the record cleanly.  SA_RESETHAND: a second Ctrl-C
     * is the default action, for a user who does not want to wait. */
    catch_signal(SIGINT, on_signal, SA_RESETHAND);
    catch_signal(SIGTERM, on_signal, SA_RESETHAND);
    if (so.flags & AU_SESSION_ADOPTED) catch_signal(SIGCHLD, on_sigchld, SA_NOCLDSTOP);

    int exit = AU_EXIT_OK;
    pid_t child = 0;
    if (o.cmd) {
        char agent[PATH_MAX];
        if (!o.no_agent && (exit = cli_agent_dir(agent, sizeof agent))) goto done;
        int e = launch(o.cmd, o.no_agent ? NULL : agent, &child);
        command_pid = child;
        if (e) {
            fprintf(stderr, "asyncunwind: cannot run %s: %s\n", o.cmd[0], strerror(e));
            fprintf(stderr, "hint: give the command as it would be typed, e.g. -- python3 app.py\n");
            exit = AU_EXIT_COMMAND;
            goto done;
        }
        rc = au_session_add_pid(session, child, AU_SESSION_WAIT);
    } else {
        rc = au_session_add_pid(session, o.pid, 0);
    }
    if (rc) {
        if (rc == AU_ERR_NOPROC || rc == AU_ERR_PERM) exit = cli_fail("cannot read the process", rc);
        else exit = cli_fail("cannot find a Python runtime in the process", rc);
        goto done;
    }
    rc = au_session_run(session);
    if (isatty(STDERR_FILENO)) fputs("\r\033[K", stderr);
    if (rc) fprintf(stderr, "asyncunwind: the record stopped early: %s\n", au_status_str(rc));

    au_session_stats st;
    au_profile_stats ps;
    au_session_get_stats(session, &st);
    au_profile_get_stats(profile, &ps);
    print_stats(&st, &ps, so.interval_ns);
    char title[512];
    make_title(title, sizeof title, argc, argv);
    for (int i = 0; i < o.noutputs; i++) {
        int std = out[i] == stdout;
        int wrc = au_profile_write(profile, format[i], title, file_write, out[i]);
        if (wrc == AU_OK && fflush(out[i]) != 0) wrc = AU_ERR_IO;
        if (wrc) {
            fprintf(stderr, "asyncunwind: cannot write %s: %s\n", std ? "the profile" : o.outputs[i],
                    au_status_str(wrc));
            exit = AU_EXIT_FILE;
        } else if (!std) {
            fprintf(stderr, "  wrote %s (%s)\n", o.outputs[i], format_name(format[i]));
        }
    }
    if (!exit && !st.processes_seen) {
        fprintf(stderr, "asyncunwind: no Python process was sampled\n"
                        "hint: is COMMAND a CPython 3.9-3.15 program? Without --subprocesses only "
                        "the process started (and what it execs) is followed\n");
        exit = AU_EXIT_NOTPYTHON;
    }
done:
    if (child > 0) end_command(child);
    au_session_free(session);
    au_profile_free(profile);
    if (close_outputs(out, o.noutputs) && !exit) exit = AU_EXIT_FILE;
    return exit;
}
