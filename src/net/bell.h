/* Doorbells: a rank sleeping for messages is woken by a sender on its node (a futex in shared memory). */
#ifndef TF_NET_BELL_H
#define TF_NET_BELL_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct tf_bell tf_bell;

/* The bells of the ranks on this node; NULL entries for ranks elsewhere. */
typedef struct tf_bells {
    tf_bell **at; /* per rank of comm, NULL: none (no bells at all: at NULL) */
    void *base;   /* the node's lines, len bytes mapped */
    size_t len;
    int self;
    int peers; /* other ranks of this node, which ring this rank's bell */
} tf_bells;

/*
 * Collective over node, the ranks of this rank's communicator (rank of
 * size) on its node (MPI_COMM_TYPE_SHARED): map this node's lines (bell.c
 * says why and how). Without shared memory the ranks simply have no
 * bells. Errors: TF_EMPI.
 */
int tf_bells_init(tf_bells *b, MPI_Comm node, int rank, int size);
void tf_bells_free(tf_bells *b);

/* After a send to rank r: wake it if it sleeps on this node. */
void tf_bells_ring(const tf_bells *b, int r);

/* Ring this rank's own bell (bells: a tf_bells *): its task threads do. */
void tf_bells_ring_self(void *bells);

/* This rank has a bell to sleep on. */
bool tf_bells_mine(const tf_bells *b);

/*
 * Sleep up to ns or until rung (a message on comm checked first, and
 * busy(user) unless NULL: the rank's own task threads' events); false if
 * this rank has no bell (sleep on a timer then).
 */
bool tf_bells_wait(const tf_bells *b, MPI_Comm comm, long ns,
                   bool (*busy)(void *user), void *user);

#endif
