/*
 * The agent's shared region: header, records and their check (see
 * agent_region.h for the layout, docs/AGENT.md for the agent).
 */
#include "agent_region.h"

#include <string.h>

#include "bytes.h"

/* CPython's hash of a non-negative int: the value modulo the Mersenne prime
 * 2^61 - 1 (Python/pyhash.c's _PyHASH_MODULUS; Objects/longobject.c
 * reduces the digits modulo it).  A non-negative value never hashes to -1,
 * the one value CPython replaces. */
#define PYHASH_BITS 61
#define PYHASH_MODULUS ((UINT64_C(1) << PYHASH_BITS) - 1)

static uint64_t py_int_hash(uint64_t x) {
    /* 2^61 = 1 (mod 2^61 - 1): fold the top 3 bits onto the bottom 61. */
    uint64_t r = (x & PYHASH_MODULUS) + (x >> PYHASH_BITS);
    return r >= PYHASH_MODULUS ? r - PYHASH_MODULUS : r;
}

/* CPython's tuple hash since 3.8 (Objects/tupleobject.c, tuplehash): a
 * simplified xxHash64 over the items' hashes, with xxHash's primes. */
#define XXPRIME_1 UINT64_C(11400714785074694791)
#define XXPRIME_2 UINT64_C(14029467366897019727)
#define XXPRIME_5 UINT64_C(2870177450012600261)
#define XXROTATE(x) (((x) << 31) | ((x) >> 33))

uint64_t au_agent_check(uint64_t task, uint64_t task_ref, uint64_t creator,
                        uint64_t creator_ref) {
    const uint64_t items[4] = {task, task_ref, creator, creator_ref};
    uint64_t acc = XXPRIME_5;
    for (int i = 0; i < 4; i++) {
        acc += py_int_hash(items[i]) * XXPRIME_2;
        acc = XXROTATE(acc);
        acc *= XXPRIME_1;
    }
    /* The length, mixed in so that (1, 2) and (1, 2, 0) differ. */
    acc += UINT64_C(4) ^ (XXPRIME_5 ^ UINT64_C(3527539));
    /* -1 is CPython's error value: a hash never takes it. */
    return acc == UINT64_MAX ? UINT64_C(1546275796) : acc;
}

int au_agent_parse_header(const uint8_t *bytes, size_t len,
                          au_agent_header *out) {
    if (bytes == NULL || out == NULL) return AU_ERR_ARG;
    if (len < AU_AGENT_HEADER_SIZE ||
        memcmp(bytes, AU_AGENT_MAGIC, 8) != 0) {
        return AU_ERR_FORMAT;
    }
    out->version = au_rd32(bytes + 8);
    out->header_size = au_rd32(bytes + 12);
    out->record_size = au_rd32(bytes + 16);
    out->capacity = au_rd32(bytes + 20);
    out->used = au_rd32(bytes + 24);
    out->pid = au_rd32(bytes + 28);
    out->generation = au_rd64(bytes + 32);
    if (out->version != AU_AGENT_VERSION) return AU_ERR_UNSUPPORTED;
    if (out->header_size != AU_AGENT_HEADER_SIZE ||
        out->record_size != AU_AGENT_RECORD_SIZE || out->capacity == 0 ||
        out->capacity > AU_AGENT_MAX_CAPACITY || out->used > out->capacity) {
        return AU_ERR_CORRUPT;
    }
    return AU_OK;
}

size_t au_agent_region_span(const au_agent_header *hdr) {
    /* used <= capacity <= 2^24 (checked): no overflow on 32 bits either. */
    return AU_AGENT_HEADER_SIZE + (size_t)AU_AGENT_RECORD_SIZE * hdr->used;
}

int au_agent_parse(const uint8_t *bytes, size_t len, au_agent_header *hdr,
                   au_agent_record *out, size_t cap, size_t *n,
                   au_agent_stats *stats) {
    if (bytes == NULL || n == NULL || (out == NULL && cap != 0)) {
        return AU_ERR_ARG;
    }
    *n = 0;
    au_agent_header h;
    int rc = au_agent_parse_header(bytes, len, &h);
    if (rc != AU_OK) return rc;
    if (hdr != NULL) *hdr = h;

    size_t whole = (len - AU_AGENT_HEADER_SIZE) / AU_AGENT_RECORD_SIZE;
    uint32_t slots = whole < h.used ? (uint32_t)whole : h.used;
    au_agent_stats st = {0};
    st.slots = slots;
    st.truncated = h.used - slots;
    size_t written = 0;
    int over = 0;
    for (uint32_t i = 0; i < slots; i++) {
        const uint8_t *r =
            bytes + AU_AGENT_HEADER_SIZE + (size_t)AU_AGENT_RECORD_SIZE * i;
        uint64_t task = au_rd64(r), task_ref = au_rd64(r + 8);
        uint64_t creator = au_rd64(r + 16), creator_ref = au_rd64(r + 24);
        if (task == 0) {
            st.empty++;
            continue;
        }
        if (au_rd64(r + 32) != au_agent_check(task, task_ref, creator,
                                              creator_ref)) {
            st.torn++;
            continue;
        }
        /* The agent writes only ids of four live objects, and a task is
         * never its own creator. */
        if (task_ref == 0 || creator == 0 || creator_ref == 0 ||
            task == creator) {
            st.invalid++;
            continue;
        }
        st.valid++;
        if (written == cap) {
            over = 1;
            continue;
        }
        out[written++] = (au_agent_record){task, task_ref, creator,
                                           creator_ref, i};
    }
    *n = written;
    if (stats != NULL) *stats = st;
    return over ? AU_ERR_LIMIT : AU_OK;
}

int au_agent_is_region_path(const char *path, size_t path_len) {
    static const char name[] = "/memfd:" AU_AGENT_MEMFD_NAME;
    static const char deleted[] = " (deleted)";
    const size_t nlen = sizeof name - 1, dlen = sizeof deleted - 1;
    if (path == NULL || path_len < nlen || memcmp(path, name, nlen) != 0) {
        return 0;
    }
    return path_len == nlen ||
           (path_len == nlen + dlen &&
            memcmp(path + nlen, deleted, dlen) == 0);
}
