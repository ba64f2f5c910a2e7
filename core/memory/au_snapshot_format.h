/* Constants of the snapshot file format, shared by the parser
 * (snapshot.c) and the writer (recorder.c).  docs/SNAPSHOT.md describes the
 * format; change both together and bump AU_SNAP_VERSION on any change that
 * an older parser would misread. */
#ifndef ASYNCUNWIND_SNAPSHOT_FORMAT_H
#define ASYNCUNWIND_SNAPSHOT_FORMAT_H

/* 0x89 catches 7-bit transports, "\r\n" newline translation, like PNG. */
#define AU_SNAP_MAGIC "\x89" "AUSNP\r\n"
#define AU_SNAP_VERSION 1u
#define AU_SNAP_HEADER_SIZE 16u

/* Record types.  Records are {u32 type, u32 length, payload, zero padding
 * to a multiple of 8}, little-endian. */
#define AU_SNAP_META 1u    /* u32 pid, u32 py_version_hex, u64 runtime, u64 time_ns,
                            * then optionally u64 asyncio_debug, u64 agent */
#define AU_SNAP_THREAD 2u  /* u64 native thread id, name bytes */
#define AU_SNAP_REGION 3u  /* u64 address, bytes; sorted by address, disjoint */
#define AU_SNAP_FAILED 4u  /* u64 address, u64 length of a read that failed */
#define AU_SNAP_END 5u     /* empty; the last record of the file */
#define AU_SNAP_PTHREAD 6u /* u64 pthread id of the THREAD record just before */
#define AU_SNAP_CRITICAL 0x80000000u /* unknown types with this bit: reject */

#define AU_SNAP_META_SIZE 24u      /* the fields every META has */
#define AU_SNAP_META_ASYNC_SIZE 40u /* with the asyncio addresses */

/* Caps that keep a hostile file from costing more than its own size. */
#define AU_SNAP_MAX_RECORDS (1u << 22)
#define AU_SNAP_MAX_THREADS 4096u
#define AU_SNAP_MAX_NAME 256u
#define AU_SNAP_MAX_REGION (16u << 20)

#endif
