/* The orphan guard: SIGKILLs a rank's task process groups when the rank dies.
 */

/* pipe2, memfd_create and glibc's posix_spawn_file_actions_addclosefrom_np. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"

/*
 * Why a separate process: each task leads its own process group (so that a
 * timeout or a halt can end all of it), which also means nothing ends it when
 * its rank is SIGKILLed, by the OOM killer, by mpirun tearing the job down, or
 * by a node agent. Only a process that outlives the rank can clean up after
 * it. The rank holds the only write end of a pipe whose read end is the
 * guard's stdin, and never writes to it: the kernel closes it however the
 * rank ends, and the guard, reading EOF, reads the slots the rank shares with
 * it (a memfd, the guard's fd 3; src/exec/proc.h, guard_slots) and kills
 * every group found there, then exits.
 *
 * Why shared slots and not messages: the pipe records of the first version
 * (+pgid after each spawn, -pgid before each reap) cost two write(2)s and a
 * wake-up of the guard per task, 66 to 77 us a task on this 2-core machine
 * when it is busy (docs/performance.md); stores into shared memory cost
 * nothing measurable, and the guard sleeps in read() until the rank ends.
 *
 * Known limits. A group is stored just after posix_spawn returns: a rank
 * killed in between leaves that one task behind. A group whose leader ended
 * normally stays stored until the rank reaps it; if the rank dies in that
 * window, the guard also kills what the task left running in its group
 * (proc.c leaves a normal exit's group alone). If the rank dies after its
 * leader exited but before reaping it, the zombie is reaped by init, and in
 * theory its pid could be reused as a new group's id before the guard reads
 * EOF; the window is microseconds and pids are reused only after wrapping.
 */

/* Groups one rank may run at once under the guard: 256 KiB, touched sparsely. */
#define GUARD_SLOTS 65536
#define GUARD_SLOTS_FD 3

int cli_guard_main(void)
{
    /*
     * The guard's life is bounded by the rank's (EOF on its stdin), and it
     * must outlive the rank to do its work: signals meant for the job
     * (Ctrl-C, mpirun's or Slurm's SIGTERM, the walltime's SIGUSR1) do not
     * end it. It has its own process group, so a group kill misses it too.
     */
    static const int ignored[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM,
                                  SIGUSR1, SIGUSR2, SIGPIPE};
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++)
        sigaction(ignored[i], &ign, NULL);
    pid_t rank = getppid();

    char c;
    ssize_t n;
    while ((n = read(STDIN_FILENO, &c, 1)) != 0 && !(n < 0 && errno != EINTR))
        ; /* the rank writes nothing: this ends at EOF, or on an error */
    int32_t *slots = malloc(GUARD_SLOTS * sizeof *slots);
    size_t got = 0;
    while (slots && got < GUARD_SLOTS * sizeof *slots) {
        n = pread(GUARD_SLOTS_FD, (char *)slots + got,
                  GUARD_SLOTS * sizeof *slots - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    size_t killed = 0;
    for (size_t i = 0; slots && i < got / sizeof *slots; i++)
        if (slots[i] > 0 && kill(-(pid_t)slots[i], SIGKILL) == 0)
            killed++;
    if (killed)
        fprintf(stderr,
                "taskfarm: rank process %ld ended with %zu task%s "
                "running; killed %s\n",
                (long)rank, killed, killed > 1 ? "s" : "",
                killed > 1 ? "them" : "it");
    free(slots);
    return 0;
}

/* The guard's stdin is the pipe's read end rd, its fd 3 the slots' memfd. */
static int guard_actions(posix_spawn_file_actions_t *fa, int rd, int mfd)
{
    int rc = posix_spawn_file_actions_init(fa);
    if (rc)
        return rc;
    /* dup2 clears close-on-exec; stdout is not the guard's. */
    rc = posix_spawn_file_actions_adddup2(fa, rd, STDIN_FILENO);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(fa, mfd, GUARD_SLOTS_FD);
    if (!rc)
        rc = posix_spawn_file_actions_addopen(fa, STDOUT_FILENO, "/dev/null",
                                              O_WRONLY, 0);
#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* Holding the rank's MPI sockets would keep them open past its death. */
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(fa, GUARD_SLOTS_FD + 1);
#endif
    if (rc)
        posix_spawn_file_actions_destroy(fa);
    return rc;
}

/* Its own process group, and no signal blocked. */
static int guard_attr(posix_spawnattr_t *attr)
{
    int rc = posix_spawnattr_init(attr);
    if (rc)
        return rc;
    sigset_t none;
    sigemptyset(&none);
    rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP |
                                            POSIX_SPAWN_SETSIGMASK);
    if (!rc)
        rc = posix_spawnattr_setpgroup(attr, 0);
    if (!rc)
        rc = posix_spawnattr_setsigmask(attr, &none);
    if (rc)
        posix_spawnattr_destroy(attr);
    return rc;
}

/* The shared slots: a memfd of GUARD_SLOTS zeros, mapped. 0 or an errno. */
static int make_slots(int *mfd, int32_t **slots)
{
    size_t len = GUARD_SLOTS * sizeof **slots;
    int fd = memfd_create("taskfarm-guard", MFD_CLOEXEC);
    if (fd < 0)
        return errno;
    void *map = MAP_FAILED;
    if (ftruncate(fd, (off_t)len) == 0)
        map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        int e = errno;
        close(fd);
        return e;
    }
    *mfd = fd;
    *slots = map;
    return 0;
}

int cli_guard_start(tf_proc_table *t)
{
    const char *env = getenv("TASKFARM_GUARD");
    if (env && !strcmp(env, "0"))
        return -1;
    int p[2], mfd = -1, rc;
    int32_t *slots = NULL;
    if (pipe2(p, O_CLOEXEC) != 0) {
        fprintf(stderr, "taskfarm: warning: no orphan guard: pipe: %s\n",
                strerror(errno));
        return -1;
    }
    rc = make_slots(&mfd, &slots);
    if (rc)
        goto fail_with_pipe;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    rc = guard_actions(&fa, p[0], mfd);
    if (rc)
        goto fail_with_slots;
    rc = guard_attr(&attr);
    if (rc)
        goto fail_with_actions;
    /*
     * This very binary (main.c dispatches CLI_GUARD_ARG first thing), with an
     * empty environment: it needs none, and without OMPI_COMM_WORLD_RANK
     * nobody takes it for a rank.
     */
    char a0[] = "taskfarm", a1[] = CLI_GUARD_ARG;
    char *const argv[] = {a0, a1, NULL};
    char *const envp[] = {NULL};
    pid_t pid;
    rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, envp);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        fprintf(stderr,
                "taskfarm: warning: no orphan guard: cannot start "
                "/proc/self/exe: %s\n",
                strerror(rc));
        rc = 0; /* said */
        goto fail_with_slots;
    }
    /*
     * The write end stays open, never written, for the rest of this
     * process's life: its closing by the kernel is the guard's signal.
     */
    close(p[0]);
    close(mfd);
    t->guard_slots = slots;
    t->guard_cap = GUARD_SLOTS;
    return 0;

fail_with_actions:
    posix_spawn_file_actions_destroy(&fa);
fail_with_slots:
    munmap(slots, GUARD_SLOTS * sizeof *slots);
    close(mfd);
fail_with_pipe:
    close(p[0]);
    close(p[1]);
    if (rc)
        fprintf(stderr, "taskfarm: warning: no orphan guard: %s\n",
                strerror(rc));
    return -1;
}
