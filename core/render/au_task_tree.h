/* One thread's tasks as a tree (task_tree.c): each task's children, in a
 * stable order, the roots to start from, and which tasks sit on a cycle
 * of parents (a deadlock), so that the tree and JSON formats show the
 * same tree.  Internal; the API is in asyncunwind.h. */
#ifndef ASYNCUNWIND_TASK_TREE_H
#define ASYNCUNWIND_TASK_TREE_H

#include <stdint.h>

#include "asyncunwind.h"

/* A task's node.  Indices are into au_sample.tasks. */
typedef struct au_tree_node {
    uint32_t first_child, nchildren; /* into au_task_tree.child */
    uint32_t in_cycle;               /* on a cycle of parents */
} au_tree_node;

typedef struct au_task_tree {
    au_allocator a;
    size_t bytes;          /* what the arrays below took, in one block */
    void *block;
    uint32_t first, n;     /* the thread's tasks: [first, first + n) */
    au_tree_node *node;    /* node[i] is task first + i */
    uint32_t *child;       /* children, each list in order */
    uint32_t *roots, nroots; /* tasks without a parent, then one member
                                of each cycle, in order */
} au_task_tree;

/* Build thread `thread`'s tree from smp (au_sample_task.parent only, so
 * whatever the parents hold: a parent outside the thread counts as none).
 * Order: by name bytes, then by id, so that the output is the same from
 * one run of the target to the next although addresses change.
 * O(n log n) in the thread's tasks, bounded walks.  AU_ERR_NOMEM. */
int au_task_tree_build(au_task_tree *t, const au_sampler *s, const au_sample *smp,
                       uint32_t thread);
void au_task_tree_free(au_task_tree *t);

#endif
