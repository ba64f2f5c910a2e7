/* The sample layer's interface to the layers above it (render/).
 * Internal; the API is in asyncunwind.h. */
#ifndef ASYNCUNWIND_SAMPLER_H
#define ASYNCUNWIND_SAMPLER_H

#include "asyncunwind.h"

/* The allocator the sampler was opened with (libc's when it was NULL). */
au_allocator au_sampler_alloc(const au_sampler *s);

#endif
