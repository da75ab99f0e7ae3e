/* taskfarm run's parts, one file each: options, the shell task, the outdir, the joblog, progress; run.c drives them through the library. */
#ifndef TF_CLI_FARM_H
#define TF_CLI_FARM_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "exec/proc.h"
#include "place/bind.h"
#include "taskfarm_runtime.h"

/* ---- opts.c ---------------------------------------------------------- */

/* Where tasks' stdout and stderr go (--output; output.c). */
typedef enum cli_output_mode {
    CLI_OUT_FILES, /* OUTDIR/out/ID.out and .err, made only when written */
    CLI_OUT_TAG,   /* OUTDIR/tagged.out and .err, lines "ID\tline" */
    CLI_OUT_NONE   /* discarded */
} cli_output_mode;

/*
 * --halt, GNU parallel's: once `n` tasks (or n% of the run's tasks) have
 * failed, succeeded or ended in this run (`why`), stop the run: now (end
 * running tasks) or soon (let them finish). when 0: never.
 */
enum { CLI_HALT_SOON = 1, CLI_HALT_NOW = 2 };
enum { CLI_HALT_FAIL = 1, CLI_HALT_SUCCESS, CLI_HALT_DONE };
typedef struct cli_halt {
    uint8_t when, why;
    bool pct;
    uint32_t n;
    char text[32]; /* as parallel writes it: "now,fail=1", "soon,fail=10%" */
} cli_halt;

/* --halt's value (docs/taskfile.md, "Halting early"); false: not one. */
bool cli_halt_parse(const char *s, cli_halt *h);

/* Whether h's threshold is reached by these counts of this run. */
bool cli_halt_due(const cli_halt *h, uint64_t failed, uint64_t succeeded,
                  uint64_t total);

typedef struct run_opts {
    const char *taskfile; /* argument mode: args.path, written by the run */
    cli_args args;        /* argument mode's command line, or argv NULL */
    const char *outdir;
    const char *shell; /* --shell; NULL: the file's @shell, else bash */
    bool resume, force, quiet, no_steal, no_trace;
    bool follow; /* --follow: take lines appended to the task file */
    bool standby; /* --standby: survivors take over from a lost rank 0 */
    cli_halt halt;          /* --halt, --halt-on-error */
    bool scheduler_only; /* rank 0 of several only schedules */
    bool progress; /* --progress: the live line even when stderr is no TTY */
    int verbose; /* -v: the runtime's info notes, -vv: its debug notes */
    int retries;            /* default for tasks without @retries */
    unsigned timeout_ms;    /* default for tasks without @timeout; 0 none */
    unsigned grace_ms;      /* SIGTERM to SIGKILL */
    unsigned heartbeat_ms;  /* silence after which a rank is written off */
    unsigned checkpoint_ms; /* snapshot period; 0: at the end only */
    int slots;              /* 0: the cores this rank is bound to */
    double status_every;    /* seconds between status lines off a terminal */
    tf_bind_policy bind;    /* --bind; core unless given */
    cli_output_mode output; /* --output, else the file's @output, else files */
    bool output_given;
    bool bind_given;
    uint64_t deadline_ns;   /* --deadline: the allocation's end (wall ns) */
    bool no_deadline;       /* --deadline none: not even Slurm's */
    unsigned margin_ms;     /* --deadline-margin: stop this much before it */
} run_opts;

/* Returns -1 when the options are fine, else the exit status. */
int cli_run_opts(int argc, char **argv, run_opts *o);

/*
 * --deadline's value: "none" (*none), "+DURATION" from now, "@EPOCH"
 * (seconds), or a local date and time YYYY-MM-DDTHH:MM[:SS] (a blank may
 * stand for the T); *ns: CLOCK_REALTIME ns (walltime.c). false: neither.
 */
bool cli_deadline_parse(const char *s, uint64_t *ns, bool *none);
void cli_run_usage(FILE *out);

/* ---- output.c: tasks' output ----------------------------------------- */

/* Task-file lines per directory of out/ when a file has more of them. */
#define CLI_OUT_BLOCK 1000

/* A file a task's stream is written into before it has a name. */
typedef struct cli_scratch cli_scratch;
struct cli_scratch {
    int fd;     /* >= 3, O_RDWR, close-on-exec */
    char *name; /* the named fallback's path; NULL for an O_TMPFILE */
};

/*
 * One rank's output: the scratch files its tasks write into, the tagged
 * stream's appenders and, on rank 0, its follower. Thread-safe where it
 * says so; fields are output.c's.
 */
typedef struct cli_output {
    cli_output_mode mode;
    char dir[PATH_MAX];  /* OUTDIR/out */
    int rank;
    bool stale;          /* an earlier run's files may be there */
    pthread_mutex_t mu;  /* the free list and the name counter */
    cli_scratch *free;
    size_t nfree, cap;
    unsigned next_name;
    int tag_fd[2];       /* OUTDIR/tagged.out and .err, O_APPEND; tag */
    int follow_fd[2];    /* rank 0: the same, read */
    long long follow_off[2];
} cli_output;

/* A task's two scratch files, stdout then stderr. */
typedef struct cli_task_output {
    cli_scratch s[2];
} cli_task_output;

const char *cli_output_mode_name(cli_output_mode m);
bool cli_output_mode_parse(const char *s, cli_output_mode *m);

/*
 * Whether tasks' files go in one directory per CLI_OUT_BLOCK task-file
 * lines (out/FIRST-LAST/): when the file has a line past CLI_OUT_BLOCK,
 * or @array lines and more than CLI_OUT_BLOCK entries. A run decides
 * once, at its start (--follow: always, as its file grows).
 */
bool cli_output_blocked(const tf_taskfile *tf);

/*
 * The first line of the block whose directory holds task i's files (by
 * its line; an @array element by its place in the list, i + 1), or 0 when
 * they go in out/ itself (not blocked).
 */
uint32_t cli_output_block(const tf_taskfile *tf, uint32_t i, bool blocked);

/* Where a mode puts the output, for people (status, docs). */
void cli_output_describe(cli_output_mode m, bool blocked, char *buf,
                         size_t len);

/*
 * Rank 0, before the other ranks start: create the tagged stream's files
 * (truncated, unless resume). Returns -1, or EXIT_USAGE after saying why.
 */
int cli_output_prepare(cli_output_mode m, const char *outdir, bool resume);

/*
 * Every rank, once OUTDIR/out exists: ready to take tasks' output. stale:
 * an earlier run's files may be in out/ (--resume, --force), so a task
 * that writes nothing removes its name's file. Returns 0 or an errno value.
 */
int cli_output_init(cli_output *O, cli_output_mode m, const char *outdir,
                    int rank, bool stale);
void cli_output_destroy(cli_output *O);

/*
 * Thread-safe. Before a task: its scratch files (none with CLI_OUT_NONE),
 * and cli_output_spec sets the run's descriptors to them. Returns 0 or an
 * errno value (then run the task with its files' paths, as before).
 */
int cli_output_begin(cli_output *O, cli_task_output *t);
void cli_output_spec(const cli_task_output *t, tf_proc_spec *spec);

/*
 * Thread-safe. After the task (its leader reaped): what it wrote is linked
 * in as out/[FIRST-LAST/]ID.out and .err (block: cli_output_block), or
 * appended to the tagged stream; empty scratch files are kept for the next
 * task. stale: an earlier attempt's files may be there. lingering: some of
 * the task's processes outlive its leader (they may write later).
 */
void cli_output_end(cli_output *O, cli_task_output *t, const char *id,
                    uint32_t block, bool stale, bool lingering);

/* A task's scratch files closed unpublished (a command nobody adopted). */
void cli_output_discard(cli_task_output *t);

/*
 * Rank 0: show what the tagged stream gained since the last call on
 * stdout and stderr, whole lines only (p: the live line to break first).
 */
struct cli_progress;
void cli_output_follow(cli_output *O, struct cli_progress *p);

/* ---- shell.c: the task that runs one command, on any rank ------------- */

/*
 * A task a worker holds for rank 0's successor (--standby, shell.c): its
 * command left running when rank 0 was lost, or its success kept for a
 * while after it was reported (the report may have died with rank 0).
 */
typedef struct cli_held {
    char *id;                 /* the task's id */
    bool running, taken;      /* taken: adopted in this run */
    tf_proc_held proc;        /* running: the command */
    cli_task_output to;       /* running: its scratch files */
    uint32_t block;           /* running: its output's directory */
    uint64_t start_ns, end_ns; /* finished: CLOCK_REALTIME */
    uint64_t kept_ns;         /* finished: CLOCK_MONOTONIC, when kept */
} cli_held;

typedef struct cli_shell {
    const run_opts *o;
    tf_placer *placer;        /* chooses and binds each task's cores */
    tf_proc_table procs;
    cli_output output;        /* where the tasks' stdout and stderr go */
    char out_dir[PATH_MAX];   /* OUTDIR/out, where task output files go */
    char path[PATH_MAX];      /* the shell commands run under */
    int rank;
    /*
     * --standby: what this rank holds for a successor, under held_mu.
     * kept: successes in the order they ended (for keep_ns; 0: none kept,
     * e.g. on rank 0) and commands left running, as they come. held: what
     * this rank claimed at the start of a run after a take-over, sorted by
     * id for cli_shell_task to look up while `adopting`.
     */
    pthread_mutex_t held_mu;
    cli_held *kept, *held;
    size_t nkept, kept_cap, nheld;
    uint64_t keep_ns, aged_ns;
    _Atomic bool adopting;
} cli_shell;

/*
 * Collective: every rank takes rank 0's choice of shell (`chosen`: --shell,
 * else the task file's @shell, where: "tasks.txt:1"; NULL: the default,
 * bash) and finds it here (a path as it is, a name in PATH) into S->path.
 * The default falls back to /bin/sh, with a warning, on a node without
 * bash. Returns -1, or EXIT_USAGE on the ranks that cannot run it, after
 * saying why (exit statuses are agreed by the caller).
 */
int cli_shell_choose(cli_shell *S, tf_runtime *rt, const char *chosen,
                     const char *where);

/*
 * What a shell task reports back as its output; when it could not start,
 * the reason follows as text (tf_proc_result.spawn_error, NUL included).
 */
typedef struct shell_out {
    int32_t exitval, signal;
    uint8_t timed_out, halted;
    uint8_t spawn_failed; /* 0, or why it could not start: its errno */
    /*
     * 1: the command's own start and end follow (u64 CLOCK_REALTIME ns
     * each), before any text: a task adopted from the lost rank 0's run,
     * whose task ran for part of the command only (the joblog wants the
     * command's). 0: the task's times are the command's.
     */
    uint8_t times;
} shell_out;

/* Where the text after a shell_out starts. */
static inline size_t shell_out_text(const shell_out *so)
{
    return sizeof *so + (so->times ? 16 : 0);
}

/*
 * The task function (user: a cli_shell). Input: cli_shell_input's. Returns
 * the command's exit status (128 + signal when killed, 124 on a timeout
 * like timeout(1), 127 when it could not start).
 */
int cli_shell_task(tf_task_ctx *ctx, const void *in, size_t len, void *user);

/* on_halt: end every running command (user: a cli_shell). */
void cli_shell_halt(void *user);

/*
 * --standby. on_lost: leave every running command running for a
 * successor (tf_proc_detach_all); their tasks return. cli_shell_claims:
 * the ids of the tasks this rank holds, one "ID\tEND\n" line each (END:
 * when it ended, realtime ns; running: 18446744073709551615), into a new
 * *text ("" for none). cli_shell_drop_held: end the commands nobody
 * adopted and forget the kept successes (the end of a run). Held tasks
 * are adopted by cli_shell_task when their id comes again.
 */
void cli_shell_lost(void *user);
int cli_shell_claims(cli_shell *S, char **text);
void cli_shell_drop_held(cli_shell *S);

/*
 * The input of the task for (id, command): u32 timeout_ms, u32 block (its
 * output's directory: cli_output_block), "id\0command\0", into *buf (grown
 * as needed, *cap its size). Returns its length, 0 when memory is short.
 */
size_t cli_shell_input(char **buf, size_t *cap, uint32_t timeout_ms,
                       uint32_t block, const char *id, size_t id_len,
                       const char *cmd, size_t cmd_len);

/* ---- joblog.c: OUTDIR/joblog.tsv, GNU parallel's --joblog columns ------ */

/* A success row of an earlier joblog: (line, command) and its times. */
typedef struct jl_done {
    uint32_t line;
    uint64_t cmd_key; /* of the command alone */
    uint64_t start_ns, end_ns;
} jl_done;

typedef struct cli_joblog {
    FILE *f;
    jl_done *done; /* --resume: the earlier joblog's success rows, sorted */
    size_t ndone;
} cli_joblog;

/*
 * Open OUTDIR's joblog: appended to with resume (its success rows are
 * read, and a last row torn by a kill or a full disk is cut off), else
 * truncated with a header. Returns 0 or an errno value (*what: the step that failed).
 */
int cli_joblog_open(cli_joblog *jl, const char *dir, bool resume,
                    const char **what);

/*
 * One row per ended attempt (a shell task's output, or the runtime's
 * code), written through at once. Returns 0 or an errno value.
 */
int cli_joblog_row(cli_joblog *jl, const tf_run_event *ev, unsigned line,
                   const char *host, const char *cmd);

/* Whether the earlier joblog has a success row for (line, command). */
bool cli_joblog_was_done(const cli_joblog *jl, unsigned line, const char *cmd,
                         size_t cmd_len);

/* Flush; returns 0 or an errno value. */
int cli_joblog_flush(cli_joblog *jl);
void cli_joblog_close(cli_joblog *jl);

/* ---- outdir.c: the run's directory ---------------------------------- */

/*
 * Rank 0, in this order (each returns -1, or an exit status after printing
 * why). cli_outdir_lock: create OUTDIR, take the run lock (*lock_fd) and,
 * when several ranks share the run (token), write a token of it there;
 * an heir (a rank that took over from a lost rank 0) goes on when the lock
 * is still held, by that rank 0 if only stopped. cli_outdir_shared, on every rank
 * (collective) once the lock is taken: whether every rank reads that token
 * in OUTDIR (EXIT_USAGE on rank 0, naming the ranks that do not). Then
 * cli_outdir_prepare: refuse an earlier run's files unless resume or
 * force says so, create OUTDIR/out and open the joblog; *state_mode gets
 * the TF_STATE_* mode for tf_use_state.
 */
int cli_outdir_lock(const char *dir, bool token, bool heir, int *lock_fd);
int cli_outdir_shared(tf_runtime *rt, const char *dir);
int cli_outdir_prepare(const run_opts *o, cli_joblog *jl, int *state_mode);

/* ---- progress.c: counters, the live line, the status file, the summary */

typedef struct cli_progress {
    const run_opts *o;
    const char *host;           /* rank 0's */
    int ranks;
    uint64_t total, total_slots;
    uint64_t done, failed, skipped, retried, resumed;
    uint64_t interrupted; /* tasks whose attempt a stop ended */
    uint64_t not_started; /* tasks a stop kept from starting */
    uint64_t not_needed;  /* @afternotok tasks with nothing to handle */
    uint64_t busy_slot_ns;      /* sum over attempts of runtime x cores */
    uint64_t t0_ns;
    bool follow;    /* the status file says how much of the file was taken */
    uint64_t taken;
    bool tty;
    double next_status;
    int line_len;               /* characters of the live line on the terminal */
    char output[256];           /* where tasks' output goes, for the status */
} cli_progress;

/* Now, CLOCK_REALTIME, in ns. */
uint64_t cli_now_ns(void);

/* Before a message on stderr: end the live line, if one is there. */
void cli_progress_break(cli_progress *p);

/* A tick: the live line on a terminal, else a status line now and then. */
void cli_progress_tick(cli_progress *p, tf_runtime *rt);

/* OUTDIR/status with `state` (running, done, failed, stopped, error). */
void cli_progress_status(cli_progress *p, tf_runtime *rt, const char *state);

/* The last line: counts, time, ranks, slots, utilisation, the joblog. */
void cli_progress_summary(cli_progress *p, double secs);

/* ---- walltime.c: the deadline, the Slurm job's end, tasks' families --- */

/*
 * Rank 0's walltime (docs/taskfile.md, "Walltime"): when the allocation ends,
 * from --deadline or, under Slurm, the job's end (the earlier), and when
 * the farm must have stopped, that less --deadline-margin.
 */
typedef struct cli_walltime {
    uint64_t end_ns;  /* the allocation's end, wall-clock ns; 0: none */
    uint64_t stop_ns; /* end_ns less the margin (tf_set_deadline); 0: none */
    bool slurm;       /* end_ns is the Slurm job's: asked again at the stop */
    char src[64];     /* "the deadline", "the end of Slurm job 12" */
    /*
     * Per task of the file, its family (tf_task_desc.family): the tasks of
     * one line when it gave several, else those whose commands differ only
     * in numbers; 0 for a task alike to no other. NULL without stop_ns.
     */
    uint32_t *family;
} cli_walltime;

/*
 * Rank 0, before submitting: the end (Slurm's: SLURM_JOB_END_TIME where
 * set, else one squeue, run through procs), the stop, the families. A
 * Slurm end that cannot be learnt is warned of; the run goes on without.
 */
void cli_walltime_init(cli_walltime *W, const run_opts *o,
                       const tf_taskfile *tf, tf_proc_table *procs);

/*
 * At TF_RUN_DEADLINE: under Slurm, ask for the job's end again (an
 * administrator may have extended it); true when it is later and the
 * runtime was given the new deadline.
 */
bool cli_walltime_extend(cli_walltime *W, const run_opts *o,
                         tf_proc_table *procs, tf_runtime *rt);

/* The stop's line: what was not started or interrupted, and why. */
void cli_walltime_report(const cli_walltime *W, const run_opts *o,
                         const cli_progress *p);

void cli_walltime_free(cli_walltime *W);
/* ---- intake.c: rank 0 takes more tasks while the run runs ------------ */

/*
 * What a running farm takes besides its task file: additions that
 * `taskfarm add` puts in OUTDIR/incoming/ (all or nothing, recorded in
 * OUTDIR/added/N.tasks before they are submitted), and with --follow the
 * lines appended to the task file (each refused alone, recorded in
 * OUTDIR/rejected). Both are validated as part of the farm's whole list
 * (tasklist.c). Rank 0's thread only; fields are intake.c's.
 */
typedef struct cli_intake {
    const run_opts *o;
    cli_progress *pr;     /* broken before a message */
    const tf_taskfile *tf; /* the farm's list as parsed, grown by `grow` */
    uint32_t nadded;      /* additions recorded in OUTDIR/added */
    unsigned widest;      /* the most slots of a rank: a wider task waits for ever */
    bool closed;          /* @end, add --end or a followed pipe's end: no more */
    int fd;               /* the followed file, -1: none */
    bool pipe;            /* read(), not pread() at `taken` */
    int fd_flags;         /* a pipe's: given back (not O_NONBLOCK) at the end */
    uint64_t taken;       /* bytes of the followed file taken (whole lines) */
    char *pend;           /* a pipe's bytes read, not yet a whole line */
    size_t npend, pcap;
    /*
     * The list's text, when it cannot be read again (standard input, a
     * pipe) or grows line by line (--follow); else NULL: the task file and
     * OUTDIR/added are read again for an addition.
     */
    cli_tasklist *kept;
    uint64_t next_ns; /* the next look (after one that parsed: spaced out) */
    bool parsed;      /* this look parsed the farm's list */
    /*
     * Submit the entries of `grown` past the farm's and, on success, make
     * it the farm's list (taking it over). Returns 0 or a TF_E* code.
     */
    int (*grow)(void *user, tf_taskfile *grown);
    void *user;
} cli_intake;

/*
 * Rank 0, at start-up, before the outdir is prepared: read and validate
 * the task file into *tf as `run` takes it: whole, or with --follow its
 * whole lines (with --resume --follow, as far as the stopped run took);
 * with --resume, its additions after it and the lines it refused emptied.
 * In argument mode (o->args), the task file it makes, kept (in->kept)
 * for cli_args_save. Errors are printed. Returns -1 to go on, else the
 * exit status.
 */
int cli_intake_load(cli_intake *in, run_opts *o, tf_taskfile *tf);

/*
 * Rank 0, once the outdir is the run's: an empty OUTDIR/incoming (what
 * is there is a stopped run's), and unless resume no additions and
 * refused lines of an earlier run (--force). Returns -1, or EXIT_USAGE
 * after saying why.
 */
int cli_intake_prepare(const char *outdir, bool resume);

/* Rank 0, at each tick: additions, appended lines. */
void cli_intake_tick(cli_intake *in, tf_runtime *rt);

void cli_intake_free(cli_intake *in);

/*
 * Messages into err for the entries of tf from `from` on that ask for more
 * cores than `widest` (they could never start): "NAME:LINE: @cores=N, but
 * no rank runs more than W tasks at once", lines less shift, at most max
 * of them. Returns how many such entries there are.
 */
uint32_t cli_too_wide(const tf_taskfile *tf, uint32_t from, unsigned widest,
                      const char *name, uint32_t shift, uint32_t max,
                      tf_tferr *err);

#endif
