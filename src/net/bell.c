/* Doorbells: a rank sleeping for messages is woken by a same-node sender instead of by its timer. */
#define _GNU_SOURCE /* syscall(2) for the futex */
#include "bell.h"

#include "taskfarm_status.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/*
 * MPI offers no way to sleep until a message comes: shared-memory transports
 * are polled. So an idle rank sleeps on a timer (20 us doubling to 1 ms)
 * and a message waits for the timer. With 3 ranks on 2 cores that made each
 * step of a stencil cost up to a millisecond, and spinning instead took the
 * core from the worker that shares it. Ranks on one node therefore share
 * one cache line each, holding a sequence number and a "sleeping" flag. A
 * rank about to sleep raises its flag, probes once more, and waits on the
 * sequence number with a futex, for no longer than its timer; a sender
 * that sees the flag after its send bumps the number and wakes it. The
 * flag is read without a system call, so a rank that is awake costs a
 * sender one cache-line read. A wake-up that is missed (a
 * send that completes later, a rank on another node) costs only the timer,
 * as before: correctness never depends on the bell.
 */
struct tf_bell {
    _Atomic uint32_t seq;
    _Atomic uint32_t sleeping;
    char pad[56];
};

/*
 * The lines live in a POSIX shared-memory object that the node's lowest
 * rank creates and unlinks as soon as every rank has mapped it, so nothing
 * is left in /dev/shm and freeing is local. (An MPI-3 shared window was the
 * first version: MPI_Finalize frees a window collectively, and after a
 * worker was lost under --enable-recovery the survivors hung there.)
 * Without shared memory the ranks simply have no bells.
 */
int tf_bells_init(tf_bells *b, MPI_Comm node, int rank, int size)
{
    memset(b, 0, sizeof *b);
    b->self = rank;
#ifdef __linux__
    static unsigned serial; /* several runtimes in one process */
    int nsize = 0, nrank = 0, ok = 1, all = 0;
    MPI_Comm_size(node, &nsize);
    MPI_Comm_rank(node, &nrank);
    char name[64];
    snprintf(name, sizeof name, "/taskfarm-bell-%ld-%u", (long)getpid(),
             serial++);
    size_t len = (size_t)nsize * sizeof(tf_bell);
    int fd = -1, created = 0;
    if (nrank == 0) {
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
        created = fd >= 0;
        ok = created && ftruncate(fd, (off_t)len) == 0; /* zero-filled */
    }
    int *wr = malloc(sizeof *wr * (size_t)nsize); /* world rank of each */
    int rc = MPI_Bcast(name, sizeof name, MPI_CHAR, 0, node);
    if (rc == MPI_SUCCESS)
        rc = MPI_Bcast(&ok, 1, MPI_INT, 0, node);
    if (ok && nrank)
        fd = shm_open(name, O_RDWR, 0);
    void *base = ok && fd >= 0 ? mmap(NULL, len, PROT_READ | PROT_WRITE,
                                      MAP_SHARED, fd, 0)
                               : MAP_FAILED;
    if (fd >= 0)
        close(fd);
    int mine = base != MAP_FAILED && wr != NULL;
    if (rc == MPI_SUCCESS)
        rc = MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, node);
    if (created)
        shm_unlink(name); /* every rank has mapped it, or given up */
    if (rc == MPI_SUCCESS && all)
        rc = MPI_Allgather(&rank, 1, MPI_INT, wr, 1, MPI_INT, node);
    if (rc == MPI_SUCCESS && all &&
        (b->at = calloc((size_t)size, sizeof *b->at))) {
        for (int i = 0; i < nsize; i++)
            if (wr[i] >= 0 && wr[i] < size)
                b->at[wr[i]] = (tf_bell *)base + i;
        b->base = base;
        b->len = len;
        b->peers = nsize - 1;
    } else if (base != MAP_FAILED) {
        munmap(base, len);
    }
    free(wr);
    return rc == MPI_SUCCESS ? 0 : TF_EMPI;
#else
    (void)node;
    (void)size;
    return 0;
#endif
}

void tf_bells_free(tf_bells *bs)
{
    if (!bs->at)
        return;
    free(bs->at);
    bs->at = NULL;
#ifdef __linux__
    munmap(bs->base, bs->len);
#endif
}

void tf_bells_ring(const tf_bells *bs, int r)
{
#ifdef __linux__
    tf_bell *b = bs->at ? bs->at[r] : NULL;
    if (!b)
        return;
    /* Our send is visible before we look at the flag (see tf_bells_wait). */
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&b->sleeping, memory_order_relaxed))
        return;
    atomic_fetch_add(&b->seq, 1);
    syscall(SYS_futex, &b->seq, FUTEX_WAKE, 1, NULL, NULL, 0);
#else
    (void)bs;
    (void)r;
#endif
}

void tf_bells_ring_self(void *bells)
{
    const tf_bells *bs = bells;
    tf_bells_ring(bs, bs->self);
}

bool tf_bells_mine(const tf_bells *bs)
{
    return bs->at && bs->at[bs->self];
}


bool tf_bells_wait(const tf_bells *bs, MPI_Comm comm, long ns,
                   bool (*busy)(void *user), void *user)
{
#ifdef __linux__
    tf_bell *b = bs->at ? bs->at[bs->self] : NULL;
    if (!b)
        return false;
    uint32_t seq = atomic_load(&b->seq);
    atomic_store(&b->sleeping, 1); /* seq_cst: before the probe below */
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, MPI_STATUS_IGNORE);
    if (!flag && busy)
        flag = busy(user);
    if (!flag) {
        struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
        syscall(SYS_futex, &b->seq, FUTEX_WAIT, seq, &ts, NULL, 0);
    }
    atomic_store(&b->sleeping, 0);
    return true;
#else
    (void)bs;
    (void)comm;
    (void)ns;
    (void)busy;
    (void)user;
    return false;
#endif
}
