/*
 * The asyncio model's sample (au_pytasks.h): where the tasks are, reading
 * them, their names, which thread runs which loop; then the chains
 * (pycoro.c), links (pylinks.c) and the agent's weak links (pyagent.c).
 *
 * Where the tasks are differs by version (au_py_private.tasks_kind):
 *   3.9-3.11   the WeakSet `_all_tasks` of the _asyncio module;
 *   3.12-3.13  the WeakSet `_scheduled_tasks`, plus the set `_eager_tasks`
 *              (an eager task is in the second until its first suspension);
 *   3.14+      a linked list per thread state, plus one in the interpreter
 *              for tasks of threads that have exited.
 * For the first two, the containers are found once through sys.modules
 * (a search of a few hundred dict keys) and then revalidated each sample
 * by the type of the set: a search is repeated only when that fails and
 * sys.modules changed since the last failed search (a program that never
 * imports asyncio costs one read per sample).
 *
 * Only pending tasks are kept: a finished task waits for no one and holds
 * no one, and the resolver would show it as a leaf.
 */
#include <string.h>

#include "au_asyncctx.h"
#include "au_bytes.h"
#include "au_internal.h"

#define NONE AU_AT_NONE
#define MAX_INTERPS 64u
#define NAME_MAX_CP 256u /* code points of a task name kept */

int au_at_grow(au_tasks *t, void *pptr, uint32_t *cap, size_t need, size_t elem) {
    return au_grow(&t->alloc, &t->allocations, (void **)pptr, cap, need, elem);
}


int au_at_want(au_tasks *t, const uint64_t *addrs, uint32_t n, uint32_t len) {
    if (au_at_grow(t, &t->ranges, &t->ranges_cap, n ? n : 1, sizeof *t->ranges)) return AU_ERR_NOMEM;
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++)
        if (addrs[i]) t->ranges[m++] = (au_range){addrs[i], len};
    return au_view_want(t->view, t->ranges, m);
}

/* ---- the task table ------------------------------------------------------- */

static uint32_t tslot(const au_tasks *t, uint64_t addr) {
    uint32_t mask = t->ttab_slots - 1, i = (uint32_t)au_mix64(addr) & mask;
    while (t->ttab[i].stamp == t->tstamp_now && t->ttab[i].key != addr) i = (i + 1) & mask;
    return i;
}

uint32_t au_at_find(const au_tasks *t, uint64_t addr) {
    if (!addr || !t->ttab_slots) return NONE;
    uint32_t s = tslot(t, addr);
    return t->ttab[s].stamp == t->tstamp_now ? t->ttab[s].val : NONE;
}

void au_at_tprefetch(const au_tasks *t, uint64_t addr) {
    if (addr && t->ttab_slots) AU_PREFETCH(&t->ttab[(uint32_t)au_mix64(addr) & (t->ttab_slots - 1)]);
}

/* An empty table with room for n tasks at most half full (linear probing
 * stays short there, and the table half the size of a quarter-full one
 * misses the cache less). */
static int table_reset(au_tasks *t, uint32_t n) {
    uint32_t slots = 64;
    while (slots < 2ull * n) slots *= 2;
    if (slots > t->ttab_slots) {
        if (au_at_grow(t, &t->ttab, &t->ttab_cap, slots, sizeof *t->ttab)) return AU_ERR_NOMEM;
        memset(t->ttab, 0, (size_t)t->ttab_cap * sizeof *t->ttab);
        t->ttab_slots = slots;
        t->tstamp_now = 0;
    }
    if (++t->tstamp_now == 0) {
        memset(t->ttab, 0, (size_t)t->ttab_cap * sizeof *t->ttab);
        t->tstamp_now = 1;
    }
    return AU_OK;
}

/* Append a candidate task address, without looking for it first: a list
 * walk (3.14+) and a set's keys give each task once, and the duplicates
 * a corrupted list or set may hold, or a task in both of 3.12's sets, are
 * dropped when read_tasks builds the table (looking each address up as
 * it was found cost a cache miss a task at 10,000 tasks: 8 % of a
 * sample).
 * Returns its index, or NONE when it is invalid or over the limit.
 * *nomem is set on AU_ERR_NOMEM. */
static uint32_t append_candidate(au_tasks *t, uint64_t addr, int *nomem) {
    if (!addr || (addr & 7)) return NONE;
    if (t->ntasks == t->lim.max_tasks) {
        t->out->flags |= AU_TR_LIMIT_TASKS;
        return NONE;
    }
    if (au_at_grow(t, &t->tasks, &t->tasks_cap, (size_t)t->ntasks + 1, sizeof *t->tasks)) {
        *nomem = 1;
        return NONE;
    }
    uint32_t i = t->ntasks++;
    memset(&t->tasks[i], 0, sizeof t->tasks[i]);
    t->tasks[i].addr = addr;
    t->tasks[i].thread = NONE;
    t->tasks[i].waiter_task = NONE;
    return i;
}

/* ---- where the tasks are (3.9-3.13) ------------------------------------------ */

/* The main interpreter (id 0) of the runtime. */
static uint64_t main_interp(au_tasks *t) {
    const au_py_offsets *o = t->layout.o;
    uint64_t interp = au_obj_ptr(t->objects, t->reader->runtime, o->runtime_interpreters_head);
    for (uint32_t i = 0; interp && i < MAX_INTERPS; i++) {
        uint64_t id;
        if (au_obj_read_ptr(t->objects, interp, o->interp_id, &id)) return 0;
        if (id == 0) return interp;
        interp = au_obj_ptr(t->objects, interp, o->interp_next);
    }
    return 0;
}

/* Whether the view refused a page this sample (max_pages). */
static int view_limited(const au_tasks *t) {
    au_view_stats vs;
    au_view_get_stats(t->view, &vs);
    return vs.limited != 0;
}

/* Search sys.modules for the task containers. */
static int find_anchors(au_tasks *t) {
    const au_py_offsets *o = t->layout.o;
    const au_py_private *p = &t->priv;
    au_objects *ob = t->objects;
    au_anchors *a = &t->anchors;
    if (!a->interp) a->interp = main_interp(t);
    uint64_t modules = au_obj_ptr(ob, a->interp, o->interp_modules);
    uint64_t used = au_obj_ptr(ob, modules, o->dict_ma_used);
    if (!modules) return AU_ERR_NOT_FOUND;
    /* Nothing was imported since the last search failed. */
    if (a->fails && modules == a->modules && used == a->modules_used) return AU_ERR_NOT_FOUND;
    a->modules = modules;
    a->modules_used = used;
    a->weakset_data = a->eager_set = a->set_type = 0;
    uint64_t mod, md, ws, data = 0, eager = 0;
    int rc = au_obj_dict_get(ob, modules, p->asyncio_module, &mod);
    if (rc == AU_OK) rc = (md = au_obj_ptr(ob, mod, p->module_md_dict)) ? AU_OK : AU_ERR_READ;
    if (rc == AU_OK && p->tasks_weakset_name) {
        rc = au_obj_dict_get(ob, md, p->tasks_weakset_name, &ws);
        if (rc == AU_OK) rc = au_obj_attr(ob, ws, p->weakset_data_attr, &data);
    }
    if (rc == AU_OK && p->tasks_eager_set_name) rc = au_obj_dict_get(ob, md, p->tasks_eager_set_name, &eager);
    if (rc == AU_OK && (au_obj_kind(ob, data) != AU_OK_SET ||
                        (eager && au_obj_kind(ob, eager) != AU_OK_SET)))
        rc = AU_ERR_CORRUPT;
    if (rc) {
        a->fails++;
        /* A search the page limit cut short proves nothing: the next
         * sample searches again. */
        if (view_limited(t)) a->modules = 0;
        return rc;
    }
    a->fails = 0;
    a->weakset_data = data;
    a->eager_set = eager;
    a->set_type = au_obj_type(ob, data);
    return AU_OK;
}

static int anchors_valid(au_tasks *t) {
    au_anchors *a = &t->anchors;
    if (!a->weakset_data || !a->set_type) return 0;
    return au_obj_type(t->objects, a->weakset_data) == a->set_type &&
           (!a->eager_set || au_obj_type(t->objects, a->eager_set) == a->set_type);
}

/* Read a set's keys into scratch; *n = how many.  A set of more tasks
 * than the limit gives its first max_tasks, and says so. */
static int set_keys(au_tasks *t, uint64_t set, uint32_t *n) {
    *n = 0;
    /* Room for the keys the set's table can hold, not for max_tasks: a
     * program of a few tasks gets a few slots, not 512 KiB. */
    uint64_t table;
    uint32_t slots, cap = t->lim.max_tasks;
    int rc = au_obj_set_table(t->objects, set, &table, &slots);
    if (rc == AU_OK) {
        if (slots < cap) cap = slots;
        if (au_at_grow(t, &t->scratch, &t->scratch_cap, cap, sizeof *t->scratch)) return AU_ERR_NOMEM;
        rc = au_obj_table_keys(t->objects, table, slots, t->scratch, cap, n);
    }
    if (rc == AU_ERR_LIMIT) t->out->flags |= AU_TR_LIMIT_TASKS;
    return rc == AU_ERR_NOMEM ? rc : AU_OK;
}

static int tasks_from_sets(au_tasks *t) {
    int nomem = 0, rc;
    if (!anchors_valid(t)) {
        /* The search reads a page per key of sys.modules: none of them for
         * the next sample to prefetch. */
        int was = au_view_set_transient(t->view, 1);
        rc = find_anchors(t);
        au_view_set_transient(t->view, was);
        if (rc != AU_OK) return AU_OK;
    }
    t->out->flags |= AU_TR_ASYNCIO;
    uint32_t n;
    /* The WeakSet: a set of weakrefs, whose referents are the tasks. */
    if ((rc = set_keys(t, t->anchors.weakset_data, &n))) return rc;
    if ((rc = au_at_want(t, t->scratch, n, 64)) == AU_ERR_NOMEM) return rc;
    uint32_t wr_len = t->layout.o->weakref_wr_object + 8, d = t->ahead;
    for (uint32_t i = 0; i < n && !nomem; i++) {
        if (d && i + d < n) au_at_prefetch(t, t->scratch[i + d], wr_len);
        append_candidate(t, au_obj_weakref(t->objects, t->scratch[i]), &nomem);
    }
    if (t->anchors.eager_set && !nomem) {
        if ((rc = set_keys(t, t->anchors.eager_set, &n))) return rc;
        for (uint32_t i = 0; i < n && !nomem; i++) append_candidate(t, t->scratch[i], &nomem);
    }
    return nomem ? AU_ERR_NOMEM : AU_OK;
}

/* ---- where the tasks are (3.14+) ------------------------------------------- */

/* The tasks of the circular list whose head node is at head. */
static int walk_list(au_tasks *t, uint64_t head, int *nomem) {
    const au_py_offsets *o = t->layout.o;
    const au_py_private *p = &t->priv;
    uint64_t node = au_obj_ptr(t->objects, head, o->llist_next);
    /* Bounded by the task limit.  A list that loops back to a node other
     * than its head (corrupt, or changing under the walk) ends once the
     * loop is seen: Brent's method compares each node with one saved at
     * doubling intervals, so the walk stops within twice the list's
     * length, and read_tasks drops the tasks added twice. */
    uint64_t mark = node;
    uint32_t power = 1, steps = 0;
    for (uint32_t i = 0; node && node != head && i <= t->lim.max_tasks; i++) {
        /* A list is a chain of misses, one node after the other.  The
         * previous sample walked the same list in the same order, and its
         * tasks are still in the array beyond the ones added so far: hint
         * where the walk will likely be a few nodes on. */
        uint32_t at = t->ntasks + t->ahead;
        if (t->ahead && at < t->prev_ntasks) au_at_prefetch(t, t->tasks[at].addr + p->task_node, 16);
        if (append_candidate(t, node - p->task_node, nomem) == NONE) break;
        node = au_obj_ptr(t->objects, node, o->llist_next);
        if (node == mark) break;
        if (++steps == power) {
            mark = node;
            power = power < (1u << 30) ? power * 2 : power;
            steps = 0;
        }
    }
    return *nomem ? AU_ERR_NOMEM : AU_OK;
}

static int tasks_from_lists(au_tasks *t, const au_pysample *ps) {
    const au_py_offsets *o = t->layout.o;
    int nomem = 0;
    t->out->flags |= AU_TR_ASYNCIO;
    for (uint32_t i = 0; i < ps->nthreads && !nomem; i++)
        walk_list(t, ps->threads[i].tstate + o->tstate_asyncio_tasks_head, &nomem);
    if (!t->anchors.interp) t->anchors.interp = main_interp(t);
    if (t->anchors.interp && !nomem)
        walk_list(t, t->anchors.interp + o->interp_asyncio_tasks_head, &nomem);
    return nomem ? AU_ERR_NOMEM : AU_OK;
}

/* ---- the tasks ---------------------------------------------------------------- */

/* AU_OK, or AU_ERR_NOMEM: a name that cannot be read is left out, but an
 * allocation that failed fails the sample, not only the name. */
static int read_name(au_tasks *t, au_atask *a) {
    au_objects *ob = t->objects;
    const au_py_private *p = &t->priv;
    a->name = NULL;
    a->name_len = 0;
    au_okind k = au_obj_kind(ob, a->name_obj);
    if (k == AU_OK_STR)
        return au_obj_str(ob, a->name_obj, NAME_MAX_CP, &a->name, &a->name_len) == AU_ERR_NOMEM
                   ? AU_ERR_NOMEM
                   : AU_OK;
    int64_t v;
    /* 3.12+ keeps an unnamed task's counter until get_name() is called. */
    if (k == AU_OK_INT && au_obj_int(ob, a->name_obj, &v) == AU_OK && p->task_name_prefix) {
        char buf[48];
        size_t pl = strlen(p->task_name_prefix);
        if (pl > 24) return AU_OK;
        memcpy(buf, p->task_name_prefix, pl);
        char digits[24];
        int nd = 0;
        uint64_t u = (uint64_t)v;
        do {
            digits[nd++] = (char)('0' + u % 10);
            u /= 10;
        } while (u && nd < 20);
        for (int i = 0; i < nd; i++) buf[pl + i] = digits[nd - 1 - i];
        const char *s;
        uint32_t n;
        /* Names live in the objects' arena, like decoded str names. */
        int rc = au_obj_intern(ob, buf, (uint32_t)pl + (uint32_t)nd, &s, &n);
        if (rc == AU_ERR_NOMEM) return rc;
        if (rc == AU_OK) {
            a->name = s;
            a->name_len = n;
        }
    }
    return AU_OK;
}

/* Read every candidate; keep the pending tasks. */
static int read_tasks(au_tasks *t) {
    const au_py_private *p = &t->priv;
    if (au_at_grow(t, &t->scratch, &t->scratch_cap, t->ntasks ? t->ntasks : 1, sizeof *t->scratch))
        return AU_ERR_NOMEM;
    for (uint32_t i = 0; i < t->ntasks; i++) t->scratch[i] = t->tasks[i].addr;
    int rc = au_at_want(t, t->scratch, t->ntasks, p->sizeof_task);
    if (rc == AU_ERR_NOMEM) return rc;
    /* Each task's fields come from one window on its first bytes: one
     * page lookup a task, not one a field. */
    const au_py_offsets *o = t->layout.o;
    uint32_t ptrs[] = {o->ob_type,       p->fut_loop,      p->task_fut_waiter,
                       p->task_coro,     p->task_name,     p->fut_callback0,
                       p->fut_callbacks, p->fut_awaited_by};
    uint32_t span = au_pr_span_end(ptrs, 8, 8);
    if (p->fut_state + 4 > span) span = p->fut_state + 4;
    if (au_pyoff_present(p->fut_awaited_by_is_set) && p->fut_awaited_by_is_set + 1 > span)
        span = p->fut_awaited_by_is_set + 1;
    uint32_t keep = 0, d = t->ahead;
    for (uint32_t i = 0; i < t->ntasks; i++) {
        if (d && i + d < t->ntasks) au_at_prefetch(t, t->tasks[i + d].addr, span);
        au_atask a = t->tasks[i];
        au_win w;
        uint8_t b[4];
        au_win_open(t, &w, a.addr, span);
        if (au_win_type_kind(t, &w, a.addr + o->ob_type) != AU_OK_TASK ||
            au_win_read(t, &w, a.addr + p->fut_state, b, 4) ||
            (int32_t)au_rd32(b) != p->fut_state_pending)
            continue;
        a.flags |= AU_AT_PENDING;
        a.loop = au_win_ptr(t, &w, a.addr + p->fut_loop);
        a.waiter = au_win_ptr(t, &w, a.addr + p->task_fut_waiter);
        a.coro = au_win_ptr(t, &w, a.addr + p->task_coro);
        a.name_obj = au_win_ptr(t, &w, a.addr + p->task_name);
        a.cb0 = au_win_ptr(t, &w, a.addr + p->fut_callback0);
        a.cbs = au_win_ptr(t, &w, a.addr + p->fut_callbacks);
        if (au_pyoff_present(p->fut_awaited_by)) {
            a.awaited_by = au_win_ptr(t, &w, a.addr + p->fut_awaited_by);
            a.awaited_by_is_set =
                au_win_read(t, &w, a.addr + p->fut_awaited_by_is_set, b, 1) == AU_OK && b[0] != 0;
        }
        t->tasks[keep++] = a;
    }
    t->ntasks = keep;
    /* Rebuild the index (tasks moved), dropping a task listed twice. */
    if ((rc = table_reset(t, t->ntasks))) return rc;
    keep = 0;
    /* Four times the usual distance: this loop's body is a few dozen
     * instructions, too short for 8 hints to hide a slot's miss. */
    for (uint32_t i = 0, td = 4 * d; i < t->ntasks; i++) {
        if (td && i + td < t->ntasks) au_at_tprefetch(t, t->tasks[i + td].addr);
        uint32_t s = tslot(t, t->tasks[i].addr);
        if (t->ttab[s].stamp == t->tstamp_now) continue;
        t->tasks[keep] = t->tasks[i];
        t->ttab[s] = (au_at_tslot){t->tasks[i].addr, keep, t->tstamp_now};
        keep++;
    }
    t->ntasks = keep;
    /* Names: their objects in one batch, then each decoded. */
    for (uint32_t i = 0; i < t->ntasks; i++) t->scratch[i] = t->tasks[i].name_obj;
    if ((rc = au_at_want(t, t->scratch, t->ntasks, 64)) == AU_ERR_NOMEM) return rc;
    for (uint32_t i = 0; i < t->ntasks; i++) {
        if (d && i + d < t->ntasks) au_at_prefetch(t, t->tasks[i + d].name_obj, 64);
        if ((rc = read_name(t, &t->tasks[i]))) return rc;
    }
    return AU_OK;
}

/* ---- threads and their loops -------------------------------------------------- */

static uint64_t running_loop(au_tasks *t, uint64_t tstate) {
    const au_py_offsets *o = t->layout.o;
    const au_py_private *p = &t->priv;
    au_objects *ob = t->objects;
    uint64_t loop = 0;
    switch (p->rloop_kind) {
    case AU_PY_RLOOP_TSTATE:
        loop = au_obj_ptr(ob, tstate, o->tstate_asyncio_running_loop);
        break;
    case AU_PY_RLOOP_TSDICT:
    case AU_PY_RLOOP_TSDICT_HOLDER: {
        uint64_t d = au_obj_ptr(ob, tstate, o->tstate_dict), v;
        if (!d || !p->rloop_key || au_obj_dict_get(ob, d, p->rloop_key, &v)) return 0;
        loop = p->rloop_kind == AU_PY_RLOOP_TSDICT ? v : au_obj_ptr(ob, v, p->rloop_holder_loop);
        break;
    }
    default:
        return 0;
    }
    return loop && !(loop & 7) && !au_obj_is_none(ob, loop) ? loop : 0;
}

static int map_threads(au_tasks *t, const au_pysample *ps) {
    if (au_at_grow(t, &t->thread_loop, &t->thread_loop_cap, ps->nthreads ? ps->nthreads : 1,
                   sizeof *t->thread_loop))
        return AU_ERR_NOMEM;
    for (uint32_t i = 0; i < ps->nthreads; i++) t->thread_loop[i] = running_loop(t, ps->threads[i].tstate);
    for (uint32_t k = 0; k < t->ntasks; k++)
        for (uint32_t i = 0; i < ps->nthreads; i++)
            if (t->thread_loop[i] && t->tasks[k].loop == t->thread_loop[i]) {
                t->tasks[k].thread = i;
                break;
            }
    return AU_OK;
}

/* ---- threading names ------------------------------------------------------------- */

/* The name each thread has in Python (threading.Thread.name): the kernel's
 * name is the program's before 3.14 and cut at 15 bytes after.  Found in
 * threading._active, which maps thread idents (the tstate's thread_id) to
 * Thread objects.  Threads started otherwise (_thread) have none. */
static int thread_names(au_tasks *t, const au_pysample *ps) {
    const au_py_offsets *o = t->layout.o;
    au_objects *ob = t->objects;
    au_anchors *a = &t->anchors;
    uint32_t n = ps->nthreads;
    if (au_at_grow(t, &t->thread_name, &t->thread_name_cap, n ? n : 1, sizeof *t->thread_name) ||
        au_at_grow(t, &t->thread_name_len, &t->thread_name_len_cap, n ? n : 1,
                   sizeof *t->thread_name_len))
        return AU_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++) t->thread_name[i] = NULL, t->thread_name_len[i] = 0;
    if (!a->interp) a->interp = main_interp(t);
    uint64_t modules = au_obj_ptr(ob, a->interp, o->interp_modules);
    if (!a->threads_active || au_obj_kind(ob, a->threads_active) != AU_OK_DICT) {
        uint64_t used = au_obj_ptr(ob, modules, o->dict_ma_used);
        if (a->threads_used && used == a->threads_used) return AU_OK;
        a->threads_used = used;
        a->threads_active = 0;
        uint64_t mod, md, active;
        int was = au_view_set_transient(t->view, 1); /* a search, like find_anchors */
        int found = au_obj_dict_get(ob, modules, "threading", &mod) == AU_OK &&
                    (md = au_obj_ptr(ob, mod, t->priv.module_md_dict)) != 0 &&
                    au_obj_dict_get(ob, md, "_active", &active) == AU_OK;
        au_view_set_transient(t->view, was);
        if (!found || au_obj_kind(ob, active) != AU_OK_DICT) {
            if (view_limited(t)) a->threads_used = 0; /* as find_anchors */
            return AU_OK;
        }
        a->threads_active = active;
    }
    uint32_t cap = n + 64;
    if (au_at_grow(t, &t->items, &t->items_cap, cap, sizeof *t->items)) return AU_ERR_NOMEM;
    uint32_t m;
    if (au_obj_dict_items(ob, a->threads_active, t->items, cap, &m)) return AU_OK;
    for (uint32_t k = 0; k < m; k++) {
        int64_t ident;
        if (au_obj_int(ob, t->items[k].key, &ident)) continue;
        for (uint32_t i = 0; i < n; i++) {
            if (ps->threads[i].thread_id != (uint64_t)ident) continue;
            uint64_t name;
            if (au_obj_attr(ob, t->items[k].value, "_name", &name) == AU_OK &&
                au_obj_kind(ob, name) == AU_OK_STR &&
                au_obj_str(ob, name, 256, &t->thread_name[i], &t->thread_name_len[i]) ==
                    AU_ERR_NOMEM)
                return AU_ERR_NOMEM; /* an allocation that failed fails the sample */
            break;
        }
    }
    return AU_OK;
}

/* ---- the sample ------------------------------------------------------------------ */

/* 3.14+: the layout the target publishes wins over the compiled one.  It
 * is read every sample (it appears once _asyncio is imported, and a
 * snapshot must hold it); when it is absent or invalid the compiled
 * layout stays. */
static void apply_asyncio_debug(au_tasks *t, uint64_t addr) {
    t->off = t->reader->off;
    t->priv = *t->table;
    const au_py_asyncio_debug_layout *d = t->priv.asyncio_debug;
    uint8_t blob[512];
    if (!addr || !d || d->size > sizeof blob || au_view_read(t->view, addr, blob, d->size)) return;
    au_py_offsets off = t->off;
    au_py_private priv = t->priv;
    if (au_py_asyncio_debug_apply(&priv, &off, blob, d->size) >= 0) {
        t->off = off;
        t->priv = priv;
    }
}

static int sample(au_tasks *t, const au_pysample *ps, uint64_t asyncio_debug) {
    int rc;
    t->phase = AU_AT_PHASE_DEBUG;
    if ((rc = au_view_begin(t->view, 1))) return rc;
    au_view_stats vs;
    au_view_get_stats(t->view, &vs);
    t->ahead = vs.prefetched >= AU_AT_HINT_PAGES ? AU_AT_AHEAD : 0;
    au_objects_begin(t->objects);
    apply_asyncio_debug(t, asyncio_debug);
    if ((rc = table_reset(t, 1024))) return rc;
    t->phase = AU_AT_PHASE_FIND;
    rc = t->priv.tasks_kind == AU_PY_TASKS_LLIST ? tasks_from_lists(t, ps) : tasks_from_sets(t);
    if (rc) return rc;
    t->phase = AU_AT_PHASE_TASKS;
    if ((rc = read_tasks(t))) return rc;
    t->phase = AU_AT_PHASE_THREADS;
    if ((rc = map_threads(t, ps)) || (rc = thread_names(t, ps))) return rc;
    t->phase = AU_AT_PHASE_CHAINS;
    if ((rc = au_at_chains(t))) return rc;
    t->phase = AU_AT_PHASE_CODE;
    if (au_at_grow(t, &t->frames, &t->frames_cap, t->nraw ? t->nraw : 1, sizeof *t->frames))
        return AU_ERR_NOMEM;
    if ((rc = au_pr_resolve_code(t->reader, t->raw, t->nraw, t->frames))) return rc;
    t->phase = AU_AT_PHASE_LINKS;
    return au_at_links(t);
}

int au_tasks_sample(au_tasks *t, const au_pysample *ps, int pid, uint64_t asyncio_debug,
                    uint64_t agent, au_tasks_result *out) {
    if (!t || !ps || !out) return AU_ERR_ARG;
    memset(out, 0, sizeof *out);
    t->out = out;
    t->prev_ntasks = t->ntasks;
    t->ntasks = t->nraw = t->nlinks = 0;
    t->allocations = 0;
    int rc = sample(t, ps, asyncio_debug);
    if (!rc && agent) {
        t->phase = AU_AT_PHASE_AGENT;
        rc = au_at_agent(t, agent, pid);
        if (rc >= 0) {
            out->flags |= AU_TR_AGENT;
            out->creators = (uint32_t)rc;
            rc = AU_OK;
        } else if (rc != AU_ERR_NOMEM) {
            rc = AU_OK;
        }
    }
    t->phase = AU_AT_PHASE_NONE;
    if (rc) return rc;
    /* Pages the view refused (max_pages): the objects on them were left
     * out, as tasks over max_tasks are. */
    if (view_limited(t)) out->flags |= AU_TR_LIMIT_PAGES;
    out->ntasks = t->ntasks;
    out->tasks = t->tasks;
    out->nlinks = t->nlinks;
    out->links = t->links;
    out->link_tasks = t->link_tasks;
    out->nframes = t->nraw;
    out->frames = t->frames;
    out->thread_loop = t->thread_loop;
    out->thread_name = t->thread_name;
    out->thread_name_len = t->thread_name_len;
    out->nthreads = ps->nthreads;
    return AU_OK;
}

void au_tasks_get_view_stats(const au_tasks *t, au_view_stats *out) {
    au_view_get_stats(t ? t->view : NULL, out); /* zeroes out without a view */
}

uint32_t au_tasks_phase(const au_tasks *t) { return t ? t->phase : AU_AT_PHASE_NONE; }

uint64_t au_tasks_allocations(const au_tasks *t) {
    return t ? t->allocations + au_objects_allocations(t->objects) : 0;
}

int au_tasks_new(const au_allocator *alloc, au_pyreader *reader, au_memsrc *mem,
                 const au_tasks_limits *limits, au_tasks **out) {
    if (!out) return AU_ERR_ARG;
    *out = NULL;
    if (!reader || !mem) return AU_ERR_ARG;
    const au_py_private *table = au_py_private_for(reader->off.version_hex);
    if (!table) return AU_ERR_UNSUPPORTED;
    au_allocator a;
    au_tasks *t = au_alloc_zeroed(alloc, sizeof *t, &a);
    if (!t) return AU_ERR_NOMEM;
    t->alloc = a;
    t->reader = reader;
    t->mem = mem;
    t->table = table;
    t->off = reader->off;
    t->priv = *table;
    t->lim.max_tasks = limits && limits->max_tasks ? limits->max_tasks : AU_DEFAULT_SAMPLE_TASKS;
    t->lim.max_coro_frames =
        limits && limits->max_coro_frames ? limits->max_coro_frames : AU_DEFAULT_MAX_CORO_FRAMES;
    t->lim.max_pages = limits ? limits->max_pages : 0;
    if (t->lim.max_tasks > (1u << 24)) t->lim.max_tasks = 1u << 24;
    au_objlayout_init(&t->layout, &t->off, &t->priv);
    int rc = au_view_new(&a, mem, t->lim.max_pages, &t->view);
    if (rc == AU_OK) au_view_set_exact(t->view, limits && limits->exact);
    if (rc == AU_OK) rc = au_objects_new(&a, t->view, &t->layout, &t->objects);
    if (rc) {
        au_tasks_free(t);
        return rc;
    }
    *out = t;
    return AU_OK;
}

void au_tasks_free(au_tasks *t) {
    if (!t) return;
    au_allocator a = t->alloc;
    au_objects_free(t->objects);
    au_view_free(t->view);
    AU_FREE_ARRAY(&a, t->tasks, t->tasks_cap);
    AU_FREE_ARRAY(&a, t->raw, t->raw_cap);
    AU_FREE_ARRAY(&a, t->raw_gen, t->raw_gen_cap);
    AU_FREE_ARRAY(&a, t->frames, t->frames_cap);
    AU_FREE_ARRAY(&a, t->links, t->links_cap);
    AU_FREE_ARRAY(&a, t->link_tasks, t->link_tasks_cap);
    AU_FREE_ARRAY(&a, t->thread_loop, t->thread_loop_cap);
    AU_FREE_ARRAY(&a, t->thread_name, t->thread_name_cap);
    AU_FREE_ARRAY(&a, t->thread_name_len, t->thread_name_len_cap);
    AU_FREE_ARRAY(&a, t->items, t->items_cap);
    AU_FREE_ARRAY(&a, t->scratch, t->scratch_cap);
    AU_FREE_ARRAY(&a, t->ranges, t->ranges_cap);
    AU_FREE_ARRAY(&a, t->ttab, t->ttab_cap);
    AU_FREE_ARRAY(&a, t->cur, t->cur_cap);
    AU_FREE_ARRAY(&a, t->found, t->found_cap);
    AU_FREE_ARRAY(&a, t->waiters, t->waiters_cap);
    AU_FREE_ARRAY(&a, t->slots, t->slots_cap);
    AU_FREE_ARRAY(&a, t->waiters_ix.head, t->waiters_ix.head_cap);
    AU_FREE_ARRAY(&a, t->waiters_ix.next, t->waiters_ix.next_cap);
    AU_FREE_ARRAY(&a, t->slots_ix.head, t->slots_ix.head_cap);
    AU_FREE_ARRAY(&a, t->slots_ix.next, t->slots_ix.next_cap);
    AU_FREE_ARRAY(&a, t->slot_hits, t->slot_hits_cap);
    AU_FREE_ARRAY(&a, t->memo_pool, t->memo_pool_cap);
    AU_FREE_ARRAY(&a, t->agent_items, t->agent_items_cap);
    AU_FREE_ARRAY(&a, t->agent_pairs, t->agent_pairs_cap);
    a.realloc(a.ud, t, sizeof *t, 0);
}
