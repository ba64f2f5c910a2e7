/*
 * The CPython model's shared context: growing the reader's buffers and
 * issuing its reads.  Every file of the model (pycode.c, pythreads.c and
 * the asyncio model above them) reads the target through these, so the
 * batch and allocation counters of au_pyreader_stats see every read and
 * allocation.  This file calls nothing else of the model.
 */
#include "asyncunwind.h"
#include "internal.h"
#include "pyreader.h"

int au_pr_grow(au_pyreader *r, void *pptr, uint32_t *cap, size_t need, size_t elem) {
    return au_grow(&r->alloc, &r->stats.allocations, (void **)pptr, cap, need, elem);
}

int au_pr_batch(au_pyreader *r, uint32_t n) {
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
