/* Benchmark: checkpoint state of 1M tasks: snapshot size, caller stall, time to durable, load, journal cost. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/ckpt_int.h"

/*
 * Two shapes of 1M-task state: "cli" (10-byte ids, 40-byte commands, no
 * dependencies or outputs, like a task file) and "lib" (16-byte inputs,
 * 8-byte outputs, one dependency each, like a library run). Each figure is
 * the best of a few repetitions (the machine is shared; the best is the
 * least disturbed). The baseline, measured in the same run, is writing the
 * same number of bytes with write(2) + fsync, and copying them in memory.
 */

typedef struct shape {
    const char *name;
    bool lib;
    char scratch[64];
    uint64_t dep;
    uint8_t out[8];
} shape;

static void get(void *user, uint64_t i, tf_ck_task *t)
{
    shape *s = user;
    t->gid = i;
    t->parent = TF_CK_NONE;
    t->prio = (int32_t)(i % 7);
    t->cores = 1;
    t->state = i % 2 ? 4 : 2; /* half DONE, half READY */
    t->attempts = 1;
    t->rank = (int32_t)(i % 64);
    t->start_ns = i * 1000;
    t->end_ns = i * 1000 + 500;
    if (!s->lib) {
        snprintf(s->scratch, sizeof s->scratch, "t%09" PRIu64, i);
        t->name = s->scratch;
        t->name_len = 10;
        snprintf(s->scratch + 10, sizeof s->scratch - 10,
                 "./simulate --case %010" PRIu64 " --seed 42..", i);
        t->cmd = s->scratch + 10;
        t->cmd_len = 40;
    } else {
        t->name = "integrate";
        t->name_len = 9;
        memcpy(s->scratch, &i, 8);
        memcpy(s->scratch + 8, &i, 8);
        t->cmd = s->scratch;
        t->cmd_len = 16;
        s->dep = i ? i - 1 : 0;
        t->deps = &s->dep;
        t->ndeps = i ? 1 : 0;
        if (t->state == 4) {
            memcpy(s->out, &i, 8);
            t->out = s->out;
            t->out_len = 8;
        }
    }
    t->key = tf_ck_key(t->name, t->name_len, t->cmd, t->cmd_len);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "ckpt bench: %s: %s\n", what, msg);
    exit(1);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : st.st_size;
}

static void empty_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd))
        die(dir, "cannot remove");
}

#define REPS 3

/* One snapshot per repetition: best caller stall and best time to durable. */
static void bench_snapshot(const char *dir, shape *s, uint64_t n,
                           bool in_memory, const char *driver)
{
    char err[512];
    tf_ck *ck;
    tf_ck_opts o = {0};
    empty_dir(dir);
    if (tf_ck_open(dir, &o, &ck, err, sizeof err))
        die("open", err);
    tf_ck_set_in_memory(ck, in_memory);
    tf_ck_meta m = {.kind = s->lib ? TF_CK_LIB : TF_CK_CLI, .version = "0.1.0",
                    .world_size = 64};
    double block = 1e9, durable = 1e9;
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        if (tf_ck_snapshot(ck, &m, n, get, s))
            die("snapshot", tf_ck_error(ck));
        double t1 = now();
        if (tf_ck_wait(ck))
            die("wait", tf_ck_error(ck));
        double t2 = now();
        block = t1 - t0 < block ? t1 - t0 : block;
        durable = t2 - t0 < durable ? t2 - t0 : durable;
    }
    tf_ck_close(&ck);
    printf("ckpt_%s_%s_snapshot_block %.3f s\n", s->name, driver, block);
    printf("ckpt_%s_%s_snapshot_durable %.3f s\n", s->name, driver, durable);
}

/* The baseline: the same bytes through write(2) + fsync, and memcpy. */
static void bench_raw(const char *dir, const char *name, size_t bytes)
{
    char path[600];
    snprintf(path, sizeof path, "%s/raw", dir);
    char *a = malloc(bytes), *b = malloc(bytes);
    if (!a || !b)
        die("raw", "out of memory");
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double best_w = 1e9, best_c = 1e9;
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        size_t done = 0;
        while (fd >= 0 && done < bytes) {
            ssize_t w = write(fd, a + done, bytes - done);
            if (w <= 0)
                die("raw", "write failed");
            done += (size_t)w;
        }
        if (fd < 0 || fsync(fd) || close(fd))
            die("raw", "open or fsync failed");
        double t1 = now();
        memcpy(b, a, bytes);
        double t2 = now();
        best_w = t1 - t0 < best_w ? t1 - t0 : best_w;
        best_c = t2 - t1 < best_c ? t2 - t1 : best_c;
    }
    unlink(path);
    printf("ckpt_%s_baseline_write_fsync %.3f s\n", name, best_w);
    printf("ckpt_%s_baseline_memcpy %.3f s\n", name, best_c);
    free(a);
    free(b);
}

static void bench_load(const char *dir, const char *name, uint64_t n)
{
    double best = 1e9;
    for (int r = 0; r < REPS; r++) {
        tf_ck_state st;
        char err[512];
        double t0 = now();
        if (tf_ck_load(dir, NULL, &st, err, sizeof err))
            die("load", err);
        double t1 = now();
        if (st.n != n)
            die("load", "wrong task count");
        tf_ck_state_free(&st);
        best = t1 - t0 < best ? t1 - t0 : best;
    }
    printf("ckpt_%s_load %.3f s\n", name, best);
}

/* n FINISH records, handed over as tasks finish; then made durable. */
static void bench_journal(const char *dir, const shape *s, uint64_t n)
{
    char err[512], path[600];
    tf_ck *ck;
    tf_ck_opts o = {0};
    double best = 1e9, wait = 0;
    off_t bytes = 0;
    for (int r = 0; r < REPS; r++) {
        empty_dir(dir);
        if (tf_ck_open(dir, &o, &ck, err, sizeof err))
            die("open", err);
        double t0 = now();
        for (uint64_t i = 0; i < n; i++) {
            tf_ck_finish f = {.gid = i, .key = i, .attempt = 1, .state = 4,
                              .rank = 1, .start_ns = i, .end_ns = i + 1};
            if (s->lib) {
                f.out = &i;
                f.out_len = 8;
            }
            if (tf_ck_finished(ck, &f))
                die("finished", tf_ck_error(ck));
        }
        double t1 = now();
        if (tf_ck_close(&ck))
            die("close", "journal write failed");
        double t2 = now();
        if (t1 - t0 < best) {
            best = t1 - t0;
            wait = t2 - t1;
        }
        tf_ck_journal_path(path, sizeof path, dir, 1);
        bytes = file_size(path) - TF_CK_JHDR;
    }
    printf("ckpt_%s_journal_append %.1f ns\n", s->name, best * 1e9 / n);
    printf("ckpt_%s_journal_bytes_per_record %.1f B\n", s->name,
           (double)bytes / n);
    printf("ckpt_%s_journal_durable_after_last %.3f s\n", s->name, wait);
}

int main(int argc, char **argv)
{
    uint64_t n = 1000000;
    const char *base = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            base = argv[++i];
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tf-ckpt-bench-%ld", base, (long)getpid());
    shape shapes[2] = {{.name = "cli"}, {.name = "lib", .lib = true}};
    printf("# ckpt: %" PRIu64 " tasks in %s\n", n, base);
    for (int k = 0; k < 2; k++) {
        shape *s = &shapes[k];
        bench_snapshot(dir, s, n, true, "core");
        bench_snapshot(dir, s, n, false, "sec2");
        char path[600];
        tf_ck_state_path(path, sizeof path, dir, REPS);
        off_t size = file_size(path);
        printf("ckpt_%s_snapshot_bytes %lld B\n", s->name, (long long)size);
        printf("ckpt_%s_snapshot_bytes_per_task %.1f B\n", s->name,
               (double)size / n);
        bench_raw(dir, s->name, (size_t)size);
        bench_load(dir, s->name, n);
        bench_journal(dir, s, n);
    }
    empty_dir(dir);
    return 0;
}
