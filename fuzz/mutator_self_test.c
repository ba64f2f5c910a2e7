/* mutator_self_test (mutator.h): what the regression replay checks of a
 * target's mutator on each corpus input. */
#include <stdlib.h>
#include <string.h>

#include "asyncunwind.h"
#include "fuzz/fuzz_helpers.h"
#include "fuzz/mutator.h"
#include "fuzz/snapmodel.h"

void mutator_self_test(const uint8_t *data, size_t size) {
    size_t cap = size * 2 + 4096;
    uint8_t *buf = xmalloc(cap), *out = xmalloc(cap);
    au_snapshot *s = NULL;
    int valid = au_snapshot_parse(NULL, data, size, &s) == AU_OK;
    au_snapshot_free(s);
    for (unsigned seed = 1; seed <= 2; seed++) {
        memcpy(buf, data, size);
        size_t n = LLVMFuzzerCustomMutator(buf, size, cap, seed);
        CHECK(n > 0 && n <= cap, "mutator returned %zu", n);
        s = NULL;
        CHECK(!valid || au_snapshot_parse(NULL, buf, n, &s) == AU_OK,
              "mutator output (seed %u) invalid", seed);
        au_snapshot_free(s);
        size_t c = LLVMFuzzerCustomCrossOver(data, size, buf, n, out, cap, seed);
        CHECK(c <= cap, "cross-over returned %zu", c);
    }
    free(buf);
    free(out);
}
