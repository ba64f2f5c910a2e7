/* A snapshot file (docs/SNAPSHOT.md) as an editable model, for the
 * structure-aware mutators: parse a valid file, change META, threads,
 * regions and FAILED records freely, normalize (sort, and drop what the
 * format forbids), and write a valid file back.  Plus the small random
 * choices every mutator makes on it.  Aborts on out of memory. */
#ifndef ASYNCUNWIND_FUZZ_SNAPMODEL_H
#define ASYNCUNWIND_FUZZ_SNAPMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "fuzz/fuzz_helpers.h" /* xmalloc, xrealloc: the model's memory */
#include "au_snapshot_format.h"

typedef struct mregion {
    uint64_t addr;
    uint32_t len, cap;
    uint8_t *data;
} mregion;

typedef struct mfailed {
    uint64_t addr, len;
} mfailed;

typedef struct mthread {
    uint64_t id;
    uint32_t len;
    uint8_t name[AU_SNAP_MAX_NAME];
} mthread;

typedef struct model {
    uint32_t pid, version;
    uint64_t runtime, time_ns;
    int has_async;          /* META has the asyncio addresses (40+ bytes) */
    uint64_t asyncio_debug, agent;
    uint8_t *extra;         /* META bytes past those, kept as they are */
    uint32_t extra_len;
    mthread *threads;
    uint32_t nthreads;
    mregion *regions;
    uint32_t nregions, regions_cap;
    mfailed *failed;
    uint32_t nfailed, failed_cap;
} model;

/* 0 when data is a valid snapshot (m filled), -1 otherwise (m empty). */
int model_parse(const uint8_t *data, size_t size, model *m);
void model_free(model *m);
/* Both, for a cross-over: 0 when both parse, else -1 with both empty. */
int model_parse_pair(const uint8_t *d1, size_t s1, const uint8_t *d2, size_t s2, model *a,
                     model *b);

/* A copy of bytes (zeros when NULL) at addr; normalize afterwards. */
mregion *model_add_region(model *m, uint64_t addr, const uint8_t *bytes, uint32_t len);
void model_drop_region(model *m, uint32_t i);
void model_add_failed(model *m, uint64_t addr, uint64_t len);

/* Sort regions and FAILED records, and drop what the format does not
 * allow (empty, too long, at 0, wrapping or overlapping regions: the
 * later of two overlapping ones goes; duplicate FAILED records). */
void model_normalize(model *m);

/* The file's size, and the file itself (model_size bytes) into out. */
size_t model_size(const model *m);
size_t model_write(const model *m, uint8_t *out);

/* Writes m to out if it fits in max_size, and checks that the result
 * parses (a CHECK).  Returns its size, or 0 when it does not fit. */
size_t model_emit(const model *m, uint8_t *out, size_t max_size);

/* The region holding addr, or UINT32_MAX. */
uint32_t model_find(const model *m, uint64_t addr);
/* Room after region i (to the next one, or the top of the space), and
 * before it (down to address 1). */
uint64_t model_gap_after(const model *m, uint32_t i);
uint64_t model_gap_before(const model *m, uint32_t i);
/* The bytes at [addr, addr + len) when one region holds them, else NULL. */
uint8_t *model_bytes(const model *m, uint64_t addr, uint32_t len);

/* ---- random choices ----------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

uint64_t rnd(rng *r);
uint32_t below(rng *r, uint32_t n); /* [0, n), 0 when n is 0 */

/* A region (m has some), bigger ones more likely: they hold more of the
 * target. */
uint32_t pick_region(const model *m, rng *r);
/* Offset in g of a word aligned in the target's address space, or
 * UINT32_MAX when g holds none. */
uint32_t pick_word(const mregion *g, rng *r);
/* A pointer into the snapshot: a region's start, inside it, or around it. */
uint64_t some_pointer(const model *m, rng *r);
/* A boundary value, or a small change of old. */
uint64_t interesting_value(uint64_t old, rng *r);


#endif
