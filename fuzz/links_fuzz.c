/*
 * Fuzz target `links`: the sampler over snapshots whose link inputs, and
 * only those, are corrupted: tasks' fut_waiter, callbacks and their
 * tuples, closures and cells, functools.partial args, bound methods'
 * __self__, 3.14+ awaited_by and its is_set flag (and the agent's records
 * once they land), pointed at other tasks, at themselves, at freed-looking
 * and unmapped objects, into cycles.  links_mutator.c finds those bytes by
 * sampling each input once and keeping the reads the asyncio model made
 * while it read links; the seeds are the golden snapshots of the asyncio
 * fixtures (corpus/golden/), which hold every kind of link.
 *
 * Checked: everything sampler_check.c lists, with the asyncio model always
 * on (SC_ASYNCIO) and without the recording round trip, which the pipeline
 * target covers (SC_NO_RECORD) — in particular the graph rules on what
 * comes out:
 * every present task in a stack, cycles as cycle-marked stacks, parents
 * chosen await > strong > weak, and the reference resolver's result on the
 * sampler's own per-thread input.
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
    sc_check(data, size, SC_ASYNCIO | SC_NO_RECORD);
    if (regression) mutator_self_test(data, size);
    return 0;
}
