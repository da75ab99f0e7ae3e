/* Start-up: MPI or none, the runtime's sub-objects, every rank's host, slots and place, the agreement before each run. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT: crowded() */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "place/topo.h"
#include "core/wire.h"
#include "runtime.h"

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
 * and the NUMA node of its cores (-1 when several or unknown, or when the
 * topology is not read because this rank does not steal).
 */
static tf_loc locate(const char *host, bool numa_too)
{
    tf_loc loc = {1469598103934665603ULL, -1};
    for (const char *c = host; *c; c++)
        loc.host = (loc.host ^ (uint8_t)*c) * 1099511628211ULL;
    tf_topo *topo;
    if (!numa_too || tf_topo_load(&topo))
        return loc;
    size_t n;
    const int *cpus = tf_topo_cpus(topo, &n);
    char numa[64] = "";
    tf_topo_numa_of(topo, cpus, n, numa, sizeof numa);
    if (numa[0] && !strchr(numa, ','))
        loc.numa = atoi(numa);
    tf_topo_free(topo);
    return loc;
}

/*
 * Every rank's slots and place on every rank; host names on rank 0 (the
 * joblog and trace name hosts there; every rank knows its own). Collective
 * under MPI. Errors, the same on every rank: TF_ENOMEM, TF_EMPI.
 */
static int exchange(tf_runtime *rt)
{
    tf_link *l = &rt->link;
    tf_world *w = &rt->world;
    size_t n = (size_t)l->size;
    uint64_t mine[3], *every = l->mpi ? malloc(sizeof mine * n) : NULL;
    w->host = calloc(n, sizeof *w->host);
    w->slots = calloc(n, sizeof *w->slots);
    w->loc = calloc(n, sizeof *w->loc);
    int ok = w->host && w->slots && w->loc && (every || !l->mpi), all = ok;
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    tf_loc me = locate(host, rt->steal);
    /* Rank 0 that only schedules has no slots for anyone to count. */
    unsigned slots = l->rank == 0 && !tf_rt_rank0_runs(rt)
                         ? 0
                         : (unsigned)rt->cfg.slots;
    if (ok) {
        memcpy(w->host[l->rank], host, sizeof host);
        w->slots[l->rank] = slots;
        w->loc[l->rank] = me;
    }
    /* Memory is each rank's own affair: agree on it, then gather. */
    int rc = 0;
    if (l->mpi &&
        MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, l->comm) != MPI_SUCCESS)
        rc = TF_EMPI;
    else if (!all)
        rc = TF_ENOMEM;
    mine[0] = slots;
    mine[1] = me.host;
    mine[2] = (uint64_t)(int64_t)me.numa;
    if (!rc && l->mpi &&
        (MPI_Allgather(mine, 3, MPI_UINT64_T, every, 3, MPI_UINT64_T,
                       l->comm) != MPI_SUCCESS ||
         MPI_Gather(host, 64, MPI_CHAR, w->host, 64, MPI_CHAR, 0, l->comm) !=
             MPI_SUCCESS))
        rc = TF_EMPI;
    for (size_t r = 0; !rc && l->mpi && r < n; r++) {
        w->slots[r] = (unsigned)every[3 * r];
        w->loc[r] = (tf_loc){every[3 * r + 1], (int32_t)(int64_t)every[3 * r + 2]};
    }
    free(every);
    return rc;
}

static void free_world(tf_world *w)
{
    free(w->host);
    free(w->slots);
    free(w->loc);
    memset(w, 0, sizeof *w);
}

/*
 * Whether the ranks of this node keep more threads busy than it has cores
 * (the union of their CPU masks): a rank that only schedules keeps one; a
 * rank with slots keeps one a slot, and one more when its main thread does
 * not run tasks (a child process is busy for a task thread that waits on
 * it). Then an idle poll gives up its core (tf_link_nap), as Open MPI's
 * progress does when it knows of more ranks than cores; it cannot know of
 * threads. np 2 of 2 slots beside a rank 0 that only schedules, on 2
 * cores: rank 0 waited on the run queue 84.5 ms in a run of 8,192 tasks
 * of 3 us, 47 waits over 100 us, behind task threads that never yield.
 */
static int crowded(tf_runtime *rt, MPI_Comm node, bool driver_runs,
                   bool *out)
{
    unsigned busy = !rt->have_pool ? 1u
                                   : (unsigned)rt->cfg.slots + !driver_runs;
    cpu_set_t mask;
    /* Without a mask to go by a rank adds no core, but takes part. */
    if (sched_getaffinity(0, sizeof mask, &mask))
        CPU_ZERO(&mask);
    if (node != MPI_COMM_NULL &&
        (MPI_Allreduce(MPI_IN_PLACE, &busy, 1, MPI_UNSIGNED, MPI_SUM, node) !=
             MPI_SUCCESS ||
         MPI_Allreduce(MPI_IN_PLACE, &mask, (int)sizeof mask, MPI_BYTE,
                       MPI_BOR, node) != MPI_SUCCESS))
        return TF_EMPI;
    unsigned cores = (unsigned)CPU_COUNT(&mask);
    *out = cores && busy > cores;
    if (*out)
        tf_logf(&rt->log, TF_LOG_DEBUG,
                "%u busy threads on the %u cores of this node: idle polls "
                "yield",
                busy, cores);
    return 0;
}

/*
 * The runtime's parts; link.rank, link.size and link.mpi are set, and node
 * holds the ranks of link.comm on this node (MPI_COMM_NULL without MPI).
 */
static int setup(tf_runtime *rt, MPI_Comm node)
{
    rt->log = (tf_logger){rt->cfg.log_level, rt->link.rank, rt->cfg.log_fn,
                          rt->cfg.log_user};
    rt->link.log = &rt->log;
    int rc = tf_tasks_init(&rt->tasks, rt->cfg.retries);
    if (rc)
        return rc;
    rt->tasks.sched.park = true;
    rt->tasks.sched.adaptive = !rt->cfg.fixed_prefetch;
    rt->steal = !rt->cfg.no_steal && rt->link.size > 2;
    rc = exchange(rt);
    if (rc)
        goto fail_with_tasks;
    /*
     * Rank 0 of several leaves its tasks to task threads when a long one
     * would keep it from answering heartbeats.
     */
    bool driver_runs = rt->cfg.main_runs_tasks &&
                       !(rt->link.rank == 0 && rt->link.size > 1 &&
                         rt->cfg.heartbeat_ms > 0);
    if (rt->link.rank != 0 || tf_rt_rank0_runs(rt)) {
        /* Ids of tasks born here: creator rank + 1 in the high 32 bits. */
        rc = tf_pool_init(&rt->pool, (unsigned)rt->cfg.slots, driver_runs,
                          &rt->reg, rt->link.rank,
                          tf_tasks_gid_base(0, rt->link.rank));
        if (rc)
            goto fail_with_world;
        rt->have_pool = true;
        rt->link.pool = &rt->pool;
    }
    rc = crowded(rt, node, driver_runs, &rt->link.yield);
    if (rc)
        goto fail_with_pool;
    /* Rank 0 loads the state now: tf_submit matches tasks against it. */
    if (rt->cfg.checkpoint_dir && rt->link.rank == 0) {
        rc = tf_use_state(rt, rt->cfg.checkpoint_dir,
                          rt->cfg.resume ? TF_STATE_RESUME : TF_STATE_NEW);
        if (rc)
            goto fail_with_pool;
    }
    return 0;

fail_with_pool:
    if (rt->have_pool)
        tf_pool_destroy(&rt->pool);
    rt->have_pool = false;
fail_with_world:
    free_world(&rt->world);
fail_with_tasks:
    tf_tasks_free(&rt->tasks);
    return rc;
}

/* A runtime holding a checked copy of cfg, nothing else set up yet. */
static int rt_new(const tf_config *cfg, tf_runtime **out)
{
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
    /* Every rank sees the same arguments: all return here, or none. */
    if (!out)
        return TF_EINVAL;
    tf_runtime *rt;
    int rc = rt_new(cfg, &rt);
    if (rc)
        return rc;
    tf_link *l = &rt->link;
    l->mpi = true;
    rc = TF_EMPI;
    if (MPI_Comm_dup(comm, &l->comm) != MPI_SUCCESS)
        goto fail_with_rt;
    MPI_Comm_set_errhandler(l->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(l->comm, &l->rank);
    MPI_Comm_size(l->comm, &l->size);
    /* This node's ranks, for setup's count of threads and the bells. */
    MPI_Comm node;
    if (MPI_Comm_split_type(l->comm, MPI_COMM_TYPE_SHARED, l->rank,
                            MPI_INFO_NULL, &node) != MPI_SUCCESS)
        goto fail_with_comm;
    rc = setup(rt, node);
    if (rc)
        goto fail_with_node;
    /* Collective like the dup above: every rank gets here. */
    if (l->size > 1)
        rc = tf_bells_init(&l->bells, node, l->rank, l->size);
    MPI_Comm_free(&node);
    if (rc) {
        tf_finalize(&rt);
        return rc;
    }
    tf_link_set_naps(l);
    *out = rt;
    return 0;

fail_with_node:
    MPI_Comm_free(&node);
fail_with_comm:
    MPI_Comm_free(&l->comm);
fail_with_rt:
    free(rt);
    return rc;
}

int tf_init_local(const tf_config *cfg, tf_runtime **out)
{
    if (!out)
        return TF_EINVAL;
    tf_runtime *rt;
    int rc = rt_new(cfg, &rt);
    if (rc)
        return rc;
    rt->link.size = 1;
    rc = setup(rt, MPI_COMM_NULL);
    if (rc) {
        free(rt);
        return rc;
    }
    tf_link_set_naps(&rt->link);
    *out = rt;
    return 0;
}

/* Started by mpirun or srun (then use MPI), or by hand (then none)? */
static bool under_launcher(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK",
                                       "PMI_RANK", "PMI_SIZE",
                                       "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]))
            return true;
    const char *nt = getenv("SLURM_NTASKS");
    return getenv("SLURM_STEP_ID") && nt && atoi(nt) > 1;
}

int tf_boot(int *argc, char ***argv, unsigned flags, const tf_config *cfg,
            tf_runtime **out)
{
    if (!out)
        return TF_EINVAL;
    if (flags & TF_BOOT_OWN_PROCESS)
        tf_ck_no_exit_cleanup(); /* see ckpt.h: a full disk must not crash */
    if (!under_launcher())
        return tf_init_local(cfg, out);
    int inited = 0, provided, size = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED,
                                   &provided) != MPI_SUCCESS)
        return TF_EMPI;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *nt = getenv("SLURM_NTASKS");
    int rc = 0;
    if (size == 1 && getenv("SLURM_STEP_ID") && nt && atoi(nt) > 1) {
        /* Each process would run the whole file on its own. */
        tf_logger lg = {TF_LOG_ERROR, 0, cfg ? cfg->log_fn : NULL,
                        cfg ? cfg->log_user : NULL};
        tf_logf(&lg, TF_LOG_ERROR,
                "srun started %s tasks but MPI sees one rank: use srun "
                "--mpi=pmix (or mpirun)",
                nt);
        rc = TF_EINVAL;
    }
    if (!rc)
        rc = tf_init(MPI_COMM_WORLD, cfg, out);
    if (rc) {
        if (!inited)
            MPI_Finalize();
        return rc;
    }
    (*out)->owns_mpi = !inited;
    return 0;
}

int tf_rt_agree(tf_runtime *rt, int mine_rc)
{
    enum { K = 5 };
    tf_link *l = &rt->link;
    uint64_t epoch = rt->ck ? tf_ckstate_epoch(rt->ck) : 0;
    long im = rt->cfg.inline_max < 0 ? TF_INLINE_MAX_DEFAULT
                                     : rt->cfg.inline_max;
    uint64_t mine[K] = {rt->reg.n, tf_registry_hash(&rt->reg),
                        (uint64_t)(rt->cfg.heartbeat_ms > 0
                                       ? rt->cfg.heartbeat_ms
                                       : 0),
                        epoch,
                        (uint64_t)im < TF_WIRE_INLINE_MAX ? (uint64_t)im
                                                          : TF_WIRE_INLINE_MAX};
    uint64_t *all = malloc(sizeof mine * (size_t)l->size);
    /* (A rank out of memory here leaves the others waiting: docs/api.md.) */
    if (!all)
        return TF_ENOMEM;
    int verdict = mine_rc;
    if (MPI_Allgather(mine, K, MPI_UINT64_T, all, K, MPI_UINT64_T, l->comm) !=
        MPI_SUCCESS)
        verdict = TF_EMPI;
    /* Every rank takes rank 0's heartbeat setting and epoch. */
    if (!verdict)
        verdict = tf_live_start(&l->live, l->size, all[2] * 1000000u,
                                tf_idle_clock_ns());
    if (!verdict && rt->have_pool)
        tf_pool_set_gid_base(&rt->pool, tf_tasks_gid_base(all[3], l->rank));
    if (!verdict)
        rt->inline_max = (uint32_t)all[4];
    if (!verdict && rt->have_pool)
        rt->pool.inline_max = rt->link.size > 1 ? rt->inline_max : UINT32_MAX;
    for (int r = 0; l->rank == 0 && !verdict && r < l->size; r++) {
        if (all[K * r] == mine[0] && all[K * r + 1] == mine[1])
            continue;
        tf_logf(&rt->log, TF_LOG_ERROR,
                "rank %d registered %s task functions than rank 0 "
                "(%llu and %llu): register the same names in the same "
                "order on every rank",
                r,
                all[K * r] != mine[0] ? "a different number of"
                                      : "different names or order of",
                (unsigned long long)all[K * r], (unsigned long long)mine[0]);
        verdict = TF_EINVAL;
    }
    free(all);
    /* Any rank's failure is everyone's: the smallest (most negative) code. */
    int worst = verdict;
    if (MPI_Allreduce(&verdict, &worst, 1, MPI_INT, MPI_MIN, l->comm) !=
        MPI_SUCCESS)
        return TF_EMPI;
    return worst;
}

int tf_agree(tf_runtime *rt, int *value)
{
    if (!rt || !value)
        return TF_EINVAL;
    if (!rt->link.mpi)
        return 0;
    int v = *value;
    if (MPI_Allreduce(&v, value, 1, MPI_INT, MPI_MAX, rt->link.comm) !=
        MPI_SUCCESS)
        return TF_EMPI;
    return 0;
}

int tf_use_state(tf_runtime *rt, const char *dir, int mode)
{
    if (!rt || !dir || !*dir || mode < TF_STATE_NEW ||
        mode > TF_STATE_OVERWRITE)
        return TF_EINVAL;
    if (rt->link.rank != 0)
        return TF_ENOTROOT;
    if (rt->ck || rt->tasks.sched.dag.n || rt->in_run)
        return TF_ESTATE;
    tf_ckstate_cfg c = {dir, mode, rt->cfg.checkpoint_every_ms,
                        rt->link.size, &rt->log};
    return tf_ckstate_open(&c, &rt->ck);
}
