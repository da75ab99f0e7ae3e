/* Tasks' shell commands: posix_spawn, pidfd waits, timeouts, halts, envs. */

/*
 * syscall() for pidfd_open, and glibc's posix_spawn_file_actions_addclosefrom_np:
 * both are declared only outside strict POSIX.
 */
#define _GNU_SOURCE

#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "taskfarm_status.h"

#define NS_PER_MS 1000000u
#define NO_DEADLINE UINT64_MAX
/* Bounds of the polling fallback's sleep: fast for short tasks, cheap later. */
#define POLL_MIN_NS 1000000L
#define POLL_MAX_NS 50000000L

static uint64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t deadline_after(unsigned ms)
{
    return now_ns(CLOCK_MONOTONIC) + (uint64_t)ms * NS_PER_MS;
}

/* Milliseconds left until a deadline, rounded up, for poll(); -1: none. */
static int ms_until(uint64_t deadline)
{
    if (deadline == NO_DEADLINE)
        return -1;
    uint64_t now = now_ns(CLOCK_MONOTONIC);
    if (now >= deadline)
        return 0;
    uint64_t ms = (deadline - now + NS_PER_MS - 1) / NS_PER_MS;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/*
 * Signal a whole group. ESRCH for the group can only mean a libc whose
 * posix_spawn returns before the child's setpgid (glibc returns after the
 * exec); the leader, an unreaped child of ours, is then signalled alone.
 */
static void kill_group(pid_t pgid, int sig)
{
    if (kill(-pgid, sig) == -1 && errno == ESRCH)
        kill(pgid, sig);
}

/*
 * SIGTERM, then SIGCONT: a stopped process (SIGTSTP, SIGTTIN) would keep the
 * SIGTERM pending and only the SIGKILL after the grace would end it.
 */
static void term_group(pid_t pgid)
{
    kill_group(pgid, SIGTERM);
    kill_group(pgid, SIGCONT);
}

/* ---- the registry ---- */

int tf_proc_table_init(tf_proc_table *t)
{
    if (!t)
        return TF_EINVAL;
    memset(t, 0, sizeof *t);
    t->use_pidfd = true;
    if (pthread_mutex_init(&t->mu, NULL))
        return TF_ENOMEM;
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca))
        goto fail_with_mutex;
    /* The grace of kill_all must not change when the wall clock is set. */
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (!rc)
        rc = pthread_cond_init(&t->gone_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        goto fail_with_mutex;
    t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (t->wake_fd < 0) {
        pthread_cond_destroy(&t->gone_cv);
        goto fail_with_mutex;
    }
    return 0;

fail_with_mutex:
    pthread_mutex_destroy(&t->mu);
    return TF_ENOMEM;
}

void tf_proc_table_destroy(tf_proc_table *t)
{
    close(t->wake_fd);
    free(t->v);
    pthread_cond_destroy(&t->gone_cv);
    pthread_mutex_destroy(&t->mu);
}

static size_t count_signalled(const tf_proc_table *t)
{
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++)
        k += t->v[i].signalled;
    return k;
}

void tf_proc_kill_all(tf_proc_table *t, unsigned grace_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += grace_ms / 1000;
    dl.tv_nsec += (long)(grace_ms % 1000) * (long)NS_PER_MS;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    /*
     * Signals are sent with the lock held: a group leaves the table before
     * its leader is reaped, so every pgid in it is still pinned by at least
     * that zombie and cannot name someone else's group.
     */
    pthread_mutex_lock(&t->mu);
    t->halted = true;
    for (size_t i = 0; i < t->n; i++) {
        term_group(t->v[i].pgid);
        t->v[i].signalled = true;
    }
    while (count_signalled(t))
        if (pthread_cond_timedwait(&t->gone_cv, &t->mu, &dl))
            break; /* ETIMEDOUT (or EINVAL: never wait unbounded) */
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].signalled)
            kill_group(t->v[i].pgid, SIGKILL);
    pthread_mutex_unlock(&t->mu);
}

void tf_proc_table_reset(tf_proc_table *t)
{
    pthread_mutex_lock(&t->mu);
    t->halted = false;
    __atomic_store_n(&t->detaching, false, __ATOMIC_RELAXED);
    uint64_t v;
    while (read(t->wake_fd, &v, sizeof v) == -1 && errno == EINTR)
        ;
    pthread_mutex_unlock(&t->mu);
}

void tf_proc_detach_all(tf_proc_table *t)
{
    __atomic_store_n(&t->detaching, true, __ATOMIC_RELAXED);
    uint64_t one = 1;
    /* Never full: one write per detach, and reset reads it empty. */
    while (write(t->wake_fd, &one, sizeof one) == -1 && errno == EINTR)
        ;
}

bool tf_proc_table_is_halted(tf_proc_table *t)
{
    pthread_mutex_lock(&t->mu);
    bool h = t->halted;
    pthread_mutex_unlock(&t->mu);
    return h;
}

size_t tf_proc_table_running(tf_proc_table *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}

/*
 * Promise a slot to a run that is about to spawn, so that registering its
 * child afterwards cannot fail: once a child exists, running out of memory
 * would leave it untracked. 1: the table is halted (no slot taken).
 */
static int reserve_slot(tf_proc_table *t)
{
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    if (t->halted) {
        rc = 1;
    } else if (t->n + t->reserved >= t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        tf_proc_ent *nv = realloc(t->v, ncap * sizeof *nv);
        if (nv) {
            t->v = nv;
            t->cap = ncap;
        } else {
            rc = TF_ENOMEM;
        }
    }
    if (!rc)
        t->reserved++;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static void unreserve_slot(tf_proc_table *t)
{
    pthread_mutex_lock(&t->mu);
    t->reserved--;
    pthread_mutex_unlock(&t->mu);
}

/*
 * Turn the reservation into an entry for the new group, and give it a guard
 * slot if there is a guard: the index of that slot, or SIZE_MAX for none.
 */
static size_t register_group(tf_proc_table *t, pid_t pgid)
{
    size_t slot = SIZE_MAX;
    pthread_mutex_lock(&t->mu);
    t->reserved--;
    tf_proc_ent *e = &t->v[t->n++];
    e->pgid = pgid;
    e->signalled = t->halted;
    /* kill_all ran between reserve_slot and the spawn and missed this one. */
    if (t->halted)
        kill_group(pgid, SIGKILL);
    /* The first free one: short scans, as few groups run at once. */
    for (size_t i = 0; t->guard_slots && i < t->guard_cap; i++)
        if (!t->guard_slots[i]) {
            __atomic_store_n(&t->guard_slots[i], (int32_t)pgid,
                             __ATOMIC_RELAXED);
            slot = i;
            break;
        }
    pthread_mutex_unlock(&t->mu);
    return slot;
}

/* Remove a group whose leader has exited; true if kill_all signalled it. */
static bool deregister_group(tf_proc_table *t, pid_t pgid)
{
    bool signalled = false;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i].pgid != pgid)
            continue;
        signalled = t->v[i].signalled;
        t->v[i] = t->v[--t->n];
        if (signalled)
            pthread_cond_broadcast(&t->gone_cv);
        break;
    }
    pthread_mutex_unlock(&t->mu);
    return signalled;
}

/* Free a group's guard slot (register_group's index), just before the reap. */
static void guard_release(tf_proc_table *t, size_t slot)
{
    if (slot == SIZE_MAX)
        return;
    pthread_mutex_lock(&t->mu);
    __atomic_store_n(&t->guard_slots[slot], 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&t->mu);
}

/* ---- spawning ---- */

static int make_attr(posix_spawnattr_t *attr)
{
    sigset_t none, dfl;
    sigemptyset(&none);
    /*
     * Every catchable signal but SIGHUP back to its default action: the
     * process may ignore SIGPIPE (MPI and network libraries do), SIGINT and
     * SIGQUIT (a shell that started it with &), or SIGCHLD, which would
     * break the child's own waits. Handled signals are reset by exec anyway.
     * glibc's child visits every signal whatever this set holds, so the full
     * set costs nothing extra.
     */
    sigfillset(&dfl);
    sigdelset(&dfl, SIGKILL);
    sigdelset(&dfl, SIGSTOP);
    sigdelset(&dfl, SIGHUP);
    if (posix_spawnattr_init(attr))
        return TF_ENOMEM;
    /* A new group, so that a timeout or a halt reaches the grandchildren. */
    if (posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP |
                                           POSIX_SPAWN_SETSIGMASK |
                                           POSIX_SPAWN_SETSIGDEF) ||
        posix_spawnattr_setpgroup(attr, 0) ||
        posix_spawnattr_setsigmask(attr, &none) ||
        posix_spawnattr_setsigdefault(attr, &dfl))
        goto fail_with_attr;
    return 0;

fail_with_attr:
    posix_spawnattr_destroy(attr);
    return TF_EINVAL;
}

/*
 * Opens an output file for a child: created or truncated, mode 0644 less
 * the umask. O_NOFOLLOW: a symbolic link planted at the path (OUTDIR/out/
 * ID.out, in a directory others may write to) fails with ELOOP instead of
 * having us truncate and fill whatever it points at. O_CLOEXEC: the
 * descriptor exists in this process, but a spawn on another thread that
 * inherits it drops it at its exec. Moved to 3 or above, so that placing
 * the child's 0, 1 and 2 cannot overwrite it (a caller that closed its
 * standard streams gets those numbers back from open). Returns the
 * descriptor or -errno.
 */
static int open_output(const char *path)
{
    int fd =
        open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (fd < 3) {
        int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        int e = errno;
        close(fd);
        if (hi < 0)
            return -e;
        fd = hi;
    }
    return fd;
}

/* The message of errno value e, into buf; thread-safe, unlike strerror. */
static const char *errno_text(int e, char *buf, size_t len)
{
#if defined(__GLIBC__)
    return strerror_r(e, buf, len); /* the GNU one: _GNU_SOURCE above */
#else
    return strerror_r(e, buf, len) ? "unknown error" : buf;
#endif
}

/*
 * r->spawn_errno = e and r->spawn_error = "cannot WHAT PATH: REASON", the
 * path cut at its start ("...") if the whole would not fit, since its end
 * names the file.
 */
static void spawn_failed(tf_proc_result *r, int e, const char *what,
                         const char *path)
{
    char why[128];
    const char *reason = e == ELOOP ? "it is a symbolic link, not followed"
                                    : errno_text(e, why, sizeof why);
    size_t room = sizeof r->spawn_error - strlen(what) - strlen(reason) - 4;
    size_t len = strlen(path);
    const char *cut = len > room ? "..." : "";
    if (len > room)
        path += len - (room - 3);
    snprintf(r->spawn_error, sizeof r->spawn_error, "%s %s%s: %s", what, cut,
             path, reason);
    r->spawn_errno = e;
}

/*
 * The child's stdin (/dev/null), stdout and stderr: the descriptors of the
 * opened output files (-1: /dev/null), which may be one and the same.
 */
static int make_actions(posix_spawn_file_actions_t *fa, int out, int err)
{
    if (posix_spawn_file_actions_init(fa))
        return TF_ENOMEM;
    int rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc)
        rc = out >= 0 ? posix_spawn_file_actions_adddup2(fa, out, 1)
                      : posix_spawn_file_actions_addopen(fa, 1, "/dev/null",
                                                         O_WRONLY, 0);
    if (!rc)
        rc = err >= 0 ? posix_spawn_file_actions_adddup2(fa, err, 2)
                      : posix_spawn_file_actions_addopen(fa, 2, "/dev/null",
                                                         O_WRONLY, 0);
#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /*
     * A task must not inherit what this process holds open without
     * close-on-exec: under MPI that can be the rank's sockets and shared
     * memory, which a long-running child would keep alive.
     */
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(fa, 3);
#endif
    if (rc)
        goto fail_with_actions;
    return 0;

fail_with_actions:
    posix_spawn_file_actions_destroy(fa);
    return rc == ENOMEM ? TF_ENOMEM : TF_EINVAL;
}

/*
 * Opens the output files (one, shared, if both paths are the same by
 * strcmp, so the two streams interleave instead of overwriting each
 * other). 0, or -1 with *r filled as a spawn failure naming the file.
 */
static int open_outputs(const tf_proc_spec *s, int *out, int *err,
                        tf_proc_result *r)
{
    *out = *err = -1;
    if (s->use_fds) {
        *out = s->out_fd;
        *err = s->err_fd;
        return 0;
    }
    if (s->out_path && (*out = open_output(s->out_path)) < 0) {
        spawn_failed(r, -*out, "cannot open the stdout file", s->out_path);
        return -1;
    }
    if (s->err_path && s->out_path && !strcmp(s->out_path, s->err_path)) {
        *err = *out;
    } else if (s->err_path && (*err = open_output(s->err_path)) < 0) {
        spawn_failed(r, -*err, "cannot open the stderr file", s->err_path);
        if (*out >= 0)
            close(*out);
        return -1;
    }
    return 0;
}

static void close_outputs(const tf_proc_spec *s, int out, int err)
{
    if (s->use_fds)
        return; /* the caller's */
    if (out >= 0)
        close(out);
    if (err >= 0 && err != out)
        close(err);
}

/* ---- waiting ---- */

/*
 * A pidfd of our unreaped child; -1 if none can be had, for whatever reason
 * (ENOSYS before Linux 5.3, EPERM under some seccomp filters, EMFILE): the
 * caller then polls, which always works.
 */
static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd >= 0 ? (int)fd : -1;
#else
    (void)pid;
    return -1;
#endif
}

/* How a wait for a leader ended. */
enum { W_EXITED, W_DEADLINE, W_DETACHED };

static bool detaching(tf_proc_table *t)
{
    return __atomic_load_n(&t->detaching, __ATOMIC_RELAXED);
}

/*
 * Wait until the leader has exited, without reaping it (W_EXITED), the
 * deadline (CLOCK_MONOTONIC ns, or NO_DEADLINE) came (W_DEADLINE), or,
 * when detachable, tf_proc_detach_all was called (W_DETACHED). Not reaping
 * keeps its pid, the group's id, from being reused while the caller may
 * still signal the group.
 */
static int wait_exit(tf_proc_table *t, int pfd, pid_t pid, uint64_t deadline,
                     bool detachable)
{
    while (pfd >= 0) {
        if (detachable && detaching(t))
            return W_DETACHED;
        /* A pidfd becomes readable when the process exits. */
        struct pollfd p[2] = {{.fd = pfd, .events = POLLIN},
                              {.fd = t->wake_fd, .events = POLLIN}};
        int ms = ms_until(deadline);
        int n = poll(p, detachable ? 2 : 1, ms);
        if (n > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            return W_EXITED;
        if (n > 0)
            continue; /* the wake: detaching says */
        if (n == 0 && ms_until(deadline) == 0)
            return W_DEADLINE;
        if (n < 0 && errno != EINTR)
            break; /* ENOMEM: poll instead */
    }
    long sleep_ns = POLL_MIN_NS;
    for (;;) {
        siginfo_t si;
        si.si_pid = 0;
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == -1) {
            if (errno == EINTR)
                continue;
            return W_EXITED; /* ECHILD: reaped elsewhere; the reap reports it */
        }
        if (si.si_pid)
            return W_EXITED;
        if (detachable && detaching(t))
            return W_DETACHED;
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        if (now >= deadline)
            return W_DEADLINE;
        uint64_t left = deadline - now;
        uint64_t ns = left < (uint64_t)sleep_ns ? left : (uint64_t)sleep_ns;
        struct timespec ts = {(time_t)(ns / 1000000000u),
                              (long)(ns % 1000000000u)};
        nanosleep(&ts, NULL);
        if (sleep_ns < POLL_MAX_NS)
            sleep_ns = sleep_ns * 2 < POLL_MAX_NS ? sleep_ns * 2 : POLL_MAX_NS;
    }
}

/*
 * Whether our exited child is still a zombie that pins its pid. A process
 * that breaks the rule in proc.h (SIGCHLD ignored, so children vanish at
 * exit) would otherwise have us signal a group id that may be reused.
 */
static bool is_unreaped(pid_t pid)
{
    siginfo_t si;
    si.si_pid = 0;
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == pid;
}

/*
 * Wait for a registered child (h: its pid, guard slot, deadline and
 * grace), enforce the timeout, end its group if it was timed out or
 * halted, and reap it; or, detachable and detached, leave it as it is
 * (r->detached, r->held). r is filled except on TF_ESTATE.
 */
static int await_child(tf_proc_table *t, const tf_proc_held *h,
                       const char *shell, bool detachable, tf_proc_result *r)
{
    pid_t pid = h->pid;
    int pfd = t->use_pidfd ? open_pidfd(pid) : -1;
    int w = wait_exit(t, pfd, pid, h->deadline, detachable);
    if (w == W_DETACHED) {
        if (pfd >= 0)
            close(pfd);
        r->detached = true;
        r->held = *h;
        return 0;
    }
    if (w == W_DEADLINE) {
        r->timed_out = true;
        term_group(pid);
        if (wait_exit(t, pfd, pid, deadline_after(h->grace_ms), false) !=
            W_EXITED) {
            kill_group(pid, SIGKILL);
            wait_exit(t, pfd, pid, NO_DEADLINE, false);
        }
    }
    r->end_ns = now_ns(CLOCK_REALTIME);
    /*
     * Leave the table first, then (the leader still unreaped, so the pgid
     * still ours) SIGKILL the rest of an ended group: if kill_all marked it
     * in between, it relies on us for the grandchildren.
     */
    r->halted = deregister_group(t, pid);
    if ((r->timed_out || r->halted) && is_unreaped(pid))
        kill_group(pid, SIGKILL);
    /* Last: up to here a death of this process leaves the guard to kill. */
    guard_release(t, h->slot);
    int st;
    pid_t got;
    while ((got = waitpid(pid, &st, 0)) == -1 && errno == EINTR)
        ;
    if (pfd >= 0)
        close(pfd);
    if (got != pid)
        return TF_ESTATE;
    if (WIFEXITED(st))
        r->exitval = WEXITSTATUS(st);
    else if (WIFSIGNALED(st))
        r->signal = WTERMSIG(st);
    /*
     * glibc reports a failed exec through posix_spawn's return value; other
     * libcs may let the child exit with 127 instead. Tell that apart from a
     * command that merely was not found (also 127) by checking the shell.
     */
    if (r->exitval == 127 && access(shell, X_OK) == -1)
        spawn_failed(r, errno, "cannot run the shell", shell);
    return 0;
}

int tf_proc_adopt(tf_proc_table *t, const tf_proc_held *h, const char *shell,
                  tf_proc_result *res)
{
    if (!t || !h || h->pid <= 0 || !res)
        return TF_EINVAL;
    tf_proc_result r;
    memset(&r, 0, sizeof r);
    r.exitval = -1;
    r.pid = h->pid;
    r.start_ns = h->start_ns;
    int rc = await_child(t, h, shell ? shell : "/bin/sh", true, &r);
    if (!rc)
        *res = r;
    return rc;
}

void tf_proc_drop(tf_proc_table *t, const tf_proc_held *h)
{
    tf_proc_held now = *h;
    now.deadline = 0; /* passed: the timeout's way out */
    tf_proc_result r;
    memset(&r, 0, sizeof r);
    await_child(t, &now, "/bin/sh", false, &r);
}

int tf_proc_run(tf_proc_table *t, const tf_proc_spec *spec, tf_proc_result *res)
{
    if (!t || !spec || !spec->cmd || !spec->envp || !res ||
        (spec->use_fds && ((spec->out_fd >= 0 && spec->out_fd < 3) ||
                           (spec->err_fd >= 0 && spec->err_fd < 3))))
        return TF_EINVAL;
    tf_proc_result r;
    memset(&r, 0, sizeof r);
    r.exitval = -1;

    int rc = reserve_slot(t);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        r.halted = true;
        r.start_ns = r.end_ns = now_ns(CLOCK_REALTIME);
        *res = r;
        return 0;
    }
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    int out, err;
    rc = make_attr(&attr);
    if (rc)
        goto fail_with_slot;
    r.start_ns = now_ns(CLOCK_REALTIME);
    if (open_outputs(spec, &out, &err, &r)) {
        posix_spawnattr_destroy(&attr);
        unreserve_slot(t);
        r.exitval = 127;
        r.end_ns = now_ns(CLOCK_REALTIME);
        *res = r;
        return 0;
    }
    rc = make_actions(&fa, out, err);
    if (rc)
        goto fail_with_outputs;
    const char *shell = spec->shell ? spec->shell : "/bin/sh";
    /*
     * "--" so that a command starting with '-' is not taken for an option.
     * posix_spawn does not write to argv; its prototype predates const.
     */
    char *const argv[] = {(char *)shell, (char *)"-c", (char *)"--",
                          (char *)spec->cmd, NULL};
    pid_t pid;
    int e = posix_spawn(&pid, shell, &fa, &attr, argv, spec->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close_outputs(spec, out, err);
    if (e) {
        /* The child, if there was one, has been reaped by posix_spawn. */
        unreserve_slot(t);
        spawn_failed(&r, e, "cannot run the shell", shell);
        r.exitval = 127;
        r.end_ns = now_ns(CLOCK_REALTIME);
        *res = r;
        return 0;
    }
    tf_proc_held h = {.pid = pid,
                      .slot = register_group(t, pid),
                      .start_ns = r.start_ns,
                      .deadline = spec->timeout_ms
                                      ? deadline_after(spec->timeout_ms)
                                      : NO_DEADLINE,
                      .grace_ms = spec->grace_ms};
    r.pid = pid;
    rc = await_child(t, &h, shell, true, &r);
    if (rc)
        return rc;
    *res = r;
    return 0;

fail_with_outputs:
    close_outputs(spec, out, err);
    posix_spawnattr_destroy(&attr);
fail_with_slot:
    unreserve_slot(t);
    return rc;
}

/* ---- environments ---- */

enum { ENV_SET, ENV_UNSET, ENV_UNSET_PREFIX };

int tf_env_init(tf_envbuf *e, char *const *base)
{
    if (!e)
        return TF_EINVAL;
    memset(e, 0, sizeof *e);
    e->base = base;
    if (base)
        while (base[e->nbase])
            e->nbase++;
    return 0;
}

/* Grow *p (*cap elements of sz bytes) to hold need; unchanged on failure. */
static int grow(void **p, size_t *cap, size_t need, size_t sz, size_t min)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : min;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return TF_ENOMEM;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / sz)
        return TF_ENOMEM;
    void *np = realloc(*p, ncap * sz);
    if (!np)
        return TF_ENOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}

/*
 * Record a change. A set or unset replaces an earlier set or unset of the
 * same name, keeping its place; a prefix replaces the same prefix. Every
 * buffer grows before anything is written, so a failure changes nothing
 * that tf_env_get shows.
 */
static int env_change(tf_envbuf *e, int kind, const char *key,
                      const char *value)
{
    if (!e || !key || !*key || strchr(key, '=') || (kind == ENV_SET && !value))
        return TF_EINVAL;
    size_t klen = strlen(key);
    size_t vlen = kind == ENV_SET ? strlen(value) : 0;
    size_t need = klen + 1 + (kind == ENV_SET ? vlen + 1 : 0);
    bool prefix = kind == ENV_UNSET_PREFIX;
    size_t i = 0;
    while (i < e->nvar && !(e->var[i].keylen == klen &&
                            (e->var[i].kind == ENV_UNSET_PREFIX) == prefix &&
                            !memcmp(e->str + e->var[i].off, key, klen)))
        i++;
    size_t nvar = e->nvar + (i == e->nvar);
    void *p = e->str;
    int rc = grow(&p, &e->str_cap, e->str_len + need, 1, 256);
    e->str = p;
    if (rc)
        return rc;
    p = e->var;
    rc = grow(&p, &e->var_cap, nvar, sizeof *e->var, 8);
    e->var = p;
    if (rc)
        return rc;
    p = e->vec;
    rc = grow(&p, &e->vec_cap, e->nbase + nvar + 1, sizeof *e->vec, 64);
    e->vec = p;
    if (rc)
        return rc;
    /* A replaced value's bytes stay unused until tf_env_clear. */
    char *s = e->str + e->str_len;
    memcpy(s, key, klen);
    if (kind == ENV_SET) {
        s[klen] = '=';
        memcpy(s + klen + 1, value, vlen);
        s[klen + 1 + vlen] = '\0';
    } else {
        s[klen] = '\0';
    }
    e->var[i].off = e->str_len;
    e->var[i].keylen = klen;
    e->var[i].kind = kind;
    e->str_len += need;
    e->nvar = nvar;
    return 0;
}

int tf_env_set(tf_envbuf *e, const char *key, const char *value)
{
    return env_change(e, ENV_SET, key, value);
}

int tf_env_unset(tf_envbuf *e, const char *key)
{
    return env_change(e, ENV_UNSET, key, NULL);
}

int tf_env_unset_prefix(tf_envbuf *e, const char *prefix)
{
    return env_change(e, ENV_UNSET_PREFIX, prefix, NULL);
}

/* Whether a base entry, whose name is s[0..klen), is named by a change. */
static bool is_changed(const tf_envbuf *e, const char *s, size_t klen)
{
    for (size_t i = 0; i < e->nvar; i++) {
        const tf_envvar *v = &e->var[i];
        const char *key = e->str + v->off;
        if (key[0] != s[0])
            continue;
        if (v->kind == ENV_UNSET_PREFIX ? klen >= v->keylen : klen == v->keylen)
            if (!memcmp(s, key, v->keylen))
                return true;
    }
    return false;
}

char *const *tf_env_get(tf_envbuf *e)
{
    if (!e->nvar)
        return e->base ? e->base : &e->none;
    size_t k = 0;
    for (size_t b = 0; b < e->nbase; b++) {
        char *s = e->base[b];
        if (!is_changed(e, s, strcspn(s, "=")))
            e->vec[k++] = s;
    }
    for (size_t i = 0; i < e->nvar; i++)
        if (e->var[i].kind == ENV_SET)
            e->vec[k++] = e->str + e->var[i].off;
    e->vec[k] = NULL;
    return e->vec;
}

void tf_env_clear(tf_envbuf *e)
{
    e->nvar = 0;
    e->str_len = 0;
}

void tf_env_free(tf_envbuf *e)
{
    free(e->str);
    free(e->var);
    free(e->vec);
    tf_env_init(e, NULL);
}
