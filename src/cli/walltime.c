/* taskfarm run's walltime: --deadline, the Slurm job's end, tasks' families, the stop's message. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "farm.h"

extern char **environ;

#define NS 1000000000ull

static uint64_t wall_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

bool cli_deadline_parse(const char *s, uint64_t *ns, bool *none)
{
    *none = !strcmp(s, "none");
    if (*none) {
        *ns = 0;
        return true;
    }
    uint64_t ms;
    if (s[0] == '+') {
        if (!tf_duration_ms(s + 1, strlen(s + 1), &ms))
            return false;
        *ns = wall_now_ns() + ms * 1000000u;
        return true;
    }
    if (s[0] == '@') {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s + 1, &end, 10);
        if (errno || end == s + 1 || *end || s[1] < '0' || s[1] > '9' ||
            v > UINT64_MAX / NS)
            return false;
        *ns = v * NS;
        return true;
    }
    /* YYYY-MM-DDTHH:MM[:SS], local time; mktime must not move a field. */
    struct tm tm = {0}, want;
    int n = 0;
    char sep;
    if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &sep, &tm.tm_hour, &tm.tm_min, &n) != 6 ||
        (sep != 'T' && sep != ' '))
        return false;
    if (s[n] == ':') {
        int m = 0;
        if (sscanf(s + n, ":%2d%n", &tm.tm_sec, &m) != 1)
            return false;
        n += m;
    }
    if (s[n])
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_isdst = -1;
    want = tm;
    time_t t = mktime(&tm);
    if (t == (time_t)-1 || tm.tm_year != want.tm_year ||
        tm.tm_mon != want.tm_mon || tm.tm_mday != want.tm_mday ||
        tm.tm_hour != want.tm_hour || tm.tm_min != want.tm_min ||
        tm.tm_sec != want.tm_sec || t < 0)
        return false;
    *ns = (uint64_t)t * NS;
    return true;
}

/*
 * The Slurm job's end in s since the epoch, 0 when it has no time limit,
 * -1 when it cannot be learnt (*why says why). SLURM_JOB_END_TIME where
 * Slurm exports it (newer releases; not 22.05) unless `ask`, else squeue,
 * told to print times as epoch seconds: one query to slurmctld, bounded
 * by a timeout. Runs squeue through procs, the table the tasks run in.
 */
static long long slurm_end(tf_proc_table *procs, bool ask, char *why,
                           size_t len)
{
    const char *env = getenv("SLURM_JOB_END_TIME");
    char *end;
    if (env && !ask) {
        long long v = strtoll(env, &end, 10);
        if (*env && !*end && v > 0)
            return v;
    }
    int fd[2];
    if (pipe(fd)) {
        snprintf(why, len, "pipe: %s", strerror(errno));
        return -1;
    }
    fcntl(fd[0], F_SETFD, FD_CLOEXEC);
    fcntl(fd[1], F_SETFD, FD_CLOEXEC);
    tf_envbuf eb;
    tf_proc_result res;
    int rc = tf_env_init(&eb, environ);
    if (!rc)
        rc = tf_env_set(&eb, "SLURM_TIME_FORMAT", "%s");
    if (!rc) {
        tf_proc_spec spec = {.cmd = "exec squeue -h -j \"$SLURM_JOB_ID\" -o %e",
                             .use_fds = true,
                             .out_fd = fd[1],
                             .err_fd = -1,
                             .envp = tf_env_get(&eb),
                             .timeout_ms = 10000,
                             .grace_ms = 1000};
        rc = tf_proc_run(procs, &spec, &res);
    }
    tf_env_free(&eb);
    close(fd[1]);
    char out[64] = "";
    ssize_t got = rc ? 0 : read(fd[0], out, sizeof out - 1);
    close(fd[0]);
    out[got > 0 ? got : 0] = 0;
    out[strcspn(out, "\n")] = 0;
    long long v = strtoll(out, &end, 10);
    if (!rc && res.exitval == 0 && *out && !*end && v > 0)
        return v;
    if (!rc && res.exitval == 0 && !strcmp(out, "NONE"))
        return 0;
    snprintf(why, len, "squeue -j %s %s", getenv("SLURM_JOB_ID"),
             rc                 ? tf_strerror(rc)
             : res.spawn_errno  ? strerror(res.spawn_errno)
             : res.timed_out    ? "timed out"
             : res.exitval == 0 ? "printed no end time"
                                : "failed");
    return -1;
}

/*
 * The allocation's end in wall-clock ns (0: none): the earlier of
 * --deadline and the Slurm job's end s (slurm_end's), and from where.
 */
static uint64_t earlier(const run_opts *o, long long s, bool *slurm,
                        char *src, size_t len)
{
    uint64_t end = o->deadline_ns;
    *slurm = s > 0 && (!end || (uint64_t)s * NS < end);
    if (*slurm)
        end = (uint64_t)s * NS;
    if (*slurm)
        snprintf(src, len, "the end of Slurm job %s", getenv("SLURM_JOB_ID"));
    else
        snprintf(src, len, "the deadline");
    return end;
}

/* end less the margin (at least 1: 0 means no deadline). */
static uint64_t stop_by(const run_opts *o, uint64_t end)
{
    uint64_t m = (uint64_t)o->margin_ms * 1000000u;
    return !end ? 0 : end > m ? end - m : 1;
}

/*
 * FNV-1a of task i's family key: its line, when the line gave several
 * tasks (an @array line: entries of one line are adjacent);
 * else its command with each run of digits read as one '#', so that
 * "sim --seed 17 > out17" and "sim --seed 4 > out4" are alike.
 */
static uint64_t family_key(const tf_taskfile *tf, uint32_t i)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint32_t line = tf->tasks[i].line;
    if ((i > 0 && tf->tasks[i - 1].line == line) ||
        (i + 1 < tf->n && tf->tasks[i + 1].line == line)) {
        for (int b = 0; b < 4; b++)
            h = (h ^ (uint8_t)(line >> 8 * b)) * 0x100000001b3ull;
        return h;
    }
    h = (h ^ 0xFF) * 0x100000001b3ull; /* no command hashes like a line */
    const char *c = tf_taskfile_cmd(tf, i);
    for (uint32_t k = 0; k < tf->tasks[i].cmd_len; k++) {
        bool digit = c[k] >= '0' && c[k] <= '9';
        if (digit && k && c[k - 1] >= '0' && c[k - 1] <= '9')
            continue;
        h = (h ^ (uint8_t)(digit ? '#' : c[k])) * 0x100000001b3ull;
    }
    return h;
}

typedef struct fam_slot {
    uint64_t key; /* 0: free */
    uint32_t count, fam;
} fam_slot;

/* Task i's slot in the open table tab (cap a power of two). */
static fam_slot *fam_slot_of(const tf_taskfile *tf, uint32_t i, fam_slot *tab,
                             size_t cap)
{
    uint64_t k = family_key(tf, i) | 1;
    size_t j = (size_t)(k >> 7) & (cap - 1);
    while (tab[j].key && tab[j].key != k)
        j = (j + 1) & (cap - 1);
    tab[j].key = k;
    return &tab[j];
}

/*
 * Families for the tasks of tf, numbered from 1; a task alike to no other
 * has none (it could teach no one). `one`: argument mode's jobs, all of
 * one command, are one family whatever their arguments. One pass counts the keys in an open
 * table of 1.5 to 3 slots a task, one numbers those seen twice: O(tasks),
 * 24 to 48 bytes a task, freed before the run. Returns the array (tf->n
 * entries), or NULL when memory is short (then nothing is learnt).
 */
static uint32_t *families(const tf_taskfile *tf, bool one)
{
    if (one) { /* argument mode: every job comes of the one command */
        uint32_t *fam = calloc(tf->n ? tf->n : 1, sizeof *fam);
        for (uint32_t i = 0; fam && i < tf->n; i++)
            fam[i] = tf_taskfile_is_barrier(tf, i) ? 0 : 1;
        return fam;
    }
    size_t cap = 16;
    while (cap < (size_t)tf->n + tf->n / 2)
        cap *= 2;
    fam_slot *tab = calloc(cap, sizeof *tab);
    uint32_t *fam = calloc(tf->n ? tf->n : 1, sizeof *fam);
    if (!tab || !fam) {
        free(tab);
        free(fam);
        return NULL;
    }
    for (uint32_t i = 0; i < tf->n; i++)
        if (!tf_taskfile_is_barrier(tf, i))
            fam_slot_of(tf, i, tab, cap)->count++;
    uint32_t next = 0;
    for (uint32_t i = 0; i < tf->n; i++) {
        if (tf_taskfile_is_barrier(tf, i))
            continue;
        fam_slot *s = fam_slot_of(tf, i, tab, cap);
        if (s->count > 1 && !s->fam && next < TF_WT_FAMILY_MAX)
            s->fam = ++next;
        fam[i] = s->fam;
    }
    free(tab);
    return fam;
}

void cli_walltime_init(cli_walltime *W, const run_opts *o,
                       const tf_taskfile *tf, tf_proc_table *procs)
{
    memset(W, 0, sizeof *W);
    long long s = 0;
    char why[160] = "";
    if (!o->no_deadline && getenv("SLURM_JOB_ID") &&
        (s = slurm_end(procs, false, why, sizeof why)) < 0)
        fprintf(stderr, "taskfarm: warning: the end of Slurm job %s is not "
                        "known (%s)%s\n",
                getenv("SLURM_JOB_ID"), why,
                o->deadline_ns ? "" : ": tasks start whatever their @est; "
                                      "--deadline gives it");
    W->end_ns = earlier(o, s, &W->slurm, W->src, sizeof W->src);
    W->stop_ns = stop_by(o, W->end_ns);
    /* The jobs of argument mode, also resumed from its task file. */
    const char *base = strrchr(o->taskfile, '/');
    bool argmode = o->args.argv ||
                   !strcmp(base ? base + 1 : o->taskfile, CLI_ARGS_FILE);
    if (W->stop_ns)
        W->family = families(tf, argmode);
}

bool cli_walltime_extend(cli_walltime *W, const run_opts *o,
                         tf_proc_table *procs, tf_runtime *rt)
{
    char why[160], src[sizeof W->src];
    long long s = W->slurm ? slurm_end(procs, true, why, sizeof why) : -1;
    bool slurm;
    uint64_t end = earlier(o, s, &slurm, src, sizeof src);
    /* Not known now (then it stops as planned), not later, or later. */
    if (s < 0 || (end && end <= W->end_ns))
        return false;
    uint64_t stop = stop_by(o, end);
    if (tf_set_deadline(rt, stop))
        return false;
    if (end)
        fprintf(stderr, "taskfarm: Slurm job %s was extended by %.0f s: "
                        "going on\n",
                getenv("SLURM_JOB_ID"), (end - W->end_ns) / 1e9);
    else
        fprintf(stderr, "taskfarm: Slurm job %s has no time limit any "
                        "more: going on\n",
                getenv("SLURM_JOB_ID"));
    W->end_ns = end;
    W->stop_ns = stop;
    W->slurm = slurm;
    memcpy(W->src, src, sizeof src);
    return true;
}

/* "HH:MM:SS", with the date when it is not today. */
static void clock_text(uint64_t ns, char *buf, size_t len)
{
    time_t t = (time_t)(ns / NS), now = time(NULL);
    struct tm tm, today;
    localtime_r(&t, &tm);
    localtime_r(&now, &today);
    strftime(buf, len,
             tm.tm_yday == today.tm_yday && tm.tm_year == today.tm_year
                 ? "%H:%M:%S"
                 : "%Y-%m-%d %H:%M:%S",
             &tm);
}

void cli_walltime_report(const cli_walltime *W, const run_opts *o,
                         const cli_progress *p)
{
    char stop[32], end[32], what[192];
    clock_text(W->stop_ns, stop, sizeof stop);
    clock_text(W->end_ns, end, sizeof end);
    unsigned long long ns = p->not_started, ni = p->interrupted;
    /* Nothing ran at the stop: what is left could not end in time. */
    if (!ni)
        snprintf(what, sizeof what,
                 "%llu task%s not started, %s would not finish before %s",
                 ns, ns == 1 ? "" : "s", ns == 1 ? "it" : "they", stop);
    else
        snprintf(what, sizeof what,
                 "stopped at %s: %llu running task%s interrupted (run again "
                 "on resume), %llu not started",
                 stop, ni, ni == 1 ? "" : "s", ns);
    fprintf(stderr, "taskfarm: walltime: %s (%s at %s less the %g s "
                    "margin); finish with: taskfarm run --resume -o %s %s\n",
            what, W->src, end, o->margin_ms / 1e3, o->outdir, o->taskfile);
}

void cli_walltime_free(cli_walltime *W)
{
    free(W->family);
    W->family = NULL;
}
