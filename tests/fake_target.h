/*
 * A synthetic CPython target in memory, for tests that need exact control
 * over what the reader sees: an address space (one flat arena at a fixed
 * base address) served through an au_memsrc, and helpers that lay out
 * runtime, interpreter, thread, frames, code objects and strings with a
 * version's au_py_offsets.  Layouts come from the same tables the reader
 * uses; the point is to change memory between samples (freed and reused
 * addresses, corrupted pointers), which a live process cannot be made to do
 * on demand.
 */
#ifndef AU_TESTS_FAKE_TARGET_H
#define AU_TESTS_FAKE_TARGET_H

#include <stdint.h>

#include "asyncunwind.h"
#include "au_pyoffsets.h"

#define FT_BASE 0x10000000ull
#define FT_SIZE (1u << 20)

typedef struct fake_target {
    au_memsrc base; /* first: the memory source */
    uint8_t mem[FT_SIZE];
    uint64_t brk;   /* next free address */
    const au_py_offsets *off;
    uint64_t runtime, interp, tstate, code_type, str_type, bytes_type;
    uint64_t entry; /* the entry frame chains end at (3.12+), or 0 */
} fake_target;

/* A target of version_hex (3.11 or 3.12 layouts; frames are plain memory
 * unless placed in a datastack chunk, ft_chunk), with runtime, one
 * interpreter and one thread state.  Returns NULL if unsupported. */
fake_target *ft_new(uint32_t version_hex);
void ft_free(fake_target *t);

uint64_t ft_alloc(fake_target *t, uint32_t size);
void ft_put64(fake_target *t, uint64_t addr, uint64_t v);
void ft_put32(fake_target *t, uint64_t addr, uint32_t v);

/* A compact ASCII str. */
uint64_t ft_str(fake_target *t, const char *s);
/* A code object named name in file, first line firstlineno, with an empty
 * line table (lines then read as -1 except before the first instruction). */
uint64_t ft_code(fake_target *t, const char *name, const char *file, int32_t firstlineno);
/* A frame running code, linked to previous (0 for the outermost), with no
 * instruction executed yet (its line is the code's first line).  The
 * outermost frame is made as a real thread's first frame is: 3.11 marks
 * it is_entry, 3.12 links it to an entry frame owned by the C stack
 * (ft_entry), which the reader skips. */
uint64_t ft_frame(fake_target *t, uint64_t code, uint64_t previous);
/* The same frame at address f (in a chunk from ft_chunk). */
uint64_t ft_frame_at(fake_target *t, uint64_t f, uint64_t code, uint64_t previous);
/* A datastack chunk with room for `frames` frames, every byte of it in use
 * (the thread state's chunk and top point at it); returns the address of
 * its first frame slot.  Slot k is at that + k * (frame_header_size + 16). */
uint64_t ft_chunk(fake_target *t, uint32_t frames);
/* The entry frame that 3.12+ chains end at (made once), or 0 (3.11). */
uint64_t ft_entry(fake_target *t);
/* Make frame the thread's current (innermost) frame. */
void ft_set_current(fake_target *t, uint64_t frame);

#endif
