/* The shell task: one command in its own process group, on its cores, with its environment and output. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* environ */
#endif

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/grow.h"
#include "exec/pool.h"
#include "farm.h"

extern char **environ;

/*
 * Variables a launcher sets for its own ranks (names, or prefixes of
 * names). A task that is itself an MPI program must not take them for its
 * own, or it would try to join this job (a singleton dies in MPI_Init with
 * "OPAL ERROR: Unreachable"; a nested mpirun exits 1): without them it
 * starts as a singleton or under its own mpirun or srun. What the user or
 * the site's modules set (OMPI_MCA_btl, OMPI_MCA_mpi_oversubscribe,
 * SLURM_JOB_*, ...) stays, and so do the documented TASKFARM_*.
 * Read off `mpirun -np 1 env` (Open MPI 4.1), `srun env` (Slurm 22) and
 * MPICH's Hydra.
 */
static const char *const launcher_prefixes[] = {
    /* Open MPI: the rank's place in the job, its daemon, its PMIx server */
    "OMPI_COMM_WORLD_", "OMPI_UNIVERSE_SIZE", "OMPI_FIRST_RANKS",
    "OMPI_APP_CTX_", "OMPI_NUM_APP_CTX", "OMPI_FILE_LOCATION",
    "OMPI_COMMAND", "OMPI_ARGV", "OMPI_MCA_ess", "OMPI_MCA_orte_",
    "OMPI_MCA_pmix", "OMPI_MCA_initial_wdir",
    "OMPI_MCA_shmem_RUNTIME_QUERY_hint",
    /* PMIx (any launcher), PMI-1/2 (Slurm, MPICH) */
    "PMIX_", "PMI_",
    /* MPICH's Hydra */
    "HYDRA_", "HYDI_", "MPI_LOCALNRANKS", "MPI_LOCALRANKID",
    /* Slurm's step: a nested srun makes a step of its own */
    "SLURM_STEP_", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_TASK_PID",
    "SLURM_GTIDS", "SLURM_LAUNCH_NODE_IPADDR", "SLURM_SRUN_COMM_",
    "SLURM_PMIX", "SLURM_PMI_",
};

/*
 * The task's environment: this process's, without the launcher's variables,
 * with TASKFARM_* and OMP_NUM_THREADS for its n cores at `place`.
 */
static int make_env(cli_shell *S, tf_task_ctx *ctx, const char *id,
                    const tf_place *place, size_t n, tf_envbuf *env)
{
    size_t clen = n * 12 + 1;
    char *cores = malloc(clen), numa[1024], num[3][32];
    if (!cores)
        return TF_ENOMEM;
    tf_place_format(S->placer, place, cores, clen, numa, sizeof numa);
    snprintf(num[0], sizeof num[0], "%d", tf_task_rank(ctx));
    snprintf(num[1], sizeof num[1], "%d", tf_task_attempt(ctx));
    snprintf(num[2], sizeof num[2], "%zu", n);
    const char *set[][2] = {{"TASKFARM_TASK_ID", id},
                            {"TASKFARM_RANK", num[0]},
                            {"TASKFARM_ATTEMPT", num[1]},
                            {"TASKFARM_CORES", cores},
                            {"TASKFARM_NUMA", numa},
                            {"OMP_NUM_THREADS", num[2]},
                            {"TASKFARM_OUTDIR", S->o->outdir}};
    int rc = tf_env_init(env, environ);
    for (size_t i = 0; !rc && i < sizeof launcher_prefixes /
                                       sizeof *launcher_prefixes; i++)
        rc = tf_env_unset_prefix(env, launcher_prefixes[i]);
    for (size_t i = 0; !rc && i < sizeof set / sizeof *set; i++)
        rc = tf_env_set(env, set[i][0], set[i][1]);
    free(cores);
    if (rc)
        tf_env_free(env);
    return rc;
}

/*
 * A finished command's exit status, as the task's status and output;
 * times: its own start and end go too (an adopted command).
 */
static int outcome(tf_task_ctx *ctx, const tf_proc_result *res, bool times)
{
    /* errno values fit a byte (Linux's end below 140); 255: larger. */
    uint8_t why = res->spawn_errno > 0 && res->spawn_errno < 255
                      ? (uint8_t)res->spawn_errno
                      : res->spawn_errno ? 255 : 0;
    char o[sizeof(shell_out) + 16 + TF_PROC_ERROR_LEN];
    shell_out so = {res->exitval, res->signal, res->timed_out, res->halted,
                    why, times};
    size_t len = sizeof so;
    memcpy(o, &so, sizeof so);
    if (times) {
        memcpy(o + len, &res->start_ns, 8);
        memcpy(o + len + 8, &res->end_ns, 8);
        len += 16;
    }
    if (res->spawn_errno && res->spawn_error[0]) {
        size_t n = strnlen(res->spawn_error, TF_PROC_ERROR_LEN - 1);
        memcpy(o + len, res->spawn_error, n);
        o[len + n] = 0;
        len += n + 1;
    }
    tf_task_set_output(ctx, o, len);
    if (res->timed_out)
        return 124;
    if (res->spawn_errno)
        return 127;
    /* Refused by a halt before it started: ended like the running ones. */
    if (res->halted && !res->signal)
        return 128 + SIGTERM;
    if (res->signal)
        return 128 + res->signal;
    return res->exitval;
}

/*
 * Whether processes of the task's group outlive its leader (reaped by now:
 * a group id stays taken while a member lives, so this names no other).
 * After a timeout or a halt the group was SIGKILLed: what is left of it are
 * zombies waiting for init, which write nothing.
 */
static bool is_lingering(const tf_proc_result *res)
{
    return res->pid > 0 && !res->timed_out && !res->halted &&
           kill(-res->pid, 0) == 0;
}

/* ---- tasks held for a successor (--standby) ---- */

/*
 * Why here and not in the runtime: a worker's task threads end with its
 * run, but a command is a process that can outlive it. When rank 0 is
 * lost, the commands are left running (cli_shell_lost); the survivors'
 * new run starts by gathering what each rank holds (cli_shell_claims, in
 * run.c), the new rank 0 pins each such task to its holder, and the task
 * function there, seeing the id again, waits for the command it left
 * running (or reports the success it kept) instead of starting one.
 */

/* Most successes a worker keeps at once; beyond, they are not kept. */
#define KEEP_MAX 65536u

static int by_id(const void *a, const void *b)
{
    return strcmp(((const cli_held *)a)->id, ((const cli_held *)b)->id);
}

/* Under held_mu: forget the kept successes older than keep_ns. */
static void age(cli_shell *S, uint64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < S->nkept; i++) {
        cli_held *h = &S->kept[i];
        if (!h->running && now - h->kept_ns > S->keep_ns)
            free(h->id);
        else
            S->kept[k++] = *h;
    }
    S->nkept = k;
    S->aged_ns = now;
}

/* Under held_mu: one more in kept (h's id is copied); false: no memory. */
static bool keep(cli_shell *S, const cli_held *h)
{
    char *id;
    if (tf_grow((void **)&S->kept, &S->kept_cap, S->nkept + 1, sizeof *h,
                64) ||
        !(id = strdup(h->id)))
        return false;
    S->kept[S->nkept] = *h;
    S->kept[S->nkept++].id = id;
    return true;
}

/* A success this worker reported: kept for keep_ns, in case it was lost. */
static void keep_success(cli_shell *S, const char *id,
                         const tf_proc_result *res)
{
    uint64_t now = cli_mono_ns();
    cli_held h = {.id = (char *)id, .start_ns = res->start_ns,
                  .end_ns = res->end_ns, .kept_ns = now};
    pthread_mutex_lock(&S->held_mu);
    /* An eighth of the window at a time: a task costs no scan. */
    if (now - S->aged_ns > S->keep_ns / 8 || S->nkept >= KEEP_MAX)
        age(S, now);
    if (S->nkept < KEEP_MAX)
        keep(S, &h); /* out of memory: not kept, runs again if lost */
    pthread_mutex_unlock(&S->held_mu);
}

/* A command its run left running: held, else (no memory) ended. */
static void hold_running(cli_shell *S, const char *id, const tf_proc_held *p,
                         cli_task_output *to, uint32_t block)
{
    cli_held h = {.id = (char *)id, .running = true, .proc = *p, .to = *to,
                  .block = block};
    pthread_mutex_lock(&S->held_mu);
    bool ok = keep(S, &h);
    pthread_mutex_unlock(&S->held_mu);
    if (!ok) {
        tf_proc_drop(&S->procs, p);
        cli_output_discard(to);
    }
}

/* The held task with this id, not adopted yet: marked taken, copied out. */
static bool take_held(cli_shell *S, const char *id, cli_held *out)
{
    pthread_mutex_lock(&S->held_mu);
    cli_held key = {.id = (char *)id};
    cli_held *h = S->nheld ? bsearch(&key, S->held, S->nheld, sizeof key,
                                     by_id)
                           : NULL;
    bool found = h && !h->taken;
    if (found) {
        h->taken = true;
        *out = *h; /* the id stays the list's */
    }
    pthread_mutex_unlock(&S->held_mu);
    return found;
}

/*
 * A command ended (res): its output published, its success kept for a
 * successor (--standby workers), its status and output the task's (times:
 * the command's own, an adopted one).
 */
static int ended(cli_shell *S, tf_task_ctx *ctx, const char *id,
                 uint32_t block, cli_task_output *to,
                 const tf_proc_result *res, bool times)
{
    cli_output_end(&S->output, to, id, block, tf_task_attempt(ctx) > 1,
                   is_lingering(res));
    if (S->keep_ns && !res->exitval && !res->signal && !res->timed_out &&
        !res->halted && !res->spawn_errno)
        keep_success(S, id, res);
    return outcome(ctx, res, times);
}

/*
 * Run a task whose command this rank held: wait for it, or report the
 * success kept, with the command's own times.
 */
static int adopt(cli_shell *S, tf_task_ctx *ctx, cli_held *h)
{
    tf_proc_result res;
    memset(&res, 0, sizeof res);
    if (!h->running) {
        res.start_ns = h->start_ns;
        res.end_ns = h->end_ns;
        if (S->keep_ns)
            keep_success(S, h->id, &res); /* for a second take-over */
        return outcome(ctx, &res, true);
    }
    /*
     * The slots' cores are counted taken, but the command stays bound
     * where it started: the new placer may give those to another task.
     */
    size_t n;
    tf_task_slots(ctx, &n);
    tf_place place;
    int rc = tf_placer_acquire(S->placer, n, &place);
    bool placed = !rc;
    rc = tf_proc_adopt(&S->procs, &h->proc, S->path, &res);
    if (!rc && res.detached) {
        /* Rank 0 lost again: held again. */
        hold_running(S, h->id, &res.held, &h->to, h->block);
        rc = 128 + SIGTERM;
    } else if (!rc) {
        rc = ended(S, ctx, h->id, h->block, &h->to, &res, true);
    } else {
        cli_output_discard(&h->to);
    }
    if (placed)
        tf_placer_release(S->placer, &place);
    return rc;
}

void cli_shell_lost(void *user)
{
    cli_shell *S = user;
    tf_proc_detach_all(&S->procs);
}

int cli_shell_claims(cli_shell *S, char **text)
{
    pthread_mutex_lock(&S->held_mu);
    age(S, cli_mono_ns());
    /* What is still held and not adopted, and what came since. */
    size_t n = 0;
    for (size_t i = 0; i < S->nheld; i++) {
        if (S->held[i].taken)
            free(S->held[i].id);
        else
            S->held[n++] = S->held[i];
    }
    int rc = 0;
    cli_held *all = realloc(S->held, (n + S->nkept + 1) * sizeof *all);
    if (all) {
        memcpy(all + n, S->kept, S->nkept * sizeof *all);
        n += S->nkept;
        S->nkept = 0;
        S->held = all;
        qsort(all, n, sizeof *all, by_id);
    } else {
        rc = TF_ENOMEM;
    }
    S->nheld = n;
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(S->held[i].id) + 22;
    char *t = malloc(len), *p = t;
    if (t) {
        *p = 0;
        for (size_t i = 0; i < n; i++)
            p += sprintf(p, "%s\t%llu\n", S->held[i].id,
                         S->held[i].running
                             ? (unsigned long long)UINT64_MAX
                             : (unsigned long long)S->held[i].end_ns);
    } else {
        rc = TF_ENOMEM;
    }
    __atomic_store_n(&S->adopting, n > 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&S->held_mu);
    *text = t;
    return rc;
}

/* End a held command, or forget a kept success. */
static void let_go(cli_shell *S, cli_held *h)
{
    if (h->running && !h->taken) {
        tf_proc_drop(&S->procs, &h->proc);
        cli_output_discard(&h->to);
    }
    free(h->id);
}

void cli_shell_drop_held(cli_shell *S)
{
    pthread_mutex_lock(&S->held_mu);
    __atomic_store_n(&S->adopting, false, __ATOMIC_RELEASE);
    for (size_t i = 0; i < S->nheld; i++)
        let_go(S, &S->held[i]);
    for (size_t i = 0; i < S->nkept; i++)
        let_go(S, &S->kept[i]);
    free(S->held);
    free(S->kept);
    S->held = S->kept = NULL;
    S->nheld = S->nkept = S->kept_cap = 0;
    pthread_mutex_unlock(&S->held_mu);
}

/*
 * Input of a shell task: u32 timeout_ms, u32 block (cli_output_block), then
 * "id\0command\0". Runs the command in its own process group, on the cores
 * the placer gives it (compact, NUMA-aware: src/place/plan.h) for the slots
 * the pool gave it, its output as S->output says (output.c).
 */
int cli_shell_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    cli_shell *S = user;
    uint32_t timeout_ms, block;
    if (len < 10)
        return TF_EPROTO;
    memcpy(&timeout_ms, in, 4);
    memcpy(&block, (const char *)in + 4, 4);
    const char *id = (const char *)in + 8;
    const char *cmd = id + strlen(id) + 1;
    cli_held h;
    if (__atomic_load_n(&S->adopting, __ATOMIC_ACQUIRE) &&
        take_held(S, id, &h))
        return adopt(S, ctx, &h);
    size_t n;
    tf_task_slots(ctx, &n);
    tf_place place;
    int rc = tf_placer_acquire(S->placer, n, &place);
    if (rc)
        return rc;
    tf_envbuf env;
    rc = make_env(S, ctx, id, &place, n, &env);
    if (rc)
        goto out_with_place;
    /* The child inherits the thread's binding; the thread gets its own back. */
    tf_binding bound;
    const char *warning = NULL;
    rc = tf_placer_bind(S->placer, &place, &bound, &warning);
    if (warning)
        fprintf(stderr, "taskfarm: rank %d: warning: %s\n", S->rank, warning);
    if (rc)
        goto out_with_env;
    tf_proc_spec spec = {.cmd = cmd,
                         .shell = S->path,
                         .envp = tf_env_get(&env),
                         .timeout_ms = timeout_ms,
                         .grace_ms = S->o->grace_ms};
    /*
     * Without scratch files (none can be made in out/): the task's own
     * files, opened as they always were, and the open fails naming them.
     */
    char out_path[PATH_MAX + 300], err_path[PATH_MAX + 300];
    cli_task_output to;
    bool scratch = cli_output_begin(&S->output, &to) == 0;
    if (scratch) {
        cli_output_spec(&to, &spec);
    } else {
        snprintf(out_path, sizeof out_path, "%s/%s.out", S->out_dir, id);
        snprintf(err_path, sizeof err_path, "%s/%s.err", S->out_dir, id);
        spec.out_path = out_path;
        spec.err_path = err_path;
    }
    tf_proc_result res;
    rc = tf_proc_run(&S->procs, &spec, &res);
    tf_placer_unbind(S->placer, &bound);
    if (!rc && res.detached) {
        /* Rank 0 was lost: the command runs on, for its successor. */
        hold_running(S, id, &res.held, &to, block);
        rc = 128 + SIGTERM;
        goto out_with_env;
    }
    if (!rc)
        rc = ended(S, ctx, id, block, &to, &res, false);
    else if (scratch)
        cli_output_end(&S->output, &to, id, block, tf_task_attempt(ctx) > 1,
                       false);
out_with_env:
    tf_env_free(&env);
out_with_place:
    tf_placer_release(S->placer, &place);
    return rc;
}

void cli_shell_halt(void *user)
{
    cli_shell *S = user;
    tf_proc_kill_all(&S->procs, S->o->grace_ms);
}

size_t cli_shell_input(char **buf, size_t *cap, uint32_t timeout_ms,
                       uint32_t block, const char *id, size_t id_len,
                       const char *cmd, size_t cmd_len)
{
    size_t need = 8 + id_len + 1 + cmd_len + 1;
    if (need > *cap) {
        char *nb = realloc(*buf, need);
        if (!nb)
            return 0;
        *buf = nb;
        *cap = need;
    }
    memcpy(*buf, &timeout_ms, 4);
    memcpy(*buf + 4, &block, 4);
    memcpy(*buf + 8, id, id_len);
    (*buf)[8 + id_len] = 0;
    memcpy(*buf + 8 + id_len + 1, cmd, cmd_len);
    (*buf)[need - 1] = 0;
    return need;
}

/*
 * Why bash by default: a task file is written once and run on many sites,
 * and /bin/sh is dash on Debian and Ubuntu but bash on RHEL, so `[[ ]]`,
 * `<<<`, `{1..3}` and `set -o pipefail` worked on one and not the other.
 * GNU parallel runs $SHELL (mostly bash), disBatch bash -c. It costs a
 * process start of bash instead of dash, 1.28 against 0.91 ms here
 * (docs/taskfile.md, "The shell"); --shell /bin/sh takes dash back.
 */
static int find_shell(const char *name, char *out, size_t len)
{
    if (strchr(name, '/')) {
        snprintf(out, len, "%s", name);
        return access(out, X_OK) ? errno : 0;
    }
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/usr/bin:/bin"; p;) {
        const char *colon = strchr(p, ':');
        int dlen = colon ? (int)(colon - p) : (int)strlen(p);
        snprintf(out, len, "%.*s%s%s", dlen, p, dlen ? "/" : "", name);
        if (!access(out, X_OK))
            return 0;
        p = colon ? colon + 1 : NULL;
    }
    return ENOENT;
}

int cli_shell_choose(cli_shell *S, tf_runtime *rt, const char *chosen,
                     const char *where)
{
    char *all = NULL, mine[2 * PATH_MAX];
    const char *name = chosen;
    if (tf_size(rt) > 1) {
        /* Rank 0's choice ("" for the default) and where it comes from. */
        snprintf(mine, sizeof mine, "%s\n%s", chosen ? chosen : "",
                 where ? where : "");
        int rc = tf_allgather_text(rt, mine, &all, NULL);
        if (rc) {
            fprintf(stderr, "taskfarm: cannot start: %s\n", tf_strerror(rc));
            return EXIT_RUNTIME;
        }
        char *nl = strchr(all, '\n');
        *nl = 0; /* rank 0's text has one */
        where = nl + 1;
        name = *all ? all : NULL;
    }
    int verdict = -1, e = find_shell(name ? name : "bash", S->path,
                                     sizeof S->path);
    char who[96] = "";
    if (tf_size(rt) > 1)
        snprintf(who, sizeof who, "rank %d (on %s): ", S->rank,
                 tf_rank_host(rt, S->rank));
    if (e && !name) {
        fprintf(stderr, "taskfarm: %swarning: no bash in PATH: commands run "
                        "under /bin/sh (choose one with --shell or @shell)\n",
                who);
        e = find_shell("/bin/sh", S->path, sizeof S->path);
    }
    if (e) {
        fprintf(stderr, "taskfarm: %scannot run the shell '%s' (%s): %s\n",
                who, name ? name : "/bin/sh",
                where && *where ? where : name ? "--shell" : "the default",
                strerror(e));
        verdict = EXIT_USAGE;
    }
    free(all);
    return verdict;
}
