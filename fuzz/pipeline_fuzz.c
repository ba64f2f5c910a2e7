/*
 * Fuzz target `pipeline`: the whole sampler over corrupted memory
 * snapshots of real CPython 3.9-3.15 processes.  A snapshot is replayed as
 * `asyncunwind replay` does (au_sampler_open_snapshot, au_sampler_sample,
 * au_sample_stack_entries for every stack, au_render in both formats), so
 * threads, frames, code objects, tasks and their containers (sets, dicts,
 * weakrefs, 3.14+ linked lists), coroutine chains, callbacks and links are
 * all read from corrupted memory.  The seeds are the golden snapshots of
 * every asyncio and thread fixture on the nine interpreters
 * (corpus/golden/), so the sampler starts from real interpreter state.
 *
 * What is checked, and how the input chooses the options: sampler_check.c.
 * How inputs are mutated (the container stays valid): pipeline_mutator.c.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz/mutator.h"
#include "fuzz/sampler_check.h"

static int regression;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    regression = sc_init(argc, argv);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sc_check(data, size, 0);
    if (regression) mutator_self_test(data, size);
    return 0;
}
