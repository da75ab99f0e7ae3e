/* OUTDIR/status: the one-screen state of a run, written by rank 0 and read by `taskfarm status`. */
#ifndef TF_CLI_RUNSTATE_H
#define TF_CLI_RUNSTATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A text file of "key value" lines, rewritten whole (to status.tmp, then
 * renamed over status) on every progress tick and at the end, so a reader
 * never sees half of it. The format is in docs/taskfile.md.
 */
typedef struct tf_runstate {
    char state[16]; /* running, done, failed, error */
    char host[64];  /* where rank 0 runs */
    char taskfile[512]; /* as given to `run` */
    char cwd[1024];     /* where `run` started: taskfile is relative to it */
    char output[256]; /* where tasks' output goes (cli_output_describe) */
    pid_t pid; /* rank 0's */
    int ranks;
    uint64_t slots, total, done, resumed, failed, skipped, running;
    uint64_t not_needed; /* @afternotok tasks with nothing to handle */
    uint64_t interrupted, not_started; /* by a stop: to run on --resume */
    uint64_t started_ns, updated_ns; /* CLOCK_REALTIME */
    /*
     * run --follow: it follows its task file, and has taken the first
     * `taken` bytes of it (whole lines); `taken` is written only then.
     */
    bool follow;
    uint64_t taken;
} tf_runstate;

/* Returns 0 or an errno value. */
int tf_runstate_write(const char *outdir, const tf_runstate *rs);
/* Returns 0, ENOENT (no run there), EINVAL (not a status file) or errno. */
int tf_runstate_read(const char *outdir, tf_runstate *rs);

#endif
