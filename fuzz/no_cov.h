/* NO_COV marks a harness function that the fuzzer should not be guided
 * by: checking code and reference models loop over every byte they check,
 * and their coverage and comparison tracing would cost a large share of
 * the run time while telling the fuzzer nothing about the code under test.
 * ASan and UBSan still instrument them.
 *
 * Clang 14 spells it no_sanitize("coverage"); later clangs also know
 * no_sanitize_coverage, which __has_attribute reports false on 14, so
 * testing for that one alone silently did nothing.  gcc builds only the
 * regression replays, where it does not matter. */
#ifndef ASYNCUNWIND_FUZZ_NO_COV_H
#define ASYNCUNWIND_FUZZ_NO_COV_H

#if defined(__clang__)
#define NO_COV __attribute__((no_sanitize("coverage")))
#else
#define NO_COV
#endif

#endif
