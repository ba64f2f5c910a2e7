/*
 * The asyncunwind agent's shared region and records: which task created
 * which.
 *
 * No CPython version records the task that created a task (the weak link of
 * docs/RESOLVER.md).  The pure-Python agent (agent/, docs/AGENT.md) loaded
 * into the target records it as pairs of weakrefs in a Python list, and
 * publishes the list's address in a memfd it maps shared; /proc/PID/maps
 * shows that mapping as "/memfd:asyncunwind-agent (deleted)".  The sampler
 * reads the header and the list's items from outside; this layer parses
 * them.  It is pure: no I/O, no allocation, no state, and the bytes are
 * hostile (a torn read, a corrupted or foreign mapping, a list since freed):
 * every count is bounded by the caller's before it is used.
 *
 * Header, 64 bytes, little-endian:
 *
 *     0  magic "AUAGNT02"          24  u64 generation: lists published so
 *     8  u32 version = 2                far; changes after the address
 *    12  u32 header size = 64      32  u64 address of the records list
 *    16  u32 pid of the writing    40..64 reserved, zero
 *        process
 *    20  u32 reserved, zero
 *
 * The records list, a Python list: [itself, itself, task_ref, creator_ref,
 * task_ref, creator_ref, ...].  Each pair from index 2 on holds a weakref
 * to a task and a weakref to the task that created it.  The first pair
 * names the list itself, so that a reader that followed an address to
 * memory that no longer holds the agent's list refuses it.  Pairs whose
 * two items are the same object are padding (None, None).
 *
 * What parsing guarantees is only that the items came from the agent's
 * list.  The reader must still validate every pair against the target's
 * memory before using it (docs/AGENT.md, "Reading it"): both items are
 * weakref objects, and their referents are pending tasks of the sample.
 * The list keeps both weakref objects alive while the pair is in it, and a
 * task's weakref refers to None once the task dies, so a new task at a dead
 * task's address never inherits a creator.
 */
#ifndef ASYNCUNWIND_AGENT_REGION_H
#define ASYNCUNWIND_AGENT_REGION_H

#include <stddef.h>
#include <stdint.h>

#include "asyncunwind.h"

#define AU_AGENT_MAGIC "AUAGNT02" /* 8 bytes, no NUL in the region */
/* The first 6 bytes of every version's magic. */
#define AU_AGENT_MAGIC_PREFIX "AUAGNT"
#define AU_AGENT_VERSION 2u
#define AU_AGENT_HEADER_SIZE 64u
/* Items of the records list before its first pair: the list itself. */
#define AU_AGENT_FIRST_ITEM 2u
/* The memfd's name, AU_AGENT_MEMFD_NAME, is in asyncunwind.h: the maps
 * path is "/memfd:" AU_AGENT_MEMFD_NAME, with " (deleted)" after it. */

typedef struct au_agent_header {
    uint32_t version;
    uint32_t header_size;
    uint32_t pid; /* as the writer sees it: inside a pid namespace it differs
                     from the host's pid */
    uint64_t generation;
    uint64_t list; /* address of the records list */
} au_agent_header;

/* One candidate record: the addresses of two weakref objects, to validate. */
typedef struct au_agent_pair {
    uint64_t task_ref;
    uint64_t creator_ref;
} au_agent_pair;

typedef struct au_agent_stats {
    uint32_t pairs;   /* pairs examined (from index 2) */
    uint32_t padding; /* both items the same object (None, None) */
    uint32_t invalid; /* an item 0, below 4096 or not 8-aligned: not an
                         object's address (the pair is skipped) */
    uint32_t odd;     /* 1 when the items ended in half a pair */
} au_agent_stats;

/*
 * The header of the region whose first `len` bytes are `bytes`.
 *
 * AU_ERR_ARG: bytes or out is NULL.  AU_ERR_FORMAT: len < 64, or the magic
 * does not start with "AUAGNT" (not an agent region).  AU_ERR_UNSUPPORTED:
 * another version of the agent's format (another magic or version).
 * AU_ERR_CORRUPT: version 2 with a header size other than 64, or a list
 * address that is 0, below 4096 or not 8-aligned.  On error *out is
 * unspecified.
 */
int au_agent_parse_header(const uint8_t *bytes, size_t len,
                          au_agent_header *out);

/*
 * The records in the first n items (pointer values, as read from the
 * target) of the records list at address `list`.
 *
 * AU_ERR_CORRUPT when n < 2 or items 0 and 1 are not `list` (not the
 * agent's list: memory reused since the address was published, or a torn
 * address).  Else examines the pairs from index 2 in order and writes each
 * whose two items differ and are non-zero, 8-aligned and at least 4096 into
 * out[0..cap); *nout is the number written, stats (if not NULL) gets the
 * counts above.  An odd n drops the last item.  More records than cap: the
 * first cap are written and AU_ERR_LIMIT returned.  AU_ERR_ARG: items or
 * nout NULL, or out NULL with a non-zero cap.
 */
int au_agent_pairs(const uint64_t *items, size_t n, uint64_t list,
                   au_agent_pair *out, size_t cap, size_t *nout,
                   au_agent_stats *stats);

/*
 * 1 when `path` (path_len bytes, as a maps line shows it, " (deleted)"
 * suffix removed or not) names an agent region: exactly
 * "/memfd:asyncunwind-agent", optionally followed by " (deleted)".  Else 0.
 * After a fork without exec a process can show two such mappings (the
 * parent's, if the agent could not unmap it, and its own): the region whose
 * header pid is the process's own pid (its innermost NSpid) is the live one.
 */
int au_agent_is_region_path(const char *path, size_t path_len);

#endif
