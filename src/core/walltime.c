/* Walltime-aware dispatch: per-task estimates and families, per-family learning. */
#include "walltime.h"

#include <stdlib.h>

#include "grow.h"
#include "taskfarm_status.h"

void tf_wt_init(tf_walltime *w, const int32_t *const *prio)
{
    *w = (tf_walltime){0};
    tf_rq_init(&w->late, prio);
}

void tf_wt_free(tf_walltime *w)
{
    free(w->est_ms);
    free(w->family);
    free(w->fam_ms);
    tf_rq_free(&w->late);
    *w = (tf_walltime){0};
}

int tf_wt_reserve(tf_walltime *w, uint32_t t, uint32_t family)
{
    if (family > TF_WT_FAMILY_MAX || t == UINT32_MAX)
        return TF_EINVAL;
    size_t need = (size_t)t + 1, nfam = (size_t)family + 1;
    if (tf_grow((void **)&w->est_ms, &w->ecap, need, sizeof *w->est_ms,
                1024) ||
        tf_grow((void **)&w->family, &w->fcap, need, sizeof *w->family,
                1024) ||
        tf_grow((void **)&w->fam_ms, &w->famcap, nfam, sizeof *w->fam_ms, 64))
        return TF_ENOMEM;
    return 0;
}

int tf_wt_set(tf_walltime *w, uint32_t t, uint32_t est_ms, uint32_t family)
{
    if (!est_ms && !family && t >= w->n)
        return 0; /* the default: nothing to keep */
    int rc = tf_wt_reserve(w, t, family);
    if (rc)
        return rc;
    size_t need = (size_t)t + 1, nfam = (size_t)family + 1;
    for (; w->nfam < nfam; w->nfam++)
        w->fam_ms[w->nfam] = 0;
    for (; w->n < need; w->n++) {
        w->est_ms[w->n] = 0;
        w->family[w->n] = 0;
    }
    w->est_ms[t] = est_ms > TF_WT_EST_MAX ? TF_WT_EST_MAX : est_ms;
    w->family[t] = family;
    return 0;
}

/* What t's family has taught, in ms: 0 when nothing yet. */
static uint32_t learnt(const tf_walltime *w, uint32_t t)
{
    uint32_t f = w->family[t];
    if (!f || !w->fam_ms[f])
        return 0;
    uint64_t e = ((uint64_t)w->fam_ms[f] * TF_WT_LEARN_NUM +
                  TF_WT_LEARN_DEN - 1) / TF_WT_LEARN_DEN;
    return e > TF_WT_EST_MAX ? TF_WT_EST_MAX : (uint32_t)e;
}

uint32_t tf_wt_est(const tf_walltime *w, uint32_t t)
{
    if (t >= w->n)
        return 0;
    uint32_t e = w->est_ms[t];
    return e && !(e & TF_WT_CHARGED) ? e : learnt(w, t);
}

void tf_wt_learn(tf_walltime *w, uint32_t t, uint64_t dur_ns)
{
    if (t >= w->n || !w->family[t])
        return;
    uint64_t ms = dur_ns / 1000000u + (dur_ns % 1000000u != 0);
    uint32_t *m = &w->fam_ms[w->family[t]];
    if (ms > *m)
        *m = ms > TF_WT_EST_MAX ? TF_WT_EST_MAX : (uint32_t)ms;
}

uint32_t tf_wt_charge(tf_walltime *w, uint32_t t)
{
    if (t >= w->n)
        return 0;
    uint32_t e = w->est_ms[t];
    if (e && !(e & TF_WT_CHARGED))
        return e;
    e = learnt(w, t);
    w->est_ms[t] = e ? e | TF_WT_CHARGED : 0;
    return e;
}

uint32_t tf_wt_discharge(tf_walltime *w, uint32_t t)
{
    uint32_t e = tf_wt_charged(w, t);
    if (t < w->n && (w->est_ms[t] & TF_WT_CHARGED))
        w->est_ms[t] = 0;
    return e;
}

size_t tf_wt_bytes(const tf_walltime *w)
{
    return w->ecap * sizeof *w->est_ms + w->fcap * sizeof *w->family +
           w->famcap * sizeof *w->fam_ms + tf_rq_bytes(&w->late);
}
