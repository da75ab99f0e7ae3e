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
 * After a parse of `path` returned rc: print its messages (and the cap's
 * note) to stderr. Returns the exit status: EXIT_ALL_OK for rc 0,
 * EXIT_USAGE for TF_EINVAL, else EXIT_RUNTIME after saying why.
 */
int cli_parse_verdict(const char *path, int rc, tf_tferr *err);

/*
 * Write a file whole under its name: through tmp and a rename, so that a
 * reader sees all of it or nothing; durable (fsync of the file and of its
 * directory) when asked. Returns 0 or an errno value.
 */
int cli_put_file(const char *tmp, const char *path, const char *p, size_t n,
                 bool durable);

/* CLOCK_MONOTONIC in ns: for waits and spacing, not for the record. */
uint64_t cli_mono_ns(void);

/* ---- tasklist.c: a farm's tasks, its task file then its additions ---- */

/*
 * A farm's task list as the one text the parser reads: the task file's
 * lines, then those of each addition (`taskfarm add`, kept in
 * OUTDIR/added/N.tasks), so a task's line in the farm (its default id,
 * its joblog Seq) is its line here. Lines --follow refused
 * (OUTDIR/rejected) are emptied.
 */
typedef struct cli_tasklist {
    char *p;         /* lines, each ended by '\n', then a NUL; malloc'd */
    size_t len, cap;
    uint32_t lines;
    uint32_t nadded; /* additions read into it */
} cli_tasklist;

/*
 * Append text, a newline added after a last line without one. `file`: it
 * is a file of its own (the task file, an addition), whose byte-order
 * mark at its start is dropped; not lines appended to a file. Returns 0
 * or ENOMEM.
 */
int cli_tasklist_add(cli_tasklist *tl, const char *p, size_t n, bool file);
/* Back to an earlier length and line count. */
void cli_tasklist_cut(cli_tasklist *tl, size_t len, uint32_t lines);
/*
 * Empty each line L after `from` with hit[L - from] set (hit has lines -
 * from + 1 entries); their newlines stay, so later lines keep their
 * numbers. One pass over the text.
 */
void cli_tasklist_blank(cli_tasklist *tl, uint32_t from, const uint8_t *hit);
void cli_tasklist_free(cli_tasklist *tl);

/*
 * The list of a run in outdir from its task file's text (len bytes: what
 * the run took of it) and, when `outdir_too`, what the outdir holds of
 * it: OUTDIR/rejected's lines emptied, OUTDIR/added's files after it.
 * Returns 0, or an errno value with why (a file and its problem) filled.
 */
int cli_tasklist_load(cli_tasklist *tl, const char *outdir, const char *text,
                      size_t len, bool outdir_too, char *why, size_t n);

struct tf_runstate;
/*
 * The same from the files alone, for `status` and `add`: the task file the
 * run names (rs->taskfile under rs->cwd, as much as it took of it when it
 * follows the file). Returns 0, or an errno value with why filled; EPIPE:
 * the run read it from standard input or a pipe, which cannot be read again.
 */
int cli_tasklist_of_run(const char *outdir, const struct tf_runstate *rs,
                        cli_tasklist *tl, char *path, size_t plen, char *why,
                        size_t n);

/*
 * Parse the whole list as `name` (flags: tf_taskfile_parse_flags's). When
 * shift > 0 the list's lines after `shift` are an addition named `name`:
 * messages name them by its own lines (line shift + 1 is its line 1), and
 * earlier lines as "line N of the farm". Returns tf_taskfile_parse's code.
 */
int cli_tasklist_parse(const cli_tasklist *tl, const char *name,
                       uint32_t shift, unsigned flags, tf_taskfile *out,
                       tf_tferr *err);

/*
 * Whether `grown` holds every entry of `old` unchanged (same lines, ids,
 * commands, dependencies, settings), then more: a running farm's tasks
 * cannot change. false: *at is old's first entry that differs, or
 * UINT32_MAX when only @shell or @output do.
 */
bool cli_tasklist_extends(const tf_taskfile *old, const tf_taskfile *grown,
                          uint32_t *at);

/*
 * OUTDIR/incoming: `taskfarm add` (add.c) hands a running farm's rank 0
 * (intake.c) files there. add writes .NAME.tmp and renames it to
 * NAME.tasks, whose first line is CLI_ADD_HEADER and the name to give the
 * file in messages, or to NAME.end (add --end). Rank 0 takes one by
 * renaming it to NAME.taken, then writes its verdict, NAME.ok or NAME.err
 * (the lines to print), and removes NAME.taken. add prints the verdict and
 * removes it; one that gives up first removes its NAME.tasks, which then
 * was never taken.
 */
#define CLI_INCOMING "incoming"
#define CLI_ADD_HEADER "#taskfarm-add "

/* Append a message of ours to err (code, line as in tf_tferr_msg). */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
int cli_msg_add(tf_tferr *err, int code, uint32_t line, const char *fmt, ...);

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

typedef struct cli_argset cli_argset; /* argmode.c's */

typedef struct cli_args {
    char **argv; /* from COMMAND's first word (or the first marker) on */
    int argc;
    int pos0;        /* argv[0]'s place among the words after `taskfarm` */
    cli_argset *set; /* once made: the sources and jobs, for messages */
    size_t len;      /* bytes of the task file made */
    char path[PATH_MAX + 16]; /* run: OUTDIR/CLI_ARGS_FILE */
} cli_args;

/*
 * Whether argv[i..argc) holds a marker: then *A takes argv from i on
 * (the subcommand's argv, argv[0] its name) and true.
 */
bool cli_args_from(int argc, char **argv, int i, cli_args *A);

/*
 * Read the sources (:::: files, - for standard input) and make the task
 * file's text into *ft (one line per job; free with cli_file_text_free).
 * Prints every error (`who: ...`, naming the argument, the file and line,
 * or the job and its arguments). Returns EXIT_ALL_OK, EXIT_USAGE or
 * EXIT_RUNTIME.
 */
int cli_args_make(cli_args *A, const char *who, file_text *ft);

/*
 * cli_parse_verdict for a parse, as `name`, of what cli_args_make made
 * (and anything after it: lines past the jobs are named as they are): a
 * message about job N names the job and its arguments.
 */
int cli_args_verdict(cli_args *A, const char *name, int rc, tf_tferr *err);

/* cli_args_make, then the parse and its verdict: for `check`. */
int cli_args_load(cli_args *A, const char *who, tf_taskfile *tf);

/*
 * Write the task file (its first A->len bytes of text) into A->path,
 * whole, then renamed over. Returns -1, or EXIT_RUNTIME after saying why.
 */
int cli_args_save(const cli_args *A, const char *text);
void cli_args_free(cli_args *A);

int cli_run(int argc, char **argv);
int cli_add(int argc, char **argv);
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
