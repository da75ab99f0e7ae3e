/* A run's timeline for taskfarm report: attempts, instants and ranks. */
#ifndef TF_CLI_TIMELINE_H
#define TF_CLI_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * How an attempt ended, in the order a merged group's colour prefers them
 * on a tie (the last). Interrupted: ended by a stop, not failed by itself.
 */
enum {
    TF_RES_DONE = 0,
    TF_RES_INTERRUPTED,
    TF_RES_RETRY,
    TF_RES_FAILED,
    TF_RES_N
};

/* One attempt: an "X" event. */
typedef struct tf_timeline_span {
    double ts, dur; /* microseconds */
    int pid, tid;   /* rank, lowest slot */
    unsigned cores;
    int attempt, status;
    uint8_t res; /* TF_RES_* */
    size_t name; /* offset in the arena */
} tf_timeline_span;

/* An "i" event: per rank ("p") or across the chart ("g"). */
typedef struct tf_timeline_instant {
    double ts;
    int pid;
    bool global;
    size_t name, detail; /* arena offsets; detail 0: none */
} tf_timeline_instant;

typedef struct tf_timeline_rank {
    size_t label; /* arena offset of process_name's args.name, 0: none */
    long slots;   /* from its process_name event, -1 if not given */
    int max_tid;  /* highest slot a span used, -1 if none */
    double busy;  /* microseconds x cores */
    size_t attempts;
    bool seen; /* any event named this rank */
} tf_timeline_rank;

/*
 * Spans and instants in file order, until tf_timeline_sort. Strings
 * live in one arena of NUL-terminated strings, offset 0 being "", so that a
 * million names cost one allocation, not a million.
 */
typedef struct tf_timeline {
    tf_timeline_span *sp;
    size_t nsp, capsp;
    tf_timeline_instant *in;
    size_t nin, capin;
    tf_timeline_rank *rk;
    int nrk; /* ranks 0 .. nrk-1 have entries; see .seen */
    char *arena;
    size_t an, acap;
} tf_timeline;

/* Where and why a trace could not be read. */
typedef struct tf_timeline_err {
    size_t byte; /* offset in the file */
    size_t line; /* 1-based */
    char msg[160];
} tf_timeline_err;

/*
 * Read a trace-event JSON document of len bytes into *T (zeroed on entry).
 * Returns 0; TF_EINVAL when the text is not such a trace, with *err saying
 * where and why; TF_ENOMEM. On failure *T holds nothing to free.
 */
int tf_timeline_read(const char *text, size_t len, tf_timeline *T,
                     tf_timeline_err *err);

/*
 * Sort spans by rank, slot and start, instants by rank and time, as the
 * chart draws them. qsort takes a copy of the array (48 MB for a million
 * spans): call it after the file's text is released, not while it is
 * mapped, to keep the peak down.
 */
void tf_timeline_sort(tf_timeline *T);

/* Free what tf_timeline_read allocated; T is zeroed. */
void tf_timeline_free(tf_timeline *T);

/* The string at arena offset off. */
static inline const char *tf_timeline_str(const tf_timeline *T, size_t off)
{
    return T->arena + off;
}

/* A rank's slots: as its process_name said, or as many as its spans used. */
static inline long tf_timeline_slots(const tf_timeline_rank *r)
{
    return r->slots > r->max_tid ? r->slots : r->max_tid + 1L;
}

#endif
