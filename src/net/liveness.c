/* Liveness: per-rank heard/told times and the ranks written off. */
#include "liveness.h"

#include <stdlib.h>

#include "taskfarm_status.h"

int tf_live_start(tf_live *lv, int size, uint64_t hb_ns, uint64_t now)
{
    lv->hb_ns = hb_ns;
    if (!hb_ns)
        return 0;
    size_t n = (size_t)size;
    if (!lv->heard && (!(lv->heard = calloc(n, sizeof *lv->heard)) ||
                       !(lv->told = calloc(n, sizeof *lv->told)) ||
                       !(lv->dead = calloc(n, sizeof *lv->dead))))
        return TF_ENOMEM;
    lv->size = size;
    lv->next_pulse = 0;
    lv->call_at = 0;
    __atomic_store_n(&lv->heard_any, now, __ATOMIC_RELAXED);
    for (size_t r = 0; r < n; r++)
        lv->heard[r] = lv->told[r] = now;
    return 0;
}

void tf_live_free(tf_live *lv)
{
    free(lv->heard);
    free(lv->told);
    free(lv->dead);
    lv->heard = lv->told = NULL;
    lv->dead = NULL;
}

void tf_live_call(tf_live *lv, uint64_t now)
{
    if (!lv->hb_ns)
        return;
    lv->call_at = now;
    tf_live_pulsed(lv, now - 1); /* (the last pulse was before the call) */
}

void tf_live_pulsed(tf_live *lv, uint64_t now)
{
    if (now >= lv->next_pulse)
        lv->next_pulse = now + lv->hb_ns / 8;
    /* Look again as soon as the answers to a roll call are due. */
    uint64_t due = lv->call_at + TF_LIVE_CALL_NS + 1;
    if (lv->call_at && now < due && lv->next_pulse > due)
        lv->next_pulse = due;
}

void tf_live_lose(tf_live *lv, int r)
{
    lv->dead[r] = true;
    lv->nlost++;
    lv->degraded = true;
}

void tf_live_took_losses(tf_live *lv, uint32_t n)
{
    if (!n)
        return;
    lv->degraded = true;
    if (n > lv->nlost)
        lv->nlost = n;
}
