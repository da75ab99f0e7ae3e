/* taskfarm run's directory: created, locked, an earlier run's files kept unless asked, the joblog opened. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "farm.h"

/* Create a directory, or find one there; 0, or -1 after saying why. */
static int make_dir(const char *path)
{
    struct stat st;
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "taskfarm: cannot create %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "taskfarm: %s is there but is not a directory\n",
                path);
        return -1;
    }
    return 0;
}

int cli_outdir_lock(const char *dir, bool token, bool heir, int *lock_fd)
{
    char path[PATH_MAX + 32];
    if (make_dir(dir))
        return EXIT_USAGE;
    snprintf(path, sizeof path, "%s/lock", dir);
    *lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (*lock_fd < 0) {
        fprintf(stderr, "taskfarm: cannot create %s: %s\n", path,
                strerror(errno));
        return EXIT_USAGE;
    }
    /*
     * A rank that took over from a lost rank 0 (--standby) may find the
     * lock still held: by that rank 0, stopped rather than dead. The
     * scheduler term it claimed in dir fences that one off instead.
     */
    if (flock(*lock_fd, LOCK_EX | LOCK_NB) != 0 && !heir) {
        fprintf(stderr, "taskfarm: %s is in use by another taskfarm run\n",
                dir);
        return EXIT_USAGE;
    }
    /*
     * The token cli_outdir_shared looks for: rank 0's host, pid and clock,
     * made durable so that another node's client sees it. One process
     * shares nothing: no token, and no fsync at its start.
     */
    if (!token)
        return -1;
    char text[160], host[64] = "";
    struct timespec ts;
    gethostname(host, sizeof host - 1);
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(text, sizeof text, "%s %ld %lld.%09ld\n", host,
                     (long)getpid(), (long long)ts.tv_sec, ts.tv_nsec);
    if (ftruncate(*lock_fd, 0) || pwrite(*lock_fd, text, (size_t)n, 0) != n ||
        fsync(*lock_fd)) {
        fprintf(stderr, "taskfarm: cannot write %s: %s\n", path,
                strerror(errno));
        return EXIT_USAGE;
    }
    return -1;
}

/*
 * An earlier run's files are never touched unless --resume (append, and
 * the runtime resumes its state) or --force (truncate, and the runtime
 * removes its state) says so.
 */
int cli_outdir_prepare(const run_opts *o, cli_joblog *jl, int *state_mode)
{
    const char *dir = o->outdir;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/joblog.tsv", dir);
    struct stat st;
    bool earlier = stat(path, &st) == 0;
    if (earlier && !o->resume && !o->force) {
        fprintf(stderr,
                "taskfarm: %s holds an earlier run (%s); nothing was "
                "run.\nUse --resume to finish it, --force to start over in "
                "it, or another --outdir.\n",
                dir, path);
        return EXIT_USAGE;
    }
    *state_mode = o->resume  ? TF_STATE_RESUME
                  : o->force ? TF_STATE_OVERWRITE
                             : TF_STATE_NEW;
    snprintf(path, sizeof path, "%s/out", dir);
    if (make_dir(path))
        return EXIT_USAGE;
    const char *what;
    int e = cli_joblog_open(jl, dir, o->resume, &what);
    if (e) {
        bool reading = !strcmp(what, "read");
        fprintf(stderr, "taskfarm: cannot %s %s/joblog.tsv: %s%s\n", what, dir,
                strerror(e), reading ? "\nNothing was changed." : "");
        return reading ? EXIT_RUNTIME : EXIT_USAGE;
    }
    return -1;
}

/*
 * A node-local outdir (/tmp on a multi-node run) would let rank 0 write
 * the joblog on its node while every task fails to open its output file on
 * the others. So every rank reads the lock file's token back through the
 * outdir: one that reads another token, or none, is on a node where the
 * path is another directory.
 */
int cli_outdir_shared(tf_runtime *rt, const char *dir)
{
    char token[160] = "", path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, token, sizeof token - 1);
    token[n > 0 ? n : 0] = 0;
    if (fd >= 0)
        close(fd);
    char *all = NULL;
    int rc = tf_allgather_text(rt, token, &all, NULL);
    if (rc) {
        fprintf(stderr, "taskfarm: cannot start: %s\n", tf_strerror(rc));
        return EXIT_RUNTIME;
    }
    int size = tf_size(rt), bad = 0;
    const char *t = all + strlen(all) + 1;
    for (int r = 1; tf_rank(rt) == 0 && r < size; r++, t += strlen(t) + 1)
        if (strcmp(t, all) && bad++ < 3)
            fprintf(stderr,
                    "taskfarm: rank %d (on %s) does not see the outdir %s "
                    "that rank 0 (on %s) uses: is it on a node-local disk?\n",
                    r, tf_rank_host(rt, r), dir, tf_rank_host(rt, 0));
    free(all);
    if (!bad)
        return -1;
    if (bad > 3)
        fprintf(stderr, "taskfarm: ... and %d more ranks\n", bad - 3);
    fprintf(stderr, "taskfarm: nothing was run. Use an outdir every node "
                    "sees (docs/slurm.md, \"Where the outdir goes\").\n");
    return EXIT_USAGE;
}
