/* Tests of src/ckpt: real files, real HDF5, real crashes (kill -9, ENOSPC). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <hdf5.h>

#include "../unit/check.h"
#include "../unit/oom.h"
#include "ckpt/ckpt_int.h"
#include "h5edit.h"
#include "taskfarm.h"

/*
 * Every test works in its own fresh directory under one mkdtemp root,
 * removed at the end. A watchdog (alarm) turns a hang into a failure.
 */
#define WATCHDOG_S 120

static char root[256];
static int seq;

/* A fresh directory name under root (not created). */
static void fresh(char *dir, size_t len, const char *what)
{
    snprintf(dir, len, "%s/%s-%d", root, what, ++seq);
}

static void path_of(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static bool exists(const char *dir, const char *name)
{
    char p[1024];
    path_of(p, sizeof p, dir, name);
    return access(p, F_OK) == 0;
}

static void copy_file(const char *from, const char *to)
{
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    CHECK_EQ_I(system(cmd), 0);
}

/* ---- a logger that keeps warnings --------------------------------------- */

typedef struct logbook {
    int warnings;
    char last[1024];
} logbook;

static void sink(void *user, int level, int rank, const char *msg)
{
    logbook *lb = user;
    (void)rank;
    if (level <= TF_LOG_WARN) {
        lb->warnings++;
        snprintf(lb->last, sizeof lb->last, "%s", msg);
    }
}

static tf_logger logger(logbook *lb)
{
    memset(lb, 0, sizeof *lb);
    tf_logger lg = {.level = TF_LOG_WARN, .rank = 0, .sink = sink, .user = lb};
    return lg;
}

/* ---- a model of the state: tasks with their own copies of the bytes ------ */

typedef struct model {
    tf_ck_task *t;
    size_t n, cap;
} model;

static void *dup_bytes(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    if (n)
        memcpy(q, p, n);
    return q;
}

static void model_add(model *m, const tf_ck_task *t)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 1024;
        m->t = realloc(m->t, m->cap * sizeof *m->t);
    }
    tf_ck_task c = *t;
    c.name = dup_bytes(t->name, t->name_len);
    c.cmd = dup_bytes(t->cmd, t->cmd_len);
    c.deps = dup_bytes(t->deps, 8 * (size_t)t->ndeps);
    c.out = dup_bytes(t->out, t->out_len);
    m->t[m->n++] = c;
}

static void model_set_out(tf_ck_task *t, const void *out, uint32_t len)
{
    free((void *)t->out);
    t->out = dup_bytes(out, len);
    t->out_len = len;
}

static void model_free(model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free((void *)m->t[i].name);
        free((void *)m->t[i].cmd);
        free((void *)m->t[i].deps);
        free((void *)m->t[i].out);
    }
    free(m->t);
    memset(m, 0, sizeof *m);
}

static void model_get(void *user, uint64_t i, tf_ck_task *t)
{
    *t = ((model *)user)->t[i];
}

/*
 * Task i of a varied table: sparse gids, empty and binary names and
 * commands (with NUL bytes), 0-3 dependencies, DONE tasks with empty,
 * small binary and (task 3) 1 MiB outputs, negative numbers.
 */
static void gen_task(uint64_t i, tf_ck_task *t, uint8_t *buf)
{
    memset(t, 0, sizeof *t);
    t->gid = i * 3 + 1;
    t->parent = i % 5 ? (i / 2) * 3 + 1 : TF_CK_NONE;
    uint8_t *p = buf;
    if (i % 4) {
        t->name_len = (uint32_t)sprintf((char *)p, "task-%" PRIu64, i);
        t->name = (const char *)p;
        p += t->name_len;
    }
    t->cmd_len = (uint32_t)(i % 50);
    for (uint32_t k = 0; k < t->cmd_len; k++)
        p[k] = (uint8_t)(i * 7 + k);
    t->cmd = p;
    p += t->cmd_len;
    uint64_t *deps = (uint64_t *)(void *)(buf + 4096);
    t->ndeps = (uint32_t)(i < 4 ? i : i % 4);
    for (uint32_t k = 0; k < t->ndeps; k++)
        deps[k] = (i - k - 1) * 3 + 1;
    t->deps = deps;
    t->prio = (int32_t)(i % 11) - 5;
    t->cores = (uint16_t)(1 + i % 4);
    t->state = (uint8_t)(i % 7);
    t->attempts = (uint16_t)(i % 3);
    t->status = (int32_t)(i % 5) - 2;
    t->rank = (int32_t)(i % 6) - 1;
    t->start_ns = i * 1000000007ull;
    t->end_ns = t->start_ns + i % 1000;
    if (t->state == TF_TASK_DONE) {
        uint8_t *out = buf + 8192;
        t->out_len = i == 4 ? (1u << 20) : i % 9 == 0 ? 0 : (uint32_t)(i % 13);
        for (uint32_t k = 0; k < t->out_len; k++)
            out[k] = (uint8_t)(k ^ i);
        t->out = out;
    }
    t->key = tf_ck_key(t->name, t->name_len, t->cmd, t->cmd_len);
}

static void model_gen(model *m, uint64_t n)
{
    uint8_t *buf = malloc(8192 + (1u << 20));
    for (uint64_t i = 0; i < n; i++) {
        tf_ck_task t;
        gen_task(i, &t, buf);
        model_add(m, &t);
    }
    free(buf);
}

static bool bytes_eq(const void *a, const void *b, size_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}

/* Every field of every task, in order; the first difference into why
   (quiet: for a comparison that may rightly fail). */
static bool tasks_equal(const tf_ck_task *got, uint64_t n, const model *m,
                        char *why, size_t len)
{
    if (n != m->n) {
        snprintf(why, len, "%" PRIu64 " tasks, expected %zu", n, m->n);
        return false;
    }
    for (uint64_t i = 0; i < n; i++) {
        const tf_ck_task *a = &got[i], *b = &m->t[i];
        bool ok = a->gid == b->gid && a->key == b->key &&
                  a->parent == b->parent && a->prio == b->prio &&
                  a->cores == b->cores && a->state == b->state &&
                  a->attempts == b->attempts && a->status == b->status &&
                  a->rank == b->rank && a->start_ns == b->start_ns &&
                  a->end_ns == b->end_ns && a->name_len == b->name_len &&
                  a->cmd_len == b->cmd_len && a->ndeps == b->ndeps &&
                  a->out_len == b->out_len &&
                  bytes_eq(a->name, b->name, a->name_len) &&
                  bytes_eq(a->cmd, b->cmd, a->cmd_len) &&
                  bytes_eq(a->deps, b->deps, 8 * (size_t)a->ndeps) &&
                  bytes_eq(a->out, b->out, a->out_len);
        if (!ok) {
            snprintf(why, len,
                     "task %" PRIu64 " (gid %" PRIu64 " vs %" PRIu64
                     ") differs: state %u/%u attempts %u/%u out_len %u/%u",
                     i, a->gid, b->gid, a->state, b->state, a->attempts,
                     b->attempts, a->out_len, b->out_len);
            return false;
        }
    }
    return true;
}

/* The same, as a check that reports the first difference. */
static bool same_tasks(const tf_ck_task *got, uint64_t n, const model *m)
{
    char why[256];
    bool ok = tasks_equal(got, n, m, why, sizeof why);
    return CHECK_MSG(ok, "%s", why);
}

static tf_ck_meta meta_of(uint32_t kind)
{
    tf_ck_meta m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    snprintf(m.version, sizeof m.version, "0.1.0-test");
    m.source_hash = 0xfeedfacecafebeefull;
    m.world_size = 17;
    m.time_ns = 1700000000123456789ull;
    return m;
}

static tf_ck *open_ck(const char *dir, logbook *lb)
{
    tf_ck_opts o = {.sync_ms = 5, .log = logger(lb)};
    tf_ck *ck = NULL;
    char err[512] = "";
    int rc = tf_ck_open(dir, &o, &ck, err, sizeof err);
    CHECK_MSG(rc == 0, "tf_ck_open(%s): %s", dir, err);
    return ck;
}

/* A snapshot of m, made durable. */
static void snapshot(tf_ck *ck, model *m)
{
    tf_ck_meta meta = meta_of(TF_CK_LIB);
    CHECK_RC(tf_ck_snapshot(ck, &meta, m->n, model_get, m), 0);
    CHECK_RC(tf_ck_wait(ck), 0);
}

static int load(const char *dir, tf_ck_state *st, logbook *lb, char *err,
                size_t errlen)
{
    tf_logger lg = logger(lb);
    err[0] = 0;
    return tf_ck_load(dir, &lg, st, err, errlen);
}

/* A FINISH record and the same change in the model. */
static void finish(tf_ck *ck, model *m, size_t i, uint16_t attempt,
                   uint8_t state, const char *out)
{
    tf_ck_task *t = &m->t[i];
    tf_ck_finish f = {.gid = t->gid,
                      .key = t->key,
                      .attempt = attempt,
                      .state = state,
                      .status = state == TF_TASK_DONE ? 0 : 9,
                      .rank = 3,
                      .start_ns = 11,
                      .end_ns = 22,
                      .out = out,
                      .out_len = out ? (uint32_t)strlen(out) : 0};
    CHECK_RC(tf_ck_finished(ck, &f), 0);
    t->state = state;
    t->attempts = attempt;
    t->status = f.status;
    t->rank = 3;
    t->start_ns = 11;
    t->end_ns = 22;
    model_set_out(t, out, state == TF_TASK_DONE ? f.out_len : 0);
}

/* ---- tests --------------------------------------------------------------- */

static void test_constants(void)
{
    /* The CRC32C check value of "123456789" (RFC 3720). */
    CHECK_EQ_U(tf_ck_crc32c(0, "123456789", 9), 0xE3069283u);
    uint8_t big[1000];
    for (int i = 0; i < 1000; i++)
        big[i] = (uint8_t)(i * 31);
    CHECK_EQ_U(tf_ck_crc32c(tf_ck_crc32c(0, big, 333), big + 333, 667),
               tf_ck_crc32c(0, big, 1000));
    /* The instruction (where there is one) and the tables agree, at every
       alignment and length. */
    CHECK_EQ_U(tf_ck_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len < 40; len++)
            if (!CHECK_EQ_U(tf_ck_crc32c(7, big + off, len * 23 % 991),
                            tf_ck_crc32c_sw(7, big + off, len * 23 % 991)))
                return;
    CHECK_TRUE(tf_ck_key("ab", 2, "c", 1) != tf_ck_key("a", 1, "bc", 2));
    CHECK_EQ_U(tf_ck_key("x", 1, "y", 1), tf_ck_key("x", 1, "y", 1));
}

static void test_empty(void)
{
    char dir[512], err[512];
    tf_ck_state st;
    logbook lb;
    fresh(dir, sizeof dir, "none");
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), TF_ENOENT);
    CHECK_EQ_I(mkdir(dir, 0755), 0);
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), TF_ENOENT);
    CHECK_MSG(strstr(err, dir) != NULL, "error names the directory: %s", err);
    /* A snapshot of no tasks is a valid state. */
    tf_ck *ck = open_ck(dir, &lb);
    model m = {0};
    snapshot(ck, &m);
    CHECK_RC(tf_ck_close(&ck), 0);
    CHECK_TRUE(ck == NULL);
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_EQ_U(st.n, 0);
    tf_ck_state_free(&st);
}

#define N_ROUND 70000 /* more than one 65536-task block */

static void test_round_trip(void)
{
    char dir[512], err[512];
    logbook lb;
    fresh(dir, sizeof dir, "round");
    model m = {0};
    model_gen(&m, N_ROUND);
    tf_ck *ck = open_ck(dir, &lb);
    tf_ck_meta meta = meta_of(TF_CK_LIB);
    CHECK_RC(tf_ck_snapshot(ck, &meta, m.n, model_get, &m), 0);
    CHECK_RC(tf_ck_wait(ck), 0);
    CHECK_FALSE(tf_ck_busy(ck));
    CHECK_EQ_I(strlen(tf_ck_error(ck)), 0);

    /* On top, in the journal: finished attempts of snapshotted tasks ... */
    for (size_t i = 0; i < 200; i++)
        if (m.t[i].state != TF_TASK_DONE)
            finish(ck, &m, i, (uint16_t)(m.t[i].attempts + 1),
                   i % 2 ? TF_TASK_DONE : TF_TASK_FAILED,
                   i % 3 ? "result" : "");
    /* ... and dynamic tasks, some finished, one with a large output. */
    uint8_t *buf = malloc(8192 + (1u << 20));
    for (uint64_t k = 0; k < 300; k++) {
        tf_ck_task t;
        gen_task(k + 1, &t, buf);
        t.gid = (5ull << 32) + k;
        t.parent = 3 * k + 1;
        if (k == 7) {
            t.state = TF_TASK_DONE;
            t.out = buf + 8192;
            t.out_len = 1u << 20;
        }
        CHECK_RC(tf_ck_submitted(ck, &t), 0);
        model_add(&m, &t);
    }
    free(buf);
    finish(ck, &m, N_ROUND + 5, 1, TF_TASK_DONE, "dynamic result");
    /* A submit record for a gid already known changes nothing. */
    tf_ck_task dup = m.t[10];
    dup.prio = 1234;
    CHECK_RC(tf_ck_submitted(ck, &dup), 0);
    CHECK_RC(tf_ck_close(&ck), 0);

    tf_ck_state st;
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_MSG(err[0] == 0, "no error text on success: %s", err);
    CHECK_EQ_I(lb.warnings, 0);
    CHECK_FALSE(st.fell_back);
    same_tasks(st.task, st.n, &m);
    CHECK_EQ_U(st.meta.kind, TF_CK_LIB);
    CHECK_EQ_I(strcmp(st.meta.version, "0.1.0-test"), 0);
    CHECK_EQ_U(st.meta.source_hash, meta.source_hash);
    CHECK_EQ_I(st.meta.world_size, 17);
    CHECK_EQ_U(st.meta.time_ns, meta.time_ns);
    CHECK_EQ_U(st.meta.generation, 1);
    CHECK_EQ_U(st.meta.journal_id, 1);
    CHECK_EQ_U(st.meta.journal_pos, TF_CK_JHDR);
    CHECK_TRUE(st.replayed >= 300);
    tf_ck_state_free(&st);

    /* h5dump (the HDF5 tools) opens the snapshot. */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "h5dump -H '%s/state-1.h5' > /dev/null", dir);
    CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
    snprintf(cmd, sizeof cmd,
             "h5dump -a /format '%s/state-1.h5' | grep -q taskfarm-state", dir);
    CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
    model_free(&m);
}

/* Later attempts win, DONE is final, unknown gids get a row. */
static void test_replay_rules(void)
{
    char dir[512], err[512];
    logbook lb;
    fresh(dir, sizeof dir, "rules");
    tf_ck *ck = open_ck(dir, &lb);
    tf_ck_finish f = {.gid = 42,
                      .key = 7,
                      .attempt = 1,
                      .state = TF_TASK_FAILED,
                      .status = 1,
                      .rank = 2};
    CHECK_RC(tf_ck_finished(ck, &f), 0);
    f.attempt = 2;
    f.state = TF_TASK_DONE;
    f.status = 0;
    f.out = "ok";
    f.out_len = 2;
    CHECK_RC(tf_ck_finished(ck, &f), 0);
    f.attempt = 3; /* a duplicate run after DONE: ignored */
    f.state = TF_TASK_FAILED;
    f.status = 5;
    CHECK_RC(tf_ck_finished(ck, &f), 0);
    tf_ck_finish g = {.gid = 43,
                      .key = 8,
                      .attempt = 2,
                      .state = TF_TASK_FAILED,
                      .status = 4};
    CHECK_RC(tf_ck_finished(ck, &g), 0);
    g.attempt = 1; /* an older attempt reported late: ignored */
    g.status = 6;
    CHECK_RC(tf_ck_finished(ck, &g), 0);
    CHECK_RC(tf_ck_close(&ck), 0);

    /* No snapshot: the state comes from the journal alone. */
    tf_ck_state st;
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_EQ_U(st.n, 2);
    CHECK_EQ_U(st.replayed, 5);
    CHECK_EQ_U(st.meta.generation, 0);
    if (st.n == 2) {
        CHECK_EQ_U(st.task[0].gid, 42);
        CHECK_EQ_U(st.task[0].key, 7);
        CHECK_EQ_U(st.task[0].state, TF_TASK_DONE);
        CHECK_EQ_U(st.task[0].attempts, 2);
        CHECK_EQ_I(st.task[0].status, 0);
        CHECK_EQ_U(st.task[0].out_len, 2);
        CHECK_TRUE(bytes_eq(st.task[0].out, "ok", 2));
        CHECK_EQ_U(st.task[0].parent, TF_CK_NONE);
        CHECK_EQ_U(st.task[1].state, TF_TASK_FAILED);
        CHECK_EQ_U(st.task[1].attempts, 2);
        CHECK_EQ_I(st.task[1].status, 4);
    }
    tf_ck_state_free(&st);
}

/* Two generations kept, older ones and unneeded journals deleted. */
static void test_generations(void)
{
    char dir[512], err[512];
    logbook lb;
    fresh(dir, sizeof dir, "gens");
    model m = {0};
    model_gen(&m, 100);
    tf_ck *ck = open_ck(dir, &lb); /* journal 1 */
    snapshot(ck, &m);              /* generation 1, journal 1 */
    finish(ck, &m, 1, 5, TF_TASK_DONE, "a");
    snapshot(ck, &m); /* 2, journal 1 */
    CHECK_RC(tf_ck_close(&ck), 0);
    CHECK_TRUE(exists(dir, "state-1.h5") && exists(dir, "state-2.h5"));

    ck = open_ck(dir, &lb); /* journal 2 */
    finish(ck, &m, 2, 5, TF_TASK_DONE, "b");
    snapshot(ck, &m); /* 3, journal 2: keeps 2 and 3 */
    CHECK_RC(tf_ck_wait(ck), 0);
    CHECK_FALSE(exists(dir, "state-1.h5"));
    CHECK_TRUE(exists(dir, "state-2.h5") && exists(dir, "state-3.h5"));
    CHECK_TRUE(exists(dir, "journal-1.tfj")); /* generation 2 needs it */
    finish(ck, &m, 3, 5, TF_TASK_DONE, "c");
    snapshot(ck, &m); /* 4: keeps 3 and 4, journals from 2 on */
    CHECK_FALSE(exists(dir, "state-2.h5"));
    CHECK_TRUE(exists(dir, "state-3.h5") && exists(dir, "state-4.h5"));
    CHECK_FALSE(exists(dir, "journal-1.tfj"));
    CHECK_TRUE(exists(dir, "journal-2.tfj"));
    finish(ck, &m, 5, 5, TF_TASK_DONE, "d"); /* in the journal only */
    CHECK_RC(tf_ck_close(&ck), 0);
    CHECK_FALSE(exists(dir, "state-4.h5.tmp"));

    tf_ck_state st;
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_EQ_U(st.meta.generation, 4);
    CHECK_EQ_U(st.replayed, 1);
    same_tasks(st.task, st.n, &m);
    tf_ck_state_free(&st);
    model_free(&m);
}

/*
 * Two generations with journal records between and after them; returns the
 * directory (gen 1 and 2) and the model of the final state.
 */
static void two_generations(char *dir, size_t len, const char *what, model *m)
{
    logbook lb;
    fresh(dir, len, what);
    memset(m, 0, sizeof *m);
    model_gen(m, 2000);
    tf_ck *ck = open_ck(dir, &lb);
    snapshot(ck, m);
    for (size_t i = 0; i < 40; i++)
        if (m->t[i].state != TF_TASK_DONE)
            finish(ck, m, i, 7, TF_TASK_DONE, "between");
    snapshot(ck, m);
    for (size_t i = 40; i < 80; i++)
        if (m->t[i].state != TF_TASK_DONE)
            finish(ck, m, i, 7, TF_TASK_DONE, "after");
    CHECK_RC(tf_ck_close(&ck), 0);
}

static off_t size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : st.st_size;
}

static void truncate_to(const char *path, off_t len)
{
    CHECK_EQ_I(truncate(path, len), 0);
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    uint8_t b = 0;
    CHECK_TRUE(fd >= 0 && pread(fd, &b, 1, at) == 1);
    b ^= 0x5a;
    CHECK_TRUE(pwrite(fd, &b, 1, at) == 1);
    close(fd);
}

/* Damage of the newest snapshot: the previous generation plus the journal
   give the same final state, with a warning. */
static void test_damaged_newest(void)
{
    char dir[512], err[512], path[700], good[700];
    model m;
    logbook lb;
    two_generations(dir, sizeof dir, "damaged", &m);
    path_of(path, sizeof path, dir, "state-2.h5");
    path_of(good, sizeof good, dir, "good.bak");
    copy_file(path, good);
    off_t size = size_of(path);
    CHECK_TRUE(size > 4096);

    /* Truncated at several places, then single bytes flipped throughout
       the file: either the damage is caught and generation 1 is used, or
       it hit bytes nothing reads; the state must be right either way. */
    off_t cuts[] = {0, 100, size / 3, size / 2, size - 1};
    int detected = 0, trials = 0;
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        copy_file(good, path);
        truncate_to(path, cuts[k]);
        tf_ck_state st;
        CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
        CHECK_MSG(st.fell_back, "truncation at %lld not detected",
                  (long long)cuts[k]);
        CHECK_MSG(lb.warnings >= 1 && strstr(lb.last, "state-2.h5"),
                  "warning names the file: '%s'", lb.last);
        CHECK_EQ_U(st.meta.generation, 1);
        same_tasks(st.task, st.n, &m);
        tf_ck_state_free(&st);
    }
    for (off_t at = 0; at < size; at += size / 61 + 1) {
        copy_file(good, path);
        flip_byte(path, at);
        tf_ck_state st;
        int rc = load(dir, &st, &lb, err, sizeof err);
        if (!CHECK_MSG(rc == 0, "flip at %lld: %s", (long long)at, err))
            continue;
        trials++;
        detected += st.fell_back;
        if (st.fell_back)
            CHECK_TRUE(lb.warnings >= 1 && strstr(lb.last, "state-2.h5"));
        CHECK_MSG(same_tasks(st.task, st.n, &m), "flip at %lld", (long long)at);
        tf_ck_state_free(&st);
    }
    /* Most of the file is checksummed data or metadata. */
    CHECK_MSG(detected * 2 > trials, "only %d of %d flips detected", detected,
              trials);
    printf("\n  flipped bytes detected: %d of %d in %lld bytes\n", detected,
           trials, (long long)size);
    model_free(&m);
}

/* A writer opened after a fallback sets the damaged generation aside, so
   the first new snapshot's clean-up keeps the generation that loaded. */
static void test_resume_after_fallback(void)
{
    char dir[512], err[512], path[700];
    model m;
    logbook lb;
    two_generations(dir, sizeof dir, "aside", &m);
    path_of(path, sizeof path, dir, "state-2.h5");
    truncate_to(path, size_of(path) / 2);
    tf_ck_state st;
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_TRUE(st.fell_back);
    CHECK_EQ_U(st.meta.generation, 1);
    tf_ck_opts o = {.sync_ms = 5, .loaded_gen = st.meta.generation,
                    .log = logger(&lb)};
    tf_ck_state_free(&st);
    tf_ck *ck = NULL;
    CHECK_RC(tf_ck_open(dir, &o, &ck, err, sizeof err), 0);
    CHECK_TRUE(exists(dir, "state-2.h5.damaged") && !exists(dir, "state-2.h5"));
    snapshot(ck, &m);
    CHECK_RC(tf_ck_close(&ck), 0);
    CHECK_TRUE(exists(dir, "state-1.h5") && exists(dir, "state-2.h5"));
    /* The new generation loads, and so does the old one without it. */
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_TRUE(!st.fell_back && st.meta.generation == 2);
    CHECK_TRUE(same_tasks(st.task, st.n, &m));
    tf_ck_state_free(&st);
    path_of(path, sizeof path, dir, "state-2.h5");
    truncate_to(path, 100);
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_TRUE(st.fell_back && st.meta.generation == 1);
    CHECK_TRUE(same_tasks(st.task, st.n, &m));
    tf_ck_state_free(&st);
    model_free(&m);
}

static void test_both_bad(void)
{
    char dir[512], err[512], path[700];
    model m;
    logbook lb;
    two_generations(dir, sizeof dir, "bothbad", &m);
    path_of(path, sizeof path, dir, "state-2.h5");
    truncate_to(path, size_of(path) / 2);
    path_of(path, sizeof path, dir, "state-1.h5");
    flip_byte(path, size_of(path) / 2);
    flip_byte(path, size_of(path) / 2 + 1000);
    flip_byte(path, size_of(path) - 2000);
    tf_ck_state st;
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), TF_EIO);
    CHECK_MSG(strstr(err, "state-2.h5") && strstr(err, "state-1.h5"),
              "error names both files: %s", err);
    model_free(&m);
}

/* Writes a plain HDF5 file (no taskfarm attributes) at path. */
static void write_foreign_h5(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t d = 4;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t ds = H5Dcreate2(f, "x", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
    int v[4] = {1, 2, 3, 4};
    CHECK_TRUE(f >= 0 && ds >= 0 &&
               H5Dwrite(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >=
                   0);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
}

static void set_version(const char *path, uint32_t v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    CHECK_TRUE(f >= 0 && a >= 0 && H5Awrite(a, H5T_NATIVE_UINT32, &v) >= 0);
    H5Aclose(a);
    H5Fclose(f);
}

static void test_foreign(void)
{
    char dir[512], err[512], path[700];
    logbook lb;
    tf_ck_state st;

    fresh(dir, sizeof dir, "text");
    CHECK_EQ_I(mkdir(dir, 0755), 0);
    path_of(path, sizeof path, dir, "state-1.h5");
    FILE *f = fopen(path, "w");
    fputs("this is not a checkpoint\n", f);
    fclose(f);
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), TF_EIO);
    CHECK_MSG(strstr(err, "foreign") && strstr(err, "state-1.h5"),
              "text file: %s", err);

    fresh(dir, sizeof dir, "otherh5");
    CHECK_EQ_I(mkdir(dir, 0755), 0);
    path_of(path, sizeof path, dir, "state-1.h5");
    write_foreign_h5(path);
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), TF_EIO);
    CHECK_MSG(strstr(err, "foreign") && strstr(err, "not a taskfarm state"),
              "other HDF5 file: %s", err);

    /* A format version from the future, alone and as the newest. */
    model m;
    two_generations(dir, sizeof dir, "future", &m);
    path_of(path, sizeof path, dir, "state-2.h5");
    set_version(path, TF_CK_FORMAT + 1);
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_TRUE(st.fell_back);
    CHECK_MSG(strstr(lb.last, "newer"), "warning: %s", lb.last);
    same_tasks(st.task, st.n, &m);
    tf_ck_state_free(&st);
    path_of(path, sizeof path, dir, "state-1.h5");
    set_version(path, 99);
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), TF_EIO);
    CHECK_MSG(strstr(err, "foreign") && strstr(err, "version 99 is newer"),
              "future version: %s", err);
    model_free(&m);

    /* A journal that is not one is skipped with a warning. */
    fresh(dir, sizeof dir, "badjournal");
    CHECK_EQ_I(mkdir(dir, 0755), 0);
    path_of(path, sizeof path, dir, "journal-1.tfj");
    f = fopen(path, "w");
    fputs("0123456789abcdef0123456789abcdef0123456789", f);
    fclose(f);
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_EQ_U(st.n, 0);
    CHECK_MSG(lb.warnings == 1 && strstr(lb.last, "foreign"), "warning: %s",
              lb.last);
    tf_ck_state_free(&st);
}

/* n DONE records for gids 0..n-1 in a fresh directory; the journal path. */
static void journal_of(char *dir, size_t len, const char *what, int n,
                       char *jpath, size_t jlen)
{
    logbook lb;
    fresh(dir, len, what);
    tf_ck *ck = open_ck(dir, &lb);
    for (int i = 0; i < n; i++) {
        char out[32];
        snprintf(out, sizeof out, "out-%d", i);
        tf_ck_finish f = {.gid = (uint64_t)i,
                          .key = 1,
                          .attempt = 1,
                          .state = TF_TASK_DONE,
                          .out = out,
                          .out_len = (uint32_t)strlen(out)};
        CHECK_RC(tf_ck_finished(ck, &f), 0);
    }
    CHECK_RC(tf_ck_close(&ck), 0);
    path_of(jpath, jlen, dir, "journal-1.tfj");
}

/* The loaded state holds exactly gids 0..n-1, each with its output. */
static void check_prefix(const tf_ck_state *st, uint64_t n)
{
    CHECK_EQ_U(st->n, n);
    for (uint64_t i = 0; i < st->n && i < n; i++) {
        char out[32];
        int len = snprintf(out, sizeof out, "out-%" PRIu64, i);
        if (!CHECK_MSG(st->task[i].gid == i &&
                           st->task[i].out_len == (uint32_t)len &&
                           bytes_eq(st->task[i].out, out, (size_t)len),
                       "record %" PRIu64 " wrong", i))
            break;
    }
}

static void test_torn_journal(void)
{
    char dir[512], err[512], jpath[700];
    logbook lb;
    tf_ck_state st;
    journal_of(dir, sizeof dir, "torn", 100, jpath, sizeof jpath);
    off_t size = size_of(jpath);
    /* Every record here is the same size, about 64 bytes. */
    off_t rec = (size - TF_CK_JHDR) / 100;
    CHECK_EQ_I((size - TF_CK_JHDR) % 100, 0);

    truncate_to(jpath, TF_CK_JHDR + 60 * rec + rec / 2); /* mid-record */
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    check_prefix(&st, 60);
    CHECK_MSG(lb.warnings == 1 && strstr(lb.last, "journal-1.tfj") &&
                  strstr(lb.last, "torn"),
              "warning: %s", lb.last);
    char off[32];
    snprintf(off, sizeof off, "offset %lld",
             (long long)(TF_CK_JHDR + 60 * rec));
    CHECK_MSG(strstr(lb.last, off) != NULL, "warning names %s: %s", off,
              lb.last);
    tf_ck_state_free(&st);

    truncate_to(jpath, TF_CK_JHDR + 50 * rec + 5); /* mid-header */
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    check_prefix(&st, 50);
    CHECK_EQ_I(lb.warnings, 1);
    tf_ck_state_free(&st);

    /* A flipped byte in record 20's payload, then in record 10's header. */
    flip_byte(jpath, TF_CK_JHDR + 20 * rec + 30);
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    check_prefix(&st, 20);
    CHECK_MSG(strstr(lb.last, "checksum"), "warning: %s", lb.last);
    tf_ck_state_free(&st);
    flip_byte(jpath, TF_CK_JHDR + 10 * rec + 1);
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    check_prefix(&st, 10);
    tf_ck_state_free(&st);

    /* A later journal (a later run) is still replayed after a torn one. */
    logbook lb2;
    tf_ck *ck = open_ck(dir, &lb2);
    char out[32] = "out-10";
    tf_ck_finish f = {.gid = 10,
                      .key = 1,
                      .attempt = 1,
                      .state = TF_TASK_DONE,
                      .out = out,
                      .out_len = 6};
    CHECK_RC(tf_ck_finished(ck, &f), 0);
    CHECK_RC(tf_ck_close(&ck), 0);
    CHECK_TRUE(exists(dir, "journal-2.tfj"));
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    check_prefix(&st, 11);
    tf_ck_state_free(&st);
}

/* ---- hostile files: every field as an attacker would set it ----------- */

/*
 * tf_ck_load in a forked child, so that a loader that crashes or hangs on a
 * hostile file fails the test instead of ending the suite. The child
 * compares the loaded state with m (if given) and sends what it saw.
 */
typedef struct outcome {
    int rc, warnings;
    bool died, fell_back, same;
    uint64_t generation, n, replayed;
    char err[512], last[1024];
} outcome;

static outcome load_isolated(const char *dir, const model *m)
{
    outcome o;
    memset(&o, 0, sizeof o);
    int fd[2];
    if (!CHECK_EQ_I(pipe(fd), 0))
        return o;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        alarm(30); /* the watchdog: a hang is a death too */
        logbook lb;
        tf_ck_state st;
        o.rc = load(dir, &st, &lb, o.err, sizeof o.err);
        o.warnings = lb.warnings;
        snprintf(o.last, sizeof o.last, "%s", lb.last);
        if (o.rc == 0) {
            o.fell_back = st.fell_back;
            o.generation = st.meta.generation;
            o.n = st.n;
            o.replayed = st.replayed;
            char why[256];
            o.same = m && tasks_equal(st.task, st.n, m, why, sizeof why);
            tf_ck_state_free(&st);
        }
        _exit(write(fd[1], &o, sizeof o) == (ssize_t)sizeof o ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = pid > 0 ? read(fd[0], &o, sizeof o) : -1;
    close(fd[0]);
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof o || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        o.died = true;
        snprintf(o.err, sizeof o.err, "the loader died (%s %d)",
                 WIFSIGNALED(status) ? "signal" : "exit status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
    return o;
}

/* The load used generation 1, whole, and a warning named generation 2 and
   said why, containing `why`. */
static bool fell_back_past_2(const char *dir, const model *m, const char *why,
                             const char *what)
{
    outcome o = load_isolated(dir, m);
    return CHECK_MSG(!o.died && o.rc == 0, "%s: rc %d: %s", what, o.rc,
                     o.err) &&
           CHECK_MSG(o.fell_back && o.generation == 1 && o.same,
                     "%s: fell back %d to generation %" PRIu64
                     ", state as before %d",
                     what, o.fell_back, o.generation, o.same) &&
           CHECK_MSG(strstr(o.last, "state-2.h5") && strstr(o.last, why),
                     "%s: the warning names state-2.h5 and says '%s': %s", what,
                     why, o.last);
}

/*
 * A directory whose generation 1 holds m (50 tasks, journal 1 after it) and
 * whose generation 2 (gen2, written as the writer would, with the first n2
 * tasks of m) is there to be made hostile through the HDF5 API.
 */
static void hostile_dir(char *dir, size_t len, const char *what, model *m,
                        uint64_t n2, char *gen2, size_t glen)
{
    logbook lb;
    char err[512];
    fresh(dir, len, what);
    memset(m, 0, sizeof *m);
    model_gen(m, 50);
    tf_ck *ck = open_ck(dir, &lb);
    snapshot(ck, m);
    CHECK_RC(tf_ck_close(&ck), 0);
    tf_ck_meta meta = meta_of(TF_CK_LIB);
    meta.generation = 2;
    meta.journal_id = 1;
    meta.journal_pos = TF_CK_JHDR;
    model part = *m;
    part.n = n2;
    path_of(gen2, glen, dir, "state-2.h5");
    CHECK_MSG(tf_ck_snap_write(gen2, &meta, n2, model_get, &part, NULL, err,
                               sizeof err) == 0,
              "%s", err);
}

/* ---- the edits of h5edit.h, checked ----------------------------------- */

static hid_t h5_edit(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK_MSG(f >= 0, "cannot open %s", path);
    return f;
}

static void h5_attr(hid_t obj, const char *name, hid_t mtype, const void *v)
{
    CHECK_MSG(h5e_attr(obj, name, mtype, v), "attribute %s", name);
}

static void h5_extent(hid_t f, const char *ds, uint64_t len)
{
    CHECK_MSG(h5e_extent(f, ds, len), "extent of %s", ds);
}

static void h5_poke(hid_t f, const char *ds, uint64_t at, uint64_t v)
{
    CHECK_MSG(h5e_poke(f, ds, at, v, true), "poke %s[%" PRIu64 "]", ds, at);
}

static void h5_cut_one(hid_t f, const char *ds)
{
    CHECK_MSG(h5e_cut_one(f, ds), "cut %s", ds);
}

static void h5_remake(hid_t f, const char *ds, hid_t ftype, hid_t dcpl)
{
    CHECK_MSG(h5e_remake(f, ds, ftype, dcpl), "remake %s", ds);
}

/*
 * Claims n tasks: the attribute, and every column and offsets made sparse
 * to match, all zeros, so that every size agrees with every other and the
 * offsets (all 0, for empty names, commands and so on) are valid.
 */
static void claim_tasks(const char *path, uint64_t n)
{
    hid_t f = h5_edit(path);
    h5_attr(f, "n", H5T_NATIVE_UINT64, &n);
    for (size_t c = 0; c < H5E_NSIZED; c++) {
        const struct h5e_ds *d = &h5e_datasets[c];
        CHECK_MSG(
            h5e_sparse(f, d->path, *d->ftype, c < H5E_NCOLS ? n : n + 1, 0),
            "cannot make %s sparse", d->path);
    }
    H5Fclose(f);
}

/*
 * A task count whose task array size wraps around 2^64 (n * 120 = 2^64 +
 * 104): the loader once allocated 104 bytes and built 65,536 tasks into
 * them, as every value it checked before (offsets all 0) was fine.
 */
static void test_hostile_count_wraps(void)
{
    char dir[512], gen2[700];
    model m;
    hostile_dir(dir, sizeof dir, "wrap", &m, 0, gen2, sizeof gen2);
    uint64_t n = UINT64_MAX / sizeof(tf_ck_task) + 1;
    CHECK_TRUE(n * sizeof(tf_ck_task) < 1024); /* it does wrap */
    claim_tasks(gen2, n);
    fell_back_past_2(dir, &m, "tasks", "n*120 wraps");
    model_free(&m);
}

/* 2^40 tasks on sparse datasets: once "out of memory loading the state",
   naming no file, and no fallback. */
static void test_hostile_count_huge(void)
{
    char dir[512], gen2[700];
    model m;
    hostile_dir(dir, sizeof dir, "huge", &m, 0, gen2, sizeof gen2);
    claim_tasks(gen2, 1ull << 40);
    fell_back_past_2(dir, &m, "tasks", "2^40 tasks");
    model_free(&m);
}

/*
 * Sizes, types and values that disagree with each other, with the file or
 * with the format, each alone in an otherwise good file with matching
 * checksums. Among them packed data arrays grown sparsely: 2^40 bytes of
 * commands (once an allocation of 1 TiB), 2^61 dependencies, whose size in
 * bytes wraps to 0 (once a buffer of 0 bytes that HDF5 was then asked to
 * read 2^61 entries into: a hang, or a crash under ASan).
 */
static void test_hostile_fields(void)
{
    char dir[512], gen2[700], good[720];
    model m;
    hostile_dir(dir, sizeof dir, "fields", &m, 40, gen2, sizeof gen2);
    snprintf(good, sizeof good, "%s.good", gen2);
    copy_file(gen2, good);
    hid_t deflate = H5Pcreate(H5P_DATASET_CREATE), contig = H5P_DEFAULT;
    hsize_t chunk = 8;
    H5Pset_chunk(deflate, 1, &chunk);
    H5Pset_deflate(deflate, 6);
    for (int k = 0; k < 16; k++) {
        copy_file(good, gen2);
        hid_t f = h5_edit(gen2);
        uint64_t n41 = 41;
        const char *what = "", *why = "corrupt";
        switch (k) {
        case 0:
            what = "a column one entry short";
            h5_cut_one(f, "/task/prio");
            break;
        case 1:
            what = "offsets one entry long";
            h5_extent(f, "/name/offsets", 42);
            break;
        case 2:
            what = "n one more than the columns";
            h5_attr(f, "n", H5T_NATIVE_UINT64, &n41);
            break;
        case 3:
            what = "the last offset past the data";
            h5_poke(f, "/cmd/offsets", 40, 1u << 20);
            break;
        case 4:
            what = "an offset far past the end";
            h5_poke(f, "/cmd/offsets", 7, 1ull << 40);
            break;
        case 5:
            what = "decreasing offsets";
            h5_poke(f, "/cmd/offsets", 7, 0);
            break;
        case 6:
            what = "the first offset not 0";
            h5_poke(f, "/deps/offsets", 0, 1);
            break;
        case 7:
            what = "data one byte short of the offsets";
            h5_cut_one(f, "/cmd/data");
            break;
        case 8:
            what = "a state that does not exist";
            h5_poke(f, "/task/state", 3, 9);
            why = "state";
            break;
        case 9:
            what = "8-byte ids stored as bytes";
            h5_remake(f, "/task/gid", H5T_STD_U8LE, contig);
            why = "integers";
            break;
        case 10:
            what = "a compressed column";
            h5_remake(f, "/task/prio", H5T_STD_I32LE, deflate);
            why = "filter";
            break;
        case 11:
            what = "a column that links to another file";
            CHECK_TRUE(H5Ldelete(f, "/task/gid", H5P_DEFAULT) >= 0);
            CHECK_TRUE(H5Lcreate_external(good, "/task/gid", f, "/task/gid",
                                          H5P_DEFAULT, H5P_DEFAULT) >= 0);
            why = "link";
            break;
        case 12:
            what = "a group in place of a column";
            CHECK_TRUE(H5Ldelete(f, "/task/key", H5P_DEFAULT) >= 0);
            H5Gclose(H5Gcreate2(f, "/task/key", H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT));
            break;
        case 13:
            what = "2^40 bytes of commands, sparse";
            h5_extent(f, "/cmd/data", 1ull << 40);
            break;
        case 14:
            what = "2^61 dependencies, sparse";
            h5_extent(f, "/deps/data", 1ull << 61);
            break;
        case 15:
            what = "2^62 - 1 bytes of outputs, sparse";
            h5_extent(f, "/out/data", (1ull << 62) - 1);
            break;
        }
        H5Fclose(f);
        fell_back_past_2(dir, &m, why, what);
    }
    H5Pclose(deflate);
    model_free(&m);
}

/*
 * State files that are not files: a FIFO named like a snapshot or a
 * journal once blocked the load for ever (H5Fis_hdf5 and open(2) wait for
 * a writer); now each is refused as not a regular file, with a warning.
 */
static void test_hostile_not_files(void)
{
    char dir[512], gen2[700], j2[700];
    model m;
    hostile_dir(dir, sizeof dir, "fifo", &m, 0, gen2, sizeof gen2);
    CHECK_EQ_I(unlink(gen2), 0);
    CHECK_EQ_I(mkfifo(gen2, 0644), 0);
    path_of(j2, sizeof j2, dir, "journal-2.tfj");
    CHECK_EQ_I(mkfifo(j2, 0644), 0);
    outcome o = load_isolated(dir, &m);
    CHECK_MSG(!o.died && o.rc == 0, "rc %d: %s", o.rc, o.err);
    CHECK_MSG(o.fell_back && o.generation == 1 && o.same,
              "fell back %d to generation %" PRIu64 ", state as before %d",
              o.fell_back, o.generation, o.same);
    CHECK_MSG(o.warnings == 2 && strstr(o.last, "journal-2.tfj") &&
                  strstr(o.last, "not a regular file"),
              "%d warnings, the last: %s", o.warnings, o.last);
    model_free(&m);
}

/* ---- allocation failures on purpose (../unit/oom.h) ----------------- */

/*
 * A checksum is checked before its data is used: a snapshot whose state
 * column fails its checksum is refused before the task array (120 bytes a
 * task) is allocated or filled. The loader once allocated and built every
 * block first and compared the checksums at the end.
 */
static void test_checksum_before_use(void)
{
    char dir[512], gen2[700];
    model m, big = {0};
    hostile_dir(dir, sizeof dir, "crcfirst", &m, 0, gen2, sizeof gen2);
    model_gen(&big, N_ROUND);
    tf_ck_meta meta = meta_of(TF_CK_LIB);
    meta.generation = 2;
    meta.journal_id = 1;
    meta.journal_pos = TF_CK_JHDR;
    char err[512];
    CHECK_MSG(tf_ck_snap_write(gen2, &meta, big.n, model_get, &big, NULL, err,
                               sizeof err) == 0,
              "%s", err);
    hid_t f = h5_edit(gen2), d = H5Dopen2(f, "/task/state", H5P_DEFAULT);
    uint32_t crc = 12345;
    h5_attr(d, "crc32c", H5T_NATIVE_UINT32, &crc);
    H5Dclose(d);
    H5Fclose(f);
    logbook lb;
    tf_ck_state st;
    oom o;
    oom_start(&o, OOM_ONCE, 0);
    int rc = load(dir, &st, &lb, err, sizeof err);
    oom_stop();
    CHECK_RC(rc, 0);
    if (!rc) {
        CHECK_TRUE(st.fell_back && st.meta.generation == 1);
        CHECK_MSG(strstr(lb.last, "state-2.h5") && strstr(lb.last, "checksum"),
                  "warning: %s", lb.last);
        tf_ck_state_free(&st);
    }
    CHECK_MSG(o.largest < N_ROUND * sizeof(tf_ck_task),
              "largest allocation %zu bytes: the task array of a file that "
              "fails its checksum",
              (size_t)o.largest);
    model_free(&big);
    model_free(&m);
}

/*
 * Every allocation of a load fails in turn. A failure while reading a
 * snapshot is that file's failure: named, and the previous generation
 * used, as for a damaged file (the loader once gave up with "out of memory
 * loading the state", naming no file). A failure while replaying a journal
 * ends that journal there, named with its offset, as a torn record would.
 * Any other failure is TF_ENOMEM with the directory named. Nothing leaks
 * (the ASan build checks).
 */
static void test_out_of_memory_each(void)
{
    char dir[512], err[512];
    model m;
    two_generations(dir, sizeof dir, "oom", &m);
    int fallbacks = 0, journal_cuts = 0, whole = 0, failures = 0;
    unsigned long k;
    for (k = 1; k < 100000; k++) {
        logbook lb;
        tf_ck_state st;
        oom o;
        oom_start(&o, OOM_ONCE, k);
        int rc = load(dir, &st, &lb, err, sizeof err);
        oom_stop();
        bool failed_one = o.failed > 0;
        if (rc == 0) {
            char why[256];
            bool same = tasks_equal(st.task, st.n, &m, why, sizeof why);
            if (st.fell_back) {
                fallbacks++;
                CHECK_MSG(strstr(lb.last, "state-2.h5") &&
                              strstr(lb.last, "out of memory"),
                          "allocation %lu: %s", k, lb.last);
            } else if (!same) {
                journal_cuts++;
                CHECK_MSG(strstr(lb.last, "journal-") &&
                              strstr(lb.last, "out of memory") &&
                              strstr(lb.last, "offset"),
                          "allocation %lu: %s", k, lb.last);
            } else {
                whole++;
            }
            tf_ck_state_free(&st);
        } else {
            failures++;
            CHECK_MSG(rc == TF_ENOMEM && strstr(err, "out of memory") &&
                          strstr(err, dir),
                      "allocation %lu: %s: %s", k, tf_err_name(rc), err);
        }
        if (!failed_one)
            break; /* fewer than k allocations: all were tried */
    }
    printf("\n  %lu allocations: %d fell back, %d cut a journal, %d whole, "
           "%d failed ",
           k - 1, fallbacks, journal_cuts, whole, failures);
    CHECK_MSG(fallbacks > 0, "no failure fell back to generation 1");
    model_free(&m);
}

/* ---- hostile journals --------------------------------------------------- */

/* Appends a sealed FINISH record for gid to the journal at jpath. */
static void append_finish(const char *jpath, uint64_t gid, uint8_t state)
{
    tf_ck_finish f = {.gid = gid, .key = 1, .attempt = 1, .state = state};
    uint8_t rec[256];
    size_t len = tf_ck_jr_finish_size(&f);
    tf_ck_jr_put_finish(rec, &f);
    tf_ck_jr_seal(rec, len);
    int fd = open(jpath, O_WRONLY | O_APPEND);
    CHECK_TRUE(fd >= 0 && write(fd, rec, len) == (ssize_t)len);
    close(fd);
}

/*
 * A journal of 10 records followed by 1 TiB of zeros (a sparse file): once
 * a 1 TiB allocation ("out of memory loading the state"), or a read of 1
 * TiB. Now the reading stops at the first impossible record header.
 */
static void test_hostile_journal_sparse(void)
{
    char dir[512], jpath[700];
    journal_of(dir, sizeof dir, "sparsej", 10, jpath, sizeof jpath);
    off_t size = size_of(jpath);
    truncate_to(jpath, size + (1ll << 40));
    outcome o = load_isolated(dir, NULL);
    CHECK_MSG(!o.died && o.rc == 0 && o.n == 10 && o.replayed == 10,
              "rc %d, %" PRIu64 " tasks: %s", o.rc, o.n, o.err);
    char off[40];
    snprintf(off, sizeof off, "offset %lld", (long long)size);
    CHECK_MSG(strstr(o.last, "journal-1.tfj") && strstr(o.last, off),
              "the warning names the journal and %s: %s", off, o.last);
}

/* Records whose fields disagree with the format, their checksums right. */
static void test_hostile_journal_fields(void)
{
    char dir[512], jpath[700];
    journal_of(dir, sizeof dir, "fieldsj", 5, jpath, sizeof jpath);
    off_t size = size_of(jpath);
    append_finish(jpath, 77, 9); /* a FINISH is DONE or FAILED */
    outcome o = load_isolated(dir, NULL);
    CHECK_MSG(!o.died && o.rc == 0 && o.n == 5,
              "FINISH state 9: rc %d, %" PRIu64 " tasks: %s", o.rc, o.n, o.err);
    CHECK_MSG(strstr(o.last, "journal-1.tfj") && strstr(o.last, "state"),
              "warning: %s", o.last);

    /* A SUBMIT record whose lengths add up to more than it holds. */
    truncate_to(jpath, size);
    tf_ck_task t = {.gid = 88, .key = 2, .parent = TF_CK_NONE, .cores = 1};
    uint8_t rec[256];
    size_t len = tf_ck_jr_submit_size(&t);
    tf_ck_jr_put_submit(rec, &t);
    uint32_t ndeps = UINT32_MAX;
    memcpy(rec + TF_CK_RHDR + 60, &ndeps, 4);
    tf_ck_jr_seal(rec, len);
    int fd = open(jpath, O_WRONLY | O_APPEND);
    CHECK_TRUE(fd >= 0 && write(fd, rec, len) == (ssize_t)len);
    close(fd);
    o = load_isolated(dir, NULL);
    CHECK_MSG(!o.died && o.rc == 0 && o.n == 5, "SUBMIT lengths: rc %d: %s",
              o.rc, o.err);
    CHECK_MSG(strstr(o.last, "length"), "warning: %s", o.last);
}

/* ---- crashes: kill -9 of a forked writer ------------------------------- */

typedef struct killer {
    model *m;
    uint64_t at;
} killer;

static void get_then_die(void *user, uint64_t i, tf_ck_task *t)
{
    killer *k = user;
    if (i == k->at)
        raise(SIGKILL);
    model_get(k->m, i, t);
}

static bool killed(pid_t pid)
{
    int status;
    return waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) &&
           WTERMSIG(status) == SIGKILL;
}

static void test_kill_in_snapshot(void)
{
    char dir[512], err[512];
    logbook lb;
    fresh(dir, sizeof dir, "killsnap");
    model m = {0};
    model_gen(&m, 1000);
    tf_ck *ck = open_ck(dir, &lb);
    snapshot(ck, &m);
    CHECK_RC(tf_ck_close(&ck), 0);

    /* The child snapshots a bigger table and dies in the middle of it,
       past the first block already written. */
    model big = {0};
    model_gen(&big, 150000);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        tf_ck_opts o = {0};
        tf_ck *c;
        char e[512];
        if (tf_ck_open(dir, &o, &c, e, sizeof e))
            _exit(1);
        tf_ck_meta meta = meta_of(TF_CK_CLI);
        killer k = {&big, big.n / 2};
        tf_ck_snapshot(c, &meta, big.n, get_then_die, &k);
        _exit(2); /* not reached */
    }
    CHECK_TRUE(killed(pid));
    CHECK_TRUE(exists(dir, "state-2.h5.tmp"));
    tf_ck_state st;
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_EQ_U(st.meta.generation, 1);
    CHECK_FALSE(st.fell_back);
    same_tasks(st.task, st.n, &m);
    tf_ck_state_free(&st);

    /* The next writer removes the leftover and writes generation 2. */
    ck = open_ck(dir, &lb);
    CHECK_FALSE(exists(dir, "state-2.h5.tmp"));
    snapshot(ck, &big);
    CHECK_RC(tf_ck_close(&ck), 0);
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_EQ_U(st.meta.generation, 2);
    same_tasks(st.task, st.n, &big);
    tf_ck_state_free(&st);
    model_free(&m);
    model_free(&big);
}

static void test_kill_with_journal(void)
{
    char dir[512], err[512];
    logbook lb;
    fresh(dir, sizeof dir, "killjournal");
    const int durable = 5000, more = 20000;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        tf_ck_opts o = {.sync_ms = 1};
        tf_ck *c;
        char e[512];
        if (tf_ck_open(dir, &o, &c, e, sizeof e))
            _exit(1);
        for (int i = 0; i < durable + more; i++) {
            char out[32];
            snprintf(out, sizeof out, "out-%d", i);
            tf_ck_finish f = {.gid = (uint64_t)i,
                              .key = 1,
                              .attempt = 1,
                              .state = TF_TASK_DONE,
                              .out = out,
                              .out_len = (uint32_t)strlen(out)};
            if (tf_ck_finished(c, &f))
                _exit(1);
            if (i + 1 == durable && tf_ck_wait(c))
                _exit(1);
        }
        /* Dies while the I/O thread may be in the middle of a batch. */
        raise(SIGKILL);
        _exit(2);
    }
    CHECK_TRUE(killed(pid));
    tf_ck_state st;
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_MSG(st.n >= (uint64_t)durable, "%" PRIu64 " records, %d were durable",
              st.n, durable);
    check_prefix(&st, st.n); /* whatever is there is intact and in order */
    tf_ck_state_free(&st);
}

/* ---- out of space ------------------------------------------------------ */

static void test_enospc(void)
{
    char mnt[512], cmd[700], err[512], dir[600];
    logbook lb;
    fresh(mnt, sizeof mnt, "tmpfs");
    CHECK_EQ_I(mkdir(mnt, 0755), 0);
    snprintf(cmd, sizeof cmd,
             "mount -t tmpfs -o size=256k tmpfs '%s' 2>/dev/null", mnt);
    if (system(cmd) != 0) {
        printf("\n  SKIP: cannot mount a tmpfs at %s (needs root)\n", mnt);
        return;
    }
    snprintf(dir, sizeof dir, "%s/state", mnt);
    model small = {0}, big = {0};
    model_gen(&small, 200);
    model_set_out(&small.t[4], "small", 5); /* not 1 MiB: it must fit */
    for (uint64_t i = 0; i < 20000; i++) {  /* > 256 KiB of commands */
        uint8_t cmdb[60];
        memset(cmdb, 'c', sizeof cmdb);
        tf_ck_task t = {.gid = i,
                        .cmd = cmdb,
                        .cmd_len = sizeof cmdb,
                        .parent = TF_CK_NONE,
                        .cores = 1};
        model_add(&big, &t);
    }
    tf_ck *ck = open_ck(dir, &lb);
    snapshot(ck, &small);
    tf_ck_meta meta = meta_of(TF_CK_CLI);
    int rc = tf_ck_snapshot(ck, &meta, big.n, model_get, &big);
    if (!rc)
        rc = tf_ck_wait(ck);
    CHECK_RC(rc, TF_EIO);
    printf("\n  snapshot on a full disk: %s\n", tf_ck_error(ck));
    CHECK_MSG(strstr(tf_ck_error(ck), "state-2.h5") &&
                  strstr(tf_ck_error(ck), "No space left on device"),
              "error: %s", tf_ck_error(ck));
    /* Latched: every later call reports it. */
    tf_ck_finish f = {.gid = 1, .key = 1, .attempt = 1, .state = TF_TASK_DONE};
    CHECK_RC(tf_ck_finished(ck, &f), TF_EIO);
    CHECK_RC(tf_ck_snapshot(ck, &meta, small.n, model_get, &small), TF_EIO);
    CHECK_RC(tf_ck_close(&ck), TF_EIO);
    CHECK_FALSE(exists(dir, "state-2.h5.tmp"));
    tf_ck_state st;
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_EQ_U(st.meta.generation, 1);
    same_tasks(st.task, st.n, &small);
    tf_ck_state_free(&st);

    /* The journal fills the disk: its writer fails, the state still loads
       (the previous generation and the records that made it). */
    ck = open_ck(dir, &lb);
    char out[4000];
    memset(out, 'o', sizeof out);
    rc = 0;
    for (int i = 0; i < 1000 && !rc; i++) {
        tf_ck_finish g = {.gid = 1000000 + (uint64_t)i,
                          .key = 1,
                          .attempt = 1,
                          .state = TF_TASK_DONE,
                          .out = out,
                          .out_len = sizeof out};
        rc = tf_ck_finished(ck, &g);
        if (!rc && i % 10 == 9)
            rc = tf_ck_wait(ck);
    }
    CHECK_RC(rc, TF_EIO);
    printf("  journal on a full disk: %s\n", tf_ck_error(ck));
    CHECK_MSG(strstr(tf_ck_error(ck), "journal-") &&
                  strstr(tf_ck_error(ck), "No space left on device"),
              "error: %s", tf_ck_error(ck));
    CHECK_RC(tf_ck_close(&ck), TF_EIO);
    CHECK_RC(load(dir, &st, &lb, err, sizeof err), 0);
    CHECK_EQ_U(st.meta.generation, 1);
    CHECK_TRUE(st.n > small.n);
    same_tasks(st.task, small.n, &small); /* the snapshot's tasks first */
    tf_ck_state_free(&st);

    snprintf(cmd, sizeof cmd, "umount '%s'", mnt);
    CHECK_EQ_I(system(cmd), 0);
    model_free(&small);
    model_free(&big);
}

static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "test_ckpt: watchdog: a test hung\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(3);
}

int main(void)
{
    tf_ck_no_exit_cleanup(); /* the out-of-space case leaves a broken file */
    signal(SIGALRM, watchdog);
    alarm(WATCHDOG_S);
    snprintf(root, sizeof root, "/tmp/tf-ckpt-test-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("ckpt", NULL, NULL);
    CU_add_test(s, "constants, CRC32C, keys", test_constants);
    CU_add_test(s, "empty directory and empty state", test_empty);
    CU_add_test(s, "round trip of every field", test_round_trip);
    CU_add_test(s, "replay rules", test_replay_rules);
    CU_add_test(s, "two generations kept", test_generations);
    CU_add_test(s, "damaged newest snapshot", test_damaged_newest);
    CU_add_test(s, "resume after a fallback", test_resume_after_fallback);
    CU_add_test(s, "both generations bad", test_both_bad);
    CU_add_test(s, "foreign files and versions", test_foreign);
    CU_add_test(s, "torn journal", test_torn_journal);
    CU_add_test(s, "kill -9 in a snapshot", test_kill_in_snapshot);
    CU_add_test(s, "kill -9 with journal records", test_kill_with_journal);
    CU_add_test(s, "out of space", test_enospc);
    CU_add_test(s, "hostile: task count wraps", test_hostile_count_wraps);
    CU_add_test(s, "hostile: 2^40 tasks", test_hostile_count_huge);
    CU_add_test(s, "hostile: fields that disagree", test_hostile_fields);
    CU_add_test(s, "hostile: FIFOs for files", test_hostile_not_files);
    CU_add_test(s, "checksums before use", test_checksum_before_use);
    CU_add_test(s, "out of memory at each allocation", test_out_of_memory_each);
    CU_add_test(s, "hostile: sparse journal", test_hostile_journal_sparse);
    CU_add_test(s, "hostile: journal fields", test_hostile_journal_fields);
    int failed = check_run();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (!failed && system(cmd) != 0)
        fprintf(stderr, "test_ckpt: cannot remove %s\n", root);
    return failed;
}
