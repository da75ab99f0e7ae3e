/* What the checkpoint fuzzers share: a scratch directory, and loading it. */
#ifndef TF_FUZZ_CKPT_H
#define TF_FUZZ_CKPT_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "ckpt/ckpt_int.h"

/*
 * Each fuzzing process works in its own directory under $TMPDIR (or /tmp),
 * made on the first input and removed at exit; each input is written there
 * as one state file, loaded with tf_ck_load, and removed.
 */
static char fz_dir[256];

static const char *const fz_names[] = {"state-1.h5", "state-2.h5",
                                       "journal-1.tfj", "journal-2.tfj"};

static inline void fz_cleanup(void)
{
    char p[400];
    for (size_t k = 0; k < sizeof fz_names / sizeof *fz_names; k++) {
        snprintf(p, sizeof p, "%s/%s", fz_dir, fz_names[k]);
        unlink(p);
    }
    rmdir(fz_dir);
}

/* The bytes of the state files there now. */
static inline uint64_t fz_bytes(void)
{
    char p[400];
    struct stat sb;
    uint64_t sum = 0;
    for (size_t k = 0; k < sizeof fz_names / sizeof *fz_names; k++) {
        snprintf(p, sizeof p, "%s/%s", fz_dir, fz_names[k]);
        if (!stat(p, &sb))
            sum += (uint64_t)sb.st_size;
    }
    return sum;
}

/* The directory (made once) and path = dir/name. */
static inline const char *fz_path(char *path, size_t len, const char *name)
{
    if (!fz_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fz_dir, sizeof fz_dir, "%s/tf-fuzz-XXXXXX", t ? t : "/tmp");
        if (!mkdtemp(fz_dir))
            abort();
        atexit(fz_cleanup);
        /* The harness owns the process: no exit handler in HDF5 (the
           loader's files are closed; see tf_ck_no_exit_cleanup), and no
           HDF5 error printing for the edits it refuses. */
        tf_ck_no_exit_cleanup();
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        /* HDF5 keeps freed blocks on free lists without limit, one list
           per block size, and fuzzed sizes are many: a 15-minute run of
           fuzz_snapedit grew to 1.4 GB. Bounded (tests/fuzz/run.sh does it
           for long runs), memory grows a third slower, but any limit
           halves the speed of fuzz_snapshot, so short runs go without. */
        if (getenv("TF_FUZZ_FREE_LIST_LIMITS"))
            H5set_free_list_limits(64 << 20, 16 << 20, 64 << 20, 16 << 20,
                                   64 << 20, 16 << 20);
    }
    snprintf(path, len, "%s/%s", fz_dir, name);
    return path;
}

static inline void fz_write(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
        abort();
    close(fd);
}

/*
 * Loads the directory and touches every byte the state points at, so that
 * ASan sees any pointer or length out of bounds; a state whose task count
 * or bytes exceed what the files could hold breaks the loader's promise
 * (docs/checkpoint-format.md: about 2.4 times the files' size) and aborts.
 */
/* Aborts if any HDF5 object is open (what: who should have closed it). */
static inline void fz_no_open_objects(const char *what)
{
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n != 0) {
        fprintf(stderr,
                "fuzz: %s left %zd HDF5 objects open (files %zd, datasets "
                "%zd, groups %zd, types %zd, attributes %zd)\n",
                what, n, H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE),
                H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_DATASET),
                H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_GROUP),
                H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_DATATYPE),
                H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ATTR));
        abort();
    }
}

/* The loader's warnings, formatted and looked at, then dropped. */
static inline void fz_sink(void *user, int level, int rank, const char *msg)
{
    (void)level, (void)rank;
    *(size_t *)user += strlen(msg);
}

static inline void fz_load(void)
{
    uint64_t file_bytes = fz_bytes();
    fz_no_open_objects("the harness");
    tf_ck_state st;
    char err[1024];
    size_t said = 0;
    tf_logger log = {.level = TF_LOG_WARN, .sink = fz_sink, .user = &said};
    if (tf_ck_load(fz_dir, &log, &st, err, sizeof err) == 0) {
        uint64_t sum = 0, bytes = 0;
        for (uint64_t i = 0; i < st.n; i++) {
            const tf_ck_task *t = &st.task[i];
            for (uint32_t k = 0; k < t->name_len; k++)
                sum += (uint8_t)t->name[k];
            for (uint32_t k = 0; k < t->cmd_len; k++)
                sum += ((const uint8_t *)t->cmd)[k];
            for (uint32_t k = 0; k < t->ndeps; k++)
                sum += t->deps[k];
            for (uint32_t k = 0; k < t->out_len; k++)
                sum += ((const uint8_t *)t->out)[k];
            bytes += (uint64_t)t->name_len + t->cmd_len + 8ull * t->ndeps +
                     t->out_len;
        }
        if (st.n * sizeof(tf_ck_task) > 3 * file_bytes + 4096 ||
            bytes > 3 * file_bytes + 4096) {
            fprintf(stderr, "fuzz: %llu tasks, %llu bytes from %llu bytes\n",
                    (unsigned long long)st.n, (unsigned long long)bytes,
                    (unsigned long long)file_bytes);
            abort();
        }
        /* Keep the loop: the sum goes nowhere else. */
        if (sum == 0x5eed5eed5eed5eedull)
            fprintf(stderr, "fuzz: improbable sum\n");
        tf_ck_state_free(&st);
    }
    /* An object left open keeps its file open inside HDF5, with its
       caches: memory that grows with every load. */
    fz_no_open_objects("tf_ck_load");
}

#endif
