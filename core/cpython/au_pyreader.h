/*
 * The CPython model's context, shared by pythreads.c (interpreters,
 * threads, frame chains) and pycode.c (code objects, strings, lines).
 * Internal; the API is in asyncunwind.h.
 */
#ifndef ASYNCUNWIND_PYREADER_H
#define ASYNCUNWIND_PYREADER_H

#include <stdint.h>

#include "asyncunwind.h"
#include "au_bytes.h"
#include "au_pyoffsets.h"

#define AU_PR_MAX_INTERPS 64u
#define AU_PR_MAX_CHUNKS 64u           /* datastack chunks per thread */
#define AU_PR_MAX_CHUNK_BYTES (4u << 20) /* datastack bytes per thread */
#define AU_PR_MAX_TABLE (256u << 10)   /* line table bytes kept */
#define AU_PR_PROBE 8u                 /* code cache probe window */
#define AU_PR_MAX_FETCH 1024u          /* code objects fetched per sample */
#define AU_PR_MAX_HINTS 1024u          /* ranges a sample prefetches (one
                                          process_vm_readv takes 1,024) */
#define AU_PR_MAX_HINT_BYTES (1u << 20) /* bytes a sample prefetches */
/* Upper bounds of the limits (larger requests are clamped). */
#define AU_PR_MAX_THREADS (1u << 16)
#define AU_PR_MAX_FRAMES (1u << 20)
#define AU_PR_MAX_NAME 4096u
#define AU_PR_MAX_CACHE (1u << 20)
#define AU_PR_MAX_CHECK_EVERY 1024u
#define AU_PR_MAX_FAILED 16u           /* failed reads remembered per sample */
#define AU_PR_MEMO 4u                  /* lines memoised per code object */
/* Offsets are checked against these at creation, since on 3.13+ they come
 * from the target: fields of small objects (frames, code, str, bytes) lie
 * in their first 4 KiB, fields of runtime structures in their first MiB. */
#define AU_PR_MAX_SMALL_OFFSET 4096u
#define AU_PR_MAX_BIG_OFFSET (1u << 20)

/* A frame as read, before its code object is looked at. */
typedef struct au_rawframe {
    uint64_t addr, code, instr;
    uint64_t gen; /* <= 3.10: the generator or coroutine owning the frame
                     (f_gen), whose __qualname__ names it; else 0 */
} au_rawframe;

/* What a cached code entry was derived from: when any of these differ in
 * the object's current header, the entry is stale (the address was freed
 * and reused) and is fetched again. */
typedef struct au_codekey {
    uint64_t type, name, qualname, filename, linetable;
    int32_t firstlineno;
} au_codekey;

typedef struct au_codeentry {
    uint64_t addr;     /* 0: empty slot */
    au_codekey key;
    uint32_t used;     /* sample number of last use, for eviction */
    uint32_t checked;  /* sample number of the last header check */
    au_pycode info;    /* points into text */
    char *text;        /* name, qualname, filename, UTF-8 */
    uint8_t *table;    /* line table bytes */
    uint32_t text_cap, table_len, table_cap;
    int valid;         /* fetched completely */
    int table_ok;      /* the line table was read (it may be empty: a 3.9
                          lambda on its def line has no lnotab entry) */
    uint64_t genq;     /* <= 3.10: the str the qualname was taken from (a
                          generator's gi_qualname), 0 while it is co_name */
    /* The last lines looked up in the table: the frames of one function
     * (a thousand tasks awaiting at the same line) mostly share one, and
     * a loop that is sampled again and again visits a few. */
    uint32_t memo_units[AU_PR_MEMO]; /* instruction offsets, in code units */
    int32_t memo_line[AU_PR_MEMO];
    uint32_t memo_ok;    /* entries memoised since the table was read */
    uint32_t memo_next;  /* the one replaced next */
} au_codeentry;

/* A range the previous sample read, prefetched by this one (the warm
 * path, pyctx.c): off is its place in hintbuf.  A list of them is sorted
 * by address and disjoint. */
typedef struct au_hint {
    uint64_t addr;
    uint32_t len, off;
    int ok;    /* prefetched successfully this sample */
    int guess; /* holds bytes no sample read (au_pr_hint_widen) */
    int used;  /* served a read this sample: prefetch it next time too */
} au_hint;

/* A read that failed (pyctx.c). */
typedef struct au_span_failed {
    uint64_t addr, len;
} au_span_failed;

/* A datastack span copied from the target (3.11+). */
typedef struct au_span {
    uint64_t addr, len;
    uint64_t off;         /* into spanbuf, unless: */
    const uint8_t *bytes; /* in the prefetch (au_pr_peek), not copied */
    uint64_t low, high;   /* the lowest and highest frames of the walk in
                             it so far (low UINT64_MAX: none yet) */
} au_span;

struct au_pyreader {
    au_allocator alloc;
    au_memsrc *mem;
    au_py_offsets off;
    uint64_t runtime;
    au_pyreader_limits lim;
    au_pyreader_stats stats;
    uint64_t code_type;   /* PyCode_Type, learnt from the first code object */
    uint32_t sample_no;
    uint32_t tid_offset;  /* au_pyreader_set_tid_offset, or 0 */

    /* Per sample, reused. */
    au_pythread *threads;
    uint32_t threads_cap;
    au_rawframe *raw;     /* all threads' frames, innermost first per thread */
    au_pyframe *frames;   /* the same, resolved, outermost first */
    uint32_t raw_cap, frames_cap;
    au_read *reads;
    uint32_t reads_cap;
    uint8_t *buf;         /* destination of batch reads */
    uint32_t buf_cap;
    au_span *spans;
    uint32_t spans_cap;
    uint8_t *spanbuf;
    uint32_t spanbuf_cap;
    uint64_t *seen;       /* frame addresses of the thread being walked */
    uint32_t *seen_stamp;
    uint32_t seen_cap, seen_serial; /* seen_cap: slots in use (power of 2) */
    uint32_t seen_n;                /* entries of this walk */
    uint32_t seen_alloc, stamp_alloc; /* slots allocated */
    uint32_t *pending;    /* cache slots needing a fetch */
    uint32_t pending_cap;
    uint64_t *raw_gen;    /* name_generators' generators, then qualnames */
    uint32_t raw_gen_cap;

    au_codeentry *cache;
    uint32_t cache_cap;   /* slots in use, a power of two */
    uint32_t cache_alloc; /* slots allocated */

    /* The warm path (pyctx.c): the ranges the previous sample read, all
     * fetched in one batch when this one starts (hints, into hintbuf),
     * and this sample's reads, recorded for the next (next). */
    au_hint *hints, *next;
    uint32_t nhints, nnext;
    uint32_t hint_cursor; /* the range that served the last read */
    /* Reads that failed this sample, so that no range of the next
     * sample's prefetch holds one whole (it would serve it, where a read
     * of its own fails): at most AU_PR_MAX_FAILED, beyond which the next
     * list takes no more ranges. */
    au_span_failed failed[AU_PR_MAX_FAILED];
    uint32_t nfailed;
    uint32_t hints_cap, next_cap;
    uint8_t *hintbuf;
    uint32_t hintbuf_cap;
    uint64_t next_bytes;
    au_read *miss;        /* the reads of a batch no hint served */
    uint32_t miss_cap;
    uint32_t prefetch_failed; /* prefetched ranges that failed this sample:
                                 a guess that missed (a widened chunk that a
                                 snapshot does not hold, memory freed since),
                                 not a failed read of the sample's */
    int recording;        /* AU_PR_REC_*: inside au_pyreader_sample, reads
                             are served from the prefetch and recorded for
                             the next sample's */
    int no_widen;         /* a widened range failed: guess no more */
};

/* ---- pyctx.c: buffers and reads, used by every file of the model ------ */

static inline int au_pr_present(uint32_t off) { return off != AU_PYOFF_ABSENT; }

/* Grow helper that counts allocations in the sample's stats.  Inline for
 * the usual answer, "there is room": the frame walk asks once per frame. */
int au_pr_grow_slow(au_pyreader *r, void *pptr, uint32_t *cap, size_t need, size_t elem);
static inline int au_pr_grow(au_pyreader *r, void *pptr, uint32_t *cap, size_t need,
                             size_t elem) {
    return need <= *cap ? AU_OK : au_pr_grow_slow(r, pptr, cap, need, elem);
}

/* Issue the batch reads[0..n) and count it.  Returns the source's status
 * (each read has its own). */
int au_pr_batch(au_pyreader *r, uint32_t n);

/* Bytes to read from the start of a struct to cover the given fields
 * (each `width` bytes wide; absent fields are ignored). */
uint32_t au_pr_span_end(const uint32_t *offs, int n, uint32_t width);

/* The warm path.  au_pr_hints_begin fetches, in one batch, every range
 * the previous sample read, and turns recording on: from then on each
 * batch is served from those bytes where a read lies inside a range
 * fetched successfully, and only the rest goes to the memory source.
 * Every read is keyed by its address, so a stack that changed simply
 * misses (and is read as before): nothing read from the prefetch is
 * trusted more than a read made then.  au_pr_hints_end stops recording
 * and sizes the buffers for the next sample, so that a warm sample whose
 * reads match the previous one's allocates nothing. */
int au_pr_hints_begin(au_pyreader *r); /* AU_OK: the prefetch is best effort */
void au_pr_hints_end(au_pyreader *r);
/* Recording on (1) or off (0) for reads that the next sample will not
 * repeat (a code object's names, fetched once); returns the previous
 * setting, to restore. */
#define AU_PR_REC_OFF 0   /* straight to the memory source */
#define AU_PR_REC_ON 1    /* served from the prefetch, and recorded */
#define AU_PR_REC_SERVE 2 /* served from the prefetch, not recorded: a read
                             the next sample will not repeat, but which an
                             earlier au_pr_hint_next may have prefetched */
int au_pr_hints_pause(au_pyreader *r, int recording);
/* The next sample will read [addr, addr+len) once (a code object's header
 * that is due for its check): prefetch it with the rest.  Only while
 * recording (AU_PR_REC_ON). */
void au_pr_hint_next(au_pyreader *r, uint64_t addr, uint32_t len);
/* A guess: the next sample may read [addr, addr+len), which this one did
 * not read in full (a datastack chunk whose top moves up and down within
 * the chunk).  Prefetched with the rest; if it fails, this reader stops
 * guessing. */
void au_pr_hint_widen(au_pyreader *r, uint64_t addr, uint32_t len);

/* [addr, addr+len) as this sample's prefetch holds it, without a copy
 * (marked for the next sample's prefetch like a read), or NULL when the
 * prefetch does not hold it all: then read it.  Valid until the sample
 * ends. */
const uint8_t *au_pr_peek(au_pyreader *r, uint64_t addr, uint32_t len);

/* Read `len` bytes at addr into the start of r->buf (one read). */
int au_pr_read(au_pyreader *r, uint64_t addr, uint32_t len);

/* Read the 8-byte fields at base + offs[i] in one batch into vals[i];
 * absent fields read as 0. */
int au_pr_read_fields(au_pyreader *r, uint64_t base, const uint32_t *offs, int n,
                      uint64_t *vals);

/* ---- pycode.c: code objects --------------------------------------------- */

/* Resolve the raw frames raw[0..n) into out[0..n) (same order), reading
 * code objects in batches; frames whose code is not a code object get
 * code == UINT32_MAX.  Returns AU_OK or AU_ERR_NOMEM. */
int au_pr_resolve_code(au_pyreader *r, const au_rawframe *raw, uint32_t n, au_pyframe *out);
void au_pr_cache_free(au_pyreader *r);


#endif
