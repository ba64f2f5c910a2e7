/*
 * The asyncunwind agent's shared region: which task created which.
 *
 * No CPython version records the task that created a task (the weak link of
 * docs/RESOLVER.md).  The pure-Python agent (agent/, docs/AGENT.md) loaded
 * into the target records it in a memfd it maps shared; /proc/PID/maps shows
 * that mapping as "/memfd:asyncunwind-agent (deleted)".  The sampler reads
 * the mapping's bytes from outside; this layer parses them.  It is pure: no
 * I/O, no allocation, no state, and the bytes are hostile (a torn read, a
 * corrupted or foreign mapping): every count is bounded by the caller's
 * length and the format's limits before it is used.
 *
 * Layout (all integers little-endian):
 *
 *   header, 64 bytes
 *     0  magic "AUAGNT01"          24  u32 used: slots [0, used) may hold
 *     8  u32 version = 1                records; never decreases
 *    12  u32 header size = 64      28  u32 pid of the writing process
 *    16  u32 record size = 40      32  u64 generation: changes after every
 *    20  u32 capacity (slots)           write of a record
 *                                  40..64 reserved, zero
 *   record i at 64 + 40 * i
 *     0  u64 task         address of the task (id(task))
 *     8  u64 task_ref     address of a weakref.ref(task) the agent keeps
 *                         alive as long as the record exists
 *    16  u64 creator      address of the task that created it
 *    24  u64 creator_ref  address of weakref.ref(creator), kept alive alike
 *    32  u64 check        au_agent_check(task, task_ref, creator,
 *                         creator_ref): Python's hash of the tuple
 *   A record with task == 0 is an empty slot.
 *
 * What parsing guarantees is only that a record was written whole (its
 * check matches).  The reader must still validate it against the target's
 * memory before using it (docs/AGENT.md, "Validation"): task_ref is a live
 * weakref whose referent is task, and creator_ref's referent is creator.
 * The agent keeps both weakref objects alive while the record exists, so a
 * new task at a dead task's address never inherits a creator.
 */
#ifndef ASYNCUNWIND_AGENT_REGION_H
#define ASYNCUNWIND_AGENT_REGION_H

#include <stddef.h>
#include <stdint.h>

#include "asyncunwind.h"

#define AU_AGENT_MAGIC "AUAGNT01" /* 8 bytes, no NUL in the region */
#define AU_AGENT_VERSION 1u
#define AU_AGENT_HEADER_SIZE 64u
#define AU_AGENT_RECORD_SIZE 40u
/* The memfd's name, AU_AGENT_MEMFD_NAME, is in asyncunwind.h: the maps
 * path is "/memfd:" AU_AGENT_MEMFD_NAME, with " (deleted)" after it. */
/* The most slots a region may have (the agent's own limit): capacity is
 * rejected above it, so no size computed here can overflow. */
#define AU_AGENT_MAX_CAPACITY (1u << 24)

typedef struct au_agent_header {
    uint32_t version;
    uint32_t header_size;
    uint32_t record_size;
    uint32_t capacity;
    uint32_t used;
    uint32_t pid; /* as the writer sees it: inside a pid namespace it differs
                     from the host's pid */
    uint64_t generation;
} au_agent_header;

typedef struct au_agent_record {
    uint64_t task;
    uint64_t task_ref;
    uint64_t creator;
    uint64_t creator_ref;
    uint32_t slot; /* its index in the region */
} au_agent_record;

typedef struct au_agent_stats {
    uint32_t slots;     /* slots examined: min(used, what len covers) */
    uint32_t valid;     /* whole records, those beyond cap included */
    uint32_t empty;     /* task == 0 */
    uint32_t torn;      /* check mismatch: torn by a concurrent write, or
                           corrupt */
    uint32_t invalid;   /* check matches, but a field is 0 or task ==
                           creator: never written by the agent */
    uint32_t truncated; /* slots below `used` that len does not cover */
} au_agent_stats;

/*
 * The header of the region whose first `len` bytes are `bytes`.
 *
 * AU_ERR_ARG: bytes or out is NULL.  AU_ERR_FORMAT: len < 64, or the magic
 * is not "AUAGNT01" (not an agent region).  AU_ERR_UNSUPPORTED: another
 * version.  AU_ERR_CORRUPT: version 1 with a header or record size other
 * than 64 and 40, capacity 0 or above AU_AGENT_MAX_CAPACITY, or used above
 * capacity.  On error *out is unspecified.
 */
int au_agent_parse_header(const uint8_t *bytes, size_t len,
                          au_agent_header *out);

/* How many bytes of the region hold its header and its used slots:
 * 64 + 40 * used, for a header au_agent_parse_header accepted (so at most
 * 64 + 40 * 2^24, about 671 MB).  What the sampler reads. */
size_t au_agent_region_span(const au_agent_header *hdr);

/*
 * The whole records of the region whose first `len` bytes are `bytes`.
 *
 * Parses the header (errors as au_agent_parse_header), then examines slots
 * [0, used) that lie entirely within len, in slot order, and writes each
 * record with a matching check, non-zero fields and task != creator into
 * out[0..cap).  *n is the number written; hdr (if not NULL) gets the
 * header and stats (if not NULL) the counts above.  More records than cap:
 * the first cap are written and AU_ERR_LIMIT is returned (stats->valid
 * counts them all; with out NULL and cap 0 that is a count).  A len
 * shorter than the used slots is not an error (the caller may read less):
 * the slots beyond it are counted in stats->truncated.  AU_ERR_ARG: bytes
 * or n NULL, or out NULL with a non-zero cap.
 */
int au_agent_parse(const uint8_t *bytes, size_t len, au_agent_header *hdr,
                   au_agent_record *out, size_t cap, size_t *n,
                   au_agent_stats *stats);

/*
 * The check of a record: CPython's hash of the tuple
 * (task, task_ref, creator, creator_ref), as a 64-bit build of CPython 3.8
 * to 3.15 computes it, as unsigned (docs/AGENT.md, "The check").
 */
uint64_t au_agent_check(uint64_t task, uint64_t task_ref, uint64_t creator,
                        uint64_t creator_ref);

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
