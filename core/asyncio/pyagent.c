/*
 * Weak links: the agent's records of which task created which
 * (docs/AGENT.md), read from its region and validated against the tasks
 * of this sample.
 *
 * agent_region.c says a record was written whole.  That is not enough: a
 * record can outlive its task for a moment (the agent frees slots lazily),
 * and a new task can be born at a dead task's address.  So a record counts
 * only when the weakref objects it names, which the agent keeps alive for
 * as long as the record exists, still refer to the task and to the
 * creator: when a task dies its weakrefs are cleared (they refer to None)
 * before its memory can be reused, and a weakref kept alive cannot be
 * reused either.  A record that fails is ignored: an older link, or none,
 * never a wrong one.
 *
 * The region is one read: its header and used slots lie side by side.
 */
#include <string.h>

#include "agent_region.h"
#include "asyncctx.h"

#define NONE AU_AT_NONE

/* Slots read at most, whatever the header says: the agent keeps about
 * twice the peak of live tasks, so four times the task limit is ample. */
static uint64_t max_slots(const au_tasks *t) { return 4ull * t->lim.max_tasks + 1024; }

int au_at_agent(au_tasks *t, uint64_t region, int pid) {
    (void)pid; /* the header's pid is the writer's, in its pid namespace */
    uint8_t head[AU_AGENT_HEADER_SIZE];
    au_agent_header hdr;
    if (!region || au_view_read(t->view, region, head, sizeof head) ||
        au_agent_parse_header(head, sizeof head, &hdr))
        return AU_ERR_NOT_FOUND;
    uint64_t used = hdr.used < max_slots(t) ? hdr.used : max_slots(t);
    size_t span = AU_AGENT_HEADER_SIZE + (size_t)used * AU_AGENT_RECORD_SIZE;
    if (au_at_grow(t, &t->agent_bytes, &t->agent_bytes_cap, span, 1) ||
        au_at_grow(t, &t->agent_recs, &t->agent_recs_cap, used ? used : 1, sizeof *t->agent_recs))
        return AU_ERR_NOMEM;
    /* One read for the region, in pieces the view accepts. */
    for (size_t at = 0; at < span;) {
        uint32_t piece = span - at < (512u << 10) ? (uint32_t)(span - at) : 512u << 10;
        au_range r = {region + at, piece};
        if (au_view_want(t->view, &r, 1) == AU_ERR_NOMEM) return AU_ERR_NOMEM;
        if (au_view_read(t->view, region + at, t->agent_bytes + at, piece)) return AU_ERR_READ;
        at += piece;
    }
    size_t n = 0;
    int rc = au_agent_parse(t->agent_bytes, span, NULL, t->agent_recs, used, &n, NULL);
    if (rc && rc != AU_ERR_LIMIT) return rc == AU_ERR_NOMEM ? rc : AU_ERR_CORRUPT;
    /* The records about tasks of this sample, and their weakrefs in one
     * batch. */
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const au_agent_record *r = &t->agent_recs[i];
        if (au_at_find(t, r->task) == NONE || au_at_find(t, r->creator) == NONE) continue;
        t->agent_recs[k++] = *r;
    }
    if (au_at_grow(t, &t->scratch, &t->scratch_cap, 2 * (size_t)k + 1, sizeof *t->scratch))
        return AU_ERR_NOMEM;
    for (uint32_t i = 0; i < k; i++) {
        t->scratch[2 * i] = t->agent_recs[i].task_ref;
        t->scratch[2 * i + 1] = t->agent_recs[i].creator_ref;
    }
    if (au_at_want(t, t->scratch, 2 * k, 64) == AU_ERR_NOMEM) return AU_ERR_NOMEM;
    int links = 0;
    for (uint32_t i = 0; i < k; i++) {
        const au_agent_record *r = &t->agent_recs[i];
        au_atask *a = &t->tasks[au_at_find(t, r->task)];
        if (a->creator) continue; /* one link a task: the first valid record */
        if (au_obj_kind(t->objects, r->task_ref) != AU_OK_WEAKREF ||
            au_obj_kind(t->objects, r->creator_ref) != AU_OK_WEAKREF ||
            au_obj_weakref(t->objects, r->task_ref) != r->task ||
            au_obj_weakref(t->objects, r->creator_ref) != r->creator)
            continue;
        a->creator = r->creator;
        links++;
    }
    return links;
}
