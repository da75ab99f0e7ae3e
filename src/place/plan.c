/* The placement plan: compact choice of a task's PUs from a topology view and the PUs' loads. */
#include "plan.h"

#include <stdbool.h>
#include <stdlib.h>

/*
 * How good a PU is for a new task: WHOLE is the first PU of a core none of
 * whose PUs is in use, FREE an unused PU of a core in use (or the second
 * PU of a free core), BUSY one some task uses already. The tiers of the
 * plan are "WHOLE only", "WHOLE or FREE", "anything".
 */
enum { WHOLE, FREE, BUSY };

static int pu_class(const tf_plan_view *v, const unsigned *load, size_t i)
{
    if (load[i])
        return BUSY;
    size_t a = i, b = i + 1;
    while (a > 0 && v->pu[a - 1].core == v->pu[i].core)
        a--;
    while (b < v->npu && v->pu[b].core == v->pu[i].core)
        b++;
    for (size_t k = a; k < b; k++)
        if (load[k])
            return FREE;
    return a == i ? WHOLE : FREE;
}

/* The PUs of domain d are v->pu[*a .. *b): the view keeps domains together. */
static void domain_range(const tf_plan_view *v, int d, size_t *a, size_t *b)
{
    size_t i = 0;
    while (i < v->npu && v->pu[i].domain != d)
        i++;
    *a = i;
    while (i < v->npu && v->pu[i].domain == d)
        i++;
    *b = i;
}

/* Places of tier t in domain d. */
static size_t capacity(const tf_plan_view *v, const unsigned *load, int d,
                       int t)
{
    size_t a, b, c = 0;
    domain_range(v, d, &a, &b);
    for (size_t i = a; i < b; i++)
        c += pu_class(v, load, i) <= t;
    return c;
}

/*
 * Append k places of tier t from domain d to out: whole cores, then free
 * PUs, in view order, then busy PUs from the least loaded up.
 */
static size_t take(const tf_plan_view *v, const unsigned *load, int d, int t,
                   size_t k, size_t *out)
{
    size_t a, b, m = 0;
    domain_range(v, d, &a, &b);
    for (int c = WHOLE; c <= FREE && c <= t; c++)
        for (size_t i = a; i < b && m < k; i++)
            if (pu_class(v, load, i) == c)
                out[m++] = i;
    if (t < BUSY)
        return m;
    unsigned level = 0; /* the loads taken so far are <= level */
    while (m < k) {
        unsigned next = 0;
        for (size_t i = a; i < b; i++)
            if (load[i] > level && (!next || load[i] < next))
                next = load[i];
        if (!next)
            break;
        for (size_t i = a; i < b && m < k; i++)
            if (load[i] == next)
                out[m++] = i;
        level = next;
    }
    return m;
}

static void sort_indexes(size_t *x, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        size_t v = x[i], j = i;
        for (; j > 0 && x[j - 1] > v; j--)
            x[j] = x[j - 1];
        x[j] = v;
    }
}

/* Order of domains: largest capacity first, the lowest on a tie. */
static bool before(size_t ca, int a, size_t cb, int b)
{
    return ca > cb || (ca == cb && a < b);
}

size_t tf_plan_pick(const tf_plan_view *v, const unsigned *load, size_t n,
                    size_t *out)
{
    if (n > v->npu)
        n = v->npu;
    if (!n)
        return 0;
    int nd = (int)v->ndomains;
    for (int t = WHOLE; t <= BUSY; t++) {
        size_t total = 0;
        int best = -1;
        size_t best_cap = 0;
        for (int d = 0; d < nd; d++) {
            size_t c = capacity(v, load, d, t);
            total += c;
            if (c >= n && (best < 0 || c < best_cap))
                best = d, best_cap = c;
        }
        if (total < n)
            continue;
        size_t m;
        if (best >= 0) {
            m = take(v, load, best, t, n, out);
        } else {
            /* The fewest domains: the largest first, each as far as it goes. */
            m = 0;
            size_t prev_cap = (size_t)-1;
            int prev = -1;
            while (m < n) {
                int d_next = -1;
                size_t c_next = 0;
                for (int d = 0; d < nd; d++) {
                    size_t c = capacity(v, load, d, t);
                    if (c && before(prev_cap, prev, c, d) &&
                        (d_next < 0 || before(c, d, c_next, d_next)))
                        d_next = d, c_next = c;
                }
                if (d_next < 0)
                    break; /* cannot happen: total >= n */
                m += take(v, load, d_next, t, n - m, out + m);
                prev = d_next, prev_cap = c_next;
            }
        }
        sort_indexes(out, m);
        return m;
    }
    return 0; /* unreachable: tier BUSY holds every PU */
}

void tf_plan_view_free(tf_plan_view *v)
{
    free(v->pu);
    free(v->domain_os);
    v->pu = NULL;
    v->domain_os = NULL;
    v->npu = v->ndomains = v->ncores = 0;
}
