/*
 * A process's threads and children as the kernel reports them in /proc:
 * which threads exist, which are on CPU, which processes a process started,
 * and which native thread a pthread is.
 *
 * Internal to the core.  /proc text is parsed as hostile input like the
 * maps: bounded, validated, and never trusted to be well formed.  Nothing
 * here allocates; callers pass their buffers.
 */
#ifndef ASYNCUNWIND_PROCTASK_H
#define ASYNCUNWIND_PROCTASK_H

#include <stdint.h>

#include "asyncunwind.h"

/*
 * The TIDs of pid's threads (/proc/PID/task), in directory order, at most
 * cap of them.  Returns AU_OK with *n stored; AU_ERR_LIMIT when there were
 * more (the first cap are stored); AU_ERR_NOPROC, AU_ERR_PERM or AU_ERR_IO
 * as au_status_from_errno; AU_ERR_ARG on bad arguments.
 */
int au_proc_tasks(int pid, uint64_t *tids, uint32_t cap, uint32_t *n);

/*
 * The one-letter state of thread tid of pid (field 3 of
 * /proc/PID/task/TID/stat: R running or runnable, S, D, Z, T, ...) in
 * *state.  The file's second field is the thread's name, which may hold
 * spaces and parentheses: the state is after the last ')'.  Errors as
 * au_proc_tasks; AU_ERR_FORMAT when the text has no state.  A tid that is
 * not a thread of pid is AU_ERR_NOPROC: the kernel serves task/TID only
 * for pid's own threads, which is what makes a TID found elsewhere safe to
 * use.
 */
int au_proc_thread_state(int pid, uint64_t tid, char *state);

/*
 * au_proc_thread_state, and also field 28 of the stat file (the start of
 * the main stack) into *startstack when it is not NULL: a new value after
 * every exec, wherever the kernel randomises the stack, even when the new
 * image is the same executable.  AU_ERR_FORMAT when the field is absent.
 */
int au_proc_stat(int pid, uint64_t tid, char *state, uint64_t *startstack);

/*
 * au_proc_thread_state through descriptors kept open: one pread a call
 * instead of open, read and close, for the AU_STAT_FDS threads most
 * recently asked about (few, so that many processes sampled at once stay
 * far from the descriptor limit).  A zeroed cache is empty;
 * au_stat_cache_close closes what it holds.
 */
#define AU_STAT_FDS 8u
typedef struct au_stat_fd {
    uint64_t tid;
    int fd;
    uint32_t used;
} au_stat_fd;
typedef struct au_stat_cache {
    au_stat_fd e[AU_STAT_FDS];
    uint32_t n, clock;
} au_stat_cache;
int au_stat_cache_state(au_stat_cache *c, int pid, uint64_t tid, char *state);
void au_stat_cache_close(au_stat_cache *c);

/*
 * The children of pid: every pid listed in /proc/PID/task/TID/children
 * for each of its threads (a child belongs to the thread that forked it),
 * at most cap, appended to out from out[*n] on.  Returns AU_OK;
 * AU_ERR_LIMIT when some did not fit; AU_ERR_NOPROC when pid is gone;
 * AU_ERR_UNSUPPORTED when the kernel has no children files
 * (CONFIG_PROC_CHILDREN).
 */
int au_proc_children(int pid, int *out, uint32_t cap, uint32_t *n);

/*
 * Native TIDs of pthreads, for interpreters that do not record them
 * (CPython 3.9 and 3.10 keep only pthread_self()).
 *
 * With glibc a pthread_t is the address of the thread's descriptor, which
 * holds its TID at a fixed offset.  The offset is not guessed from a glibc
 * version: it is searched once in the target, as the one offset at which
 * every thread's descriptor holds a distinct TID that /proc lists for the
 * process, and re-searched when a TID it gives stops being one.
 */
typedef struct au_tid_map {
    uint32_t offset;     /* of the TID in a descriptor, when found */
    uint32_t found;      /* offset is valid */
    uint32_t tries;      /* searches made (bounded by the caller's retry) */
    uint32_t retry_at;   /* sample number of the next search when not found */
} au_tid_map;

/* Descriptor bytes searched for the TID field (glibc's is near 0x2d0 on
 * x86-64 and aarch64; four times that leaves room for other layouts). */
#define AU_TID_SEARCH_BYTES 4096u

/*
 * Fill tids[i] with the TID of pthread pthreads[i] (0 when unknown), for
 * n threads, reading descriptors through mem.  sample_no paces the
 * searches.  Returns AU_OK even when nothing could be mapped (the tids are
 * then 0); AU_ERR_ARG on bad arguments.
 */
int au_tid_map_fill(au_tid_map *m, au_memsrc *mem, int pid, uint32_t sample_no,
                    const uint64_t *pthreads, uint64_t *tids, uint32_t n);

/*
 * Which process a pid names, kept for as long as it is sampled.  A pid is
 * only a number: once its process exits and is reaped, the kernel may give
 * it to any new process, and reads by pid then read that one, which is a
 * wrong stack when it happens to be laid out alike (the same interpreter
 * without address randomisation, or a static non-PIE build).  A descriptor
 * of /proc/PID/comm stays bound to the process it was opened for: once that
 * process is gone, reads through it fail with ESRCH even when the number
 * is in use again.  So reads that end with the anchor still alive were of
 * the process opened, whatever happened to the number since.
 *
 * au_proc_anchor_open stores the descriptor in *fd (AU_OK), or fails as
 * au_proc_tasks does.  au_proc_anchor_alive is AU_OK while the process
 * lives (a zombie still holds its pid), AU_ERR_NOPROC once it is gone, or
 * another status for an unexpected failure; one pread, no allocation.
 * Exec keeps the process, and so the anchor.
 */
int au_proc_anchor_open(int pid, int *fd);
int au_proc_anchor_alive(int fd);

#endif
