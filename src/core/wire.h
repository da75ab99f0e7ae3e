/* The wire format: message tags, and one encoder and decoder per record kind, generated from its field list. */
#ifndef TF_CORE_WIRE_H
#define TF_CORE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * Every record is declared once, as an X-macro list of (type, field) in
 * wire order. From that list come its C struct, its size on the wire
 * (TF_WIRE_<KIND>_SIZE, the sum of its fields), its encoder
 * tf_wire_put_<kind> and its decoder tf_wire_get_<kind>, so a field added
 * to a list is sent, received and counted everywhere at once. The runtime
 * (src/net), the simulator (src/sim) and the unit tests use these and
 * nothing else; tests/unit/test_wire.c holds the lists against the table
 * in docs/architecture.md. The codec lives in the core, not in src/net,
 * because the simulator and the unit tests need it without MPI.
 *
 * Messages never leave one job, whose ranks share one architecture: fields
 * travel in host byte order, unaligned (buf.h).
 */

/* Message tags on the runtime's private communicator. */
enum {
    TF_TAG_TASKS = 1, /* rank 0 -> worker: BATCH header, TASK records */
    TF_TAG_REPORT,    /* worker -> rank 0: DONE, SUBMIT, UNRUN, MOVED records */
    TF_TAG_STOP,      /* rank 0 -> worker: STOP, the run is over */
    TF_TAG_STOP_ACK,  /* worker -> rank 0: empty, nothing more will come */
    TF_TAG_ERROR,     /* worker -> rank 0: ERROR, the run must end */
    TF_TAG_HALT,      /* rank 0 -> worker: empty, drop queued tasks */
    TF_TAG_STEAL,     /* thief -> victim: STEAL, asks for tasks */
    TF_TAG_STOLEN,    /* victim -> thief: BATCH header, TASK records */
    TF_TAG_RELEASE,   /* rank 0 -> worker: RELEASE, every rank acknowledged */
    TF_TAG_HEARTBEAT, /* either way, empty: "still here" (heartbeat_ms) */
};

/* The kind byte that opens each record of a REPORT. */
enum {
    TF_REC_DONE = 1,   /* an attempt ended */
    TF_REC_SUBMIT = 2, /* a task submitted a task */
    TF_REC_UNRUN = 3,  /* dropped before it started (a halt) */
    TF_REC_MOVED = 4,  /* this rank gave a queued task to a thief */
};

/* BATCH flags: rank 0 had nothing else ready when it sent the batch. */
#define TF_WIRE_DRY 0x1u
/* In place of a dependency's length: its output comes from a task here. */
#define TF_WIRE_ANCHOR UINT32_MAX

#define TF_WIRE_T_u8 uint8_t
#define TF_WIRE_T_u16 uint16_t
#define TF_WIRE_T_i16 int16_t
#define TF_WIRE_T_u32 uint32_t
#define TF_WIRE_T_i32 int32_t
#define TF_WIRE_T_u64 uint64_t

/*
 * The records, in wire order. What follows the fixed part of a record is
 * said beside it; docs/architecture.md has the same table.
 */
/* Opens TASKS and STOLEN messages. */
#define TF_WIRE_BATCH(X) X(u8, flags)
/* Then input_len input bytes and ndeps DEP entries. */
#define TF_WIRE_TASK(X)                                                        \
    X(u32, index) X(u32, fn) X(u64, id) X(u16, cores) X(u8, attempt)           \
    X(u8, pad) X(u32, input_len) X(u32, ndeps)
/* Then len bytes; len TF_WIRE_ANCHOR: a u32 task index instead. */
#define TF_WIRE_DEP(X) X(u32, len)
/* Then out_len output bytes. */
#define TF_WIRE_DONE(X)                                                        \
    X(u8, kind) X(u32, index) X(u8, attempt) X(i32, status) X(u64, start_ns)   \
    X(u64, end_ns) X(u16, slot) X(u32, out_len)
/* Then ndeps u64 dependency ids and input_len input bytes. */
#define TF_WIRE_SUBMIT(X)                                                      \
    X(u8, kind) X(u64, id) X(u64, parent) X(u32, fn) X(i32, prio)              \
    X(u16, cores) X(i16, retries) X(u32, ndeps) X(u32, input_len)
#define TF_WIRE_UNRUN(X) X(u8, kind) X(u32, index)
#define TF_WIRE_MOVED(X) X(u8, kind) X(u32, index) X(u8, attempt) X(u32, thief)
#define TF_WIRE_STOP(X) X(i32, status) X(u32, lost)
#define TF_WIRE_RELEASE(X) X(u32, lost)
#define TF_WIRE_ERROR(X) X(i32, code)
#define TF_WIRE_STEAL(X) X(u32, max_cores)

/* Every record kind: (NAME, name, list). */
#define TF_WIRE_RECORDS(R)                                                     \
    R(BATCH, batch, TF_WIRE_BATCH)                                             \
    R(TASK, task, TF_WIRE_TASK)                                                \
    R(DEP, dep, TF_WIRE_DEP)                                                   \
    R(DONE, done, TF_WIRE_DONE)                                                \
    R(SUBMIT, submit, TF_WIRE_SUBMIT)                                          \
    R(UNRUN, unrun, TF_WIRE_UNRUN)                                             \
    R(MOVED, moved, TF_WIRE_MOVED)                                             \
    R(STOP, stop, TF_WIRE_STOP)                                                \
    R(RELEASE, release, TF_WIRE_RELEASE)                                       \
    R(ERROR, error, TF_WIRE_ERROR)                                             \
    R(STEAL, steal, TF_WIRE_STEAL)

#define TF_WIRE_FIELD_(type, name) TF_WIRE_T_##type name;
#define TF_WIRE_SIZE_(type, name) +(int)sizeof(TF_WIRE_T_##type)
#define TF_WIRE_PUT_(type, name) tf_buf_put_##type(b, r->name);
#define TF_WIRE_GET_(type, name) r->name = tf_rd_##type(rd);

/*
 * For each kind: typedef struct tf_wire_<kind>; TF_WIRE_<KIND>_SIZE;
 * tf_wire_put_<kind>(b, r), which appends the fixed part (the caller has
 * reserved room); tf_wire_get_<kind>(rd, r), which reads it and returns
 * rd->ok (false at an overrun, *r then partly written).
 */
#define TF_WIRE_DEFINE_(NAME, name, LIST)                                      \
    typedef struct tf_wire_##name {                                            \
        LIST(TF_WIRE_FIELD_)                                                   \
    } tf_wire_##name;                                                          \
    enum { TF_WIRE_##NAME##_SIZE = 0 LIST(TF_WIRE_SIZE_) };                    \
    static inline void tf_wire_put_##name(tf_buf *b, const tf_wire_##name *r)  \
    {                                                                          \
        LIST(TF_WIRE_PUT_)                                                     \
    }                                                                          \
    static inline bool tf_wire_get_##name(tf_rd *rd, tf_wire_##name *r)        \
    {                                                                          \
        LIST(TF_WIRE_GET_)                                                     \
        return rd->ok;                                                         \
    }
TF_WIRE_RECORDS(TF_WIRE_DEFINE_)
#undef TF_WIRE_DEFINE_

/* A dependency entry: its output (len bytes), or an anchor. */
static inline size_t tf_wire_dep_size(uint32_t len)
{
    return TF_WIRE_DEP_SIZE + (size_t)len;
}
#define TF_WIRE_ANCHOR_SIZE (TF_WIRE_DEP_SIZE + 4)

/* Append a dependency's output; the caller has reserved room. */
static inline void tf_wire_put_output(tf_buf *b, const void *out, uint32_t len)
{
    tf_wire_dep d = {len};
    tf_wire_put_dep(b, &d);
    tf_buf_put(b, out, len);
}

/* Append an anchor: the output of task `index`, which runs on the receiver. */
static inline void tf_wire_put_anchor(tf_buf *b, uint32_t index)
{
    tf_wire_dep d = {TF_WIRE_ANCHOR};
    tf_wire_put_dep(b, &d);
    tf_buf_put_u32(b, index);
}

/*
 * Read one dependency entry: its output (*buf, *len) and TF_WIRE_ANCHOR in
 * *anchor, or *anchor = the task index it waits for. Returns rd->ok, false
 * too for an anchor naming index TF_WIRE_ANCHOR, which would read as an
 * empty output (fuzz_wire found it).
 */
static inline bool tf_wire_get_output(tf_rd *rd, const void **buf,
                                      uint32_t *len, uint32_t *anchor)
{
    tf_wire_dep d;
    tf_wire_get_dep(rd, &d);
    *anchor = TF_WIRE_ANCHOR;
    *buf = NULL;
    *len = 0;
    if (d.len == TF_WIRE_ANCHOR) {
        if ((*anchor = tf_rd_u32(rd)) == TF_WIRE_ANCHOR)
            rd->ok = false;
    } else if ((*buf = tf_rd_take(rd, d.len)) != NULL) {
        *len = d.len;
    }
    return rd->ok;
}

/*
 * Walk one TASK record and its trailing bytes without keeping them. Adds
 * the record's dependency count to *ndeps. Returns rd->ok.
 */
bool tf_wire_skip_task(tf_rd *rd, size_t *ndeps);

/*
 * Validate a whole TASKS or STOLEN message (n bytes at p) before anything
 * is taken from it: its header goes to *hd, its number of TASK records to
 * *ntasks and of dependency entries to *ndeps. False when it is cut short
 * anywhere; then nothing of it may be used.
 */
bool tf_wire_scan_batch(const void *p, size_t n, tf_wire_batch *hd,
                        size_t *ntasks, size_t *ndeps);

/* One record of a REPORT, decoded with the bytes that follow it. */
typedef struct tf_wire_rec {
    uint8_t kind; /* TF_REC_*: which member holds the fixed part */
    union {
        tf_wire_done done;
        tf_wire_submit submit;
        tf_wire_unrun unrun;
        tf_wire_moved moved;
    } u;
    const void *out;  /* DONE: done.out_len output bytes */
    const void *deps; /* SUBMIT: submit.ndeps u64 ids, unaligned */
    const void *in;   /* SUBMIT: submit.input_len input bytes */
} tf_wire_rec;

/*
 * Decode the next record of a REPORT (the pointers point into the message;
 * nothing is copied). False at an unknown kind or a record cut short, with
 * rd->ok false: the message is malformed from there on.
 */
bool tf_wire_get_rec(tf_rd *rd, tf_wire_rec *rec);

/* One record's field list as text ("u32 index, u32 fn, ..."): for tests and docs. */
typedef struct tf_wire_layout {
    const char *name;   /* "TASK", "DONE", ... */
    const char *fields; /* "u32 index, u32 fn, ..." */
    int size;           /* bytes of the fixed part */
} tf_wire_layout;

/* Every record kind's layout; *n gets their count. */
const tf_wire_layout *tf_wire_layouts(size_t *n);

#endif
