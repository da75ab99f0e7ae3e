/* The simulator's event queue: a binary min-heap on (virtual time, sequence number). */
#ifndef TF_SIM_EVQ_H
#define TF_SIM_EVQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Events at the same virtual time come out in the order they were pushed
 * (the sequence number breaks ties), so a run never depends on how the heap
 * happens to arrange equal keys: same seed and flags, same history.
 */
typedef struct sim_ev {
    uint64_t t;   /* virtual time, ns */
    uint64_t seq; /* push order */
    uint32_t kind;
    uint32_t who; /* worker index, or 0 for rank 0 */
    uint64_t arg; /* task index or generation, by kind */
} sim_ev;

typedef struct sim_evq {
    sim_ev *h;
    size_t n, cap;
    uint64_t next_seq;
} sim_evq;

void sim_evq_free(sim_evq *q);
/* 0 or TF_ENOMEM. */
int sim_evq_push(sim_evq *q, uint64_t t, uint32_t kind, uint32_t who,
                 uint64_t arg);
/* Remove the earliest event into *ev; false when the queue is empty. */
bool sim_evq_pop(sim_evq *q, sim_ev *ev);

#endif
