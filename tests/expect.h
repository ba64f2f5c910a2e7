/*
 * Fixture expectations (python_fixtures/expected/NAME.txt) and matchers that
 * check what a reader saw against them.
 *
 * Format (python_fixtures/README.md has the whole story):
 *   # comment
 *   requires 3.11            directives, before the first block: a minimum
 *   requires uvloop          Python version, a module the interpreter must
 *   requires anyio           import (uvloop, anyio)
 *
 *   thread NAME              a thread's stack without tasks (NAME may hold '*')
 *   FUNC FILE:LINE [xN]      a frame: LINE a number or '*'; FILE a basename
 *   ...                      any number of frames (zero or more)
 *
 *   stack LEAF               a task-aware stack whose leaf task is LEAF
 *   on THREAD                (optional) the thread's name
 *   ...
 *   (cycle -> NAME)          the chain closed on a cycle back to task NAME
 *   (truncated)              the stack was cut
 *   [NAME]                   a task marker, then that task's frames
 *   QUALNAME FILE:LINE [xN]
 *
 * Blocks end at a blank line or at the next header.  LEAF, THREAD and every
 * task NAME may hold '*', which matches any run of characters.  A "..."
 * stands for frames only: it never absorbs a task marker, a cycle or a
 * truncation entry.  Block matching: a block whose name (thread name, or
 * leaf) has no '*' matches exactly one stack, a block with '*' any number,
 * and every stack is matched by some block.
 *
 * Variants: NAME.txt is with the in-target agent (weak links);
 * NAME.noagent.txt, when it exists, is without it (ex_load_fixture).
 */
#ifndef AU_TESTS_EXPECT_H
#define AU_TESTS_EXPECT_H

#include <stddef.h>
#include <stdint.h>

#include "asyncunwind.h"

#define EX_MAX_BLOCKS 256          /* blocks per file */
#define EX_MAX_LINES 4096          /* entry lines per file; an "xN" line is one */
#define EX_MAX_TEXT (256 * 1024)   /* bytes of names per file */

typedef enum ex_kind {
    EX_ANY = 1,    /* "..." */
    EX_FRAME,      /* name = qualname (thread blocks: co_name), file, line */
    EX_TASK,       /* "[name]" */
    EX_CYCLE,      /* "(cycle -> name)" */
    EX_TRUNCATED,  /* "(truncated)" */
} ex_kind;

typedef struct ex_line {
    uint8_t kind;     /* ex_kind */
    uint32_t name;    /* offset into ex_file.text */
    uint32_t file;    /* offset into ex_file.text (EX_FRAME) */
    int32_t line;     /* EX_FRAME: -1 for '*' */
    uint32_t repeat;  /* EX_FRAME: N of " xN", else 1 */
    uint32_t srcline; /* its line in the file */
} ex_line;

typedef enum ex_block_kind { EX_BLOCK_THREAD = 1, EX_BLOCK_STACK } ex_block_kind;

typedef struct ex_block {
    uint8_t kind;          /* ex_block_kind */
    uint32_t name;         /* thread name or leaf pattern (offset into text) */
    uint32_t on;           /* stack blocks: thread pattern, 0 when absent */
    uint32_t first, nlines; /* its entries: ex_file.lines[first..first+nlines) */
    uint32_t srcline;
} ex_block;

/* About 360 KB: allocate it statically or on the heap. */
typedef struct ex_file {
    char source[512];        /* the path (or label) it came from */
    int noagent;             /* ex_load_fixture chose NAME.noagent.txt */
    int requires_major;      /* "requires 3.11": 3 and 11; 0 when absent */
    int requires_minor;
    unsigned requires_mods;  /* "requires uvloop" / "anyio": EX_MOD_* */
    uint32_t nblocks, nlines, ntext;
    ex_block blocks[EX_MAX_BLOCKS];
    ex_line lines[EX_MAX_LINES];
    char text[EX_MAX_TEXT];  /* NUL-terminated strings; offset 0 is "" */
} ex_file;

/* The string at offset off of ex->text. */
const char *ex_str(const ex_file *ex, uint32_t off);

/* Parse text[0..len) (source names it in messages); returns 0, or -1 with
 * "SOURCE:LINE: why: the line" in err. */
int ex_parse(const char *text, size_t len, const char *source, ex_file *out, char *err,
             size_t errlen);

/* Parse the file at path; returns 0, or -1 with a message in err. */
int ex_load(const char *path, ex_file *out, char *err, size_t errlen);

/* Load DIR/FIXTURE.txt (agent != 0), or DIR/FIXTURE.noagent.txt when agent
 * is 0 and that file exists, else DIR/FIXTURE.txt.  FIXTURE may end in
 * ".py".  Sets out->noagent when the .noagent file was used. */
int ex_load_fixture(const char *dir, const char *fixture, int agent, ex_file *out, char *err,
                    size_t errlen);

/* The modules a file may require (ex_file.requires_mods). */
#define EX_MOD_UVLOOP 0x1u
#define EX_MOD_ANYIO 0x2u

/* 1 when the file's directives hold for Python major.minor with the
 * modules `mods` (EX_MOD_*) importable, else 0 with the reason in why
 * ("needs Python 3.11+ (this is 3.9)", "needs uvloop"): the test skips. */
int ex_applies(const ex_file *ex, int major, int minor, unsigned mods, char *why, size_t whylen);

/* Thread blocks against a sample of live threads (stack blocks are
 * ignored): each block whose name has no '*' takes the first thread it
 * matches that no earlier block took, blocks with '*' take every such
 * thread, and every thread must be taken.  Frames compare by the code's
 * name (co_name), the file's basename and the line.  Returns 0, or -1
 * with a readable explanation (expected vs actual) in err. */
int ex_match(const ex_file *ex, const au_pyreader *r, const au_pysample *s, char *err,
             size_t errlen);

/* Render one thread's frames as "name file:line" lines into buf. */
void ex_render_thread(const au_pyreader *r, const au_pythread *t, char *buf, size_t len);

/* One rendered stack, as a sampler produces it. */
typedef struct ex_stack {
    const char *thread;         /* thread name, "" when unknown */
    const char *leaf;           /* leaf task name; NULL for a stack without tasks */
    const char *const *entries; /* root first: "QUALNAME FILE:LINE" (FILE a full
                                   path: compare its basename; LINE may be "?"),
                                   "[NAME]", "(cycle -> NAME)", "(truncated)" */
    size_t nentries;
} ex_stack;

/* Every block without '*' matches exactly one stack, blocks with '*' any
 * number, every stack is matched by some block.  A thread block matches
 * stacks without a leaf, a stack block stacks with one.  Returns 0, or -1
 * with every problem in err, each with a diff against the nearest block
 * (or stack): expected lines and actual entries, '>' where they part. */
int ex_match_stacks(const ex_file *ex, const ex_stack *stacks, size_t n, char *err,
                    size_t errlen);

#endif
