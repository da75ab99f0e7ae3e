/* Rank 0's durable state: a journal of finished attempts, group-committed, and HDF5 snapshots kept in two generations. */
#ifndef TF_CKPT_CKPT_H
#define TF_CKPT_CKPT_H

/*
 * One directory holds one run's state (the CLI's outdir, or the path a
 * library run names):
 *   state-G.h5     snapshot generation G: every task, written to a temporary
 *                  file, fsynced, renamed, the directory fsynced; the two
 *                  newest generations are kept
 *   journal-J.tfj  records appended since the run that opened it began:
 *                  finished attempts and tasks submitted by tasks, each with
 *                  a checksum, made durable in small groups
 * A snapshot names the journal and byte position it covers; loading takes
 * the newest valid snapshot and replays every record after that position,
 * in that journal and all later ones, up to the first torn record. Each
 * tf_ck_open starts a new journal, so an old journal's torn tail is never
 * appended to. docs/checkpoint-format.md documents the layout.
 *
 * Threads: every HDF5 call happens on the caller's thread (the library
 * Debian ships is not thread-safe, and an application may use HDF5 itself);
 * a private thread does the write(2)s and fsyncs, so the caller never waits
 * for the disk except in tf_ck_close and tf_ck_wait.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/log.h"

#define TF_CK_FORMAT 1           /* format version in every file */
#define TF_CK_NONE UINT64_MAX    /* no parent: submitted on rank 0 */
/*
 * The status of a DONE task (whose function returned 0) says what `out`
 * is: its output part 0 (0, as before 2026-12-06); its parts packed
 * (PACKED, docs/checkpoint-format.md); or nothing, because the output
 * stayed on the worker that made it (UNSAVED): a resumed run makes it
 * again if a task to run reads it.
 */
#define TF_CK_OUT_PACKED 1
#define TF_CK_OUT_UNSAVED 2

/* What kind of run wrote the state. */
enum { TF_CK_CLI = 1, TF_CK_LIB = 2 };

/* Task states as stored: the public tf_task_state values (taskfarm.h). */

typedef struct tf_ck_meta {
    uint32_t kind;           /* TF_CK_CLI or TF_CK_LIB */
    char version[32];        /* taskfarm version that wrote it */
    uint64_t source_hash;    /* CLI: the task file's bytes; library: the
                                registered function names, in order */
    int32_t world_size;      /* ranks of the run that wrote it */
    uint64_t time_ns;        /* CLOCK_REALTIME when the snapshot was taken */
    /* Filled by the writer: */
    uint64_t generation;
    uint64_t journal_id, journal_pos; /* records before this are included */
} tf_ck_meta;

/*
 * One task as a snapshot stores it. Pointers stay valid only during the
 * getter call that filled them (see tf_ck_snapshot).
 */
typedef struct tf_ck_task {
    uint64_t gid;            /* task id (library) or task-file index (CLI) */
    uint64_t key;            /* identity hash: CLI (@id, command); library
                                (function name, input): a task with the same
                                gid and key is the same task on resume */
    uint64_t parent;         /* gid of the task that submitted it, TF_CK_NONE */
    const char *name;        /* CLI: the @id; library: the function name */
    uint32_t name_len;
    const void *cmd;         /* CLI: the command; library: the input bytes */
    uint32_t cmd_len;
    const uint64_t *deps;    /* gids of its dependencies, in order */
    uint32_t ndeps;
    const void *out;         /* library: the output of a DONE task */
    uint32_t out_len;
    int32_t prio;
    uint16_t cores;
    uint8_t state;           /* tf_task_state */
    uint16_t attempts;
    int32_t status;          /* last attempt's status; DONE: TF_CK_OUT_* */
    int32_t rank;            /* rank of the last attempt, -1 */
    uint64_t start_ns, end_ns;
} tf_ck_task;

/* Fills *t with task i (0 <= i < n) of the table being snapshotted. */
typedef void (*tf_ck_get_fn)(void *user, uint64_t i, tf_ck_task *t);

/* A finished attempt, as the journal records it. */
typedef struct tf_ck_finish {
    uint64_t gid, key;
    uint16_t attempt;        /* 1 = first */
    uint8_t state;           /* TF_TASK_DONE, or TF_TASK_FAILED for an attempt
                                that failed (retried or not) */
    int32_t status, rank;
    uint64_t start_ns, end_ns;
    const void *out;         /* DONE only */
    uint32_t out_len;
} tf_ck_finish;

typedef struct tf_ck tf_ck; /* the writer of one directory, rank 0 only */

typedef struct tf_ck_opts {
    uint32_t sync_ms;        /* group-commit period of the journal; 0: 50 */
    /*
     * The generation a tf_ck_load of dir used (its meta.generation) when it
     * fell back past damaged newer ones, else 0. Those newer files are
     * renamed state-G.h5.damaged (kept for inspection, never loaded), so
     * that the next snapshot's clean-up keeps the generation that loaded.
     */
    uint64_t loaded_gen;
    /*
     * The scheduler term this writer writes for: once a later term is
     * claimed (tf_term_claim), it writes no journal record nor snapshot
     * more, and every call reports TF_EDEPOSED.
     */
    uint64_t term;
    tf_logger log;
} tf_ck_opts;

/*
 * Start writing state into dir (created if missing): a new journal after
 * the newest one there. Errors: TF_EIO (message in err), TF_ENOMEM.
 */
int tf_ck_open(const char *dir, const tf_ck_opts *o, tf_ck **out, char *err,
               size_t errlen);

/*
 * Journal records: copied into a buffer, written and fsynced by the
 * private thread within sync_ms. Never blocks on the disk. A write or fsync
 * failure (ENOSPC) is reported by every later call, tf_ck_wait and
 * tf_ck_close (TF_EIO, with the message in tf_ck_error).
 */
int tf_ck_finished(tf_ck *ck, const tf_ck_finish *f);
int tf_ck_submitted(tf_ck *ck, const tf_ck_task *t);

/*
 * Write the next snapshot generation: get(user, i, &t) for i in [0, n),
 * in order, on this thread, then the file goes to the private thread to be
 * fsynced and renamed into place. meta's writer fields are filled in. Only
 * one snapshot is in flight: while the previous is still being made
 * durable this returns TF_ESTATE at once and writes nothing (try later).
 * Errors: TF_ESTATE, TF_EIO, TF_ENOMEM.
 */
int tf_ck_snapshot(tf_ck *ck, const tf_ck_meta *meta, uint64_t n,
                   tf_ck_get_fn get, void *user);

/* The generation the next successful tf_ck_snapshot writes. */
uint64_t tf_ck_generation(const tf_ck *ck);

/* True while a snapshot is being made durable. */
bool tf_ck_busy(const tf_ck *ck);

/* Wait until everything handed over is durable; the first error, or 0. */
int tf_ck_wait(tf_ck *ck);
/* The message of the first I/O error, "" if none. */
const char *tf_ck_error(const tf_ck *ck);

/* tf_ck_wait, then free; *ck becomes NULL. Returns tf_ck_wait's result. */
int tf_ck_close(tf_ck **ck);

/* What tf_ck_load returns: every task known, as the last state had it. */
typedef struct tf_ck_state {
    tf_ck_meta meta;         /* of the snapshot used */
    uint64_t n;
    tf_ck_task *task;        /* n entries; their pointers point into the
                                state's own storage */
    uint64_t replayed;       /* journal records applied on top */
    bool fell_back;          /* the newest generation was unusable */
    void *storage_;          /* private */
} tf_ck_state;

/*
 * Load the newest valid state in dir: the newest snapshot that opens and
 * checks out (format version, sizes against the file before anything is
 * allocated, checksums before anything is used), falling back to the
 * previous generation with a warning on the logger naming the file and the
 * reason, running out of memory included; then the journal records after
 * it, in order, up to the first torn or corrupt one, or the one where
 * memory ran out (a warning names the file and offset). A finish record
 * updates its task (same gid; a later attempt wins; DONE is final); a
 * submit record adds a task unless its gid is known. Every file is treated
 * as hostile: no content can make the loader read or write out of bounds
 * or allocate more than a small multiple of the files' sizes. Returns 0,
 * TF_ENOENT (no state in dir: no snapshot and no journal), TF_EIO (state
 * there but no snapshot usable, or a foreign or newer format; every file's
 * reason in err), TF_ENOMEM (memory was the only reason, or ran out
 * outside any one file; err says so and names dir).
 */
int tf_ck_load(const char *dir, const tf_logger *log, tf_ck_state *st,
               char *err, size_t errlen);
void tf_ck_state_free(tf_ck_state *st);

/*
 * Call before any HDF5 use in a process that owns its exit (the taskfarm
 * command, tests): HDF5 then registers no exit handler. A snapshot that
 * failed on a full disk leaves its file half-closed inside HDF5 1.10 (the
 * metadata flush cannot succeed), and the exit handler crashes on it. Our
 * own files are always closed and fsynced explicitly, so nothing is lost.
 * A library cannot call it for its host program, whose HDF5 files may rely
 * on the handler.
 */
void tf_ck_no_exit_cleanup(void);

/* Whether dir holds snapshots or journals (a state a new run would mix with). */
bool tf_ck_holds_state(const char *dir);

/*
 * Remove dir's snapshots (with their temporary and damaged forms) and
 * journals. Returns 0, or an errno value with why (the file) filled.
 */
int tf_ck_remove_state(const char *dir, char *why, size_t len);

/*
 * Scheduler terms (term.c): each take-over of a run's scheduling claims the
 * next term in the state directory. tf_term_current: the newest term there
 * (0: none was ever claimed). tf_term_passed: whether a term after `term`
 * exists, i.e. a scheduler of `term` has been deposed (one stat). And
 * tf_term_claim: create the next term's file with `who` in it (atomic:
 * O_EXCL, then fsync of the file and the directory); *term is set to it.
 * Errors: TF_EDEPOSED (another rank claimed it first), TF_EIO.
 */
uint64_t tf_term_current(const char *dir);
bool tf_term_passed(const char *dir, uint64_t term);
int tf_term_claim(const char *dir, const char *who, uint64_t *term);

/* 64-bit identity hash of two byte strings (FNV-1a over both, length-framed). */
uint64_t tf_ck_key(const void *a, size_t alen, const void *b, size_t blen);

#endif
