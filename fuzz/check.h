/* CHECK(cond, fmt, ...): a harness's invariant.  When it does not hold,
 * print where (the file names the harness), the condition and the message,
 * then abort, which every engine reports as a crash with its input. */
#ifndef ASYNCUNWIND_FUZZ_CHECK_H
#define ASYNCUNWIND_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n  ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                             \
            fprintf(stderr, "\n");                                                    \
            abort();                                                                  \
        }                                                                             \
    } while (0)

#endif
