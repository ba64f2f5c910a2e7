/*
 * Weak links: the agent's records of which task created which
 * (docs/AGENT.md), read from the list its region names and validated
 * against the tasks of this sample.
 *
 * A record is a pair of weakref objects (task_ref, creator_ref) in a Python
 * list the agent owns; agent_region.c says the list is the agent's (its
 * first pair names it).  That is not enough: a pair outlives its task until
 * the agent compacts the list, and a new task can be born at a dead task's
 * address.  So a pair counts only when both items are weakref objects and
 * their referents are tasks of this sample: when a task dies its weakrefs
 * are cleared (they refer to None) before its memory can be reused, and
 * the list keeps the weakref objects alive, so their addresses cannot be
 * reused either.  A pair that fails is ignored: an older link, or none,
 * never a wrong one.
 *
 * Four batched reads: the header, the list object, its items, and the
 * weakrefs they name.
 */
#include <string.h>

#include "au_agent_region.h"
#include "au_asyncctx.h"
#include "au_bytes.h"

#define NONE AU_AT_NONE
/* The view refuses ranges over 1 MiB: the items are read in pieces. */
#define PIECE (512u << 10)

/* Items read at most, whatever the list's size says: the agent's list holds
 * at most about twice its live pairs plus room, and a task has one pair. */
static uint64_t max_items(const au_tasks *t) { return 4ull * t->lim.max_tasks + 4096; }

/* The items of the records list: *n of them into t->agent_items. */
static int read_items(au_tasks *t, uint64_t list, uint64_t *n) {
    uint64_t base, size;
    *n = 0;
    int rc = au_obj_seq(t->objects, list, &base, &size);
    if (rc) return rc;
    if (size > max_items(t)) size = max_items(t);
    if (au_at_grow(t, &t->agent_items, &t->agent_items_cap, size ? size : 1,
                   sizeof *t->agent_items))
        return AU_ERR_NOMEM;
    size_t bytes = (size_t)size * 8;
    if (au_at_grow(t, &t->ranges, &t->ranges_cap, bytes / PIECE + 1, sizeof *t->ranges))
        return AU_ERR_NOMEM;
    uint32_t nr = 0;
    for (size_t at = 0; at < bytes; at += PIECE)
        t->ranges[nr++] = (au_range){base + at, bytes - at < PIECE ? (uint32_t)(bytes - at) : PIECE};
    if (au_view_want(t->view, t->ranges, nr) == AU_ERR_NOMEM) return AU_ERR_NOMEM;
    uint8_t *raw = (uint8_t *)t->agent_items;
    for (uint32_t i = 0; i < nr; i++)
        if ((rc = au_view_read(t->view, t->ranges[i].addr, raw + (t->ranges[i].addr - base),
                               t->ranges[i].len)))
            return rc;
    /* In place: the target's little-endian words as values. */
    for (uint64_t i = 0; i < size; i++) t->agent_items[i] = au_rd64(raw + 8 * i);
    *n = size;
    return AU_OK;
}

int au_at_agent(au_tasks *t, uint64_t region, int pid) {
    (void)pid; /* the header's pid is the writer's, in its pid namespace */
    uint8_t head[AU_AGENT_HEADER_SIZE];
    au_agent_header hdr;
    if (!region || au_view_read(t->view, region, head, sizeof head) ||
        au_agent_parse_header(head, sizeof head, &hdr))
        return AU_ERR_NOT_FOUND;
    uint64_t n;
    int rc = read_items(t, hdr.list, &n);
    if (rc) return rc == AU_ERR_NOMEM ? rc : AU_ERR_CORRUPT;
    if (au_at_grow(t, &t->agent_pairs, &t->agent_pairs_cap, n / 2 + 1, sizeof *t->agent_pairs))
        return AU_ERR_NOMEM;
    size_t np = 0;
    rc = au_agent_pairs(t->agent_items, (size_t)n, hdr.list, t->agent_pairs, n / 2 + 1, &np, NULL);
    if (rc) return AU_ERR_CORRUPT;
    /* Both weakrefs of every pair in one batch: their type and referent. */
    if (au_at_grow(t, &t->scratch, &t->scratch_cap, 2 * np + 1, sizeof *t->scratch))
        return AU_ERR_NOMEM;
    for (size_t i = 0; i < np; i++) {
        t->scratch[2 * i] = t->agent_pairs[i].task_ref;
        t->scratch[2 * i + 1] = t->agent_pairs[i].creator_ref;
    }
    if (au_at_want(t, t->scratch, (uint32_t)(2 * np), t->off.weakref_wr_object + 8) == AU_ERR_NOMEM)
        return AU_ERR_NOMEM;
    int links = 0;
    for (size_t i = 0; i < np; i++) {
        const au_agent_pair *p = &t->agent_pairs[i];
        uint32_t ti = au_at_find(t, au_obj_weakref(t->objects, p->task_ref));
        if (ti == NONE || t->tasks[ti].creator) continue; /* one link a task: the first */
        uint64_t creator = au_obj_weakref(t->objects, p->creator_ref);
        uint32_t ci = au_at_find(t, creator);
        if (ci == NONE || ci == ti || au_obj_kind(t->objects, p->task_ref) != AU_OK_WEAKREF ||
            au_obj_kind(t->objects, p->creator_ref) != AU_OK_WEAKREF)
            continue;
        t->tasks[ti].creator = creator;
        links++;
    }
    return links;
}
