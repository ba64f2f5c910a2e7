/* AFL++'s custom mutator API (AFL_CUSTOM_MUTATOR_LIBRARY) over a target's
 * LLVMFuzzerCustomMutator and LLVMFuzzerCustomCrossOver (mutator.h), so
 * that AFL++ mutates snapshots inside their structure as libFuzzer does,
 * instead of flipping bytes of the container.  au_fuzz_target builds it,
 * with the target's mutator, as <name>_afl_mutator.so (for afl-fuzz's own
 * process: not instrumented, the default configuration); tools/fuzz.sh
 * loads it with AFL_CUSTOM_MUTATOR_ONLY.  The mutators' byte-level
 * mutations fall back to bit flips here: there is no LLVMFuzzerMutate. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/mutator.h"

typedef struct afl_mutator {
    unsigned seed;
    uint8_t *buf;
    size_t cap;
} afl_mutator;

void *afl_custom_init(void *afl, unsigned int seed);
size_t afl_custom_fuzz(void *data, uint8_t *buf, size_t buf_size, uint8_t **out_buf,
                       uint8_t *add_buf, size_t add_buf_size, size_t max_size);
void afl_custom_deinit(void *data);

void *afl_custom_init(void *afl, unsigned int seed) {
    (void)afl;
    afl_mutator *m = calloc(1, sizeof *m);
    if (m) m->seed = seed;
    return m;
}

size_t afl_custom_fuzz(void *data, uint8_t *buf, size_t buf_size, uint8_t **out_buf,
                       uint8_t *add_buf, size_t add_buf_size, size_t max_size) {
    afl_mutator *m = data;
    if (max_size < buf_size) max_size = buf_size;
    if (m->cap < max_size) {
        uint8_t *b = realloc(m->buf, max_size);
        if (!b) {
            *out_buf = buf; /* no memory: the input unchanged */
            return buf_size;
        }
        m->buf = b;
        m->cap = max_size;
    }
    unsigned seed = m->seed++;
    size_t n = 0;
    if (add_buf && add_buf_size && seed % 4 == 0)
        n = LLVMFuzzerCustomCrossOver(buf, buf_size, add_buf, add_buf_size, m->buf, max_size,
                                      seed);
    if (n == 0) {
        memcpy(m->buf, buf, buf_size);
        n = LLVMFuzzerCustomMutator(m->buf, buf_size, max_size, seed);
    }
    *out_buf = m->buf;
    return n;
}

void afl_custom_deinit(void *data) {
    afl_mutator *m = data;
    if (m) free(m->buf);
    free(m);
}
