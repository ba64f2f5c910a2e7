/* The per-sample time histogram (au_timehist.h). */
#include "au_timehist.h"

static uint32_t bucket_of(uint64_t v) {
    if (v < 64) return (uint32_t)v;
    /* The leading one's position, 6..63, in six halving steps (no
     * compiler builtin: the core is plain C11). */
    uint32_t e = 0;
    for (uint32_t step = 32; step; step >>= 1)
        if (v >> (e + step)) e += step;
    /* The 5 bits below the leading one pick the sub-bucket. */
    uint32_t sub = (uint32_t)(v >> (e - 5)) & (AU_TIMEHIST_SUB - 1);
    return 64u + (e - 6u) * AU_TIMEHIST_SUB + sub;
}

static uint64_t lower_bound(uint32_t b) {
    if (b < 64) return b;
    uint32_t e = (b - 64u) / AU_TIMEHIST_SUB + 6u, sub = (b - 64u) % AU_TIMEHIST_SUB;
    return (1ull << e) | ((uint64_t)sub << (e - 5));
}

void au_timehist_add(au_timehist *h, uint64_t ns) {
    h->bucket[bucket_of(ns)]++;
    h->count++;
}

uint64_t au_timehist_median(const au_timehist *h) {
    if (!h->count) return 0;
    uint64_t rank = (h->count + 1) / 2, seen = 0;
    for (uint32_t b = 0; b < AU_TIMEHIST_BUCKETS; b++) {
        seen += h->bucket[b];
        if (seen >= rank) return lower_bound(b);
    }
    return 0;
}
