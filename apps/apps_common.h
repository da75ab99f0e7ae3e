/* Helpers shared by the example apps: a barrier that sleeps, the count of task-running cores, option parsing. */
#ifndef APPS_COMMON_H
#define APPS_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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

/* A numeric option -c: a whole number in [lo, hi] into *v. */
typedef struct app_opt {
    char c;
    long lo, hi;
    long *v;
} app_opt;

/*
 * The apps' options: the numeric ones in opts[0 .. n), -R (sets *rank0),
 * -h (sets *help) and no other argument. A bad one is named on rank 0
 * ("NAME: -b 0: out of range", "NAME: unexpected argument 'x'") and
 * returns 1; otherwise 0.
 */
static inline int app_options(int argc, char **argv, const char *name,
                              int rank, const app_opt *opts, size_t n,
                              int *rank0, int *help)
{
    char spec[64] = "Rh";
    for (size_t k = 0, at = 2; k < n && at + 2 < sizeof spec; k++, at += 2)
        spec[at] = opts[k].c, spec[at + 1] = ':', spec[at + 2] = 0;
    int opt, bad = 0;
    while (!bad && !*help && (opt = getopt(argc, argv, spec)) != -1) {
        if (opt == 'h') {
            *help = 1;
        } else if (opt == 'R') {
            *rank0 = 1;
        } else if (opt == '?') {
            bad = 1;
        } else {
            for (size_t k = 0; k < n; k++)
                if (opts[k].c == opt &&
                    (bad = app_parse_long(optarg, opts[k].lo, opts[k].hi,
                                          opts[k].v) != 0) &&
                    rank == 0)
                    fprintf(stderr, "%s: -%c %s: out of range\n", name, opt,
                            optarg);
        }
    }
    if (!bad && !*help && optind < argc) {
        if (rank == 0)
            fprintf(stderr, "%s: unexpected argument '%s'\n", name,
                    argv[optind]);
        bad = 1;
    }
    return bad;
}

#endif
