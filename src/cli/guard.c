/* The orphan guard: SIGKILLs a rank's task process groups when the rank dies.
 */

/* pipe2 and glibc's posix_spawn_file_actions_addclosefrom_np. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/*
 * Why a separate process: each task leads its own process group (so that a
 * timeout or a halt can end all of it), which also means nothing ends it when
 * its rank is SIGKILLed, by the OOM killer, by mpirun tearing the job down, or
 * by a node agent. Only a process that outlives the rank can clean up after
 * it. The rank holds the only write end of a pipe whose read end is the
 * guard's stdin; the kernel closes it however the rank ends, and the guard,
 * reading EOF, kills every group the rank had reported as started and not yet
 * reaped (src/exec/proc.h, guard_fd), then exits.
 *
 * Known limits. A group is reported just after posix_spawn returns: a rank
 * killed in between leaves that one task behind. A group whose leader ended
 * normally stays registered until the rank reaps it; if the rank dies in
 * that window, the guard also kills what the task left running in its group
 * (proc.c leaves a normal exit's group alone). If the rank dies after its
 * leader exited but before reaping it, the zombie is reaped by init, and in
 * theory its pid could be reused as a new group's id before the guard reads
 * EOF; the window is microseconds and pids are reused only after wrapping.
 */

/* Records in a read: 4 bytes each, whole thanks to atomic pipe writes. */
#define GUARD_BUF 4096

typedef struct pgid_set {
    int32_t *v;
    size_t n, cap;
    bool full; /* an insert failed: said once on stderr */
} pgid_set;

static void set_add(pgid_set *s, int32_t g)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        int32_t *nv = realloc(s->v, ncap * sizeof *nv);
        if (!nv) {
            if (!s->full)
                fprintf(stderr, "taskfarm: guard: out of memory, some task "
                                "groups are not guarded\n");
            s->full = true;
            return;
        }
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n++] = g;
}

/* The newest first: short tasks come and go at the end of the array. */
static void set_remove(pgid_set *s, int32_t g)
{
    for (size_t i = s->n; i-- > 0;)
        if (s->v[i] == g) {
            s->v[i] = s->v[--s->n];
            return;
        }
}

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

    pgid_set s = {0};
    unsigned char buf[GUARD_BUF];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EOF, or an error: either way the rank is unheard */
        have += (size_t)n;
        size_t whole = have / 4 * 4;
        for (size_t i = 0; i < whole; i += 4) {
            int32_t rec;
            memcpy(&rec, buf + i, 4);
            if (rec > 0)
                set_add(&s, rec);
            else if (rec < 0 && rec != INT32_MIN)
                set_remove(&s, -rec);
        }
        memmove(buf, buf + whole, have - whole);
        have -= whole;
    }
    for (size_t i = 0; i < s.n; i++)
        kill(-(pid_t)s.v[i], SIGKILL);
    if (s.n)
        fprintf(stderr,
                "taskfarm: rank process %ld ended with %zu task%s "
                "running; killed %s\n",
                (long)rank, s.n, s.n > 1 ? "s" : "", s.n > 1 ? "them" : "it");
    free(s.v);
    return 0;
}

/* The guard's stdin is the pipe's read end rd; it holds nothing else. */
static int guard_actions(posix_spawn_file_actions_t *fa, int rd)
{
    int rc = posix_spawn_file_actions_init(fa);
    if (rc)
        return rc;
    /* dup2 onto 0 clears close-on-exec; stdout is not the guard's. */
    rc = posix_spawn_file_actions_adddup2(fa, rd, STDIN_FILENO);
    if (!rc)
        rc = posix_spawn_file_actions_addopen(fa, STDOUT_FILENO, "/dev/null",
                                              O_WRONLY, 0);
#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* Holding the rank's MPI sockets would keep them open past its death. */
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(fa, 3);
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

int cli_guard_start(void)
{
    const char *env = getenv("TASKFARM_GUARD");
    if (env && !strcmp(env, "0"))
        return -1;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        fprintf(stderr, "taskfarm: warning: no orphan guard: pipe: %s\n",
                strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = guard_actions(&fa, p[0]);
    if (rc)
        goto fail_with_pipe;
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
    close(p[0]);
    if (rc) {
        close(p[1]);
        fprintf(stderr,
                "taskfarm: warning: no orphan guard: cannot start "
                "/proc/self/exe: %s\n",
                strerror(rc));
        return -1;
    }
    /*
     * A dead guard must cost a failed write, not this process: SIGPIPE is
     * ignored from here on. Tasks still start with it at its default action
     * (proc.c resets every catchable signal but SIGHUP in the child).
     */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
    return p[1];

fail_with_actions:
    posix_spawn_file_actions_destroy(&fa);
fail_with_pipe:
    close(p[0]);
    close(p[1]);
    fprintf(stderr, "taskfarm: warning: no orphan guard: %s\n", strerror(rc));
    return -1;
}
