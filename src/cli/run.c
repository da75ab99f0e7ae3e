/* taskfarm run: farm a task file of shell commands over the ranks through the library, with joblog, progress, status and a resumable state. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/grow.h"
#include "farm.h"
#include "place/topo.h"
#include "runstate.h"

/*
 * One per rank. Rank 0 also holds the task file, the joblog and the
 * progress counters, which only its event callback touches.
 */
typedef struct farm {
    run_opts o;
    tf_runtime *rt;
    int rank, size;
    tf_topo *topo;
    size_t ncpus;
    cli_shell shell;
    tf_taskfile tf;
    cli_joblog jl;
    cli_progress pr;
    int lock_fd;
    char trace_path[PATH_MAX + 16]; /* OUTDIR/trace.json, rank 0 */
    sigset_t stop_signals; /* blocked everywhere; rank 0 polls for them */
    int stopped_by;        /* the signal that stopped the run, or 0 */
    bool halting;          /* halted: a signal, an error, --halt */
    bool halted_by_option; /* by --halt (or --halt-on-error) */
    uint8_t *stop_ended;   /* per task: an attempt of it was ended by the stop */
    int joblog_err;        /* the first write error of the joblog, or 0 */
    bool output_ready;     /* shell.output is initialised */
    cli_walltime wt;       /* rank 0: the deadline, families */
    bool out_of_time;      /* the deadline stopped the run */
    bool blocked;          /* out/FIRST-LAST/ directories (cli_output_block) */
    cli_intake in;         /* rank 0: tasks added while it runs */
    bool lost0;            /* rank 0 was lost, and --standby: take over */
    bool heir;             /* this runtime took over from a lost rank 0 */
    /*
     * Rank 0 after a take-over: the tasks ranks hold (cli_shell_claims),
     * sorted by id, one holder each; ids point into claims_text.
     */
    struct claim {
        const char *id;
        uint64_t end_ns;
        int rank;
    } *claims;
    size_t nclaims;
    char *claims_text;
    /*
     * Rank 0: the run's end was reported (TF_RUN_END) for tf_run's rc
     * ended_rc, making exit status ended_status.
     */
    bool ended;
    int ended_rc, ended_status;
} farm;

/* The library's log lines, as the command's own: "taskfarm: ...". */
static void log_line(void *user, int level, int rank, const char *msg)
{
    farm *F = user;
    cli_progress_break(&F->pr);
    char who[32] = "";
    if (rank)
        snprintf(who, sizeof who, "rank %d: ", rank);
    fprintf(stderr, "taskfarm: %s%s%s\n", who,
            level == TF_LOG_ERROR  ? "error: "
            : level == TF_LOG_WARN ? "warning: "
                                   : "",
            msg);
}

/* The trace names a task by its id in the task file. */
static void name_task(void *user, tf_task_id id, char *buf, size_t len)
{
    farm *F = user;
    snprintf(buf, len, "%s", tf_taskfile_id(&F->tf, (uint32_t)id));
}

/* Stop the run: nothing more starts; running tasks are ended, unless soon. */
static void halt_run(farm *F, tf_runtime *rt, bool soon)
{
    F->halting = true;
    if (soon)
        tf_halt_soon(rt);
    else
        tf_halt(rt);
}

/* --halt: once its threshold is reached, stop the run, now or soon. */
static void check_halt(farm *F, tf_runtime *rt)
{
    const cli_halt *h = &F->o.halt;
    cli_progress *p = &F->pr;
    uint64_t ok = p->done - p->resumed;
    if (F->halting || !cli_halt_due(h, p->failed, ok, p->total))
        return;
    F->halted_by_option = true;
    cli_progress_break(p);
    fprintf(stderr, "taskfarm: --halt %s reached (%llu failed, %llu "
                    "succeeded, %llu tasks): %s\n",
            h->text, (unsigned long long)p->failed, (unsigned long long)ok,
            (unsigned long long)p->total,
            h->when == CLI_HALT_SOON
                ? "starting nothing more, running tasks finish"
                : "ending running tasks");
    halt_run(F, rt, h->when == CLI_HALT_SOON);
}

/* SIGINT, SIGTERM, SIGUSR1: stop dispatching, end what runs, exit 75. */
static void poll_signals(farm *F, tf_runtime *rt, time_t wait_s)
{
    const struct timespec wait = {wait_s, 0};
    int sig = sigtimedwait(&F->stop_signals, NULL, &wait);
    if (sig <= 0 || F->stopped_by)
        return;
    F->stopped_by = sig;
    tf_note(rt, "signal", strsignal(sig));
    cli_progress_break(&F->pr);
    fprintf(stderr, "taskfarm: %s: stopping, ending running tasks\n",
            strsignal(sig));
    halt_run(F, rt, false);
}

/*
 * Whether a failed attempt was ended by a stop, not by a fault of its own:
 * it ended after the halt (which ends what runs), or it died of a stop
 * signal or SIGKILL once one came to rank 0. The latter is scancel and
 * Slurm's time limit, which signal every process of the job, the tasks
 * too, in no set order: a task's end can reach rank 0 before its tick
 * sees the signal, or before the signal has even reached rank 0. So the
 * signal is polled here first, and a task that died of a stop signal
 * while none came waits up to a second for it (rare: only a task killed
 * by SIGINT, SIGTERM or SIGUSR1 from outside pays it). SIGKILL is not
 * waited for: the OOM killer sends it alone, and Slurm sends its SIGTERM
 * first.
 */
static bool ended_by_stop(farm *F, tf_runtime *rt, const tf_run_event *ev)
{
    shell_out so;
    if (ev->halted)
        return true;
    if (ev->output_len < sizeof so)
        return false;
    memcpy(&so, ev->output, sizeof so);
    /* (sigismember is -1, not 0, for a task that died of no signal) */
    if (so.timed_out || so.signal <= 0 ||
        !(so.signal == SIGKILL || sigismember(&F->stop_signals, so.signal) == 1))
        return false;
    poll_signals(F, rt, so.signal == SIGKILL || F->stopped_by ? 0 : 1);
    return F->stopped_by != 0;
}

/*
 * A row of the joblog. One that cannot be written (a full disk) stops the
 * run at once: the state keeps what finished, and --resume writes the rows
 * that are missing then.
 */
static void joblog_row(farm *F, tf_runtime *rt, const tf_run_event *ev,
                       const char *host)
{
    uint32_t i = (uint32_t)ev->id;
    int e = cli_joblog_row(&F->jl, ev, F->tf.tasks[i].line, host,
                           tf_taskfile_cmd(&F->tf, i));
    if (!e || F->joblog_err)
        return;
    F->joblog_err = e;
    cli_progress_break(&F->pr);
    fprintf(stderr, "taskfarm: cannot write %s/joblog.tsv: %s; stopping (the "
                    "saved state keeps what finished)\n",
            F->o.outdir, strerror(e));
    if (rt)
        halt_run(F, rt, false);
}

/* A failed task's cause beyond its status, for the message: ", could not start: E". */
static const char *why_failed(const tf_run_event *ev)
{
    static char buf[160];
    shell_out so;
    buf[0] = 0;
    if (ev->output_len < sizeof so) {
        /* Not the shell's outcome: the runtime's own code. */
        if (ev->status < 0)
            snprintf(buf, sizeof buf, " (%s)", tf_strerror(ev->status));
        return buf;
    }
    memcpy(&so, ev->output, sizeof so);
    /* The runner's reason when it gave one (shell.c's outcome). */
    size_t at = shell_out_text(&so);
    const char *text = (const char *)ev->output + at;
    size_t tlen = ev->output_len > at ? ev->output_len - at : 0;
    if (so.spawn_failed && tlen && !text[tlen - 1])
        snprintf(buf, sizeof buf, ", %s", text);
    else if (so.spawn_failed)
        snprintf(buf, sizeof buf, ", could not start: %s",
                 so.spawn_failed == 255 ? "unknown error"
                                        : strerror(so.spawn_failed));
    else if (so.timed_out)
        snprintf(buf, sizeof buf, ", timed out");
    else if (so.signal)
        snprintf(buf, sizeof buf, ", killed by %s", strsignal(so.signal));
    return buf;
}

static int verdict_of(farm *F, int rc);
static int report(farm *F, int rc, int status);

/* Rank 0: every task that ends, and the ticks. */
static void on_event(void *user, tf_runtime *rt, const tf_run_event *ev)
{
    farm *F = user;
    cli_progress *p = &F->pr;
    uint32_t i = (uint32_t)ev->id;
    switch (ev->kind) {
    case TF_RUN_DONE:
    case TF_RUN_RETRY:
    case TF_RUN_FAILED:
        p->busy_slot_ns += (ev->end_ns - ev->start_ns) * F->tf.tasks[i].cores;
        /*
         * Interrupted: no joblog row, as GNU parallel writes none for the
         * jobs it kills on Ctrl-C, so that its --resume and ours run the
         * task again. A retry the stop then skips counts once, here.
         */
        if (ev->kind != TF_RUN_DONE && ended_by_stop(F, rt, ev)) {
            tf_event_interrupted(rt); /* for the trace */
            p->interrupted++;
            F->stop_ended[i] = 1;
            break;
        }
        joblog_row(F, rt, ev, tf_rank_host(rt, ev->rank >= 0 ? ev->rank : 0));
        if (ev->kind == TF_RUN_DONE) {
            p->done++;
        } else if (ev->kind == TF_RUN_RETRY) {
            p->retried++;
        } else {
            p->failed++;
            cli_progress_break(p);
            fprintf(stderr, "taskfarm: task %s (line %u) failed with status "
                            "%d%s: %s\n",
                    tf_taskfile_id(&F->tf, i), F->tf.tasks[i].line,
                    ev->status, why_failed(ev), tf_taskfile_cmd(&F->tf, i));
        }
        check_halt(F, rt);
        break;
    case TF_RUN_END:
        /*
         * The status file and summary before any worker leaves: a rank 0
         * lost from here on leaves nothing undone (with --standby, one
         * lost earlier is succeeded by a rank that writes them).
         */
        F->ended = true;
        F->ended_rc = ev->status;
        F->ended_status = report(F, ev->status, verdict_of(F, ev->status));
        break;
    case TF_RUN_UNNEEDED:
        /* Its @afternotok tasks all succeeded: nothing for it to handle. */
        p->not_needed++;
        break;
    case TF_RUN_SKIPPED:
        /* A halt skips what has not started, with no failed task as cause. */
        if (tf_taskfile_is_barrier(&F->tf, i) || F->stop_ended[i])
            break;
        if (F->halting && ev->cause == TF_NO_TASK)
            p->not_started++;
        else
            p->skipped++;
        break;
    case TF_RUN_DEADLINE:
        /*
         * An extended Slurm job goes on; else (or when its new end is
         * near as well) the runtime halts the run.
         */
        if (!cli_walltime_extend(&F->wt, &F->o, &F->shell.procs, rt) ||
            F->wt.stop_ns <= cli_now_ns())
            F->out_of_time = F->halting = true;
        break;
    case TF_RUN_TICK:
        cli_output_follow(&F->shell.output, p);
        poll_signals(F, rt, 0);
        if (!F->halting)
            cli_intake_tick(&F->in, rt);
        p->taken = F->in.taken;
        cli_joblog_flush(&F->jl);
        cli_progress_status(p, rt, "running");
        cli_progress_tick(p, rt);
        break;
    }
}

/*
 * Tasks done already, in the saved state or by the joblog alone. A task
 * the state has done but the joblog has no success row for (rows lost to
 * a full disk, a deleted joblog) gets its row back from the state, so
 * that every finished task has exactly one.
 */
static void count_resumed(farm *F)
{
    const tf_taskfile *tf = &F->tf;
    uint64_t repaired = 0;
    for (uint32_t i = 0; i < tf->n; i++) {
        tf_task_info info;
        if (tf_task_info_get(F->rt, i, &info) || tf_taskfile_is_barrier(tf, i))
            continue;
        const tf_tftask *t = &tf->tasks[i];
        bool row = cli_joblog_was_done(&F->jl, t->line, tf_taskfile_cmd(tf, i),
                                       t->cmd_len);
        /*
         * Done before: a success row (submit_all made it a no-op), or
         * attempts the state gave it. Not always DONE yet: an @afterany or
         * @afternotok task waits for its tasks that run again. A task found
         * not needed at the seal never ran: its event counts it.
         */
        if (!row && !info.attempts)
            continue;
        F->pr.resumed++;
        if (row)
            continue;
        /* The host of an earlier job's rank is not known: "-". */
        shell_out so = {0, 0, 0, 0, 0, 0};
        tf_run_event ev = {.kind = TF_RUN_DONE,
                           .id = i,
                           .start_ns = info.start_ns,
                           .end_ns = info.end_ns,
                           .output = &so,
                           .output_len = sizeof so};
        joblog_row(F, NULL, &ev, "-");
        repaired++;
    }
    F->pr.done = F->pr.resumed;
    if (repaired)
        fprintf(stderr, "taskfarm: warning: %llu task%s the saved state shows "
                        "done had no success row in %s/joblog.tsv: row%s "
                        "written from the state\n",
                (unsigned long long)repaired, repaired == 1 ? "" : "s",
                F->o.outdir, repaired == 1 ? "" : "s");
}

static int by_claim_id(const void *a, const void *b)
{
    return strcmp(((const struct claim *)a)->id,
                  ((const struct claim *)b)->id);
}

/*
 * A task a rank holds from the lost rank 0's run (its command still
 * running there, or its success kept) goes to that rank, first: the task
 * there takes up what it holds instead of running the command again.
 */
static void pin_claimed(farm *F, const char *id, tf_task_desc *d)
{
    struct claim key = {.id = id};
    const struct claim *c =
        bsearch(&key, F->claims, F->nclaims, sizeof key, by_claim_id);
    if (!c || tf_rank_slots(F->rt, c->rank) < (d->cores ? d->cores : 1))
        return;
    d->rank = c->rank;
    d->prio = INT32_MAX;
}

/*
 * After a take-over, collective: every rank says what it holds, and rank 0
 * keeps one holder per task (the latest attempt: a running command, else
 * the latest end). A rank that runs no tasks lets its commands go.
 */
static int gather_claims(farm *F)
{
    if (!tf_rank_slots(F->rt, F->rank))
        cli_shell_drop_held(&F->shell);
    char *mine = NULL, *all = NULL;
    size_t len = 0;
    int rc = cli_shell_claims(&F->shell, &mine);
    if (F->rank == 0)
        F->shell.keep_ns = 0; /* its own tasks' ends are recorded here now */
    if (rc) {
        free(mine);
        mine = NULL; /* out of memory: claims nothing, runs it all again */
    }
    rc = tf_allgather_text(F->rt, mine ? mine : "", &all, &len);
    free(mine);
    if (rc || F->rank != 0) {
        free(all);
        return rc;
    }
    size_t n = 0, cap = 0;
    struct claim *v = NULL;
    int r = 0;
    for (char *p = all; p < all + len; r++) {
        char *end = p + strlen(p);
        for (char *line = p; line < end;) {
            char *nl = strchr(line, '\n'), *tab = strchr(line, '\t');
            if (!nl || !tab || tab > nl)
                break;
            *tab = *nl = 0;
            if (tf_grow((void **)&v, &cap, n + 1, sizeof *v, 64))
                break; /* out of memory: the rest runs again */
            v[n++] = (struct claim){line, strtoull(tab + 1, NULL, 10), r};
            line = nl + 1;
        }
        p = end + 1;
    }
    qsort(v, n, sizeof *v, by_claim_id);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && !strcmp(v[k - 1].id, v[i].id)) {
            if (v[i].end_ns > v[k - 1].end_ns)
                v[k - 1] = v[i];
            continue;
        }
        v[k++] = v[i];
    }
    F->claims = v;
    F->nclaims = k;
    F->claims_text = all;
    return 0;
}

/* The claims are pinned (or moot): let them go. */
static void free_claims(farm *F)
{
    free(F->claims);
    free(F->claims_text);
    F->claims = NULL;
    F->claims_text = NULL;
    F->nclaims = 0;
}

/*
 * Submit tf's entries from `first` on in one batch: records first, then
 * the @after edges (they may point forward). A task's identity for
 * --resume is (@id, command); one the earlier joblog shows done, or a
 * barrier, runs nothing. The whole file at the start; what the farm took
 * since (intake.c) while it runs.
 */
static int submit_entries(farm *F, const tf_taskfile *tf, uint32_t first)
{
    tf_runtime *rt = F->rt;
    char *buf = NULL;
    size_t cap = 0;
    uint8_t *se = realloc(F->stop_ended, tf->n ? tf->n : 1);
    if (!se)
        return TF_ENOMEM;
    memset(se + first, 0, tf->n - first);
    F->stop_ended = se;
    int rc = tf_batch_begin(rt);
    for (uint32_t i = first; i < tf->n && !rc; i++) {
        const tf_tftask *t = &tf->tasks[i];
        const char *id = tf_taskfile_id(tf, i), *cmd = tf_taskfile_cmd(tf, i);
        uint32_t tmo = t->timeout_ms ? t->timeout_ms : F->o.timeout_ms;
        size_t len = cli_shell_input(&buf, &cap, tmo,
                                     cli_output_block(tf, i, F->blocked), id,
                                     t->id_len, cmd, t->cmd_len);
        tf_task_desc d;
        tf_task_desc_init(&d, 0);
        d.prio = t->prio;
        d.cores = t->cores;
        d.retries = t->retries >= 0 ? t->retries : F->o.retries;
        d.input = buf;
        d.input_len = len;
        d.key = tf_key(id, t->id_len, cmd, t->cmd_len);
        if (F->wt.stop_ns) { /* walltime-aware dispatch */
            d.est_ms = tf_taskfile_est_ms(tf, i);
            d.family = F->wt.family ? F->wt.family[i] : 0;
        }
        if (tf_taskfile_is_barrier(tf, i) ||
            cli_joblog_was_done(&F->jl, t->line, cmd, t->cmd_len))
            d.flags = TF_TASK_NOOP;
        else if (F->nclaims)
            pin_claimed(F, id, &d);
        tf_task_id tid;
        rc = len ? tf_submit(rt, &d, &tid) : TF_ENOMEM;
    }
    free(buf);
    /* Rank 0's own tasks are numbered in submission order: id = index. */
    for (uint32_t i = first; i < tf->n && !rc; i++) {
        uint32_t nd;
        const uint32_t *d = tf_taskfile_deps(tf, i, &nd);
        for (uint32_t k = 0; k < nd && !rc; k++)
            rc = tf_depend_kind(rt, d[k], i, tf_taskfile_dep_kind(tf, i, k));
    }
    /* All of it or nothing: an addition that failed half-way runs no part. */
    if (rc) {
        tf_batch_cancel(rt);
        return rc;
    }
    return tf_batch_end(rt);
}

/* The farm took more (intake.c): submit them, and grown is its list. */
static int grow(void *user, tf_taskfile *grown)
{
    farm *F = user;
    int rc = submit_entries(F, grown, F->tf.n);
    if (rc)
        return rc;
    F->pr.total += grown->ntasks - F->tf.ntasks;
    tf_taskfile_free(&F->tf);
    F->tf = *grown;
    return 0;
}

/*
 * Make the placer. Binding the tasks of ranks that share cpus (e.g. ranks
 * mpirun did not bind) would stack them all on the same first cores, so the
 * default policy leaves them unbound then; --bind core asks for it anyway,
 * and with --bind none nothing is checked. Collective. Returns 0, or
 * nonzero after printing why.
 */
static int place_tasks(farm *F)
{
    bool overlap = false;
    int rc = 0;
    /* Every rank has the same options: all or none take part. */
    if (F->o.bind != TF_BIND_NONE)
        rc = cli_check_overlap(F->topo, F->rt, &overlap);
    tf_bind_policy pol = F->o.bind;
    if (!rc && overlap && !F->o.bind_given)
        pol = TF_BIND_NONE;
    if (!rc && F->rank == 0 && overlap && pol != F->o.bind)
        fprintf(stderr, "taskfarm: tasks of ranks that share cpus run "
                        "unbound; bind the ranks (mpirun --bind-to core, "
                        "srun --cpu-bind=cores) or force it with --bind %s\n",
                tf_bind_policy_name(F->o.bind));
    if (!rc)
        rc = tf_placer_new(F->topo, pol, &F->shell.placer);
    if (rc)
        fprintf(stderr, "taskfarm: rank %d: cannot place tasks: %s\n",
                F->rank, tf_strerror(rc));
    /* All go on, or none. */
    int any = rc != 0;
    tf_agree(F->rt, &any);
    return any;
}

/* The runtime's configuration: the same on every rank. */
static void configure(farm *F, tf_config *cfg)
{
    tf_config_init(cfg);
    cfg->slots = F->o.slots ? F->o.slots : (int)F->ncpus;
    cfg->main_runs_tasks = 0; /* children block a thread each */
    cfg->prefetch = 2;        /* shell tasks take ms: no need to hoard */
    cfg->no_steal = F->o.no_steal;
    cfg->rank0_runs_tasks = !F->o.scheduler_only;
    cfg->heartbeat_ms =
        F->o.heartbeat_ms > INT_MAX ? INT_MAX : (int)F->o.heartbeat_ms;
    cfg->checkpoint_every_ms =
        F->o.checkpoint_ms > INT_MAX ? INT_MAX : (int)F->o.checkpoint_ms;
    cfg->on_halt = cli_shell_halt;
    cfg->on_lost = F->o.standby ? cli_shell_lost : NULL;
    cfg->halt_user = &F->shell;
    cfg->log_level = F->o.verbose >= 2 ? TF_LOG_DEBUG
                     : F->o.verbose   ? TF_LOG_INFO
                                      : TF_LOG_WARN;
    cfg->log_fn = log_line;
    cfg->log_user = F;
    /* Rank 0's: */
    F->pr.o = &F->o;
    /*
     * Under mpirun or srun rank 0's stderr is a pipe to the launcher even
     * when the user's is a terminal, which rank 0 cannot see: --progress.
     */
    F->pr.tty = (isatty(STDERR_FILENO) || F->o.progress) && !F->o.quiet;
    cfg->on_event = on_event;
    cfg->event_user = F;
    cfg->tick_ms = F->pr.tty ? 250 : 500; /* also the signal latency */
    cfg->name_task = name_task;
    cfg->name_user = F;
    if (!F->o.no_trace) {
        snprintf(F->trace_path, sizeof F->trace_path, "%s/trace.json",
                 F->o.outdir);
        cfg->trace_path = F->trace_path;
    }
}

/*
 * Rank 0, before anything is created: a task wider than every rank's slots
 * could never start, and used to fail at run time (status -14) after all
 * the others had run. Named here with its line. Returns -1 or EXIT_USAGE.
 */
static int too_wide(farm *F)
{
    unsigned widest = 0;
    for (int r = 0; r < F->size; r++) /* rank 0 may have none */
        if (tf_rank_slots(F->rt, r) > widest)
            widest = tf_rank_slots(F->rt, r);
    F->in.widest = widest;
    const tf_taskfile *tf = &F->tf;
    if (tf->max_cores <= widest)
        return -1;
    tf_tferr err = {0};
    uint32_t bad =
        cli_too_wide(tf, 0, widest, F->o.taskfile, 0, 5, &err);
    for (size_t i = 0; i < err.n; i++)
        fprintf(stderr, "%s\n", err.msgs[i].text);
    tf_tferr_free(&err);
    if (bad > 5)
        fprintf(stderr, "%s: ... and %u more such lines\n", F->o.taskfile,
                (unsigned)(bad - 5));
    fprintf(stderr, "taskfarm: nothing was run. Give the ranks more slots "
                    "(--slots, or bind each rank to more cores: srun "
                    "--cpus-per-task, mpirun --map-by ...:PE=N) or ask for "
                    "fewer cores\n");
    return EXIT_USAGE;
}

/* Every rank takes the largest verdict (-1: go on). */
static int agreed(farm *F, int verdict)
{
    return tf_agree(F->rt, &verdict) ? EXIT_RUNTIME : verdict;
}

/*
 * Rank 0 validates the file and prepares the outdir and the state, once
 * it knows that every rank sees the outdir; every rank learns the
 * verdict. Returns -1 to go on, else the exit status.
 */
static int prepare(farm *F)
{
    int verdict = -1, mode = TF_STATE_NEW;
    if (F->rank == 0) {
        verdict = cli_intake_load(&F->in, &F->o, &F->tf);
        if (verdict < 0)
            verdict = EXIT_ALL_OK;
        /* TF_TASKFILE_OUTPUT_* are cli_output_mode's, from 1. */
        if (!F->o.output_given && F->tf.output)
            F->o.output = (cli_output_mode)(F->tf.output - 1);
        if (verdict == EXIT_ALL_OK && (verdict = too_wide(F)) < 0)
            verdict = cli_outdir_lock(F->o.outdir, F->size > 1, F->heir,
                                      &F->lock_fd);
    }
    if (F->size > 1 && (verdict = agreed(F, verdict)) < 0)
        verdict = cli_outdir_shared(F->rt, F->o.outdir);
    if (F->size > 1)
        verdict = agreed(F, verdict);
    if (verdict < 0) {
        /* The shell: --shell, else the file's @shell, else bash. */
        char where[PATH_MAX + 32] = "";
        const char *chosen = F->o.shell;
        if (!chosen && F->rank == 0 && F->tf.shell) {
            chosen = F->tf.shell;
            snprintf(where, sizeof where, "@shell, %s:%u", F->o.taskfile,
                     (unsigned)F->tf.shell_line);
        }
        verdict = cli_shell_choose(&F->shell, F->rt, chosen, where);
        if (F->size > 1)
            verdict = agreed(F, verdict);
    }
    if (verdict < 0 && F->size > 1) {
        /* Rank 0's output mode (it read @output): the largest of it and -1s. */
        int mode_of_0 = F->rank == 0 ? (int)F->o.output : -1;
        if (tf_agree(F->rt, &mode_of_0))
            verdict = EXIT_RUNTIME;
        else
            F->o.output = (cli_output_mode)mode_of_0;
    }
    if (F->rank == 0 && verdict < 0)
        verdict = cli_outdir_prepare(&F->o, &F->jl, &mode);
    /* Argument mode's task file, for status, add and --resume to read. */
    if (F->rank == 0 && verdict < 0 && F->o.args.argv)
        verdict = cli_args_save(&F->o.args, F->in.kept->p);
    if (F->rank == 0 && verdict < 0)
        verdict = cli_output_prepare(F->o.output, F->o.outdir, F->o.resume);
    if (F->rank == 0 && verdict < 0)
        verdict = cli_intake_prepare(F->o.outdir, F->o.resume);
    if (F->rank == 0 && verdict < 0 && tf_use_state(F->rt, F->o.outdir, mode)) {
        fprintf(stderr, "taskfarm: out of memory\n");
        verdict = EXIT_RUNTIME;
    }
    /* Workers write into OUTDIR/out, which rank 0 has made by now. */
    snprintf(F->shell.out_dir, sizeof F->shell.out_dir, "%s/out",
             F->o.outdir);
    return agreed(F, verdict);
}

/*
 * A worker gave up on rank 0 (heartbeats): the run is incomplete, and the
 * status file, rank 0's, still says "running". Say "error" there (the
 * outdir is on a shared file system), so that `taskfarm status` and a
 * batch script reading it tell the truth. And under Open MPI's
 * --enable-recovery, where mpirun exits 0 whatever the ranks return (even
 * after MPI_Abort), a worker whose parent is mpirun signals it, so that the
 * job too ends non-zero (mpirun exits 1); a worker under orted, on another
 * host, leaves that to one on mpirun's (docs/fault-tolerance.md).
 */
static void rank0_lost(farm *F)
{
    tf_runstate rs;
    if (!tf_runstate_read(F->o.outdir, &rs) && !strcmp(rs.state, "running")) {
        snprintf(rs.state, sizeof rs.state, "error");
        rs.updated_ns = cli_now_ns();
        tf_runstate_write(F->o.outdir, &rs);
    }
    const char *rec = getenv("OMPI_MCA_orte_enable_recovery");
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)getppid());
    FILE *f = rec && !strcmp(rec, "1") ? fopen(path, "r") : NULL;
    if (f) {
        if (fgets(comm, sizeof comm, f))
            comm[strcspn(comm, "\n")] = 0;
        fclose(f);
    }
    if (!strcmp(comm, "mpirun") || !strcmp(comm, "orterun") ||
        !strcmp(comm, "mpiexec"))
        kill(getppid(), SIGTERM);
}

/* The exit status tf_run's rc makes. */
static int verdict_of(farm *F, int rc)
{
    int status = rc == 0              ? EXIT_ALL_OK
                 : rc == TF_EFAILED    ? EXIT_SOME_FAILED
                 : rc == TF_EDEADLINE  ? EXIT_RESUMABLE
                                       : EXIT_RUNTIME;
    if (rc == TF_EDEADLINE) /* also after an extension that came too late */
        F->out_of_time = true;
    /*
     * A signal that came as the last task ended stopped nothing, unless
     * the farm still followed its file: that ends only with @end.
     */
    if (F->stopped_by && (status == EXIT_SOME_FAILED ||
                          (status == EXIT_ALL_OK && F->o.follow &&
                           !F->in.closed)))
        status = EXIT_RESUMABLE;
    /*
     * A halt on successes, or on ends with none failed, reached what it
     * was asked for; the tasks it kept from starting are no failures
     * (GNU parallel exits 0 then too). --resume runs them.
     */
    if (F->halted_by_option && status == EXIT_SOME_FAILED &&
        (F->o.halt.why == CLI_HALT_SUCCESS ||
         (F->o.halt.why == CLI_HALT_DONE && !F->pr.failed)))
        status = EXIT_ALL_OK;
    return status;
}

/*
 * Rank 0: the run's final messages and status file, for tf_run's rc and
 * the exit status it makes. Returns the exit status.
 */
static int report(farm *F, int rc, int status)
{
    cli_progress *p = &F->pr;
    tf_stats st;
    tf_get_stats(F->rt, &st);
    int e = F->joblog_err ? F->joblog_err : cli_joblog_flush(&F->jl);
    if (e) {
        fprintf(stderr, "taskfarm: cannot write %s/joblog.tsv: %s\n",
                F->o.outdir, strerror(e));
        status = EXIT_RUNTIME;
    }
    /* The trace is a whole document after tf_run; a write error was logged. */
    if (st.trace_error)
        status = EXIT_RUNTIME;
    /* How the state was saved is an internal, for -v. */
    if (rc != TF_EIO && F->o.verbose && st.checkpoints)
        fprintf(stderr, "taskfarm: state saved in %s (%llu snapshot%s, "
                        "dispatch paused %.1f ms at most)\n",
                F->o.outdir, (unsigned long long)st.checkpoints,
                st.checkpoints == 1 ? "" : "s",
                st.checkpoint_pause_max_ns / 1e6);
    if (st.lost_ranks)
        fprintf(stderr, "taskfarm: %llu rank%s lost during the run; their "
                        "tasks ran elsewhere. If mpirun waits for a dead "
                        "node, it is ended (exit 137): taskfarm status %s "
                        "tells how the run ended\n",
                (unsigned long long)st.lost_ranks,
                st.lost_ranks > 1 ? "s" : "", F->o.outdir);
    cli_output_follow(&F->shell.output, p);
    double secs = (cli_now_ns() - p->t0_ns) / 1e9;
    cli_progress_status(p, F->rt,
                        status == EXIT_ALL_OK        ? "done"
                        : status == EXIT_SOME_FAILED ? "failed"
                        : status == EXIT_RESUMABLE   ? "stopped"
                                                     : "error");
    cli_progress_summary(p, secs);
    /* The cause was reported when it happened; name it again last. */
    if (status == EXIT_RUNTIME)
        fprintf(stderr, "taskfarm: run ended with an error: %s\n",
                rc == TF_EIO ? "the run's state in the outdir could not be "
                               "read or written (see above): fix the cause "
                               "and finish with --resume, or start over "
                               "with --force"
                : rc != 0 && rc != TF_EFAILED ? tf_strerror(rc)
                                              : "see above");
    if (status == EXIT_RESUMABLE && F->stopped_by)
        fprintf(stderr, "taskfarm: stopped by %s; finish with: taskfarm "
                        "run --resume%s -o %s %s\n",
                strsignal(F->stopped_by), F->o.follow ? " --follow" : "",
                F->o.outdir, F->o.taskfile);
    else if (status == EXIT_RESUMABLE && F->out_of_time)
        cli_walltime_report(&F->wt, &F->o, p);
    return status;
}

/*
 * After tf_run: the exit status, the final messages (written at the run's
 * end already, unless tf_run's verdict changed since).
 */
static int finish(farm *F, int rc)
{
    int status = verdict_of(F, rc);
    if (F->rank != 0 && rc == TF_ELOST && F->o.standby) {
        F->lost0 = true; /* cli_run goes on: succeed */
        return EXIT_ALL_OK;
    }
    if (F->rank != 0) {
        if (rc == TF_ELOST)
            rank0_lost(F);
        /*
         * Only rank 0 knows whether a signal stopped the run, and mpirun
         * reports the first non-zero exit it sees: a worker that has
         * nothing of its own to report exits 0 and leaves the verdict to
         * rank 0. (No collective here: a rank may be dead.)
         */
        return status == EXIT_RUNTIME ? status : EXIT_ALL_OK;
    }
    /* Another rank schedules the run now and writes its files. */
    if (rc == TF_EDEPOSED) {
        fprintf(stderr, "taskfarm: rank 0 was silent too long and another "
                        "rank took over the run (a later term in %s): this "
                        "process writes nothing more\n",
                F->o.outdir);
        return EXIT_RUNTIME;
    }
    if (F->ended && rc == F->ended_rc)
        return F->ended_status;
    return report(F, rc, status);
}

/* Everything between start-up and tf_finalize. Returns the exit status. */
static int farm_run(farm *F)
{
    int verdict = prepare(F);
    if (verdict >= 0)
        return verdict;
    for (int r = 0; r < F->size; r++)
        F->pr.total_slots += tf_rank_slots(F->rt, r);
    if (place_tasks(F))
        return EXIT_RUNTIME;
    int e = cli_output_init(&F->shell.output, F->o.output, F->o.outdir,
                            F->rank, F->o.resume || F->o.force);
    if (e)
        fprintf(stderr, "taskfarm: rank %d: cannot write tasks' output in "
                        "%s: %s\n",
                F->rank, F->o.outdir, strerror(e));
    F->output_ready = !e;
    int failed = e != 0;
    if (tf_agree(F->rt, &failed) || failed)
        return EXIT_RUNTIME;
    if (F->heir && gather_claims(F))
        return EXIT_RUNTIME;
    tf_fn_id fn;
    int rc = tf_register(F->rt, "shell", cli_shell_task, &F->shell, &fn);
    if (!rc && F->rank == 0) {
        F->pr.host = tf_rank_host(F->rt, 0);
        F->pr.ranks = F->size;
        F->pr.total = F->tf.ntasks;
        F->pr.next_status = F->o.status_every;
        /* A followed file grows: its layout cannot depend on its size. */
        F->blocked = F->o.follow || cli_output_blocked(&F->tf);
        cli_output_describe(F->o.output, F->blocked, F->pr.output,
                            sizeof F->pr.output);
        F->in.pr = &F->pr;
        F->in.tf = &F->tf;
        F->in.grow = grow;
        F->in.user = F;
        F->pr.follow = F->o.follow;
        F->pr.taken = F->in.taken;
        /*
         * Families are numbered over the file as it is: tasks added later
         * bring their @est, not a family.
         */
        cli_walltime_init(&F->wt, &F->o, &F->tf, &F->shell.procs);
        rc = tf_set_deadline(F->rt, F->wt.stop_ns);
        if (!rc)
            rc = submit_entries(F, &F->tf, 0);
        free_claims(F);
        cli_walltime_free(&F->wt); /* the families are the runtime's now */
        if (!rc)
            count_resumed(F);
        /* Open until @end, add --end or a signal. */
        if (!rc && F->o.follow && !F->in.closed)
            rc = tf_hold_open(F->rt, 1);
    }
    /* All start, or none. */
    int bad = rc != 0;
    if (tf_agree(F->rt, &bad) || bad) {
        if (rc)
            fprintf(stderr, "taskfarm: cannot start: %s\n", tf_strerror(rc));
        return EXIT_RUNTIME;
    }
    F->pr.t0_ns = cli_now_ns();
    F->ended = false;
    if (F->rank == 0)
        cli_progress_status(&F->pr, F->rt, "running");
    return finish(F, tf_run(F->rt));
}

/*
 * Rank 0 was lost and --standby: the survivors go on without it
 * (tf_takeover). The lowest becomes rank 0 and resumes the run from the
 * state and joblog in the outdir, as `taskfarm run --resume` would; the
 * others work for it. Returns the exit status, as farm_run.
 */
static int succeed(farm *F)
{
    F->lost0 = false;
    int rc = tf_takeover(&F->rt, F->o.outdir);
    if (rc == TF_EDEPOSED)
        return EXIT_ALL_OK; /* the others went on without this rank */
    if (rc) {
        fprintf(stderr, "taskfarm: rank %d: no rank could take over from "
                        "the lost rank 0: %s\n",
                F->rank, tf_strerror(rc));
        rank0_lost(F);
        return EXIT_RUNTIME;
    }
    F->heir = true;
    F->rank = F->shell.rank = tf_rank(F->rt);
    F->size = tf_size(F->rt);
    /* What the ended run left: its tasks' output, placement, a halt. */
    if (F->output_ready)
        cli_output_destroy(&F->shell.output);
    F->output_ready = false;
    tf_placer_free(F->shell.placer);
    F->shell.placer = NULL;
    tf_proc_table_reset(&F->shell.procs);
    F->pr.total_slots = 0;
    F->o.resume = true;
    F->o.force = false;
    return farm_run(F);
}

int cli_run(int argc, char **argv)
{
    farm F;
    memset(&F, 0, sizeof F);
    F.lock_fd = -1;
    F.in.fd = -1;
    int status = cli_run_opts(argc, argv, &F.o);
    if (status >= 0)
        return status;
    F.shell.o = &F.o;
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
    status = EXIT_RUNTIME;
    int rc = tf_topo_load(&F.topo);
    if (rc) {
        fprintf(stderr, "taskfarm: cannot read the machine's topology: %s\n",
                tf_strerror(rc));
        return status;
    }
    tf_topo_cpus(F.topo, &F.ncpus);
    if (tf_proc_table_init(&F.shell.procs)) {
        fprintf(stderr, "taskfarm: out of memory\n");
        goto out_with_topo;
    }
    pthread_mutex_init(&F.shell.held_mu, NULL);
    /* Kills this rank's tasks if it dies; the pipe closes when it exits. */
    cli_guard_start(&F.shell.procs);
    tf_config cfg;
    configure(&F, &cfg);
    rc = tf_boot(&argc, &argv, TF_BOOT_OWN_PROCESS, &cfg, &F.rt);
    if (rc) {
        fprintf(stderr, "taskfarm: cannot start: %s\n", tf_strerror(rc));
        status = rc == TF_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
        goto out_with_procs;
    }
    F.rank = F.shell.rank = tf_rank(F.rt);
    F.size = tf_size(F.rt);
    /*
     * --standby: a worker keeps its successes for as long as a take-over
     * may take to ask for them (noticing, agreeing, the lease: 1 to 3
     * heartbeat periods), in case their reports died with rank 0.
     */
    if (F.o.standby && F.rank != 0)
        F.shell.keep_ns = 4 * F.o.heartbeat_ms * 1000000ull + 10000000000ull;
    status = farm_run(&F);
    while (F.lost0)
        status = succeed(&F);
    cli_shell_drop_held(&F.shell);
    tf_stats st;
    tf_get_stats(F.rt, &st);
    cli_joblog_close(&F.jl);
    if (F.lock_fd >= 0)
        close(F.lock_fd);
    tf_finalize(&F.rt);
    /*
     * With a rank dead (or written off), MPI was not finalised: Open MPI
     * 4.1's MPI_Finalize can spin forever waiting for it. Everything is
     * written and closed by now.
     */
    if (st.lost_ranks) {
        fflush(NULL);
        _exit(status);
    }
    if (F.output_ready)
        cli_output_destroy(&F.shell.output);
out_with_procs:
    free(F.stop_ended);
    tf_placer_free(F.shell.placer);
    tf_proc_table_destroy(&F.shell.procs);
    pthread_mutex_destroy(&F.shell.held_mu);
out_with_topo:
    tf_topo_free(F.topo);
    tf_taskfile_free(&F.tf);
    cli_intake_free(&F.in);
    cli_args_free(&F.o.args);
    return status;
}
