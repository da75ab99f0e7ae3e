/* What src/ckpt's files share: CRC, journal codec, snapshot I/O, dir scan. */
#ifndef TF_CKPT_CKPT_INT_H
#define TF_CKPT_CKPT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "core/idmap.h"
#include "state.h"
#include "taskfarm_runtime.h"

/* ---- state.c and resume.c: the runtime's driver (state.h) ------------ */

struct tf_ckstate {
    char *dir;
    tf_ck *w;       /* the writer, opened by the first tf_run */
    int err;        /* latched: the run halts, every later tf_run fails */
    bool failed_logged;
    const tf_logger *log;
    uint64_t term;  /* the scheduler term found at open (tf_term_current) */
    int every_ms, world_size;

    /* Per task of rank 0's table (grown with it). */
    uint64_t *key;
    uint32_t *parent; /* index of the task that submitted it, TF_NONE */
    uint32_t *kids;   /* tasks it has submitted so far */
    uint32_t cap;
    tf_idmap occ;     /* identity without the count -> submissions seen */

    /* The state loaded by resume (rows are tf_ck_state's tasks). */
    tf_ck_state st;
    bool loaded;
    tf_idmap bykey;   /* key -> row; a DONE row wins, then the first */
    tf_idmap bygid;   /* gid + 1 -> row */
    tf_idmap mapped;  /* gid + 1 of a row taken over -> table index */
    uint32_t *child, *sibling; /* first child row, next sibling row */
    /*
     * Per row: done with an output that was not saved (it stayed on a
     * worker) and that a task to run reads, directly or through other such
     * rows: it runs again (index_state).
     */
    uint8_t *redo;
    uint32_t *roots;  /* rows done, taken over by tf_submit since the last
                         run: their children are re-created at the next */
    size_t nroots, rootcap;
    bool remapped;    /* an id means another task than in the state */
    uint64_t epoch;

    uint64_t next_ns;  /* monotonic time of the next periodic snapshot */
    uint64_t *depbuf;  /* scratch of the snapshot getter */
    uint32_t depcap;
    uint64_t nsnap, max_pause_ns;
    char note[128];    /* the last snapshot, for the trace */
};

/* idmap reserves key 0; gids start at 0 and keys may be anything. */
static inline uint64_t tf_ck_mkey(uint64_t k) { return k + 1 ? k + 1 : 1; }

/* resume.c: load and index the state; re-create children of done tasks. */
int tf_ck_resume_load(tf_ckstate *ck);
/* state.c: the state cannot be written; latch and log once. */
void tf_ck_fail(tf_ckstate *ck, int rc);
/* state.c: task t as a snapshot or a SUBMIT record stores it. */
void tf_ck_row_of(tf_ckstate *ck, const tf_tasks *tt, const tf_registry *reg,
                  uint32_t t, tf_ck_task *out);
/* state.c: a snapshot now (final: durable before it returns). */
int tf_ck_snapshot_now(tf_ckstate *ck, const tf_tasks *tt,
                       const tf_registry *reg, bool final);

/* ---- hash.c ---------------------------------------------------------- */

/* CRC32C (Castagnoli), continuing from crc (0 to start). */
uint32_t tf_ck_crc32c(uint32_t crc, const void *p, size_t n);
/* The same, always by the tables (tests compare the two). */
uint32_t tf_ck_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* ---- journal.c: the record format (docs/checkpoint-format.md) -------- */

#define TF_CK_JMAGIC "TFJOURNL"
#define TF_CK_JHDR 32 /* journal header bytes */
#define TF_CK_RHDR 16 /* record header bytes */
enum { TF_CK_REC_FINISH = 1, TF_CK_REC_SUBMIT = 2 };

/* The header of journal j, TF_CK_JHDR bytes. */
void tf_ck_jr_header(uint8_t *dst, uint64_t j);
/* 0 if hdr holds a valid header (id in *j), else a reason for people. */
const char *tf_ck_jr_check_header(const uint8_t *hdr, size_t len, uint64_t *j);

/*
 * Encoded record sizes (header and padding included) and encoders. The
 * encoders leave the checksum out: tf_ck_jr_seal fills it in for every
 * record of a buffer of whole records, before it is written.
 */
size_t tf_ck_jr_finish_size(const tf_ck_finish *f);
void tf_ck_jr_put_finish(uint8_t *dst, const tf_ck_finish *f);
size_t tf_ck_jr_submit_size(const tf_ck_task *t);
void tf_ck_jr_put_submit(uint8_t *dst, const tf_ck_task *t);
void tf_ck_jr_seal(uint8_t *buf, size_t len);

/* One decoded record; pointers point into the journal's bytes. */
typedef struct tf_ck_jrec {
    uint32_t type;
    tf_ck_finish fin; /* TF_CK_REC_FINISH */
    tf_ck_task task;  /* TF_CK_REC_SUBMIT */
} tf_ck_jrec;

/*
 * The bytes (header, payload, padding) of the record whose TF_CK_RHDR-byte
 * header is at hdr, or 0 if no record has that header (an unknown type, a
 * nonzero reserved field). Only the header is looked at: a reader uses it
 * to stop before reading what an impossible header or length claims.
 */
size_t tf_ck_jr_extent(const uint8_t *hdr);

enum { TF_CK_JR_OK, TF_CK_JR_END, TF_CK_JR_TORN, TF_CK_JR_CORRUPT };
/*
 * Decodes the record at *pos of buf (8-byte aligned), advancing *pos.
 * TF_CK_JR_END at the exact end; TORN when the bytes end inside a record
 * (or *pos is past the end or not a multiple of 8); CORRUPT when a
 * checksum, type, length or state does not check out (why says what). *pos
 * is left at the bad record. Every field is checked before it is used:
 * len, and what buf holds, may be anything.
 */
int tf_ck_jr_next(const uint8_t *buf, size_t len, size_t *pos, tf_ck_jrec *rec,
                  const char **why);

/* ---- snapshot.c ------------------------------------------------------- */

/* A memory image of a snapshot, kept from one snapshot to the next. */
typedef struct tf_ck_image {
    uint8_t *p;
    size_t cap;
    size_t len; /* bytes of the last file built in it */
} tf_ck_image;

/*
 * Writes a snapshot of n tasks (HDF5, on the caller's thread). With img,
 * HDF5's core driver builds the file in img (grown as needed, reused next
 * time) for the caller to write to path; nothing touches path. Without,
 * the sec2 driver writes path itself (into the page cache; nothing is
 * fsynced). Errors: TF_EIO, TF_ENOMEM (message in err).
 */
int tf_ck_snap_write(const char *path, const tf_ck_meta *m, uint64_t n,
                     tf_ck_get_fn get, void *user, tf_ck_image *img, char *err,
                     size_t errlen);

/* A snapshot as read: columns, and the tasks pointing into them. */
typedef struct tf_ck_snap {
    tf_ck_meta meta;
    uint64_t n;
    tf_ck_task *task; /* n entries */
    void *bytes[4];   /* name, cmd, deps, out data: owned */
    uint64_t len[4];  /* their lengths, in entries */
} tf_ck_snap;

/*
 * Reads and checks path, as hostile (snapshot.c says in what order).
 * TF_EIO with the reason in err: not HDF5 or not ours ("foreign"), a newer
 * format version, a size that disagrees with another or with the file, a
 * checksum mismatch, a file HDF5 cannot open (truncated). TF_ENOMEM, err
 * naming the file and what did not fit.
 */
int tf_ck_snap_read(const char *path, tf_ck_snap *s, char *err, size_t errlen);
/* Only the metadata attributes, without checking the data. */
int tf_ck_snap_read_meta(const char *path, tf_ck_meta *m);
void tf_ck_snap_free(tf_ck_snap *s);

/* ---- writer.c --------------------------------------------------------- */

/*
 * Snapshots built in memory by HDF5's core driver and written by the I/O
 * thread (true), or written by HDF5's sec2 driver on the caller's thread
 * into the page cache, the thread only fsyncing (false, the default: the
 * same stall, durable 2.5-3 times sooner, no second copy of the state in
 * memory). bench/ckpt.c measures both; docs/checkpoint-format.md has the
 * figures.
 */
void tf_ck_set_in_memory(tf_ck *ck, bool on);

/* ---- dir.c ------------------------------------------------------------ */

/* The state files of a directory, generations and journal ids ascending. */
typedef struct tf_ck_dir {
    uint64_t *gen, *jid;
    size_t ngen, njid;
} tf_ck_dir;

/* TF_ENOENT if dir does not exist, TF_EIO, TF_ENOMEM. */
int tf_ck_dir_scan(const char *dir, tf_ck_dir *d);
void tf_ck_dir_free(tf_ck_dir *d);
/* "dir/state-G.h5", "dir/journal-J.tfj" into buf (PATH_MAX). */
void tf_ck_state_path(char *buf, size_t len, const char *dir, uint64_t g);
void tf_ck_journal_path(char *buf, size_t len, const char *dir, uint64_t j);

#endif
