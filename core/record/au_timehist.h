/*
 * A histogram of durations in fixed memory, for the median of per-sample
 * times over a record of any length.
 *
 * Buckets are log-linear: values below 64 ns have one bucket each; above,
 * each power of two is cut into 32 equal buckets, so a bucket's width is at
 * most 1/32 of its values and the median it gives is within about 3%.
 * 64-bit values need 58 x 32 + 64 buckets: 15 KiB, whatever the count.
 *
 * Internal to the core.
 */
#ifndef ASYNCUNWIND_TIMEHIST_H
#define ASYNCUNWIND_TIMEHIST_H

#include <stdint.h>

#define AU_TIMEHIST_SUB 32u
#define AU_TIMEHIST_BUCKETS (64u + 58u * AU_TIMEHIST_SUB)

typedef struct au_timehist {
    uint64_t count;
    uint64_t bucket[AU_TIMEHIST_BUCKETS];
} au_timehist;

void au_timehist_add(au_timehist *h, uint64_t ns);
/* The lower bound of the bucket holding the value of rank ceil(count / 2)
 * (0 when empty). */
uint64_t au_timehist_median(const au_timehist *h);

#endif
