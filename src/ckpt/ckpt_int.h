/* What the files of src/ckpt share: checksums, the journal record codec, the snapshot reader/writer, the directory scan. */
#ifndef TF_CKPT_CKPT_INT_H
#define TF_CKPT_CKPT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "taskfarm_status.h"

/*
 * tf_task_state values the loader acts on (taskfarm.h, which this layer
 * does not include because it needs mpi.h); tests/ckpt checks they agree.
 */
#define TF_CK_DONE 4
#define TF_CK_FAILED 5
/* TF_LOG_ERROR and TF_LOG_WARN of taskfarm.h, for the same reason. */
#define TF_CK_LOG_ERROR 0
#define TF_CK_LOG_WARN 1

/* ---- hash.c ---------------------------------------------------------- */

/* CRC32C (Castagnoli), continuing from crc (0 to start). */
uint32_t tf_ck_crc32c(uint32_t crc, const void *p, size_t n);

/* ---- journal.c: the record format (docs/checkpoint-format.md) -------- */

#define TF_CK_JMAGIC "TFJOURNL"
#define TF_CK_JHDR 32 /* journal header bytes */
#define TF_CK_RHDR 16 /* record header bytes */
enum { TF_CK_REC_FINISH = 1, TF_CK_REC_SUBMIT = 2 };

/* The header of journal j, TF_CK_JHDR bytes. */
void tf_ck_jr_header(uint8_t *dst, uint64_t j);
/* 0 if hdr holds a valid header (id in *j), else a reason for people. */
const char *tf_ck_jr_check_header(const uint8_t *hdr, size_t len,
                                  uint64_t *j);

/* Encoded record sizes (header and padding included) and encoders. */
size_t tf_ck_jr_finish_size(const tf_ck_finish *f);
void tf_ck_jr_put_finish(uint8_t *dst, const tf_ck_finish *f);
size_t tf_ck_jr_submit_size(const tf_ck_task *t);
void tf_ck_jr_put_submit(uint8_t *dst, const tf_ck_task *t);

/* One decoded record; pointers point into the journal's bytes. */
typedef struct tf_ck_jrec {
    uint32_t type;
    tf_ck_finish fin; /* TF_CK_REC_FINISH */
    tf_ck_task task;  /* TF_CK_REC_SUBMIT */
} tf_ck_jrec;

enum { TF_CK_JR_OK, TF_CK_JR_END, TF_CK_JR_TORN, TF_CK_JR_CORRUPT };
/*
 * Decodes the record at *pos of buf (8-byte aligned), advancing *pos.
 * TF_CK_JR_END at the exact end; TORN when the bytes end inside a record;
 * CORRUPT when a checksum, type or length does not check out (why says
 * what). *pos is left at the bad record.
 */
int tf_ck_jr_next(const uint8_t *buf, size_t len, size_t *pos,
                  tf_ck_jrec *rec, const char **why);

/* ---- snapshot.c ------------------------------------------------------- */

/*
 * Writes a snapshot of n tasks to path (HDF5, on the caller's thread). With
 * in_memory the file is built by HDF5's core driver and its bytes returned
 * in *image (malloc'd, *image_len bytes) for the caller to write; nothing
 * touches path. Otherwise the sec2 driver writes path itself (into the page
 * cache; nothing is fsynced). Errors: TF_EIO, TF_ENOMEM (message in err).
 */
int tf_ck_snap_write(const char *path, const tf_ck_meta *m, uint64_t n,
                     tf_ck_get_fn get, void *user, bool in_memory,
                     void **image, size_t *image_len, char *err,
                     size_t errlen);

/* A snapshot as read: columns, and the tasks pointing into them. */
typedef struct tf_ck_snap {
    tf_ck_meta meta;
    uint64_t n;
    tf_ck_task *task;    /* n entries */
    void *bytes[4];      /* name, cmd, deps, out data: owned */
} tf_ck_snap;

/*
 * Reads and checks path. TF_EIO with the reason in err: not HDF5 or not
 * ours ("foreign"), a newer format version, a checksum or size mismatch,
 * a file HDF5 cannot open (truncated). TF_ENOMEM.
 */
int tf_ck_snap_read(const char *path, tf_ck_snap *s, char *err,
                    size_t errlen);
/* Only the metadata attributes, without checking the data. */
int tf_ck_snap_read_meta(const char *path, tf_ck_meta *m);
void tf_ck_snap_free(tf_ck_snap *s);

/* ---- writer.c --------------------------------------------------------- */

/*
 * Snapshots built in memory by HDF5's core driver and written by the I/O
 * thread (true), or written by HDF5's sec2 driver on the caller's thread
 * into the page cache, the thread only fsyncing (false, the default).
 * bench/ckpt.c measures both; docs/checkpoint-format.md has the figures.
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
