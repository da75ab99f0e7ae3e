/* taskfarm run: farm a task file of shell commands over the ranks, with joblog, progress and status. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* environ */
#endif

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "cli.h"
#include "exec/proc.h"
#include "net/runtime.h"
#include "place/bind.h"
#include "place/topo.h"
#include "runstate.h"

extern char **environ;

typedef struct run_opts {
    const char *taskfile;
    const char *outdir;
    bool resume, force, halt_on_error, quiet, no_steal, no_trace;
    int retries;          /* default for tasks without @retries */
    unsigned timeout_ms;  /* default for tasks without @timeout; 0 none */
    unsigned grace_ms;    /* SIGTERM to SIGKILL */
    unsigned heartbeat_ms; /* silence after which a rank is written off */
    unsigned checkpoint_ms; /* snapshot period; 0: at the end only */
    int slots;            /* 0: the cores this rank is bound to */
    double status_every;  /* seconds between status lines off a terminal */
    tf_bind_policy bind;  /* --bind; core unless given */
    bool bind_given;
} run_opts;

/* A success row of the earlier joblog: (line, command) and its times. */
typedef struct jl_done {
    uint32_t line;
    uint64_t cmd_key; /* tf_ck_key of the command alone */
    uint64_t start_ns, end_ns;
} jl_done;

/*
 * What an earlier run finished, from its checkpoint state: the identity
 * keys of its DONE tasks, sorted for bsearch, and the state itself, whose
 * rows keep those tasks' last attempt for the next snapshot. Also the
 * joblog's success rows: a row is written as its task ends, up to 50 ms
 * before the journal makes that durable, so a kill in between leaves a
 * task done in the joblog only; it must not run again.
 */
typedef struct done_set {
    uint64_t *keys; /* sorted */
    uint64_t *row;  /* row in st of each key */
    size_t n;
    tf_ck_state st;
    bool loaded;
    jl_done *jl; /* sorted by (line, cmd_key) */
    size_t njl;
} done_set;

/*
 * One per rank. Rank 0 also holds the task file, the joblog and the
 * progress counters, which only its event callback touches.
 */
typedef struct farm {
    run_opts o;
    int rank, size;
    tf_topo *topo;
    const int *cpus;
    size_t ncpus;
    tf_placer *placer; /* chooses and binds each task's cores */
    tf_proc_table procs;
    char out_dir[PATH_MAX]; /* OUTDIR/out, where task output files go */
    char trace_path[PATH_MAX + 16]; /* OUTDIR/trace.json, rank 0 */

    tf_runtime *rt;
    uint64_t lost; /* ranks written off, or rank 0 on a worker that lost it */
    /* Durable state (rank 0; docs/checkpoint-format.md). */
    tf_ck *ck;
    done_set *ds;        /* what an earlier run finished (--resume) */
    uint64_t *keys;      /* per task: identity of (@id, command) */
    uint64_t *prev_row;  /* per task: its row in ds->st if done there */
    uint64_t source_hash;
    uint64_t *depbuf;    /* scratch of the snapshot getter */
    uint32_t depcap;
    uint64_t next_ckpt_ns, ckpt_stall_ns, ckpt_max_ns, nckpt;
    bool ckpt_failed;
    tf_taskfile tf;
    char (*hosts)[64]; /* per rank */
    FILE *joblog;
    int lock_fd;
    uint32_t *wslots; /* per rank */
    uint64_t total_slots;
    uint64_t t0_ns;
    uint64_t done, failed, skipped, retried, resumed, started_attempts;
    uint64_t busy_slot_ns; /* sum over attempts of runtime x cores */
    bool tty;
    sigset_t stop_signals; /* blocked everywhere; rank 0 polls for them */
    int stopped_by;        /* the signal that stopped the run, or 0 */
    double next_status;
    int progress_len; /* characters of the live line now on the terminal */
} farm;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: taskfarm run [OPTIONS] TASKFILE\n"
            "Run every task of TASKFILE: under mpirun or srun rank 0 "
            "schedules and the\nother ranks run tasks; started directly, "
            "one process runs them all.\n\n"
            "  -o, --outdir DIR      joblog, task output and status "
            "(default taskfarm-out)\n"
            "      --resume          finish an earlier run in DIR: tasks its "
            "saved state shows\n"
            "                        done (same @id, same command) do not "
            "run again\n"
            "      --force           reuse DIR, truncating its joblog and "
            "removing its state\n"
            "      --checkpoint-every SEC  snapshot the state into DIR every "
            "SEC seconds\n"
            "                        (default 60; 0: at the end only); "
            "finished tasks are\n"
            "                        journaled as they finish either way\n"
            "      --slots N         tasks each rank runs at once (default: "
            "its cores)\n"
            "      --retries N       extra attempts for a failed task "
            "(default 0)\n"
            "      --timeout SEC     end a task after SEC seconds (default "
            "none)\n"
            "      --grace SEC       from SIGTERM to SIGKILL (default 2)\n"
            "      --halt-on-error   stop at the first failed task, ending "
            "running ones\n"
            "      --no-steal        worker ranks never take queued tasks "
            "from each other\n"
            "      --heartbeat SEC   write off a rank silent for SEC seconds "
            "(default 30;\n"
            "                        0: off); survives a dead worker under "
            "mpirun --enable-recovery\n"
            "      --no-trace        write no DIR/trace.json (see taskfarm "
            "report)\n"
            "      --bind POLICY     bind each task to its cores (core, the "
            "default), to their\n"
            "                        NUMA domains (numa) or not at all "
            "(none); memory follows\n"
            "      --status-every SEC  status line period when stderr is not "
            "a terminal\n"
            "                        (default 30; 0: none)\n"
            "  -q, --quiet           no progress, only errors and the "
            "summary\n\n"
            "exit status: 0 all tasks succeeded, 1 some failed or were "
            "skipped, 2 usage\nor task-file error (nothing ran), 3 runtime "
            "error, 75 stopped by a signal\n(finish with --resume).\n");
}

/* Seconds as a positive number, into milliseconds. */
static bool parse_seconds(const char *s, bool allow_zero, unsigned *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 ||
        (!allow_zero && v == 0) || v > 4294967.0)
        return false;
    *ms = (unsigned)ceil(v * 1000.0);
    return true;
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

/* Returns -1 when the options are fine, else the exit status. */
static int parse_opts(int argc, char **argv, run_opts *o)
{
    *o = (run_opts){.outdir = "taskfarm-out", .grace_ms = 2000,
                    .heartbeat_ms = 30000, .checkpoint_ms = 60000,
                    .status_every = 30, .bind = TF_BIND_CORE};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned ms;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            run_usage(stdout);
            return EXIT_ALL_OK;
        } else if (!strcmp(a, "--resume")) {
            o->resume = true;
        } else if (!strcmp(a, "--force")) {
            o->force = true;
        } else if (!strcmp(a, "--halt-on-error")) {
            o->halt_on_error = true;
        } else if (!strcmp(a, "--no-steal")) {
            o->no_steal = true;
        } else if (!strcmp(a, "--no-trace")) {
            o->no_trace = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = true;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--outdir")) && v) {
            o->outdir = v, i++;
        } else if (!strcmp(a, "--slots") && v) {
            if (!parse_int(v, 1, UINT16_MAX, &o->slots))
                goto bad_value;
            i++;
        } else if (!strcmp(a, "--retries") && v) {
            if (!parse_int(v, 0, UINT8_MAX - 1, &o->retries))
                goto bad_value;
            i++;
        } else if (!strcmp(a, "--timeout") && v) {
            if (!parse_seconds(v, false, &o->timeout_ms))
                goto bad_value;
            i++;
        } else if (!strcmp(a, "--grace") && v) {
            if (!parse_seconds(v, true, &o->grace_ms))
                goto bad_value;
            i++;
        } else if (!strcmp(a, "--checkpoint-every") && v) {
            if (!parse_seconds(v, true, &o->checkpoint_ms))
                goto bad_value;
            i++;
        } else if (!strcmp(a, "--heartbeat") && v) {
            if (!parse_seconds(v, true, &o->heartbeat_ms))
                goto bad_value;
            i++;
        } else if (!strcmp(a, "--bind") && v) {
            if (!tf_bind_policy_parse(v, &o->bind))
                goto bad_value;
            o->bind_given = true;
            i++;
        } else if (!strcmp(a, "--status-every") && v) {
            if (!parse_seconds(v, true, &ms))
                goto bad_value;
            o->status_every = ms / 1000.0;
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "taskfarm run: unknown option or missing value: "
                            "'%s'\n", a);
            run_usage(stderr);
            return EXIT_USAGE;
        } else if (o->taskfile) {
            fprintf(stderr, "taskfarm run: one task file at a time\n");
            return EXIT_USAGE;
        } else {
            o->taskfile = a;
        }
        continue;
    bad_value:
        fprintf(stderr, "taskfarm run: bad value '%s' for %s\n", v, a);
        return EXIT_USAGE;
    }
    if (!o->taskfile) {
        run_usage(stderr);
        return EXIT_USAGE;
    }
    if (o->resume && o->force) {
        fprintf(stderr, "taskfarm run: --resume and --force exclude each "
                        "other\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* ---- the shell task, on any rank ---- */

/* What a shell task reports back as its output. */
typedef struct shell_out {
    int32_t exitval, signal;
    uint8_t timed_out, halted, spawn_failed;
} shell_out;

/*
 * Variables a launcher sets for its own ranks. A task that is itself an MPI
 * program must not take them for its own, or it would try to join this job:
 * without them it starts as a singleton or under its own mpirun.
 */
static const char *const launcher_prefixes[] = {
    "OMPI_COMM_WORLD_", "OMPI_MCA_orte_ess_", "OMPI_MCA_ess_", "PMIX_",
    "PMI_",             "OMPI_UNIVERSE_SIZE", "OMPI_FIRST_RANKS",
    "OMPI_APP_CTX_",    "OMPI_NUM_APP_CTX",   "OMPI_FILE_LOCATION",
};

/*
 * Input of a shell task: u32 timeout_ms, then "id\0command\0". Runs the
 * command in its own process group, output to OUTDIR/out/ID.{out,err}, and
 * returns its exit status (128 + signal when killed, 124 on a timeout like
 * timeout(1), 127 when it could not start).
 */
static int shell_task(tf_task_ctx *ctx, const void *in, size_t len,
                      void *user)
{
    farm *F = user;
    uint32_t timeout_ms;
    if (len < 6)
        return TF_EPROTO;
    memcpy(&timeout_ms, in, 4);
    const char *id = (const char *)in + 4;
    const char *cmd = id + strlen(id) + 1;

    char out_path[PATH_MAX + 300], err_path[PATH_MAX + 300];
    snprintf(out_path, sizeof out_path, "%s/%s.out", F->out_dir, id);
    snprintf(err_path, sizeof err_path, "%s/%s.err", F->out_dir, id);

    /*
     * The pool's slots say how many cores the task holds; the placer says
     * which (compact, NUMA-aware: src/place/plan.h).
     */
    size_t n;
    tf_task_slots(ctx, &n);
    tf_place place;
    int prc = tf_placer_acquire(F->placer, n, &place);
    if (prc)
        return prc;
    size_t clen = n * 12 + 1;
    char *cores = malloc(clen), numa[1024], num[32];
    if (!cores) {
        tf_placer_release(F->placer, &place);
        return TF_ENOMEM;
    }
    tf_place_format(F->placer, &place, cores, clen, numa, sizeof numa);
    tf_envbuf env;
    int rc = tf_env_init(&env, environ);
    for (size_t i = 0; !rc && i < sizeof launcher_prefixes /
                                       sizeof *launcher_prefixes; i++)
        rc = tf_env_unset_prefix(&env, launcher_prefixes[i]);
    if (!rc)
        rc = tf_env_set(&env, "TASKFARM_TASK_ID", id);
    snprintf(num, sizeof num, "%d", tf_task_rank(ctx));
    if (!rc)
        rc = tf_env_set(&env, "TASKFARM_RANK", num);
    snprintf(num, sizeof num, "%d", tf_task_attempt(ctx));
    if (!rc)
        rc = tf_env_set(&env, "TASKFARM_ATTEMPT", num);
    if (!rc)
        rc = tf_env_set(&env, "TASKFARM_CORES", cores);
    free(cores);
    if (!rc)
        rc = tf_env_set(&env, "TASKFARM_NUMA", numa);
    snprintf(num, sizeof num, "%zu", n);
    if (!rc)
        rc = tf_env_set(&env, "OMP_NUM_THREADS", num);
    if (!rc)
        rc = tf_env_set(&env, "TASKFARM_OUTDIR", F->o.outdir);
    /* The child inherits the thread's binding; the thread gets its own back. */
    tf_binding bound;
    const char *warning = NULL;
    if (!rc)
        rc = tf_placer_bind(F->placer, &place, &bound, &warning);
    if (warning)
        fprintf(stderr, "taskfarm: rank %d: warning: %s\n", F->rank, warning);
    if (rc) {
        tf_env_free(&env);
        tf_placer_release(F->placer, &place);
        return rc;
    }
    tf_proc_spec spec = {.cmd = cmd,
                         .out_path = out_path,
                         .err_path = err_path,
                         .envp = tf_env_get(&env),
                         .timeout_ms = timeout_ms,
                         .grace_ms = F->o.grace_ms};
    tf_proc_result res;
    rc = tf_proc_run(&F->procs, &spec, &res);
    tf_placer_unbind(F->placer, &bound);
    tf_placer_release(F->placer, &place);
    tf_env_free(&env);
    if (rc)
        return rc;
    shell_out so = {res.exitval, res.signal, res.timed_out, res.halted,
                    res.spawn_errno != 0};
    tf_task_set_output(ctx, &so, sizeof so);
    if (res.timed_out)
        return 124;
    if (res.spawn_errno)
        return 127;
    /* Refused by a halt before it started: ended like the running ones. */
    if (res.halted && !res.signal)
        return 128 + SIGTERM;
    if (res.signal)
        return 128 + res.signal;
    return res.exitval;
}

static void halt_children(void *user)
{
    farm *F = user;
    tf_proc_kill_all(&F->procs, F->o.grace_ms);
}

/* ---- rank 0: joblog, progress, status ---- */

/*
 * One joblog row per finished attempt, in GNU parallel's --joblog columns,
 * so tools written for it read ours.
 */
static void joblog_row(farm *F, const tf_run_event *ev)
{
    uint32_t i = (uint32_t)ev->id;
    shell_out so = {-1, 0, 0, 0, 0};
    if (ev->output_len == sizeof so)
        memcpy(&so, ev->output, sizeof so);
    else
        so.exitval = ev->status; /* the runtime's own code */
    int rank = ev->rank >= 0 && ev->rank < F->size ? ev->rank : 0;
    fprintf(F->joblog, "%u\t%s\t%.3f\t%.3f\t0\t0\t%d\t%d\t%s\n",
            F->tf.tasks[i].line, F->hosts[rank], ev->start_ns / 1e9,
            (ev->end_ns - ev->start_ns) / 1e9, so.exitval, so.signal,
            tf_taskfile_cmd(&F->tf, i));
}

static void format_duration(double s, char *buf, size_t len)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

/* done/total, running, failed, skipped, rate, ETA; rate counts this run. */
static void progress_text(farm *F, char *buf, size_t len)
{
    double el = (now_ns() - F->t0_ns) / 1e9;
    uint64_t ran = F->done - F->resumed;
    double rate = el > 0 ? ran / el : 0;
    uint64_t left = F->tf.ntasks - F->done - F->failed - F->skipped;
    char eta[32] = "?", elapsed[32];
    if (rate > 0)
        format_duration(left / rate, eta, sizeof eta);
    format_duration(el, elapsed, sizeof elapsed);
    tf_stats st;
    tf_get_stats(F->rt, &st);
    snprintf(buf, len,
             "%llu/%u done, %llu running, %llu failed, %llu skipped, "
             "%.1f tasks/s, elapsed %s, ETA %s",
             (unsigned long long)F->done, F->tf.ntasks,
             (unsigned long long)st.running, (unsigned long long)F->failed,
             (unsigned long long)F->skipped, rate, elapsed, eta);
}

static void write_status(farm *F, const char *state)
{
    tf_stats st;
    tf_get_stats(F->rt, &st);
    tf_runstate rs = {
        .pid = getpid(),
        .ranks = F->size,
        .slots = F->total_slots,
        .total = F->tf.ntasks,
        .done = F->done,
        .resumed = F->resumed,
        .failed = F->failed,
        .skipped = F->skipped,
        .running = st.running,
        .started_ns = F->t0_ns,
        .updated_ns = now_ns(),
    };
    snprintf(rs.state, sizeof rs.state, "%s", state);
    snprintf(rs.host, sizeof rs.host, "%s", F->hosts[0]);
    snprintf(rs.taskfile, sizeof rs.taskfile, "%s", F->o.taskfile);
    tf_runstate_write(F->o.outdir, &rs);
}

/* ---- rank 0: durable state ---- */

/*
 * Task i as a snapshot stores it. A task done in an earlier run keeps that
 * run's attempt (its status, rank and times), not this run's no-op.
 */
static void ck_get(void *user, uint64_t i, tf_ck_task *t)
{
    farm *F = user;
    const tf_taskfile *tf = &F->tf;
    const tf_tftask *tt = &tf->tasks[i];
    tf_task_info info;
    tf_task_info_get(F->rt, i, &info);
    uint32_t nd;
    const uint32_t *d = tf_taskfile_deps(tf, (uint32_t)i, &nd);
    if (nd > F->depcap) {
        uint64_t *nb = realloc(F->depbuf, nd * sizeof *nb);
        if (nb) {
            F->depbuf = nb;
            F->depcap = nd;
        } else {
            nd = 0; /* recorded without its edges rather than not at all */
        }
    }
    for (uint32_t k = 0; k < nd; k++)
        F->depbuf[k] = d[k];
    *t = (tf_ck_task){.gid = i,
                      .key = F->keys[i],
                      .parent = TF_CK_NONE,
                      .name = tf_taskfile_id(tf, (uint32_t)i),
                      .name_len = tt->id_len,
                      .cmd = tf_taskfile_cmd(tf, (uint32_t)i),
                      .cmd_len = tt->cmd_len,
                      .deps = F->depbuf,
                      .ndeps = nd,
                      .prio = tt->prio,
                      .cores = tt->cores,
                      .state = (uint8_t)info.state,
                      .attempts = (uint16_t)info.attempts,
                      .status = info.status,
                      .rank = info.rank,
                      .start_ns = info.start_ns,
                      .end_ns = info.end_ns};
    uint64_t r = F->prev_row[i];
    if (r == UINT64_MAX || info.state != TF_TASK_DONE || info.attempts)
        return; /* ran in this run, or not done */
    if (r >= F->ds->st.n) {
        /* Done by the joblog only: one successful attempt, rank unknown. */
        const jl_done *j = &F->ds->jl[r - F->ds->st.n];
        t->attempts = 1;
        t->status = 0;
        t->rank = -1;
        t->start_ns = j->start_ns;
        t->end_ns = j->end_ns;
    } else {
        const tf_ck_task *p = &F->ds->st.task[r];
        t->attempts = p->attempts;
        t->status = p->status;
        t->rank = p->rank;
        t->start_ns = p->start_ns;
        t->end_ns = p->end_ns;
    }
}

/*
 * The state could not be written (a full disk): stop the run rather than
 * go on without a way back. The previous snapshot stays valid.
 */
static void ckpt_fail(farm *F, int rc)
{
    if (F->ckpt_failed)
        return;
    F->ckpt_failed = true;
    const char *why = tf_ck_error(F->ck);
    fprintf(stderr, "%staskfarm: cannot write the state in %s: %s; "
                    "stopping (the last saved state is kept)\n",
            F->progress_len ? "\n" : "", F->o.outdir,
            why[0] ? why : tf_strerror(rc));
    F->progress_len = 0;
    if (F->rt)
        tf_halt(F->rt);
}

/*
 * A snapshot when one is due (every --checkpoint-every), or now when
 * `final` (waiting for the one in flight first). Writing blocks dispatch
 * only while the HDF5 file is built; the disk is another thread's.
 */
static void checkpoint(farm *F, bool final)
{
    if (!F->ck || F->ckpt_failed)
        return;
    if (tf_ck_error(F->ck)[0]) {
        ckpt_fail(F, TF_EIO);
        return;
    }
    uint64_t now = now_ns();
    if (!final && (!F->o.checkpoint_ms || now < F->next_ckpt_ns ||
                   tf_ck_busy(F->ck)))
        return;
    if (final && tf_ck_wait(F->ck)) {
        ckpt_fail(F, TF_EIO);
        return;
    }
    tf_ck_meta m = {.kind = TF_CK_CLI,
                    .source_hash = F->source_hash,
                    .world_size = F->size,
                    .time_ns = now};
    snprintf(m.version, sizeof m.version, "%s", tf_version());
    int rc = tf_ck_snapshot(F->ck, &m, F->tf.n, ck_get, F);
    uint64_t took = now_ns() - now;
    if (rc == TF_ESTATE)
        return; /* the previous one is still on its way to the disk */
    if (rc) {
        ckpt_fail(F, rc);
        return;
    }
    F->nckpt++;
    F->ckpt_stall_ns += took;
    if (took > F->ckpt_max_ns)
        F->ckpt_max_ns = took;
    F->next_ckpt_ns = now + (uint64_t)F->o.checkpoint_ms * 1000000u;
    /* The final one comes after tf_run, when the trace is already whole. */
    if (!final) {
        char detail[96];
        snprintf(detail, sizeof detail, "snapshot %llu of %u tasks, dispatch "
                 "paused %.1f ms", (unsigned long long)F->nckpt, F->tf.n,
                 took / 1e6);
        tf_rt_trace_note(F->rt, "checkpoint", detail);
    }
}

/* The journal's record of an attempt that ended. */
static void journal(farm *F, const tf_run_event *ev)
{
    uint32_t i = (uint32_t)ev->id;
    tf_ck_finish f = {.gid = i,
                      .key = F->keys[i],
                      .attempt = (uint16_t)ev->attempt,
                      .state = ev->kind == TF_RUN_DONE ? TF_TASK_DONE
                                                       : TF_TASK_FAILED,
                      .status = ev->status,
                      .rank = ev->rank,
                      .start_ns = ev->start_ns,
                      .end_ns = ev->end_ns};
    int rc = tf_ck_finished(F->ck, &f);
    if (rc)
        ckpt_fail(F, rc);
}

static void on_event(void *user, tf_runtime *rt, const tf_run_event *ev)
{
    farm *F = user;
    (void)rt;
    uint32_t i = (uint32_t)ev->id;
    bool barrier = ev->kind != TF_RUN_TICK && tf_taskfile_is_barrier(&F->tf, i);
    switch (ev->kind) {
    case TF_RUN_DONE:
    case TF_RUN_RETRY:
    case TF_RUN_FAILED:
        joblog_row(F, ev);
        journal(F, ev);
        F->busy_slot_ns += (ev->end_ns - ev->start_ns) * F->tf.tasks[i].cores;
        if (ev->kind == TF_RUN_DONE) {
            F->done++;
        } else if (ev->kind == TF_RUN_RETRY) {
            F->retried++;
        } else {
            F->failed++;
            fprintf(stderr, "%staskfarm: task %s (line %u) failed with "
                            "status %d: %s\n",
                    F->progress_len ? "\n" : "", tf_taskfile_id(&F->tf, i),
                    F->tf.tasks[i].line, ev->status, tf_taskfile_cmd(&F->tf, i));
            F->progress_len = 0;
            if (F->o.halt_on_error)
                tf_halt(rt);
        }
        break;
    case TF_RUN_SKIPPED:
        if (!barrier)
            F->skipped++;
        break;
    case TF_RUN_TICK: {
        const struct timespec zero = {0, 0};
        int sig = sigtimedwait(&F->stop_signals, NULL, &zero);
        if (sig > 0 && !F->stopped_by) {
            F->stopped_by = sig;
            tf_rt_trace_note(rt, "signal", strsignal(sig));
            fprintf(stderr, "%staskfarm: %s: stopping, ending running "
                            "tasks\n",
                    F->progress_len ? "\n" : "", strsignal(sig));
            F->progress_len = 0;
            tf_halt(rt);
        }
        fflush(F->joblog);
        checkpoint(F, false);
        write_status(F, "running");
        if (F->o.quiet)
            break;
        char line[256];
        double el = (now_ns() - F->t0_ns) / 1e9;
        if (F->tty) {
            progress_text(F, line, sizeof line);
            int len = fprintf(stderr, "\r%s", line) - 1;
            if (len < F->progress_len)
                fprintf(stderr, "%*s", F->progress_len - len, "");
            F->progress_len = len;
        } else if (F->o.status_every > 0 && el >= F->next_status) {
            progress_text(F, line, sizeof line);
            fprintf(stderr, "taskfarm: %s\n", line);
            F->next_status = el + F->o.status_every;
        }
        break;
    }
    }
}

/* The trace names a task by its id in the task file. */
static void trace_name(void *user, tf_task_id id, char *buf, size_t len)
{
    farm *F = user;
    snprintf(buf, len, "%s", tf_taskfile_id(&F->tf, (uint32_t)id));
}

/* ---- rank 0: preparing the outdir ---- */


static int cmp_key(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void free_done(done_set *ds)
{
    free(ds->keys);
    free(ds->row);
    free(ds->jl);
    if (ds->loaded)
        tf_ck_state_free(&ds->st);
    memset(ds, 0, sizeof *ds);
}

/* Sort (key, row) pairs by key: one array of pairs, then split. */
static int index_done(done_set *ds)
{
    size_t n = 0;
    for (uint64_t r = 0; r < ds->st.n; r++)
        n += ds->st.task[r].state == TF_TASK_DONE;
    uint64_t(*pair)[2] = n ? malloc(n * sizeof *pair) : NULL;
    ds->keys = n ? malloc(n * sizeof *ds->keys) : NULL;
    ds->row = n ? malloc(n * sizeof *ds->row) : NULL;
    if (n && (!pair || !ds->keys || !ds->row)) {
        free(pair);
        return ENOMEM;
    }
    size_t k = 0;
    for (uint64_t r = 0; r < ds->st.n; r++)
        if (ds->st.task[r].state == TF_TASK_DONE)
            pair[k][0] = ds->st.task[r].key, pair[k++][1] = r;
    if (n)
        qsort(pair, n, sizeof *pair, cmp_key); /* compares the key only */
    for (k = 0; k < n; k++)
        ds->keys[k] = pair[k][0], ds->row[k] = pair[k][1];
    ds->n = n;
    free(pair);
    return 0;
}

static int cmp_jl(const void *a, const void *b)
{
    const jl_done *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->cmd_key < y->cmd_key ? -1 : x->cmd_key > y->cmd_key;
}

/*
 * The success rows (exit 0, no signal) of an earlier joblog into ds->jl.
 * Rows that do not parse, the header and a last row torn by a kill (no
 * newline) are skipped: a task without a whole success row runs again.
 */
static int read_joblog(const char *path, done_set *ds)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : errno;
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t len;
    int e = 0;
    while (!e && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n')
            break;
        line[--len] = '\0';
        unsigned seq;
        double start, runtime;
        int exitval, sig, cmd_at = -1;
        if (sscanf(line, "%u\t%*[^\t]\t%lf\t%lf\t%*d\t%*d\t%d\t%d\t%n", &seq,
                   &start, &runtime, &exitval, &sig, &cmd_at) != 5 ||
            cmd_at < 0 || exitval || sig)
            continue;
        if (ds->njl == alloc) {
            size_t c = alloc ? 2 * alloc : 1024;
            jl_done *nj = realloc(ds->jl, c * sizeof *nj);
            if (!nj) {
                e = ENOMEM;
                break;
            }
            ds->jl = nj;
            alloc = c;
        }
        ds->jl[ds->njl++] = (jl_done){
            seq, tf_ck_key(NULL, 0, line + cmd_at, (size_t)(len - cmd_at)),
            (uint64_t)(start * 1e9), (uint64_t)((start + runtime) * 1e9)};
    }
    if (!e && ferror(f))
        e = errno ? errno : EIO;
    free(line);
    fclose(f);
    if (ds->njl)
        qsort(ds->jl, ds->njl, sizeof *ds->jl, cmp_jl);
    return e;
}

/*
 * Where the earlier run finished task i: its row in the state (same @id,
 * same command), else st.n + k for success row k of the joblog (same line,
 * same command), else UINT64_MAX.
 */
static uint64_t done_row(const done_set *ds, const farm *F, uint32_t i)
{
    const uint64_t *hit =
        ds->n ? bsearch(&F->keys[i], ds->keys, ds->n, sizeof *ds->keys, cmp_key)
              : NULL;
    if (hit)
        return ds->row[hit - ds->keys];
    if (!ds->njl)
        return UINT64_MAX;
    jl_done want = {F->tf.tasks[i].line,
                    tf_ck_key(NULL, 0, tf_taskfile_cmd(&F->tf, i),
                              F->tf.tasks[i].cmd_len),
                    0, 0};
    const jl_done *j = bsearch(&want, ds->jl, ds->njl, sizeof *ds->jl, cmp_jl);
    return j ? ds->st.n + (uint64_t)(j - ds->jl) : UINT64_MAX;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* --force: the earlier run's snapshots and journals go (errno, or 0). */
static int remove_state(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno;
    int e = 0;
    struct dirent *de;
    char path[PATH_MAX + 300];
    while (!e && (de = readdir(d))) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        /* state-G.h5 and its .tmp and .damaged forms */
        bool snap = !strncmp(n, "state-", 6) && strstr(n, ".h5");
        bool jour = !strncmp(n, "journal-", 8) && len > 4 &&
                    !strcmp(n + len - 4, ".tfj");
        snprintf(path, sizeof path, "%s/%s", dir, n);
        if ((snap || jour) && unlink(path) != 0)
            e = errno;
    }
    closedir(d);
    return e;
}

/* The file is not empty and its last byte is not a newline. */
static bool ends_torn(const char *path)
{
    FILE *f = fopen(path, "rb");
    bool yes = f && fseek(f, -1, SEEK_END) == 0 && fgetc(f) != '\n';
    if (f)
        fclose(f);
    return yes;
}

/*
 * Create OUTDIR and OUTDIR/out, take the run lock, and open the joblog. An
 * earlier run's files are never touched unless --resume (append) or
 * --force (truncate) says so. Returns -1 or an exit status.
 */
static int prepare_outdir(farm *F, done_set *ds)
{
    const char *dir = F->o.outdir;
    char path[PATH_MAX + 32];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "taskfarm: cannot create %s: %s\n", dir,
                strerror(errno));
        return EXIT_USAGE;
    }
    snprintf(path, sizeof path, "%s/lock", dir);
    F->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (F->lock_fd < 0 || flock(F->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "taskfarm: %s is in use by another taskfarm run%s%s\n",
                dir, F->lock_fd < 0 ? ": " : "",
                F->lock_fd < 0 ? strerror(errno) : "");
        return EXIT_USAGE;
    }
    snprintf(path, sizeof path, "%s/joblog.tsv", dir);
    bool earlier = exists(path);
    if (earlier && !F->o.resume && !F->o.force) {
        fprintf(stderr,
                "taskfarm: %s holds an earlier run (%s); nothing was "
                "run.\nUse --resume to finish it, --force to start over in "
                "it, or another --outdir.\n",
                dir, path);
        return EXIT_USAGE;
    }
    if (F->o.resume && earlier) {
        char err[512] = "";
        tf_logger lg = {TF_LOG_WARN, 0, NULL, NULL};
        int rc = tf_ck_load(dir, &lg, &ds->st, err, sizeof err);
        if (rc == TF_ENOENT) {
            fprintf(stderr, "taskfarm: warning: %s has no saved state (the "
                            "earlier run ended before it wrote any): only "
                            "tasks with a success row in its joblog are "
                            "kept\n", dir);
        } else if (rc) {
            fprintf(stderr, "taskfarm: cannot resume from %s: %s\nNothing "
                            "was changed; --force starts over.\n",
                    dir, err[0] ? err : tf_strerror(rc));
            return EXIT_RUNTIME;
        } else {
            ds->loaded = true;
            if (index_done(ds)) {
                fprintf(stderr, "taskfarm: out of memory\n");
                return EXIT_RUNTIME;
            }
        }
        int e = read_joblog(path, ds);
        if (e) {
            fprintf(stderr, "taskfarm: cannot read %s: %s\nNothing was "
                            "changed.\n", path, strerror(e));
            return EXIT_RUNTIME;
        }
    } else if (F->o.force && earlier) {
        int e = remove_state(dir);
        if (e) {
            fprintf(stderr, "taskfarm: cannot remove the earlier state in "
                            "%s: %s\n", dir, strerror(e));
            return EXIT_RUNTIME;
        }
    }
    char err[512] = "";
    tf_ck_opts co = {.sync_ms = 0,
                     .loaded_gen = ds->st.fell_back ? ds->st.meta.generation : 0,
                     .log = {TF_LOG_WARN, 0, NULL, NULL}};
    if (tf_ck_open(dir, &co, &F->ck, err, sizeof err)) {
        fprintf(stderr, "taskfarm: cannot write state into %s: %s\n", dir,
                err);
        return EXIT_RUNTIME;
    }
    snprintf(F->out_dir, sizeof F->out_dir, "%s/out", dir);
    if (mkdir(F->out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "taskfarm: cannot create %s: %s\n", F->out_dir,
                strerror(errno));
        return EXIT_USAGE;
    }
    F->joblog = fopen(path, F->o.resume ? "a" : "w");
    if (!F->joblog) {
        fprintf(stderr, "taskfarm: cannot open %s: %s\n", path,
                strerror(errno));
        return EXIT_USAGE;
    }
    /*
     * A row reaches the file when it is written: the journal makes a
     * finished task durable within 50 ms, and a resume does not run it
     * again, so a row still in a stdio buffer when rank 0 is killed would
     * be lost for good. One write per task is nothing next to its spawn.
     */
    setvbuf(F->joblog, NULL, _IOLBF, 0);
    if (F->o.resume && earlier && ends_torn(path))
        fputc('\n', F->joblog); /* after a row torn by a kill */
    if (!F->o.resume || !earlier)
        fputs("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\t"
              "Signal\tCommand\n",
              F->joblog);
    return -1;
}

/* Submit the file: records, then edges (they may point forward), one seal. */
static int submit_all(farm *F, const done_set *ds)
{
    tf_runtime *rt = F->rt;
    const tf_taskfile *tf = &F->tf;
    int rc = 0;
    char *buf = NULL;
    size_t cap = 0;
    /*
     * The edges below go straight into the scheduler, not into the task
     * records, which is where a parked task's list of what it waits for is
     * read from; and shell tasks take milliseconds, so local release would
     * save nothing. Tasks are released by rank 0 only.
     */
    rt->sched.park = false;
    F->keys = malloc(sizeof *F->keys * (tf->n ? tf->n : 1));
    F->prev_row = malloc(sizeof *F->prev_row * (tf->n ? tf->n : 1));
    if (!F->keys || !F->prev_row)
        return TF_ENOMEM;
    F->source_hash = tf_ck_key(NULL, 0, NULL, 0);
    for (uint32_t i = 0; i < tf->n; i++) {
        F->keys[i] = tf_ck_key(tf_taskfile_id(tf, i), tf->tasks[i].id_len,
                               tf_taskfile_cmd(tf, i), tf->tasks[i].cmd_len);
        F->source_hash = tf_ck_key(&F->source_hash, 8, &F->keys[i], 8);
        F->prev_row[i] = UINT64_MAX;
    }
    for (uint32_t i = 0; i < tf->n && !rc; i++) {
        const tf_tftask *t = &tf->tasks[i];
        const char *id = tf_taskfile_id(tf, i);
        size_t need = 4 + t->id_len + 1 + t->cmd_len + 1;
        if (need > cap) {
            char *nb = realloc(buf, need);
            if (!nb) {
                rc = TF_ENOMEM;
                break;
            }
            buf = nb;
            cap = need;
        }
        uint32_t tmo = t->timeout_ms ? t->timeout_ms : F->o.timeout_ms;
        memcpy(buf, &tmo, 4);
        memcpy(buf + 4, id, t->id_len + 1);
        memcpy(buf + 4 + t->id_len + 1, tf_taskfile_cmd(tf, i), t->cmd_len + 1);
        unsigned flags = TF_RT_HOLD;
        if (tf_taskfile_is_barrier(tf, i)) {
            flags |= TF_RT_NOOP;
        } else if ((F->prev_row[i] = done_row(ds, F, i)) != UINT64_MAX) {
            flags |= TF_RT_NOOP;
            F->resumed++;
            F->done++;
        }
        uint32_t idx;
        rc = tf_rt_add_task(rt, 0, 0, t->prio, t->cores,
                            t->retries >= 0 ? t->retries : F->o.retries, NULL,
                            0, buf, (uint32_t)need, flags, &idx);
    }
    free(buf);
    for (uint32_t i = 0; i < tf->n && !rc; i++) {
        uint32_t nd;
        const uint32_t *d = tf_taskfile_deps(tf, i, &nd);
        for (uint32_t k = 0; k < nd && !rc; k++)
            rc = tf_sched_add_dep(&rt->sched, d[k], i);
    }
    if (!rc)
        rc = tf_sched_seal(&rt->sched, NULL, 0, NULL);
    return rc;
}

/* ---- the command ---- */

static void summary(farm *F, double secs)
{
    if (F->progress_len)
        fputc('\n', stderr);
    double util = secs > 0 && F->total_slots
                      ? F->busy_slot_ns / 1e9 / (secs * F->total_slots)
                      : 0;
    char resumed[64] = "";
    if (F->resumed)
        snprintf(resumed, sizeof resumed, " (%llu in an earlier run)",
                 (unsigned long long)F->resumed);
    fprintf(stderr,
            "taskfarm: %u tasks: %llu done%s, %llu failed, %llu skipped, "
            "%llu retried; %.3f s on %d rank%s, %llu slot%s, %.0f%% slot "
            "utilisation; joblog %s/joblog.tsv\n",
            F->tf.ntasks, (unsigned long long)F->done, resumed,
            (unsigned long long)F->failed, (unsigned long long)F->skipped,
            (unsigned long long)F->retried, secs, F->size,
            F->size > 1 ? "s" : "", (unsigned long long)F->total_slots,
            F->total_slots == 1 ? "" : "s", util * 100, F->o.outdir);
}

/*
 * Make the placer. Binding the tasks of ranks that share cpus (e.g. ranks
 * mpirun did not bind) would stack them all on the same first cores, so the
 * default policy leaves them unbound then; --bind core asks for it anyway,
 * and with --bind none nothing is checked. Collective under MPI. Returns 0, or nonzero after printing why.
 */
static int place_tasks(farm *F, bool mpi)
{
    bool overlap = false;
    int rc = 0;
    /* Every rank has the same options: all or none take part. */
    if (F->o.bind != TF_BIND_NONE)
        rc = cli_check_overlap(F->topo, mpi, F->rank, F->size, &overlap);
    tf_bind_policy pol = F->o.bind;
    if (!rc && overlap && !F->o.bind_given)
        pol = TF_BIND_NONE;
    if (!rc && F->rank == 0 && overlap && pol != F->o.bind)
        fprintf(stderr, "taskfarm: tasks of ranks that share cpus run "
                        "unbound; bind the ranks (mpirun --bind-to core, "
                        "srun --cpu-bind=cores) or force it with --bind %s\n",
                tf_bind_policy_name(F->o.bind));
    if (!rc)
        rc = tf_placer_new(F->topo, pol, &F->placer);
    if (rc)
        fprintf(stderr, "taskfarm: rank %d: cannot place tasks: %s\n",
                F->rank, tf_strerror(rc));
    /* All go on, or none: the next call, tf_init, is collective. */
    int failed = rc != 0, any = failed;
    if (mpi)
        MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any;
}

/*
 * Everything after the options: rank 0 validates and prepares, everyone
 * learns the verdict, then all ranks run. Returns the exit status.
 */
static int farm_run(farm *F, bool mpi, done_set *ds)
{
    int verdict = -1;
    if (F->rank == 0) {
        verdict = cli_load_taskfile(F->o.taskfile, &F->tf);
        if (verdict == EXIT_ALL_OK)
            verdict = prepare_outdir(F, ds);
    }
    if (mpi)
        MPI_Bcast(&verdict, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (verdict >= 0) {
        return verdict;
    }
    /* Workers need OUTDIR/out too; it exists now (shared file system). */
    snprintf(F->out_dir, sizeof F->out_dir, "%s/out", F->o.outdir);

    F->hosts = calloc((size_t)F->size, sizeof *F->hosts);
    F->wslots = calloc((size_t)F->size, sizeof *F->wslots);
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    uint32_t slots = F->o.slots ? (uint32_t)F->o.slots : (uint32_t)F->ncpus;
    if (!F->hosts || !F->wslots) {
        fprintf(stderr, "taskfarm: out of memory\n");
        return EXIT_RUNTIME;
    }
    if (mpi) {
        MPI_Gather(host, 64, MPI_CHAR, F->hosts, 64, MPI_CHAR, 0,
                   MPI_COMM_WORLD);
        MPI_Gather(&slots, 1, MPI_UINT32_T, F->wslots, 1, MPI_UINT32_T, 0,
                   MPI_COMM_WORLD);
    } else {
        memcpy(F->hosts[0], host, 64);
        F->wslots[0] = slots;
    }
    for (int r = F->size > 1 ? 1 : 0; r < F->size; r++)
        F->total_slots += F->wslots[r];
    if (place_tasks(F, mpi)) {
        return EXIT_RUNTIME;
    }

    tf_config cfg;
    tf_config_init(&cfg);
    cfg.slots = (int)slots;
    cfg.main_runs_tasks = 0; /* children block a thread each */
    cfg.prefetch = 2;        /* shell tasks take ms: no need to hoard */
    cfg.no_steal = F->o.no_steal;
    cfg.heartbeat_ms =
        F->o.heartbeat_ms > INT_MAX ? INT_MAX : (int)F->o.heartbeat_ms;
    cfg.on_halt = halt_children;
    cfg.halt_user = F;
    if (F->rank == 0) {
        F->tty = isatty(STDERR_FILENO) && !F->o.quiet;
        cfg.on_event = on_event;
        cfg.event_user = F;
        cfg.tick_ms = F->tty ? 250 : 500; /* also the signal latency */
        if (!F->o.no_trace) {
            snprintf(F->trace_path, sizeof F->trace_path, "%s/trace.json",
                     F->o.outdir);
            cfg.trace_path = F->trace_path;
        }
    }
    int rc = mpi ? tf_init(MPI_COMM_WORLD, &cfg, &F->rt)
                 : tf_init_local(&cfg, &F->rt);
    tf_fn_id fn;
    if (!rc)
        rc = tf_register(F->rt, "shell", shell_task, F, &fn);
    if (!rc && F->rank == 0) {
        F->rt->trace_name = trace_name;
        F->rt->trace_name_user = F;
        rc = submit_all(F, ds);
        F->next_status = F->o.status_every;
    }
    if (rc) {
        /* Only rank 0 can fail here; the others are entering tf_run. */
        fprintf(stderr, "taskfarm: cannot start: %s\n", tf_strerror(rc));
        if (mpi)
            MPI_Abort(MPI_COMM_WORLD, EXIT_RUNTIME);
        return EXIT_RUNTIME;
    }
    F->t0_ns = now_ns();
    if (F->rank == 0)
        write_status(F, "running");
    rc = tf_run(F->rt);
    int status = rc == 0 ? EXIT_ALL_OK
                 : rc == TF_EFAILED ? EXIT_SOME_FAILED
                                    : EXIT_RUNTIME;
    /* A signal that came as the last task ended stopped nothing. */
    if (F->stopped_by && status == EXIT_SOME_FAILED)
        status = EXIT_RESUMABLE;
    if (F->rank == 0 && (fflush(F->joblog) != 0 || ferror(F->joblog))) {
        fprintf(stderr, "taskfarm: cannot write %s/joblog.tsv: %s\n",
                F->o.outdir, strerror(errno));
        status = EXIT_RUNTIME;
    }
    /* The trace is a whole document after tf_run; a write error was logged. */
    if (F->rank == 0 && F->rt->trace_err && status != EXIT_USAGE)
        status = EXIT_RUNTIME;
    /* The final state, durable before the exit status says anything. */
    if (F->rank == 0) {
        checkpoint(F, true);
        int crc = tf_ck_close(&F->ck);
        if (crc)
            ckpt_fail(F, crc);
        if (F->ckpt_failed)
            status = EXIT_RUNTIME;
        else if (!F->o.quiet)
            fprintf(stderr, "taskfarm: state saved in %s (%llu snapshot%s, "
                            "dispatch paused %.1f ms at most)\n",
                    F->o.outdir, (unsigned long long)F->nckpt,
                    F->nckpt == 1 ? "" : "s", F->ckpt_max_ns / 1e6);
    }
    /*
     * Only rank 0 knows whether a signal stopped the run, and mpirun reports
     * the first non-zero exit it sees: a worker that has nothing of its own
     * to report exits 0 and leaves the verdict to rank 0. (No collective
     * here: a rank may be dead.)
     */
    if (F->rank != 0 && status != EXIT_RUNTIME)
        status = EXIT_ALL_OK;
    tf_stats st;
    tf_get_stats(F->rt, &st);
    F->lost = st.lost_ranks;
    if (F->rank == 0 && F->lost)
        fprintf(stderr, "taskfarm: %llu rank%s lost during the run; "
                        "their tasks ran elsewhere\n",
                (unsigned long long)F->lost, F->lost > 1 ? "s" : "");
    if (F->rank == 0) {
        double secs = (now_ns() - F->t0_ns) / 1e9;
        write_status(F, status == EXIT_ALL_OK        ? "done"
                        : status == EXIT_SOME_FAILED ? "failed"
                        : status == EXIT_RESUMABLE   ? "stopped"
                                                     : "error");
        summary(F, secs);
        /* The cause was reported when it happened; name it again last. */
        if (status == EXIT_RUNTIME)
            fprintf(stderr, "taskfarm: run ended with an error: %s\n",
                    F->ckpt_failed ? "the state could not be saved (see "
                                     "above); finish with --resume once "
                                     "fixed"
                    : rc != 0 && rc != TF_EFAILED ? tf_strerror(rc)
                                                  : "see above");
        if (status == EXIT_RESUMABLE)
            fprintf(stderr, "taskfarm: stopped by %s; finish with: taskfarm "
                            "run --resume -o %s %s\n",
                    strsignal(F->stopped_by), F->o.outdir, F->o.taskfile);
    }
    tf_finalize(&F->rt);
    return status;
}

static int farm_main(farm *F, bool mpi)
{
    done_set ds = {0};
    F->ds = &ds;
    int status = farm_run(F, mpi, &ds);
    F->ds = NULL;
    free_done(&ds);
    return status;
}

int cli_run(int argc, char **argv)
{
    farm F;
    memset(&F, 0, sizeof F);
    F.lock_fd = -1;
    int status = parse_opts(argc, argv, &F.o);
    if (status >= 0)
        return status;
    /*
     * SIGINT (Ctrl-C), SIGTERM (scancel, mpirun forwarding) and SIGUSR1
     * (Slurm's warning before the time limit) stop the run cleanly: blocked
     * here, before any thread exists, so that no thread takes them by
     * surprise; rank 0 polls for them each tick and halts. Children start
     * with an empty mask. On other ranks they stay blocked: rank 0 decides.
     */
    sigemptyset(&F.stop_signals);
    sigaddset(&F.stop_signals, SIGINT);
    sigaddset(&F.stop_signals, SIGTERM);
    sigaddset(&F.stop_signals, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &F.stop_signals, NULL);
    bool mpi = cli_under_launcher();
    if (mpi) {
        int provided;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        MPI_Comm_rank(MPI_COMM_WORLD, &F.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &F.size);
        const char *nt = getenv("SLURM_NTASKS");
        if (F.size == 1 && getenv("SLURM_STEP_ID") && nt && atoi(nt) > 1) {
            /* Each process would run the whole file on its own. */
            fprintf(stderr, "taskfarm: srun started %s tasks but MPI sees "
                            "one rank: use srun --mpi=pmix (or mpirun)\n",
                    nt);
            MPI_Finalize();
            return EXIT_USAGE;
        }
    } else {
        F.size = 1;
    }
    status = EXIT_RUNTIME;
    int rc = tf_topo_load(&F.topo);
    if (rc) {
        fprintf(stderr, "taskfarm: cannot read the machine's topology: %s\n",
                tf_strerror(rc));
        goto out_with_mpi;
    }
    F.cpus = tf_topo_cpus(F.topo, &F.ncpus);
    if (tf_proc_table_init(&F.procs)) {
        fprintf(stderr, "taskfarm: out of memory\n");
        goto out_with_topo;
    }
    /* Kills this rank's tasks if it dies; the pipe closes when it exits. */
    F.procs.guard_fd = cli_guard_start();
    status = farm_main(&F, mpi);
    tf_placer_free(F.placer);
    tf_proc_table_destroy(&F.procs);
out_with_topo:
    tf_topo_free(F.topo);
out_with_mpi:
    if (F.joblog)
        fclose(F.joblog);
    if (F.lock_fd >= 0)
        close(F.lock_fd);
    if (F.ck)
        tf_ck_close(&F.ck); /* an early error: keep what was journaled */
    tf_taskfile_free(&F.tf);
    free(F.hosts);
    free(F.wslots);
    free(F.keys);
    free(F.prev_row);
    free(F.depbuf);
    /*
     * With a rank dead (or written off), Open MPI 4.1's MPI_Finalize can spin
     * forever waiting for it; everything is written and closed by now.
     */
    if (mpi && F.lost) {
        fflush(NULL);
        _exit(status);
    }
    if (mpi)
        MPI_Finalize();
    return status;
}
