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
