/*
 * The CPython model's shared context: growing the reader's buffers and
 * issuing its reads.  Every file of the model (pycode.c, pythreads.c and
 * the asyncio model above them) reads the target through these, so the
 * batch and allocation counters of au_pyreader_stats see every read and
 * allocation.  This file calls nothing else of the model.
 */
#include <string.h>

#include "asyncunwind.h"
#include "au_internal.h"
#include "au_pyreader.h"

#define PENDING 1 /* hinted_batch: a read left for the source (not a status) */

int au_pr_grow_slow(au_pyreader *r, void *pptr, uint32_t *cap, size_t need, size_t elem) {
    return au_grow(&r->alloc, &r->stats.allocations, (void **)pptr, cap, need, elem);
}

/* ---- the warm path ---------------------------------------------------- */

#define PAGE 4096u
#define JOIN_GAP 512u /* bytes between two ranges that one range may cover */

/* Does range h contain [addr, addr+len)? */
static int contains(const au_hint *h, uint64_t addr, uint32_t len) {
    return addr >= h->addr && addr - h->addr <= h->len && len <= h->len - (addr - h->addr);
}

/* Was [addr, addr+len) read whole by prefetched range h? */
static int holds(const au_hint *h, uint64_t addr, uint32_t len) {
    return h->ok && contains(h, addr, len);
}

/* The index of the first of the n sorted ranges a[] that starts after
 * addr (n if none): the only range that can contain addr is the one
 * before it. */
static uint32_t first_after(const au_hint *a, uint32_t n, uint64_t addr) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a[mid].addr <= addr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The prefetched range holding [addr, addr+len), if any.  The ranges are
 * sorted and disjoint (add_range keeps them so), so a binary search finds
 * the only candidate; but a sample reads mostly in the order of the last
 * one, so the range after the last hit is tried first. */
static au_hint *hint_for(au_pyreader *r, uint64_t addr, uint32_t len) {
    uint32_t c = r->hint_cursor;
    if (c < r->nhints && holds(&r->hints[c], addr, len)) return &r->hints[c];
    if (c + 1 < r->nhints && holds(&r->hints[c + 1], addr, len)) {
        r->hint_cursor = c + 1;
        return &r->hints[c + 1];
    }
    uint32_t lo = first_after(r->hints, r->nhints, addr);
    if (lo == 0 || !holds(&r->hints[lo - 1], addr, len)) return NULL;
    r->hint_cursor = lo - 1;
    return &r->hints[lo - 1];
}

/* Does a range ending at `end` join one starting at `addr` >= end?  When
 * the gap between them is short and lies on pages that one of them touches
 * anyway: one range then costs no page more than two (and the gap cannot
 * be unmapped), and it saves an iovec and a hint (six fields of a thread
 * state become one range). */
static int near(uint64_t end, uint64_t addr) {
    return addr <= end ||
           (addr - end <= JOIN_GAP && end && addr / PAGE <= (end - 1) / PAGE + 1);
}

/* Does [lo, hi) hold the whole of a read that failed this sample?  Then
 * the next sample must not prefetch it as one range: the prefetch would
 * serve that read, which failed alone (a snapshot replays failed reads as
 * failures; a joined range holds the bytes around them). */
static int holds_failed(const au_pyreader *r, uint64_t lo, uint64_t hi) {
    if (r->nfailed > AU_PR_MAX_FAILED) return 1; /* too many to tell */
    for (uint32_t i = 0; i < r->nfailed; i++)
        if (r->failed[i].addr >= lo && r->failed[i].len <= hi - r->failed[i].addr) return 1;
    return 0;
}

/* A read failed this sample: remember it, and drop a range already in the
 * next list that holds it. */
static void note_failed(au_pyreader *r, uint64_t addr, uint32_t len) {
    if (r->nfailed < AU_PR_MAX_FAILED) r->failed[r->nfailed] = (au_span_failed){addr, len};
    if (r->nfailed <= AU_PR_MAX_FAILED) r->nfailed++;
    uint32_t lo = first_after(r->next, r->nnext, addr);
    if (lo == 0 || !contains(&r->next[lo - 1], addr, len)) return;
    au_hint *h = &r->next[lo - 1];
    r->next_bytes -= h->len;
    memmove(h, h + 1, (size_t)(r->nnext - lo) * sizeof *h);
    r->nnext--;
}

/* Add [addr, addr+len) to the next sample's prefetch list, which stays
 * sorted by address and disjoint: a range that overlaps, touches or is
 * near others (near()) joins them (the memory source sends disjoint ranges
 * in one system call but stages overlapping ones in another, and 3.9's
 * frame windows overlap), and a list in order is sorted in one pass when
 * the prefetch goes out.  Best effort: a range not added is read the
 * chained way next time, which is slower, never wrong.  The hints array
 * grows with this one, so that swapping the two at the next sample's start
 * allocates nothing. */
static void add_range(au_pyreader *r, uint64_t addr, uint32_t len, int guess) {
    if (len == 0 || addr + len < addr) return;
    uint64_t end = addr + len;
    uint32_t lo = 0, hi = r->nnext;
    uint64_t reach = addr > JOIN_GAP ? addr - JOIN_GAP : 0;
    while (lo < hi) { /* the first range ending within JOIN_GAP of addr */
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->next[mid].addr + r->next[mid].len < reach) lo = mid + 1;
        else hi = mid;
    }
    while (lo < r->nnext && r->next[lo].addr + r->next[lo].len < addr &&
           !near(r->next[lo].addr + r->next[lo].len, addr))
        lo++;
    if (lo < r->nnext && r->next[lo].addr <= addr && end <= r->next[lo].addr + r->next[lo].len)
        return; /* the usual case in a warm sample: read last time too */
    /* next[lo, k) overlap, touch or are near the new range: they become
     * one. */
    uint32_t k = lo;
    uint64_t ulo = addr, uhi = end, had = 0;
    while (k < r->nnext && near(uhi, r->next[k].addr)) {
        const au_hint *h = &r->next[k];
        guess |= h->guess;
        if (h->addr < ulo) ulo = h->addr;
        if (h->addr + h->len > uhi) uhi = h->addr + h->len;
        had += h->len;
        k++;
    }
    if (uhi - ulo > AU_PR_MAX_HINT_BYTES || uhi - ulo - had > AU_PR_MAX_HINT_BYTES - r->next_bytes)
        return;
    if (holds_failed(r, ulo, uhi)) return;
    if (k == lo) { /* nothing joined: insert at lo */
        if (r->nnext == AU_PR_MAX_HINTS ||
            au_pr_grow(r, &r->next, &r->next_cap, (size_t)r->nnext + 1, sizeof *r->next) ||
            au_pr_grow(r, &r->hints, &r->hints_cap, (size_t)r->nnext + 1, sizeof *r->hints))
            return;
        memmove(&r->next[lo + 1], &r->next[lo], (size_t)(r->nnext - lo) * sizeof *r->next);
        r->nnext++;
    } else if (k > lo + 1) { /* next[lo+1, k) fold into next[lo] */
        memmove(&r->next[lo + 1], &r->next[k], (size_t)(r->nnext - k) * sizeof *r->next);
        r->nnext -= k - lo - 1;
    }
    r->next[lo] = (au_hint){ulo, (uint32_t)(uhi - ulo), 0, 0, guess, 0};
    r->next_bytes += uhi - ulo - had;
}

int au_pr_hints_begin(au_pyreader *r) {
    au_hint *h = r->hints;
    uint32_t cap = r->hints_cap;
    r->hints = r->next;
    r->hints_cap = r->next_cap;
    r->nhints = r->nnext;
    r->next = h;
    r->next_cap = cap;
    r->nnext = 0;
    r->next_bytes = 0;
    r->prefetch_failed = 0;
    r->hint_cursor = 0;
    r->nfailed = 0;
    r->recording = AU_PR_REC_ON;
    uint64_t total = 0;
    for (uint32_t i = 0; i < r->nhints; i++) {
        r->hints[i].off = (uint32_t)total;
        r->hints[i].ok = 0;
        r->hints[i].used = 0;
        total += r->hints[i].len;
    }
    if (r->nhints == 0) return AU_OK;
    /* au_pr_hints_end sized both buffers for this.  Without them the
     * sample goes the chained way: the prefetch is an optimisation. */
    if (au_pr_grow(r, &r->hintbuf, &r->hintbuf_cap, (size_t)total, 1) ||
        au_pr_grow(r, &r->miss, &r->miss_cap, r->nhints, sizeof *r->miss)) {
        r->nhints = 0;
        return AU_OK;
    }
    for (uint32_t i = 0; i < r->nhints; i++)
        r->miss[i] = (au_read){r->hints[i].addr, r->hintbuf + r->hints[i].off, r->hints[i].len,
                               AU_OK};
    r->stats.batches++;
    r->mem->read(r->mem, r->miss, r->nhints);
    for (uint32_t i = 0; i < r->nhints; i++) {
        r->hints[i].ok = r->miss[i].status == AU_OK;
        r->prefetch_failed += !r->hints[i].ok;
        /* A guess that failed once (a snapshot holds no more of a chunk
         * than its frames) is not made again by this reader. */
        if (!r->hints[i].ok && r->hints[i].guess && r->miss[i].status != AU_ERR_NOMEM)
            r->no_widen = 1;
    }
    return AU_OK;
}

void au_pr_hints_end(au_pyreader *r) {
    /* The prefetched ranges that served a read are wanted again, whole (a
     * widened chunk stays widened).  When nothing else was read, the usual
     * warm sample, they are the next list as they stand: sorted, disjoint,
     * within the bounds (they were within them last time). */
    if (r->nnext == 0 && r->nfailed == 0) {
        /* The two arrays grow together (add_range), so next has room. */
        for (uint32_t i = 0; i < r->nhints && r->nnext < r->next_cap; i++) {
            if (!r->hints[i].used) continue;
            r->next[r->nnext] = r->hints[i];
            r->next[r->nnext].used = 0;
            r->next_bytes += r->hints[i].len;
            r->nnext++;
        }
    } else {
        for (uint32_t i = 0; i < r->nhints; i++)
            if (r->hints[i].used)
                add_range(r, r->hints[i].addr, r->hints[i].len, r->hints[i].guess);
    }
    r->nhints = 0;
    r->recording = AU_PR_REC_OFF;
    /* Room for the next sample's prefetch, allocated now, in a sample that
     * read something new, rather than in the warm one that follows. */
    if (r->nnext && !au_pr_grow(r, &r->hintbuf, &r->hintbuf_cap, (size_t)r->next_bytes, 1))
        au_pr_grow(r, &r->miss, &r->miss_cap, r->nnext, sizeof *r->miss);
}

int au_pr_hints_pause(au_pyreader *r, int recording) {
    int was = r->recording;
    r->recording = recording;
    return was;
}

void au_pr_hint_next(au_pyreader *r, uint64_t addr, uint32_t len) {
    if (r->recording == AU_PR_REC_ON) add_range(r, addr, len, 0);
}

void au_pr_hint_widen(au_pyreader *r, uint64_t addr, uint32_t len) {
    if (r->recording != AU_PR_REC_ON || r->no_widen) return;
    /* Inside a range prefetched this sample: that range served the read
     * being widened, so it is carried to the next sample anyway. */
    au_hint *h = hint_for(r, addr, len);
    if (h && h->used) return;
    add_range(r, addr, len, 1);
}

/* A batch while recording: reads inside a prefetched range are copied from
 * it (and the range is marked for the next sample), the rest go to the
 * source in one batch (none when all hit) and are recorded when they
 * succeed.  AU_PR_REC_SERVE serves the same way but marks and records
 * nothing. */
static int hinted_batch(au_pyreader *r, uint32_t n) {
    au_read *reads = r->reads;
    uint32_t nmiss = 0;
    int record = r->recording == AU_PR_REC_ON;
    for (uint32_t i = 0; i < n; i++) {
        au_read *rd = &reads[i];
        au_hint *h = rd->len && rd->buf ? hint_for(r, rd->addr, rd->len) : NULL;
        if (h) {
            memcpy(rd->buf, r->hintbuf + h->off + (rd->addr - h->addr), rd->len);
            rd->status = AU_OK;
            h->used |= record;
        } else {
            rd->status = PENDING;
            nmiss++;
        }
    }
    int rc = AU_OK;
    if (nmiss) {
        if (au_pr_grow(r, &r->miss, &r->miss_cap, nmiss, sizeof *r->miss)) {
            for (uint32_t i = 0; i < n; i++)
                if (reads[i].status == PENDING) reads[i].status = AU_ERR_NOMEM;
            return AU_ERR_NOMEM;
        }
        uint32_t m = 0;
        for (uint32_t i = 0; i < n; i++)
            if (reads[i].status == PENDING) r->miss[m++] = reads[i];
        r->stats.batches++;
        r->mem->read(r->mem, r->miss, m);
        m = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (reads[i].status != PENDING) continue;
            reads[i].status = r->miss[m++].status;
            if (reads[i].status == AU_OK && record)
                add_range(r, reads[i].addr, reads[i].len, 0);
            else if (reads[i].status != AU_OK && reads[i].status != AU_ERR_NOMEM)
                note_failed(r, reads[i].addr, reads[i].len);
        }
    }
    for (uint32_t i = 0; i < n && rc == AU_OK; i++) rc = reads[i].status;
    return rc;
}

const uint8_t *au_pr_peek(au_pyreader *r, uint64_t addr, uint32_t len) {
    if (r->recording == AU_PR_REC_OFF || len == 0) return NULL;
    au_hint *h = hint_for(r, addr, len);
    if (!h) return NULL;
    h->used |= r->recording == AU_PR_REC_ON;
    return r->hintbuf + h->off + (addr - h->addr);
}

int au_pr_batch(au_pyreader *r, uint32_t n) {
    if (r->recording != AU_PR_REC_OFF) return hinted_batch(r, n);
    r->stats.batches++;
    return r->mem->read(r->mem, r->reads, n);
}

uint32_t au_pr_span_end(const uint32_t *offs, int n, uint32_t width) {
    uint32_t end = 0;
    for (int i = 0; i < n; i++)
        if (au_pr_present(offs[i]) && offs[i] + width > end) end = offs[i] + width;
    return end;
}

int au_pr_read(au_pyreader *r, uint64_t addr, uint32_t len) {
    if (au_pr_grow(r, &r->buf, &r->buf_cap, len, 1) ||
        au_pr_grow(r, &r->reads, &r->reads_cap, 1, sizeof *r->reads))
        return AU_ERR_NOMEM;
    r->reads[0] = (au_read){addr, r->buf, len, AU_OK};
    return au_pr_batch(r, 1);
}

/* The memory source merges fields that share pages, so a struct whose
 * fields lie far apart (3.13's PyInterpreterState keeps its thread list
 * 7 KB in) costs the pages of its fields, not of its span. */
int au_pr_read_fields(au_pyreader *r, uint64_t base, const uint32_t *offs, int n,
                      uint64_t *vals) {
    if (au_pr_grow(r, &r->buf, &r->buf_cap, (size_t)n * 8, 1) ||
        au_pr_grow(r, &r->reads, &r->reads_cap, (size_t)n, sizeof *r->reads))
        return AU_ERR_NOMEM;
    uint32_t nr = 0;
    for (int i = 0; i < n; i++)
        if (au_pr_present(offs[i]))
            r->reads[nr++] = (au_read){base + offs[i], r->buf + 8 * i, 8, AU_OK};
    int rc = au_pr_batch(r, nr);
    for (int i = 0; i < n; i++) vals[i] = au_pr_present(offs[i]) ? au_rd64(r->buf + 8 * i) : 0;
    return rc;
}
