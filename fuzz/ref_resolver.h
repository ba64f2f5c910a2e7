/*
 * A reference link resolver: a second, deliberately naive implementation of
 * docs/RESOLVER.md, written from the specification only (never from
 * core/resolver.c).  The resolver fuzzer (fuzz/resolver_fuzz.c) compares
 * au_resolve() against it on every input.
 *
 * It favours obviousness over speed: qsort, linear passes, malloc per call.
 * It keeps no state between calls.
 */
#ifndef AU_FUZZ_REF_RESOLVER_H
#define AU_FUZZ_REF_RESOLVER_H

#include <stdint.h>

#include "asyncunwind.h"

typedef struct ref_stack {
    uint64_t leaf_id;
    const char *leaf_name;
    uint32_t leaf_name_len;
    uint32_t leaf_task;  /* index into the input tasks, or UINT32_MAX */
    uint32_t flags;      /* AU_STACK_* */
    uint32_t nentries;
    au_entry *entries;   /* root first; FRAME and TRUNCATED entries carry
                            task = UINT32_MAX, TRUNCATED entries id = 0 */
} ref_stack;

typedef struct ref_result {
    int status;          /* au_status */
    uint32_t nstacks;
    ref_stack *stacks;   /* ordered by leaf_id, ascending */
    au_resolver_stats stats; /* .allocations is always 0; only meaningful
                                when status == AU_OK */
} ref_result;

/* Resolve `in` under `limits` (NULL or zero fields: the defaults).  Returns
 * the status, also stored in res->status.  res must be released with
 * ref_result_free whatever the status.  Aborts if malloc fails. */
int ref_resolve(const au_thread_sample *in, const au_resolver_limits *limits,
                ref_result *res);
void ref_result_free(ref_result *res);

#endif /* AU_FUZZ_REF_RESOLVER_H */
