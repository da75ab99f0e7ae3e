/* taskfarm add OUTDIR FILE: hand more tasks to the farm running in OUTDIR, and wait for its answer. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "runstate.h"

#define ADD_USAGE                                                              \
    "usage: taskfarm add [--timeout SEC] OUTDIR FILE\n"                        \
    "       taskfarm add --end [--timeout SEC] OUTDIR\n"

/* How often the answer is looked for. */
#define POLL_NS 50000000L

static void usage(FILE *out)
{
    fprintf(out, ADD_USAGE
            "Hand the tasks of FILE (- for standard input), a task file whose "
            "lines follow\nthose of the farm running in OUTDIR, to that farm, "
            "and wait until it has\ntaken them: their @after may name the "
            "farm's tasks, their ids must be new to\nit, a task without @id "
            "gets its line in the farm as its id. All of FILE is\ntaken, or "
            "none of it. --end: the farm takes no more tasks and ends once "
            "its\ntasks are done (also a farm that follows its task file).\n\n"
            "      --timeout SEC  give up (nothing added) when the farm has "
            "not taken it\n"
            "                     within SEC seconds (default 60)\n\n"
            "exit status: 0 taken, 2 refused (FILE's errors, naming its "
            "lines), or no farm\nruns in OUTDIR; 3 no answer in time, or an "
            "error.\n");
}

/*
 * Whether a farm runs in dir: its status says so and it holds the lock
 * (the lock cannot be taken; a farm whose rank 0 is on this host must
 * also have its process). why: the state, for the message.
 */
static bool farm_runs(const char *dir, tf_runstate *rs, char *why, size_t n)
{
    char path[PATH_MAX], host[64] = "";
    int e = tf_runstate_read(dir, rs);
    if (e) {
        snprintf(why, n, "%s",
                 e == ENOENT   ? "no taskfarm run there"
                 : e == EINVAL ? "its status file is damaged"
                               : strerror(e));
        return false;
    }
    snprintf(why, n, "its state is %s", rs->state);
    if (strcmp(rs->state, "running"))
        return false;
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool free_lock = fd < 0 || !flock(fd, LOCK_SH | LOCK_NB);
    if (fd >= 0)
        close(fd); /* and the lock with it */
    gethostname(host, sizeof host - 1);
    bool gone = !strcmp(host, rs->host) && rs->pid > 0 && kill(rs->pid, 0) &&
                errno == ESRCH;
    if (free_lock || gone)
        snprintf(why, n, "its status says running, but its process is gone");
    return !free_lock && !gone;
}

/*
 * Validate FILE against the farm's list as its files hold it, when they
 * can be read (the farm validates again, against what it has now).
 * Returns -1 to go on, else the exit status after printing the errors.
 */
static int check_here(const char *dir, const tf_runstate *rs, const char *name,
                      const file_text *ft)
{
    cli_tasklist tl;
    char path[PATH_MAX], why[PATH_MAX + 128];
    if (rs->follow) {
        fprintf(stderr,
                "taskfarm add: %s: the farm in %s follows its task "
                "file %s: append the tasks to it instead\n",
                name, dir, rs->taskfile);
        return EXIT_USAGE;
    }
    if (cli_tasklist_of_run(dir, rs, &tl, path, sizeof path, why, sizeof why))
        return -1; /* the farm alone can tell */
    uint32_t shift = tl.lines;
    tf_taskfile tf;
    tf_tferr err = {0};
    int rc = cli_tasklist_add(&tl, ft->p, ft->len, true)
                 ? TF_ENOMEM
                 : cli_tasklist_parse(&tl, name, shift, 0, &tf, &err);
    cli_tasklist_free(&tl);
    if (!rc)
        tf_taskfile_free(&tf);
    if (rc == TF_ENOMEM) {
        tf_tferr_free(&err);
        return -1;
    }
    int status = cli_parse_verdict(name, rc, &err);
    if (status != EXIT_ALL_OK)
        fprintf(stderr, "taskfarm add: nothing was added to %s\n", dir);
    return status == EXIT_ALL_OK ? -1 : status;
}

/* incoming/NAME.EXT, for the file named stem. */
static void at(char *buf, size_t n, const char *dir, const char *stem,
               const char *ext)
{
    snprintf(buf, n, "%s/" CLI_INCOMING "/%s%s", dir, stem, ext);
}

/*
 * The farm's verdict on stem, printed (ok on stdout, refusals on stderr)
 * and removed: its exit status, or -1 when there is none yet.
 */
static int verdict(const char *dir, const char *stem)
{
    static const struct {
        const char *ext;
        int status;
    } kinds[] = {
        {".ok", EXIT_ALL_OK}, {".err", EXIT_USAGE}, {".fail", EXIT_RUNTIME}};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        char path[PATH_MAX];
        file_text ft;
        at(path, sizeof path, dir, stem, kinds[k].ext);
        if (cli_read_file(path, &ft))
            continue;
        fwrite(ft.p, 1, ft.len, kinds[k].status ? stderr : stdout);
        cli_file_text_free(&ft);
        unlink(path);
        if (kinds[k].status)
            fprintf(stderr, "taskfarm add: nothing was added to %s\n", dir);
        return kinds[k].status;
    }
    return -1;
}

/* Hand the file over and wait for the answer. Returns the exit status. */
static int hand_over(const char *dir, const char *name, const file_text *ft,
                     bool end, uint64_t timeout_ns)
{
    char stem[128], host[64] = "x", tmp[PATH_MAX], file[PATH_MAX];
    char taken[PATH_MAX], why[128];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    gethostname(host, sizeof host - 1);
    for (char *c = host; *c; c++)
        if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') &&
            !(*c >= '0' && *c <= '9') && *c != '-')
            *c = '_';
    /* Names begin with the time: the farm takes them oldest first. */
    snprintf(stem, sizeof stem, "%020llu-%s-%ld",
             (unsigned long long)now.tv_sec * 1000000000ull +
                 (unsigned long long)now.tv_nsec,
             host, (long)getpid());
    snprintf(tmp, sizeof tmp, "%s/" CLI_INCOMING "/.%s.tmp", dir, stem);
    at(file, sizeof file, dir, stem, end ? ".end" : ".tasks");
    at(taken, sizeof taken, dir, stem, ".taken");
    FILE *f = fopen(tmp, "w");
    if (f && !end)
        fprintf(f, "%s%s\n", CLI_ADD_HEADER, name);
    if (f && !end && ft->len)
        fwrite(ft->p, 1, ft->len, f);
    if (!f || fclose(f) || rename(tmp, file)) {
        fprintf(stderr, "taskfarm add: cannot write %s: %s\n", f ? file : tmp,
                strerror(errno));
        unlink(tmp);
        return EXIT_RUNTIME;
    }
    tf_runstate rs;
    uint64_t t0 = cli_mono_ns();
    for (;;) {
        int status = verdict(dir, stem);
        if (status >= 0)
            return status;
        bool runs = farm_runs(dir, &rs, why, sizeof why);
        bool late = cli_mono_ns() - t0 > timeout_ns;
        /* Not taken yet: take it back if the farm is gone or we give up. */
        if ((!runs || late) && !unlink(file)) {
            fprintf(stderr,
                    "taskfarm add: %s: the farm in %s %s; nothing "
                    "was added\n",
                    name, dir,
                    runs ? "did not take it within the timeout (--timeout)"
                         : "ended before it took it");
            return runs ? EXIT_RUNTIME : EXIT_USAGE;
        }
        /*
         * Neither there nor taken: a farm that started again (--resume)
         * cleared it. The verdict comes before the taken file goes.
         */
        if (access(file, F_OK) && access(taken, F_OK) &&
            (status = verdict(dir, stem)) < 0) {
            fprintf(stderr,
                    "taskfarm add: %s: the farm in %s started again "
                    "before it took it; nothing was added\n",
                    name, dir);
            return EXIT_RUNTIME;
        }
        if (status >= 0)
            return status;
        /* Taken by a farm that then ended: it may have recorded it. */
        if (!runs && late) {
            fprintf(stderr,
                    "taskfarm add: %s: the farm in %s ended while "
                    "taking it: taskfarm status --tasks %s shows "
                    "whether it did\n",
                    name, dir, dir);
            return EXIT_RUNTIME;
        }
        struct timespec ts = {0, POLL_NS};
        nanosleep(&ts, NULL);
    }
}

int cli_add(int argc, char **argv)
{
    const char *dir = NULL, *path = NULL;
    bool end = false;
    uint64_t timeout_ms = 60000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return EXIT_ALL_OK;
        }
        if (!strcmp(a, "--end")) {
            end = true;
        } else if (!strcmp(a, "--timeout") || !strncmp(a, "--timeout=", 10)) {
            const char *v = a[9] == '='    ? a + 10
                            : i + 1 < argc ? argv[++i]
                                           : "";
            if (!tf_duration_ms(v, strlen(v), &timeout_ms) || !timeout_ms) {
                fprintf(
                    stderr,
                    "taskfarm add: bad value '%s' for --timeout\n" ADD_USAGE,
                    v);
                return EXIT_USAGE;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "taskfarm add: unknown option '%s'\n" ADD_USAGE, a);
            return EXIT_USAGE;
        } else if (!dir) {
            dir = a;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "taskfarm add: one file at a time\n" ADD_USAGE);
            return EXIT_USAGE;
        }
    }
    if (!dir || !path != end) {
        fprintf(stderr, "%s" ADD_USAGE,
                !dir  ? ""
                : end ? "taskfarm add: --end takes no FILE (end a "
                        "file with a line @end instead)\n"
                      : "taskfarm add: no FILE\n");
        return EXIT_USAGE;
    }
    tf_runstate rs;
    char why[128];
    if (!farm_runs(dir, &rs, why, sizeof why)) {
        fprintf(stderr,
                "taskfarm add: no farm runs in %s (%s); nothing was "
                "added\n",
                dir, why);
        return EXIT_USAGE;
    }
    const char *name = path && strcmp(path, "-") ? path : "stdin";
    file_text ft = {0};
    int e = path ? cli_read_file(path, &ft) : 0;
    if (e) {
        fprintf(stderr, "taskfarm add: %s: %s\n", path, strerror(e));
        return e == ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
    }
    int status = end ? -1 : check_here(dir, &rs, name, &ft);
    if (status < 0)
        status = hand_over(dir, name, &ft, end, timeout_ms * 1000000u);
    cli_file_text_free(&ft);
    return status;
}
