/* The runtime's durable state, writing side: the directory taken, attempts journaled, snapshots of the task table. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt_int.h"
#include "util/idle.h"

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The directory's state must not be mixed with a new run's. */
static void check_new(tf_ckstate *ck)
{
    if (!tf_ck_holds_state(ck->dir))
        return;
    tf_logf(ck->log, TF_LOG_ERROR,
            "%s holds the state of an earlier run: resume it, or remove it "
            "to start over (nothing was changed)",
            ck->dir);
    ck->err = TF_EINVAL;
}

static void overwrite(tf_ckstate *ck)
{
    char why[256] = "";
    if (tf_ck_remove_state(ck->dir, why, sizeof why)) {
        tf_logf(ck->log, TF_LOG_ERROR,
                "cannot remove the earlier state in %s: %s", ck->dir, why);
        ck->err = TF_EIO;
    }
}

int tf_ckstate_open(const tf_ckstate_cfg *c, tf_ckstate **out)
{
    tf_ckstate *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->dir = strdup(c->dir))) {
        free(ck);
        return TF_ENOMEM;
    }
    ck->log = c->log;
    ck->term = tf_term_current(c->dir);
    ck->every_ms = c->every_ms;
    ck->world_size = c->world_size;
    tf_idmap_init(&ck->occ);
    tf_idmap_init(&ck->bykey);
    tf_idmap_init(&ck->bygid);
    tf_idmap_init(&ck->mapped);
    if (c->mode == TF_STATE_RESUME)
        ck->err = tf_ck_resume_load(ck);
    else if (c->mode == TF_STATE_OVERWRITE)
        overwrite(ck);
    else
        check_new(ck);
    *out = ck;
    return 0;
}

int tf_ckstate_close(tf_ckstate **pck)
{
    tf_ckstate *ck = *pck;
    if (!ck)
        return 0;
    int rc = ck->w ? tf_ck_close(&ck->w) : 0;
    tf_ck_state_free(&ck->st);
    tf_idmap_free(&ck->occ);
    tf_idmap_free(&ck->bykey);
    tf_idmap_free(&ck->bygid);
    tf_idmap_free(&ck->mapped);
    free(ck->key);
    free(ck->parent);
    free(ck->kids);
    free(ck->child);
    free(ck->sibling);
    free(ck->redo);
    free(ck->roots);
    free(ck->depbuf);
    free(ck->dir);
    free(ck);
    *pck = NULL;
    return rc ? TF_EIO : 0;
}

int tf_ckstate_error(const tf_ckstate *ck) { return ck->err; }

bool tf_ckstate_deposed(tf_ckstate *ck)
{
    if (ck->err == TF_EDEPOSED)
        return true;
    if (!tf_term_passed(ck->dir, ck->term))
        return false;
    tf_ck_fail(ck, TF_EDEPOSED);
    return true;
}

bool tf_ckstate_term_passed(const tf_ckstate *ck)
{
    return tf_term_passed(ck->dir, ck->term);
}

uint64_t tf_ckstate_epoch(const tf_ckstate *ck) { return ck->epoch; }

/*
 * The state cannot be written (a full disk): say so once; the runtime
 * halts the run rather than go on without a way back. The previous
 * snapshot stays valid.
 */
void tf_ck_fail(tf_ckstate *ck, int rc)
{
    if (!ck->err)
        ck->err = rc == TF_ENOMEM || rc == TF_EDEPOSED ? rc : TF_EIO;
    if (ck->failed_logged)
        return;
    ck->failed_logged = true;
    if (ck->err == TF_EDEPOSED) {
        tf_logf(ck->log, TF_LOG_ERROR,
                "another rank has taken over this run's scheduling (%s has "
                "a term after %llu): this rank writes nothing more",
                ck->dir, (unsigned long long)ck->term);
        return;
    }
    const char *why = ck->w ? tf_ck_error(ck->w) : "";
    tf_logf(ck->log, TF_LOG_ERROR,
            "cannot write the state in %s: %s; halting the run (the last "
            "saved state is kept)",
            ck->dir, why[0] ? why : tf_strerror(rc));
}

int tf_ckstate_prepare(tf_ckstate *ck)
{
    if (ck->err || ck->w)
        return ck->err;
    char err[1024] = "";
    tf_ck_opts o = {.sync_ms = 0,
                    .loaded_gen =
                        ck->st.fell_back ? ck->st.meta.generation : 0,
                    .term = ck->term,
                    .log = *ck->log};
    int rc = tf_ck_open(ck->dir, &o, &ck->w, err, sizeof err);
    if (rc) {
        tf_logf(ck->log, TF_LOG_ERROR, "cannot write state into %s: %s",
                ck->dir, err[0] ? err : tf_strerror(rc));
        ck->err = rc == TF_ENOMEM ? TF_ENOMEM : TF_EIO;
    }
    return ck->err;
}

/*
 * What a done task's output is to the state (TF_CK_OUT_*): saved as part
 * 0, saved packed, or not saved, as only a worker held it.
 */
static int32_t out_form(const tf_trec *r)
{
    if (r->oflags & (TF_OUT_AWAY | TF_OUT_GONE))
        return TF_CK_OUT_UNSAVED;
    return r->oflags & TF_OUT_PACKED ? TF_CK_OUT_PACKED : 0;
}

static const void *saved_out(const tf_trec *r)
{
    return out_form(r) == TF_CK_OUT_UNSAVED ? NULL : r->out;
}

void tf_ck_row_of(tf_ckstate *ck, const tf_tasks *tt, const tf_registry *reg,
                  uint32_t i, tf_ck_task *out)
{
    const tf_trec *r = &tt->rec[i];
    const tf_dag *dag = &tt->sched.dag;
    uint32_t nd = r->ndeps;
    if (nd > ck->depcap) {
        uint64_t *nb = realloc(ck->depbuf, nd * sizeof *nb);
        if (nb) {
            ck->depbuf = nb;
            ck->depcap = nd;
        } else {
            nd = 0; /* recorded without its edges rather than not at all */
        }
    }
    for (uint32_t k = 0; k < nd; k++)
        ck->depbuf[k] = tt->rec[tf_tasks_dep(tt, i, k)].gid;
    tf_task_state st = tf_tasks_public_state((tf_state)dag->state[i]);
    /*
     * A task not needed never ran: saved as not done, a resumed run
     * decides again, from how its dependencies ended by then.
     */
    if (tf_sched_is_unneeded(&tt->sched, i))
        st = TF_TASK_SKIPPED;
    const char *name = reg->fns[r->fn].name;
    uint32_t p = ck->parent[i];
    *out = (tf_ck_task){
        .gid = r->gid,
        .key = ck->key[i],
        .parent = p == TF_NONE ? TF_CK_NONE : tt->rec[p].gid,
        .name = name,
        .name_len = (uint32_t)strlen(name),
        .cmd = tf_tasks_input(tt, i),
        .cmd_len = r->in_len,
        .deps = ck->depbuf,
        .ndeps = nd,
        .out = st == TF_TASK_DONE ? saved_out(r) : NULL,
        .out_len = st == TF_TASK_DONE && saved_out(r) ? r->out_len : 0,
        .prio = dag->prio[i],
        .cores = dag->cores[i],
        .state = (uint8_t)st,
        .attempts = dag->attempts[i],
        .status = st == TF_TASK_DONE ? out_form(r) : r->status,
        .rank = r->rank,
        .start_ns = r->start_ns,
        .end_ns = r->end_ns};
}

/* What the snapshot getter needs. */
typedef struct row_src {
    tf_ckstate *ck;
    const tf_tasks *tt;
    const tf_registry *reg;
} row_src;

static void get_row(void *user, uint64_t i, tf_ck_task *out)
{
    row_src *s = user;
    tf_ck_row_of(s->ck, s->tt, s->reg, (uint32_t)i, out);
}

/* Hash of the registered function names, in order: the "source" of a run. */
static uint64_t source_hash(const tf_registry *reg)
{
    uint64_t h = tf_ck_key(NULL, 0, NULL, 0);
    for (uint32_t i = 0; i < reg->n; i++)
        h = tf_ck_key(&h, sizeof h, reg->fns[i].name,
                      strlen(reg->fns[i].name) + 1);
    return h;
}

int tf_ck_snapshot_now(tf_ckstate *ck, const tf_tasks *tt,
                       const tf_registry *reg, bool final)
{
    if (ck->err)
        return ck->err;
    int rc = final ? tf_ck_wait(ck->w) : 0;
    tf_ck_meta m = {.kind = TF_CK_LIB,
                    .source_hash = source_hash(reg),
                    .world_size = ck->world_size,
                    .time_ns = wall_ns()};
    snprintf(m.version, sizeof m.version, "%s", TF_VERSION_STRING);
    uint64_t n = tt->sched.dag.n, t0 = tf_idle_clock_ns();
    row_src src = {ck, tt, reg};
    if (!rc)
        rc = tf_ck_snapshot(ck->w, &m, n, get_row, &src);
    uint64_t t1 = tf_idle_clock_ns();
    if (!rc && final)
        rc = tf_ck_wait(ck->w);
    ck->next_ns = t1 + (uint64_t)ck->every_ms * 1000000u;
    if (rc == TF_ESTATE && !final)
        return 0; /* the previous one is still on its way to the disk */
    if (rc) {
        tf_ck_fail(ck, rc);
        return ck->err;
    }
    ck->nsnap++;
    if (t1 - t0 > ck->max_pause_ns)
        ck->max_pause_ns = t1 - t0;
    snprintf(ck->note, sizeof ck->note,
             "snapshot %" PRIu64 " of %" PRIu64 " tasks, dispatch paused "
             "%.1f ms",
             ck->nsnap, n, (double)(t1 - t0) / 1e6);
    tf_logf(ck->log, TF_LOG_DEBUG, "checkpoint: %s", ck->note);
    return 0;
}

bool tf_ckstate_tick(tf_ckstate *ck, const tf_tasks *tt,
                     const tf_registry *reg, uint64_t now_ns)
{
    if (ck->err || !ck->every_ms || now_ns < ck->next_ns || tf_ck_busy(ck->w))
        return false;
    uint64_t before = ck->nsnap;
    tf_ck_snapshot_now(ck, tt, reg, false);
    return ck->nsnap != before;
}

int tf_ckstate_end(tf_ckstate *ck, const tf_tasks *tt, const tf_registry *reg)
{
    return tf_ck_snapshot_now(ck, tt, reg, true);
}

void tf_ckstate_finished(tf_ckstate *ck, const tf_tasks *tt, uint32_t t)
{
    if (ck->err)
        return;
    const tf_trec *r = &tt->rec[t];
    tf_ck_finish f = {.gid = r->gid,
                      .key = ck->key[t],
                      .attempt = tt->sched.dag.attempts[t],
                      .state = r->status ? TF_TASK_FAILED : TF_TASK_DONE,
                      .status = r->status ? r->status : out_form(r),
                      .rank = r->rank,
                      .start_ns = r->start_ns,
                      .end_ns = r->end_ns,
                      .out = r->status ? NULL : saved_out(r),
                      .out_len = r->status || !saved_out(r) ? 0 : r->out_len};
    int rc = tf_ck_finished(ck->w, &f);
    if (rc)
        tf_ck_fail(ck, rc);
}

const char *tf_ckstate_note(const tf_ckstate *ck) { return ck->note; }

void tf_ckstate_counts(const tf_ckstate *ck, uint64_t *snapshots,
                       uint64_t *max_pause_ns)
{
    *snapshots = ck->nsnap;
    *max_pause_ns = ck->max_pause_ns;
}
