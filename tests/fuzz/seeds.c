/* Writes the seed corpora of the checkpoint fuzzers (make fuzz-seeds). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../ckpt/h5edit.h"

/*
 * Real files, as the writer writes them, each prefixed with the harness's
 * mode byte (fuzz_journal.c, fuzz_snapshot.c): journals of FINISH and
 * SUBMIT records, one cut short; snapshots of a few tasks, and copies of
 * them edited through the HDF5 API (a column remade contiguous, a state
 * out of range, a sparse tail); and recipes for fuzz_snapedit.c, one per
 * kind of edit. Running it again writes the same files but for the
 * times HDF5 stamps into object headers.
 */

static const char *out_dir;
static char tmp[256];

static void die(const char *what)
{
    fprintf(stderr, "seeds: %s\n", what);
    exit(1);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
        die(path);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* corpus/<kind>/<name>: the mode byte, then len bytes of p. */
static void seed(const char *kind, const char *name, uint8_t mode,
                 const uint8_t *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, kind);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, kind, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(&mode, 1, 1, f) != 1 ||
        (len && fwrite(p, 1, len, f) != len) || fclose(f))
        die(path);
}

static void seed_file(const char *kind, const char *name, uint8_t mode,
                      const char *path)
{
    size_t len;
    uint8_t *b = slurp(path, &len);
    seed(kind, name, mode, b, len);
    free(b);
}

/* Task i of a small varied table (names, commands, deps, outputs). */
static void task(uint64_t i, tf_ck_task *t, char *buf, uint64_t *deps)
{
    memset(t, 0, sizeof *t);
    t->gid = i;
    t->parent = i ? i - 1 : TF_CK_NONE;
    t->name_len = (uint32_t)sprintf(buf, "t%" PRIu64, i);
    t->name = buf;
    t->cmd = "echo hello";
    t->cmd_len = (uint32_t)(i % 3 ? 10 : 0);
    t->ndeps = (uint32_t)(i < 2 ? i : 2);
    for (uint32_t k = 0; k < t->ndeps; k++)
        deps[k] = i - k - 1;
    t->deps = deps;
    t->prio = (int32_t)i - 2;
    t->cores = 1;
    t->state = (uint8_t)(i % 7);
    t->attempts = 1;
    t->rank = 0;
    t->start_ns = 1000 * i;
    t->end_ns = 1000 * i + 7;
    if (t->state == TF_TASK_DONE) {
        t->out = "result";
        t->out_len = 6;
    }
    t->key = tf_ck_key(t->name, t->name_len, t->cmd, t->cmd_len);
}

static void get(void *user, uint64_t i, tf_ck_task *t)
{
    static char buf[32];
    static uint64_t deps[2];
    (void)user;
    task(i, t, buf, deps);
}

static void journals(void)
{
    char dir[300], path[400], err[256];
    snprintf(dir, sizeof dir, "%s/j", tmp);
    tf_ck_opts o = {.sync_ms = 1};
    tf_ck *ck;
    if (tf_ck_open(dir, &o, &ck, err, sizeof err))
        die(err);
    for (uint64_t i = 0; i < 6; i++) {
        tf_ck_finish f = {.gid = i,
                          .key = 9,
                          .attempt = (uint16_t)(1 + i % 2),
                          .state = i % 3 ? TF_TASK_DONE : TF_TASK_FAILED,
                          .status = (int32_t)(i % 3 ? 0 : 1),
                          .out = "out",
                          .out_len = i % 3 ? 3 : 0};
        if (tf_ck_finished(ck, &f))
            die("finished");
    }
    for (uint64_t i = 0; i < 4; i++) {
        char buf[32];
        uint64_t deps[2];
        tf_ck_task t;
        task(i + 10, &t, buf, deps);
        t.gid = (1ull << 32) + i;
        if (tf_ck_submitted(ck, &t))
            die("submitted");
    }
    if (tf_ck_close(&ck))
        die("close");
    snprintf(path, sizeof path, "%s/journal-1.tfj", dir);
    size_t len;
    uint8_t *b = slurp(path, &len);
    seed("journal", "finish-submit", 0, b, len);
    seed("journal", "finish-submit-resealed", 1, b, len);
    seed("journal", "torn", 0, b, len - 13);
    seed("journal", "header-only", 0, b, TF_CK_JHDR);
    /* With a snapshot (fuzz_journal.c: mode bits 1-4 are its position's
       index + 1) whose journal_pos is after the header (index 0: 32), on
       the fourth record (index 9: 240 = 32 + 64 + 72 + 72) or unaligned
       (index 11: 37); the second resealed. */
    seed("journal", "snapshot-pos-header", 1 << 1, b, len);
    seed("journal", "snapshot-pos-record", 10 << 1 | 1, b, len);
    seed("journal", "snapshot-pos-unaligned", 12 << 1, b, len);
    free(b);
}

static void snapshots(void)
{
    char path[400], err[256];
    snprintf(path, sizeof path, "%s/state-1.h5", tmp);
    tf_ck_meta m = {.kind = TF_CK_LIB,
                    .generation = 1,
                    .journal_id = 1,
                    .journal_pos = TF_CK_JHDR};
    if (tf_ck_snap_write(path, &m, 0, get, NULL, NULL, err, sizeof err))
        die(err);
    seed_file("snapshot", "empty", 0, path);
    if (tf_ck_snap_write(path, &m, 5, get, NULL, NULL, err, sizeof err))
        die(err);
    seed_file("snapshot", "five", 0, path);
    seed_file("snapshot", "five-fixed", 1, path);

    /* Edited through the HDF5 API. */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t contig = H5Pcreate(H5P_DATASET_CREATE);
    if (f < 0 || !h5e_remake(f, "/task/prio", H5T_STD_I32LE, contig) ||
        !h5e_poke(f, "/task/state", 2, 9, true))
        die("edit");
    H5Pclose(contig);
    H5Fclose(f);
    seed_file("snapshot", "five-edited", 1, path);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0 || !h5e_extent(f, "/cmd/data", 1u << 30))
        die("extent");
    H5Fclose(f);
    seed_file("snapshot", "five-sparse", 1, path);
}

/*
 * Four recipes per kind of edit (fuzz_snapedit.c has 12): three tasks
 * whose fields are all zero (113 bytes each: make_table reads 113 bytes for
 * a task of zeros), one edit of a dataset, then bytes for its numbers.
 */
#define ZERO_TASK_BYTES 113
#define EDIT_KINDS 12

static void recipes(void)
{
    for (unsigned op = 0; op < EDIT_KINDS; op++)
        for (unsigned v = 0; v < 4; v++) {
            uint8_t r[1 + 3 * ZERO_TASK_BYTES + 16];
            memset(r, 0, sizeof r);
            r[0] = 3;
            size_t k = 1 + 3 * ZERO_TASK_BYTES;
            r[k++] = 1;                         /* one edit */
            r[k++] = (uint8_t)op;               /* its kind */
            r[k++] = (uint8_t)(op * 7 + v * 5); /* the dataset */
            for (; k < sizeof r; k++)
                r[k] = (uint8_t)(k * 37 + op + v * 61);
            char name[32];
            snprintf(name, sizeof name, "edit-%u-%u", op, v);
            /* No mode byte: the recipe's first byte is the task count. */
            seed("snapedit", name, r[0], r + 1, sizeof r - 1);
        }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seeds CORPUS_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    mkdir(out_dir, 0755);
    tf_ck_no_exit_cleanup();
    snprintf(tmp, sizeof tmp, "/tmp/tf-seeds-XXXXXX");
    if (!mkdtemp(tmp))
        die("mkdtemp");
    journals();
    snapshots();
    recipes();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : 1;
}
