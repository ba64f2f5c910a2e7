/* A growable byte buffer that au_recorder_write() can write a snapshot
 * into, for tests and benchmarks that replay what they record. */
#ifndef AU_TESTS_MEMBUF_H
#define AU_TESTS_MEMBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct membuf {
    uint8_t *data;
    size_t len, cap;
} membuf;

/* The write callback: appends len bytes; 0, or -1 when out of memory. */
int membuf_write(void *ud, const void *buf, size_t len);
void membuf_free(membuf *b);

#endif
