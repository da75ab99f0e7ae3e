/* MPI integration tests of runs that take tasks while they run: submissions from a tick, tf_hold_open, the state of added tasks. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "harness.h"
#include "taskfarm.h"

/*
 * Tasks are labelled 0 .. NLABEL-1; each counts its executions per label
 * on its rank (summed over the ranks after a run) and sleeps a little, so
 * that waves submitted from ticks meet tasks of earlier waves pending,
 * running and done. Rank 0 submits every task with the key of its label,
 * as the command keys a task by its @id and command, so that a resumed
 * runtime knows it again whenever it was submitted.
 */
#define NLABEL 256
#define WAVE 16 /* tasks per wave */
#define WAVES 4 /* waves submitted from ticks, after the first */
#define TICK_MS 10

typedef struct rank_ctx {
    _Atomic uint32_t exec[NLABEL];
} rank_ctx;

static int work(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    rank_ctx *rc = user;
    uint32_t label;
    if (len != sizeof label)
        return 1;
    memcpy(&label, in, sizeof label);
    if (label >= NLABEL)
        return 2;
    atomic_fetch_add(&rc->exec[label], 1);
    struct timespec ts = {0, 3 * 1000000L};
    nanosleep(&ts, NULL);
    return tf_task_set_output(ctx, &label, sizeof label) ? 3 : 0;
}

/* What rank 0's callback does and finds, and what the checks compare. */
typedef struct farm {
    mt_suite *s;
    tf_runtime *rt;
    tf_fn_id fn;
    tf_task_id id[NLABEL]; /* by label; UINT64_MAX: not submitted */
    int32_t after[NLABEL]; /* the label a label waits for (order), or -1 */
    int32_t data[NLABEL];  /* the label whose output it reads, or -1 */
    uint32_t nlabel;       /* labels submitted */
    int waves;             /* waves to submit from ticks */
    long ticks, bad;
    long idle_ticks; /* ticks that do nothing first */
    long cycles;     /* batches refused for a cycle */
    enum { CLOSE_WHEN_DONE, HALT_WHEN_DONE, HALT_AFTER_WAVE1 } end;
} farm;

static void farm_init(farm *f, mt_suite *s)
{
    memset(f, 0, sizeof *f);
    f->s = s;
    for (int i = 0; i < NLABEL; i++) {
        f->id[i] = UINT64_MAX;
        f->after[i] = f->data[i] = -1;
    }
}

/* Submit label with its edges (they name submitted labels). */
static int submit_label(farm *f, uint32_t label, int32_t data)
{
    tf_task_desc d;
    tf_task_desc_init(&d, f->fn);
    tf_task_id dep = data >= 0 ? f->id[data] : 0;
    d.input = &label;
    d.input_len = sizeof label;
    d.key = tf_key("m", 1, &label, sizeof label);
    if (data >= 0) {
        d.deps = &dep;
        d.ndeps = 1;
    }
    f->data[label] = data;
    return tf_submit(f->rt, &d, &f->id[label]);
}

/*
 * A wave of WAVE labels from `first`, as one batch: label i waits (order)
 * for label i + 1 of the same wave when i is even (forward edges), and
 * each for label i - WAVE, of the wave before, which may be pending,
 * running or done by now. `cycle`: the last waits for the first too,
 * closing a cycle through the forward edges: the batch is refused.
 */
static int submit_wave(farm *f, uint32_t first, bool cycle)
{
    tf_runtime *rt = f->rt;
    int rc = tf_batch_begin(rt);
    for (uint32_t i = first; !rc && i < first + WAVE; i++)
        rc = submit_label(f, i, -1);
    for (uint32_t i = first; !rc && i < first + WAVE; i++) {
        if ((i - first) % 2 == 0) {
            rc = tf_depend(rt, f->id[i + 1], f->id[i]);
            f->after[i] = (int32_t)i + 1;
        }
        if (!rc && i >= WAVE && f->id[i - WAVE] != UINT64_MAX)
            rc = tf_depend(rt, f->id[i - WAVE], f->id[i]);
    }
    if (!rc && cycle) {
        rc = tf_depend(rt, f->id[first + WAVE - 1], f->id[first]);
        rc = rc ? rc : tf_depend(rt, f->id[first], f->id[first + WAVE - 1]);
    }
    int erc = tf_batch_end(rt);
    rc = rc ? rc : erc;
    if (rc)
        for (uint32_t i = first; i < first + WAVE; i++)
            f->id[i] = UINT64_MAX, f->after[i] = f->data[i] = -1;
    else
        f->nlabel = first + WAVE;
    return rc;
}

static void on_event(void *user, tf_runtime *rt, const tf_run_event *ev)
{
    farm *f = user;
    tf_task_desc d;
    tf_task_id id;
    tf_task_desc_init(&d, f->fn);
    if (ev->kind != TF_RUN_TICK) {
        /* Only a tick may submit: a task's end comes in the middle of things.
         */
        if (tf_submit(rt, &d, &id) != TF_ESTATE ||
            tf_batch_begin(rt) != TF_ESTATE)
            f->bad++;
        /*
         * Label WAVE waits for label WAVE + 1 alone among its wave: halted
         * as the latter ends, it is never dispatched (a halt comes before
         * the dispatch of the step that asked for it).
         */
        if (f->end == HALT_AFTER_WAVE1 && ev->kind == TF_RUN_DONE &&
            f->nlabel > WAVE && ev->id == f->id[WAVE + 1] && tf_halt(rt))
            f->bad++;
        return;
    }
    if (++f->ticks <= f->idle_ticks)
        return;
    tf_stats st;
    tf_get_stats(rt, &st);
    bool all_done = st.done + st.failed + st.skipped == st.tasks;
    if (f->end == HALT_WHEN_DONE && !f->waves && all_done) {
        if (tf_halt(rt))
            f->bad++;
        return;
    }
    if (f->waves > 0 && (f->ticks - f->idle_ticks) % 3 == 0) {
        /* A wave, then one task alone reading an output of the wave. */
        uint32_t first = f->nlabel;
        if (submit_wave(f, first, false) ||
            submit_label(f, first + WAVE, (int32_t)first + 3))
            f->bad++;
        else
            f->nlabel = first + WAVE + 1;
        f->waves--;
        /* A cycle once, refused whole; the run goes on. */
        if (f->waves == 1 && f->nlabel + WAVE <= NLABEL) {
            if (submit_wave(f, f->nlabel, true) == TF_ECYCLE)
                f->cycles++;
            else
                f->bad++;
        }
        return;
    }
    if (!f->waves && f->end == CLOSE_WHEN_DONE && all_done &&
        tf_hold_open(rt, 0))
        f->bad++;
}

/* Labels executed over all ranks, on rank 0 (NULL elsewhere). */
static uint32_t *exec_counts(mt_suite *s, rank_ctx *ctx)
{
    uint32_t mine[NLABEL], *all = NULL;
    for (int i = 0; i < NLABEL; i++)
        mine[i] = atomic_load(&ctx->exec[i]);
    if (s->rank == 0 && !(all = calloc(NLABEL, sizeof *all)))
        MPI_Abort(MPI_COMM_WORLD, 2);
    MPI_Reduce(mine, all, NLABEL, MPI_UINT32_T, MPI_SUM, 0, MPI_COMM_WORLD);
    return all;
}

/* tf_init everywhere, or nowhere: a missing rank would hang what follows. */
static bool start(mt_suite *s, farm *f, tf_config *cfg, rank_ctx *ctx)
{
    cfg->on_event = on_event;
    cfg->event_user = f;
    cfg->tick_ms = TICK_MS;
    cfg->slots = 2;
    cfg->log_fn = mt_log;
    cfg->log_user = s;
    int rc = tf_init(MPI_COMM_WORLD, cfg, &f->rt);
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    EXPECT_RC(s, rc, 0);
    if (worst)
        return false;
    EXPECT_RC(s, tf_register(f->rt, "m_work", work, ctx, &f->fn), 0);
    return true;
}

/* Every rank's tf_run code, checked the same everywhere. */
static void run_expect(mt_suite *s, farm *f, int want)
{
    int rc = tf_run(f->rt);
    EXPECT_RC(s, rc, want);
}

/* The first wave before the run, and the run held open for more. */
static void first_wave(mt_suite *s, farm *f)
{
    if (s->rank != 0)
        return;
    EXPECT_RC(s, submit_wave(f, 0, false), 0);
    EXPECT_RC(s, tf_hold_open(f->rt, 1), 0);
}

/*
 * Waves submitted from ticks, with forward edges inside a batch, edges to
 * tasks of earlier waves (pending, running or done) and a data edge, run
 * in the same run, each exactly once and after what it waits for; a batch
 * with a cycle is refused whole and the run goes on; the run ends only
 * when the callback lets it.
 */
static void case_waves(mt_suite *s)
{
    static rank_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    static farm f;
    farm_init(&f, s);
    f.waves = WAVES;
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.keep_outputs = 1;
    if (!start(s, &f, &cfg, &ctx))
        return;
    first_wave(s, &f);
    if (s->rank != 0)
        EXPECT_RC(s, tf_hold_open(f.rt, 1), TF_ENOTROOT);
    run_expect(s, &f, 0);
    uint32_t *n = exec_counts(s, &ctx);
    if (s->rank == 0) {
        tf_stats st;
        EXPECT_RC(s, tf_get_stats(f.rt, &st), 0);
        EXPECT_EQ(s, f.bad, 0);
        EXPECT_EQ(s, f.cycles, 1);
        EXPECT_EQ_U(s, f.nlabel, (uint32_t)(WAVE + WAVES * (WAVE + 1)));
        EXPECT_EQ_U(s, st.tasks, f.nlabel);
        EXPECT_EQ_U(s, st.done, f.nlabel);
        for (uint32_t i = 0; i < NLABEL; i++) {
            if (!EXPECT_MSG(s, n[i] == (i < f.nlabel ? 1u : 0u),
                            "label %u ran %u times", i, n[i]))
                break;
            if (i >= f.nlabel)
                continue;
            tf_task_info a, b;
            EXPECT_RC(s, tf_task_info_get(f.rt, f.id[i], &a), 0);
            EXPECT_STATE(s, a, TF_TASK_DONE);
            int32_t w = f.after[i] >= 0 ? f.after[i] : f.data[i];
            if (w >= 0 && !tf_task_info_get(f.rt, f.id[w], &b))
                EXPECT_MSG(s, a.start_ns >= b.end_ns,
                           "label %u started after label %d ended", i, w);
            if (i >= WAVE && f.data[i] < 0 && f.id[i - WAVE] != UINT64_MAX &&
                !tf_task_info_get(f.rt, f.id[i - WAVE], &b))
                EXPECT_MSG(s, a.start_ns >= b.end_ns,
                           "label %u started after label %u ended", i,
                           i - WAVE);
        }
        /* The lone task read the output of the label it depends on. */
        const void *out;
        size_t len;
        uint32_t lone = 2 * WAVE, got = UINT32_MAX;
        EXPECT_RC(s, tf_task_output(f.rt, f.id[lone], &out, &len), 0);
        if (len == sizeof got)
            memcpy(&got, out, sizeof got);
        EXPECT_EQ_U(s, got, lone);
        /* Outside a run, held open or not, submission works as before. */
        EXPECT_RC(s, tf_hold_open(f.rt, 0), 0);
    }
    free(n);
    EXPECT_RC(s, tf_finalize(&f.rt), 0);
}

/* Idle held open: a share of a core as CPU over wall time (not wall time). */
#define MAX_HELD_PCT 10.0

/*
 * A run held open with nothing to do waits on every rank without a busy
 * core, takes a task from a tick after a while, and ends on a halt with
 * status 0 (nothing failed). Without an on_event callback, which alone
 * could close it, a run cannot be held open.
 */
static void case_held_idle(mt_suite *s)
{
    static rank_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    static farm f;
    farm_init(&f, s);
    f.waves = 1;
    f.end = HALT_WHEN_DONE;
    f.idle_ticks = 70; /* 0.7 s with nothing to do */
    tf_config cfg;
    tf_config_init(&cfg);
    if (!start(s, &f, &cfg, &ctx))
        return;
    if (s->rank == 0) {
        EXPECT_RC(s, tf_hold_open(f.rt, 1), 0);
        tf_runtime *plain;
        tf_config pc;
        tf_config_init(&pc);
        EXPECT_RC(s, tf_init_local(&pc, &plain), 0);
        EXPECT_RC(s, tf_hold_open(plain, 1), TF_EINVAL);
        EXPECT_RC(s, tf_hold_open(plain, 0), 0);
        EXPECT_RC(s, tf_finalize(&plain), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double c0 = mt_cpu_seconds(), w0 = mt_wall_seconds();
    run_expect(s, &f, 0);
    double pct = 100.0 * (mt_cpu_seconds() - c0) / (mt_wall_seconds() - w0);
    double *all = s->rank == 0 ? calloc((size_t)s->size, sizeof *all) : NULL;
    MPI_Gather(&pct, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    uint32_t *n = exec_counts(s, &ctx);
    if (s->rank == 0) {
        EXPECT_EQ(s, f.bad, 0);
        EXPECT_EQ_U(s, f.nlabel, (uint32_t)WAVE + 1);
        for (uint32_t i = 0; i < f.nlabel; i++)
            EXPECT_MSG(s, n[i] == 1, "label %u ran %u times", i, n[i]);
        for (int r = 0; r < s->size; r++) {
            printf("held_rank%d_cpu %.2f %%\n", r, all[r]);
            EXPECT_MSG(s, all[r] < MAX_HELD_PCT,
                       "rank %d CPU %% while held open: %g vs %g", r, all[r],
                       MAX_HELD_PCT);
        }
    }
    free(all);
    free(n);
    EXPECT_RC(s, tf_finalize(&f.rt), 0);
}

/* Resubmit every label f submitted (first: before the run) in one batch. */
static void resubmit(farm *f, const farm *was)
{
    EXPECT_RC(f->s, tf_batch_begin(f->rt), 0);
    for (uint32_t i = 0; i < was->nlabel; i++)
        if (was->id[i] != UINT64_MAX)
            EXPECT_RC(f->s, submit_label(f, i, was->data[i]), 0);
    for (uint32_t i = 0; i < was->nlabel; i++) {
        if (was->id[i] == UINT64_MAX)
            continue;
        if (was->after[i] >= 0)
            EXPECT_RC(f->s, tf_depend(f->rt, f->id[was->after[i]], f->id[i]),
                      0);
        if (i >= WAVE && was->data[i] < 0 && was->id[i - WAVE] != UINT64_MAX)
            EXPECT_RC(f->s, tf_depend(f->rt, f->id[i - WAVE], f->id[i]), 0);
    }
    EXPECT_RC(f->s, tf_batch_end(f->rt), 0);
    f->nlabel = was->nlabel;
}

/*
 * Tasks submitted from ticks are in the saved state like the others: a
 * run halted after some of them finished, resumed by a new runtime that
 * submits every task before its run, runs exactly the rest, so that each
 * label ran once over both runs.
 */
static void case_state(mt_suite *s)
{
    static char dir[64];
    if (s->rank == 0) {
        snprintf(dir, sizeof dir, "/tmp/tf_open.XXXXXX");
        if (!mkdtemp(dir))
            dir[0] = 0;
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (!EXPECT_TRUE(s, dir[0] != 0))
        return;
    static rank_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    static farm f, g;
    farm_init(&f, s);
    f.waves = 2;
    f.end = HALT_AFTER_WAVE1;
    tf_config cfg;
    tf_config_init(&cfg);
    /* Outputs nothing reads any more would be made again (lineage). */
    cfg.keep_outputs = 1;
    cfg.checkpoint_dir = dir;
    cfg.checkpoint_every_ms = 20;
    if (!start(s, &f, &cfg, &ctx))
        return;
    first_wave(s, &f);
    int rc = tf_run(f.rt);
    EXPECT_MSG(s, rc == 0 || rc == TF_EFAILED, "the halted run: %s",
               tf_err_name(rc));
    uint32_t *n1 = exec_counts(s, &ctx);
    long done1 = 0;
    if (s->rank == 0) {
        tf_stats st;
        tf_get_stats(f.rt, &st);
        done1 = (long)st.done;
        EXPECT_EQ(s, f.bad, 0);
        EXPECT_MSG(s, f.nlabel > WAVE, "a wave came from a tick (%u labels)",
                   f.nlabel);
        EXPECT_MSG(s, done1 > WAVE && done1 < (long)f.nlabel,
                   "the halt came after a tick's tasks ran, before the "
                   "end: %ld of %u done",
                   done1, f.nlabel);
    }
    EXPECT_RC(s, tf_finalize(&f.rt), 0);

    memset(&ctx, 0, sizeof ctx);
    farm_init(&g, s);
    cfg.resume = 1;
    if (!start(s, &g, &cfg, &ctx))
        return;
    if (s->rank == 0)
        resubmit(&g, &f);
    run_expect(s, &g, 0);
    uint32_t *n2 = exec_counts(s, &ctx);
    if (s->rank == 0) {
        tf_stats st;
        tf_get_stats(g.rt, &st);
        EXPECT_EQ_U(s, st.done, f.nlabel);
        uint32_t again = 0;
        for (uint32_t i = 0; i < f.nlabel; i++) {
            EXPECT_MSG(s, n1[i] + n2[i] == 1,
                       "label %u ran %u + %u times over both runs", i, n1[i],
                       n2[i]);
            again += n2[i];
        }
        EXPECT_EQ_U(s, again, f.nlabel - (uint32_t)done1);
        char cmd[96];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", dir);
    }
    free(n1);
    free(n2);
    EXPECT_RC(s, tf_finalize(&g.rt), 0);
}

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    static mt_suite s;
    mt_init(&s, "test_open");
    if (s.rank == 0)
        printf("# taskfarm %s, %d ranks\n", tf_version(), s.size);
    mt_run_case(&s, "m waves submitted from ticks run in the same run",
                case_waves);
    mt_run_case(&s, "m held open: idle without a busy core, ends on a halt",
                case_held_idle);
    mt_run_case(&s, "m tasks submitted in a run are in its state: resume",
                case_state);
    int rc = mt_finish(&s);
    MPI_Finalize();
    return rc;
}
