/* A structure-aware mutator of snapshot files: LLVMFuzzerCustomMutator and
 * LLVMFuzzerCustomCrossOver (libFuzzer uses them; AFL++ and the regression
 * replay do not), in pipeline_mutator.c or links_mutator.c, one per
 * target. */
#ifndef ASYNCUNWIND_FUZZ_MUTATOR_H
#define ASYNCUNWIND_FUZZ_MUTATOR_H

#include <stddef.h>
#include <stdint.h>

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t s1, const uint8_t *d2, size_t s2,
                                 uint8_t *out, size_t max_out, unsigned int seed);

/* libFuzzer's own mutator; absent in the regression test and under AFL++. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size) __attribute__((weak));

/* For the regression test: mutates and crosses data over with a few seeds
 * and checks every output is a valid snapshot. */
void mutator_self_test(const uint8_t *data, size_t size);

#endif
