#include "fuzz/check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* The harness's context printer (one harness per process). */
static check_context_fn context_fn;
static void *context_ud;

void check_on_failure(check_context_fn fn, void *ud) {
    context_fn = fn;
    context_ud = ud;
}

void check_failed(const char *file, int line, const char *cond, const char *fmt, ...) {
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, cond);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "  ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    if (context_fn) {
        check_context_fn fn = context_fn;
        context_fn = NULL; /* a check failing inside it must not loop */
        fn(context_ud);
    }
    fflush(stderr);
    abort();
}
