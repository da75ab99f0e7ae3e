/* Helpers shared by the example apps: a barrier that sleeps, the count of task-running cores, option parsing. */
#ifndef APPS_COMMON_H
#define APPS_COMMON_H

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <mpi.h>

/*
 * A barrier whose waiters sleep. The apps time a serial baseline on rank 0
 * while the other ranks wait; Open MPI's blocking MPI_Barrier spins a core
 * per waiting rank, which on an oversubscribed node would steal the very
 * cores the baseline is measured on.
 */
static inline int app_sleepy_barrier(MPI_Comm comm)
{
    MPI_Request req;
    int rc = MPI_Ibarrier(comm, &req);
    for (int done = 0; rc == MPI_SUCCESS && !done;) {
        rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return rc;
}

/*
 * Slots that run tasks: with several ranks rank 0 only schedules, so the
 * workers' slots; with one rank, its own. Every rank passes the same slots.
 */
static inline int app_task_cores(int nranks, int slots)
{
    return nranks > 1 ? (nranks - 1) * slots : slots;
}

/* A whole decimal number within [lo, hi] into *out: 0, or -1. */
static inline int app_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

#endif
