/* The checks of a whole sample, shared by the fuzz targets that feed the
 * sampler corrupted snapshots (`pipeline`, `links`): one input, a snapshot
 * file, sampled with the options its META chooses, through a memory source
 * that watches every read, and every invariant of docs/SNAPSHOT.md,
 * docs/RESOLVER.md and asyncunwind.h checked on the result.  The list is
 * at the top of sampler_check.c.
 *
 * Also what the mutators need: a recording of the reads one sample makes,
 * each tagged with what the asyncio model was reading (au_at_phase). */
#ifndef ASYNCUNWIND_FUZZ_SAMPLER_CHECK_H
#define ASYNCUNWIND_FUZZ_SAMPLER_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* Call from LLVMFuzzerInitialize: runs from the workspace under
 * `bazel run`, and under a <name>_regression test (argv[0] ends so) arms
 * a watchdog per input.  Returns 1 in a regression test.  The environment
 * variable AU_FUZZ_PRINT=1 prints each sample's renders to stderr. */
int sc_init(int *argc, char ***argv);

/* sc_check and sc_record flags. */
#define SC_ASYNCIO 0x1u   /* never AU_SAMPLER_NO_TASKS, whatever META says */
#define SC_NO_RECORD 0x2u /* never run R, the recording round trip (the
                             costliest run: a target that does not change
                             what is read spends its time elsewhere) */

/* The option word (sampler_check.c) of a META time_ns, and back: the
 * mixing is its own inverse. */
uint64_t sc_time_mix(uint64_t time_ns);

/* Every check over one input (any bytes: an unparseable file returns at
 * once).  Aborts through CHECK on a violation. */
void sc_check(const uint8_t *data, size_t size, unsigned flags);

/* One read of a recorded sample. */
typedef struct sc_read {
    uint64_t addr;
    uint32_t len;
    int32_t status; /* AU_OK or the error */
    uint32_t phase; /* au_at_phase when it was made */
} sc_read;

typedef struct sc_recording {
    sc_read *reads; /* in the order they were made */
    uint32_t nreads;
    uint64_t *tasks; /* the sample's task addresses */
    uint32_t ntasks;
    uint32_t version; /* META's */
} sc_recording;

/* Samples the snapshot once as sc_check's first run does (same options),
 * keeping up to max_reads reads.  Returns 0 when the file does not parse
 * or the sampler cannot be opened (out is then empty). */
int sc_record(const uint8_t *data, size_t size, unsigned flags, uint32_t max_reads,
              sc_recording *out);
void sc_recording_free(sc_recording *r);

#endif
