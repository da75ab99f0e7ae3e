/* tf_allgather_text: every rank's text on every rank (the command's locality lines, docs/placement.md). */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

/*
 * Memory is each rank's own affair: the ranks agree on it before each
 * collective, so that no rank enters one that another has left. 0 when
 * every rank has its memory, else TF_ENOMEM (or TF_EMPI) on all.
 */
static int agree(MPI_Comm comm, bool ok)
{
    int mine = ok, all = 0;
    if (MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        return TF_EMPI;
    return all ? 0 : TF_ENOMEM;
}

int tf_allgather_text(tf_runtime *rt, const char *mine, char **all,
                      size_t *len)
{
    if (!rt || !mine || !all)
        return TF_EINVAL;
    size_t n = strlen(mine) + 1; /* each rank's NUL goes along */
    if (!rt->link.mpi) {
        char *one = malloc(n);
        if (!one)
            return TF_ENOMEM;
        memcpy(one, mine, n);
        *all = one;
        if (len)
            *len = n;
        return 0;
    }
    MPI_Comm comm = rt->link.comm;
    int size = rt->link.size;
    if (n > INT_MAX)
        return TF_EINVAL;
    int my = (int)n;
    int *lens = malloc(sizeof *lens * (size_t)size * 2);
    int rc = agree(comm, lens != NULL);
    if (rc)
        goto out;
    int *offs = lens + size;
    rc = TF_EMPI;
    if (MPI_Allgather(&my, 1, MPI_INT, lens, 1, MPI_INT, comm) != MPI_SUCCESS)
        goto out;
    size_t total = 0;
    for (int r = 0; r < size; r++) {
        offs[r] = (int)total;
        total += (size_t)lens[r];
    }
    if (total > INT_MAX) { /* the same verdict on every rank */
        rc = TF_ERANGE;
        goto out;
    }
    char *buf = malloc(total);
    rc = agree(comm, buf != NULL);
    if (rc) {
        free(buf);
        goto out;
    }
    if (MPI_Allgatherv(mine, my, MPI_CHAR, buf, lens, offs, MPI_CHAR, comm) !=
        MPI_SUCCESS) {
        free(buf);
        rc = TF_EMPI;
        goto out;
    }
    *all = buf;
    if (len)
        *len = total;
out:
    free(lens);
    return rc;
}
