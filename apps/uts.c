/* Example: the Unbalanced Tree Search benchmark (Olivier et al., LCPC 2006) with dynamic tasks. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apps_common.h"
#include "taskfarm.h"
#include "uts_sha1.h"

/*
 * UTS counts the nodes of an implicit tree whose shape is known only by
 * expanding it. A node is a 20-byte SHA-1 digest plus its depth. The root's
 * digest is SHA-1 of 16 zero bytes and the big-endian 32-bit seed; child i's
 * is SHA-1 of the parent's digest and big-endian i. A node's last four
 * digest bytes, big-endian and masked to 31 bits, divided by 2^31, give the
 * uniform number u in [0,1) that decides its child count:
 *  - geometric trees: floor(log(1-u) / log(1-p)) children, p = 1/(1+b),
 *    where b is b0 at the root and below follows the shape function of the
 *    depth (linear, exponential decrease, cyclic, fixed);
 *  - binomial trees: the root has floor(b0) children, every other node m
 *    children with probability q, else none.
 * Children are capped at 100 (not for a binomial root). The same digest
 * gives the same subtree wherever it is expanded, so the count cannot
 * depend on the scheduling, and the published trees' sizes check the
 * generator.
 *
 * Granularity: a task receives a list of nodes and expands them depth-first,
 * at most `budget` nodes. If nodes are still pending on its stack then, it
 * splits them into at most `fanout` child tasks (tf_task_submit, from inside
 * the task), contiguous slices of the stack. Its output is its counts; rank
 * 0 adds up every task's output as it ends (the event callback), since
 * dynamic tasks' ids are not known to rank 0's code.
 */

enum { GEO = 1, BIN = 0 };                            /* the UTS -t values */
enum { LINEAR = 0, EXPDEC = 1, CYCLIC = 2, FIXED = 3 }; /* the UTS -a values */
enum { MAX_CHILDREN = 100, NODE_BYTES = 24 };

typedef struct tree {
    const char *name;
    int type, shape, gen_mx; /* gen_mx: the depth parameter of geometric trees */
    double b0, q;
    int m, seed;
    uint64_t published; /* the published size for these parameters, 0: none */
} tree;

/* The sample trees of the UTS paper and distribution that this app knows. */
static const tree presets[] = {
    {"T1", GEO, FIXED, 10, 4.0, 0, 0, 19, 4130071},
    {"T5", GEO, LINEAR, 20, 4.0, 0, 0, 34, 4147582},
    {"T2", GEO, CYCLIC, 16, 6.0, 0, 0, 502, 4117769},
    {"T3", BIN, 0, 0, 2000.0, 0.124875, 8, 42, 4112897},
};

typedef struct node {
    uint8_t digest[20];
    int32_t height;
} node;

typedef struct counts {
    uint64_t nodes, leaves, maxdepth;
} counts;

typedef struct uts_app {
    tree t;
    uint64_t budget;
    int fanout;
    tf_fn_id fn; /* the expand function, the same id on every rank */
} uts_app;

static void root_node(const tree *t, node *n)
{
    uint8_t msg[20] = {0};
    for (int i = 0; i < 4; i++)
        msg[16 + i] = (uint8_t)((uint32_t)t->seed >> (24 - 8 * i));
    sha1_ctx s;
    sha1_begin(&s);
    sha1_update(&s, msg, sizeof msg);
    sha1_end(&s, n->digest);
    n->height = 0;
}

static void child_node(const node *parent, int i, node *child)
{
    uint8_t idx[4];
    for (int k = 0; k < 4; k++)
        idx[k] = (uint8_t)((uint32_t)i >> (24 - 8 * k));
    sha1_ctx s;
    sha1_begin(&s);
    sha1_update(&s, parent->digest, 20);
    sha1_update(&s, idx, sizeof idx);
    sha1_end(&s, child->digest);
    child->height = parent->height + 1;
}

static double node_uniform(const node *n)
{
    const uint8_t *d = n->digest;
    uint32_t b = ((uint32_t)d[16] << 24 | (uint32_t)d[17] << 16 |
                  (uint32_t)d[18] << 8 | d[19]) &
                 0x7fffffffu;
    return (double)b / 2147483648.0;
}

static int geo_children(const tree *t, const node *n)
{
    double b = t->b0;
    int h = n->height;
    if (h > 0) {
        switch (t->shape) {
        case EXPDEC:
            b = t->b0 * pow((double)h, -log(t->b0) / log((double)t->gen_mx));
            break;
        case CYCLIC:
            b = h > 5 * t->gen_mx
                    ? 0.0
                    : pow(t->b0, sin(2.0 * 3.141592653589793 * (double)h /
                                     (double)t->gen_mx));
            break;
        case FIXED:
            b = h < t->gen_mx ? t->b0 : 0.0;
            break;
        default: /* LINEAR */
            b = t->b0 * (1.0 - (double)h / (double)t->gen_mx);
            break;
        }
    }
    double p = 1.0 / (1.0 + b);
    /* The inverse of the geometric distribution's CDF at u. */
    return (int)floor(log(1.0 - node_uniform(n)) / log(1.0 - p));
}

static int num_children(const tree *t, const node *n)
{
    if (t->type == BIN) {
        if (n->height == 0)
            return (int)floor(t->b0);
        return node_uniform(n) < t->q ? t->m : 0;
    }
    int c = geo_children(t, n);
    return c > MAX_CHILDREN ? MAX_CHILDREN : c;
}

typedef struct nstack {
    node *v;
    size_t n, cap;
} nstack;

static int push(nstack *s, const node *x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        node *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v, s->cap = cap;
    }
    s->v[s->n++] = *x;
    return 0;
}

/*
 * Expand nodes from the stack depth-first until it is empty or `budget`
 * nodes are expanded; the rest stays on the stack. The serial count and
 * the tasks share this loop, so their rates compare the same work.
 * Returns 0, or -1 when memory runs out.
 */
static int traverse(const tree *t, nstack *s, uint64_t budget, counts *c)
{
    for (uint64_t done = 0; s->n > 0 && done < budget; done++) {
        node n = s->v[--s->n];
        int k = num_children(t, &n);
        c->nodes++;
        if (k <= 0)
            c->leaves++;
        if ((uint64_t)n.height > c->maxdepth)
            c->maxdepth = (uint64_t)n.height;
        for (int i = k - 1; i >= 0; i--) {
            node ch;
            child_node(&n, i, &ch);
            if (push(s, &ch))
                return -1;
        }
    }
    return 0;
}

/* Input: nodes, NODE_BYTES each. Output: counts of the nodes it expanded. */
static int expand_task(tf_task_ctx *ctx, const void *in, size_t len,
                       void *user)
{
    const uts_app *A = user;
    if (len == 0 || len % NODE_BYTES)
        return 1;
    nstack s = {0};
    const uint8_t *p = in;
    for (size_t off = 0; off < len; off += NODE_BYTES) {
        node x;
        memcpy(x.digest, p + off, 20);
        memcpy(&x.height, p + off + 20, 4);
        if (push(&s, &x)) {
            free(s.v);
            return 2;
        }
    }
    counts c = {0};
    int rc = traverse(&A->t, &s, A->budget, &c) ? 2 : 0;
    /* Hand what is left to new tasks, in contiguous slices of the stack. */
    size_t parts = s.n < (size_t)A->fanout ? s.n : (size_t)A->fanout;
    for (size_t f = 0; !rc && f < parts; f++) {
        size_t lo = f * s.n / parts, hi = (f + 1) * s.n / parts;
        tf_task_desc d;
        tf_task_desc_init(&d, A->fn);
        d.input = &s.v[lo];
        d.input_len = (hi - lo) * sizeof(node);
        tf_task_id id;
        rc = tf_task_submit(ctx, &d, &id) ? 3 : 0;
    }
    free(s.v);
    return rc ? rc : tf_task_set_output(ctx, &c, sizeof c);
}

/* Rank 0's tally of every task's counts, kept by the event callback. */
typedef struct tally {
    counts c;
    uint64_t tasks, failed;
} tally;

static void on_event(void *user, tf_runtime *rt, const tf_run_event *ev)
{
    (void)rt;
    tally *T = user;
    if (ev->kind == TF_RUN_DONE && ev->output_len == sizeof(counts)) {
        counts c;
        memcpy(&c, ev->output, sizeof c);
        T->c.nodes += c.nodes;
        T->c.leaves += c.leaves;
        if (c.maxdepth > T->c.maxdepth)
            T->c.maxdepth = c.maxdepth;
        T->tasks++;
    } else if (ev->kind == TF_RUN_DONE || ev->kind == TF_RUN_FAILED ||
               ev->kind == TF_RUN_SKIPPED) {
        T->failed++;
    }
}

static const char *describe(const tree *t, char *buf, size_t n)
{
    static const char *shapes[] = {"linear", "expdec", "cyclic", "fixed"};
    if (t->type == BIN)
        snprintf(buf, n, "binomial b0=%g q=%g m=%d seed=%d", t->b0, t->q,
                 t->m, t->seed);
    else
        snprintf(buf, n, "geometric %s b0=%g depth=%d seed=%d",
                 shapes[t->shape], t->b0, t->gen_mx, t->seed);
    return buf;
}

/*
 * One farmed count with stealing on or off. Returns 0 when it ran and
 * counted what the serial count did, 1 when the count differs, -1 on a
 * runtime error. Collective.
 */
static int farm(uts_app *A, int no_steal, int slots, const counts *want,
                double seq_rate, int cores)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    tally T = {0};
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.slots = slots;
    cfg.no_steal = no_steal;
    cfg.on_event = on_event;
    cfg.event_user = &T;
    tf_runtime *rt;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    if (rc) {
        fprintf(stderr, "uts: tf_init: %s\n", tf_strerror(rc));
        return -1;
    }
    rc = tf_register(rt, "uts_expand", expand_task, A, &A->fn);
    if (!rc && rank == 0) {
        node root;
        root_node(&A->t, &root);
        uint8_t buf[NODE_BYTES];
        memcpy(buf, root.digest, 20);
        memcpy(buf + 20, &root.height, 4);
        tf_task_desc d;
        tf_task_desc_init(&d, A->fn);
        d.input = buf;
        d.input_len = sizeof buf;
        tf_task_id id;
        rc = tf_submit(rt, &d, &id);
    }
    if (rc) {
        fprintf(stderr, "uts: %s\n", tf_strerror(rc));
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    double t0 = MPI_Wtime();
    rc = tf_run(rt);
    double dt = MPI_Wtime() - t0;
    int result = rc ? -1 : 0;
    if (rank == 0) {
        if (rc)
            fprintf(stderr, "uts: run: %s\n", tf_strerror(rc));
        int same = T.c.nodes == want->nodes && T.c.leaves == want->leaves &&
                   T.c.maxdepth == want->maxdepth && T.failed == 0;
        if (!rc && !same)
            result = 1;
        double rate = (double)T.c.nodes / dt, eff = rate / (seq_rate * cores);
        const char *mode = no_steal ? "off" : "on";
        printf("uts: %s steal %s: %llu nodes, %llu leaves, depth %llu in "
               "%.3f s, %llu tasks on %d task cores: %.3g nodes/s, "
               "efficiency %.2f: %s\n",
               A->t.name, mode, (unsigned long long)T.c.nodes,
               (unsigned long long)T.c.leaves,
               (unsigned long long)T.c.maxdepth, dt,
               (unsigned long long)T.tasks, cores, rate, eff,
               result ? "WRONG" : "CORRECT");
        printf("uts_%s_steal_%s_rate %.4g nodes/s\n", A->t.name, mode, rate);
        printf("uts_%s_steal_%s_efficiency %.3f ratio\n", A->t.name, mode,
               eff);
    }
    MPI_Bcast(&result, 1, MPI_INT, 0, MPI_COMM_WORLD);
    tf_finalize(&rt);
    return result;
}

static void usage(int rank)
{
    if (rank == 0)
        fprintf(stderr,
                "usage: uts [-T T1|T2|T3|T5] [-t 0|1] [-a 0..3] [-d DEPTH] "
                "[-b B0] [-q Q] [-m M] [-r SEED]\n"
                "           [-B BUDGET] [-F FANOUT] [-s SLOTS] [-S on|off|both] "
                "[-n]\n"
                "  -T a sample tree of the UTS paper (default T1); -t 1 "
                "geometric, 0 binomial;\n"
                "  -a shape (0 linear, 1 expdec, 2 cyclic, 3 fixed); "
                "-d depth; -b root branching;\n"
                "  -q, -m binomial probability and children; -r seed;\n"
                "  -B nodes a task expands before splitting (2000); -F "
                "children it splits into (4);\n"
                "  -s slots per rank (1); -S stealing (both); -n serial "
                "count only\n");
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    uts_app A = {.t = presets[0], .budget = 2000, .fanout = 4};
    int slots = 1, steal_on = 1, steal_off = 1, serial_only = 0, bad = 0;
    int custom = 0; /* parameters changed from a preset: no published size */
    int opt;
    double v = 0;
    while (!bad && (opt = getopt(argc, argv, "T:t:a:d:b:q:m:r:B:F:s:S:n")) != -1) {
        if (opt == 'T') {
            size_t i = 0, np = sizeof presets / sizeof presets[0];
            while (i < np && strcmp(presets[i].name, optarg))
                i++;
            bad = i == np;
            if (!bad)
                A.t = presets[i];
        } else if (opt == 'S') {
            steal_on = !strcmp(optarg, "on") || !strcmp(optarg, "both");
            steal_off = !strcmp(optarg, "off") || !strcmp(optarg, "both");
            bad = !steal_on && !steal_off;
        } else if (opt == 'n') {
            serial_only = 1;
        } else if (opt == '?') {
            bad = 1;
        } else {
            static const double lim[][2] = {
                ['t'] = {0, 1},   ['a'] = {0, 3},      ['d'] = {1, 1e6},
                ['b'] = {1, 1e6}, ['q'] = {0, 1},      ['m'] = {0, 100},
                ['r'] = {0, 2147483647.0}, ['B'] = {1, 1e12},
                ['F'] = {1, 1000}, ['s'] = {1, 64}};
            bad = parse_num(optarg, lim[opt][0], lim[opt][1], &v) != 0;
            custom |= strchr("tadbqmr", opt) != NULL;
            switch (opt) {
            case 't': A.t.type = (int)v; break;
            case 'a': A.t.shape = (int)v; break;
            case 'd': A.t.gen_mx = (int)v; break;
            case 'b': A.t.b0 = v; break;
            case 'q': A.t.q = v; break;
            case 'm': A.t.m = (int)v; break;
            case 'r': A.t.seed = (int)v; break;
            case 'B': A.budget = (uint64_t)v; break;
            case 'F': A.fanout = (int)v; break;
            case 's': slots = (int)v; break;
            }
            if (bad && rank == 0)
                fprintf(stderr, "uts: -%c %s: out of range\n", opt, optarg);
        }
    }
    if (bad || optind < argc) {
        usage(rank);
        MPI_Finalize();
        return 2;
    }
    if (custom)
        A.t.name = "custom", A.t.published = 0;
    int cores = app_task_cores(size, slots);

    /* The serial count on rank 0 while the other ranks sleep. */
    counts want = {0};
    double seq_rate = 0;
    int status = 0;
    if (rank == 0) {
        nstack s = {0};
        node root;
        root_node(&A.t, &root);
        double t0 = MPI_Wtime();
        if (push(&s, &root) || traverse(&A.t, &s, UINT64_MAX, &want)) {
            fprintf(stderr, "uts: out of memory\n");
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        double dt = MPI_Wtime() - t0;
        free(s.v);
        seq_rate = (double)want.nodes / dt;
        char desc[128];
        printf("uts: %s (%s): serial %llu nodes, %llu leaves, depth %llu in "
               "%.3f s: %.3g nodes/s",
               A.t.name, describe(&A.t, desc, sizeof desc),
               (unsigned long long)want.nodes,
               (unsigned long long)want.leaves,
               (unsigned long long)want.maxdepth, dt, seq_rate);
        if (A.t.published) {
            int match = want.nodes == A.t.published;
            printf("; published %llu: %s",
                   (unsigned long long)A.t.published,
                   match ? "MATCH" : "MISMATCH");
            status |= !match;
        }
        printf("\nuts_%s_serial_rate %.4g nodes/s\n", A.t.name, seq_rate);
        fflush(stdout);
    }
    app_sleepy_barrier(MPI_COMM_WORLD);
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);

    for (int pass = 0; pass < 2 && !serial_only && status == 0; pass++) {
        int no_steal = pass;
        if (no_steal ? !steal_off : !steal_on)
            continue;
        int r = farm(&A, no_steal, slots, &want, seq_rate, cores);
        status = r < 0 ? 3 : (r ? 1 : status);
        if (rank == 0)
            fflush(stdout);
    }
    if (rank == 0)
        printf("uts: %s\n", status ? "WRONG" : "CORRECT");
    MPI_Finalize();
    return status;
}
