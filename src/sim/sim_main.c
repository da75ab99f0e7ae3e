/* taskfarm-sim: run the scheduler simulator once, sweep the scaling table and plot, or calibrate. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "sim.h"
#include "taskfarm_status.h"

static const char usage[] =
    "usage: taskfarm-sim [options]            one simulated run\n"
    "       taskfarm-sim --sweep [options]    the scaling table (docs/scaling.md)\n"
    "       taskfarm-sim --calibrate          time the real core, print the costs\n"
    "Workload:\n"
    "  --workers N        worker ranks (1000); rank 0 only schedules\n"
    "  --slots N          tasks per worker at once (1)\n"
    "  --tasks N          tasks (20 per worker slot)\n"
    "  --duration T       mean task duration (1ms); T is e.g. 100us, 1ms, 1s\n"
    "  --dist D           fixed | uniform (0.5-1.5 x mean) | heavy (Pareto 1.5) (fixed)\n"
    "  --dag S            independent | stencil | tree (binary out-tree)\n"
    "                     (independent)\n"
    "  --slow-worker F    worker 0 runs each task F times longer (1)\n"
    "Model:\n"
    "  --latency T        per message (2us)\n"
    "  --bandwidth B      bytes/s per link (10e9)\n"
    "  --msg-overhead T   rank 0's CPU per message sent or received (1us)\n"
    "  --task-overhead T  rank 0's CPU per task beyond the core (0)\n"
    "  --prefetch N       window ceiling per slot (64)\n"
    "  --fixed-prefetch   windows stay at the ceiling (default: adaptive)\n"
    "  --no-batch         window 1 per slot, one task per message, every DONE sent\n"
    "  --no-steal         no work stealing\n"
    "  --no-park          no local release of parked tasks\n"
    "  --no-idle          ranks notice messages at once (no idle back-off)\n"
    "  --host-ranks N     ranks per host, for steal victim order (32)\n"
    "  --cost-model M     live | calibrated | fixed (calibrated)\n"
    "  --seed N           (1)\n"
    "  --check            run the core's invariant check at the end\n"
    "Output:\n"
    "  --name P           prefix of the metric names (sim)\n"
    "  --sweep-workers L  comma-separated worker counts for --sweep\n"
    "  --svg FILE         --sweep: write the efficiency plot\n"
    "  --table FILE       --sweep: write the table as Markdown\n";

/* "100us", "1ms", "2s", "500ns", "0": nanoseconds; false if malformed. */
static bool parse_time(const char *s, uint64_t *ns)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double mul = 1e9;
    if (!strcmp(end, "ns"))
        mul = 1;
    else if (!strcmp(end, "us"))
        mul = 1e3;
    else if (!strcmp(end, "ms"))
        mul = 1e6;
    else if (!strcmp(end, "s") || (!*end && v == 0))
        mul = 1e9;
    else
        return false;
    if (errno || end == s || v < 0 || v * mul > 1e18)
        return false;
    *ns = (uint64_t)(v * mul + 0.5);
    return true;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || x > max)
        return false;
    *v = x;
    return true;
}

/* "100us" for the metric names: the duration as written in the table. */
static void time_label(uint64_t ns, char *buf, size_t len)
{
    if (ns >= 1000000000 && ns % 1000000000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ns / 1000000000));
    else if (ns >= 1000000 && ns % 1000000 == 0)
        snprintf(buf, len, "%llums", (unsigned long long)(ns / 1000000));
    else if (ns >= 1000 && ns % 1000 == 0)
        snprintf(buf, len, "%lluus", (unsigned long long)(ns / 1000));
    else
        snprintf(buf, len, "%lluns", (unsigned long long)ns);
}

static void print_cost(const sim_cost *c)
{
    const char *k = c->kind == SIM_COST_LIVE         ? "live"
                    : c->kind == SIM_COST_CALIBRATED ? "calibrated"
                                                     : "fixed";
    printf("sim_cost_model %s -\n", k);
    printf("sim_calib_clock_pair %.1f ns\n", c->clock_ns);
    printf("sim_calib_done %.1f ns/task\n", c->done_ns);
    printf("sim_calib_moved %.1f ns/task\n", c->moved_ns);
    printf("sim_calib_dispatch %.1f ns/task\n", c->run_ns);
    printf("sim_calib_encode %.1f ns/task\n", c->enc_ns);
    printf("sim_calib_scan_ready %.2f ns/worker\n", c->scan_ns);
    printf("sim_calib_scan_idle %.2f ns/worker\n", c->idle_scan_ns);
}

static void print_result(const char *p, const sim_result *r)
{
    printf("%s_tasks %llu tasks\n", p, (unsigned long long)r->tasks);
    printf("%s_makespan %.6f s\n", p, (double)r->makespan_ns / 1e9);
    printf("%s_efficiency %.4f ratio\n", p, r->efficiency);
    printf("%s_r0_util %.4f ratio\n", p, r->r0_util);
    printf("%s_r0_decisions %.0f decisions/s\n", p, r->decisions_per_s);
    printf("%s_r0_messages %llu msgs\n", p,
           (unsigned long long)(r->r0_msgs_in + r->r0_msgs_out));
    printf("%s_r0_bytes %llu bytes\n", p,
           (unsigned long long)(r->r0_bytes_in + r->r0_bytes_out));
    printf("%s_dispatch_calls %llu calls\n", p,
           (unsigned long long)r->dispatch_calls);
    printf("%s_peer_messages %llu msgs\n", p, (unsigned long long)r->peer_msgs);
    printf("%s_parked %llu tasks\n", p, (unsigned long long)r->parked);
    printf("%s_steals %llu steals\n", p, (unsigned long long)r->steals);
    printf("%s_moved %llu tasks\n", p, (unsigned long long)r->moved);
    printf("%s_ran_once %llu tasks\n", p, (unsigned long long)r->ran_once);
    printf("%s_check %d ok\n", p, r->check_ok);
    printf("%s_events %llu events\n", p, (unsigned long long)r->events);
    printf("%s_wall %.2f s\n", p, r->wall_s);
}

/* Run, report a failure on stderr; returns 0 or the TF_E* code. */
static int run_one(const sim_opts *o, const sim_cost *c, sim_result *r)
{
    int rc = sim_run(o, c, r);
    if (rc)
        fprintf(stderr, "taskfarm-sim: %s (%s)\n", r->why, tf_strerror(rc));
    else if (!r->check_ok)
        fprintf(stderr, "taskfarm-sim: invariant check failed: %s\n", r->why);
    else if (r->ran_once != r->tasks)
        fprintf(stderr, "taskfarm-sim: %llu of %llu tasks ran exactly once\n",
                (unsigned long long)r->ran_once, (unsigned long long)r->tasks);
    return rc ? rc : !r->check_ok || r->ran_once != r->tasks ? TF_EPROTO : 0;
}

/* One table row to the Markdown file and its metric lines to stdout. */
static void row(FILE *tab, const char *variant, const sim_opts *o,
                const sim_result *r)
{
    char d[32], name[128];
    time_label(o->mean_ns, d, sizeof d);
    snprintf(name, sizeof name, "sim_%s_w%u_%s", variant, o->workers, d);
    printf("%s_efficiency %.4f ratio\n", name, r->efficiency);
    printf("%s_r0_util %.4f ratio\n", name, r->r0_util);
    printf("%s_r0_decisions %.0f decisions/s\n", name, r->decisions_per_s);
    printf("%s_makespan %.6f s\n", name, (double)r->makespan_ns / 1e9);
    printf("%s_r0_messages %llu msgs\n", name,
           (unsigned long long)(r->r0_msgs_in + r->r0_msgs_out));
    if (r->steals)
        printf("%s_moved %llu tasks\n", name, (unsigned long long)r->moved);
    printf("%s_wall %.2f s\n", name, r->wall_s);
    fflush(stdout);
    if (tab)
        fprintf(tab,
                "| %s | %u | %s | %llu | %.4g s | %.3f | %.3f | %.2fM | %llu "
                "| %llu |\n",
                variant, o->workers, d, (unsigned long long)r->tasks,
                (double)r->makespan_ns / 1e9, r->efficiency, r->r0_util,
                r->decisions_per_s / 1e6,
                (unsigned long long)(r->r0_msgs_in + r->r0_msgs_out),
                (unsigned long long)r->moved);
}

static int parse_list(const char *s, uint32_t *v, size_t max, size_t *n)
{
    *n = 0;
    while (*s && *n < max) {
        char *end;
        errno = 0;
        unsigned long x = strtoul(s, &end, 10);
        if (errno || end == s || !x || x > 10000000)
            return -1;
        v[(*n)++] = (uint32_t)x;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return *n ? 0 : -1;
}

/*
 * The scaling table: efficiency against workers for the three durations,
 * then what batching and stealing buy and a DAG, each variant against the
 * default measured in the same run.
 */
static int sweep(const sim_opts *base, const sim_cost *c, const uint32_t *ws,
                 size_t nws, const char *svg, const char *table)
{
    static const uint64_t durs[] = {100000, 1000000, 1000000000};
    enum { ND = sizeof durs / sizeof *durs };
    FILE *tab = table ? fopen(table, "w") : NULL;
    if (table && !tab) {
        fprintf(stderr, "taskfarm-sim: %s: %s\n", table, strerror(errno));
        return TF_EIO;
    }
    if (tab)
        fprintf(tab, "| variant | workers | task | tasks | makespan | "
                     "efficiency | rank 0 busy | decisions/s | rank 0 msgs "
                     "| stolen |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    double *eff = calloc(ND * nws, sizeof *eff), *util = calloc(ND * nws, sizeof *util);
    int rc = eff && util ? 0 : TF_ENOMEM;
    sim_result r;
    for (size_t d = 0; d < ND && !rc; d++)
        for (size_t i = 0; i < nws && !rc; i++) {
            sim_opts o = *base;
            o.workers = ws[i];
            o.mean_ns = durs[d];
            if (!(rc = run_one(&o, c, &r))) {
                row(tab, "default", &o, &r);
                eff[d * nws + i] = r.efficiency;
                util[d * nws + i] = r.r0_util;
            }
        }
    /*
     * Variants, each against the default row of the same scale above:
     * ranks that notice messages at once (no idle back-off); reports after
     * a quarter of the current window; batching off (window 1, one task per message, every DONE sent at
     * once) and fixed windows of 64 against the adaptive default; spread
     * (uniform) durations, whose reports arrive one by one; stealing on and
     * off under imbalance (heavy-tailed durations, fixed windows of 64, so
     * rank 0 hands everything out at once and only stealing can even out
     * what workers were dealt); a 1-D stencil with and without local
     * release; and a fixed window of 2 for 1 s tasks at 100,000 workers.
     */
    static const struct variant {
        const char *name;
        uint32_t workers, per_worker; /* tasks per worker, 0: 20 */
        uint64_t mean_ns;
        int batch, adaptive, prefetch, steal, dist, shape, idle;
    } vs[] = {
        {"no-idle", 100, 0, 1000000, 1, 1, 64, 1, SIM_DIST_FIXED, 0, 0},
        {"no-batch", 1000, 0, 100000, 0, 1, 64, 1, SIM_DIST_FIXED, 0, 1},
        {"no-batch", 1000, 0, 1000000, 0, 1, 64, 1, SIM_DIST_FIXED, 0, 1},
        {"no-batch", 10000, 0, 1000000, 0, 1, 64, 1, SIM_DIST_FIXED, 0, 1},
        {"window64", 1000, 0, 100000, 1, 0, 64, 1, SIM_DIST_FIXED, 0, 1},
        {"window64", 1000, 0, 1000000, 1, 0, 64, 1, SIM_DIST_FIXED, 0, 1},
        {"window64", 10000, 0, 1000000, 1, 0, 64, 1, SIM_DIST_FIXED, 0, 1},
        {"window64", 100000, 0, 1000000, 1, 0, 64, 1, SIM_DIST_FIXED, 0, 1},
        {"window2", 100000, 0, 1000000000, 1, 0, 2, 1, SIM_DIST_FIXED, 0, 1},
        {"uniform", 1000, 0, 1000000, 1, 1, 64, 1, SIM_DIST_UNIFORM, 0, 1},
        {"uniform", 100000, 4, 1000000000, 1, 1, 64, 1, SIM_DIST_UNIFORM, 0, 1},
        {"heavy-steal", 1000, 0, 1000000000, 1, 0, 64, 1, SIM_DIST_HEAVY, 0, 1},
        {"heavy-nosteal", 1000, 0, 1000000000, 1, 0, 64, 0, SIM_DIST_HEAVY, 0, 1},
        {"heavy-steal", 10000, 0, 1000000000, 1, 0, 64, 1, SIM_DIST_HEAVY, 0, 1},
        {"heavy-nosteal", 10000, 0, 1000000000, 1, 0, 64, 0, SIM_DIST_HEAVY, 0, 1},
        {"stencil", 1000, 0, 1000000, 1, 1, 64, 1, SIM_DIST_FIXED, 1, 1},
        {"stencil", 10000, 0, 1000000000, 1, 1, 64, 1, SIM_DIST_FIXED, 1, 1},
    };
    for (size_t i = 0; i < sizeof vs / sizeof *vs && !rc; i++) {
        sim_opts o = *base;
        o.workers = vs[i].workers;
        o.mean_ns = vs[i].mean_ns;
        o.batch = vs[i].batch;
        o.adaptive = vs[i].adaptive;
        o.prefetch = (uint32_t)vs[i].prefetch;
        o.steal = vs[i].steal;
        o.idle = vs[i].idle;
        o.tasks = (uint64_t)vs[i].per_worker * o.workers * o.slots;
        o.dist = (sim_dist)vs[i].dist;
        o.shape = vs[i].shape ? SIM_STENCIL : SIM_INDEPENDENT;
        if (!(rc = run_one(&o, c, &r)))
            row(tab, vs[i].name, &o, &r);
    }
    if (!rc && svg) {
        static const char *labels[] = {"100 us tasks", "1 ms tasks",
                                       "1 s tasks"};
        rc = sim_plot_svg(svg, ws, nws, eff, util, labels, ND);
        if (rc)
            fprintf(stderr, "taskfarm-sim: cannot write %s\n", svg);
    }
    free(eff);
    free(util);
    if (tab && fclose(tab) && !rc)
        rc = TF_EIO;
    return rc;
}

static int bad_arg(const char *opt, const char *val)
{
    fprintf(stderr, "taskfarm-sim: bad value '%s' for %s\n%s", val ? val : "",
            opt, usage);
    return 2;
}

int main(int argc, char **argv)
{
    sim_opts o;
    sim_opts_default(&o);
    const char *name = "sim", *svg = NULL, *table = NULL;
    const char *model = "calibrated";
    bool do_sweep = false, do_calibrate = false;
    uint32_t ws[32] = {100, 300, 1000, 3000, 10000, 30000, 100000};
    size_t nws = 7;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
        bool takes = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--sweep")) {
            do_sweep = true, takes = false;
        } else if (!strcmp(a, "--calibrate")) {
            do_calibrate = true, takes = false;
        } else if (!strcmp(a, "--fixed-prefetch")) {
            o.adaptive = false, takes = false;
        } else if (!strcmp(a, "--no-batch")) {
            o.batch = false, takes = false;
        } else if (!strcmp(a, "--no-steal")) {
            o.steal = false, takes = false;
        } else if (!strcmp(a, "--no-park")) {
            o.park = false, takes = false;
        } else if (!strcmp(a, "--no-idle")) {
            o.idle = false, takes = false;
        } else if (!strcmp(a, "--check")) {
            o.check = true, takes = false;
        } else if (!v) {
            return bad_arg(a, NULL);
        } else if (!strcmp(a, "--workers")) {
            if (!parse_u64(v, 10000000, &x) || !x)
                return bad_arg(a, v);
            o.workers = (uint32_t)x;
        } else if (!strcmp(a, "--slots")) {
            if (!parse_u64(v, 1024, &x) || !x)
                return bad_arg(a, v);
            o.slots = (uint32_t)x;
        } else if (!strcmp(a, "--tasks")) {
            if (!parse_u64(v, UINT32_MAX - 1, &x) || !x)
                return bad_arg(a, v);
            o.tasks = x;
        } else if (!strcmp(a, "--duration")) {
            if (!parse_time(v, &o.mean_ns) || !o.mean_ns)
                return bad_arg(a, v);
        } else if (!strcmp(a, "--dist")) {
            if (!sim_dist_of(v, &o.dist))
                return bad_arg(a, v);
        } else if (!strcmp(a, "--dag")) {
            if (!sim_shape_of(v, &o.shape))
                return bad_arg(a, v);
        } else if (!strcmp(a, "--slow-worker")) {
            char *end;
            o.slow = strtod(v, &end);
            if (*end || end == v || !(o.slow >= 1 && o.slow <= 1000))
                return bad_arg(a, v);
        } else if (!strcmp(a, "--latency")) {
            if (!parse_time(v, &o.latency_ns))
                return bad_arg(a, v);
        } else if (!strcmp(a, "--bandwidth")) {
            char *end;
            o.bandwidth = strtod(v, &end);
            if (*end || !(o.bandwidth > 0))
                return bad_arg(a, v);
        } else if (!strcmp(a, "--msg-overhead")) {
            if (!parse_time(v, &o.msg_ns))
                return bad_arg(a, v);
        } else if (!strcmp(a, "--task-overhead")) {
            if (!parse_time(v, &o.task_ns))
                return bad_arg(a, v);
        } else if (!strcmp(a, "--prefetch")) {
            if (!parse_u64(v, 1u << 20, &x) || !x)
                return bad_arg(a, v);
            o.prefetch = (uint32_t)x;
        } else if (!strcmp(a, "--host-ranks")) {
            if (!parse_u64(v, 1u << 20, &x) || !x)
                return bad_arg(a, v);
            o.host_ranks = (uint32_t)x;
        } else if (!strcmp(a, "--cost-model")) {
            if (strcmp(v, "live") && strcmp(v, "calibrated") &&
                strcmp(v, "fixed"))
                return bad_arg(a, v);
            model = v;
        } else if (!strcmp(a, "--seed")) {
            if (!parse_u64(v, UINT64_MAX, &o.seed))
                return bad_arg(a, v);
        } else if (!strcmp(a, "--name")) {
            name = v;
        } else if (!strcmp(a, "--sweep-workers")) {
            if (parse_list(v, ws, 32, &nws))
                return bad_arg(a, v);
        } else if (!strcmp(a, "--svg")) {
            svg = v;
        } else if (!strcmp(a, "--table")) {
            table = v;
        } else {
            fprintf(stderr, "taskfarm-sim: unknown option '%s'\n%s", a, usage);
            return 2;
        }
        i += takes;
    }
    sim_cost c;
    sim_cost_fixed(&c);
    int rc = 0;
    if (do_calibrate || strcmp(model, "fixed")) {
        rc = sim_cost_calibrate(&c, 200000, 100000);
        if (rc) {
            fprintf(stderr, "taskfarm-sim: calibration: %s\n", tf_strerror(rc));
            return 3;
        }
        if (!strcmp(model, "live"))
            c.kind = SIM_COST_LIVE;
    }
    print_cost(&c);
    if (do_calibrate)
        return 0;
    if (do_sweep) {
        rc = sweep(&o, &c, ws, nws, svg, table);
    } else {
        sim_result r;
        rc = run_one(&o, &c, &r);
        if (!rc)
            print_result(name, &r);
    }
    return rc == TF_EINVAL ? 2 : rc ? 3 : 0;
}
