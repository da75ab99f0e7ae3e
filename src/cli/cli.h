/* Shared by the taskfarm subcommands: exit statuses, reading files, loading a task file. */
#ifndef TF_CLI_CLI_H
#define TF_CLI_CLI_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/taskfile.h"
#include "exec/proc.h"
#include "place/topo.h"
#include "taskfarm_runtime.h"

/* Exit statuses, from design.md's command-line contract. */
enum exit_status {
    EXIT_ALL_OK = 0,
    EXIT_SOME_FAILED = 1, /* some tasks failed or were skipped */
    EXIT_USAGE = 2,       /* usage or task-file error: nothing ran */
    EXIT_RUNTIME = 3,
    EXIT_RESUMABLE = 75, /* stopped early by a signal */
};

/* A file's bytes, mapped when it is a regular file, else read into memory. */
typedef struct file_text {
    char *p;
    size_t len;
    bool mapped;
} file_text;

/* Read a whole file; returns 0 or an errno value. */
int cli_read_file(const char *path, file_text *out);
void cli_file_text_free(file_text *ft);

/*
 * Read and validate a task file. Prints every error, naming file and line,
 * to stderr. Returns EXIT_ALL_OK with *tf filled, EXIT_USAGE (bad or
 * unreadable file) or EXIT_RUNTIME (out of memory).
 */
int cli_load_taskfile(const char *path, tf_taskfile *tf);

/*
 * After tf_taskfile_parse returned rc (not 0): print err's messages to
 * stderr, each through show(m, user) (NULL: as they are), then whether
 * there were too many, and for rc other than TF_EINVAL its reason, both
 * naming `name`. Frees err. Returns EXIT_USAGE or EXIT_RUNTIME.
 */
int cli_parse_errors(int rc, tf_tferr *err, const char *name,
                     void (*show)(const tf_tferr_msg *m, void *user),
                     void *user);

/*
 * The orphan guard (guard.c). cli_guard_start spawns this binary as
 * `taskfarm __guard` and sets t's guard_slots and guard_cap to the slots it
 * shares with it; returns 0, or -1 (t unchanged) after a warning on stderr,
 * or when TASKFARM_GUARD=0. It holds a pipe's write end open, unwritten,
 * until this process ends. cli_guard_main is that process: main() calls it
 * first thing.
 */
#define CLI_GUARD_ARG "__guard"
int cli_guard_start(tf_proc_table *t);
int cli_guard_main(void);

/*
 * Argument mode (argmode.c): `COMMAND... ::: ARGS :::: FILES`, GNU
 * parallel's, made into a task file of one line per job (job N on line N,
 * so its id is N). A command line is in argument mode when a word from
 * COMMAND on is an input-source marker: :::, :::+, ::::, ::::+.
 */
#define CLI_ARGS_FILE "argtasks.txt" /* that task file, in the outdir */

typedef struct cli_args {
    char **argv; /* from COMMAND's first word (or the first marker) on */
    int argc;
    int pos0;    /* argv[0]'s place among the words after `taskfarm` */
    char *text;  /* the task file made of them, once loaded */
    size_t len;
    char path[PATH_MAX + 16]; /* run: OUTDIR/CLI_ARGS_FILE */
} cli_args;

/*
 * Whether argv[i..argc) holds a marker: then *A takes argv from i on
 * (the subcommand's argv, argv[0] its name) and true.
 */
bool cli_args_from(int argc, char **argv, int i, cli_args *A);

/*
 * Read the sources (:::: files, - for standard input), make the task file
 * and parse it into *tf. Prints every error (`who: ...`, naming the
 * argument, the file and line, or the job and its arguments). Returns
 * EXIT_ALL_OK, EXIT_USAGE or EXIT_RUNTIME.
 */
int cli_args_load(cli_args *A, const char *who, tf_taskfile *tf);

/*
 * Write the task file cli_args_load made into A->path (written whole,
 * then renamed over) and let go of the text. Returns -1, or EXIT_RUNTIME
 * after saying why.
 */
int cli_args_save(cli_args *A);
void cli_args_free(cli_args *A);

int cli_run(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_topo(int argc, char **argv);
int cli_report(int argc, char **argv);

/*
 * For taskfarm run, collective over rt's ranks: share every rank's
 * locality and set *overlap on each task-running rank whose cpus overlap
 * another's on its host (binding its tasks would stack them on the other's
 * cores); on rank 0 of several, which runs no tasks, whether any rank
 * does. Rank 0 warns about each overlap on stderr. Errors: TF_ENOMEM,
 * TF_EMPI, TF_EIO (the same on every rank).
 */
int cli_check_overlap(const tf_topo *t, tf_runtime *rt, bool *overlap);

#endif
