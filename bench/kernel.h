/* Task Bench pieces shared by the METG benchmarks: compute kernel, graph patterns, serial reference, sweep. */
#ifndef TF_BENCH_KERNEL_H
#define TF_BENCH_KERNEL_H

/*
 * Header-only so that bench/metg.c (taskfarm) and bench/metg_mpi.c (plain
 * MPI) run exactly the same kernel and the same graphs, and compute METG
 * the same way (Slaughter et al., "Task Bench", SC20):
 *
 * - A graph has width W (points per timestep) and T timesteps; task (i, t)
 *   runs the kernel for k iterations on a seed made from its dependencies'
 *   outputs and emits a 16-byte point (a hash of its whole history and the
 *   kernel's value), so data really flows along every edge.
 * - The peak is the kernel's ns per iteration on one otherwise idle core,
 *   measured in the same run (tfb_calibrate).
 * - efficiency = tasks * k * peak_ns / (wall * cores); granularity = wall *
 *   cores / tasks; METG(50%) = the smallest granularity whose efficiency is
 *   at least 50%, interpolated between the sweep points around 50%.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the kernel ---------------------------------------------------------- */

/*
 * Compute-bound: 24 independent multiply-add chains, enough to keep the
 * floating-point units busy every cycle (throughput bound, no memory
 * traffic). With only a few chains the kernel was latency bound and the
 * CPU overlapped the end of one short task with the start of the next, so
 * tiny independent tasks ran up to 1.6x faster than the calibrated peak
 * (efficiency > 100%); at 24 chains a run of 1-iteration calls stays below
 * it. The result feeds the task's output, so the loop cannot be dropped.
 * IEEE arithmetic without contraction (-std=c11 turns -ffp-contract off)
 * gives the same bits on every rank, so a serial computation can check it.
 */
enum { TFB_CHAINS = 24 };

/*
 * Never inlined: inlined into different callers, GCC compiled it into
 * different code, and the same tasks ran 30% slower in one benchmark than
 * in another. Out of line, every program runs the same instructions.
 */
__attribute__((noinline)) static double tfb_kernel(uint64_t iters,
                                                   double seed)
{
    double x[TFB_CHAINS];
    for (int j = 0; j < TFB_CHAINS; j++)
        x[j] = seed + 0.01 * j;
    for (uint64_t i = 0; i < iters; i++)
        for (int j = 0; j < TFB_CHAINS; j++)
            x[j] = x[j] * 0.9999999 + 1e-7 * (j + 1);
    double sum = 0;
    for (int j = 0; j < TFB_CHAINS; j++)
        sum += x[j];
    return sum;
}

static inline double tfb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Peak: ns per kernel iteration on this core, the best of many ~1.5 ms runs
 * after a warm-up (the best is the least disturbed by other work).
 */
static inline double tfb_calibrate(void)
{
    const uint64_t k = 1u << 18;
    volatile double sink = 0;
    double best = 1e30;
    sink += tfb_kernel(k, 0.5); /* warm-up: clock ramps, page-ins */
    for (int r = 0; r < 100; r++) {
        double t0 = tfb_now();
        sink += tfb_kernel(k, 0.5 + r * 1e-3);
        double dt = tfb_now() - t0;
        if (dt < best)
            best = dt;
    }
    (void)sink;
    return best * 1e9 / (double)k;
}

/* ---- graph patterns ------------------------------------------------------ */

typedef enum tfb_pattern {
    TFB_TRIVIAL, /* independent tasks */
    TFB_STENCIL, /* (i,t) <- (i-1,t-1), (i,t-1), (i+1,t-1) within bounds */
    TFB_TREE,    /* (i,t) <- (i/2,t-1); width 1, 2, 4, ... up to W */
    TFB_FFT,     /* (i,t) <- (i,t-1), (i ^ 2^(t mod log2 W), t-1) */
    TFB_NPATTERNS
} tfb_pattern;

static const char *const tfb_pattern_names[TFB_NPATTERNS] = {
    "trivial", "stencil", "tree", "fft"};

static inline int tfb_pattern_parse(const char *s)
{
    for (int p = 0; p < TFB_NPATTERNS; p++)
        if (!strcmp(s, tfb_pattern_names[p]))
            return p;
    return -1;
}

static inline int tfb_log2(uint32_t w)
{
    int l = 0;
    while ((1u << (l + 1)) <= w)
        l++;
    return l;
}

/* Points at timestep t (only the tree is narrower than W, at its root). */
static inline uint32_t tfb_width(int pattern, uint32_t W, uint32_t t)
{
    if (pattern == TFB_TREE && t < 32 && (1u << t) < W)
        return 1u << t;
    return W;
}

/*
 * Dependencies of (i, t) at timestep t - 1, in increasing point order (the
 * order a task receives them in). Returns how many (at most 3).
 */
static inline int tfb_deps(int pattern, uint32_t W, uint32_t i, uint32_t t,
                           uint32_t dep[3])
{
    if (t == 0)
        return 0;
    int n = 0;
    switch (pattern) {
    case TFB_STENCIL:
        if (i > 0)
            dep[n++] = i - 1;
        dep[n++] = i;
        if (i + 1 < W)
            dep[n++] = i + 1;
        break;
    case TFB_TREE:
        dep[n++] = i / 2;
        break;
    case TFB_FFT: {
        uint32_t j = i ^ (1u << (t % (uint32_t)tfb_log2(W)));
        dep[n++] = i < j ? i : j;
        dep[n++] = i < j ? j : i;
        break;
    }
    default:
        break;
    }
    return n;
}

/* Tasks in the whole graph. */
static inline uint64_t tfb_ntasks(int pattern, uint32_t W, uint32_t T)
{
    uint64_t n = 0;
    for (uint32_t t = 0; t < T; t++)
        n += tfb_width(pattern, W, t);
    return n;
}

/* ---- what a task computes ------------------------------------------------ */

/* A task's output: 16 bytes. */
typedef struct tfb_point {
    uint64_t hash; /* of (i, t) and every dependency's hash, in order */
    double value;  /* the kernel's result */
} tfb_point;

static inline uint64_t tfb_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15u + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9u;
    return h ^ (h >> 29);
}

/*
 * Task (i, t) given its dependencies' hashes. The hash proves that every
 * edge delivered the right data; the kernel's seed comes from the hash, so
 * each task's value can be checked on its own without recomputing the
 * whole graph.
 */
static inline tfb_point tfb_compute(uint32_t i, uint32_t t, uint64_t k,
                                    const uint64_t *dep_hash, int ndeps)
{
    uint64_t h = tfb_mix(tfb_mix(0x7461736b66726dull, i), t);
    for (int d = 0; d < ndeps; d++)
        h = tfb_mix(h, dep_hash[d]);
    double seed = (double)(h >> 11) * 0x1p-53; /* in [0, 1) */
    return (tfb_point){h, tfb_kernel(k, seed)};
}

/*
 * The serial reference: every task's hash, hash[t * W + i] (W * T entries,
 * unused past the tree's width). Cheap: no kernel runs.
 */
static inline uint64_t *tfb_serial_hashes(int pattern, uint32_t W, uint32_t T)
{
    uint64_t *h = calloc((size_t)W * T, sizeof *h);
    if (!h)
        return NULL;
    for (uint32_t t = 0; t < T; t++) {
        for (uint32_t i = 0; i < tfb_width(pattern, W, t); i++) {
            uint32_t dep[3];
            uint64_t dh[3];
            int n = tfb_deps(pattern, W, i, t, dep);
            for (int d = 0; d < n; d++)
                dh[d] = h[(size_t)(t - 1) * W + dep[d]];
            uint64_t x = tfb_mix(tfb_mix(0x7461736b66726dull, i), t);
            for (int d = 0; d < n; d++)
                x = tfb_mix(x, dh[d]);
            h[(size_t)t * W + i] = x;
        }
    }
    return h;
}

/* Is p what task (i, t) must output? Runs the kernel once (k iterations). */
static inline bool tfb_point_ok(const uint64_t *ref, uint32_t W, uint32_t i,
                                uint32_t t, uint64_t k, tfb_point p)
{
    uint64_t h = ref[(size_t)t * W + i];
    if (p.hash != h)
        return false;
    double v = tfb_kernel(k, (double)(h >> 11) * 0x1p-53);
    return memcmp(&v, &p.value, sizeof v) == 0;
}

/* ---- the command line both programs share ------------------------------- */

typedef struct tfb_opts {
    bool calibrate;      /* --calibrate: print the peak and exit, no MPI */
    double peak_ns;      /* --peak-ns: the calibrated ns per iteration */
    uint32_t W, T;       /* -W, -T: width and timesteps */
    double start_us;     /* --start-us: task length at the top of the sweep */
    int patterns[TFB_NPATTERNS], npatterns; /* --patterns a,b,... */
} tfb_opts;

static inline void tfb_opts_init(tfb_opts *o)
{
    memset(o, 0, sizeof *o);
    o->W = 8;
    o->T = 256;
    o->start_us = 200;
    for (int p = 0; p < TFB_NPATTERNS; p++)
        o->patterns[o->npatterns++] = p;
}

/*
 * Parse argv[*i] (and its value) if it is a shared option. Returns 1 if it
 * was (and advances *i past its value), 0 if it is not one, -1 if its
 * value is bad.
 */
static inline int tfb_opts_parse(tfb_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--calibrate")) {
        o->calibrate = true;
        return 1;
    }
    bool known = !strcmp(a, "--peak-ns") || !strcmp(a, "-W") ||
                 !strcmp(a, "-T") || !strcmp(a, "--start-us") ||
                 !strcmp(a, "--patterns");
    if (!known)
        return 0;
    if (*i + 1 >= argc)
        return -1;
    const char *v = argv[++*i];
    char *end;
    if (!strcmp(a, "--patterns")) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", v);
        o->npatterns = 0;
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            int p = tfb_pattern_parse(tok);
            if (p < 0 || o->npatterns == TFB_NPATTERNS)
                return -1;
            o->patterns[o->npatterns++] = p;
        }
        return o->npatterns ? 1 : -1;
    }
    double x = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || !(x > 0))
        return -1;
    if (!strcmp(a, "--peak-ns"))
        o->peak_ns = x;
    else if (!strcmp(a, "--start-us"))
        o->start_us = x;
    else if (x != (uint32_t)x || x > 1e6)
        return -1;
    else if (!strcmp(a, "-W"))
        o->W = (uint32_t)x;
    else
        o->T = (uint32_t)x;
    return 1;
}

/* Width must be a power of two of at least 2 (tree, fft). */
static inline bool tfb_opts_valid(const tfb_opts *o)
{
    return o->W >= 2 && (o->W & (o->W - 1)) == 0 && o->T >= 2;
}

/* k at the top of the sweep: tasks of start_us on the calibrated core. */
static inline uint64_t tfb_k0(const tfb_opts *o)
{
    double k = o->start_us * 1e3 / o->peak_ns;
    return k < 1 ? 1 : (uint64_t)k;
}

/*
 * Repetitions of one sweep point, from its ideal time (tasks * k * peak /
 * cores): short runs are repeated and the best kept, since the machine is
 * shared; long ones are less noisy and would cost too much. Runs under
 * 20 ms, where one 2-3 ms time slice lost to another process is 10% or
 * more, get 5.
 */
static inline int tfb_reps(double ideal_s)
{
    return ideal_s > 0.2 ? 1 : ideal_s > 0.05 ? 2 : ideal_s > 0.02 ? 3 : 5;
}

/* ---- the sweep ----------------------------------------------------------- */

/*
 * The driver asks for one k at a time and reports what it measured; the
 * sweep starts at k0 (about 100% efficient), doubles k while efficiency is
 * below 50% (at most 3 times), halves it until efficiency falls below 50%
 * (or k reaches 1; a point below 50% is measured up to three times and
 * the best kept), then measures one point a factor sqrt(2) inside the crossing. Both benchmark programs drive the same sweep.
 */
enum { TFB_MAXPTS = 48, TFB_LOOKS = 3 };

/* Pause before another look at the same point, so a burst can pass. */
static inline void tfb_pause(void)
{
    nanosleep(&(struct timespec){0, 200000000}, NULL);
}

typedef struct tfb_sweep {
    uint64_t k[TFB_MAXPTS];
    double gran_us[TFB_MAXPTS], eff[TFB_MAXPTS];
    int n;
    int looks[TFB_MAXPTS]; /* runs of the point (more when below 50%) */
    int ups;       /* doublings done while below 50% at the start */
    bool refined;
    uint64_t next; /* k to measure next; 0: done */
} tfb_sweep;

static inline void tfb_sweep_init(tfb_sweep *s, uint64_t k0)
{
    memset(s, 0, sizeof *s);
    s->next = k0 ? k0 : 1;
}

/* The best point at or above 50% with the smallest k, and the point below. */
static inline void tfb_sweep_bracket(const tfb_sweep *s, int *hi, int *lo)
{
    *hi = *lo = -1;
    for (int j = 0; j < s->n; j++) {
        if (s->eff[j] >= 0.5 && (*hi < 0 || s->k[j] < s->k[*hi]))
            *hi = j;
    }
    for (int j = 0; j < s->n; j++) {
        if (s->eff[j] < 0.5 && *hi >= 0 && s->k[j] < s->k[*hi] &&
            (*lo < 0 || s->k[j] > s->k[*lo]))
            *lo = j;
    }
}

static inline void tfb_sweep_add(tfb_sweep *s, double gran_us, double eff)
{
    uint64_t k = s->next;
    s->next = 0;
    int j = 0;
    while (j < s->n && s->k[j] != k)
        j++;
    if (j < s->n) { /* a second look at k: keep the better */
        if (eff > s->eff[j]) {
            s->eff[j] = eff;
            s->gran_us[j] = gran_us;
        }
    } else if (s->n < TFB_MAXPTS) {
        s->k[s->n] = k;
        s->gran_us[s->n] = gran_us;
        s->eff[s->n] = eff;
        s->n++;
    } else {
        return;
    }
    /*
     * A point below 50% ends the descent, so one disturbed run must not:
     * on this shared machine another job can take a core for seconds. Such
     * a point is measured up to TFB_LOOKS times (the driver pauses between
     * looks) and the best look counts.
     */
    if (++s->looks[j] < TFB_LOOKS && s->eff[j] < 0.5) {
        s->next = k;
        return;
    }
    int hi, lo;
    tfb_sweep_bracket(s, &hi, &lo);
    if (hi < 0) { /* nothing at 50% yet: larger tasks */
        if (s->ups++ < 3)
            s->next = k * 2;
        return;
    }
    if (lo < 0) { /* not yet below 50%: smaller tasks */
        s->next = s->k[hi] > 1 ? s->k[hi] / 2 : 0;
        return;
    }
    if (!s->refined) {
        s->refined = true;
        uint64_t mid = (uint64_t)((double)s->k[hi] / sqrt(2.0) + 0.5);
        if (mid < s->k[hi] && mid > s->k[lo])
            s->next = mid;
    }
}

/*
 * METG(50%) in us: log(granularity) interpolated linearly in efficiency
 * between the bracketing points. Returns 0 and sets *bound: '=' a crossing
 * was found, '<' even k = 1 was above 50% (METG is at most the value),
 * '>' no point reached 50% (METG is above the largest size measured).
 */
static inline double tfb_sweep_metg(const tfb_sweep *s, char *bound)
{
    int hi, lo;
    tfb_sweep_bracket(s, &hi, &lo);
    if (hi < 0) {
        double g = 0;
        for (int j = 0; j < s->n; j++)
            if (s->gran_us[j] > g)
                g = s->gran_us[j];
        *bound = '>';
        return g;
    }
    if (lo < 0) {
        *bound = '<';
        return s->gran_us[hi];
    }
    *bound = '=';
    double f = (s->eff[hi] - 0.5) / (s->eff[hi] - s->eff[lo]);
    return exp(log(s->gran_us[hi]) +
               f * (log(s->gran_us[lo]) - log(s->gran_us[hi])));
}

/* Efficiency at the sweep's largest k (how close to the peak it starts). */
static inline double tfb_sweep_top_eff(const tfb_sweep *s)
{
    int top = 0;
    for (int j = 1; j < s->n; j++)
        if (s->k[j] > s->k[top])
            top = j;
    return s->n ? s->eff[top] : 0;
}

/*
 * Prints the sweep as "#" comment rows (one per point, in the order first
 * measured) and the result as "NAME value unit" lines, on stdout.
 */
static inline void tfb_sweep_report(const tfb_sweep *s, const char *name)
{
    for (int j = 0; j < s->n; j++)
        printf("# %s k=%llu granularity %.3f us efficiency %.3f\n", name, (unsigned long long)s->k[j], s->gran_us[j], s->eff[j]);
    char bound;
    double m = tfb_sweep_metg(s, &bound);
    /* A bound, not a crossing, says so after the unit (awk reads $2). */
    printf("%s_metg50 %.3f us%s\n", name, m,
           bound == '=' ? ""
           : bound == '<' ? " # upper bound: k=1 still above 50%"
                          : " # lower bound: no size reached 50%");
    printf("%s_top_efficiency %.3f ratio\n", name, tfb_sweep_top_eff(s));
    fflush(stdout);
}

#endif
