#include "bench/counting_alloc.h"

#include <stdlib.h>

static void *counting_realloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    counting_alloc *c = ud;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    c->allocations++;
    return realloc(ptr, new_size);
}

au_allocator counting_allocator(counting_alloc *c) {
    au_allocator a = {counting_realloc, c};
    return a;
}
