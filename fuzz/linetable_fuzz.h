/* Shared body of the fuzz targets lnotab, linetable310 and locations (one
 * per line-table decoder of core/cpython/linetable.c); see linetable_fuzz.c. */
#ifndef AU_FUZZ_LINETABLE_FUZZ_H
#define AU_FUZZ_LINETABLE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "au_linetable.h"

/* Runs one fuzz input through the decoder of `kind`; aborts on any broken
 * invariant.  Returns 0 (libFuzzer's "keep going"). */
int au_linetable_fuzz_one(au_linetable_kind kind, const uint8_t *data,
                          size_t size);

#endif
