/*
 * vendor_host: a program that vendors the asyncunwind core as its two
 * amalgamated files, asyncunwind.c and asyncunwind.h (docs/VENDORING.md),
 * and uses it the two ways a host does:
 *
 *   vendor_host sample PID
 *       A profiler outside the target: open a live Python process with the
 *       sampler, take one sample, print each task-aware stack on one line
 *       (root first, ';'-joined, tasks as [name]), free everything.
 *
 *   vendor_host links
 *       A profiler inside the target that already tracks its tasks and
 *       their links itself (dd-trace-py keeps such link maps): it hands the
 *       resolver a task graph built in-process, with frame ids of its own,
 *       and prints the stacks it gets back.
 *
 * Both route every allocation of the core through the host's allocator, as
 * a profiler that accounts for its own memory would, and check that the
 * header and the compiled core are the same version.
 *
 * Build: see Makefile (plain cc, no build system needed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncunwind.h"

/* ---- the host's allocator ------------------------------------------------ */

/* The core asks for memory through one realloc-style hook; a host passes
 * its own to count or cap the core's memory.  This one counts. */
typedef struct host_heap {
    size_t live_bytes, peak_bytes;
    unsigned long calls;
} host_heap;

static void *host_realloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    host_heap *h = ud;
    h->calls++;
    if (new_size == 0) {
        free(ptr);
        h->live_bytes -= old_size;
        return NULL;
    }
    void *p = realloc(ptr, new_size);
    if (!p) return NULL; /* the core reports AU_ERR_NOMEM */
    h->live_bytes += new_size - old_size;
    if (h->live_bytes > h->peak_bytes) h->peak_bytes = h->live_bytes;
    return p;
}

static int fail(const char *what, int rc) {
    const char *hint = au_status_hint(rc);
    fprintf(stderr, "vendor_host: %s: %s%s%s\n", what, au_status_str(rc), hint ? ": " : "",
            hint ? hint : "");
    return 1;
}

/* ---- (a) sampling a live process ----------------------------------------- */

static void print_frame(const au_sample_frame *f) {
    if (!f->qualname) {
        fputs("<unknown>", stdout);
        return;
    }
    /* Strings from the target are not NUL-terminated: print by length. */
    printf("%.*s (%.*s:%d)", (int)f->qualname_len, f->qualname, (int)f->filename_len,
           f->filename, (int)f->line);
}

static int sample_pid(int pid, host_heap *heap) {
    au_allocator alloc = {host_realloc, heap};
    au_sampler *s = NULL;
    int rc = au_sampler_open_pid(&alloc, pid, NULL, &s);
    if (rc) return fail("open", rc);

    const au_sample *smp;
    rc = au_sampler_sample(s, &smp);
    if (rc) {
        au_sampler_free(s);
        return fail("sample", rc);
    }
    printf("# pid %d, CPython %u.%u, %u threads, %u tasks, %u stacks%s\n", smp->pid,
           smp->py_version_hex >> 24, smp->py_version_hex >> 16 & 0xff, smp->nthreads,
           smp->ntasks, smp->nstacks, smp->flags & AU_SAMPLE_AGENT ? ", agent" : "");

    /* One buffer for every stack, grown to the longest: cap 0 measures. */
    au_entry *buf = NULL;
    uint32_t cap = 0;
    for (uint32_t k = 0; k < smp->nstacks; k++) {
        uint64_t n = au_sample_stack_entries(s, k, NULL, 0);
        if (n > cap) {
            au_entry *nb = realloc(buf, (size_t)n * sizeof *nb);
            if (!nb) {
                free(buf);
                au_sampler_free(s);
                return fail("stack buffer", AU_ERR_NOMEM);
            }
            buf = nb;
            cap = (uint32_t)n;
        }
        au_sample_stack_entries(s, k, buf, cap);
        const au_sample_thread *t = &smp->threads[smp->stacks[k].thread];
        printf("thread %llu", (unsigned long long)t->thread_id);
        for (uint64_t i = 0; i < n; i++) {
            const au_entry *e = &buf[i];
            fputc(';', stdout);
            switch (e->kind) {
            case AU_ENTRY_FRAME:
                print_frame(&smp->frames[e->id]);
                break;
            case AU_ENTRY_TASK:
            case AU_ENTRY_CYCLE: {
                const au_sample_task *tk = &smp->tasks[e->task];
                printf(e->kind == AU_ENTRY_TASK ? "[%.*s]" : "[cycle back to %.*s]",
                       (int)tk->name_len, tk->name);
                break;
            }
            default:
                fputs("[...]", stdout);
            }
        }
        fputc('\n', stdout);
    }
    free(buf);
    au_sampler_free(s);
    return 0;
}

/* ---- (b) links the host already knows ------------------------------------ */

/* The host's own frame table: the core only sees ids, so a host names
 * frames however it likes (here, an index into this array plus one, since
 * 0 means "none"). */
static const char *const host_frames[] = {
    "main",         /* 1: thread frames up to the event loop */
    "run_forever",  /* 2 */
    "serve",        /* 3: task "server" */
    "handle",       /* 4: task "request-7", gathered by server */
    "query_db",     /* 5: task "db", awaited by request-7 */
    "recv",         /* 6 */
    "flush_logs",   /* 7: task "logger", created by server, never awaited */
    "render",       /* 8: task "request-8", gathered by server, on CPU */
    "escape_html",  /* 9: the running task's synchronous frame */
};

static void print_resolved(const au_resolver *r, const au_thread_sample *in,
                           const au_stacks *st) {
    static const char *const link_names[] = {"root", "await", "strong", "weak"};
    for (uint32_t k = 0; k < st->nstacks; k++) {
        const au_stack *sk = &st->stacks[k];
        au_entry e[64];
        uint64_t n = au_stack_entries(r, sk, e, 64);
        if (n > 64) n = 64; /* the 64th entry is then a TRUNCATED marker */
        printf("%.*s%s:", (int)sk->leaf_name_len, sk->leaf_name ? sk->leaf_name : "",
               sk->flags & AU_STACK_RUNNING ? " (running)" : "");
        for (uint64_t i = 0; i < n; i++) {
            if (e[i].kind == AU_ENTRY_FRAME)
                printf(" %s", host_frames[e[i].id - 1]);
            else if (e[i].kind == AU_ENTRY_TASK)
                printf(" [%.*s]", (int)in->tasks[e[i].task].name_len, in->tasks[e[i].task].name);
            else
                printf(" [...]");
        }
        fputc('\n', stdout);
    }
    for (uint32_t i = 0; i < in->ntasks; i++) {
        uint32_t p = au_resolver_parent(r, i);
        printf("task %.*s: %s", (int)in->tasks[i].name_len, in->tasks[i].name,
               link_names[au_resolver_link(r, i)]);
        if (p != UINT32_MAX) printf(" under %.*s", (int)in->tasks[p].name_len, in->tasks[p].name);
        fputc('\n', stdout);
    }
}

static int resolve_links(host_heap *heap) {
    /* Task ids are whatever the host uses to tell tasks apart (dd-trace-py
     * would use the task objects' addresses); only 0 is reserved. */
    enum { SERVER = 100, REQ7 = 107, DB = 200, LOGGER = 300, REQ8 = 108 };
    static const uint64_t f_server[] = {3}, f_req7[] = {4}, f_db[] = {5, 6}, f_logger[] = {7},
                          f_req8[] = {8};
    /* The thread's own stack, outermost first: the event loop runs the
     * task on CPU (request-8), whose coroutine called escape_html(). */
    static const uint64_t thread_frames[] = {1, 2, 8, 9};
    const au_task tasks[] = {
        {.id = SERVER, .name = "server", .name_len = 6, .nframes = 1, .frames = f_server},
        {.id = REQ7, .name = "request-7", .name_len = 9, .nframes = 1, .frames = f_req7,
         .awaits = DB},
        {.id = DB, .name = "db", .name_len = 2, .nframes = 2, .frames = f_db},
        /* Nobody awaits or holds the logger: without the weak link (its
         * creator) it would be a root of its own, cut off from server. */
        {.id = LOGGER, .name = "logger", .name_len = 6, .nframes = 1, .frames = f_logger,
         .creator = SERVER},
        {.id = REQ8, .name = "request-8", .name_len = 9, .nframes = 1, .frames = f_req8,
         .flags = AU_TASK_RUNNING},
    };
    /* Strong links: server gathers both requests. */
    const au_link links[] = {{.child = REQ7, .parent = SERVER}, {.child = REQ8, .parent = SERVER}};
    const au_thread_sample in = {
        .frames = thread_frames,
        .nframes = 4,
        .tasks = tasks,
        .ntasks = 5,
        .links = links,
        .nlinks = 2,
    };

    au_allocator alloc = {host_realloc, heap};
    au_resolver_limits lim = {.max_depth = 64}; /* zero fields: defaults */
    au_resolver *r = NULL;
    int rc = au_resolver_new(&alloc, &lim, &r);
    if (rc) return fail("resolver", rc);
    au_stacks st;
    rc = au_resolve(r, &in, &st);
    if (rc) {
        au_resolver_free(r);
        return fail("resolve", rc);
    }
    print_resolved(r, &in, &st);
    au_resolver_free(r);
    return 0;
}

int main(int argc, char **argv) {
    /* The header and the compiled core must come from the same copy. */
    if (strcmp(au_version(), AU_VERSION_STRING) != 0) {
        fprintf(stderr, "vendor_host: header %s, core %s\n", AU_VERSION_STRING, au_version());
        return 1;
    }
    host_heap heap = {0, 0, 0};
    int rc;
    if (argc == 3 && !strcmp(argv[1], "sample"))
        rc = sample_pid(atoi(argv[2]), &heap);
    else if (argc == 2 && !strcmp(argv[1], "links"))
        rc = resolve_links(&heap);
    else {
        fprintf(stderr, "usage: vendor_host sample PID | vendor_host links\n");
        return 2;
    }
    /* Every context was freed: what the core took, it gave back. */
    fprintf(stderr, "vendor_host: asyncunwind %s, %lu allocator calls, peak %zu bytes, %zu live\n",
            au_version(), heap.calls, heap.peak_bytes, heap.live_bytes);
    if (rc == 0 && heap.live_bytes != 0) {
        fprintf(stderr, "vendor_host: the core leaked %zu bytes\n", heap.live_bytes);
        return 1;
    }
    return rc;
}
