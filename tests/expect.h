/*
 * Fixture expectations (python_fixtures/expected/NAME.txt) and a matcher that
 * checks a sample of live threads against them.
 *
 * Format (python_fixtures/README.md): '#' comments; blocks separated by
 * blank lines, each starting with "thread NAME" (NAME may hold '*'), then
 * one frame per line, outermost first: "FUNC FILE:LINE" with LINE a number
 * or '*', optionally followed by " xN" (N consecutive identical frames),
 * or "..." for any number of frames.
 */
#ifndef AU_TESTS_EXPECT_H
#define AU_TESTS_EXPECT_H

#include <stdint.h>

#include "asyncunwind.h"

#define EX_MAX_BLOCKS 16
#define EX_MAX_LINES 32

typedef struct ex_line {
    int any;          /* "..." */
    char func[6000];  /* UTF-8 */
    char file[128];
    int32_t line;     /* -1: '*' */
    uint32_t repeat;
} ex_line;

typedef struct ex_block {
    char name[64];
    uint32_t nlines;
    ex_line lines[EX_MAX_LINES];
} ex_block;

typedef struct ex_file {
    uint32_t nblocks;
    ex_block blocks[EX_MAX_BLOCKS];
} ex_file;

/* Parse path; returns 0, or -1 with a message in err. */
int ex_load(const char *path, ex_file *out, char *err, size_t errlen);

/* Check a sample against the expectations: every block whose name has no
 * '*' matches exactly one thread, blocks with '*' match any number, and
 * every thread is matched by some block.  Frames compare by the code's
 * name (co_name), the file's basename and the line.  Returns 0, or -1 with
 * a readable explanation (expected vs actual) in err. */
int ex_match(const ex_file *ex, const au_pyreader *r, const au_pysample *s, char *err,
             size_t errlen);

/* Render one thread's frames as "name file:line" lines into buf. */
void ex_render_thread(const au_pyreader *r, const au_pythread *t, char *buf, size_t len);

#endif
