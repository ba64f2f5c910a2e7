/*
 * A recording session: samplers of one or more processes, driven at fixed
 * deadlines into one profile (asyncunwind.h, "Recording").
 *
 * Each target process is in one of two states:
 *   PENDING  not (or no longer) sampleable: not Python yet, between an
 *            exec and its interpreter's start, or some other program among
 *            the followed children.  Opening it is retried at scans, with
 *            a back-off, and at once when its executable changes.
 *   ACTIVE   a sampler is open on it, and every tick samples it.
 * A target whose process is gone (or a zombie) is dropped.  Scans, every
 * scan_ns, look for those changes and for new children; the ticks between
 * them only sample, so a short interval pays for nothing else.
 *
 * A tick is one sample of every active target.  Its deadline is
 * start + k x interval; when it ends past the next deadline the next tick
 * starts at once and skips to the next deadline ahead (see asyncunwind.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "asyncunwind.h"
#include "au_internal.h"
#include "au_procmaps.h"
#include "au_proctask.h"
#include "au_timehist.h"

#define DEFAULT_INTERVAL 1000000ull     /* 1 ms: see docs/CLI.md */
#define DEFAULT_SCAN 100000000ull       /* 100 ms */
#define DEFAULT_PROGRESS 250000000ull   /* 250 ms */
#define DEFAULT_MAX_PROCESSES 64u
#define MAX_MAX_PROCESSES 4096u
/* Back-off of a pending target: from one scan, doubling, up to this. */
#define MAX_BACKOFF 1600000000ull       /* 1.6 s */
/* Failed samples in a row after which a target is checked at once for an
 * exec or an exit, without waiting for the next scan. */
#define FAILS_BEFORE_CHECK 16u
/* Children read per target per scan. */
#define MAX_CHILDREN 256u

enum { PENDING, ACTIVE };

typedef struct target {
    int pid;
    uint32_t state;
    au_sampler *sampler;
    au_map_file_id exe;      /* of the image last opened or tried */
    uint64_t stack;          /* its stack's start: an exec changes it */
    uint64_t retry_at;       /* PENDING: monotonic ns of the next try */
    uint64_t backoff;
    uint32_t fails_in_row;
    uint32_t seen;           /* was ever ACTIVE */
    uint32_t child;          /* found by a scan, not given by the caller */
    int anchor;              /* the process added (proctask.h), or -1: its
                                pid may be reused once it is gone */
} target;

struct au_session {
    au_allocator alloc;
    au_session_options opt;
    au_profile *profile;
    target *targets;
    uint32_t ntargets;
    au_session_stats st;
    au_timehist hist;
    uint64_t start, next_scan, next_progress;
    uint64_t tasks_min;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleep until monotonic time t; returns early on a signal. */
static void sleep_until(uint64_t t) {
    struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

int au_session_new(const au_allocator *alloc, const au_session_options *opt,
                   au_profile *profile, au_session **out) {
    if (!out) return AU_ERR_ARG;
    *out = NULL;
    if (!profile) return AU_ERR_ARG;
    au_allocator a;
    au_session *s = au_alloc_zeroed(alloc, sizeof *s, &a);
    if (!s) return AU_ERR_NOMEM;
    s->alloc = a;
    if (opt) s->opt = *opt;
    if (!s->opt.interval_ns) s->opt.interval_ns = DEFAULT_INTERVAL;
    if (!s->opt.scan_ns) s->opt.scan_ns = DEFAULT_SCAN;
    if (!s->opt.progress_ns) s->opt.progress_ns = DEFAULT_PROGRESS;
    if (!s->opt.max_processes) s->opt.max_processes = DEFAULT_MAX_PROCESSES;
    if (s->opt.max_processes > MAX_MAX_PROCESSES) s->opt.max_processes = MAX_MAX_PROCESSES;
    if (s->opt.flags & AU_SESSION_CPU) s->opt.sampler.flags |= AU_SAMPLER_CPU_STATE;
    s->targets = a.realloc(a.ud, NULL, 0, (size_t)s->opt.max_processes * sizeof *s->targets);
    if (!s->targets) {
        a.realloc(a.ud, s, sizeof *s, 0);
        return AU_ERR_NOMEM;
    }
    s->profile = profile;
    s->tasks_min = UINT64_MAX;
    *out = s;
    return AU_OK;
}

void au_session_free(au_session *s) {
    if (!s) return;
    for (uint32_t i = 0; i < s->ntargets; i++) {
        au_sampler_free(s->targets[i].sampler);
        if (s->targets[i].anchor >= 0) close(s->targets[i].anchor);
    }
    AU_FREE_ARRAY(&s->alloc, s->targets, s->opt.max_processes);
    s->alloc.realloc(s->alloc.ud, s, sizeof *s, 0);
}

/* ---- targets --------------------------------------------------------------- */

static int tracked(const au_session *s, int pid) {
    for (uint32_t i = 0; i < s->ntargets; i++)
        if (s->targets[i].pid == pid) return 1;
    return 0;
}

/* A process that is gone or a zombie (its memory is gone with it); else
 * its stack start in *stack (0 when unknown). */
static int gone(int pid, uint64_t *stack) {
    char state;
    *stack = 0;
    int rc = au_proc_stat(pid, (uint64_t)pid, &state, stack);
    return rc == AU_ERR_NOPROC || (rc == AU_OK && (state == 'Z' || state == 'X'));
}

/* gone(), for the very process that was added: once it is gone its pid
 * may name another process, which is neither this target nor its exec. */
static int target_gone(const target *t, uint64_t *stack) {
    if (t->anchor >= 0 && au_proc_anchor_alive(t->anchor) == AU_ERR_NOPROC) {
        *stack = 0;
        return 1;
    }
    return gone(t->pid, stack);
}

static int try_open(au_session *s, target *t) {
    au_proc_exe_id(t->pid, &t->exe);
    gone(t->pid, &t->stack);
    int rc = au_sampler_open_pid(&s->alloc, t->pid, &s->opt.sampler, &t->sampler);
    if (rc == AU_OK) {
        t->state = ACTIVE;
        t->fails_in_row = 0;
        if (!t->seen) s->st.processes_seen++;
        t->seen = 1;
    }
    return rc;
}

static void make_pending(target *t, uint64_t now, uint64_t first_backoff) {
    au_sampler_free(t->sampler);
    t->sampler = NULL;
    t->state = PENDING;
    t->backoff = first_backoff;
    t->retry_at = now;
}

static int add_target(au_session *s, int pid, uint32_t flags, uint32_t child) {
    if (!s || pid <= 0) return AU_ERR_ARG;
    if (tracked(s, pid)) return AU_OK;
    if (s->ntargets == s->opt.max_processes) return AU_ERR_LIMIT;
    target *t = &s->targets[s->ntargets];
    memset(t, 0, sizeof *t);
    t->pid = pid;
    t->child = child;
    /* Without an anchor (no /proc/PID/comm to open) the pid's own checks
     * remain; a pid that names no process fails below. */
    if (au_proc_anchor_open(pid, &t->anchor) != AU_OK) t->anchor = -1;
    int rc = try_open(s, t);
    if (rc && (flags & AU_SESSION_WAIT) && rc != AU_ERR_NOMEM) {
        uint64_t stack;
        if (target_gone(t, &stack)) {
            rc = AU_ERR_NOPROC;
        } else {
            make_pending(t, now_ns() + s->opt.scan_ns, s->opt.scan_ns);
            rc = AU_OK;
        }
    }
    if (rc) {
        if (t->anchor >= 0) close(t->anchor);
        return rc;
    }
    s->ntargets++;
    return AU_OK;
}

int au_session_add_pid(au_session *s, int pid, uint32_t flags) {
    return add_target(s, pid, flags, 0);
}

/* The record goes on while a process given by the caller is followed
 * (sampled or not yet Python), or any process is sampled: a child that
 * is not Python (a helper left running) does not keep it alive alone. */
static int any_left(const au_session *s) {
    for (uint32_t i = 0; i < s->ntargets; i++)
        if (!s->targets[i].child || s->targets[i].state == ACTIVE) return 1;
    return 0;
}

static void drop(au_session *s, uint32_t i) {
    au_sampler_free(s->targets[i].sampler);
    if (s->targets[i].anchor >= 0) close(s->targets[i].anchor);
    s->targets[i] = s->targets[--s->ntargets];
}

/* Follow pid's children that are not followed yet (add_target leaves out
 * those already gone: a zombie is not a process to follow). */
static void add_children(au_session *s, int pid) {
    int kids[MAX_CHILDREN];
    uint32_t nk = 0;
    au_proc_children(pid, kids, MAX_CHILDREN, &nk);
    for (uint32_t k = 0; k < nk; k++)
        if (!tracked(s, kids[k]) && s->ntargets < s->opt.max_processes)
            add_target(s, kids[k], AU_SESSION_WAIT, 1);
}

/* AU_SESSION_ADOPTED: the caller's own children, among them the orphans
 * of the targets' trees that it adopted as their subreaper.  Returns
 * whether one was added. */
static int adopt(au_session *s) {
    if ((s->opt.flags & (AU_SESSION_CHILDREN | AU_SESSION_ADOPTED)) !=
        (AU_SESSION_CHILDREN | AU_SESSION_ADOPTED))
        return 0;
    uint32_t before = s->ntargets;
    add_children(s, (int)getpid());
    return s->ntargets > before;
}

/* Exits, execs, pending targets' retries, new children. */
static void scan(au_session *s, uint64_t now) {
    for (uint32_t i = 0; i < s->ntargets;) {
        target *t = &s->targets[i];
        uint64_t stack;
        if (target_gone(t, &stack)) {
            drop(s, i);
            continue;
        }
        au_map_file_id exe;
        int exe_ok = au_proc_exe_id(t->pid, &exe) == AU_OK;
        int exec_d = (exe_ok && t->exe.inode &&
                      (exe.inode != t->exe.inode || exe.dev_major != t->exe.dev_major ||
                       exe.dev_minor != t->exe.dev_minor)) ||
                     (stack && t->stack && stack != t->stack);
        /* A new image (an exec, perhaps of the same executable): the
         * sampler's view of the old one is worthless.  So is a sampler
         * that fails sample after sample, whatever the cause. */
        if (exec_d || (t->state == ACTIVE && t->fails_in_row >= FAILS_BEFORE_CHECK))
            make_pending(t, now, s->opt.scan_ns);
        if (t->state == PENDING && now >= t->retry_at) {
            if (try_open(s, t) != AU_OK) {
                t->retry_at = now + t->backoff;
                t->backoff = t->backoff * 2 < MAX_BACKOFF ? t->backoff * 2 : MAX_BACKOFF;
            }
        }
        i++;
    }
    if (!(s->opt.flags & AU_SESSION_CHILDREN)) return;
    /* Children of the targets known before this scan; a child found now
     * has its own children looked for at the next scan. */
    uint32_t n = s->ntargets;
    for (uint32_t i = 0; i < n; i++) add_children(s, s->targets[i].pid);
    adopt(s);
}

/* ---- sampling ---------------------------------------------------------------- */

/* One sample of target i into the profile.  *exited is set when the
 * process turned out to be gone: that is its end, not an error; one that
 * exec'd goes back to PENDING, to be opened again at once. */
static int sample_one(au_session *s, uint32_t i, int *exited) {
    target *t = &s->targets[i];
    uint64_t t0 = now_ns();
    const au_sample *smp;
    int rc = au_sampler_sample(t->sampler, &smp);
    if (rc != AU_OK && rc != AU_ERR_NOMEM) {
        /* A failure may be the process's end or an exec: neither is an
         * error of the sample.  (Three system calls, on failures only.) */
        uint64_t stack;
        if (target_gone(t, &stack)) {
            *exited = 1;
            return AU_OK;
        }
        if (stack && t->stack && stack != t->stack) {
            make_pending(t, now_ns(), s->opt.scan_ns);
            s->next_scan = 0;
            return AU_OK;
        }
    }
    if (rc == AU_OK) {
        uint32_t pflags = s->opt.flags & AU_SESSION_CPU ? AU_PROFILE_CPU : 0;
        if (s->opt.flags & AU_SESSION_CHILDREN) pflags |= AU_PROFILE_PROCESS;
        rc = au_profile_add(s->profile, t->sampler, smp, pflags, 1);
        if (rc == AU_ERR_NOMEM) return rc;
    }
    uint64_t dt = now_ns() - t0;
    s->st.samples++;
    if (rc) {
        s->st.errors++;
        /* Many failures in a row: an exit or an exec, most likely; look
         * now rather than at the next scan. */
        if (++t->fails_in_row == FAILS_BEFORE_CHECK) s->next_scan = 0;
    } else {
        t->fails_in_row = 0;
        uint64_t nt = smp->ntasks;
        if (nt < s->tasks_min) s->tasks_min = nt;
        if (nt > s->st.tasks_max) s->st.tasks_max = nt;
        s->st.tasks_total += nt;
        if (smp->flags & AU_SAMPLE_TRUNCATED) s->st.truncated++;
    }
    au_timehist_add(&s->hist, dt);
    if (dt < s->st.time_min_ns || s->st.samples == 1) s->st.time_min_ns = dt;
    if (dt > s->st.time_max_ns) s->st.time_max_ns = dt;
    s->st.time_total_ns += dt;
    return AU_OK;
}

static void finish_stats(au_session *s, uint64_t now) {
    s->st.elapsed_ns = now - s->start;
    /* A bucket's lower bound may be under the least value it holds. */
    uint64_t med = au_timehist_median(&s->hist);
    if (med < s->st.time_min_ns) med = s->st.time_min_ns;
    if (med > s->st.time_max_ns) med = s->st.time_max_ns;
    s->st.time_median_ns = med;
    s->st.tasks_min = s->tasks_min == UINT64_MAX ? 0 : s->tasks_min;
    uint32_t active = 0;
    for (uint32_t i = 0; i < s->ntargets; i++) active += s->targets[i].state == ACTIVE;
    s->st.processes = active;
}

int au_session_run(au_session *s) {
    if (!s) return AU_ERR_ARG;
    const au_session_options *o = &s->opt;
    s->start = now_ns();
    s->next_scan = s->start + o->scan_ns;
    s->next_progress = s->start + o->progress_ns;
    uint64_t end = o->duration_ns ? s->start + o->duration_ns : UINT64_MAX;
    /* The next tick is number k, due at start + k x interval. */
    uint64_t k = 0, due = s->start;
    int rc = AU_OK;
    for (;;) {
        uint64_t now = now_ns();
        if (o->stop && o->stop(o->ud)) {
            s->st.end = AU_SESSION_END_STOPPED;
            break;
        }
        if (now >= end) {
            s->st.end = AU_SESSION_END_DURATION;
            break;
        }
        /* Also where a sleep that a signal cut short comes back to. */
        if (now < due) {
            sleep_until(due < end ? due : end);
            continue;
        }
        if (now >= s->next_scan) {
            scan(s, now);
            s->next_scan = now + o->scan_ns;
        }
        /* The last target gone: a daemon it left (its parent exited
         * before the next scan) is the caller's child by now, if the
         * caller adopts them; looked for once more before the end. */
        if (!any_left(s) && !(adopt(s) && any_left(s))) {
            s->st.end = AU_SESSION_END_GONE;
            break;
        }
        if (o->progress && now >= s->next_progress) {
            finish_stats(s, now);
            o->progress(o->ud, &s->st);
            s->next_progress = now + o->progress_ns;
        }
        uint32_t sampled = 0;
        for (uint32_t i = 0; i < s->ntargets && rc == AU_OK;) {
            int exited = 0;
            if (s->targets[i].state == ACTIVE) {
                rc = sample_one(s, i, &exited);
                sampled++;
            }
            if (exited) drop(s, i); /* moves the last target to i */
            else i++;
        }
        if (rc) break;
        if (!any_left(s)) continue; /* the top of the loop ends the run */
        if (!sampled) {
            /* Nothing to sample until a scan finds something. */
            due = s->next_scan;
            k = (due - s->start) / o->interval_ns;
            continue;
        }
        s->st.ticks++;
        k++;
        due = s->start + k * o->interval_ns;
        now = now_ns();
        if (now >= due) {
            /* Late: the next tick takes the last deadline passed, so it
             * starts at once, and the ones before it are skipped rather
             * than caught up in a burst. */
            s->st.long_ticks++;
            k = (now - s->start) / o->interval_ns;
            due = s->start + k * o->interval_ns;
        }
    }
    finish_stats(s, now_ns());
    return rc;
}

void au_session_get_stats(const au_session *s, au_session_stats *st) {
    if (!st) return;
    /* A NULL context has all-zero counters: the caller reads them either
     * way (and gcc, inlining across the amalgamation, checks that). */
    if (s)
        *st = s->st;
    else
        memset(st, 0, sizeof *st);
}
