/* taskfarm run's directory: created, locked, an earlier run's files kept unless asked, the joblog opened. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
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

/*
 * An earlier run's files are never touched unless --resume (append, and
 * the runtime resumes its state) or --force (truncate, and the runtime
 * removes its state) says so.
 */
int cli_outdir_prepare(const run_opts *o, int *lock_fd, cli_joblog *jl,
                       int *state_mode)
{
    const char *dir = o->outdir;
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
    if (flock(*lock_fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "taskfarm: %s is in use by another taskfarm run\n",
                dir);
        return EXIT_USAGE;
    }
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
