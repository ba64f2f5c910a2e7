/*
 * A tiny builder for resolver inputs in tests, and a renderer that turns the
 * resolver's output into one readable line per stack, so tests can assert
 * exact stacks as strings:
 *
 *   "Task-not_awaited: main;run;select;[Task-1];parent;[Task-not_awaited];func"
 *
 * Frames are named: the builder interns each name and uses its number as the
 * frame id.  Markers render as [task name], <cycle:task name> and "...".
 */
#ifndef AU_TESTS_GRAPH_BUILDER_H
#define AU_TESTS_GRAPH_BUILDER_H

#include <stdint.h>

#include "asyncunwind.h"

#define GB_MAX_TASKS 64
#define GB_MAX_FRAMES 1024
#define GB_MAX_NAMES 256

typedef struct gb_graph {
    au_task tasks[GB_MAX_TASKS];
    au_link links[GB_MAX_TASKS * 2];
    uint64_t frame_pool[GB_MAX_FRAMES]; /* task and thread frames */
    uint32_t npool;
    const char *names[GB_MAX_NAMES];    /* frame id k+1 -> names[k] */
    char store[GB_MAX_NAMES][48];       /* copies of names split from specs */
    uint32_t nnames;
    au_thread_sample sample;
} gb_graph;

void gb_init(gb_graph *g);
/* Frames are given as "a;b;c", outermost first ("" for none). */
void gb_thread(gb_graph *g, const char *frames);
au_task *gb_task(gb_graph *g, uint64_t id, const char *name, const char *frames);
void gb_link(gb_graph *g, uint64_t child, uint64_t parent);
/* The id of a frame name (interning it). */
uint64_t gb_frame(gb_graph *g, const char *name);

/* Render stacks as lines "leafname[flags]: entries", joined with '\n',
 * each stack written out with au_stack_entries() at most cap entries long.
 * Flags: " (running)", " (cycle)", " (depth)", " (frames)" (longer than
 * cap), "(thread)".  Returns buf. */
const char *gb_render(const gb_graph *g, const au_resolver *r, const au_stacks *st, uint32_t cap,
                      char *buf, size_t size);

#endif
