/* MPI integration tests of library checkpoint and resume: full, halted, killed, changed, damaged and unusable states. */
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "ckpt/ckpt.h"
#include "harness.h"
#include "taskfarm.h"

/*
 * One DAG throughout. NROOT tasks submitted on rank 0 in groups of 6: each
 * depends on the one before it in its group, and the first of a group on
 * the fourth of the group before. Every task's output is a hash of its
 * label, salt and dependencies' outputs, so an output is right only if
 * every output upstream was. Roots 2, 8, 14, ... (i % 6 == 2) are
 * generators: they submit three children (child_label; the second and
 * third depend on the first), and the third is itself a generator of one
 * level less. Each task counts its executions per label on its rank; the
 * counts are summed over the ranks after each run. Outputs of every task,
 * dynamic ones included, are compared through the state on disk
 * (tf_ck_load), by label.
 */
#define NROOT 30
#define NLABEL 1024
#define TOP_LEVEL 2

typedef struct task_in {
    uint32_t label, level, salt; /* level > 0: a generator */
} task_in;

typedef struct rank_ctx {
    _Atomic uint32_t exec[NLABEL];
    tf_fn_id fn;
    long sleep_ms;
} rank_ctx;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ULL;
    return h;
}

/* Child k (1..3) of a generator; roots are 1..NROOT, so no two collide. */
static uint32_t child_label(uint32_t label, uint32_t k)
{
    return 32 + label * 4 + k;
}

static int work(tf_task_ctx *ctx, const void *input, size_t len, void *user)
{
    rank_ctx *rc = user;
    task_in in;
    if (len != sizeof in)
        return 1;
    memcpy(&in, input, sizeof in);
    if (in.label >= NLABEL)
        return 2;
    atomic_fetch_add(&rc->exec[in.label], 1);
    if (rc->sleep_ms) {
        struct timespec ts = {0, rc->sleep_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    uint64_t h = fnv(1469598103934665603ULL, &in, sizeof in);
    for (size_t i = 0; i < tf_task_ndeps(ctx); i++) {
        const void *b;
        size_t n;
        if (tf_task_dep_output(ctx, i, &b, &n))
            return 3;
        h = fnv(h, b, n);
    }
    if (in.level) {
        tf_task_id c1, c2, c3;
        task_in k[3] = {{child_label(in.label, 1), 0, 0},
                        {child_label(in.label, 2), 0, 0},
                        {child_label(in.label, 3), in.level - 1, 0}};
        tf_task_desc d;
        tf_task_desc_init(&d, rc->fn);
        d.input = &k[0];
        d.input_len = sizeof k[0];
        if (tf_task_submit(ctx, &d, &c1))
            return 4;
        d.deps = &c1;
        d.ndeps = 1;
        d.input = &k[1];
        if (tf_task_submit(ctx, &d, &c2))
            return 4;
        d.input = &k[2];
        if (tf_task_submit(ctx, &d, &c3))
            return 4;
    }
    return tf_task_set_output(ctx, &h, sizeof h) ? 5 : 0;
}

/* Root i's dependencies (indexes below i). */
static size_t root_deps(uint32_t i, uint32_t *d)
{
    if (i % 6)
        return d[0] = i - 1, 1;
    return i >= 6 ? (d[0] = i - 3, 1) : 0;
}

static uint32_t root_level(uint32_t i) { return i % 6 == 2 ? TOP_LEVEL : 0; }

/* Labels: roots are 1..NROOT (index + 1). */
static uint32_t root_label(uint32_t i) { return i + 1; }

/* Where a process keeps its state (mt_suite.user). */
typedef struct ckpt_env {
    char base[64];   /* a fresh directory for this process's cases */
    char self[4096]; /* this program, for the killed child */
} ckpt_env;

static const ckpt_env *env_of(const mt_suite *s) { return s->user; }

/* ---- one run of the DAG ---- */

typedef struct run_opts {
    const char *dir;  /* checkpoint_dir */
    int resume;
    int every_ms;
    uint32_t salt_root; /* root index whose input gets salt 1, or NROOT */
    int halt_after;     /* tf_halt after this many DONE events; 0: never */
    const char *marker; /* created after halt_after DONE events instead */
    bool local;         /* tf_init_local on this process alone */
    long sleep_ms;
} run_opts;

/* What rank 0 learns of a run. */
typedef struct run_out {
    int rc;
    int init_rc;
    uint32_t exec[NLABEL]; /* summed over ranks */
    tf_task_info info[NROOT];
    uint64_t out[NROOT];
    size_t out_len[NROOT];
    uint64_t tasks;
} run_out;

typedef struct ev_ctx {
    const run_opts *o;
    int done;
} ev_ctx;

static void on_event(void *user, tf_runtime *rt, const tf_run_event *ev)
{
    ev_ctx *e = user;
    if (ev->kind != TF_RUN_DONE || ++e->done != e->o->halt_after)
        return;
    if (e->o->marker) {
        FILE *f = fopen(e->o->marker, "w");
        if (f)
            fclose(f);
    } else {
        tf_halt(rt);
    }
}

static void run_dag(mt_suite *s, const run_opts *o, run_out *r)
{
    memset(r, 0, sizeof *r);
    static rank_ctx ctx; /* task threads count here; reset per run */
    for (int i = 0; i < NLABEL; i++)
        atomic_store(&ctx.exec[i], 0);
    ctx.sleep_ms = o->sleep_ms;
    ev_ctx ev = {o, 0};
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.keep_outputs = 1; /* these tests read every output */
    cfg.checkpoint_dir = o->dir;
    cfg.resume = o->resume;
    cfg.checkpoint_every_ms = o->every_ms;
    cfg.log_fn = mt_log;
    cfg.log_user = s;
    cfg.tick_ms = 20;
    if (o->halt_after) {
        cfg.on_event = on_event;
        cfg.event_user = &ev;
    }
    tf_runtime *rt = NULL;
    r->init_rc = o->local ? tf_init_local(&cfg, &rt)
                          : tf_init(MPI_COMM_WORLD, &cfg, &rt);
    if (r->init_rc)
        return;
    tf_register(rt, "work", work, &ctx, &ctx.fn);
    tf_task_id id[NROOT];
    if (s->rank == 0 || o->local) {
        for (uint32_t i = 0; i < NROOT; i++) {
            uint32_t d[2];
            size_t nd = root_deps(i, d);
            tf_task_id deps[2];
            for (size_t k = 0; k < nd; k++)
                deps[k] = id[d[k]];
            task_in in = {root_label(i), root_level(i), i == o->salt_root};
            tf_task_desc desc;
            tf_task_desc_init(&desc, ctx.fn);
            desc.input = &in;
            desc.input_len = sizeof in;
            desc.deps = deps;
            desc.ndeps = nd;
            int rc = tf_submit(rt, &desc, &id[i]);
            EXPECT_RC(s, rc, 0);
        }
    }
    r->rc = tf_run(rt);
    uint32_t mine[NLABEL];
    for (int i = 0; i < NLABEL; i++)
        mine[i] = atomic_load(&ctx.exec[i]);
    if (o->local)
        memcpy(r->exec, mine, sizeof mine);
    else
        MPI_Reduce(mine, r->exec, NLABEL, MPI_UINT32_T, MPI_SUM, 0,
                   MPI_COMM_WORLD);
    if (s->rank == 0 || o->local) {
        for (uint32_t i = 0; i < NROOT; i++) {
            tf_task_info_get(rt, id[i], &r->info[i]);
            const void *b = NULL;
            size_t n = 0;
            tf_task_output(rt, id[i], &b, &n);
            r->out_len[i] = n;
            if (n == sizeof r->out[i])
                memcpy(&r->out[i], b, n);
        }
        tf_stats st;
        tf_get_stats(rt, &st);
        r->tasks = st.tasks;
    }
    tf_finalize(&rt);
}

/* ---- the state on disk, by label ---- */

typedef struct label_map {
    bool known[NLABEL];
    uint8_t state[NLABEL];
    uint64_t out[NLABEL];
    int n;
} label_map;

/* Loads dir's state into m; returns tf_ck_load's code. */
static int load_map(const char *dir, label_map *m)
{
    memset(m, 0, sizeof *m);
    tf_ck_state st;
    char err[512];
    tf_logger quiet = {-1, 0, NULL, NULL};
    int rc = tf_ck_load(dir, &quiet, &st, err, sizeof err);
    if (rc)
        return rc;
    for (uint64_t i = 0; i < st.n; i++) {
        const tf_ck_task *t = &st.task[i];
        task_in in;
        if (t->cmd_len != sizeof in)
            continue;
        memcpy(&in, t->cmd, sizeof in);
        if (in.label >= NLABEL)
            continue;
        /* A label may appear twice (a run that was killed): DONE wins. */
        if (m->known[in.label] && m->state[in.label] == TF_TASK_DONE)
            continue;
        m->n += !m->known[in.label];
        m->known[in.label] = true;
        m->state[in.label] = t->state;
        if (t->state == TF_TASK_DONE && t->out_len == 8)
            memcpy(&m->out[in.label], t->out, 8);
    }
    tf_ck_state_free(&st);
    return 0;
}

/* Every label of ref is DONE in got with the same output, except `skip`. */
static void expect_same_outputs(mt_suite *s, const label_map *ref,
                                const label_map *got, const bool *skip)
{
    for (int l = 0; l < NLABEL; l++) {
        if (!ref->known[l] || (skip && skip[l]))
            continue;
        EXPECT_MSG(s,
                   got->known[l] && got->state[l] == TF_TASK_DONE &&
                       got->out[l] == ref->out[l],
                   "label %d: known %d, state %d, output %#" PRIx64
                   " vs DONE (%d) with %#" PRIx64,
                   l, got->known[l], got->state[l], got->out[l], TF_TASK_DONE,
                   ref->out[l]);
    }
}

/* The labels below `label` of a generator of level lv (not itself). */
static void mark_descendants(uint32_t label, uint32_t lv, bool *set)
{
    if (!lv)
        return;
    for (uint32_t k = 1; k <= 3; k++)
        set[child_label(label, k)] = true;
    mark_descendants(child_label(label, 3), lv - 1, set);
}

static void path_of(const mt_suite *s, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", env_of(s)->base, name);
}

/* The fault-free reference, computed once per process run. */
static label_map ref;
static run_out ref_run;

/* ---- cases ---- */

/* a: a full run, then a resume of the same DAG: nothing runs again. */
static void case_full_then_resume(mt_suite *s)
{
    char dir[128];
    path_of(s, "full", dir, sizeof dir);
    run_opts o = {.dir = dir, .every_ms = 60000, .salt_root = NROOT};
    run_dag(s, &o, &ref_run);
    EXPECT_RC(s, ref_run.init_rc, 0);
    EXPECT_RC(s, ref_run.rc, 0);
    if (s->rank == 0) {
        EXPECT_RC(s, load_map(dir, &ref), 0);
        int dyn = 0;
        for (int l = 0; l < NLABEL; l++) {
            EXPECT_EQ(s, ref_run.exec[l], ref.known[l] ? 1 : 0);
            EXPECT_TRUE(s, !ref.known[l] || ref.state[l] == TF_TASK_DONE);
            dyn += ref.known[l] && l > NROOT;
        }
        /* 5 generators: 3 children each, 3 grandchildren under each third */
        EXPECT_EQ(s, dyn, 5 * 6);
        EXPECT_EQ(s, ref_run.tasks, NROOT + 5 * 6);
        for (uint32_t i = 0; i < NROOT; i++)
            EXPECT_EQ_U(s, ref_run.out[i], ref.out[root_label(i)]);
    }
    o.resume = 1;
    run_out r;
    run_dag(s, &o, &r);
    EXPECT_RC(s, r.rc, 0);
    if (s->rank != 0)
        return;
    uint64_t total = 0;
    for (int l = 0; l < NLABEL; l++)
        total += r.exec[l];
    EXPECT_EQ(s, total, 0);
    EXPECT_EQ(s, r.tasks, ref_run.tasks);
    for (uint32_t i = 0; i < NROOT; i++) {
        const tf_task_info *a = &ref_run.info[i], *b = &r.info[i];
        EXPECT_EQ(s, b->state, TF_TASK_DONE);
        EXPECT_EQ(s, b->attempts, a->attempts);
        EXPECT_EQ(s, b->status, a->status);
        EXPECT_EQ(s, b->rank, a->rank);
        EXPECT_EQ(s, b->start_ns, a->start_ns);
        EXPECT_EQ(s, b->end_ns, a->end_ns);
        EXPECT_EQ(s, r.out_len[i], 8);
        EXPECT_EQ_U(s, r.out[i], ref_run.out[i]);
    }
    label_map got;
    EXPECT_RC(s, load_map(dir, &got), 0);
    expect_same_outputs(s, &ref, &got, NULL);
    EXPECT_EQ(s, got.n, ref.n);
}

/* b: halted after 8 tasks, then resumed: only the rest runs. */
static void case_halt_resume(mt_suite *s)
{
    char dir[128];
    path_of(s, "halt", dir, sizeof dir);
    run_opts o = {.dir = dir, .every_ms = 60000, .salt_root = NROOT,
                  .halt_after = 8};
    run_out r;
    run_dag(s, &o, &r);
    EXPECT_RC(s, r.rc, TF_EFAILED);
    label_map before;
    if (s->rank == 0)
        EXPECT_RC(s, load_map(dir, &before), 0);
    o.resume = 1;
    o.halt_after = 0;
    run_dag(s, &o, &r);
    EXPECT_RC(s, r.rc, 0);
    if (s->rank != 0)
        return;
    int done_before = 0, ran = 0;
    for (int l = 0; l < NLABEL; l++) {
        bool was_done = before.known[l] && before.state[l] == TF_TASK_DONE;
        done_before += was_done;
        ran += r.exec[l];
        EXPECT_EQ(s, r.exec[l], was_done || !ref.known[l] ? 0 : 1);
    }
    EXPECT_TRUE(s, done_before >= 8);
    EXPECT_TRUE(s, ran > 0);
    label_map got;
    EXPECT_RC(s, load_map(dir, &got), 0);
    expect_same_outputs(s, &ref, &got, NULL);
    for (uint32_t i = 0; i < NROOT; i++)
        EXPECT_EQ_U(s, r.out[i], ref.out[root_label(i)]);
}

/*
 * c: a run in a child process on its own (tf_init_local), killed with
 * SIGKILL after 10 tasks, then resumed by all the ranks of this job.
 */
static void case_kill_resume(mt_suite *s)
{
    char dir[128], marker[160];
    path_of(s, "kill", dir, sizeof dir);
    snprintf(marker, sizeof marker, "%s/ten-done", env_of(s)->base);
    int started = 1;
    label_map before;
    memset(&before, 0, sizeof before);
    if (s->rank == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            const char *self = env_of(s)->self;
            execl(self, self, "--child", dir, marker, (char *)NULL);
            _exit(127);
        }
        started = pid > 0;
        for (int i = 0; started && i < 6000 && access(marker, F_OK); i++) {
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        bool marked = access(marker, F_OK) == 0;
        if (started)
            kill(pid, SIGKILL);
        int st = 0;
        if (started)
            waitpid(pid, &st, 0);
        EXPECT_TRUE(s, marked);
        EXPECT_TRUE(s, WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        EXPECT_RC(s, load_map(dir, &before), 0);
    }
    MPI_Bcast(&started, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!started)
        return;
    run_opts o = {.dir = dir, .resume = 1, .every_ms = 60000,
                  .salt_root = NROOT};
    run_out r;
    run_dag(s, &o, &r);
    EXPECT_RC(s, r.rc, 0);
    if (s->rank != 0)
        return;
    int done_before = 0;
    for (int l = 0; l < NLABEL; l++) {
        bool was_done = before.known[l] && before.state[l] == TF_TASK_DONE;
        done_before += was_done;
        if (was_done)
            EXPECT_EQ(s, r.exec[l], 0);
        EXPECT_TRUE(s, r.exec[l] <= 1);
    }
    /* The last few may not have been durable yet: the journal commits
       every 50 ms. Some were, and some were left. */
    EXPECT_TRUE(s, done_before > 0);
    EXPECT_TRUE(s, done_before < ref.n);
    label_map got;
    EXPECT_RC(s, load_map(dir, &got), 0);
    expect_same_outputs(s, &ref, &got, NULL);
    for (uint32_t i = 0; i < NROOT; i++)
        EXPECT_EQ_U(s, r.out[i], ref.out[root_label(i)]);
}

/* d: one root's input changed: only it and what depends on it run. */
static void case_changed_input(mt_suite *s)
{
    char dir[128];
    path_of(s, "changed", dir, sizeof dir);
    run_opts o = {.dir = dir, .every_ms = 0, .salt_root = NROOT};
    run_out r;
    run_dag(s, &o, &r);
    EXPECT_RC(s, r.rc, 0);
    const uint32_t x = 20; /* a generator; the first of the next group
                              depends on the one after it */
    o.resume = 1;
    o.salt_root = x;
    run_dag(s, &o, &r);
    EXPECT_RC(s, r.rc, 0);
    if (s->rank != 0)
        return;
    bool rerun[NLABEL] = {false};
    bool root_rerun[NROOT] = {false};
    for (uint32_t i = 0; i < NROOT; i++) {
        uint32_t d[2];
        size_t nd = root_deps(i, d);
        root_rerun[i] = i == x;
        for (size_t k = 0; k < nd; k++)
            root_rerun[i] |= root_rerun[d[k]];
        if (root_rerun[i]) {
            rerun[root_label(i)] = true;
            mark_descendants(root_label(i), root_level(i), rerun);
        }
    }
    int n = 0;
    for (int l = 0; l < NLABEL; l++) {
        EXPECT_EQ(s, r.exec[l], rerun[l] ? 1 : 0);
        n += rerun[l];
    }
    EXPECT_TRUE(s, n > 2 && n < ref.n / 2);
    label_map got;
    EXPECT_RC(s, load_map(dir, &got), 0);
    expect_same_outputs(s, &ref, &got, rerun);
    /* Changed roots have new outputs (children of a generator do not:
       their inputs and dependencies are the same). */
    for (uint32_t i = 0; i < NROOT; i++)
        if (root_rerun[i])
            EXPECT_TRUE(s, got.out[root_label(i)] != ref.out[root_label(i)] &&
                               r.out[i] == got.out[root_label(i)]);
}

/* e: the newest snapshot is damaged: a warning, the previous one is used. */
static void case_damaged_newest(mt_suite *s)
{
    char dir[128], path[200];
    path_of(s, "damaged", dir, sizeof dir);
    run_opts o = {.dir = dir, .every_ms = 0, .salt_root = NROOT};
    run_out r;
    run_dag(s, &o, &r);
    EXPECT_RC(s, r.rc, 0);
    o.resume = 1;
    run_dag(s, &o, &r); /* a second generation, the same tasks */
    EXPECT_RC(s, r.rc, 0);
    if (s->rank == 0) {
        /* Generations 1 and 2 are kept; cut the newest in half. */
        snprintf(path, sizeof path, "%s/state-2.h5", dir);
        struct stat sb;
        EXPECT_EQ(s, stat(path, &sb), 0);
        EXPECT_EQ(s, truncate(path, sb.st_size / 2), 0);
        s->log[0] = 0;
    }
    run_dag(s, &o, &r);
    EXPECT_RC(s, r.rc, 0);
    if (s->rank != 0)
        return;
    EXPECT_TRUE(s, strstr(s->log, "state-2.h5") &&
                       strstr(s->log, "using the previous generation"));
    uint64_t total = 0;
    for (int l = 0; l < NLABEL; l++)
        total += r.exec[l];
    EXPECT_EQ(s, total, 0);
    for (uint32_t i = 0; i < NROOT; i++)
        EXPECT_EQ_U(s, r.out[i], ref.out[root_label(i)]);
}

/* A listing of dir with sizes and mtimes, to compare before and after. */
static void listing(const char *dir, char *buf, size_t len)
{
    buf[0] = 0;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char p[600];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &sb))
            continue;
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s %lld %lld.%09ld\n", de->d_name,
                 (long long)sb.st_size, (long long)sb.st_mtim.tv_sec,
                 sb.st_mtim.tv_nsec);
    }
    closedir(d);
}

/* f: no usable state: TF_EIO on every rank, the directory untouched. */
static void case_unusable(mt_suite *s)
{
    char dir[128], path[200];
    static char before[4096], after[4096];
    path_of(s, "unusable", dir, sizeof dir);
    if (s->rank == 0) {
        mkdir(dir, 0777);
        snprintf(path, sizeof path, "%s/state-1.h5", dir);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs("not a snapshot\n", f);
            fclose(f);
        }
        snprintf(path, sizeof path, "%s/journal-1.tfj", dir);
        f = fopen(path, "w");
        if (f) {
            fputs("not a journal either\n", f);
            fclose(f);
        }
        listing(dir, before, sizeof before);
        s->log[0] = 0;
    }
    run_opts o = {.dir = dir, .resume = 1, .every_ms = 0, .salt_root = NROOT};
    run_out r;
    run_dag(s, &o, &r);
    EXPECT_RC(s, r.init_rc, 0);
    EXPECT_RC(s, r.rc, TF_EIO);
    if (s->rank != 0)
        return;
    uint64_t total = 0;
    for (int l = 0; l < NLABEL; l++)
        total += r.exec[l];
    EXPECT_EQ(s, total, 0);
    EXPECT_TRUE(s, strstr(s->log, "state-1.h5") != NULL);
    listing(dir, after, sizeof after);
    EXPECT_TRUE(s, before[0] && strcmp(before, after) == 0);
    /* Without resume an earlier state is refused the same way. */
    char full[128];
    path_of(s, "full", full, sizeof full);
    listing(full, before, sizeof before);
    o.dir = full;
    o.resume = 0;
    o.local = true;
    run_dag(s, &o, &r);
    EXPECT_RC(s, r.rc, TF_EINVAL);
    listing(full, after, sizeof after);
    EXPECT_TRUE(s, strcmp(before, after) == 0);
}

/* The killed child: the DAG alone, slowly, announcing 10 done tasks. */
static int child_main(const char *dir, const char *marker)
{
    static mt_suite s;
    mt_init_local(&s, "test_ckpt_lib --child");
    run_opts o = {.dir = dir, .every_ms = 50, .salt_root = NROOT,
                  .halt_after = 10, .marker = marker, .local = true,
                  .sleep_ms = 15};
    run_out r;
    run_dag(&s, &o, &r);
    return 0; /* killed before it gets here */
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--child"))
        return child_main(argv[2], argv[3]);
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    static mt_suite s;
    static ckpt_env env;
    mt_init(&s, "test_ckpt_lib");
    s.user = &env;
    ssize_t n = readlink("/proc/self/exe", env.self, sizeof env.self - 1);
    if (n > 0)
        env.self[n] = 0;
    if (s.rank == 0) {
        snprintf(env.base, sizeof env.base, "/tmp/tf_cklib.XXXXXX");
        if (!mkdtemp(env.base))
            env.base[0] = 0;
        printf("# taskfarm %s, %d ranks, state under %s\n", tf_version(),
               s.size, env.base);
    }
    MPI_Bcast(env.base, sizeof env.base, MPI_CHAR, 0, MPI_COMM_WORLD);
    static const struct {
        const char *name;
        mt_case_fn fn;
    } cases[] = {
        {"a full run, then resume: nothing runs again", case_full_then_resume},
        {"b halted after 8 tasks, resumed", case_halt_resume},
        {"c killed (SIGKILL) in a child process, resumed here",
         case_kill_resume},
        {"d changed input: only it and its dependents run",
         case_changed_input},
        {"e damaged newest snapshot: previous generation",
         case_damaged_newest},
        {"f no usable state: TF_EIO everywhere, files untouched",
         case_unusable},
    };
    mt_begin_case(&s, "a fresh state directory");
    EXPECT_TRUE(&s, env.base[0] != 0);
    if (mt_end_case(&s))
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            mt_run_case(&s, cases[i].name, cases[i].fn);
    int rc = mt_finish(&s);
    /* A failure's state stays for a look. */
    if (s.rank == 0 && !rc && env.base[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", env.base);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", env.base);
    }
    MPI_Finalize();
    return rc;
}
