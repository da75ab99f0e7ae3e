/* Work-stealing policy: victim order by locality tier, shuffled with a seeded generator. */
#include "steal.h"

/* The candidates are cand[0 .. n) when cand is set, else the ranks first .. n-1. */
static size_t order(const tf_loc *loc, const uint32_t *cand, uint32_t first,
                    uint32_t n, uint32_t self, tf_rng *rng, uint32_t *out)
{
    size_t k = 0;
    for (int dist = 0; dist <= 2; dist++) {
        size_t tier = k;
        for (uint32_t i = first; i < n; i++) {
            uint32_t r = cand ? cand[i] : i;
            if (r != self && tf_loc_distance(&loc[self], &loc[r]) == dist)
                out[k++] = r;
        }
        /* Fisher-Yates within the tier. */
        for (size_t i = k; i > tier + 1; i--) {
            size_t j = tier + tf_rng_below(rng, (uint32_t)(i - tier));
            uint32_t tmp = out[i - 1];
            out[i - 1] = out[j];
            out[j] = tmp;
        }
    }
    return k;
}

size_t tf_steal_order(const tf_loc *loc, uint32_t first, uint32_t n,
                      uint32_t self, tf_rng *rng, uint32_t *out)
{
    return order(loc, NULL, first, n, self, rng, out);
}

size_t tf_steal_order_of(const tf_loc *loc, const uint32_t *cand,
                         size_t ncand, uint32_t self, tf_rng *rng,
                         uint32_t *out)
{
    return order(loc, cand, 0, (uint32_t)ncand, self, rng, out);
}

size_t tf_steal_same_host(const tf_loc *loc, uint32_t first, uint32_t n,
                          uint32_t self, uint32_t *out)
{
    size_t k = 0;
    for (uint32_t r = first; r < n; r++)
        if (r != self && loc[r].host == loc[self].host)
            out[k++] = r;
    return k;
}
