/* Task table and dependency graph: growth, edges, cycle search, memory accounting. */
#include "dag.h"

#include <stdlib.h>
#include <string.h>

#include "taskfarm_status.h"

static const char *const state_names[TF_ST_COUNT_] = {
    "held", "pending",   "ready",   "dispatched",
    "parked", "done", "failed", "skipped",
};

const char *tf_state_name(tf_state st)
{
    return (unsigned)st < TF_ST_COUNT_ ? state_names[st] : "invalid";
}

void tf_dag_init(tf_dag *d) { memset(d, 0, sizeof *d); }

void tf_dag_free(tf_dag *d)
{
    free(d->prio);
    free(d->npend);
    free(d->out_head);
    free(d->worker);
    free(d->pin);
    free(d->cores);
    free(d->state);
    free(d->attempts);
    free(d->retries);
    free(d->flags);
    free(d->e_to);
    free(d->e_next);
    free(d->e_kind);
    tf_dag_init(d);
}

/* Grow one array to ncap elements; leaves *p untouched on failure. */
static int grow(void **p, size_t elem, size_t ncap)
{
    void *q = realloc(*p, elem * ncap);
    if (!q)
        return TF_ENOMEM;
    *p = q;
    return 0;
}

/*
 * All arrays grow together. A failure part way leaves some arrays larger
 * than cap, which is harmless: cap only moves once every array has grown.
 */
static int grow_tasks(tf_dag *d)
{
    if (d->cap == UINT32_MAX - 1)
        return TF_ERANGE;
    size_t ncap = d->cap ? (size_t)d->cap * 2 : 1024;
    if (ncap > UINT32_MAX - 1)
        ncap = UINT32_MAX - 1;
    if (grow((void **)&d->prio, sizeof *d->prio, ncap) ||
        grow((void **)&d->npend, sizeof *d->npend, ncap) ||
        grow((void **)&d->out_head, sizeof *d->out_head, ncap) ||
        grow((void **)&d->worker, sizeof *d->worker, ncap) ||
        grow((void **)&d->pin, sizeof *d->pin, ncap) ||
        grow((void **)&d->cores, sizeof *d->cores, ncap) ||
        grow((void **)&d->state, sizeof *d->state, ncap) ||
        grow((void **)&d->attempts, sizeof *d->attempts, ncap) ||
        grow((void **)&d->retries, sizeof *d->retries, ncap) ||
        grow((void **)&d->flags, sizeof *d->flags, ncap))
        return TF_ENOMEM;
    d->cap = (uint32_t)ncap;
    return 0;
}

int tf_dag_add(tf_dag *d, int32_t prio, uint16_t cores, uint8_t retries,
               uint32_t *idx)
{
    if (d->n == d->cap) {
        int rc = grow_tasks(d);
        if (rc)
            return rc;
    }
    uint32_t t = d->n++;
    d->prio[t] = prio;
    d->npend[t] = 0;
    d->out_head[t] = TF_NONE;
    d->worker[t] = TF_NONE;
    d->pin[t] = TF_NONE;
    d->cores[t] = cores ? cores : 1;
    d->state[t] = TF_ST_HELD;
    d->attempts[t] = 0;
    d->retries[t] = retries;
    d->flags[t] = 0;
    *idx = t;
    return 0;
}

int tf_dag_add_edge(tf_dag *d, uint32_t from, uint32_t to, uint8_t kind)
{
    if (from >= d->n || to >= d->n || from == to || kind > TF_EDGE_NOTOK)
        return TF_EINVAL;
    if (d->ne == d->ecap) {
        if (d->ecap == UINT32_MAX - 1)
            return TF_ERANGE;
        size_t ncap = d->ecap ? (size_t)d->ecap * 2 : 1024;
        if (ncap > UINT32_MAX - 1)
            ncap = UINT32_MAX - 1;
        if (grow((void **)&d->e_to, sizeof *d->e_to, ncap) ||
            grow((void **)&d->e_next, sizeof *d->e_next, ncap) ||
            (d->e_kind && grow((void **)&d->e_kind, 1, ncap)))
            return TF_ENOMEM;
        d->ecap = (uint32_t)ncap;
    }
    /* The first edge of another kind: every edge before it was OK. */
    if (kind != TF_EDGE_OK && !d->e_kind &&
        !(d->e_kind = calloc(d->ecap, 1)))
        return TF_ENOMEM;
    uint32_t e = d->ne++;
    d->e_to[e] = to;
    d->e_next[e] = d->out_head[from];
    if (d->e_kind)
        d->e_kind[e] = kind;
    d->out_head[from] = e;
    if (tf_edge_is_open(kind, d->state[from]))
        d->npend[to]++;
    return 0;
}

/*
 * Iterative depth-first search over HELD tasks >= first with three colours.
 * A grey successor closes a cycle; the explicit stack then holds the path
 * from that successor to the current task. Recursion would overflow on the
 * million-task chains users do write.
 */
long tf_dag_find_cycle(const tf_dag *d, uint32_t first, uint32_t *cyc,
                       size_t max)
{
    if (first >= d->n)
        return 0;
    /*
     * Edges only ever point into HELD tasks, so a cycle lies among them.
     * When every such edge goes from a lower to a higher index (always, for
     * tasks submitted through the API) there is none: skip the search.
     */
    bool backward = false;
    for (uint32_t t = first; t < d->n && !backward; t++)
        for (uint32_t e = d->out_head[t]; e != TF_NONE; e = d->e_next[e])
            if (d->e_to[e] < t) {
                backward = true;
                break;
            }
    if (!backward)
        return 0;
    uint32_t span = d->n - first;
    uint8_t *colour = calloc(span, 1); /* 0 white, 1 grey, 2 black */
    uint32_t *stack = malloc(sizeof *stack * span);
    uint32_t *edge = malloc(sizeof *edge * span); /* next edge per depth */
    long found = 0;
    if (!colour || !stack || !edge) {
        found = TF_ENOMEM;
        goto out_with_scratch;
    }
    for (uint32_t root = first; root < d->n && !found; root++) {
        if (colour[root - first] || d->state[root] != TF_ST_HELD)
            continue;
        size_t sp = 0;
        stack[sp] = root;
        edge[sp] = d->out_head[root];
        colour[root - first] = 1;
        sp++;
        while (sp && !found) {
            uint32_t e = edge[sp - 1];
            if (e == TF_NONE) {
                colour[stack[sp - 1] - first] = 2;
                sp--;
                continue;
            }
            edge[sp - 1] = d->e_next[e];
            uint32_t v = d->e_to[e];
            if (v < first || d->state[v] != TF_ST_HELD)
                continue;
            if (colour[v - first] == 1) {
                size_t k = sp;
                while (stack[k - 1] != v)
                    k--;
                found = (long)(sp - (k - 1));
                for (size_t i = 0; i < (size_t)found && i < max; i++)
                    cyc[i] = stack[k - 1 + i];
            } else if (colour[v - first] == 0) {
                colour[v - first] = 1;
                stack[sp] = v;
                edge[sp] = d->out_head[v];
                sp++;
            }
        }
    }
out_with_scratch:
    free(edge);
    free(stack);
    free(colour);
    return found;
}

size_t tf_dag_bytes(const tf_dag *d)
{
    size_t per_task = sizeof *d->prio + sizeof *d->npend +
                      sizeof *d->out_head + sizeof *d->worker +
                      sizeof *d->cores + sizeof *d->state +
                      sizeof *d->attempts + sizeof *d->retries +
                      sizeof *d->flags;
    return (size_t)d->cap * per_task +
           (size_t)d->ecap * (sizeof *d->e_to + sizeof *d->e_next +
                              (d->e_kind ? 1 : 0));
}
