/*
 * Coroutine chains: from each task's coroutine, the coroutine it awaits,
 * and the one that one awaits, ... down to the future at the bottom.
 *
 * All tasks are walked together, one level at a time: the objects of a
 * level are asked of the view in one batch, then each is classified by its
 * type and followed one step.  A step goes through
 *   - a coroutine, generator or async generator: its frame is part of the
 *     chain; if it is suspended in `await`/`yield from`, the object it
 *     delegates to ("yf") is the next level;
 *   - an async generator's asend/athrow object: to the async generator;
 *   - a coroutine_wrapper (what `coro.__await__()` returns): to the
 *     coroutine;
 * and stops at anything else (the FutureIter of the awaited future, a
 * Future, an object of the program's own).
 *
 * How a suspended generator says what it delegates to differs by version,
 * and is data (yf_kind, stack_kind, yf_stack_depth of au_pyoffsets.h):
 *   3.9, 3.10  the next instruction is YIELD_FROM, and yf is on top of the
 *              value stack (f_stacktop; f_valuestack + f_stackdepth);
 *   3.11-3.12  the next instruction is a RESUME whose oparg is >= 2, and yf
 *              is on top of the stack (localsplus[stacktop - 1]);
 *   3.13+      the generator's state is FRAME_SUSPENDED_YIELD_FROM, and yf
 *              is on the stack (3.14+: through stackpointer, a _PyStackRef
 *              whose tag bits are cleared; 3.15 keeps one more value above
 *              it).
 * A running coroutine (its frame is executing on the thread) ends the
 * chain: the thread's own stack shows the rest.
 *
 * Every chain is bounded by max_coro_frames and by the number of levels;
 * an object met twice in a chain ends it (the chain came back on itself).
 */
#include <assert.h>
#include <string.h>

#include "au_asyncctx.h"
#include "au_bytes.h"
#include "au_internal.h"

#define NONE AU_AT_NONE
#define MAX_HOPS 4u /* asend/athrow/wrapper hops between two frames */

/* Frames in a sample at most, all chains together: a hostile target
 * cannot make a sample hold more. */
#define MAX_FRAMES_PER_SAMPLE (1u << 21)

typedef au_at_cursor cursor;

#define YF_CACHE 64u /* (code, instr) verdicts of delegating() kept per sample (a power of 2) */

typedef struct walk {
    au_tasks *t;
    uint32_t ncur, nfr;
    /* Whether a frame suspended at (code, instr) delegates, per sample:
     * idle tasks wait at a few places, and each look is a read of the
     * code's bytes.  Only for this sample, so that code that changes
     * (quickened, or freed and its address reused) is read again. */
    uint64_t yf_code[YF_CACHE], yf_instr[YF_CACHE];
    uint8_t yf_known[YF_CACHE]; /* 0: empty, else 1 + the verdict */
} walk;


/* Bytes of a generator object worth reading at once: its fields, and for
 * 3.11+ the embedded frame's header and its first stack slots. */
static uint32_t gen_span(const au_py_offsets *o) {
    uint32_t end = o->sizeof_gen;
    if (au_pyoff_present(o->gen_iframe)) end = o->gen_iframe + o->frame_header_size + 16 * 8;
    return end < 4096 ? end : 4096;
}

/* The state of a generator, as one of these. */
enum { G_CREATED, G_SUSPENDED, G_YIELD_FROM_STATE, G_RUNNING, G_FINISHED, G_UNKNOWN };

static int gen_state(const au_py_offsets *o, int8_t s) {
    if (o->gen_state_kind == AU_PY_GEN_STATE_RUNNING) return s ? G_RUNNING : G_SUSPENDED;
    if (s == o->gen_state_created) return G_CREATED;
    if (o->gen_state_suspended_yield_from != AU_PY_VALUE_NONE && s == o->gen_state_suspended_yield_from)
        return G_YIELD_FROM_STATE;
    if (s >= o->gen_state_suspended_min && s <= o->gen_state_suspended_max) return G_SUSPENDED;
    if (s == o->gen_state_executing) return G_RUNNING;
    if (s >= o->gen_state_finished_min || s == o->gen_state_cleared) return G_FINISHED;
    return G_UNKNOWN;
}

/* Where stack slot `depth` below the top of frame's value stack is (1 =
 * the top), from the frame's window. */
static int stack_slot_addr(au_tasks *t, const au_win *fw, uint64_t frame, uint32_t depth,
                           uint64_t *out) {
    const au_py_offsets *o = t->layout.o;
    uint8_t b[8];
    switch (o->stack_kind) {
    case AU_PY_STACK_TOP_PTR: {
        uint64_t v = au_win_ptr(t, fw, frame + o->frame_stacktop);
        if (v < frame || v - frame > (1u << 20) || v < 8ull * depth) return AU_ERR_CORRUPT;
        *out = v - 8ull * depth;
        return AU_OK;
    }
    case AU_PY_STACK_BASE_DEPTH: {
        uint64_t base = au_win_ptr(t, fw, frame + o->frame_valuestack);
        if (!base || au_win_read(t, fw, frame + o->frame_stacktop, b, 4)) return AU_ERR_READ;
        int32_t d = (int32_t)au_rd32(b);
        if (d < (int32_t)depth || d > (1 << 16)) return AU_ERR_CORRUPT;
        *out = base + 8ull * (uint32_t)(d - (int32_t)depth);
        return AU_OK;
    }
    case AU_PY_STACK_LOCALSPLUS_INDEX: {
        if (au_win_read(t, fw, frame + o->frame_stacktop, b, 4)) return AU_ERR_READ;
        int32_t top = (int32_t)au_rd32(b);
        if (top < (int32_t)depth || top > (1 << 16)) return AU_ERR_CORRUPT;
        *out = frame + o->frame_header_size + 8ull * (uint32_t)(top - (int32_t)depth);
        return AU_OK;
    }
    default:
        return AU_ERR_UNSUPPORTED;
    }
}

/* Is the suspended generator whose frame runs `code` at `instr` in
 * await/yield from, by the code's bytes?  (yf_kind, except
 * AU_PY_YF_STATE.)  May read the code object: call it after the frame's
 * window is done with. */
static int delegating_code(au_tasks *t, uint64_t code, uint64_t instr) {
    const au_py_offsets *o = t->layout.o;
    uint8_t b[2];
    switch (o->yf_kind) {
    case AU_PY_YF_NEXT_RESUME:
        /* instr is prev_instr: the unit after it is where it resumes. */
        if (!instr || au_view_read(t->view, instr + 2, b, 2)) return 0;
        return (b[0] == o->yf_op_resume || b[0] == o->yf_op_resume_alt) &&
               (int)b[1] >= o->yf_resume_min_oparg;
    case AU_PY_YF_LASTI_OPCODE: {
        int64_t lasti = (int64_t)(int32_t)instr;
        if (lasti < 0) return 0;
        uint64_t next = o->instr_kind == AU_PY_INSTR_BYTE_LASTI ? (uint64_t)lasti + 2
                                                                : 2 * ((uint64_t)lasti + 1);
        uint64_t bytes = au_obj_ptr(t->objects, code, o->code_code);
        if (!bytes || au_view_read(t->view, bytes + o->bytes_ob_sval + next, b, 1)) return 0;
        return b[0] == o->yf_op_yield_from;
    }
    default:
        return 0;
    }
}

/* delegating_code, or the state (AU_PY_YF_STATE), through the sample's
 * cache of verdicts. */
static int delegating(walk *w, uint64_t code, uint64_t instr, int st) {
    if (w->t->layout.o->yf_kind == AU_PY_YF_STATE) return st == G_YIELD_FROM_STATE;
    uint32_t i = (uint32_t)au_mix64(code ^ au_mix64(instr)) & (YF_CACHE - 1);
    if (w->yf_known[i] && w->yf_code[i] == code && w->yf_instr[i] == instr) return w->yf_known[i] - 1;
    int yes = delegating_code(w->t, code, instr);
    w->yf_code[i] = code;
    w->yf_instr[i] = instr;
    w->yf_known[i] = (uint8_t)(1 + (yes != 0));
    return yes != 0;
}

static int add_found(walk *w, const cursor *c, uint64_t frame, uint64_t code, uint64_t instr,
                     uint64_t gen) {
    au_tasks *t = w->t;
    if (w->nfr == MAX_FRAMES_PER_SAMPLE) return AU_ERR_LIMIT;
    /* Room for a frame per cursor was made before the level (a step adds
     * one frame at most). */
    assert(w->nfr < t->found_cap);
    if (w->nfr >= t->found_cap) return AU_ERR_NOMEM;
    t->found[w->nfr++] = (au_at_found){c->task, c->depth, {frame, code, instr, gen}, gen};
    return AU_OK;
}

/* Bytes of a frame worth reading at once (<= 3.10: a PyFrameObject of its
 * own): its fields and the first stack slots. */
static uint32_t frame_span(const au_py_offsets *o) {
    uint32_t end = o->frame_header_size + 16 * 8;
    return end < 1024 ? end : 1024;
}

/* One step of cursor c: returns 1 when it continues (c->obj updated), 0
 * when its chain ends, or AU_ERR_NOMEM. */
static int step(walk *w, cursor *c) {
    au_tasks *t = w->t;
    const au_py_offsets *o = t->layout.o;
    const au_py_private *p = &t->priv;
    for (uint32_t hop = 0; hop <= MAX_HOPS; hop++) {
        uint64_t obj = c->obj;
        au_win gw;
        au_win_open(t, &gw, obj, gen_span(o));
        au_okind k = au_win_type_kind(t, &gw, obj + o->ob_type);
        if (k == AU_OK_ASEND || k == AU_OK_ATHROW || k == AU_OK_CORO_WRAPPER) {
            uint32_t off = k == AU_OK_ASEND    ? p->asend_gen
                           : k == AU_OK_ATHROW ? p->athrow_gen
                                               : p->coro_wrapper_coro;
            c->obj = au_win_ptr(t, &gw, obj + off);
            if (!c->obj || (c->obj & 7)) return 0;
            continue;
        }
        if (k != AU_OK_COROUTINE && k != AU_OK_GENERATOR && k != AU_OK_ASYNC_GENERATOR) return 0;
        /* The generator's frame (3.11+: inside it, in the same window) and
         * its state. */
        uint64_t frame;
        uint8_t b[8];
        au_win fw;
        int8_t sb;
        if (au_pyoff_present(o->gen_iframe)) {
            frame = obj + o->gen_iframe;
            fw = gw;
            if (au_win_read(t, &gw, obj + o->gen_state, b, 1)) return 0;
            sb = (int8_t)b[0];
        } else {
            frame = au_win_ptr(t, &gw, obj + o->gen_frame);
            if (!frame || (frame & 7)) return 0; /* finished */
            if (o->gen_state_kind != AU_PY_GEN_STATE_FRAME &&
                au_win_read(t, &gw, obj + o->gen_state, b, 1))
                return 0;
            sb = (int8_t)b[0];
            au_win_open(t, &fw, frame, frame_span(o));
            if (o->gen_state_kind == AU_PY_GEN_STATE_FRAME) {
                if (au_win_read(t, &fw, frame + o->gen_state, b, 1)) return 0;
                sb = (int8_t)b[0];
            }
        }
        int st = gen_state(o, sb);
        if (st == G_FINISHED || st == G_UNKNOWN) return 0;
        uint64_t code = au_win_ptr(t, &fw, frame + o->frame_code) & ~o->frame_code_tag_mask;
        uint64_t instr;
        if (o->instr_kind <= AU_PY_INSTR_UNIT_LASTI) {
            if (au_win_read(t, &fw, frame + o->frame_instr, b, 4)) return 0;
            /* 3.9 has no created state: a frame that never ran has
             * f_lasti -1. */
            instr = (uint64_t)(int64_t)(int32_t)au_rd32(b);
        } else {
            instr = au_win_ptr(t, &fw, frame + o->frame_instr);
        }
        if (!code) return 0;
        uint64_t slot = 0, yf = 0;
        int has_slot = st != G_RUNNING && st != G_CREATED &&
                       stack_slot_addr(t, &fw, frame, o->yf_stack_depth, &slot) == AU_OK;
        /* The slot is usually in the window: read it before anything
         * outside the window may move the view's pages. */
        int slot_read = has_slot && fw.p && slot >= fw.base && slot - fw.base + 8 <= fw.len;
        if (slot_read) yf = au_rd64(fw.p + (slot - fw.base)) & ~o->frame_code_tag_mask;
        int rc = add_found(w, c, frame, code, instr, au_pyoff_present(o->gen_iframe) ? 0 : obj);
        if (rc == AU_ERR_NOMEM) return rc;
        if (rc) {
            t->tasks[c->task].flags |= AU_AT_CHAIN_CUT;
            return 0;
        }
        c->depth++;
        if (!has_slot || !delegating(w, code, instr, st)) return 0;
        if (!slot_read) {
            if (au_view_read(t->view, slot, b, 8)) return 0;
            yf = au_rd64(b) & ~o->frame_code_tag_mask;
        }
        /* A generator awaiting itself is memory changing under us, or a
         * corrupted target; longer loops are bounded by the depth. */
        if (!yf || (yf & 7) || yf == obj) return 0;
        c->obj = yf;
        return 1;
    }
    return 0;
}

/* The first bytes of each cursor's object, in one batch. */
static int want_level(walk *w) {
    au_tasks *t = w->t;
    if (au_at_grow(t, &t->scratch, &t->scratch_cap, w->ncur ? w->ncur : 1, sizeof *t->scratch))
        return AU_ERR_NOMEM;
    for (uint32_t i = 0; i < w->ncur; i++) t->scratch[i] = t->cur[i].obj;
    return au_at_want(t, t->scratch, w->ncur, gen_span(t->layout.o));
}

/* The frames found, in chain order per task, into t->raw. */
static int place(walk *w) {
    au_tasks *t = w->t;
    uint32_t n = w->nfr;
    if (au_at_grow(t, &t->raw, &t->raw_cap, n ? n : 1, sizeof *t->raw) ||
        au_at_grow(t, &t->raw_gen, &t->raw_gen_cap, n ? n : 1, sizeof *t->raw_gen))
        return AU_ERR_NOMEM;
    /* Counting sort by task; within a task, levels come in depth order. */
    for (uint32_t i = 0; i < t->ntasks; i++) t->tasks[i].nframes = 0;
    for (uint32_t k = 0; k < n; k++) t->tasks[t->found[k].task].nframes++;
    uint32_t at = 0;
    for (uint32_t i = 0; i < t->ntasks; i++) {
        t->tasks[i].first_frame = at;
        at += t->tasks[i].nframes;
        t->tasks[i].nframes = 0;
    }
    for (uint32_t k = 0; k < n; k++) {
        au_atask *a = &t->tasks[t->found[k].task];
        uint32_t pos = a->first_frame + a->nframes++;
        t->raw[pos] = t->found[k].f;
        t->raw[pos].gen = t->found[k].gen;
        t->raw_gen[pos] = t->found[k].gen;
    }
    t->nraw = n;
    return AU_OK;
}

int au_at_chains(au_tasks *t) {
    walk w;
    w.t = t;
    w.ncur = w.nfr = 0;
    memset(w.yf_known, 0, sizeof w.yf_known); /* the verdicts' keys are read only when known */
    int rc;
    if (au_at_grow(t, &t->cur, &t->cur_cap, t->ntasks ? t->ntasks : 1, sizeof *t->cur))
        return AU_ERR_NOMEM;
    for (uint32_t i = 0; i < t->ntasks; i++)
        if (t->tasks[i].coro) t->cur[w.ncur++] = (cursor){i, 0, t->tasks[i].coro};
    /* Each level either ends a cursor or adds a frame to its chain, and a
     * chain holds at most max_coro_frames: the loop is bounded by that. */
    for (uint32_t level = 0; w.ncur && level <= t->lim.max_coro_frames; level++) {
        if ((rc = want_level(&w)) == AU_ERR_NOMEM) return rc;
        if (au_at_grow(t, &t->found, &t->found_cap, (size_t)w.nfr + w.ncur, sizeof *t->found))
            return AU_ERR_NOMEM;
        uint32_t keep = 0;
        const au_py_offsets *o = t->layout.o;
        uint32_t span = gen_span(o), d = t->ahead;
        for (uint32_t i = 0; i < w.ncur; i++) {
            /* Before 3.11 a generator's frame is an object of its own:
             * once the generator's lines are cached (hinted twice as far
             * ahead), its frame pointer is there to hint the frame. */
            uint32_t gd = au_pyoff_present(o->gen_iframe) ? d : 2 * d;
            if (d && i + gd < w.ncur) au_at_prefetch(t, t->cur[i + gd].obj, span);
            if (d && i + d < w.ncur && gd != d) {
                const uint8_t *f = au_view_peek(t->view, t->cur[i + d].obj + o->gen_frame, 8);
                if (f) au_at_prefetch(t, au_rd64(f), frame_span(o));
            }
            cursor c = t->cur[i];
            int more = step(&w, &c);
            if (more < 0) return more;
            if (more && c.depth >= t->lim.max_coro_frames) {
                t->tasks[c.task].flags |= AU_AT_CHAIN_CUT;
                more = 0;
            }
            if (more) t->cur[keep++] = c;
        }
        w.ncur = keep;
    }
    for (uint32_t i = 0; i < w.ncur; i++) t->tasks[t->cur[i].task].flags |= AU_AT_CHAIN_CUT;
    return place(&w);
}
