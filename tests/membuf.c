#include "membuf.h"

#include <stdlib.h>
#include <string.h>

int membuf_write(void *ud, const void *buf, size_t len) {
    membuf *b = ud;
    if (len > SIZE_MAX / 2 - b->len) return -1;
    if (b->len + len > b->cap) {
        size_t cap = (b->len + len) * 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p) return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, buf, len);
    b->len += len;
    return 0;
}

void membuf_free(membuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
