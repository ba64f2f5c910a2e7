/* The profile layer's interface to the writers in render/ and to the
 * tests: read access to a profile's interned names and stacks.
 * Internal; the API is in asyncunwind.h. */
#ifndef ASYNCUNWIND_PROFILE_H
#define ASYNCUNWIND_PROFILE_H

#include "asyncunwind.h"

/* What an interned name stands for.  Writers turn each kind into text the
 * way dump's collapsed form does (docs/CLI.md, docs/OUTPUTS.md). */
typedef enum au_pname_kind {
    AU_PNAME_THREAD = 0, /* a stack's root: id is the TID (AU_PNAME_NATIVE)
                            or the pthread id; text the thread's name */
    AU_PNAME_FRAME = 1,  /* text the qualname (NULL: unknown code, id its
                            address), file and line */
    AU_PNAME_TASK = 2,   /* text the task's name (empty: id its address) */
    AU_PNAME_CYCLE = 3,  /* the chain returns to the task named by text/id */
    AU_PNAME_MARK = 4,   /* a fixed note, text as is: "[truncated]",
                            "[partial stack]", "[dropped: profile full]" */
    AU_PNAME_PROCESS = 5, /* above the thread with AU_PROFILE_PROCESS: id is
                             the pid */
} au_pname_kind;

#define AU_PNAME_NATIVE 0x1u /* THREAD: id is the Linux TID */

typedef struct au_pname {
    uint32_t kind;      /* au_pname_kind */
    uint32_t flags;     /* AU_PNAME_* */
    uint64_t id;
    const char *text;   /* target bytes, not NUL-terminated; NULL if none */
    const char *file;   /* FRAME only, else NULL */
    uint32_t text_len, file_len;
    int32_t line;       /* FRAME: -1 when unknown */
    uint32_t unused;
} au_pname;

/* The allocator the profile was created with (writers borrow it). */
au_allocator au_profile_alloc(const au_profile *p);

uint32_t au_profile_nnames(const au_profile *p);
/* Name `i` (< au_profile_nnames); its pointers stay valid until the next
 * au_profile_add or au_profile_free. */
void au_profile_name(const au_profile *p, uint32_t i, au_pname *out);

uint32_t au_profile_nstacks(const au_profile *p);
/* Stack `i` (< au_profile_nstacks), root first: *names gets its name
 * indices (the first a THREAD, or the dropped MARK alone), *n their number;
 * returns its count.  A stack added only with weight 0 has count 0;
 * writers skip those. */
uint64_t au_profile_stack(const au_profile *p, uint32_t i, const uint32_t **names, uint32_t *n);

/* Heap allocations the profile has made since it was created. */
uint64_t au_profile_allocations(const au_profile *p);

#endif
