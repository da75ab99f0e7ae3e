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
    TF_TAG_HALT,      /* rank 0 -> worker: a TF_WIRE_HALT_* byte */
    TF_TAG_STEAL,     /* thief -> victim: STEAL, asks for tasks */
    TF_TAG_STOLEN,    /* victim -> thief: BATCH header, TASK records */
    TF_TAG_RELEASE,   /* rank 0 -> worker: RELEASE, every rank acknowledged */
    TF_TAG_HEARTBEAT, /* either way, empty: "still here" (heartbeat_ms) */
    TF_TAG_FETCH,     /* worker -> holder: FETCH records, parts it needs */
    TF_TAG_DATA,      /* holder -> worker: one DATA record and its bytes */
    TF_TAG_LOST,      /* rank 0 -> worker: LOST, a rank written off */
    /*
     * Between survivors of a lost rank 0 (src/net/takeover.c): CALL,
     * JOIN or VIEW. To a worker still in its run, any of them means that
     * a peer gave up on rank 0.
     */
    TF_TAG_TAKEOVER,
};

/* The kind byte that opens each record of a REPORT. */
enum {
    TF_REC_DONE = 1,   /* an attempt ended */
    TF_REC_SUBMIT = 2, /* a task submitted a task */
    TF_REC_UNRUN = 3,  /* dropped before it started (a halt) */
    TF_REC_MOVED = 4,  /* this rank gave a queued task to a thief */
};

/*
 * HALT's body, one byte. SOON: drop queued tasks, start nothing more, let
 * running ones finish (tf_halt_soon). NOW: the same, and end running ones
 * (on_halt; tf_halt). An empty body means NOW. A soon halt made sooner
 * later sends NOW after SOON; the values are ordered.
 */
enum { TF_WIRE_HALT_SOON = 1, TF_WIRE_HALT_NOW = 2 };

/* BATCH flags: rank 0 had nothing else ready when it sent the batch. */
#define TF_WIRE_DRY 0x1u
/*
 * TASK flags, rank 0's word on the task's output. SEND: rank 0 keeps it (a
 * result, TF_TASK_KEEP): every part travels in the DONE. DEPS: tasks
 * depend on it: the worker holds every part until rank 0 frees it, and
 * parts over the inline limit travel only when fetched.
 */
#define TF_WIRE_SEND 0x1u
#define TF_WIRE_DEPS 0x2u
/* PINNED: the task runs on this worker only; no thief may take it. */
#define TF_WIRE_PINNED 0x4u
/*
 * In place of a dependency's length: ANCHOR, its output comes from a task
 * here that has not finished (an ANCHOR record follows); REMOTE, a
 * finished task's part held by a rank, maybe this one (a REMOTE record).
 * Inline lengths are below both.
 */
#define TF_WIRE_ANCHOR UINT32_MAX
#define TF_WIRE_REMOTE (UINT32_MAX - 1)
#define TF_WIRE_INLINE_MAX (UINT32_MAX - 2)
/*
 * PART where: its bytes follow (INLINE); the reporting rank holds them
 * (HELD); or both (BOTH: a kept result that tasks also read).
 */
enum { TF_PART_INLINE = 0, TF_PART_HELD = 1, TF_PART_BOTH = 2 };
/* DATA status: the bytes follow, or the holder has no such part. */
enum { TF_DATA_OK = 0, TF_DATA_MISSING = 1 };
/*
 * Inline bytes in TASKS, STOLEN and DATA messages start at a multiple of
 * this from the message's start, so that a task reads its input and its
 * dependencies' outputs in place, aligned for any type (the receive buffer
 * comes from malloc).
 */
#define TF_WIRE_ALIGN 16u

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
/*
 * Opens TASKS and STOLEN messages; then ntasks TASK records, then nfree
 * u32 task indexes whose outputs the receiver frees (STOLEN: none). The
 * counts are written last (the frees trail, so that the tasks' aligned
 * bytes keep their offsets).
 */
#define TF_WIRE_BATCH(X) X(u8, flags) X(u32, ntasks) X(u32, nfree)
/* Then input_len input bytes (aligned) and ndeps DEP entries. */
#define TF_WIRE_TASK(X)                                                        \
    X(u32, index) X(u32, fn) X(u64, id) X(u16, cores) X(u8, attempt)           \
    X(u8, flags) X(u32, input_len) X(u32, ndeps)
/* Then len bytes (aligned), or an ANCHOR or REMOTE record by len. */
#define TF_WIRE_DEP(X) X(u32, len)
#define TF_WIRE_ANCHOR_REC(X) X(u32, index) X(u32, part)
#define TF_WIRE_REMOTE_REC(X) X(u32, rank) X(u32, index) X(u32, part) X(u32, len)
/* Then nparts PART records. */
#define TF_WIRE_DONE(X)                                                        \
    X(u8, kind) X(u32, index) X(u8, attempt) X(i32, status) X(u64, start_ns)   \
    X(u64, end_ns) X(u16, slot) X(u16, nparts)
/* Then, where TF_PART_INLINE or BOTH, len bytes. */
#define TF_WIRE_PART(X) X(u32, len) X(u8, where)
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
#define TF_WIRE_FETCH(X) X(u32, index) X(u32, part)
/* Then len bytes; the record's size keeps them aligned. */
#define TF_WIRE_DATA(X) X(u32, index) X(u32, part) X(u32, len) X(u32, status)
#define TF_WIRE_LOST(X) X(u32, rank)

/* Every record kind: (NAME, name, list). */
#define TF_WIRE_RECORDS(R)                                                     \
    R(BATCH, batch, TF_WIRE_BATCH)                                             \
    R(TASK, task, TF_WIRE_TASK)                                                \
    R(DEP, dep, TF_WIRE_DEP)                                                   \
    R(ANCHOR, anchor, TF_WIRE_ANCHOR_REC)                                      \
    R(REMOTE, remote, TF_WIRE_REMOTE_REC)                                      \
    R(DONE, done, TF_WIRE_DONE)                                                \
    R(PART, part, TF_WIRE_PART)                                                \
    R(SUBMIT, submit, TF_WIRE_SUBMIT)                                          \
    R(UNRUN, unrun, TF_WIRE_UNRUN)                                             \
    R(MOVED, moved, TF_WIRE_MOVED)                                             \
    R(STOP, stop, TF_WIRE_STOP)                                                \
    R(RELEASE, release, TF_WIRE_RELEASE)                                       \
    R(ERROR, error, TF_WIRE_ERROR)                                             \
    R(STEAL, steal, TF_WIRE_STEAL)                                             \
    R(FETCH, fetch, TF_WIRE_FETCH)                                             \
    R(DATA, data, TF_WIRE_DATA)                                                \
    R(LOST, lost, TF_WIRE_LOST)

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

/* Write a batch's header fields, once known, over its first bytes. */
static inline void tf_wire_seal_batch(uint8_t *p, uint8_t flags,
                                      uint32_t ntasks, uint32_t nfree)
{
    tf_buf hdr = {p, 0, TF_WIRE_BATCH_SIZE};
    tf_wire_put_batch(&hdr, &(tf_wire_batch){flags, ntasks, nfree});
}

/* Zero bytes that bring offset `off` to the next multiple of TF_WIRE_ALIGN. */
static inline size_t tf_wire_pad(size_t off)
{
    return (TF_WIRE_ALIGN - off % TF_WIRE_ALIGN) % TF_WIRE_ALIGN;
}

/*
 * Room for `len` aligned bytes anywhere in a message: their padding is at
 * most TF_WIRE_ALIGN - 1 (none for no bytes).
 */
static inline size_t tf_wire_aligned_size(size_t len)
{
    return len ? len + TF_WIRE_ALIGN - 1 : 0;
}

/* Append len bytes at the next aligned offset; the caller has reserved room. */
static inline void tf_wire_put_aligned(tf_buf *b, const void *p, size_t len)
{
    if (!len)
        return;
    size_t pad = tf_wire_pad(b->n);
    memset(b->p + b->n, 0, pad);
    b->n += pad;
    tf_buf_put(b, p, len);
}

/* Take len bytes from the next aligned offset (NULL for none, or at an overrun). */
static inline const void *tf_wire_take_aligned(tf_rd *rd, size_t len)
{
    if (!len)
        return NULL;
    tf_rd_take(rd, tf_wire_pad(rd->off));
    return tf_rd_take(rd, len);
}

/* Room for any dependency entry of an inline output of len bytes. */
static inline size_t tf_wire_dep_size(uint32_t len)
{
    size_t ref = (size_t)TF_WIRE_REMOTE_SIZE; /* the larger reference */
    size_t in = tf_wire_aligned_size(len);
    return TF_WIRE_DEP_SIZE + (in > ref ? in : ref);
}

/* Append a dependency's output inline; the caller has reserved room. */
static inline void tf_wire_put_output(tf_buf *b, const void *out, uint32_t len)
{
    tf_wire_dep d = {len};
    tf_wire_put_dep(b, &d);
    tf_wire_put_aligned(b, out, len);
}

/* Append an anchor: part `part` of task `index`, which runs on the receiver. */
static inline void tf_wire_put_anchor_dep(tf_buf *b, uint32_t index,
                                          uint32_t part)
{
    tf_wire_dep d = {TF_WIRE_ANCHOR};
    tf_wire_put_dep(b, &d);
    tf_wire_put_anchor(b, &(tf_wire_anchor){index, part});
}

/* Append a reference: part `part` of finished task `index`, held by `rank`. */
static inline void tf_wire_put_remote_dep(tf_buf *b, const tf_wire_remote *r)
{
    tf_wire_dep d = {TF_WIRE_REMOTE};
    tf_wire_put_dep(b, &d);
    tf_wire_put_remote(b, r);
}

/* One dependency entry as read: its kind picks the member that holds it. */
typedef struct tf_wire_input {
    uint32_t kind; /* TF_WIRE_ANCHOR, TF_WIRE_REMOTE, or 0: inline */
    const void *buf; /* inline: len bytes (aligned), NULL when none */
    uint32_t len;
    tf_wire_anchor anchor;
    tf_wire_remote remote;
} tf_wire_input;

/*
 * Read one dependency entry. Returns rd->ok, false too for an anchor
 * naming index TF_WIRE_ANCHOR, which would read as no anchor (fuzz_wire
 * found it), and for a part number of TF_PARTS_MAX or more.
 */
bool tf_wire_get_input(tf_rd *rd, tf_wire_input *in);

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
    const void *out;  /* DONE: its done.nparts PART records */
    const void *deps; /* SUBMIT: submit.ndeps u64 ids, unaligned */
    const void *in;   /* SUBMIT: submit.input_len input bytes */
} tf_wire_rec;

/*
 * Decode the next record of a REPORT (the pointers point into the message;
 * nothing is copied). False at an unknown kind or a record cut short, with
 * rd->ok false: the message is malformed from there on. A DONE's parts are
 * checked whole here; tf_wire_next_part then reads them one by one.
 */
bool tf_wire_get_rec(tf_rd *rd, tf_wire_rec *rec);

/* Read the next PART of a checked DONE (*bytes: inline bytes, or NULL). */
bool tf_wire_next_part(tf_rd *rd, tf_wire_part *p, const void **bytes);

/* One record's field list as text ("u32 index, u32 fn, ..."): for tests and docs. */
typedef struct tf_wire_layout {
    const char *name;   /* "TASK", "DONE", ... */
    const char *fields; /* "u32 index, u32 fn, ..." */
    int size;           /* bytes of the fixed part */
} tf_wire_layout;

/* Every record kind's layout; *n gets their count. */
const tf_wire_layout *tf_wire_layouts(size_t *n);

#endif
