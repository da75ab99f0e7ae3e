/* Task-file parser: the `taskfarm run`/`check` format into a compact table. */
#ifndef TF_CORE_TASKFILE_H
#define TF_CORE_TASKFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched.h"

/*
 * The format is documented for users in docs/taskfile.md; keep the two in
 * step. Limits a user can hit, all reported with the file and line:
 */
/* Bytes per line, without the line ending. */
#define TF_TASKFILE_MAX_LINE (1u << 20)
/*
 * Bytes per id: `run` writes a task's output to ID.out and ID.err, and a
 * file name has at most 255 bytes (NAME_MAX on Linux, and the limit of
 * ext4, XFS, Lustre and GPFS), so an id of 252 to 255 bytes passed `check`
 * and then every attempt failed with ENAMETOOLONG.
 */
#define TF_TASKFILE_NAME_MAX 255u
#define TF_TASKFILE_MAX_ID (TF_TASKFILE_NAME_MAX - 4u)
/*
 * Bytes per command: `run` hands it to the shell as one argument (sh -c --
 * CMD), and Linux refuses a single argument of MAX_ARG_STRLEN (32 pages of
 * 4 KiB: 131072 bytes) or more, its NUL included, with E2BIG at the exec,
 * whatever the stack limit. Lines up to TF_TASKFILE_MAX_LINE are read, so
 * a longer command is named as such rather than as a long line.
 */
#define TF_TASKFILE_MAX_CMD (128u * 1024u - 1u)
/* The scheduler counts attempts in a byte. */
#define TF_TASKFILE_MAX_RETRIES 255
/* The longest @shell value (a path or a program's name). */
#define TF_TASKFILE_MAX_SHELL 255u
/* @output's values (tf_taskfile.output): @output=files, tag, none. */
#define TF_TASKFILE_OUTPUT_FILES 1
#define TF_TASKFILE_OUTPUT_TAG 2
#define TF_TASKFILE_OUTPUT_NONE 3
/* Messages kept before parsing stops. */
#define TF_TASKFILE_MAX_ERRORS 20
/*
 * Tasks in a file, @array lines expanded (and argument mode's jobs). A
 * parsed task costs 40 bytes and its id and command, and the run as much
 * again: at this limit rank 0 holds 10 to 20 GB. The point is that a typo
 * in a range (@array=1-1000000000) gets an error at its line rather than
 * taking the node's memory. The fuzzer builds with a smaller one.
 */
#ifndef TF_TASKFILE_MAX_TASKS
#define TF_TASKFILE_MAX_TASKS 100000000u
#endif
/* Indexes in an @array range: 0 to this. */
#define TF_TASKFILE_MAX_INDEX UINT32_MAX

/* tf_tftask.flags */
#define TF_TFT_BARRIER 0x1u    /* synthetic node for an `@barrier` line */
#define TF_TFT_DEFAULT_ID                                                      \
    0x2u                  /* id is the line number, no @id was given           \
                             (for an @array element: its array's is) */
#define TF_TFT_ARRAY 0x4u /* an element of an @array line */

/*
 * One entry per task line, and one per `@barrier` line, in file order; the
 * entry's position is its task index, which dependency lists hold.
 *
 * A barrier is a synthetic task with no command (cmd_len 0, empty id) that
 * depends on every task between the previous barrier (or the top of the
 * file) and itself, or on the previous barrier when there is none in
 * between, while every task after it depends on it. That gives "everything
 * after waits for everything before" with two edges per task instead of one
 * edge per pair. A runner must complete a barrier without running anything:
 * when the scheduler emits TF_ACT_RUN for one, call tf_sched_task_done on it
 * at once (and dispatch again, as it briefly held a worker slot). It never
 * fails, so a failed task before it skips every task after it.
 *
 * An `@array` line is one entry per element, in the order the list gives
 * them, each with the line's attributes, the line's number in `line`, the
 * id BASE.VALUE (BASE: its @id, else the line number) and the command with
 * the value in place (docs/taskfile.md, "Arrays"). Elements of one line
 * share one dependency list (same dep_off and ndeps), so an element costs
 * its entry, id and command, no more.
 *
 * 40 bytes. Strings live in the taskfile's pool as "<id>\0<command>\0"; use
 * the accessors below rather than the offsets.
 */
typedef struct tf_tftask {
    uint64_t str;        /* pool offset of the id; the command after its NUL */
    uint32_t cmd_len;    /* bytes, without the NUL; 0 only for a barrier */
    uint32_t line;       /* 1-based line number in the file */
    int32_t prio;        /* @prio, default 0; higher runs first */
    uint32_t timeout_ms; /* @timeout rounded up to a millisecond; 0 = none */
    uint32_t dep_off;    /* first entry of its dependency list in deps[] */
    uint32_t ndeps;      /* entries in that list, barrier edges included */
    uint16_t cores;      /* @cores, default 1 */
    int16_t retries;     /* @retries, or -1 for the run's default */
    uint8_t id_len;      /* bytes, without the NUL */
    uint8_t flags;       /* TF_TFT_* */
    uint16_t est;        /* @est, coded: tf_taskfile_est_ms; 0 = none */
} tf_tftask;

/* An @array line's elements: entries first .. first + n - 1. */
typedef struct tf_tfarray {
    uint32_t first;
    uint32_t n;
    uint32_t base_len; /* bytes of the element ids before ".VALUE" */
} tf_tfarray;

/*
 * A parsed task file. It owns its heap blocks and does not point into the
 * text it was parsed from, which may be unmapped once parsing returns.
 */
typedef struct tf_taskfile {
    tf_tftask *tasks;
    uint32_t n;         /* entries in tasks[]: ntasks + nbarriers */
    uint32_t ntasks;    /* task lines */
    uint32_t nbarriers; /* @barrier lines */
    uint32_t nafter;    /* @after dependencies, repeats in a list dropped,
                           counted for each array element */
    uint32_t nedges;    /* entries in deps[]; the elements of an array share
                           theirs, so the scheduler may get more edges */
    uint32_t max_chain; /* most tasks on one path (barriers not counted) */
    uint16_t max_cores; /* largest @cores */
    uint32_t *deps;     /* dependency lists: indexes of tasks to finish first */
    uint8_t *dep_kind;  /* TF_EDGE_* per entry of deps; NULL: all OK (@after) */
    char *pool;         /* ids and commands, NUL-terminated */
    size_t pool_len;
    char *shell;         /* @shell's value (malloc'd), NULL: none */
    uint32_t shell_line; /* its line, 0: none */
    uint8_t output;       /* @output's TF_TASKFILE_OUTPUT_*, 0: none */
    uint32_t output_line; /* its line, 0: none */
    uint32_t end_line;    /* @end's line, 0: none; no line after it is read */
    tf_tfarray *arrays;   /* the @array lines, in file order */
    uint32_t narrays;
} tf_taskfile;

/* One message for a person, already prefixed with "NAME:LINE: ". */
typedef struct tf_tferr_msg {
    int code;      /* TF_EINVAL syntax or bad value, TF_ERANGE a size limit,
                      TF_EEXIST duplicate id, TF_EDEP unknown or self
                      dependency, TF_ECYCLE cycle */
    uint32_t line; /* 1-based; 0 when the message is about the whole file */
    char *text;    /* malloc'd; no trailing newline */
} tf_tferr_msg;

/*
 * The errors found in one file, in line order (whole-file messages last).
 * Parsing stops after TF_TASKFILE_MAX_ERRORS; `truncated` then says there
 * were more. Free with tf_tferr_free.
 */
typedef struct tf_tferr {
    tf_tferr_msg *msgs;
    size_t n;
    bool truncated;
} tf_tferr;

/*
 * Parse and validate a whole task file held in memory (text need not be
 * NUL-terminated; it may contain NUL bytes, which are errors). `name` is
 * used only in messages. Every line is checked before returning: syntax and
 * values, duplicate ids, unknown and self dependencies, and, when no other
 * error was found, dependency cycles and the longest chain. Cycles are
 * found by tf_sched_seal on a scratch scheduler, the same check a run
 * makes; it is skipped when every dependency points back in the file, as
 * no cycle can exist then. text may be NULL when len is 0.
 *
 * Returns 0 and fills *out (free it with tf_taskfile_free); TF_EINVAL when
 * the file has errors; TF_ENOMEM. *err is always reset first (err may be
 * NULL): on TF_EINVAL it holds at least one message, on TF_ENOMEM any found
 * before memory ran out. *out is written only on success. Uses no globals:
 * any thread may parse its own file.
 */
int tf_taskfile_parse(const char *name, const char *text, size_t len,
                      tf_taskfile *out, tf_tferr *err);

/*
 * tf_taskfile_parse with flags. TF_TASKFILE_EMPTY_OK: a file without task
 * lines is valid (the start of a task list that grows: `run --follow`).
 */
#define TF_TASKFILE_EMPTY_OK 0x1u
int tf_taskfile_parse_flags(const char *name, const char *text, size_t len,
                            unsigned flags, tf_taskfile *out, tf_tferr *err);

/*
 * A duration (s[0..n), not NUL-terminated) in milliseconds, rounded up:
 * seconds as a plain number ("90", "1.5"), or terms with units from the
 * largest down, each a number with an optional fraction: "500ms", "90s",
 * "10m", "1.5h", "1h30m", "2d". false for anything else (empty, a unit
 * twice or out of order, "10 m", over 2^32 - 1 ms in all). Zero is a
 * duration; callers that refuse it say so.
 */
bool tf_duration_ms(const char *s, size_t n, uint64_t *ms);

/* Release what a successful parse returned; leaves *tf zeroed. */
void tf_taskfile_free(tf_taskfile *tf);

/* Release the messages; leaves *err empty. Safe on an empty or NULL err. */
void tf_tferr_free(tf_tferr *err);

/* Heap bytes the parsed file holds (task table, dependency lists, pool). */
size_t tf_taskfile_bytes(const tf_taskfile *tf);

/*
 * Add every entry of tf, barriers included, to the scheduler as HELD tasks
 * with their dependencies, in file order: task i becomes scheduler task
 * *first + i, so the runner maps back to the command, id, timeout and
 * barrier flag with i = t - *first. `default_retries` stands in for a task
 * without @retries; barriers get none. Does not seal: call tf_sched_seal,
 * which cannot find a cycle in a file tf_taskfile_parse accepted.
 * Returns 0; TF_ENOMEM or TF_ERANGE (scheduler table full), after which the
 * tasks added so far are still HELD (tf_sched_drop_held forgets them, with
 * any other unsealed task). *first is written only on success.
 */
int tf_taskfile_submit(const tf_taskfile *tf, tf_sched *s,
                       uint8_t default_retries, uint32_t *first);

/* Whether two entries are the same, field by field (not memcmp: padding). */
static inline bool tf_tftask_equal(const tf_tftask *a, const tf_tftask *b)
{
    return a->str == b->str && a->cmd_len == b->cmd_len &&
           a->line == b->line && a->prio == b->prio &&
           a->timeout_ms == b->timeout_ms && a->dep_off == b->dep_off &&
           a->ndeps == b->ndeps && a->cores == b->cores &&
           a->retries == b->retries && a->id_len == b->id_len &&
           a->flags == b->flags && a->est == b->est;
}

static inline bool tf_taskfile_is_barrier(const tf_taskfile *tf, uint32_t i)
{
    return (tf->tasks[i].flags & TF_TFT_BARRIER) != 0;
}

/* The task's id, NUL-terminated; "" for a barrier. Valid until freed. */
static inline const char *tf_taskfile_id(const tf_taskfile *tf, uint32_t i)
{
    return tf->pool + tf->tasks[i].str;
}

/* The task's command, NUL-terminated, as written; "" for a barrier. */
static inline const char *tf_taskfile_cmd(const tf_taskfile *tf, uint32_t i)
{
    return tf->pool + tf->tasks[i].str + tf->tasks[i].id_len + 1;
}

/* The @array line task i is an element of, or NULL. */
const tf_tfarray *tf_taskfile_array(const tf_taskfile *tf, uint32_t i);

/*
 * Task i's @est in ms, 0 if none. It is kept in the entry's two spare
 * bytes, as m << e ms with 11 bits of m and 5 of e, rounded up: exact to
 * 2047 ms, at most 1/1024 more beyond (@est=1h is 3600384 ms), and the
 * table stays at 40 bytes a task.
 */
static inline uint32_t tf_taskfile_est_ms(const tf_taskfile *tf, uint32_t i)
{
    uint32_t c = tf->tasks[i].est;
    uint64_t ms = (uint64_t)(c & 0x7FFu) << (c >> 11);
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/*
 * The kind of entry k of task i's dependency list: TF_EDGE_OK (@after,
 * barriers), TF_EDGE_ANY (@afterany) or TF_EDGE_NOTOK (@afternotok).
 */
static inline uint8_t tf_taskfile_dep_kind(const tf_taskfile *tf, uint32_t i,
                                           uint32_t k)
{
    return tf->dep_kind ? tf->dep_kind[tf->tasks[i].dep_off + k]
                        : (uint8_t)TF_EDGE_OK;
}

/* Indexes of the tasks task i depends on (*n of them). */
static inline const uint32_t *tf_taskfile_deps(const tf_taskfile *tf,
                                               uint32_t i, uint32_t *n)
{
    *n = tf->tasks[i].ndeps;
    return tf->deps + tf->tasks[i].dep_off;
}

#endif
