/*
 * The CPython model, part 1: interpreters, threads and frame chains.
 *
 * One sample walks _PyRuntime -> interpreters -> thread states -> each
 * thread's frame chain.  Every pointer comes from the target and is
 * hostile: each walk is bounded (interpreters, threads, chunks, frames),
 * repeated thread states and frames are detected, and a failed read ends
 * that one walk with a flag instead of failing the sample.
 *
 * 3.11+ keeps frames in per-thread "datastack" chunks: those are copied in
 * one read per chunk and frames are then parsed from the copy, so a deep
 * stack costs a handful of reads instead of one per frame.  Frames outside
 * the chunks (coroutines' frames live in their generator objects, 3.12+
 * entry frames on the C stack) are read one by one.
 */
#include <string.h>

#include "asyncunwind.h"
#include "au_internal.h"
#include "au_pyreader.h"

#define NONE UINT32_MAX
#define PAGE 4096u
#define WIDEN_SLACK 2048u /* bytes past a chunk's top the next sample reads */
#define SEEN_MIN 64u      /* slots of a new reader's seen set */


/* ---- datastack chunks (3.11+) ----------------------------------------- */

static const uint8_t *span_bytes(const au_pyreader *r, const au_span *s) {
    return s->bytes ? s->bytes : r->spanbuf + s->off;
}

/* The span holding [addr, addr+len), or NULL. */
static au_span *span_lookup(au_pyreader *r, uint32_t n, uint64_t addr, uint32_t len) {
    for (uint32_t i = 0; i < n; i++) {
        au_span *s = &r->spans[i];
        if (addr >= s->addr && addr - s->addr <= s->len && len <= s->len - (addr - s->addr))
            return s;
    }
    return NULL;
}

/* A span of len bytes at addr: where the warm path's prefetch holds it,
 * used in place (a 40-frame chunk is 6 KiB to copy each sample), else read
 * into spanbuf. */
static int add_span(au_pyreader *r, uint32_t *nspans, uint64_t *used, uint64_t addr,
                    uint64_t len) {
    if (au_pr_grow(r, &r->spans, &r->spans_cap, (size_t)*nspans + 1, sizeof *r->spans))
        return AU_ERR_NOMEM;
    const uint8_t *in_place = au_pr_peek(r, addr, (uint32_t)len);
    if (in_place) {
        r->spans[(*nspans)++] = (au_span){addr, len, 0, in_place, UINT64_MAX, 0};
        return AU_OK;
    }
    if (au_pr_grow(r, &r->spanbuf, &r->spanbuf_cap, (size_t)(*used + len), 1) ||
        au_pr_grow(r, &r->reads, &r->reads_cap, 1, sizeof *r->reads))
        return AU_ERR_NOMEM;
    r->reads[0] = (au_read){addr, r->spanbuf + *used, (uint32_t)len, AU_OK};
    if (au_pr_batch(r, 1) != AU_OK) return AU_ERR_READ;
    r->spans[*nspans] = (au_span){addr, len, *used, NULL, UINT64_MAX, 0};
    (*nspans)++;
    *used += len;
    return AU_OK;
}

/* Copy the thread's datastack chunks: the current one up to `top`, then
 * each older one up to its saved top.  Failures just end the copy: frames
 * not covered are read one by one later. */
static int copy_chunks(au_pyreader *r, uint64_t chunk, uint64_t top, uint32_t *nspans) {
    const au_py_offsets *o = &r->off;
    uint64_t used = 0;
    *nspans = 0;
    if (au_pr_grow(r, &r->reads, &r->reads_cap, 1, sizeof *r->reads)) return AU_ERR_NOMEM;
    if (!chunk || top <= chunk || top - chunk < o->chunk_data ||
        top - chunk > AU_PR_MAX_CHUNK_BYTES)
        return AU_OK;
    int rc = add_span(r, nspans, &used, chunk, top - chunk);
    if (rc == AU_ERR_NOMEM) return rc;
    if (rc) return AU_OK;
    /* The top moves with every call and return: let the next sample's
     * prefetch cover a little more of the chunk, so that a stack a few
     * frames deeper still hits.  Not past the end of top's page (another
     * page costs as much as another read) nor by more than WIDEN_SLACK
     * (every byte is copied, every sample), and within the chunk. */
    const uint8_t *first = span_bytes(r, &r->spans[0]);
    uint64_t size = au_rd64(first + o->chunk_size);
    uint64_t end = (top + PAGE - 1) & ~(uint64_t)(PAGE - 1);
    if (end - top > WIDEN_SLACK) end = top + WIDEN_SLACK;
    if (size > AU_PR_MAX_CHUNK_BYTES) size = AU_PR_MAX_CHUNK_BYTES;
    if (end - chunk > size) end = chunk + size;
    if (end > top) au_pr_hint_widen(r, chunk, (uint32_t)(end - chunk));
    uint64_t prev = au_rd64(first + o->chunk_previous);
    uint32_t hdr = o->chunk_data;
    while (prev && *nspans < AU_PR_MAX_CHUNKS) {
        if (hdr > 64) break;
        rc = au_pr_read(r, prev, hdr);
        if (rc == AU_ERR_NOMEM) return rc;
        if (rc) break;
        uint64_t next = au_rd64(r->buf + o->chunk_previous);
        uint64_t size = au_rd64(r->buf + o->chunk_size);
        uint64_t slots = au_rd64(r->buf + o->chunk_top);
        if (slots > (AU_PR_MAX_CHUNK_BYTES - hdr) / 8) break;
        uint64_t len = hdr + slots * 8;
        if (len > size || used + len > AU_PR_MAX_CHUNK_BYTES) break;
        rc = add_span(r, nspans, &used, prev, len);
        if (rc) return rc == AU_ERR_NOMEM ? rc : AU_OK;
        prev = next;
    }
    return AU_OK;
}

/* ---- frame chains ------------------------------------------------------ */

/* Double the seen set, keeping this walk's entries.  It starts at
 * SEEN_MIN slots and grows with the longest walk outside datastack chunks
 * (3.9 and 3.10 frames, mostly): a walk visits at most 2 x max_frames
 * frames, so it never needs more than 4 x max_frames slots, and a warm
 * reader never grows it.  Sized 4 x max_frames up front, it was 192 KiB
 * to zero in every new reader: a fuzzer opens thousands a second. */
static int seen_grow(au_pyreader *r) {
    uint32_t cap = r->seen_cap * 2;
    uint64_t *keys = r->alloc.realloc(r->alloc.ud, NULL, 0, (size_t)cap * sizeof *keys);
    uint32_t *stamps = r->alloc.realloc(r->alloc.ud, NULL, 0, (size_t)cap * sizeof *stamps);
    if (!keys || !stamps) {
        AU_FREE_ARRAY(&r->alloc, keys, cap);
        AU_FREE_ARRAY(&r->alloc, stamps, cap);
        return AU_ERR_NOMEM;
    }
    r->stats.allocations += 2;
    memset(stamps, 0, (size_t)cap * sizeof *stamps);
    for (uint32_t k = 0; k < r->seen_cap; k++) {
        if (r->seen_stamp[k] != r->seen_serial) continue;
        uint32_t i = (uint32_t)au_mix64(r->seen[k]) & (cap - 1);
        while (stamps[i]) i = (i + 1) & (cap - 1);
        keys[i] = r->seen[k];
        stamps[i] = r->seen_serial;
    }
    AU_FREE_ARRAY(&r->alloc, r->seen, r->seen_alloc);
    AU_FREE_ARRAY(&r->alloc, r->seen_stamp, r->stamp_alloc);
    r->seen = keys;
    r->seen_stamp = stamps;
    r->seen_cap = r->seen_alloc = r->stamp_alloc = cap;
    return AU_OK;
}

/* Has the walk of the current thread visited addr?  Marks it visited.
 * An open-addressing set whose slots carry the thread's serial, so nothing
 * is cleared between threads.  It holds seen_n entries this walk, at most
 * half its slots: *nomem is set when growing failed. */
static int seen_before(au_pyreader *r, uint64_t addr, int *nomem) {
    if (2 * (r->seen_n + 1) > r->seen_cap && seen_grow(r)) {
        *nomem = 1;
        return 0;
    }
    uint32_t mask = r->seen_cap - 1, i = (uint32_t)au_mix64(addr) & mask;
    while (r->seen_stamp[i] == r->seen_serial) {
        if (r->seen[i] == addr) return 1;
        i = (i + 1) & mask;
    }
    r->seen_stamp[i] = r->seen_serial;
    r->seen[i] = addr;
    r->seen_n++;
    return 0;
}

static uint32_t frame_read_len(const au_py_offsets *o) {
    uint32_t ptrs[] = {o->frame_previous, o->frame_code};
    uint32_t end = au_pr_span_end(ptrs, 2, 8);
    uint32_t instr = o->instr_kind <= AU_PY_INSTR_UNIT_LASTI ? 4 : 8;
    if (o->frame_instr + instr > end) end = o->frame_instr + instr;
    if (au_pr_present(o->frame_owner) && o->frame_owner + 1 > end) end = o->frame_owner + 1;
    if (au_pr_present(o->frame_gen) && o->frame_gen + 8 > end) end = o->frame_gen + 8;
    if (au_pr_present(o->frame_entry) && o->frame_entry + 1 > end) end = o->frame_entry + 1;
    return end;
}

/* The highest owner byte a frame can hold (3.11+): the owners the
 * offsets name and those the walker skips.  Anything above is not a frame. */
static int owner_max(const au_py_offsets *o) {
    int m = o->frame_owner_thread;
    if (o->frame_owner_generator > m) m = o->frame_owner_generator;
    if (o->frame_owner_frame_object > m) m = o->frame_owner_frame_object;
    for (int b = 31; b > m; b--)
        if (o->frame_skip_owners >> b & 1) return b;
    return m;
}

/* Walk one thread's chain from frame `cur`, appending raw frames
 * (innermost first) at r->raw[*n...].
 *
 * The target runs while its chain is read, so besides a corrupted link
 * the walk meets links that were true a moment ago.  These shapes of
 * them flag the thread partial instead of handing out a stack that never
 * existed (seen sampling busy asyncio programs, on every version, in 1-3 %
 * of their samples before these checks):
 *   - a frame whose owner byte no CPython writes, or whose code pointer is
 *     0 or misaligned: 3.11 and 3.12 publish a new C-level frame
 *     (tstate->cframe) before they set its current_frame, so for a moment
 *     the chain starts in whatever that C stack slot held;
 *   - a frame owned by its frame object (3.11+): its function returned;
 *   - a chain that ends (previous NULL) where no thread's stack ends.  A
 *     thread's stack ends at the frame its outermost interpreter call
 *     started with: an entry frame (3.12+: an owner of frame_skip_owners),
 *     a frame marked is_entry (3.11), an executing frame (<= 3.10).  And
 *     never at a generator's or coroutine's frame: a suspended one has no
 *     caller, so it suspended between the read of its callee and its own
 *     (<= 3.11; only a generator driven from C with no Python frame below
 *     it, a thread whose target is coro.send, ends a true stack that way).
 *     Before 3.11 this also catches a finished coroutine's frame object,
 *     kept as its code's spare frame: it has the code and no caller. */
static int walk_frames(au_pyreader *r, au_pythread *t, uint64_t cur, uint32_t nspans,
                       uint32_t *n) {
    const au_py_offsets *o = &r->off;
    uint32_t len = frame_read_len(o), count = 0;
    int legacy = o->instr_kind <= AU_PY_INSTR_UNIT_LASTI;
    int has_owner = au_pr_present(o->frame_owner), omax = has_owner ? owner_max(o) : 0;
    int entry_at = au_pr_present(o->frame_entry) ? (int)o->frame_entry : -1;
    int end_ok = 1;    /* the frame visited last may end a thread's stack */
    uint64_t last = 0; /* that frame */
    uint64_t win = 0, win_len = 0; /* what r->buf holds from the last read */
    if (++r->seen_serial == 0) {
        memset(r->seen_stamp, 0, (size_t)r->stamp_alloc * sizeof *r->seen_stamp);
        r->seen_serial = 1;
    }
    r->seen_n = 0;
    int nomem = 0;
    uint32_t visited = 0;
    while (cur) {
        /* Skipped (C-owned) frames count towards the walk's bound too: at
         * most 2 x max_frames of any kind, so the seen set never grows
         * past 4 x max_frames slots. */
        if (count == r->lim.max_frames || visited++ == 2 * r->lim.max_frames) {
            t->flags |= AU_THREAD_TRUNCATED;
            break;
        }
        if (cur & 7) {
            t->flags |= AU_THREAD_PARTIAL;
            break;
        }
        /* A frame in a datastack chunk lies below every frame of that
         * chunk visited before it (a chunk grows upwards and a frame's
         * callers were pushed first), so a chain that comes back within a
         * chunk is caught without the seen set: a repeat lands inside the
         * range visited, a corrupted link above it. */
        const uint8_t *f = NULL;
        au_span *sp = span_lookup(r, nspans, cur, len);
        if (sp) {
            if (cur >= sp->low) {
                t->flags |= cur <= sp->high ? AU_THREAD_CYCLE : AU_THREAD_PARTIAL;
                break;
            }
            if (sp->low == UINT64_MAX) sp->high = cur;
            sp->low = cur;
            f = span_bytes(r, sp) + (cur - sp->addr);
        } else if (seen_before(r, cur, &nomem)) {
            t->flags |= AU_THREAD_CYCLE;
            break;
        } else if (nomem) {
            return AU_ERR_NOMEM;
        }
        if (!f && cur >= win && cur - win <= win_len && len <= win_len - (cur - win))
            f = r->buf + (cur - win);
        if (!f) {
            /* Before 3.11 every frame is a heap object, and a caller's frame
             * usually sits a little below its callee's (they come from the
             * same free list and arenas): read the frame's page and the one
             * before it, so one read often serves several frames.  If that
             * window is not all mapped, read the frame alone. */
            uint64_t lo = (cur & ~(uint64_t)(PAGE - 1)), hi = cur + len;
            lo = legacy && lo >= PAGE ? lo - PAGE : cur;
            int rc = au_pr_read(r, lo, (uint32_t)(hi - lo));
            if (rc != AU_OK && rc != AU_ERR_NOMEM && lo != cur) {
                lo = cur;
                rc = au_pr_read(r, cur, len);
            }
            if (rc == AU_ERR_NOMEM) return rc;
            if (rc != AU_OK) {
                t->flags |= AU_THREAD_PARTIAL;
                break;
            }
            win = lo;
            win_len = hi - lo;
            f = r->buf + (cur - win);
        }
        uint64_t code = au_rd64(f + o->frame_code) & ~o->frame_code_tag_mask;
        uint64_t instr = o->instr_kind <= AU_PY_INSTR_UNIT_LASTI
                             ? (uint64_t)(int64_t)(int32_t)au_rd32(f + o->frame_instr)
                             : au_rd64(f + o->frame_instr);
        uint64_t prev = au_rd64(f + o->frame_previous);
        int owner = has_owner ? f[o->frame_owner] : 0;
        int skip = has_owner && owner <= omax && (o->frame_skip_owners >> owner & 1);
        if (!skip && (owner > omax || (has_owner && owner == o->frame_owner_frame_object) ||
                      !code || (code & 7))) {
            t->flags |= AU_THREAD_PARTIAL;
            break;
        }
        uint64_t gen = 0;
        if (!skip) {
            if (au_pr_grow(r, &r->raw, &r->raw_cap, (size_t)*n + 1, sizeof *r->raw))
                return AU_ERR_NOMEM;
            gen = au_pr_present(o->frame_gen) ? au_rd64(f + o->frame_gen) : 0;
            r->raw[(*n)++] = (au_rawframe){cur, code, instr, gen};
            count++;
        }
        if (o->frame_skip_owners)
            end_ok = skip;
        else if (has_owner)
            end_ok = owner != o->frame_owner_generator && (entry_at < 0 || f[entry_at]);
        else
            end_ok = !gen;
        last = cur;
        cur = prev;
    }
    /* Only a walk that ran out of links (not one cut above) has an end.
     * Before 3.11 whether that frame executes is a byte beyond the ones a
     * frame's read covers, read for the last frame alone; a snapshot
     * written before this check has not got it, and replays as it did. */
    if (!cur && end_ok && au_pr_present(o->frame_exec) && last) {
        int rc = au_pr_read(r, last + o->frame_exec, 1);
        if (rc == AU_ERR_NOMEM) return rc;
        if (rc == AU_OK && (int8_t)r->buf[0] != o->frame_exec_value) end_ok = 0;
    }
    if (!cur && !end_ok) t->flags |= AU_THREAD_PARTIAL;
    t->nframes = count;
    return AU_OK;
}

/* ---- threads ------------------------------------------------------------ */

typedef struct tstate_view {
    uint64_t next, frame, chunk, top;
} tstate_view;

/* Read one thread state; fills t and v. */
static int read_tstate(au_pyreader *r, uint64_t addr, au_pythread *t, tstate_view *v) {
    const au_py_offsets *o = &r->off;
    uint32_t fields[] = {o->tstate_next, o->tstate_frame, o->tstate_thread_id,
                         o->tstate_native_thread_id, o->tstate_datastack_chunk,
                         o->tstate_datastack_top};
    uint64_t val[6];
    int rc = au_pr_read_fields(r, addr, fields, 6, val);
    if (rc) return rc;
    memset(t, 0, sizeof *t);
    t->tstate = addr;
    t->thread_id = val[2];
    t->native_id = val[3];
    v->next = val[0];
    v->frame = val[1];
    v->chunk = val[4];
    v->top = val[5];
    /* 3.9/3.10: the TID from the pthread's descriptor.  A read that fails
     * or gives no plausible TID leaves it unknown, not the stack partial. */
    if (!au_pr_present(o->tstate_native_thread_id) && r->tid_offset && t->thread_id &&
        !(t->thread_id & 7) && t->thread_id + r->tid_offset > t->thread_id) {
        rc = au_pr_read(r, t->thread_id + r->tid_offset, 4);
        if (rc == AU_ERR_NOMEM) return rc;
        uint32_t tid = rc == AU_OK ? au_rd32(r->buf) : 0;
        if (tid <= INT32_MAX) t->native_id = tid;
    }
    if (v->frame && au_pr_present(o->cframe_current_frame)) {
        uint64_t cframe = v->frame;
        v->frame = 0;
        rc = au_pr_read(r, cframe + o->cframe_current_frame, 8);
        if (rc == AU_ERR_NOMEM) return rc;
        if (rc == AU_OK)
            v->frame = au_rd64(r->buf);
        else
            t->flags |= AU_THREAD_PARTIAL;
        /* Only the thread state's own root cframe has no frame: one on the
         * C stack without a frame was published a moment before its frame
         * was set. */
        if (rc == AU_OK && !v->frame && (cframe < addr || cframe - addr >= o->sizeof_tstate))
            t->flags |= AU_THREAD_PARTIAL;
    }
    return AU_OK;
}

static int thread_seen(const au_pyreader *r, uint32_t n, uint64_t tstate) {
    for (uint32_t i = 0; i < n; i++)
        if (r->threads[i].tstate == tstate) return 1;
    return 0;
}

/* Walk one interpreter's threads, appending to r->threads. */
static int walk_threads(au_pyreader *r, uint64_t head, int64_t interp_id, uint32_t *nthreads,
                        uint32_t *nraw, uint32_t *flags) {
    uint64_t cur = head;
    while (cur) {
        if (*nthreads == r->lim.max_threads) {
            *flags |= AU_THREAD_TRUNCATED;
            break;
        }
        if ((cur & 7) || thread_seen(r, *nthreads, cur)) break;
        if (au_pr_grow(r, &r->threads, &r->threads_cap, (size_t)*nthreads + 1, sizeof *r->threads))
            return AU_ERR_NOMEM;
        au_pythread *t = &r->threads[*nthreads];
        tstate_view v;
        int rc = read_tstate(r, cur, t, &v);
        if (rc == AU_ERR_NOMEM) return rc;
        if (rc) break; /* the list ends where it cannot be read */
        t->interp_id = interp_id;
        uint32_t nspans = 0;
        if ((rc = copy_chunks(r, v.chunk, v.top, &nspans))) return rc;
        if ((rc = walk_frames(r, t, v.frame, nspans, nraw))) return rc;
        (*nthreads)++;
        cur = v.next;
    }
    return AU_OK;
}

/* Leave out the thread states of threads not started yet.  A new
 * thread's state is made by the thread that starts it and carries no ids
 * of its own until the new thread runs: 3.12+ leave them 0, 3.9 to 3.11
 * copy the starter's (so a sample would show a second, empty MainThread).
 * Such a state has no frame, and the list puts it before its starter's
 * (new states go first): of two states with one id, a frameless one goes
 * if the other has frames or comes later.  Frameless states are rare and
 * few, so the search for a twin is a plain scan.  Returns the threads
 * kept. */
static uint32_t drop_unstarted(au_pyreader *r, uint32_t n) {
    /* First mark (tstate 0: never a thread state's address), then keep
     * the rest, so that the scan sees every state as it was read. */
    for (uint32_t i = 0; i < n; i++) {
        au_pythread *t = &r->threads[i];
        if (t->nframes || (t->flags & (AU_THREAD_PARTIAL | AU_THREAD_CYCLE))) continue;
        int unstarted = t->thread_id == 0;
        for (uint32_t j = 0; j < n && !unstarted; j++) {
            const au_pythread *u = &r->threads[j];
            unstarted = j != i && u->thread_id == t->thread_id && u->interp_id == t->interp_id &&
                        (u->nframes || j > i);
        }
        if (unstarted) t->tstate = 0;
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++)
        if (r->threads[i].tstate) r->threads[kept++] = r->threads[i];
    return kept;
}

/* The sample proper; au_pyreader_sample wraps it in the warm path. */
static int sample_threads(au_pyreader *r, au_pysample *out) {
    const au_py_offsets *o = &r->off;
    int rc = au_pr_read(r, r->runtime + o->runtime_interpreters_head, 8);
    if (rc) return rc == AU_ERR_NOMEM ? rc : (rc == AU_ERR_NOPROC ? rc : AU_ERR_READ);
    uint64_t interp = au_rd64(r->buf);
    uint32_t nthreads = 0, nraw = 0, flags = 0;
    uint64_t seen_interps[AU_PR_MAX_INTERPS];
    uint32_t ninterps = 0;
    uint32_t ifields[] = {o->interp_next, o->interp_threads_head, o->interp_id};
    while (interp && ninterps < AU_PR_MAX_INTERPS && !(interp & 7)) {
        int dup = 0;
        for (uint32_t i = 0; i < ninterps; i++) dup |= seen_interps[i] == interp;
        uint64_t val[3];
        if (dup) break;
        rc = au_pr_read_fields(r, interp, ifields, 3, val);
        if (rc == AU_ERR_NOMEM) return rc;
        if (rc) break;
        seen_interps[ninterps++] = interp;
        uint64_t next = val[0], head = val[1];
        int64_t id = (int64_t)val[2];
        if ((rc = walk_threads(r, head, id, &nthreads, &nraw, &flags))) return rc;
        interp = next;
    }
    nthreads = drop_unstarted(r, nthreads);
    if (au_pr_grow(r, &r->frames, &r->frames_cap, nraw ? nraw : 1, sizeof *r->frames))
        return AU_ERR_NOMEM;
    if ((rc = au_pr_resolve_code(r, r->raw, nraw, r->frames))) return rc;

    /* Hand out frames outermost first: each thread's raw frames are
     * innermost first and consecutive, in thread order. */
    uint32_t at = 0;
    for (uint32_t i = 0; i < nthreads; i++) {
        au_pythread *t = &r->threads[i];
        au_pyframe *f = r->frames + at;
        for (uint32_t a = 0, b = t->nframes ? t->nframes - 1 : 0; a < b; a++, b--) {
            au_pyframe tmp = f[a];
            f[a] = f[b];
            f[b] = tmp;
        }
        t->frames = f;
        at += t->nframes;
    }
    out->nthreads = nthreads;
    out->flags = flags;
    out->threads = r->threads;
    return AU_OK;
}

/* A warm sample starts with one batch that fetches every range the last
 * sample read (pyctx.c): in a program whose stack stays put that is the
 * whole sample's reading, and what moved is read the chained way. */
int au_pyreader_sample(au_pyreader *r, au_pysample *out) {
    if (!r || !out) return AU_ERR_ARG;
    au_mem_stats before = r->mem->stats;
    memset(&r->stats, 0, sizeof r->stats);
    r->sample_no++;
    out->nthreads = 0;
    out->flags = 0;
    out->threads = NULL;
    int rc = au_pr_hints_begin(r);
    if (rc == AU_OK) rc = sample_threads(r, out);
    au_pr_hints_end(r);
    au_mem_stats now = r->mem->stats;
    r->stats.mem.requests = now.requests - before.requests;
    /* A prefetched range that failed was a guess, not a read the sample
     * needed: the sample's failures are the others. */
    uint64_t failed = now.failures - before.failures;
    r->stats.mem.failures = failed > r->prefetch_failed ? failed - r->prefetch_failed : 0;
    r->stats.mem.syscalls = now.syscalls - before.syscalls;
    r->stats.mem.bytes = now.bytes - before.bytes;
    r->stats.mem.pages = now.pages - before.pages;
    return rc;
}

/* ---- creation ----------------------------------------------------------- */

/* v, or d when v is 0, at most max. */
static uint32_t limit(uint32_t v, uint32_t d, uint32_t max) {
    v = v ? v : d;
    return v < max ? v : max;
}

/* Every offset the walker adds to a target address must be plausible: on
 * 3.13+ they come from the target's _Py_DebugOffsets, which
 * au_py_offsets_apply_debug only bounds at 16 MiB, and a read of an
 * object's "header" is as long as its largest field offset. */
static int offsets_plausible(const au_py_offsets *o) {
    const uint32_t small[] = {
        o->frame_previous, o->frame_code, o->frame_instr, o->frame_owner,
        o->frame_header_size, o->code_name, o->code_qualname, o->code_filename,
        o->code_firstlineno, o->code_linetable, o->code_code_adaptive, o->ob_type,
        o->var_ob_size, o->type_tp_name, o->bytes_ob_sval, o->unicode_length,
        o->unicode_state, o->sizeof_ascii, o->sizeof_compact, o->chunk_previous,
        o->chunk_size, o->chunk_top, o->chunk_data, o->cframe_current_frame,
    };
    const uint32_t big[] = {
        o->runtime_interpreters_head, o->interp_next, o->interp_threads_head,
        o->interp_id, o->tstate_next, o->tstate_frame, o->tstate_thread_id,
        o->tstate_native_thread_id, o->tstate_datastack_chunk, o->tstate_datastack_top,
    };
    for (size_t i = 0; i < sizeof small / sizeof *small; i++)
        if (au_pr_present(small[i]) && small[i] > AU_PR_MAX_SMALL_OFFSET) return 0;
    for (size_t i = 0; i < sizeof big / sizeof *big; i++)
        if (au_pr_present(big[i]) && big[i] > AU_PR_MAX_BIG_OFFSET) return 0;
    return o->unicode_kind_width <= 8 && o->unicode_kind_shift < 32 &&
           o->unicode_compact_shift < 32 && o->unicode_ascii_shift < 32;
}

int au_pyreader_new(const au_allocator *alloc, au_memsrc *mem, uint32_t py_version_hex,
                    uint64_t runtime_addr, const au_pyreader_limits *limits,
                    au_pyreader **out) {
    if (!mem || !out || !runtime_addr) return AU_ERR_ARG;
    *out = NULL;
    const au_py_offsets *base = au_py_offsets_for(py_version_hex);
    if (!base) return AU_ERR_UNSUPPORTED;
    au_allocator a;
    au_pyreader *r = au_alloc_zeroed(alloc, sizeof *r, &a);
    if (!r) return AU_ERR_NOMEM;
    r->alloc = a;
    r->mem = mem;
    r->runtime = runtime_addr;
    r->off = *base;
    au_pyreader_limits l;
    memset(&l, 0, sizeof l);
    if (limits) l = *limits;
    r->lim.max_threads = limit(l.max_threads, AU_DEFAULT_MAX_THREADS, AU_PR_MAX_THREADS);
    r->lim.max_frames = limit(l.max_frames, 4096, AU_PR_MAX_FRAMES);
    r->lim.max_name = limit(l.max_name, 1024, AU_PR_MAX_NAME);
    r->lim.code_check_every = limit(l.code_check_every, 16, AU_PR_MAX_CHECK_EVERY);
    uint32_t entries = 16, want = limit(l.cache_entries, 4096, AU_PR_MAX_CACHE);
    while (entries < want) entries <<= 1;
    r->lim.cache_entries = entries;
    int rc = AU_OK;
    uint32_t seen = SEEN_MIN;
    /* The tables are indexed with a power-of-two mask over the slots in
     * use; the allocations may be larger (growth headroom). */
    if (au_pr_grow(r, &r->seen, &r->seen_alloc, seen, sizeof *r->seen) ||
        au_pr_grow(r, &r->seen_stamp, &r->stamp_alloc, seen, sizeof *r->seen_stamp) ||
        au_pr_grow(r, &r->cache, &r->cache_alloc, entries, sizeof *r->cache))
        rc = AU_ERR_NOMEM;
    if (rc == AU_OK) {
        r->seen_cap = seen;
        memset(r->seen_stamp, 0, (size_t)r->stamp_alloc * sizeof *r->seen_stamp);
        r->cache_cap = entries;
        memset(r->cache, 0, (size_t)r->cache_alloc * sizeof *r->cache);
    }
    if (rc == AU_OK && base->debug) {
        /* 3.13+: the target's own layout wins over the compiled table. */
        uint32_t size = base->debug->size;
        rc = au_pr_read(r, runtime_addr + base->runtime_debug_offsets, size);
        if (rc == AU_OK) rc = au_py_offsets_apply_debug(&r->off, base, r->buf, size);
        if (rc > 0) rc = AU_OK;
    }
    if (rc == AU_OK && !offsets_plausible(&r->off)) rc = AU_ERR_CORRUPT;
    if (rc) {
        au_pyreader_free(r);
        return rc;
    }
    *out = r;
    return AU_OK;
}

void au_pyreader_free(au_pyreader *r) {
    if (!r) return;
    au_allocator a = r->alloc;
    au_pr_cache_free(r);
    AU_FREE_ARRAY(&a, r->cache, r->cache_alloc);
    AU_FREE_ARRAY(&a, r->threads, r->threads_cap);
    AU_FREE_ARRAY(&a, r->raw, r->raw_cap);
    AU_FREE_ARRAY(&a, r->frames, r->frames_cap);
    AU_FREE_ARRAY(&a, r->reads, r->reads_cap);
    AU_FREE_ARRAY(&a, r->buf, r->buf_cap);
    AU_FREE_ARRAY(&a, r->spans, r->spans_cap);
    AU_FREE_ARRAY(&a, r->spanbuf, r->spanbuf_cap);
    AU_FREE_ARRAY(&a, r->seen, r->seen_alloc);
    AU_FREE_ARRAY(&a, r->seen_stamp, r->stamp_alloc);
    AU_FREE_ARRAY(&a, r->pending, r->pending_cap);
    AU_FREE_ARRAY(&a, r->raw_gen, r->raw_gen_cap);
    AU_FREE_ARRAY(&a, r->hints, r->hints_cap);
    AU_FREE_ARRAY(&a, r->next, r->next_cap);
    AU_FREE_ARRAY(&a, r->hintbuf, r->hintbuf_cap);
    AU_FREE_ARRAY(&a, r->miss, r->miss_cap);
    a.realloc(a.ud, r, sizeof *r, 0);
}

void au_pyreader_set_tid_offset(au_pyreader *r, uint32_t offset) {
    /* Bounded like the search (au_proctask.h): within one page. */
    if (r) r->tid_offset = offset < 4096 ? offset : 0;
}

void au_pyreader_get_stats(const au_pyreader *r, au_pyreader_stats *stats) {
    if (!stats) return;
    /* A NULL context has all-zero counters: the caller reads them either
     * way (and gcc, inlining across the amalgamation, checks that). */
    if (r)
        *stats = r->stats;
    else
        memset(stats, 0, sizeof *stats);
}
