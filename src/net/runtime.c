/* Public API entry points: init, registry, submission, queries, finalize. */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "place/topo.h"
#include "util/idle.h"

#define TF_STR_(x) #x
#define TF_STR(x) TF_STR_(x)

const char *tf_version(void)
{
    return TF_STR(TF_VERSION_MAJOR) "." TF_STR(TF_VERSION_MINOR) "." TF_STR(
        TF_VERSION_PATCH);
}

void tf_config_init(tf_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->slots = 1;
    cfg->prefetch = TF_DEFAULT_PREFETCH;
    cfg->log_level = TF_LOG_WARN;
    cfg->main_runs_tasks = 1;
    cfg->tick_ms = 1000;
    cfg->checkpoint_every_ms = 60000;
}

void tf_task_desc_init(tf_task_desc *desc, tf_fn_id fn)
{
    memset(desc, 0, sizeof *desc);
    desc->fn = fn;
    desc->retries = -1;
    desc->cores = 1;
}

/* Validate cfg (NULL: defaults) into *c. */
static int check_config(const tf_config *cfg, tf_config *c)
{
    if (cfg)
        *c = *cfg;
    else
        tf_config_init(c);
    if (c->slots <= 0)
        c->slots = 1;
    if (c->prefetch <= 0)
        c->prefetch = TF_DEFAULT_PREFETCH;
    if (c->tick_ms <= 0)
        c->tick_ms = 1000;
    if (!c->seed)
        c->seed = 1;
    if (c->slots > UINT16_MAX || c->retries < 0 ||
        c->retries > UINT8_MAX - 1 || c->checkpoint_every_ms < 0)
        return TF_EINVAL;
    return 0;
}

/*
 * Where this rank runs, for choosing steal victims: a hash of the host name
 * and the NUMA node of its cores (-1 when several or unknown).
 */
static void locate(tf_loc *loc)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    loc->host = 1469598103934665603ULL;
    for (const char *c = host; *c; c++)
        loc->host = (loc->host ^ (uint8_t)*c) * 1099511628211ULL;
    loc->numa = -1;
    tf_topo *topo;
    if (tf_topo_load(&topo))
        return;
    size_t n;
    const int *cpus = tf_topo_cpus(topo, &n);
    char numa[64] = "";
    tf_topo_numa_of(topo, cpus, n, numa, sizeof numa);
    if (numa[0] && !strchr(numa, ','))
        loc->numa = atoi(numa);
    tf_topo_free(topo);
}

/* Everything but the communicator; rank and size already set. */
static int setup(tf_runtime *rt)
{
    rt->log = (tf_logger){rt->cfg.log_level, rt->rank, rt->cfg.log_fn,
                          rt->cfg.log_user};
    int rc = tf_sched_init(&rt->sched);
    if (rc)
        return rc;
    rt->sched.park = true;
    rt->sched.adaptive = !rt->cfg.fixed_prefetch;
    tf_idmap_init(&rt->ids);
    rt->steal = !rt->cfg.no_steal && rt->size > 2;
    if (rt->steal)
        locate(&rt->self);
    if (rt->rank != 0 || rt->size == 1) {
        /* Ids of tasks born here: creator rank + 1 in the high 32 bits. */
        uint64_t base = (uint64_t)(rt->rank + 1) << 32;
        rc = tf_pool_init(&rt->pool, (unsigned)rt->cfg.slots,
                          rt->cfg.main_runs_tasks != 0,
                          (const tf_fnent *const *)&rt->fns, &rt->nfns,
                          rt->rank, base);
        if (rc) {
            tf_sched_free(&rt->sched);
            return rc;
        }
        rt->have_pool = true;
    }
    /* Rank 0 loads the state now: tf_submit matches tasks against it. */
    rc = tf_rt_ck_init(rt);
    if (rc) {
        if (rt->have_pool)
            tf_pool_destroy(&rt->pool);
        rt->have_pool = false;
        tf_sched_free(&rt->sched);
    }
    return rc;
}

/* A runtime holding a checked copy of cfg, nothing else set up yet. */
static int rt_new(const tf_config *cfg, tf_runtime **out)
{
    if (!out)
        return TF_EINVAL;
    tf_config c;
    int rc = check_config(cfg, &c);
    if (rc)
        return rc;
    tf_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return TF_ENOMEM;
    rt->cfg = c;
    *out = rt;
    return 0;
}

int tf_init(MPI_Comm comm, const tf_config *cfg, tf_runtime **out)
{
    tf_runtime *rt;
    int rc = rt_new(cfg, &rt);
    if (rc)
        return rc;
    rt->mpi = true;
    rc = TF_EMPI;
    if (MPI_Comm_dup(comm, &rt->comm) != MPI_SUCCESS)
        goto fail_with_rt;
    MPI_Comm_set_errhandler(rt->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(rt->comm, &rt->rank);
    MPI_Comm_size(rt->comm, &rt->size);
    rc = setup(rt);
    if (rc)
        goto fail_with_comm;
    /* Collective like the dup above: every rank gets here. */
    if (rt->size > 1 && (rc = tf_rt_bell_init(rt)) != 0) {
        tf_finalize(&rt);
        return rc;
    }
    *out = rt;
    return 0;

fail_with_comm:
    MPI_Comm_free(&rt->comm);
fail_with_rt:
    free(rt);
    return rc;
}

int tf_init_local(const tf_config *cfg, tf_runtime **out)
{
    tf_runtime *rt;
    int rc = rt_new(cfg, &rt);
    if (rc)
        return rc;
    rt->size = 1;
    rc = setup(rt);
    if (rc) {
        free(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

int tf_register(tf_runtime *rt, const char *name, tf_task_fn fn, void *user,
                tf_fn_id *out)
{
    if (!rt || !name || !*name || !fn || !out)
        return TF_EINVAL;
    if (rt->in_run)
        return TF_ESTATE;
    tf_fn_id dummy;
    if (tf_lookup(rt, name, &dummy) == 0)
        return TF_EEXIST;
    if (rt->nfns == rt->fcap) {
        uint32_t ncap = rt->fcap ? rt->fcap * 2 : 16;
        tf_fnent *p = realloc(rt->fns, ncap * sizeof *p);
        if (!p)
            return TF_ENOMEM;
        rt->fns = p;
        rt->fcap = ncap;
    }
    char *copy = strdup(name);
    if (!copy)
        return TF_ENOMEM;
    rt->fns[rt->nfns] = (tf_fnent){copy, fn, user};
    *out = rt->nfns++;
    return 0;
}

int tf_lookup(const tf_runtime *rt, const char *name, tf_fn_id *out)
{
    if (!rt || !name || !out)
        return TF_EINVAL;
    for (uint32_t i = 0; i < rt->nfns; i++)
        if (strcmp(rt->fns[i].name, name) == 0) {
            *out = i;
            return 0;
        }
    return TF_ENOENT;
}

uint32_t tf_rt_index_of(const tf_runtime *rt, uint64_t gid)
{
    if (gid >> 32)
        return tf_idmap_get(&rt->ids, gid);
    /* Rank 0's own submissions use their index as id; check it is one. */
    if (gid < rt->sched.dag.n && rt->rec[gid].gid == gid)
        return (uint32_t)gid;
    return TF_NONE;
}

int tf_rt_add_task(tf_runtime *rt, uint64_t gid, uint32_t fn, int32_t prio,
                   uint16_t cores, int retries, const uint32_t *deps,
                   uint32_t ndeps, const void *in, uint32_t in_len,
                   unsigned flags, uint32_t *idx)
{
    tf_sched *s = &rt->sched;
    if (s->dag.n == rt->rcap) {
        uint32_t ncap = rt->rcap ? rt->rcap * 2 : 1024;
        tf_trec *p = realloc(rt->rec, (size_t)ncap * sizeof *p);
        if (!p)
            return TF_ENOMEM;
        rt->rec = p;
        rt->rcap = ncap;
    }
    uint8_t *req = NULL;
    size_t dep_bytes = (size_t)ndeps * sizeof(uint32_t);
    if (ndeps || in_len) {
        req = malloc(dep_bytes + in_len);
        if (!req)
            return TF_ENOMEM;
        if (ndeps)
            memcpy(req, deps, dep_bytes);
        if (in_len)
            memcpy(req + dep_bytes, in, in_len);
    }
    if (retries < 0)
        retries = rt->cfg.retries;
    uint32_t t;
    int rc = tf_sched_add_task(s, prio, cores, (uint8_t)retries, &t);
    if (rc)
        goto fail_with_req;
    for (uint32_t i = 0; i < ndeps && !rc; i++)
        rc = tf_sched_add_dep(s, deps[i], t);
    if (!rc && (flags & TF_RT_DOOMED))
        rc = tf_sched_doom(s, t);
    if (!rc && (flags & TF_RT_NOOP))
        rc = tf_sched_set_noop(s, t);
    if (rc)
        goto fail_with_task;
    if (gid >> 32) {
        rc = tf_idmap_put(&rt->ids, gid, t);
        if (rc)
            goto fail_with_task;
    } else {
        gid = t;
    }
    rt->rec[t] = (tf_trec){gid, req, NULL, fn, in_len, 0, ndeps, 0, -1, 0, 0, 0};
    rt->data_bytes += dep_bytes + in_len;
    /* Dependencies are older tasks, so sealing costs a scan of its edges. */
    if (!(flags & TF_RT_HOLD)) {
        rc = tf_sched_seal(s, NULL, 0, NULL);
        if (rc)
            goto fail_with_task;
    }
    *idx = t;
    return 0;

fail_with_task:
    tf_sched_drop_held(s);
fail_with_req:
    free(req);
    return rc;
}

int tf_submit(tf_runtime *rt, const tf_task_desc *desc, tf_task_id *id)
{
    if (!rt || !desc || !id)
        return TF_EINVAL;
    if (rt->rank != 0)
        return TF_ENOTROOT;
    if (rt->in_run)
        return TF_ESTATE;
    if (desc->fn >= rt->nfns)
        return TF_ENOENT;
    if (desc->input_len > UINT32_MAX || desc->ndeps > UINT32_MAX ||
        desc->cores > UINT16_MAX || (desc->ndeps && !desc->deps) ||
        (desc->input_len && !desc->input) || desc->retries >= UINT8_MAX)
        return TF_EINVAL;
    uint32_t small[16] = {0}, *deps = small;
    tf_rt_match m = {0, TF_NONE, 0, NULL};
    if (desc->ndeps > 16) {
        deps = malloc(desc->ndeps * sizeof *deps);
        if (!deps)
            return TF_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < desc->ndeps && !rc; i++) {
        deps[i] = tf_rt_index_of(rt, desc->deps[i]);
        if (deps[i] == TF_NONE)
            rc = TF_EDEP;
    }
    uint32_t t = 0;
    if (!rc)
        rc = tf_rt_ck_match(rt, TF_NONE, desc->fn, deps, (uint32_t)desc->ndeps,
                            desc->input, (uint32_t)desc->input_len, &m);
    if (!rc)
        rc = tf_rt_add_task(rt, 0, desc->fn, desc->prio,
                            (uint16_t)(desc->cores ? desc->cores : 1),
                            desc->retries, deps, (uint32_t)desc->ndeps,
                            desc->input, (uint32_t)desc->input_len, m.flags,
                            &t);
    if (deps != small)
        free(deps);
    if (rc) {
        free(m.out);
        return rc;
    }
    /* The task is in; a failure here is latched and fails the next tf_run. */
    tf_rt_ck_added(rt, t, TF_NONE, &m);
    *id = t;
    return 0;
}

/*
 * Heartbeats for this run (hb_ns 0: none): every rank counts as just heard
 * from and just told, so a run starts with a full timeout for everyone.
 */
static int liveness_init(tf_runtime *rt, uint64_t hb_ns)
{
    rt->hb_ns = hb_ns;
    if (!hb_ns)
        return 0;
    size_t n = (size_t)rt->size;
    if (!rt->heard && (!(rt->heard = calloc(n, sizeof *rt->heard)) ||
                       !(rt->told = calloc(n, sizeof *rt->told)) ||
                       !(rt->dead = calloc(n, sizeof *rt->dead))))
        return TF_ENOMEM;
    uint64_t now = tf_idle_clock_ns();
    for (size_t r = 0; r < n; r++)
        rt->heard[r] = rt->told[r] = now;
    return 0;
}

/*
 * Ids of tasks born on this rank carry rank 0's epoch (a resumed runtime's
 * number), so they never repeat ids of the state it resumed.
 */
static void set_epoch(tf_runtime *rt, uint64_t epoch)
{
    if (!rt->have_pool)
        return;
    pthread_mutex_lock(&rt->pool.mu);
    rt->pool.gid_base = tf_rt_gid_base(epoch, rt->rank);
    pthread_mutex_unlock(&rt->pool.mu);
}

/*
 * Before a run every rank must agree on the function table (task records
 * carry indexes), and rank 0 learns each rank's slots. One gather of
 * (function count, hash of the names, slots, place, heartbeat) and one
 * reduction of the verdicts, which include `mine_rc` (this rank's own error
 * so far, or 0). Every rank takes rank 0's heartbeat setting. At the first
 * run rank 0 also gathers the host names, for the trace.
 */
static int agree(tf_runtime *rt, int mine_rc)
{
    enum { K = 7 };
    uint64_t mine[K] = {rt->nfns, 1469598103934665603ULL,
                        (uint64_t)rt->cfg.slots, rt->self.host,
                        (uint64_t)(int64_t)rt->self.numa,
                        (uint64_t)(rt->cfg.heartbeat_ms > 0
                                       ? rt->cfg.heartbeat_ms : 0),
                        tf_rt_ck_epoch(rt)};
    for (uint32_t i = 0; i < rt->nfns; i++) {
        /* Hash the NUL too, so ("ab","c") and ("a","bc") differ. */
        const char *c = rt->fns[i].name;
        do
            mine[1] = (mine[1] ^ (uint8_t)*c) * 1099511628211ULL;
        while (*c++);
    }
    /*
     * Every rank learns every rank's place (for steal victims); only rank 0
     * keeps the slots. (A rank out of memory here leaves the others waiting
     * in the collective: documented in docs/api.md.)
     */
    uint64_t *all = malloc(sizeof mine * (size_t)rt->size);
    tf_loc *locs = realloc(rt->locs, sizeof *locs * (size_t)rt->size);
    if (locs)
        rt->locs = locs;
    uint32_t *ws = rt->rank ? rt->wslots
                            : realloc(rt->wslots, sizeof *ws * (size_t)rt->size);
    if (ws)
        rt->wslots = ws;
    if (rt->rank == 0 && !rt->hosts_known && !rt->hosts)
        rt->hosts = calloc((size_t)rt->size, sizeof *rt->hosts);
    if (!all || !locs || (rt->rank == 0 && (!ws || !rt->hosts))) {
        free(all);
        return TF_ENOMEM;
    }
    int verdict = mine_rc;
    if (!rt->hosts_known) {
        char host[64] = "";
        gethostname(host, sizeof host - 1);
        if (MPI_Gather(host, 64, MPI_CHAR, rt->hosts, 64, MPI_CHAR, 0,
                       rt->comm) != MPI_SUCCESS)
            verdict = TF_EMPI;
        rt->hosts_known = true;
    }
    if (MPI_Allgather(mine, K, MPI_UINT64_T, all, K, MPI_UINT64_T, rt->comm) !=
        MPI_SUCCESS)
        verdict = TF_EMPI;
    for (int r = 0; !verdict && r < rt->size; r++)
        rt->locs[r] = (tf_loc){all[K * r + 3], (int32_t)(int64_t)all[K * r + 4]};
    if (!verdict)
        verdict = liveness_init(rt, all[5] * 1000000u);
    if (!verdict)
        set_epoch(rt, all[6]);
    for (int r = 0; rt->rank == 0 && !verdict && r < rt->size; r++) {
        rt->wslots[r] = (uint32_t)all[K * r + 2];
        if (all[K * r] != mine[0] || all[K * r + 1] != mine[1]) {
            tf_logf(&rt->log, TF_LOG_ERROR,
                    "rank %d registered %s task functions than rank 0 "
                    "(%llu and %llu): register the same names in the "
                    "same order on every rank",
                    r,
                    all[K * r] != mine[0] ? "a different number of"
                                          : "different names or order of",
                    (unsigned long long)all[K * r],
                    (unsigned long long)mine[0]);
            verdict = TF_EINVAL;
        }
    }
    free(all);
    /* Any rank's failure is everyone's: the smallest (most negative) code. */
    int worst = verdict;
    if (MPI_Allreduce(&verdict, &worst, 1, MPI_INT, MPI_MIN, rt->comm) !=
        MPI_SUCCESS)
        return TF_EMPI;
    return worst;
}

int tf_run(tf_runtime *rt)
{
    if (!rt)
        return TF_EINVAL;
    if (rt->in_run)
        return TF_ESTATE;
    /* With a rank gone, a collective would wait for it forever. */
    if (rt->degraded)
        return TF_ELOST;
    /*
     * A trace that cannot be created, or a state that cannot be loaded or
     * written, fails the run on every rank.
     */
    int rc = tf_rt_trace_open(rt);
    int crc = tf_rt_ck_prepare(rt);
    if (!rc)
        rc = crc;
    if (rt->mpi)
        rc = agree(rt, rc);
    else
        set_epoch(rt, tf_rt_ck_epoch(rt));
    if (!rt->mpi && !rc && !rt->hosts_known && rt->cfg.trace_path) {
        rt->hosts = calloc(1, sizeof *rt->hosts);
        if (rt->hosts)
            gethostname(rt->hosts[0], sizeof rt->hosts[0] - 1);
        rt->hosts_known = true;
    }
    if (rc)
        return rc;
    rt->in_run = true;
    rt->halt_requested = false;
    tf_rt_trace_begin(rt);
    rc = rt->rank == 0 ? tf_rt_run_master(rt) : tf_rt_run_worker(rt);
    tf_rt_trace_end(rt);
    rt->in_run = false;
    return rc;
}

int tf_halt(tf_runtime *rt)
{
    if (!rt)
        return TF_EINVAL;
    if (rt->rank != 0)
        return TF_ENOTROOT;
    if (!rt->in_run)
        return TF_ESTATE;
    /* Acted on by the scheduling loop, between callbacks. */
    if (!rt->halt_requested)
        tf_rt_trace_note(rt, "halt", NULL);
    rt->halt_requested = true;
    return 0;
}

static int check_query(const tf_runtime *rt, tf_task_id id, uint32_t *t)
{
    if (!rt)
        return TF_EINVAL;
    if (rt->rank != 0)
        return TF_ENOTROOT;
    *t = tf_rt_index_of(rt, id);
    return *t == TF_NONE ? TF_ENOENT : 0;
}

/* A parked task is on its worker already. */
tf_task_state tf_rt_public_state(tf_state st)
{
    switch (st) {
    case TF_ST_HELD: return TF_TASK_HELD;
    case TF_ST_PENDING: return TF_TASK_PENDING;
    case TF_ST_READY: return TF_TASK_READY;
    case TF_ST_DISPATCHED:
    case TF_ST_PARKED: return TF_TASK_DISPATCHED;
    case TF_ST_DONE: return TF_TASK_DONE;
    case TF_ST_FAILED: return TF_TASK_FAILED;
    default: return TF_TASK_SKIPPED;
    }
}

int tf_task_info_get(const tf_runtime *rt, tf_task_id id, tf_task_info *info)
{
    uint32_t t;
    int rc = check_query(rt, id, &t);
    if (rc)
        return rc;
    if (!info)
        return TF_EINVAL;
    const tf_trec *r = &rt->rec[t];
    *info = (tf_task_info){tf_rt_public_state((tf_state)rt->sched.dag.state[t]),
                           r->status,
                           r->rank,
                           rt->sched.dag.attempts[t],
                           r->start_ns,
                           r->end_ns};
    return 0;
}

int tf_task_output(const tf_runtime *rt, tf_task_id id, const void **buf,
                   size_t *len)
{
    uint32_t t;
    int rc = check_query(rt, id, &t);
    if (rc)
        return rc;
    if (!buf || !len)
        return TF_EINVAL;
    *buf = rt->rec[t].out;
    *len = rt->rec[t].out_len;
    return 0;
}

int tf_get_stats(const tf_runtime *rt, tf_stats *st)
{
    if (!rt || !st)
        return TF_EINVAL;
    memset(st, 0, sizeof *st);
    st->messages_sent = rt->msgs_sent;
    st->messages_received = rt->msgs_recv;
    st->steals = rt->steals;
    st->stolen = rt->stolen_tasks;
    st->lost_ranks = rt->nlost;
    if (rt->rank != 0)
        return 0;
    const tf_sched *s = &rt->sched;
    st->tasks = s->dag.n;
    st->done = s->count[TF_ST_DONE];
    st->failed = s->count[TF_ST_FAILED];
    st->skipped = s->count[TF_ST_SKIPPED];
    st->running = s->count[TF_ST_DISPATCHED];
    st->moved = rt->moved;
    st->released = s->released;
    st->sched_bytes = tf_sched_bytes(s) + tf_idmap_bytes(&rt->ids);
    /* Kept as it changes: the taskfarm command asks on every tick. */
    st->task_bytes = (size_t)rt->rcap * sizeof *rt->rec + rt->data_bytes;
    return 0;
}

int tf_finalize(tf_runtime **prt)
{
    if (!prt || !*prt)
        return TF_EINVAL;
    tf_runtime *rt = *prt;
    if (rt->in_run)
        return TF_ESTATE;
    int rc = tf_rt_trace_close(rt) ? TF_EIO : 0;
    if (tf_rt_ck_free(rt))
        rc = TF_EIO;
    if (rt->have_pool)
        tf_pool_destroy(&rt->pool);
    for (uint32_t t = 0; t < rt->sched.dag.n; t++) {
        free(rt->rec[t].req);
        free(rt->rec[t].out);
    }
    free(rt->rec);
    tf_idmap_free(&rt->ids);
    tf_sched_free(&rt->sched);
    for (uint32_t i = 0; i < rt->nfns; i++)
        free(rt->fns[i].name);
    free(rt->fns);
    free(rt->wslots);
    free(rt->locs);
    free(rt->hosts);
    free(rt->heard);
    free(rt->told);
    free(rt->dead);
    tf_rt_bell_free(rt);
    if (rt->mpi && MPI_Comm_free(&rt->comm) != MPI_SUCCESS)
        rc = TF_EMPI;
    free(rt);
    *prt = NULL;
    return rc;
}
