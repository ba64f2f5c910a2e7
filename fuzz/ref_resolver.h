/*
 * A reference link resolver: a second, deliberately naive implementation of
 * docs/RESOLVER.md, written from the specification only (never from
 * core/resolve/resolver.c).  The resolver fuzzer (fuzz/resolver_fuzz.c) compares
 * au_resolve(), au_stack_entries() and au_resolver_parent() against it on
 * every input.
 *
 * It favours obviousness over speed: qsort, linear passes, one chain walk
 * per stack, malloc per call.  It keeps no state between calls.
 */
#ifndef AU_FUZZ_REF_RESOLVER_H
#define AU_FUZZ_REF_RESOLVER_H

#include <stdint.h>

#include "asyncunwind.h"

typedef struct ref_stack {
    uint64_t leaf_id;       /* 0 for AU_STACK_THREAD_ONLY */
    const char *leaf_name;  /* NULL for AU_STACK_THREAD_ONLY */
    uint32_t leaf_name_len;
    uint32_t leaf_task;     /* index into the input tasks, or UINT32_MAX */
    uint32_t flags;         /* AU_STACK_* */
    uint32_t ntasks;        /* chain length, the leaf included */
    uint32_t closing;       /* AU_STACK_CYCLE: the task the chain returns
                               to; else UINT32_MAX */
    uint32_t *chain;        /* ntasks task indices, root side first */
} ref_stack;

typedef struct ref_result {
    int status;              /* au_status */
    uint32_t nstacks;
    ref_stack *stacks;       /* ordered by leaf_id, ascending */
    uint32_t ntasks;
    uint32_t *parent;        /* rule 1, per input task: UINT32_MAX for a
                                root or an ignored task */
    uint32_t *link;          /* the level that gave it (au_link_kind) */
    au_resolver_stats stats; /* .allocations is always 0; only meaningful
                                when status == AU_OK */
    /* What the entries are made of. */
    const au_thread_sample *in;
    uint32_t running;        /* R, or UINT32_MAX */
    uint32_t boundary;       /* b with R, else the thread's frame count */
} ref_result;

/* Resolve `in` under `limits` (NULL or zero fields: the defaults).  Returns
 * the status, also stored in res->status.  res must be released with
 * ref_result_free whatever the status.  The result refers to `in`, which
 * must stay unchanged while it is used.  Aborts if malloc fails. */
int ref_resolve(const au_thread_sample *in, const au_resolver_limits *limits,
                ref_result *res);
void ref_result_free(ref_result *res);

/* Stack k's entries as au_stack_entries() defines them: returns the whole
 * length and writes at most cap entries to buf; a longer stack keeps its
 * first cap - 1 entries and then an AU_ENTRY_TRUNCATED entry.  FRAME and
 * TRUNCATED entries carry task = UINT32_MAX, TRUNCATED entries id = 0. */
uint64_t ref_stack_entries(const ref_result *res, uint32_t k, au_entry *buf,
                           uint32_t cap);

#endif /* AU_FUZZ_REF_RESOLVER_H */
