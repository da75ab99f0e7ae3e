/* Benchmark: checkpoint of 1M tasks: size, stall, durability, load, journal. */
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
    char *bytes;   /* per task: the name (cli) and the command or input */
    uint64_t *dep; /* lib: task i depends on task i - 1 */
} shape;

#define CLI_NAME 10
#define CLI_CMD 40
#define LIB_IN 16
#define LIB_OUT 8

/* The table a scheduler would hold, built before anything is timed, so
   the getter only points into it. */
static void shape_build(shape *s, uint64_t n)
{
    size_t per = s->lib ? LIB_IN + LIB_OUT : CLI_NAME + CLI_CMD;
    char tmp[64];
    s->bytes = malloc(n * per);
    s->dep = malloc(n * sizeof *s->dep);
    if (!s->bytes || !s->dep) {
        fprintf(stderr, "ckpt bench: out of memory\n");
        exit(1);
    }
    for (uint64_t i = 0; i < n; i++) {
        char *p = s->bytes + i * per;
        s->dep[i] = i ? i - 1 : 0;
        if (!s->lib) {
            snprintf(tmp, sizeof tmp, "t%09" PRIu64, i);
            memcpy(p, tmp, CLI_NAME);
            snprintf(tmp, sizeof tmp,
                     "./simulate --case %010" PRIu64 " --seed 42..", i);
            memcpy(p + CLI_NAME, tmp, CLI_CMD);
        } else {
            memcpy(p, &i, 8);
            memcpy(p + 8, &i, 8);
            memcpy(p + LIB_IN, &i, 8);
        }
    }
}

static void get(void *user, uint64_t i, tf_ck_task *t)
{
    const shape *s = user;
    t->gid = i;
    t->parent = TF_CK_NONE;
    t->prio = (int32_t)(i % 7);
    t->cores = 1;
    t->state = i % 2 ? 4 : 2; /* half DONE, half READY */
    t->attempts = 1;
    t->rank = (int32_t)(i % 64);
    t->start_ns = i * 1000;
    t->end_ns = i * 1000 + 500;
    t->key = i * 0x9E3779B97F4A7C15ull;
    if (!s->lib) {
        const char *p = s->bytes + i * (CLI_NAME + CLI_CMD);
        t->name = p;
        t->name_len = CLI_NAME;
        t->cmd = p + CLI_NAME;
        t->cmd_len = CLI_CMD;
    } else {
        const char *p = s->bytes + i * (LIB_IN + LIB_OUT);
        t->name = "integrate";
        t->name_len = 9;
        t->cmd = p;
        t->cmd_len = LIB_IN;
        t->deps = &s->dep[i];
        t->ndeps = i ? 1 : 0;
        if (t->state == 4) {
            t->out = p + LIB_IN;
            t->out_len = LIB_OUT;
        }
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of this thread (user + system): what the caller spent itself,
   without the time other processes on a busy machine took from it. */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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
    tf_ck_meta m = {.kind = s->lib ? TF_CK_LIB : TF_CK_CLI,
                    .version = "0.1.0",
                    .world_size = 64};
    double block = 1e9, durable = 1e9, block_cpu = 1e9;
    for (int r = 0; r < REPS; r++) {
        double t0 = now(), c0 = cpu();
        if (tf_ck_snapshot(ck, &m, n, get, s))
            die("snapshot", tf_ck_error(ck));
        double t1 = now(), c1 = cpu();
        block_cpu = c1 - c0 < block_cpu ? c1 - c0 : block_cpu;
        if (tf_ck_wait(ck))
            die("wait", tf_ck_error(ck));
        double t2 = now();
        block = t1 - t0 < block ? t1 - t0 : block;
        durable = t2 - t0 < durable ? t2 - t0 : durable;
    }
    tf_ck_close(&ck);
    printf("ckpt_%s_%s_snapshot_block %.3f s\n", s->name, driver, block);
    printf("ckpt_%s_%s_snapshot_block_cpu %.3f s\n", s->name, driver,
           block_cpu);
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
    double best = 1e9, best_cpu = 1e9;
    for (int r = 0; r < REPS; r++) {
        tf_ck_state st;
        char err[512];
        double t0 = now(), c0 = cpu();
        if (tf_ck_load(dir, NULL, &st, err, sizeof err))
            die("load", err);
        double t1 = now(), c1 = cpu();
        best_cpu = c1 - c0 < best_cpu ? c1 - c0 : best_cpu;
        if (st.n != n)
            die("load", "wrong task count");
        tf_ck_state_free(&st);
        best = t1 - t0 < best ? t1 - t0 : best;
    }
    printf("ckpt_%s_load %.3f s\n", name, best);
    printf("ckpt_%s_load_cpu %.3f s\n", name, best_cpu);
}

/* FINISH records [from, from + n) as fast as the caller can hand them
   over; the wall time, and the caller's CPU time added to *cpu_s. */
static double append_records(tf_ck *ck, const shape *s, uint64_t from,
                             uint64_t n, double *cpu_s)
{
    double t0 = now(), c0 = cpu();
    for (uint64_t i = from; i < from + n; i++) {
        tf_ck_finish f = {.gid = i,
                          .key = i,
                          .attempt = 1,
                          .state = 4,
                          .rank = 1,
                          .start_ns = i,
                          .end_ns = i + 1};
        if (s->lib) {
            f.out = s->bytes + i * (LIB_IN + LIB_OUT) + LIB_IN;
            f.out_len = LIB_OUT;
        }
        if (tf_ck_finished(ck, &f))
            die("finished", tf_ck_error(ck));
    }
    *cpu_s += cpu() - c0;
    return now() - t0;
}

/*
 * Journal cost per record, three ways: "burst", all n records at once into
 * a fresh writer, whose buffer grows (and page-faults) as the burst
 * outruns the disk; "steady", n records again in groups of 50,000 (a 50 ms
 * group commit's worth at a million tasks a second), each group made
 * durable before the next (untimed), as when the disk keeps up; and the
 * time from the last record of a burst to all of it durable.
 */
#define GROUP 50000

static void bench_journal(const char *dir, const shape *s, uint64_t n)
{
    char err[512], path[600];
    tf_ck *ck;
    tf_ck_opts o = {0};
    double burst = 1e9, steady = 1e9, steady_cpu = 1e9, wait = 1e9;
    off_t bytes = 0;
    for (int r = 0; r < REPS; r++) {
        empty_dir(dir);
        if (tf_ck_open(dir, &o, &ck, err, sizeof err))
            die("open", err);
        double c = 0, w = 0, wc = 0;
        double b = append_records(ck, s, 0, n, &c);
        double t0 = now();
        if (tf_ck_wait(ck))
            die("wait", tf_ck_error(ck));
        double t1 = now();
        for (uint64_t i = 0; i < n; i += GROUP) {
            w += append_records(ck, s, i, n - i < GROUP ? n - i : GROUP, &wc);
            if (tf_ck_wait(ck))
                die("wait", tf_ck_error(ck));
        }
        if (tf_ck_close(&ck))
            die("close", "journal write failed");
        burst = b < burst ? b : burst;
        steady = w < steady ? w : steady;
        steady_cpu = wc < steady_cpu ? wc : steady_cpu;
        wait = t1 - t0 < wait ? t1 - t0 : wait;
        tf_ck_journal_path(path, sizeof path, dir, 1);
        bytes = file_size(path) - TF_CK_JHDR;
    }
    printf("ckpt_%s_journal_append %.1f ns\n", s->name, steady * 1e9 / n);
    printf("ckpt_%s_journal_append_cpu %.1f ns\n", s->name,
           steady_cpu * 1e9 / n);
    printf("ckpt_%s_journal_append_burst %.1f ns\n", s->name, burst * 1e9 / n);
    printf("ckpt_%s_journal_bytes_per_record %.1f B\n", s->name,
           (double)bytes / (2 * n));
    printf("ckpt_%s_journal_durable_after_burst %.3f s\n", s->name, wait);
}

/* The checksum every snapshot byte goes through on the caller's thread,
   as used (the SSE4.2 instruction where there is one), and by the tables. */
static void bench_crc(void)
{
    size_t n = 64u << 20;
    uint8_t *b = malloc(n);
    if (!b)
        die("crc", "out of memory");
    memset(b, 3, n);
    double best = 1e9, best_sw = 1e9;
    uint32_t x = 0;
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        x ^= tf_ck_crc32c(0, b, n);
        double t1 = now();
        x ^= tf_ck_crc32c_sw(0, b, n);
        double t2 = now();
        best = t1 - t0 < best ? t1 - t0 : best;
        best_sw = t2 - t1 < best_sw ? t2 - t1 : best_sw;
    }
    free(b);
    if (x != 0) /* both agree, so the XOR of pairs is 0 */
        die("crc", "the instruction and the tables disagree");
    printf("ckpt_crc32c_rate %.2f GB/s\n", n / best / 1e9);
    printf("ckpt_crc32c_tables_rate %.2f GB/s\n", n / best_sw / 1e9);
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
    bench_crc();
    for (int k = 0; k < 2; k++) {
        shape *s = &shapes[k];
        shape_build(s, n);
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
        free(s->bytes);
        free(s->dep);
    }
    empty_dir(dir);
    return 0;
}
