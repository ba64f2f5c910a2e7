/* Fuzz target `lnotab`: the 3.9 line-table decoder (AU_LT_LNOTAB) of
 * core/cpython/linetable.c.  Input layout and invariants: fuzz/linetable_fuzz.c. */
#include "fuzz/linetable_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return au_linetable_fuzz_one(AU_LT_LNOTAB, data, size);
}
