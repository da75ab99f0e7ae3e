/* Tasks' shell commands: process groups, timeouts, halts; environments. */
#ifndef TF_EXEC_PROC_H
#define TF_EXEC_PROC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- the registry of running process groups ---- */

/* One running command: its process group (= the pid of its leader). */
typedef struct tf_proc_ent {
    pid_t pgid;
    bool signalled; /* tf_proc_kill_all has sent it SIGTERM */
} tf_proc_ent;

/*
 * The process groups this rank is running, so that a halt (SIGTERM, SIGUSR1,
 * --halt-on-error) can end them all. Embed it anywhere; all fields belong to
 * the functions below, except use_pidfd. Thread-safe, but not
 * async-signal-safe: call tf_proc_kill_all from a thread that waits for
 * signals (sigwait, signalfd), never from a signal handler.
 *
 * A group stays in the table from just after its spawn until its leader has
 * exited, and it leaves the table before the leader is reaped: the leader's
 * pid, which is the group's id, cannot be reused while the leader is an
 * unreaped zombie, so every signal sent through the table reaches the right
 * processes.
 */
typedef struct tf_proc_table {
    pthread_mutex_t mu;
    pthread_cond_t gone_cv; /* a group that kill_all signalled has left */
    tf_proc_ent *v;
    size_t n, cap;
    size_t reserved; /* slots promised to runs that are spawning now */
    bool halted;
    /*
     * true (the default): wait on a pidfd with poll(). false: poll the child
     * with waitid(WNOHANG) and a 1 to 50 ms backoff, as done anyway when
     * pidfd_open fails (kernels before 5.3, seccomp filters). Set it before
     * any run; tests use it to cover the fallback.
     */
    bool use_pidfd;
    /*
     * NULL (the default): none. Else guard_cap int32 slots in memory shared
     * with a guard process that outlives this one (the CLI's,
     * src/cli/guard.c): a group's pgid sits in a slot from just after its
     * spawn until just before its leader is reaped, and 0 marks a free slot,
     * so that if this process dies the guard can SIGKILL the groups it finds
     * there. Plain stores under the table's lock: no system call and no
     * wake-up of the guard per task (the 4-byte pipe records this replaced
     * cost both). Groups beyond guard_cap running at once go unguarded. The
     * table does not own the memory. Set it before any run.
     */
    int32_t *guard_slots;
    size_t guard_cap;
    /*
     * tf_proc_detach_all was called (and no reset since): waits in progress
     * return with their command left running. wake_fd is an eventfd that
     * the call makes readable, so that waits on a pidfd see it at once.
     */
    bool detaching;
    int wake_fd;
} tf_proc_table;

/* Errors: TF_EINVAL (t NULL), TF_ENOMEM (mutex, condition variable, eventfd). */
int tf_proc_table_init(tf_proc_table *t);

/* Frees the table; no tf_proc_run may be in progress. */
void tf_proc_table_destroy(tf_proc_table *t);

/*
 * End every registered group: SIGTERM to each whole group, then, after
 * grace_ms or as soon as every one of their leaders has exited, SIGKILL to
 * the groups whose leader still runs. Marks the table halted: a tf_proc_run
 * that starts afterwards does not spawn, and one that spawned in the meantime
 * kills its new group at once; both return with result.halted set.
 *
 * Returns within about grace_ms. The runs it ended then SIGKILL what is left
 * of their groups (grandchildren that survived the SIGTERM) and return; wait
 * for their threads to know that all is gone. Any thread; see above.
 */
void tf_proc_kill_all(tf_proc_table *t, unsigned grace_ms);

/*
 * Clear the halted and detaching marks, e.g. before the next run of a
 * resumed job; no tf_proc_run or tf_proc_adopt may be waiting.
 */
void tf_proc_table_reset(tf_proc_table *t);

/*
 * Stop waiting, leaving the commands running: every tf_proc_run and
 * tf_proc_adopt waiting now, or until the next reset, returns at once with
 * result.detached and result.held, its command still running (registered,
 * guarded, unreaped). For a worker whose scheduler was lost (taskfarm run
 * --standby): its successor may let the same process adopt what runs.
 */
void tf_proc_detach_all(tf_proc_table *t);

/* Whether tf_proc_kill_all has been called since init or the last reset. */
bool tf_proc_table_is_halted(tf_proc_table *t);

/* Commands running now (registered groups). */
size_t tf_proc_table_running(tf_proc_table *t);

/* ---- running one command ---- */

typedef struct tf_proc_spec {
    const char *cmd;   /* run as: shell -c -- cmd */
    const char *shell; /* a POSIX shell's path (not searched in PATH);
                          NULL: "/bin/sh" */
    /*
     * stdout and stderr files, created or truncated with mode 0644 (less
     * the umask); NULL: /dev/null. If both name the same path (strcmp), the
     * file is opened once and shared, so the two streams interleave instead
     * of overwriting each other. A symbolic link at either path is not
     * followed: the command is not started (spawn_errno ELOOP). stdin is
     * always /dev/null.
     */
    const char *out_path;
    const char *err_path;
    /*
     * true: the child's stdout and stderr are the caller's descriptors
     * out_fd and err_fd instead (-1: /dev/null; both may be the same),
     * which stay the caller's, open, after the run; out_path and err_path
     * are then not opened, only named in messages. Descriptors 0 to 2 are
     * not allowed (TF_EINVAL).
     */
    bool use_fds;
    int out_fd, err_fd;
    char *const *envp;   /* the child's complete environment (tf_env_get) */
    unsigned timeout_ms; /* 0: none */
    unsigned grace_ms;   /* from SIGTERM to SIGKILL after the timeout */
} tf_proc_spec;

/*
 * A command left running by tf_proc_detach_all: still registered (a halt
 * ends it), guarded, and unreaped, for tf_proc_adopt to wait for or
 * tf_proc_drop to end.
 */
typedef struct tf_proc_held {
    pid_t pid;         /* its leader = its process group */
    size_t slot;       /* its guard slot; SIZE_MAX: none */
    uint64_t start_ns; /* CLOCK_REALTIME just before its spawn */
    uint64_t deadline; /* CLOCK_MONOTONIC ns of its timeout; UINT64_MAX: none */
    unsigned grace_ms;
} tf_proc_held;

/* Bytes of tf_proc_result.spawn_error, its NUL included. */
#define TF_PROC_ERROR_LEN 320

typedef struct tf_proc_result {
    int exitval;     /* exit status if it exited, 127 if it could not start,
                        else -1 */
    int signal;      /* signal that ended the leader, else 0 */
    bool timed_out;  /* the timeout fired and its signals ended it */
    bool halted;     /* tf_proc_kill_all signalled it, or it never started
                        because the table was halted (then pid is 0) */
    int spawn_errno; /* nonzero: it could not be started (an errno value:
                        ENOENT or EACCES for the shell or an output path,
                        ELOOP for an output path that is a symbolic link) */
    pid_t pid;       /* its leader's pid = its process group; 0 if none */
    uint64_t start_ns, end_ns; /* CLOCK_REALTIME just before the spawn and
                                  when the leader was seen to exit */
    /*
     * With spawn_errno, the reason for people, e.g. "cannot open the stdout
     * file out/x.out: No such file or directory" or "cannot run the shell
     * /bin/sh: ...": what could not be opened or run (a path too long for
     * the field keeps its end, after "...") and why. "" otherwise.
     */
    char spawn_error[TF_PROC_ERROR_LEN];
    /*
     * tf_proc_detach_all stopped the wait: the command still runs, as held
     * says; nothing else but pid and start_ns is filled.
     */
    bool detached;
    tf_proc_held held;
} tf_proc_result;

/*
 * Run one command to its end, blocking the calling thread without using CPU
 * while it waits. Any number of threads may run commands at once.
 *
 * The child leads its own process group; starts with an empty signal mask
 * and every catchable signal except SIGHUP at its default action, whatever
 * the caller's threads block or ignore (SIGHUP keeps the caller's
 * disposition so that `nohup taskfarm` protects the tasks too); and has
 * stdin on /dev/null. Inherited file descriptors are those of the caller
 * that are not close-on-exec.
 *
 * On timeout: SIGTERM (and SIGCONT, in case it is stopped) to the group,
 * grace_ms for the leader to exit, then SIGKILL to the group. After a timeout
 * or a halt, the group is SIGKILLed once more when the leader has exited, so
 * that no grandchild outlives the task. After a normal exit the group is left
 * alone: a command may mean to leave a daemon behind (`nohup server &`), and
 * killing it would be a surprise that depends on timing.
 *
 * Returns 0 when the child ran, whatever its end, and also when it could not
 * be started (spawn_errno, exitval 127) or was not started because of a halt
 * (halted, exitval -1); then *res is filled. Errors, with *res untouched:
 * TF_EINVAL (a NULL argument, cmd or envp), TF_ENOMEM, TF_ESTATE (the child
 * was reaped by someone else: the process ignores SIGCHLD or calls
 * waitpid(-1); its status is lost, but the child is gone).
 *
 * The process must not reap children it did not spawn itself (waitpid(-1),
 * SIGCHLD set to SIG_IGN): that takes this function's children away.
 */
int tf_proc_run(tf_proc_table *t, const tf_proc_spec *spec,
                tf_proc_result *res);

/*
 * Wait for a held command as tf_proc_run waits for its own (its timeout
 * still counts from its start), in this or another thread, and fill *res
 * as tf_proc_run would; shell is the one it was started with (NULL:
 * "/bin/sh"), to tell a failed exec apart. Once only per held command,
 * unless it returns detached again. Errors as tf_proc_run's.
 */
int tf_proc_adopt(tf_proc_table *t, const tf_proc_held *h, const char *shell,
                  tf_proc_result *res);

/*
 * End a held command nobody adopts: SIGTERM to its group, its grace, then
 * SIGKILL, and reap it.
 */
void tf_proc_drop(tf_proc_table *t, const tf_proc_held *h);

/* ---- child environments ---- */

/* One change to the base environment; see tf_envbuf. */
typedef struct tf_envvar {
    size_t off; /* in tf_envbuf.str: "KEY=VALUE" or "KEY" (unset) */
    size_t keylen;
    int kind; /* set, unset, unset by prefix */
} tf_envvar;

/*
 * A child's environment: a base (e.g. environ) that is not copied, plus a few
 * changes. Keep one per task thread and tf_env_clear it between tasks: after
 * the first few tasks it no longer allocates. The result lists the base
 * entries that no change names, in their order, then the variables set, in
 * the order they were first set.
 */
typedef struct tf_envbuf {
    char *const *base;
    size_t nbase;
    char *str; /* the changes' strings, NUL-terminated, back to back */
    size_t str_len, str_cap;
    tf_envvar *var;
    size_t nvar, var_cap;
    char **vec; /* what tf_env_get hands out */
    size_t vec_cap;
    char *none; /* NULL: the empty environment */
} tf_envbuf;

/*
 * Start from base (NULL-terminated; NULL: empty), which must stay unchanged
 * and valid while e is used: it is only counted, not copied. Errors:
 * TF_EINVAL.
 */
int tf_env_init(tf_envbuf *e, char *const *base);

/*
 * Set key to value, replacing a base variable of that name and an earlier
 * set or unset of it. key must be non-empty and contain no '='. The strings
 * are copied. Errors, with e unchanged: TF_EINVAL, TF_ENOMEM.
 */
int tf_env_set(tf_envbuf *e, const char *key, const char *value);

/* Remove key from the result (base or set earlier). Errors: as tf_env_set. */
int tf_env_unset(tf_envbuf *e, const char *key);

/*
 * Remove the base variables whose name starts with prefix (non-empty), e.g.
 * "OMPI_" and "PMIX_", so that a task that is itself an MPI program does not
 * take itself for a rank of this job. Variables set through tf_env_set stay.
 * Errors: as tf_env_set.
 */
int tf_env_unset_prefix(tf_envbuf *e, const char *prefix);

/*
 * The NULL-terminated environment; never NULL, never fails. Valid until the
 * next set, unset, clear or free of e, and while base is.
 */
char *const *tf_env_get(tf_envbuf *e);

/* Drop every change, keeping base and the memory for reuse. */
void tf_env_clear(tf_envbuf *e);

void tf_env_free(tf_envbuf *e);

#endif
