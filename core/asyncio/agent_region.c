/*
 * The agent's shared region and records list (see au_agent_region.h for the
 * layout, docs/AGENT.md for the agent).
 */
#include "au_agent_region.h"

#include <string.h>

#include "au_bytes.h"

/* What an object's address looks like: page 0 is never mapped, and CPython
 * aligns every object to 8 bytes at least. */
static int object_address(uint64_t a) { return a >= 4096 && (a & 7) == 0; }

int au_agent_parse_header(const uint8_t *bytes, size_t len,
                          au_agent_header *out) {
    if (bytes == NULL || out == NULL) return AU_ERR_ARG;
    if (len < AU_AGENT_HEADER_SIZE ||
        memcmp(bytes, AU_AGENT_MAGIC_PREFIX, 6) != 0) {
        return AU_ERR_FORMAT;
    }
    out->version = au_rd32(bytes + 8);
    out->header_size = au_rd32(bytes + 12);
    out->pid = au_rd32(bytes + 16);
    out->generation = au_rd64(bytes + 24);
    out->list = au_rd64(bytes + 32);
    if (memcmp(bytes, AU_AGENT_MAGIC, 8) != 0 ||
        out->version != AU_AGENT_VERSION) {
        return AU_ERR_UNSUPPORTED;
    }
    if (out->header_size != AU_AGENT_HEADER_SIZE ||
        !object_address(out->list)) {
        return AU_ERR_CORRUPT;
    }
    return AU_OK;
}

int au_agent_pairs(const uint64_t *items, size_t n, uint64_t list,
                   au_agent_pair *out, size_t cap, size_t *nout,
                   au_agent_stats *stats) {
    if (items == NULL || nout == NULL || (out == NULL && cap != 0)) {
        return AU_ERR_ARG;
    }
    *nout = 0;
    if (stats != NULL) memset(stats, 0, sizeof *stats);
    if (n < AU_AGENT_FIRST_ITEM || items[0] != list || items[1] != list) {
        return AU_ERR_CORRUPT;
    }
    au_agent_stats st = {0};
    st.odd = (uint32_t)(n & 1);
    size_t written = 0;
    int over = 0;
    for (size_t i = AU_AGENT_FIRST_ITEM; i + 1 < n; i += 2) {
        uint64_t task_ref = items[i], creator_ref = items[i + 1];
        st.pairs++;
        if (task_ref == creator_ref) {
            st.padding++;
            continue;
        }
        if (!object_address(task_ref) || !object_address(creator_ref)) {
            st.invalid++;
            continue;
        }
        if (written == cap) {
            over = 1;
            continue;
        }
        out[written++] = (au_agent_pair){task_ref, creator_ref};
    }
    *nout = written;
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
