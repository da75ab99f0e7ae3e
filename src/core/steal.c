/* Work-stealing policy: victim order by locality tier, shuffled with a seeded generator. */
#include "steal.h"

size_t tf_steal_order(const tf_loc *loc, uint32_t first, uint32_t n,
                      uint32_t self, tf_rng *rng, uint32_t *out)
{
    size_t k = 0;
    for (int dist = 0; dist <= 2; dist++) {
        size_t tier = k;
        for (uint32_t r = first; r < n; r++)
            if (r != self && tf_loc_distance(&loc[self], &loc[r]) == dist)
                out[k++] = r;
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
